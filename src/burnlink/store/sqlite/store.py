"""The embedded default store: one SQLite file, shared safely by several processes.

Layout
    ``receipts`` holds one row per secret ever created, until ``keep_until`` (the end of the
    secret, or its expiry, plus the retention period). ``secrets`` holds the live secrets, one
    row each, referencing its receipt, with its access policy (``AccessPolicy.to_bytes``;
    NULL for secrets created before schema version 2, read as the empty policy). ``events``
    holds a receipt's history, keyed by ``(receipt_id, seq)``. ``recipient_codes`` holds at most one
    one-time code per live secret (its digest, when it was put, its expiry, the tries
    left and how many codes were put since the last match), deleted with the secret by
    ``ON DELETE CASCADE``. ``counters`` holds one row per
    rate-limit bucket and fixed window, keyed by ``(bucket, window_start)``, until a sweep
    after ``window_end``. ``outbox`` (schema version 4) holds the recorded events not yet
    sealed into the audit log (``audit.outbox``), one row each: ``seq``, an ``INTEGER PRIMARY
    KEY AUTOINCREMENT`` that orders them and is their ``Pending.ref`` (never reused, so a
    stale acknowledgement cannot delete a newer record), and ``record``, the opaque bytes as
    given; a row stays until ``ack_events``, whatever becomes of its secret. ``sessions`` and
    ``api_tokens`` (schema version 6) keep sign-in, ``receipts.owner`` (indexed) lists a
    sender's secrets (``burnlink.store.sqlite.identity``) and ``receipts.owner_email``
    (schema version 7) names the owner on the receipt; ``events.viewer_email`` and
    ``events.viewer_mfa`` (schema version 8) name the signed-in recipient a line was made
    for. Times are
    INTEGER milliseconds since the Unix epoch (UTC).
    ``PRAGMA user_version`` records the schema version; ``burnlink.store.sqlite.schema``
    holds the DDL and the PRAGMAs, and ``open`` migrates an older file forward;
    ``burnlink.store.sqlite.rows`` maps records to rows and back.

Atomicity
    Every rule that touches more than one row runs inside one ``BEGIN IMMEDIATE`` … ``COMMIT``
    transaction, which takes SQLite's single write lock *before* reading anything. A read can
    therefore never be stale when the write that depends on it happens, even when several
    processes (each with its own connection) share the file: the lock is the file's, and
    other writers wait for it up to the busy timeout. ``consume`` in particular decides and
    decrements in one ``UPDATE … WHERE views_left > 0 … RETURNING``, so with K readers and V
    views exactly ``min(K, V)`` get the envelope. ``create`` inserts the receipt, the secret
    and its first lines in one. ``reveal`` counts the request's counters, reads the secret
    and, when it needs nothing but its link, takes the view with ``consume``'s statements, all
    in one transaction (one for the whole reveal, where there were two).
    ``record_failure`` likewise counts in one ``UPDATE … WHERE (attempts_left = 1) = :locks``,
    so an attempt locks the secret only when its caller audited it as the lockout. Expiry is
    checked in the same statement against the caller's ``now``. ``put_code`` and ``hit`` are
    each one upsert (``INSERT … ON CONFLICT DO UPDATE … RETURNING``; a refused ``put_code``
    reads why in the same transaction); ``check_code`` takes a try in one
    ``UPDATE … RETURNING`` and deletes a matched code in the same transaction.

    Events travel inside the transaction of the change they describe: ``create``,
    ``consume``, ``record_failure`` and ``burn`` append their ``Recorded`` lines (each
    ``INSERT`` checks its kind's cap; ``create`` numbers a new receipt's lines itself) and
    insert their outbox rows after the statement that decided, before the ``COMMIT``, so a
    change is committed with its events or neither is, and a refused change (a wrong digest,
    a gone secret, an attempt that does not lock as told, a taken id) keeps none; a failed
    outbox ``INSERT`` rolls the change back. ``record`` keeps events that change no secret in
    one transaction of their own. ``pending_events`` is one ``SELECT`` (no transaction, no
    lock) and ``ack_events`` one transaction that deletes by ``seq``.

    Inside a process all calls share one connection on a thread of its own
    (``burnlink.store.sqlite.worker``). Each call is one plain function of the connection that runs
    its whole transaction there: one hand-over between the event loop and the thread per call,
    however many statements it runs, and the file's write lock is held only while those
    statements run, never across a trip through the event loop. The one thread runs the calls
    one after another, so statements of different transactions never interleave. A caller
    cancelled before its call started leaves nothing behind (the call never runs); once
    started, the call runs to its ``COMMIT``, or its ``ROLLBACK`` on an error, whatever
    happens to the caller, so a transaction is never left open or half applied. (A cancelled
    ``consume`` may thus have taken a view whose envelope reached no one, as when a reply is
    lost on the way; it never lets two callers have one view.)

Residue
    ``PRAGMA secure_delete=ON`` makes SQLite overwrite deleted rows and freed pages with zeros.
    In WAL mode, though, every committed change is first appended to the ``-wal`` file, so an
    envelope written or updated there stays readable in old frames after the row is gone.
    ``purge_expired`` therefore ends with ``PRAGMA wal_checkpoint(TRUNCATE)``, which copies
    the current (zeroed) pages into the database file and truncates the WAL to zero bytes. Any
    ciphertext of a secret that ended before a sweep is gone from both files after it
    (unless another process still reads an old snapshot; the next sweep then finishes the
    job). Copies outside SQLite's files (file-system journals, SSD remapping, backups) are
    beyond what a database can erase.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import partial
from typing import Final, TypeVar

from burnlink.clock import MILLISECOND, to_epoch_ms
from burnlink.errors import DuplicateId, StorageUnavailable
from burnlink.models import (
    CodeCheck,
    CodePut,
    Consumed,
    EndReason,
    Event,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
)
from burnlink.store.counters import Hit, over_limit
from burnlink.store.outbox import Pending
from burnlink.store.secrets import (
    MAX_EVENTS_PER_KIND,
    Attempt,
    Recorded,
    Reveal,
    ViewRecord,
    takes_view,
)
from burnlink.store.sql_rows import receipt_from_rows
from burnlink.store.sqlite.identity import SqliteIdentity
from burnlink.store.sqlite.requests import SqliteRequests
from burnlink.store.sqlite.rows import (
    INSERT_INTO_EVENTS,
    INSERT_INTO_RECEIPTS,
    INSERT_INTO_SECRETS,
    SELECT_META,
    SELECT_RECEIPT,
    SQLITE_TYPES,
    STAND_IN_ROW,
    Row,
    event_row,
    meta_from_row,
    receipt_row,
    secret_row,
    viewer_columns,
)
from burnlink.store.sqlite.schema import SCHEMA_VERSION, database_file, prepare, prepare_file
from burnlink.store.sqlite.worker import (
    SqliteWorker,
    WorkerClosed,
    error_name,
    immediate_transaction,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

MIN_SQLITE_VERSION: Final = (3, 35, 0)
"""``UPDATE … RETURNING`` and ``DELETE … RETURNING`` first shipped in SQLite 3.35."""

DEFAULT_BUSY_TIMEOUT: Final = timedelta(seconds=5)

LOG = logging.getLogger(__name__)

_END_RECEIPT: Final = (
    "UPDATE receipts SET views_used = views_used + ?, ended_at = ?, end_reason = ?,"
    " keep_until = ? WHERE id = ?"
)
# Checks the kind's cap and appends in one statement: a writing statement takes the write
# lock before it reads the count.
_APPEND_EVENT: Final = (
    "INSERT INTO events (receipt_id, seq, at, kind, ip, user_agent, viewer_email, viewer_mfa)"
    " SELECT r.id, COALESCE((SELECT MAX(seq) + 1 FROM events WHERE receipt_id = r.id), 0),"
    " ?, ?, ?, ?, ?, ? FROM receipts AS r WHERE r.id = ?"
    " AND (SELECT COUNT(*) FROM events WHERE receipt_id = r.id AND kind = ?) < ?"
)

_INSERT_INTO_OUTBOX: Final = "INSERT INTO outbox (record) VALUES (?)"

_DUPLICATE_KEY: Final = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})

T = TypeVar("T")


def _unavailable(exc: sqlite3.Error) -> StorageUnavailable:
    # SQLite's messages name tables and columns, never bound values; only the code is logged.
    LOG.warning("SQLite store error: %s", error_name(exc))
    return StorageUnavailable(f"The secret store is unavailable (SQLite: {error_name(exc)}).")


class SqliteStore(SqliteIdentity, SqliteRequests):
    """A ``SecretStore`` in one SQLite file, through one connection (and thread) per process."""

    def __init__(self, worker: SqliteWorker, *, retention: timedelta) -> None:
        """Wrap an open, prepared connection; use ``SqliteStore.open`` instead."""
        self._worker = worker
        self._retention_ms = retention // MILLISECOND

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        retention: timedelta,
        busy_timeout: timedelta = DEFAULT_BUSY_TIMEOUT,
    ) -> SqliteStore:
        """Open (creating if needed) the database file at ``path`` and bring its schema to
        ``SCHEMA_VERSION`` (a file of an older version is migrated in place).

        ``path`` is everything after ``sqlite://``. Raises ``ConfigError`` for a path that is
        not a file path and ``StorageUnavailable`` when the file cannot be created or opened.
        """
        file = database_file(path)
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise StorageUnavailable(
                f"The SQLite store needs SQLite 3.35 or newer; this Python has "
                f"{sqlite3.sqlite_version}."
            )
        try:
            await asyncio.to_thread(prepare_file, file)
        except OSError as exc:
            raise StorageUnavailable(
                f"Cannot create the SQLite store at {file}: {exc.strerror or type(exc).__name__}."
            ) from exc
        try:
            worker = await SqliteWorker.open(
                str(file), busy_timeout=busy_timeout, name="burnlink-store"
            )
        except sqlite3.Error as exc:
            raise StorageUnavailable(
                f"Cannot open the SQLite store at {file}: {error_name(exc)}."
            ) from exc
        try:
            await worker.run(partial(prepare, file, busy_timeout), writes=True)
        except sqlite3.Error as exc:
            await worker.aclose()
            raise StorageUnavailable(
                f"Cannot open the SQLite store at {file}: {error_name(exc)}."
            ) from exc
        except BaseException:
            await worker.aclose()
            raise
        return cls(worker, retention=retention)

    async def _run(
        self, work: Callable[[sqlite3.Connection], T], *, writes: bool = False, alone: bool = False
    ) -> T:
        """``work`` on the connection's thread, its SQLite errors as ``StorageUnavailable``.
        A unit that ``writes`` holds the writer lock and shares its transaction's ``COMMIT``
        with the others waiting (the worker's group commit), unless it must run ``alone``."""
        try:
            return await self._worker.run(work, writes=writes, grouped=writes and not alone)
        except WorkerClosed:
            raise StorageUnavailable("The SQLite store is closed.") from None
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work``, which only reads, where it waits least (``SqliteWorker.read``), its
        SQLite errors as ``StorageUnavailable``."""
        try:
            return await self._worker.read(work)
        except WorkerClosed:
            raise StorageUnavailable("The SQLite store is closed.") from None
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    # -- SecretStore ------------------------------------------------------------------------

    async def create(
        self, record: SecretRecord, *, events: Sequence[Recorded] = (), hits: Sequence[Hit] = ()
    ) -> list[int]:
        """See ``SecretStore.create``: the counts of ``hits``, then (unless one is past its
        limit) receipt, secret, the receipt's first lines and the outbox records of ``events``,
        in one transaction; raises ``DuplicateId`` (keeping nothing, counts included) if the
        id is live or kept."""
        now_ms = to_epoch_ms(record.created_at)
        receipt = receipt_row(
            record, keep_until_ms=to_epoch_ms(record.expires_at) + self._retention_ms
        )
        secret = secret_row(record)
        # The receipt is new, so its lines are numbered and capped here, not counted in SQL.
        lines = [event_row(record.secret_id, seq, line) for seq, line in _first_lines(events)]
        outbox = _outbox_rows(events)

        def insert(db: sqlite3.Connection) -> list[int]:
            try:
                with immediate_transaction(db):
                    counts = [_count(db, hit, now_ms) for hit in hits]
                    if over_limit(hits, counts):
                        return counts
                    db.execute(INSERT_INTO_RECEIPTS, receipt)
                    db.execute(INSERT_INTO_SECRETS, secret)
                    if lines:
                        db.executemany(INSERT_INTO_EVENTS, lines)
                    if outbox:
                        db.executemany(_INSERT_INTO_OUTBOX, outbox)
            except sqlite3.IntegrityError as exc:
                if error_name(exc) not in _DUPLICATE_KEY:
                    raise
                raise DuplicateId("secret id already taken") from exc
            return counts

        return await self._run(insert, writes=True)

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        """See ``SecretStore.peek``, with the secret's access policy."""
        rows = await self._run(partial(_fetch, SELECT_META, (secret_id, to_epoch_ms(now))))
        return meta_from_row(secret_id, rows[0]) if rows else None

    async def reveal(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        hits: Sequence[Hit],
        view: ViewRecord | None = None,
    ) -> Reveal:
        """See ``SecretStore.reveal``: one hand-over to the thread and one transaction that
        counts, reads the secret and, when it may, takes the view with its event (as
        ``consume``); a read-only call (no cost, no view) takes no write lock."""
        now_ms = to_epoch_ms(now)
        retention_ms = self._retention_ms
        writes = view is not None or any(hit.cost for hit in hits)

        def count_and_take(
            db: sqlite3.Connection,
        ) -> tuple[list[int], SecretMeta | None, Consumed | None]:
            with immediate_transaction(db) if writes else nullcontext():
                counts = [_count(db, hit, now_ms) for hit in hits]
                if over_limit(hits, counts):
                    return counts, None, None
                rows = db.execute(SELECT_META, (secret_id, now_ms)).fetchall()
                # An id that is not live decodes and weighs a stand-in instead: the same work.
                meta = meta_from_row(secret_id, rows[0] if rows else STAND_IN_ROW)
                takes = takes_view(meta, access_digest)
                if not rows:
                    return counts, None, None
                if view is None or not takes:
                    return counts, meta, None
                events = [view.completed(meta.max_views)]
                consumed = _take(db, secret_id, access_digest, now_ms, retention_ms, events)
            return counts, meta, consumed

        counts, meta, consumed = await self._run(count_and_take, writes=writes)
        return Reveal(counts, meta, consumed)

    async def consume(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        events: Sequence[Recorded] = (),
    ) -> Consumed | None:
        """See ``SecretStore.consume``: one transaction decides, decrements, counts the view
        and keeps ``events``; a refused view writes nothing."""
        now_ms = to_epoch_ms(now)
        retention_ms = self._retention_ms

        def take(db: sqlite3.Connection) -> Consumed | None:
            with immediate_transaction(db):
                return _take(db, secret_id, access_digest, now_ms, retention_ms, events)

        return await self._run(take, writes=True)

    async def record_failure(
        self, secret_id: str, *, now: datetime, locks: bool, events: Sequence[Recorded] = ()
    ) -> Attempt | None:
        """See ``SecretStore.record_failure``: one ``UPDATE … WHERE`` counts only when
        ``locks`` matches, and ``events`` are kept in the same transaction; when it does not
        count, that transaction (which holds the file's write lock) reads why and keeps
        nothing."""
        now_ms = to_epoch_ms(now)
        retention_ms = self._retention_ms

        def count(db: sqlite3.Connection) -> Attempt | None:
            with immediate_transaction(db):
                rows = db.execute(
                    "UPDATE secrets SET attempts_left = attempts_left - 1"
                    " WHERE id = ? AND expires_at > ? AND attempts_left > 0"
                    " AND (attempts_left = 1) = ?"
                    " RETURNING attempts_left",
                    (secret_id, now_ms, locks),
                ).fetchall()
                if not rows:
                    rows = db.execute(
                        "SELECT attempts_left FROM secrets WHERE id = ? AND expires_at > ?",
                        (secret_id, now_ms),
                    ).fetchall()
                    return Attempt(counted=False, attempts_left=int(rows[0][0])) if rows else None
                attempts_left = int(rows[0][0])
                _keep(db, secret_id, events)
                if attempts_left == 0:
                    db.execute("DELETE FROM secrets WHERE id = ?", (secret_id,))
                    _end(db, secret_id, now_ms, EndReason.LOCKED, retention_ms)
            return Attempt(counted=True, attempts_left=attempts_left)

        return await self._run(count, writes=True)

    async def burn(
        self,
        secret_id: str,
        *,
        now: datetime,
        reason: EndReason = EndReason.BURNED,
        events: Sequence[Recorded] = (),
    ) -> bool:
        """See ``SecretStore.burn``: delete, end the receipt and keep ``events`` in one
        transaction."""
        now_ms = to_epoch_ms(now)
        retention_ms = self._retention_ms

        def delete(db: sqlite3.Connection) -> bool:
            with immediate_transaction(db):
                rows = db.execute(
                    "DELETE FROM secrets WHERE id = ? AND expires_at > ? RETURNING id",
                    (secret_id, now_ms),
                ).fetchall()
                if not rows:
                    return False
                _end(db, secret_id, now_ms, reason, retention_ms)
                _keep(db, secret_id, events)
            return True

        return await self._run(delete, writes=True)

    async def receipt(self, secret_id: str, *, now: datetime) -> ReceiptRecord | None:
        """See ``SecretStore.receipt``; one statement, so receipt and events agree."""
        rows = await self._run(partial(_fetch, SELECT_RECEIPT, (secret_id, to_epoch_ms(now))))
        return receipt_from_rows(secret_id, rows, SQLITE_TYPES) if rows else None

    async def record(self, secret_id: str | None, events: Sequence[Recorded]) -> None:
        """See ``SecretStore.record``: one transaction appends the lines (each checking its
        kind's cap in its ``INSERT``) and the outbox records."""
        if not events:
            return

        def keep(db: sqlite3.Connection) -> None:
            with immediate_transaction(db):
                _keep(db, secret_id, events)

        await self._run(keep, writes=True)

    async def pending_events(self, *, limit: int) -> list[Pending]:
        """See ``SecretStore.pending_events``: one ``SELECT`` in ``seq`` order; a ref is the
        record's ``seq``."""
        rows = await self._read(
            partial(_fetch, "SELECT seq, record FROM outbox ORDER BY seq LIMIT ?", (max(limit, 0),))
        )
        return [Pending(str(seq), bytes(record)) for seq, record in rows]

    async def ack_events(self, refs: Sequence[str]) -> None:
        """See ``SecretStore.ack_events``: one transaction deletes them by ``seq``, which is
        never reused (``AUTOINCREMENT``), so a stale ref deletes nothing."""
        if not refs:
            return
        seqs = json.dumps([int(ref) for ref in refs])

        def delete(db: sqlite3.Connection) -> None:
            with immediate_transaction(db):
                # One statement, so one step on the connection's thread (see ``insert_rows``).
                db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))", (seqs,)
                )

        await self._run(delete, writes=True)

    async def put_code(
        self,
        secret_id: str,
        code_digest: bytes,
        *,
        now: datetime,
        expires_at: datetime,
        tries: int,
        resend_after: datetime,
        max_codes: int,
    ) -> CodePut:
        """See ``SecretStore.put_code``: one upsert decides and writes.

        The ``SELECT`` yields a row only for a live secret, and the ``DO UPDATE … WHERE`` leaves
        a code put after ``resend_after``, or the last of ``max_codes``, alone; ``RETURNING``
        tells whether a code was written. A refusal is explained by a read in the same
        transaction.
        """
        now_ms = to_epoch_ms(now)
        resend_ms = to_epoch_ms(resend_after)
        limits = (resend_ms, max_codes)

        def put(db: sqlite3.Connection) -> CodePut:
            with immediate_transaction(db):
                written = db.execute(
                    "INSERT INTO recipient_codes"
                    " (secret_id, digest, put_at, expires_at, tries_left, sent)"
                    " SELECT id, ?, ?, ?, ?, 1 FROM secrets WHERE id = ? AND expires_at > ?"
                    " ON CONFLICT (secret_id) DO UPDATE SET digest = excluded.digest,"
                    " put_at = excluded.put_at, expires_at = excluded.expires_at,"
                    " tries_left = excluded.tries_left, sent = recipient_codes.sent + 1"
                    " WHERE recipient_codes.put_at <= ? AND recipient_codes.sent < ?"
                    " RETURNING secret_id",
                    (
                        code_digest,
                        now_ms,
                        to_epoch_ms(expires_at),
                        tries,
                        secret_id,
                        now_ms,
                        *limits,
                    ),
                ).fetchall()
                if written:
                    return CodePut.SENT
                row = db.execute(
                    "SELECT c.put_at, c.expires_at > ? AND c.tries_left > 0 FROM secrets AS s"
                    " JOIN recipient_codes AS c ON c.secret_id = s.id"
                    " WHERE s.id = ? AND s.expires_at > ?",
                    (now_ms, secret_id, now_ms),
                ).fetchone()
            if row is None:
                return CodePut.GONE
            put_at, live = int(row[0]), bool(row[1])
            return CodePut.TOO_SOON if put_at > resend_ms or live else CodePut.SPENT

        return await self._run(put, writes=True)

    async def check_code(
        self, secret_id: str, code_digest: bytes, *, now: datetime
    ) -> CodeCheck | None:
        """See ``SecretStore.check_code``: one transaction checks, counts and deletes.

        The ``UPDATE`` finds only a live code of a live secret and takes a try only on a
        mismatch; a match then deletes the row (a used-up code stays, for ``put_code``).
        """
        now_ms = to_epoch_ms(now)

        def check(db: sqlite3.Connection) -> CodeCheck | None:
            with immediate_transaction(db):
                rows = db.execute(
                    "UPDATE recipient_codes SET tries_left = tries_left - (digest <> ?)"
                    " WHERE secret_id = ? AND expires_at > ? AND tries_left > 0 AND EXISTS"
                    " (SELECT 1 FROM secrets AS s"
                    " WHERE s.id = recipient_codes.secret_id AND s.expires_at > ?)"
                    " RETURNING digest = ?, tries_left",
                    (code_digest, secret_id, now_ms, now_ms, code_digest),
                ).fetchall()
                if not rows:
                    return None
                matched, tries_left = bool(rows[0][0]), int(rows[0][1])
                if matched:
                    db.execute("DELETE FROM recipient_codes WHERE secret_id = ?", (secret_id,))
            return CodeCheck(matched=matched, tries_left=tries_left)

        return await self._run(check, writes=True)

    async def hit(self, bucket: str, *, window: int, now: datetime, cost: int = 1) -> int:
        """See ``SecretStore.hit``."""
        (total,) = await self.hits([Hit(bucket, window, cost)], now=now)
        return total

    async def hits(self, hits: Sequence[Hit], *, now: datetime) -> list[int]:
        """See ``SecretStore.hits``: one hand-over to the thread and one commit.

        A row is keyed by ``(bucket, window_start)``; ``window_end`` is only for the sweep.
        Adding is one upsert, atomic on its own since it takes the write lock before it reads
        the count; ``cost=0`` only reads, so it creates no row.
        """
        now_ms = to_epoch_ms(now)
        writes = any(hit.cost for hit in hits)

        def count(db: sqlite3.Connection) -> list[int]:
            # Writes share one commit; reads alone need no transaction.
            with immediate_transaction(db) if writes else nullcontext():
                return [_count(db, hit, now_ms) for hit in hits]

        return await self._run(count, writes=writes)

    async def clear_hits(self, bucket: str, *, window: int, now: datetime) -> int:
        """See ``SecretStore.clear_hits``: one ``DELETE … RETURNING``."""
        window_ms = window * 1000
        start_ms = to_epoch_ms(now) // window_ms * window_ms
        rows = await self._run(
            partial(
                _fetch,
                "DELETE FROM counters WHERE bucket = ? AND window_start = ? RETURNING hits",
                (bucket, start_ms),
            ),
            writes=True,
        )
        return int(rows[0][0]) if rows else 0

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """See ``SecretStore.purge_expired``; then checkpoint and truncate the WAL.

        The deletions walk an index (``secrets.expires_at``, ``receipts.keep_until``,
        ``counters.window_end``, ``sessions.expires_at``, ``api_tokens.keep_until``) and stop
        after ``limit`` rows each, so one call's transaction stays short; a receipt past
        retention is invisible to ``receipt``, an ended window to ``hit``, a session or token
        to every call, whether or not this call got to it. Codes go with their secrets. The
        checkpoint runs after the ``COMMIT``, in the same hand-over to the thread.
        """
        now_ms = to_epoch_ms(now)
        batch = max(limit, 0)
        retention_ms = self._retention_ms

        def sweep(db: sqlite3.Connection) -> int:
            with immediate_transaction(db):
                expired = db.execute(
                    "DELETE FROM secrets WHERE id IN (SELECT id FROM secrets"
                    " WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
                    " RETURNING id, expires_at",
                    (now_ms, batch),
                ).fetchall()
                for secret_id, expires_ms in expired:
                    _end(db, secret_id, expires_ms, EndReason.EXPIRED, retention_ms)
                # A receipt whose secret row is still there (beyond this batch) waits until
                # the secret has been ended above, so every receipt records how it ended.
                db.execute(
                    "DELETE FROM receipts WHERE id IN (SELECT id FROM receipts AS r"
                    " WHERE keep_until <= ?"
                    " AND NOT EXISTS (SELECT 1 FROM secrets AS s WHERE s.id = r.id)"
                    " ORDER BY keep_until LIMIT ?)",
                    (now_ms, batch),
                )
                db.execute(
                    "DELETE FROM counters WHERE (bucket, window_start) IN"
                    " (SELECT bucket, window_start FROM counters"
                    " WHERE window_end <= ? ORDER BY window_end LIMIT ?)",
                    (now_ms, batch),
                )
                db.execute(
                    "DELETE FROM sessions WHERE digest IN (SELECT digest FROM sessions"
                    " WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
                    (now_ms, batch),
                )
                db.execute(
                    "DELETE FROM api_tokens WHERE token_id IN (SELECT token_id FROM api_tokens"
                    " WHERE keep_until <= ? ORDER BY keep_until LIMIT ?)",
                    (now_ms, batch),
                )
            checkpoint = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            if checkpoint and checkpoint[0][0]:
                LOG.info("SQLite WAL checkpoint incomplete (readers busy); retried next sweep")
            return len(expired)

        return await self._run(sweep, writes=True, alone=True)  # no transaction may be open

    async def ping(self) -> None:
        """Run ``SELECT 1``; raise ``StorageUnavailable`` if it fails."""
        await self._run(partial(_fetch, "SELECT 1", ()))

    async def aclose(self) -> None:
        """Let calls already handed over finish, then close the connection (SQLite
        checkpoints the WAL on the last close); later calls raise ``StorageUnavailable``."""
        await self._worker.aclose()


