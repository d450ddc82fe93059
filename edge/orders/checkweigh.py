"""The check-weigh rule (pure): what a packed parcel should weigh, how far it may be off,
and the verdict on what the scale read, with the numbers staff are told.

Expected weight: for each line, quantity x (the pack's net goods + the pack's packaging
tare), summed over the order's lines. Tolerance: per line, quantity x the product's
``pack_tolerance_g`` when central set one, else the default: 3 % of the line's expected
weight (rounded half up to the gram), at least :data:`MIN_TOLERANCE_G`; summed over the
lines. A parcel within expected ± tolerance passes; outside it is too light or too heavy
by (measured - expected). A parcel weighing less than its goods alone (the packs' net,
without packaging) is too light whatever the tolerance, and no lead can pass it: goods
are missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edge.printer.kinds import format_weight

MIN_TOLERANCE_G = 20
DEFAULT_TOLERANCE_PERCENT = 3


@dataclass(frozen=True)
class PackLine:
    quantity: int
    pack_net_g: int
    pack_tare_g: int
    pack_tolerance_g: int | None = None  # the product's, per pack; None: the default rule

    @property
    def expected_g(self) -> int:
        return self.quantity * (self.pack_net_g + self.pack_tare_g)

    @property
    def tolerance_g(self) -> int:
        if self.pack_tolerance_g is not None:
            return self.quantity * self.pack_tolerance_g
        percent = (self.expected_g * DEFAULT_TOLERANCE_PERCENT + 50) // 100
        return max(MIN_TOLERANCE_G, percent)


@dataclass(frozen=True)
class Verdict:
    measured_g: int
    expected_g: int
    tolerance_g: int
    goods_g: int = 0  # the packs' net goods: a parcel never weighs less

    @property
    def below_goods(self) -> bool:
        return self.measured_g < self.goods_g

    @property
    def off_g(self) -> int:
        """measured - expected: negative when light."""
        return self.measured_g - self.expected_g

    @property
    def ok(self) -> bool:
        return abs(self.off_g) <= self.tolerance_g and not self.below_goods

    @property
    def code(self) -> str | None:
        """None when it passes, else ``weight_too_light`` or ``weight_too_heavy``."""
        if self.ok:
            return None
        return "weight_too_light" if self.off_g < 0 else "weight_too_heavy"

    def messages(self) -> tuple[str, str]:
        """(Vietnamese, English): by how much, measured, expected ± tolerance."""
        measured, expected = format_weight(self.measured_g), format_weight(self.expected_g)
        tolerance = format_weight(self.tolerance_g)
        numbers_vi = f"cân được {measured}, cần {expected} ± {tolerance}"
        numbers_en = f"weighed {_en(measured)}, expected {_en(expected)} ± {_en(tolerance)}"
        if self.ok:
            return f"Đạt: {numbers_vi}", f"OK: {numbers_en}"
        by = abs(self.off_g)
        if self.off_g < 0:
            return f"Nhẹ hơn {by} g: {numbers_vi}", f"Too light by {by} g: {numbers_en}"
        return f"Nặng hơn {by} g: {numbers_vi}", f"Too heavy by {by} g: {numbers_en}"


def _en(kg: str) -> str:
    """A Vietnamese-style weight ("1.080,5 kg") the English way ("1,080.5 kg")."""
    return kg.replace(".", "\0").replace(",", ".").replace("\0", ",")


def expected_g(lines: Iterable[PackLine]) -> int:
    return sum(line.expected_g for line in lines)


def tolerance_g(lines: Iterable[PackLine]) -> int:
    return sum(line.tolerance_g for line in lines)


def check(lines: Iterable[PackLine], measured_g: int) -> Verdict:
    """The verdict on a parcel of ``lines`` weighing ``measured_g``."""
    kept = list(lines)
    goods = sum(line.quantity * line.pack_net_g for line in kept)
    return Verdict(measured_g, expected_g(kept), tolerance_g(kept), goods)
