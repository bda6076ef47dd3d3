"""Team policies through the app, for users signed in at the real OpenID provider
(``tests/oidc_provider.py``): alice (groups engineering and admins), bob (sales) and carol
(no group, partner.test). Every create path is held to the same rules: curl mode and
end-to-end mode, with a browser session and with an API token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from burnlink.crypto import Payload, seal
from burnlink.errors import StorageUnavailable
from burnlink.ids import b64url_encode
from burnlink.models import SecretMeta
from burnlink.store.identity import SessionRecord
from tests.identity.test_signin_flow import Harness, harness
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.anyio

TEAMS: dict[str, Any] = {
    "engineering": {"max_ttl": "1h", "max_views": 3, "allowed_countries": ["DE", "FR"]},
    "admins": {"require_passphrase": True},
    "sales": {"recipients_inside": True, "recipients_require_mfa": True},
}
TEAM_SETTINGS: dict[str, Any] = {"teams": TEAMS, "organisation_domains": ["example.com"]}


@pytest.fixture
async def app(provider: OidcProvider, tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(provider, tmp_path, **TEAM_SETTINGS) as running:
        yield running


class Sender:
    """A signed-in user creating secrets by one path: a session or an API token, curl mode
    or end-to-end mode."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], mode: str) -> None:
        self.client = client
        self.headers = headers
        self.mode = mode

    async def create(self, passphrase: str | None = None, **fields: Any) -> httpx.Response:
        body: dict[str, Any]
        if self.mode == "curl":
            body = {"secret": "s3cret", **fields}
            if passphrase is not None:
                body["passphrase"] = passphrase
        else:
            sealed = seal(Payload(b"s3cret"), bytes(32), passphrase=passphrase)
            body = {
                "envelope": sealed.envelope.to_json(),
                "access_token": b64url_encode(sealed.keys.access_token),
                **fields,
            }
            if sealed.keys.passphrase_proof is not None:
                body["passphrase_proof"] = b64url_encode(sealed.keys.passphrase_proof)
        return await self.client.post("/api/v1/secrets", json=body, headers=self.headers)


PATHS = [
    pytest.param(("session", "curl"), id="session-curl"),
    pytest.param(("session", "e2e"), id="session-e2e"),
    pytest.param(("token", "curl"), id="token-curl"),
    pytest.param(("token", "e2e"), id="token-e2e"),
]


async def sender(app: Harness, user: str, path: tuple[str, str]) -> Sender:
    via, mode = path
    browser, me = await app.signed_in(user)
    csrf = {"X-Burnlink-CSRF": me["csrf_token"]}
    if via == "session":
        return Sender(browser, csrf, mode)
    made = await browser.post(
        "/api/v1/me/tokens", json={"name": "ci", "scopes": ["secrets:create"]}, headers=csrf
    )
    assert made.status_code == 201, made.text
    return Sender(app.browser(), {"authorization": f"Bearer {made.json()['token']}"}, mode)


async def stored(app: Harness, response: httpx.Response) -> SecretMeta:
    assert response.status_code == 201, response.text
    meta = await app.audited.store.peek(response.json()["id"], now=app.clock.now())
    assert meta is not None
    return meta


def refused(response: httpx.Response, field: str, teams: list[str]) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"], error["teams"]) == ("team_policy", field, teams)


@pytest.mark.parametrize("path", PATHS)
async def test_team_rules_are_applied_and_enforced_on_every_path(
    app: Harness, path: tuple[str, str]
) -> None:
    alice = await sender(app, "alice", path)

    applied = await alice.create(passphrase="correct horse")
    too_long = await alice.create(passphrase="correct horse", ttl=7200)
    too_many = await alice.create(passphrase="correct horse", max_views=4)
    no_passphrase = await alice.create()
    elsewhere = await alice.create(passphrase="correct horse", allowed_countries=["US"])
    narrower = await alice.create(passphrase="correct horse", allowed_countries=["FR"])

    meta = await stored(app, applied)
    # No TTL given: the server's default (a day) cut to engineering's hour.
    assert meta.expires_at - meta.created_at == timedelta(hours=1)
    assert meta.policy.allowed_countries == ("DE", "FR")
    refused(too_long, "ttl", ["engineering"])
    refused(too_many, "max_views", ["engineering"])
    refused(no_passphrase, "passphrase", ["admins"])
    refused(elsewhere, "allowed_countries", ["engineering"])
    assert (await stored(app, narrower)).policy.allowed_countries == ("FR",)
    assert too_long.json()["error"]["message"] == (
        "Your teams allow a lifetime of at most 3600 seconds."
    )


