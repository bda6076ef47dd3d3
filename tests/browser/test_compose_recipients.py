"""Real Chromium on the compose page with sign-in at the real OpenID provider: a signed-in
sender binds a secret to recipients under "More options" (``recipients``, ``require_mfa``);
another signed-in user is refused with nothing used up; an entry the API refuses is shown
next to the field; anonymous senders never see the field."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import Contexts, RequestLog, axe_violations, wait_ready
from tests.browser.test_reveal_signin import signed_in_as
from tests.browser.test_signin import signed_in_on_compose_page, signin_server

PLAINTEXT = "only for alice"


def create_requests(log: RequestLog) -> list[str]:
    """The create requests' bodies, in order."""
    return [
        r.post_data or ""
        for r in log.requests
        if r.method == "POST" and r.url.endswith("/api/v1/secrets")
    ]


def open_more_options(page: Page) -> None:
    page.click("#more-options summary")
    page.wait_for_selector("#recipients-field:not([hidden])")


def test_recipients_typed_on_the_compose_page_bind_the_secret(contexts: Contexts) -> None:
    with signin_server() as (base, provider):
        page, log = contexts.page()
        signed_in_on_compose_page(page, base, provider)
        page.fill("#secret", PLAINTEXT)
        open_more_options(page)
        assert page.is_disabled("#require-mfa")  # no recipient yet
        assert axe_violations(page) == []
        page.fill("#recipients", "alice@example.com\ngroup:nonexistent")
        assert page.is_enabled("#require-mfa")
        page.click("#create")
        page.wait_for_selector("#result:not([hidden])")
        (create,) = [r for r in log.requests if r.method == "POST" and r.url.endswith("/secrets")]
        body = create.post_data_json
        assert body is not None
        assert body["recipients"] == ["alice@example.com", "group:nonexistent"]
        assert body["require_mfa"] is False
        link = page.input_value("#result-link")
        manage = page.input_value("#result-manage").split("#", 1)[1]
        secret_id = link.split("/s/")[1].split("#")[0]

        bob = signed_in_as(contexts, base, provider, "bob")
        bob.goto(link)
        wait_ready(bob)
        bob.wait_for_selector("#reveal-form:not([hidden])")
        bob.click("#reveal-button")
        bob.wait_for_selector("#denied:not([hidden])")
        assert "bob@example.com" in (bob.text_content("#denied") or "")
        receipt = bob.request.get(
            f"{base}/api/v1/secrets/{secret_id}/receipt",
            headers={"authorization": f"Bearer {manage}"},
        )
        assert receipt.json()["views_left"] == 1  # still there


def test_recipient_the_api_refuses_is_shown_next_to_the_field(contexts: Contexts) -> None:
    with signin_server() as (base, provider):
        page, log = contexts.page()
        signed_in_on_compose_page(page, base, provider)
        page.fill("#secret", PLAINTEXT)
        open_more_options(page)
        page.fill("#recipients", "alice@example.com, not an entry")
        page.check("#require-mfa")
        page.click("#create")
        page.wait_for_selector("#recipients-error:not([hidden])")
        assert page.get_attribute("#recipients", "aria-invalid") == "true"
        assert "recipients-error" in (page.get_attribute("#recipients", "aria-describedby") or "")
        assert page.evaluate("document.activeElement.id") == "recipients"
        assert page.is_hidden("#result")
        (body,) = create_requests(log)
        assert '"not an entry"' in body
        assert '"require_mfa":true' in body
        assert axe_violations(page) == []


def test_anonymous_sender_sees_no_recipients_field(contexts: Contexts) -> None:
    with signin_server() as (base, _):
        page, _ = contexts.page()
        page.goto(f"{base}/")
        wait_ready(page)
        page.click("#more-options summary")
        assert page.is_hidden("#recipients-field")
        assert page.is_hidden("#require-mfa")


def test_no_recipients_field_without_sign_in(contexts: Contexts, server: str) -> None:
    page, _ = contexts.page()
    page.goto(f"{server}/")
    wait_ready(page)
    assert page.locator("#recipients").count() == 0
