"""The Redis client burnlink sets up: commands packed by hiredis, byte for byte redis-py's,
and writes bounded by the command timeout."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from burnlink.store.redis.client import LeanConnection, LeanRedis, client_for, client_options
from tests import services

pytestmark = pytest.mark.anyio

COMMANDS = [
    ("GET", b"k"),
    ("SET", b"key", b"a\r\nvalue with CRLF and \x00", "EX", 60),
    ("EVALSHA", b"0" * 40, 2, b"k1", b"k2", -1, 0, 3.25, "naïve ☃"),
    ("SCRIPT LOAD", "return 1"),
    (b"CLIENT SETNAME", b"x"),
    ("HSET", b"h", b"big", b"x" * 100_000),
    ("SET", bytearray(b"k"), memoryview(b"v"), "PX", 0.1, 1e20, 2**70),
]


def _single(url: str) -> Redis:
    made, _ = client_for(url)
    assert isinstance(made, Redis)
    return made


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_packed_exactly_as_redis_py_packs(command: tuple[Any, ...]) -> None:
    ours = _single("redis://127.0.0.1:6379/0").connection_pool.connection_class()
    assert isinstance(ours, LeanConnection)
    theirs = Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


def test_an_argument_hiredis_cannot_pack_is_a_data_error() -> None:
    with pytest.raises(DataError):
        _single("redis://127.0.0.1:6379/0").connection_pool.connection_class().pack_command(
            "SET", b"k", True
        )


def test_tls_keeps_its_connection_class() -> None:
    cls = _single("rediss://127.0.0.1:6379/0").connection_pool.connection_class
    assert LeanConnection in cls.__mro__
    assert SSLConnection in cls.__mro__


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    services.require("redis")
    made, _ = client_for(services.REDIS_URL)
    assert isinstance(made, Redis)
    try:
        yield made
    finally:
        await made.aclose()


async def test_values_round_trip_through_a_real_server(client: Redis) -> None:
    key = f"burnlink-test-packing-{uuid.uuid4().hex}".encode()
    value = bytes(range(256)) * 40  # past redis-py's 6,000-byte chunking, every byte value
    try:
        async with client.pipeline(transaction=False) as pipe:
            await pipe.set(key, value, ex=60)
            await pipe.get(key)
            stored, read = await pipe.execute()
        assert stored is True
        assert read == value
        script = "return {ARGV[1], tonumber(ARGV[2]) + 1, KEYS[1]}"
        assert await client.eval(script, 1, key, "naïve ☃", 41) == [
            "naïve ☃".encode(),
            42,
            key,
        ]
    finally:
        await client.delete(key)


async def _connected_to_a_peer_that_never_reads(
    seconds: float,
) -> tuple[Any, socket.socket]:
    """Our connection class, its stream the end of a socket pair whose other end never reads
    (as a Redis that hangs would)."""
    connection = _single("redis://127.0.0.1:6379/0").connection_pool.connection_class(
        socket_timeout=seconds
    )
    ours, peer = socket.socketpair()
    connection._reader, connection._writer = await asyncio.open_connection(sock=ours)
    return connection, peer


async def test_a_write_that_cannot_finish_times_out_and_drops_the_connection() -> None:
    connection, peer = await _connected_to_a_peer_that_never_reads(0.2)
    started = time.monotonic()
    try:
        with pytest.raises(RedisTimeoutError, match="writing"):
            await connection.send_packed_command([b"x" * (32 << 20)], check_health=False)
        assert time.monotonic() - started < 5
        assert not connection.is_connected
    finally:
        peer.close()


async def test_a_write_to_a_closed_peer_is_a_connection_error() -> None:
    connection, peer = await _connected_to_a_peer_that_never_reads(1.0)
    peer.close()

    async def write_until_refused() -> None:
        for _ in range(100):  # the first writes may still land in the socket's buffer
            await connection.send_packed_command([b"x" * 65536], check_health=False)

    with pytest.raises(RedisConnectionError):
        await write_until_refused()
    assert not connection.is_connected


async def test_an_error_answer_is_raised_and_its_connection_kept(client: Redis) -> None:
    key = f"burnlink-test-error-{uuid.uuid4().hex}".encode()
    pool = client.connection_pool
    try:
        await client.set(key, b"not a number", ex=60)
        with pytest.raises(ResponseError):
            await client.incr(key)
        assert len(pool._available_connections) == 1
        assert not pool._in_use_connections
        assert pool._available_connections[0].is_connected
        assert await client.get(key) == b"not a number"
    finally:
        await client.delete(key)


async def _after_the_server_closes_its_connection(client: Redis) -> list[object]:
    """What two commands give after the server drops the client's one connection."""
    key = f"burnlink-test-killed-{uuid.uuid4().hex}".encode()
    try:
        await client.set(key, b"1", ex=60)
        own_id = await client.client_id()
        killer, _ = client_for(services.REDIS_URL)
        try:
            assert await killer.client_kill_filter(_id=str(own_id)) == 1
        finally:
            await killer.aclose()
        await asyncio.sleep(0.05)
        seen: list[object] = []
        for _ in range(2):
            try:
                seen.append(await client.get(key))
            except RedisConnectionError as exc:
                seen.append(type(exc))
        return seen
    finally:
        await client.delete(key)
        await client.aclose()


