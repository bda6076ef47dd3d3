"""The audit log in SQLite: tables ``audit_log`` and ``audit_state`` (may share the store's file).

Layout
    ``audit_log(seq, at, type, event, prev_mac, mac)``: ``event`` is the canonical JSON that
    the MAC covers; ``at`` (INTEGER milliseconds since the epoch, UTC) and ``type`` repeat two
    of its fields for indexed filtering and are checked against it on every read.
    ``audit_state`` holds the one state row (see ``audit.chain``) and the schema version.

Atomicity
    ``write`` (and ``append``, a write of one) reads the state row, inserts the entries and
    moves the head inside one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's single write
    lock before reading: appenders in several processes (each with its own connection) are
    serialised by the file's lock, so they produce one chain. Inside a process one connection
    on its own thread (``burnlink.store.sqlite.worker``) runs each transaction as one unit of work.

Seal turn
    The worker processes' sealers take turns through an exclusive ``flock`` of the file
    ``<file>-sealer`` beside the log (``seal_turn``): a sealer that finds it taken skips its
    run instead of fetching and decoding the records the other is sealing.

Append-only
    Triggers refuse any ``UPDATE`` of ``audit_log``, any ``DELETE`` of an entry not already
    behind the base (``purge_before`` moves the base first, then deletes), any insert that is
    not ``head + 1``, deleting the state row, and moving its base or head backwards. They stop
    bugs and careless hands; someone who can drop triggers is caught by ``verify`` instead.
    A log whose state row is gone while entries remain is refused at start, never re-sealed
    from scratch (that would hide the deletion), and ``open(read_only=True)``, what ``audit
    verify`` and ``audit export`` use, never creates or changes anything.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

from burnlink.audit.chain import (
    AuditEntry,
    ChainBounds,
    ChainHead,
    ChainState,
    CorruptEntry,
    entry_is_authentic,
    next_entries,
    seal_state,
    state_is_authentic,
)
from burnlink.audit.events import AuditEvent, AuditEventType
from burnlink.audit.outbox import OutboxRecord, Sealable
from burnlink.audit.watch import Watched
from burnlink.clock import MILLISECOND, from_epoch_ms, to_epoch_ms
from burnlink.errors import AuditLogMissing, AuditStateInvalid, ConfigError, StorageUnavailable
from burnlink.ids import key_id
from burnlink.store.sqlite.worker import (
    SqliteWorker,
    WorkerClosed,
    error_name,
    immediate_transaction,
    insert_rows,
)

__all__ = ["SCHEMA_VERSION", "SqliteAuditStore"]

SCHEMA_VERSION: Final = 1
DEFAULT_BUSY_TIMEOUT: Final = timedelta(seconds=5)
PAGE_SIZE: Final = 500
"""Entries read per statement by ``iter_entries``; the lock is released between pages."""

LOG = logging.getLogger(__name__)

SEALED_KEPT_MS: Final = 7 * 86_400_000
"""How long the ids of sealed outbox records are remembered (ms): far longer than any record
waits between being sealed and being acknowledged."""

_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS audit_log (
        seq      INTEGER NOT NULL PRIMARY KEY,
        at       INTEGER NOT NULL,
        type     TEXT    NOT NULL,
        event    TEXT    NOT NULL,
        prev_mac BLOB    NOT NULL,
        mac      BLOB    NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
    "CREATE INDEX IF NOT EXISTS audit_log_type ON audit_log (type, seq)",
    """
    CREATE TABLE IF NOT EXISTS audit_state (
        id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        schema_version INTEGER NOT NULL,
        key_id         TEXT    NOT NULL,
        base_seq       INTEGER NOT NULL,
        base_mac       BLOB    NOT NULL,
        head_seq       INTEGER NOT NULL,
        head_mac       BLOB    NOT NULL,
        purged_before  INTEGER,
        state_mac      BLOB    NOT NULL
    )
    """,
    # The expiry watch (``audit.watch``): a to-do list beside the log, not part of it.
    """
    CREATE TABLE IF NOT EXISTS audit_watch (
        secret_id  TEXT    NOT NULL PRIMARY KEY,
        expires_at INTEGER NOT NULL,
        notify_url TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS audit_watch_expires ON audit_watch (expires_at)",
    # The outbox records already sealed (``audit.outbox``), so a record handed out twice is
    # appended once; kept for ``SEALED_KEPT`` after its event.
    """
    CREATE TABLE IF NOT EXISTS audit_sealed (
        id TEXT    NOT NULL PRIMARY KEY,
        at INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS audit_sealed_at ON audit_sealed (at)",
    """
    CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS audit_log_delete_purged_only BEFORE DELETE ON audit_log
    WHEN OLD.seq > (SELECT base_seq FROM audit_state WHERE id = 1)
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: only purged entries can go'); END
    """,
    # The next after the head, or after the entries already inserted by this transaction (a
    # batch moves the head once, after its last entry). Replaced on every start: logs made
    # before batches had a trigger that only allowed the head's successor.
    "DROP TRIGGER IF EXISTS audit_log_insert_in_sequence",
    """
    CREATE TRIGGER audit_log_insert_in_sequence BEFORE INSERT ON audit_log
    WHEN NEW.seq IS NOT (
        SELECT max(head_seq, (SELECT coalesce(max(seq), 0) FROM audit_log)) + 1
        FROM audit_state WHERE id = 1
    )
    BEGIN SELECT RAISE(ABORT, 'audit_log entries are appended in sequence'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS audit_state_no_delete BEFORE DELETE ON audit_state
    BEGIN SELECT RAISE(ABORT, 'audit_state cannot be deleted'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS audit_state_forward_only BEFORE UPDATE ON audit_state
    WHEN NEW.head_seq < OLD.head_seq OR NEW.base_seq < OLD.base_seq
      OR NEW.base_seq > NEW.head_seq OR NEW.key_id IS NOT OLD.key_id
    BEGIN SELECT RAISE(ABORT, 'audit_state only moves forward'); END
    """,
)

_SELECT_STATE: Final = (
    "SELECT schema_version, key_id, base_seq, base_mac, head_seq, head_mac, purged_before,"
    " state_mac FROM audit_state WHERE id = 1"
)
_INSERT_STATE: Final = (
    "INSERT INTO audit_state (id, schema_version, key_id, base_seq, base_mac, head_seq,"
    " head_mac, purged_before, state_mac) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# One statement for every filter: a NULL parameter switches its condition off.
_SELECT_PAGE: Final = """
SELECT seq, at, type, event, prev_mac, mac FROM audit_log
WHERE seq > :after
  AND (:since IS NULL OR at >= :since)
  AND (:until IS NULL OR at < :until)
  AND (:types IS NULL OR type IN (SELECT value FROM json_each(:types)))
  AND (:through IS NULL OR seq <= :through)
ORDER BY seq LIMIT :page
"""

Row = Sequence[Any]
T = TypeVar("T")


def _unavailable(exc: sqlite3.Error) -> StorageUnavailable:
    LOG.warning("SQLite audit log error: %s", error_name(exc))
    return StorageUnavailable(f"The audit log is unavailable (SQLite: {error_name(exc)}).")


def _state_from_row(row: Row) -> ChainState:
    _version, kid, base_seq, base_mac, head_seq, head_mac, purged_before, mac = row
    return ChainState(
        base=ChainHead(int(base_seq), bytes(base_mac)),
        head=ChainHead(int(head_seq), bytes(head_mac)),
        purged_before=None if purged_before is None else from_epoch_ms(int(purged_before)),
        key_id=str(kid),
        mac=bytes(mac),
    )


def entry_from_row(
    seq: int, at: object, type_: object, event: str, prev: bytes, mac: bytes
) -> AuditEntry:
    """An entry from its stored columns; ``CorruptEntry`` if the event and columns disagree."""
    try:
        parsed = AuditEvent.from_json(event)
    except ValueError:
        raise CorruptEntry(seq) from None
    if type_ != parsed.type.value or at != parsed.at:
        raise CorruptEntry(seq)
    return AuditEntry(seq=seq, event=parsed, prev_mac=bytes(prev), mac=bytes(mac))


class SqliteAuditStore:
    """An ``AuditStore`` in a SQLite file, through one connection on its own thread."""

    def __init__(self, worker: SqliteWorker, *, key: bytes, turn_file: int | None = None) -> None:
        """Wrap an open connection (and the descriptor of the file whose lock is the seal
        turn: ``None`` for a log no other process opens); use ``SqliteAuditStore.open``."""
        self._worker = worker
        self._key = key
        self._turn_file = turn_file

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        key: bytes,
        busy_timeout: timedelta = DEFAULT_BUSY_TIMEOUT,
        read_only: bool = False,
    ) -> SqliteAuditStore:
        """Open (creating if needed) the audit tables in the file at ``path``.

        ``path`` is everything after ``sqlite://``, or ``:memory:`` for a log that lives as
        long as the process (``--dev``, tests). ``read_only`` opens an existing log without
        creating or changing anything (``AuditLogMissing`` when there is none). Raises
        ``ConfigError`` for an empty path or a key other than the one the log was started
        with, ``AuditStateInvalid`` for a log whose state row is gone while entries remain,
        and ``StorageUnavailable`` when the file cannot be opened.
        """
        if not path.strip():
            raise ConfigError("BURNLINK_AUDIT_STORE: sqlite:// needs a file path")
        memory = path == ":memory:"
        if read_only:
            if memory:
                raise ConfigError("an audit log in memory:// lives only inside its process")
            if not await asyncio.to_thread(_is_file, path):
                raise AuditLogMissing(f"There is no audit log at {path}.")
        try:
            if read_only:
                target = path
            else:
                target = path if memory else str(await asyncio.to_thread(_prepare_file, path))
            worker = await SqliteWorker.open(
                target, busy_timeout=busy_timeout, name="burnlink-audit", read_only=read_only
            )
        except OSError as exc:
            raise StorageUnavailable(
                f"Cannot create the audit log at {path}: {exc.strerror or type(exc).__name__}."
            ) from None
        except sqlite3.Error as exc:
            raise _unavailable(exc) from None
        turn_file = None
        try:
            if not read_only and not memory:
                turn_file = await asyncio.to_thread(_open_turn_file, target)
            store = cls(worker, key=key, turn_file=turn_file)
            if read_only:
                await store._run(lambda db: _check_existing(db, key, path, busy_timeout))
            else:
                await store._run(
                    lambda db: _prepare(db, key, busy_timeout, wal=not memory), writes=True
                )
        except BaseException:
            if turn_file is not None:
                os.close(turn_file)
            await worker.aclose()
            raise
        return store

    async def _run(self, work: Callable[[sqlite3.Connection], T], *, writes: bool = False) -> T:
        """``work`` on the connection's thread (holding the writer lock if it ``writes``), its
        SQLite errors as ``StorageUnavailable``."""
        return await _answered(self._worker.run(work, writes=writes))

    # -- AuditStore --------------------------------------------------------------------------

    async def append(self, event: AuditEvent) -> AuditEntry:
        """See ``AuditStore.append``."""
        (entry,) = await self.write([event])
        return entry

    async def write(
        self,
        events: Sequence[AuditEvent],
        *,
        watch: Sequence[Watched] = (),
        unwatch: Sequence[str] = (),
    ) -> list[AuditEntry]:
        """See ``AuditBackend.write``: one ``BEGIN IMMEDIATE`` transaction."""
        key = self._key

        def write(db: sqlite3.Connection) -> list[AuditEntry]:
            with immediate_transaction(db):
                return _append(db, key, events, watch, unwatch)

        return await self._run(write, writes=True)

    async def seal(self, records: Sequence[Sealable]) -> list[AuditEntry]:
        """See ``AuditBackend.seal``: one ``BEGIN IMMEDIATE`` transaction.

        The sealed ids are read first, without the write lock, and only the records not
        sealed then are decoded, still outside the lock (which the store's own writes share
        when both live in one file); the transaction reads the ids again and appends the
        records still not sealed. A batch another sealer has sealed costs one read. Both run
        on the event loop when nothing has to be waited for (``SqliteWorker.read`` and
        ``transaction``): on the log's thread, each statement would take the GIL back from a
        busy loop, which cost a request more CPU than sealing its event did."""
        ids = list(dict.fromkeys(record.id for record in records))
        key = self._key

        def unsealed(db: sqlite3.Connection) -> list[OutboxRecord]:
            return [r.record() for r in _unsealed(records, _sealed_ids(ids, db))]

        fresh = await _answered(self._worker.read(unsealed))
        if not fresh:
            return []

        def seal(db: sqlite3.Connection) -> list[AuditEntry]:
            now_sealed = _sealed_ids([r.id for r in fresh], db)
            todo = [r for r in fresh if r.id not in now_sealed]
            if not todo:
                return []
            ats = [to_epoch_ms(r.event.at) for r in todo]
            insert_rows(
                db,
                "INSERT OR IGNORE INTO audit_sealed (id, at) VALUES",
                list(zip([r.id for r in todo], ats, strict=True)),
            )
            db.execute("DELETE FROM audit_sealed WHERE at < ?", (max(ats) - SEALED_KEPT_MS,))
            return _append(
                db,
                key,
                [r.event for r in todo],
                [r.watch for r in todo if r.watch is not None],
                [r.unwatch for r in todo if r.unwatch is not None],
                canonicals=[r.event_bytes() for r in todo],
            )

        return await _answered(self._worker.transaction(seal))

    async def iter_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Sequence[AuditEventType] | None = None,
        after_seq: int | None = None,
        through_seq: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[AuditEntry]:
        """See ``AuditStore.iter_entries``."""
        if types is not None and not types:
            return
        params: dict[str, object] = {
            "since": None if since is None else to_epoch_ms(since),
            "until": None if until is None else to_epoch_ms(until),
            "types": None if types is None else json.dumps([AuditEventType(t) for t in types]),
            "through": through_seq,
        }
        cursor = after_seq or 0
        remaining = limit
        while remaining is None or remaining > 0:
            page = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            query = {**params, "after": cursor, "page": page}
            rows = await self._run(partial(_select_page, query))
            for seq, at, type_, event, prev, mac in rows:
                yield entry_from_row(int(seq), from_epoch_ms(int(at)), type_, str(event), prev, mac)
            if len(rows) < page:
                return
            cursor = int(rows[-1][0])
            if remaining is not None:
                remaining -= len(rows)

    async def chain_state(self) -> ChainState:
        """See ``AuditStore.chain_state``."""
        return await self._run(_state)

    def is_authentic(self, item: ChainState | AuditEntry) -> bool:
        """See ``AuditStore.is_authentic``."""
        if isinstance(item, ChainState):
            return state_is_authentic(item, self._key)
        return entry_is_authentic(item, self._key)

    async def bounds(self) -> ChainBounds:
        """See ``AuditStore.bounds``: one read transaction (a WAL snapshot)."""
        return await self._run(_bounds)

    async def check_writable(self) -> None:
        """See ``AuditStore.check_writable``: ``BEGIN IMMEDIATE``, a no-op ``UPDATE`` of the
        state row (through its triggers), ``ROLLBACK``."""

        def probe(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                _state(db)
                db.execute("UPDATE audit_state SET state_mac = state_mac WHERE id = 1")
            finally:
                db.execute("ROLLBACK")

        await self._run(probe, writes=True)

    async def purge_before(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """See ``AuditStore.purge_before``: move the base, then delete behind it."""
        key = self._key

        def purge(db: sqlite3.Connection) -> int:
            with immediate_transaction(db):
                state = _state(db)
                last = (
                    state.head.seq if limit is None else min(state.head.seq, state.base.seq + limit)
                )
                kept = db.execute(
                    "SELECT seq FROM audit_log WHERE seq > ? AND seq <= ? AND at >= ?"
                    " ORDER BY seq LIMIT 1",
                    (state.base.seq, last, to_epoch_ms(cutoff)),
                ).fetchall()
                new_base = int(kept[0][0]) - 1 if kept else last
                if new_base <= state.base.seq:
                    return 0
                rows = db.execute("SELECT mac FROM audit_log WHERE seq = ?", (new_base,)).fetchall()
                if not rows:
                    raise StorageUnavailable("The audit log is missing an entry it should purge.")
                purged_before = max(cutoff, state.purged_before or cutoff)
                _save_state(
                    db,
                    state.rebased(
                        key,
                        base=ChainHead(new_base, bytes(rows[0][0])),
                        purged_before=purged_before,
                    ),
                )
                deleted = db.execute("DELETE FROM audit_log WHERE seq <= ?", (new_base,))
                return deleted.rowcount

        return await self._run(purge, writes=True)

    # -- ExpiryWatch -------------------------------------------------------------------------

    async def watch(self, item: Watched) -> None:
        """See ``ExpiryWatch.watch``."""
        await self.write((), watch=[item])

    async def unwatch(self, secret_id: str) -> None:
        """See ``ExpiryWatch.unwatch``."""
        await self.write((), unwatch=[secret_id])

    async def claim_due(self, *, now: datetime, limit: int) -> list[Watched]:
        """See ``ExpiryWatch.claim_due``: one ``DELETE … RETURNING`` under the write lock."""

        def claim(db: sqlite3.Connection) -> list[Row]:
            with immediate_transaction(db):
                return db.execute(
                    "DELETE FROM audit_watch WHERE secret_id IN (SELECT secret_id FROM audit_watch"
                    " WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
                    " RETURNING secret_id, expires_at, notify_url",
                    (to_epoch_ms(now), limit),
                ).fetchall()

        rows = await self._run(claim, writes=True)
        due = [Watched(str(i), from_epoch_ms(int(at)), url) for i, at, url in rows]
        return sorted(due, key=lambda w: w.expires_at)

    async def ping(self) -> None:
        """Run ``SELECT 1``."""
        await self._run(lambda db: db.execute("SELECT 1").fetchall())

    @asynccontextmanager
    async def seal_turn(self) -> AsyncIterator[bool]:
        """See ``AuditBackend.seal_turn``: an exclusive ``flock`` of ``<file>-sealer``, tried
        without waiting (the kernel drops it with the process). Always ``True`` in memory."""
        turn = self._turn_file
        if turn is None:
            yield True
            return
        try:
            fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)

    async def aclose(self) -> None:
        """Close the connection and the seal turn's file."""
        turn, self._turn_file = self._turn_file, None
        if turn is not None:
            os.close(turn)
        await self._worker.aclose()


# -- work done on the connection's thread ----------------------------------------------------


def _select_page(query: Mapping[str, object], db: sqlite3.Connection) -> list[Row]:
    return db.execute(_SELECT_PAGE, query).fetchall()


def _state(db: sqlite3.Connection) -> ChainState:
    rows = db.execute(_SELECT_STATE).fetchall()
    if not rows:
        raise StorageUnavailable("The audit log's state row is missing.")
    return _state_from_row(rows[0])


def _tables(db: sqlite3.Connection) -> set[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        " AND name IN ('audit_log', 'audit_state')"
    ).fetchall()
    return {str(name) for (name,) in rows}


def _bounds(db: sqlite3.Connection) -> ChainBounds:
    db.execute("BEGIN")  # one snapshot for the state row and the span of entries
    try:
        tables = _tables(db)
        state = None
        if "audit_state" in tables:
            rows = db.execute(_SELECT_STATE).fetchall()
            state = _state_from_row(rows[0]) if rows else None
        first = last = None
        count = 0
        if "audit_log" in tables:
            first, last, count = db.execute(
                "SELECT min(seq), max(seq), count(*) FROM audit_log"
            ).fetchone()
        return ChainBounds(state, first, last, int(count))
    finally:
        db.execute("COMMIT")


def _check_existing(db: sqlite3.Connection, key: bytes, path: str, busy_timeout: timedelta) -> None:
    """For a read-only open: a log is there, of a known schema and of ``key``."""
    db.execute(f"PRAGMA busy_timeout = {busy_timeout // MILLISECOND:d}")
    if not _tables(db):
        raise AuditLogMissing(f"There is no audit log at {path}.")
    if "audit_state" in _tables(db):
        rows = db.execute(_SELECT_STATE).fetchall()
        if rows and int(rows[0][0]) > SCHEMA_VERSION:
            raise StorageUnavailable(
                "The audit log's schema is newer than this burnlink supports; upgrade burnlink."
            )
        if rows and rows[0][1] != key_id(key):
            raise ConfigError("BURNLINK_AUDIT_KEY: this audit log was started with a different key")


def _save_state(db: sqlite3.Connection, state: ChainState) -> None:
    db.execute(
        "UPDATE audit_state SET base_seq = ?, base_mac = ?, head_seq = ?, head_mac = ?,"
        " purged_before = ?, state_mac = ? WHERE id = 1",
        (
            state.base.seq,
            state.base.mac,
            state.head.seq,
            state.head.mac,
            None if state.purged_before is None else to_epoch_ms(state.purged_before),
            state.mac,
        ),
    )


def _prepare(db: sqlite3.Connection, key: bytes, busy_timeout: timedelta, *, wal: bool) -> None:
    """Pragmas, the schema, and the state row (or a check that ``key`` is the log's key)."""
    db.execute(f"PRAGMA busy_timeout = {busy_timeout // MILLISECOND:d}")
    if wal:
        mode = db.execute("PRAGMA journal_mode = WAL").fetchall()
        if not mode or str(mode[0][0]).lower() != "wal":
            raise StorageUnavailable("Cannot use WAL journal mode for the audit log.")
    db.execute("PRAGMA synchronous = FULL")
    with immediate_transaction(db):
        for statement in _SCHEMA:
            db.execute(statement)
        rows = db.execute(_SELECT_STATE).fetchall()
        if not rows:
            if db.execute("SELECT 1 FROM audit_log LIMIT 1").fetchall():
                # Sealing a new state here would hide that the old one was deleted.
                raise AuditStateInvalid(
                    "The audit log has entries but its state row is missing: it was tampered"
                    " with. Run `burnlink audit verify`; the server will not start on it."
                )
            empty = seal_state(key)
            db.execute(
                _INSERT_STATE,
                (
                    SCHEMA_VERSION,
                    empty.key_id,
                    empty.base.seq,
                    empty.base.mac,
                    empty.head.seq,
                    empty.head.mac,
                    None,
                    empty.mac,
                ),
            )
            return
        if int(rows[0][0]) > SCHEMA_VERSION:
            raise StorageUnavailable(
                "The audit log's schema is newer than this burnlink supports; upgrade burnlink."
            )
        if rows[0][1] != key_id(key):
            raise ConfigError("BURNLINK_AUDIT_KEY: this audit log was started with a different key")


def _is_file(path: str) -> bool:
    return Path(path).expanduser().is_file()


def _open_turn_file(target: str) -> int:
    """Open (creating, mode 0600) the file beside the log whose lock is the seal turn."""
    return os.open(f"{target}-sealer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _prepare_file(path: str) -> Path:
    """Create the parent directory (0700) and an empty file (0600) if missing."""
    file = Path(path).expanduser()
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not file.exists():
        os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))
    return file


async def _answered(pending: Awaitable[T]) -> T:
    """What the worker's ``pending`` call gives, its SQLite errors as ``StorageUnavailable``."""
    try:
        return await pending
    except WorkerClosed:
        raise StorageUnavailable("The audit log is closed.") from None
    except sqlite3.Error as exc:
        raise _unavailable(exc) from None


def _sealed_ids(ids: Sequence[str], db: sqlite3.Connection) -> set[str]:
    """Which of ``ids`` this log has sealed: one query."""
    rows = db.execute(
        "SELECT id FROM audit_sealed WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(ids),),
    )
    return {str(row[0]) for row in rows}


def _unsealed(records: Sequence[Sealable], sealed: set[str]) -> list[Sealable]:
    """``records`` whose ids are not in ``sealed``, each id once, in order."""
    fresh: list[Sealable] = []
    seen = set(sealed)
    for record in records:
        if record.id not in seen:
            seen.add(record.id)
            fresh.append(record)
    return fresh


def _append(
    db: sqlite3.Connection,
    key: bytes,
    events: Sequence[AuditEvent],
    watch: Sequence[Watched],
    unwatch: Sequence[str],
    *,
    canonicals: Sequence[bytes] | None = None,
) -> list[AuditEntry]:
    """Append ``events`` after the head and change watch rows, inside the caller's
    transaction; the new entries. ``canonicals``, when given, are the events' canonical
    bytes (``next_entries``)."""
    entries: list[AuditEntry] = []
    if events:
        state = _state(db)
        if canonicals is None:
            canonicals = [event.canonical() for event in events]
        entries = next_entries(key, state.head, events, canonicals=canonicals)
        insert_rows(
            db,
            "INSERT INTO audit_log (seq, at, type, event, prev_mac, mac) VALUES",
            [
                (
                    entry.seq,
                    to_epoch_ms(entry.event.at),
                    entry.event.type.value,
                    canonical.decode("utf-8"),
                    # As bytearray, which sqlite3 binds at once: bytes it first offers to
                    # adapters, which on Python 3.11 costs a formatted AttributeError each.
                    bytearray(entry.prev_mac),
                    bytearray(entry.mac),
                )
                for entry, canonical in zip(entries, canonicals, strict=True)
            ],
        )
        _save_state(db, state.advanced(key, head=entries[-1].head))
    insert_rows(
        db,
        "INSERT OR REPLACE INTO audit_watch (secret_id, expires_at, notify_url) VALUES",
        [(w.secret_id, to_epoch_ms(w.expires_at), w.notify_url) for w in watch],
    )
    if unwatch:
        db.execute(
            "DELETE FROM audit_watch WHERE secret_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(unwatch)),),
        )
    return entries
