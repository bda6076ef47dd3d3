"""The audit store contract, run on SQLite and PostgreSQL through ``audit_store``.

Appends make one chain, reads filter and page, purges keep the rest verifiable, tampering
with the raw rows is caught, the append-only triggers hold, and two processes appending at
once still make one valid chain.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from burnlink.audit import AuditStore, open_audit_store
from burnlink.audit.chain import GENESIS, Problem
from burnlink.audit.events import AuditEventType
from burnlink.audit.postgres import PostgresAuditStore
from burnlink.audit.sqlite import PAGE_SIZE, SqliteAuditStore
from burnlink.audit.verify import verify_store
from burnlink.errors import AuditStateInvalid, ConfigError, StorageUnavailable
from tests.audit.conftest import KEY, T0, Raw, make_event

pytestmark = pytest.mark.anyio


def _conforms(sqlite: SqliteAuditStore, postgres: PostgresAuditStore) -> list[AuditStore]:
    return [sqlite, postgres]


async def _fill(store: AuditStore, count: int) -> None:
    for n in range(1, count + 1):
        await store.append(make_event(n))


async def test_append_assigns_seq_and_links_macs(audit_store: AuditStore) -> None:
    first = await audit_store.append(make_event(1))
    second = await audit_store.append(make_event(2))

    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_mac == GENESIS.mac
    assert second.prev_mac == first.mac
    state = await audit_store.chain_state()
    assert state.head == second.head
    assert state.base == GENESIS


async def test_iter_entries_returns_what_was_appended(audit_store: AuditStore) -> None:
    appended = [await audit_store.append(make_event(n)) for n in range(1, 4)]

    assert [e async for e in audit_store.iter_entries()] == appended


async def test_iter_entries_filters_by_time_type_and_seq(audit_store: AuditStore) -> None:
    for n in range(1, 7):
        kind = AuditEventType.SECRET_OPENED if n % 2 else AuditEventType.SECRET_VIEWED
        await audit_store.append(make_event(n, type=kind))

    async def seqs(**filters: object) -> list[int]:
        return [e.seq async for e in audit_store.iter_entries(**filters)]  # type: ignore[arg-type]

    assert await seqs(since=T0 + timedelta(minutes=3)) == [3, 4, 5, 6]
    assert await seqs(until=T0 + timedelta(minutes=3)) == [1, 2]
    assert await seqs(types=[AuditEventType.SECRET_VIEWED]) == [2, 4, 6]
    assert await seqs(types=[]) == []
    assert await seqs(after_seq=2, through_seq=4) == [3, 4]
    assert await seqs(limit=2) == [1, 2]
    assert await seqs(types=[AuditEventType.SECRET_OPENED], since=T0 + timedelta(minutes=2)) == [
        3,
        5,
    ]


async def test_iter_entries_pages_through_more_than_one_page(tmp_path: Path) -> None:
    store = await SqliteAuditStore.open(str(tmp_path / "audit.db"), key=KEY)
    try:
        await _fill(store, PAGE_SIZE + 3)
        assert [e.seq async for e in store.iter_entries()] == list(range(1, PAGE_SIZE + 4))
        assert len([e async for e in store.iter_entries(limit=PAGE_SIZE + 1)]) == PAGE_SIZE + 1
        assert await verify_store(store, KEY)
    finally:
        await store.aclose()


async def test_verify_store_accepts_an_untouched_log(audit_store: AuditStore) -> None:
    await _fill(audit_store, 5)

    result = await verify_store(audit_store, KEY)

    assert result.ok
    assert (result.checked, result.last_seq) == (5, 5)


async def test_verify_store_accepts_an_empty_log(audit_store: AuditStore) -> None:
    assert await verify_store(audit_store, KEY)


async def test_verify_store_catches_an_edited_row(audit_store: AuditStore, raw: Raw) -> None:
    await _fill(audit_store, 5)
    raw.execute("UPDATE {log} SET event = replace(event, '\"n\":3', '\"n\":9') WHERE seq = 3")

    result = await verify_store(audit_store, KEY)

    assert (result.problem, result.seq) == (Problem.BAD_MAC, 3)


async def test_verify_store_catches_a_deleted_row(audit_store: AuditStore, raw: Raw) -> None:
    await _fill(audit_store, 5)
    raw.execute("DELETE FROM {log} WHERE seq = 3")

    result = await verify_store(audit_store, KEY)

    assert (result.problem, result.seq) == (Problem.MISSING, 3)


async def test_verify_store_catches_reordered_rows(audit_store: AuditStore, raw: Raw) -> None:
    await _fill(audit_store, 5)
    raw.execute("UPDATE {log} SET seq = -3 WHERE seq = 3")
    raw.execute("UPDATE {log} SET seq = 3 WHERE seq = 4")
    raw.execute("UPDATE {log} SET seq = 4 WHERE seq = -3")

    result = await verify_store(audit_store, KEY)

    assert (result.problem, result.seq) == (Problem.REORDERED, 3)
    assert "belongs at seq 4" in result.detail


async def test_verify_store_catches_deleted_newest_rows(audit_store: AuditStore, raw: Raw) -> None:
    await _fill(audit_store, 5)
    raw.execute("DELETE FROM {log} WHERE seq >= 4")

    result = await verify_store(audit_store, KEY)

    assert (result.problem, result.seq) == (Problem.TRUNCATED, 4)


async def test_verify_store_catches_a_forged_purge(audit_store: AuditStore, raw: Raw) -> None:
    await _fill(audit_store, 5)
    raw.execute("DELETE FROM {log} WHERE seq <= 2")
    raw.execute(
        "UPDATE {state} SET base_seq = 2, base_mac = (SELECT prev_mac FROM {log} WHERE seq = 3)"
    )

    result = await verify_store(audit_store, KEY)

    assert result.problem is Problem.BAD_STATE


async def test_verify_store_catches_a_row_that_disagrees_with_its_event(
    audit_store: AuditStore, raw: Raw
) -> None:
    await _fill(audit_store, 3)
    raw.execute("UPDATE {log} SET type = 'secret.created' WHERE seq = 2")

    result = await verify_store(audit_store, KEY)

    assert (result.problem, result.seq) == (Problem.MALFORMED, 2)


async def test_verify_store_with_another_key_fails(audit_store: AuditStore) -> None:
    await _fill(audit_store, 2)

    result = await verify_store(audit_store, bytes(32))

    assert result.problem is Problem.BAD_STATE


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("UPDATE {log} SET event = event WHERE seq = 2", id="update"),
        pytest.param("DELETE FROM {log} WHERE seq = 2", id="delete"),
        pytest.param(
            "INSERT INTO {log} (seq, at, type, event, prev_mac, mac)"
            " SELECT 9, at, type, event, prev_mac, mac FROM {log} WHERE seq = 1",
            id="insert-out-of-sequence",
        ),
        pytest.param("DELETE FROM {state}", id="delete-state"),
        pytest.param("UPDATE {state} SET head_seq = 1", id="move-head-back"),
    ],
)
async def test_triggers_refuse_changes_outside_append_and_purge(
    audit_store: AuditStore, raw: Raw, sql: str
) -> None:
    await _fill(audit_store, 3)

    with pytest.raises(Exception) as caught:  # noqa: PT011 - sqlite3 or psycopg error
        raw.execute(sql, guarded=True)

    assert (
        "append" in str(caught.value)
        or "forward" in str(caught.value)
        or "cannot" in str(caught.value)
    )
    assert await verify_store(audit_store, KEY)


async def test_purge_before_keeps_the_rest_verifiable(audit_store: AuditStore) -> None:
    for day in range(6):
        await audit_store.append(make_event(day, at=T0 + timedelta(days=day)))

    purged = await audit_store.purge_before(T0 + timedelta(days=3))

    assert purged == 3
    assert [e.seq async for e in audit_store.iter_entries()] == [4, 5, 6]
    state = await audit_store.chain_state()
    assert state.base.seq == 3
    assert state.purged_before == T0 + timedelta(days=3)
    assert (await verify_store(audit_store, KEY)).checked == 3
    await audit_store.append(make_event(7, at=T0 + timedelta(days=7)))
    assert (await verify_store(audit_store, KEY)).checked == 4


async def test_purge_before_removes_only_a_prefix(audit_store: AuditStore) -> None:
    for day in (0, 5, 1):  # clocks of several processes may disagree a little
        await audit_store.append(make_event(day, at=T0 + timedelta(days=day)))

    assert await audit_store.purge_before(T0 + timedelta(days=3)) == 1

    assert [e.seq async for e in audit_store.iter_entries()] == [2, 3]
    assert await verify_store(audit_store, KEY)


async def test_purge_before_respects_limit_and_nothing_to_do(audit_store: AuditStore) -> None:
    for day in range(5):
        await audit_store.append(make_event(day, at=T0 + timedelta(days=day)))

    assert await audit_store.purge_before(T0 - timedelta(days=1)) == 0
    assert await audit_store.purge_before(T0 + timedelta(days=9), limit=2) == 2
    assert await audit_store.purge_before(T0 + timedelta(days=9), limit=2) == 2
    assert await audit_store.purge_before(T0 + timedelta(days=9)) == 1
    assert [e async for e in audit_store.iter_entries()] == []
    assert await verify_store(audit_store, KEY)
    await audit_store.append(make_event(9))
    assert await verify_store(audit_store, KEY)


async def test_open_refuses_another_key(audit_store: AuditStore, audit_url: str) -> None:
    await _fill(audit_store, 1)

    with pytest.raises(ConfigError, match="different key"):
        await open_audit_store(audit_url, key=bytes(32))


async def test_reopen_continues_the_chain(audit_store: AuditStore, audit_url: str) -> None:
    await _fill(audit_store, 2)

    again = await open_audit_store(audit_url, key=KEY)
    try:
        assert (await again.append(make_event(3))).seq == 3
        assert (await verify_store(again, KEY)).checked == 3
    finally:
        await again.aclose()


async def test_ping_and_closed_store(audit_url: str) -> None:
    store = await open_audit_store(audit_url, key=KEY)
    await store.ping()
    await store.aclose()

    with pytest.raises(StorageUnavailable):
        await store.append(make_event(1))


# Two appender processes: each opens the log, says "ready", waits for "go" on stdin, then
# appends COUNT events from four coroutines that pause between appends, each in a transaction
# of its own, so that the two processes take turns at the backend's lock.
_APPENDER = """
import asyncio, sys
from datetime import UTC, datetime

