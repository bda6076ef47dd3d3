"""PostgreSQL-specific behaviour beyond the contract: processes, outages, schema, migration,
restarts, and where codes, counters and the outbox live."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import msgspec
import psycopg
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from burnlink.clock import FrozenClock
from burnlink.errors import DuplicateId, StorageUnavailable
from burnlink.ids import new_secret_id, token_digest
from burnlink.models import (
    AccessPolicy,
    CodePut,
    EndReason,
    Event,
    EventKind,
    SecretRecord,
    Viewer,
)
from burnlink.store import SecretStore
from burnlink.store.counters import Hit
from burnlink.store.postgres import procedures
from burnlink.store.postgres.arrays import (
    BigintArray,
    BooleanArray,
    ByteaArray,
    TextArray,
    TimestamptzArray,
    register_arrays,
)
from burnlink.store.postgres.schema import MIGRATIONS
from burnlink.store.postgres.store import SCHEMA_VERSION, PostgresStore
from burnlink.store.secrets import MAX_EVENTS_PER_KIND, Recorded, Reveal
from tests import services
from tests.conftest import RETENTION, store_url
from tests.store.test_contract import (
    ACCESS,
    CODE,
    lock_out,
    make_record,
    put,
    put_code,
    viewed,
)
from tests.store.test_identity import make_session, make_token

pytestmark = pytest.mark.anyio


def _conforms(store: PostgresStore) -> SecretStore:
    return store


# One reader process: open the store, warm its pool, say "ready", wait for "go" on stdin,
# run its readers concurrently (each with an outbox record; by ``consume`` or by ``reveal``
# with a view) and print the views_left of every reader that won.
_READER = """
import asyncio, json, sys
from datetime import datetime, timedelta

from burnlink.store.secrets import Recorded, ViewRecord
from burnlink.store.postgres.store import PostgresStore


async def main() -> None:
    url, secret_id, digest, now, readers, action = sys.argv[1:]
    store = await PostgresStore.open(url, retention=timedelta(days=1))
    at = datetime.fromisoformat(now)

    async def read():
        if action == "consume":
            return await store.consume(
                secret_id, bytes.fromhex(digest), now=at, events=[Recorded(None, b"viewed")]
            )
        found = await store.reveal(
            secret_id, bytes.fromhex(digest), now=at, hits=[],
            view=ViewRecord(None, b"view", b"ed"),
        )
        return found.consumed

    try:
        await asyncio.gather(*(store.ping() for _ in range(int(readers))))
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(*(read() for _ in range(int(readers))))
        print(json.dumps([r.views_left for r in results if r is not None]), flush=True)
    finally:
        await store.aclose()


asyncio.run(main())
"""

# One counting process: like a reader, but it runs ``hits`` concurrent ``hit`` calls on one
# bucket and prints every count it got back.
_HITTER = """
import asyncio, json, sys
from datetime import datetime, timedelta

from burnlink.store.postgres.store import PostgresStore


async def main() -> None:
    url, bucket, now, hits = sys.argv[1:]
    store = await PostgresStore.open(url, retention=timedelta(days=1))
    try:
        await asyncio.gather(*(store.ping() for _ in range(int(hits))))
        print("ready", flush=True)
        sys.stdin.readline()
        counts = await asyncio.gather(
            *(
                store.hit(bucket, window=3600, now=datetime.fromisoformat(now))
                for _ in range(int(hits))
            )
        )
        print(json.dumps(counts), flush=True)
    finally:
        await store.aclose()


asyncio.run(main())
"""

# One attempting process: like a reader, but it runs ``calls`` concurrent ``record_failure``
# calls (``locks`` as given) and prints [counted, attempts_left] of every one that found it.
_FAILER = """
import asyncio, json, sys
from datetime import datetime, timedelta

from burnlink.store.postgres.store import PostgresStore


async def main() -> None:
    url, secret_id, now, calls, locks = sys.argv[1:]
    store = await PostgresStore.open(url, retention=timedelta(days=1))
    try:
        await asyncio.gather(*(store.ping() for _ in range(int(calls))))
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(
            *(
                store.record_failure(
                    secret_id, now=datetime.fromisoformat(now), locks=locks == "locks"
                )
                for _ in range(int(calls))
            )
        )
        print(
            json.dumps([[r.counted, r.attempts_left] for r in results if r is not None]),
            flush=True,
        )
    finally:
        await store.aclose()


asyncio.run(main())
"""

# The schema of burnlink releases before access rules (schema version 1), frozen here as those
# releases created it, and the statement with which they stored a secret.
_SCHEMA_V1 = """
CREATE TABLE burnlink_schema_version (version integer PRIMARY KEY);
INSERT INTO burnlink_schema_version (version) VALUES (1);
CREATE TABLE burnlink_secrets (
    id text PRIMARY KEY,
    envelope bytea NOT NULL,
    access_digest bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    max_views integer NOT NULL,
    views_left integer NOT NULL,
    attempts_left integer NOT NULL,
    passphrase_kdf text,
    passphrase_iterations integer,
    passphrase_salt bytea,
    passphrase_proof_digest bytea,
    owner text,
    CONSTRAINT burnlink_secrets_passphrase_complete CHECK (
        (passphrase_kdf IS NULL) = (passphrase_iterations IS NULL)
        AND (passphrase_kdf IS NULL) = (passphrase_salt IS NULL)
        AND (passphrase_kdf IS NULL) = (passphrase_proof_digest IS NULL)
    )
);
CREATE INDEX burnlink_secrets_expires_at ON burnlink_secrets (expires_at);
CREATE TABLE burnlink_receipts (
    id text PRIMARY KEY,
    manage_digest bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    max_views integer NOT NULL,
    views_used integer NOT NULL DEFAULT 0,
    ended_at timestamptz,
    end_reason text,
    keep_until timestamptz NOT NULL
);
CREATE INDEX burnlink_receipts_keep_until ON burnlink_receipts (keep_until);
CREATE TABLE burnlink_events (
    receipt_id text NOT NULL REFERENCES burnlink_receipts (id) ON DELETE CASCADE,
    seq bigserial,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    ip text,
    user_agent text,
    PRIMARY KEY (receipt_id, seq)
);
"""

_CREATE_V1 = """
WITH receipt AS (
    INSERT INTO burnlink_receipts
        (id, manage_digest, created_at, expires_at, max_views, views_used, keep_until)
    VALUES (%(id)s, %(manage_digest)s, %(created_at)s, %(expires_at)s, %(max_views)s, 0,
            %(keep_until)s)
    RETURNING id
)
INSERT INTO burnlink_secrets
    (id, envelope, access_digest, created_at, expires_at, max_views, views_left, attempts_left,
     passphrase_kdf, passphrase_iterations, passphrase_salt, passphrase_proof_digest, owner)
