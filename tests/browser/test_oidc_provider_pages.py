"""The test OpenID provider's pages (tests/oidc_provider.py) in a real Chromium.

A person signs in through its form (with the one-time code where they have a second factor),
signs out from a relying party's logout link and connects a device; the pages load nothing
from another host. The relying party's addresses are answered by Playwright, not a server.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.browser.conftest import Contexts
from tests.oidc_provider import OidcProvider, require_node

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

CALLBACK = "http://127.0.0.1:9/auth/callback"
SIGNED_OUT = "http://127.0.0.1:9/signed-out"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    require_node()
    with OidcProvider([CALLBACK], [SIGNED_OUT]) as running:
        yield running


def _answer_for_the_rp(page: Page, reached: list[str]) -> None:
    def answer(route: Route) -> None:
        reached.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="relying party")

    page.route(re.compile(r"^http://127\.0\.0\.1:9/"), answer)


def _authorize_url(provider: OidcProvider, verifier: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid email groups",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    return f"{provider.discovery()['authorization_endpoint']}?{urlencode(params)}"


def _only_loopback(urls: list[str], provider: OidcProvider) -> None:
    origins = {f"{parts.scheme}://{parts.netloc}" for parts in map(urlsplit, urls)}
    assert origins <= {provider.issuer, "http://127.0.0.1:9"}, origins


def test_provider_pages_sign_in_and_out_in_a_browser(
    contexts: Contexts, provider: OidcProvider
) -> None:
    page, log = contexts.page()
    reached: list[str] = []
    _answer_for_the_rp(page, reached)
    verifier = secrets.token_urlsafe(48)

    page.goto(_authorize_url(provider, verifier))
    page.get_by_label("User", exact=True).fill("alice")
    page.get_by_label("Password", exact=True).fill("not her password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong user or password."
    provider.fill_sign_in_form(page, "alice")
    page.wait_for_url(f"{CALLBACK}?*")

    code = parse_qs(urlsplit(reached[-1]).query)["code"][0]
    tokens = provider.backchannel.post(
        provider.discovery()["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(provider.client_id, provider.client_secret),
    )
    assert tokens.status_code == 200, tokens.text
    logout = {
        "id_token_hint": tokens.json()["id_token"],
        "post_logout_redirect_uri": SIGNED_OUT,
        "state": "bye",
    }
    page.goto(f"{provider.discovery()['end_session_endpoint']}?{urlencode(logout)}")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{SIGNED_OUT}?state=bye")
    # Signed out there too: the form shows again.
    page.goto(_authorize_url(provider, verifier))
    page.get_by_label("User", exact=True).wait_for()
    _only_loopback(log.urls(), provider)


def test_provider_pages_connect_a_device_in_a_browser(
    contexts: Contexts, provider: OidcProvider
) -> None:
    started = provider.backchannel.post(
        provider.discovery()["device_authorization_endpoint"],
        data={"client_id": provider.client_id, "scope": "openid email"},
        auth=(provider.client_id, provider.client_secret),
    ).json()
    page, log = contexts.page()

    page.goto(started["verification_uri"])
    page.get_by_placeholder("Enter code").fill(started["user_code"])
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Allow").click()
    provider.fill_sign_in_form(page, "bob")

    page.get_by_role("heading", name="Device signed in").wait_for()
    poll = provider.backchannel.post(
        provider.discovery()["token_endpoint"],
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": started["device_code"],
        },
        auth=(provider.client_id, provider.client_secret),
    )
    assert poll.status_code == 200, poll.text
    _only_loopback(log.urls(), provider)
