"""Redis-specific behaviour of ``RedisStore`` beyond the shared contract suite."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, cast
from urllib.parse import unquote_plus

import msgspec
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from burnlink.clock import FrozenClock
from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.ids import new_secret_id, token_digest
from burnlink.models import AccessPolicy, CodePut, EndReason, Event, EventKind, Viewer
from burnlink.store import Hit, SecretStore
from burnlink.store.redis.client import DEFAULT_PREFIX, split_prefix
from burnlink.store.redis.store import COUNTER_GRACE, RedisStore
from burnlink.store.secrets import Recorded, ViewRecord
from tests import services
from tests.conftest import RETENTION, store_url
from tests.store.test_contract import ACCESS, CODE, lock_out, make_record, put, put_code
from tests.store.test_identity import make_session, make_token

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
    elif kind == b"stream":
        entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await raw.xrange(key))
        values = [v for _, fields in entries for v in fields.values()]
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
        created = Event(clock.now(), EventKind.CREATED)
        await redis_store.record(record.secret_id, [Recorded(created, b"created")])
        await redis_store.consume(record.secret_id, ACCESS, now=clock.now())
        assert await put_code(redis_store, clock, record.secret_id)

    keys = await _keys_under(raw, prefix)

    for record in records:
        own = [key for key in keys if f"{{{record.secret_id}}}".encode() in key]
        kinds = {key[len(prefix) : len(prefix) + 2] for key in own}
        assert kinds == {b"s:", b"r:", b"e:", b"o:"}
        assert {key_slot(key) for key in own} == {key_slot(record.secret_id.encode())}
    assert len(keys) == 4 * 3 + 2  # four keys per secret, the expiry index and the outbox


async def test_create_sets_native_expiry_and_end_moves_it(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock, ttl=600)
    await redis_store.create(record, events=[Recorded(Event(clock.now(), EventKind.CREATED), b"")])
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


async def test_scripts_the_server_forgot_are_loaded_again(
    redis_store: RedisStore, raw: Redis, clock: FrozenClock
) -> None:
    """After ``SCRIPT FLUSH`` (or a Redis restart) the store's direct script calls load their
    script again and do their work once: a create, then each of a secret's two views."""
    first = make_record(clock, views=2)
    await redis_store.create(first)
    await raw.script_flush()
    second = make_record(clock, views=2)
    await redis_store.create(second)
    await raw.script_flush()
    consumed = await redis_store.consume(first.secret_id, ACCESS, now=clock.now())
    assert consumed is not None
    assert consumed.views_left == 1
    consumed = await redis_store.consume(second.secret_id, ACCESS, now=clock.now())
    assert consumed is not None
    assert consumed.views_left == 1
    meta = await redis_store.peek(first.secret_id, now=clock.now())
    assert meta is not None
    assert meta.views_left == 1


async def _race_processes(script: str, args: list[str], processes: int) -> list[bytes]:
    """Run ``processes`` copies of ``script``; release them together once all say "ready";
    return each one's stdout. Fails if any exits non-zero or takes over 8 s."""
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
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
    return outputs


_READER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from burnlink.store.redis.store import RedisStore

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


_FAILER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from burnlink.store.redis.store import RedisStore

async def main() -> None:
    url, secret_id, now_ms, calls, locks = sys.argv[1:6]
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(now_ms))
    store = await RedisStore.open(url, retention=timedelta(days=30))
    try:
        await asyncio.gather(*(store.ping() for _ in range(int(calls))))
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        results = await asyncio.gather(
            *(
                store.record_failure(secret_id, now=now, locks=locks == "locks")
                for _ in range(int(calls))
            )
        )
        found = [f"{int(r.counted)}:{r.attempts_left}" for r in results if r is not None]
        sys.stdout.write(" ".join(found) + "\\n")
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
    outputs = await _race_processes(_READER, args, processes)
    winners = sorted(int(left) for output in outputs for left in output.split())
    assert len(winners) == min(processes * readers, views)
    assert winners == list(range(views))
    receipt = await redis_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert (receipt.views_used, receipt.end_reason) == (views, EndReason.VIEWED)