SELECT receipt.id, %(envelope)s, %(access_digest)s, %(created_at)s, %(expires_at)s,
       %(max_views)s, %(max_views)s, %(max_attempts)s, NULL, NULL, NULL, NULL, NULL
FROM receipt
"""


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The session database, emptied for this test."""
    return store_url("postgres", request, tmp_path)


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """A store on the test's emptied database, closed after the test."""
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A brand-new database without any burnlink table, dropped afterwards."""
    with services.new_postgres_database("burnlink_fresh") as url:
        yield url


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())


def _execute(url: str, sql: str, params: tuple[object, ...] | None = None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)


def _create_v1(url: str, record: SecretRecord) -> None:
    """Store ``record`` as a burnlink release of schema version 1 did."""
    params = {
        "id": record.secret_id,
        "manage_digest": record.manage_digest,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "max_views": record.max_views,
        "keep_until": record.expires_at + RETENTION,
        "envelope": record.envelope,
        "access_digest": record.access_digest,
        "max_attempts": record.max_attempts,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_CREATE_V1, params)


async def _read_line(stream: BufferedByteReceiveStream) -> str:
    return (await stream.receive_until(b"\n", 65536)).decode()


async def _stderr_of(process: Process) -> str:
    assert process.stderr is not None
    chunks = [chunk async for chunk in process.stderr]
    return b"".join(chunks).decode(errors="replace")


async def _run_in_processes(script: str, args: list[str], processes: int) -> list[list[int]]:
    """Start ``processes`` copies of ``script``; once all say "ready", send "go" to each at
    once and collect the JSON list each prints."""
    argv = [sys.executable, "-c", script, *args]
    children = [
        await anyio.open_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(processes)
    ]
    results: list[list[int]] = []
    try:
        with anyio.fail_after(20):
            outputs = []
            for child in children:
                assert child.stdout is not None
                outputs.append(BufferedByteReceiveStream(child.stdout))
            for child, output in zip(children, outputs, strict=True):
                if await _read_line(output) != "ready":
                    pytest.fail(await _stderr_of(child))
            for child in children:
                assert child.stdin is not None
                await child.stdin.send(b"go\n")
            for output in outputs:
                results.append(json.loads(await _read_line(output)))
            for child in children:
                assert await child.wait() == 0, await _stderr_of(child)
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
            await child.aclose()
    return results


@pytest.mark.parametrize("action", ["consume", "reveal"])
@pytest.mark.parametrize("views", [1, 3])
async def test_a_view_is_taken_exactly_once_across_processes(
    postgres_url: str, clock: FrozenClock, views: int, action: str
) -> None:
    # ``reveal`` with a view takes it in one statement: the last view deletes the row, an
    # earlier one counts it down, by the value it locked.
    processes, per_process = 2, 16
    record = make_record(clock, views=views)
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await store.create(record)
        args = [
            postgres_url,
            record.secret_id,
            ACCESS.hex(),
            clock.now().isoformat(),
            str(per_process),
            action,
        ]
        winners = [
            left for output in await _run_in_processes(_READER, args, processes) for left in output
        ]

        assert len(winners) == min(processes * per_process, views)
        assert sorted(winners) == list(range(views))
        receipt = await store.receipt(record.secret_id, now=clock.now())
        assert receipt is not None
        assert (receipt.views_used, receipt.end_reason) == (views, EndReason.VIEWED)
        assert await store.peek(record.secret_id, now=clock.now()) is None
        pending = await store.pending_events(limit=100)
        # A reveal completes its record with max_views: "view" + "3" + "ed".
        expected = b"viewed" if action == "consume" else b"view%ded" % views
        assert [p.outbox for p in pending] == [expected] * views
    finally:
        await store.aclose()


async def test_record_failure_locks_once_across_processes(
    postgres_url: str, clock: FrozenClock
) -> None:
    record = make_record(clock, attempts=5)
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await store.create(record)
        args = [postgres_url, record.secret_id, clock.now().isoformat(), "16"]

        found: dict[str, list[Any]] = {}
        for locks in ("spares", "locks"):
            outputs: list[Any] = await _run_in_processes(_FAILER, [*args, locks], 2)
            found[locks] = [tuple(r) for output in outputs for r in output]
        spared, locked = found["spares"], found["locks"]

        assert sorted(left for counted, left in spared if counted) == [1, 2, 3, 4]
        assert [left for counted, left in spared if not counted] == [1] * 28
        assert locked == [(True, 0)]  # the other 31 found it gone
        receipt = await store.receipt(record.secret_id, now=clock.now())
        assert receipt is not None
        assert receipt.end_reason is EndReason.LOCKED
    finally:
        await store.aclose()


async def test_open_unreachable_server_raises_storage_unavailable() -> None:
    started = time.monotonic()

    with pytest.raises(StorageUnavailable) as raised:
        await PostgresStore.open("postgresql://postgres@127.0.0.1:1/postgres", retention=RETENTION)

    assert time.monotonic() - started < 5
    assert "127.0.0.1" not in str(raised.value)


async def test_open_silent_server_times_out_as_storage_unavailable() -> None:
    # A listener that never accepts: the TCP handshake succeeds, the server never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        started = time.monotonic()

        with pytest.raises(StorageUnavailable):
            await PostgresStore.open(
                f"postgres://postgres@127.0.0.1:{port}/postgres", retention=RETENTION
            )

        assert time.monotonic() - started < 5


async def test_open_concurrently_on_fresh_database_creates_schema_once(
    fresh_database: str, clock: FrozenClock
) -> None:
    stores: list[PostgresStore] = []

    async def open_one() -> None:
        stores.append(await PostgresStore.open(fresh_database, retention=RETENTION))

    try:
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(open_one)

        assert len(stores) == 4
        record = make_record(clock)
        await stores[0].create(record)
        for store in stores:
            assert await store.peek(record.secret_id, now=clock.now()) is not None
    finally:
        for store in stores:
            await store.aclose()
    assert _query(fresh_database, "SELECT version FROM burnlink_schema_version") == [
        (SCHEMA_VERSION,)
    ]


async def test_open_accepts_postgres_scheme(postgres_url: str) -> None:
    url = "postgres://" + postgres_url.partition("://")[2]
    store = await PostgresStore.open(url, retention=RETENTION)
    try:
        await store.ping()
    finally:
        await store.aclose()


async def test_store_data_survives_close_and_reopen(postgres_url: str, clock: FrozenClock) -> None:
    record = make_record(clock, views=2)
    first = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await first.create(record)
        created = Event(at=clock.now(), kind=EventKind.CREATED)
        await first.record(record.secret_id, [Recorded(created, b"created")])
        assert await first.consume(record.secret_id, ACCESS, now=clock.now()) is not None
    finally:
        await first.aclose()

    second = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        meta = await second.peek(record.secret_id, now=clock.now())
        assert meta is not None
        assert (meta.views_left, meta.expires_at) == (1, record.expires_at)
        consumed = await second.consume(record.secret_id, ACCESS, now=clock.now())
        assert consumed is not None
        assert (consumed.envelope, consumed.views_left) == (record.envelope, 0)
        receipt = await second.receipt(record.secret_id, now=clock.now())
        assert receipt is not None
        assert receipt.views_used == 2
        assert receipt.events == (Event(at=clock.now(), kind=EventKind.CREATED),)
        assert [p.outbox for p in await second.pending_events(limit=10)] == [b"created"]
    finally:
        await second.aclose()


def _end_other_sessions(url: str) -> None:
    """End every other session of the database, as a restart would, and wait until they are
    gone (their server processes have sent the termination and closed the socket)."""
    sessions = (
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    pids = [int(str(pid)) for (pid,) in _query(url, f"SELECT pid {sessions}")]
    _query(url, f"SELECT pg_terminate_backend(pid) {sessions} AND pid = ANY(ARRAY{pids}::int[])")
    deadline = time.monotonic() + 5
    while _query(url, f"SELECT count(*) {sessions} AND pid = ANY(ARRAY{pids}::int[])")[0][0]:
        assert time.monotonic() < deadline, "the killed sessions did not end"
        time.sleep(0.01)


async def test_store_recovers_after_connections_are_killed(postgres_url: str) -> None:
    # A server restart or an admin ending sessions: the pooled connections, just used (well
    # inside the idle window that skips the round-trip check), are all dead.
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await asyncio.gather(*(store.ping() for _ in range(5)))
        await anyio.to_thread.run_sync(_end_other_sessions, postgres_url)

        await asyncio.gather(*(store.ping() for _ in range(5)))
        await store.ping()
    finally:
        await store.aclose()


async def test_store_closed_raises_storage_unavailable(
    postgres_url: str, clock: FrozenClock
) -> None:
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    await store.aclose()

    with pytest.raises(StorageUnavailable):
        await store.ping()
    with pytest.raises(StorageUnavailable):
        await store.peek(new_secret_id(), now=clock.now())


async def test_create_duplicate_message_names_no_id(
    pg_store: PostgresStore, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await pg_store.create(record)
    await pg_store.burn(record.secret_id, now=clock.now())

    with pytest.raises(DuplicateId) as raised:
        await pg_store.create(record)

    assert record.secret_id not in str(raised.value)
    assert raised.value.__cause__ is None


async def test_purge_expired_cascades_events_and_keeps_nothing(
    postgres_url: str, clock: FrozenClock
) -> None:
    store = await PostgresStore.open(postgres_url, retention=timedelta(seconds=10))
    try:
        record = make_record(clock, ttl=60)
        created = Event(at=clock.now(), kind=EventKind.CREATED)
        await store.create(record, events=[Recorded(created, b"created")])
        clock.advance(60)

        assert await store.purge_expired(now=clock.now(), limit=10) == 1
        receipt = await store.receipt(record.secret_id, now=clock.now())
        assert receipt is not None
        assert (receipt.end_reason, receipt.ended_at) == (EndReason.EXPIRED, record.expires_at)
        clock.advance(10)
        assert await store.purge_expired(now=clock.now(), limit=10) == 0
    finally:
        await store.aclose()

    for table in ("burnlink_secrets", "burnlink_receipts", "burnlink_events"):
        assert _query(postgres_url, f"SELECT count(*) FROM {table}") == [(0,)]  # noqa: S608
    # The sweep never takes an event the sealer has not acknowledged.
    assert _query(postgres_url, "SELECT record FROM burnlink_outbox") == [(b"created",)]


# -- schema 2: migration, access policy, one-time codes, rate counters ----------------------


async def test_open_migrates_a_version_1_database(fresh_database: str, clock: FrozenClock) -> None:
    _execute(fresh_database, _SCHEMA_V1)
    old = make_record(clock, views=2)
    _create_v1(fresh_database, old)

    store = await PostgresStore.open(fresh_database, retention=RETENTION)
    try:
        meta = await store.peek(old.secret_id, now=clock.now())
        assert meta is not None
        assert (meta.views_left, meta.expires_at, meta.policy) == (
            2,
            old.expires_at,
            AccessPolicy(),
        )
        assert await put_code(store, clock, old.secret_id)
        check = await store.check_code(old.secret_id, CODE, now=clock.now())
        assert check is not None
        assert check.matched
        consumed = await store.consume(old.secret_id, ACCESS, now=clock.now())
        assert consumed is not None
        assert (consumed.envelope, consumed.views_left) == (old.envelope, 1)

        # A process of the previous release still writes secrets the new one reads.
        written_by_old = make_record(clock)
        _create_v1(fresh_database, written_by_old)
        meta = await store.peek(written_by_old.secret_id, now=clock.now())
        assert meta is not None
        assert meta.policy.is_empty()

        new = msgspec.structs.replace(
            make_record(clock), policy=AccessPolicy(recipient_email="bob@example.com")
        )
        await store.create(new)
        meta = await store.peek(new.secret_id, now=clock.now())
        assert meta is not None
        assert meta.policy == new.policy
        assert await store.hit("create:192.0.2.1", window=60, now=clock.now()) == 1
    finally:
        await store.aclose()

    # Opening again finds the current schema and changes nothing.
    again = await PostgresStore.open(fresh_database, retention=RETENTION)
    try:
        receipt = await again.receipt(old.secret_id, now=clock.now())
        assert receipt is not None
        assert (receipt.views_used, receipt.end_reason) == (1, None)
    finally:
        await again.aclose()
    assert _query(
        fresh_database, "SELECT version FROM burnlink_schema_version ORDER BY version"
    ) == [(1,), (SCHEMA_VERSION,)]
    assert SCHEMA_VERSION == 9


async def test_open_migrates_a_version_2_database_whose_code_counts_as_the_first(
    fresh_database: str, clock: FrozenClock
) -> None:
    _execute(fresh_database, _SCHEMA_V1)
    for statement in MIGRATIONS[1][1]:
        _execute(fresh_database, statement)
    _execute(fresh_database, "INSERT INTO burnlink_schema_version VALUES (2)")
    old = make_record(clock)
    _create_v1(fresh_database, old)
    # A live code, put two minutes ago by the previous release (no ``sent`` column).
    put_at = clock.now() - timedelta(minutes=2)
    _execute(
        fresh_database,
        "INSERT INTO burnlink_codes VALUES (%s, %s, %s, %s, 3)",
        (old.secret_id, CODE, put_at, put_at + timedelta(minutes=10)),
    )

    store = await PostgresStore.open(fresh_database, retention=RETENTION)
    try:
        last_allowed = await put(store, clock, old.secret_id, max_codes=1)
        second = await put(store, clock, old.secret_id, max_codes=2)
    finally:
        await store.aclose()

    assert (last_allowed, second) == (CodePut.TOO_SOON, CodePut.SENT)
    assert _query(fresh_database, "SELECT sent FROM burnlink_recipient_codes") == [(2,)]
    assert _query(fresh_database, "SELECT max(version) FROM burnlink_schema_version") == [
        (SCHEMA_VERSION,)
    ]


async def test_open_refuses_a_newer_schema(fresh_database: str) -> None:
    _execute(fresh_database, "CREATE TABLE burnlink_schema_version (version integer PRIMARY KEY)")
    _execute(
        fresh_database,
        "INSERT INTO burnlink_schema_version (version) VALUES (%s)",
        (SCHEMA_VERSION + 1,),
    )

    with pytest.raises(StorageUnavailable):
        await PostgresStore.open(fresh_database, retention=RETENTION)


async def test_policy_is_stored_as_its_bytes(postgres_url: str, clock: FrozenClock) -> None:
    policy = AccessPolicy(allowed_ips=("203.0.113.0/24",), denied_countries=("KP",))
    record = msgspec.structs.replace(make_record(clock), policy=policy)
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await store.create(record)
    finally:
        await store.aclose()

    assert _query(postgres_url, "SELECT policy FROM burnlink_secrets") == [(policy.to_bytes(),)]


def _codes(url: str) -> int:
    [(count,)] = _query(url, "SELECT count(*) FROM burnlink_recipient_codes")
    assert isinstance(count, int)
    return count


async def test_codes_go_with_their_secret(postgres_url: str, clock: FrozenClock) -> None:
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        consumed, burned, locked, expired = (make_record(clock, attempts=1) for _ in range(4))
        expired = msgspec.structs.replace(expired, expires_at=clock.now() + timedelta(seconds=60))
        for record in (consumed, burned, locked, expired):
            await store.create(record)
            assert await put_code(store, clock, record.secret_id)
        assert _codes(postgres_url) == 4

        await store.consume(consumed.secret_id, ACCESS, now=clock.now())
        await store.burn(burned.secret_id, now=clock.now())
        await lock_out(store, locked.secret_id, now=clock.now())
        assert _codes(postgres_url) == 1

        clock.advance(60)
        # Expired but not yet swept: the code is still a row, yet no call can use it.
        assert await store.check_code(expired.secret_id, CODE, now=clock.now()) is None
        assert not await put_code(store, clock, expired.secret_id)
        assert await store.purge_expired(now=clock.now(), limit=10) == 1
        assert _codes(postgres_url) == 0
    finally:
        await store.aclose()


async def test_put_code_is_atomic_under_concurrency(
    pg_store: PostgresStore, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await pg_store.create(record)
    digests = [token_digest(str(n).encode()) for n in range(20)]
    accepted: list[bytes] = []

    async def put(digest: bytes) -> None:
        if await put_code(pg_store, clock, record.secret_id, digest=digest):
            accepted.append(digest)

    async with anyio.create_task_group() as group:
        for digest in digests:
            group.start_soon(put, digest)

    assert len(accepted) == 1
    check = await pg_store.check_code(record.secret_id, accepted[0], now=clock.now())
    assert check is not None
    assert check.matched


async def test_put_code_racing_the_end_of_its_secret_leaves_no_code(
    postgres_url: str, clock: FrozenClock
) -> None:
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        for round_ in range(20):
            record = make_record(clock)
            await store.create(record)

            async def end(secret_id: str, burn: bool) -> None:
                if burn:
                    assert await store.burn(secret_id, now=clock.now())
                else:
                    assert await store.consume(secret_id, ACCESS, now=clock.now()) is not None

            async with anyio.create_task_group() as group:
                group.start_soon(put_code, store, clock, record.secret_id)
                group.start_soon(end, record.secret_id, round_ % 2 == 1)
        assert _codes(postgres_url) == 0
    finally:
        await store.aclose()


async def test_purge_expired_drops_ended_counter_windows(
    postgres_url: str, clock: FrozenClock
) -> None:
    clock.advance(3600 - clock.now().timestamp() % 3600)  # the start of an hour
    start = int(clock.now().timestamp())
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        assert await store.hit("minute", window=60, now=clock.now()) == 1
        assert await store.hit("hour", window=3600, now=clock.now()) == 1
        assert await store.hit("unread", window=60, now=clock.now(), cost=0) == 0
        assert sorted(
            _query(postgres_url, "SELECT bucket, window_start, ends_at FROM burnlink_counters")
        ) == [
            ("hour", start, datetime.fromtimestamp(start + 3600, UTC)),
            ("minute", start, datetime.fromtimestamp(start + 60, UTC)),
        ]

        clock.advance(59.999)
        await store.purge_expired(now=clock.now(), limit=10)
        assert len(_query(postgres_url, "SELECT 1 FROM burnlink_counters")) == 2
        clock.advance(0.001)
        await store.purge_expired(now=clock.now(), limit=10)
        assert _query(postgres_url, "SELECT bucket FROM burnlink_counters") == [("hour",)]

        assert await store.hit("minute", window=60, now=clock.now()) == 1
        assert await store.hit("hour", window=3600, now=clock.now()) == 2
    finally:
        await store.aclose()


async def test_hit_counts_exactly_across_processes(postgres_url: str, clock: FrozenClock) -> None:
    processes, per_process = 2, 25
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        args = [postgres_url, "reveal:198.51.100.0/24", clock.now().isoformat(), str(per_process)]
        counts = [c for output in await _run_in_processes(_HITTER, args, processes) for c in output]

        assert sorted(counts) == list(range(1, processes * per_process + 1))
        assert (
            await store.hit("reveal:198.51.100.0/24", window=3600, now=clock.now(), cost=0)
            == processes * per_process
        )
    finally:
        await store.aclose()


# -- schema 4: the outbox --------------------------------------------------------------------


def _at_version_3(url: str) -> None:
    """Make ``url`` a database as a burnlink release of schema version 3 left it."""
    _execute(url, _SCHEMA_V1)
    for version, statements in MIGRATIONS:
        if 1 < version <= 3:
            for statement in statements:
                _execute(url, statement)
            _execute(url, "INSERT INTO burnlink_schema_version VALUES (%s)", (version,))


async def test_open_migrates_a_version_3_database_to_keep_an_outbox(
    fresh_database: str, clock: FrozenClock
) -> None:
    _at_version_3(fresh_database)
    old = make_record(clock, views=2)
    _create_v1(fresh_database, old)
    assert _query(fresh_database, "SELECT to_regclass('burnlink_outbox') IS NULL") == [(True,)]

    store = await PostgresStore.open(fresh_database, retention=RETENTION)
    try:
        viewed = Event(at=clock.now(), kind=EventKind.VIEWED, ip="192.0.2.1")
        consumed = await store.consume(
            old.secret_id, ACCESS, now=clock.now(), events=[Recorded(viewed, b"viewed")]
        )
        assert consumed is not None
        assert (consumed.envelope, consumed.views_left) == (old.envelope, 1)
        await store.record(None, [Recorded(None, b"alert")])
        new = make_record(clock)
        await store.create(new, events=[Recorded(None, b"created")])

        pending = await store.pending_events(limit=10)
        assert [p.outbox for p in pending] == [b"viewed", b"alert", b"created"]
        await store.ack_events([p.ref for p in pending])
        assert await store.pending_events(limit=10) == []
        receipt = await store.receipt(old.secret_id, now=clock.now())
        assert receipt is not None
        assert (receipt.views_used, receipt.events) == (1, (viewed,))
    finally:
        await store.aclose()

    assert _query(
        fresh_database, "SELECT version FROM burnlink_schema_version ORDER BY version"
    ) == [(1,), (2,), (3,), (SCHEMA_VERSION,)]


# -- schema 6: sign-in ----------------------------------------------------------------------


async def test_open_migrates_a_version_5_database_and_keeps_sign_in(
    fresh_database: str, clock: FrozenClock
) -> None:
    """A database of the release before sign-in (schema version 5) opens; its receipts take
    the owner their secret had, and sessions, tokens and "my secrets" work as on a new one."""
    _execute(fresh_database, _SCHEMA_V1)
    for version, statements in MIGRATIONS:
        if 1 < version <= 5:
            for statement in statements:
                _execute(fresh_database, statement)
            _execute(fresh_database, "INSERT INTO burnlink_schema_version VALUES (%s)", (version,))
    old = make_record(clock)
    _create_v1(fresh_database, old)
    _execute(fresh_database, "UPDATE burnlink_secrets SET owner = 'alice'")

    store = await PostgresStore.open(fresh_database, retention=RETENTION)
    try:
        (owned,) = await store.owned_secrets("alice", now=clock.now(), limit=10)
        assert (owned.secret_id, owned.owner, owned.label) == (old.secret_id, "alice", None)
        clock.advance(1)
        new = msgspec.structs.replace(make_record(clock), owner="alice", label="new")
        await store.create(new)
        owned_now = await store.owned_secrets("alice", now=clock.now(), limit=10)
        assert [r.label for r in owned_now] == ["new", None]
        session = make_session(clock)
        await store.put_session(session)
        assert await store.touch_session(session.digest, now=clock.now(), idle_seconds=60)
        token = make_token(clock)
        await store.put_token(token)
        assert await store.use_token(token.digest, now=clock.now())
    finally:
        await store.aclose()

    assert _query(
        fresh_database, "SELECT version FROM burnlink_schema_version ORDER BY version"
    ) == [(1,), (2,), (3,), (4,), (5,), (SCHEMA_VERSION,)]


# -- schema 7: the owner's email on the receipt ------------------------------------------


def _at_version_6(url: str, record: SecretRecord) -> None:
    """Make ``url`` a database as the release of schema version 6 left it, holding
    ``record``, owned by alice with a label."""
    _execute(url, _SCHEMA_V1)
    for version, statements in MIGRATIONS:
        if 1 < version <= 6:
            for statement in statements:
                _execute(url, statement)
            _execute(url, "INSERT INTO burnlink_schema_version VALUES (%s)", (version,))
    _create_v1(url, record)
    _execute(url, "UPDATE burnlink_receipts SET owner = 'alice', label = 'old'")


async def test_open_migrates_a_version_6_database_and_keeps_the_owners_email(
    fresh_database: str, clock: FrozenClock
) -> None:
    """A database of the release before (schema version 6) opens; its receipts keep their
    owner without an email, and new receipts keep the email their owner had."""
    old = make_record(clock)
    _at_version_6(fresh_database, old)

    store = await PostgresStore.open(fresh_database, retention=RETENTION)
    try:
        clock.advance(1)
        new = msgspec.structs.replace(
            make_record(clock), owner="alice", owner_email="alice@example.com", label="new"
        )
        await store.create(new)
        owned = await store.owned_secrets("alice", now=clock.now(), limit=10)
        receipt = await store.receipt(old.secret_id, now=clock.now())
    finally:
        await store.aclose()

    assert [(r.secret_id, r.owner, r.owner_email, r.label) for r in owned] == [
        (new.secret_id, "alice", "alice@example.com", "new"),
        (old.secret_id, "alice", None, "old"),
    ]
    assert receipt == owned[1]
    assert _query(
        fresh_database, "SELECT version FROM burnlink_schema_version ORDER BY version"
    ) == [(1,), (2,), (3,), (4,), (5,), (6,), (SCHEMA_VERSION,)]


# The statements with which the release before schema 7 (schema 6) created an owned secret
# (without counters or events) and read a receipt, frozen here as its processes still run them
# during a rolling upgrade.
_PREVIOUS_CREATE = """
WITH receipt AS (
    INSERT INTO burnlink_receipts
        (id, manage_digest, created_at, expires_at, max_views, views_used, keep_until, owner,
         label)
    VALUES (%(id)s, %(manage_digest)s, %(created_at)s, %(expires_at)s, %(max_views)s, 0,
            %(keep_until)s, %(owner)s, %(label)s)
    RETURNING id
)
INSERT INTO burnlink_secrets
    (id, envelope, access_digest, created_at, expires_at, max_views, views_left, attempts_left,
     passphrase_kdf, passphrase_iterations, passphrase_salt, passphrase_proof_digest, owner,
     policy)
