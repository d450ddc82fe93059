"""Serial weighing scales: the "ST,GS" frame parser, the reader thread, a simulator.

Modules: :mod:`~edge.scale.stgs` (pure parser), :mod:`~edge.scale.state` (snapshot),
:mod:`~edge.scale.reader` (supervised reader), :mod:`~edge.scale.simulator` (pty scale),
:mod:`~edge.scale.cli` (``edge scale ...``).
"""

from edge.scale.state import ScaleState, ScaleStatus
from edge.scale.stgs import Reading, StgsParser, encode_frame, parse_frame

__all__ = ["Reading", "ScaleState", "ScaleStatus", "StgsParser", "encode_frame", "parse_frame"]
