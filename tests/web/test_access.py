"""Per-secret access rules and server policy, through the API (docs/access.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.errors import ConfigError, MailUnavailable
from burnlink.mailer import SmtpMailer
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from tests.mail import Outbox
from tests.servers import free_port

pytestmark = pytest.mark.anyio


class Countries:
    """A fixed map of addresses to countries: the test double for a GeoIP database."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    def country_of(self, ip: str | None) -> str | None:
        return self.table.get(ip or "")


GEO = Countries({"198.51.100.1": "DE", "198.51.100.2": "FR", "2001:db8::1": "DE"})


def make_client(
    settings: Settings, clock: FrozenClock, ip: str = "198.51.100.1", **app_options: Any
) -> tuple[FastAPI, httpx.AsyncClient]:
    app = create_app(
        settings, MemoryStore(retention=timedelta(days=30)), clock, geo=GEO, **app_options
    )
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return app, httpx.AsyncClient(transport=transport, base_url="http://burnlink.test")


@pytest.fixture
async def api(clock: FrozenClock) -> AsyncIterator[Any]:
    """A factory of clients on one app, each with its own client address."""
    settings = load_settings(store="memory://")
    app = create_app(settings, MemoryStore(retention=timedelta(days=30)), clock, geo=GEO)
    clients: list[httpx.AsyncClient] = []

    def client_from(ip: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        client = httpx.AsyncClient(
            transport=transport, base_url="http://burnlink.test", headers=headers
        )
        clients.append(client)
        return client

    async with app.router.lifespan_context(app):
        yield client_from
    for client in clients:
        await client.aclose()


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/secrets", json={"secret": "s3cret", **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def reveal(
    client: httpx.AsyncClient, created: dict[str, Any], **extra: Any
) -> httpx.Response:
    key = created["url"].split("#")[1]
    return await client.post(f"/api/v1/secrets/{created['id']}/reveal", json={"key": key, **extra})


async def events(client: httpx.AsyncClient, created: dict[str, Any]) -> list[str]:
    token = created["manage_url"].split("#")[1]
    receipt = await client.get(
        f"/api/v1/secrets/{created['id']}/receipt", headers={"authorization": f"Bearer {token}"}
    )
    return [e["type"] for e in receipt.json()["events"]]


# -- IP rules -----------------------------------------------------------------------------


async def test_allowed_ips_admit_listed_networks(api: Any) -> None:
    sender = api("192.0.2.10")
    created = await create(sender, allowed_ips=["203.0.113.0/24", "2001:db8::/32"], max_views=3)

    assert (await reveal(api("203.0.113.77"), created)).status_code == 200
    assert (await reveal(api("2001:db8:ffff::1"), created)).status_code == 200
    assert (await reveal(api("::ffff:203.0.113.5"), created)).status_code == 200


async def test_allowed_ips_refuse_others_without_consuming(api: Any) -> None:
    sender = api("192.0.2.10")
    created = await create(sender, allowed_ips=["203.0.113.0/24"])

    refused = await reveal(api("198.51.100.9"), created)
    refused_v6 = await reveal(api("2001:db8::9"), created)

    for response in (refused, refused_v6):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "ip_denied"
        assert "s3cret" not in response.text
    assert (await reveal(api("203.0.113.1"), created)).json()["secret"] == "s3cret"
    assert await events(sender, created) == ["created", "ip_denied", "ip_denied", "viewed"]


