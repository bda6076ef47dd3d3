"""Script calls share one connection (``burnlink.store.redis.multiplexed``), on asyncio's loop
and on uvloop's (the one ``burnlink serve`` runs): every caller gets its own answer, whatever
else happens on the connection, and a stalled or lost connection fails its callers in time
and is replaced for the next."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import uvloop
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from burnlink.store.redis.client import client_for
from tests import services
from tests.redis_server import PrivateRedis, private_redis

ECHO = "return ARGV[1]"
FAIL_ON_BAD = "if ARGV[1] == 'bad' then return redis.error_reply('ERR bad one') end return ARGV[1]"

Runner = Callable[[Coroutine[Any, Any, Any]], Any]
RUNNERS: dict[str, Runner] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=sorted(RUNNERS))
def run(request: pytest.FixtureRequest) -> Runner:
    """Run a coroutine to its end on a new event loop of each kind."""
    return RUNNERS[request.param]


@pytest.fixture
def private(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path / "redis") as server:
        yield server


def _named(url: str) -> tuple[Redis, str]:
    """Our client for ``url``, its connections named uniquely, and that name."""
    name = f"burnlink-test-{uuid.uuid4().hex}"
    client, _ = client_for(f"{url}{'&' if '?' in url else '?'}client_name={name}")
    assert isinstance(client, Redis)
    return client, name


def _connections_named(url: str, name: str) -> int:
    """How many connections the server at ``url`` has open under ``name``."""
    with redis.Redis.from_url(url) as admin:
        return sum(1 for entry in admin.client_list() if entry["name"] == name)


def _load_scripts(url: str) -> None:
    """Have the server at ``url`` know the scripts, so that no call needs to load one (a
    load goes through the pool, and would show as a connection of its own)."""
    with redis.Redis.from_url(url) as admin:
        for script in (ECHO, FAIL_ON_BAD):
            admin.script_load(script)


def _wait_for_connections(url: str, name: str, count: int) -> int:
    """The connections named ``name`` once they are ``count`` (the server may take a moment
    to see a closed one go), or after a second."""
    deadline = time.monotonic() + 1.0
    while (seen := _connections_named(url, name)) != count and time.monotonic() < deadline:
        time.sleep(0.02)
    return seen


async def _answers(client: Redis, script: str, values: list[str]) -> list[object]:
    """Each value's answer from ``script``, all called at once; errors as answers."""
    call = client.register_script(script)
    return list(
        await asyncio.gather(*(call(args=[value]) for value in values), return_exceptions=True)
    )


def _assert_one_connection_answers_each_caller(url: str, callers: int, run: Any) -> None:
    """``callers`` script calls at once on our client for ``url``: each gets its own answer,
    all of them on one connection, and the pool is never used."""
    _load_scripts(url)
    client, name = _named(url)
    values = [f"caller {i}" for i in range(callers)]

    async def scenario() -> tuple[list[object], int]:
        try:
            answers = await _answers(client, ECHO, values)
            return answers, _connections_named(url, name)
        finally:
            await client.aclose()

    answers, connections = run(scenario())
    assert answers == [value.encode() for value in values]
    assert connections == 1
    assert not client.connection_pool._in_use_connections
    assert not client.connection_pool._available_connections


def test_concurrent_calls_each_get_their_own_answer_on_one_connection(run: Any) -> None:
    services.require("redis")
    _assert_one_connection_answers_each_caller(services.REDIS_URL, 500, run)


def test_an_error_answer_fails_only_its_own_caller(run: Any) -> None:
    services.require("redis")
    _load_scripts(services.REDIS_URL)
    client, name = _named(services.REDIS_URL)

    async def scenario() -> tuple[list[object], list[object], int]:
        try:
            first = await _answers(client, FAIL_ON_BAD, ["a", "bad", "c"])
            then = await _answers(client, FAIL_ON_BAD, ["d"])
            return first, then, _connections_named(services.REDIS_URL, name)
        finally:
            await client.aclose()

    first, then, connections = run(scenario())
    assert first[0] == b"a"
    assert first[2] == b"c"
    assert isinstance(first[1], ResponseError)
    assert "bad one" in str(first[1])
    assert then == [b"d"]
    assert connections == 1  # the error left the connection in use


def test_a_script_the_server_forgot_is_loaded_again(private: PrivateRedis, run: Any) -> None:
    _load_scripts(private.url)
    client, _ = _named(private.url)

    async def scenario() -> list[object]:
        try:
            before = await _answers(client, ECHO, ["before"])
            with redis.Redis.from_url(private.url) as admin:
                admin.script_flush()
            return before + await _answers(client, ECHO, ["after 1", "after 2"])
        finally:
            await client.aclose()

    assert run(scenario()) == [b"before", b"after 1", b"after 2"]


