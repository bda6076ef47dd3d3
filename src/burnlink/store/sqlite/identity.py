"""Sign-in in the SQLite store (``store/identity.py``): the tables ``sessions`` and
``api_tokens`` (schema version 6), and "my secrets" from ``receipts`` by owner.

Each rule is one statement or one ``BEGIN IMMEDIATE`` transaction on the store's connection
thread (``burnlink.store.sqlite.store``): ``touch_session`` deletes a timed-out session and
moves ``last_seen`` of a live one in one transaction; ``use_token`` and ``revoke_token`` each
decide and write in one ``UPDATE … WHERE … RETURNING``. Times are INTEGER milliseconds since
the Unix epoch; groups and scopes are JSON arrays of strings.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from functools import partial
from itertools import groupby
from typing import TYPE_CHECKING, Final, TypeVar

from burnlink.clock import to_epoch_ms
from burnlink.errors import DuplicateId
from burnlink.models import ReceiptRecord
from burnlink.store.identity import SessionRecord, TokenRecord
from burnlink.store.sql_rows import (
    receipt_from_rows,
    session_from_row,
    session_row,
    token_from_row,
    token_row,
)
from burnlink.store.sqlite.rows import SELECT_OWNED, SQLITE_TYPES, Row
from burnlink.store.sqlite.worker import error_name, immediate_transaction

__all__ = ["SqliteIdentity"]

T = TypeVar("T")

# Column lists written out (no string building): the order of ``sql_rows.SESSION_COLUMNS`` and
# ``sql_rows.TOKEN_COLUMNS``, then ``keep_until``.
# S105 takes the names for passwords: they are SQL.
_INSERT_SESSION: Final = (
    "INSERT INTO sessions (digest, subject, email, groups, mfa, auth_time, created_at,"
    " last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TOUCH_SESSION: Final = (
    "UPDATE sessions SET last_seen = ? WHERE digest = ? RETURNING digest, subject, email,"
    " groups, mfa, auth_time, created_at, last_seen, expires_at"
)
_INSERT_TOKEN: Final = (
    "INSERT INTO api_tokens (token_id, digest, subject, email, groups, name, scopes,"  # noqa: S105
    " created_at, expires_at, last_used, revoked_at, keep_until)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_USE_TOKEN: Final = (
    "UPDATE api_tokens SET last_used = ?"  # noqa: S105 - SQL, not a password
    " WHERE digest = ? AND revoked_at IS NULL AND expires_at > ?"
    " RETURNING token_id, digest, subject, email, groups, name, scopes, created_at,"
    " expires_at, last_used, revoked_at"
)
_LIST_TOKENS: Final = (
    "SELECT token_id, digest, subject, email, groups, name, scopes, created_at, expires_at,"
    " last_used, revoked_at FROM api_tokens WHERE subject = ? AND keep_until > ?"
    " ORDER BY created_at DESC, token_id DESC"
)
_ALL_TOKENS: Final = (
    "SELECT token_id, digest, subject, email, groups, name, scopes, created_at, expires_at,"
    " last_used, revoked_at FROM api_tokens WHERE keep_until > ?"
    " ORDER BY created_at DESC, token_id DESC LIMIT ?"
)
_DUPLICATE_KEY: Final = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


def _insert(sql: str, row: tuple[object, ...], what: str, db: sqlite3.Connection) -> None:
    try:
        with immediate_transaction(db):
            db.execute(sql, row)
    except sqlite3.IntegrityError as exc:
        if error_name(exc) not in _DUPLICATE_KEY:
            raise
        raise DuplicateId(f"{what} already kept") from exc


def _touch(digest: bytes, now_ms: int, idle_ms: int, db: sqlite3.Connection) -> Row | None:
    with immediate_transaction(db):
        db.execute(
            "DELETE FROM sessions WHERE digest = ? AND (expires_at <= ? OR last_seen <= ?)",
            (digest, now_ms, now_ms - idle_ms),
        )
        rows = db.execute(_TOUCH_SESSION, (now_ms, digest)).fetchall()
    return rows[0] if rows else None


def _changes(sql: str, parameters: tuple[object, ...], db: sqlite3.Connection) -> int:
    with immediate_transaction(db):
        return db.execute(sql, parameters).rowcount


def _returning(sql: str, parameters: tuple[object, ...], db: sqlite3.Connection) -> list[Row]:
    with immediate_transaction(db):
        return db.execute(sql, parameters).fetchall()


def _select(sql: str, parameters: tuple[object, ...], db: sqlite3.Connection) -> list[Row]:
    return db.execute(sql, parameters).fetchall()


class SqliteIdentity:
    """``Sessions``, ``ApiTokens`` and ``OwnedSecrets`` of ``SqliteStore``."""

    if TYPE_CHECKING:
        _retention_ms: int

        async def _run(
            self,
            work: Callable[[sqlite3.Connection], T],
            *,
            writes: bool = False,
            alone: bool = False,
        ) -> T: ...

    async def put_session(self, record: SessionRecord) -> None:
        """See ``Sessions.put_session``: one ``INSERT``; a kept digest raises ``DuplicateId``."""
        await self._run(
            partial(_insert, _INSERT_SESSION, session_row(record, SQLITE_TYPES), "session"),
            writes=True,
        )

    async def touch_session(
        self, digest: bytes, *, now: datetime, idle_seconds: int
    ) -> SessionRecord | None:
        """See ``Sessions.touch_session``: one transaction deletes it when timed out, else
        moves ``last_seen``."""
        row = await self._run(
            partial(_touch, digest, to_epoch_ms(now), idle_seconds * 1000), writes=True
        )
        return None if row is None else session_from_row(row, SQLITE_TYPES)

    async def end_session(self, digest: bytes) -> bool:
        """See ``Sessions.end_session``."""
        sql = "DELETE FROM sessions WHERE digest = ?"
        return await self._run(partial(_changes, sql, (digest,)), writes=True) > 0

    async def end_sessions_of(self, subject: str) -> int:
        """See ``Sessions.end_sessions_of``: one ``DELETE`` by the index on the subject."""
        sql = "DELETE FROM sessions WHERE subject = ?"
        return await self._run(partial(_changes, sql, (subject,)), writes=True)

    async def put_token(self, record: TokenRecord) -> None:
        """See ``ApiTokens.put_token``: one ``INSERT``; a kept id or digest raises
        ``DuplicateId``."""
        keep_until_ms = to_epoch_ms(record.revoked_at or record.expires_at) + self._retention_ms
        row = (*token_row(record, SQLITE_TYPES), keep_until_ms)
        await self._run(partial(_insert, _INSERT_TOKEN, row, "token"), writes=True)

    async def use_token(self, digest: bytes, *, now: datetime) -> TokenRecord | None:
        """See ``ApiTokens.use_token``: one ``UPDATE … RETURNING`` decides and writes."""
        now_ms = to_epoch_ms(now)
        rows = await self._run(
            partial(_returning, _USE_TOKEN, (now_ms, digest, now_ms)), writes=True
        )
        return token_from_row(rows[0], SQLITE_TYPES) if rows else None

    async def list_tokens(self, subject: str, *, now: datetime) -> list[TokenRecord]:
        """See ``ApiTokens.list_tokens``: one ``SELECT`` by the index on the subject."""
        rows = await self._run(partial(_select, _LIST_TOKENS, (subject, to_epoch_ms(now))))
        return [token_from_row(row, SQLITE_TYPES) for row in rows]

    async def refresh_tokens(
        self, subject: str, *, email: str | None, groups: tuple[str, ...]
    ) -> int:
        """See ``ApiTokens.refresh_tokens``: one ``UPDATE`` by the index on the subject."""
        sql = "UPDATE api_tokens SET email = ?, groups = ? WHERE subject = ?"
        parameters = (email, SQLITE_TYPES.names(groups), subject)
        return await self._run(partial(_changes, sql, parameters), writes=True)

    async def all_tokens(self, *, now: datetime, limit: int) -> list[TokenRecord]:
        """See ``ApiTokens.all_tokens``: one ``SELECT``."""
        parameters = (to_epoch_ms(now), max(limit, 0))
        rows = await self._run(partial(_select, _ALL_TOKENS, parameters))
        return [token_from_row(row, SQLITE_TYPES) for row in rows]

    async def revoke_token(self, token_id: str, *, now: datetime, subject: str | None) -> bool:
        """See ``ApiTokens.revoke_token``: one ``UPDATE`` decides and writes."""
        now_ms = to_epoch_ms(now)
        sql = (
            "UPDATE api_tokens SET revoked_at = ?, keep_until = ?"
            " WHERE token_id = ? AND revoked_at IS NULL AND expires_at > ?"
            " AND (? IS NULL OR subject = ?)"
        )
        parameters = (now_ms, now_ms + self._retention_ms, token_id, now_ms, subject, subject)
        return await self._run(partial(_changes, sql, parameters), writes=True) > 0

    async def owned_secrets(self, owner: str, *, now: datetime, limit: int) -> list[ReceiptRecord]:
        """See ``OwnedSecrets.owned_secrets``: one ``SELECT`` by the index on the owner."""
        parameters = (owner, to_epoch_ms(now), max(limit, 0))
        rows = await self._run(partial(_select, SELECT_OWNED, parameters))
        return [
            receipt_from_rows(secret_id, [row[1:] for row in group], SQLITE_TYPES)
            for secret_id, group in groupby(rows, key=lambda row: str(row[0]))
        ]