@pytest.mark.parametrize(
    "networks",
    [["not-an-ip"], ["10.0.0.0/33"], ["1.2.3.4/8/9"], ["x"] * 51],
)
async def test_allowed_ips_are_validated(api: Any, networks: list[str]) -> None:
    response = await api("192.0.2.10").post(
        "/api/v1/secrets", json={"secret": "x", "allowed_ips": networks}
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "allowed_ips"


# -- country rules ------------------------------------------------------------------------


async def test_allowed_countries(api: Any) -> None:
    created = await create(api("192.0.2.10"), allowed_countries=["de"], max_views=5)

    german = await reveal(api("198.51.100.1"), created)
    french = await reveal(api("198.51.100.2"), created)
    unknown = await reveal(api("198.51.100.3"), created)

    assert german.status_code == 200
    assert (french.status_code, french.json()["error"]["code"]) == (403, "geo_denied")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (403, "geo_denied")
    assert german.json()["views_left"] == 4


async def test_denied_countries(api: Any) -> None:
    created = await create(api("192.0.2.10"), denied_countries=["FR"], max_views=5)

    assert (await reveal(api("198.51.100.2"), created)).json()["error"]["code"] == "geo_denied"
    assert (await reveal(api("198.51.100.1"), created)).status_code == 200
    assert (await reveal(api("198.51.100.3"), created)).status_code == 200  # unknown: not named


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"allowed_countries": ["XX"]}, "allowed_countries"),
        ({"denied_countries": ["Germany"]}, "denied_countries"),
        ({"allowed_countries": ["DE"], "denied_countries": ["de"]}, "denied_countries"),
    ],
)
async def test_countries_are_validated(api: Any, fields: dict[str, Any], field: str) -> None:
    response = await api("192.0.2.10").post("/api/v1/secrets", json={"secret": "x", **fields})

    assert response.status_code == 422
    assert response.json()["error"]["field"].startswith(field)


async def test_server_allowed_countries_apply_to_every_secret(clock: FrozenClock) -> None:
    settings = load_settings(store="memory://", allowed_countries="DE")
    app, client = make_client(settings, clock, ip="198.51.100.2")
    async with app.router.lifespan_context(app), client:
        created = await create(client)
        french = await reveal(client, created)

    assert (french.status_code, french.json()["error"]["code"]) == (403, "geo_denied")


# -- recipient verification ---------------------------------------------------------------


@pytest.fixture
async def mailing(clock: FrozenClock, outbox: Outbox) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        store="memory://",
        smtp_url=f"smtp://127.0.0.1:{outbox.port}",
        smtp_from="burnlink@example.org",
        # These tests spend all 15 tries of a secret's codes from one client.
        rate_limit_secret_failures="20/hour",
    )
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        yield client


async def test_recipient_must_enter_the_mailed_code(
    mailing: httpx.AsyncClient, outbox: Outbox
) -> None:
    created = await create(mailing, recipient_email="Bob@Example.COM", max_views=2)
    key = created["url"].split("#")[1]

    first = await reveal(mailing, created)
    code = outbox.codes()[-1]
    revealed = await reveal(mailing, created, otp=code)

    assert first.status_code == 401
    assert first.json()["error"]["code"] == "verification_required"
    assert first.json()["error"]["hint"] == "B***@example.com"
    assert first.headers["www-authenticate"].startswith("OTP")
    sender, recipients, message = outbox.messages[-1]
    assert (sender, recipients) == ("burnlink@example.org", ["Bob@example.com"])
    raw = message.as_string()
    for needle in (key, created["id"], "s3cret", "http"):
        assert needle not in raw
    assert revealed.status_code == 200
    assert revealed.json()["secret"] == "s3cret"
    assert await events(mailing, created) == [
        "created",
        "verification_sent",
        "verified",
        "viewed",
    ]


async def test_code_is_single_use(mailing: httpx.AsyncClient, outbox: Outbox) -> None:
    created = await create(mailing, recipient_email="bob@example.com", max_views=2)
    await reveal(mailing, created)
    code = outbox.codes()[-1]
    assert (await reveal(mailing, created, otp=code)).status_code == 200

    again = await reveal(mailing, created, otp=code)

    assert again.status_code == 401
    assert again.json()["error"]["code"] == "verification_required"


