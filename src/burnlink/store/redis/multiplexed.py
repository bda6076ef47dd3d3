"""One connection that carries the script calls of every task in the process.

With a pool, each of the requests in flight sends its script on a connection of its own: a
write to the socket for each, a read for each answer, and Redis, too, reads and writes once
per command. Redis answers one connection's commands in the order they came, so one
connection can carry them all instead (as ``redis-rs``'s ``MultiplexedConnection`` or
coredis's pool do): the commands that tasks give during one turn of the event loop go out in
one write, and each answer that comes back is handed to the oldest caller still waiting.

The connection is made, authenticated and set up (``SELECT``, TLS, ``CLIENT SETINFO``) by
redis-py's own connection class with the pool's options; this module then reads and writes
its socket itself. Nothing is ever sent twice:

- a command that has no answer within ``timeout`` seconds, or a connection that fails or
  closes, fails every command waiting on it (``redis.exceptions.TimeoutError`` or
  ``ConnectionError``), and the next command opens a new connection;
- a caller cancelled after its command was written leaves the answer to be read and
  dropped, so the connection stays usable (a pooled one would have to be closed).

Blocking commands, transactions and pipelines never go through it (``LeanRedis`` sends only
``EVALSHA`` here): one slow command would hold back every command behind it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["MultiplexedConnection"]


def _error(message: str) -> Exception:
    """The exception redis-py raises for an error answer (``NoScriptError`` for
    ``NOSCRIPT``, which makes redis-py's ``Script`` load the script and call again)."""
    return cast("Exception", BaseParser.parse_error(message))  # type: ignore[no-untyped-call]


class _Protocol(asyncio.Protocol):
    """Hands what the socket reads, and its loss, to the connection."""

    __slots__ = ("_owner",)

    def __init__(self, owner: MultiplexedConnection) -> None:
        self._owner = owner

    def data_received(self, data: bytes) -> None:
        self._owner._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._lost(self, exc)


class MultiplexedConnection:
    """A lazily opened connection shared by every caller of ``call`` on one event loop."""

    def __init__(self, pool: ConnectionPool, *, timeout: float) -> None:
        """Connections are made as ``pool`` makes them (its class and options)."""
        self._pool = pool
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._stream: asyncio.StreamWriter | None = None
        self._reader: Any = None
        self._opening: asyncio.Future[None] | None = None
        self._outgoing: list[bytes] = []
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._flush_handle: asyncio.Handle | None = None
        self._watch_handle: asyncio.TimerHandle | None = None

    async def call(self, *args: Any) -> Any:
        """Send one command (``args`` as ``hiredis.pack_command`` takes them) and return its
        answer as hiredis reads it; an error answer is raised as redis-py would raise it."""
        if self._transport is None:
            await self._open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._outgoing.append(hiredis.pack_command(args))
        self._waiting.append((future, loop.time() + self._timeout))
        if self._flush_handle is None:
            self._flush_handle = loop.call_soon(self._flush)
        if self._watch_handle is None:
            self._watch_handle = loop.call_at(loop.time() + self._timeout, self._watch)
        return await future

    async def _open(self) -> None:
        """Open the connection, or wait for the opening already under way. The opening is a
        task of its own, so that a caller cancelled meanwhile does not cancel it for the
        others."""
        opening = self._opening
        if opening is None:
            opening = self._opening = asyncio.ensure_future(self._connect())
            opening.add_done_callback(self._opened)
        await asyncio.shield(opening)

    def _opened(self, opening: asyncio.Future[None]) -> None:
        self._opening = None
        if not opening.cancelled():
            opening.exception()  # retrieved: a failure nobody waited for is not logged

    async def _connect(self) -> None:
        raw = self._pool.connection_class(**self._pool.connection_kwargs)
        await raw.connect()  # type: ignore[no-untyped-call]
        # The socket is this module's from here on. redis-py's connection lets go of its
        # streams, so that it neither reads the socket nor closes it when collected; the
        # writer stream is kept until the socket is closed (collected while the socket is
        # open, it would close it).
        stream, raw._reader, raw._writer = raw._writer, None, None
        if stream is None:  # connect() returns only once it has its streams
            raise RedisConnectionError("Not connected")
        transport = cast("asyncio.Transport", stream.transport)
        protocol = _Protocol(self)
        transport.set_protocol(protocol)
        self._stream, self._transport, self._protocol = stream, transport, protocol
        self._reader = hiredis.Reader()

    def _flush(self) -> None:
        self._flush_handle = None
        outgoing, self._outgoing = self._outgoing, []
        transport = self._transport
        if transport is None or transport.is_closing():
            self._fail(RedisConnectionError("Connection closed by server."))
            return
        transport.writelines(outgoing)

    def _received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError:
                self._abort(RedisConnectionError("Redis sent an answer that is not RESP."))
                return
            if reply is False:
                return
            if not waiting:
                self._abort(RedisConnectionError("Redis answered a command never sent."))
                return
            future, _ = waiting.popleft()
            if future.done():
                continue  # its caller was cancelled
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_error(str(reply)))
            else:
                future.set_result(reply)

    def _watch(self) -> None:
        """Fail everything if the oldest command has waited past its time; else look again
        when it will have."""
        self._watch_handle = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        _, deadline = self._waiting[0]
        if loop.time() >= deadline:
            self._abort(RedisTimeoutError("Timeout reading from Redis"))
            return
        self._watch_handle = loop.call_at(deadline, self._watch)

    def _lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._transport = self._protocol = self._stream = None
        self._fail(RedisConnectionError("Connection closed by server."))

    def _abort(self, error: Exception) -> None:
        transport = self._transport
        if transport is not None:
            transport.abort()
        self._transport = self._protocol = self._stream = None
        self._fail(error)

    def _fail(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, deque()
        self._outgoing = []
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        """Close the connection; commands still waiting fail."""
        self._abort(RedisConnectionError("Connection closed."))
        for handle in (self._flush_handle, self._watch_handle):
            if handle is not None:
                handle.cancel()
        self._flush_handle = self._watch_handle = None
