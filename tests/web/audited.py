"""An app with a real audit log (SQLite file or PostgreSQL), webhooks to a real local receiver,
a country table, a mailer that keeps codes, and clients from chosen addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from burnlink.audit import AuditBackend, AuditEntry, ChainState, Watched, open_audit_store
from burnlink.audit.events import AuditEvent
from burnlink.audit.outbox import Sealable
from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.errors import StorageUnavailable
from burnlink.service import SecretService
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from burnlink.webhooks import RetryPolicy
from tests.hooks import Receiver

if TYPE_CHECKING:
    from burnlink.audit.chain import ChainBounds

AUDIT_KEY = bytes(range(32))
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
METRICS_TOKEN = "metrics-token-for-tests-98765"
FAST = RetryPolicy(attempts=2, first_delay=0.01, factor=2.0, max_delay=0.05)
DE, FR = "198.51.100.1", "198.51.100.2"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class Breakable:
    """An audit log that can be cut off: every write (and ``ping``) fails while ``broken``."""

    def __init__(self, inner: AuditBackend) -> None:
        self.inner = inner
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise StorageUnavailable("The audit log is unavailable (test).")

    async def append(self, event: AuditEvent) -> AuditEntry:
        self._check()
        return await self.inner.append(event)

    async def write(
        self,
        events: Sequence[AuditEvent],
        *,
        watch: Sequence[Watched] = (),
        unwatch: Sequence[str] = (),
    ) -> list[AuditEntry]:
        self._check()
        return await self.inner.write(events, watch=watch, unwatch=unwatch)

    async def seal(self, records: Sequence[Sealable]) -> list[AuditEntry]:
        self._check()
        return await self.inner.seal(records)

    def seal_turn(self) -> AbstractAsyncContextManager[bool]:
        return self.inner.seal_turn()

    def iter_entries(self, **filters: Any) -> AsyncIterator[AuditEntry]:
        return self.inner.iter_entries(**filters)

    async def chain_state(self) -> ChainState:
        return await self.inner.chain_state()

    def is_authentic(self, item: ChainState | AuditEntry) -> bool:
        return self.inner.is_authentic(item)

    async def bounds(self) -> ChainBounds:
        return await self.inner.bounds()

    async def check_writable(self) -> None:
        self._check()
        await self.inner.check_writable()

    async def purge_before(self, cutoff: datetime, *, limit: int | None = None) -> int:
        self._check()
        return await self.inner.purge_before(cutoff, limit=limit)

    async def ping(self) -> None:
        self._check()
        await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def watch(self, item: Watched) -> None:
        self._check()
        await self.inner.watch(item)

    async def unwatch(self, secret_id: str) -> None:
        self._check()
        await self.inner.unwatch(secret_id)

    async def claim_due(self, *, now: datetime, limit: int) -> list[Watched]:
        self._check()
        return await self.inner.claim_due(now=now, limit=limit)


class Countries:
    """A fixed map of addresses to countries: the test double for a GeoIP database."""

    def country_of(self, ip: str | None) -> str | None:
        return {DE: "DE", FR: "FR"}.get(ip or "")


@dataclass
class Mailbox:
    """A ``Mailer`` that keeps the codes it was asked to send."""

    codes: list[str] = field(default_factory=list)

    async def send_code(
        self, to: str, code: str, *, minutes_valid: int, language: str = "en"
    ) -> None:
        self.codes.append(code)


@dataclass
class Audited:
    """The app under test and what it talks to."""

    app: FastAPI
    store: MemoryStore
    audit: Breakable
    clock: FrozenClock
    mailbox: Mailbox
    signing_key: Ed25519PrivateKey
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def service(self) -> SecretService:
        service: SecretService = self.app.state.service
        return service

    def client(self, ip: str = DE, agent: str = BROWSER) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        client = httpx.AsyncClient(
            transport=transport, base_url="http://burnlink.test", headers={"user-agent": agent}
        )
        self.clients.append(client)
        return client

    async def join(self) -> None:
        """Wait for queued page opens, background audit reports and webhook deliveries."""
        await self.app.state.page_opens.settled()
        await self.service.reporter.join()

    async def entries(self) -> list[AuditEntry]:
        """The audit log, once every event recorded so far is sealed into it."""
        await self.service.seal_pending()
        return [entry async for entry in self.audit.iter_entries()]


def audited_settings(receiver: Receiver | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "store": "memory://",
        "admin_token": ADMIN_TOKEN,
        "metrics_token": METRICS_TOKEN,
        "webhook_secret": WEBHOOK_SECRET,
        "webhook_allow": "127.0.0.1",
        "passphrase_attempts": 2,
        "rate_limit_verify": "1/hour",
        "alert_not_found": "3/hour",
        "alert_failed_reveals": "2/hour",
        "audit_days": 30,
    }
    if receiver is not None:
        values["alert_url"] = receiver.url("/alerts")
    values.update(overrides)
    return load_settings(**values)


@asynccontextmanager
async def audited_app(
    audit_url: str, settings: Settings, clock: FrozenClock | None = None
) -> AsyncIterator[Audited]:
    """Run the app on a memory store and the audit log at ``audit_url``."""
    audit = Breakable(await open_audit_store(audit_url, key=AUDIT_KEY))
    clock = clock or FrozenClock()
    store = MemoryStore(retention=timedelta(days=settings.receipt_days))
    mailbox = Mailbox()
    key = Ed25519PrivateKey.generate()
    app = create_app(
        settings,
        store,
        clock,
        geo=Countries(),
        mailer=mailbox,
        audit=audit,
        signing_key=key,
        webhook_retry=FAST,
    )
    harness = Audited(app, store, audit, clock, mailbox, key)
    try:
        async with app.router.lifespan_context(app):
            yield harness
            await harness.join()
    finally:
        for client in harness.clients:
            await client.aclose()
        await audit.aclose()
