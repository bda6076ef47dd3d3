"""The pages in other languages, in real Chromium (issue 18): German (long words) and Arabic
(right to left) at phone and desktop width, with screenshots to look at, and failures on
horizontal overflow or clipped buttons; the language picker and what it remembers; the
browser's Intl.PluralRules against the server's plural rules.

Screenshots go to ``$BURNLINK_SCREENSHOTS`` when set, else a temporary folder that the test
names in its output (never the repository).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from burnlink.i18n import PLURAL_CATEGORIES, load_catalogues, plural_category
from tests.browser.conftest import Contexts, wait_ready
from tests.browser.test_web_app import PASSPHRASE, compose, open_link, reveal

if TYPE_CHECKING:
    from playwright.sync_api import Page

SHOTS = Path(os.environ.get("BURNLINK_SCREENSHOTS") or tempfile.mkdtemp(prefix="burnlink-i18n-"))
WIDTHS: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 375, "height": 812},
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
LOCALES = {"de": "de-DE", "ar": "ar-EG"}
# The containers whose content must fit their width (the document itself is checked too).
CONTAINERS = "main, .site-header, .site-footer, .card, form, fieldset, .row, .field, section, dl"

_LAYOUT_PROBLEMS = """(containers) => {
  const problems = [];
  const root = document.documentElement;
  const width = root.clientWidth;
  if (root.scrollWidth > width) problems.push(`document: ${root.scrollWidth} > ${width}`);
  const visible = (e) =>
    e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  const name = (e) =>
    e.id ? `#${e.id}` : `${e.tagName.toLowerCase()}.${[...e.classList].join(".")}`;
  for (const e of document.querySelectorAll(containers)) {
    if (visible(e) && e.scrollWidth > e.clientWidth + 1) {
      problems.push(`${name(e)}: ${e.scrollWidth} > ${e.clientWidth}`);
    }
  }
  for (const b of document.querySelectorAll("button, a.button, select")) {
    if (!visible(b)) continue;
    const box = b.getBoundingClientRect();
    if (b.scrollWidth > b.clientWidth + 1) {
      problems.push(`${name(b)} clipped: "${b.textContent.trim()}"`);
    }
    if (box.left < -1 || box.right > width + 1) problems.push(`${name(b)} outside the viewport`);
  }
  return problems;
}"""


def check_and_shoot(page: Page, language: str, width: str, name: str) -> None:
    """Fail on sideways scrolling or clipped buttons; save a full-page screenshot."""
    problems = page.evaluate(_LAYOUT_PROBLEMS, CONTAINERS)
    path = SHOTS / f"{name}-{language}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")  # noqa: T201 - where to look
    assert problems == [], f"{name} in {language} at {width}"


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("language", list(LOCALES))
def test_pages_fit_in_german_and_arabic(
    contexts: Contexts, server: str, language: str, width: str
) -> None:
    options = {**WIDTHS[width], "locale": LOCALES[language]}
    catalogue = load_catalogues()[language]
    direction = "rtl" if language == "ar" else "ltr"

    sender, _ = contexts.page(**options)
    sender.goto(f"{server}/")
    wait_ready(sender)
    assert sender.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        language,
        direction,
    ]
    assert sender.text_content("h1") == catalogue.t("compose.title")
    sender.fill("#secret", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    sender.fill("#passphrase", PASSPHRASE)
    sender.click("#more-options > summary")
    sender.fill("#allowed-countries", "DE, FR")
    check_and_shoot(sender, language, width, "compose")

    shared = compose(sender, server, text="wJalrXUtnFEMI/K7MDENG", passphrase=PASSPHRASE, views=3)
    assert (
        sender.evaluate("getComputedStyle(document.getElementById('result-link')).direction")
        == "ltr"
    )
    check_and_shoot(sender, language, width, "result")

    reader, reader_log = contexts.page(**options)
    open_link(reader, shared.link)
    reader.wait_for_selector("#reveal-form:not([hidden])")
    check_and_shoot(reader, language, width, "reveal")
    reader.fill("#reveal-passphrase", "a wrong guess")
    reader.click("#reveal-button")
    reader.wait_for_selector("#reveal-error:not([hidden])")
    # "4 attempts left", in the language's plural form and digits, inside the sentence.
    four = reader.evaluate(f"new Intl.NumberFormat('{language}').format(4)")
    left = catalogue.t("attempts.left", count=4).replace("4", four)
    assert left in (reader.text_content("#reveal-error") or "")
    reveal(reader, PASSPHRASE)
    check_and_shoot(reader, language, width, "revealed")
    # The pages ask the API in their own language (a mailed code would be written in it).
    reveals = [r for r in reader_log.requests if r.url.endswith("/consume")]
    assert reveals
    assert {r.headers.get("accept-language") for r in reveals} == {language}

    manage, _ = contexts.page(**options)
    open_link(manage, shared.manage)
    manage.wait_for_selector("#burn:not([hidden])")
    manage.wait_for_selector("#events-body tr >> nth=2")
    check_and_shoot(manage, language, width, "receipt")


def test_picker_switches_and_remembers_the_language_and_keeps_the_key(
    contexts: Contexts, server: str
) -> None:
    sender, _ = contexts.page(locale="en-US")
    shared = compose(sender, server, text="picker")
    assert sender.is_disabled("#language-picker")  # a new link on the page: no reload now

    context, _ = contexts.new(locale="en-US")
    reader = context.new_page()
    open_link(reader, shared.link)
    assert reader.evaluate("document.documentElement.lang") == "en"
    with reader.expect_navigation():
        reader.select_option("#language-picker", "ar")
    wait_ready(reader)

    assert reader.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        "ar",
        "rtl",
    ]
    assert reader.url == shared.link  # the key is still in the fragment, no ?lang= added
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies["burnlink_lang"] == "ar"
    assert reader.input_value("#language-picker") == "ar"
    reveal(reader)
    assert reader.text_content("#secret-text") is not None
    assert reader.is_disabled("#language-picker")  # the secret is on the page

    other = context.new_page()  # same browser: the choice is remembered
    other.goto(f"{server}/security")
    assert other.evaluate("document.documentElement.lang") == "ar"
    other.goto(f"{server}/security?lang=de")  # a link's ?lang= wins, without being remembered
    assert other.evaluate("document.documentElement.lang") == "de"
    assert {c["name"]: c["value"] for c in context.cookies()}["burnlink_lang"] == "ar"


def test_browser_plural_rules_match_the_server(contexts: Contexts, server: str) -> None:
    page, _ = contexts.page()
    page.goto(f"{server}/security")
    numbers = [*range(130), 1000, 1_000_000, 2_000_000]
    for language, categories in PLURAL_CATEGORIES.items():
        browser: dict[str, Any] = page.evaluate(
            """([language, numbers]) => {
              const rules = new Intl.PluralRules(language);
              return {
                categories: rules.resolvedOptions().pluralCategories,
                forms: numbers.map((n) => rules.select(n)),
              };
            }""",
            [language, numbers],
        )
        assert set(browser["categories"]) == set(categories), language
        assert browser["forms"] == [plural_category(language, n) for n in numbers], language