async def test_wrong_codes_count_down_then_a_new_code_is_needed(
    mailing: httpx.AsyncClient, outbox: Outbox, clock: FrozenClock
) -> None:
    created = await create(mailing, recipient_email="bob@example.com")
    await reveal(mailing, created)
    code = outbox.codes()[-1]
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    answers = [await reveal(mailing, created, otp=wrong) for _ in range(5)]
    stale = await reveal(mailing, created, otp=code)
    clock.advance(61)
    resent = await reveal(mailing, created)

    assert [a.json()["error"]["attempts_left"] for a in answers] == [4, 3, 2, 1, 0]
    assert {a.json()["error"]["code"] for a in answers} == {"verification_failed"}
    assert stale.json()["error"]["code"] == "verification_required"
    assert resent.json()["error"]["code"] == "verification_required"
    assert len(outbox.messages) == 2
    fresh = outbox.codes()[-1]
    assert (await reveal(mailing, created, otp=fresh)).status_code == 200


async def test_codes_are_not_resent_within_a_minute(
    mailing: httpx.AsyncClient, outbox: Outbox, clock: FrozenClock
) -> None:
    created = await create(mailing, recipient_email="bob@example.com")
    await reveal(mailing, created)

    too_soon = await reveal(mailing, created)
    clock.advance(61)
    resent = await reveal(mailing, created)

    assert "less than a minute ago" in too_soon.json()["error"]["message"]
    assert resent.json()["error"]["code"] == "verification_required"
    assert len(outbox.messages) == 2
    assert (await reveal(mailing, created, otp=outbox.codes()[-1])).status_code == 200


async def test_used_up_code_does_not_make_room_for_a_new_one_at_once(
    mailing: httpx.AsyncClient, outbox: Outbox, clock: FrozenClock
) -> None:
    created = await create(mailing, recipient_email="bob@example.com")
    await reveal(mailing, created)
    wrong = f"{(int(outbox.codes()[-1]) + 1) % 10**6:06d}"
    for _ in range(5):
        await reveal(mailing, created, otp=wrong)

    again = [await reveal(mailing, created) for _ in range(3)]

    assert {(a.status_code, a.json()["error"]["code"]) for a in again} == {
        (401, "verification_required")
    }
    assert "less than a minute ago" in again[0].json()["error"]["message"]
    assert len(outbox.messages) == 1


@pytest.mark.parametrize("spend", ["wrong-codes", "expiry"])
async def test_secret_locks_when_its_codes_are_spent(
    mailing: httpx.AsyncClient, outbox: Outbox, clock: FrozenClock, spend: str
) -> None:
    created = await create(mailing, recipient_email="bob@example.com", max_views=2)
    for _ in range(3):
        sent = await reveal(mailing, created)
        assert sent.json()["error"]["code"] == "verification_required", sent.text
        if spend == "wrong-codes":
            wrong = f"{(int(outbox.codes()[-1]) + 1) % 10**6:06d}"
            for _ in range(5):
                await reveal(mailing, created, otp=wrong)
        else:
            clock.advance(600)
        clock.advance(61)

    locked = await reveal(mailing, created)
    after = await reveal(mailing, created)

    assert len(outbox.messages) == 3
    assert locked.status_code == 401
    assert locked.json()["error"]["code"] == "verification_failed"
    assert locked.json()["error"]["attempts_left"] == 0
    assert "destroyed" in locked.json()["error"]["message"]
    assert after.status_code == 404
    token = created["manage_url"].split("#")[1]
    receipt = await mailing.get(
        f"/api/v1/secrets/{created['id']}/receipt", headers={"authorization": f"Bearer {token}"}
    )
    assert receipt.json()["state"] == "locked"
    assert receipt.json()["events"][-1]["type"] == "locked"


