"""What the SQLite store guarantees beyond the shared contract (``test_contract.py``).

No residue of ended secrets in the database or WAL file after a sweep, exactly-once consume
and distinct rate counts across OS processes sharing one file, clear errors for bad paths and
a locked file, durability across a reopen, cancelled calls that run whole or not at all and
never leave a transaction open, migration of files from schema versions 1 and 3, codes deleted
with their secrets and ended counter windows dropped by the sweep, and an outbox that takes
part in each change's transaction (one record per view taken across processes and after a
``kill -9``, none when its write fails) and never reuses a ref.
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
from typing import Any

import anyio
import msgspec
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from burnlink.clock import FrozenClock
from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.ids import new_secret_id
from burnlink.models import (
    AccessPolicy,
    CodePut,
    EndReason,
    Event,
    EventKind,
    PassphraseGate,
    SecretRecord,
    Viewer,
)
from burnlink.store import SecretStore, open_store
from burnlink.store.secrets import MAX_EVENTS_PER_KIND
from burnlink.store.sqlite.schema import MIGRATIONS
from burnlink.store.sqlite.store import SCHEMA_VERSION, SqliteStore
from tests.conftest import RETENTION
from tests.store.test_contract import (
    ACCESS,
    CODE,
    MANAGE,
    kept,
    lock_out,
    make_record,
    outbox,
    put,
    put_code,
)
from tests.store.test_identity import make_session, make_token

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
    await lock_out(sqlite_store, records["locked"].secret_id, now=now)
    clock.advance(60)

    assert await sqlite_store.purge_expired(now=clock.now(), limit=100) == 1

    for name, marker in markers.items():
        assert _files_containing(db_file, marker) == [], f"{name}: ciphertext left on disk"
    assert _files_containing(db_file, live_marker) == ["burnlink.db"]
    wal = db_file.with_name(db_file.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    meta = await sqlite_store.peek(live.secret_id, now=clock.now())
    assert meta is not None


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _rows(db_file: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the file through a connection of its own, as another process would."""
    raw = sqlite3.connect(db_file)
    try:
        return raw.execute(sql).fetchall()
    finally:
        raw.close()


_WORKER_SCRIPT = """
import asyncio, json, sys
from datetime import UTC, datetime, timedelta
from burnlink.store import Recorded
from burnlink.store.sqlite.store import SqliteStore

async def main(path, connections, calls, now_ms, op, *args):
    stores = [
        await SqliteStore.open(path, retention=timedelta(days=30)) for _ in range(connections)
    ]
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=now_ms)

    async def call(store):
        if op == "consume":
            consumed = await store.consume(
                args[0], bytes.fromhex(args[1]), now=now, events=[Recorded(None, b"viewed")]
            )
            return None if consumed is None else consumed.views_left
        if op == "record_failure":
            attempt = await store.record_failure(
                args[0], now=now, locks=args[1] == "locks", events=[Recorded(None, b"failed")]
            )
            return None if attempt is None else [attempt.counted, attempt.attempts_left]
        return await store.hit(args[0], window=int(args[1]), now=now)

    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    try:
        results = await asyncio.gather(*(call(stores[i % connections]) for i in range(calls)))
    finally:
        for store in stores:
            await store.aclose()
    print(json.dumps([r for r in results if r is not None]), flush=True)

path, connections, calls, now_ms, op, *args = sys.argv[1:]
asyncio.run(main(path, int(connections), int(calls), int(now_ms), op, *args))
"""


async def _read_line(stream: BufferedByteReceiveStream) -> str:
    return (await stream.receive_until(b"\n", 1 << 16)).decode()


async def _race_in_processes(
    db_file: Path, now: datetime, calls_per_process: int, *call: str
) -> list[Any]:
    """Run ``calls_per_process`` concurrent store calls in each of two OS processes, released
    at once, and return every non-``None`` result.

    Each process spreads its calls over 4 connections, so they contend at the SQLite lock,
    not only in-process.
    """
    argv = [
        sys.executable,
        "-c",
        _WORKER_SCRIPT,
        str(db_file),
        "4",
        str(calls_per_process),
        str(_ms(now)),
        *call,
    ]
    results: list[Any] = []
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
                results.extend(json.loads(await _read_line(output)))
                assert await process.wait() == 0
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
                await process.aclose()
    return results


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

    winners = await _race_in_processes(
        db_file, clock.now(), readers_per_process, "consume", record.secret_id, ACCESS.hex()
    )

    assert len(winners) == min(2 * readers_per_process, views)
    assert sorted(winners) == list(range(views))
    assert await sqlite_store.peek(record.secret_id, now=clock.now()) is None
    receipt = await sqlite_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert (receipt.views_used, receipt.end_reason) == (views, EndReason.VIEWED)
    assert await outbox(sqlite_store) == [b"viewed"] * views  # one per view taken


