"""Requests in the SQLite store (``store/requests.py``): the table ``requests`` (schema
version 9).

Each rule is one ``BEGIN IMMEDIATE`` transaction on the store's connection thread, which
holds SQLite's one writer lock: ``answer_request`` closes the request with one
``UPDATE … WHERE state = 'open' AND expires_at > ?`` and, only if that changed a row, inserts
the answer's receipt, secret, lines and outbox records in the same transaction, so a second
answer finds the request closed and changes nothing. Times are INTEGER milliseconds since the
Unix epoch; recipients a JSON array of strings.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

from burnlink.clock import from_epoch_ms, to_epoch_ms
from burnlink.errors import DuplicateId
from burnlink.models import SecretRecord
from burnlink.store.requests import Answer, RequestRecord, RequestState, StoredRequest
from burnlink.store.secrets import Recorded
from burnlink.store.sqlite.rows import (
    INSERT_INTO_EVENTS,
    INSERT_INTO_RECEIPTS,
    INSERT_INTO_SECRETS,
    event_row,
    receipt_row,
    secret_row,
)
from burnlink.store.sqlite.worker import error_name, immediate_transaction

__all__ = ["SqliteRequests"]

T = TypeVar("T")

_COLUMNS: Final = (
    "id, requester_digest, answer_digest, public_key, description, created_at, expires_at,"
    " answer_ttl, answer_views, recipients, notify_url, notify_email, owner, owner_email"
)
_INSERT: Final = (
    f"INSERT INTO requests ({_COLUMNS}, state, keep_until)"  # noqa: S608 - constants only
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)"
)
_SELECT: Final = (
    f"SELECT {_COLUMNS}, state, answered_at FROM requests"  # noqa: S608 - constants only
    " WHERE id = ? AND keep_until > ?"
)
_CLOSE: Final = (
    "UPDATE requests SET state = 'answered', answered_at = ?, keep_until = max(keep_until, ?)"
    " WHERE id = ? AND state = 'open' AND expires_at > ? AND keep_until > ?"
)
_STATE: Final = "SELECT state FROM requests WHERE id = ? AND keep_until > ?"
_EXPIRE: Final = (
    "UPDATE requests SET state = 'expired' WHERE id = ? AND state = 'open' AND expires_at <= ?"
)
_DUE: Final = (
    "SELECT id FROM requests WHERE state = 'open' AND expires_at <= ? ORDER BY expires_at LIMIT ?"
)
_PURGE: Final = (
    "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE keep_until <= ?"
    " ORDER BY keep_until LIMIT ?)"
)
_INSERT_INTO_OUTBOX: Final = "INSERT INTO outbox (record) VALUES (?)"
_DUPLICATE_KEY: Final = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


def request_from_row(row: Sequence[Any]) -> StoredRequest:
    """A ``StoredRequest`` from ``_SELECT``'s columns (the state as stored)."""
    record = RequestRecord(
        request_id=row[0],
        requester_digest=bytes(row[1]),
        answer_digest=bytes(row[2]),
        public_key=bytes(row[3]),
        description=row[4],
        created_at=from_epoch_ms(row[5]),
        expires_at=from_epoch_ms(row[6]),
        answer_ttl=row[7],
        answer_views=row[8],
        recipients=tuple(json.loads(row[9])),
        notify_url=row[10],
        notify_email=row[11],
        owner=row[12],
        owner_email=row[13],
    )
    answered = None if row[15] is None else from_epoch_ms(row[15])
    return StoredRequest(record, RequestState(row[14]), answered)


def _outbox(db: sqlite3.Connection, events: Sequence[Recorded]) -> None:
    if events:
        db.executemany(_INSERT_INTO_OUTBOX, [(recorded.outbox,) for recorded in events])


