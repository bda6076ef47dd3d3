"""Real Chromium on the compose page with sign-in at the real OpenID provider and team rules:
the signed-in sender sees the rules of their teams before typing (the expiry choices and views
held to them, recipients marked required), and a create that breaks one is refused next to
the field it names, with nothing stored."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Contexts, axe_violations, wait_ready
from tests.browser.test_compose_recipients import create_requests
from tests.browser.test_reveal_signin import signed_in_as
from tests.browser.test_signin import signed_in_on_compose_page, signin_server

TEAMS: dict[str, Any] = {
    "teams": {
        "engineering": {"max_ttl": "1h", "max_views": 3},
        "admins": {"allowed_countries": ["DE", "FR"], "require_passphrase": True},
        "sales": {"recipients_inside": True},
    },
    "organisation_domains": ["example.com"],
}


def test_compose_shows_the_rules_of_the_senders_teams(contexts: Contexts) -> None:
    with signin_server(**TEAMS) as (base, provider):
        page, _ = contexts.page()
        signed_in_on_compose_page(page, base, provider)  # alice: engineering, admins
        page.wait_for_selector("#team-policy:not([hidden])")

        rules = page.inner_text("#team-policy")
        enabled = page.eval_on_selector_all(
            "#ttl option:not([disabled])", "options => options.map(o => Number(o.value))"
        )

        assert "engineering and admins" in page.inner_text("#team-policy-title")
        assert "Links live at most 1 hour (engineering)." in rules
        assert "At most 3 views (engineering)." in rules
        assert "(DE)" in rules
        assert "(FR)" in rules
        assert "(admins)" in rules
        assert "A passphrase is required (admins)." in rules
        assert page.inner_text("#passphrase-label") == "Passphrase (required by your teams)"
        assert max(enabled) == 3600
        assert int(page.input_value("#ttl")) == 3600
        assert page.get_attribute("#views", "max") == "3"
        assert page.is_enabled("#create")
        assert axe_violations(page) == []


def test_compose_refuses_what_the_teams_forbid_next_to_the_field(contexts: Contexts) -> None:
    with signin_server(**TEAMS) as (base, provider):
        bob = signed_in_as(contexts, base, provider, "bob")  # sales
        log = contexts.opened[-1][1]
        bob.goto(f"{base}/")
        wait_ready(bob)
        bob.wait_for_selector("#team-policy:not([hidden])")

        assert "example.com" in bob.inner_text("#team-policy")
        assert "(sales)" in bob.inner_text("#team-policy")
        assert bob.is_visible("#recipients")  # More options opened: recipients are required
        assert "required by your teams" in bob.inner_text("#recipients-label")

        bob.fill("#secret", "for the organisation only")
        bob.fill("#recipients", "carol@example.net")
        bob.click("#create")
        bob.wait_for_selector("#recipients-error:not([hidden])")

        error = bob.inner_text("#recipients-error")
        assert "Your teams do not allow this" in error
        assert "example.com" in error
        assert bob.get_attribute("#recipients", "aria-invalid") == "true"
        assert bob.is_hidden("#result")
        assert len(create_requests(log)) == 1

        bob.fill("#recipients", "alice@example.com")
        bob.click("#create")
        bob.wait_for_selector("#result:not([hidden])")
        assert '"recipients":["alice@example.com"]' in create_requests(log)[-1]


def test_compose_without_teams_shows_no_team_rules(contexts: Contexts) -> None:
    with signin_server(**TEAMS) as (base, provider):
        carol = signed_in_as(contexts, base, provider, "carol")  # no group
        carol.goto(f"{base}/")
        wait_ready(carol)

        assert carol.is_hidden("#team-policy")
        assert carol.get_attribute("#views", "max") == "100"