async def test_record_failure_locks_once_across_processes(
    sqlite_store: SqliteStore, db_file: Path, clock: FrozenClock
) -> None:
    record = make_record(clock, attempts=5)
    await sqlite_store.create(record)

    spared = await _race_in_processes(
        db_file, clock.now(), 16, "record_failure", record.secret_id, "spares"
    )
    locked = await _race_in_processes(
        db_file, clock.now(), 16, "record_failure", record.secret_id, "locks"
    )

    assert sorted(left for counted, left in spared if counted) == [1, 2, 3, 4]
    assert [left for counted, left in spared if not counted] == [1] * 28
    assert locked == [[True, 0]]  # the other 31 found it gone
    receipt = await sqlite_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED
    assert await outbox(sqlite_store) == [b"failed"] * 5  # one per attempt counted


async def test_hit_counts_distinctly_across_processes(
    sqlite_store: SqliteStore, db_file: Path, clock: FrozenClock
) -> None:
    await sqlite_store.hit("create:203.0.113.7", window=3600, now=clock.now())

    counts = await _race_in_processes(db_file, clock.now(), 25, "hit", "create:203.0.113.7", "3600")

    assert sorted(counts) == list(range(2, 52))
    assert await sqlite_store.hit("create:203.0.113.7", window=3600, now=clock.now()) == 52


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
    assert {
        "secrets",
        "receipts",
        "events",
        "recipient_codes",
        "counters",
        "counters_window_end",
    } <= tables


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
    await first.record(record.secret_id, [kept(event, b"created")])
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
        assert await outbox(second) == [b"created"]
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


async def test_cancelled_calls_run_whole_or_not_at_all_and_leave_no_transaction_open(
    db_file: Path, clock: FrozenClock
) -> None:
    """A call cancelled while it waits for the file's lock still finishes its transaction on the
    store's thread; calls cancelled while queued behind it never run (calls that arrive
    together would share the first one's group commit: the later ones arrive after it has
    started)."""
    store = await SqliteStore.open(
        str(db_file), retention=RETENTION, busy_timeout=timedelta(seconds=5)
    )
    record = make_record(clock, views=5)
    try:
        await store.create(record)
        other = sqlite3.connect(db_file, isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # the first consume waits for this lock
            async with anyio.create_task_group() as group:
                group.start_soon(_consume_for, store, record.secret_id, clock.now(), 0.2)
                await anyio.sleep(0.05)  # the thread has taken it and waits for the lock
                for _ in range(3):
                    group.start_soon(_consume_for, store, record.secret_id, clock.now(), 0.15)
            other.execute("ROLLBACK")
            await store.ping()  # queued behind the consume that had started

            other.execute("BEGIN IMMEDIATE")  # timeout=0: fails if the store kept the lock
            other.execute("ROLLBACK")
        finally:
            other.close()
        meta = await store.peek(record.secret_id, now=clock.now())
        receipt = await store.receipt(record.secret_id, now=clock.now())
        assert meta is not None
        assert receipt is not None
        assert (meta.views_left, receipt.views_used) == (4, 1)
    finally:
        await store.aclose()


async def _consume_for(store: SqliteStore, secret_id: str, now: datetime, seconds: float) -> None:
    with anyio.move_on_after(seconds) as scope:
        await store.consume(secret_id, ACCESS, now=now)
    assert scope.cancelled_caught


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


# -- schema version 1 files, codes and counters --------------------------------------------

_V1_DDL = (
    """CREATE TABLE receipts (
        id TEXT NOT NULL PRIMARY KEY, manage_digest BLOB NOT NULL, created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, max_views INTEGER NOT NULL,
        views_used INTEGER NOT NULL DEFAULT 0, ended_at INTEGER,
        end_reason TEXT CHECK (end_reason IN ('viewed', 'burned', 'locked', 'expired')),
        keep_until INTEGER NOT NULL)""",
    "CREATE INDEX receipts_keep_until ON receipts (keep_until)",
    """CREATE TABLE secrets (
        id TEXT NOT NULL PRIMARY KEY REFERENCES receipts (id) ON DELETE CASCADE,
        envelope BLOB NOT NULL, access_digest BLOB NOT NULL, created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, max_views INTEGER NOT NULL, views_left INTEGER NOT NULL,
        attempts_left INTEGER NOT NULL, passphrase_kdf TEXT, passphrase_iterations INTEGER,
        passphrase_salt BLOB, passphrase_proof_digest BLOB, owner TEXT,
        CHECK ((passphrase_kdf IS NULL) = (passphrase_iterations IS NULL)
            AND (passphrase_kdf IS NULL) = (passphrase_salt IS NULL)
            AND (passphrase_kdf IS NULL) = (passphrase_proof_digest IS NULL)))""",
    "CREATE INDEX secrets_expires_at ON secrets (expires_at)",
    """CREATE TABLE events (
        receipt_id TEXT NOT NULL REFERENCES receipts (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, at INTEGER NOT NULL, kind TEXT NOT NULL, ip TEXT, user_agent TEXT,
        PRIMARY KEY (receipt_id, seq)) WITHOUT ROWID""",
)
"""The tables of schema version 1 (before access rules), frozen here as such files hold them."""


def _write_v1_file(db_file: Path, record: SecretRecord, event: Event) -> None:
    """A schema version 1 file holding ``record`` and one event, as the old ``create`` left it."""
    gate = record.passphrase
    assert gate is not None
    db_file.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_file, isolation_level=None)
    try:
        raw.execute("PRAGMA journal_mode = WAL")
        for statement in _V1_DDL:
            raw.execute(statement)
        raw.execute(
            "INSERT INTO receipts VALUES (?, ?, ?, ?, ?, 0, NULL, NULL, ?)",
            (
                record.secret_id,
                record.manage_digest,
                _ms(record.created_at),
                _ms(record.expires_at),
                record.max_views,
                _ms(record.expires_at + RETENTION),
            ),
        )
        raw.execute(
            "INSERT INTO secrets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                record.secret_id,
                record.envelope,
                record.access_digest,
                _ms(record.created_at),
                _ms(record.expires_at),
                record.max_views,
                record.max_views,
                record.max_attempts,
                gate.kdf,
                gate.iterations,
                gate.salt,
                gate.proof_digest,
            ),
        )
        raw.execute(
            "INSERT INTO events VALUES (?, 0, ?, ?, ?, ?)",
            (record.secret_id, _ms(event.at), event.kind.value, event.ip, event.user_agent),
        )
        raw.execute("PRAGMA user_version = 1")
    finally:
        raw.close()


