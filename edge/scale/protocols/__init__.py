"""Pure parsers and encoders for the serial scale frame families (bytes in, readings out)."""

from edge.scale.protocols.base import (
    Frame,
    FrameParser,
    LineParser,
    LineSettings,
    ProtocolSpec,
    Reading,
    SimState,
    Status,
    printable,
    to_grams,
)
from edge.scale.protocols.registry import PROTOCOLS, get_protocol, protocol_names

__all__ = [
    "PROTOCOLS",
    "Frame",
    "FrameParser",
    "LineParser",
    "LineSettings",
    "ProtocolSpec",
    "Reading",
    "SimState",
    "Status",
    "get_protocol",
    "printable",
    "protocol_names",
    "to_grams",
]
