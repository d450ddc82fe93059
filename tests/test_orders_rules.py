"""The packing rules as pure functions (issue 13, docs/packing.md): the check-weigh
verdict and its numbers, coverage of open orders oldest first, the low-numbers warning."""

from __future__ import annotations

import pytest

from edge.orders.checkweigh import PackLine, check
from edge.orders.stock import Key, Stock, cover, pick_lines
from edge.orders.tracking import low, numbers_left
from edge.storage.orders import Line, Order


def test_expected_weight_and_tolerance_per_product_or_by_default() -> None:
    tea = PackLine(quantity=2, pack_net_g=500, pack_tare_g=40, pack_tolerance_g=20)
    assert (check([tea], 1080).expected_g, check([tea], 1080).tolerance_g) == (1080, 40)
    default = PackLine(2, 500, 40)  # 3 % of 1,080 g = 32.4 g: 32 g
    assert check([default], 1080).tolerance_g == 32
    assert check([PackLine(1, 200, 10)], 210).tolerance_g == 20  # 6.3 g: at least 20 g
    two = check([tea, PackLine(1, 250, 20)], 1350)  # 40 g + max(20, 8) g
    assert (two.expected_g, two.tolerance_g, two.ok) == (1350, 60, True)


@pytest.mark.parametrize(
    ("grams", "code", "vi", "en"),
    [
        (1040, None, "Đạt: cân được 1,040 kg", "OK: weighed 1.040 kg"),
        (1120, None, "Đạt: cân được 1,120 kg", "OK: weighed 1.120 kg"),
        (1039, "weight_too_light", "Nhẹ hơn 41 g: cân được 1,039 kg, cần 1,080 kg ± 0,040 kg",
         "Too light by 41 g: weighed 1.039 kg, expected 1.080 kg ± 0.040 kg"),
        (1121, "weight_too_heavy", "Nặng hơn 41 g: cân được 1,121 kg, cần 1,080 kg ± 0,040 kg",
         "Too heavy by 41 g: weighed 1.121 kg, expected 1.080 kg ± 0.040 kg"),
    ],
)  # fmt: skip
def test_the_verdict_says_by_how_much(grams: int, code: str | None, vi: str, en: str) -> None:
    verdict = check([PackLine(2, 500, 40, 20)], grams)
    assert verdict.code == code
    assert verdict.messages()[0].startswith(vi) and verdict.messages()[1].startswith(en)


def test_lighter_than_the_goods_alone_is_too_light_even_within_the_tolerance() -> None:
    verdict = check([PackLine(2, 500, 5, 20)], 995)  # expected 1,010 ± 40, goods 1,000 g
    assert verdict.below_goods and not verdict.ok and verdict.code == "weight_too_light"
    assert check([PackLine(2, 500, 5, 20)], 1000).ok


def _order(n: int, grams: int, grade: str | None = "A") -> Order:
    line = Line(1, "SKU", "Chè", None, "Chè Shan tuyết", "che shan tuyet", grade, grams // 500,
                500, 40)  # fmt: skip
    return Order(f"o{n}", 1, "open", "tiktok", "J&T Express", None, "Hằng", "0987654321",
                 "Hà Nội", "", "", "Số 1", "cod", 0, 0, None, None, None,
                 f"2026-12-06T10:0{n}:00.000Z", (line,))  # fmt: skip


def test_orders_are_covered_oldest_first_and_an_uncovered_one_takes_nothing() -> None:
    stock: dict[Key, Stock] = {("che shan tuyet", "A"): Stock("Chè Shan tuyết", "A", 2000)}
    orders = [_order(1, 1500), _order(2, 1000), _order(3, 500), _order(4, 500, None)]
    coverage = cover(orders, stock)
    assert coverage.covered == {"o1": True, "o2": False, "o3": True, "o4": False}
    assert coverage.short == [
        {"order_id": "o2", "product": "Chè Shan tuyết", "grade": "A", "missing_g": 500},
        {"order_id": "o4", "product": "Chè Shan tuyết", "grade": None, "missing_g": 500},
    ]
    assert pick_lines(orders) == [
        {"product": "Chè Shan tuyết", "grade": None, "packs": 1, "net_g": 500},
        {"product": "Chè Shan tuyết", "grade": "A", "packs": 6, "net_g": 3000},
    ]


def test_numbers_are_low_under_50_or_under_a_tenth_of_the_blocks() -> None:
    assert low(49, 100) and not low(50, 100)
    assert low(99, 1000) and not low(100, 1000)
    blocks = [{"carrier": "J&T Express", "left": 400, "size": 1000},
              {"carrier": "j&t  express", "left": 100, "size": 1000}]  # fmt: skip
    assert numbers_left(blocks, ["GHN", "J&T EXPRESS"]) == [
        {"carrier": "GHN", "left": 0, "low": True},
        {"carrier": "J&T Express", "left": 500, "low": False},
    ]
