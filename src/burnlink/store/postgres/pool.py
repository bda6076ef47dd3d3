"""Opening a PostgreSQL connection pool the way the store and the audit log both need it.

Each connects once to create or migrate its tables, then opens a small pool of autocommit
connections; each decides how a driver error reads (``unavailable``) so that its log line
names only the error's type and SQLSTATE, never its message (which may quote values).

A connection is checked with a round trip (one empty query) before it is handed out only if it
has been idle in the pool for more than ``CHECK_AFTER_IDLE`` seconds (as HikariCP does), or if
its socket has something to read although no query is running: what a server sends when it
ends a session (a restart, ``pg_terminate_backend``, an idle timeout) followed by the close.
Under load the same few connections go round at once, and a round trip on every checkout cost
about a fifth of a PostgreSQL reveal's CPU; the socket test is one system call. A connection
that dies silently (a network cut) and is taken within the window fails its one call with
``StorageUnavailable`` and is then discarded.

The store's pool plans its statements once per connection (its ``configure`` sets
``plan_cache_mode = force_generic_plan``): its statements look rows up by key, so a plan made
for one call's values is as good for the next, and under PostgreSQL's default (``auto``) the
server planned its long statements anew on every call, which was about half of the database
server's CPU per create and per reveal. Statements whose best plan does depend on their values
(the sweep's ranges over expiry times) run inside ``planned_per_call``.
"""

from __future__ import annotations

import select
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from burnlink.errors import ConfigError, StorageUnavailable

__all__ = ["Connection", "Pool", "open_pool", "planned_per_call", "pooled"]

Connection = psycopg.AsyncConnection[TupleRow]
Pool = AsyncConnectionPool[Connection]
Translate = Callable[[psycopg.Error], StorageUnavailable]

CHECK_AFTER_IDLE: Final = 0.5
"""Seconds a pooled connection may sit idle and still be handed out without a check."""

_PLANNED_PER_CALL: Final = "SET LOCAL plan_cache_mode = force_custom_plan"


_RETURNED: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()
"""When each connection was last given back (``pooled``)."""


class _IdleCheck:
    """The pool's ``check`` callback: check a connection on the way out if it has been back
    longer than ``after`` seconds, or if the server has written to it since.

    The time a connection comes back is noted by ``pooled`` as it gives it back, not by a
    ``reset`` callback: with one, psycopg_pool hands every returned connection to a worker
    task, which cost about as much CPU as the call's own round trip."""

    def __init__(self, after: float) -> None:
        self._after = after

    async def check(self, conn: Connection) -> None:
        returned = _RETURNED.get(conn)
        stale = returned is None or time.monotonic() - returned > self._after
        if stale or _has_unread_input(conn):
            await AsyncConnectionPool.check_connection(conn)


def _has_unread_input(conn: Connection) -> bool:
    """Whether an idle connection's socket is readable: a message or the close is waiting."""
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True  # no usable socket: let the real check say what is wrong
    return bool(readable)


def connect_kwargs(url: str, *, setting: str, connect_timeout: int) -> dict[str, Any]:
    """Connection options: autocommit, and ``connect_timeout`` unless the URL sets one.

    Raises ``ConfigError`` naming ``setting`` when ``url`` cannot be parsed.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigError(f"{setting}: not a valid PostgreSQL URL") from None
    kwargs: dict[str, Any] = {"autocommit": True}
    if not params.get("connect_timeout"):
        kwargs["connect_timeout"] = connect_timeout
    return kwargs


async def open_pool(
    url: str,
    *,
    name: str,
    setting: str,
    prepare: Callable[[Connection], Awaitable[None]],
    unavailable: Translate,
    connect_timeout: int,
    min_size: int,
    max_size: int,
    checkout_timeout: float,
    configure: Callable[[Connection], Awaitable[None]] | None = None,
) -> Pool:
    """Run ``prepare`` on a first connection, then open a pool of ``min_size`` to
    ``max_size`` connections, each set up by ``configure`` when it opens and checked before
    it is handed out after ``CHECK_AFTER_IDLE`` seconds idle.

    Raises ``ConfigError`` for a bad URL and what ``unavailable`` makes of a driver error
    (within about ``connect_timeout`` + ``checkout_timeout`` seconds when the server is
    away). An operation waits ``checkout_timeout`` seconds at most for a pooled connection.
    """
    kwargs = connect_kwargs(url, setting=setting, connect_timeout=connect_timeout)
    try:
        conn = await psycopg.AsyncConnection.connect(url, **kwargs)
        async with conn:
            await prepare(conn)
    except psycopg.Error as exc:
        # Chained: open_store names the cause (refused, no such database, bad password).
        raise unavailable(exc) from exc
    idle = _IdleCheck(CHECK_AFTER_IDLE)
    pool: Pool = AsyncConnectionPool(
        url,
        kwargs=kwargs,
        min_size=min_size,
        max_size=max_size,
        timeout=checkout_timeout,
        check=idle.check,
        configure=configure,
        name=name,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=checkout_timeout)
    except psycopg.Error as exc:
        await pool.close()
        raise unavailable(exc) from exc
    except BaseException:  # cancelled while waiting: do not leak the pool's workers
        await pool.close()
        raise
    return pool


@asynccontextmanager
async def planned_per_call(conn: Connection) -> AsyncIterator[None]:
    """A transaction on ``conn`` whose statements are planned for the values of each call:
    for statements whose best plan depends on them, such as a range over expiry times that
    matches nothing on one call and half the table on another."""
    async with conn.transaction():
        await conn.execute(_PLANNED_PER_CALL)
        yield


@asynccontextmanager
async def pooled(pool: Pool, unavailable: Translate) -> AsyncIterator[Connection]:
    """A connection from ``pool``; driver errors leave as what ``unavailable`` makes of them.

    Taken and given back with ``getconn`` and ``putconn``, not the pool's ``connection()``,
    whose context manager also commits or rolls back on the way out: the connections are in
    autocommit mode, and the pool itself rolls back, or replaces, one given back inside a
    transaction or broken. About 2.5 % fewer instructions per request (``python -m
    bench.inproc --store postgres --instructions``)."""
    try:
        conn = await pool.getconn()
        try:
            yield conn
        finally:
            _RETURNED[conn] = time.monotonic()
            await pool.putconn(conn)
    except psycopg.Error as exc:
        raise unavailable(exc) from None
