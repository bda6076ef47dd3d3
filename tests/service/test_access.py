"""The access checks' own rules (``burnlink.service.access``), each shown to matter: the
emailed code's range, the verify-mail rate limit, the server's country list, the country lookup,
which actions a failure lockout blocks, and one ``rate.limited`` audit event per client and minute.

The first tests go through the API on the memory store with a frozen clock; codes travel
through a real SMTP server (aiosmtpd), the audit log is a real SQLite file. The rest ask the
gate itself (``AccessControl`` on the memory store, the events it publishes kept): the admin
token, what each refusal records and counts, what a create is counted against, who a secret
bound to recipients lets through, and the failure gate in front of a sign-in."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from burnlink.audit.events import AuditEvent, AuditEventType
from burnlink.audit.outbox import OutboxRecord
from burnlink.clock import FrozenClock
from burnlink.config import Limit, Settings, load_settings
from burnlink.errors import (
    AdminRequired,
    CodesSpent,
    FreshLoginRequired,
    GeoDenied,
    InvalidInput,
    IpDenied,
    LoginRequired,
    MailUnavailable,
    MetricsTokenRequired,
    MfaRequired,
    RateLimited,
    RecipientMismatch,
    SecretUnavailable,
    VerificationFailed,
    VerificationRequired,
)
from burnlink.identity.principal import Principal
from burnlink.models import (
    AccessPolicy,
    ClientInfo,
    EndReason,
    EventKind,
    SecretMeta,
    SecretRecord,
    Viewer,
)
from burnlink.service.access import AccessControl, code_digest
from burnlink.service.reporting import Reporter
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


# -- the gate on its own: memory store, frozen time, the events it publishes kept -----------

NOW = datetime(2030, 1, 1, 12, 0, 1, tzinfo=UTC)  # one second into a minute
IP, OTHER = "203.0.113.9", "203.0.113.10"
ADMIN = "admin-token-for-tests-0123456789"
BOB = "bob@example.com"
SIGN_IN = {
    "oidc_issuer": "https://login.example.com",
    "oidc_client_id": "burnlink",
    "oidc_client_secret": "s3cret-value",
}


class Published(Reporter):
    """A reporter that keeps what it publishes (after recording it in the store), and with
    which secret and webhook."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[AuditEvent] = []
        self.to: list[dict[str, Any]] = []

    async def publish(self, event: AuditEvent, **to: Any) -> None:
        self.events.append(event)
        self.to.append(to)


def gate(**overrides: Any) -> tuple[AccessControl, Published]:
    published = Published()
    settings = load_settings(store="memory://", **overrides)
    store = MemoryStore(retention=timedelta(days=1))
    return AccessControl(store, settings, geo=GEO, mailer=None, reporter=published), published


async def counted(access: AccessControl, bucket: str, window: int) -> int:
    return await access.store.hit(bucket, window=window, now=NOW, cost=0)


def labels(event: AuditEvent) -> tuple[AuditEventType, dict[str, Any], dict[str, Any]]:
    return event.type, dict(event.policy), dict(event.detail)


async def test_admin_token_lets_in_only_the_configured_token() -> None:
    access, published = gate(admin_token=f"  {ADMIN}\n")  # as read from a file
    await access.check_admin(ADMIN, ClientInfo(ip=IP), now=NOW)
    assert published.events == []
    assert await counted(access, f"admin-failed:{IP}", 3600) == 0

    for token, given in [(ADMIN + "x", True), ("", False)]:
        with pytest.raises(AdminRequired) as refused:
            await access.check_admin(token, ClientInfo(ip=IP), now=NOW)
        assert type(refused.value) is AdminRequired  # not its metrics subclass
        denied = published.events.pop()
        assert labels(denied) == (
            AuditEventType.ADMIN_DENIED,
            {"rule": "admin_token"},
            {"given": given},
        )
        assert denied.client_ip == IP
    assert await counted(access, f"admin-failed:{IP}", 3600) == 2


async def test_without_an_admin_token_every_token_is_refused_and_audited() -> None:
    access, published = gate()
    for token in ("", ADMIN):
        with pytest.raises(AdminRequired):
            await access.check_admin(token, ClientInfo(ip=IP), now=NOW)
    assert [labels(e)[:2] for e in published.events] == [
        (AuditEventType.ADMIN_DENIED, {"rule": "admin_token_unset"})
    ] * 2