async def test_each_view_gets_its_own_codes(
    mailing: httpx.AsyncClient, outbox: Outbox, clock: FrozenClock
) -> None:
    created = await create(mailing, recipient_email="bob@example.com", max_views=4)

    for _ in range(4):
        await reveal(mailing, created)
        assert (await reveal(mailing, created, otp=outbox.codes()[-1])).status_code == 200

    assert len(outbox.messages) == 4


async def test_code_expires_after_ten_minutes(
    mailing: httpx.AsyncClient, outbox: Outbox, clock: FrozenClock
) -> None:
    created = await create(mailing, recipient_email="bob@example.com")
    await reveal(mailing, created)
    clock.advance(600)

    response = await reveal(mailing, created, otp=outbox.codes()[-1])

    assert response.json()["error"]["code"] == "verification_required"


async def test_verification_comes_before_the_passphrase(
    mailing: httpx.AsyncClient, outbox: Outbox
) -> None:
    """A leaked link without the inbox cannot spend the passphrase attempts."""
    created = await create(mailing, recipient_email="bob@example.com", passphrase="pw")

    for _ in range(3):
        response = await reveal(mailing, created, passphrase="guess", otp="000000")
        assert response.status_code == 401

    await reveal(mailing, created)
    response = await reveal(mailing, created, passphrase="pw", otp=outbox.codes()[-1])
    assert response.json()["secret"] == "s3cret"


async def test_e2e_info_names_the_verification(mailing: httpx.AsyncClient) -> None:
    from burnlink.crypto import derive_keys
    from burnlink.ids import b64url_decode, b64url_encode

    created = await create(mailing, recipient_email="bob@example.com")
    key = b64url_decode(created["url"].split("#")[1], field="key")
    token = b64url_encode(derive_keys(key).access_token)

    info = await mailing.get(
        f"/api/v1/secrets/{created['id']}", headers={"authorization": f"Bearer {token}"}
    )

    assert info.json()["verification"] == {"method": "email", "hint": "b***@example.com"}


