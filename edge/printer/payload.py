"""Signed QR payloads: a label can be checked as issued by a real station.

Format, version 1 (ASCII, five fields separated by ``:``)::

    E1:<SITE>:<K>:<REF>:<MAC>
    E1:SIN-HO:L:AGNLHQT4DZ6THGQLF4PFZHMKCE:PTGIP2NNH3IJSS72
    E1:SIN-HO:S:VTP2611230427:E3ARXT7ODKGPODFK

(site ``sin-ho``, key bytes 0..31, lot ``019ab3c2-7c1e-7d33-9a0b-2f1e5c9d8a11`` and parcel
``VTP2611230427``: the known answers of tests/test_label_payload.py)

``E1``
    "edge", payload version 1. Another ``E<n>`` is refused as an unknown version.
``SITE``
    The site id in upper case. Site ids are ``[a-z0-9][a-z0-9-]*`` (see ``site.id``), so
    upper-casing is lossless; :func:`verify` gives it back in lower case.
``K``
    What the label stands for: ``L`` lot tag, ``S`` shipping label (parcel), ``M`` courier
    manifest (handover batch).
``REF``
    ``L`` and ``M``: the record's UUID (UUIDv7) as RFC 4648 base32 of its 16 bytes, without
    padding: 26 characters instead of 36. ``S``: the parcel's tracking code exactly as
    printed (``A-Z 0-9 . -``, 4 to 30 characters).
``MAC``
    HMAC-SHA256, keyed with the site's secret key, over the ASCII text before the last
    ``:`` (``E1:SITE:K:REF``), truncated to its first 10 bytes (80 bits) and written as
    base32 (16 characters). 80 bits: guessing a valid signature for a made-up payload takes
    2^79 tries on average, and every try needs the station or central to answer.

Every character is in the QR alphanumeric set (``0-9 A-Z $%*+-./:`` and space), so the QR
encoder uses alphanumeric mode (5.5 bits a character): a lot payload of a 6-letter site is
55 characters, a version 3 symbol (29 x 29 modules) at error correction M, which prints
261 dots (33 mm) wide at 9 dots a module.

Keys: one secret per site, 32 random bytes in a file (``[site] key_file``, default
``var/site.key``). :func:`ensure_site_key` creates it on first use (mode 0600, written
to a temporary file, fsynced and linked into place, so two processes starting at once end
up with the same key); :func:`load_site_key` only reads (verification never invents a key).
Central holds a copy of each site's key to check labels; the key never appears on a label.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import unicodedata
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

log = logging.getLogger(__name__)

VERSION = "E1"
SEP = ":"
KEY_BYTES = 32
MAC_BYTES = 10  # 80 bits, base32 = 16 characters
SITE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
TRACKING_RE = re.compile(r"[A-Z0-9][A-Z0-9.-]{3,29}")
_UUID_B32_RE = re.compile(r"[A-Z2-7]{26}")
_MAC_RE = re.compile(r"[A-Z2-7]{16}")
_VERSION_RE = re.compile(r"E[0-9]+")


class PayloadKind(StrEnum):
    LOT = "L"
    SHIPPING = "S"
    MANIFEST = "M"


_KIND_NAMES = {
    PayloadKind.LOT: "lot",
    PayloadKind.SHIPPING: "shipping label",
    PayloadKind.MANIFEST: "courier manifest",
}


class PayloadError(ValueError):
    """A payload that is not a genuine label of this site. ``code`` is one of ``malformed``,
    ``unknown_version``, ``wrong_site``, ``bad_signature``; the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class KeyFileError(Exception):
    """The site key file is missing, unreadable or not 32 bytes."""


@dataclass(frozen=True)
class VerifiedPayload:
    version: int
    site: str  # lower case, as in site.id
    kind: PayloadKind
    ref: str  # a UUID string (lot, manifest) or a tracking code (shipping)

    def describe(self) -> str:
        name = _KIND_NAMES[self.kind]
        what = f"tracking code {self.ref}" if self.kind is PayloadKind.SHIPPING else self.ref
        return f"{name} {what}, issued by site {self.site}"


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _mac(key: bytes, signed: str) -> str:
    if len(key) != KEY_BYTES:
        raise ValueError(f"a site key is {KEY_BYTES} bytes, got {len(key)}")
    return _b32(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES])


def encode_ref(kind: PayloadKind, ref: str | uuid.UUID) -> str:
    """The REF field: base32 of a UUID's 16 bytes, or a tracking code unchanged."""
    if kind is PayloadKind.SHIPPING:
        code = str(ref)
        if not TRACKING_RE.fullmatch(code):
            raise ValueError(
                f"tracking code {code!r}: 4 to 30 characters of A-Z, 0-9, '.' and '-', "
                "starting with a letter or digit"
            )
        return code
    try:
        value = ref if isinstance(ref, uuid.UUID) else uuid.UUID(str(ref))
    except ValueError:
        raise ValueError(f"{_KIND_NAMES[kind]} id {ref!r} is not a UUID") from None
    return _b32(value.bytes)


