"""The embedded default store: one SQLite file, shared safely by several processes.

Layout
    ``receipts`` holds one row per secret ever created, until ``keep_until`` (the end of the
    secret, or its expiry, plus the retention period). ``secrets`` holds the live secrets, one
    row each, referencing its receipt, with its access policy (``AccessPolicy.to_bytes``;
    NULL for secrets created before schema version 2, read as the empty policy). ``events``
    holds a receipt's history, keyed by ``(receipt_id, seq)``. ``codes`` holds at most one
    one-time code per live secret (its digest, when it was put, its expiry and the tries
    left), deleted with the secret by ``ON DELETE CASCADE``. ``counters`` holds one row per
    rate-limit bucket and fixed window, keyed by ``(bucket, window_start)``, until a sweep
    after ``window_end``. Times are INTEGER milliseconds since the Unix epoch (UTC).
    ``PRAGMA user_version`` records the schema version; ``burnlink.store.sqlite_schema``
    holds the DDL, and ``open`` migrates an older file forward.

Atomicity
    Every rule that touches more than one row runs inside one ``BEGIN IMMEDIATE`` … ``COMMIT``
    transaction, which takes SQLite's single write lock *before* reading anything. A read can
    therefore never be stale when the write that depends on it happens, even when several
    processes (each with its own connection) share the file: the lock is the file's, and
    other writers wait for it up to the busy timeout. ``consume`` in particular decides and
    decrements in one ``UPDATE … WHERE views_left > 0 … RETURNING``, so with K readers and V
    views exactly ``min(K, V)`` get the envelope. ``record_failure`` likewise counts in one
    ``UPDATE … WHERE (attempts_left = 1) = :locks``, so an attempt locks the secret only when
    its caller audited it as the lockout. Expiry is checked in the same statement
    against the caller's ``now``. ``put_code`` and ``hit`` are each one upsert (``INSERT …
    ON CONFLICT DO UPDATE … RETURNING``); ``check_code`` takes a try in one ``UPDATE …
    RETURNING`` and deletes a matched or spent code in the same transaction.

    Inside a process all calls go through one connection (one aiosqlite worker thread) and an
    ``asyncio.Lock``, so coroutines never interleave statements of different transactions. A
    caller cancelled mid-transaction still leaves the connection clean: aiosqlite runs queued
    statements in order, and the ``ROLLBACK`` is queued before the lock is released.

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
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiosqlite

from burnlink.errors import ConfigError, DuplicateId, StorageUnavailable
from burnlink.models import (
    AccessPolicy,
    CodeCheck,
    Consumed,
    EndReason,
    Event,
    EventKind,
    PassphraseGate,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
)
from burnlink.store.base import MAX_EVENTS_PER_SECRET, Attempt
from burnlink.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

MIN_SQLITE_VERSION: Final = (3, 35, 0)
"""``UPDATE … RETURNING`` and ``DELETE … RETURNING`` first shipped in SQLite 3.35."""

DEFAULT_BUSY_TIMEOUT: Final = timedelta(seconds=5)

LOG = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)

_END_RECEIPT: Final = (
    "UPDATE receipts SET views_used = views_used + ?, ended_at = ?, end_reason = ?,"
    " keep_until = ? WHERE id = ?"
)

_DUPLICATE_KEY: Final = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})

Row = Sequence[Any]


def _to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (already truncated to ms)."""
    return (moment - _EPOCH) // _MS


def _from_ms(millis: int) -> datetime:
    """The aware UTC datetime of ``millis`` milliseconds since the epoch."""
    return _EPOCH + timedelta(milliseconds=millis)


def _database_file(path: str) -> Path:
    """The file named by the part of a ``sqlite://`` URL after the scheme."""
    if not path.strip():
        raise ConfigError(
            "BURNLINK_STORE: sqlite:// needs a file path, e.g. sqlite:///var/lib/x.db"
        )
    if path == ":memory:" or path.startswith("file:"):
        raise ConfigError(
            "BURNLINK_STORE: sqlite:// takes a plain file path; use memory:// for a store in memory"
        )
    return Path(path).expanduser()