def test_a_cancelled_caller_leaves_every_other_answer_with_its_caller(
    private: PrivateRedis, run: Any
) -> None:
    _load_scripts(private.url)
    client, _ = _named(private.url)

    async def scenario() -> tuple[object, object, list[object]]:
        call = client.register_script(ECHO)
        try:
            await call(args=["open"])  # the connection is open before Redis freezes
            private.signal(signal.SIGSTOP)
            try:
                first = asyncio.ensure_future(call(args=["first"]))
                cancelled = asyncio.ensure_future(call(args=["cancelled"]))
                last = asyncio.ensure_future(call(args=["last"]))
                await asyncio.sleep(0.1)  # all three written, none answered
                cancelled.cancel()
            finally:
                private.signal(signal.SIGCONT)
            later = await _answers(client, ECHO, ["later"])
            return await first, await last, later
        finally:
            await client.aclose()

    assert run(scenario()) == (b"first", b"last", [b"later"])


def test_a_frozen_server_fails_the_waiting_calls_in_time_and_the_next_call_reconnects(
    private: PrivateRedis, run: Any
) -> None:
    _load_scripts(private.url)
    client, name = _named(f"{private.url}?socket_timeout=0.3")

    async def scenario() -> tuple[list[object], float, list[object], int]:
        try:
            await _answers(client, ECHO, ["open"])
            private.signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                stalled = await _answers(client, ECHO, ["late 1", "late 2"])
                waited = time.monotonic() - started
            finally:
                private.signal(signal.SIGCONT)
            # The frozen connection's late answers must never reach the callers after it.
            after = await _answers(client, ECHO, ["after 1", "after 2"])
            return stalled, waited, after, _wait_for_connections(private.url, name, 1)
        finally:
            await client.aclose()

    stalled, waited, after, connections = run(scenario())
    assert [type(error) for error in stalled] == [RedisTimeoutError, RedisTimeoutError]
    assert 0.3 <= waited < 1.0  # the URL's socket_timeout, not the default 1.5 s
    assert after == [b"after 1", b"after 2"]
    assert connections == 1


def test_a_connection_lost_fails_its_waiting_calls_at_once_and_the_next_call_reconnects(
    private: PrivateRedis, run: Any
) -> None:
    _load_scripts(private.url)
    client, _ = _named(private.url)

    async def scenario() -> tuple[list[object], float, list[object]]:
        try:
            await _answers(client, ECHO, ["open"])
            private.signal(signal.SIGSTOP)
            waiting = asyncio.ensure_future(_answers(client, ECHO, ["lost 1", "lost 2"]))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            # Killed while frozen (never woken to answer): the kernel closes its sockets.
            private.signal(signal.SIGKILL)
            lost = await waiting
            waited = time.monotonic() - started
            assert private.process is not None
            private.process.wait(timeout=10)
            private.start()
            _load_scripts(private.url)  # a restarted Redis knows no scripts
            return lost, waited, await _answers(client, ECHO, ["after"])
        finally:
            await client.aclose()

    lost, waited, after = run(scenario())
    assert [type(error) for error in lost] == [RedisConnectionError, RedisConnectionError]
    assert waited < 1.0  # well before the command timeout (1.5 s)
    assert after == [b"after"]


def test_calls_over_tls_share_one_connection(tmp_path: Path, run: Any) -> None:
    with private_redis(tmp_path / "tls", tls=True) as server:
        _assert_one_connection_answers_each_caller(server.url, 200, run)


def test_the_first_caller_cancelled_while_the_connection_opens_leaves_it_opening_for_the_rest(
    private: PrivateRedis, run: Any
) -> None:
    _load_scripts(private.url)
    client, _ = _named(private.url)

    async def scenario() -> tuple[bool, list[object]]:
        call = client.register_script(ECHO)
        try:
            private.signal(signal.SIGSTOP)  # the handshake waits for Redis's answers
            try:
                first = asyncio.ensure_future(call(args=["first"]))
                others = asyncio.ensure_future(_answers(client, ECHO, ["second", "third"]))
                await asyncio.sleep(0.1)
                first.cancel()
            finally:
                private.signal(signal.SIGCONT)
            answers = await others
            with contextlib.suppress(asyncio.CancelledError):
                await first
            return first.cancelled(), answers
        finally:
            await client.aclose()

    assert run(scenario()) == (True, [b"second", b"third"])