async def test_open_migrates_a_version_2_file_whose_code_counts_as_the_first(
    db_file: Path, clock: FrozenClock
) -> None:
    gate = PassphraseGate(
        kdf="pbkdf2-sha256", iterations=600_000, salt=b"s" * 16, proof_digest=MANAGE
    )
    old = make_record(clock, passphrase=gate)
    _write_v1_file(db_file, old, Event(at=clock.now(), kind=EventKind.CREATED))
    raw = sqlite3.connect(db_file, isolation_level=None)
    try:
        for statement in MIGRATIONS[1]:
            raw.execute(statement)
        # A live code, put two minutes ago by the previous release (no ``sent`` column).
        put_at = clock.now() - timedelta(minutes=2)
        raw.execute(
            "INSERT INTO codes VALUES (?, ?, ?, ?, 3)",
            (old.secret_id, CODE, _ms(put_at), _ms(put_at + timedelta(minutes=10))),
        )
        raw.execute("PRAGMA user_version = 2")
    finally:
        raw.close()

    store = await SqliteStore.open(str(db_file), retention=RETENTION)
    try:
        last_allowed = await put(store, clock, old.secret_id, max_codes=1)
        second = await put(store, clock, old.secret_id, max_codes=2)
    finally:
        await store.aclose()

    assert (last_allowed, second) == (CodePut.TOO_SOON, CodePut.SENT)
    assert _rows(db_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _rows(db_file, "SELECT sent FROM recipient_codes") == [(2,)]


def _layout(db_file: Path) -> dict[str, Any]:
    """Every table's columns, indexes and foreign keys, as SQLite reports them."""
    names = [
        row[0] for row in _rows(db_file, "SELECT name FROM sqlite_schema WHERE type = 'table'")
    ]
    return {
        name: (
            _rows(db_file, f"PRAGMA table_info({name})"),
            sorted(_rows(db_file, f"PRAGMA index_list({name})")),
            _rows(db_file, f"PRAGMA foreign_key_list({name})"),
        )
        for name in sorted(names)
    }


async def test_open_migrates_a_version_1_file(db_file: Path, clock: FrozenClock) -> None:
    gate = PassphraseGate(
        kdf="pbkdf2-sha256", iterations=600_000, salt=b"\x00salt\xff", proof_digest=MANAGE
    )
    old = make_record(clock, views=2, passphrase=gate)
    event = Event(at=clock.now(), kind=EventKind.CREATED, ip="192.0.2.1", user_agent="test")
    _write_v1_file(db_file, old, event)
    opened: list[SqliteStore] = []

    async def open_one() -> None:
        opened.append(await SqliteStore.open(str(db_file), retention=RETENTION))

    try:
        async with anyio.create_task_group() as group:  # two openers: the file migrates once
            for _ in range(2):
                group.start_soon(open_one)
        store = opened[0]
        meta = await store.peek(old.secret_id, now=clock.now())
        assert meta is not None
        assert (meta.views_left, meta.attempts_left) == (2, old.max_attempts)
        assert meta.passphrase == gate
        assert meta.policy == AccessPolicy()
        receipt = await store.receipt(old.secret_id, now=clock.now())
        assert receipt is not None
        assert (receipt.views_used, receipt.events) == (0, (event,))

        assert await put_code(store, clock, old.secret_id)
        check = await store.check_code(old.secret_id, CODE, now=clock.now())
        assert check is not None
        assert check.matched
        assert await store.hit("reveal:192.0.2.1", window=60, now=clock.now()) == 1
        policy = AccessPolicy(allowed_countries=("DE",), recipient_email="bob@example.com")
        new = msgspec.structs.replace(make_record(clock), policy=policy)
        await store.create(new)
        new_meta = await store.peek(new.secret_id, now=clock.now())
        assert new_meta is not None
        assert new_meta.policy == policy

        consumed = await store.consume(old.secret_id, ACCESS, now=clock.now())
        assert consumed is not None
        assert consumed.envelope == old.envelope
    finally:
        for opened_store in opened:
            await opened_store.aclose()
    assert _rows(db_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


async def test_migrated_file_has_the_layout_of_a_new_file(
    db_file: Path, tmp_path: Path, clock: FrozenClock
) -> None:
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=1, salt=b"s", proof_digest=MANAGE)
    _write_v1_file(
        db_file, make_record(clock, passphrase=gate), Event(clock.now(), EventKind.CREATED)
    )
    new_file = tmp_path / "new.db"
    for file in (db_file, new_file):
        await (await SqliteStore.open(str(file), retention=RETENTION)).aclose()

    assert _layout(db_file) == _layout(new_file)


async def test_codes_are_deleted_with_their_secret(
    sqlite_store: SqliteStore, db_file: Path, clock: FrozenClock
) -> None:
    ended = {
        "viewed": make_record(clock),
        "burned": make_record(clock),
        "locked": make_record(clock, attempts=1),
        "expired": make_record(clock, ttl=30),
    }
    live = make_record(clock)
    for record in (*ended.values(), live):
        await sqlite_store.create(record)
        assert await put_code(sqlite_store, clock, record.secret_id)
    now = clock.now()

    assert await sqlite_store.consume(ended["viewed"].secret_id, ACCESS, now=now) is not None
    assert await sqlite_store.burn(ended["burned"].secret_id, now=now)
    await lock_out(sqlite_store, ended["locked"].secret_id, now=now)
    clock.advance(60)
    assert await sqlite_store.purge_expired(now=clock.now(), limit=100) == 1

    assert _rows(db_file, "SELECT secret_id FROM recipient_codes") == [(live.secret_id,)]


async def test_purge_expired_drops_ended_counter_windows(
    sqlite_store: SqliteStore, db_file: Path, clock: FrozenClock
) -> None:
    clock.advance(60 - clock.now().timestamp() % 60)  # the start of a minute
    hour = _ms(clock.now()) // 3_600_000 * 3_600_000
    await sqlite_store.hit("create:203.0.113.7", window=60, now=clock.now())
    await sqlite_store.hit("reveal:203.0.113.7", window=3600, now=clock.now())
    assert await sqlite_store.hit("fail:203.0.113.7", window=60, now=clock.now(), cost=0) == 0
    clock.advance(60)
    await sqlite_store.hit("create:203.0.113.7", window=60, now=clock.now())

    await sqlite_store.purge_expired(now=clock.now(), limit=100)

    assert _rows(db_file, "SELECT bucket, window_start, hits FROM counters ORDER BY bucket") == [
        ("create:203.0.113.7", _ms(clock.now()), 1),  # the minute before was dropped
        ("reveal:203.0.113.7", hour, 1),  # its hour still runs
    ]


# -- the outbox -------------------------------------------------------------------------------


async def test_outbox_record_that_cannot_be_written_undoes_its_change(
    sqlite_store: SqliteStore, db_file: Path, clock: FrozenClock
) -> None:
    """The outbox is written in the change's own transaction: when its INSERT fails, the view
    is not taken, the secret not created, burned or locked, and nothing else is kept."""
    record = make_record(clock, attempts=1)
    await sqlite_store.create(record)
    raw = sqlite3.connect(db_file, isolation_level=None)
    try:
        raw.execute(
            "CREATE TRIGGER outbox_full BEFORE INSERT ON outbox"
            " BEGIN SELECT RAISE(ABORT, 'outbox full'); END"
        )
    finally:
        raw.close()
    now = clock.now()
    line = Event(at=now, kind=EventKind.VIEWED)
    new = make_record(clock)

    with pytest.raises(StorageUnavailable):
        await sqlite_store.consume(record.secret_id, ACCESS, now=now, events=[kept(line)])
    with pytest.raises(StorageUnavailable):
        await sqlite_store.record_failure(
            record.secret_id, now=now, locks=True, events=[kept(line)]
        )
    with pytest.raises(StorageUnavailable):
        await sqlite_store.burn(record.secret_id, now=now, events=[kept(line)])
    with pytest.raises(StorageUnavailable):
        await sqlite_store.create(new, events=[kept(line)])
    with pytest.raises(StorageUnavailable):
        await sqlite_store.record(record.secret_id, [kept(line)])

    meta = await sqlite_store.peek(record.secret_id, now=now)
    assert meta is not None
    assert (meta.views_left, meta.attempts_left) == (1, 1)
    receipt = await sqlite_store.receipt(record.secret_id, now=now)
    assert receipt is not None
    assert (receipt.views_used, receipt.events, receipt.end_reason) == (0, (), None)
    assert await sqlite_store.peek(new.secret_id, now=now) is None
    assert await outbox(sqlite_store) == []


async def test_ack_of_a_stale_ref_never_deletes_a_newer_record(
    sqlite_store: SqliteStore,
) -> None:
    """Refs are never reused, even once the outbox is empty: a second sealer acknowledging
    what it was handed before cannot delete a record written since."""
    await sqlite_store.record(None, [kept(None, b"first")])
    stale = [p.ref for p in await sqlite_store.pending_events(limit=10)]
    await sqlite_store.ack_events(stale)
    await sqlite_store.record(None, [kept(None, b"second")])

    await sqlite_store.ack_events(stale)

    assert await outbox(sqlite_store) == [b"second"]


async def test_create_keeps_the_lines_its_kind_has_room_for(
    sqlite_store: SqliteStore, clock: FrozenClock
) -> None:
    """``create`` numbers a new receipt's lines itself; the cap per kind still holds."""
    record = make_record(clock)
    created = Event(at=clock.now(), kind=EventKind.CREATED)
    opened = Event(at=clock.now(), kind=EventKind.OPENED)
    events = [kept(created), *[kept(opened)] * (MAX_EVENTS_PER_KIND + 1), kept(None)]

    await sqlite_store.create(record, events=events)

    receipt = await sqlite_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.events == (created, *[opened] * MAX_EVENTS_PER_KIND)
    assert len(await sqlite_store.pending_events(limit=1000)) == len(events)


async def test_open_migrates_a_version_3_file_and_its_outbox_works(
    db_file: Path, clock: FrozenClock
) -> None:
    """A file of the previous release (schema version 3, no outbox) opens, keeps its secret
    and receipt, and then records events like a new file."""
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=1, salt=b"s", proof_digest=MANAGE)
    old = make_record(clock, views=2, passphrase=gate)
    created = Event(at=clock.now(), kind=EventKind.CREATED, ip="192.0.2.1", user_agent="test")
    _write_v1_file(db_file, old, created)
    raw = sqlite3.connect(db_file, isolation_level=None)
    try:
        for step in MIGRATIONS[1:3]:
            for statement in step:
                raw.execute(statement)
        raw.execute("PRAGMA user_version = 3")
        assert "outbox" not in {row[0] for row in raw.execute("SELECT name FROM sqlite_schema")}
    finally:
        raw.close()

    store = await SqliteStore.open(str(db_file), retention=RETENTION)
    try:
        assert await outbox(store) == []
        viewed = Event(at=clock.now(), kind=EventKind.VIEWED)
        consumed = await store.consume(
            old.secret_id, ACCESS, now=clock.now(), events=[kept(viewed, b"viewed")]
        )
        assert consumed is not None
        assert consumed.envelope == old.envelope
        new = make_record(clock)
        await store.create(new, events=[kept(created, b"created")])
        await store.record(None, [kept(None, b"alert")])
        receipt = await store.receipt(old.secret_id, now=clock.now())
        assert receipt is not None
        assert (receipt.views_used, receipt.events) == (1, (created, viewed))
        pending = await store.pending_events(limit=10)
        assert [p.outbox for p in pending] == [b"viewed", b"created", b"alert"]
        await store.ack_events([p.ref for p in pending[:2]])
        assert await outbox(store) == [b"alert"]
    finally:
        await store.aclose()
    assert _rows(db_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


async def test_open_migrates_a_version_5_file_and_keeps_sign_in(
    db_file: Path, clock: FrozenClock
) -> None:
    """A file of the release before sign-in (schema version 5) opens; its receipts take the
    owner their secret had, and sessions, tokens and "my secrets" work as on a new file."""
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=1, salt=b"s", proof_digest=MANAGE)
    old = make_record(clock, passphrase=gate)
    _write_v1_file(db_file, old, Event(at=clock.now(), kind=EventKind.CREATED))
    raw = sqlite3.connect(db_file, isolation_level=None)
    try:
        raw.execute("UPDATE secrets SET owner = 'alice'")
        for step in MIGRATIONS[1:5]:
            for statement in step:
                raw.execute(statement)
        raw.execute("PRAGMA user_version = 5")
    finally:
        raw.close()

    store = await SqliteStore.open(str(db_file), retention=RETENTION)
    try:
        (owned,) = await store.owned_secrets("alice", now=clock.now(), limit=10)
        assert (owned.secret_id, owned.owner, owned.label) == (old.secret_id, "alice", None)
        clock.advance(1)
        new = msgspec.structs.replace(make_record(clock), owner="alice", label="new")
        clock.advance(1)
        newer = msgspec.structs.replace(make_record(clock), owner="alice", label="newer")
        await store.create(new)
        await store.create(newer)
        owned_now = await store.owned_secrets("alice", now=clock.now(), limit=10)
        assert [r.label for r in owned_now] == ["newer", "new", None]
        session = make_session(clock)
        await store.put_session(session)
        assert await store.touch_session(session.digest, now=clock.now(), idle_seconds=60)
        token = make_token(clock)
        await store.put_token(token)
        assert await store.use_token(token.digest, now=clock.now())
    finally:
        await store.aclose()
    assert _rows(db_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


# -- schema 7: the owner's email on the receipt ------------------------------------------


def _write_v6_file(db_file: Path, record: SecretRecord) -> None:
    """A schema version 6 file holding ``record``, owned by alice with a label."""
    _write_v1_file(db_file, record, Event(at=record.created_at, kind=EventKind.CREATED))
    raw = sqlite3.connect(db_file, isolation_level=None)
    try:
        for step in MIGRATIONS[1:6]:
            for statement in step:
                raw.execute(statement)
        raw.execute("UPDATE receipts SET owner = 'alice', label = 'old'")
        raw.execute("PRAGMA user_version = 6")
    finally:
        raw.close()


async def test_open_migrates_a_version_6_file_and_keeps_the_owners_email(
    db_file: Path, clock: FrozenClock
) -> None:
    """A file of the release before (schema version 6) opens; its receipts keep their owner
    without an email, and new receipts keep the email their owner had."""
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=1, salt=b"s", proof_digest=MANAGE)
    old = make_record(clock, passphrase=gate)
    _write_v6_file(db_file, old)

    store = await SqliteStore.open(str(db_file), retention=RETENTION)
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
    assert _rows(db_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


# The statements with which the release before schema 7 (schema 6) created a secret and read a
# receipt, frozen here as its processes still run them during a rolling upgrade.
_PREVIOUS_INSERT_RECEIPT = (
    "INSERT INTO receipts (id, manage_digest, created_at, expires_at, max_views, views_used,"
    " keep_until, owner, label) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)"
)
_PREVIOUS_INSERT_SECRET = (
    "INSERT INTO secrets (id, envelope, access_digest, created_at, expires_at, max_views,"
    " views_left, attempts_left, passphrase_kdf, passphrase_iterations, passphrase_salt,"
    " passphrase_proof_digest, owner, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PREVIOUS_SELECT_RECEIPT = (
    "SELECT r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,"
    " r.ended_at, r.end_reason, r.owner, r.label, e.at, e.kind, e.ip, e.user_agent"
    " FROM receipts AS r LEFT JOIN events AS e ON e.receipt_id = r.id"
    " WHERE r.id = ? AND r.keep_until > ? ORDER BY e.seq"
)


def _previous_release_creates(raw: sqlite3.Connection, record: SecretRecord) -> None:
    """``record`` (owned by alice) created by a process of the release before schema 7."""
    raw.execute("BEGIN IMMEDIATE")
    raw.execute(
        _PREVIOUS_INSERT_RECEIPT,
        (
            record.secret_id,
            record.manage_digest,
            _ms(record.created_at),
            _ms(record.expires_at),
            record.max_views,
            _ms(record.expires_at + RETENTION),
            "alice",
            "by the old release",
        ),
    )
    raw.execute(
        _PREVIOUS_INSERT_SECRET,
        (
            record.secret_id,
            record.envelope,
            record.access_digest,
            _ms(record.created_at),
            _ms(record.expires_at),
            record.max_views,
            record.max_views,
            record.max_attempts,
            None,
            None,
            None,
            None,
            "alice",
            record.policy.to_bytes(),
        ),
    )
    raw.execute("COMMIT")


async def test_a_running_process_of_the_release_before_keeps_working_beside_the_owners_email(
    db_file: Path, clock: FrozenClock
) -> None:
    """During a rolling upgrade, a process of the release before schema 7 that still has the
    file open goes on creating secrets and reading receipts after a new process migrated it;
    its receipts carry no owner's email, and it reads the new ones as it always did."""
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=1, salt=b"s", proof_digest=MANAGE)
    _write_v6_file(db_file, make_record(clock, passphrase=gate))
    old_process = sqlite3.connect(db_file, isolation_level=None)
    try:
        store = await SqliteStore.open(str(db_file), retention=RETENTION)
        try:
            new = msgspec.structs.replace(
                make_record(clock), owner="alice", owner_email="alice@example.com"
            )
            await store.create(new)
            by_old = make_record(clock)
            _previous_release_creates(old_process, by_old)
            old_reads_new = old_process.execute(
                _PREVIOUS_SELECT_RECEIPT, (new.secret_id, _ms(clock.now()))
            ).fetchall()
            receipt_by_old = await store.receipt(by_old.secret_id, now=clock.now())
            receipt_new = await store.receipt(new.secret_id, now=clock.now())
            consumed = await store.consume(by_old.secret_id, ACCESS, now=clock.now())
        finally:
            await store.aclose()
    finally:
        old_process.close()

    assert _rows(db_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert [row[7:9] for row in old_reads_new] == [("alice", None)]
    assert receipt_by_old is not None
    assert (receipt_by_old.owner, receipt_by_old.owner_email) == ("alice", None)
    assert receipt_new is not None
    assert receipt_new.owner_email == "alice@example.com"
    assert consumed is not None
    assert consumed.envelope == by_old.envelope


# -- schema 8: the viewer of each receipt line -------------------------------------------

ALICE = Viewer(email="alice@example.com", mfa=True)


def _write_v7_file(db_file: Path, record: SecretRecord) -> None:
    """A schema version 7 file holding ``record`` with its ``created`` line."""
    _write_v1_file(db_file, record, Event(at=record.created_at, kind=EventKind.CREATED))
    raw = sqlite3.connect(db_file, isolation_level=None)
    try:
        for step in MIGRATIONS[1:7]:
            for statement in step:
                raw.execute(statement)
        raw.execute("PRAGMA user_version = 7")
    finally:
        raw.close()


async def test_open_migrates_a_version_7_file_and_keeps_the_viewers(
    db_file: Path, clock: FrozenClock
) -> None:
    """A file of the release before (schema version 7) opens; its lines name no viewer, and
    new lines keep theirs."""
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=1, salt=b"s", proof_digest=MANAGE)
    old = make_record(clock, passphrase=gate)
    _write_v7_file(db_file, old)

    store = await SqliteStore.open(str(db_file), retention=RETENTION)
    try:
        viewed = Event(at=clock.now(), kind=EventKind.VIEWED, ip="203.0.113.7", viewer=ALICE)
        await store.record(old.secret_id, [kept(viewed)])
        receipt = await store.receipt(old.secret_id, now=clock.now())
    finally:
        await store.aclose()

    assert receipt is not None
    assert [(e.kind, e.viewer) for e in receipt.events] == [
        (EventKind.CREATED, None),
        (EventKind.VIEWED, ALICE),
    ]
    assert SCHEMA_VERSION == 9
    assert _rows(db_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


# The statements with which the release before schema 8 (schema 7) appended a receipt line and
# read a receipt, frozen here as its processes still run them during a rolling upgrade.
_PREVIOUS_APPEND_EVENT = (
    "INSERT INTO events (receipt_id, seq, at, kind, ip, user_agent)"
    " SELECT r.id, COALESCE((SELECT MAX(seq) + 1 FROM events WHERE receipt_id = r.id), 0),"
    " ?, ?, ?, ? FROM receipts AS r WHERE r.id = ?"
    " AND (SELECT COUNT(*) FROM events WHERE receipt_id = r.id AND kind = ?) < ?"
)
_PREVIOUS_SELECT_RECEIPT_7 = (
    "SELECT r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,"
    " r.ended_at, r.end_reason, r.owner, r.label, r.owner_email, e.at, e.kind, e.ip,"
    " e.user_agent FROM receipts AS r LEFT JOIN events AS e ON e.receipt_id = r.id"
    " WHERE r.id = ? AND r.keep_until > ? ORDER BY e.seq"
)


async def test_a_running_process_of_the_release_before_keeps_working_beside_the_viewers(
    db_file: Path, clock: FrozenClock
) -> None:
    """During a rolling upgrade, a process of the release before schema 8 that still has the
    file open goes on appending receipt lines and reading receipts after a new process
    migrated it; its lines name no viewer, and it reads lines that name one as it always
    did."""
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=1, salt=b"s", proof_digest=MANAGE)
    record = make_record(clock, views=3, passphrase=gate)
    _write_v7_file(db_file, record)
    old_process = sqlite3.connect(db_file, isolation_level=None)
    try:
        store = await SqliteStore.open(str(db_file), retention=RETENTION)
        try:
            viewed = Event(at=clock.now(), kind=EventKind.VIEWED, ip="203.0.113.7", viewer=ALICE)
            assert await store.consume(
                record.secret_id, ACCESS, now=clock.now(), events=[kept(viewed)]
            )
            old_process.execute(
                _PREVIOUS_APPEND_EVENT,
                (_ms(clock.now()), "viewed", "198.51.100.1", None, record.secret_id, "viewed", 200),
            )
            old_reads = old_process.execute(
                _PREVIOUS_SELECT_RECEIPT_7, (record.secret_id, _ms(clock.now()))
            ).fetchall()
            receipt = await store.receipt(record.secret_id, now=clock.now())
        finally:
            await store.aclose()
    finally:
        old_process.close()

    assert _rows(db_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert [row[10:13] for row in old_reads] == [
        (_ms(record.created_at), "created", None),
        (_ms(clock.now()), "viewed", "203.0.113.7"),
        (_ms(clock.now()), "viewed", "198.51.100.1"),
    ]
    assert receipt is not None
    assert [(e.kind, e.ip, e.viewer) for e in receipt.events] == [
        (EventKind.CREATED, None, None),
        (EventKind.VIEWED, "203.0.113.7", ALICE),
        (EventKind.VIEWED, "198.51.100.1", None),
    ]


_KILLED_SCRIPT = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from burnlink.store import Recorded
from burnlink.store.sqlite.store import SqliteStore

async def main(path, secret_id, access, now_ms):
    store = await SqliteStore.open(path, retention=timedelta(days=30))
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=now_ms)
    while True:
        consumed = await store.consume(
            secret_id, access, now=now, events=[Recorded(None, b"viewed")]
        )
        print(consumed.views_left, flush=True)

