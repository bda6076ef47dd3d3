"""Sign-in through the app against the real provider: the browser's whole flow with httpx,
MFA, sessions and their timeouts, sign-out here and at the provider, CSRF, and each attack
refused (wrong state, replayed code, open redirect, a session used after sign-out, a
cross-site POST)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi import Request

from burnlink.audit import AuditEntry
from burnlink.audit.events import AuditEventType, Outcome
from burnlink.clock import FrozenClock
from burnlink.identity.freshness import require_fresh
from burnlink.identity.sessions import session_digest
from burnlink.ids import token_digest
from burnlink.store.identity import TokenRecord
from burnlink.web.principal import principal_of
from tests.identity.conftest import BASE
from tests.oidc_provider import OidcProvider
from tests.web.audited import Audited, audited_app, audited_settings

pytestmark = pytest.mark.anyio

SESSION = "burnlink_session"  # plain http on loopback: no __Host- prefix
LOGIN = "burnlink_login"
CROSS_SITE = "https://evil.example"


@dataclass
class Harness:
    audited: Audited
    provider: OidcProvider
    clock: FrozenClock

    def browser(self) -> httpx.AsyncClient:
        """A browser's view of the app (its own cookie jar)."""
        transport = httpx.ASGITransport(app=self.audited.app, client=("127.0.0.1", 40000))
        client = httpx.AsyncClient(
            transport=transport, base_url=BASE, headers={"user-agent": "Mozilla/5.0 test"}
        )
        self.audited.clients.append(client)
        return client

    async def start(self, browser: httpx.AsyncClient, **params: str) -> str:
        """``GET /auth/login``; the provider's authorization URL."""
        response = await browser.get("/auth/login", params=params)
        assert response.status_code == 302, response.text
        assert browser.cookies.get(LOGIN)
        location: str = response.headers["location"]
        assert location.startswith(self.provider.issuer)
        return location

    def at_provider(self, url: str, user: str) -> str:
        """The user signs in at the provider; the callback URL it sends them back to."""
        with httpx.Client() as provider_browser:
            return self.provider.sign_in(provider_browser, url, user)

    async def sign_in(self, browser: httpx.AsyncClient, user: str, **params: str) -> httpx.Response:
        callback = self.at_provider(await self.start(browser, **params), user)
        return await browser.get(callback)

    async def signed_in(self, user: str) -> tuple[httpx.AsyncClient, dict[str, Any]]:
        browser = self.browser()
        response = await self.sign_in(browser, user)
        assert response.status_code == 303, response.text
        me = await browser.get("/api/v1/me")
        assert me.status_code == 200, me.text
        return browser, me.json()

    async def entries(self, kind: AuditEventType) -> list[AuditEntry]:
        await self.audited.join()
        return [e for e in await self.audited.entries() if e.event.type is kind]


@asynccontextmanager
async def harness(
    provider: OidcProvider, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Harness]:
    settings = audited_settings(
        None,
        **{
            "base_url": BASE,
            "oidc_issuer": provider.issuer,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
            "oidc_scopes": "openid email profile groups",
            **overrides,
        },
    )
    clock = FrozenClock(datetime.now(UTC))
    async with audited_app(f"sqlite://{tmp_path / 'audit.db'}", settings, clock) as audited:
        yield Harness(audited, provider, clock)


