"""Is this the lot's produce at all? A photo of bananas on a potato lot is declined,
saying what was seen, instead of being graded as potatoes.

The check uses what the rules grader already measures of each item: its colour class
(from the median hue, saturation and value of its sound skin) and its elongation
(length / width). A product's rules file may describe its produce in ``[looks]``
(:class:`~edge.camera.grading.rules.Looks`); an item fits when both its colour class
and its elongation are allowed, and a photo where fewer than half the whole items fit
is declined with ``not_the_product``. The other products' ``[looks]`` name what the
produce looks like instead ("như chuối"). Pure: a measurement in, a verdict out.

A calibrated model may carry a learnt product check as well (this product against
the other products' calibration photos, ``Model.product_probability``): grade.py asks
it first and declines with :func:`failed_check`, naming the product the photo looks
like when the check was trained against one product only, else the one whose
``[looks]`` most of the items fit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from statistics import median

from edge.camera.grading.quality import Declined, Reason
from edge.camera.grading.results import Item, TrayMeasurement
from edge.camera.grading.rules import Looks

MIN_FIT_SHARE = 0.5  # at least this share of the items must look like the product
LONG = 2.5  # elongation from which produce reads as long (bananas, cucumbers) ...
ROUND = 1.4  # ... and up to which as round (limes, most potatoes)

_COLOUR = {
    "yellow": ("vàng", "yellow"),
    "green": ("xanh", "green"),
    "brown": ("nâu", "brown"),
    "red": ("đỏ", "red"),
    "pale": ("nhạt", "pale"),
    "other": ("lạ", "odd-coloured"),
}


def fits(item: Item, looks: Looks) -> bool:
    """The item has one of the product's colours and its shape."""
    return (
        item.colour_class in looks.colours
        and looks.elongation_min <= item.elongation <= looks.elongation_max
    )


def _shape(elongation: float) -> tuple[str, str]:
    if elongation >= LONG:
        return "dài", "long"
    if elongation <= ROUND:
        return "tròn", "round"
    return "thuôn", "oval"


def check_looks(
    m: TrayMeasurement, looks: Looks | None, lookalikes: Sequence[Looks] = ()
) -> Declined | None:
    """``None`` when the photo's produce may be the product (or the product's rules
    say nothing of its looks); else a :class:`Declined` naming what was seen."""
    if looks is None:
        return None
    items = [i for i in m.items if not i.at_edge] or list(m.items)  # cut items: odd shapes
    if not items:
        return None
    fitting = sum(1 for i in items if fits(i, looks))
    share = fitting / len(items)
    if share >= MIN_FIT_SHARE:
        return None
    odd = [i for i in items if not fits(i, looks)]
    colour = Counter(i.colour_class for i in odd).most_common(1)[0][0]
    elongation = float(median(i.elongation for i in odd))
    like = _lookalike(odd, looks, lookalikes)
    sv, se = _shape(elongation)
    cv, ce = _COLOUR.get(colour, (colour, colour))
    noun, noun_en = (like.noun, like.noun_en) if like else ("quả/củ", "produce")
    seen_vi = f"{noun} {sv} màu {cv}" + (f" như {like.name}" if like else "")
    seen_en = f"{se} {ce} {noun_en}" + (f", like {like.name_en}" if like else "")
    return Declined(
        Reason.NOT_THE_PRODUCT,
        f"Ảnh không giống {looks.name} (thấy {seen_vi}). Kiểm tra lô và chụp lại.",
        f"The photo does not look like {looks.name_en} (saw {seen_en}). Check the lot and retake.",
        {"fit_share": share, "items": float(len(items)), "elongation_median": elongation},
    )


def failed_check(
    looks: Looks | None, like: Looks | None, probability: float, threshold: float
) -> Declined:
    """The refusal of a photo the model's product check did not take for the product
    (``probability`` below ``threshold``); ``like``: what it looks like instead."""
    name, name_en = (looks.name, looks.name_en) if looks else ("sản phẩm của lô", "the product")
    seen_vi = f" (trông giống {like.name})" if like else ""
    seen_en = f" (it looks like {like.name_en})" if like else ""
    return Declined(
        Reason.NOT_THE_PRODUCT,
        f"Ảnh không giống {name}{seen_vi}. Kiểm tra lô và chụp lại.",
        f"The photo does not look like {name_en}{seen_en}. Check the lot and retake.",
        {"product_probability": probability, "threshold": threshold},
    )


def looks_like(m: TrayMeasurement, looks: Looks | None, others: Sequence[Looks]) -> Looks | None:
    """The other product that most of the photo's whole items fit, if any does."""
    items = [i for i in m.items if not i.at_edge] or list(m.items)
    return _lookalike(items, looks, others) if items else None


def _lookalike(odd: Sequence[Item], looks: Looks | None, others: Sequence[Looks]) -> Looks | None:
    """The other product most of the odd items look like, if any."""
    best: tuple[int, Looks] | None = None
    for other in others:
        if looks is not None and other.name == looks.name:
            continue
        n = sum(1 for i in odd if fits(i, other))
        if n / len(odd) >= MIN_FIT_SHARE and (best is None or n > best[0]):
            best = (n, other)
    return best[1] if best else None
