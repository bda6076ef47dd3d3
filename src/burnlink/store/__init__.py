"""Storage backends behind one interface, chosen by the scheme of a store URL.

=================================  =================================================================
``sqlite:///var/lib/x.db``         embedded default; the path is everything after ``sqlite://``
``redis://host:6379/0``            Redis (``rediss://`` for TLS); ``?prefix=`` namespaces keys
``redis+cluster://a:7000,b:7000``  Redis Cluster by any of its nodes (``rediss+cluster://`` for TLS)
``postgresql://u@host/db``         PostgreSQL (``postgres://`` too); the schema is created on start
``memory://``                      one process's memory; for tests and demos, keeps nothing
=================================  =================================================================

Drivers are imported only for the scheme in use. The interface a backend implements is
``SecretStore`` (``store/contract.py``), composed of ``SecretRecords``, ``Counters``, ``Codes``
and, for sign-in, ``Sessions``, ``ApiTokens`` and ``OwnedSecrets`` (``store/identity.py``).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from urllib.parse import unquote

from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.store.codes import Codes
from burnlink.store.contract import SecretStore
from burnlink.store.counters import Counters, Hit
from burnlink.store.identity import (
    ApiTokens,
    OwnedSecrets,
    SessionRecord,
    Sessions,
    TokenRecord,
)
from burnlink.store.outbox import EventOutbox, Pending
from burnlink.store.secrets import (
    MAX_EVENTS_PER_KIND,
    Attempt,
    Recorded,
    Reveal,
    SecretRecords,
    ViewRecord,
)

__all__ = [
    "MAX_EVENTS_PER_KIND",
    "ApiTokens",
    "Attempt",
    "Codes",
    "Counters",
    "EventOutbox",
    "Hit",
    "OwnedSecrets",
    "Pending",
    "Recorded",
    "Reveal",
    "SecretRecords",
    "SecretStore",
    "SessionRecord",
    "Sessions",
    "TokenRecord",
    "ViewRecord",
    "describe_failure",
    "open_store",
    "redact_url",
]

MAX_CAUSE_CHARS = 300
# Query parameters that carry a password (libpq's password and sslpassword, redis-py's password).
_SECRET_PARAM_RE = re.compile(r"(?P<name>[?&][^=&]*pass[^=&]*=)[^&]*", re.IGNORECASE)


async def open_store(url: str, *, retention: timedelta) -> SecretStore:
    """Connect to the store named by ``url`` and prepare its schema.

    Raises ``ConfigError`` for an unknown scheme and ``StorageUnavailable`` when it cannot
    connect; that message names the store (password masked) and the cause.
    """
    try:
        return await _open(url, retention=retention)
    except StorageUnavailable as exc:
        if url.partition("://")[0].lower() == "sqlite":
            raise  # its messages already name the file and SQLite's error code
        raise StorageUnavailable(
            f"Cannot open the secret store {describe_failure(url, exc)}"
        ) from exc


def describe_failure(url: str, exc: BaseException) -> str:
    """``<store URL, password masked>: <cause>``, for a log line or ``serve``'s error.

    The cause is the driver's own error (its type and first line) when there is one, so that
    "connection refused" and "password authentication failed" read differently. The password
    never appears, not even when a driver quotes it.
    """
    cause = exc.__cause__ or exc
    if isinstance(cause, TimeoutError) and not str(cause):
        text = "TimeoutError: no answer in time"
    else:
        first_line = (str(cause).strip().splitlines() or [""])[0]
        text = f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__
    reason = _system_reason(cause)
    if reason and reason.lower() not in text.lower():
        text += f" ({reason})"
    for password in _passwords(url):
        text = text.replace(password, "***")
    if len(text) > MAX_CAUSE_CHARS:
        text = text[: MAX_CAUSE_CHARS - 1] + "…"
    return f"{redact_url(url)}: {text}"


async def _open(url: str, *, retention: timedelta) -> SecretStore:
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        from burnlink.store.memory import MemoryStore

        return MemoryStore(retention=retention)
    if scheme == "sqlite":
        from burnlink.store.sqlite.store import SqliteStore

        return await SqliteStore.open(url.partition("://")[2], retention=retention)
    if scheme in {"redis", "rediss", "redis+cluster", "rediss+cluster"}:
        from burnlink.store.redis.store import RedisStore

        return await RedisStore.open(url, retention=retention)
    if scheme in {"postgresql", "postgres"}:
        from burnlink.store.postgres.store import PostgresStore

        return await PostgresStore.open(url, retention=retention)
    raise ConfigError(
        "BURNLINK_STORE: unknown scheme; use sqlite:///path, redis://host, "
        "redis+cluster://host:port,host:port, postgresql://host or memory://"
    )


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs and ``config check``: the one
    in the user info and any query parameter such as ``password=`` or ``sslpassword=``."""
    url = _SECRET_PARAM_RE.sub(r"\g<name>***", url)
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def _system_reason(exc: BaseException) -> str | None:
    # The operating system's words ("Connection refused") from deep in the chain, which some
    # drivers reduce to an errno number in their own message.
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            # os.strerror: asyncio words a refused connection "Connect call failed".
            return os.strerror(current.errno)
        current = current.__cause__ or current.__context__
    return None


def _passwords(url: str) -> set[str]:
    # Every password the URL holds, as written and percent-decoded (drivers quote either).
    # The user info ends at the last "@" of the authority, or of the whole rest when the
    # password holds an unencoded "/": take both readings, masking more is harmless.
    rest = url.partition("://")[2]
    infos = {rest.split("/", 1)[0].rpartition("@")[0], rest.rpartition("@")[0]}
    found = [info.partition(":")[2] for info in infos if ":" in info]
    found += [m.group(0).partition("=")[2] for m in _SECRET_PARAM_RE.finditer(url)]
    return {form for value in found if value for form in (value, unquote(value))}