@pytest.fixture
async def app(provider: OidcProvider, tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(provider, tmp_path) as running:
        yield running


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_sign_in_with_the_real_provider(app: Harness) -> None:
    browser = app.browser()

    response = await app.sign_in(browser, "alice", next="/security")

    assert response.status_code == 303
    assert response.headers["location"] == BASE + "/security"
    cookie = next(c for c in browser.cookies.jar if c.name == SESSION)
    assert not cookie.secure  # plain http on loopback
    assert "httponly" in response.headers["set-cookie"].lower()
    assert "samesite=lax" in response.headers["set-cookie"].lower()
    assert browser.cookies.get(LOGIN) is None  # the transaction is spent
    me = (await browser.get("/api/v1/me")).json()
    assert me["email"] == "alice@example.com"
    assert set(me["groups"]) == {"engineering", "admins"}
    assert me["mfa"] is True
    assert me["via"] == "session"
    assert me["auth_time"]
    assert len(me["csrf_token"]) == 43
    (entry,) = await app.entries(AuditEventType.SIGNED_IN)
    # Who signed in is the event's actor, as for every signed-in action; detail keeps the rest.
    assert entry.event.to_dict()["actor"] == {
        "subject": me["subject"],
        "email": "alice@example.com",
    }
    assert dict(entry.event.detail) == {"mfa": True}


async def test_session_is_kept_by_digest_only(app: Harness) -> None:
    browser, me = await app.signed_in("bob")
    session_id = browser.cookies[SESSION]

    record = await app.audited.store.touch_session(
        session_digest(session_id), now=app.clock.now(), idle_seconds=3600
    )

    assert record is not None
    assert record.subject == me["subject"]
    assert session_id.encode() not in repr(record).encode()
    export = "".join(e.event.to_json() for e in await app.audited.entries())
    assert session_id not in export
    assert me["csrf_token"] not in export


async def test_unverified_email_is_not_kept(app: Harness) -> None:
    _, me = await app.signed_in("carol")

    assert me["groups"] == []
    # carol's address is verified at the test provider: it is kept.
    assert me["email"] == "carol@partner.test"


async def test_anonymous_me_answers_login_required(app: Harness) -> None:
    response = await app.browser().get("/api/v1/me")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "login_required"
    assert error["login_url"] == BASE + "/auth/login?next=%2F"  # an API call returns home


async def test_mfa_required_refuses_bob_and_accepts_alice(
    provider: OidcProvider, tmp_path: Path
) -> None:
    async with harness(provider, tmp_path, oidc_require_mfa=True) as app:
        bob = app.browser()
        refused = await app.sign_in(bob, "bob")
        _, alice = await app.signed_in("alice")
        entries = await app.entries(AuditEventType.SIGN_IN_REFUSED)

    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert "second factor" in refused.text
    assert "pwd" in refused.text  # what the provider reported
    assert bob.cookies.get(SESSION) is None
    assert alice["mfa"] is True
    (entry,) = entries
    assert entry.event.outcome is Outcome.DENIED
    assert dict(entry.event.detail) == {"reason": "mfa_required"}
    assert entry.event.actor_email == "bob@example.com"
    assert entry.event.actor_subject


async def test_mfa_by_acr_is_accepted(provider: OidcProvider, tmp_path: Path) -> None:
    async with harness(
        provider,
        tmp_path,
        oidc_require_mfa=True,
        oidc_mfa_amr="hwk",
        oidc_mfa_acr="urn:burnlink:mfa",
    ) as app:
        _, alice = await app.signed_in("alice")

    assert alice["mfa"] is True


async def test_wrong_state_is_refused(app: Harness) -> None:
    browser = app.browser()
    callback = app.at_provider(await app.start(browser), "bob")

    response = await browser.get(with_query(callback, state="forged-state"))

    assert response.status_code == 400
    assert "not the one this browser started" in response.text
    assert browser.cookies.get(SESSION) is None
    assert browser.cookies.get(LOGIN) is None
    (entry,) = await app.entries(AuditEventType.SIGN_IN_REFUSED)
    assert entry.event.detail["reason"] == "state_mismatch"
    assert "actor" not in entry.event.to_dict()  # no verified ID token: nobody to name


async def test_callback_in_another_browser_is_refused(app: Harness) -> None:
    """A callback URL (code and state) taken to a browser that did not start the sign-in."""
    callback = app.at_provider(await app.start(app.browser()), "bob")
    attacker = app.browser()

    response = await attacker.get(callback)

    assert response.status_code == 400
    assert attacker.cookies.get(SESSION) is None


async def test_replayed_code_is_refused(app: Harness) -> None:
    browser = app.browser()
    url = await app.start(browser)
    transaction = browser.cookies[LOGIN]
    callback = app.at_provider(url, "bob")
    assert (await browser.get(callback)).status_code == 303

    replay = app.browser()
    replay.cookies.set(LOGIN, transaction)  # even with the spent transaction cookie
    response = await replay.get(callback)

    assert response.status_code == 400
    assert replay.cookies.get(SESSION) is None
    (entry,) = await app.entries(AuditEventType.SIGN_IN_REFUSED)
    assert entry.event.detail["reason"] == "code_refused"
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert code not in entry.event.to_json()


async def test_provider_error_is_refused_with_a_page(app: Harness) -> None:
    browser = app.browser()
    url = await app.start(browser)
    state = parse_qs(urlsplit(url).query)["state"][0]

    response = await browser.get(
        "/auth/callback", params={"state": state, "error": "access_denied"}
    )

    assert response.status_code == 400
    assert "access_denied" in response.text


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("https://evil.example/", id="absolute"),
        pytest.param("//evil.example/", id="scheme-relative"),
        pytest.param("/\\evil.example", id="backslash"),
    ],
)
async def test_open_redirect_is_refused(app: Harness, target: str) -> None:
    response = await app.sign_in(app.browser(), "bob", next=target)

    assert response.status_code == 303
    assert response.headers["location"] == BASE + "/"


