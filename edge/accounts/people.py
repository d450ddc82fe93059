"""The people who sign in at the station, their PINs and their sessions.

A person has a name (unique, compared casefolded with spaces collapsed), a role
(:data:`ROLES`) and a PIN of 4 to 8 digits, kept only as an argon2id hash (memory-hard:
19 MiB and two passes per guess, about 30 ms on a PC, 100-200 ms on a Pi 4).

Guessing is slowed three ways: every wrong PIN costs the hash; after
:data:`FREE_FAILURES` wrong PINs in a row the person is locked out for 5 minutes,
doubling with every further wrong PIN up to an hour (a lead, or ``edge users reset``,
unlocks); and the web layer limits attempts per client address (edge.web.auth). An
unknown name costs the same hash as a known one and gets the same answer.

A session is a random token in an HttpOnly cookie; only its SHA-256 is stored. It ends
at sign-out, when the person is disabled or their PIN is reset, or after the shift
(``web.session_hours``). Nothing is deleted: ended sessions and disabled people keep
their rows, and every change is in the audit log.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edge.errors import StaffError
from edge.ids import iso, new_id, parse_iso
from edge.storage.store import Store

ROLES = ("staff", "lead", "courier", "technician")
FREE_FAILURES = 5
FIRST_LOCK_MIN = 5
LONGEST_LOCK_MIN = 60
PIN_RE = re.compile(r"[0-9]{4,8}")

_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_HASHING = threading.BoundedSemaphore(2)  # at most two 19 MiB hashes at once on a Pi
_DUMMY_HASH = _HASHER.hash("not a pin")  # an unknown name costs what a known one does


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    role: str


@dataclass(frozen=True)
class Session:
    token: str  # for the cookie; never stored
    person: Person
    expires_at: datetime


class AccountError(StaffError):
    """A sign-in or account change refused, with what to do (Vietnamese and English)."""


def name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def check_pin(pin: str) -> str:
    if not PIN_RE.fullmatch(pin):
        raise AccountError(
            "bad_pin",
            "Mã PIN phải gồm 4 đến 8 chữ số.",
            "A PIN is 4 to 8 digits.",
            422,
        )
    return pin


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(
            "bad_role",
            f"Vai trò không hợp lệ: {role}. Chọn một trong: {', '.join(ROLES)}.",
            f"Unknown role {role!r}; one of: {', '.join(ROLES)}.",
            422,
        )
    return role


def hash_pin(pin: str) -> str:
    with _HASHING:
        return _HASHER.hash(check_pin(pin))


def _pin_matches(pin_hash: str, pin: str) -> bool:
    with _HASHING:
        try:
            return _HASHER.verify(pin_hash, pin)
        except (VerificationError, InvalidHashError):
            return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lock_minutes(failures: int) -> int:
    """How long a person is locked out after ``failures`` wrong PINs in a row."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(LONGEST_LOCK_MIN, FIRST_LOCK_MIN * 2 ** (failures - FREE_FAILURES)))


_WRONG = (
    "wrong_pin",
    "Tên hoặc mã PIN không đúng. Kiểm tra lại rồi thử lần nữa.",
    "Wrong name or PIN. Check them and try again.",
    401,
)


