"""Reading the station's TOML files (station, scale and printer profiles) with errors
that name the file, the key and the reason. Each caller passes its own error class,
built as ``error(file, [(key, reason), ...])``."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Problems = list[tuple[str, str]]


def known_zone(value: str) -> str:
    """``value`` when it names a time zone (a pydantic validator's check), else ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use e.g. 'Asia/Ho_Chi_Minh'") from None
    return value


ErrorFactory = Callable[[str, Problems], Exception]


def read_toml(path: Path, error: ErrorFactory) -> dict[str, Any]:
    """The parsed file; unreadable, non-UTF-8 or invalid TOML raises ``error``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(str(path), [("(file)", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise error(str(path), [("(file)", "not UTF-8 text; save it as UTF-8")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(str(path), [("(syntax)", f"not valid TOML: {exc}")]) from None


def did_you_mean(word: str, known: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known word, or ``""``."""
    guess = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean '{guess[0]}'?" if guess else ""


def unknown_key(key: str, known: list[str]) -> str:
    return f"unknown key{did_you_mean(key, known)} (known keys here: {', '.join(known)})"


def named_file(
    ref: str, folder: Path | None, missing_folder: Path, what: str, error: ErrorFactory
) -> Path:
    """``ref`` as a path (it has a '/' or ends in .toml) or as ``<folder>/<ref>.toml``."""
    if "/" in ref or ref.endswith(".toml"):
        return Path(ref)
    if folder is None:
        reason = f"no profiles folder: {missing_folder} is missing; set profiles_dir"
        raise error(ref, [("(file)", reason)])
    path = folder / f"{ref}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.toml"))
        reason = f"no such {what}{did_you_mean(ref, known)} (known: {', '.join(known)})"
        raise error(str(path), [("(file)", reason)])
    return path
