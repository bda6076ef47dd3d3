"""The access checks' own rules (``burnlink.service.access``), each shown to matter: the
emailed code's range, the verify-mail rate limit, the server's country list, the country lookup,
which actions a failure lockout blocks, and one ``rate.limited`` audit event per client and minute.

Through the API on the memory store with a frozen clock; codes travel through a real SMTP
server (aiosmtpd), the audit log is a real SQLite file."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from burnlink.audit.events import AuditEventType
from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.errors import GeoDenied
from burnlink.models import AccessPolicy, ClientInfo, SecretMeta
from burnlink.service.access import AccessControl
from burnlink.store.memory import MemoryStore
from tests.mail import Outbox
from tests.web.audited import DE, audited_app, audited_settings
from tests.web.test_access import GEO, create, make_client, reveal

pytestmark = pytest.mark.anyio


def mailing_settings(outbox: Outbox, **overrides: Any) -> Settings:
    return load_settings(
        store="memory://",
        smtp_url=f"smtp://127.0.0.1:{outbox.port}",
        smtp_from="burnlink@example.org",
        **overrides,
    )


async def test_mailed_codes_are_drawn_from_a_million(clock: FrozenClock, outbox: Outbox) -> None:
    # Six digits, each code drawn from 10**6 values: a code below 60 comes up with odds of
    # 6e-5, so four in a row below 60 (a space of 60 codes) never happen by chance.
    settings = mailing_settings(outbox, rate_limit_verify="off")
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        for _ in range(4):
            created = await create(client, recipient_email="bob@example.com")
            asked = await reveal(client, created)
            assert asked.json()["error"]["code"] == "verification_required"

    codes = outbox.codes()
    assert len(codes) == 4
    assert all(len(code) == 6 for code in codes)
    assert any(int(code) >= 60 for code in codes), codes


async def test_verify_limit_counts_code_mails_per_client_across_secrets(
    clock: FrozenClock, outbox: Outbox
) -> None:
    settings = mailing_settings(outbox, rate_limit_verify="1/hour")
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        first = await create(client, recipient_email="bob@example.com")
        second = await create(client, recipient_email="bob@example.com")
        mailed = await reveal(client, first)
        limited = await reveal(client, second)

    assert mailed.json()["error"]["code"] == "verification_required"
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert len(outbox.messages) == 1


async def test_server_allowed_countries_let_a_listed_country_in(clock: FrozenClock) -> None:
    settings = load_settings(store="memory://", allowed_countries="DE,AT")
    app, german = make_client(settings, clock, ip="198.51.100.1")
    async with app.router.lifespan_context(app), german:
        created = await create(german)
        revealed = await reveal(german, created)

    assert revealed.status_code == 200
    assert revealed.json()["secret"] == "s3cret"


def meta(policy: AccessPolicy, now: datetime) -> SecretMeta:
    return SecretMeta(
        secret_id="A" * 22,
        access_digest=b"\0" * 32,
        created_at=now,
        expires_at=now + timedelta(hours=1),
        max_views=1,
        views_left=1,
        attempts_left=5,
        policy=policy,
    )


@pytest.mark.parametrize(
    ("policy", "server"),
    [
        (AccessPolicy(allowed_countries=("DE",)), ""),
        (AccessPolicy(denied_countries=("FR",)), ""),
        (AccessPolicy(), "DE"),
    ],
)
async def test_gate_looks_up_the_country_a_client_does_not_carry(
    clock: FrozenClock, policy: AccessPolicy, server: str
) -> None:
    """A client handed over without a country is placed by the GeoIP lookup, not let in or
    turned away as from nowhere."""
    settings = load_settings(store="memory://", allowed_countries=server)
    gate = AccessControl(MemoryStore(retention=timedelta(days=1)), settings, geo=GEO, mailer=None)
    now = clock.now()

    await gate.check_address(meta(policy, now), ClientInfo(ip="198.51.100.1"), now=now)
    with pytest.raises(GeoDenied):
        await gate.check_address(meta(policy, now), ClientInfo(ip="198.51.100.2"), now=now)


async def test_one_rate_limited_event_per_client_and_minute(tmp_path: Path) -> None:
    settings = audited_settings(rate_limit_create="1/minute")
    async with audited_app(f"sqlite://{tmp_path / 'audit.db'}", settings) as audited:
        audited.clock.advance(60 - audited.clock.now().timestamp() % 60 + 1)  # 1 s into a minute
        client = audited.client(DE)

        async def limited_events() -> int:
            await audited.join()
            entries = await audited.entries()
            return sum(e.event.type is AuditEventType.RATE_LIMITED for e in entries)

        assert (await client.post("/api/v1/secrets", json={"secret": "x"})).status_code == 201
        assert (await client.post("/api/v1/secrets", json={"secret": "x"})).status_code == 429
        after_first = await limited_events()
        for _ in range(3):
            assert (await client.post("/api/v1/secrets", json={"secret": "x"})).status_code == 429
        after_flood = await limited_events()
        audited.clock.advance(60)
        assert (await client.post("/api/v1/secrets", json={"secret": "x"})).status_code == 201
        assert (await client.post("/api/v1/secrets", json={"secret": "x"})).status_code == 429
        next_minute = await limited_events()

    assert (after_first, after_flood, next_minute) == (1, 1, 2)
