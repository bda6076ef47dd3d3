"""Requests in the PostgreSQL store (``store/requests.py``): the table ``burnlink_requests``
(schema version 9).

``answer_request`` is one statement: its first CTE closes the request with an
``UPDATE … WHERE state = 'open' AND expires_at > now``, and the answer's receipt, lines,
outbox records and secret are inserted only from the row that ``UPDATE`` returned. The
``UPDATE`` takes the row's lock; a concurrent second answer waits for it and, under READ
COMMITTED, re-checks its ``WHERE`` against the committed row, which is no longer open, so it
changes and keeps nothing. ``expire_request`` is one statement in the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import psycopg.errors

from burnlink.errors import DuplicateId
from burnlink.models import SecretRecord
from burnlink.store.postgres.arrays import ByteaArray
from burnlink.store.postgres.params import secret_params
from burnlink.store.postgres.pool import Connection, planned_per_call
from burnlink.store.postgres.sql import INSERT_ENVELOPE_ROW
from burnlink.store.postgres.sql import _keep as keep_events
from burnlink.store.requests import Answer, RequestRecord, RequestState, StoredRequest
from burnlink.store.secrets import Recorded

__all__ = ["PostgresRequests"]

_COLUMNS: Final = (
    "id, requester_digest, answer_digest, public_key, description, created_at, expires_at,"
    " answer_ttl, answer_views, recipients, notify_url, notify_email, owner, owner_email"
)
_OUTBOX: Final = """
INSERT INTO burnlink_outbox (record)
SELECT o.record FROM unnest(%(outbox)s::bytea[]) WITH ORDINALITY AS o (record, n)
WHERE EXISTS (SELECT 1 FROM changed)
ORDER BY o.n
"""
CREATE_REQUEST: Final = f"""
WITH changed AS (
    INSERT INTO burnlink_requests ({_COLUMNS}, state, keep_until)
    VALUES (%(id)s, %(requester_digest)s, %(answer_digest)s, %(public_key)s, %(description)s,
            %(created_at)s, %(expires_at)s, %(answer_ttl)s, %(answer_views)s, %(recipients)s,
            %(notify_url)s, %(notify_email)s, %(owner)s, %(owner_email)s, 'open',
            %(keep_until)s)
    RETURNING id
)
{_OUTBOX}
"""  # noqa: S608 - constants only
GET_REQUEST: Final = f"""
SELECT {_COLUMNS}, state, answered_at FROM burnlink_requests
WHERE id = %(id)s AND keep_until > %(now)s
"""  # noqa: S608 - constants only
EXPIRE_REQUEST: Final = f"""
WITH changed AS (
    UPDATE burnlink_requests SET state = 'expired'
    WHERE id = %(id)s AND state = 'open' AND expires_at <= %(now)s
    RETURNING id
), kept AS ({_OUTBOX})
SELECT count(*) FROM changed
"""  # noqa: S608 - constants only
DUE_REQUESTS: Final = """
SELECT id FROM burnlink_requests WHERE state = 'open' AND expires_at <= %(now)s
ORDER BY expires_at LIMIT %(limit)s
"""
PURGE_REQUESTS: Final = """
DELETE FROM burnlink_requests WHERE id IN (
    SELECT id FROM burnlink_requests WHERE keep_until <= %(now)s
    ORDER BY keep_until LIMIT %(limit)s
)
"""
STATE: Final = "SELECT state FROM burnlink_requests WHERE id = %(id)s AND keep_until > %(now)s"


ANSWER_REQUEST: Final = f"""
WITH closed AS (
    UPDATE burnlink_requests
    SET state = 'answered', answered_at = %(now)s,
        keep_until = GREATEST(keep_until, %(keep_until)s)
    WHERE id = %(id)s AND state = 'open' AND expires_at > %(now)s AND keep_until > %(now)s
    RETURNING id
), receipt AS (
    INSERT INTO burnlink_receipts
        (id, manage_digest, created_at, expires_at, max_views, views_used, keep_until, owner,
         label, owner_email)
    SELECT closed.id, %(manage_digest)s, %(created_at)s, %(expires_at)s, %(max_views)s, 0,
           %(keep_until)s, %(owner)s, %(label)s, %(owner_email)s
    FROM closed
    RETURNING id
), {keep_events("receipt", "EXISTS (SELECT 1 FROM receipt)")}, answered AS (
{INSERT_ENVELOPE_ROW}    RETURNING id
)
SELECT count(*) FROM answered
"""  # noqa: S608 - constants only
"""Close the request and create its answer (as ``sql.CREATE`` does), in one statement."""


def _request_from_row(row: Sequence[Any]) -> StoredRequest:
    record = RequestRecord(
        request_id=row[0],
        requester_digest=bytes(row[1]),
        answer_digest=bytes(row[2]),
        public_key=bytes(row[3]),
        description=row[4],
        created_at=row[5],
        expires_at=row[6],
        answer_ttl=row[7],
        answer_views=row[8],
        recipients=tuple(row[9]),
        notify_url=row[10],
        notify_email=row[11],
        owner=row[12],
        owner_email=row[13],
    )
    return StoredRequest(record, RequestState(row[14]), row[15])


class PostgresRequests:
    """``RequestRecords`` of ``PostgresStore``."""

    if TYPE_CHECKING:
        _retention: timedelta

        def _connection(self) -> AbstractAsyncContextManager[Connection]: ...

    async def create_request(self, record: RequestRecord, *, events: Sequence[Recorded]) -> None:
        """See ``RequestRecords.create_request``: one statement."""
        params = {
            "id": record.request_id,
            "requester_digest": record.requester_digest,
            "answer_digest": record.answer_digest,
            "public_key": record.public_key,
            "description": record.description,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "answer_ttl": record.answer_ttl,
            "answer_views": record.answer_views,
            "recipients": list(record.recipients),
            "notify_url": record.notify_url,
            "notify_email": record.notify_email,
            "owner": record.owner,
            "owner_email": record.owner_email,
            "keep_until": record.expires_at + self._retention,
            "outbox": ByteaArray(recorded.outbox for recorded in events),
        }
        async with self._connection() as conn:
            try:
                await conn.execute(CREATE_REQUEST, params)
            except psycopg.errors.UniqueViolation:
                raise DuplicateId("request id already taken") from None

    async def get_request(self, request_id: str, *, now: datetime) -> StoredRequest | None:
        """See ``RequestRecords.get_request``: one read."""
        async with self._connection() as conn:
            cursor = await conn.execute(GET_REQUEST, {"id": request_id, "now": now})
            row = await cursor.fetchone()
        if row is None:
            return None
        found = _request_from_row(row)
        if found.state is RequestState.OPEN and found.record.expires_at <= now:
            return StoredRequest(found.record, RequestState.EXPIRED)
        return found

    async def answer_request(
        self, record: SecretRecord, *, now: datetime, events: Sequence[Recorded]
    ) -> Answer:
        """See ``RequestRecords.answer_request``: one statement (the module docstring)."""
        params = {"now": now, **secret_params(record, events, self._retention)}
        async with self._connection() as conn:
            try:
                cursor = await conn.execute(ANSWER_REQUEST, params)
            except psycopg.errors.UniqueViolation:
                raise DuplicateId("secret id already taken") from None
            row = await cursor.fetchone()
            if row is not None and row[0]:
                return Answer.ANSWERED
            cursor = await conn.execute(STATE, {"id": record.secret_id, "now": now})
            state = await cursor.fetchone()
        if state is None:
            return Answer.GONE
        return Answer.TAKEN if state[0] == "answered" else Answer.EXPIRED

    async def due_requests(self, *, now: datetime, limit: int) -> list[str]:
        """See ``RequestRecords.due_requests``."""
        async with self._connection() as conn, planned_per_call(conn):
            cursor = await conn.execute(DUE_REQUESTS, {"now": now, "limit": max(limit, 0)})
            return [row[0] for row in await cursor.fetchall()]

    async def expire_request(
        self, request_id: str, *, now: datetime, events: Sequence[Recorded]
    ) -> bool:
        """See ``RequestRecords.expire_request``: one statement."""
        params = {"id": request_id, "now": now, "outbox": ByteaArray(e.outbox for e in events)}
        async with self._connection() as conn:
            cursor = await conn.execute(EXPIRE_REQUEST, params)
            row = await cursor.fetchone()
        return row is not None and bool(row[0])

    async def purge_requests(self, *, now: datetime, limit: int) -> int:
        """See ``RequestRecords.purge_requests``."""
        async with self._connection() as conn, planned_per_call(conn):
            cursor = await conn.execute(PURGE_REQUESTS, {"now": now, "limit": max(limit, 0)})
            return max(cursor.rowcount, 0)