async def test_wrong_admin_tokens_lock_the_client_out_with_one_event_a_minute() -> None:
    access, published = gate(admin_token=ADMIN, rate_limit_admin="2/hour")
    for _ in range(2):
        with pytest.raises(AdminRequired):
            await access.check_admin("wrong-token-0123456789", ClientInfo(ip=IP), now=NOW)
    published.events.clear()
    for _ in range(2):  # even the right token, once locked
        with pytest.raises(RateLimited) as refused:
            await access.check_admin(ADMIN, ClientInfo(ip=IP), now=NOW)
    assert refused.value.limit == "admin"
    assert [labels(e) for e in published.events] == [
        (
            AuditEventType.RATE_LIMITED,
            {"limit": "admin", "rule": "2/3600s"},
            {"retry_after": 3599},
        )
    ]
    assert published.events[0].client_ip == IP
    await access.check_admin(ADMIN, ClientInfo(ip=OTHER), now=NOW)


async def test_metrics_token_lets_in_only_itself_and_is_refused_as_metrics() -> None:
    """``/metrics`` has its own token and its own refusal (``MetricsTokenRequired``, never the
    admin's), audited with its own rule and counted with the admin token's failures."""
    access, published = gate(metrics_token=f"{ADMIN}-metrics", admin_token=ADMIN)
    await access.check_metrics(f"{ADMIN}-metrics", ClientInfo(ip=IP), now=NOW)
    assert published.events == []

    for token, given in [(ADMIN, True), ("", False)]:  # the admin token is not the metrics one
        with pytest.raises(MetricsTokenRequired) as refused:
            await access.check_metrics(token, ClientInfo(ip=IP), now=NOW)
        assert type(refused.value) is MetricsTokenRequired
        denied = published.events.pop()
        assert labels(denied) == (
            AuditEventType.ADMIN_DENIED,
            {"rule": "metrics_token"},
            {"given": given},
        )
        assert denied.client_ip == IP
    assert await counted(access, f"admin-failed:{IP}", 3600) == 2


async def test_without_a_metrics_token_every_scrape_token_is_refused() -> None:
    access, published = gate(admin_token=ADMIN)
    for token in ("", ADMIN):
        with pytest.raises(MetricsTokenRequired):
            await access.check_metrics(token, ClientInfo(ip=IP), now=NOW)
    assert [labels(e)[:2] for e in published.events] == [
        (AuditEventType.ADMIN_DENIED, {"rule": "metrics_token_unset"})
    ] * 2


async def test_wrong_metrics_tokens_share_the_admin_lockout() -> None:
    access, _ = gate(metrics_token=f"{ADMIN}-metrics", rate_limit_admin="2/hour")
    for _ in range(2):
        with pytest.raises(MetricsTokenRequired):
            await access.check_metrics("wrong-token-0123456789", ClientInfo(ip=IP), now=NOW)
    for check in (access.check_metrics, access.check_admin):
        with pytest.raises(RateLimited) as refused:
            await check(f"{ADMIN}-metrics", ClientInfo(ip=IP), now=NOW)
        assert refused.value.limit == "admin"


async def test_a_refused_action_is_audited_once_per_client_limit_and_minute() -> None:
    access, published = gate(rate_limit_create="1/minute", rate_limit_reveal="1/hour")
    create = access.limiter.checks("create", access.settings.limit("create"), IP)
    await access.count(create, ClientInfo(ip=IP), now=NOW)
    for _ in range(2):
        with pytest.raises(RateLimited):
            await access.count(create, ClientInfo(ip=IP), now=NOW, secret_id="A" * 22)
    (event,) = published.events
    assert labels(event) == (
        AuditEventType.RATE_LIMITED,
        {"limit": "create", "rule": "1/60s"},
        {"retry_after": 59},
    )
    assert event.secret_hash is not None
    # Another limit, another client, the next minute: each audited once more.
    await access.lookup(None, ClientInfo(ip=IP), now=NOW)
    for _ in range(2):
        with pytest.raises(RateLimited):
            await access.lookup(None, ClientInfo(ip=IP), now=NOW)
    other = access.limiter.checks("create", access.settings.limit("create"), OTHER)
    await access.count(other, ClientInfo(ip=OTHER), now=NOW)
    for _ in range(2):
        with pytest.raises(RateLimited):
            await access.count(other, ClientInfo(ip=OTHER), now=NOW)
    await access.count(create, ClientInfo(ip=IP), now=NOW + timedelta(minutes=1))
    with pytest.raises(RateLimited):
        await access.count(create, ClientInfo(ip=IP), now=NOW + timedelta(minutes=1))
    assert [(e.client_ip, e.policy["limit"], e.policy["rule"]) for e in published.events] == [
        (IP, "create", "1/60s"),
        (IP, "reveal", "1/3600s"),
        (OTHER, "create", "1/60s"),
        (IP, "create", "1/60s"),
    ]


