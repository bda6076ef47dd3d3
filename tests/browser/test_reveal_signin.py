"""Real Chromium opens a link to a secret bound to a signed-in recipient (``recipients``):
the reveal page says so before Reveal, sends an anonymous reader to sign in at the real
OpenID provider and back with the key kept only in the tab's ``sessionStorage`` for the round
trip, and tells a signed-in user who is not a recipient so, with nothing used up."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Page

from tests.browser.conftest import Contexts, axe_violations, wait_ready
from tests.browser.test_signin import sign_in_at_provider, signed_in_on_compose_page, signin_server
from tests.oidc_provider import OidcProvider

PLAINTEXT = "bound to alice"


def alice_shares(
    contexts: Contexts, base: str, provider: OidcProvider, **rules: Any
) -> dict[str, Any]:
    """Alice signs in and creates a secret only she may reveal (unless ``rules`` say other
    recipients); returns the API's answer."""
    page, _ = contexts.page()
    signed_in_on_compose_page(page, base, provider)
    csrf = page.request.get(f"{base}/api/v1/me").json()["csrf_token"]
    made = page.request.post(
        f"{base}/api/v1/secrets",
        data={
            "secret": PLAINTEXT,
            "recipients": ["alice@example.com"],
            "max_views": 2,
            **rules,
        },
        headers={"x-burnlink-csrf": csrf},
    )
    assert made.status == 201, made.text()
    created: dict[str, Any] = made.json()
    assert "#" in created["url"]
    return created


def views_left(base: str, created: dict[str, Any]) -> int:
    """The secret's views left, asked by the sender (manage token): nothing consumed."""
    manage = created["manage_url"].split("#", 1)[1]
    response = httpx.get(
        f"{base}/api/v1/secrets/{created['id']}/receipt",
        headers={"authorization": f"Bearer {manage}"},
    )
    assert response.status_code == 200, response.text
    left: int = response.json()["views_left"]
    return left


def stored_key(page: Page, secret_id: str) -> list[str]:
    """The tab's sessionStorage entries that name the secret."""
    keys: list[str] = page.evaluate(
        "(id) => Object.keys(sessionStorage).filter((k) => k.includes(id))", secret_id
    )
    return keys


def test_anonymous_reader_signs_in_and_reveals_with_the_key_kept(contexts: Contexts) -> None:
    with signin_server() as (base, provider):
        created = alice_shares(contexts, base, provider)
        secret_id = created["id"]
        key = created["url"].split("#", 1)[1]

        page, log = contexts.page()
        page.goto(created["url"])
        wait_ready(page)
        page.wait_for_selector("#reveal-form:not([hidden])")
        note = page.text_content("#signin-note") or ""
        assert "signed-in" in note
        assert "not signed in" in note
        assert axe_violations(page) == []

        page.click("#reveal-button")
        page.wait_for_selector("#signin-needed:not([hidden])")
        assert axe_violations(page) == []
        page.click("#reveal-sign-in")
        sign_in_at_provider(page, provider, "alice")
        page.wait_for_url(f"{base}/s/{secret_id}**")
        wait_ready(page)
        assert stored_key(page, secret_id) == []  # taken out at once, whatever comes next
        assert page.evaluate("location.hash") == f"#{key}"
        page.wait_for_selector("#reveal-form:not([hidden])")
        assert "alice@example.com" in (page.text_content("#signin-note") or "")

        page.click("#reveal-button")
        page.wait_for_selector("#revealed:not([hidden])")
        assert page.input_value("#secret-text") == PLAINTEXT
        assert stored_key(page, secret_id) == []
        # The key never went to the server: not in any URL or body the page sent.
        for request in log.requests:
            assert key not in request.url
            assert key not in (request.post_data or "")
        consume = [r for r in log.requests if r.method == "POST" and "/consume" in r.url]
        assert consume[-1].headers.get("x-burnlink-csrf")

        # The sender's receipt page names who viewed it, and that her sign-in had MFA.
        page.goto(created["manage_url"])
        wait_ready(page)
        page.wait_for_selector("#receipt:not([hidden])")
        rows = [
            [cell.strip() for cell in row.locator("th, td").all_text_contents()]
            for row in page.locator("#events-body tr").all()
        ]
        viewed = [row for row in rows if row[1].startswith("Viewed")]
        assert len(viewed) == 1
        assert viewed[0][1].startswith("Viewed by alice@example.com (MFA) with ")
        assert viewed[0][2] == "127.0.0.1"


def signed_in_as(contexts: Contexts, base: str, provider: OidcProvider, user: str) -> Page:
    """A fresh context where ``user`` signed in from the compose page."""
    page, _ = contexts.page()
    page.goto(f"{base}/")
    wait_ready(page)
    page.click("#sign-in")
    sign_in_at_provider(page, provider, user)
    page.wait_for_url(f"{base}/")
    return page


