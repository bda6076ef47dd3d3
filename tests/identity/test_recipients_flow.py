"""Secrets bound to recipients with users who signed in at the real OpenID provider
(``tests/oidc_provider.py``): alice (engineering, password and one-time code), bob (sales,
password only) and carol (partner.test, password only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from burnlink.audit.events import AuditEventType
from tests.identity.test_signin_flow import Harness, harness
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app(provider: OidcProvider, tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(provider, tmp_path) as running:
        yield running


async def share(app: Harness, **fields: Any) -> dict[str, Any]:
    response = await app.browser().post("/api/v1/secrets", json={"secret": "s3cret", **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def reveal(
    browser: httpx.AsyncClient, me: dict[str, Any] | None, created: dict[str, Any]
) -> httpx.Response:
    headers = {} if me is None else {"X-Burnlink-CSRF": me["csrf_token"]}
    key = str(created["url"]).split("#", 1)[1]
    return await browser.post(
        f"/api/v1/secrets/{created['id']}/reveal", json={"key": key}, headers=headers
    )


@pytest.mark.parametrize("entry", ["alice@example.com", "group:engineering", "domain:example.com"])
async def test_a_signed_in_recipient_opens_it_and_others_are_refused(
    app: Harness, entry: str
) -> None:
    created = await share(app, recipients=[entry], max_views=2)
    alice, alice_me = await app.signed_in("alice")
    carol, carol_me = await app.signed_in("carol")

    anonymous = await reveal(app.browser(), None, created)
    refused = await reveal(carol, carol_me, created)
    opened = await reveal(alice, alice_me, created)

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "login_required"
    login = urlsplit(anonymous.json()["error"]["login_url"])
    assert parse_qs(login.query)["next"] == [f"/s/{created['id']}"]
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "recipient_mismatch"
    assert opened.status_code == 200, opened.text
    assert (opened.json()["secret"], opened.json()["views_left"]) == ("s3cret", 1)
    (denied,) = await app.entries(AuditEventType.ACCESS_DENIED_IDENTITY)
    assert denied.event.to_dict()["actor"]["email"] == "carol@partner.test"
    (viewed,) = await app.entries(AuditEventType.SECRET_VIEWED)
    assert viewed.event.to_dict()["actor"] == {
        "subject": alice_me["subject"],
        "email": "alice@example.com",
    }


async def test_a_user_of_another_group_is_refused(app: Harness) -> None:
    created = await share(app, recipients=["group:engineering"])
    bob, bob_me = await app.signed_in("bob")

    refused = await reveal(bob, bob_me, created)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "recipient_mismatch"


async def test_require_mfa_wants_a_fresh_second_factor(app: Harness) -> None:
    created = await share(app, recipients=["domain:example.com"], require_mfa=True, max_views=2)
    bob, bob_me = await app.signed_in("bob")  # a password only
    alice, alice_me = await app.signed_in("alice")  # password and one-time code

    no_mfa = await reveal(bob, bob_me, created)
    opened = await reveal(alice, alice_me, created)
    app.clock.advance(6 * 60)
    stale = await reveal(alice, alice_me, created)

    assert no_mfa.status_code == 403
    assert no_mfa.json()["error"]["code"] == "mfa_required"
    assert opened.status_code == 200, opened.text
    assert stale.status_code == 401
    assert stale.json()["error"]["code"] == "fresh_login_required"
    query = parse_qs(urlsplit(stale.json()["error"]["login_url"]).query)
    assert (query["max_age"], query["next"]) == (["300"], [f"/s/{created['id']}"])
    assert opened.json()["views_left"] == 1


async def test_the_senders_receipt_names_the_recipient_and_her_second_factor(
    app: Harness,
) -> None:
    """Issue 15: "the receipt says 'viewed by alice@example.com (MFA)'". bob shares, signed
    in, with alice (password and one-time code) and with the domain; bob himself (a password
    only) views too. His receipt, by the manage link and in "my secrets", names each viewer
    with whether their sign-in had a second factor, and nobody else sees it."""
    bob, bob_me = await app.signed_in("bob")
    alice, alice_me = await app.signed_in("alice")
    made = await bob.post(
        "/api/v1/secrets",
        json={"secret": "s3cret", "recipients": ["domain:example.com"], "max_views": 2},
        headers={"X-Burnlink-CSRF": bob_me["csrf_token"]},
    )
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()

    opened = await reveal(alice, alice_me, created)
    by_bob = await reveal(bob, bob_me, created)
    manage = str(created["manage_url"]).split("#", 1)[1]
    receipt = await app.browser().get(
        f"/api/v1/secrets/{created['id']}/receipt", headers={"authorization": f"Bearer {manage}"}
    )
    mine = await bob.get(f"/api/v1/me/secrets/{created['id']}")
    not_hers = await alice.get(f"/api/v1/me/secrets/{created['id']}")

    assert (opened.status_code, by_bob.status_code) == (200, 200)
    assert receipt.status_code == mine.status_code == 200
    viewers = [(e["type"], e["viewer"]) for e in receipt.json()["events"]]
    assert viewers == [
        ("created", None),
        ("viewed", {"email": "alice@example.com", "mfa": True}),
        ("viewed", {"email": "bob@example.com", "mfa": False}),
    ]
    assert [(e["type"], e["viewer"]) for e in mine.json()["events"]] == viewers
    assert not_hers.status_code == 404