class People:
    def __init__(self, store: Store, session_hours: float = 12.0) -> None:
        self.store = store
        self.session_hours = session_hours

    # -- accounts ---------------------------------------------------------------------

    def add(self, name: str, role: str, pin: str, actor: str) -> Person:
        name = " ".join(name.split())
        if not name:
            raise AccountError("bad_name", "Tên không được để trống.", "The name is empty.", 422)
        check_role(role)
        pin_hash = hash_pin(pin)
        now = iso(self.store.now())
        with self.store.write() as db:
            if db.execute("SELECT 1 FROM people WHERE name_key = ?", [name_key(name)]).fetchone():
                raise AccountError(
                    "name_taken",
                    f"Đã có người tên “{name}”. Dùng tên khác (thêm họ hoặc số).",
                    f"There is already someone called {name!r}; use another name.",
                    409,
                )
            person = Person(new_id(self.store.now()), name, role)
            db.table("people").insert(
                {
                    "id": person.id,
                    "name": name,
                    "name_key": name_key(name),
                    "role": role,
                    "pin_hash": pin_hash,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self.store.audit(db, "person.added", person.id, actor=actor, name=name, role=role)
        return person

    def list(self) -> list[dict[str, Any]]:
        rows = self.store.rows(
            "SELECT id, name, role, disabled, failed_attempts, locked_until, created_at "
            "FROM people ORDER BY name_key"
        )
        for r in rows:
            r["disabled"] = bool(r["disabled"])
        return rows

    def find(self, name: str) -> dict[str, Any]:
        rows = self.store.rows("SELECT * FROM people WHERE name_key = ?", (name_key(name),))
        if not rows:
            raise AccountError(
                "no_such_person",
                f"Không có người tên “{name}”.",
                f"Nobody is called {name!r}.",
                404,
            )
        return rows[0]

    def reset(self, name: str, pin: str, actor: str) -> None:
        """A new PIN: unlocks, and ends the person's open sessions."""
        person = self.find(name)
        pin_hash = hash_pin(pin)
        now = iso(self.store.now())
        with self.store.write() as db:
            db.execute(
                "UPDATE people SET pin_hash = ?, failed_attempts = 0, locked_until = NULL, "
                "updated_at = ? WHERE id = ?",
                [pin_hash, now, person["id"]],
            )
            self._end_sessions(db, person["id"], now)
            self.store.audit(db, "person.pin_reset", person["id"], actor=actor)

    def set_disabled(self, name: str, disabled: bool, actor: str) -> None:
        """Disable (ends their sessions) or enable again; the person's row stays."""
        person = self.find(name)
        now = iso(self.store.now())
        with self.store.write() as db:
            db.execute(
                "UPDATE people SET disabled = ?, updated_at = ? WHERE id = ?",
                [int(disabled), now, person["id"]],
            )
            if disabled:
                self._end_sessions(db, person["id"], now)
            action = "person.disabled" if disabled else "person.enabled"
            self.store.audit(db, action, person["id"], actor=actor)

    @staticmethod
    def _end_sessions(db: Any, person_id: str, now: str) -> None:
        db.execute(
            "UPDATE sessions SET ended_at = ? WHERE person_id = ? AND ended_at IS NULL",
            [now, person_id],
        )

    # -- signing in -------------------------------------------------------------------

    def sign_in(self, name: str, pin: str) -> Session:
        """A new session, or an :class:`AccountError` (wrong name or PIN alike, locked,
        disabled)."""
        rows = self.store.rows("SELECT * FROM people WHERE name_key = ?", (name_key(name),))
        row = self._pin_checked(rows[0] if rows else None, pin)
        now = self.store.now()
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(hours=self.session_hours)
        person = Person(row["id"], row["name"], row["role"])
        with self.store.write() as db:
            db.execute(
                "UPDATE people SET failed_attempts = 0, locked_until = NULL WHERE id = ?",
                [row["id"]],
            )
            db.table("sessions").insert(
                {
                    "token_hash": token_hash(token),
                    "person_id": row["id"],
                    "created_at": iso(now),
                    "expires_at": iso(expires),
                }
            )
            self.store.audit(db, "person.signed_in", row["id"], actor=row["name"])
        return Session(token, person, expires)

    def confirm_pin(self, person_id: str, pin: str) -> Person:
        """The person's own PIN confirming an act (a courier closing a handover): checked
        as at sign-in (wrong PINs count towards the lock-out), no session made."""
        rows = self.store.rows("SELECT * FROM people WHERE id = ?", (person_id,))
        row = self._pin_checked(rows[0] if rows else None, pin)
        with self.store.write() as db:
            db.execute(
                "UPDATE people SET failed_attempts = 0, locked_until = NULL WHERE id = ?",
                [row["id"]],
            )
        return Person(row["id"], row["name"], row["role"])

    def _pin_checked(self, row: dict[str, Any] | None, pin: str) -> dict[str, Any]:
        """``row`` once ``pin`` is its PIN; else an :class:`AccountError` (no such person
        and a wrong PIN alike, locked, disabled)."""
        now = self.store.now()
        if row is not None and row["locked_until"] and parse_iso(row["locked_until"]) > now:
            raise self._locked(parse_iso(row["locked_until"]), now)
        if not _pin_matches(row["pin_hash"] if row else _DUMMY_HASH, pin) or row is None:
            if row is not None:
                self._failed(row)
            if not self.store.rows("SELECT 1 FROM people LIMIT 1"):
                raise AccountError(
                    "no_people_yet",
                    "Trạm chưa có tài khoản nào. Trên máy trạm, chạy: "
                    "edge users add TÊN --role lead",
                    "Nobody can sign in yet. On the station, run: edge users add NAME --role lead",
                    401,
                )
            raise AccountError(*_WRONG)
        if row["disabled"]:
            raise AccountError(
                "disabled",
                "Tài khoản này đã bị khóa. Nhờ trưởng điểm mở lại.",
                "This account is disabled. Ask the point's lead to enable it.",
                403,
            )
        return row

    def _failed(self, row: dict[str, Any]) -> None:
        now = self.store.now()
        with self.store.write() as db:
            failures = int(
                db.execute(
                    "UPDATE people SET failed_attempts = failed_attempts + 1 WHERE id = ? "
                    "RETURNING failed_attempts",
                    [row["id"]],
                ).fetchone()[0]
            )
            minutes = lock_minutes(failures)
            until = iso(now + timedelta(minutes=minutes)) if minutes else None
            if until:
                db.execute("UPDATE people SET locked_until = ? WHERE id = ?", [until, row["id"]])
            self.store.audit(
                db,
                "person.wrong_pin",
                row["id"],
                actor="station",
                failures=failures,
                locked_until=until,
            )
        if until:
            raise self._locked(parse_iso(until), now)

    @staticmethod
    def _locked(until: datetime, now: datetime) -> AccountError:
        minutes = max(1, -int(-(until - now).total_seconds() // 60))
        return AccountError(
            "locked",
            f"Nhập sai mã PIN quá nhiều lần: tài khoản tạm khóa khoảng {minutes} phút. "
            "Chờ rồi thử lại, hoặc nhờ trưởng điểm đặt lại mã PIN.",
            f"Too many wrong PINs: this account is locked for about {minutes} min. Wait, "
            "or ask the lead to reset the PIN.",
            423,
        )

    def session_person(self, token: str) -> Person | None:
        """The person of a live session, or None (unknown, ended, expired, disabled)."""
        rows = self.store.rows(
            "SELECT p.id, p.name, p.role FROM sessions s JOIN people p ON p.id = s.person_id "
            "WHERE s.token_hash = ? AND s.ended_at IS NULL AND s.expires_at > ? "
            "AND p.disabled = 0",
            (token_hash(token), iso(self.store.now())),
        )
        return Person(**rows[0]) if rows else None

    def sign_out(self, token: str) -> None:
        with self.store.write() as db:
            db.execute(
                "UPDATE sessions SET ended_at = ? WHERE token_hash = ? AND ended_at IS NULL",
                [iso(self.store.now()), token_hash(token)],
            )