SELECT receipt.id, %(envelope)s, %(access_digest)s, %(created_at)s, %(expires_at)s,
       %(max_views)s, %(max_views)s, %(max_attempts)s, NULL, NULL, NULL, NULL, %(owner)s,
       %(policy)s
FROM receipt
"""
_PREVIOUS_RECEIPT = """
SELECT r.id, r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,
       r.ended_at, r.end_reason, r.owner, r.label, e.at, e.kind, e.ip, e.user_agent
FROM burnlink_receipts AS r
LEFT JOIN burnlink_events AS e ON e.receipt_id = r.id
WHERE r.id = %(id)s AND r.keep_until > %(now)s
ORDER BY e.seq
"""


async def test_a_running_process_of_the_release_before_keeps_working_beside_the_owners_email(
    fresh_database: str, clock: FrozenClock
) -> None:
    """During a rolling upgrade, a process of the release before schema 7, connected before a
    new process migrated the database, goes on creating secrets and reading receipts; its
    receipts carry no owner's email, and it reads the new ones as it always did."""
    _at_version_6(fresh_database, make_record(clock))
    with psycopg.connect(fresh_database, autocommit=True) as old_process:
        store = await PostgresStore.open(fresh_database, retention=RETENTION)
        try:
            new = msgspec.structs.replace(
                make_record(clock), owner="alice", owner_email="alice@example.com"
            )
            await store.create(new)
            by_old = make_record(clock)
            old_process.execute(
                _PREVIOUS_CREATE,
                {
                    "id": by_old.secret_id,
                    "manage_digest": by_old.manage_digest,
                    "created_at": by_old.created_at,
                    "expires_at": by_old.expires_at,
                    "max_views": by_old.max_views,
                    "keep_until": by_old.expires_at + RETENTION,
                    "owner": "alice",
                    "label": "by the old release",
                    "envelope": by_old.envelope,
                    "access_digest": by_old.access_digest,
                    "max_attempts": by_old.max_attempts,
                    "policy": by_old.policy.to_bytes(),
                },
            )
            old_reads_new = old_process.execute(
                _PREVIOUS_RECEIPT, {"id": new.secret_id, "now": clock.now()}
            ).fetchall()
            receipt_by_old = await store.receipt(by_old.secret_id, now=clock.now())
            receipt_new = await store.receipt(new.secret_id, now=clock.now())
            consumed = await store.consume(by_old.secret_id, ACCESS, now=clock.now())
        finally:
            await store.aclose()

    assert _query(fresh_database, "SELECT max(version) FROM burnlink_schema_version") == [
        (SCHEMA_VERSION,)
    ]
    assert [row[8:10] for row in old_reads_new] == [("alice", None)]
    assert receipt_by_old is not None
    assert (receipt_by_old.owner, receipt_by_old.owner_email) == ("alice", None)
    assert receipt_new is not None
    assert receipt_new.owner_email == "alice@example.com"
    assert consumed is not None
    assert consumed.envelope == by_old.envelope


