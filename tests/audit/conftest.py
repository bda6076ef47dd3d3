"""Audit fixtures: a key, fresh audit stores on SQLite and PostgreSQL, and raw access to them.

PostgreSQL tables go to a schema of their own per test (through ``search_path`` in the URL),
dropped afterwards, so they never meet the secret store's tables or other tests.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from burnlink.audit import AuditStore, open_audit_store
from burnlink.audit.events import AuditEvent, AuditEventType, RequestInfo, audit_event

KEY = bytes(range(32))
T0 = datetime(2030, 1, 1, tzinfo=UTC)
AUDIT_BACKENDS = ["sqlite", "postgres"]


def make_event(
    n: int = 0,
    *,
    at: datetime | None = None,
    type: AuditEventType = AuditEventType.SECRET_VIEWED,
) -> AuditEvent:
    """A realistic event; ``n`` lands in ``detail`` so events differ."""
    return audit_event(
        type,
        at=at or T0 + timedelta(minutes=n),
        secret_id=f"secret-{n:04d}-xxxxxxxxxx",
        request=RequestInfo("203.0.113.7", "de", "curl/8.5.0", f"req-{n}"),
        detail={"n": n},
    )


@dataclass
class Raw:
    """Direct SQL on a backend's audit tables, bypassing the store (to play the attacker)."""

    backend: str
    url: str

    @property
    def log(self) -> str:
        return "audit_log" if self.backend == "sqlite" else "burnlink_audit_log"

    @property
    def state(self) -> str:
        return "audit_state" if self.backend == "sqlite" else "burnlink_audit_state"

    def execute(self, sql: str, params: tuple[object, ...] = (), *, guarded: bool = False) -> None:
        """Run ``sql`` (``{log}``/``{state}`` placeholders, ``?`` parameters).

        Unless ``guarded``, the append-only triggers are switched off first, as someone with
        write access to the database could do.
        """
        sql = sql.format(log=self.log, state=self.state)
        if self.backend == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite://")) as conn:
                if not guarded:
                    names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                    for (name,) in names.fetchall():
                        conn.execute(f'DROP TRIGGER "{name}"')
                conn.execute(sql, params)
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as pg:
            if not guarded:
                pg.execute(f"ALTER TABLE {self.log} DISABLE TRIGGER USER")
                pg.execute(f"ALTER TABLE {self.state} DISABLE TRIGGER USER")
            pg.execute(sql.replace("?", "%s"), params)


@pytest.fixture(params=AUDIT_BACKENDS)
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty audit log on each backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'audit.db'}"
    url: str = request.getfixturevalue("pg_audit_url")
    return url


@pytest.fixture
def raw(audit_url: str) -> Raw:
    return Raw("sqlite" if audit_url.startswith("sqlite") else "postgres", audit_url)


@pytest.fixture
async def audit_store(audit_url: str) -> AsyncIterator[AuditStore]:
    store = await open_audit_store(audit_url, key=KEY)
    try:
        yield store
    finally:
        await store.aclose()
