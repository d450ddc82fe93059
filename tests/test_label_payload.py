"""Signed QR payloads: the format is pinned by a known answer (central implements it too),
every altered or forged payload is refused with its reason, and the site key file is
created once, private, and never invented when verifying."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import threading
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.printer.payload import (
    KEY_BYTES,
    KeyFileError,
    PayloadError,
    PayloadKind,
    PayloadSigner,
    ensure_site_key,
    load_site_key,
    sign,
    verify,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
LOT_ID = "019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a11"
BATCH_ID = "019ab4f0-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
FAST = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_known_answer_pins_the_format() -> None:
    """Recomputed here from the documented format, independently of the module."""
    ref = base64.b32encode(uuid.UUID(LOT_ID).bytes).decode().rstrip("=")
    signed = f"E1:SIN-HO:L:{ref}"
    mac = hmac.new(KEY, signed.encode(), hashlib.sha256).digest()[:10]
    expected = f"{signed}:{base64.b32encode(mac).decode()}"
    assert sign("sin-ho", PayloadKind.LOT, LOT_ID, KEY) == expected
    assert len(ref) == 26 and len(expected.rsplit(":", 1)[1]) == 16  # 80-bit signature
    assert expected == "E1:SIN-HO:L:AGNLHQT4DZ6THGQLF4PFZHMKCE:PTGIP2NNH3IJSS72"  # as documented
    assert sign("sin-ho", PayloadKind.SHIPPING, "VTP2611230427", KEY) == (
        "E1:SIN-HO:S:VTP2611230427:E3ARXT7ODKGPODFK"
    )


@pytest.mark.parametrize(
    ("kind", "ref"),
    [
        (PayloadKind.LOT, LOT_ID),
        (PayloadKind.MANIFEST, BATCH_ID),
        (PayloadKind.SHIPPING, "VTP2611230427"),
        (PayloadKind.SHIPPING, "S22762945.MN4.A1.1234567"),
    ],
)
def test_round_trip_and_qr_alphanumeric(kind: PayloadKind, ref: str) -> None:
    payload = PayloadSigner("sin-ho", KEY).sign(kind, ref)
    assert set(payload) <= QR_ALPHANUMERIC, "alphanumeric mode keeps the QR code small"
    assert len(payload) <= 70
    result = verify(payload, KEY, site="sin-ho")
    assert (result.version, result.site, result.kind, result.ref) == (1, "sin-ho", kind, ref)
    assert verify(payload, KEY) == result  # no expected site: any site, same key
    assert "sin-ho" in result.describe()


def test_every_single_character_change_is_refused() -> None:
    payload = sign("sin-ho", PayloadKind.LOT, LOT_ID, KEY)
    checked = 0
    for i, original in enumerate(payload):
        for replacement in {"A", "Z", "2", "7", ":", "a", "-"} - {original}:
            altered = payload[:i] + replacement + payload[i + 1 :]
            with pytest.raises(PayloadError) as refused:
                verify(altered, KEY, site="sin-ho")
            assert refused.value.code in {
                "malformed",
                "unknown_version",
                "bad_signature",
                "wrong_site",
            }
            checked += 1
    assert checked > 300


def test_reasons() -> None:
    payload = sign("sin-ho", PayloadKind.SHIPPING, "VTP2611230427", KEY)
    cases = {
        payload.replace("VTP2611230427", "VTP2611230428"): "altered or forged: signature",
        payload[:-1] + ("A" if payload[-1] != "A" else "B"): "altered or forged",
        "E2:SIN-HO:L:X:Y": "unknown version E2",
        "E1:SIN-HO:L:ABC": "malformed: 4 fields",
        "E1:sin-ho:S:VTP2611230427:" + payload[-16:]: "malformed",
        "E1:SIN-HO:X:VTP2611230427:" + payload[-16:]: "unknown kind 'X'",
        "E1:SIN-HO:L:VTP2611230427:" + payload[-16:]: "not a base32 record id",
        payload + "A": "signature is not 16",
        "": "malformed: not a station label payload",
        "https://example.com/x": "malformed",
        "E1:SIN-HO:S:VTP2611230427:ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏ": "malformed",
    }
    for text, reason in cases.items():
        with pytest.raises(PayloadError, match=reason):
            verify(text, KEY)
    # a look-alike outside ASCII: the Kelvin sign lower-cases to an ASCII "k"
    kelvin = sign("sin-kho", PayloadKind.SHIPPING, "VTP2611230427", KEY).replace("K", "\u212a", 1)
    for site in ("sin-kho", None):
        with pytest.raises(
            PayloadError, match=r"character U\+212A \(KELVIN SIGN\) at position 8 "
        ) as lookalike:
            verify(kelvin, KEY, site=site)
        assert lookalike.value.code == "malformed"
    with pytest.raises(PayloadError, match=r"U\+DCFF at position 27 is not ASCII"):
        verify(payload[:26] + "\udcff" + payload[27:], KEY)  # an undecodable byte in argv
    with pytest.raises(PayloadError, match="altered or forged") as wrong_key:
        verify(payload, OTHER_KEY)
    assert wrong_key.value.code == "bad_signature"
    other_site = sign("tam-duong", PayloadKind.SHIPPING, "VTP2611230427", OTHER_KEY)
    with pytest.raises(PayloadError, match="another site: tam-duong") as wrong_site:
        verify(other_site, KEY, site="sin-ho")
    assert wrong_site.value.code == "wrong_site"
    with pytest.raises(PayloadError, match="altered or forged"):
        verify(other_site, KEY)  # not told the site: the signature is what refuses it
    relabelled = other_site.replace("TAM-DUONG", "SIN-HO")  # claims to be ours
    with pytest.raises(PayloadError, match="altered or forged"):
        verify(relabelled, KEY, site="sin-ho")


@FAST
@given(st.text(max_size=80))
def test_random_text_is_refused_cleanly(text: str) -> None:
    with pytest.raises(PayloadError):
        verify(text, KEY)


@FAST
@given(st.integers(0, 200), st.sampled_from(BASE32 + ":-.E19"), st.booleans())
def test_mutations_are_refused(pos: int, char: str, insert: bool) -> None:
    payload = sign("sin-ho", PayloadKind.MANIFEST, BATCH_ID, KEY)
    pos %= len(payload)
    if insert:
        mutated = payload[:pos] + char + payload[pos:]
    else:
        mutated = payload[:pos] + char + payload[pos + 1 :]
    if mutated == payload:
        return
    with pytest.raises(PayloadError):
        verify(mutated, KEY)


def test_signing_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError, match="tracking code"):
        sign("sin-ho", PayloadKind.SHIPPING, "vtp-lower", KEY)
    with pytest.raises(ValueError, match="tracking code"):
        sign("sin-ho", PayloadKind.SHIPPING, "A:B:C", KEY)
    with pytest.raises(ValueError, match="not a UUID"):
        sign("sin-ho", PayloadKind.LOT, "lot-42", KEY)
    with pytest.raises(ValueError, match="site id"):
        sign("Sin Ho", PayloadKind.LOT, LOT_ID, KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        PayloadSigner("sin-ho", b"short")


def test_site_key_is_created_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "var" / "site.key"
    key = ensure_site_key(path)
    assert len(key) == KEY_BYTES and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_site_key(path) == key == load_site_key(path)
    assert ensure_site_key(tmp_path / "other.key") != key  # random, not derived
    assert [p.name for p in path.parent.iterdir()] == ["site.key"]  # no temporary left


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def first_use() -> None:
        barrier.wait()
        keys.append(ensure_site_key(path))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(keys) == 8 and len(set(keys)) == 1 and path.read_bytes() == keys[0]


def test_verification_never_invents_a_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_site_key(tmp_path / "missing.key")
    assert not (tmp_path / "missing.key").exists()
    short = tmp_path / "short.key"
    short.write_bytes(b"0123")
    os.chmod(short, 0o600)
    with pytest.raises(KeyFileError, match="4 bytes"):
        load_site_key(short)
    with pytest.raises(KeyFileError, match="4 bytes"):
        ensure_site_key(short)  # an existing bad key is an error, never replaced
    assert short.read_bytes() == b"0123"
