"""PostgreSQL-specific behaviour beyond the contract: processes, outages, schema, restarts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from burnlink.clock import FrozenClock
from burnlink.errors import DuplicateId, StorageUnavailable
from burnlink.ids import new_secret_id
from burnlink.models import EndReason, Event, EventKind
from burnlink.store import SecretStore
from burnlink.store.postgres import SCHEMA_VERSION, PostgresStore
from tests import services
from tests.conftest import RETENTION, store_url
from tests.store.test_contract import ACCESS, make_record

pytestmark = pytest.mark.anyio


def _conforms(store: PostgresStore) -> SecretStore:
    return store


# One reader process: open the store, warm its pool, say "ready", wait for "go" on stdin,
# run its readers concurrently and print the views_left of every reader that won.
_READER = """
import asyncio, json, sys
from datetime import datetime, timedelta

from burnlink.store.postgres import PostgresStore


async def main() -> None:
    url, secret_id, digest, now, readers = sys.argv[1:]
    store = await PostgresStore.open(url, retention=timedelta(days=1))
    try:
        await asyncio.gather(*(store.ping() for _ in range(int(readers))))
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(
            *(
                store.consume(secret_id, bytes.fromhex(digest), now=datetime.fromisoformat(now))
                for _ in range(int(readers))
            )
        )
        print(json.dumps([r.views_left for r in results if r is not None]), flush=True)
    finally:
        await store.aclose()


asyncio.run(main())
"""


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The session database, emptied for this test."""
    return store_url("postgres", request, tmp_path)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A brand-new database without any burnlink table, dropped afterwards."""
    services.require("postgres")
    import psycopg

    name = f"burnlink_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(services.POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{services.POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(services.POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())


async def _read_line(stream: BufferedByteReceiveStream) -> str:
    return (await stream.receive_until(b"\n", 65536)).decode()


async def _stderr_of(process: Process) -> str:
    assert process.stderr is not None
    chunks = [chunk async for chunk in process.stderr]
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("views", [1, 3])
async def test_consume_is_exactly_once_across_processes(
    postgres_url: str, clock: FrozenClock, views: int
) -> None:
    processes, per_process = 2, 16
    record = make_record(clock, views=views)
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await store.create(record)
        argv = [
            sys.executable,
            "-c",
            _READER,
            postgres_url,
            record.secret_id,
            ACCESS.hex(),
            clock.now().isoformat(),
            str(per_process),
        ]
        children = [
            await anyio.open_process(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(processes)
        ]
        winners: list[int] = []
        try:
            with anyio.fail_after(10):
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
                    winners.extend(json.loads(await _read_line(output)))
                for child in children:
                    assert await child.wait() == 0, await _stderr_of(child)
        finally:
            for child in children:
                if child.returncode is None:
                    child.kill()
                await child.aclose()

        assert len(winners) == min(processes * per_process, views)
        assert sorted(winners) == list(range(views))
        receipt = await store.receipt(record.secret_id, now=clock.now())
        assert receipt is not None
        assert (receipt.views_used, receipt.end_reason) == (views, EndReason.VIEWED)
        assert await store.peek(record.secret_id, now=clock.now()) is None
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
        await first.add_event(record.secret_id, Event(at=clock.now(), kind=EventKind.CREATED))
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
    finally:
        await second.aclose()


async def test_store_recovers_after_connections_are_killed(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await store.ping()
        _query(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )

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


async def test_create_duplicate_message_names_no_id(postgres_url: str, clock: FrozenClock) -> None:
    record = make_record(clock)
    store = await PostgresStore.open(postgres_url, retention=RETENTION)
    try:
        await store.create(record)
        await store.burn(record.secret_id, now=clock.now())

        with pytest.raises(DuplicateId) as raised:
            await store.create(record)

        assert record.secret_id not in str(raised.value)
        assert raised.value.__cause__ is None
    finally:
        await store.aclose()


async def test_purge_expired_cascades_events_and_keeps_nothing(
    postgres_url: str, clock: FrozenClock
) -> None:
    store = await PostgresStore.open(postgres_url, retention=timedelta(seconds=10))
    try:
        record = make_record(clock, ttl=60)
        await store.create(record)
        await store.add_event(record.secret_id, Event(at=clock.now(), kind=EventKind.CREATED))
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