# -- schema 8: the viewer of each receipt line -------------------------------------------

ALICE = Viewer(email="alice@example.com", mfa=True)


def _at_version_7(url: str, record: SecretRecord) -> None:
    """Make ``url`` a database as the release of schema version 7 left it, holding
    ``record`` with its ``created`` line."""
    _execute(url, _SCHEMA_V1)
    for version, statements in MIGRATIONS:
        if 1 < version <= 7:
            for statement in statements:
                _execute(url, statement)
            _execute(url, "INSERT INTO burnlink_schema_version VALUES (%s)", (version,))
    _create_v1(url, record)


async def test_open_migrates_a_version_7_database_and_keeps_the_viewers(
    fresh_database: str, clock: FrozenClock
) -> None:
    """A database of the release before (schema version 7) opens; its lines name no viewer,
    and new lines keep theirs."""
    old = make_record(clock)
    _at_version_7(fresh_database, old)

    store = await PostgresStore.open(fresh_database, retention=RETENTION)
    try:
        viewed = Event(at=clock.now(), kind=EventKind.VIEWED, ip="203.0.113.7", viewer=ALICE)
        await store.record(old.secret_id, [Recorded(viewed, b"record")])
        receipt = await store.receipt(old.secret_id, now=clock.now())
    finally:
        await store.aclose()

    assert receipt is not None
    assert [e.viewer for e in receipt.events][-1:] == [ALICE]
    assert all(e.viewer is None for e in receipt.events[:-1])
    assert _query(
        fresh_database, "SELECT version FROM burnlink_schema_version ORDER BY version"
    ) == [(1,), (2,), (3,), (4,), (5,), (6,), (7,), (SCHEMA_VERSION,)]


