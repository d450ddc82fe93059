"""What each grading mistake costs, and the grade (or "ask the lead") that costs least.

A calibrated model gives each class a probability. Taking the most probable class
treats every mistake alike, but they are not alike: a bad potato passed as good
reaches a customer and comes back as a complaint and a refund, while a good one held
back only loses a little of its price. A product's rules file says so in an optional
``[costs]`` table, keyed by the MODEL's class names (its calibration folders)::

    [costs]
    unsure = 0.3          # asking the station lead (a minute of their time)
    [costs.bad]           # a photo that truly shows "bad" ...
    good = 10             # ... graded "good" costs ten times a plain mistake

A confusion not listed costs 1, a right grade 0. A table that names none of the
model's classes was written for other folder names (the shipped defaults, say, and a
cooperative that calibrated with its own): its confusions do not apply, every one
costs 1 and :attr:`Costs.note` says so; a table that names some of them and a name
that is not one is a typo, refused. For probabilities ``p`` the expected
cost of grading as class ``j`` is ``sum_i p_i * cost[i, j]``; the grade given is the
one with the lowest expected cost, and when even that costs more than asking the
lead, the photo is not graded ("không chắc chắn — nhờ trưởng trạm xem"). Without a
table every confusion costs 1 and asking costs 0.5: the station asks when no class
is more probable than one half.

The probabilities must be calibrated (``Model.calibrated_proba``) for this to mean
what it says. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.camera.grading.rules import RulesError, cost_table_problems
from edge.tomlfile import did_you_mean

Floats = npt.NDArray[np.float64]

UNSURE_TEXT_VI = "không chắc chắn — nhờ trưởng trạm xem"
UNSURE_TEXT_EN = "not sure — ask the station lead to look"
DEFAULT_UNSURE = 0.5  # with every confusion costing 1: ask unless one class has p > 1/2
UNSURE = -1  # what decide_many gives for a photo to ask the lead about


@dataclass(frozen=True)
class Costs:
    """A product's mistake costs over a model's classes."""

    classes: tuple[str, ...]
    matrix: Floats  # [true class, graded as]; 0 on the diagonal
    unsure: float  # what asking the lead costs (staff time), same unit as a mistake
    note: str | None = None  # why the table's confusions were not used (for reports)

    def expected(self, proba: Floats) -> Floats:
        """The expected cost of each possible grade, for one photo's probabilities (a
        vector) or several (rows)."""
        p = np.asarray(proba, dtype=np.float64)
        if p.shape[-1] != len(self.classes):
            raise ValueError(
                f"{p.shape[-1]} probabilities for {len(self.classes)} classes {self.classes}"
            )
        out: Floats = p @ self.matrix
        return out

    def decide(self, proba: Floats) -> int | None:
        """The class with the lowest expected cost, or ``None`` when asking the lead
        costs less (a tie goes to asking: the lead costs time, a wrong grade money)."""
        cost = self.expected(proba)
        best = int(np.argmin(cost))
        return best if float(cost[best]) < self.unsure else None

    def decide_many(self, proba: Floats) -> npt.NDArray[np.intp]:
        """:meth:`decide` for rows of probabilities; :data:`UNSURE` (-1) where unsure."""
        cost = self.expected(np.atleast_2d(proba))
        best = np.argmin(cost, axis=1)
        sure = cost[np.arange(len(best)), best] < self.unsure
        out: npt.NDArray[np.intp] = np.where(sure, best, UNSURE).astype(np.intp)
        return out

    def costly(self) -> list[tuple[int, int]]:
        """The (true, graded) pairs that cost more than a plain mistake, in class order:
        the mistakes an evaluation should report on their own (bad called good)."""
        n = len(self.classes)
        return [(t, g) for t in range(n) for g in range(n) if self.matrix[t, g] > 1.0]

    def to_json(self) -> dict[str, Any]:
        """The table as a rules file would write it (every confusion, for reports)."""
        return {
            "unsure": self.unsure,
            **{
                t: {g: float(self.matrix[i, j]) for j, g in enumerate(self.classes) if i != j}
                for i, t in enumerate(self.classes)
            },
        }


def costs_for(table: Mapping[str, Any] | None, classes: Sequence[str], file: str) -> Costs:
    """The costs of a rules file's ``[costs]`` table (``None``: the defaults) over a
    model's ``classes``; :class:`RulesError` names the file, the key and the reason
    (a class the model does not have, a negative or non-numeric cost)."""
    names = tuple(classes)
    n = len(names)
    matrix: Floats = np.ones((n, n)) - np.eye(n)
    if table is None:
        return Costs(names, matrix, DEFAULT_UNSURE)
    problems = cost_table_problems(table)
    if problems:
        raise RulesError(file, problems)
    listed = ", ".join(names)
    unsure = float(table.get("unsure", DEFAULT_UNSURE))
    rows = {k: r for k, r in table.items() if k != "unsure"}
    named = set(rows) | {g for r in rows.values() for g in r}
    if named and not named & set(names):
        note = (
            f"{file}: costs: names none of the model's classes ({listed}); every mistake "
            "costs 1 (write [costs] with these names to price them)"
        )
        return Costs(names, matrix, unsure, note)
    for true, row in table.items():
        if true == "unsure":
            continue
        if true not in names:
            problems.append((f"costs.{true}", _not_a_class(true, names, listed)))
            continue
        for graded, cost in row.items():
            if graded not in names:
                problems.append((f"costs.{true}.{graded}", _not_a_class(graded, names, listed)))
                continue
            matrix[names.index(true), names.index(graded)] = float(cost)
    if problems:
        raise RulesError(file, problems)
    return Costs(names, matrix, unsure)


def _not_a_class(name: str, names: tuple[str, ...], listed: str) -> str:
    return (
        f"{name!r} is not one of the model's classes{did_you_mean(name, list(names))}"
        f" (its classes, the calibration folders: {listed})"
    )
