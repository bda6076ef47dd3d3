"""The audit log in PostgreSQL: ``burnlink_audit_log`` and ``burnlink_audit_state``.

Layout
    As in ``audit.sqlite``: ``event`` is the canonical JSON text the MAC covers (``text``,
    not ``jsonb``, which would reorder it), ``at`` and ``type`` repeat two of its fields for
    filtering and are checked against it on every read. The tables go to the first schema of
    the connection's ``search_path`` (``?options=-csearch_path%3Daudit`` picks another).

    ``burnlink_audit_sealed`` holds the ids of the outbox records already sealed
    (``audit.outbox``), each with its event's time, for ``SEALED_KEPT`` after it.

Atomicity
    ``write`` (and ``append``, a write of one) runs in one transaction that first takes the
    state row with ``SELECT … FOR UPDATE``: appenders in every process queue on that row lock,
    and each one reads the head its predecessor committed (READ COMMITTED re-reads a locked row
    after the wait), so the chain has no gaps or forks. ``purge_before`` takes the same lock.
    ``seal`` too, and only then reads which of its records are sealed: each statement of a
    READ COMMITTED transaction sees what was committed before it started, so a sealer that
    waited for another sees the ids that one sealed, and a record handed to two sealers at
    once is appended once.

Seal turn
    The sealers of every process (and host) that share the log take turns through a session
    advisory lock named for the log's schema (``seal_turn``): a sealer that finds it taken
    skips its run instead of fetching the records the other is sealing.

Append-only
    A trigger function refuses ``UPDATE`` of entries, ``DELETE`` of entries not behind the
    base, inserts that are not ``head + 1``, deleting the state row and moving it backwards.
    ``TRUNCATE`` is not blocked (a test harness may empty every table); ``verify`` notices
    it as long as the state row survives, and a truncated state row is a fresh log. A state
    row deleted while entries remain is refused at start, never re-sealed from scratch, and
    ``open(read_only=True)`` (``audit verify``, ``audit export``) runs no DDL and opens its
    connections with ``default_transaction_read_only``, so it cannot change anything.

Errors
    Every driver and pool error becomes ``StorageUnavailable``; the log line names only the
    error class and SQLSTATE, as in ``store.postgres``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

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
from burnlink.errors import AuditLogMissing, AuditStateInvalid, ConfigError, StorageUnavailable
from burnlink.ids import key_id
from burnlink.store.postgres.pool import Connection, Pool, open_pool, pooled

__all__ = ["SCHEMA_VERSION", "PostgresAuditStore"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
CONNECT_TIMEOUT: Final = 2
POOL_MAX_SIZE: Final = 4
POOL_TIMEOUT: Final = 5.0
PAGE_SIZE: Final = 500

SEALED_KEPT: Final = timedelta(days=7)
"""How long the ids of sealed outbox records are remembered: far longer than any record
waits between being sealed and being acknowledged (as ``audit.sqlite.SEALED_KEPT_MS``)."""

FORGET_EVERY: Final = timedelta(minutes=1)
"""Sealed ids older than ``SEALED_KEPT`` are deleted by the first batch at least this much
newer than the last batch that deleted them (in this process), not by every batch."""

_SCHEMA_LOCK: Final = 0x6275726E61756469  # "burnaudi": guards the DDL against concurrent starts


_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS burnlink_audit_log (
        seq bigint PRIMARY KEY,
        at timestamptz NOT NULL,
        type text NOT NULL,
        event text NOT NULL,
        prev_mac bytea NOT NULL,
        mac bytea NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS burnlink_audit_log_at ON burnlink_audit_log (at)",
    "CREATE INDEX IF NOT EXISTS burnlink_audit_log_type ON burnlink_audit_log (type, seq)",
    """
    CREATE TABLE IF NOT EXISTS burnlink_audit_state (
        id integer PRIMARY KEY CHECK (id = 1),
        schema_version integer NOT NULL,
        key_id text NOT NULL,
        base_seq bigint NOT NULL,
        base_mac bytea NOT NULL,
        head_seq bigint NOT NULL,
        head_mac bytea NOT NULL,
        purged_before timestamptz,
        state_mac bytea NOT NULL
    )
    """,
    # The expiry watch (``audit.watch``): a to-do list beside the log, not part of it.
    """
    CREATE TABLE IF NOT EXISTS burnlink_audit_watch (
        secret_id text PRIMARY KEY,
        expires_at timestamptz NOT NULL,
        notify_url text
    )
    """,
    "CREATE INDEX IF NOT EXISTS burnlink_audit_watch_expires ON burnlink_audit_watch (expires_at)",
    # The outbox records already sealed (``audit.outbox``), so a record handed out twice is
    # appended once; kept for ``SEALED_KEPT`` after its event. Made by every open, so a log of
    # an earlier release gains it in place.
    """
    CREATE TABLE IF NOT EXISTS burnlink_audit_sealed (
        id text PRIMARY KEY,
        at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS burnlink_audit_sealed_at ON burnlink_audit_sealed (at)",
    """
    CREATE OR REPLACE FUNCTION burnlink_audit_log_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            -- The next after the head, or after the entries already inserted by this
            -- transaction (a batch moves the head once, after its last entry).
            IF NEW.seq IS DISTINCT FROM
               (SELECT GREATEST(head_seq, (SELECT coalesce(max(seq), 0) FROM burnlink_audit_log))
                       + 1 FROM burnlink_audit_state WHERE id = 1) THEN
                RAISE EXCEPTION 'burnlink_audit_log entries are appended in sequence';
            END IF;
            RETURN NEW;
        END IF;
        IF TG_OP = 'DELETE'
           AND OLD.seq <= (SELECT base_seq FROM burnlink_audit_state WHERE id = 1) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'burnlink_audit_log is append-only';
    END
    $$
    """,
    """
    CREATE OR REPLACE TRIGGER burnlink_audit_log_guard
    BEFORE INSERT OR UPDATE OR DELETE ON burnlink_audit_log
    FOR EACH ROW EXECUTE FUNCTION burnlink_audit_log_guard()
    """,
    """
    CREATE OR REPLACE FUNCTION burnlink_audit_state_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'burnlink_audit_state cannot be deleted';
        END IF;
        IF NEW.head_seq < OLD.head_seq OR NEW.base_seq < OLD.base_seq
           OR NEW.base_seq > NEW.head_seq OR NEW.key_id <> OLD.key_id THEN
            RAISE EXCEPTION 'burnlink_audit_state only moves forward';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE OR REPLACE TRIGGER burnlink_audit_state_guard
    BEFORE UPDATE OR DELETE ON burnlink_audit_state
    FOR EACH ROW EXECUTE FUNCTION burnlink_audit_state_guard()
    """,
)

