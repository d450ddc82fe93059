"""Who may sign in here, for leads: list, add (staff, couriers, leads; technicians only
with ``edge users add`` on the station), a new PIN, disable and enable. The store is
edge.accounts.people; the sign-in itself is edge.web.auth."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, Strict

from edge.accounts.people import AccountError
from edge.web.auth import Lead, people, person_json

router = APIRouter()


class NewPerson(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[str, Strict(), Field(min_length=1, max_length=60)]
    role: Annotated[str, Strict(), Field(min_length=1, max_length=20)]
    pin: Annotated[str, Strict(), Field(min_length=1, max_length=20)]


class NewPin(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    pin: Annotated[str, Strict(), Field(min_length=1, max_length=20)]


class Enabled(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    disabled: bool


def _no_technicians(role: str) -> None:
    if role == "technician":
        raise AccountError(
            "technician_by_cli",
            "Tài khoản kỹ thuật chỉ được tạo trên máy trạm (edge users add).",
            "Technician accounts are added on the station itself (edge users add).",
            403,
        )


def _named(request: Request, person_id: str) -> str:
    for row in people(request).list():
        if row["id"] == person_id:
            _no_technicians(row["role"])
            return str(row["name"])
    raise AccountError("no_such_person", "Không tìm thấy người này.", "No such person.", 404)


@router.get("/people")
def list_people(person: Lead, request: Request) -> list[dict[str, Any]]:
    """Everyone who may sign in here, with role and state (never a PIN or its hash)."""
    return people(request).list()


@router.post("/people", status_code=201)
def add_person(body: NewPerson, person: Lead, request: Request) -> dict[str, str]:
    """A lead adds staff, couriers and other leads (technicians only by ``edge users``)."""
    _no_technicians(body.role)
    return person_json(people(request).add(body.name, body.role, body.pin, person.name))


@router.post("/people/{person_id}/pin")
def reset_pin(person_id: str, body: NewPin, person: Lead, request: Request) -> dict[str, str]:
    """A new PIN: unlocks the person and ends their sessions."""
    name = _named(request, person_id)
    people(request).reset(name, body.pin, person.name)
    return {"id": person_id, "done": "pin_reset"}


@router.post("/people/{person_id}/disabled")
def set_disabled(person_id: str, body: Enabled, person: Lead, request: Request) -> dict[str, Any]:
    name = _named(request, person_id)
    if person_id == person.id and body.disabled:
        raise AccountError(
            "self_disable",
            "Không thể tự khóa tài khoản của mình.",
            "You cannot disable your own account.",
            409,
        )
    people(request).set_disabled(name, body.disabled, person.name)
    return {"id": person_id, "disabled": body.disabled}
