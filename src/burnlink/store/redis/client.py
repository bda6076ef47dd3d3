"""Reading a Redis store URL and setting up its client: ``redis://``, ``rediss://``, and
for a Redis Cluster ``redis+cluster://`` and ``rediss+cluster://``.

The ``prefix`` query parameter names the key prefix (default ``burnlink:``) and is removed
before the URL reaches redis-py. A ``redis+cluster://`` URL lists one or more nodes,
comma-separated, as ``host:port`` or ``[v6 address]:port`` (port 6379 when left out);
redis-py's ``RedisCluster`` learns the rest of the cluster from the first node that answers.
The user, password and query options are read as redis-py reads a ``redis://`` URL; the path
may only be empty or ``/0``, as a cluster has only database 0, and no option naming a retry is
accepted. Errors name the bad part of the URL, never its password. ``translated`` turns what
the client raises into ``StorageUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import unquote, unquote_plus

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, KeyT

from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.store.redis.multiplexed import MultiplexedConnection

DEFAULT_PREFIX: Final = "burnlink:"
CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
DEFAULT_PORT: Final = 6379
CONNECT_TIMEOUT_SECONDS: Final = 2.0
COMMAND_TIMEOUT_SECONDS: Final = 1.5


def translated() -> Translated:
    """Turn driver and socket errors into ``StorageUnavailable`` (messages carry no data)."""
    return _TRANSLATED


class Translated:
    """``translated``'s context manager: one stateless instance, not a ``contextmanager``
    generator, as it wraps every store call."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, RedisError | RedisClusterException | OSError):
            raise StorageUnavailable() from error


_TRANSLATED: Final = Translated()


def client_for(url: str) -> tuple[Redis | RedisCluster, str]:
    """The client for a store URL and the key prefix it names (not yet connected).

    Raises ``ConfigError`` for a malformed URL or option.
    """
    client_url, prefix = split_prefix(url)
    try:
        if client_url.partition("://")[0].lower() in CLUSTER_SCHEMES:
            return _cluster_client(client_url), prefix
        client = LeanRedis.from_pool(LeanConnectionPool.from_url(client_url, **client_options()))
    except (ValueError, TypeError, RedisClusterException) as exc:
        raise ConfigError("BURNLINK_STORE: invalid Redis URL or URL option") from exc
    pool = client.connection_pool
    pool.connection_class = type(
        pool.connection_class.__name__, (LeanConnection, pool.connection_class), {}
    )
    return client, prefix


class LeanRedis(Redis):
    """A single node's client whose commands skip what burnlink's settings make idle.

    redis-py 8 wraps each command in its retry machinery (burnlink allows no retries, see
    ``client_options``), records its duration for OpenTelemetry (not set up here) and looks
    for an ``HIMPORT SET`` among the arguments (burnlink sends none): together about a
    third of what a command costs the client. ``execute_command`` here sends and reads as
    redis-py does and, on an error redis-py would retry on, drops the connection as its
    retry does before giving up, so the errors and the pool's state are the same.
    """

    _multiplexed: MultiplexedConnection | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Send one command on a pooled connection and return its parsed answer; a script
        call (``EVALSHA``) goes on the connection all script calls share instead."""
        if self.single_connection_client or self.connection is not None:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        if args[0] == "EVALSHA":
            multiplexed = self._multiplexed
            if multiplexed is None:
                pool = self.connection_pool
                timeout = pool.connection_kwargs.get("socket_timeout") or COMMAND_TIMEOUT_SECONDS
                multiplexed = self._multiplexed = MultiplexedConnection(pool, timeout=timeout)
            return await multiplexed.call(*args)
        pool = self.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_command(*args)
            return await self.parse_response(conn, args[0], **options)
        except conn.retry._supported_errors as error:
            # What redis-py's retry does before it gives up, burnlink allowing no retries.
            await conn.disconnect(error=error, failure_count=1)
            raise
        finally:
            await pool.release(conn)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the shared script connection too."""
        if self._multiplexed is not None:
            self._multiplexed.close()
            self._multiplexed = None
        await super().aclose(close_connection_pool)

    async def execute_raw(self, *args: Any) -> Any:
        """Send one command and return its reply as hiredis reads it (lists of bytes),
        without the response callback redis-py would run on it (``XRANGE``'s builds a tuple
        and a dict in Python for each entry). Errors are ``execute_command``'s."""
        if self.single_connection_client or self.connection is not None:
            raise TypeError("execute_raw needs a pooled client (every one client_for makes)")
        pool = self.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_command(*args)
            return await conn.read_response()
        except conn.retry._supported_errors as error:
            await conn.disconnect(error=error, failure_count=1)
            raise
        finally:
            await pool.release(conn)


