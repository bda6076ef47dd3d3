"""CLI sign-in through the app against the real provider (device authorization grant, RFC
8628): start, pending, approval, the API token it ends in, MFA, denial, expiry, bad input,
and no device code or token in the audit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from burnlink.audit.events import AuditEventType
from burnlink.identity.tokens import parse_token
from burnlink.ids import token_digest
from burnlink.store.identity import TokenRecord
from tests.identity.conftest import CALLBACK
from tests.identity.test_signin_flow import Harness, harness
from tests.oidc_provider import OidcProvider, require_node

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def short_provider() -> Iterator[OidcProvider]:
    """A provider whose device codes expire after 2 seconds."""
    require_node()
    with OidcProvider([CALLBACK], device_code_ttl=2) as running:
        yield running


@pytest.fixture
async def app(provider: OidcProvider, tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(provider, tmp_path) as running:
        yield running


async def start(cli: httpx.AsyncClient) -> dict[str, Any]:
    response = await cli.post("/api/v1/auth/device")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    started: dict[str, Any] = response.json()
    return started


def approve(provider: OidcProvider, started: dict[str, Any], user: str, **kw: Any) -> None:
    with httpx.Client() as browser:
        provider.approve_device(browser, started["user_code"], user, **kw)


async def poll(cli: httpx.AsyncClient, device_code: str, **body: Any) -> httpx.Response:
    return await cli.post("/api/v1/auth/device/token", json={"device_code": device_code, **body})


async def test_device_sign_in_ends_in_an_api_token(app: Harness) -> None:
    cli = app.browser()
    started = await start(cli)
    assert started["verification_uri"].startswith(app.provider.issuer)
    assert "user_code=" in (started["verification_uri_complete"] or "")
    assert started["interval"] >= 1
    assert started["expires_in"] > 0

    pending = await poll(cli, started["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"]["code"] == "authorization_pending"

    approve(app.provider, started, "alice")
    app.clock.advance(started["interval"])
    done = await poll(cli, started["device_code"], name="burnlink CLI on laptop")

    assert done.status_code == 200, done.text
    assert done.headers["cache-control"] == "no-store"
    body = done.json()
    assert body["email"] == "alice@example.com"
    assert body["name"] == "burnlink CLI on laptop"
    assert body["scopes"] == ["secrets:create", "secrets:read-receipts", "secrets:burn"]
    raw = parse_token(body["token"])
    assert raw is not None
    record = await app.audited.store.use_token(token_digest(raw), now=app.clock.now())
    assert record is not None
    assert record.token_id == body["token_id"]
    assert record.subject == body["subject"]
    assert (record.expires_at - record.created_at).days == 90

    # The token works as a bearer: the API knows it is alice's.
    me = await app.browser().get("/api/v1/me", headers={"authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "alice@example.com"
    assert me.json()["via"] == "token"

    # The device code is spent: a second poll gets no second token.
    again = await poll(cli, started["device_code"])
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "expired_token"

    (entry,) = await app.entries(AuditEventType.SIGNED_IN)
    assert dict(entry.event.detail) == {"mfa": True, "via": "device"}
    assert entry.event.to_dict()["actor"] == {
        "subject": me.json()["subject"],
        "email": "alice@example.com",
    }
    # The token is made by the tokens service, so it is audited like one made on the page.
    (made,) = await app.entries(AuditEventType.TOKEN_CREATED)
    assert made.event.detail["credential_id"] == body["token_id"]
    assert made.event.to_dict()["actor"]["email"] == "alice@example.com"
    await app.audited.join()
    dumped = json.dumps([dict(e.event.detail) for e in await app.audited.entries()])
    assert started["device_code"] not in dumped
    assert body["token"] not in dumped


async def test_device_sign_in_without_second_factor_is_refused(
    provider: OidcProvider, tmp_path: Path
) -> None:
    async with harness(provider, tmp_path, oidc_require_mfa=True) as app:
        cli = app.browser()
        started = await start(cli)
        approve(provider, started, "bob")

        refused = await poll(cli, started["device_code"])

        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "mfa_required"
        assert "second factor" in error["message"]
        assert "token" not in refused.json()
        (entry,) = await app.entries(AuditEventType.SIGN_IN_REFUSED)
        assert dict(entry.event.detail) == {"reason": "mfa_required", "via": "device"}
        assert entry.event.actor_email == "bob@example.com"
        assert await app.entries(AuditEventType.SIGNED_IN) == []


async def test_device_sign_in_with_second_factor_passes_mfa_policy(
    provider: OidcProvider, tmp_path: Path
) -> None:
    async with harness(provider, tmp_path, oidc_require_mfa=True) as app:
        cli = app.browser()
        started = await start(cli)
        approve(provider, started, "alice")

        done = await poll(cli, started["device_code"])

        assert done.status_code == 200, done.text


async def test_denied_device_sign_in(app: Harness) -> None:
    cli = app.browser()
    started = await start(cli)
    approve(app.provider, started, "bob", allow=False)

    denied = await poll(cli, started["device_code"])

    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "access_denied"
    (entry,) = await app.entries(AuditEventType.SIGN_IN_REFUSED)
    assert entry.event.detail["reason"] == "access_denied"
    assert "actor" not in entry.event.to_dict()  # the provider named no one


async def test_expired_device_code(short_provider: OidcProvider, tmp_path: Path) -> None:
    import anyio

    async with harness(short_provider, tmp_path) as app:
        cli = app.browser()
        started = await start(cli)
        await anyio.sleep(3)

        expired = await poll(cli, started["device_code"])

        assert expired.status_code == 400
        assert expired.json()["error"]["code"] == "expired_token"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"device_code": ""},
        {"device_code": "x" * 513},
        {"device_code": 5},
        {"device_code": "abc", "name": ""},
        {"device_code": "abc", "name": "n" * 65},
        {"device_code": "abc", "extra": 1},
    ],
)
async def test_device_token_refuses_bad_bodies(app: Harness, body: dict[str, Any]) -> None:
    response = await app.browser().post("/api/v1/auth/device/token", json=body)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_field"


async def test_device_token_refuses_duplicate_names(app: Harness) -> None:
    response = await app.browser().post(
        "/api/v1/auth/device/token",
        content=b'{"device_code": "a", "device_code": "b"}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_unknown_device_code_is_expired(app: Harness) -> None:
    response = await poll(app.browser(), "not-a-code-the-provider-made")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "expired_token"


async def test_control_characters_in_the_name_are_refused(app: Harness) -> None:
    response = await poll(app.browser(), "abc", name="bad\u0000name")

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "name"


async def test_device_routes_are_in_the_openapi_document(app: Harness) -> None:
    document = (await app.browser().get("/openapi.json")).json()

    assert "/api/v1/auth/device" in document["paths"]
    token = document["paths"]["/api/v1/auth/device/token"]["post"]
    assert {"200", "400", "403", "422", "429"} <= set(token["responses"])


async def test_device_sign_in_outside_the_create_policy_is_refused(
    provider: OidcProvider, tmp_path: Path
) -> None:
    async with harness(
        provider, tmp_path, create_requires="login", create_allowed_domains="example.com"
    ) as app:
        cli = app.browser()
        started = await start(cli)
        approve(provider, started, "carol")

        refused = await poll(cli, started["device_code"])

        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "create_not_allowed"
        (entry,) = await app.entries(AuditEventType.SIGN_IN_REFUSED)
        assert dict(entry.event.detail) == {"reason": "create_not_allowed", "via": "device"}
        assert entry.event.actor_email == "carol@partner.test"


async def test_device_sign_in_of_a_team_that_may_not_create_is_refused(
    provider: OidcProvider, tmp_path: Path
) -> None:
    teams = {"sales": {"create": "nobody"}}
    async with harness(provider, tmp_path, teams=teams) as app:
        cli = app.browser()
        started = await start(cli)
        approve(provider, started, "bob")  # sales

        refused = await poll(cli, started["device_code"])

        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "create_not_allowed"
        assert "(sales)" in refused.json()["error"]["message"]
        (entry,) = await app.entries(AuditEventType.SIGN_IN_REFUSED)
        assert dict(entry.event.detail) == {"reason": "create_not_allowed", "via": "device"}


async def test_device_sign_in_gives_the_users_older_tokens_its_groups(app: Harness) -> None:
    cli = app.browser()
    started = await start(cli)
    approve(app.provider, started, "alice")
    app.clock.advance(started["interval"])
    first = await poll(cli, started["device_code"], name="first")
    assert first.status_code == 200, first.text
    (made,) = await app.audited.store.all_tokens(now=app.clock.now(), limit=10)
    now = app.clock.now()
    await app.audited.store.put_token(
        TokenRecord(
            token_id="tok_oldgroupstoken02",
            digest=token_digest(b"an older token of alice's"),
            subject=made.subject,
            email="alice@old.example",
            groups=("a-team-she-left",),
            name="older",
            scopes=("secrets:create",),
            created_at=now - timedelta(days=30),
            expires_at=now + timedelta(days=30),
        )
    )

    again = await start(cli)
    approve(app.provider, again, "alice")
    app.clock.advance(again["interval"])
    assert (await poll(cli, again["device_code"], name="second")).status_code == 200

    tokens = await app.audited.store.list_tokens(made.subject, now=app.clock.now())
    assert {t.name for t in tokens} == {"first", "second", "older"}
    assert {frozenset(t.groups) for t in tokens} == {frozenset({"engineering", "admins"})}