_STATE: Final = """
SELECT schema_version, key_id, base_seq, base_mac, head_seq, head_mac, purged_before, state_mac
FROM burnlink_audit_state WHERE id = 1
"""

_INSERT_STATE: Final = """
INSERT INTO burnlink_audit_state
    (id, schema_version, key_id, base_seq, base_mac, head_seq, head_mac, purged_before,
     state_mac)
VALUES (1, %(version)s, %(key_id)s, %(base_seq)s, %(base_mac)s, %(head_seq)s, %(head_mac)s,
        %(purged_before)s, %(state_mac)s)
ON CONFLICT (id) DO NOTHING
"""

_SAVE_STATE: Final = """
UPDATE burnlink_audit_state
SET base_seq = %(base_seq)s, base_mac = %(base_mac)s, head_seq = %(head_seq)s,
    head_mac = %(head_mac)s, purged_before = %(purged_before)s, state_mac = %(state_mac)s
WHERE id = 1
"""

_WATCH: Final = (
    "INSERT INTO burnlink_audit_watch (secret_id, expires_at, notify_url) VALUES (%s, %s, %s)"
    " ON CONFLICT (secret_id) DO UPDATE"
    " SET expires_at = EXCLUDED.expires_at, notify_url = EXCLUDED.notify_url"
)
_UNWATCH: Final = "DELETE FROM burnlink_audit_watch WHERE secret_id = %s"
_SEALED: Final = "SELECT id FROM burnlink_audit_sealed WHERE id = ANY(%b::text[])"
_MARK_SEALED: Final = (
    "INSERT INTO burnlink_audit_sealed (id, at) SELECT * FROM unnest(%b::text[], %b::timestamptz[])"
    " ON CONFLICT (id) DO NOTHING"
)
_FORGET_SEALED: Final = "DELETE FROM burnlink_audit_sealed WHERE at < %s"
# The seal turn's advisory lock: the first key (b"burn" read as an integer) marks it as
# burnlink's, the second names the log by the schema its tables are in (``current_schema()``).
_SEAL_TURN_KEY: Final = "1651864174, hashtext(current_schema())"
_TRY_SEAL_TURN: Final = f"SELECT pg_try_advisory_lock({_SEAL_TURN_KEY})"
_END_SEAL_TURN: Final = f"SELECT pg_advisory_unlock({_SEAL_TURN_KEY})"
_INSERT_ENTRY: Final = """
INSERT INTO burnlink_audit_log (seq, at, type, event, prev_mac, mac)
VALUES (%(seq)s, %(at)s, %(type)s, %(event)s, %(prev_mac)s, %(mac)s)
"""
# A sealed batch's writes but the state row's, in one statement: its entries, its ids, its
# watch changes. Arrays go in binary (``%b``): psycopg escapes every element of a text-format
# array in Python. Row triggers see the rows the same statement inserted before, so the
# sequence check holds row by row (ORDER BY keeps the arrays' order); the watch rows inserted
# and deleted are disjoint (``_batch_params``), as sub-statements of one statement must be.
_SEAL_BATCH: Final = """
WITH marked AS (
    INSERT INTO burnlink_audit_sealed (id, at)
    SELECT * FROM unnest(%(ids)b::text[], %(ats)b::timestamptz[])
    ON CONFLICT (id) DO NOTHING
), watched AS (
    INSERT INTO burnlink_audit_watch (secret_id, expires_at, notify_url)
    SELECT * FROM unnest(%(watch_id)b::text[], %(watch_at)b::timestamptz[], %(watch_url)b::text[])
    ON CONFLICT (secret_id) DO UPDATE
    SET expires_at = EXCLUDED.expires_at, notify_url = EXCLUDED.notify_url
), unwatched AS (
    DELETE FROM burnlink_audit_watch WHERE secret_id = ANY(%(unwatch)b::text[])
)
INSERT INTO burnlink_audit_log (seq, at, type, event, prev_mac, mac)
SELECT seq, at, type, event, prev_mac, mac
FROM unnest(%(seq)b::bigint[], %(at)b::timestamptz[], %(type)b::text[], %(event)b::text[],
            %(prev_mac)b::bytea[], %(mac)b::bytea[]) AS e (seq, at, type, event, prev_mac, mac)
ORDER BY seq
"""