def _prepare_file(file: Path) -> None:
    """Create the parent directory (0700) and an empty database file (0600) if missing.

    SQLite gives its ``-wal`` and ``-shm`` files the permissions of the database file.
    """
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not file.exists():
        os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))


def _error_name(exc: sqlite3.Error) -> str:
    """A short, content-free name for a driver error (``SQLITE_BUSY``, ``SQLITE_FULL``, …)."""
    name = getattr(exc, "sqlite_errorname", None)
    return name if isinstance(name, str) else type(exc).__name__


def _unavailable(exc: sqlite3.Error) -> StorageUnavailable:
    # SQLite's messages name tables and columns, never bound values; only the code is logged.
    LOG.warning("SQLite store error: %s", _error_name(exc))
    return StorageUnavailable(f"The secret store is unavailable (SQLite: {_error_name(exc)}).")


class SqliteStore:
    """A ``SecretStore`` in one SQLite file, through one aiosqlite connection per process."""

    def __init__(
        self, db: aiosqlite.Connection, *, retention: timedelta, file: Path | None = None
    ) -> None:
        """Wrap an open connection; use ``SqliteStore.open`` instead."""
        self._db: aiosqlite.Connection | None = db
        self._retention_ms = retention // _MS
        self._lock = asyncio.Lock()
        self._file = file

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
        file = _database_file(path)
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise StorageUnavailable(
                f"The SQLite store needs SQLite 3.35 or newer; this Python has "
                f"{sqlite3.sqlite_version}."
            )
        try:
            await asyncio.to_thread(_prepare_file, file)
        except OSError as exc:
            raise StorageUnavailable(
                f"Cannot create the SQLite store at {file}: {exc.strerror or type(exc).__name__}."
            ) from exc
        try:
            db = await aiosqlite.connect(
                file, isolation_level=None, timeout=busy_timeout.total_seconds()
            )
        except sqlite3.Error as exc:
            raise StorageUnavailable(
                f"Cannot open the SQLite store at {file}: {_error_name(exc)}."
            ) from exc
        store = cls(db, retention=retention, file=file)
        try:
            await store._prepare(busy_timeout)
        except sqlite3.Error as exc:
            await store._close_quietly()
            raise StorageUnavailable(
                f"Cannot open the SQLite store at {file}: {_error_name(exc)}."
            ) from exc
        except BaseException:
            await store._close_quietly()
            raise
        return store

    async def _prepare(self, busy_timeout: timedelta) -> None:
        """Set the connection's PRAGMAs, then create, migrate or check the schema.

        See ``burnlink.store.sqlite_schema``: the version is read and the missing steps run in
        one ``BEGIN IMMEDIATE`` transaction, so concurrent openers migrate a file once.
        """
        await self._run(f"PRAGMA busy_timeout = {busy_timeout // _MS:d}")
        mode = await self._run("PRAGMA journal_mode = WAL")
        if not mode or str(mode[0][0]).lower() != "wal":
            raise StorageUnavailable(
                f"Cannot use WAL journal mode for the SQLite store at {self._file} "
                "(a network file system cannot share WAL memory between processes)."
            )
        # FULL: every COMMIT fsyncs the WAL before it returns. With NORMAL, a WAL commit
        # survives an application crash but may be lost on power loss or an OS crash, and a
        # secret whose link was already handed to the sender must not silently vanish.
        await self._run("PRAGMA synchronous = FULL")
        # Overwrite deleted rows and freed pages with zeros (see the module docstring).
        secure = await self._run("PRAGMA secure_delete = ON")
        if not secure or int(secure[0][0]) != 1:
            raise StorageUnavailable("This SQLite build cannot enable secure_delete.")
        await self._run("PRAGMA foreign_keys = ON")
        async with self._transaction():
            version = int((await self._run("PRAGMA user_version"))[0][0])
            if version > SCHEMA_VERSION:
                raise StorageUnavailable(
                    f"The SQLite store at {self._file} has schema version {version}, newer than "
                    f"this burnlink supports ({SCHEMA_VERSION}); upgrade burnlink."
                )
            if version < SCHEMA_VERSION:
                if version:
                    LOG.info(
                        "Migrating the SQLite store from schema %d to %d", version, SCHEMA_VERSION
                    )
                for step in MIGRATIONS[version:]:
                    for statement in step:
                        await self._run(statement)
                await self._run(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    # -- plumbing -------------------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageUnavailable("The SQLite store is closed.")
        return self._db

    async def _run(self, sql: str, parameters: Sequence[object] = ()) -> list[Row]:
        """Run one statement on the worker thread and fetch all its rows (RETURNING too)."""
        return list(await self._connection().execute_fetchall(sql, parameters))

    @asynccontextmanager
    async def _serialised(self) -> AsyncIterator[None]:
        """Hold the connection alone and translate driver errors."""
        if self._db is None:
            raise StorageUnavailable("The SQLite store is closed.")
        async with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise _unavailable(exc) from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` on any exception or cancellation."""
        try:
            await self._run("BEGIN IMMEDIATE")
            yield
            await self._run("COMMIT")
        except BaseException:
            await self._rollback()
            raise

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[None]:
        async with self._serialised(), self._transaction():
            yield

    async def _rollback(self) -> None:
        # Fails harmlessly when BEGIN itself failed and nothing is open. The statement is
        # queued on the worker thread before this awaits, so it runs even if we are cancelled.
        with suppress(sqlite3.Error):
            await self._run("ROLLBACK")

    async def _end(
        self, secret_id: str, *, at_ms: int, reason: EndReason, views_used: int = 0
    ) -> None:
        """End a receipt (the secret row is already deleted); keep it for the retention."""
        await self._run(
            _END_RECEIPT,
            (views_used, at_ms, reason.value, at_ms + self._retention_ms, secret_id),
        )

    async def _close_quietly(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with suppress(sqlite3.Error):
                await db.close()

    # -- SecretStore ------------------------------------------------------------------------

    async def create(self, record: SecretRecord) -> None:
        """See ``SecretStore.create``; raises ``DuplicateId`` if the id is live or kept."""
        gate = record.passphrase
        created_ms = _to_ms(record.created_at)
        expires_ms = _to_ms(record.expires_at)
        async with self._serialised():
            try:
                async with self._transaction():
                    await self._run(
                        "INSERT INTO receipts (id, manage_digest, created_at, expires_at,"
                        " max_views, views_used, keep_until) VALUES (?, ?, ?, ?, ?, 0, ?)",
                        (
                            record.secret_id,
                            record.manage_digest,
                            created_ms,
                            expires_ms,
                            record.max_views,
                            expires_ms + self._retention_ms,
                        ),
                    )
                    await self._run(
                        "INSERT INTO secrets (id, envelope, access_digest, created_at,"
                        " expires_at, max_views, views_left, attempts_left, passphrase_kdf,"
                        " passphrase_iterations, passphrase_salt, passphrase_proof_digest,"
                        " owner, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.secret_id,
                            record.envelope,
                            record.access_digest,
                            created_ms,
                            expires_ms,
                            record.max_views,
                            record.max_views,
                            record.max_attempts,
                            gate.kdf if gate else None,
                            gate.iterations if gate else None,
                            gate.salt if gate else None,
                            gate.proof_digest if gate else None,
                            record.owner,
                            record.policy.to_bytes(),
                        ),
                    )
            except sqlite3.IntegrityError as exc:
                if _error_name(exc) not in _DUPLICATE_KEY:
                    raise
                raise DuplicateId("secret id already taken") from exc

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        """See ``SecretStore.peek``, with the secret's access policy."""
        async with self._serialised():
            rows = await self._run(
                "SELECT access_digest, created_at, expires_at, max_views, views_left,"
                " attempts_left, passphrase_kdf, passphrase_iterations, passphrase_salt,"
                " passphrase_proof_digest, policy FROM secrets WHERE id = ? AND expires_at > ?",
                (secret_id, _to_ms(now)),
            )
        if not rows:
            return None
        access, created, expires, max_views, views_left, attempts_left = rows[0][:6]
        kdf, its, salt, proof, policy = rows[0][6:]
        gate = (
            None
            if kdf is None
            else PassphraseGate(
                kdf=str(kdf), iterations=int(its), salt=bytes(salt), proof_digest=bytes(proof)
            )
        )
        return SecretMeta(
            secret_id=secret_id,
            access_digest=bytes(access),
            created_at=_from_ms(created),
            expires_at=_from_ms(expires),
            max_views=int(max_views),
            views_left=int(views_left),
            attempts_left=int(attempts_left),
            passphrase=gate,
            # NULL: a secret created before policies were stored (schema version 1).
            policy=AccessPolicy() if policy is None else AccessPolicy.from_bytes(bytes(policy)),
        )

    async def consume(
        self, secret_id: str, access_digest: bytes, *, now: datetime
    ) -> Consumed | None:
        """See ``SecretStore.consume``: one transaction decides, decrements and counts."""
        now_ms = _to_ms(now)
        async with self._write():
            rows = await self._run(
                "UPDATE secrets SET views_left = views_left - 1"
                " WHERE id = ? AND access_digest = ? AND expires_at > ? AND views_left > 0"
                " RETURNING envelope, views_left",
                (secret_id, access_digest, now_ms),
            )
            if not rows:
                return None
            envelope, views_left = rows[0]
            if views_left == 0:
                await self._run("DELETE FROM secrets WHERE id = ?", (secret_id,))
                await self._end(secret_id, at_ms=now_ms, reason=EndReason.VIEWED, views_used=1)
            else:
                await self._run(
                    "UPDATE receipts SET views_used = views_used + 1 WHERE id = ?", (secret_id,)
                )
        return Consumed(envelope=bytes(envelope), views_left=int(views_left))

    async def record_failure(self, secret_id: str, *, now: datetime, locks: bool) -> Attempt | None:
        """See ``SecretStore.record_failure``: one ``UPDATE … WHERE`` counts only when
        ``locks`` matches; when it does not, the same write transaction (which holds the file's
        write lock) reads why."""
        now_ms = _to_ms(now)
        async with self._write():
            rows = await self._run(
                "UPDATE secrets SET attempts_left = attempts_left - 1"
                " WHERE id = ? AND expires_at > ? AND attempts_left > 0"
                " AND (attempts_left = 1) = ?"
                " RETURNING attempts_left",
                (secret_id, now_ms, locks),
            )
            if not rows:
                rows = await self._run(
                    "SELECT attempts_left FROM secrets WHERE id = ? AND expires_at > ?",
                    (secret_id, now_ms),
                )
                return Attempt(counted=False, attempts_left=int(rows[0][0])) if rows else None
            attempts_left = int(rows[0][0])
            if attempts_left == 0:
                await self._run("DELETE FROM secrets WHERE id = ?", (secret_id,))
                await self._end(secret_id, at_ms=now_ms, reason=EndReason.LOCKED)
        return Attempt(counted=True, attempts_left=attempts_left)

    async def burn(self, secret_id: str, *, now: datetime) -> bool:
        """See ``SecretStore.burn``."""
        now_ms = _to_ms(now)
        async with self._write():
            rows = await self._run(
                "DELETE FROM secrets WHERE id = ? AND expires_at > ? RETURNING id",
                (secret_id, now_ms),
            )
            if not rows:
                return False
            await self._end(secret_id, at_ms=now_ms, reason=EndReason.BURNED)
        return True

    async def receipt(self, secret_id: str, *, now: datetime) -> ReceiptRecord | None:
        """See ``SecretStore.receipt``; one statement, so receipt and events agree."""
        async with self._serialised():
            rows = await self._run(
                "SELECT r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,"
                " r.ended_at, r.end_reason, e.at, e.kind, e.ip, e.user_agent"
                " FROM receipts AS r LEFT JOIN events AS e ON e.receipt_id = r.id"
                " WHERE r.id = ? AND r.keep_until > ? ORDER BY e.seq",
                (secret_id, _to_ms(now)),
            )
        if not rows:
            return None
        manage, created, expires, max_views, views_used, ended, reason = rows[0][:7]
        events = tuple(
            Event(at=_from_ms(at), kind=EventKind(kind), ip=ip, user_agent=user_agent)
            for *_, at, kind, ip, user_agent in rows
            if at is not None
        )
        return ReceiptRecord(
            secret_id=secret_id,
            manage_digest=bytes(manage),
            created_at=_from_ms(created),
            expires_at=_from_ms(expires),
            max_views=int(max_views),
            views_used=int(views_used),
            ended_at=None if ended is None else _from_ms(ended),
            end_reason=None if reason is None else EndReason(reason),
            events=events,
        )

    async def add_event(self, secret_id: str, event: Event) -> None:
        """See ``SecretStore.add_event``: check and append in one statement."""
        async with self._serialised():
            # A single statement is atomic: it takes the write lock before it reads the count.
            await self._run(
                "INSERT INTO events (receipt_id, seq, at, kind, ip, user_agent)"
                " SELECT r.id,"
                " COALESCE((SELECT MAX(seq) + 1 FROM events WHERE receipt_id = r.id), 0),"
                " ?, ?, ?, ?"
                " FROM receipts AS r WHERE r.id = ?"
                " AND (SELECT COUNT(*) FROM events WHERE receipt_id = r.id) < ?",
                (
                    _to_ms(event.at),
                    event.kind.value,
                    event.ip,
                    event.user_agent,
                    secret_id,
                    MAX_EVENTS_PER_SECRET,
                ),
            )

    async def put_code(
        self,
        secret_id: str,
        code_digest: bytes,
        *,
        now: datetime,
        expires_at: datetime,
        tries: int,
        resend_after: datetime,
    ) -> bool:
        """See ``SecretStore.put_code``: one upsert decides and writes.

        The ``SELECT`` yields a row only for a live secret, and the ``DO UPDATE … WHERE`` leaves
        a live code put after ``resend_after`` alone; ``RETURNING`` tells whether a code was
        written.
        """
        now_ms = _to_ms(now)
        async with self._serialised():
            rows = await self._run(
                "INSERT INTO codes (secret_id, digest, put_at, expires_at, tries_left)"
                " SELECT id, ?, ?, ?, ? FROM secrets WHERE id = ? AND expires_at > ?"
                " ON CONFLICT (secret_id) DO UPDATE SET digest = excluded.digest,"
                " put_at = excluded.put_at, expires_at = excluded.expires_at,"
                " tries_left = excluded.tries_left"
                " WHERE NOT (codes.expires_at > ? AND codes.tries_left > 0 AND codes.put_at > ?)"
                " RETURNING secret_id",
                (
                    code_digest,
                    now_ms,
                    _to_ms(expires_at),
                    tries,
                    secret_id,
                    now_ms,
                    now_ms,
                    _to_ms(resend_after),
                ),
            )
        return bool(rows)

    async def check_code(
        self, secret_id: str, code_digest: bytes, *, now: datetime
    ) -> CodeCheck | None:
        """See ``SecretStore.check_code``: one transaction checks, counts and deletes.

        The ``UPDATE`` finds only a live code of a live secret and takes a try only on a
        mismatch; a match, or the last try, then deletes the row.
        """
        now_ms = _to_ms(now)
        async with self._write():
            rows = await self._run(
                "UPDATE codes SET tries_left = tries_left - (digest <> ?)"
                " WHERE secret_id = ? AND expires_at > ? AND tries_left > 0 AND EXISTS"
                " (SELECT 1 FROM secrets AS s WHERE s.id = codes.secret_id AND s.expires_at > ?)"
                " RETURNING digest = ?, tries_left",
                (code_digest, secret_id, now_ms, now_ms, code_digest),
            )
            if not rows:
                return None
            matched, tries_left = bool(rows[0][0]), int(rows[0][1])
            if matched or tries_left == 0:
                await self._run("DELETE FROM codes WHERE secret_id = ?", (secret_id,))
        return CodeCheck(matched=matched, tries_left=tries_left)

    async def hit(self, bucket: str, *, window: int, now: datetime, cost: int = 1) -> int:
        """See ``SecretStore.hit``: one upsert adds ``cost`` and returns the total.

        The row is keyed by ``(bucket, window_start)``; ``window_end`` is only for the sweep.
        ``cost=0`` only reads, so it creates no row.
        """
        window_ms = window * 1000
        start_ms = _to_ms(now) // window_ms * window_ms
        async with self._serialised():
            if not cost:
                rows = await self._run(
                    "SELECT hits FROM counters WHERE bucket = ? AND window_start = ?",
                    (bucket, start_ms),
                )
                return int(rows[0][0]) if rows else 0
            # A single statement is atomic: it takes the write lock before it reads the count.
            rows = await self._run(
                "INSERT INTO counters (bucket, window_start, window_end, hits) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (bucket, window_start) DO UPDATE SET hits = hits + excluded.hits"
                " RETURNING hits",
                (bucket, start_ms, start_ms + window_ms, cost),
            )
        return int(rows[0][0])

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """See ``SecretStore.purge_expired``; then checkpoint and truncate the WAL.

        The deletions walk an index (``secrets.expires_at``, ``receipts.keep_until``,
        ``counters.window_end``) and stop after ``limit`` rows each, so one call's transaction
        stays short; a receipt past retention is invisible to ``receipt``, and an ended window
        to ``hit``, whether or not this call got to it. Codes go with their secrets.
        """
        now_ms = _to_ms(now)
        async with self._serialised():
            async with self._transaction():
                expired = await self._run(
                    "DELETE FROM secrets WHERE id IN (SELECT id FROM secrets"
                    " WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
                    " RETURNING id, expires_at",
                    (now_ms, max(limit, 0)),
                )
                for secret_id, expires_ms in expired:
                    await self._end(secret_id, at_ms=expires_ms, reason=EndReason.EXPIRED)
                # A receipt whose secret row is still there (beyond this batch) waits until
                # the secret has been ended above, so every receipt records how it ended.
                await self._run(
                    "DELETE FROM receipts WHERE id IN (SELECT id FROM receipts AS r"
                    " WHERE keep_until <= ?"
                    " AND NOT EXISTS (SELECT 1 FROM secrets AS s WHERE s.id = r.id)"
                    " ORDER BY keep_until LIMIT ?)",
                    (now_ms, max(limit, 0)),
                )
                await self._run(
                    "DELETE FROM counters WHERE (bucket, window_start) IN"
                    " (SELECT bucket, window_start FROM counters"
                    " WHERE window_end <= ? ORDER BY window_end LIMIT ?)",
                    (now_ms, max(limit, 0)),
                )
            checkpoint = await self._run("PRAGMA wal_checkpoint(TRUNCATE)")
            if checkpoint and checkpoint[0][0]:
                LOG.info("SQLite WAL checkpoint incomplete (readers busy); retried next sweep")
        return len(expired)

    async def ping(self) -> None:
        """Run ``SELECT 1``; raise ``StorageUnavailable`` if it fails."""
        async with self._serialised():
            await self._run("SELECT 1")

    async def aclose(self) -> None:
        """Close the connection (SQLite checkpoints the WAL on the last close)."""
        if self._db is None:
            return
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                try:
                    await db.close()
                except sqlite3.Error as exc:
                    raise _unavailable(exc) from exc