async def test_a_connection_the_server_closed_fails_one_command_as_redis_py_does() -> None:
    services.require("redis")
    ours, _ = client_for(services.REDIS_URL)
    assert isinstance(ours, Redis)
    plain = Redis.from_url(services.REDIS_URL.partition("?")[0], **client_options())
    # No retries (``client_options``): the store reports the failed command, the next one
    # reconnects.
    expected = [RedisConnectionError, b"1"]
    assert await _after_the_server_closes_its_connection(plain) == expected
    assert await _after_the_server_closes_its_connection(ours) == expected


async def test_a_server_that_never_answers_times_out_and_leaves_no_connection_in_use() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    async def accept_and_stay_silent() -> None:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        while True:
            peer, _ = await loop.sock_accept(listener)
            accepted.append(peer)

    port = listener.getsockname()[1]
    silent, _ = client_for(f"redis://127.0.0.1:{port}/0?socket_timeout=0.2")
    assert isinstance(silent, Redis)
    acceptor = asyncio.create_task(accept_and_stay_silent())
    try:
        for _ in range(2):
            with pytest.raises(RedisTimeoutError):
                await silent.get(b"k")
            assert not silent.connection_pool._in_use_connections
            assert not any(c.is_connected for c in silent.connection_pool._available_connections)
    finally:
        acceptor.cancel()
        await silent.aclose()
        for peer in accepted:
            peer.close()
        listener.close()


async def test_a_write_after_the_peer_caught_up_goes_out_at_once() -> None:
    # A write too big for the socket pauses the stream until the peer reads it; once it has,
    # a small write (which the socket takes whole) must still go out and not wait for a
    # stream that stays paused.
    connection = _single("redis://127.0.0.1:6379/0").connection_pool.connection_class(
        socket_timeout=2.0
    )
    ours, peer = socket.socketpair()
    connection._reader, connection._writer = await asyncio.open_connection(sock=ours)
    received = bytearray()

    def read_all() -> None:
        while chunk := peer.recv(1 << 20):
            received.extend(chunk)

    reader = asyncio.get_running_loop().run_in_executor(None, read_all)
    try:
        await connection.send_packed_command([b"x" * (8 << 20)], check_health=False)
        await asyncio.wait_for(
            connection.send_packed_command([b"tail"], check_health=False), timeout=1.0
        )
        assert connection.is_connected
        await connection.disconnect()
        await reader
        assert len(received) == (8 << 20) + 4
        assert received.endswith(b"tail")
    finally:
        peer.close()


async def test_execute_raw_returns_the_reply_without_redis_pys_callback(client: Redis) -> None:
    key = f"burnlink-test-raw-{uuid.uuid4().hex}".encode()
    try:
        entry_id = await client.xadd(key, {b"r": b"record", b"t": b"7"})
        assert isinstance(client, LeanRedis)

        reply = await client.execute_raw("XRANGE", key, "-", "+", "COUNT", 5)

        assert reply == [[entry_id, [b"r", b"record", b"t", b"7"]]]
        assert await client.xrange(key) == [(entry_id, {b"r": b"record", b"t": b"7"})]
    finally:
        await client.delete(key)


async def test_execute_raw_refuses_a_single_connection_client() -> None:
    single = LeanRedis(single_connection_client=True)
    try:
        with pytest.raises(TypeError, match="pooled client"):
            await single.execute_raw("PING")
    finally:
        await single.aclose()
