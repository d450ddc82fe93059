"""Farmer search and the duplicate-farmer question (issue 12, part 3 and part 2's check).

``GET /api/producers?q=huong&limit=8`` (edge.web.api's list route hands a search here)
finds farmers by name without diacritics, phone digits or village, recent farmers first
(edge.storage.farmer_search). ``GET /api/producers/{id}`` is one farmer, for the page
to check the farmer it remembered across a reload. Before a new farmer is added,
:func:`duplicate_question` asks when one with the same name and village (case, spacing
and diacritics aside) exists: a 409 ``possible_duplicate`` naming them, unless the body
says ``confirm_duplicate``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from edge.station import Station
from edge.storage.farmer_search import get_producer, possible_duplicates, search_producers
from edge.storage.store import NotFound, Store
from edge.web.auth import Staff

router = APIRouter()

MAX_QUERY = 100
"""Characters of a search kept (a name is at most 120; nobody types more to find one)."""


def _store(request: Request) -> Store:
    station: Station = request.app.state.station
    return station.db


def search(request: Request, q: str | None, limit: int | None) -> list[dict[str, Any]]:
    """The answer of ``GET /api/producers`` with ``q`` or ``limit``."""
    return search_producers(_store(request), (q or "")[:MAX_QUERY], limit or 20)


@router.get("/producers/{producer_id}")
def one_producer(producer_id: str, person: Staff, request: Request) -> dict[str, Any]:
    found = get_producer(_store(request), producer_id)
    if found is None:
        raise NotFound(f"producer {producer_id}")
    return found


def _where(village: str | None, lang: str) -> str:
    if lang == "vi":
        return f" ở thôn {village}" if village else " (không ghi thôn)"
    return f" of {village}" if village else " (no village given)"


def duplicate_question(store: Store, name: str, village: str | None) -> JSONResponse | None:
    """The 409 asking before a second farmer of this name and village is created, or
    None when there is none yet."""
    matches = possible_duplicates(store, name, village)
    if not matches:
        return None
    first = matches[0]
    if len(matches) == 1:
        vi = f"Đã có nông dân {first['name']}{_where(first['village'], 'vi')}. Vẫn tạo mới?"
        en = (
            f"There is already a farmer {first['name']}{_where(first['village'], 'en')}. "
            "Create a new one anyway?"
        )
    else:
        n = len(matches)
        vi = f"Đã có {n} nông dân {first['name']}{_where(first['village'], 'vi')}. Vẫn tạo mới?"
        en = (
            f"There are already {n} farmers {first['name']}{_where(first['village'], 'en')}. "
            "Create a new one anyway?"
        )
    body = {
        "error": {"code": "possible_duplicate", "message": vi, "message_en": en},
        "matches": matches,
    }
    return JSONResponse(body, status_code=409)