# -- work done on the connection's thread ----------------------------------------------------


def _count(db: sqlite3.Connection, hit: Hit, now_ms: int) -> int:
    """Add ``hit.cost`` to its counter's current window; the window's total."""
    window_ms = hit.window * 1000
    start_ms = now_ms // window_ms * window_ms
    if not hit.cost:
        rows = db.execute(
            "SELECT hits FROM counters WHERE bucket = ? AND window_start = ?",
            (hit.bucket, start_ms),
        ).fetchall()
        return int(rows[0][0]) if rows else 0
    rows = db.execute(
        "INSERT INTO counters (bucket, window_start, window_end, hits) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (bucket, window_start) DO UPDATE SET hits = hits + excluded.hits"
        " RETURNING hits",
        (hit.bucket, start_ms, start_ms + window_ms, hit.cost),
    ).fetchall()
    return int(rows[0][0])


def _take(
    db: sqlite3.Connection,
    secret_id: str,
    access_digest: bytes,
    now_ms: int,
    retention_ms: int,
    events: Sequence[Recorded],
) -> Consumed | None:
    """Take one view in the transaction under way (see ``consume``); ``None`` if refused."""
    rows = db.execute(
        "UPDATE secrets SET views_left = views_left - 1"
        " WHERE id = ? AND access_digest = ? AND expires_at > ? AND views_left > 0"
        " RETURNING envelope, views_left",
        (secret_id, access_digest, now_ms),
    ).fetchall()
    if not rows:
        return None
    envelope, views_left = rows[0]
    if views_left == 0:
        db.execute("DELETE FROM secrets WHERE id = ?", (secret_id,))
        _end(db, secret_id, now_ms, EndReason.VIEWED, retention_ms, views_used=1)
    else:
        db.execute("UPDATE receipts SET views_used = views_used + 1 WHERE id = ?", (secret_id,))
    _keep(db, secret_id, events)
    return Consumed(envelope=bytes(envelope), views_left=int(views_left))


