"""What the station knows about its scale at one moment (an immutable snapshot)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from edge.faults import ScaleFault

TareSource = Literal["scale", "software"]


class ScaleStatus(StrEnum):
    STABLE = "stable"
    """The frame says stable (where the family has a flag) and the software window agrees."""
    SETTLING = "settling"
    """Nearly there: the frame says stable but the window is not yet satisfied, or (no
    flag) the readings are converging."""
    UNSTABLE = "unstable"
    OVERLOAD = "overload"
    UNDERLOAD = "underload"
    OFFLINE = "offline"


WEIGHING_STATUSES = frozenset({ScaleStatus.STABLE, ScaleStatus.SETTLING, ScaleStatus.UNSTABLE})
"""Statuses that carry a weight."""


@dataclass(frozen=True)
class ScaleState:
    status: ScaleStatus
    weight_g: int | None
    """Last weight in grams as shown (net when ``net``); None when offline, overloaded or
    underloaded."""
    net: bool
    updated_at: float | None
    """``time.monotonic()`` (the reader's clock) of the last valid frame."""
    port: str
    error: str | None
    """Why the scale is offline, in plain words with the raw error (for the log and the
    wire log; never shown to staff); None otherwise."""
    recent_frames: tuple[str, ...]
    """The last frames seen on the port, valid or not, oldest first (non-printable bytes
    escaped as ``\\xNN``), for error reports."""
    frame: str | None = None
    """The valid frame that gave ``status``/``weight_g``; None when offline."""
    weighing: int = 0
    """Counts stable weighings: grows each time the scale settles on a weight (entering
    stable, or a different stable weight). Two lots from one weighing are a double tap."""
    tare_g: int | None = None
    """The tare in grams: the scale's own (when its frames carry it) or the software tare."""
    tare_source: TareSource | None = None
    """``scale`` when the indicator reports a net weight, ``software`` when the station
    subtracts a tare it took itself, None for a gross weight."""
    protocol: str = "stgs"
    """The frame family the reader decodes."""
    fault: ScaleFault | None = None
    """Why the scale is offline, as a code staff are told about (edge.faults); None
    otherwise."""