path, secret_id, access, now_ms = sys.argv[1:]
asyncio.run(main(path, secret_id, bytes.fromhex(access), int(now_ms)))
"""


async def test_kill_9_loses_no_event_of_a_view_taken(
    sqlite_store: SqliteStore, db_file: Path, clock: FrozenClock
) -> None:
    """A process killed (SIGKILL) while it takes views leaves exactly one outbox record per
    view the file counts, and at least one per view it answered."""
    record = make_record(clock, views=10_000)
    await sqlite_store.create(record)
    argv = [
        sys.executable,
        "-c",
        _KILLED_SCRIPT,
        str(db_file),
        record.secret_id,
        ACCESS.hex(),
        str(_ms(clock.now())),
    ]
    with anyio.fail_after(30):
        async with await anyio.open_process(argv) as process:
            assert process.stdout is not None
            output = BufferedByteReceiveStream(process.stdout)
            for _ in range(50):
                answered = int(await _read_line(output))
            process.kill()
            await process.wait()

    receipt = await sqlite_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    pending = await sqlite_store.pending_events(limit=20_000)
    assert len(pending) == receipt.views_used >= 10_000 - answered
    assert {p.outbox for p in pending} == {b"viewed"}


# -- schema 5: a process of an earlier release still running during a rolling upgrade ------

# The statements with which a release before schema 3 checked a code, frozen here as such
# processes still run them: at the last wrong try they delete the code, and with it when it was
# put, so that the next code could be mailed at once.
_PREVIOUS_CHECK_CODE = (
    "UPDATE codes SET tries_left = tries_left - (digest <> ?)"
    " WHERE secret_id = ? AND expires_at > ? AND tries_left > 0 AND EXISTS"
    " (SELECT 1 FROM secrets AS s WHERE s.id = codes.secret_id AND s.expires_at > ?)"
    " RETURNING digest = ?, tries_left"
)
_PREVIOUS_DELETE_CODE = "DELETE FROM codes WHERE secret_id = ?"


def _previous_release_guesses(raw: sqlite3.Connection, secret_id: str, now: datetime) -> None:
    """Wrong codes from a process of an earlier release until the code is used up."""
    while True:
        raw.execute("BEGIN IMMEDIATE")
        try:
            rows = raw.execute(
                _PREVIOUS_CHECK_CODE, (b"w" * 32, secret_id, _ms(now), _ms(now), b"w" * 32)
            ).fetchall()
            if rows and (rows[0][0] or rows[0][1] == 0):
                raw.execute(_PREVIOUS_DELETE_CODE, (secret_id,))
        except sqlite3.Error:
            raw.execute("ROLLBACK")
            raise
        raw.execute("COMMIT")
        if not rows or rows[0][1] == 0:
            return


async def test_a_running_process_of_an_earlier_release_cannot_shorten_the_code_minute(
    db_file: Path, clock: FrozenClock
) -> None:
    """During a rolling upgrade, a process of an earlier release that still has the file open
    fails on every code once a new process has opened it (its store answers 503), so it can no
    longer delete a used-up code and let the next one be mailed within the minute."""
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=1, salt=b"s", proof_digest=MANAGE)
    record = make_record(clock, passphrase=gate)
    _write_v1_file(db_file, record, Event(at=clock.now(), kind=EventKind.CREATED))
    old_process = sqlite3.connect(db_file, isolation_level=None)
    try:
        for step in MIGRATIONS[1:4]:
            for statement in step:
                old_process.execute(statement)
        old_process.execute("PRAGMA user_version = 4")

        store = await SqliteStore.open(str(db_file), retention=RETENTION)
        try:
            assert await put(store, clock, record.secret_id) is CodePut.SENT
            with pytest.raises(sqlite3.OperationalError, match="no such table: codes"):
                _previous_release_guesses(old_process, record.secret_id, clock.now())
            clock.advance(30)
            again = await put(store, clock, record.secret_id)
        finally:
            await store.aclose()
    finally:
        old_process.close()

    assert again is CodePut.TOO_SOON
    assert _rows(db_file, "SELECT tries_left FROM recipient_codes") == [(3,)]