class SqliteRequests:
    """``RequestRecords`` of ``SqliteStore``."""

    if TYPE_CHECKING:
        _retention_ms: int

        async def _run(
            self,
            work: Callable[[sqlite3.Connection], T],
            *,
            writes: bool = False,
            alone: bool = False,
        ) -> T: ...

    async def create_request(self, record: RequestRecord, *, events: Sequence[Recorded]) -> None:
        """See ``RequestRecords.create_request``: one transaction."""
        row = (
            record.request_id,
            record.requester_digest,
            record.answer_digest,
            record.public_key,
            record.description,
            to_epoch_ms(record.created_at),
            to_epoch_ms(record.expires_at),
            record.answer_ttl,
            record.answer_views,
            json.dumps(list(record.recipients)),
            record.notify_url,
            record.notify_email,
            record.owner,
            record.owner_email,
            to_epoch_ms(record.expires_at) + self._retention_ms,
        )

        def insert(db: sqlite3.Connection) -> None:
            try:
                with immediate_transaction(db):
                    db.execute(_INSERT, row)
                    _outbox(db, events)
            except sqlite3.IntegrityError as exc:
                if error_name(exc) not in _DUPLICATE_KEY:
                    raise
                raise DuplicateId("request id already taken") from exc

        await self._run(insert, writes=True)

    async def get_request(self, request_id: str, *, now: datetime) -> StoredRequest | None:
        """See ``RequestRecords.get_request``: one read."""
        now_ms = to_epoch_ms(now)

        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(_SELECT, (request_id, now_ms)).fetchall()

        rows = await self._run(read)
        if not rows:
            return None
        found = request_from_row(rows[0])
        if found.state is RequestState.OPEN and found.record.expires_at <= now:
            return StoredRequest(found.record, RequestState.EXPIRED)
        return found

    async def answer_request(
        self, record: SecretRecord, *, now: datetime, events: Sequence[Recorded]
    ) -> Answer:
        """See ``RequestRecords.answer_request``: one transaction that closes the request
        and, only if it did, inserts the answer."""
        now_ms = to_epoch_ms(now)
        keep_ms = to_epoch_ms(record.expires_at) + self._retention_ms
        receipt = receipt_row(record, keep_until_ms=keep_ms)
        secret = secret_row(record)
        lines = [line for line in (e.line for e in events) if line is not None]
        rows = [event_row(record.secret_id, seq, line) for seq, line in enumerate(lines)]

        def answer(db: sqlite3.Connection) -> Answer:
            with immediate_transaction(db):
                closed = db.execute(
                    _CLOSE, (now_ms, keep_ms, record.secret_id, now_ms, now_ms)
                ).rowcount
                if not closed:
                    state = db.execute(_STATE, (record.secret_id, now_ms)).fetchall()
                    if not state:
                        return Answer.GONE
                    return Answer.TAKEN if state[0][0] == "answered" else Answer.EXPIRED
                try:
                    db.execute(INSERT_INTO_RECEIPTS, receipt)
                    db.execute(INSERT_INTO_SECRETS, secret)
                except sqlite3.IntegrityError as exc:  # the transaction rolls back
                    if error_name(exc) not in _DUPLICATE_KEY:
                        raise
                    raise DuplicateId("secret id already taken") from exc
                if rows:
                    db.executemany(INSERT_INTO_EVENTS, rows)
                _outbox(db, events)
            return Answer.ANSWERED

        return await self._run(answer, writes=True)

    async def due_requests(self, *, now: datetime, limit: int) -> list[str]:
        """See ``RequestRecords.due_requests``: walks the partial index of open requests."""
        params = (to_epoch_ms(now), max(limit, 0))

        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(_DUE, params).fetchall()

        return [row[0] for row in await self._run(read)]

    async def expire_request(
        self, request_id: str, *, now: datetime, events: Sequence[Recorded]
    ) -> bool:
        """See ``RequestRecords.expire_request``: one transaction."""

        def expire(db: sqlite3.Connection) -> bool:
            with immediate_transaction(db):
                if not db.execute(_EXPIRE, (request_id, to_epoch_ms(now))).rowcount:
                    return False
                _outbox(db, events)
            return True

        return await self._run(expire, writes=True)

    async def purge_requests(self, *, now: datetime, limit: int) -> int:
        """See ``RequestRecords.purge_requests``."""
        params = (to_epoch_ms(now), max(limit, 0))

        def purge(db: sqlite3.Connection) -> int:
            with immediate_transaction(db):
                return db.execute(_PURGE, params).rowcount

        return await self._run(partial(purge), writes=True)
