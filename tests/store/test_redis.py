"""Redis-specific behaviour of ``RedisStore`` beyond the shared contract suite."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from burnlink.clock import FrozenClock
from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.ids import new_secret_id
from burnlink.models import EndReason, Event, EventKind
from burnlink.store import SecretStore
from burnlink.store.redis import DEFAULT_PREFIX, RedisStore, _split_prefix
from tests import services
from tests.conftest import RETENTION, store_url
from tests.store.test_contract import ACCESS, make_record

pytestmark = pytest.mark.anyio


def _conforms(store: RedisStore) -> SecretStore:
    return store


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL with a fresh key prefix; its keys are deleted after the test."""
    return store_url("redis", request, tmp_path)


@pytest.fixture
def prefix(redis_url: str) -> bytes:
    return unquote_plus(redis_url.rpartition("?prefix=")[2]).encode()


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    store = await RedisStore.open(redis_url, retention=RETENTION)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def raw() -> AsyncIterator[Redis]:
    """A plain client on the test server, to look at keys behind the store's back."""
    services.require("redis")
    client = Redis.from_url(services.REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


async def _keys_under(raw: Redis, prefix: bytes) -> list[bytes]:
    return sorted([key async for key in raw.scan_iter(match=prefix + b"*", count=1000)])


async def _values_of(raw: Redis, key: bytes) -> list[bytes]:
    kind = await raw.type(key)
    values: list[object]
    if kind == b"hash":
        values = list((await raw.hgetall(key)).values())
    elif kind == b"list":
        values = list(await raw.lrange(key, 0, -1))
    elif kind == b"zset":
        values = list(await raw.zrange(key, 0, -1))
    elif kind == b"string":
        values = [await raw.get(key)]
    else:
        raise AssertionError(f"unexpected key type {kind!r}")
    found = [value for value in values if isinstance(value, bytes)]
    assert len(found) == len(values)
    return found


async def test_keys_of_one_secret_share_one_hash_slot(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    records = [make_record(clock, views=2) for _ in range(3)]
    for record in records:
        await redis_store.create(record)
        await redis_store.add_event(record.secret_id, Event(clock.now(), EventKind.CREATED))
        await redis_store.consume(record.secret_id, ACCESS, now=clock.now())

    keys = await _keys_under(raw, prefix)

    for record in records:
        own = [key for key in keys if f"{{{record.secret_id}}}".encode() in key]
        assert {key[len(prefix) : len(prefix) + 2] for key in own} == {b"s:", b"r:", b"e:"}
        assert len({key_slot(key) for key in own}) == 1
    assert len(keys) == 3 * 3 + 1  # three keys per secret and the expiry index


async def test_create_sets_native_expiry_and_end_moves_it(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock, ttl=600)
    await redis_store.create(record)
    await redis_store.add_event(record.secret_id, Event(clock.now(), EventKind.CREATED))
    tag = f"{{{record.secret_id}}}".encode()
    expires_ms = int(record.expires_at.timestamp() * 1000)
    retention_ms = int(RETENTION.total_seconds() * 1000)

    assert await raw.pexpiretime((prefix + b"s:" + tag).decode()) == expires_ms
    assert await raw.pexpiretime((prefix + b"r:" + tag).decode()) == expires_ms + retention_ms
    assert await raw.pexpiretime((prefix + b"e:" + tag).decode()) == expires_ms + retention_ms

    clock.advance(10)
    assert await redis_store.burn(record.secret_id, now=clock.now())

    burned_ms = int(clock.now().timestamp() * 1000)
    assert await raw.exists(prefix + b"s:" + tag) == 0
    assert await raw.pexpiretime((prefix + b"r:" + tag).decode()) == burned_ms + retention_ms
    assert await raw.pexpiretime((prefix + b"e:" + tag).decode()) == burned_ms + retention_ms


_READER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from burnlink.store.redis import RedisStore

async def main() -> None:
    url, secret_id, digest, now_ms, readers = sys.argv[1:6]
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(now_ms))
    store = await RedisStore.open(url, retention=timedelta(days=30))
    try:
        await asyncio.gather(*(store.ping() for _ in range(int(readers))))
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        results = await asyncio.gather(
            *(store.consume(secret_id, bytes.fromhex(digest), now=now) for _ in range(int(readers)))
        )
        sys.stdout.write(" ".join(str(r.views_left) for r in results if r is not None) + "\\n")
        sys.stdout.flush()
    finally:
        await store.aclose()

asyncio.run(main())
"""


@pytest.mark.parametrize("views", [1, 3])
async def test_consume_is_exactly_once_across_processes(
    redis_store: RedisStore, redis_url: str, clock: FrozenClock, views: int
) -> None:
    processes, readers = 2, 20
    record = make_record(clock, views=views)
    await redis_store.create(record)
    now_ms = str(int(clock.now().timestamp() * 1000))
    args = [redis_url, record.secret_id, ACCESS.hex(), now_ms, str(readers)]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _READER,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    try:
        async with asyncio.timeout(8):
            for child in children:
                assert child.stdout is not None
                assert await child.stdout.readline() == b"ready\n"
            for child in children:
                assert child.stdin is not None
                child.stdin.write(b"go\n")
                await child.stdin.drain()
            outputs = [(await child.communicate())[0] for child in children]
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()

    assert [child.returncode for child in children] == [0] * processes
    winners = sorted(int(left) for output in outputs for left in output.split())
    assert len(winners) == min(processes * readers, views)
    assert winners == list(range(views))
    receipt = await redis_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert (receipt.views_used, receipt.end_reason) == (views, EndReason.VIEWED)


async def test_open_unreachable_redis_fails_fast() -> None:
    started = time.monotonic()

    with pytest.raises(StorageUnavailable) as caught:
        await RedisStore.open("redis://127.0.0.1:1/0?prefix=x:", retention=RETENTION)

    assert time.monotonic() - started < 3
    assert "127.0.0.1" not in str(caught.value)


async def test_open_silent_server_times_out_fast() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await RedisStore.open(f"redis://127.0.0.1:{port}/0", retention=RETENTION)
        assert time.monotonic() - started < 3.5
    finally:
        server.close()


_CALLS: dict[str, Callable[[RedisStore, FrozenClock], Awaitable[object]]] = {
    "create": lambda s, c: s.create(make_record(c)),
    "peek": lambda s, c: s.peek(new_secret_id(), now=c.now()),
    "consume": lambda s, c: s.consume(new_secret_id(), ACCESS, now=c.now()),
    "record_failure": lambda s, c: s.record_failure(new_secret_id(), now=c.now()),
    "burn": lambda s, c: s.burn(new_secret_id(), now=c.now()),
    "receipt": lambda s, c: s.receipt(new_secret_id(), now=c.now()),
    "add_event": lambda s, c: s.add_event(new_secret_id(), Event(c.now(), EventKind.VIEWED)),
    "purge_expired": lambda s, c: s.purge_expired(now=c.now(), limit=10),
    "ping": lambda s, c: s.ping(),
}


@pytest.mark.parametrize("method", list(_CALLS))
async def test_every_method_translates_driver_errors(method: str, clock: FrozenClock) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    store = RedisStore(client, prefix="x:", retention=RETENTION)
    try:
        with pytest.raises(StorageUnavailable):
            await _CALLS[method](store, clock)
    finally:
        await store.aclose()


async def test_consume_to_zero_leaves_no_envelope_in_any_key(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    marker = b"ENVELOPE-MARKER-" + secrets.token_hex(8).encode()
    record = make_record(clock, views=2, envelope=b'{"v":1,"ct":"' + marker + b'"}')
    await redis_store.create(record)
    await redis_store.add_event(record.secret_id, Event(clock.now(), EventKind.CREATED, "::1"))
    before = [v for key in await _keys_under(raw, prefix) for v in await _values_of(raw, key)]
    assert any(marker in value for value in before)

    for _ in range(2):
        assert await redis_store.consume(record.secret_id, ACCESS, now=clock.now()) is not None

    keys = await _keys_under(raw, prefix)
    assert keys  # the receipt, its events and the index remain
    for key in keys:
        assert all(marker not in value for value in await _values_of(raw, key))
    assert await redis_store.receipt(record.secret_id, now=clock.now()) is not None


async def test_purge_expired_skips_ended_secrets_left_in_the_index(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    records = [make_record(clock, ttl=60) for _ in range(4)]
    for record in records:
        await redis_store.create(record)
    assert await redis_store.burn(records[0].secret_id, now=clock.now())
    clock.advance(61)

    assert await redis_store.purge_expired(now=clock.now(), limit=2) == 2
    assert await redis_store.purge_expired(now=clock.now(), limit=2) == 1
    assert await redis_store.purge_expired(now=clock.now(), limit=2) == 0

    assert await raw.zcard(prefix + b"index:expiry") == 0
    receipt = await redis_store.receipt(records[0].secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.end_reason is EndReason.BURNED


async def test_purge_expired_rescores_a_live_secret_with_a_stale_index_entry(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock, ttl=3600)
    await redis_store.create(record)
    index = prefix + b"index:expiry"
    await raw.zadd(index, {record.secret_id.encode(): 0})

    assert await redis_store.purge_expired(now=clock.now(), limit=10) == 0

    assert await raw.zscore(index, record.secret_id.encode()) == int(
        record.expires_at.timestamp() * 1000
    )
    assert await redis_store.peek(record.secret_id, now=clock.now()) is not None


def test_split_prefix_strips_only_the_prefix_parameter() -> None:
    assert _split_prefix("redis://h:6379/0") == ("redis://h:6379/0", DEFAULT_PREFIX)
    assert _split_prefix("redis://u:p%3F@h/1?prefix=a%3Ab:&socket_timeout=5") == (
        "redis://u:p%3F@h/1?socket_timeout=5",
        "a:b:",
    )
    assert _split_prefix("rediss://h?db=2&prefix=t:") == ("rediss://h?db=2", "t:")
    with pytest.raises(ConfigError):
        _split_prefix("redis://h?prefix={tag}:")


async def test_open_accepts_the_full_store_url(redis_url: str, clock: FrozenClock) -> None:
    store = await RedisStore.open(redis_url, retention=timedelta(days=1))
    try:
        record = make_record(clock)
        await store.create(record)
        assert await store.peek(record.secret_id, now=clock.now()) is not None
    finally:
        await store.aclose()