class LeanScript(AsyncScript):
    """A Lua script registered with a client, called as redis-py's ``AsyncScript`` calls it
    (``EVALSHA``, and on ``NOSCRIPT`` ``SCRIPT LOAD`` and ``EVALSHA`` again) but sending the
    command itself: redis-py's call also imports its pipeline class, copies the keys and
    arguments twice and passes through two more methods, on every call. A call with another
    ``client`` (a pipeline) is left to redis-py."""

    async def __call__(
        self,
        keys: Sequence[KeyT] | None = None,
        args: Iterable[EncodableT] | None = None,
        client: Redis | RedisCluster | None = None,
    ) -> Any:
        """Run the script on its client with ``keys`` and ``args``; return its answer."""
        if client is not None:
            return await super().__call__(keys, args, client)
        keys = keys or ()
        args = args or ()
        target = self.registered_client
        try:
            return await target.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # The server lost its scripts (a restart, SCRIPT FLUSH, another node).
            self.sha = await target.script_load(self.script)
            return await target.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


class LeanConnectionPool(ConnectionPool):
    """A single node's pool without redis-py 8's per-command bookkeeping (OpenTelemetry
    connection counts and the release event that re-authenticating credential providers
    listen for; burnlink uses neither). A connection is checked as redis-py checks it
    (connected, nothing left unread) before each use."""

    async def get_connection(self, *_: Any, **__: Any) -> Any:
        """A connected connection, taken from the pool or made."""
        # No lock: nothing between taking the connection and marking it used awaits.
        connection = self.get_available_connection()  # type: ignore[no-untyped-call]
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: Any) -> None:
        """Put ``connection`` back for the next command."""
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():
            await connection.disconnect()
        self._available_connections.append(connection)


