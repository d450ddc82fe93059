"""Scale profiles: one TOML file per indicator family in ``edge/defaults/scales/``.

A profile says what the station cannot learn from the port (a USB adapter names the
adapter, not the scale): the protocol family, the line settings, how often to poll a
scale that only answers commands, the capacity and division, the stability window, and
whether the scale falls silent while the weight is unchanged. Example::

    title = "Mettler Toledo Ariva / Viva (8217 protocol)"
    protocol = "toledo-8217"
    capacity_g = 15000
    division_g = 5
    silent_when_unchanged = false

    [line]              # optional: the family's usual settings otherwise
    baudrate = 9600
    bytesize = 7
    parity = "E"
    stopbits = 1

    [poll]              # polled families only
    rate_hz = 5
    command = "W"       # optional: the family's poll command otherwise

    [stability]
    readings = 2        # consecutive stable readings ...
    tolerance_g = 5     # ... within this many grams of the newest ...
    settle_s = 0.3      # ... for this long

Finding profiles: ``[scale] profile`` is a name (``xk3190-w``, looked up as
``<profiles_dir>/xk3190-w.toml``) or a path to a ``.toml`` file. ``profiles_dir``
defaults to the profiles shipped inside the package (``edge/defaults/scales``, package
data: a checkout, an editable and a plain install all have them); a station with its own
profiles sets ``[scale] profiles_dir`` (e.g. ``/etc/edge/scales``, a copy of that
folder). Without a ``profile`` key, the family's own profile ``<protocol>.toml`` is
used when the folder has one, and the protocol's built-in defaults otherwise.

Errors name the file, the key and the reason, like the station file's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge.defaults import SCALE_PROFILES
from edge.scale.protocols import LineSettings, ProtocolSpec, get_protocol
from edge.scale.protocols.base import GRAMS_PER_UNIT
from edge.scale.stability import StabilityWindow
from edge.tomlfile import named_file, read_toml, unknown_key

PACKAGE_PROFILES = SCALE_PROFILES
"""``edge/defaults/scales``: the scale profiles shipped inside the package."""

OVERLOAD_DIVISIONS = 9
"""For a family whose frames cannot say "overload", a weight above capacity + 9
divisions (where an indicator blanks its display) is overload."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineProfile(_Strict):
    baudrate: int = Field(9600, gt=0, description="Line speed.")
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1


class PollProfile(_Strict):
    rate_hz: float = Field(5.0, gt=0, le=50, description="Poll commands sent per second.")
    command: str | None = Field(
        None, min_length=1, description="Poll command (TOML escapes: \\r, \\n, \\u0002)."
    )


class StabilityProfile(_Strict):
    readings: int = Field(1, ge=1, le=50, description="Consecutive stable readings required.")
    tolerance_g: int = Field(0, ge=0, description="Each within this many grams of the newest.")
    settle_s: float = Field(0.0, ge=0, le=10, description="For at least this long.")


class ScaleProfile(_Strict):
    title: str = Field(min_length=1, description="The indicator models this profile is for.")
    protocol: str = Field(description="Frame family (edge.scale.protocols).")
    capacity_g: int = Field(gt=0, description="Maximum capacity (Max) in grams.")
    division_g: int = Field(gt=0, description="Display division (d) in grams.")
    silent_when_unchanged: bool = Field(
        False, description="The scale sends nothing while the weight is unchanged."
    )
    stale_after_s: float = Field(2.0, gt=0, le=60, description="No answer this long: offline.")
    unit: str | None = Field(
        None,
        description="The unit the indicator shows (kg, g, lb...), for frames that carry "
        "none until one does (SBI while unstable); default: no guess.",
    )
    line: LineProfile | None = None
    poll: PollProfile | None = None
    stability: StabilityProfile = StabilityProfile()

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        get_protocol(value)  # ValueError naming the known families
        return value

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str | None) -> str | None:
        return known_unit(value)

    def spec(self) -> ProtocolSpec:
        return get_protocol(self.protocol)


def known_unit(value: str | None) -> str | None:
    """``value`` if weights can be converted from it; ValueError naming the known units."""
    if value is not None and value not in GRAMS_PER_UNIT:
        raise ValueError(f"unknown unit {value!r}; known: {', '.join(GRAMS_PER_UNIT)}")
    return value


class ProfileError(ValueError):
    """A profile that cannot be used; ``problems`` are (key, reason) pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("; ".join(f"{file}: {key}: {reason}" for key, reason in problems))


_MODELS: dict[str, type[BaseModel]] = {
    "": ScaleProfile,
    "line": LineProfile,
    "poll": PollProfile,
    "stability": StabilityProfile,
}


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if err["type"] == "extra_forbidden":
            model = _MODELS.get(".".join(loc[:-1]), ScaleProfile)
            known = list(model.model_fields)
            reason = unknown_key(loc[-1], known)
        elif err["type"] == "missing":
            reason = "required key is missing"
        else:
            reason = f"{err['msg']} (got {err.get('input')!r})"
        problems.append((".".join(loc) or "(top level)", reason))
    return problems


def default_profiles_dir() -> Path | None:
    """The package's own ``edge/defaults/scales`` (None if an install lost it)."""
    return PACKAGE_PROFILES if PACKAGE_PROFILES.is_dir() else None


