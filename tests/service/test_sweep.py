"""The sweep (``burnlink.service.sweep``): it records expiries from the audit's expiry watch,
receipts carry proof of burn, and the sweeper runs beside the app and survives a failing store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink.audit import AuditBackend, Watched, open_audit_store
from burnlink.audit.events import AuditEventType, secret_hash
from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.crypto import Payload
from burnlink.errors import StorageUnavailable
from burnlink.models import ClientInfo, EndReason
from burnlink.service import SecretService
from burnlink.service.reporting import Reporter
from burnlink.service.sweep import run_sweeper
from burnlink.signing import verify_statement
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from tests.web.audited import AUDIT_KEY

pytestmark = pytest.mark.anyio

CLIENT = ClientInfo(ip="203.0.113.7", user_agent="curl/8.5.0")


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditBackend]:
    store = await open_audit_store(f"sqlite://{tmp_path / 'audit.db'}", key=AUDIT_KEY)
    yield store
    await store.aclose()


def service(audit: AuditBackend, clock: FrozenClock) -> SecretService:
    return SecretService(
        MemoryStore(retention=timedelta(days=30)),
        load_settings(store="memory://"),
        clock,
        reporter=Reporter(audit),
        signing_key=Ed25519PrivateKey.generate(),
    )


async def expired_hashes(audit: AuditBackend) -> list[str | None]:
    return [
        e.event.secret_hash async for e in audit.iter_entries(types=[AuditEventType.SECRET_EXPIRED])
    ]


async def test_sweep_records_each_expiry_once(audit: AuditBackend, clock: FrozenClock) -> None:
    svc = service(audit, clock)
    created, _ = await svc.create_plaintext(
        Payload(b"x"), passphrase=None, ttl=60, max_views=1, client=CLIENT
    )
    clock.advance(61)

    await svc.sweep()
    await svc.sweep()

    await svc.seal_pending()
    assert await expired_hashes(audit) == [secret_hash(created.secret_id)]
    receipt = await svc.receipt(created.secret_id, created.manage_token, issuer="https://b.example")
    assert receipt.statement is not None
    statement = verify_statement(receipt.statement, svc.signing_key.public_key())  # type: ignore[union-attr]  # set above
    assert (statement.how.value, statement.ended_at) == ("expired", created.expires_at)


async def test_a_secret_that_ended_otherwise_is_not_recorded_as_expired(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    svc = service(audit, clock)
    created, key = await svc.create_plaintext(
        Payload(b"x"), passphrase=None, ttl=60, max_views=1, client=CLIENT
    )
    await svc.reveal_plaintext(created.secret_id, key, None, client=CLIENT)
    # As if clearing the watch had failed when the last view was taken:
    await audit.watch(Watched(created.secret_id, created.expires_at))
    clock.advance(61)

    await svc.sweep()

    await svc.seal_pending()
    assert await expired_hashes(audit) == []
    assert await audit.claim_due(now=clock.now(), limit=10) == []


async def test_sweeper_purges_expired_secrets_while_the_app_runs(clock: FrozenClock) -> None:
    settings = load_settings(store="memory://", sweep_interval=0.01)
    store = MemoryStore(retention=timedelta(days=30))
    app = create_app(settings, store, clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        created = (await client.post("/api/v1/secrets", json={"secret": "x", "ttl": 60})).json()
        clock.advance(61)
        # Before a sweep the receipt reads as expired but records no end; the sweep ends it.
        for _ in range(500):
            receipt = await store.receipt(created["id"], now=clock.now())
            if receipt is not None and receipt.end_reason is not None:
                break
            await anyio.sleep(0.01)

        assert await store.peek(created["id"], now=clock.now()) is None
        receipt = await store.receipt(created["id"], now=clock.now())
        assert receipt is not None
        assert receipt.end_reason is EndReason.EXPIRED


async def test_sweeper_keeps_running_when_the_store_fails(clock: FrozenClock) -> None:
    store = MemoryStore(retention=timedelta(days=30))
    calls = 0

    async def failing_purge(*, now: object, limit: int) -> int:
        nonlocal calls
        calls += 1
        raise StorageUnavailable

    store.purge_expired = failing_purge  # type: ignore[method-assign]  # simulate an outage
    service = SecretService(store, load_settings(store="memory://"), clock)

    with anyio.move_on_after(0.2):
        await run_sweeper(service, interval=0.01)

    assert calls > 2