async def test_sign_out_ends_the_session_here_and_at_the_provider(app: Harness) -> None:
    browser, me = await app.signed_in("bob")
    session_id = browser.cookies[SESSION]

    response = await browser.post("/auth/logout", headers={"x-burnlink-csrf": me["csrf_token"]})

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(app.provider.discovery()["end_session_endpoint"])
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == [BASE + "/"]
    assert query["client_id"] == [app.provider.client_id]
    assert browser.cookies.get(SESSION) is None
    with httpx.Client() as provider_browser:
        assert app.provider.sign_out(provider_browser, location) == BASE + "/"
    (entry,) = await app.entries(AuditEventType.SIGNED_OUT)
    assert entry.event.to_dict()["actor"] == {"subject": me["subject"], "email": me["email"]}
    assert dict(entry.event.detail) == {}

    # The old cookie, replayed, signs no one in: the session is gone from the store.
    stolen = app.browser()
    stolen.cookies.set(SESSION, session_id)
    assert (await stolen.get("/api/v1/me")).status_code == 401
    again = await stolen.post("/auth/logout", headers={"x-burnlink-csrf": me["csrf_token"]})
    assert again.status_code == 303
    assert (await stolen.get("/api/v1/me")).status_code == 401
    assert len(await app.entries(AuditEventType.SIGNED_OUT)) == 1