from burnlink.audit import open_audit_store
from burnlink.audit.events import AuditEventType, audit_event


async def main() -> None:
    url, key, name, count = sys.argv[1:]
    store = await open_audit_store(url, key=bytes.fromhex(key))

    async def worker(first: int) -> None:
        for n in range(first, int(count), 4):
            event = audit_event(
                AuditEventType.SECRET_VIEWED, at=datetime.now(UTC), detail={"process": name, "n": n}
            )
            await store.write([event])
            await asyncio.sleep(0.005)

    try:
        print("ready", flush=True)
        sys.stdin.readline()
        await asyncio.gather(*(worker(first) for first in range(4)))
        print("done", flush=True)
    finally:
        await store.aclose()


asyncio.run(main())
"""


async def test_concurrent_appends_from_two_processes_make_one_chain(
    audit_store: AuditStore, audit_url: str
) -> None:
    count = 40
    argvs = [
        [sys.executable, "-c", _APPENDER, audit_url, KEY.hex(), name, str(count)] for name in "ab"
    ]
    processes: list[Process] = []
    try:
        for argv in argvs:
            processes.append(await anyio.open_process(argv))
        outputs = [BufferedByteReceiveStream(p.stdout) for p in processes if p.stdout]
        with anyio.fail_after(30):
            for output in outputs:
                assert await output.receive_until(b"\n", 100) == b"ready"
            for process in processes:
                assert process.stdin is not None
                await process.stdin.send(b"go\n")
            for process, output in zip(processes, outputs, strict=True):
                assert await output.receive_until(b"\n", 100) == b"done"
                assert await process.wait() == 0
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
            await process.aclose()

    result = await verify_store(audit_store, KEY)
    assert result.ok, result.describe()
    assert result.checked == 2 * count
    seen = sorted(
        [(e.event.detail["process"], e.event.detail["n"]) async for e in audit_store.iter_entries()]
    )
    assert seen == sorted((p, n) for p in "ab" for n in range(count))


async def test_sqlite_memory_url_is_a_working_log() -> None:
    store = await open_audit_store("memory://", key=KEY)
    try:
        await _fill(store, 3)
        assert (await verify_store(store, KEY)).checked == 3
    finally:
        await store.aclose()


async def test_sqlite_store_shares_a_file_with_other_tables(tmp_path: Path) -> None:
    file = tmp_path / "burnlink.db"
    with sqlite3.connect(file) as conn:
        conn.execute("CREATE TABLE secrets (id TEXT PRIMARY KEY)")
        conn.execute("PRAGMA user_version = 7")
    store = await SqliteAuditStore.open(str(file), key=KEY)
    try:
        await _fill(store, 1)
    finally:
        await store.aclose()
    with sqlite3.connect(file) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (7,)
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)


async def test_sqlite_stores_each_mac_as_the_blob_of_its_bytes(tmp_path: Path) -> None:
    """The row binds the MACs as ``bytearray`` (cheaper for sqlite3 than ``bytes``): still
    BLOBs, read back as the entry's ``bytes``."""
    file = tmp_path / "burnlink.db"
    store = await SqliteAuditStore.open(str(file), key=KEY)
    try:
        first = await store.append(make_event(1))
        second = await store.append(make_event(2))
    finally:
        await store.aclose()
    with sqlite3.connect(file) as conn:
        rows = conn.execute(
            "SELECT typeof(prev_mac), prev_mac, typeof(mac), mac FROM audit_log ORDER BY seq"
        ).fetchall()
    assert rows == [
        ("blob", first.prev_mac, "blob", first.mac),
        ("blob", second.prev_mac, "blob", second.mac),
    ]
    assert all(type(mac) is bytes for row in rows for mac in row[1::2])


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite://", id="sqlite-without-path"),
        pytest.param("redis://localhost", id="unknown-scheme"),
        pytest.param("postgresql://[bad", id="bad-postgres-url"),
    ],
)
async def test_open_audit_store_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        await open_audit_store(url, key=KEY)


