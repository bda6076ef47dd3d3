"""Real Chromium signs in at the real OpenID provider, creates a secret as the signed-in
sender (the request carries the session cookie and its CSRF token), and signs out here and at
the provider."""

from __future__ import annotations

from burnlink.config import load_settings
from tests.browser.conftest import Contexts, wait_ready
from tests.cli.harness import MAX_BYTES, running_server
from tests.oidc_provider import OidcProvider, require_node


def test_sign_in_create_and_sign_out(contexts: Contexts) -> None:
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
    )
    with running_server(settings) as base:
        provider.redirect_uris.append(f"{base}/auth/callback")
        provider.post_logout_redirect_uris.append(f"{base}/")
        with provider:
            page, log = contexts.page()
            page.goto(f"{base}/")
            wait_ready(page)
            assert page.is_visible("#sign-in")

            page.click("#sign-in")
            page.wait_for_url(f"{provider.issuer}/**")
            user = provider.users["alice"]
            page.fill("input[name=user]", user.id)
            page.fill("input[name=password]", user.password)
            page.fill("input[name=otp]", provider.otp("alice"))
            page.click("button:has-text('Sign in')")
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
            (create,) = [
                r for r in log.requests if r.method == "POST" and "/api/v1/secrets" in r.url
            ]
            assert create.headers.get("x-burnlink-csrf")

            page.click("#sign-out")
            page.wait_for_url(f"{provider.issuer}/**")
            page.click("button[name=logout]")
            page.wait_for_url(f"{base}/")
            wait_ready(page)
            assert page.is_visible("#sign-in")
            assert "burnlink_session" not in {c["name"] for c in page.context.cookies(base)}
            me = page.request.get(f"{base}/api/v1/me")
            assert me.status == 401