# The statements with which the release before schema 8 (schema 7) appended receipt lines
# (``record``) and read a receipt, frozen here as its processes still run them during a
# rolling upgrade.
_PREVIOUS_RECORD = """
WITH kept_lines AS (
    INSERT INTO burnlink_events (receipt_id, at, kind, ip, user_agent)
    SELECT src.id, l.at, l.kind, l.ip, l.agent
    FROM (SELECT id FROM burnlink_receipts WHERE id = %(id)s) AS src,
         (SELECT u.*, row_number() OVER (PARTITION BY u.kind ORDER BY u.n) AS nth
          FROM unnest(%(line_at)s::timestamptz[], %(line_kind)s::text[], %(line_ip)s::text[],
                      %(line_agent)s::text[]) WITH ORDINALITY AS u (at, kind, ip, agent, n)
         ) AS l
    WHERE (SELECT count(*) FROM burnlink_events AS e
           WHERE e.receipt_id = src.id AND e.kind = l.kind) + l.nth <= %(cap)s
    ORDER BY l.n
), kept_outbox AS (
    INSERT INTO burnlink_outbox (record)
    SELECT o.record FROM unnest(%(outbox)s::bytea[]) WITH ORDINALITY AS o (record, n)
    WHERE TRUE
    ORDER BY o.n
)
SELECT 1
"""
_PREVIOUS_RECEIPT_7 = """
SELECT r.id, r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,
       r.ended_at, r.end_reason, r.owner, r.label, r.owner_email, e.at, e.kind, e.ip,
       e.user_agent
FROM burnlink_receipts AS r
LEFT JOIN burnlink_events AS e ON e.receipt_id = r.id
WHERE r.id = %(id)s AND r.keep_until > %(now)s
ORDER BY e.seq
"""


