"""The console's connection to central's PostgreSQL store: a small pool, rows as dicts.

Every statement runs with a time limit (``statement_timeout``), so no request can keep
the database busy for long, and on the URL's ``search_path`` (the tests' own schema).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

Params = Sequence[Any] | dict[str, Any]


class ConsoleDbError(Exception):
    """The database cannot be reached or refused a statement."""


class ConsoleDb:
    def __init__(self, url: str, *, max_size: int = 8, statement_timeout_ms: int = 10_000) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConsoleDbError(
                f"the console needs central's PostgreSQL database (postgresql://...), not {url!r}"
            )
        self.url = url
        self.statement_timeout_ms = statement_timeout_ms
        self.pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=self._configure,
            open=False,
            name="console",
        )

    def _configure(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        conn.execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")

    def open(self, wait_s: float = 10.0) -> ConsoleDb:
        try:
            self.pool.open(wait=True, timeout=wait_s)
        except Exception as exc:  # PoolTimeout, OperationalError
            raise ConsoleDbError(f"cannot connect to {self.url}: {exc}") from exc
        return self

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection in autocommit mode (``with conn.transaction():`` for one)."""
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    def rows(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def execute(self, sql: str, params: Params = ()) -> int:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).rowcount