_SELECT_PAGE: Final = """
SELECT seq, at, type, event, prev_mac, mac FROM burnlink_audit_log
WHERE seq > %(after)s
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
  AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s))
  AND (%(through)s::bigint IS NULL OR seq <= %(through)s)
ORDER BY seq
LIMIT %(page)s
"""

_CLAIM_DUE: Final = """
DELETE FROM burnlink_audit_watch WHERE secret_id IN (
    SELECT secret_id FROM burnlink_audit_watch WHERE expires_at <= %s
    ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING secret_id, expires_at, notify_url
"""

_FIRST_KEPT: Final = """
SELECT seq FROM burnlink_audit_log
WHERE seq > %(base)s AND seq <= %(last)s AND at >= %(cutoff)s
ORDER BY seq LIMIT 1
"""


def _unavailable(exc: psycopg.Error) -> StorageUnavailable:
    logger.warning(
        "PostgreSQL audit log unavailable: %s (SQLSTATE %s)",
        type(exc).__name__,
        exc.sqlstate or "none",
    )
    return StorageUnavailable("The audit log is unavailable.")


def _state_from_row(row: Sequence[Any]) -> ChainState:
    _version, kid, base_seq, base_mac, head_seq, head_mac, purged_before, mac = row
    return ChainState(
        base=ChainHead(int(base_seq), bytes(base_mac)),
        head=ChainHead(int(head_seq), bytes(head_mac)),
        purged_before=None if purged_before is None else purged_before.astimezone(UTC),
        key_id=str(kid),
        mac=bytes(mac),
    )