async def test_recipient_email_needs_smtp(api: Any) -> None:
    response = await api("192.0.2.10").post(
        "/api/v1/secrets", json={"secret": "x", "recipient_email": "bob@example.com"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "recipient_email"


@pytest.mark.parametrize(
    "address",
    [
        "bob",
        "bob@",
        "@example.com",
        "bob@example",
        "a b@c.de",
        pytest.param("root,victim@example.com", id="comma-list"),
        pytest.param("root;victim@example.com", id="semicolon-list"),
        pytest.param("bob@example.com, eve@example.org", id="two-addresses"),
        pytest.param("<victim@example.com>", id="angle-brackets"),
        pytest.param("Bob <bob@example.com>", id="display-name"),
        pytest.param("bob(comment)@example.com", id="comment"),
        pytest.param('"root,victim"@example.com', id="quoted-local"),
        pytest.param("bob@[127.0.0.1]", id="domain-literal"),
        pytest.param("bob..x@example.com", id="double-dot"),
        pytest.param("bob@-example.com", id="hyphen-label"),
        pytest.param("bob@example.test", id="reserved-domain"),
    ],
)
async def test_recipient_email_is_validated(
    mailing: httpx.AsyncClient, outbox: Outbox, address: str
) -> None:
    response = await mailing.post(
        "/api/v1/secrets", json={"secret": "x", "recipient_email": address}
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "recipient_email"
    assert outbox.messages == []


async def test_code_mail_has_exactly_the_one_envelope_recipient(outbox: Outbox) -> None:
    mailer = SmtpMailer.from_url(
        f"smtp://127.0.0.1:{outbox.port}", "burnlink <noreply@example.org>"
    )

    await mailer.send_code("bob@example.com", "123456", minutes_valid=10)
    with pytest.raises(MailUnavailable):
        # A secret stored before addresses were checked this strictly.
        await mailer.send_code("root,victim@example.com", "123456", minutes_valid=10)

    assert [(sender, rcpts) for sender, rcpts, _ in outbox.messages] == [
        ("noreply@example.org", ["bob@example.com"])
    ]
    assert outbox.messages[0][2]["From"] == "burnlink <noreply@example.org>"


@pytest.mark.parametrize("sender", ["a,b@example.org", "x", "a@example.org, b@example.org"])
def test_smtp_from_must_be_one_address(sender: str) -> None:
    with pytest.raises(ConfigError, match="BURNLINK_SMTP_FROM"):
        load_settings(store="memory://", smtp_url="smtp://127.0.0.1:25", smtp_from=sender)


async def test_mail_failure_is_503(clock: FrozenClock) -> None:
    settings = load_settings(
        store="memory://", smtp_url=f"smtp://127.0.0.1:{free_port()}", smtp_from="a@example.org"
    )
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        created = await create(client, recipient_email="bob@example.com")
        response = await reveal(client, created)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "mail_unavailable"


def test_smtp_url_parsing() -> None:
    mailer = SmtpMailer.from_url("smtp://user%40x:p%3Ass@mail.example.com:587?starttls=1", "f@x.y")

    assert (mailer.host, mailer.port, mailer.starttls, mailer.implicit_tls) == (
        "mail.example.com",
        587,
        True,
        False,
    )
    assert (mailer.username, mailer.password) == ("user@x", "p:ss")
    assert "p:ss" not in repr(mailer)
    assert SmtpMailer.from_url("smtps://mail.example.com", "f@x.y").port == 465


# -- who the client is --------------------------------------------------------------------


async def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(api: Any) -> None:
    created = await create(api("192.0.2.10"), allowed_ips=["203.0.113.0/24"])
    spoofer = api(
        "198.51.100.9",
        headers={"x-forwarded-for": "203.0.113.5", "forwarded": "for=203.0.113.5"},
    )

    response = await reveal(spoofer, created)

    assert response.json()["error"]["code"] == "ip_denied"


async def test_trusted_proxy_forwards_the_client_address(clock: FrozenClock) -> None:
    settings = load_settings(store="memory://", trusted_proxies="10.0.0.0/8")
    app, proxy = make_client(settings, clock, ip="10.1.2.3")
    async with app.router.lifespan_context(app), proxy:
        created = await create(proxy, allowed_ips=["203.0.113.0/24"], max_views=5)
        # The client wrote a fake first hop; the proxy appended the real address.
        allowed = await proxy.post(
            f"/api/v1/secrets/{created['id']}/reveal",
            json={"key": created["url"].split("#")[1]},
            headers={"x-forwarded-for": "198.51.100.66, 203.0.113.5"},
        )
        refused = await proxy.post(
            f"/api/v1/secrets/{created['id']}/reveal",
            json={"key": created["url"].split("#")[1]},
            headers={"x-forwarded-for": "203.0.113.5, 198.51.100.66"},
        )
        receipt_ips = await proxy.get(
            f"/api/v1/secrets/{created['id']}/receipt",
            headers={"authorization": "Bearer " + created["manage_url"].split("#")[1]},
        )

    assert allowed.status_code == 200
    assert refused.json()["error"]["code"] == "ip_denied"
    assert [e["ip"] for e in receipt_ips.json()["events"]][1:] == ["203.0.113.5", "198.51.100.66"]


@pytest.mark.parametrize(
    ("header", "lines"),
    [
        pytest.param(
            "x-forwarded-for",
            [("x-forwarded-for", "203.0.113.5"), ("x-forwarded-for", "198.51.100.66")],
            id="second-x-forwarded-for-line",
        ),
        pytest.param(
            "x-forwarded-for",
            [("forwarded", "for=203.0.113.5"), ("x-forwarded-for", "198.51.100.66")],
            id="client-forwarded-beside-x-forwarded-for",
        ),
        pytest.param(
            "forwarded",
            [("forwarded", "for=203.0.113.5"), ("forwarded", "for=198.51.100.66")],
            id="second-forwarded-line",
        ),
        pytest.param(
            "forwarded",
            [("x-forwarded-for", "203.0.113.5"), ("forwarded", "for=198.51.100.66")],
            id="client-x-forwarded-for-beside-forwarded",
        ),
        pytest.param(
            "x-real-ip",
            [("x-forwarded-for", "203.0.113.5"), ("x-real-ip", "198.51.100.66")],
            id="client-x-forwarded-for-beside-x-real-ip",
        ),
    ],
)
async def test_trusted_proxy_header_is_read_whole_and_alone(
    clock: FrozenClock, header: str, lines: list[tuple[str, str]]
) -> None:
    """Every line of the configured header counts, in order; the other headers are ignored."""
    settings = load_settings(store="memory://", trusted_proxies="10.0.0.0/8", proxy_header=header)
    app, proxy = make_client(settings, clock, ip="10.1.2.3")
    async with app.router.lifespan_context(app), proxy:
        created = await create(proxy, allowed_ips=["203.0.113.0/24"])
        refused = await proxy.post(
            f"/api/v1/secrets/{created['id']}/reveal",
            json={"key": created["url"].split("#")[1]},
            headers=lines,
        )
        receipt = await proxy.get(
            f"/api/v1/secrets/{created['id']}/receipt",
            headers={"authorization": "Bearer " + created["manage_url"].split("#")[1]},
        )

    assert refused.json()["error"]["code"] == "ip_denied"
    assert receipt.json()["events"][-1]["ip"] == "198.51.100.66"


# -- rate limits and server policy --------------------------------------------------------


async def test_create_rate_limit_answers_429_with_retry_after(clock: FrozenClock) -> None:
    clock.advance(60 - clock.now().timestamp() % 60 + 20)  # 20 s into a minute
    settings = load_settings(store="memory://", rate_limit_create="3/minute")
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        statuses = [
            (await client.post("/api/v1/secrets", json={"secret": "x"})).status_code
            for _ in range(3)
        ]
        limited = await client.post("/api/v1/secrets", json={"secret": "x"})
        clock.advance(40)
        later = await client.post("/api/v1/secrets", json={"secret": "x"})

    assert statuses == [201, 201, 201]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.headers["retry-after"] == "40"
    assert later.status_code == 201


async def test_reveal_rate_limit_is_per_client(clock: FrozenClock) -> None:
    settings = load_settings(store="memory://", rate_limit_reveal="2/minute")
    store = MemoryStore(retention=timedelta(days=30))
    app = create_app(settings, store, clock, geo=GEO)
    one = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.1", 1)), base_url="http://t"
    )
    two = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.2", 1)), base_url="http://t"
    )
    async with app.router.lifespan_context(app), one, two:
        created = await create(one, max_views=10)
        first = [(await reveal(one, created)).status_code for _ in range(3)]
        other = await reveal(two, created)

    assert first == [200, 200, 429]
    assert other.status_code == 200


async def test_repeated_failures_lock_the_client_out(clock: FrozenClock) -> None:
    settings = load_settings(store="memory://", rate_limit_failures="3/hour")
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        created = await create(client)
        for _ in range(3):
            await client.post(f"/api/v1/secrets/{created['id']}/reveal", json={"key": "A" * 43})
        right_key = await reveal(client, created)
        # The lock is on revealing: the same client may still create.
        made = await client.post("/api/v1/secrets", json={"secret": "new"})
        clock.advance(3600)
        later = await reveal(client, created)

    assert right_key.status_code == 429
    assert made.status_code == 201
    assert later.status_code == 200


def test_the_client_wide_failure_lock_is_short_by_default() -> None:
    """An office behind one address must not be locked out for an hour by one person."""
    settings = load_settings(store="memory://")
    client_wide, per_secret = settings.limit("failures"), settings.limit("secret_failures")

    assert client_wide is not None
    assert per_secret is not None
    assert client_wide.window <= 600
    assert per_secret.count < client_wide.count


async def used_link(client: httpx.AsyncClient) -> dict[str, Any]:
    """A secret whose one view is taken: opening its link again is a failed reveal."""
    created = await create(client)
    assert (await reveal(client, created)).status_code == 200
    return created


async def test_failures_on_one_link_lock_that_link_for_that_client_first(
    clock: FrozenClock,
) -> None:
    settings = load_settings(
        store="memory://", rate_limit_secret_failures="3/hour", rate_limit_failures="10/10 minutes"
    )
    app, client = make_client(settings, clock)
    neighbour = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.2", 1)), base_url="http://t"
    )
    async with app.router.lifespan_context(app), client, neighbour:
        created = await create(client, max_views=5)
        wrong = {"id": created["id"], "url": "x#" + "A" * 43}
        failed = [(await reveal(client, wrong)).status_code for _ in range(3)]
        locked = await reveal(client, created)
        other_link = await reveal(client, await create(client))
        other_client = await reveal(neighbour, created)

    assert failed == [404, 404, 404]
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "rate_limited"
    assert "on this link from your network" in locked.json()["error"]["message"]
    assert int(locked.headers["retry-after"]) >= 1
    assert (other_link.status_code, other_client.status_code) == (200, 200)