async def test_record_failure_locks_once_across_processes(
    redis_store: RedisStore, redis_url: str, clock: FrozenClock
) -> None:
    record = make_record(clock, attempts=5)
    await redis_store.create(record)
    args = [redis_url, record.secret_id, str(_ms(clock.now())), "20"]

    spared = [
        r for out in await _race_processes(_FAILER, [*args, "spares"], 2) for r in out.split()
    ]
    locked = [r for out in await _race_processes(_FAILER, [*args, "locks"], 2) for r in out.split()]

    assert sorted(r for r in spared if r.startswith(b"1:")) == [b"1:1", b"1:2", b"1:3", b"1:4"]
    assert [r for r in spared if r.startswith(b"0:")] == [b"0:1"] * 36
    assert locked == [b"1:0"]  # the other 39 found it gone
    receipt = await redis_store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED


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
    "reveal": lambda s, c: s.reveal(
        new_secret_id(),
        ACCESS,
        now=c.now(),
        hits=[Hit("reveal:192.0.2.1", 60)],
        view=ViewRecord(None, b"{", b"}"),
    ),
    "record_failure": lambda s, c: s.record_failure(new_secret_id(), now=c.now(), locks=False),
    "burn": lambda s, c: s.burn(new_secret_id(), now=c.now()),
    "receipt": lambda s, c: s.receipt(new_secret_id(), now=c.now()),
    "record": lambda s, c: s.record(
        new_secret_id(), [Recorded(Event(c.now(), EventKind.VIEWED), b"viewed")]
    ),
    "pending_events": lambda s, c: s.pending_events(limit=10),
    # One ref of each form: a single-node store acks the first, a cluster store the second.
    "ack_events": lambda s, c: s.ack_events(["1-0", "x:{id}|1-0"]),
    "put_code": lambda s, c: put_code(s, c, new_secret_id()),
    "check_code": lambda s, c: s.check_code(new_secret_id(), CODE, now=c.now()),
    "hit": lambda s, c: s.hit("create:192.0.2.1", window=60, now=c.now()),
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
    email = "recipient-" + secrets.token_hex(8) + "@example.com"
    record = msgspec.structs.replace(
        make_record(clock, views=2, envelope=b'{"v":1,"ct":"' + marker + b'"}'),
        policy=AccessPolicy(recipient_email=email),
    )
    await redis_store.create(
        record, events=[Recorded(Event(clock.now(), EventKind.CREATED, "::1"), b"created")]
    )
    assert await put_code(redis_store, clock, record.secret_id)
    before = [v for key in await _keys_under(raw, prefix) for v in await _values_of(raw, key)]
    for needle in (marker, email.encode(), CODE):
        assert any(needle in value for value in before)

    for _ in range(2):
        assert await redis_store.consume(record.secret_id, ACCESS, now=clock.now()) is not None

    keys = await _keys_under(raw, prefix)
    assert keys  # the receipt, its events and the index remain
    for key in keys:
        for value in await _values_of(raw, key):
            assert marker not in value
            assert email.encode() not in value
            assert CODE not in value
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
    assert split_prefix("redis://h:6379/0") == ("redis://h:6379/0", DEFAULT_PREFIX)
    assert split_prefix("redis://u:p%3F@h/1?prefix=a%3Ab:&socket_timeout=5") == (
        "redis://u:p%3F@h/1?socket_timeout=5",
        "a:b:",
    )
    assert split_prefix("rediss://h?db=2&prefix=t:") == ("rediss://h?db=2", "t:")
    with pytest.raises(ConfigError):
        split_prefix("redis://h?prefix={tag}:")


async def test_open_accepts_the_full_store_url(redis_url: str, clock: FrozenClock) -> None:
    store = await RedisStore.open(redis_url, retention=timedelta(days=1))
    try:
        record = make_record(clock)
        await store.create(record)
        assert await store.peek(record.secret_id, now=clock.now()) is not None
    finally:
        await store.aclose()


def _secret_key(prefix: bytes, kind: bytes, secret_id: str) -> bytes:
    return prefix + kind + b"{" + secret_id.encode() + b"}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _previous_decode_event(raw: bytes | str) -> Event:
    """How the release before viewers decodes a receipt line, frozen here as its processes
    still run it during a rolling upgrade."""
    at, kind, ip, user_agent = json.loads(raw)
    return Event(at=datetime.fromtimestamp(at / 1000, UTC), kind=EventKind(kind), ip=ip,
                 user_agent=user_agent)  # fmt: skip


