"""``RedisStore`` on a Redis Cluster, beyond the shared contract suite (which runs there too):
where keys land, redirects, lost replies, and the ``redis+cluster://`` URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import msgspec
import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from burnlink.clock import FrozenClock
from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.ids import new_secret_id
from burnlink.models import Event, EventKind
from burnlink.store import open_store, redact_url
from burnlink.store.redis.client import DEFAULT_PREFIX, parse_cluster_url, split_prefix
from burnlink.store.redis.store import OUTBOX_RESCAN_EVERY, RedisStore
from burnlink.store.secrets import Recorded
from tests.conftest import RETENTION, store_url
from tests.store.redis_cluster import LocalCluster
from tests.store.test_contract import ACCESS, make_record, put_code
from tests.store.test_redis import _CALLS

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on the session's cluster with a fresh prefix, deleted after the test."""
    return store_url("redis-cluster", request, tmp_path)


@pytest.fixture
def prefix(cluster_url: str) -> bytes:
    return unquote_plus(cluster_url.rpartition("?prefix=")[2]).encode()


@pytest.fixture
async def cluster_store(cluster_url: str) -> AsyncIterator[RedisStore]:
    store = await RedisStore.open(cluster_url, retention=RETENTION)
    try:
        yield store
    finally:
        await store.aclose()


def _keys_by_node(cluster: LocalCluster, prefix: bytes) -> dict[bytes, int]:
    """Every key under ``prefix``, with the port of the node that holds it."""
    found: dict[bytes, int] = {}
    for port in cluster.ports:
        with cluster.node(port) as client:
            for key in client.scan_iter(match=prefix + b"*", count=1000):
                assert key not in found
                found[key] = port
    return found


def _tag(secret_id: str) -> bytes:
    return b"{" + secret_id.encode() + b"}"


async def test_keys_of_one_secret_share_one_slot_on_one_node(
    cluster_store: RedisStore, redis_cluster: LocalCluster, prefix: bytes, clock: FrozenClock
) -> None:
    records = [make_record(clock, views=2) for _ in range(6)]
    for record in records:
        await cluster_store.create(record)
        created = Event(clock.now(), EventKind.CREATED)
        await cluster_store.record(record.secret_id, [Recorded(created, b"created")])
        assert await cluster_store.consume(record.secret_id, ACCESS, now=clock.now())
        assert await put_code(cluster_store, clock, record.secret_id)

    keys = _keys_by_node(redis_cluster, prefix)

    for record in records:
        own = {key: port for key, port in keys.items() if _tag(record.secret_id) in key}
        kinds = {key[len(prefix) : len(prefix) + 2] for key in own}
        assert kinds == {b"s:", b"r:", b"e:", b"o:", b"x:"}
        assert {key_slot(key) for key in own} == {key_slot(record.secret_id.encode())}
        assert set(own.values()) == {redis_cluster.owner(key_slot(record.secret_id.encode()))}
    assert len(keys) == 5 * len(records) + 2  # and the expiry and outbox indexes


async def test_secrets_spread_over_every_master(
    cluster_store: RedisStore, redis_cluster: LocalCluster, prefix: bytes, clock: FrozenClock
) -> None:
    records = [make_record(clock) for _ in range(48)]  # all on one master: p < 1e-8
    await asyncio.gather(*(cluster_store.create(record) for record in records))

    keys = _keys_by_node(redis_cluster, prefix)

    masters = {keys[prefix + b"s:" + _tag(record.secret_id)] for record in records}
    assert masters == set(redis_cluster.ports)


