"""What the SQLite store guarantees beyond the shared contract (``test_contract.py``).

No residue of ended secrets in the database or WAL file after a sweep, exactly-once consume
across OS processes sharing one file, clear errors for bad paths and a locked file, and
durability across a reopen.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from burnlink.clock import FrozenClock
from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.ids import new_secret_id
from burnlink.models import EndReason, Event, EventKind, SecretRecord
from burnlink.store import SecretStore, open_store
from burnlink.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.conftest import RETENTION
from tests.store.test_contract import ACCESS, make_record

pytestmark = pytest.mark.anyio


def _conforms(store: SqliteStore) -> SecretStore:
    return store


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "burnlink.db"


@pytest.fixture
async def sqlite_store(db_file: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(str(db_file), retention=RETENTION)
    try:
        yield opened
    finally:
        await opened.aclose()


def _marker() -> bytes:
    return b"RESIDUE-MARKER-" + secrets.token_hex(16).encode()


def _marked_record(
    clock: FrozenClock, marker: bytes, *, views: int = 1, attempts: int = 5, ttl: float = 3600
) -> SecretRecord:
    # The marker at both ends of an envelope larger than a page lands in overflow pages too.
    envelope = marker + os.urandom(9000) + marker
    return make_record(clock, views=views, attempts=attempts, ttl=ttl, envelope=envelope)


def _store_files(db_file: Path) -> list[Path]:
    return sorted(db_file.parent.glob(db_file.name + "*"))


def _files_containing(db_file: Path, marker: bytes) -> list[str]:
    return [f.name for f in _store_files(db_file) if marker in f.read_bytes()]


async def test_purge_expired_leaves_no_ciphertext_of_ended_secrets_on_disk(
    sqlite_store: SqliteStore, db_file: Path, clock: FrozenClock
) -> None:
    markers = {name: _marker() for name in ("viewed", "multi", "burned", "locked", "expired")}
    records = {
        "viewed": _marked_record(clock, markers["viewed"], views=1),
        "multi": _marked_record(clock, markers["multi"], views=3),
        "burned": _marked_record(clock, markers["burned"], views=2),
        "locked": _marked_record(clock, markers["locked"], attempts=2),
        "expired": _marked_record(clock, markers["expired"], ttl=30),
    }
    live_marker = _marker()
    live = _marked_record(clock, live_marker, ttl=3600)
    for record in (*records.values(), live):
        await sqlite_store.create(record)
    for name, marker in markers.items():
        assert _files_containing(db_file, marker), f"{name}: marker never reached disk"

    now = clock.now()
    assert await sqlite_store.consume(records["viewed"].secret_id, ACCESS, now=now) is not None
    for _ in range(3):
        assert await sqlite_store.consume(records["multi"].secret_id, ACCESS, now=now) is not None
    assert await sqlite_store.burn(records["burned"].secret_id, now=now) is True
    for _ in range(2):
        await sqlite_store.record_failure(records["locked"].secret_id, now=now)
    clock.advance(60)

    assert await sqlite_store.purge_expired(now=clock.now(), limit=100) == 1

    for name, marker in markers.items():
        assert _files_containing(db_file, marker) == [], f"{name}: ciphertext left on disk"
    assert _files_containing(db_file, live_marker) == ["burnlink.db"]
    wal = db_file.with_name(db_file.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    meta = await sqlite_store.peek(live.secret_id, now=clock.now())
    assert meta is not None


_READER_SCRIPT = """
import asyncio, json, sys
from datetime import UTC, datetime, timedelta
from burnlink.store.sqlite import SqliteStore

async def main(path, secret_id, access_hex, now_ms, readers, connections):
    stores = [
        await SqliteStore.open(path, retention=timedelta(days=30)) for _ in range(connections)
    ]
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=now_ms)
    access = bytes.fromhex(access_hex)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    try:
        results = await asyncio.gather(
            *(stores[i % connections].consume(secret_id, access, now=now) for i in range(readers))
        )
    finally:
        for store in stores:
            await store.aclose()
    print(json.dumps([r.views_left for r in results if r is not None]), flush=True)

