"""The admin console in real Chromium against the real OpenID provider: alice (in ``admins``,
with a second factor) sees activity drawn as a chart, the alert feed, searches and exports the
audit log, revokes a token and reads the policy; bob (not an admin) is refused; a stale
sign-in is sent back to the provider. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import csv
import io
import time
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Page

from tests.browser.conftest import ARTIFACTS, Contexts, axe_violations, wait_ready
from tests.browser.test_signin import sign_in_at_provider, signin_server
from tests.oidc_provider import OidcProvider

ADMIN: dict[str, object] = {
    "admin_groups": "admins",
    "teams": {"engineering": {"max_views": 10}},  # alice's team
}
FRESH_SECONDS = 30


def open_console(page: Page, base: str, provider: OidcProvider, user: str = "alice") -> None:
    """Open /admin anonymous: the page sends the browser to sign in, and back to /admin."""
    page.goto(f"{base}/admin")
    sign_in_at_provider(page, provider, user)
    page.wait_for_url(f"{base}/admin")
    wait_ready(page)


def make_activity(page: Page, base: str) -> dict[str, str]:
    """As the signed-in page: three secrets, one viewed, two wrong links, and a reveal from an
    address the secret does not allow (an alert); returns ids by name."""
    csrf = page.request.get(f"{base}/api/v1/me").json()["csrf_token"]
    headers = {"x-burnlink-csrf": csrf}
    made = {}
    for name, extra in (
        ("plain", {}),
        ("viewed", {}),
        ("guarded", {"allowed_ips": ["198.51.100.1"]}),
    ):
        answer = page.request.post(
            f"{base}/api/v1/secrets", data={"secret": name, **extra}, headers=headers
        )
        assert answer.status == 201, answer.text()
        made[name] = answer.json()
    key = made["viewed"]["url"].split("#")[1]
    assert (
        httpx.post(
            f"{base}/api/v1/secrets/{made['viewed']['id']}/reveal", json={"key": key}
        ).status_code
        == 200
    )
    for _ in range(2):
        wrong = httpx.post(
            f"{base}/api/v1/secrets/{made['plain']['id']}/reveal", json={"key": "A" * 43}
        )
        assert wrong.status_code == 404
    guarded_key = made["guarded"]["url"].split("#")[1]
    denied = httpx.post(
        f"{base}/api/v1/secrets/{made['guarded']['id']}/reveal", json={"key": guarded_key}
    )
    assert denied.status_code == 403
    return {name: answer["id"] for name, answer in made.items()}


def shoot(page: Page, name: str) -> None:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_an_admin_reads_activity_alerts_the_log_tokens_and_policy(contexts: Contexts) -> None:
    with signin_server(**ADMIN) as (base, provider):
        page, log = contexts.page(viewport={"width": 1100, "height": 900})
        open_console(page, base, provider)
        ids = make_activity(page, base)
        anonymous = httpx.post(f"{base}/api/v1/secrets", json={"secret": "no team"})
        assert anonymous.status_code == 201
        csrf = page.request.get(f"{base}/api/v1/me").json()["csrf_token"]
        token = page.request.post(
            f"{base}/api/v1/me/tokens",
            data={"name": "deploy pipeline", "scopes": ["secrets:create"]},
            headers={"x-burnlink-csrf": csrf},
        ).json()
        page.reload()
        wait_ready(page)
        page.wait_for_selector("#admin-console:not([hidden])")
        assert "alice@example.com" in (page.text_content("#admin-who") or "")

        # Activity: totals, and a chart whose lines rise where the events are.
        totals = {
            kind: page.text_content(f"#activity-totals .tile[data-kind={kind}] b")
            for kind in ("created", "viewed", "denied", "alerts")
        }
        assert totals == {"created": "4", "viewed": "1", "denied": "3", "alerts": "1"}
        for kind in ("created", "viewed", "denied", "alerts"):
            height = page.locator(f"#activity-chart polyline[data-series={kind}]").evaluate(
                "line => line.getBBox().height"
            )
            assert height > 0, f"the {kind} line is flat"
        flat = page.locator("#activity-chart polyline[data-series=expired]").evaluate(
            "line => line.getBBox().height"
        )
        assert flat == 0
        shoot(page, "admin-console")
        chart = page.locator("#activity-chart svg").screenshot()
        assert len(chart) > 5000  # a drawn chart, not an empty box

        # The alert feed names the alert.
        page.wait_for_selector("#alerts-list li")
        assert "denied_ip" in (page.text_content("#alerts-list") or "")

        # Search by secret id, then export what matches as CSV.
        page.fill("#search-secret", ids["viewed"])
        page.click("#search-run")
        page.wait_for_function("() => document.querySelectorAll('#results-body tr').length === 2")
        shown = page.locator("#results-body tr td:nth-child(3)").all_text_contents()
        assert shown == ["secret.created", "secret.viewed"]
        with page.expect_download() as download:
            page.click("#export-csv")
        rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
        assert [row["type"] for row in rows] == ["secret.created", "secret.viewed"]
        export = [r for r in log.requests if "/api/v1/admin/audit/export?" in r.url]
        assert parse_qs(urlsplit(export[-1].url).query)["secret_id"] == [ids["viewed"]]

        # Search by actor: alice's own actions only.
        page.fill("#search-secret", "")
        page.fill("#search-actor", "ALICE@example.com")
        page.select_option("#search-type", "secret.created")
        page.click("#search-run")
        page.wait_for_function("() => document.querySelectorAll('#results-body tr').length === 3")
        assert set(page.locator("#results-body tr td:nth-child(5)").all_text_contents()) == {
            "alice@example.com"
        }

        # By team: alice's three secrets are engineering's; the anonymous one is nobody's.
        page.fill("#search-actor", "")
        page.select_option("#search-team", "engineering")
        page.click("#search-run")
        page.wait_for_function("() => document.querySelectorAll('#results-body tr').length === 3")
        page.select_option("#activity-team", "engineering")
        page.click("#activity-form button[type=submit]")
        page.wait_for_function(
            "() => document.querySelector('#activity-totals .tile[data-kind=created] b')"
            ".textContent === '3'"
        )
        assert page.text_content("#activity-totals .tile[data-kind=viewed] b") == "1"

        # Tokens: alice's is listed with its user, and revoked from here.
        row = page.locator(f"#admin-tokens-body tr[data-token='{token['id']}']")
        assert "alice@example.com" in (row.text_content() or "")
        row.locator("button").click()
        page.wait_for_selector(f"#admin-tokens-body tr[data-token='{token['id']}'] >> text=revoked")
        refused = httpx.get(
            f"{base}/api/v1/me", headers={"authorization": f"Bearer {token['token']}"}
        )
        assert refused.status_code == 401
        revoke = [r for r in log.requests if r.method == "DELETE" and "/admin/tokens/" in r.url]
        assert revoke[-1].headers.get("x-burnlink-csrf")

        # Policy, read-only.
        assert "admins" in (page.text_content("#policy-sections dl[data-section=admin]") or "")
        assert page.locator("#policy input, #policy button").count() == 0
        assert axe_violations(page) == [], "axe-core found violations on /admin"


def test_a_user_outside_the_admin_groups_is_refused(contexts: Contexts) -> None:
    with signin_server(**ADMIN) as (base, provider):
        page, log = contexts.page()
        open_console(page, base, provider, user="bob")

        page.wait_for_selector("#admin-refused:not([hidden])")
        assert "not in a group that may use the admin console" in (
            page.text_content("#admin-refused-text") or ""
        )
        assert not page.is_visible("#admin-console")
        reads = [r for r in log.requests if "/api/v1/admin/" in r.url and "session" not in r.url]
        assert reads == []
        assert axe_violations(page) == [], "axe-core found violations on the refusal"


def test_a_stale_sign_in_is_sent_to_the_provider_again(contexts: Contexts) -> None:
    """Older than ``BURNLINK_ADMIN_MAX_AGE``, the console asks the provider for a new sign-in
    (``max_age``), which must not reuse its own session, and comes back to /admin."""
    with signin_server(**ADMIN, admin_max_age=FRESH_SECONDS) as (base, provider):
        page, log = contexts.page()
        open_console(page, base, provider)
        page.wait_for_selector("#admin-console:not([hidden])")
        signed_in = time.monotonic()
        time.sleep(max(0.0, signed_in + FRESH_SECONDS + 2 - time.monotonic()))

        page.reload()
        sign_in_at_provider(page, provider)  # asked again: both factors
        page.wait_for_url(f"{base}/admin")
        wait_ready(page)
        page.wait_for_selector("#admin-console:not([hidden])")

        again = [r for r in log.requests if r.url.startswith(f"{base}/auth/login?")][-1]
        assert parse_qs(urlsplit(again.url).query) == {
            "next": ["/admin"],
            "max_age": [str(FRESH_SECONDS)],
        }
        asked = [r for r in log.requests if r.url.startswith(f"{provider.issuer}/auth?")]
        assert parse_qs(urlsplit(asked[-1].url).query)["max_age"] == [str(FRESH_SECONDS)]
