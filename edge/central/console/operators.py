"""Operator accounts: a username, a display name, a role and an argon2id password hash;
sessions are random tokens kept only as their SHA-256.

Roles: ``viewer`` reads everything; ``editor`` also changes the catalogue, prices and
SKU mapping; ``admin`` also manages operators. Five wrong passwords in a row lock the
account for :data:`LOCK_MINUTES` minutes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edge.central.console.db import ConsoleDb
from edge.ids import utc_now

ROLES = ("viewer", "editor", "admin")
RANK = {role: n for n, role in enumerate(ROLES)}
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 200
MAX_FAILED = 5
LOCK_MINUTES = 15
SESSION_HOURS = 12

_hasher = PasswordHasher()


class OperatorError(ValueError):
    """What was wrong, for the person typing it."""


@dataclass(frozen=True)
class Operator:
    username: str
    name: str
    role: str

    def may(self, role: str) -> bool:
        """This operator's role admits what ``role`` may do."""
        return RANK[self.role] >= RANK[role]


def check_new(username: str, name: str, role: str, password: str) -> None:
    if not USERNAME.fullmatch(username):
        raise OperatorError(
            f"username {username!r:.60}: 2 to 40 of a-z 0-9 . _ -, starting with a letter or digit"
        )
    if not name.strip() or len(name) > 80:
        raise OperatorError("name: 1 to 80 characters")
    if role not in ROLES:
        raise OperatorError(f"role {role!r:.20}: one of {', '.join(ROLES)}")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise OperatorError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def add_operator(db: ConsoleDb, username: str, name: str, role: str, password: str) -> Operator:
    """A new operator, or OperatorError (bad field, username taken)."""
    check_new(username, name, role, password)
    count = db.execute(
        "INSERT INTO operators (username, name, role, password_hash, created_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (username) DO NOTHING",
        (username, name.strip(), role, _hasher.hash(password), utc_now()),
    )
    if count != 1:
        raise OperatorError(f"username {username!r} is taken")
    return Operator(username, name.strip(), role)


def list_operators(db: ConsoleDb) -> list[dict[str, object]]:
    return db.rows(
        "SELECT username, name, role, disabled, created_at FROM operators ORDER BY username"
    )


def set_disabled(db: ConsoleDb, username: str, disabled: bool) -> None:
    if db.execute("UPDATE operators SET disabled = %s WHERE username = %s", (disabled, username)):
        if disabled:
            db.execute("DELETE FROM operator_sessions WHERE username = %s", (username,))
        return
    raise OperatorError(f"no operator {username!r}")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(db: ConsoleDb, username: str, password: str, now: datetime | None = None) -> str:
    """A new session token for the right password, else OperatorError (one message for
    an unknown user and a wrong password)."""
    now = now or utc_now()
    row = db.one(
        "SELECT name, role, password_hash, disabled, failed, locked_until FROM operators "
        "WHERE username = %s",
        (username,),
    )
    wrong = OperatorError("wrong username or password")
    if row is None or row["disabled"]:
        _hasher.hash(password[:MAX_PASSWORD])  # the same time as a real check
        raise wrong
    if row["locked_until"] is not None and row["locked_until"] > now:
        raise OperatorError(
            f"too many wrong passwords: this account is locked until "
            f"{row['locked_until']:%H:%M} UTC; ask an admin or wait"
        )
    try:
        _hasher.verify(row["password_hash"], password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        failed = int(row["failed"]) + 1
        locked = now + timedelta(minutes=LOCK_MINUTES) if failed >= MAX_FAILED else None
        db.execute(
            "UPDATE operators SET failed = %s, locked_until = %s WHERE username = %s",
            (0 if locked else failed, locked, username),
        )
        raise wrong from None
    token = secrets.token_urlsafe(32)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE operators SET failed = 0, locked_until = NULL WHERE username = %s",
            (username,),
        )
        conn.execute("DELETE FROM operator_sessions WHERE expires_at < %s", (now,))
        conn.execute(
            "INSERT INTO operator_sessions (token_hash, username, created_at, expires_at) "
            "VALUES (%s, %s, %s, %s)",
            (_token_hash(token), username, now, now + timedelta(hours=SESSION_HOURS)),
        )
    return token


def session_operator(db: ConsoleDb, token: str, now: datetime | None = None) -> Operator | None:
    if not token or len(token) > 100:
        return None
    row = db.one(
        "SELECT o.username, o.name, o.role FROM operator_sessions s "
        "JOIN operators o USING (username) "
        "WHERE s.token_hash = %s AND s.expires_at > %s AND NOT o.disabled",
        (_token_hash(token), now or utc_now()),
    )
    return None if row is None else Operator(row["username"], row["name"], row["role"])


def sign_out(db: ConsoleDb, token: str) -> None:
    db.execute("DELETE FROM operator_sessions WHERE token_hash = %s", (_token_hash(token),))