async def test_a_running_process_of_the_release_before_keeps_working_beside_the_viewers(
    fresh_database: str, clock: FrozenClock
) -> None:
    """During a rolling upgrade, a process of the release before schema 8, connected before a
    new process migrated the database, goes on appending receipt lines and reading receipts;
    its lines name no viewer, and it reads lines that name one as it always did."""
    record = make_record(clock, views=3)
    _at_version_7(fresh_database, record)
    with psycopg.connect(fresh_database, autocommit=True) as old_process:
        store = await PostgresStore.open(fresh_database, retention=RETENTION)
        try:
            viewed = Event(at=clock.now(), kind=EventKind.VIEWED, ip="203.0.113.7", viewer=ALICE)
            assert await store.consume(
                record.secret_id, ACCESS, now=clock.now(), events=[Recorded(viewed, b"r")]
            )
            old_process.execute(
                _PREVIOUS_RECORD,
                {
                    "id": record.secret_id,
                    "line_at": [clock.now()],
                    "line_kind": ["viewed"],
                    "line_ip": ["198.51.100.1"],
                    "line_agent": [None],
                    "outbox": [b"by the old release"],
                    "cap": MAX_EVENTS_PER_KIND,
                },
            )
            old_reads = old_process.execute(
                _PREVIOUS_RECEIPT_7, {"id": record.secret_id, "now": clock.now()}
            ).fetchall()
            receipt = await store.receipt(record.secret_id, now=clock.now())
        finally:
            await store.aclose()

    assert _query(fresh_database, "SELECT max(version) FROM burnlink_schema_version") == [
        (SCHEMA_VERSION,)
    ]
    assert [row[12:14] for row in old_reads][-2:] == [
        ("viewed", "203.0.113.7"),
        ("viewed", "198.51.100.1"),
    ]
    assert receipt is not None
    assert [(e.kind, e.ip, e.viewer) for e in receipt.events][-2:] == [
        (EventKind.VIEWED, "203.0.113.7", ALICE),
        (EventKind.VIEWED, "198.51.100.1", None),
    ]