async def test_moved_slots_are_followed_and_each_script_runs_once(
    cluster_store: RedisStore, redis_cluster: LocalCluster, clock: FrozenClock
) -> None:
    """A store whose slot map is stale follows ``MOVED`` (the node ran nothing) and still
    takes exactly one view per call: through a direct script, a pipeline and a read."""
    old, new, read = (make_record(clock, views=2) for _ in range(3))
    for record in (old, read):
        await cluster_store.create(record)
    for record in (old, new, read):
        slot = key_slot(record.secret_id.encode())
        others = [port for port in redis_cluster.ports if port != redis_cluster.owner(slot)]
        redis_cluster.move_slot(slot, others[0])
    for port in redis_cluster.ports:  # the new owners must also load the scripts on demand
        with redis_cluster.node(port) as client:
            client.script_flush()

    receipt = await cluster_store.receipt(read.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.views_used == 0
    await cluster_store.create(new)  # a pipeline: its EVAL is redirected on its own
    for record in (old, new):
        consumed = await cluster_store.consume(record.secret_id, ACCESS, now=clock.now())
        assert consumed is not None
        assert consumed.views_left == 1
        meta = await cluster_store.peek(record.secret_id, now=clock.now())
        assert meta is not None
        assert meta.views_left == 1


async def test_a_reply_lost_after_a_view_takes_no_second_view(
    redis_cluster: LocalCluster, cluster_url: str, clock: FrozenClock
) -> None:
    """The node holding the secret sleeps past the client's timeout, then runs the script it
    already received: the caller sees ``StorageUnavailable``, and one view is gone, not two
    (a client that re-sent the script after the timeout would take both)."""
    store = await RedisStore.open(cluster_url + "&socket_timeout=0.3", retention=RETENTION)
    try:
        record = make_record(clock, views=2)
        await store.create(record)
        await store.consume(new_secret_id(), ACCESS, now=clock.now())  # loads the script
        port = redis_cluster.owner(key_slot(record.secret_id.encode()))
        asleep = asyncio.create_task(asyncio.to_thread(redis_cluster.debug_sleep, port, 0.9))
        await asyncio.to_thread(redis_cluster.wait_stalled, port)
        with pytest.raises(StorageUnavailable):
            await store.consume(record.secret_id, ACCESS, now=clock.now())
        await asleep

        meta = await store.peek(record.secret_id, now=clock.now())
        assert meta is not None
        assert meta.views_left == 1
    finally:
        await store.aclose()


async def test_a_stalled_master_fails_its_own_secrets_fast_and_the_cluster_recovers(
    redis_cluster: LocalCluster, cluster_url: str, clock: FrozenClock
) -> None:
    """Store down, on one shard: calls for secrets on a master that stopped answering get
    ``StorageUnavailable`` within 2 s; once it answers again every secret is there."""
    store = await RedisStore.open(cluster_url, retention=RETENTION)
    try:
        records = [make_record(clock) for _ in range(30)]
        for record in records:
            await store.create(record)
        port = redis_cluster.ports[0]
        stalled = [
            r for r in records if redis_cluster.owner(key_slot(r.secret_id.encode())) == port
        ]
        assert stalled, "no secret landed on the first master"
        asleep = asyncio.create_task(asyncio.to_thread(redis_cluster.debug_sleep, port, 3))
        await asyncio.to_thread(redis_cluster.wait_stalled, port)

        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await store.peek(stalled[0].secret_id, now=clock.now())
        waited = time.monotonic() - started
        await asleep

        assert waited < 2
        for record in records:
            meta = await store.peek(record.secret_id, now=clock.now())
            assert meta is not None
            assert meta.views_left == record.max_views
    finally:
        await store.aclose()


async def test_an_owned_create_fails_whole_when_the_owners_shard_is_down(
    redis_cluster: LocalCluster, cluster_url: str, clock: FrozenClock
) -> None:
    """A signed-in sender's secret is never created without its entry in the owner's list:
    with the shard holding that list stalled, the create fails and keeps nothing, and once
    the shard answers again a create is listed."""
    store = await RedisStore.open(cluster_url, retention=RETENTION)
    try:
        owner = "alice"
        owner_port = redis_cluster.owner(key_slot(owner.encode()))
        record = make_record(clock)
        while redis_cluster.owner(key_slot(record.secret_id.encode())) == owner_port:
            record = make_record(clock)
        record = msgspec.structs.replace(record, owner=owner, label="db")
        asleep = asyncio.create_task(asyncio.to_thread(redis_cluster.debug_sleep, owner_port, 3))
        await asyncio.to_thread(redis_cluster.wait_stalled, owner_port)

        with pytest.raises(StorageUnavailable):
            await store.create(record)
        await asleep

        assert await store.peek(record.secret_id, now=clock.now()) is None
        assert await store.owned_secrets(owner, now=clock.now(), limit=10) == []
        await store.create(record)
        listed = await store.owned_secrets(owner, now=clock.now(), limit=10)
        assert [(r.secret_id, r.label) for r in listed] == [(record.secret_id, "db")]
    finally:
        await store.aclose()


async def test_open_configures_a_cluster_client_without_retries(cluster_url: str) -> None:
    store = await RedisStore.open(cluster_url, retention=RETENTION)
    try:
        client: Any = store._client
        assert isinstance(client, RedisCluster)
        assert client.retry.get_retries() == 0
        assert len(client.get_primaries()) == 3
    finally:
        await store.aclose()


async def test_open_store_opens_a_cluster_url(cluster_url: str) -> None:
    store = await open_store(cluster_url, retention=timedelta(days=1))
    try:
        assert isinstance(store, RedisStore)
        await store.ping()
    finally:
        await store.aclose()


async def test_open_unreachable_cluster_fails_fast() -> None:
    started = time.monotonic()

    with pytest.raises(StorageUnavailable) as caught:
        await open_store("redis+cluster://:hunter2@127.0.0.1:1,127.0.0.1:2", retention=RETENTION)

    assert time.monotonic() - started < 3
    # Start-up names the store for the operator (never in an HTTP answer), password masked.
    message = str(caught.value)
    assert "redis+cluster://:***@127.0.0.1:1,127.0.0.1:2" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("method", list(_CALLS))
async def test_every_method_translates_cluster_errors(method: str, clock: FrozenClock) -> None:
    client = RedisCluster(host="127.0.0.1", port=1, socket_connect_timeout=1)
    store = RedisStore(client, prefix="x:", retention=RETENTION)
    try:
        with pytest.raises(StorageUnavailable):
            await _CALLS[method](store, clock)
    finally:
        await store.aclose()


def _parse(url: str) -> tuple[list[tuple[str, int]], dict[str, Any], str]:
    client_url, prefix = split_prefix(url)
    nodes, options = parse_cluster_url(client_url)
    return nodes, options, prefix


def test_cluster_url_names_nodes_options_and_prefix() -> None:
    nodes, options, prefix = _parse(
        "rediss+cluster://app:p%40ss@a:7000,[::1]:7001,b/0?prefix=t:&socket_timeout=3"
    )

    assert nodes == [("a", 7000), ("::1", 7001), ("b", 6379)]
    assert options == {"username": "app", "password": "p@ss", "socket_timeout": 3.0, "ssl": True}
    assert prefix == "t:"
    assert _parse("redis+cluster://h:7000") == ([("h", 7000)], {}, DEFAULT_PREFIX)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("redis+cluster://", "names no nodes", id="no-hosts"),
        pytest.param("redis+cluster://?prefix=x:", "names no nodes", id="only-a-query"),
        pytest.param("redis+cluster://u:pw@/0", "names no nodes", id="only-a-user"),
        pytest.param("redis+cluster://a:7000,,b:7000", "has no host", id="empty-entry"),
        pytest.param("redis+cluster://a:7000,", "has no host", id="trailing-comma"),
        pytest.param("redis+cluster://:7000", "has no host", id="port-without-host"),
        pytest.param("redis+cluster://a:x", "bad port", id="port-not-a-number"),
        pytest.param("redis+cluster://a:", "bad port", id="port-empty"),
        pytest.param("redis+cluster://a:0", "bad port", id="port-zero"),
        pytest.param("redis+cluster://a:65536", "bad port", id="port-too-big"),
        pytest.param("redis+cluster://a:-1", "bad port", id="port-negative"),
        pytest.param("redis+cluster://a:7000,[::1]x", "bad Redis Cluster node", id="v6-junk"),
        pytest.param("redis+cluster://::1:7000", "IPv6 address in brackets", id="v6-bare"),
        pytest.param("redis+cluster://a:7000/1", "only database 0", id="db-in-path"),
        pytest.param("redis+cluster://a:7000?db=2", "only database 0", id="db-in-query"),
        pytest.param("redis+cluster://a:7000/x", "only database 0", id="path-not-a-db"),
        pytest.param("redis+cluster://a:7000/0?db=1", "only database 0", id="db-in-both"),
        pytest.param("redis+cluster://a:7000?retry_on_timeout=yes", "retry", id="retry-option"),
        pytest.param("redis+cluster://a:7000?prefix={t}:", "must not contain {", id="tag-prefix"),
    ],
)
async def test_bad_cluster_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match="BURNLINK_STORE") as caught:
        await open_store(url, retention=RETENTION)

    assert message in str(caught.value)