def _fetch(sql: str, parameters: tuple[object, ...], db: sqlite3.Connection) -> list[Row]:
    """One statement (in autocommit, so a writing one is its own transaction); all its rows."""
    return db.execute(sql, parameters).fetchall()


def _end(
    db: sqlite3.Connection,
    secret_id: str,
    at_ms: int,
    reason: EndReason,
    retention_ms: int,
    *,
    views_used: int = 0,
) -> None:
    """End a receipt (the secret row is already deleted); keep it for the retention."""
    db.execute(_END_RECEIPT, (views_used, at_ms, reason.value, at_ms + retention_ms, secret_id))


def _first_lines(events: Sequence[Recorded]) -> list[tuple[int, Event]]:
    """The receipt lines of ``events`` that a new receipt keeps (``MAX_EVENTS_PER_KIND`` of
    each kind), numbered from 0."""
    counts: dict[str, int] = {}
    lines: list[Event] = []
    for recorded in events:
        line = recorded.line
        if line is None:
            continue
        seen = counts.get(line.kind.value, 0)
        if seen < MAX_EVENTS_PER_KIND:
            counts[line.kind.value] = seen + 1
            lines.append(line)
    return list(enumerate(lines))


def _outbox_rows(events: Sequence[Recorded]) -> list[tuple[bytes]]:
    """The parameters of ``_INSERT_INTO_OUTBOX`` for ``events``, in their order."""
    return [(recorded.outbox,) for recorded in events]


def _keep(db: sqlite3.Connection, secret_id: str | None, events: Sequence[Recorded]) -> None:
    """Keep ``events`` in the transaction under way: each line on ``secret_id``'s receipt
    when it is kept and its kind has room, each outbox record whatever the receipt."""
    if secret_id is not None:
        for recorded in events:
            if recorded.line is not None:
                _append_event(db, secret_id, recorded.line)
    if events:
        db.executemany(_INSERT_INTO_OUTBOX, _outbox_rows(events))


def _append_event(db: sqlite3.Connection, secret_id: str, event: Event) -> None:
    """Append ``event`` to a kept receipt with room for its kind; otherwise do nothing."""
    db.execute(
        _APPEND_EVENT,
        (
            to_epoch_ms(event.at),
            event.kind.value,
            event.ip,
            event.user_agent,
            *viewer_columns(event),
            secret_id,
            event.kind.value,
            MAX_EVENTS_PER_KIND,
        ),
    )