class LeanConnection:
    """Mixed into a single node's connection class to cut what each command costs the
    client, with the same bytes on the wire and the same errors:

    - commands are packed by hiredis's packer (C), as redis-py's synchronous client does,
      instead of the asyncio client's Python loop over every argument (a script call has a
      few dozen);
    - a write is bounded by ``asyncio.timeout`` rather than ``asyncio.wait_for``, which on
      Python 3.11 wraps every command's write in a task of its own; and only when the socket
      did not take the whole command at once, the one case where the write can wait.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        """``args`` as one RESP command; a first argument holding spaces (``SCRIPT LOAD``)
        is split into words, as redis-py does."""
        first = args[0]
        if isinstance(first, str):
            first = first.encode()
        if b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass
        # Rare: a bytearray or memoryview (redis-py takes them; hiredis wants bytes).
        args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from None

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        """Send ``command`` as redis-py 8.1's ``send_packed_command`` does (connect if need
        be, then write, disconnecting on any failure), with the write bounded by
        ``asyncio.timeout``."""
        this = cast("Connection", self)
        if not this.is_connected:
            await this.connect_check_health(check_health=False)
        if check_health:
            await this.check_health()  # type: ignore[no-untyped-call]
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        try:
            writer = this._writer  # redis-py's own stream, written as redis-py writes it
            if writer is None:  # connect_check_health would have raised
                raise RedisConnectionError("Not connected")
            writer.writelines(command)
            if writer.transport.get_write_buffer_size():
                # The socket took only part: wait for the rest, within the timeout.
                async with asyncio.timeout(this.socket_timeout):
                    await writer.drain()
            else:
                # All of it went to the socket, so the stream is not paused and ``drain``
                # returns at once (raising what the connection met): no timer to set.
                await writer.drain()
        except TimeoutError:  # before OSError, of which it is a subclass
            await this.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await this.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket: {exc.strerror}") from exc
        except BaseException:
            # Cancelled mid-write: what was sent is unknown, so the connection cannot be reused.
            await this.disconnect(nowait=True)
            raise


def split_prefix(url: str) -> tuple[str, str]:
    """``url`` without its ``prefix`` query parameters, and the key prefix they named."""
    base, question, query = url.partition("?")
    prefix = DEFAULT_PREFIX
    kept: list[str] = []
    for part in query.split("&") if question else []:
        name, _, value = part.partition("=")
        if unquote_plus(name) == "prefix":
            prefix = unquote_plus(value)
        elif part:
            kept.append(part)
    if "{" in prefix or "}" in prefix:
        raise ConfigError("BURNLINK_STORE: the Redis key prefix must not contain { or }")
    return (f"{base}?{'&'.join(kept)}" if kept else base), prefix


def client_options() -> dict[str, Any]:
    """What every client gets: short timeouts, raw bytes, and no retries (see
    ``burnlink.store.redis.store``, Retries)."""
    return {
        "socket_timeout": COMMAND_TIMEOUT_SECONDS,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": False,
    }


_CLUSTER_EXAMPLE: Final = "redis+cluster://host:port,host:port"


def _parse_node(entry: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` from a cluster URL's node list."""
    if entry.startswith("["):
        host, bracket, tail = entry[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise ConfigError(
                f"BURNLINK_STORE: bad Redis Cluster node {entry!r}; use [v6 address]:port"
            )
        has_port, port_text = bool(tail), tail[1:]
    else:
        host, colon, port_text = entry.partition(":")
        has_port = bool(colon)
        if ":" in port_text:
            raise ConfigError(
                f"BURNLINK_STORE: bad Redis Cluster node {entry!r}; "
                "put an IPv6 address in brackets, as [::1]:6379"
            )
    if not host:
        raise ConfigError(
            f"BURNLINK_STORE: a Redis Cluster node has no host ({entry!r}); "
            f"list nodes as {_CLUSTER_EXAMPLE}"
        )
    if not has_port:
        return host, DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ConfigError(
            f"BURNLINK_STORE: bad port in Redis Cluster node {entry!r}; "
            "use host:port with a port from 1 to 65535"
        )
    return host, int(port_text)


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The startup nodes of a ``redis+cluster://`` URL (without ``prefix``) and the client
    options of its user, password and query, parsed as redis-py parses a ``redis://`` URL."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not hosts:
        raise ConfigError(
            f"BURNLINK_STORE: a Redis Cluster URL names no nodes; use {_CLUSTER_EXAMPLE}"
        )
    nodes = [_parse_node(entry) for entry in hosts.split(",")]
    tls = scheme.lower() == "rediss+cluster"
    options: dict[str, Any] = dict(
        parse_url(f"{'rediss' if tls else 'redis'}://{userinfo}{at}node/?{query}")
    )
    for name in ("host", "port", "connection_class"):
        options.pop(name, None)
    for db in (unquote(path) or "0", str(options.pop("db", 0))):
        if db != "0":
            raise ConfigError(
                f"BURNLINK_STORE: a Redis Cluster has only database 0, not {db!r}; "
                "end the URL with /0 or no path, and give no db option"
            )
    retries = sorted(name for name in options if "retry" in name)
    if retries:
        raise ConfigError(
            f"BURNLINK_STORE: the Redis option {retries[0]} is not accepted: burnlink never "
            "lets the client retry a command (see docs/storage.md)"
        )
    if tls:
        options["ssl"] = True
    return nodes, options


def _cluster_client(url: str) -> RedisCluster:
    """A cluster client for a ``redis+cluster://`` URL (without ``prefix``)."""
    nodes, options = parse_cluster_url(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        **{**client_options(), **options},
    )