async def test_open_unreachable_postgres_is_unavailable() -> None:
    with pytest.raises(StorageUnavailable):
        await open_audit_store("postgresql://postgres@127.0.0.1:1/x?connect_timeout=1", key=KEY)


async def test_open_refuses_a_newer_schema(
    audit_store: AuditStore, audit_url: str, raw: Raw
) -> None:
    raw.execute("UPDATE {state} SET schema_version = 99")

    with pytest.raises(StorageUnavailable, match="newer"):
        await open_audit_store(audit_url, key=KEY)


async def test_sqlite_open_reports_a_path_it_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()

    with pytest.raises(StorageUnavailable):
        await SqliteAuditStore.open(str(tmp_path / "dir.db"), key=KEY)


# -- completeness at start-up, and the write probe of /readyz ----------------------------------


@pytest.mark.parametrize("sql", ["DELETE FROM {state}", "DROP TABLE {state}"])
async def test_open_refuses_a_log_whose_state_is_gone_instead_of_sealing_a_fresh_one(
    audit_url: str, raw: Raw, sql: str
) -> None:
    store = await open_audit_store(audit_url, key=KEY)
    await _fill(store, 3)
    await store.aclose()
    raw.execute(sql)

    with pytest.raises(AuditStateInvalid, match="entries but its state row is missing"):
        await open_audit_store(audit_url, key=KEY)

    reopened = await open_audit_store(audit_url, key=KEY, read_only=True)
    try:
        bounds = await reopened.bounds()
        result = await verify_store(reopened, KEY)
    finally:
        await reopened.aclose()
    assert (bounds.state, bounds.count) == (None, 3)
    assert result.problem is Problem.NO_STATE


