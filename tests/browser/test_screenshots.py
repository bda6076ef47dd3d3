"""Screenshots of the pages in light, dark and at phone width, to look at (test-artifacts/),
"My secrets" included.

Each variant also checks what a screenshot cannot: no horizontal scrolling at 375 px, and the
colour scheme the page actually used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import ARTIFACTS, Contexts, MailServer, axe_violations, wait_ready
from tests.browser.test_signin import signed_in_on_compose_page, signin_server
from tests.browser.test_web_app import (
    PASSPHRASE,
    compose,
    open_link,
    open_more_options,
    reveal,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

PHONE_WIDTH = 375
VARIANTS: dict[str, dict[str, Any]] = {
    "light": {"viewport": {"width": 1000, "height": 900}, "color_scheme": "light"},
    "dark": {"viewport": {"width": 1000, "height": 900}, "color_scheme": "dark"},
    "phone": {
        "viewport": {"width": PHONE_WIDTH, "height": 812},
        "is_mobile": True,
        "has_touch": True,
        "color_scheme": "light",
    },
}


def shoot(page: Page, variant: str, name: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None
    assert width <= viewport["width"], f"{name} scrolls sideways at {viewport['width']} px"
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}-{variant}.png"), full_page=True)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_screenshots(contexts: Contexts, server: str, variant: str) -> None:
    options = VARIANTS[variant]
    sender, _ = contexts.page(**options)
    sender.goto(f"{server}/")
    wait_ready(sender)
    dark = sender.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    assert dark is (variant == "dark")
    sender.fill("#secret", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    sender.fill("#passphrase", PASSPHRASE)
    shoot(sender, variant, "compose")
    shared = compose(
        sender, server, text="AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", passphrase=PASSPHRASE
    )
    shoot(sender, variant, "compose-result")

    manage, _ = contexts.page(**options)
    open_link(manage, shared.manage)
    manage.wait_for_selector("#burn:not([hidden])")
    shoot(manage, variant, "receipt-active")
    manage.click("#burn")
    manage.screenshot(path=str(ARTIFACTS / "screenshots" / f"receipt-burn-dialog-{variant}.png"))
    manage.click("#burn-cancel")

    reader, _ = contexts.page(**options)
    open_link(reader, shared.link)
    reader.wait_for_selector("#reveal-form:not([hidden])")
    reader.fill("#reveal-passphrase", "a wrong guess")
    reader.click("#reveal-button")
    reader.wait_for_selector("#reveal-error:not([hidden])")
    shoot(reader, variant, "reveal")
    reveal(reader, PASSPHRASE)
    shoot(reader, variant, "reveal-revealed")
    reader.reload()
    wait_ready(reader)
    reader.wait_for_selector("#gone:not([hidden])")
    shoot(reader, variant, "reveal-gone")

    manage.reload()
    wait_ready(manage)
    manage.wait_for_selector("#receipt-state:text('Viewed')")
    shoot(manage, variant, "receipt")

    file_sender, _ = contexts.page(**options)
    shared_file = compose(file_sender, server, file=("prod.env", "text/plain", b"TOKEN=x\n" * 64))
    file_reader, _ = contexts.page(**options)
    open_link(file_reader, shared_file.link)
    reveal(file_reader)
    shoot(file_reader, variant, "reveal-file")

    security, _ = contexts.page(**options)
    security.goto(f"{server}/security")
    shoot(security, variant, "security")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_access_screenshots(contexts: Contexts, mail_server: MailServer, variant: str) -> None:
    """Compose with "More options" open, the reveal page's code step, and an IP refusal."""
    options = VARIANTS[variant]
    server = mail_server.base
    rules = {
        "#allowed-ips": "203.0.113.0/24\n2001:db8::/32",
        "#allowed-countries": "DE, fr",
        "#denied-countries": "Germany",
        "#recipient-email": "bob@example.com",
    }
    sender, _ = contexts.page(**options)
    sender.goto(f"{server}/")
    wait_ready(sender)
    sender.fill("#secret", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG")
    open_more_options(sender)
    for selector, value in rules.items():
        sender.fill(selector, value)
    sender.click("#create")  # "Germany" is not a code: refused in the page, next to its field
    sender.wait_for_selector("#denied-countries-error:not([hidden])")
    shoot(sender, variant, "compose-options")

    rules["#allowed-ips"] = "127.0.0.1"
    rules["#denied-countries"] = ""
    rules["#allowed-countries"] = ""
    shared = compose(sender, server, text="AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI", rules=rules)
    shoot(sender, variant, "compose-result-rules")

    reader, _ = contexts.page(**options)
    open_link(reader, shared.link)
    reader.wait_for_selector("#reveal-form:not([hidden])")
    shoot(reader, variant, "reveal-verification")
    reader.click("#reveal-button")
    reader.wait_for_selector("#code-field:not([hidden])")
    code = mail_server.outbox.last_code("bob@example.com")
    reader.fill("#otp", f"{(int(code) + 1) % 1_000_000:06d}")  # a wrong code, to show its error
    reader.click("#reveal-button")
    reader.wait_for_selector("#reveal-error:not([hidden])")
    shoot(reader, variant, "reveal-code")

    office = compose(sender, server, text="office only", rules={"#allowed-ips": "203.0.113.0/24"})
    refused, _ = contexts.page(**options)
    open_link(refused, office.link)
    refused.wait_for_selector("#denied:not([hidden])")
    shoot(refused, variant, "reveal-denied")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_my_secrets_screenshots(contexts: Contexts, variant: str) -> None:
    """ "My secrets" with a long unbroken label, a burned row and a token just made: no
    sideways scrolling at phone width, and no axe-core violation in either colour scheme."""
    with signin_server() as (base, provider):
        page, _ = contexts.page(**VARIANTS[variant])
        signed_in_on_compose_page(page, base, provider)
        csrf = page.request.get(f"{base}/api/v1/me").json()["csrf_token"]
        ids = []
        for label in ("production database password", "x" * 100, None):
            body = {"secret": "s", "max_views": 3} | ({"label": label} if label else {})
            made = page.request.post(
                f"{base}/api/v1/secrets", data=body, headers={"x-burnlink-csrf": csrf}
            )
            assert made.status == 201, made.text()
            ids.append(made.json()["id"])
        page.goto(f"{base}/me")
        wait_ready(page)
        page.wait_for_selector(f"#secrets-body tr[data-id='{ids[0]}']")
        page.locator(f"#secrets-body tr[data-id='{ids[0]}'] button.burn").click()
        page.click("#me-burn-confirm")
        page.wait_for_selector(f"#secrets-body tr[data-id='{ids[0]}'][data-state=burned]")
        shoot(page, variant, "my-secrets")
        wrap = "e => e.closest('.table-wrap').scrollWidth <= e.closest('.table-wrap').clientWidth"
        assert page.locator("#secrets").evaluate(wrap), "the table scrolls sideways in its card"
        # A button's name is never broken over lines: it is as tall as "Burn selected".
        one_line = page.locator("#burn-selected").evaluate("e => e.offsetHeight")
        for height in page.locator("#secrets-body button").evaluate_all(
            "all => all.map(e => e.offsetHeight)"
        ):
            assert abs(height - one_line) <= 2, "a button's name wraps"
        long_label = page.locator(f"#secrets-body tr[data-id='{ids[1]}'] .secret-label")
        assert long_label.evaluate("e => e.scrollWidth <= e.clientWidth"), "the label is cut"
        before = "e => getComputedStyle(e, '::before').content"
        state = page.locator(f"#secrets-body tr[data-id='{ids[0]}'] td.secret-state")
        # Stacked at phone width, a value names its column; in a table the header does.
        assert (state.evaluate(before) == '"State: "') is (variant == "phone")
        assert axe_violations(page) == [], f"axe-core found violations on /me ({variant})"

        page.fill("#token-name", "deploy pipeline")
        page.click("#token-create")
        page.wait_for_selector("#token-made:not([hidden])")
        shoot(page, variant, "my-secrets-token-made")
        assert axe_violations(page) == [], f"axe-core found violations on /me ({variant})"