async def test_record_holds_the_cap_exactly_under_concurrency(
    pg_store: PostgresStore, clock: FrozenClock
) -> None:
    """Lines of one kind racing for the last places on a receipt: exactly the cap is kept,
    while every outbox record is."""
    record = make_record(clock)
    await pg_store.create(record)
    opened = Event(at=clock.now(), kind=EventKind.OPENED)
    # One call with more lines than room: the cap counts the lines of the call too.
    await pg_store.record(record.secret_id, [Recorded(opened, b"o")] * (MAX_EVENTS_PER_KIND - 3))

    async def open_page() -> None:
        await pg_store.record(record.secret_id, [Recorded(opened, b"o")])

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(open_page)

    receipt = await pg_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert len(receipt.events) == MAX_EVENTS_PER_KIND
    assert len(await pg_store.pending_events(limit=1000)) == MAX_EVENTS_PER_KIND - 3 + 10


async def test_a_batch_of_lines_is_capped_per_kind(
    pg_store: PostgresStore, clock: FrozenClock
) -> None:
    record = make_record(clock)
    opened = Event(at=clock.now(), kind=EventKind.OPENED)
    viewed = Event(at=clock.now(), kind=EventKind.VIEWED)
    await pg_store.create(record, events=[Recorded(opened, b"o")] * (MAX_EVENTS_PER_KIND + 1))
    await pg_store.record(record.secret_id, [Recorded(opened, b"o"), Recorded(viewed, b"v")])

    receipt = await pg_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.events == (opened,) * MAX_EVENTS_PER_KIND + (viewed,)


async def test_ack_events_ignores_refs_that_name_no_record(
    pg_store: PostgresStore, clock: FrozenClock
) -> None:
    await pg_store.record(None, [Recorded(None, b"kept")])

    await pg_store.ack_events(["0", "x", "-1", "99999999999999999999", "\u0661"])

    assert [p.outbox for p in await pg_store.pending_events(limit=10)] == [b"kept"]


# -- schema 5: a process of an earlier release still running during a rolling upgrade ------

# How a release before schema 3 checked a code, frozen here as such processes still run it: at
# the last wrong try it deletes the code, and with it when it was put.
_PREVIOUS_CHECK_CODE = """
UPDATE burnlink_codes AS c
SET tries_left = c.tries_left - CASE WHEN c.digest = %(digest)s THEN 0 ELSE 1 END
WHERE c.secret_id = %(id)s AND c.expires_at > %(now)s AND c.tries_left > 0
  AND EXISTS (
      SELECT 1 FROM burnlink_secrets AS s WHERE s.id = c.secret_id AND s.expires_at > %(now)s
  )
RETURNING c.digest = %(digest)s, c.tries_left
"""
_PREVIOUS_DELETE_CODE = "DELETE FROM burnlink_codes WHERE secret_id = %(id)s"


def _previous_release_guesses(url: str, secret_id: str, now: datetime) -> None:
    """Wrong codes from a process of an earlier release until the code is used up."""
    params = {"id": secret_id, "digest": b"w" * 32, "now": now}
    with psycopg.connect(url) as conn:
        while True:
            with conn.transaction():
                row = conn.execute(_PREVIOUS_CHECK_CODE, params).fetchone()
                if row is not None and (row[0] or row[1] == 0):
                    conn.execute(_PREVIOUS_DELETE_CODE, params)
            if row is None or row[1] == 0:
                return


async def test_a_running_process_of_an_earlier_release_cannot_shorten_the_code_minute(
    postgres_url: str, clock: FrozenClock
) -> None:
    """During a rolling upgrade, a process of an earlier release fails on every code once the
    schema is 5 (its store answers 503), so it can no longer delete a used-up code and let
    the next one be mailed within the minute."""
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        record = make_record(clock)
        await store.create(record)
        assert await put(store, clock, record.secret_id) is CodePut.SENT
        with pytest.raises(psycopg.errors.UndefinedTable, match="burnlink_codes"):
            _previous_release_guesses(postgres_url, record.secret_id, clock.now())
        clock.advance(30)
        again = await put(store, clock, record.secret_id)
    finally:
        await store.aclose()

    assert again is CodePut.TOO_SOON


async def test_a_repaired_database_keeps_one_codes_table(
    postgres_url: str, clock: FrozenClock
) -> None:
    """With its version rows lost, every step runs again: step 2 makes the old codes table
    anew (empty) beside the renamed one, and step 5 drops it, keeping the codes."""
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        record = make_record(clock)
        await store.create(record)
        assert await put(store, clock, record.secret_id) is CodePut.SENT
    finally:
        await store.aclose()
    _execute(postgres_url, "DELETE FROM burnlink_schema_version")

    again = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        clock.advance(30)
        assert await put(again, clock, record.secret_id) is CodePut.TOO_SOON
    finally:
        await again.aclose()
    tables = _query(postgres_url, "SELECT to_regclass('burnlink_codes') IS NULL")
    assert tables == [(True,)]


