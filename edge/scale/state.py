"""What the station knows about its scale at one moment (an immutable snapshot)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ScaleStatus(StrEnum):
    STABLE = "stable"
    UNSTABLE = "unstable"
    OVERLOAD = "overload"
    OFFLINE = "offline"


@dataclass(frozen=True)
class ScaleState:
    status: ScaleStatus
    weight_g: int | None
    """Last weight in grams; None when offline or overloaded."""
    net: bool
    updated_at: float | None
    """``time.monotonic()`` (the reader's clock) of the last valid frame."""
    port: str
    error: str | None
    """Why the scale is offline, in plain words; None otherwise."""
    recent_frames: tuple[str, ...]
    """The last lines seen on the port, valid or not, oldest first (non-printable bytes
    escaped as ``\\xNN``), for error reports."""
    frame: str | None = None
    """The valid frame that gave ``status``/``weight_g``; None when offline."""
    weighing: int = 0
    """Counts stable weighings: grows each time the scale settles on a weight (entering
    stable, or a different stable weight). Two lots from one weighing are a double tap."""