@pytest.mark.parametrize("path", PATHS)
async def test_recipient_rules_are_enforced_on_every_path(
    app: Harness, path: tuple[str, str]
) -> None:
    bob = await sender(app, "bob", path)

    none = await bob.create()
    outside = await bob.create(recipients=["alice@example.com", "carol@example.net"])
    outside_domain = await bob.create(recipients=["domain:example.net"])
    inside = await bob.create(recipients=["alice@example.com", "group:engineering"])

    refused(none, "recipients", ["sales"])
    refused(outside, "recipients", ["sales"])
    assert "example.com" in outside.json()["error"]["message"]
    assert "carol" not in outside.json()["error"]["message"]
    refused(outside_domain, "recipients", ["sales"])
    meta = await stored(app, inside)
    assert meta.policy.require_mfa is True
    assert meta.policy.recipients == ("alice@example.com", "group:engineering")


async def test_a_user_in_no_team_gets_the_server_policy(app: Harness) -> None:
    carol = await sender(app, "carol", ("session", "curl"))

    created = await carol.create(ttl=7 * 86400, max_views=50)

    meta = await stored(app, created)
    assert meta.expires_at - meta.created_at == timedelta(days=7)
    assert meta.policy.allowed_countries == ()
    assert meta.policy.require_mfa is False


async def test_an_anonymous_create_gets_the_server_policy(app: Harness) -> None:
    created = await app.browser().post("/api/v1/secrets", json={"secret": "s", "max_views": 50})

    meta = await stored(app, created)
    assert meta.expires_at - meta.created_at == timedelta(days=1)


async def test_policy_answers_the_callers_rules(app: Harness) -> None:
    alice, _ = await app.signed_in("alice")
    bob, _ = await app.signed_in("bob")

    anonymous = (await app.browser().get("/api/v1/policy")).json()
    for_alice = (await alice.get("/api/v1/policy")).json()
    for_bob = (await bob.get("/api/v1/policy")).json()

    assert (anonymous["teams"], anonymous["max_ttl"], anonymous["default_ttl"]) == (
        [],
        30 * 86400,
        86400,
    )
    assert anonymous["may_create"] is True
    assert for_alice["teams"] == ["engineering", "admins"]
    assert (for_alice["max_ttl"], for_alice["default_ttl"], for_alice["max_views"]) == (
        3600,
        3600,
        3,
    )
    assert for_alice["require_passphrase"] is True
    assert for_alice["team_countries"] == ["DE", "FR"]
    assert for_alice["recipients_required"] is False
    assert for_alice["imposed_by"] == {
        "ttl": ["engineering"],
        "max_views": ["engineering"],
        "allowed_countries": ["engineering"],
        "passphrase": ["admins"],
    }
    assert for_bob["teams"] == ["sales"]
    assert for_bob["recipients_required"] is True
    assert for_bob["recipients_inside"] is True
    assert for_bob["recipients_require_mfa"] is True
    assert for_bob["organisation_domains"] == ["example.com"]
    assert for_bob["team_countries"] is None


async def test_policy_with_an_api_token_answers_its_users_rules(app: Harness) -> None:
    alice = await sender(app, "alice", ("token", "curl"))

    policy = await alice.client.get("/api/v1/policy", headers=alice.headers)

    assert policy.json()["teams"] == ["engineering", "admins"]
    assert policy.json()["max_views"] == 3


async def test_a_team_that_may_not_create_is_refused(
    provider: OidcProvider, tmp_path: Path
) -> None:
    teams = {**TEAMS, "sales": {"create": "nobody"}}
    async with harness(provider, tmp_path, **{**TEAM_SETTINGS, "teams": teams}) as app:
        bob = await sender(app, "bob", ("token", "e2e"))
        browser, _ = await app.signed_in("bob")

        created = await bob.create()
        policy = (await browser.get("/api/v1/policy")).json()

    assert created.status_code == 403
    assert created.json()["error"]["code"] == "create_not_allowed"
    assert "sales" in created.json()["error"]["message"]
    assert policy["may_create"] is False
    assert "sales" in policy["refusal"]


async def test_a_session_that_cannot_be_looked_up_creates_nothing(app: Harness) -> None:
    """Fail closed: when the store cannot say who the session is, the create is refused, not
    made under the server's policy."""
    alice = await sender(app, "alice", ("session", "curl"))
    store = app.audited.store

    async def failing(digest: bytes, *, now: datetime, idle_seconds: int) -> SessionRecord:
        raise StorageUnavailable

    store.touch_session = failing  # type: ignore[method-assign] # the store's outage
    response = await alice.create(ttl=7 * 86400)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
