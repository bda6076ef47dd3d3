"""The sweeper removes expired secrets while the app runs, and survives a failing store."""

from __future__ import annotations

from datetime import timedelta

import anyio
import httpx
import pytest

from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.errors import StorageUnavailable
from burnlink.models import EndReason
from burnlink.service import SecretService
from burnlink.service.sweep import run_sweeper
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app

pytestmark = pytest.mark.anyio


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
