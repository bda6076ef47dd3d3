"""Sign-in in the PostgreSQL store (``store/identity.py``): the tables ``burnlink_sessions``
and ``burnlink_api_tokens`` (schema version 6), and "my secrets" from ``burnlink_receipts``
by owner.

Each rule is one statement. ``touch_session`` deletes a timed-out session in a CTE and moves
``last_seen`` of a live one in the main ``UPDATE``: both read one snapshot and their
conditions exclude each other, so exactly one of them applies, and a concurrent touch waits
on the row lock and re-checks its conditions on the row as committed (READ COMMITTED).
``use_token`` and ``revoke_token`` each decide and write in one ``UPDATE … WHERE …``.
Groups and scopes are ``text[]``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import TYPE_CHECKING, Any, Final

import psycopg.errors

from burnlink.errors import DuplicateId
from burnlink.models import ReceiptRecord
from burnlink.store.identity import SessionRecord, TokenRecord
from burnlink.store.postgres import sql
from burnlink.store.postgres.pool import Connection
from burnlink.store.sql_rows import (
    SESSION_COLUMNS,
    TOKEN_COLUMNS,
    ColumnTypes,
    receipt_from_rows,
    session_from_row,
    session_row,
    token_from_row,
    token_row,
)

__all__ = ["POSTGRES_TYPES", "PostgresIdentity"]

_INSERT_SESSION: Final = """
INSERT INTO burnlink_sessions
    (digest, subject, email, groups, mfa, auth_time, created_at, last_seen, expires_at)
VALUES (%(digest)s, %(subject)s, %(email)s, %(groups)s, %(mfa)s, %(auth_time)s,
        %(created_at)s, %(last_seen)s, %(expires_at)s)
"""
_TOUCH_SESSION: Final = """
WITH gone AS (
    DELETE FROM burnlink_sessions
    WHERE digest = %(digest)s AND (expires_at <= %(now)s OR last_seen <= %(idle_from)s)
)
UPDATE burnlink_sessions SET last_seen = %(now)s
WHERE digest = %(digest)s AND expires_at > %(now)s AND last_seen > %(idle_from)s
RETURNING digest, subject, email, groups, mfa, auth_time, created_at, last_seen, expires_at
"""
_INSERT_TOKEN: Final = """
INSERT INTO burnlink_api_tokens
    (token_id, digest, subject, email, groups, name, scopes, created_at, expires_at,
     last_used, revoked_at, keep_until)
VALUES (%(token_id)s, %(digest)s, %(subject)s, %(email)s, %(groups)s, %(name)s, %(scopes)s,
        %(created_at)s, %(expires_at)s, %(last_used)s, %(revoked_at)s, %(keep_until)s)
"""  # noqa: S105 - SQL, not a password
_USE_TOKEN: Final = """
UPDATE burnlink_api_tokens SET last_used = %(now)s
WHERE digest = %(digest)s AND revoked_at IS NULL AND expires_at > %(now)s
RETURNING token_id, digest, subject, email, groups, name, scopes, created_at, expires_at,
          last_used, revoked_at
"""  # noqa: S105 - SQL, not a password
_LIST_TOKENS: Final = """
SELECT token_id, digest, subject, email, groups, name, scopes, created_at, expires_at,
       last_used, revoked_at
FROM burnlink_api_tokens
WHERE subject = %(subject)s AND keep_until > %(now)s
ORDER BY created_at DESC, token_id DESC
"""
_REFRESH_TOKENS: Final = """
UPDATE burnlink_api_tokens SET email = %(email)s, groups = %(groups)s WHERE subject = %(subject)s
"""
_ALL_TOKENS: Final = """
SELECT token_id, digest, subject, email, groups, name, scopes, created_at, expires_at,
       last_used, revoked_at
FROM burnlink_api_tokens
WHERE keep_until > %(now)s
ORDER BY created_at DESC, token_id DESC
LIMIT %(limit)s
"""
_REVOKE_TOKEN: Final = """
UPDATE burnlink_api_tokens SET revoked_at = %(now)s, keep_until = %(keep_until)s
WHERE token_id = %(token_id)s AND revoked_at IS NULL AND expires_at > %(now)s
  AND (%(subject)s::text IS NULL OR subject = %(subject)s::text)