async def test_a_refusal_by_a_failure_limit_is_audited_with_its_rule() -> None:
    access, published = gate(rate_limit_failures="2/10 minutes")
    for _ in range(2):
        await access.failed(ClientInfo(ip=IP), now=NOW)
    with pytest.raises(RateLimited):
        await access.lookup(None, ClientInfo(ip=IP), now=NOW)
    assert [labels(e)[1] for e in published.events] == [{"limit": "failures", "rule": "2/600s"}]


async def test_a_reveal_refused_by_its_rate_is_audited_on_the_secret_it_named() -> None:
    access, published = gate(rate_limit_reveal="1/minute")
    found = await access.lookup("A" * 22, ClientInfo(ip=IP), now=NOW)
    assert found.meta is None  # no such secret
    assert found.consumed is None
    with pytest.raises(RateLimited):
        await access.lookup("A" * 22, ClientInfo(ip=IP), now=NOW)
    (limited,) = published.events
    assert labels(limited)[1] == {"limit": "reveal", "rule": "1/60s"}
    assert limited.secret_hash is not None


async def test_lookup_without_an_id_counts_the_reveal() -> None:
    access, _ = gate(rate_limit_reveal="2/minute")
    found = await access.lookup(None, ClientInfo(ip=IP), now=NOW)
    assert (found.meta, found.consumed) == (None, None)
    assert await counted(access, f"reveal:{IP}", 60) == 1


async def test_create_refused_by_address_is_audited_and_not_counted() -> None:
    access, published = gate(create_allowed_ips="10.0.0.0/8")
    await access.before_create(AccessPolicy(), False, ClientInfo(ip="10.1.2.3"), now=NOW)
    with pytest.raises(IpDenied):
        await access.before_create(AccessPolicy(), False, ClientInfo(ip=IP), now=NOW)
    assert [labels(e) for e in published.events] == [
        (AuditEventType.ACCESS_DENIED_IP, {"rule": "create_allowed_ips"}, {})
    ]
    assert published.events[0].client_ip == IP


async def test_create_returns_its_rate_checks_for_the_store_to_count() -> None:
    access, _ = gate(rate_limit_create="5/minute")
    checks = await access.before_create(AccessPolicy(), False, ClientInfo(ip=IP), now=NOW)
    assert [(c.name, c.rule, c.hit.bucket) for c in checks] == [
        ("create", Limit(5, 60), f"create:{IP}")
    ]
    assert await counted(access, f"create:{IP}", 60) == 0  # counted with the insert, not here


async def test_create_refused_for_its_fields_counts_against_the_create_rate() -> None:
    access, _ = gate(require_passphrase=True, rate_limit_create="1/minute")
    with pytest.raises(InvalidInput) as refused:
        await access.before_create(AccessPolicy(), False, ClientInfo(ip=IP), now=NOW)
    assert (refused.value.field, refused.value.reason) == (
        "passphrase",
        "this server requires a passphrase on every secret",
    )
    await access.before_create(AccessPolicy(), True, ClientInfo(ip=OTHER), now=NOW)
    mailed = AccessPolicy(recipient_email="bob@example.com")
    with pytest.raises(RateLimited):  # the second create this minute
        await access.before_create(mailed, True, ClientInfo(ip=IP), now=NOW)
    with pytest.raises(InvalidInput) as refused:
        await access.before_create(mailed, True, ClientInfo(ip=OTHER), now=NOW)
    assert (refused.value.field, refused.value.reason) == (
        "recipient_email",
        "email verification is not configured on this server (BURNLINK_SMTP_URL)",
    )


