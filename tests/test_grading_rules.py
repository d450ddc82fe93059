"""Grade rules: the shipped rules grade tray scenes of known defects and sizes and say
why; bad rules files are refused with FILE: KEY: REASON."""

from __future__ import annotations

import json
from math import exp
from pathlib import Path
from typing import Any

import pytest

from edge.camera.grading import (
    Declined,
    Graded,
    GradingError,
    Reason,
    assess,
    grade_photo,
    lot_summary,
)
from edge.camera.grading.rules import (
    RULE_KEYS,
    RulesError,
    decide,
    load_rules,
    parse_rules,
    products,
)
from edge.camera.scenes import ItemSpec, Spot, make_scene
from edge.config import GradingConfig

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only

RULES = GradingConfig().rules_dir


def bananas(spots: tuple[Spot, ...] = (), length: float = 170) -> tuple[ItemSpec, ...]:
    return tuple(ItemSpec("yellow", length, 36, (180, 40 + i * 50), 3, spots) for i in range(4))


def potatoes(spots: tuple[Spot, ...] = (), length: float = 70) -> tuple[ItemSpec, ...]:
    return tuple(
        ItemSpec(
            "brown", length, length * 0.75, (110 + (i % 3) * 80, 70 + (i // 3) * 90), 20 * i, spots
        )
        for i in range(6)
    )


def limes(width: float = 50) -> tuple[ItemSpec, ...]:
    return tuple(ItemSpec("green", width * 1.1, width, (110 + i * 70, 150), 0) for i in range(3))


MEDIUM_SPOTS = (Spot(-40, 3, 6), Spot(30, 0, 5))  # about 4 % of each banana
ROT = (Spot(-40, 3, 10), Spot(30, 0, 10), Spot(0, 0, 9))  # about 18 %

# name -> (product, items, grade, the key that failed the next better grade or None)
CASES: dict[str, tuple[str, tuple[ItemSpec, ...], str, str | None]] = {
    "banana-clean-long": ("banana", bananas(), "A", None),
    "banana-small-spots": ("banana", bananas((Spot(-40, 3, 3),)), "A", None),
    "banana-medium-spots": ("banana", bananas(MEDIUM_SPOTS), "B", "dark_share_mean"),
    "banana-short": ("banana", bananas(length=120), "B", "length_mm_min"),
    "banana-rotten": ("banana", bananas(ROT), "reject", "dark_share_mean"),
    "potato-clean": ("potato", potatoes(), "A", None),
    "potato-small": ("potato", potatoes(length=45), "B", "length_mm_min"),
    "potato-greening": (
        "potato",
        potatoes((Spot(5, 3, 8, "green"),)),
        "reject",
        "green_share_mean",
    ),
    "potato-rot": ("potato", potatoes((Spot(5, 3, 12),)), "reject", "defect_share_max"),
    "lime-big": ("lime", limes(50), "A", None),
    "lime-small": ("lime", limes(40), "B", "width_mm_min"),
}


@pytest.mark.parametrize("name", CASES)
def test_shipped_rules_grade_scenes_and_explain(name):
    product, items, grade, failed_key = CASES[name]
    g = grade_photo(make_scene(items).image, product, rules_dir=RULES)
    assert isinstance(g, Graded), g
    assert (g.product, g.grade, g.method) == (product, grade, "rules")
    assert 0.5 <= g.confidence < 1.0
    held = [d for d in g.reasons if d.passed]
    failed = [d for d in g.reasons if not d.passed]
    rules = load_rules(RULES, product)
    # Every condition of the grade given is listed as met (the last grade has none) ...
    assert {d.key for d in held} == {c.key for c in rules.conditions[grade]}
    assert all(d.grade == grade and d.margin >= 0 for d in held)
    # ... and the conditions that kept it from the next better grade as failed.
    if failed_key is None:
        assert grade == rules.grades[0] and not failed
    else:
        better = rules.grades[rules.grades.index(grade) - 1]
        assert failed_key in {d.key for d in failed}
        assert all(d.grade == better and d.margin < 0 for d in failed)
    for d in g.reasons:
        assert d.value == pytest.approx(g.measurements[d.key])
        assert d.text_en.translate({ord(c): None for c in "≤≥²"}).isascii()
        assert any(ord(ch) > 127 for ch in d.text_vi)  # Vietnamese diacritics
    assert g.measurements == lot_summary(g.measurement)


def _plain(value: Any) -> bool:
    """Only JSON's own Python types, all the way down (no numpy scalars)."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


def test_graded_to_json_is_plain_json():
    g = grade_photo(make_scene(bananas(MEDIUM_SPOTS)).image, "banana", rules_dir=RULES)
    assert isinstance(g, Graded)
    data = g.to_json()
    assert _plain(data)
    back = json.loads(json.dumps(data, allow_nan=False, ensure_ascii=False))
    assert back["grade"] == "B" and back["method"] == "rules" and back["unit"] == "mm"
    # Staff's reasons: at most three, the one that set the grade first (dark spots
    # kept it from A); every comparison with its raw figures stays in "decisions".
    assert 1 <= len(back["reasons"]) <= 3
    assert back["reasons"][0]["key"] == "dark_share_mean" and back["reasons"][0]["deciding"]
    assert set(back["reasons"][0]) == {
        "grade",
        "key",
        "value",
        "op",
        "threshold",
        "passed",
        "deciding",
        "text_vi",
        "text_en",
    }
    assert {d["key"] for d in back["decisions"]} >= {"dark_share_mean"}
    assert len(back["decisions"]) == len(g.reasons) > len(back["reasons"])
    assert set(back["decisions"][0]) == {
        "grade",
        "key",
        "value",
        "op",
        "threshold",
        "passed",
        "margin",
        "text_vi",
        "text_en",
    }


def test_rules_in_mm_decline_a_photo_without_the_marker():
    result = grade_photo(make_scene(bananas(), marker_mm=None).image, "banana", rules_dir=RULES)
    assert isinstance(result, Declined) and result.reason is Reason.MARKER_MISSING


def test_a_blurred_photo_is_declined_not_graded():
    result = grade_photo(make_scene(bananas(), blur_sigma=6.0).image, "banana", rules_dir=RULES)
    assert isinstance(result, Declined) and result.reason is Reason.BLURRED


def test_rule_keys_are_exactly_the_lot_measurements_in_mm():
    m = assess(make_scene().image)
    assert not isinstance(m, Declined)
    assert set(RULE_KEYS) == set(lot_summary(m, weight_g=2500))


def test_shipped_rules_files_all_load():
    assert {"banana", "potato", "lime"} <= set(products(RULES))
    for product in products(RULES):
        rules = load_rules(RULES, product)
        assert rules.grades[-1] == "reject" and rules.needs_marker


def _rules(conditions: dict[str, list[dict[str, Any]]], grades: list[str] | None = None):
    return parse_rules(
        {"grades": grades or ["A", "B", "C"], "conditions": conditions}, "test", "test.toml"
    )


def test_decide_gives_the_best_grade_whose_conditions_all_hold():
    rules = _rules(
        {
            "A": [
                {"key": "defect_share_max", "op": "<=", "value": 0.02},
                {"key": "item_count", "op": ">=", "value": 3},
            ],
            "B": [{"key": "defect_share_max", "op": "<", "value": 0.1}],
        }
    )
    assert decide(rules, {"defect_share_max": 0.0, "item_count": 5}).grade == "A"
    assert decide(rules, {"defect_share_max": 0.02, "item_count": 3}).grade == "A"  # <= holds
    assert decide(rules, {"defect_share_max": 0.0, "item_count": 2}).grade == "B"
    assert decide(rules, {"defect_share_max": 0.1, "item_count": 9}).grade == "C"  # < fails
    worst = decide(rules, {"defect_share_max": 0.5, "item_count": 9})
    assert worst.grade == "C"
    assert [(d.grade, d.key, d.passed) for d in worst.reasons] == [("B", "defect_share_max", False)]


def test_confidence_grows_with_the_distance_from_the_thresholds():
    rules = _rules(
        {
            "A": [{"key": "length_mm_min", "op": ">=", "value": 100, "band": 10}],
            "B": [{"key": "length_mm_min", "op": ">=", "value": 50, "band": 10}],
        }
    )
    at_threshold = decide(rules, {"length_mm_min": 100}).confidence
    one_band = decide(rules, {"length_mm_min": 110}).confidence
    far = decide(rules, {"length_mm_min": 150}).confidence
    assert at_threshold == pytest.approx(0.5)
    assert at_threshold < one_band < far < 1.0
    # For B, the deciding margin is the nearer of "drop to C" and "reach A", in bands.
    assert decide(rules, {"length_mm_min": 75}).confidence == pytest.approx(1 - 0.5 * exp(-2.5))
    near_a = decide(rules, {"length_mm_min": 98})
    assert near_a.grade == "B"
    assert near_a.confidence == pytest.approx(1 - 0.5 * exp(-0.2))
    near_c = decide(rules, {"length_mm_min": 53})
    assert near_c.confidence == pytest.approx(1 - 0.5 * exp(-0.3))


def test_a_rule_on_the_lots_weight_needs_the_weight(tmp_path):
    (tmp_path / "tea.toml").write_text(
        'grades = ["A", "B"]\n[conditions]\nA = [{ key = "count_per_kg", op = "<=", value = 60 }]\n'
    )
    image = make_scene(bananas(), marker_mm=None).image
    with pytest.raises(GradingError, match=r"tea\.toml: count_per_kg: .*weight"):
        grade_photo(image, "tea", rules_dir=tmp_path)
    g = grade_photo(image, "tea", rules_dir=tmp_path, weight_g=1000)
    assert isinstance(g, Graded)
    assert g.measurements["count_per_kg"] == 4.0 and g.grade == "A"


BAD: dict[str, tuple[str, str, str]] = {
    "misspelt-top-key": (
        'grade = ["A", "B"]\n[conditions]\nA = [{ key = "item_count", op = ">", value = 1 }]\n',
        "grade",
        "unknown key; did you mean 'grades'?",
    ),
    "unknown-measurement": (
        'grades = ["A", "B"]\n[conditions]\nA = [{ key = "defect_share", op = "<", value = 1 }]\n',
        "conditions.A.0.key",
        "unknown measurement 'defect_share'; did you mean",
    ),
    "size-in-pixels": (
        'grades = ["A", "B"]\n[conditions]\nA = [{ key = "length_px_min", op = ">", value = 9 }]\n',
        "conditions.A.0.key",
        "use the _mm key",
    ),
    "bad-operator": (
        'grades = ["A", "B"]\n[conditions]\nA = [{ key = "item_count", op = "=<", value = 1 }]\n',
        "conditions.A.0.op",
        "'<', '<=', '>' or '>='",
    ),
    "misspelt-condition-key": (
        'grades = ["A", "B"]\n[conditions]\n'
        'A = [{ key = "item_count", op = ">", value = 1, bnd = 2 }]\n',
        "conditions.A.0.bnd",
        "unknown key; did you mean 'band'?",
    ),
    "last-grade-with-conditions": (
        'grades = ["A", "B"]\n[conditions]\nA = [{ key = "item_count", op = ">", value = 1 }]\n'
        'B = [{ key = "item_count", op = ">", value = 0 }]\n',
        "conditions.B",
        "takes no conditions",
    ),
    "grade-without-conditions": (
        'grades = ["A", "B", "C"]\n[conditions]\n'
        'A = [{ key = "item_count", op = ">", value = 1 }]\n',
        "conditions.B",
        "has no conditions",
    ),
    "conditions-for-unknown-grade": (
        'grades = ["A", "B"]\n[conditions]\nA = [{ key = "item_count", op = ">", value = 1 }]\n'
        'Z = [{ key = "item_count", op = ">", value = 1 }]\n',
        "conditions.Z",
        "not one of the grades",
    ),
    "not-toml": ("grades = [A, B\n", "(syntax)", "not valid TOML"),
}


@pytest.mark.parametrize("name", BAD)
def test_a_bad_rules_file_says_file_key_reason(tmp_path, name):
    text, key, reason = BAD[name]
    path = tmp_path / "mango.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_rules(tmp_path, "mango")
    assert f"{path}: {key}: " in str(err.value)
    assert reason in str(err.value)
    # grade_photo turns it into a GradingError with the same message.
    with pytest.raises(GradingError) as gerr:
        grade_photo(make_scene().image, "mango", rules_dir=tmp_path)
    assert str(gerr.value) == str(err.value)


def test_an_unknown_product_lists_the_products_with_rules():
    with pytest.raises(GradingError) as err:
        grade_photo(make_scene().image, "bananna", rules_dir=RULES)
    message = str(err.value)
    assert "no rules for product 'bananna'; did you mean 'banana'?" in message
    assert "banana, lime, potato" in message and str(RULES) in message


def test_a_product_name_must_be_a_plain_key(tmp_path: Path):
    with pytest.raises(GradingError, match="lower-case ASCII"):
        grade_photo(make_scene().image, "../station", rules_dir=tmp_path)
