"""Finding a farmer among thousands: by name without diacritics, phone digits or village,
recent farmers first; and the farmers a new one may duplicate.

Matching is a substring test on ``producers.search_key`` (edge.storage.search_key,
kept by migration 0013's triggers): a scan of a few thousand short strings, a
millisecond or two in SQLite, with no index to keep beyond the key itself. Each
farmer's latest lot is kept with the farmer (``producers.last_lot_at``, migration
0013's triggers on lots), so the sort visits no lots. The order: farmers who have
brought a lot to this station, the most recent first (then by name); then the others,
best match first (the name starting with what was typed, then a word of the name
starting with it, then the name holding it, then the words found across name, village
and phone), then by name.
"""

from __future__ import annotations

from typing import Any

from edge.storage.search_key import SEPARATOR, duplicate_prefix, parse_query
from edge.storage.store import Store

DEFAULT_LIMIT = 20
MAX_LIMIT = 200

_COLUMNS = "p.id, p.seq, p.name, p.phone, p.village, p.last_lot_at"

# How well the name matches what was typed, as one phrase ("thi huong"): 0 the name starts
# with it, 1 a word of the name does, 2 it is inside the name, 3 the words are spread over
# name, village and phone.
_NAME = "substr(p.search_key, 1, instr(p.search_key, '|') - 1)"
_RANK = (
    f"CASE WHEN instr({_NAME}, :phrase) = 1 THEN 0 "
    f"WHEN instr(' ' || {_NAME}, ' ' || :phrase) > 0 THEN 1 "
    f"WHEN instr({_NAME}, :phrase) > 0 THEN 2 ELSE 3 END"
)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("rank", None)
    return row


def search_producers(store: Store, text: str, limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """At most ``limit`` farmers matching ``text`` (every word of it), in the order of the
    module's note; an empty ``text`` lists the recent farmers (then the rest by name)."""
    limit = max(1, min(limit, MAX_LIMIT))
    query = parse_query(text)
    if query.empty:
        return recent_producers(store, limit)
    params: dict[str, Any] = {"phrase": query.phrase, "limit": limit}
    where = ["p.merged_into IS NULL"]  # a farmer merged into another is not offered (0014)
    for i, alternatives in enumerate(query.terms):
        ors = []
        for j, alt in enumerate(alternatives):
            params[f"t{i}_{j}"] = alt
            ors.append(f"instr(p.search_key, :t{i}_{j}) > 0")
        where.append("(" + " OR ".join(ors) + ")")
    sql = (
        f"SELECT {_COLUMNS}, {_RANK} AS rank FROM producers p "
        f"WHERE {' AND '.join(where)} "
        "ORDER BY p.last_lot_at IS NULL, p.last_lot_at DESC, rank, p.search_key, p.seq LIMIT :limit"
    )
    return [_public(r) for r in store.rows(sql, params)]


def recent_producers(store: Store, limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """The farmers of the latest lots, most recent first, then the others by name."""
    limit = max(1, min(limit, MAX_LIMIT))
    return store.rows(
        f"SELECT {_COLUMNS} FROM producers p WHERE p.merged_into IS NULL "
        "ORDER BY p.last_lot_at IS NULL, p.last_lot_at DESC, p.search_key, p.seq LIMIT ?",
        (limit,),
    )


def get_producer(store: Store, producer_id: str) -> dict[str, Any] | None:
    """One farmer as the search lists them (the page checks a remembered choice); a
    farmer merged into another (migration 0014) answers as the one it was merged into."""
    rows = store.rows(
        f"SELECT {_COLUMNS} FROM producers p WHERE p.id = "
        "(SELECT coalesce(m.merged_into, m.id) FROM producers m WHERE m.id = ?)",
        (producer_id,),
    )
    return rows[0] if rows else None


def possible_duplicates(store: Store, name: str, village: str | None) -> list[dict[str, Any]]:
    """Farmers whose name and village are this name and village once case, spacing and
    diacritics are set aside ("Nguyễn Thị  Hương", "nguyen thi huong"): a range of the
    search key's index, whatever their phone. A farmer merged into another (migration
    0014) is neither found nor listed here: the one it was merged into is."""
    prefix = duplicate_prefix(name, village)
    # keys starting with the prefix sort from the prefix up to the prefix with its
    # final separator raised by one code point ("|" -> "}")
    upper = prefix[:-1] + chr(ord(SEPARATOR) + 1)
    return store.rows(
        f"SELECT {_COLUMNS} FROM producers p WHERE p.search_key >= ? AND p.search_key < ? "
        "AND p.merged_into IS NULL ORDER BY p.seq",
        (prefix, upper),
    )
