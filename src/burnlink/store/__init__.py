"""Storage backends behind one interface, chosen by the scheme of a store URL.

=================================  =================================================================
``sqlite:///var/lib/x.db``         embedded default; the path is everything after ``sqlite://``
``redis://host:6379/0``            Redis (``rediss://`` for TLS); ``?prefix=`` namespaces keys
``redis+cluster://a:7000,b:7000``  Redis Cluster by any of its nodes (``rediss+cluster://`` for TLS)
``postgresql://u@host/db``         PostgreSQL (``postgres://`` too); the schema is created on start
``memory://``                      one process's memory; for tests and demos, keeps nothing
=================================  =================================================================

Drivers are imported only for the scheme in use.
"""

from __future__ import annotations

from datetime import timedelta

from burnlink.errors import ConfigError
from burnlink.store.base import Hit, SecretStore

__all__ = ["Hit", "SecretStore", "open_store", "redact_url"]


async def open_store(url: str, *, retention: timedelta) -> SecretStore:
    """Connect to the store named by ``url`` and prepare its schema.

    Raises ``ConfigError`` for an unknown scheme and ``StorageUnavailable`` when it cannot connect.
    """
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        from burnlink.store.memory import MemoryStore

        return MemoryStore(retention=retention)
    if scheme == "sqlite":
        from burnlink.store.sqlite import SqliteStore

        return await SqliteStore.open(url.partition("://")[2], retention=retention)
    if scheme in {"redis", "rediss", "redis+cluster", "rediss+cluster"}:
        from burnlink.store.redis import RedisStore

        return await RedisStore.open(url, retention=retention)
    if scheme in {"postgresql", "postgres"}:
        from burnlink.store.postgres import PostgresStore

        return await PostgresStore.open(url, retention=retention)
    raise ConfigError(
        "BURNLINK_STORE: unknown scheme; use sqlite:///path, redis://host, "
        "redis+cluster://host:port,host:port, postgresql://host or memory://"
    )


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs and ``config check``."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
