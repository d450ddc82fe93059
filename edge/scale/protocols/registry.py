"""All protocol families by name."""

from __future__ import annotations

from edge.scale.protocols import (
    adam,
    and_d,
    cas,
    dini,
    mt_sics,
    ohaus,
    sbi,
    stgs,
    toledo_8217,
    toledo_cont,
    xk3190,
)
from edge.scale.protocols.base import ProtocolSpec

_SPECS: tuple[ProtocolSpec, ...] = (
    toledo_8217.SPEC,
    toledo_cont.SPEC,
    mt_sics.SPEC,
    and_d.SPEC,
    cas.SPEC,
    stgs.SPEC,
    dini.SPEC,
    ohaus.SPEC,
    sbi.SPEC,
    xk3190.SPEC_EQ,
    xk3190.SPEC_STX,
    xk3190.SPEC_W,
    adam.SPEC,
)

PROTOCOLS: dict[str, ProtocolSpec] = {spec.name: spec for spec in _SPECS}


def protocol_names() -> list[str]:
    """The known family names, in registry order."""
    return list(PROTOCOLS)


def get_protocol(name: str) -> ProtocolSpec:
    """The family called ``name``; ValueError naming the known ones otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        known = ", ".join(PROTOCOLS)
        raise ValueError(f"unknown protocol {name!r}; known: {known}") from None