def test_signed_in_non_recipient_is_told_and_nothing_is_used(contexts: Contexts) -> None:
    with signin_server() as (base, provider):
        created = alice_shares(contexts, base, provider)
        before = views_left(base, created)

        page = signed_in_as(contexts, base, provider, "bob")
        page.goto(created["url"])
        wait_ready(page)
        page.wait_for_selector("#reveal-form:not([hidden])")
        assert "bob@example.com" in (page.text_content("#signin-note") or "")

        page.click("#reveal-button")
        page.wait_for_selector("#denied:not([hidden])")
        text = page.text_content("#denied") or ""
        assert "bob@example.com" in text
        assert "other recipients" in text
        assert "Nothing was used up" in text
        assert axe_violations(page) == []
        assert views_left(base, created) == before


def test_sign_in_without_a_second_factor_is_told_and_nothing_is_used(contexts: Contexts) -> None:
    """bob (password only) is a recipient of a secret with ``require_mfa``: the notice says a
    second factor is needed, and the reveal's ``mfa_required`` says so in words."""
    with signin_server() as (base, provider):
        created = alice_shares(
            contexts, base, provider, recipients=["bob@example.com"], require_mfa=True
        )
        before = views_left(base, created)

        page = signed_in_as(contexts, base, provider, "bob")
        page.goto(created["url"])
        wait_ready(page)
        page.wait_for_selector("#reveal-form:not([hidden])")
        assert "second factor" in (page.text_content("#signin-note") or "")

        page.click("#reveal-button")
        page.wait_for_selector("#denied:not([hidden])")
        text = page.text_content("#denied") or ""
        assert "bob@example.com" in text
        assert "second factor" in text
        assert "Nothing was used up" in text
        assert axe_violations(page) == []
        assert views_left(base, created) == before


def test_the_receipt_page_shows_a_viewers_email_as_text(contexts: Contexts) -> None:
    """The email comes from the identity provider, so markup in it stays text: the receipt
    page puts it in ``textContent``, never in HTML."""
    with signin_server() as (base, provider):
        created = alice_shares(contexts, base, provider)
        manage = created["manage_url"].split("#", 1)[1]
        real = httpx.get(
            f"{base}/api/v1/secrets/{created['id']}/receipt",
            headers={"authorization": f"Bearer {manage}"},
        ).json()
        hostile = '<img src=x onerror="document.title=1">@example.com'
        at = real["events"][0]["at"]
        viewed = {"at": at, "type": "viewed", "ip": "203.0.113.7", "user_agent": None}
        forged = {
            **real,
            "events": [
                *real["events"],
                {**viewed, "viewer": {"email": hostile, "mfa": False}},
                {**viewed, "viewer": {"email": None, "mfa": True}},
            ],
        }
        page, _ = contexts.page()
        page.route("**/receipt", lambda route: route.fulfill(json=forged))
        page.goto(created["manage_url"])
        wait_ready(page)
        page.wait_for_selector("#receipt:not([hidden])")
        cells = page.locator("#events-body td:nth-child(2)").all_text_contents()

        assert cells[-2] == f"Viewed by {hostile} (without MFA)"
        assert cells[-1] == "Viewed by a signed-in user without an email address (MFA)"
        assert page.locator("#events-body img").count() == 0
        assert page.title() != "1"


FRESH_SECONDS = 30


def test_a_stale_second_factor_sign_in_signs_in_again_and_reveals(contexts: Contexts) -> None:
    """A ``require_mfa`` secret opened by its recipient whose sign-in is older than
    ``BURNLINK_RECIPIENT_MAX_AGE``: nothing is used, the page sends her to sign in again at
    the provider (``max_age``; both factors asked), she comes back to the secret with the key,
    and then it opens."""
    with signin_server(recipient_max_age=FRESH_SECONDS) as (base, provider):
        page, log = contexts.page()
        signed_in_on_compose_page(page, base, provider)
        signed_in = time.monotonic()
        csrf = page.request.get(f"{base}/api/v1/me").json()["csrf_token"]
        made = page.request.post(
            f"{base}/api/v1/secrets",
            data={"secret": PLAINTEXT, "recipients": ["alice@example.com"], "require_mfa": True},
            headers={"x-burnlink-csrf": csrf},
        )
        assert made.status == 201, made.text()
        created: dict[str, Any] = made.json()
        time.sleep(max(0.0, signed_in + FRESH_SECONDS + 2 - time.monotonic()))

        page.goto(created["url"])
        wait_ready(page)
        page.wait_for_selector("#reveal-form:not([hidden])")
        page.click("#reveal-button")
        page.wait_for_selector("#signin-needed:not([hidden])")
        assert views_left(base, created) == 1  # the stale attempt used nothing
        assert axe_violations(page) == []
        page.click("#reveal-sign-in")
        sign_in_at_provider(page, provider, "alice")  # asked again, with her code
        page.wait_for_url(f"{base}/s/{created['id']}**")
        wait_ready(page)
        page.wait_for_selector("#reveal-form:not([hidden])")
        page.click("#reveal-button")
        page.wait_for_selector("#revealed:not([hidden])")

        assert page.input_value("#secret-text") == PLAINTEXT
        logins = [r for r in log.requests if r.url.startswith(f"{base}/auth/login?")]
        assert parse_qs(urlsplit(logins[-1].url).query)["max_age"] == [str(FRESH_SECONDS)]
        asked = [r for r in log.requests if r.url.startswith(f"{provider.issuer}/auth?")]
        assert parse_qs(urlsplit(asked[-1].url).query)["max_age"] == [str(FRESH_SECONDS)]