async def test_a_viewer_is_kept_beside_the_line_where_the_release_before_reads_past_it(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    """A line's viewer is a receipt hash field (``v:<n>``), not a fifth member of the line: a
    process of the release before, still running during a rolling upgrade, reads the
    receipt's lines as it always did (without the viewer) instead of failing on them."""
    record = make_record(clock, views=2)
    created = Event(clock.now(), EventKind.CREATED, "192.0.2.1")
    await redis_store.create(record, events=[Recorded(created, b"c")])
    alice = Viewer(email="alice@example.com", mfa=True)
    viewed = Event(clock.now(), EventKind.VIEWED, "203.0.113.7", viewer=alice)
    await redis_store.consume(
        record.secret_id, ACCESS, now=clock.now(), events=[Recorded(viewed, b"v")]
    )

    lines = await raw.lrange(_secret_key(prefix, b"e:", record.secret_id), 0, -1)
    fields = await raw.hgetall(_secret_key(prefix, b"r:", record.secret_id))

    assert [_previous_decode_event(line) for line in lines] == [
        created,
        msgspec.structs.replace(viewed, viewer=None),
    ]
    assert json.loads(fields[b"v:2"]) == {"email": "alice@example.com", "mfa": True}
    assert b"v:1" not in fields


async def test_policy_is_kept_in_the_live_hash_and_absent_reads_empty(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    policy = AccessPolicy(allowed_countries=("NL",), recipient_email="a@example.com")
    record = msgspec.structs.replace(make_record(clock), policy=policy)
    await redis_store.create(record)
    live = _secret_key(prefix, b"s:", record.secret_id)
    assert await raw.hget(live, "pol") == policy.to_bytes()

    await raw.hdel(live, "pol")  # a secret written before access policies existed

    meta = await redis_store.peek(record.secret_id, now=clock.now())
    assert meta is not None
    assert meta.policy == AccessPolicy()


@pytest.mark.parametrize(("code_ttl", "secret_ttl"), [(600, 3600), (600, 300)])
async def test_code_key_expires_with_its_secret(
    redis_store: RedisStore,
    raw: Redis,
    prefix: bytes,
    clock: FrozenClock,
    code_ttl: int,
    secret_ttl: int,
) -> None:
    record = make_record(clock, ttl=secret_ttl)
    await redis_store.create(record)
    now = clock.now()
    expires_at = now + timedelta(seconds=code_ttl)

    put = await redis_store.put_code(
        record.secret_id,
        CODE,
        now=now,
        expires_at=expires_at,
        tries=3,
        resend_after=now,
        max_codes=3,
    )

    assert put is CodePut.SENT
    # Not with the code: a spent code still counts towards max_codes until its secret ends.
    code_key = _secret_key(prefix, b"o:", record.secret_id)
    assert await raw.pexpiretime(code_key.decode()) == _ms(record.expires_at)


async def _lock(store: RedisStore, secret_id: str, clock: FrozenClock) -> None:
    await lock_out(store, secret_id, now=clock.now())


async def _expire(store: RedisStore, secret_id: str, clock: FrozenClock) -> None:
    clock.advance(3601)
    assert await store.purge_expired(now=clock.now(), limit=10) == 1


_ENDINGS: dict[str, Callable[[RedisStore, str, FrozenClock], Awaitable[object]]] = {
    "consume": lambda s, i, c: s.consume(i, ACCESS, now=c.now()),
    "burn": lambda s, i, c: s.burn(i, now=c.now()),
    "lock": _lock,
    "expire": _expire,
}


@pytest.mark.parametrize("ending", list(_ENDINGS))
async def test_ending_a_secret_deletes_its_code_key(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock, ending: str
) -> None:
    record = make_record(clock, ttl=3600, attempts=3)
    await redis_store.create(record)
    assert await put_code(redis_store, clock, record.secret_id)
    code_key = _secret_key(prefix, b"o:", record.secret_id)
    assert await raw.exists(code_key) == 1

    await _ENDINGS[ending](redis_store, record.secret_id, clock)

    assert await raw.exists(code_key) == 0
    assert await raw.exists(_secret_key(prefix, b"s:", record.secret_id)) == 0


async def test_a_code_left_by_an_older_process_is_dead_with_its_secret(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await redis_store.create(record)
    assert await put_code(redis_store, clock, record.secret_id)
    await raw.delete(_secret_key(prefix, b"s:", record.secret_id))  # ended, code left behind

    assert await redis_store.check_code(record.secret_id, CODE, now=clock.now()) is None
    assert not await put_code(redis_store, clock, record.secret_id)


async def test_counter_keys_are_hash_tagged_per_window_and_expire_after_it(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    clock.advance(60 - clock.now().timestamp() % 60 + 15)  # 15 s into a minute
    start = int(clock.now().timestamp()) // 60 * 60
    bucket = "reveal:2001:db8::/64"

    assert await redis_store.hit(bucket, window=60, now=clock.now(), cost=0) == 0
    assert await _keys_under(raw, prefix) == []  # reading creates nothing
    written = [time.monotonic()]
    assert await redis_store.hit(bucket, window=60, now=clock.now()) == 1
    clock.advance(60)
    written.append(time.monotonic())
    assert await redis_store.hit(bucket, window=60, now=clock.now(), cost=2) == 2

    tags = [f"{bucket}:{start}".encode(), f"{bucket}:{start + 60}".encode()]
    keys = [prefix + b"c:{" + tag + b"}" for tag in tags]
    assert await _keys_under(raw, prefix) == sorted(keys)
    for key, tag, since in zip(keys, tags, written, strict=True):
        assert key_slot(key) == key_slot(tag)
        ttl = await raw.pttl(key)
        waited = int((time.monotonic() - since) * 1000)  # real time the key has counted down
        grace = COUNTER_GRACE // timedelta(milliseconds=1)
        assert 45_000 + grace - waited - 100 < ttl <= 45_000 + grace  # the rest of the window


async def test_counters_do_not_depend_on_the_server_clock(
    redis_store: RedisStore, raw: Redis, prefix: bytes
) -> None:
    past = FrozenClock(datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC))  # long before the server's

    counts = [
        await redis_store.hit("create:192.0.2.1", window=60, now=past.now()) for _ in range(3)
    ]

    assert counts == [1, 2, 3]
    (key,) = await _keys_under(raw, prefix)
    assert await raw.pttl(key) > 0


async def test_a_stale_counter_key_is_harmless(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    now = clock.now()
    start = int(now.timestamp()) // 60 * 60
    stale = prefix + f"c:{{create:192.0.2.1:{start - 60}}}".encode()
    await raw.set(stale, 1000)  # a window Redis has not freed yet, without any TTL

    assert await redis_store.hit("create:192.0.2.1", window=60, now=now) == 1
    assert await raw.get(stale) == b"1000"


async def test_buckets_with_braces_colons_and_non_ascii_stay_apart(
    redis_store: RedisStore, clock: FrozenClock
) -> None:
    buckets = ["x", "x}", "{x", "x:0", "x:", "ü"]

    for n in (1, 2):
        counts = [await redis_store.hit(b, window=60, now=clock.now()) for b in buckets]
        assert counts == [n] * len(buckets)


_HITTER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from burnlink.store.redis.store import RedisStore

async def main() -> None:
    url, bucket, now_ms, hits = sys.argv[1:5]
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(now_ms))
    store = await RedisStore.open(url, retention=timedelta(days=30))
    try:
        await asyncio.gather(*(store.ping() for _ in range(int(hits))))
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        results = await asyncio.gather(
            *(store.hit(bucket, window=3600, now=now) for _ in range(int(hits)))
        )
        sys.stdout.write(" ".join(str(r) for r in results) + "\\n")
        sys.stdout.flush()
    finally:
        await store.aclose()

asyncio.run(main())
"""


async def test_hit_counts_distinctly_across_processes(
    redis_store: RedisStore, redis_url: str, clock: FrozenClock
) -> None:
    processes, hits = 2, 25
    args = [redis_url, "reveal:198.51.100.0/24", str(_ms(clock.now())), str(hits)]
    outputs = await _race_processes(_HITTER, args, processes)
    counts = sorted(int(n) for output in outputs for n in output.split())
    assert counts == list(range(1, processes * hits + 1))
    assert await redis_store.hit(
        "reveal:198.51.100.0/24", window=3600, now=clock.now(), cost=0
    ) == (processes * hits)


async def test_check_code_compares_the_whole_digest(
    redis_store: RedisStore, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await redis_store.create(record)
    assert await put_code(redis_store, clock, record.secret_id, tries=5)

    for wrong in (CODE[:-1], CODE + b"\x00", token_digest(b"123457"), b""):
        check = await redis_store.check_code(record.secret_id, wrong, now=clock.now())
        assert check is not None
        assert not check.matched
    check = await redis_store.check_code(record.secret_id, CODE, now=clock.now())
    assert check is not None
    assert (check.matched, check.tries_left) == (True, 1)


async def test_code_written_before_codes_were_counted_counts_as_the_first(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await redis_store.create(record)
    assert await put_code(redis_store, clock, record.secret_id)
    code_key = _secret_key(prefix, b"o:", record.secret_id)
    await raw.hdel(code_key, "n")  # as the previous release's script wrote it
    clock.advance(61)

    last_allowed = await put(redis_store, clock, record.secret_id, max_codes=1)
    second = await put(redis_store, clock, record.secret_id, max_codes=2)

    assert (last_allowed, second) == (CodePut.TOO_SOON, CodePut.SENT)
    assert await raw.hget(code_key, "n") == b"2"


# -- the outbox ------------------------------------------------------------------------------

_CREATE_BEFORE_THE_OUTBOX: Final = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
local pairs = tonumber(ARGV[3])
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], unpack(ARGV, 5, 4 + 2 * pairs))
redis.call('HSET', KEYS[2], unpack(ARGV, 5 + 2 * pairs, #ARGV))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[2], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[4])
  redis.call('PEXPIREAT', KEYS[3], ARGV[2])
end
return 1
"""
"""The create script as it was before the outbox (commit 24ea98a), to write an old database."""


async def test_a_database_written_before_the_outbox_opens_and_works(
    redis_url: str, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    """Secrets, receipts and events written by the previous layout (no outbox keys) are read
    and changed by this one, which adds the outbox beside them: nothing to migrate."""
    record = make_record(clock, views=2)
    created = Event(clock.now(), EventKind.CREATED, "192.0.2.1", "cli")
    expires_ms = _ms(record.expires_at)
    keep_ms = expires_ms + int(RETENTION.total_seconds() * 1000)
    live: list[bytes | str | int] = [
        "env", record.envelope, "acc", record.access_digest, "cat", _ms(record.created_at),
        "exp", expires_ms, "mv", 2, "vl", 2, "al", record.max_attempts,
        "pol", record.policy.to_bytes(),
    ]  # fmt: skip
    receipt_fields: list[bytes | str | int] = [
        "mng", record.manage_digest, "cat", _ms(record.created_at), "exp", expires_ms,
        "mv", 2, "vu", 0,
    ]  # fmt: skip
    line = f'[{_ms(created.at)},"created","192.0.2.1","cli"]'
    keys = [_secret_key(prefix, kind, record.secret_id) for kind in (b"s:", b"r:", b"e:", b"o:")]
    args = [expires_ms, keep_ms, len(live) // 2, line, *live, *receipt_fields]
    assert await raw.eval(_CREATE_BEFORE_THE_OUTBOX, 4, *keys, *args) == 1
    await raw.zadd(prefix + b"index:expiry", {record.secret_id: expires_ms})
    assert await _keys_under(raw, prefix) == sorted([*keys[:3], prefix + b"index:expiry"])

    store = await RedisStore.open(redis_url, retention=RETENTION)
    try:
        meta = await store.peek(record.secret_id, now=clock.now())
        assert meta is not None
        assert meta.views_left == 2
        viewed = Event(clock.now(), EventKind.VIEWED, "198.51.100.1")
        consumed = await store.consume(
            record.secret_id, ACCESS, now=clock.now(), events=[Recorded(viewed, b"viewed")]
        )
        assert consumed is not None
        assert consumed.envelope == record.envelope
        await store.record(record.secret_id, [Recorded(None, b"observed")])
        assert await store.burn(record.secret_id, now=clock.now(), events=[Recorded(None, b"b")])

        receipt = await store.receipt(record.secret_id, now=clock.now())
        assert receipt is not None
        assert receipt.events == (created, viewed)
        assert receipt.end_reason is EndReason.BURNED
        pending = await store.pending_events(limit=10)
        assert [p.outbox for p in pending] == [b"viewed", b"observed", b"b"]
        await store.ack_events([p.ref for p in pending])
        assert await store.pending_events(limit=10) == []
    finally:
        await store.aclose()


async def test_outbox_is_one_stream_with_stream_ids_as_refs(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await redis_store.create(record, events=[Recorded(None, b"created")])
    await redis_store.record(None, [Recorded(None, b"alert")])

    pending = await redis_store.pending_events(limit=10)

    stream = cast("list[tuple[bytes, dict[bytes, bytes]]]", await raw.xrange(prefix + b"outbox"))
    assert [p.ref.encode() for p in pending] == [entry_id for entry_id, _ in stream]
    assert [fields[b"r"] for _, fields in stream] == [b"created", b"alert"]
    await redis_store.ack_events([pending[0].ref, "not-a-ref", "x:{other}|1-0"])
    assert [p.outbox for p in await redis_store.pending_events(limit=10)] == [b"alert"]


async def test_outbox_entries_read_raw_give_what_redis_pys_dict_gave(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    """The store reads ``XRANGE`` without redis-py's callback; an entry in another field
    layout than the script's (written by hand) still gives its ``r`` field, the last one when
    repeated, as the dict redis-py built did, and a store on a plain client reads the same."""
    stream = prefix + b"outbox"
    await redis_store.record(None, [Recorded(None, b"scripted")])
    for fields in (
        ["t", "1", "r", b"reordered"],
        ["r", b"first", "t", "1", "r", b"last"],  # XADD keeps both
        ["r", b"alone"],
        ["r", b"x", "r", b"doubled"],
    ):
        await raw.execute_command("XADD", stream, "*", *fields)  # type: ignore[no-untyped-call]
    plain = RedisStore(
        Redis.from_url(services.REDIS_URL), prefix=prefix.decode(), retention=RETENTION
    )
    try:
        lean = await redis_store.pending_events(limit=10)

        assert [p.outbox for p in lean] == [
            b"scripted",
            b"reordered",
            b"last",
            b"alone",
            b"doubled",
        ]
        assert lean == await plain.pending_events(limit=10)
        assert [p.outbox for p in await redis_store.pending_events(limit=2)] == [
            b"scripted",
            b"reordered",
        ]
    finally:
        await plain.aclose()


async def test_a_refused_change_adds_nothing_to_the_outbox(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await redis_store.create(record)
    gone = new_secret_id()

    assert (
        await redis_store.consume(gone, ACCESS, now=clock.now(), events=[Recorded(None, b"")])
        is None
    )
    assert not await redis_store.burn(gone, now=clock.now(), events=[Recorded(None, b"")])

    assert await raw.exists(prefix + b"outbox") == 0


# -- sign-in ---------------------------------------------------------------------------------


async def test_owner_set_drops_ids_whose_receipt_is_gone(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    """The owner's sorted set lives as long as its longest-kept receipt, and drops an id
    whose receipt Redis has freed (native expiry) when "my secrets" reads it."""
    records = [msgspec.structs.replace(make_record(clock), owner="alice") for _ in range(3)]
    for record in records:
        await redis_store.create(record)
    owned_key = prefix + b"own:{alice}"
    assert await raw.zcard(owned_key) == 3
    assert 0 < await raw.pttl(owned_key) <= (3600 * 1000 + RETENTION // timedelta(milliseconds=1))

    await raw.delete(prefix + b"r:{" + records[0].secret_id.encode() + b"}")
    owned = await redis_store.owned_secrets("alice", now=clock.now(), limit=10)

    assert {r.secret_id for r in owned} == {r.secret_id for r in records[1:]}
    assert await raw.zcard(owned_key) == 2


async def test_sign_in_keys_share_one_slot_and_hold_digests_only(
    redis_store: RedisStore, raw: Redis, prefix: bytes, clock: FrozenClock
) -> None:
    session_id, token = secrets.token_bytes(32), secrets.token_bytes(32)
    session = dataclasses.replace(make_session(clock), digest=token_digest(session_id))
    api_token = dataclasses.replace(make_token(clock), digest=token_digest(token))
    await redis_store.put_session(session)
    await redis_store.put_token(api_token)

    keys = [k for k in await _keys_under(raw, prefix) if b"{signin}" in k]
    assert len(keys) == 7
    assert len({key_slot(k) for k in keys}) == 1
    for key in keys:
        assert session_id.hex().encode() not in key
        assert token.hex().encode() not in key
        for value in await _values_of(raw, key):
            assert session_id not in value
            assert token not in value
