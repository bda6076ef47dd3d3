"""Access rules in the web app (docs/access.md, docs/web.md), in Chromium against real servers.

The compose page's "More options" (networks, countries, the recipient's address) and the
server's policy; the reveal page's code step (the code comes from mail captured by a local
SMTP server) and its refusals. As in test_web_app.py, every request the pages make is recorded
and none may carry the key, the passphrase or the plaintext.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from burnlink.config import load_settings
from tests.browser.conftest import Contexts, MailServer, axe_violations, wait_ready
from tests.browser.test_screenshots import shoot
from tests.browser.test_web_app import (
    PASSPHRASE,
    compose,
    event_types,
    open_link,
    open_more_options,
    receipt,
    reveal,
)
from tests.cli.harness import MAX_BYTES, fragment, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

RECIPIENT = "bob@example.com"
HINT = "b***@example.com"
# Error codes the pages must turn into words, never show as they are.
RAW_CODES = (
    "ip_denied",
    "geo_denied",
    "rate_limited",
    "verification_required",
    "verification_failed",
    "mail_unavailable",
    "wrong_passphrase",
)


@pytest.fixture(scope="module")
def strict_server() -> Iterator[str]:
    """A server that requires a passphrase, lets secrets be opened only from Germany, cannot
    send mail, and refuses a client after its first failed reveal."""
    settings = load_settings(
        store="memory://",
        max_bytes=MAX_BYTES,
        sweep_interval=3600,
        require_passphrase=True,
        allowed_countries="DE",
        rate_limit_failures="1/hour",
    )
    with running_server(settings) as base:
        yield base


def text_of(page: Page, selector: str) -> str:
    return page.text_content(selector) or ""


def assert_no_raw_codes(page: Page) -> None:
    shown = page.inner_text("main")
    for code in RAW_CODES:
        assert code not in shown, f"the page shows {code!r}"


def test_recipient_types_the_mailed_code(contexts: Contexts, mail_server: MailServer) -> None:
    server, outbox = mail_server.base, mail_server.outbox
    secret = "vpn: psk=9f8e7d ✓"
    sender, sender_log = contexts.page()
    shared = compose(
        sender, server, text=secret, passphrase=PASSPHRASE, rules={"#recipient-email": RECIPIENT}
    )
    assert RECIPIENT in text_of(sender, "#result-rules")
    mails_before = len(outbox.to(RECIPIENT))

    reader, reader_log = contexts.page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#reveal-form:not([hidden])")
    assert HINT in text_of(reader, "#verification-note")
    assert reader.is_visible("#passphrase-field")
    assert not reader.is_visible("#code-field")
    assert len(outbox.to(RECIPIENT)) == mails_before  # opening mails nothing

    reader.click("#reveal-button")  # the first Reveal has a code mailed and takes nothing
    reader.wait_for_selector("#code-field:not([hidden])")
    otp = reader.locator("#otp")
    assert otp.get_attribute("autocomplete") == "one-time-code"
    assert otp.get_attribute("inputmode") == "numeric"
    assert reader.evaluate("document.activeElement.id") == "otp"
    assert HINT in text_of(reader, "#otp-hint")
    assert len(outbox.to(RECIPIENT)) == mails_before + 1
    code = outbox.last_code(RECIPIENT)
    mail = outbox.to(RECIPIENT)[-1].as_string()
    for leaked in (shared.key, secret, "/s/"):
        assert leaked not in mail

    reader.click("#resend-code")  # within a minute: the page says so, and nothing is mailed
    assert "less than a minute" in text_of(reader, "#code-status")
    assert len(outbox.to(RECIPIENT)) == mails_before + 1

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    reader.fill("#otp", wrong)
    reader.fill("#reveal-passphrase", PASSPHRASE)
    reader.click("#reveal-button")
    reader.wait_for_selector("#reveal-error:text('Wrong code')")
    assert "4 attempts left" in text_of(reader, "#reveal-error")
    assert reader.get_attribute("#otp", "aria-invalid") == "true"
    # Tied to the message that says why, and untied once a new try starts.
    assert "reveal-error" in (reader.get_attribute("#otp", "aria-describedby") or "").split()
    assert axe_violations(reader) == []
    assert_no_raw_codes(reader)

    reader.fill("#otp", f"{code[:3]} {code[3:]}")  # pasted with a space: still the code
    reveal(reader)

    assert reader.input_value("#secret-text") == secret
    events = event_types(server, shared)
    assert events[-4:] == ["verification_sent", "verification_failed", "verified", "viewed"]
    for log in (sender_log, reader_log):
        log.assert_never_sent(shared.key, secret, PASSPHRASE)
    consumes = [r for r in reader_log.requests if r.url.endswith("/consume")]
    assert [json.loads(r.post_data_buffer or b"{}").get("otp") for r in consumes] == [
        None,
        wrong,
        code,
    ]


def test_a_wrong_passphrase_uses_the_code(contexts: Contexts, mail_server: MailServer) -> None:
    # The server checks the code before the passphrase, and a right code is used up even when
    # the passphrase then is wrong: the page says so, and a new code can be sent at once.
    server, outbox = mail_server.base, mail_server.outbox
    address = "carol@example.org"
    sender, _ = contexts.page()
    shared = compose(
        sender, server, text="two locks", passphrase=PASSPHRASE, rules={"#recipient-email": address}
    )
    reader, reader_log = contexts.page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#reveal-form:not([hidden])")
    reader.fill("#reveal-passphrase", "not the passphrase")
    reader.click("#reveal-button")
    reader.wait_for_selector("#code-field:not([hidden])")
    reader.fill("#otp", outbox.last_code(address))
    reader.click("#reveal-button")
    reader.wait_for_selector("#reveal-error:text('Wrong passphrase')")
    assert "4 attempts left" in text_of(reader, "#reveal-error")
    assert "Send a new code" in text_of(reader, "#reveal-error")
    assert reader.input_value("#otp") == ""

    reader.click("#resend-code")
    reader.wait_for_selector("#code-status:text('A new code was sent')")
    assert len(outbox.to(address)) == 2
    reader.fill("#otp", outbox.last_code(address))
    reveal(reader, PASSPHRASE)

    assert reader.input_value("#secret-text") == "two locks"
    reader_log.assert_never_sent(shared.key, "two locks", PASSPHRASE, "not the passphrase")


def test_allowed_ip_refuses_this_address(contexts: Contexts, mail_server: MailServer) -> None:
    server = mail_server.base
    sender, sender_log = contexts.page()
    shared = compose(
        sender, server, text="office only", views=2, rules={"#allowed-ips": "203.0.113.0/24"}
    )
    assert "203.0.113.0/24" in text_of(sender, "#result-rules")

    reader, reader_log = contexts.page()
    open_link(reader, shared.link)  # the page comes from 127.0.0.1
    reader.wait_for_selector("#denied:not([hidden])")

    assert "cannot be opened from this network" in text_of(reader, "#denied-title")
    assert "Nothing was used up" in text_of(reader, "#denied")
    assert axe_violations(reader) == []
    assert not reader.is_visible("#reveal-form")
    assert_no_raw_codes(reader)
    state = receipt(server, shared)
    assert (state["state"], state["views_used"], state["views_left"]) == ("active", 0, 2)
    events = event_types(server, shared)
    assert "ip_denied" in events
    assert "viewed" not in events
    assert ("POST", f"secrets/{shared.link.split('/s/')[1].split('#')[0]}/consume") not in (
        reader_log.api_calls()
    )
    sent = next(r for r in sender_log.requests if r.url.endswith("/api/v1/secrets"))
    assert json.loads(sent.post_data_buffer or b"{}")["allowed_ips"] == ["203.0.113.0/24"]
    for log in (sender_log, reader_log):
        log.assert_never_sent(shared.key, "office only")


def test_more_options_are_checked_and_refusals_point_at_their_field(
    contexts: Contexts, mail_server: MailServer
) -> None:
    page, log = contexts.page()
    page.goto(f"{mail_server.base}/")
    wait_ready(page)
    assert not page.is_visible("#allowed-ips")
    page.focus("#more-options > summary")
    page.keyboard.press("Enter")  # unfolds with the keyboard
    page.wait_for_selector("#allowed-ips", state="visible")
    assert page.is_visible("#recipient-field")
    assert not page.is_visible("#recipient-unavailable")
    page.fill("#secret", "checked first")

    page.fill("#allowed-countries", "Germany, fr")
    page.click("#create")
    assert "Not a country code: Germany" in text_of(page, "#allowed-countries-error")
    assert page.evaluate("document.activeElement.id") == "allowed-countries"
    assert page.get_attribute("#allowed-countries", "aria-invalid") == "true"
    assert "Only from these countries" in text_of(page, "#compose-error")

    page.fill("#allowed-countries", "de, FR")  # typing clears the mark
    assert page.get_attribute("#allowed-countries", "aria-invalid") is None
    page.fill("#allowed-ips", "203.0.113.0/24\n10.0.0.300")
    page.click("#create")
    assert "10.0.0.300" in text_of(page, "#allowed-ips-error")
    assert ("POST", "secrets") not in log.api_calls()  # refused in the page, nothing sent

    page.fill("#allowed-ips", "203.0.113.0/24, 2001:db8::/32")
    page.fill("#allowed-countries", "XX")  # the right shape, but no country: the server says no
    page.click("#create")
    page.wait_for_selector("#allowed-countries-error:not([hidden])")
    assert "did not accept these countries" in text_of(page, "#allowed-countries-error")
    assert page.evaluate("document.activeElement.id") == "allowed-countries"
    assert ("POST", "secrets") in log.api_calls()

    page.fill("#allowed-countries", "")
    page.fill("#recipient-email", "not an address")
    page.click("#create")
    assert "email address" in text_of(page, "#recipient-email-error")
    assert page.evaluate("document.activeElement.id") == "recipient-email"
    assert_no_raw_codes(page)


def test_server_policy_is_shown_and_enforced(contexts: Contexts, strict_server: str) -> None:
    page, log = contexts.page()
    page.goto(f"{strict_server}/")
    wait_ready(page)
    assert text_of(page, "#passphrase-label") == "Passphrase (required on this server)"
    assert page.evaluate("document.getElementById('passphrase').required") is True
    assert "Germany (DE)" in text_of(page, "#policy-countries")
    assert page.is_visible("#policy-countries")
    open_more_options(page)
    assert not page.is_visible("#recipient-field")  # this server cannot mail codes
    assert "no mail" in text_of(page, "#recipient-unavailable")

    page.fill("#secret", "needs a passphrase")
    page.click("#create")
    assert "requires a passphrase" in text_of(page, "#passphrase-error")
    assert page.evaluate("document.activeElement.id") == "passphrase"
    assert ("POST", "secrets") not in log.api_calls()
    shoot(page, "light", "compose-policy")

    shared = compose(page, strict_server, text="needs a passphrase", passphrase=PASSPHRASE)

    reader, reader_log = contexts.page()
    open_link(reader, shared.link)  # 127.0.0.1 has no country: refused by the server's rule
    reader.wait_for_selector("#denied:not([hidden])")
    assert "cannot be opened from your location" in text_of(reader, "#denied-title")
    assert_no_raw_codes(reader)
    state = receipt(strict_server, shared)
    assert (state["state"], state["views_used"]) == ("active", 0)
    assert "geo_denied" in event_types(strict_server, shared)

    reader.reload()  # one failed reveal is all this server allows a client per hour
    wait_ready(reader)
    reader.wait_for_selector("#denied-title:text('Too many attempts')")
    assert "Try again in" in text_of(reader, "#denied-text")
    assert "failed ones" in text_of(reader, "#denied-text")  # why, not only when
    assert_no_raw_codes(reader)
    for log_ in (log, reader_log):
        log_.assert_never_sent(shared.key, "needs a passphrase", PASSPHRASE)


def test_a_server_refusal_marks_the_passphrase(contexts: Contexts, strict_server: str) -> None:
    # The page's policy is out of date (the server began to require passphrases after it
    # loaded): the server's 422 points at the passphrase, and the page shows the new policy.
    page, log = contexts.page()
    calls: list[dict[str, object]] = []

    def stale_policy(route: Route) -> None:
        answer = route.fetch()
        policy = answer.json()
        if not calls:
            policy["require_passphrase"] = False
        calls.append(policy)
        route.fulfill(response=answer, json=policy)

    page.route("**/api/v1/policy", stale_policy)
    page.goto(f"{strict_server}/")
    wait_ready(page)
    assert text_of(page, "#passphrase-label") == "Passphrase (optional)"
    page.fill("#secret", "refused by the server")
    page.click("#create")
    page.wait_for_selector("#passphrase-error:not([hidden])")

    assert "requires a passphrase" in text_of(page, "#passphrase-error")
    assert page.get_attribute("#passphrase", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "passphrase"
    assert text_of(page, "#passphrase-label") == "Passphrase (required on this server)"
    assert ("POST", "secrets") in log.api_calls()
    assert not page.is_visible("#result")
    log.assert_never_sent("refused by the server")
    assert fragment(page.url) == ""


def test_notify_url_is_offered_only_when_the_server_notifies(
    contexts: Contexts, server: str
) -> None:
    plain, _ = contexts.page()
    plain.goto(f"{server}/")
    wait_ready(plain)
    open_more_options(plain)
    assert not plain.is_visible("#notify-field")  # this server has no webhook secret

    # A page told that the server notifies: the URL is checked, sent, and the server's 422
    # (it has no webhook secret after all) is shown on the control.
    page, log = contexts.page()

    def notifying_policy(route: Route) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "notifications": True})

    page.route("**/api/v1/policy", notifying_policy)
    page.goto(f"{server}/")
    wait_ready(page)
    open_more_options(page)
    assert page.is_visible("#notify-url")
    page.fill("#secret", "tell me when")
    page.fill("#notify-url", "ftp://example.com/hook")
    page.click("#create")
    assert "https://" in text_of(page, "#notify-url-error")
    assert ("POST", "secrets") not in log.api_calls()

    page.fill("#notify-url", "https://example.com/hook")
    with page.expect_request(lambda r: r.method == "POST" and "/api/v1/secrets" in r.url) as sent:
        page.click("#create")
    assert (sent.value.post_data_json or {}).get("notify_url") == "https://example.com/hook"
    page.wait_for_selector("#notify-url-error:not([hidden])")
    assert "did not accept this webhook address" in text_of(page, "#notify-url-error")
    assert page.get_attribute("#notify-url", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "notify-url"
    assert not page.is_visible("#result")
    log.assert_never_sent("tell me when")