"""  # noqa: S105 - SQL, not a password


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


POSTGRES_TYPES: Final = ColumnTypes(
    time=lambda moment: moment, read_time=_utc, names=list, read_names=tuple
)
"""Times as ``timestamptz`` (read back as aware UTC), names as ``text[]``."""


class PostgresIdentity:
    """``Sessions``, ``ApiTokens`` and ``OwnedSecrets`` of ``PostgresStore``."""

    if TYPE_CHECKING:
        _retention: timedelta

        def _connection(self) -> AbstractAsyncContextManager[Connection]: ...

    async def _rows(self, statement: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cursor = await conn.execute(statement, params)
            return await cursor.fetchall() if cursor.description is not None else []

    async def _changed(self, statement: str, params: dict[str, object]) -> int:
        async with self._connection() as conn:
            cursor = await conn.execute(statement, params)
            return max(cursor.rowcount, 0)

    async def _insert(self, statement: str, params: dict[str, object], what: str) -> None:
        async with self._connection() as conn:
            try:
                await conn.execute(statement, params)
            except psycopg.errors.UniqueViolation:  # inside, before the pool translates it
                raise DuplicateId(f"{what} already kept") from None

    async def put_session(self, record: SessionRecord) -> None:
        """See ``Sessions.put_session``: one ``INSERT``; a kept digest raises ``DuplicateId``."""
        params = dict(zip(SESSION_COLUMNS, session_row(record, POSTGRES_TYPES), strict=True))
        await self._insert(_INSERT_SESSION, params, "session")

    async def touch_session(
        self, digest: bytes, *, now: datetime, idle_seconds: int
    ) -> SessionRecord | None:
        """See ``Sessions.touch_session``: one statement deletes it when timed out, else
        moves ``last_seen``."""
        params: dict[str, object] = {
            "digest": digest,
            "now": now,
            "idle_from": now - timedelta(seconds=idle_seconds),
        }
        rows = await self._rows(_TOUCH_SESSION, params)
        return session_from_row(rows[0], POSTGRES_TYPES) if rows else None

    async def end_session(self, digest: bytes) -> bool:
        """See ``Sessions.end_session``."""
        statement = "DELETE FROM burnlink_sessions WHERE digest = %(digest)s"
        return await self._changed(statement, {"digest": digest}) > 0

    async def end_sessions_of(self, subject: str) -> int:
        """See ``Sessions.end_sessions_of``: one ``DELETE`` by the index on the subject."""
        statement = "DELETE FROM burnlink_sessions WHERE subject = %(subject)s"
        return await self._changed(statement, {"subject": subject})

    async def put_token(self, record: TokenRecord) -> None:
        """See ``ApiTokens.put_token``: one ``INSERT``; a kept id or digest raises
        ``DuplicateId``."""
        params = dict(zip(TOKEN_COLUMNS, token_row(record, POSTGRES_TYPES), strict=True))
        params["keep_until"] = (record.revoked_at or record.expires_at) + self._retention
        await self._insert(_INSERT_TOKEN, params, "token")

    async def use_token(self, digest: bytes, *, now: datetime) -> TokenRecord | None:
        """See ``ApiTokens.use_token``: one ``UPDATE … RETURNING`` decides and writes."""
        rows = await self._rows(_USE_TOKEN, {"digest": digest, "now": now})
        return token_from_row(rows[0], POSTGRES_TYPES) if rows else None

    async def list_tokens(self, subject: str, *, now: datetime) -> list[TokenRecord]:
        """See ``ApiTokens.list_tokens``: one ``SELECT`` by the index on the subject."""
        rows = await self._rows(_LIST_TOKENS, {"subject": subject, "now": now})
        return [token_from_row(row, POSTGRES_TYPES) for row in rows]

    async def refresh_tokens(
        self, subject: str, *, email: str | None, groups: tuple[str, ...]
    ) -> int:
        """See ``ApiTokens.refresh_tokens``: one ``UPDATE`` by the index on the subject."""
        params: dict[str, object] = {
            "subject": subject,
            "email": email,
            "groups": POSTGRES_TYPES.names(groups),
        }
        return await self._changed(_REFRESH_TOKENS, params)

    async def all_tokens(self, *, now: datetime, limit: int) -> list[TokenRecord]:
        """See ``ApiTokens.all_tokens``: one ``SELECT``."""
        rows = await self._rows(_ALL_TOKENS, {"now": now, "limit": max(limit, 0)})
        return [token_from_row(row, POSTGRES_TYPES) for row in rows]

    async def revoke_token(self, token_id: str, *, now: datetime, subject: str | None) -> bool:
        """See ``ApiTokens.revoke_token``: one ``UPDATE`` decides and writes."""
        params: dict[str, object] = {
            "token_id": token_id,
            "now": now,
            "keep_until": now + self._retention,
            "subject": subject,
        }
        return await self._changed(_REVOKE_TOKEN, params) > 0

    async def owned_secrets(self, owner: str, *, now: datetime, limit: int) -> list[ReceiptRecord]:
        """See ``OwnedSecrets.owned_secrets``: one ``SELECT`` by the index on the owner."""
        params: dict[str, object] = {"owner": owner, "now": now, "limit": max(limit, 0)}
        rows = await self._rows(sql.OWNED, params)
        return [
            receipt_from_rows(secret_id, [row[1:] for row in group], POSTGRES_TYPES)
            for secret_id, group in groupby(rows, key=lambda row: str(row[0]))
        ]