async def test_sign_out_for_the_page_script_answers_json(app: Harness) -> None:
    browser, me = await app.signed_in("bob")

    response = await browser.post(
        "/auth/logout",
        headers={"x-burnlink-csrf": me["csrf_token"], "accept": "application/json", "origin": BASE},
    )

    assert response.status_code == 200
    assert response.json()["logout_url"].startswith(app.provider.issuer)
    assert (await browser.get("/api/v1/me")).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"x-burnlink-csrf": "A" * 43}, id="wrong-token"),
        pytest.param({"origin": CROSS_SITE}, id="cross-origin-with-token"),
        pytest.param({"origin": "null"}, id="null-origin-with-token"),
    ],
)
async def test_cross_site_post_is_refused(app: Harness, headers: dict[str, str]) -> None:
    browser, me = await app.signed_in("bob")
    if "origin" in headers:
        headers = {**headers, "x-burnlink-csrf": me["csrf_token"]}

    response = await browser.post("/auth/logout", headers=headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert (await browser.get("/api/v1/me")).status_code == 200  # still signed in


async def test_csrf_token_of_another_session_is_refused(app: Harness) -> None:
    browser, _ = await app.signed_in("bob")
    _, other = await app.signed_in("carol")

    response = await browser.post("/auth/logout", headers={"x-burnlink-csrf": other["csrf_token"]})

    assert response.status_code == 403


async def test_idle_session_ends(provider: OidcProvider, tmp_path: Path) -> None:
    async with harness(provider, tmp_path, session_idle_timeout=600) as app:
        browser, _ = await app.signed_in("bob")
        app.clock.advance(599)
        assert (await browser.get("/api/v1/me")).status_code == 200
        app.clock.advance(599)
        assert (await browser.get("/api/v1/me")).status_code == 200
        app.clock.advance(600)
        assert (await browser.get("/api/v1/me")).status_code == 401


async def test_session_ends_at_its_absolute_limit(provider: OidcProvider, tmp_path: Path) -> None:
    async with harness(provider, tmp_path, session_idle_timeout=300, session_max_age=900) as app:
        browser, _ = await app.signed_in("bob")
        for _ in range(2):
            app.clock.advance(299)
            assert (await browser.get("/api/v1/me")).status_code == 200
        app.clock.advance(299)
        assert (await browser.get("/api/v1/me")).status_code == 200  # 897 s
        app.clock.advance(3)
        assert (await browser.get("/api/v1/me")).status_code == 401  # 900 s: over


async def test_fresh_login_asks_the_provider_for_max_age(app: Harness) -> None:
    url = await app.start(app.browser(), max_age="300")

    assert parse_qs(urlsplit(url).query)["max_age"] == ["300"]


async def test_sign_in_survives_a_key_rotation(tmp_path: Path) -> None:
    from tests.identity.conftest import CALLBACK
    from tests.oidc_provider import require_node

    require_node()
    with OidcProvider([CALLBACK]) as provider:
        async with harness(provider, tmp_path) as app:
            await app.signed_in("bob")
            provider.restart(rotate_keys=True)
            _, me = await app.signed_in("alice")

    assert me["email"] == "alice@example.com"


async def test_compose_page_offers_sign_in(app: Harness) -> None:
    page = await app.browser().get("/")

    assert 'id="account"' in page.text
    assert 'href="./auth/login"' in page.text


async def test_signing_in_again_ends_the_previous_session(app: Harness) -> None:
    browser, _ = await app.signed_in("bob")
    first = browser.cookies[SESSION]

    response = await app.sign_in(browser, "carol")

    assert response.status_code == 303
    assert browser.cookies[SESSION] != first
    stolen = app.browser()
    stolen.cookies.set(SESSION, first)
    assert (await stolen.get("/api/v1/me")).status_code == 401
    assert (await browser.get("/api/v1/me")).json()["email"] == "carol@partner.test"


async def test_fresh_login_required_answers_401_with_a_login_url(app: Harness) -> None:
    async def sensitive(request: Request) -> dict[str, str]:
        principal = await principal_of(request)
        assert principal is not None
        require_fresh(principal, app.audited.service.settings, app.clock.now())
        return {"done": "yes"}

    app.audited.app.add_api_route("/api/v1/test-sensitive", sensitive, methods=["POST"])
    browser, me = await app.signed_in("bob")
    csrf = {"x-burnlink-csrf": me["csrf_token"]}

    assert (await browser.post("/api/v1/test-sensitive", headers=csrf)).status_code == 200
    # The frozen clock started before the sign-in (auth_time is the provider's, a bit later).
    app.clock.advance(app.audited.service.settings.oidc_max_age + 30)
    response = await browser.post("/api/v1/test-sensitive", headers=csrf)

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "fresh_login_required"
    assert error["login_url"] == BASE + "/auth/login?next=%2F&max_age=300"
    assert (await browser.post("/api/v1/test-sensitive")).status_code == 403  # CSRF first


async def test_refused_callbacks_count_as_failures_and_are_rate_limited(
    provider: OidcProvider, tmp_path: Path
) -> None:
    """Each refused callback counts against the client like a failed reveal; past
    ``BURNLINK_RATE_LIMIT_FAILURES`` the client gets 429 (audited as ``rate.limited``), even
    with a good callback, and the provider is not asked."""
    async with harness(provider, tmp_path, rate_limit_failures="2/hour") as app:
        attacker = app.browser()
        for _ in range(2):
            callback = app.at_provider(await app.start(attacker), "bob")
            refused = await attacker.get(with_query(callback, state="forged-state"))
            assert refused.status_code == 400

        # The third try, a genuine one from the same address: refused before any exchange.
        callback = app.at_provider(await app.start(attacker), "bob")
        limited = await attacker.get(callback)

        assert limited.status_code == 429
        assert 0 < int(limited.headers["retry-after"]) <= 3600
        assert "text/html" in limited.headers["content-type"]
        assert "Too many failed attempts" in limited.text
        assert attacker.cookies.get(SESSION) is None
        assert len(await app.entries(AuditEventType.SIGN_IN_REFUSED)) == 2
        (event,) = await app.entries(AuditEventType.RATE_LIMITED)
        assert event.event.policy["limit"] == "failures"
        # Lifted (as `burnlink unlock` does), the address can sign in again.
        await app.audited.service.access.limiter.unlock("127.0.0.1", now=app.clock.now())
        assert (await app.sign_in(attacker, "bob")).status_code == 303


async def test_sign_in_over_plain_http_off_loopback_is_refused(
    provider: OidcProvider, tmp_path: Path
) -> None:
    """Without ``BURNLINK_BASE_URL`` the request's own origin decides: over plain http to a
    name that is not loopback, no sign-in starts and no cookie is set (it could not be
    ``Secure``), with a page that says what to configure."""
    async with harness(
        provider, tmp_path, base_url=None, allowed_hosts="burnlink.example.com"
    ) as app:
        browser = app.browser()
        browser.base_url = httpx.URL("http://burnlink.example.com")
        refused = await browser.get("/auth/login")

    assert refused.status_code == 400
    assert "text/html" in refused.headers["content-type"]
    assert "BURNLINK_BASE_URL" in refused.text
    assert not browser.cookies


async def test_a_sign_in_gives_the_users_tokens_the_groups_it_brings(app: Harness) -> None:
    """A token made while its user was in other groups (here: put in the store as an older
    release's token would be) is held to the groups of the user's latest sign-in."""
    _, me = await app.signed_in("alice")
    now = app.clock.now()
    old = TokenRecord(
        token_id="tok_oldgroupstoken01",
        digest=token_digest(b"an older token of alice's"),
        subject=me["subject"],
        email="alice@old.example",
        groups=("a-team-she-left",),
        name="older",
        scopes=("secrets:create",),
        created_at=now - timedelta(days=30),
        expires_at=now + timedelta(days=30),
    )
    await app.audited.store.put_token(old)

    await app.signed_in("alice")

    (kept,) = await app.audited.store.list_tokens(me["subject"], now=now)
    assert set(kept.groups) == {"engineering", "admins"}
    assert kept.email == "alice@example.com"
