"""The SKU mapping (docs/orders.md "The mapping file"): which product, grade and
packaging each seller SKU is, and which point packs it.

A CSV (UTF-8, a byte-order mark allowed, ``,`` ``;`` or tab) with the header
``seller_sku,product,grade,pack_net_g,pack_tare_g,site`` (in any order; other
columns are ignored), one row per SKU. Every problem is collected with its row and
column; one problem makes the whole file unusable (:class:`MappingError`), since a
half-read mapping would send orders to the wrong point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.central.orders.exports import ExportError, clean, read_table

COLUMNS = ("seller_sku", "product", "grade", "pack_net_g", "pack_tare_g", "site")
MAX_SKUS = 10_000
MAX_PACK_G = 100_000
"""A pack weighs at most 100 kg (net) and its packaging as much."""
MAX_NAME = 120
MAX_CODE = 64
SITE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""A point's site id (as in the stations' config and the MQTT topics)."""
_SKU = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Sku:
    seller_sku: str
    product: str
    grade: str | None
    """None: the product is sold without a grade (the cell was empty)."""
    pack_net_g: int
    pack_tare_g: int
    site: str
    row: int


@dataclass(frozen=True)
class Problem:
    row: int
    column: str | None
    reason: str

    def text(self, file: str) -> str:
        where = f"{file}, row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


class MappingError(ValueError):
    """The mapping cannot be used: every problem found, each with row and column."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.text("mapping") for p in problems))
        self.problems = problems


def _grams(text: str, low: int) -> tuple[int | None, str | None]:
    if not text:
        return None, "is empty (grams, a whole number)"
    if not text.isdigit() or not text.isascii():
        return None, f"{text!r} is not a whole number of grams (write 500, not 0,5 kg)"
    value = int(text)
    if not low <= value <= MAX_PACK_G:
        return None, f"{value} is not within {low}..{MAX_PACK_G} g"
    return value, None


def parse_mapping(data: bytes) -> dict[str, Sku]:
    """seller SKU -> what it is; MappingError listing every problem."""
    try:
        header, rows = read_table(data, COLUMNS)
    except ExportError as exc:
        raise MappingError([Problem(1, None, str(exc))]) from None
    at = {clean(name).casefold(): i for i, name in reversed(list(enumerate(header)))}
    missing = [c for c in COLUMNS if c not in at]
    if missing:
        raise MappingError(
            [
                Problem(
                    1,
                    ", ".join(missing),
                    f"the header lacks {', '.join(missing)} (it must name {','.join(COLUMNS)})",
                )
            ]
        )
    problems: list[Problem] = []
    skus: dict[str, Sku] = {}
    for number, fields in rows:
        if len(fields) > len(header) and not any(clean(f) for f in fields[len(header) :]):
            fields = fields[: len(header)]
        if len(fields) != len(header):
            problems.append(
                Problem(
                    number,
                    None,
                    f"{len(fields)} fields where the header has {len(header)} "
                    "(wrong delimiter or broken quoting)",
                )
            )
            continue
        cell = {c: clean(fields[at[c]]) for c in COLUMNS}
        before = len(problems)

        def bad(column: str, reason: str, number: int = number) -> None:
            problems.append(Problem(number, column, reason))

        sku = cell["seller_sku"]
        if not sku:
            bad("seller_sku", "is empty")
        elif not _SKU.match(sku):
            bad("seller_sku", f"{sku[:40]!r} is longer than 64 characters or holds a control one")
        elif sku in skus:
            bad("seller_sku", f"{sku} is already mapped on row {skus[sku].row}")
        for column, limit in (("product", MAX_NAME), ("grade", MAX_CODE)):
            if not cell[column] and column == "product":
                bad(column, "is empty")
            elif len(cell[column]) > limit or _CONTROL.search(cell[column]):
                bad(column, f"is longer than {limit} characters or holds a control character")
        net, why = _grams(cell["pack_net_g"], 1)
        if why:
            bad("pack_net_g", why)
        tare, why = _grams(cell["pack_tare_g"], 0)
        if why:
            bad("pack_tare_g", why)
        site = cell["site"]
        if not SITE.match(site):
            bad(
                "site",
                f"{site[:40]!r} is not a point's site id (lower-case letters, digits and '-', "
                "as in the station's config)",
            )
        if len(problems) == before and net is not None and tare is not None:
            grade = cell["grade"] or None  # a product sold ungraded
            skus[sku] = Sku(sku, cell["product"], grade, net, tare, site, number)
        if len(skus) > MAX_SKUS:
            problems.append(Problem(number, None, f"more than {MAX_SKUS:,} SKUs"))
            break
    if not skus and not problems:
        problems.append(Problem(2, None, "no SKU is mapped (the file has only its header)"))
    if problems:
        raise MappingError(problems)
    return skus
