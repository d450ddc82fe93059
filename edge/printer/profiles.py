"""Printer profiles: one TOML file per printer model in ``edge/defaults/printers/``.

A profile says what the station cannot ask the printer: the paper and how many dots it
prints across, whether it has a cutter, whether it answers real-time status queries, which
python-escpos capability profile fits it, and the numbers of its Vietnamese code pages.
Example::

    title = "Epson TM-T20II (80 mm)"
    paper_mm = 80
    paper_dots = 576            # 384 for 58 mm paper, 800 for 100 mm (100 x 150 mm labels)
    cutter = "full"             # "none", "partial" or "full"
    status = true               # answers DLE EOT: asked before every job
    escpos_profile = "TM-T20II" # a python-escpos capability profile name
    native_text = "none"        # "tcvn3" or "cp1258" once `edge printer selftest` showed
                                # which one this printer prints right

    [codepages]                 # ESC t numbers; leave out what the printer does not have
    tcvn3 = 30
    tcvn3_capitals = 31
    cp1258 = 52

A profile is found by name (``generic-58mm`` -> ``<profiles_dir>/generic-58mm.toml``) or
by a path to a ``.toml`` file; ``profiles_dir`` defaults to the profiles shipped inside
the package (``edge/defaults/printers``, package data). Unknown keys are refused; errors
name the file, the key and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from escpos.capabilities import get_profile
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.defaults import PRINTER_PROFILES
from edge.tomlfile import named_file, read_toml, unknown_key

PACKAGE_PROFILES = PRINTER_PROFILES
"""``edge/defaults/printers``: the printer profiles shipped inside the package."""

DEFAULT_PROFILE = "generic-58mm"
_DOTS = {58: 384, 80: 576, 100: 800}
_PAGE_NAMES = {"tcvn3": "TCVN-3-1", "tcvn3_capitals": "TCVN-3-2", "cp1258": "CP1258"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodePages(_Strict):
    tcvn3: int | None = Field(None, ge=0, le=255, description="ESC t number of TCVN-3.")
    tcvn3_capitals: int | None = Field(
        None, ge=0, le=255, description="ESC t number of TCVN-3 capitals (the second page)."
    )
    cp1258: int | None = Field(None, ge=0, le=255, description="ESC t number of CP1258.")


class PrinterProfile(_Strict):
    title: str = Field(min_length=1, description="The printer models this profile is for.")
    paper_mm: Literal[58, 80, 100] = Field(
        description="Paper width: 58 or 80 mm rolls, 100 mm = 100 x 150 mm label stock."
    )
    paper_dots: Literal[384, 576, 800] = Field(description="Dots printed across (203 dpi).")
    cutter: Literal["none", "partial", "full"] = Field("full", description="Auto-cutter.")
    status: bool = Field(True, description="Answers DLE EOT real-time status queries.")
    escpos_profile: str = Field("default", description="python-escpos capability profile.")
    native_text: Literal["none", "tcvn3", "cp1258"] = Field(
        "none", description="Native code-page text this printer prints right (selftest)."
    )
    codepages: CodePages = CodePages()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if _DOTS[self.paper_mm] != self.paper_dots:
            raise ValueError(
                f"paper_dots: {self.paper_mm} mm paper is {_DOTS[self.paper_mm]} dots wide "
                f"at 203 dpi, not {self.paper_dots}"
            )
        try:
            escpos_pages: dict[str, str] = get_profile(self.escpos_profile).profile_data[
                "codePages"
            ]
        except KeyError:
            raise ValueError(
                f"escpos_profile: {self.escpos_profile!r} is not a python-escpos profile "
                "(e.g. 'default', 'TM-T20II', 'POS-5890')"
            ) from None
        pages = self.codepages
        for key, expected in _PAGE_NAMES.items():
            number = getattr(pages, key)
            listed = escpos_pages.get(str(number)) if number is not None else None
            if listed not in (None, expected, "Unknown"):
                raise ValueError(
                    f"codepages.{key}: python-escpos profile {self.escpos_profile!r} says page "
                    f"{number} is {listed}, not {expected}"
                )
        if (pages.tcvn3 is None) != (pages.tcvn3_capitals is None):
            raise ValueError("codepages: give both tcvn3 and tcvn3_capitals, or neither")
        if self.native_text == "tcvn3" and pages.tcvn3 is None:
            raise ValueError("native_text: 'tcvn3' needs codepages.tcvn3 and tcvn3_capitals")
        if self.native_text == "cp1258" and pages.cp1258 is None:
            raise ValueError("native_text: 'cp1258' needs codepages.cp1258")
        return self


class PrinterProfileError(ValueError):
    """A profile that cannot be used; ``problems`` are (key, reason) pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("; ".join(f"{file}: {key}: {reason}" for key, reason in problems))


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if err["type"] == "extra_forbidden":
            model: type[BaseModel] = CodePages if loc[:-1] == ["codepages"] else PrinterProfile
            known = list(model.model_fields)
            problems.append((".".join(loc), unknown_key(loc[-1], known)))
        elif err["type"] == "missing":
            problems.append((".".join(loc), "required key is missing"))
        elif not loc and ": " in str(err.get("ctx", {}).get("error", "")):
            key, _, reason = str(err["ctx"]["error"]).partition(": ")
            problems.append((key, reason))
        else:
            problems.append(
                (".".join(loc) or "(top level)", f"{err['msg']} (got {err.get('input')!r})")
            )
    return problems


def default_profiles_dir() -> Path | None:
    """The package's own ``edge/defaults/printers`` (None if an install lost it)."""
    return PACKAGE_PROFILES if PACKAGE_PROFILES.is_dir() else None


def profile_path(ref: str, profiles_dir: Path | None = None) -> Path:
    """Where profile ``ref`` (a name or a path) lives; PrinterProfileError if not found."""
    folder = profiles_dir or default_profiles_dir()
    return named_file(ref, folder, PACKAGE_PROFILES, "printer profile", PrinterProfileError)


def parse_profile(data: dict[str, Any], file: str = "<profile>") -> PrinterProfile:
    try:
        return PrinterProfile.model_validate(data)
    except ValidationError as exc:
        raise PrinterProfileError(file, _describe(exc)) from None


def load_profile(ref: str | None = None, profiles_dir: Path | None = None) -> PrinterProfile:
    """Read and validate profile ``ref`` (default: generic-58mm)."""
    path = profile_path(ref or DEFAULT_PROFILE, profiles_dir)
    data = read_toml(path, PrinterProfileError)
    return parse_profile(data, str(path))


FALLBACK = PrinterProfile(title="Generic ESC/POS, 58 mm", paper_mm=58, paper_dots=384)
"""Used when no profile is named and no profiles folder exists (an installation that lost
its package data)."""


def find_profile(ref: str | None, profiles_dir: Path | None = None) -> PrinterProfile:
    """Profile ``ref``; without one, generic-58mm from the folder, else :data:`FALLBACK`."""
    if ref is None:
        folder = profiles_dir or default_profiles_dir()
        if folder is None or not (folder / f"{DEFAULT_PROFILE}.toml").is_file():
            return FALLBACK
    return load_profile(ref, profiles_dir)


def with_native_text(profile: PrinterProfile, native_text: str | None) -> PrinterProfile:
    """``profile`` with ``native_text`` overridden (validated against its code pages)."""
    if native_text is None or native_text == profile.native_text:
        return profile
    return parse_profile({**profile.model_dump(), "native_text": native_text}, profile.title)