async def test_a_secret_for_recipients_needs_sign_in_on_the_server() -> None:
    """Recipients can only prove who they are where sign-in is configured: elsewhere such a
    secret could never be revealed, so it is refused with the setting that is missing."""
    bound = AccessPolicy(recipients=(BOB,))
    access, _ = gate()
    with pytest.raises(InvalidInput) as refused:
        await access.before_create(bound, False, ClientInfo(ip=IP), now=NOW)
    assert (refused.value.field, refused.value.reason) == (
        "recipients",
        "sign-in is not configured on this server (BURNLINK_OIDC_ISSUER)",
    )
    signing_in, _ = gate(**SIGN_IN)
    await signing_in.before_create(bound, False, ClientInfo(ip=IP), now=NOW)


async def test_a_refused_address_counts_as_a_failure_and_names_the_rule() -> None:
    access, published = gate()
    policy = AccessPolicy(allowed_ips=("10.0.0.0/8", "192.0.2.0/24"))
    await access.check_address(meta(policy, NOW), ClientInfo(ip="10.9.9.9"), now=NOW)
    with pytest.raises(IpDenied):
        await access.check_address(meta(policy, NOW), ClientInfo(ip=IP), now=NOW)
    (event,) = published.events
    assert labels(event) == (
        AuditEventType.ACCESS_DENIED_IP,
        {"rule": "allowed_ips", "allowed": "10.0.0.0/8,192.0.2.0/24"},
        {},
    )
    assert event.secret_hash is not None
    assert await counted(access, f"failed:{IP}", 600) == 1
    assert await counted(access, f"failed:{IP}:{'A' * 22}", 3600) == 1


@pytest.mark.parametrize(
    ("policy", "server", "ip", "rule"),
    [
        (
            AccessPolicy(allowed_countries=("DE", "AT")),
            "",
            "198.51.100.2",
            {"rule": "countries", "allowed": "DE,AT"},
        ),
        (
            AccessPolicy(denied_countries=("FR",)),
            "DE,FR",
            "198.51.100.2",
            {"rule": "countries", "denied": "FR", "server": "DE,FR"},
        ),
        (AccessPolicy(), "DE", "198.51.100.2", {"rule": "server_countries", "server": "DE"}),
        (  # allowed by the secret, not by the server
            AccessPolicy(allowed_countries=("FR",)),
            "DE",
            "198.51.100.2",
            {"rule": "server_countries", "allowed": "FR", "server": "DE"},
        ),
        (AccessPolicy(), "DE", "192.0.2.1", {"rule": "server_countries", "server": "DE"}),
    ],
)
async def test_a_refused_country_counts_as_a_failure_and_names_the_rules(
    policy: AccessPolicy, server: str, ip: str, rule: dict[str, str]
) -> None:
    access, published = gate(allowed_countries=server)
    with pytest.raises(GeoDenied):
        await access.check_address(meta(policy, NOW), ClientInfo(ip=ip), now=NOW)
    assert [labels(e) for e in published.events] == [(AuditEventType.ACCESS_DENIED_GEO, rule, {})]
    assert await counted(access, f"failed:{ip}", 600) == 1


async def test_a_country_the_client_carries_is_not_looked_up() -> None:
    access, _ = gate(allowed_countries="DE")
    # GEO places 198.51.100.2 in FR; a proxy that names the country is believed.
    await access.check_address(
        meta(AccessPolicy(), NOW), ClientInfo("198.51.100.2", country="DE"), now=NOW
    )


async def test_the_server_country_rule_places_a_client_by_its_address() -> None:
    """``server_allows`` (which lets a reveal skip ``check_address``) looks up the country of a
    client that carries none, as ``check_address`` does."""
    anyone, _ = gate()
    assert anyone.server_allows(ClientInfo(ip="198.51.100.2"))
    access, _ = gate(allowed_countries="DE")
    assert access.server_allows(ClientInfo(ip="198.51.100.1"))  # GEO: DE
    assert not access.server_allows(ClientInfo(ip="198.51.100.2"))  # GEO: FR
    assert access.server_allows(ClientInfo("198.51.100.2", country="DE"))