path, secret_id, access_hex, now_ms, readers, connections = sys.argv[1:]
asyncio.run(main(path, secret_id, access_hex, int(now_ms), int(readers), int(connections)))
"""


async def _read_line(stream: BufferedByteReceiveStream) -> str:
    return (await stream.receive_until(b"\n", 1 << 16)).decode()


@pytest.mark.parametrize(
    ("readers_per_process", "views"),
    [pytest.param(16, 1, id="32-readers-1-view"), pytest.param(20, 3, id="40-readers-3-views")],
)
async def test_consume_is_exactly_once_across_processes(
    sqlite_store: SqliteStore,
    db_file: Path,
    clock: FrozenClock,
    readers_per_process: int,
    views: int,
) -> None:
    record = make_record(clock, views=views)
    await sqlite_store.create(record)
    now_ms = (clock.now() - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    argv = [
        sys.executable,
        "-c",
        _READER_SCRIPT,
        str(db_file),
        record.secret_id,
        ACCESS.hex(),
        str(now_ms),
        str(readers_per_process),
        "4",  # connections per process: contention at the SQLite lock, not only in-process
    ]
    winners: list[int] = []
    with anyio.fail_after(30):
        processes: list[Process] = [await anyio.open_process(argv) for _ in range(2)]
        try:
            outputs = []
            for process in processes:
                assert process.stdout is not None
                outputs.append(BufferedByteReceiveStream(process.stdout))
                assert await _read_line(outputs[-1]) == "ready"
            for process in processes:
                assert process.stdin is not None
                await process.stdin.send(b"go\n")
            for process, output in zip(processes, outputs, strict=True):
                winners.extend(json.loads(await _read_line(output)))
                assert await process.wait() == 0
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
                await process.aclose()

    assert len(winners) == min(2 * readers_per_process, views)
    assert sorted(winners) == list(range(views))
    assert await sqlite_store.peek(record.secret_id, now=clock.now()) is None
    receipt = await sqlite_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert (receipt.views_used, receipt.end_reason) == (views, EndReason.VIEWED)


async def test_open_path_under_a_file_raises_storage_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")

    with pytest.raises(StorageUnavailable, match="Cannot create the SQLite store at"):
        await SqliteStore.open(str(blocker / "sub" / "x.db"), retention=RETENTION)


async def test_open_path_that_is_a_directory_raises_storage_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="SQLite store"):
        await SqliteStore.open(str(tmp_path), retention=RETENTION)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite://:memory:"])
async def test_open_store_without_a_file_path_raises_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="BURNLINK_STORE"):
        await open_store(url, retention=RETENTION)


async def test_open_creates_missing_directories_and_schema(db_file: Path) -> None:
    store = await open_store(f"sqlite://{db_file}", retention=RETENTION)
    await store.aclose()

    assert await anyio.Path(db_file).is_file()
    raw = sqlite3.connect(db_file)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    finally:
        raw.close()
    assert {"secrets", "receipts", "events"} <= tables


async def test_open_refuses_a_newer_schema_version(db_file: Path) -> None:
    await (await SqliteStore.open(str(db_file), retention=RETENTION)).aclose()
    raw = sqlite3.connect(db_file)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()

    with pytest.raises(StorageUnavailable, match="newer than"):
        await SqliteStore.open(str(db_file), retention=RETENTION)


async def test_reopen_after_close_keeps_secrets_receipts_and_events(
    db_file: Path, clock: FrozenClock
) -> None:
    record = make_record(clock, views=2)
    event = Event(at=clock.now(), kind=EventKind.CREATED, ip="192.0.2.1", user_agent="test")
    first = await SqliteStore.open(str(db_file), retention=RETENTION)
    await first.create(record)
    await first.add_event(record.secret_id, event)
    assert await first.consume(record.secret_id, ACCESS, now=clock.now()) is not None
    await first.aclose()

    second = await SqliteStore.open(str(db_file), retention=RETENTION)
    try:
        meta = await second.peek(record.secret_id, now=clock.now())
        assert meta is not None
        assert meta.views_left == 1
        receipt = await second.receipt(record.secret_id, now=clock.now())
        assert receipt is not None
        assert (receipt.views_used, receipt.events) == (1, (event,))
        consumed = await second.consume(record.secret_id, ACCESS, now=clock.now())
        assert consumed is not None
        assert consumed.envelope == record.envelope
    finally:
        await second.aclose()


async def test_write_while_file_is_locked_raises_storage_unavailable(
    db_file: Path, clock: FrozenClock
) -> None:
    store = await SqliteStore.open(
        str(db_file), retention=RETENTION, busy_timeout=timedelta(milliseconds=50)
    )
    record = make_record(clock)
    try:
        await store.create(record)
        other = sqlite3.connect(db_file, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageUnavailable) as caught:
                await store.consume(record.secret_id, ACCESS, now=clock.now())
            with pytest.raises(StorageUnavailable):
                await store.create(make_record(clock))
            assert record.secret_id not in str(caught.value)
            assert "SQLITE_BUSY" in str(caught.value)
            assert await store.peek(record.secret_id, now=clock.now()) is not None
        finally:
            other.execute("ROLLBACK")
            other.close()

        assert await store.consume(record.secret_id, ACCESS, now=clock.now()) is not None
    finally:
        await store.aclose()


async def test_cancelled_calls_leave_the_store_consistent(
    sqlite_store: SqliteStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=50)
    await sqlite_store.create(record)

    for delay in (0, 0, 0.0001, 0.0005, 0.001) * 4:
        with anyio.move_on_after(delay):
            await sqlite_store.consume(record.secret_id, ACCESS, now=clock.now())

    meta = await sqlite_store.peek(record.secret_id, now=clock.now())
    receipt = await sqlite_store.receipt(record.secret_id, now=clock.now())
    assert meta is not None
    assert receipt is not None
    assert receipt.views_used == 50 - meta.views_left
    assert await sqlite_store.consume(record.secret_id, ACCESS, now=clock.now()) is not None


async def test_aclose_makes_calls_raise_storage_unavailable(
    db_file: Path, clock: FrozenClock
) -> None:
    store = await SqliteStore.open(str(db_file), retention=RETENTION)
    await store.aclose()
    await store.aclose()

    with pytest.raises(StorageUnavailable, match="closed"):
        await store.peek(new_secret_id(), now=clock.now())
    with pytest.raises(StorageUnavailable, match="closed"):
        await store.ping()
