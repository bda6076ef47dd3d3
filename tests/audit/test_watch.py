"""The expiry watch beside the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from burnlink.audit import AuditBackend, Watched, open_audit_store
from tests.audit.conftest import KEY, T0

pytestmark = pytest.mark.anyio


def item(n: int, minutes: int, url: str | None = None) -> Watched:
    return Watched(f"secret-{n:04d}", T0 + timedelta(minutes=minutes), url)


async def test_claim_due_returns_due_rows_once_earliest_first(audit_store: AuditBackend) -> None:
    for n, minutes in enumerate([5, 1, 3, 60]):
        await audit_store.watch(item(n, minutes, f"https://hooks.example/{n}"))
    await audit_store.unwatch("secret-0002")

    due = await audit_store.claim_due(now=T0 + timedelta(minutes=10), limit=10)
    again = await audit_store.claim_due(now=T0 + timedelta(minutes=10), limit=10)

    assert [w.secret_id for w in due] == ["secret-0001", "secret-0000"]
    assert due[0] == item(1, 1, "https://hooks.example/1")
    assert again == []
    later = await audit_store.claim_due(now=T0 + timedelta(hours=2), limit=10)
    assert [w.secret_id for w in later] == ["secret-0003"]


async def test_claim_due_honours_the_limit_and_watch_replaces(audit_store: AuditBackend) -> None:
    for n in range(5):
        await audit_store.watch(item(n, n))
    await audit_store.watch(item(0, 120))  # replaced: now due much later

    first = await audit_store.claim_due(now=T0 + timedelta(minutes=10), limit=2)
    rest = await audit_store.claim_due(now=T0 + timedelta(minutes=10), limit=10)

    assert [w.secret_id for w in first] == ["secret-0001", "secret-0002"]
    assert [w.secret_id for w in rest] == ["secret-0003", "secret-0004"]


async def test_concurrent_claims_from_two_connections_never_share_a_row(audit_url: str) -> None:
    first = await open_audit_store(audit_url, key=KEY)
    second = await open_audit_store(audit_url, key=KEY)
    try:
        for n in range(60):
            await first.watch(item(n, 0))
        claimed: list[str] = []

        async def claim(store: AuditBackend) -> None:
            while batch := await store.claim_due(now=T0 + timedelta(minutes=1), limit=7):
                claimed.extend(w.secret_id for w in batch)

        async with anyio.create_task_group() as group:
            group.start_soon(claim, first)
            group.start_soon(claim, second)
    finally:
        await first.aclose()
        await second.aclose()

    assert sorted(claimed) == [f"secret-{n:04d}" for n in range(60)]
