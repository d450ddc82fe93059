"""Vietnamese text in the printer's own code pages: TCVN-3 and CP1258 bytes (pure).

Labels are rasters drawn with the bundled font and print right everywhere; native text is
the option for printers that have a Vietnamese code page (much less data: a serial printer
at 9600 baud takes ~35 s for a raster label). Which page number a printer uses differs
between vendors, so the numbers come from the printer profile; ``edge printer selftest``
prints both encodings so staff can see which one their printer gets right.

TCVN-3 (TCVN 5712:1993 "VN3", also called ABC). Sources: the standard's table as given at
https://en.wikipedia.org/wiki/VSCII and the comparison table
https://www.scribd.com/document/23311958/Bang-Ma-Unicode (e.g. ``á`` = 0xB8, ``à`` =
0xB5, ``ă`` = 0xA8, ``đ`` = 0xAE, ``ệ`` = 0xD6). VN3 holds all 67 lower-case letters with
their tones and the 7 plain capitals ``Ă Â Ê Ô Ơ Ư Đ`` (0xA1-0xA7); a capital *with* a
tone mark exists only in the "all-capital" companion font, at the byte of its lower-case
letter. On ESC/POS printers these are two code pages (Epson: 30 "TCVN-3 1" and 31
"TCVN-3 2"; python-escpos's capability tables agree on those bytes), so the encoder
switches page with ``ESC t n`` around capitals with tones and back. ASCII is the same on
both pages.

CP1258 (Windows Vietnamese, Python's ``cp1258`` codec). CP1258 has the base letters
``ă â ê ô ơ ư đ`` (and some pre-composed letters) but not every toned letter, so text is
written the way CP1258 intends: each letter as its base letter followed by a combining
tone mark, ``0xCC`` grave, ``0xEC`` acute, ``0xD2`` hook above, ``0xDE`` tilde, ``0xF2``
dot below (Microsoft's cp1258 table, https://www.unicode.org/Public/MAPPINGS/VENDORS/MICSFT/WINDOWS/CP1258.TXT).
Every toned letter is decomposed, also those CP1258 has pre-composed, so a printer is
tested on one rule. Page numbers differ by vendor (Epson 52; 27 or 94 on others).

Characters neither encoding has become ``?`` and are listed in :attr:`Encoded.missing`;
common typographic punctuation (dashes, curly quotes, ellipsis) is written as ASCII.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

ESC_T = b"\x1bt"
NativeEncoding = Literal["tcvn3", "cp1258"]

_TONES = ("\u0300", "\u0309", "\u0303", "\u0301", "\u0323")  # grave, hook, tilde, acute, dot
# TCVN-3 bytes of each base vowel with the tones in _TONES order
_TCVN3_TONED = {
    "a": (0xB5, 0xB6, 0xB7, 0xB8, 0xB9),
    "ă": (0xBB, 0xBC, 0xBD, 0xBE, 0xC6),
    "â": (0xC7, 0xC8, 0xC9, 0xCA, 0xCB),
    "e": (0xCC, 0xCE, 0xCF, 0xD0, 0xD1),
    "ê": (0xD2, 0xD3, 0xD4, 0xD5, 0xD6),
    "i": (0xD7, 0xD8, 0xDC, 0xDD, 0xDE),
    "o": (0xDF, 0xE1, 0xE2, 0xE3, 0xE4),
    "ô": (0xE5, 0xE6, 0xE7, 0xE8, 0xE9),
    "ơ": (0xEA, 0xEB, 0xEC, 0xED, 0xEE),
    "u": (0xEF, 0xF1, 0xF2, 0xF3, 0xF4),
    "ư": (0xF5, 0xF6, 0xF7, 0xF8, 0xF9),
    "y": (0xFA, 0xFB, 0xFC, 0xFD, 0xFE),
}
_TCVN3_PLAIN = {"ă": 0xA8, "â": 0xA9, "ê": 0xAA, "ô": 0xAB, "ơ": 0xAC, "ư": 0xAD, "đ": 0xAE}
_TCVN3_PLAIN_CAPS = {"Ă": 0xA1, "Â": 0xA2, "Ê": 0xA3, "Ô": 0xA4, "Ơ": 0xA5, "Ư": 0xA6, "Đ": 0xA7}

LOWER, CAPITALS = 0, 1  # which of the two TCVN-3 pages a byte is on


def _tcvn3_table() -> dict[str, tuple[int, int]]:
    """character -> (page, byte); ASCII is not in the table (same on both pages)."""
    table: dict[str, tuple[int, int]] = {"\u00a0": (LOWER, 0xA0)}
    for ch, byte in _TCVN3_PLAIN.items():
        table[ch] = (LOWER, byte)
    for ch, byte in _TCVN3_PLAIN_CAPS.items():
        table[ch] = (LOWER, byte)
    for base, codes in _TCVN3_TONED.items():
        for tone, byte in zip(_TONES, codes, strict=True):
            lower = unicodedata.normalize("NFC", base + tone)
            table[lower] = (LOWER, byte)
            table[lower.upper()] = (CAPITALS, byte)
    return table


TCVN3 = _tcvn3_table()

CP1258_TONE = {"\u0300": 0xCC, "\u0301": 0xEC, "\u0309": 0xD2, "\u0303": 0xDE, "\u0323": 0xF2}

_ASCII_FALLBACK = {
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u00b7": ".",
    "\u2022": "*",
}


@dataclass(frozen=True)
class Encoded:
    data: bytes  # ESC t page selection(s) and the text bytes
    missing: tuple[str, ...]  # characters written as "?"


def select_page(page: int) -> bytes:
    """``ESC t n``: select character code table ``n``."""
    if not 0 <= page <= 255:
        raise ValueError(f"code page number must be 0..255, got {page}")
    return ESC_T + bytes([page])


def _ascii(ch: str) -> bytes | None:
    if ch in "\n\t" or " " <= ch <= "~":
        return ch.encode("ascii")
    fallback = _ASCII_FALLBACK.get(ch)
    return fallback.encode("ascii") if fallback else None


def encode_tcvn3(text: str, page: int = 30, capitals_page: int = 31) -> Encoded:
    """TCVN-3 bytes for ``text``, starting with ``ESC t page``; capitals with a tone mark
    are written on ``capitals_page`` (``ESC t capitals_page`` ... ``ESC t page``)."""
    pages = (page, capitals_page)
    out = bytearray(select_page(page))
    current = LOWER
    missing: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        plain = _ascii(ch)
        if plain is not None:
            out += plain
            continue
        found = TCVN3.get(ch)
        if found is None:
            missing.append(ch)
            out += b"?"
            continue
        which, byte = found
        if which != current:
            out += select_page(pages[which])
            current = which
        out.append(byte)
    if current != LOWER:
        out += select_page(page)
    return Encoded(bytes(out), tuple(missing))


def encode_cp1258(text: str, page: int = 52) -> Encoded:
    """CP1258 bytes for ``text`` after ``ESC t page``: base letters, each followed by its
    combining tone mark."""
    out = bytearray(select_page(page))
    missing: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        plain = _ascii(ch)
        if plain is not None:
            out += plain
            continue
        decomposed = unicodedata.normalize("NFD", ch)
        tones = [c for c in decomposed if c in CP1258_TONE]
        base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in CP1258_TONE))
        try:
            out += base.encode("cp1258") + bytes(CP1258_TONE[t] for t in tones)
        except UnicodeEncodeError:
            missing.append(ch)
            out += b"?"
    return Encoded(bytes(out), tuple(missing))


def encode(
    text: str,
    encoding: NativeEncoding,
    *,
    tcvn3_page: int = 30,
    tcvn3_capitals_page: int = 31,
    cp1258_page: int = 52,
) -> Encoded:
    """``text`` in the printer's native ``encoding`` with its page numbers."""
    if encoding == "tcvn3":
        return encode_tcvn3(text, tcvn3_page, tcvn3_capitals_page)
    return encode_cp1258(text, cp1258_page)
