"""The audit trail: events, the hash chain that protects them, their stores and exports.

==========================  ===============================================================
``sqlite:///var/lib/x.db``  tables ``audit_log`` and ``audit_state`` (``audit.location``)
``postgresql://u@host/db``  tables ``burnlink_audit_log`` and ``burnlink_audit_state``
``memory://``               SQLite in memory: lives as long as the process (``--dev``, tests)
==========================  ===============================================================

Drivers are imported only for the scheme in use. See docs/audit.md. Each backend also keeps
the expiry watch (``audit.watch``) in the same database. What a backend implements is in
``audit.backend``.
"""

from __future__ import annotations

from burnlink.audit.backend import AuditBackend, AuditStore, ExpiryWatch
from burnlink.audit.chain import (
    Anchor,
    AuditEntry,
    ChainHead,
    ChainState,
    CorruptEntry,
    Problem,
    VerifyResult,
    load_or_create_key,
    parse_key,
    verify,
)
from burnlink.audit.events import (
    AuditEvent,
    AuditEventType,
    Outcome,
    RequestInfo,
    audit_event,
    secret_hash,
)
from burnlink.audit.verify import verify_store
from burnlink.audit.watch import Watched
from burnlink.errors import ConfigError

__all__ = [
    "Anchor",
    "AuditBackend",
    "AuditEntry",
    "AuditEvent",
    "AuditEventType",
    "AuditStore",
    "ChainHead",
    "ChainState",
    "CorruptEntry",
    "ExpiryWatch",
    "Outcome",
    "Problem",
    "RequestInfo",
    "VerifyResult",
    "Watched",
    "audit_event",
    "load_or_create_key",
    "open_audit_store",
    "parse_key",
    "secret_hash",
    "verify",
    "verify_store",
]


async def open_audit_store(url: str, *, key: bytes, read_only: bool = False) -> AuditBackend:
    """Open the audit log named by ``url`` (same schemes as ``BURNLINK_STORE``, less Redis).

    ``read_only`` (``audit verify``, ``audit export``) opens an existing log without creating
    or changing anything, and raises ``AuditLogMissing`` when there is none. Raises
    ``ConfigError`` for an unknown scheme or a key that differs from the one the log was
    started with, ``StorageUnavailable`` when the backend cannot be reached.
    """
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "memory":
        from burnlink.audit.sqlite import SqliteAuditStore

        return await SqliteAuditStore.open(":memory:", key=key, read_only=read_only)
    if scheme == "sqlite":
        from burnlink.audit.sqlite import SqliteAuditStore

        return await SqliteAuditStore.open(rest, key=key, read_only=read_only)
    if scheme in {"postgresql", "postgres"}:
        from burnlink.audit.postgres import PostgresAuditStore

        return await PostgresAuditStore.open(url, key=key, read_only=read_only)
    raise ConfigError(
        "BURNLINK_AUDIT_STORE: unknown scheme; use sqlite:///path, postgresql://host or memory://"
    )