async def test_bounds_read_the_state_and_the_span_of_entries(
    audit_store: AuditStore, raw: Raw
) -> None:
    await _fill(audit_store, 4)
    raw.execute("DELETE FROM {log} WHERE seq = 1")

    bounds = await audit_store.bounds()

    assert bounds.state == await audit_store.chain_state()
    assert (bounds.first_seq, bounds.last_seq, bounds.count) == (2, 4, 3)


async def test_a_read_only_open_writes_nothing(audit_store: AuditStore, audit_url: str) -> None:
    await _fill(audit_store, 2)
    reader = await open_audit_store(audit_url, key=KEY, read_only=True)
    try:
        with pytest.raises(StorageUnavailable):
            await reader.append(make_event(9))
        with pytest.raises(StorageUnavailable):
            await reader.check_writable()
        result = await verify_store(reader, KEY)
    finally:
        await reader.aclose()

    assert (result.ok, result.checked) == (True, 2)
    assert (await audit_store.chain_state()).head.seq == 2


async def test_check_writable_fails_when_appends_would_while_ping_answers(
    audit_store: AuditStore, raw: Raw
) -> None:
    await _fill(audit_store, 2)
    await audit_store.check_writable()
    assert (await audit_store.chain_state()).head.seq == 2  # the probe was rolled back
    raw.execute("DELETE FROM {state}")

    await audit_store.ping()
    with pytest.raises(StorageUnavailable):
        await audit_store.append(make_event(3))
    with pytest.raises(StorageUnavailable):
        await audit_store.check_writable()


async def test_check_writable_fails_while_another_writer_holds_the_lock(
    audit_url: str, raw: Raw
) -> None:
    if raw.backend == "sqlite":
        store: AuditStore = await SqliteAuditStore.open(
            audit_url.removeprefix("sqlite://"), key=KEY, busy_timeout=timedelta(seconds=0.2)
        )
    else:
        store = await open_audit_store(audit_url, key=KEY)
    try:
        await _fill(store, 1)
        if raw.backend == "sqlite":
            holder = sqlite3.connect(audit_url.removeprefix("sqlite://"), isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                await store.ping()
                with pytest.raises(StorageUnavailable):
                    await store.check_writable()
            finally:
                holder.execute("ROLLBACK")
                holder.close()
        else:
            import psycopg

            async with await psycopg.AsyncConnection.connect(audit_url) as locker:
                await locker.execute("SELECT 1 FROM burnlink_audit_state FOR UPDATE")
                await store.ping()
                with pytest.raises(StorageUnavailable):
                    await store.check_writable()
                await locker.rollback()
        await store.check_writable()
    finally:
        await store.aclose()