def _state_params(state: ChainState) -> dict[str, object]:
    return {
        "version": SCHEMA_VERSION,
        "key_id": state.key_id,
        "base_seq": state.base.seq,
        "base_mac": state.base.mac,
        "head_seq": state.head.seq,
        "head_mac": state.head.mac,
        "purged_before": state.purged_before,
        "state_mac": state.mac,
    }


def _entry_params(entry: AuditEntry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "at": entry.event.at,
        "type": entry.event.type.value,
        "event": entry.event.canonical().decode("utf-8"),
        "prev_mac": entry.prev_mac,
        "mac": entry.mac,
    }


def _batch_params(
    records: Sequence[OutboxRecord], entries: Sequence[AuditEntry], canonicals: Sequence[bytes]
) -> dict[str, object]:
    """``_SEAL_BATCH``'s arrays. Watches come before unwatches (as in ``write``): a secret
    watched and unwatched in one batch ends unwatched, so it is only deleted."""
    unwatch = [r.unwatch for r in records if r.unwatch is not None]
    gone = set(unwatch)
    watch = {
        r.watch.secret_id: r.watch
        for r in records
        if r.watch is not None and r.watch.secret_id not in gone
    }
    return {
        "ids": [r.id for r in records],
        "ats": [r.event.at for r in records],
        "watch_id": list(watch),
        "watch_at": [w.expires_at for w in watch.values()],
        "watch_url": [w.notify_url for w in watch.values()],
        "unwatch": unwatch,
        "seq": [e.seq for e in entries],
        "at": [e.event.at for e in entries],
        "type": [e.event.type.value for e in entries],
        "event": [c.decode("utf-8") for c in canonicals],
        "prev_mac": [e.prev_mac for e in entries],
        "mac": [e.mac for e in entries],
    }


def _entry(row: Sequence[Any]) -> AuditEntry:
    seq, at, type_, event, prev, mac = row
    try:
        parsed = AuditEvent.from_json(event)
    except ValueError:
        raise CorruptEntry(int(seq)) from None
    if type_ != parsed.type.value or at != parsed.at:
        raise CorruptEntry(int(seq))
    return AuditEntry(seq=int(seq), event=parsed, prev_mac=bytes(prev), mac=bytes(mac))


async def _create_schema(conn: Connection, key: bytes) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        for statement in _SCHEMA:
            await conn.execute(statement)
        if await (await conn.execute(_STATE)).fetchone() is None:
            if await (await conn.execute(_ANY_ENTRY)).fetchone() is not None:
                # Sealing a new state here would hide that the old one was deleted.
                raise AuditStateInvalid(
                    "The audit log has entries but its state row is missing: it was tampered"
                    " with. Run `burnlink audit verify`; the server will not start on it."
                )
            await conn.execute(_INSERT_STATE, _state_params(seal_state(key)))
        row = await (await conn.execute(_STATE)).fetchone()
        if row is None:  # pragma: no cover - inserted just above
            raise StorageUnavailable("The audit log's state row is missing.")
        if int(row[0]) > SCHEMA_VERSION:
            raise StorageUnavailable(
                "The audit log's schema is newer than this burnlink supports; upgrade burnlink."
            )
        if row[1] != key_id(key):
            raise ConfigError("BURNLINK_AUDIT_KEY: this audit log was started with a different key")


