"""Vietnamese in the printer's own code pages: TCVN-3 and CP1258 bytes.

Known values: TCVN 5712:1993 VN3 (https://en.wikipedia.org/wiki/VSCII, and the
comparison table https://www.scribd.com/document/23311958/Bang-Ma-Unicode); Microsoft's
cp1258 table (https://www.unicode.org/Public/MAPPINGS/VENDORS/MICSFT/WINDOWS/CP1258.TXT),
which is Python's cp1258 codec. python-escpos's own capability data for the Epson pages
"TCVN-3-1" and "TCVN-3-2" is used as an independent second table.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import escpos
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from edge.printer.codepage import (
    CAPITALS,
    LOWER,
    TCVN3,
    NativeEncoding,
    encode,
    encode_cp1258,
    encode_tcvn3,
    select_page,
)

VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
)
ALPHABET = VIETNAMESE + VIETNAMESE.upper() + " 0123456789,.:-()"


def _escpos_page(name: str) -> dict[str, int]:
    """character -> byte from python-escpos's capabilities.json (rows of 0x80..0xFF)."""
    path = Path(escpos.__file__).parent / "capabilities.json"
    rows = json.loads(path.read_text(encoding="utf-8"))["encodings"][name]["data"]
    return {ch: 0x80 + 16 * r + c for r, row in enumerate(rows) for c, ch in enumerate(row)}


@pytest.mark.parametrize(
    ("char", "byte"),
    [
        ("á", 0xB8),
        ("à", 0xB5),
        ("ả", 0xB6),
        ("ạ", 0xB9),
        ("ă", 0xA8),
        ("â", 0xA9),
        ("ê", 0xAA),
        ("ô", 0xAB),
        ("ơ", 0xAC),
        ("ư", 0xAD),
        ("đ", 0xAE),
        ("ặ", 0xC6),
        ("ệ", 0xD6),
        ("ĩ", 0xDC),
        ("ữ", 0xF7),
        ("ỵ", 0xFE),
        ("Ă", 0xA1),
        ("Đ", 0xA7),
    ],
)
def test_tcvn3_known_bytes(char: str, byte: int) -> None:
    assert encode_tcvn3(char) == encode_tcvn3(char)  # deterministic
    assert encode_tcvn3(char).data == b"\x1bt\x1e" + bytes([byte])
    assert TCVN3[char] == (LOWER, byte)


def test_tcvn3_toned_capitals_switch_to_the_capitals_page_and_back() -> None:
    out = encode_tcvn3("SÂM ẤM à", page=30, capitals_page=31)
    # ESC t 30, "S", Â (A2, base page), "M ", ESC t 31, Ấ (CA), "M " (ASCII: same on
    # both pages, no switch), ESC t 30, à (B5)
    assert out.data == b"\x1bt\x1eS\xa2M \x1bt\x1f\xcaM \x1bt\x1e\xb5"
    assert out.missing == ()
    assert encode_tcvn3("Ở").data == b"\x1bt\x1e\x1bt\x1f\xeb\x1bt\x1e", "ends on the base page"


def test_tcvn3_agrees_with_python_escpos_epson_pages() -> None:
    lower, capitals = _escpos_page("TCVN-3-1"), _escpos_page("TCVN-3-2")
    checked = 0
    for ch, (page, byte) in TCVN3.items():
        if ch in "ĂÂÊÔƠƯĐ\u00a0":
            continue  # VN3's plain capitals (A1-A7): not in python-escpos's page-30 data
        table = lower if page == LOWER else capitals
        assert table.get(ch) == byte, ch
        checked += 1
    assert checked == 67 + 60  # VN3's 67 lower-case letters + the 60 toned capitals


def test_tcvn3_table_is_one_byte_per_character_per_page() -> None:
    for page in (LOWER, CAPITALS):
        used = [byte for p, byte in TCVN3.values() if p == page]
        assert len(used) == len(set(used))
        assert all(0xA0 <= b <= 0xFE for b in used)
    assert len(TCVN3) == 1 + 7 + 7 + 60 + 60  # nbsp, plain small/capital, toned small/capital


def _tcvn3_decode(data: bytes, page: int = 30, capitals: int = 31) -> str:
    inverse = {(p, b): ch for ch, (p, b) in TCVN3.items()}
    out, current, i = [], LOWER, 0
    while i < len(data):
        if data[i : i + 2] == b"\x1bt":
            current = CAPITALS if data[i + 2] == capitals else LOWER
            i += 3
            continue
        b = data[i]
        out.append(chr(b) if b < 0x80 else inverse[(current, b)])
        i += 1
    return "".join(out)


@given(hs.text(alphabet=ALPHABET, max_size=60))
def test_tcvn3_round_trips(text: str) -> None:
    out = encode_tcvn3(text)
    assert out.missing == ()
    assert _tcvn3_decode(out.data) == unicodedata.normalize("NFC", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("á", b"a\xec"),  # base + combining acute, even though CP1258 has pre-composed E1
        ("à", b"a\xcc"),
        ("ả", b"a\xd2"),
        ("ã", b"a\xde"),
        ("ạ", b"a\xf2"),
        ("ệ", b"\xea\xf2"),  # ê + dot below
        ("ờ", b"\xf5\xcc"),  # ơ + grave
        ("Ữ", b"\xdd\xde"),  # Ư + tilde
        ("Đđ", b"\xd0\xf0"),
        ("Ăă", b"\xc3\xe3"),
    ],
)
def test_cp1258_known_bytes(text: str, expected: bytes) -> None:
    out = encode_cp1258(text, page=52)
    assert out.data == b"\x1bt\x34" + expected
    assert out.missing == ()


@given(hs.text(alphabet=ALPHABET, max_size=60))
def test_cp1258_decodes_back_with_pythons_codec(text: str) -> None:
    out = encode_cp1258(text, page=27)
    assert out.data[:3] == b"\x1bt\x1b"
    decoded = out.data[3:].decode("cp1258")
    assert unicodedata.normalize("NFC", decoded) == unicodedata.normalize("NFC", text)
    tones = set("\u0300\u0301\u0303\u0309\u0323")
    assert all(unicodedata.normalize("NFD", c)[-1] not in tones or c in tones for c in decoded)


def test_unencodable_characters_become_question_marks_and_are_listed() -> None:
    encodings: tuple[NativeEncoding, ...] = ("tcvn3", "cp1258")
    for enc in encodings:
        out = encode("Giá – “tốt” … 5€ 中", enc)
        assert b"-" in out.data and b'"' in out.data and b"..." in out.data
        assert "中" in out.missing
        assert out.data.count(b"?") == len(out.missing)
    assert "€" in encode("€", "tcvn3").missing
    assert encode("€", "cp1258").missing == ()  # CP1258 has the euro sign (0x80)


def test_page_numbers_come_from_the_caller() -> None:
    assert encode("a", "tcvn3", tcvn3_page=7, tcvn3_capitals_page=8).data == b"\x1bt\x07a"
    assert encode("Á", "tcvn3", tcvn3_page=7, tcvn3_capitals_page=8).data == (
        b"\x1bt\x07\x1bt\x08\xb8\x1bt\x07"
    )
    assert encode("a", "cp1258", cp1258_page=94).data == b"\x1bt\x5ea"
    with pytest.raises(ValueError, match=r"0\.\.255"):
        select_page(256)
