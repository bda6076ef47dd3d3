"""Real Chromium signs in at the real OpenID provider, creates a secret as the signed-in
sender (the request carries the session cookie and its CSRF token), sees it on "My secrets"
(``/me``), burns from there, makes and revokes an API token, and signs out here and at the
provider."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Page

from burnlink.config import load_settings
from tests.browser.conftest import Contexts, RequestLog, axe_violations, wait_ready
from tests.cli.harness import MAX_BYTES, running_server
from tests.oidc_provider import OidcProvider, require_node


@contextmanager
def signin_server(**overrides: Any) -> Iterator[tuple[str, OidcProvider]]:
    """A running server with sign-in at a running real provider: its base URL and the provider."""
    require_node()
    provider = OidcProvider([])  # its address is known now; it starts once ours is
    settings = load_settings(
        store="memory://",
        max_bytes=MAX_BYTES,
        sweep_interval=3600,
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
        oidc_scopes="openid email profile groups",
        **overrides,
    )
    with running_server(settings) as base:
        provider.redirect_uris.append(f"{base}/auth/callback")
        provider.post_logout_redirect_uris.append(f"{base}/")
        with provider:
            yield base, provider


def sign_in_at_provider(page: Page, provider: OidcProvider, user: str = "alice") -> None:
    """Once the page is at the provider's sign-in form, sign ``user`` in with their factors."""
    page.wait_for_url(f"{provider.issuer}/**")
    provider.fill_sign_in_form(page, user)


def signed_in_on_compose_page(page: Page, base: str, provider: OidcProvider) -> None:
    """Open the compose page, press *Sign in*, sign in as alice, and wait to be back."""
    page.goto(f"{base}/")
    wait_ready(page)
    page.click("#sign-in")
    sign_in_at_provider(page, provider)
    page.wait_for_url(f"{base}/")
    wait_ready(page)


def test_sign_in_create_and_sign_out(contexts: Contexts) -> None:
    with signin_server() as (base, provider):
        page, log = contexts.page()
        page.goto(f"{base}/")
        wait_ready(page)
        assert page.is_visible("#sign-in")
        assert not page.is_visible("#label")  # a label is for signed-in senders

        page.click("#sign-in")
        sign_in_at_provider(page, provider)
        page.wait_for_url(f"{base}/")
        wait_ready(page)
        page.wait_for_selector("#signed-in:not([hidden])")
        assert "alice@example.com" in (page.text_content("#signed-in") or "")
        assert not page.is_visible("#sign-in")
        cookies = {c["name"]: c for c in page.context.cookies(base)}
        assert cookies["burnlink_session"]["httpOnly"]
        assert cookies["burnlink_session"]["sameSite"] == "Lax"

        page.fill("#secret", "signed-in sender's secret")
        page.click("#create")
        page.wait_for_selector("#result:not([hidden])")
        (create,) = [r for r in log.requests if r.method == "POST" and "/api/v1/secrets" in r.url]
        assert create.headers.get("x-burnlink-csrf")
        check_my_secrets(page, log, base)

        page.goto(f"{base}/")
        wait_ready(page)
        page.click("#sign-out")
        page.wait_for_url(f"{provider.issuer}/**")
        page.click("button[name=logout]")
        page.wait_for_url(f"{base}/")
        wait_ready(page)
        assert page.is_visible("#sign-in")
        assert "burnlink_session" not in {c["name"] for c in page.context.cookies(base)}
        me = page.request.get(f"{base}/api/v1/me")
        assert me.status == 401
        page.goto(f"{base}/me")
        wait_ready(page)
        assert page.is_visible("#me-sign-in")
        assert not page.is_visible("#my-secrets")


LABEL = "<b>deploy</b> key"
"""A label with markup: the page must show it as text."""