async def test_client_wide_lock_says_why_and_for_how_long(clock: FrozenClock) -> None:
    clock.advance(600 - clock.now().timestamp() % 600 + 120)  # 2 minutes into 10
    settings = load_settings(store="memory://", rate_limit_failures="5/10 minutes")
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        # Re-opening links already used, as a new user trying things out does.
        for _ in range(5):
            assert (await reveal(client, await used_link(client))).status_code == 404
        fresh = await create(client)
        locked = await reveal(client, fresh)
        clock.advance(480)
        later = await reveal(client, fresh)

    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "480"
    error = locked.json()["error"]
    assert (error["code"], error["retry_after"]) == ("rate_limited", 480)
    assert error["message"].startswith("Too many failed attempts from your network")
    assert error["message"].endswith("try again in 8 minutes.")
    assert later.status_code == 200


async def test_require_passphrase(clock: FrozenClock) -> None:
    settings = load_settings(store="memory://", require_passphrase=True)
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        without = await client.post("/api/v1/secrets", json={"secret": "x"})
        with_one = await client.post("/api/v1/secrets", json={"secret": "x", "passphrase": "p"})

    assert without.status_code == 422
    assert without.json()["error"]["field"] == "passphrase"
    assert with_one.status_code == 201


async def test_require_passphrase_holds_for_e2e_envelopes(clock: FrozenClock) -> None:
    from burnlink.crypto import Payload, seal
    from burnlink.ids import b64url_encode

    settings = load_settings(store="memory://", require_passphrase=True)
    sealed = seal(Payload(b"x"), bytes(32))
    app, client = make_client(settings, clock)
    async with app.router.lifespan_context(app), client:
        response = await client.post(
            "/api/v1/secrets",
            json={
                "envelope": sealed.envelope.to_json(),
                "access_token": b64url_encode(sealed.keys.access_token),
            },
        )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "passphrase"


async def test_create_allowed_ips(clock: FrozenClock) -> None:
    settings = load_settings(store="memory://", create_allowed_ips="192.0.2.0/24")
    app, outsider = make_client(settings, clock, ip="198.51.100.1")
    office = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("192.0.2.44", 1)), base_url="http://t"
    )
    async with app.router.lifespan_context(app), outsider, office:
        refused = await outsider.post("/api/v1/secrets", json={"secret": "x"})
        created = await office.post("/api/v1/secrets", json={"secret": "x"})
        revealed = await reveal(outsider, created.json())

    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "ip_denied")
    assert created.status_code == 201
    assert revealed.status_code == 200  # the rule is about creating, not reading