_ANY_ENTRY: Final = "SELECT 1 FROM burnlink_audit_log LIMIT 1"
_TABLES: Final = (
    "SELECT to_regclass('burnlink_audit_log') IS NOT NULL,"
    " to_regclass('burnlink_audit_state') IS NOT NULL"
)
_SPAN: Final = "SELECT min(seq), max(seq), count(*) FROM burnlink_audit_log"


async def _tables(conn: Connection) -> tuple[bool, bool]:
    row = await (await conn.execute(_TABLES)).fetchone()
    return (False, False) if row is None else (bool(row[0]), bool(row[1]))


async def _check_existing(conn: Connection, key: bytes) -> None:
    """For a read-only open: a log is there, of a known schema and of ``key``."""
    has_log, has_state = await _tables(conn)
    if not has_log and not has_state:
        raise AuditLogMissing(
            "There is no audit log in this database (no burnlink_audit_* tables)."
        )
    if has_state:
        row = await (await conn.execute(_STATE)).fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StorageUnavailable(
                "The audit log's schema is newer than this burnlink supports; upgrade burnlink."
            )
        if row is not None and row[1] != key_id(key):
            raise ConfigError("BURNLINK_AUDIT_KEY: this audit log was started with a different key")


def _read_only_url(url: str) -> str:
    """``url`` with every transaction read-only (added to any ``options`` it has)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigError("BURNLINK_AUDIT_STORE: not a valid PostgreSQL URL") from None
    options = str(params.get("options") or "")
    params["options"] = f"{options} -c default_transaction_read_only=on".strip()
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


class PostgresAuditStore:
    """An ``AuditStore`` in PostgreSQL, shared safely by any number of processes."""

    def __init__(self, pool: Pool, *, key: bytes) -> None:
        """Wrap an open pool; use ``PostgresAuditStore.open`` instead."""
        self._pool = pool
        self._key = key
        self._forgotten = datetime.min.replace(tzinfo=UTC)
        """The newest event time of the last batch after which old sealed ids were deleted."""

    @classmethod
    async def open(cls, url: str, *, key: bytes, read_only: bool = False) -> PostgresAuditStore:
        """Connect, create the tables if needed and open a small pool.

        ``read_only`` runs no DDL and makes every transaction read-only (``AuditLogMissing``
        when the database holds no log). Raises ``ConfigError`` for a URL that cannot be
        parsed or a key other than the one the log was started with, ``AuditStateInvalid``
        for a log whose state row is gone while entries remain, ``StorageUnavailable`` when
        the server cannot be reached.
        """
        if read_only:
            url = _read_only_url(url)
        pool = await open_pool(
            url,
            name="burnlink-audit",
            setting="BURNLINK_AUDIT_STORE",
            prepare=(
                (lambda conn: _check_existing(conn, key))
                if read_only
                else (lambda conn: _create_schema(conn, key))
            ),
            unavailable=_unavailable,
            connect_timeout=CONNECT_TIMEOUT,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            checkout_timeout=POOL_TIMEOUT,
        )
        return cls(pool, key=key)

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        return pooled(self._pool, _unavailable)

    @staticmethod
    async def _locked_state(conn: Connection) -> ChainState:
        row = await (await conn.execute(_STATE + " FOR UPDATE")).fetchone()
        if row is None:
            raise StorageUnavailable("The audit log's state row is missing.")
        return _state_from_row(row)

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
        """See ``AuditBackend.write``: one transaction under the state row's lock."""
        entries: list[AuditEntry] = []
        async with self._connection() as conn, conn.transaction():
            if events:
                state = await self._locked_state(conn)
                entries = next_entries(self._key, state.head, events)
                async with conn.cursor() as cursor:
                    await cursor.executemany(_INSERT_ENTRY, [_entry_params(e) for e in entries])
                    await cursor.execute(
                        _SAVE_STATE, _state_params(state.advanced(self._key, head=entries[-1].head))
                    )
            if watch or unwatch:
                async with conn.cursor() as cursor:
                    if watch:
                        await cursor.executemany(
                            _WATCH, [(w.secret_id, w.expires_at, w.notify_url) for w in watch]
                        )
                    if unwatch:
                        await cursor.executemany(_UNWATCH, [(i,) for i in unwatch])
        return entries

    async def seal(self, records: Sequence[Sealable]) -> list[AuditEntry]:
        """See ``AuditBackend.seal``: one transaction under the state row's lock, which is
        taken before the sealed ids are read; only the records not sealed yet are decoded.

        Two round trips in pipeline mode: the lock and the sealed ids (after ``BEGIN``),
        then every write and the ``COMMIT``. The entries go in one ``INSERT`` of arrays."""
        ids = list(dict.fromkeys(record.id for record in records))
        async with (
            self._connection() as conn,
            conn.pipeline() as pipeline,
            conn.transaction(),
        ):
            locked = await conn.execute(_STATE + " FOR UPDATE")
            found = await conn.execute(_SEALED, (ids,))
            await pipeline.sync()
            row = await locked.fetchone()
            if row is None:
                raise StorageUnavailable("The audit log's state row is missing.")
            state = _state_from_row(row)
            sealed = {str(found_row[0]) for found_row in await found.fetchall()}
            fresh: list[OutboxRecord] = []
            for item in records:
                if item.id not in sealed:
                    sealed.add(item.id)
                    fresh.append(item.record())
            if not fresh:
                return []
            canonicals = [r.event_bytes() for r in fresh]
            entries = next_entries(
                self._key, state.head, [r.event for r in fresh], canonicals=canonicals
            )
            await conn.execute(_SEAL_BATCH, _batch_params(fresh, entries, canonicals))
            await conn.execute(
                _SAVE_STATE, _state_params(state.advanced(self._key, head=entries[-1].head))
            )
            newest = max(entry.event.at for entry in entries)
            if newest - self._forgotten >= FORGET_EVERY:
                await conn.execute(_FORGET_SEALED, (newest - SEALED_KEPT,))
                self._forgotten = newest
        return entries

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
        """See ``AuditStore.iter_entries``: keyset pages, one pooled connection per page."""
        if types is not None and not types:
            return
        params: dict[str, object] = {
            "since": since,
            "until": until,
            "types": None if types is None else [AuditEventType(t).value for t in types],
            "through": through_seq,
        }
        cursor = after_seq or 0
        remaining = limit
        while remaining is None or remaining > 0:
            page = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            async with self._connection() as conn:
                result = await conn.execute(_SELECT_PAGE, {**params, "after": cursor, "page": page})
                rows = await result.fetchall()
            for row in rows:
                yield _entry(row)
            if len(rows) < page:
                return
            cursor = int(rows[-1][0])
            if remaining is not None:
                remaining -= len(rows)

    async def chain_state(self) -> ChainState:
        """See ``AuditStore.chain_state``."""
        async with self._connection() as conn:
            row = await (await conn.execute(_STATE)).fetchone()
        if row is None:
            raise StorageUnavailable("The audit log's state row is missing.")
        return _state_from_row(row)

    def is_authentic(self, item: ChainState | AuditEntry) -> bool:
        """See ``AuditStore.is_authentic``."""
        if isinstance(item, ChainState):
            return state_is_authentic(item, self._key)
        return entry_is_authentic(item, self._key)

    async def bounds(self) -> ChainBounds:
        """See ``AuditStore.bounds``: one ``REPEATABLE READ`` read-only transaction."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            has_log, has_state = await _tables(conn)
            state = None
            if has_state:
                row = await (await conn.execute(_STATE)).fetchone()
                state = None if row is None else _state_from_row(row)
            first = last = None
            count = 0
            if has_log:
                span = await (await conn.execute(_SPAN)).fetchone()
                if span is not None:
                    first, last, count = span
        return ChainBounds(
            state,
            None if first is None else int(first),
            None if last is None else int(last),
            int(count),
        )

    async def check_writable(self) -> None:
        """See ``AuditStore.check_writable``: the state row ``FOR UPDATE``, a no-op
        ``UPDATE`` through its trigger, then a rollback."""
        async with self._connection() as conn, conn.transaction(force_rollback=True):
            # Give up before /readyz's deadline rather than queue behind a stuck writer.
            await conn.execute("SET LOCAL lock_timeout = '1s'")
            await self._locked_state(conn)
            await conn.execute("UPDATE burnlink_audit_state SET state_mac = state_mac WHERE id = 1")

    async def purge_before(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """See ``AuditStore.purge_before``: move the base, then delete behind it."""
        async with self._connection() as conn, conn.transaction():
            state = await self._locked_state(conn)
            last = state.head.seq if limit is None else min(state.head.seq, state.base.seq + limit)
            kept = await (
                await conn.execute(
                    _FIRST_KEPT, {"base": state.base.seq, "last": last, "cutoff": cutoff}
                )
            ).fetchone()
            new_base = int(kept[0]) - 1 if kept is not None else last
            if new_base <= state.base.seq:
                return 0
            row = await (
                await conn.execute("SELECT mac FROM burnlink_audit_log WHERE seq = %s", (new_base,))
            ).fetchone()
            if row is None:
                raise StorageUnavailable("The audit log is missing an entry it should purge.")
            purged_before = max(cutoff, state.purged_before or cutoff)
            rebased = state.rebased(
                self._key, base=ChainHead(new_base, bytes(row[0])), purged_before=purged_before
            )
            await conn.execute(_SAVE_STATE, _state_params(rebased))
            deleted = await conn.execute(
                "DELETE FROM burnlink_audit_log WHERE seq <= %s", (new_base,)
            )
            return deleted.rowcount

    # -- ExpiryWatch -------------------------------------------------------------------------

    async def watch(self, item: Watched) -> None:
        """See ``ExpiryWatch.watch``."""
        await self.write((), watch=[item])

    async def unwatch(self, secret_id: str) -> None:
        """See ``ExpiryWatch.unwatch``."""
        await self.write((), unwatch=[secret_id])

    async def claim_due(self, *, now: datetime, limit: int) -> list[Watched]:
        """See ``ExpiryWatch.claim_due``: ``DELETE … RETURNING`` over ``SKIP LOCKED`` rows."""
        async with self._connection() as conn:
            rows = await (await conn.execute(_CLAIM_DUE, (now, limit))).fetchall()
        due = [Watched(str(i), at.astimezone(UTC), url) for i, at, url in rows]
        return sorted(due, key=lambda w: w.expires_at)

    @asynccontextmanager
    async def seal_turn(self) -> AsyncIterator[bool]:
        """See ``AuditBackend.seal_turn``: a session advisory lock (``pg_try_advisory_lock``)
        named for this log's schema, on a pooled connection held for the turn, so the
        sealers of every process and host that share the log take turns; the server drops
        it with a connection that breaks. A connection that could not give the lock back is
        closed, never returned to the pool still holding it."""
        async with self._connection() as conn:
            cursor = await conn.execute(_TRY_SEAL_TURN)
            row = await cursor.fetchone()
            if row is None or not row[0]:
                yield False
                return
            try:
                yield True
            finally:
                try:
                    await conn.execute(_END_SEAL_TURN)
                except BaseException:
                    await conn.close()
                    raise

    async def ping(self) -> None:
        """Run ``SELECT 1``."""
        async with self._connection() as conn:
            await conn.execute("SELECT 1")

    async def aclose(self) -> None:
        """Close the pool."""
        await self._pool.close()