async def test_cluster_url_errors_do_not_show_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        await open_store("rediss+cluster://app:hunter2@a:99999", retention=RETENTION)

    assert "hunter2" not in str(caught.value)


def test_redact_url_masks_a_cluster_password() -> None:
    assert redact_url("rediss+cluster://app:hunter2@a:7000,b:7000/0") == (
        "rediss+cluster://app:***@a:7000,b:7000/0"
    )


async def test_unknown_cluster_url_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="BURNLINK_STORE"):
        await open_store("redis+cluster://a:7000?no_such_option=1", retention=RETENTION)


# -- the outbox ------------------------------------------------------------------------------


async def test_a_secrets_outbox_records_go_to_a_stream_in_its_own_slot(
    cluster_store: RedisStore, redis_cluster: LocalCluster, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await cluster_store.create(record, events=[Recorded(None, b"created")])
    await cluster_store.record(None, [Recorded(None, b"alert")])
    stream = prefix + b"x:" + _tag(record.secret_id)

    keys = _keys_by_node(redis_cluster, prefix)

    assert keys[stream] == redis_cluster.owner(key_slot(record.secret_id.encode()))
    assert prefix + b"outbox" in keys
    pending = await cluster_store.pending_events(limit=10)
    assert [(p.ref.partition("|")[0], p.outbox) for p in pending] == [
        ("x:" + _tag(record.secret_id).decode(), b"created"),
        ("outbox", b"alert"),
    ]
    with redis_cluster.node(keys[prefix + b"index:outbox"]) as client:
        assert client.zrange(prefix + b"index:outbox", 0, -1) == [record.secret_id.encode()]


async def test_acknowledging_a_secrets_last_record_deletes_its_stream_and_index_entry(
    cluster_store: RedisStore, redis_cluster: LocalCluster, prefix: bytes, clock: FrozenClock
) -> None:
    record = make_record(clock, views=2)
    await cluster_store.create(record, events=[Recorded(None, b"created")])
    assert await cluster_store.consume(
        record.secret_id, ACCESS, now=clock.now(), events=[Recorded(None, b"viewed")]
    )

    first = await cluster_store.pending_events(limit=1)
    await cluster_store.ack_events([p.ref for p in first])
    assert prefix + b"index:outbox" in _keys_by_node(redis_cluster, prefix)
    rest = await cluster_store.pending_events(limit=10)
    assert [p.outbox for p in rest] == [b"viewed"]
    await cluster_store.ack_events([p.ref for p in rest])

    keys = _keys_by_node(redis_cluster, prefix)
    assert prefix + b"x:" + _tag(record.secret_id) not in keys
    assert prefix + b"index:outbox" not in keys
    assert await cluster_store.pending_events(limit=10) == []


async def test_a_stream_missing_from_the_outbox_index_is_found_by_the_rescan(
    cluster_url: str, redis_cluster: LocalCluster, prefix: bytes, clock: FrozenClock
) -> None:
    """An index entry lost (a failed ``ZADD``, a race with an ack) hides its stream only until
    the next rescan: the first ``pending_events`` of a store, then one in
    ``OUTBOX_RESCAN_EVERY``."""
    store = await RedisStore.open(cluster_url, retention=RETENTION)
    try:
        record = make_record(clock)
        await store.record(record.secret_id, [Recorded(None, b"lost")])
        index = prefix + b"index:outbox"
        with redis_cluster.node(_keys_by_node(redis_cluster, prefix)[index]) as client:
            client.delete(index)
        assert [p.outbox for p in await store.pending_events(limit=10)] == [b"lost"]  # first

        with redis_cluster.node(_keys_by_node(redis_cluster, prefix)[index]) as client:
            client.delete(index)
        for _ in range(OUTBOX_RESCAN_EVERY - 1):
            assert await store.pending_events(limit=10) == []
        assert [p.outbox for p in await store.pending_events(limit=10)] == [b"lost"]
    finally:
        await store.aclose()


async def test_an_index_entry_without_a_stream_is_dropped(
    cluster_store: RedisStore, redis_cluster: LocalCluster, prefix: bytes, clock: FrozenClock
) -> None:
    """A refused change still sends its ``ZADD NX`` (it goes with the script, not after it);
    the entry it leaves is dropped by the next ``pending_events``."""
    gone = new_secret_id()
    assert (
        await cluster_store.consume(gone, ACCESS, now=clock.now(), events=[Recorded(None, b"")])
        is None
    )
    assert prefix + b"index:outbox" in _keys_by_node(redis_cluster, prefix)

    assert await cluster_store.pending_events(limit=10) == []

    assert _keys_by_node(redis_cluster, prefix) == {}