def is_path(ref: str) -> bool:
    return "/" in ref or ref.endswith(".toml")


def profile_path(ref: str, profiles_dir: Path | None = None) -> Path:
    """Where profile ``ref`` (a name or a path) lives; ProfileError if it cannot be found."""
    folder = profiles_dir or default_profiles_dir()
    return named_file(ref, folder, PACKAGE_PROFILES, "profile", ProfileError)


def parse_profile(data: dict[str, Any], file: str = "<profile>") -> ScaleProfile:
    try:
        profile = ScaleProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(file, _describe(exc)) from None
    spec = profile.spec()
    if profile.poll is not None and spec.mode != "poll":
        reason = f"protocol {spec.name!r} streams by itself; remove [poll]"
        raise ProfileError(file, [("poll", reason)])
    return profile


def load_profile(ref: str, profiles_dir: Path | None = None) -> ScaleProfile:
    """Read and validate profile ``ref`` (a name in ``profiles_dir`` or a path)."""
    path = profile_path(ref, profiles_dir)
    data = read_toml(path, ProfileError)
    return parse_profile(data, str(path))


def find_profile(
    profile: str | None, protocol: str | None, profiles_dir: Path | None
) -> tuple[ScaleProfile, Path] | None:
    """The profile a ``[scale]`` section means, and its file: ``profile`` if set, else the
    family's own ``<protocol>.toml`` when the folder has one, else None (the protocol's
    built-in defaults)."""
    if profile is None:
        folder = profiles_dir or default_profiles_dir()
        name = protocol or "stgs"
        if folder is None or not (folder / f"{name}.toml").is_file():
            return None
        profile = name
    path = profile_path(profile, profiles_dir)
    return load_profile(str(path)), path


def overload_limit(profile: ScaleProfile | None, spec: ProtocolSpec) -> int | None:
    """Max + 9 d, for a family whose frames cannot report overload; else None (the
    indicator's own flag decides, so a profile with the wrong capacity cannot refuse a
    weight the scale accepts)."""
    if profile is None or "overload" in spec.statuses:
        return None
    return profile.capacity_g + OVERLOAD_DIVISIONS * profile.division_g


@dataclass(frozen=True)
class DriverSettings:
    """Everything the reader needs, after profile and overrides are merged."""

    protocol: ProtocolSpec
    line: LineSettings
    window: StabilityWindow
    poll_interval_s: float | None
    """Seconds between poll commands; None for a streaming family."""
    poll_command: bytes | None
    silent_when_unchanged: bool
    stale_after_s: float
    overload_above_g: int | None
    profile: str | None
    """Where the settings came from (a profile file), for the page and logs."""
    unit: str | None = None
    """The unit the indicator shows, for frames without one (None: no guess)."""


def driver_settings(
    *,
    profile: str | None = None,
    profiles_dir: Path | None = None,
    protocol: str | None = None,
    line: dict[str, Any] | None = None,
    poll_rate_hz: float | None = None,
    stale_after_s: float | None = None,
    unit: str | None = None,
) -> DriverSettings:
    """Merge, highest first: the explicit overrides, the profile, the protocol's defaults.

    ``line`` holds the overridden line settings (keys of :class:`LineSettings`, None =
    not overridden). Raises ProfileError (a ValueError) for a bad profile and ValueError
    for a protocol that contradicts it.
    """
    found = find_profile(profile, protocol, profiles_dir)
    prof, path = found if found else (None, None)
    if prof is not None and protocol is not None and prof.protocol != protocol:
        raise ValueError(
            f"profile {profile!r} is for protocol {prof.protocol!r}, not {protocol!r}; "
            "remove one of them"
        )
    spec = get_protocol(prof.protocol if prof else (protocol or "stgs"))
    base = prof.line.model_dump() if prof and prof.line else spec.line.__dict__
    overrides = {k: v for k, v in (line or {}).items() if v is not None}
    merged = LineSettings(**{**base, **overrides})
    poll_interval = poll_command = None
    if spec.mode == "poll":
        rate = poll_rate_hz or (prof.poll.rate_hz if prof and prof.poll else PollProfile().rate_hz)
        poll_interval = 1.0 / rate
        text = prof.poll.command if prof and prof.poll else None
        poll_command = text.encode("latin-1") if text else spec.poll_command
        if poll_command is None:
            raise ValueError(f"protocol {spec.name!r} is polled but has no poll command")
    stab = prof.stability if prof else StabilityProfile()
    return DriverSettings(
        protocol=spec,
        line=merged,
        window=StabilityWindow(stab.readings, stab.tolerance_g, stab.settle_s),
        poll_interval_s=poll_interval,
        poll_command=poll_command,
        silent_when_unchanged=prof.silent_when_unchanged if prof else spec.sends_on_change_only,
        stale_after_s=stale_after_s or (prof.stale_after_s if prof else 2.0),
        overload_above_g=overload_limit(prof, spec),
        profile=str(path) if path else None,
        unit=known_unit(unit) or (prof.unit if prof else None),
    )
