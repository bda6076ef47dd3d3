"""The PostgreSQL store: ``postgresql://user@host:5432/db`` (``postgres://`` too).

Design
------
The schema lives in ``burnlink.store.postgres.schema`` (DDL, versions, migration), the
statements in ``burnlink.store.postgres.sql``. ``open`` creates the schema, or migrates an older one
forward, inside one transaction that first takes ``pg_advisory_xact_lock``, so several processes
starting together never race on the DDL; ``burnlink_schema_version`` records which schema is in
place.

- ``burnlink_secrets``: live secrets (envelope, access digest, counters, passphrase gate, and
  the access policy as ``AccessPolicy.to_bytes()``; ``NULL`` for secrets written before
  schema 2, read back as the empty policy).
- ``burnlink_receipts``: one row per secret, kept until ``keep_until`` (``retention`` after
  the secret ended, or after it expired).
- ``burnlink_events``: a receipt's history, deleted with it (``ON DELETE CASCADE``).
- ``burnlink_recipient_codes``: at most one one-time code per secret (digest, ``put_at``,
  ``expires_at``, ``tries_left``, ``sent``: codes put since the last match), deleted with its
  secret (``ON DELETE CASCADE``), so a code never outlives a consumed, burned, locked or
  purged secret.
- ``burnlink_counters``: rate-limit windows, one row per ``(bucket, window_start)`` with its
  hit count and ``ends_at``; a window is only ever addressed by its start, so a row left after
  its end is harmless until ``purge_expired`` deletes it.
- ``burnlink_sessions`` and ``burnlink_api_tokens`` (schema 6): sign-in, by digest
  (``burnlink.store.postgres.identity``); ``burnlink_receipts.owner`` (indexed) lists a
  sender's secrets, and ``.owner_email`` (schema 7) names the owner on the receipt;
  ``burnlink_events.viewer_email`` and ``.viewer_mfa`` (schema 8) name the signed-in
  recipient a line was made for.
- ``burnlink_outbox`` (schema 4): the events recorded with each change, waiting for the
  sealer (``audit.outbox``): ``ref`` (a ``bigserial``, the ``Pending.ref``) and ``record``
  (the ``Recorded.outbox`` bytes, as given). Rows leave only by ``ack_events``; the sweep
  never touches them.

``expires_at``, ``keep_until`` and ``ends_at`` are indexed, so ``purge_expired`` walks only the
rows it deletes; its batch of secrets is chosen with ``FOR UPDATE SKIP LOCKED`` so several
sweepers, or a sweeper and a reader, never wait on one another.

Atomicity
---------
Each rule is one statement or one transaction, never a read followed by a write in another
round trip unless that read holds the row lock. ``consume`` is ``UPDATE … SET views_left =
views_left - 1 WHERE id = … AND access_digest = … AND expires_at > now AND views_left > 0
RETURNING …`` with the receipt update in the same statement; the row lock it takes serialises
concurrent readers in every process (under READ COMMITTED a waiting reader re-checks
``views_left > 0`` on the row its predecessor committed), so K readers of V views get exactly
``min(K, V)`` envelopes. At zero the row is deleted by a second statement of the same
transaction, still under that lock. ``record_failure`` first locks the row (``SELECT … FOR
UPDATE``, which under READ COMMITTED waits for a concurrent attempt and then reads what it
committed), counts only if ``locks`` says rightly whether this attempt is the last, and at zero
deletes under that lock, all in one transaction; ``burn`` is a single statement.
``create`` and ``reveal`` are one ``CALL`` each (``procedures``): it counts the request's
rate hits in a transaction of its own, committed at once, so a counter's row is locked only
while it is counted, then makes the change guarded on the totals counted. A reveal's change
locks the secret's row when the view can be taken (``SELECT … FOR UPDATE``, which under READ
COMMITTED waits for a concurrent reader and then reads the version it committed), and by the
``views_left`` it locked either counts the row down (``UPDATE``) or, for the last view, deletes
it (``DELETE``), under that lock.

Events travel inside the statement that makes the change they describe: ``create``,
``consume``, ``record_failure`` (its counting statement) and ``burn`` carry them as array
parameters to two more common table expressions (``sql._keep``) that insert the receipt lines
(at most ``MAX_EVENTS_PER_KIND`` of a kind) and the outbox records only when the change's own
CTE returned a row. So a change and its events commit together or not at all, with no round
trip of their own, and a refused call keeps nothing. In those statements the count of a kind
already on the receipt is read in the statement's snapshot, so views racing on one secret can
pass the cap by one line each; ``record`` (events that change no secret) locks the receipt row
first when it has lines, then counts, in one pipeline (one round trip), so it holds the cap
exactly. Outbox ``ref``s are taken
in the order of the events, but a ``bigserial`` is not commit order: ``pending_events`` can
see a later record before an earlier one commits, which is harmless because the sealer
acknowledges by ref, never by position.

``put_code`` is one ``INSERT … ON CONFLICT DO UPDATE … WHERE`` (the old code is replaced only
if it was put before ``resend_after`` and fewer than ``max_codes`` were put) fed by a
``FOR KEY SHARE`` read of the live secret, which holds off a concurrent delete of the secret
until the code is in.
``check_code`` is an ``UPDATE`` that takes the code's row lock, re-checks liveness on the
newest row version and takes a try unless the digest matches; a match then
deletes the code in the same transaction, still under that lock, so of concurrent checkers
only one can match. ``hit`` is one ``INSERT … ON CONFLICT DO UPDATE SET hits = hits + cost
RETURNING hits``, which PostgreSQL makes atomic across every connection (``cost=0`` is a plain
read). Locks are always taken secret first, then code, so these never deadlock with
``consume`` or ``burn``.

``now`` always comes from the caller, and window starts are computed from it here: SQL
``now()`` is never used, so one clock decides expiry everywhere.

Errors
------
Every driver and pool error is translated into ``StorageUnavailable`` here, with ``from None``
and a log line that names only the error class and SQLSTATE: server messages can quote
parameter values (a duplicate key quotes the id), and ids, tokens and envelopes must never
reach a log.

Residue
-------
PostgreSQL is an MVCC database: a ``DELETE`` (or the ``UPDATE`` of a view counter, which writes
a new version of the whole row, envelope included) leaves the old row version in the table
file as a dead tuple until VACUUM reclaims the space, and VACUUM marks that space free without
zeroing it; the bytes survive until overwritten, and they are also in the WAL, in WAL archives,
in base backups and on replicas. The envelope is ciphertext under a key the server never
holds, so this matters only to someone holding both a copy of the disk and the link. Keep
autovacuum on (it is by default), put the data directory, WAL archives and backups on encrypted
storage, and keep backup retention short.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
import psycopg.errors

from burnlink.errors import DuplicateId, StorageUnavailable
from burnlink.models import (
    AccessPolicy,
    CodeCheck,
    CodePut,
    Consumed,
    EndReason,
    PassphraseGate,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
)
from burnlink.store.counters import Hit
from burnlink.store.outbox import Pending
from burnlink.store.postgres import procedures, sql
from burnlink.store.postgres.arrays import BigintArray, ByteaArray, TextArray, register_arrays
from burnlink.store.postgres.identity import POSTGRES_TYPES, PostgresIdentity
from burnlink.store.postgres.params import events_params, secret_params
from burnlink.store.postgres.pool import Connection, Pool, open_pool, planned_per_call, pooled
from burnlink.store.postgres.requests import PostgresRequests
from burnlink.store.postgres.schema import SCHEMA_VERSION, create_schema
from burnlink.store.secrets import (
    NO_RULES_PREFIX,
    STAND_IN_DIGEST,
    Attempt,
    Recorded,
    Reveal,
    ViewRecord,
)
from burnlink.store.sql_rows import receipt_from_rows

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT: Final = 1
"""Seconds to wait for one connection attempt, unless the URL sets ``connect_timeout``."""

POOL_MIN_SIZE: Final = 1
POOL_MAX_SIZE: Final = 10
POOL_TIMEOUT: Final = 1.5
"""Seconds an operation waits for a pooled connection before ``StorageUnavailable``."""


def _hit_params(hit: Hit, now_seconds: int) -> dict[str, Any]:
    start = now_seconds // hit.window * hit.window
    return {
        "bucket": hit.bucket,
        "start": start,
        "ends_at": datetime.fromtimestamp(start + hit.window, UTC),
        "cost": hit.cost,
    }


def _counting(hits: Sequence[Hit], now_seconds: int) -> tuple[list[int], dict[str, Any]]:
    """The start of each hit's window, and the parameters with which the procedures
    (``procedures``) count and read the hits and guard their change on them:
    ``count_*``, one element per counter hit at a cost (a counter hit twice once, with both
    costs), and ``hit_*``, one per hit in order (limit -1 for none)."""
    starts = [now_seconds // hit.window * hit.window for hit in hits]
    counted: dict[tuple[str, int], list[int]] = {}  # (bucket, start): [window's end, cost]
    for hit, start in zip(hits, starts, strict=True):
        if hit.cost:
            counted.setdefault((hit.bucket, start), [start + hit.window, 0])[1] += hit.cost
    return starts, {
        "count_buckets": TextArray(bucket for bucket, _ in counted),
        "count_starts": BigintArray(start for _, start in counted),
        "count_ends": BigintArray(ends for ends, _ in counted.values()),
        "count_costs": BigintArray(cost for _, cost in counted.values()),
        "hit_buckets": TextArray(hit.bucket for hit in hits),
        "hit_starts": BigintArray(starts),
        "hit_limits": BigintArray(-1 if hit.limit is None else hit.limit for hit in hits),
    }


def _one_by_one(totals: Sequence[int] | None, hits: Sequence[Hit], starts: list[int]) -> list[int]:
    """The totals a statement answered (each counter's final one), as if the hits had been
    counted one after another: an earlier hit of a counter hit twice gets the total it
    reached (the row was locked throughout)."""
    answered = [int(total) for total in totals or []]
    later: dict[tuple[str, int], int] = {}
    for n in reversed(range(len(answered))):
        key = (hits[n].bucket, starts[n])
        answered[n] -= later.get(key, 0)
        later[key] = later.get(key, 0) + hits[n].cost
    return answered


async def _prepare(conn: Connection) -> None:
    """Create or migrate the schema, then create the procedures this release calls."""
    await create_schema(conn)
    await procedures.create_procedures(conn)


async def _configure(conn: Connection) -> None:
    """Set up a connection of the store's pool as it opens: each prepared statement planned
    once, for any values (``pool``'s docstring), and array parameters dumped by their declared
    types (``arrays``)."""
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    register_arrays(conn)


def _utc(moment: datetime) -> datetime:
    """A timestamptz as read back (in the session's time zone) as an aware UTC datetime."""
    return moment.astimezone(UTC)


def _unavailable(exc: psycopg.Error) -> StorageUnavailable:
    """Log a driver error without its message (which may quote values) and translate it."""
    logger.warning(
        "PostgreSQL store unavailable: %s (SQLSTATE %s)",
        type(exc).__name__,
        exc.sqlstate or "none",
    )
    return StorageUnavailable()


def _refs(refs: Sequence[str]) -> list[int]:
    """The outbox rows named by ``refs``; a ref no row could have (not a number) is dropped."""
    return [int(ref) for ref in refs if ref.isascii() and ref.isdigit() and int(ref) < 2**63]


class PostgresStore(PostgresIdentity, PostgresRequests):
    """A ``SecretStore`` in PostgreSQL, shared safely by any number of processes."""

    def __init__(self, pool: Pool, *, retention: timedelta) -> None:
        """Wrap an open pool; use ``PostgresStore.open`` instead."""
        self._pool = pool
        self._retention = retention

    @classmethod
    async def open(cls, url: str, *, retention: timedelta) -> PostgresStore:
        """Connect, create the schema or migrate it forward, and open a small connection pool.

        Raises ``StorageUnavailable`` within a few seconds if the server cannot be reached,
        and ``ConfigError`` if ``url`` cannot be parsed.
        """
        pool = await open_pool(
            url,
            name="burnlink",
            setting="BURNLINK_STORE",
            prepare=_prepare,
            unavailable=_unavailable,
            connect_timeout=CONNECT_TIMEOUT,
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            checkout_timeout=POOL_TIMEOUT,
            configure=_configure,
        )
        return cls(pool, retention=retention)

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        """A pooled connection (autocommit); driver errors leave as ``StorageUnavailable``."""
        return pooled(self._pool, _unavailable)

    async def create(
        self, record: SecretRecord, *, events: Sequence[Recorded] = (), hits: Sequence[Hit] = ()
    ) -> list[int]:
        """Count ``hits``, then insert the secret (its access policy included), its receipt
        and ``events`` (receipt lines and outbox records) unless a counter of ``hits`` is past
        its limit; one ``CALL`` (``procedures.CREATE``), so one round trip.

        The count is a transaction of its own, so the counters' rows are locked only while
        they are counted; the totals are positions, and the insert is guarded on them.
        ``DuplicateId`` if the id is taken, by a live secret or a kept receipt (the hits stay
        counted).
        """
        starts, counting = _counting(hits, int(record.created_at.timestamp()))
        params = {**secret_params(record, events, self._retention), **counting}
        async with self._connection() as conn:
            try:
                cursor = await conn.execute(procedures.CREATE.call, params)
            except psycopg.errors.UniqueViolation:
                raise DuplicateId("secret id already taken") from None
            row = await cursor.fetchone()
        return _one_by_one(None if row is None else row[0], hits, starts)

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        """Metadata of a live secret, or ``None``; one read-only statement."""
        async with self._connection() as conn:
            cursor = await conn.execute(sql.PEEK, {"id": secret_id, "now": now})
            row = await cursor.fetchone()
        return _meta(secret_id, row)

    async def reveal(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        hits: Sequence[Hit],
        view: ViewRecord | None = None,
    ) -> Reveal:
        """See ``SecretStore.reveal``: one ``CALL`` (``procedures.REVEAL``) counts ``hits`` in
        a transaction of its own, then reads the secret and, when no total is
        past its limit and the secret needs nothing else, takes the view under the row lock,
        keeping the view's event: the last view deletes the row, an earlier one counts it
        down. The totals it counted are the ones returned, so the counts and the decision
        agree."""
        starts, counting = _counting(hits, int(now.timestamp()))
        events = [] if view is None else [view.completed(0)]
        params = {
            "id": secret_id,
            "access_digest": access_digest,
            "now": now,
            "keep_until": now + self._retention,
            "take": view is not None,
            "no_rules": NO_RULES_PREFIX,
            "view_head": b"" if view is None else view.head,
            "view_tail": b"" if view is None else view.tail,
            **counting,
            **events_params(events),
            "outbox": ByteaArray(),
        }
        async with self._connection() as conn:
            cursor = await conn.execute(procedures.REVEAL.call, params)
            row = await cursor.fetchone()
        if row is None:  # pragma: no cover - the statement always answers one row
            raise StorageUnavailable()
        totals, allowed, *found = row
        counts = _one_by_one(totals, hits, starts)
        if not allowed:
            return Reveal(counts, None)
        *peeked, envelope, views_left = found
        meta = _meta(secret_id, None if peeked[0] is None else tuple(peeked))
        if envelope is None:
            return Reveal(counts, meta)
        return Reveal(counts, meta, Consumed(envelope=envelope, views_left=views_left))

    async def consume(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        events: Sequence[Recorded] = (),
    ) -> Consumed | None:
        """Take one view under the row lock and keep ``events`` with it in the same statement;
        at zero delete the secret in the same transaction.

        The receipt's cap on events of a kind is read in the statement's snapshot, so views of
        one secret racing each other can go past it, by at most one line per racing view
        (``record`` holds the cap exactly). Outbox records are never capped.
        """
        params = {
            "id": secret_id,
            "access_digest": access_digest,
            "now": now,
            "keep_until": now + self._retention,
            **events_params(events),
        }
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(sql.CONSUME, params)
            row = await cursor.fetchone()
            if row is None:
                return None
            envelope, views_left = row
            if views_left == 0:
                await conn.execute(sql.DELETE_VIEWED, {"id": secret_id})
        return Consumed(envelope=envelope, views_left=views_left)

    async def record_failure(
        self, secret_id: str, *, now: datetime, locks: bool, events: Sequence[Recorded] = ()
    ) -> Attempt | None:
        """Lock the row, then count one wrong passphrase (keeping ``events`` in the same
        statement) only if ``locks`` says rightly whether it is the last; at zero delete and
        end as ``locked``, all in one transaction."""
        params = {
            "id": secret_id,
            "now": now,
            "keep_until": now + self._retention,
            **events_params(events),
        }
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(sql.LOCK_ATTEMPTS, params)
            row = await cursor.fetchone()
            if row is None:
                return None
            attempts_left: int = row[0]
            if (attempts_left == 1) != locks:
                return Attempt(counted=False, attempts_left=attempts_left)
            # The row is ours until commit, so this counts it, from exactly that value.
            await conn.execute(sql.RECORD_FAILURE, params)
            attempts_left -= 1
            if attempts_left == 0:
                await conn.execute(sql.DELETE_LOCKED, {"id": secret_id})
        return Attempt(counted=True, attempts_left=attempts_left)

    async def burn(
        self,
        secret_id: str,
        *,
        now: datetime,
        reason: EndReason = EndReason.BURNED,
        events: Sequence[Recorded] = (),
    ) -> bool:
        """Delete a live secret, end its receipt as ``reason`` and keep ``events``, in one
        statement."""
        params = {
            "id": secret_id,
            "now": now,
            "keep_until": now + self._retention,
            "reason": reason.value,
            **events_params(events),
        }
        async with self._connection() as conn:
            cursor = await conn.execute(sql.BURN, params)
            row = await cursor.fetchone()
        return row is not None and row[0] > 0

    async def receipt(self, secret_id: str, *, now: datetime) -> ReceiptRecord | None:
        """The kept receipt with its events in order, read in one statement."""
        async with self._connection() as conn:
            cursor = await conn.execute(sql.RECEIPT, {"id": secret_id, "now": now})
            rows = await cursor.fetchall()
        return (
            receipt_from_rows(secret_id, [row[1:] for row in rows], POSTGRES_TYPES)
            if rows
            else None
        )

    async def record(self, secret_id: str | None, events: Sequence[Recorded]) -> None:
        """Keep ``events`` in one statement: lines on the receipt (if kept), outbox records
        whatever the receipt.

        With receipt lines, the receipt's row lock is taken first by another statement of the
        same pipeline (one round trip, one implicit transaction up to its sync): concurrent
        calls queue on the lock, and the insert, which reads in a snapshot taken after it,
        counts the lines they committed, so the cap holds exactly.
        """
        if not events:
            return
        params = {"id": secret_id, **events_params(events)}
        async with self._connection() as conn:
            if secret_id is None or not params["line_kind"]:
                await conn.execute(sql.RECORD, params)
                return
            async with conn.pipeline():
                await conn.execute(sql.LOCK_RECEIPT, {"id": secret_id})
                await conn.execute(sql.RECORD, params)

    async def pending_events(self, *, limit: int) -> list[Pending]:
        """See ``SecretStore.pending_events``: one read, in ``ref`` order.

        ``ref`` is a ``bigserial``, taken when a record is inserted, not when it commits: a
        read can see a later record before an earlier one commits, which the next read then
        returns. The sealer acknowledges by ref, never by position, so none is skipped.
        """
        async with self._connection() as conn:
            cursor = await conn.execute(sql.PENDING_EVENTS, {"limit": max(limit, 0)})
            rows = await cursor.fetchall()
        return [Pending(str(ref), bytes(record)) for ref, record in rows]

    async def ack_events(self, refs: Sequence[str]) -> None:
        """See ``SecretStore.ack_events``: one ``DELETE``."""
        numbers = _refs(refs)
        if not numbers:
            return
        async with self._connection() as conn:
            await conn.execute(sql.ACK_EVENTS, {"refs": BigintArray(numbers)})

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
        """Insert or replace the secret's one-time code in one statement.

        Refused (nothing changed) if the secret is gone or expired, if its code was put after
        ``resend_after``, or if ``max_codes`` were put; a read in the same transaction says
        which. The secret's row is share-locked for the statement, so a concurrent ``consume``,
        ``burn`` or sweep deletes it (and the new code) only after.
        """
        params = {
            "id": secret_id,
            "digest": code_digest,
            "now": now,
            "expires_at": expires_at,
            "tries": tries,
            "resend_after": resend_after,
            "max_codes": max_codes,
        }
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(sql.PUT_CODE, params)
            if await cursor.fetchone() is not None:
                return CodePut.SENT
            cursor = await conn.execute(sql.WHY_NO_CODE, params)
            row = await cursor.fetchone()
        if row is None:
            return CodePut.GONE
        # Once max_codes were put and the last is spent, only a match (impossible without a
        # live code) or the end of the secret changes the row: SPENT cannot be stale.
        return CodePut.TOO_SOON if row[0] else CodePut.SPENT

    async def check_code(
        self, secret_id: str, code_digest: bytes, *, now: datetime
    ) -> CodeCheck | None:
        """Check the live code under its row lock; a match deletes it (a used-up one stays).

        ``None`` if there is no code, it expired or has no tries left, or its secret is gone.
        """
        params = {"id": secret_id, "digest": code_digest, "now": now}
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(sql.CHECK_CODE, params)
            row = await cursor.fetchone()
            if row is None:
                return None
            matched, tries_left = bool(row[0]), int(row[1])
            if matched:
                await conn.execute(sql.DELETE_CODE, {"id": secret_id})
        return CodeCheck(matched=matched, tries_left=tries_left)

    async def hit(self, bucket: str, *, window: int, now: datetime, cost: int = 1) -> int:
        """See ``SecretStore.hit``."""
        (total,) = await self.hits([Hit(bucket, window, cost)], now=now)
        return total

    async def hits(self, hits: Sequence[Hit], *, now: datetime) -> list[int]:
        """See ``SecretStore.hits``: the statements go in one pipeline (one round trip).

        Each adds to the fixed window holding ``now`` in one upsert and returns its total; the
        window starts at ``floor(epoch seconds / window) * window``, and its row records when
        it ends, for ``purge_expired``. ``cost=0`` only reads (a ``SELECT``, no row made).
        """
        seconds = int(now.timestamp())
        async with self._connection() as conn:
            async with conn.pipeline():
                cursors = [
                    await conn.execute(
                        sql.HIT if hit.cost else sql.READ_HITS, _hit_params(hit, seconds)
                    )
                    for hit in hits
                ]
            rows = [await cursor.fetchone() for cursor in cursors]
        return [0 if row is None else int(row[0]) for row in rows]

    async def clear_hits(self, bucket: str, *, window: int, now: datetime) -> int:
        """See ``SecretStore.clear_hits``: one ``DELETE … RETURNING``."""
        params = _hit_params(Hit(bucket, window, 0), int(now.timestamp()))
        async with self._connection() as conn:
            cursor = await conn.execute(sql.CLEAR_HITS, params)
            row = await cursor.fetchone()
        return 0 if row is None else int(row[0])

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """Delete a batch of expired secrets (``SKIP LOCKED``; their codes go with them),
        receipts past retention, counter windows that have ended, sessions past their end
        and API tokens past retention, in one transaction, each statement planned for ``now``
        (``planned_per_call``): a generic plan of a range over a million rows scans them all.
        """
        async with self._connection() as conn, planned_per_call(conn):
            cursor = await conn.execute(
                sql.PURGE_EXPIRED,
                {"now": now, "limit": max(limit, 0), "retention": self._retention},
            )
            row = await cursor.fetchone()
            await conn.execute(sql.PURGE_RECEIPTS, {"now": now})
            await conn.execute(sql.PURGE_COUNTERS, {"now": now})
            await conn.execute(sql.PURGE_SESSIONS, {"now": now})
            await conn.execute(sql.PURGE_TOKENS, {"now": now})
        return 0 if row is None else int(row[0])

    async def ping(self) -> None:
        """Run ``SELECT 1``; raise ``StorageUnavailable`` if the server does not answer."""
        async with self._connection() as conn:
            await conn.execute("SELECT 1")

    async def aclose(self) -> None:
        """Close the pool; the store is unusable afterwards."""
        await self._pool.close()


_STAND_IN: Final = (
    STAND_IN_DIGEST, datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
    1, 1, 5, None, None, None, None, AccessPolicy().to_bytes(),
)  # fmt: skip
"""A ``PEEK`` row as a secret without rules has it: what a lookup of an id that is not live
decodes instead (``store.secrets.STAND_IN_DIGEST``)."""


def _meta(secret_id: str, row: tuple[Any, ...] | None) -> SecretMeta | None:
    """A secret's metadata from its ``PEEK`` row (``None`` for no row, after decoding a
    stand-in: the same work)."""
    if row is None:
        _decode(secret_id, _STAND_IN)
        return None
    return _decode(secret_id, row)


def _decode(secret_id: str, row: tuple[Any, ...]) -> SecretMeta:
    (
        access,
        created,
        expires,
        max_views,
        views_left,
        attempts_left,
        kdf,
        it,
        salt,
        proof,
        policy,
    ) = row
    gate = (
        None
        if kdf is None
        else PassphraseGate(kdf=kdf, iterations=it, salt=salt, proof_digest=proof)
    )
    return SecretMeta(
        secret_id=secret_id,
        access_digest=access,
        created_at=_utc(created),
        expires_at=_utc(expires),
        max_views=max_views,
        views_left=views_left,
        attempts_left=attempts_left,
        passphrase=gate,
        policy=AccessPolicy() if policy is None else AccessPolicy.from_bytes(policy),
    )
