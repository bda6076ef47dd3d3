"""Opening a PostgreSQL connection pool the way the store and the audit log both need it.

Each connects once to create or migrate its tables, then opens a small pool of autocommit
connections; each decides how a driver error reads (``unavailable``) so that its log line
names only the error's type and SQLSTATE, never its message (which may quote values).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from burnlink.errors import ConfigError, StorageUnavailable

__all__ = ["Connection", "Pool", "open_pool", "pooled"]

Connection = psycopg.AsyncConnection[TupleRow]
Pool = AsyncConnectionPool[Connection]
Translate = Callable[[psycopg.Error], StorageUnavailable]


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
) -> Pool:
    """Run ``prepare`` on a first connection, then open a pool of ``min_size`` to
    ``max_size`` connections, each checked before it is handed out.

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
        raise unavailable(exc) from None
    pool: Pool = AsyncConnectionPool(
        url,
        kwargs=kwargs,
        min_size=min_size,
        max_size=max_size,
        timeout=checkout_timeout,
        check=AsyncConnectionPool.check_connection,
        name=name,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=checkout_timeout)
    except psycopg.Error as exc:
        await pool.close()
        raise unavailable(exc) from None
    except BaseException:  # cancelled while waiting: do not leak the pool's workers
        await pool.close()
        raise
    return pool


@asynccontextmanager
async def pooled(pool: Pool, unavailable: Translate) -> AsyncIterator[Connection]:
    """A connection from ``pool``; driver errors leave as what ``unavailable`` makes of them."""
    try:
        async with pool.connection() as conn:
            yield conn
    except psycopg.Error as exc:
        raise unavailable(exc) from None