def sign(site: str, kind: PayloadKind, ref: str | uuid.UUID, key: bytes) -> str:
    """The signed payload for one label."""
    if not SITE_RE.fullmatch(site):
        raise ValueError(f"site id {site!r}: lower-case letters, digits and '-'")
    signed = SEP.join((VERSION, site.upper(), kind.value, encode_ref(kind, ref)))
    return f"{signed}{SEP}{_mac(key, signed)}"


@dataclass(frozen=True)
class PayloadSigner:
    """A site's id and key, for the layouts that print a QR code."""

    site: str
    key: bytes

    def __post_init__(self) -> None:
        if not SITE_RE.fullmatch(self.site):
            raise ValueError(f"site id {self.site!r}: lower-case letters, digits and '-'")
        if len(self.key) != KEY_BYTES:
            raise ValueError(f"a site key is {KEY_BYTES} bytes, got {len(self.key)}")

    def sign(self, kind: PayloadKind, ref: str | uuid.UUID) -> str:
        return sign(self.site, kind, ref, self.key)


def _decode_ref(kind: PayloadKind, text: str) -> str:
    if kind is PayloadKind.SHIPPING:
        if not TRACKING_RE.fullmatch(text):
            raise PayloadError("malformed", f"malformed: {text!r} is not a tracking code")
        return text
    if not _UUID_B32_RE.fullmatch(text):
        raise PayloadError("malformed", f"malformed: {text!r} is not a base32 record id")
    return str(uuid.UUID(bytes=base64.b32decode(text + "======")))


def _not_ascii(payload: str) -> PayloadError | None:
    """The refusal of a payload with a character outside ASCII (every genuine one is ASCII;
    a look-alike such as the Kelvin sign U+212A would otherwise pass a case-folded check)."""
    for position, char in enumerate(payload, start=1):
        if not char.isascii():
            name = unicodedata.name(char, "")
            what = f"U+{ord(char):04X}" + (f" ({name})" if name else "")
            return PayloadError(
                "malformed",
                f"malformed: character {what} at position {position} is not ASCII "
                "(a label payload holds only A-Z, 0-9, '.', '-' and ':')",
            )
    return None


def verify(payload: str, key: bytes, *, site: str | None = None) -> VerifiedPayload:
    """Check a scanned payload against the site's key. With ``site``, a payload of another
    site is refused as such (without it, its signature simply does not match this key).
    Raises :class:`PayloadError` saying why a payload is refused."""
    refusal = _not_ascii(payload)
    if refusal is not None:
        raise refusal
    fields = payload.split(SEP)
    version = fields[0]
    if not _VERSION_RE.fullmatch(version):
        raise PayloadError(
            "malformed", f"malformed: not a station label payload (it should start {VERSION}:)"
        )
    if version != VERSION:
        raise PayloadError(
            "unknown_version", f"unknown version {version} (this station reads {VERSION})"
        )
    if len(fields) != 5:
        raise PayloadError("malformed", f"malformed: {len(fields)} fields, expected 5")
    _, site_field, kind_field, ref_field, mac_field = fields
    if not SITE_RE.fullmatch(site_field.lower()) or site_field != site_field.upper():
        raise PayloadError("malformed", f"malformed: {site_field!r} is not a site id")
    try:
        kind = PayloadKind(kind_field)
    except ValueError:
        known = ", ".join(f"{k.value} ({_KIND_NAMES[k]})" for k in PayloadKind)
        raise PayloadError(
            "malformed", f"malformed: unknown kind {kind_field!r} (known: {known})"
        ) from None
    ref = _decode_ref(kind, ref_field)
    if not _MAC_RE.fullmatch(mac_field):
        raise PayloadError("malformed", "malformed: the signature is not 16 base32 characters")
    issued_by = site_field.lower()
    if site is not None and issued_by != site:
        raise PayloadError(
            "wrong_site", f"issued for another site: {issued_by}, this station is {site}"
        )
    expected = _mac(key, payload[: payload.rindex(SEP)])
    if not hmac.compare_digest(expected, mac_field):
        raise PayloadError("bad_signature", "altered or forged: signature does not match")
    return VerifiedPayload(version=1, site=issued_by, kind=kind, ref=ref)


def load_site_key(path: Path) -> bytes:
    """Read an existing site key (verification: a missing key is an error, never made up)."""
    try:
        key = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"site key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read site key file {path}: {exc.strerror}") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(
            f"site key file {path} holds {len(key)} bytes, expected {KEY_BYTES} random bytes"
        )
    return key


def ensure_site_key(path: Path) -> bytes:
    """The site key, created (32 random bytes, mode 0600) if the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        _create_key(path)
    key = load_site_key(path)
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning("site key file %s is readable by others (mode %o); chmod 600 it", path, mode)
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the key meanwhile: keep it
            log.info("created site key file %s", path)
        except FileExistsError:
            pass
    finally:
        Path(tmp).unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