def check_my_secrets(page: Page, log: RequestLog, base: str) -> None:
    """On /me: the secrets listed with their labels, one burned by its button and the rest
    with "Burn selected" (each confirmed first); an API token made, shown once, and revoked."""
    csrf = page.request.get(f"{base}/api/v1/me").json()["csrf_token"]
    made = page.request.post(
        f"{base}/api/v1/secrets",
        data={"secret": "labelled", "label": LABEL},
        headers={"x-burnlink-csrf": csrf},
    )
    assert made.status == 201, made.text()
    labelled = made.json()["id"]

    page.click("#my-secrets-link")
    page.wait_for_url(f"{base}/me")
    wait_ready(page)
    row = page.locator(f"#secrets-body tr[data-id='{labelled}']")
    assert row.locator(".secret-label").text_content() == LABEL
    assert row.locator("b").count() == 0
    assert page.locator("#secrets-body tr[data-state=active]").count() == 2
    assert axe_violations(page) == []

    row.locator("button.burn").click()
    page.click("#me-burn-cancel")  # asked first; cancelling burns nothing
    assert row.get_attribute("data-state") == "active"
    row.locator("button.burn").click()
    page.click("#me-burn-confirm")
    page.wait_for_selector(f"#secrets-body tr[data-id='{labelled}'][data-state=burned]")
    assert row.locator(".secret-state").text_content() == "Burned"
    (burn,) = [r for r in log.requests if r.method == "DELETE" and labelled in r.url]
    assert burn.headers.get("x-burnlink-csrf") == csrf
    row.locator("button.receipt").click()
    page.wait_for_selector("#my-receipt:not([hidden])")
    assert page.text_content("#my-receipt-label") == LABEL
    assert page.text_content("#my-receipt-state") == "Burned"

    other = page.get_attribute("#secrets-body tr[data-state=active]", "data-id")
    page.check(f"#secrets-body tr[data-id='{other}'] input[type=checkbox]")
    page.click("#burn-selected")
    page.click("#me-burn-confirm")
    page.wait_for_selector(f"#secrets-body tr[data-id='{other}'][data-state=burned]")
    assert page.locator("#secrets-body tr[data-state=burned]").count() == 2

    page.fill("#token-name", "pipeline")
    page.check("input[name=scope][value='secrets:burn']")
    page.fill("#token-days", "30")
    page.click("#token-create")
    page.wait_for_selector("#token-made:not([hidden])")
    token = page.input_value("#token-value")
    assert token.startswith("blk_")
    assert "not be shown again" in (page.text_content("#token-made-warning") or "")
    token_row = page.locator("#tokens-body tr:has-text('pipeline')")
    token_row.wait_for()
    assert token_row.get_attribute("data-state") == "active"
    (create,) = [r for r in log.requests if r.method == "POST" and "/me/tokens" in r.url]
    assert create.headers.get("x-burnlink-csrf") == csrf

    page.reload()
    wait_ready(page)
    assert not page.is_visible("#token-made")
    assert token not in page.content()
    token_row.locator("button.revoke").click()
    page.wait_for_selector("#tokens-body tr[data-state=revoked]:has-text('pipeline')")
    revoked = httpx.get(f"{base}/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert revoked.status_code == 401


def test_label_typed_on_the_compose_page_is_the_secret_s_label(contexts: Contexts) -> None:
    """A signed-in sender names a secret on the compose page; "My secrets" shows the name,
    and the name is all the create request adds (the content stays sealed)."""
    with signin_server() as (base, provider):
        page, log = contexts.page()
        signed_in_on_compose_page(page, base, provider)
        page.wait_for_selector("#label:not([hidden])")
        assert page.get_attribute("#label", "maxlength") == "100"  # the API's MAX_LABEL_CHARS
        assert axe_violations(page) == []

        page.fill("#secret", "the database password")
        page.fill("#label", LABEL)
        page.click("#create")
        page.wait_for_selector("#result:not([hidden])")
        (create,) = [r for r in log.requests if r.method == "POST" and "/api/v1/secrets" in r.url]
        body = create.post_data_json
        assert body is not None
        assert body["label"] == LABEL
        assert "the database password" not in (create.post_data or "")
        secret_id = page.input_value("#result-link").split("/s/")[1].split("#")[0]

        page.click("#another")
        assert page.input_value("#label") == ""  # the next secret starts unnamed

        page.goto(f"{base}/me")
        wait_ready(page)
        row = page.locator(f"#secrets-body tr[data-id='{secret_id}']")
        assert row.locator(".secret-label").text_content() == LABEL
        csrf = page.request.get(f"{base}/api/v1/me").json()["csrf_token"]
        receipt = page.request.get(
            f"{base}/api/v1/me/secrets/{secret_id}", headers={"x-burnlink-csrf": csrf}
        )
        assert receipt.json()["label"] == LABEL


FRESH_SECONDS = 30
"""``BURNLINK_OIDC_MAX_AGE`` for the fresh sign-in test: the least the setting allows."""


def test_token_after_a_stale_sign_in_asks_the_provider_for_a_new_one(contexts: Contexts) -> None:
    """A sign-in older than ``BURNLINK_OIDC_MAX_AGE``: "Create token" on /me sends the user to
    sign in again at the provider (which must not reuse its own session), back to /me, where
    making the token then works."""
    with signin_server(oidc_max_age=FRESH_SECONDS) as (base, provider):
        page, log = contexts.page()
        page.goto(f"{base}/me")
        wait_ready(page)
        page.click("#me-sign-in")
        sign_in_at_provider(page, provider)
        page.wait_for_url(f"{base}/me")
        wait_ready(page)
        page.wait_for_selector("#my-secrets:not([hidden])")
        signed_in = time.monotonic()

        # Wait out the fresh period: the clocks of the server and the provider are real ones.
        time.sleep(max(0.0, signed_in + FRESH_SECONDS + 2 - time.monotonic()))
        page.fill("#token-name", "after a while")
        page.check("input[name=scope][value='secrets:burn']")
        page.fill("#token-days", "7")
        page.click("#token-create")
        sign_in_at_provider(page, provider)  # the provider asks again: no silent reuse
        page.wait_for_url(f"{base}/me")
        wait_ready(page)

        refused = [r for r in log.requests if r.method == "POST" and "/me/tokens" in r.url]
        assert len(refused) == 1  # the stale attempt, answered 401 fresh_login_required
        first, again = [r for r in log.requests if r.url.startswith(f"{base}/auth/login?")]
        assert "max_age" not in parse_qs(urlsplit(first.url).query)
        assert parse_qs(urlsplit(again.url).query) == {
            "next": ["/me"],
            "max_age": [str(FRESH_SECONDS)],
        }
        asked = [r for r in log.requests if r.url.startswith(f"{provider.issuer}/auth?")]
        assert parse_qs(urlsplit(asked[-1].url).query)["max_age"] == [str(FRESH_SECONDS)]
        assert page.locator("#tokens-body tr").count() == 0  # nothing was made by the 401

        # What the user typed is back, to check and send: nothing is made without them.
        assert page.input_value("#token-name") == "after a while"
        assert page.is_checked("input[name=scope][value='secrets:burn']")
        assert page.input_value("#token-days") == "7"
        assert page.is_visible("#token-draft-note")
        page.click("#token-create")
        page.wait_for_selector("#token-made:not([hidden])")
        token = page.input_value("#token-value")
        assert token.startswith("blk_")
        me = httpx.get(f"{base}/api/v1/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["email"] == "alice@example.com"
        assert not page.is_visible("#token-draft-note")
        page.reload()  # the draft was used once: a later visit starts empty
        wait_ready(page)
        assert page.input_value("#token-name") == ""