# -- how statements are planned ------------------------------------------------------------


async def _plans(store: PostgresStore, fragment: str) -> tuple[int, int]:
    """The generic and the custom plans the pool's connection made for its prepared
    statement containing ``fragment`` (calls made one at a time share one connection)."""
    async with store._pool.connection() as conn:  # the session's own view
        cursor = await conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            (f"%{fragment}%",),
        )
        rows = await cursor.fetchall()
    assert len(rows) == 1, rows
    generic, custom = rows[0]
    return int(generic), int(custom)


async def test_key_lookups_are_planned_once_and_range_sweeps_per_call(
    pg_store: PostgresStore, clock: FrozenClock
) -> None:
    # A create or a reveal planned anew on each call cost the database server about half its
    # CPU per request; a sweep's range planned once, for any expiry time, could scan every row.
    record = make_record(clock)
    await pg_store.create(record)
    for _ in range(10):  # psycopg prepares a statement on its fifth run
        await pg_store.peek(record.secret_id, now=clock.now())
        await pg_store.purge_expired(now=clock.now(), limit=10)
    peek = await _plans(pg_store, "FROM burnlink_secrets\nWHERE id = $1 AND expires_at > $2")
    receipts = await _plans(pg_store, "DELETE FROM burnlink_receipts WHERE keep_until")
    generic, custom = peek
    assert (generic > 0, custom) == (True, 0), peek
    generic, custom = receipts
    assert (generic, custom > 0) == (0, True), receipts


async def test_declared_arrays_reach_the_server_as_their_types(postgres_url: str) -> None:
    at = datetime(2026, 12, 6, 12, 0, 0, 123000, tzinfo=UTC)
    sent: list[tuple[list[Any], str]] = [
        (TextArray(["plain", None, 'quo"te, {brace} \\', "", "NULL", "naïve ✓ 🔑"]), "text[]"),
        (BigintArray([0, -1, 2**62]), "bigint[]"),
        (TimestamptzArray([at]), "timestamp with time zone[]"),
        (BooleanArray([True, None, False]), "boolean[]"),
        (ByteaArray([b"\x00\xff", b""]), "bytea[]"),
        (TextArray(), "text[]"),
        (ByteaArray(), "bytea[]"),
    ]
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        register_arrays(conn)
        for value, type_name in sent:
            # No cast in the statement: the type is the one the parameter declared.
            cursor = await conn.execute("SELECT %s, pg_typeof(%s)::text", (value, value))
            assert await cursor.fetchone() == (list(value), type_name)


# -- counting apart from the change ----------------------------------------------------------


@asynccontextmanager
async def _reveal_behind_a_held_row(
    postgres_url: str,
    store: PostgresStore,
    record: SecretRecord,
    clock: FrozenClock,
    hits: list[Hit],
) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], asyncio.Task[Reveal]]]:
    """Another connection (yielded) holds ``record``'s row lock, and a reveal taking its view
    (the task yielded) waits on it: the block starts once it does (fails after about 2 s)."""
    async with await psycopg.AsyncConnection.connect(postgres_url) as holder:
        await holder.execute(
            "SELECT 1 FROM burnlink_secrets WHERE id = %s FOR UPDATE", (record.secret_id,)
        )
        reveal = asyncio.create_task(
            store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=hits, view=viewed(clock))
        )
        async with await psycopg.AsyncConnection.connect(postgres_url) as watcher:
            for _ in range(200):
                cursor = await watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (holder.info.backend_pid,),
                )
                if (await cursor.fetchone() or (0,))[0]:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the reveal never waited on the held row")
        yield holder, reveal


async def test_a_request_waiting_on_its_secret_holds_up_no_other_counted_in_its_bucket(
    postgres_url: str, pg_store: PostgresStore, clock: FrozenClock
) -> None:
    # The counters' rows are locked only while counted: a reveal waiting on its secret's row
    # (here held by another transaction) has already counted and committed, so a create
    # counted in the same bucket goes ahead and gets the next position.
    hits = [Hit("from:192.0.2.77", 3600, limit=100)]
    record = make_record(clock)
    await pg_store.create(record)
    async with _reveal_behind_a_held_row(postgres_url, pg_store, record, clock, hits) as (
        holder,
        reveal,
    ):
        created = await asyncio.wait_for(pg_store.create(make_record(clock), hits=hits), timeout=5)
        assert not reveal.done()
        await holder.rollback()
    revealed = await reveal
    assert created == [2]
    assert revealed.counts == [1]
    assert revealed.consumed is not None


async def test_a_reader_that_lost_the_last_view_to_a_concurrent_one_finds_the_secret_gone(
    postgres_url: str, pg_store: PostgresStore, clock: FrozenClock
) -> None:
    # As on SQLite and Redis, where reveals run one after another: the reveal waits on the
    # row lock of the one taking the last view, then reads what it committed, not the
    # secret as it was before it waited.
    record = make_record(clock)
    await pg_store.create(record)
    async with _reveal_behind_a_held_row(postgres_url, pg_store, record, clock, []) as (
        holder,
        reveal,
    ):
        await holder.execute("DELETE FROM burnlink_secrets WHERE id = %s", (record.secret_id,))
        await holder.commit()
    revealed = await asyncio.wait_for(reveal, timeout=5)
    assert (revealed.meta, revealed.consumed) == (None, None)


async def test_a_create_refused_for_a_taken_id_keeps_its_count(
    pg_store: PostgresStore, clock: FrozenClock
) -> None:
    # The count commits before the change: a create that then fails still counted, so a
    # client retrying a taken id cannot get past its limit.
    hits = [Hit("create:192.0.2.78", 3600, limit=100)]
    record = make_record(clock)
    first = await pg_store.create(record, hits=hits)
    with pytest.raises(DuplicateId):
        await pg_store.create(record, hits=hits)
    third = await pg_store.create(make_record(clock), hits=hits)
    assert (first, third) == ([1], [3])


async def test_a_procedure_dropped_under_a_running_store_fails_closed_until_it_reopens(
    postgres_url: str, clock: FrozenClock
) -> None:
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute(f"DROP PROCEDURE {procedures.CREATE.name}")
        record = make_record(clock)
        with pytest.raises(StorageUnavailable):
            await store.create(record)
        assert await store.peek(record.secret_id, now=clock.now()) is None
    finally:
        await store.aclose()
    reopened = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await reopened.create(record)
        assert await reopened.peek(record.secret_id, now=clock.now()) is not None
    finally:
        await reopened.aclose()