# -- recipient codes, on the gate itself (a mailer that keeps what it sends) -----------------

HOOK = "https://hooks.example.org/burnlink"


class Mails:
    """A mailer that keeps each code it sends: (to, code, minutes_valid)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []

    async def send_code(
        self, to: str, code: str, *, minutes_valid: int, language: str = "en"
    ) -> None:
        self.sent.append((to, code, minutes_valid))


async def mailing_gate(**overrides: Any) -> tuple[AccessControl, Published, Mails, SecretMeta]:
    """A gate that mails codes, and a live secret for ``BOB``."""
    access, published = gate(**overrides)
    mails = Mails()
    access.mailer = mails
    record = SecretRecord(
        secret_id="A" * 22,
        envelope=b'{"v":1}',
        access_digest=b"\0" * 32,
        manage_digest=b"\1" * 32,
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
        max_views=1,
        max_attempts=5,
        policy=AccessPolicy(recipient_email=BOB, notify_url=HOOK),
    )
    await access.store.create(record)
    live = await access.store.peek(record.secret_id, now=NOW)
    assert live is not None
    return access, published, mails, live


def test_a_code_is_kept_as_its_digest_bound_to_its_secret() -> None:
    # The at-rest form: a code put before an upgrade must still match after it.
    assert code_digest("A" * 22, "012345").hex() == (
        hashlib.sha256(b"burnlink v1 code:AAAAAAAAAAAAAAAAAAAAAA:012345").hexdigest()
    )


async def test_a_secret_without_a_recipient_needs_no_code() -> None:
    access, published = gate()
    await access.verify_recipient(meta(AccessPolicy(), NOW), None, ClientInfo(ip=IP), now=NOW)
    assert published.events == []


async def test_a_code_is_mailed_then_verified_once() -> None:
    access, published, mails, live = await mailing_gate()
    client = ClientInfo(ip=IP)
    with pytest.raises(VerificationRequired) as asked:
        await access.verify_recipient(live, None, client, now=NOW)
    assert type(asked.value) is VerificationRequired
    assert asked.value.hint == "b***@example.com"
    assert str(asked.value) == "A verification code was sent to b***@example.com. Send it as 'otp'."
    ((to, code, minutes),) = mails.sent
    assert (to, len(code), code.isdigit(), repr(minutes)) == (BOB, 6, True, "10")
    assert await counted(access, f"verify:{IP}", 3600) == 1
    assert [labels(e) for e in published.events] == [
        (
            AuditEventType.OTP_SENT,
            {"rule": "recipient_email", "recipient": "b***@example.com"},
            {},
        )
    ]
    assert published.events[0].secret_hash is not None
    assert published.events[0].client_ip == IP

    later = NOW + timedelta(minutes=9, seconds=59)
    await access.verify_recipient(live, code, client, now=later)
    assert labels(published.events[-1])[0] is AuditEventType.OTP_VERIFIED
    assert published.events[-1].secret_hash is not None
    assert published.events[-1].client_ip == IP
    with pytest.raises(VerificationRequired) as again:  # used: a new one must be asked for
        await access.verify_recipient(live, code, client, now=later)
    assert str(again.value) == "No valid code. Reveal without 'otp' to have a new code sent."
    assert again.value.hint == "b***@example.com"


async def test_a_wrong_code_is_a_failure_with_the_tries_left() -> None:
    access, published, mails, live = await mailing_gate()
    with pytest.raises(VerificationRequired):
        await access.verify_recipient(live, None, ClientInfo(ip=IP), now=NOW)
    code = mails.sent[0][1]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for tries_left in (4, 3, 2, 1, 0):
        with pytest.raises(VerificationFailed) as refused:
            await access.verify_recipient(live, wrong, ClientInfo(ip=IP), now=NOW)
        assert (refused.value.attempts_left, refused.value.hint) == (tries_left, "b***@example.com")
        assert labels(published.events[-1]) == (
            AuditEventType.OTP_FAILED,
            {"rule": "recipient_email", "recipient": "b***@example.com"},
            {"tries_left": tries_left},
        )
    assert await counted(access, f"failed:{IP}:{live.secret_id}", 3600) == 5
    with pytest.raises(VerificationRequired) as spent:  # the code took five tries only
        await access.verify_recipient(live, code, ClientInfo(ip=IP), now=NOW)
    assert type(spent.value) is VerificationRequired


async def test_a_code_expires_after_ten_minutes() -> None:
    access, _, mails, live = await mailing_gate()
    with pytest.raises(VerificationRequired):
        await access.verify_recipient(live, None, ClientInfo(ip=IP), now=NOW)
    with pytest.raises(VerificationRequired) as expired:
        await access.verify_recipient(
            live, mails.sent[0][1], ClientInfo(ip=IP), now=NOW + timedelta(minutes=10)
        )
    assert type(expired.value) is VerificationRequired


async def test_one_code_a_minute_then_the_secret_locks_after_three() -> None:
    access, published, mails, live = await mailing_gate(rate_limit_verify="off")
    client = ClientInfo(ip=IP)
    with pytest.raises(VerificationRequired):
        await access.verify_recipient(live, None, client, now=NOW)
    with pytest.raises(VerificationRequired) as too_soon:
        await access.verify_recipient(live, None, client, now=NOW + timedelta(seconds=59))
    assert str(too_soon.value) == (
        "No new code can be sent yet: one went to b***@example.com less than a minute ago,"
        " or the last of 3 is still valid. Send it as 'otp'."
    )
    assert too_soon.value.hint == "b***@example.com"
    assert len(mails.sent) == 1
    for minutes in (1, 2):  # a minute apart: mailed
        with pytest.raises(VerificationRequired):
            await access.verify_recipient(live, None, client, now=NOW + timedelta(minutes=minutes))
    assert len(mails.sent) == 3
    with pytest.raises(CodesSpent) as locked:  # the third code expired unused
        await access.verify_recipient(live, None, client, now=NOW + timedelta(minutes=12))
    assert locked.value.hint == "b***@example.com"
    assert "All 3 verification codes" in str(locked.value)
    assert len(mails.sent) == 3
    assert labels(published.events[-1]) == (
        AuditEventType.SECRET_LOCKED,
        {"rule": "recipient_email", "max_codes": 3},
        {},
    )
    assert published.events[-1].client_ip == IP
    assert published.to[-1] == {"secret_id": live.secret_id, "notify_url": HOOK}  # the sender's
    # The lock ends the secret's expiry watch, in the same store operation.
    records = [
        OutboxRecord.from_bytes(p.outbox) for p in await access.store.pending_events(limit=99)
    ]
    assert [r.unwatch for r in records if r.event.type is AuditEventType.SECRET_LOCKED] == [
        live.secret_id
    ]
    assert await access.store.peek(live.secret_id, now=NOW + timedelta(minutes=12)) is None
    receipt = await access.store.receipt(live.secret_id, now=NOW + timedelta(minutes=12))
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED
    with pytest.raises(SecretUnavailable):  # gone: no code for it
        await access.verify_recipient(live, None, client, now=NOW + timedelta(minutes=13))


async def test_a_code_needs_a_mailer() -> None:
    access, _, _mails, live = await mailing_gate()
    access.mailer = None
    with pytest.raises(MailUnavailable) as unavailable:
        await access.verify_recipient(live, None, ClientInfo(ip=IP), now=NOW)
    assert unavailable.value.reason == "not configured"  # for the operator's log


async def test_code_mails_past_the_verify_limit_are_refused_and_audited_on_the_secret() -> None:
    access, published, mails, live = await mailing_gate(rate_limit_verify="1/hour")
    with pytest.raises(VerificationRequired):
        await access.verify_recipient(live, None, ClientInfo(ip=IP), now=NOW)
    with pytest.raises(RateLimited) as refused:
        await access.verify_recipient(live, None, ClientInfo(ip=IP), now=NOW + timedelta(minutes=1))
    assert refused.value.limit == "verify"
    assert len(mails.sent) == 1
    limited = published.events[-1]
    assert labels(limited)[:2] == (
        AuditEventType.RATE_LIMITED,
        {"limit": "verify", "rule": "1/3600s"},
    )
    assert limited.secret_hash == published.events[0].secret_hash is not None


async def test_each_code_line_of_the_receipt_names_the_signed_in_recipient() -> None:
    """A recipient signed in while asking for codes is named (``viewer``) on every receipt line
    those codes write: sent, wrong, confirmed and the lock, so the sender sees who it was."""
    access, _, mails, live = await mailing_gate(rate_limit_verify="off")
    bob = Viewer(email=BOB, mfa=True)
    client = ClientInfo(ip=IP)
    with pytest.raises(VerificationRequired):
        await access.verify_recipient(live, None, client, now=NOW, viewer=bob)
    code = mails.sent[0][1]
    with pytest.raises(VerificationFailed):
        await access.verify_recipient(
            live, f"{(int(code) + 1) % 10**6:06d}", client, now=NOW, viewer=bob
        )
    await access.verify_recipient(live, code, client, now=NOW, viewer=bob)
    for minutes in (1, 2, 3):  # three more codes, then one asked for after the last expired
        with pytest.raises(VerificationRequired):
            await access.verify_recipient(
                live, None, client, now=NOW + timedelta(minutes=minutes), viewer=bob
            )
    with pytest.raises(CodesSpent):
        await access.verify_recipient(
            live, None, client, now=NOW + timedelta(minutes=13), viewer=bob
        )

    receipt = await access.store.receipt(live.secret_id, now=NOW + timedelta(minutes=13))
    assert receipt is not None
    assert [(line.kind, line.viewer) for line in receipt.events] == [
        (EventKind.VERIFICATION_SENT, bob),
        (EventKind.VERIFICATION_FAILED, bob),
        (EventKind.VERIFIED, bob),
        (EventKind.VERIFICATION_SENT, bob),
        (EventKind.VERIFICATION_SENT, bob),
        (EventKind.VERIFICATION_SENT, bob),
        (EventKind.LOCKED, bob),
    ]


# -- signed-in recipients and the sign-in failure gate, on the gate itself -------------------

BOUND = AccessPolicy(recipients=(BOB, "group:ops"))
MFA_BOUND = AccessPolicy(recipients=(BOB, "group:ops"), require_mfa=True)
SHOWN = "b***@example.com,group:ops"


def principal(**changes: Any) -> Principal:
    """Bob, signed in at the provider with a second factor just now, in a browser."""
    bob = Principal(subject="sub-bob", email=BOB, groups=(), mfa=True, auth_time=NOW, via="session")
    return replace(bob, **changes)


async def test_a_secret_for_anyone_needs_no_sign_in() -> None:
    access, published = gate()
    await access.check_identity(meta(AccessPolicy(), NOW), None, ClientInfo(ip=IP), now=NOW)
    assert published.events == []


@pytest.mark.parametrize("policy", [BOUND, AccessPolicy(require_mfa=True)])
async def test_an_anonymous_recipient_is_asked_to_sign_in_and_nothing_counts(
    policy: AccessPolicy,
) -> None:
    access, published = gate()
    with pytest.raises(LoginRequired) as asked:
        await access.check_identity(meta(policy, NOW), None, ClientInfo(ip=IP), now=NOW)
    assert type(asked.value) is LoginRequired  # any sign-in will do, not a fresh one
    assert str(asked.value) == (
        "This secret is for signed-in recipients: sign in, then reveal it again."
    )
    assert (asked.value.next_path, asked.value.max_age) == (f"/s/{'A' * 22}", None)
    assert published.events == []
    assert await counted(access, f"failed:{IP}", 600) == 0


@pytest.mark.parametrize(
    "user",
    [
        principal(mfa=False, auth_time=None, via="token"),  # by email, any sign-in
        principal(email="Carol@Example.com", groups=("ops",)),  # by group
    ],
)
async def test_a_matching_recipient_passes_without_mfa_when_none_is_required(
    user: Principal,
) -> None:
    access, published = gate()
    await access.check_identity(meta(BOUND, NOW), user, ClientInfo(ip=IP), now=NOW)
    assert published.events == []


async def test_a_user_who_is_no_recipient_is_refused_counted_and_named() -> None:
    access, published = gate()
    carol = principal(subject="sub-carol", email="carol@example.com", groups=("staff",))
    with pytest.raises(RecipientMismatch):
        await access.check_identity(meta(BOUND, NOW), carol, ClientInfo(ip=IP), now=NOW)
    (event,) = published.events
    assert labels(event) == (
        AuditEventType.ACCESS_DENIED_IDENTITY,
        {"rule": "recipients", "recipients": SHOWN, "require_mfa": False},
        {},
    )
    assert (event.actor_subject, event.actor_email) == ("sub-carol", "carol@example.com")
    assert (event.client_ip, event.secret_hash is not None) == (IP, True)
    assert await counted(access, f"failed:{IP}", 600) == 1
    assert await counted(access, f"failed:{IP}:{'A' * 22}", 3600) == 1


@pytest.mark.parametrize(
    ("user", "via", "mfa"),
    [
        (principal(auth_time=None, via="token"), "token", True),  # a token is never fresh
        (principal(mfa=False), "session", False),
    ],
)
async def test_mfa_needs_a_browser_sign_in_with_a_second_factor(
    user: Principal, via: str, mfa: bool
) -> None:
    access, published = gate()
    with pytest.raises(MfaRequired):
        await access.check_identity(meta(MFA_BOUND, NOW), user, ClientInfo(ip=IP), now=NOW)
    (event,) = published.events
    assert labels(event) == (
        AuditEventType.ACCESS_DENIED_IDENTITY,
        {"rule": "require_mfa", "recipients": SHOWN, "require_mfa": True},
        {"via": via, "mfa": mfa},
    )
    assert (event.actor_subject, event.actor_email) == ("sub-bob", BOB)
    assert (event.client_ip, event.secret_hash is not None) == (IP, True)
    assert await counted(access, f"failed:{IP}:{'A' * 22}", 3600) == 1


@pytest.mark.parametrize(
    "ago",
    [timedelta(seconds=120), timedelta(0), timedelta(seconds=-60)],  # -60 s: the clock skew
)
async def test_mfa_passes_with_a_sign_in_at_most_max_age_old(ago: timedelta) -> None:
    access, published = gate(recipient_max_age=120)
    bob = principal(auth_time=NOW - ago)
    await access.check_identity(meta(MFA_BOUND, NOW), bob, ClientInfo(ip=IP), now=NOW)
    assert published.events == []


@pytest.mark.parametrize(
    "auth_time",
    [None, NOW - timedelta(seconds=121), NOW + timedelta(seconds=61)],
)
async def test_mfa_with_a_stale_sign_in_asks_for_a_fresh_one_audited_not_counted(
    auth_time: datetime | None,
) -> None:
    access, published = gate(recipient_max_age=120)
    bob = principal(auth_time=auth_time)
    with pytest.raises(FreshLoginRequired) as asked:
        await access.check_identity(meta(MFA_BOUND, NOW), bob, ClientInfo(ip=IP), now=NOW)
    assert (asked.value.max_age, asked.value.next_path) == (120, f"/s/{'A' * 22}")
    (event,) = published.events
    assert labels(event) == (
        AuditEventType.ACCESS_DENIED_IDENTITY,
        {"rule": "require_mfa", "recipients": SHOWN, "require_mfa": True},
        {"via": "session", "mfa": True, "fresh": False},
    )
    assert (event.actor_subject, event.actor_email) == ("sub-bob", BOB)
    assert (event.client_ip, event.secret_hash is not None) == (IP, True)
    assert await counted(access, f"failed:{IP}", 600) == 0


async def test_a_client_past_the_failure_limit_is_refused_by_check_failures_alone() -> None:
    """The sign-in's gate: a client past ``BURNLINK_RATE_LIMIT_FAILURES`` is refused and
    audited; asking counts nothing, and other clients are not held back."""
    access, published = gate(rate_limit_failures="2/10 minutes")
    await access.check_failures(ClientInfo(ip=IP), now=NOW)
    assert await counted(access, f"failed:{IP}", 600) == 0
    for _ in range(2):
        await access.failed(ClientInfo(ip=IP), now=NOW)
    with pytest.raises(RateLimited) as refused:
        await access.check_failures(ClientInfo(ip=IP), now=NOW)
    assert refused.value.limit == "failures"
    (event,) = published.events
    assert labels(event)[:2] == (
        AuditEventType.RATE_LIMITED,
        {"limit": "failures", "rule": "2/600s"},
    )
    assert event.client_ip == IP
    await access.check_failures(ClientInfo(ip=OTHER), now=NOW)
    assert await counted(access, f"failed:{IP}", 600) == 2
