"""Cost-aware decisions: the grade with the lowest expected cost, "ask the lead" when
that is cheaper, and [costs] tables refused with FILE: KEY: REASON."""

from __future__ import annotations

import dataclasses
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.camera.grading.costs import DEFAULT_UNSURE, UNSURE, Costs, costs_for
from edge.camera.grading.features import FEATURE_NAMES
from edge.camera.grading.grade import Graded, GradingError, grade_work, load_lookalikes
from edge.camera.grading.measure import WorkImage
from edge.camera.grading.model import Model, from_json
from edge.camera.grading.productcheck import ProductCheck
from edge.camera.grading.quality import Declined, Reason
from edge.camera.grading.rules import RulesError, load_rules, parse_rules, products
from edge.camera.scenes import ItemSpec, make_scene
from edge.config import GradingConfig

# About no date or time of day: make test runs these in one pass (the calendar pass skips it).
pytestmark = pytest.mark.real_clock_only

RULES = GradingConfig().rules_dir
POTATO = ("bad", "good")  # calibration folders, sorted as the model sorts them
BANANA = ("ripe", "rotten", "unripe")


def p(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_without_a_table_every_mistake_costs_one_and_the_lead_is_asked_below_a_half():
    costs = costs_for(None, POTATO, "potato.toml")
    assert costs.unsure == DEFAULT_UNSURE
    assert costs.matrix.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert costs.costly() == []
    assert costs.decide(p(0.2, 0.8)) == 1
    assert costs.decide(p(0.7, 0.3)) == 0
    assert costs.decide(p(0.5, 0.5)) is None  # a tie with asking goes to asking
    three = costs_for(None, BANANA, "banana.toml")
    assert three.decide(p(0.45, 0.3, 0.25)) is None  # most probable, but not over a half


def test_the_decision_is_the_grade_with_the_lowest_expected_cost():
    table = {"unsure": 100.0, "rotten": {"ripe": 8, "unripe": 4}, "unripe": {"ripe": 2}}
    costs = costs_for(table, BANANA, "banana.toml")
    rng = np.random.default_rng(7)
    for proba in rng.dirichlet((1.0, 1.0, 1.0), size=200):
        expected = [sum(proba[t] * costs.matrix[t, g] for t in range(3)) for g in range(3)]
        assert costs.decide(proba) == int(np.argmin(expected))
        assert np.allclose(costs.expected(proba), expected)


def test_a_costly_confusion_makes_the_grader_strict():
    # Potato: a bad one graded good costs 10, a good one held back 1.
    costs = costs_for({"bad": {"good": 10}, "unsure": 100.0}, POTATO, "potato.toml")
    assert costs.costly() == [(0, 1)]
    # 80 % sure it is good: still cheaper to call it bad (0.8 < 0.2 * 10).
    assert costs.decide(p(0.2, 0.8)) == 0
    assert costs.decide(p(0.05, 0.95)) == 1  # 0.5 > 0.95: good only when nearly sure
    plain = costs_for({"unsure": 100.0}, POTATO, "potato.toml")
    assert plain.decide(p(0.2, 0.8)) == 1


def test_the_lead_is_asked_when_that_is_cheaper_than_any_grade():
    costs = costs_for({"bad": {"good": 10}, "unsure": 0.3}, POTATO, "potato.toml")
    assert costs.decide(p(0.1, 0.9)) is None  # good costs 1.0, bad 0.9, asking 0.3
    assert costs.decide(p(0.65, 0.35)) is None  # bad costs 0.35, good 6.5
    assert costs.decide(p(0.75, 0.25)) == 0  # bad costs 0.25
    assert costs.decide(p(0.005, 0.995)) == 1  # good costs 0.05
    rows = np.array([[0.1, 0.9], [0.8, 0.2], [0.005, 0.995]])
    assert costs.decide_many(rows).tolist() == [UNSURE, 0, 1]


def test_shipped_costs_fit_their_calibration_folders():
    for product, classes in (("potato", POTATO), ("banana", BANANA)):
        rules = load_rules(RULES, product)
        costs = costs_for(rules.costs, classes, rules.file)
        assert costs.costly(), product  # each prices its costly confusion above 1
        assert 0 < costs.unsure < 1
    potato = costs_for(load_rules(RULES, "potato").costs, POTATO, "potato.toml")
    assert potato.matrix[0, 1] > 3 * potato.matrix[1, 0]  # bad as good >> good held back
    banana = costs_for(load_rules(RULES, "banana").costs, BANANA, "banana.toml")
    worst = np.unravel_index(int(np.argmax(banana.matrix)), banana.matrix.shape)
    assert BANANA[worst[0]] == "rotten" and BANANA[worst[1]] != "rotten"
    for product in products(RULES):  # every shipped file, with or without [costs]
        load_rules(RULES, product)


GRADES: dict[str, Any] = {"grades": ["A", "reject"], "conditions": {"A": [
    {"key": "defect_share_max", "op": "<=", "value": 0.1}]}}  # fmt: skip
BAD_TABLES: dict[str, tuple[Any, str, str]] = {
    "negative": ({"bad": {"good": -1}}, "costs.bad.good", "0 or more"),
    "text": ({"bad": {"good": "ten"}}, "costs.bad.good", "a cost is a number"),
    "bool": ({"unsure": True}, "costs.unsure", "a cost is a number"),
    "zero-unsure": ({"unsure": 0}, "costs.unsure", "above 0"),
    "infinite": ({"unsure": float("inf")}, "costs.unsure", "finite"),
    "flat": ({"good": 3}, "costs.good", "a table [costs.good]"),
    "diagonal": ({"bad": {"bad": 2}}, "costs.bad.bad", "a right grade costs nothing"),
    "not-a-table": ("high", "costs", "dictionary"),
}


@pytest.mark.parametrize("name", sorted(BAD_TABLES))
def test_a_bad_costs_table_says_file_key_reason(name):
    table, key, reason = BAD_TABLES[name]
    with pytest.raises(RulesError) as err:
        parse_rules({**GRADES, "costs": table}, "potato", "rules/potato.toml")
    assert any(k == key and reason in r for k, r in err.value.problems), err.value.problems
    assert f"rules/potato.toml: {key}: " in str(err.value)


def test_costs_naming_a_class_the_model_lacks_are_refused_with_a_hint():
    rules = parse_rules({**GRADES, "costs": {"bda": {"good": 5}}}, "potato", "p.toml")
    assert rules.costs == {"bda": {"good": 5}}  # shape is fine; names wait for the model
    with pytest.raises(RulesError) as err:
        costs_for(rules.costs, POTATO, rules.file)
    text = str(err.value)
    assert "p.toml: costs.bda: 'bda' is not one of the model's classes" in text
    assert "did you mean 'bad'?" in text and "bad, good" in text
    with pytest.raises(RulesError, match=r"p.toml: costs.bad.godo: .*did you mean 'good'"):
        costs_for({"bad": {"godo": 5}}, POTATO, "p.toml")


def test_costs_written_for_other_class_names_leave_every_mistake_at_one():
    # The shipped banana table (ripe, unripe, rotten) and a cooperative's own folders.
    rules = load_rules(RULES, "banana")
    costs = costs_for(rules.costs, ("green", "spotted"), rules.file)
    assert costs.matrix.tolist() == [[0.0, 1.0], [1.0, 0.0]] and costs.costly() == []
    assert costs.unsure == 0.4  # asking the lead still costs what the file says
    assert costs.note is not None and "names none of the model's classes (green, spotted)" in (
        costs.note
    )
    assert costs_for(rules.costs, BANANA, rules.file).note is None


def test_a_rules_file_with_costs_loads_from_disk(tmp_path: Path):
    (tmp_path / "potato.toml").write_text(
        'grades = ["A", "reject"]\n'
        '[conditions]\nA = [{ key = "defect_share_max", op = "<=", value = 0.1 }]\n'
        "[costs]\nunsure = 0.25\n[costs.bad]\ngood = 6\n",
        encoding="utf-8",
    )
    rules = load_rules(tmp_path, "potato")
    costs = costs_for(rules.costs, POTATO, rules.file)
    assert isinstance(costs, Costs) and costs.unsure == 0.25
    assert costs.matrix.tolist() == [[0.0, 6.0], [1.0, 0.0]]
    assert costs.to_json() == {"unsure": 0.25, "bad": {"good": 6.0}, "good": {"bad": 1.0}}


# -- the model path of grade.py ---------------------------------------------------------


def flat_model(bias: tuple[float, float], product: str = "potato") -> Model:
    """A version-1 model file (no temperature, no check) that ignores the photo: its
    class probabilities are softmax(bias), for classes bad, good."""
    nf = len(FEATURE_NAMES)
    return from_json(
        {
            "format": "edge-grading-model",
            "version": 1,
            "product": product,
            "kind": "logreg",
            "classes": list(POTATO),
            "feature_names": list(FEATURE_NAMES),
            "means": [0.0] * nf,
            "scales": [1.0] * nf,
            "weights": [[0.0] * nf, [0.0] * nf],
            "bias": list(bias),
        }
    )


def good_at(p_good: float) -> Model:
    return flat_model((0.0, math.log(p_good / (1.0 - p_good))))


@cache
def potato_photo() -> WorkImage:
    items = tuple(
        ItemSpec("brown", 70, 52, (110 + (i % 3) * 80, 70 + (i // 3) * 90), 20 * i)
        for i in range(6)
    )
    return WorkImage.of(make_scene(items, size=(640, 480), px_per_mm=2.0).image)


def grade(model: Model, costs: dict[str, Any] | str | None = "shipped") -> Graded | Declined:
    rules = load_rules(RULES, "potato")
    if not isinstance(costs, str):
        rules = dataclasses.replace(rules, costs=costs)
    return grade_work(potato_photo(), rules, model, lookalikes=load_lookalikes(RULES, "potato"))


def test_an_unsure_model_asks_the_lead_naming_the_two_likely_grades():
    out = grade(good_at(0.6))  # the shipped potato costs: good would cost 0.4 * 10
    assert isinstance(out, Declined) and out.reason == Reason.UNSURE
    assert out.message == (
        "Không chắc chắn — nhờ trưởng trạm xem: có thể là hạng good (60\u00a0%) "
        "hoặc hạng bad (40\u00a0%)."
    )
    assert out.message_en.startswith("Not sure — ask the station lead to look: grade good (60")
    assert "chụp lại" not in out.message and "retake" not in out.message_en  # not the photo
    assert out.detail == pytest.approx({"p_bad": 0.4, "p_good": 0.6})


def test_the_model_grades_by_cost_and_its_confidence_is_the_calibrated_probability():
    sure = grade(good_at(0.99))
    assert isinstance(sure, Graded) and sure.grade == "good" and sure.method == "model"
    assert sure.confidence == pytest.approx(0.99)
    # 80 % good: the shipped costs (bad passed as good costs 10) ask the lead; with every
    # mistake costing the same the model says good.
    assert isinstance(grade(good_at(0.8)), Declined)
    plain = grade(good_at(0.8), costs=None)
    assert isinstance(plain, Graded) and plain.grade == "good"
    assert plain.confidence == pytest.approx(0.8)
    bad = grade(good_at(0.1))
    assert isinstance(bad, Graded) and bad.grade == "bad"
    assert bad.confidence == pytest.approx(0.9)
    # A fitted temperature softens the probabilities the decision and confidence use.
    warm = dataclasses.replace(good_at(0.99), temperature=3.0)
    p = float(warm.calibrated_proba(np.zeros(len(FEATURE_NAMES)))[1])
    assert 0.75 < p < 0.85
    softened = grade(warm, costs=None)
    assert isinstance(softened, Graded) and softened.confidence == pytest.approx(p)


def test_the_product_check_declines_other_produce_before_grading():
    nf = len(FEATURE_NAMES)

    def checked(bias: float) -> Model:
        check = ProductCheck(np.zeros(nf), np.ones(nf), np.zeros(nf), bias, 0.3, ("banana",))
        return dataclasses.replace(good_at(0.99), check=check)

    out = grade(checked(-3.0))  # 5 % potato
    assert isinstance(out, Declined) and out.reason == Reason.NOT_THE_PRODUCT
    assert out.message == "Ảnh không giống khoai tây (trông giống chuối). Kiểm tra lô và chụp lại."
    assert "(it looks like bananas)" in out.message_en
    assert out.detail["product_probability"] == pytest.approx(0.0474, abs=1e-3)
    passed = grade(checked(3.0))
    assert isinstance(passed, Graded) and passed.grade == "good"


def test_costs_naming_a_class_the_model_lacks_stop_grading_with_file_key_reason():
    with pytest.raises(GradingError, match=r"potato.toml: costs.bda: 'bda' is not one of"):
        grade(good_at(0.99), costs={"bda": {"good": 5}})
