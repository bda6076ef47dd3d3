"""Accessibility of every page and state in a real Chromium: axe-core finds no violation, the
focus that moves to a card is visible, errors are tied to their fields, and what the live
regions say stays there long enough to be read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Contexts, axe_violations, wait_ready
from tests.browser.test_web_app import PASSPHRASE, compose, open_link, reveal
from tests.cli.harness import MAX_BYTES

if TYPE_CHECKING:
    from playwright.sync_api import Page

# What the focus ring looks like where the focus is now: its width and style.
FOCUS_RING = """() => {
  const style = getComputedStyle(document.activeElement);
  return [style.outlineStyle, parseFloat(style.outlineWidth), style.boxShadow];
}"""


def assert_accessible(page: Page, state: str) -> None:
    assert axe_violations(page) == [], f"axe-core found violations in the {state} state"


def assert_focus_ring(page: Page, element_id: str) -> None:
    """``element_id`` has the focus, and an outline of at least 2 px shows it."""
    assert page.evaluate("document.activeElement.id") == element_id
    style, width, shadow = page.evaluate(FOCUS_RING)
    assert (style != "none" and width >= 2) or shadow != "none", (style, width, shadow)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_and_state_has_no_axe_violation(
    contexts: Contexts, server: str, scheme: str
) -> None:
    def new_page() -> Page:
        return contexts.page(color_scheme=scheme)[0]

    sender = new_page()
    sender.goto(f"{server}/")
    wait_ready(sender)
    assert_accessible(sender, "compose")
    sender.click("#more-options > summary")
    sender.fill("#allowed-ips", "not a network")
    sender.fill("#secret", "refused before sending")
    sender.click("#create")
    sender.wait_for_selector("#allowed-ips-error:not([hidden])")
    assert_accessible(sender, "compose with a refused field")
    sender.fill("#allowed-ips", "")
    shared = compose(sender, server, text="axe", passphrase=PASSPHRASE, views=2)
    assert_accessible(sender, "result")

    reader = new_page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#passphrase-field:not([hidden])")
    assert_accessible(reader, "interstitial with the passphrase prompt")
    reader.fill("#reveal-passphrase", "not the passphrase")
    reader.click("#reveal-button")
    reader.wait_for_selector("#reveal-error:text('Wrong passphrase')")
    assert_accessible(reader, "wrong passphrase")
    reveal(reader, PASSPHRASE)
    assert_accessible(reader, "revealed")

    manage = new_page()
    open_link(manage, shared.manage)
    manage.wait_for_selector("#receipt:not([hidden])")
    assert_accessible(manage, "receipt")
    manage.click("#burn")
    assert_accessible(manage, "burn dialog")
    manage.click("#burn-confirm")
    manage.wait_for_selector("#proof:not([hidden])")
    assert_accessible(manage, "burned receipt with its proof")

    gone = new_page()
    open_link(gone, shared.link)
    gone.wait_for_selector("#gone:not([hidden])")
    assert_accessible(gone, "gone")
    split = new_page()
    open_link(split, shared.link.split("#")[0])
    split.wait_for_selector("#key-form:not([hidden])")
    assert_accessible(split, "asking for the key")
    split.goto(f"{server}/security")
    assert_accessible(split, "how it works")
    split.goto(f"{server}/m/AAAAAAAAAAAAAAAAAAAAAA#bm90LWEtdG9rZW4")
    wait_ready(split)
    assert_accessible(split, "receipt of an unknown secret")
    split.goto(f"{server}/docs")
    split.wait_for_selector(".opblock-summary-path")
    assert_accessible(split, "API docs")


def test_focus_moved_to_a_card_is_visible(contexts: Contexts, server: str) -> None:
    sender, _ = contexts.page()
    sender.goto(f"{server}/")
    wait_ready(sender)
    sender.focus("#secret")
    sender.keyboard.type("ring")
    sender.focus("#create")
    sender.keyboard.press("Enter")
    sender.wait_for_selector("#result:not([hidden])")
    assert_focus_ring(sender, "result")
    link = sender.input_value("#result-link")

    reader, _ = contexts.page()
    open_link(reader, link)
    reader.wait_for_selector("#reveal-form:not([hidden])")
    reader.focus("#reveal-button")
    reader.keyboard.press("Enter")
    reader.wait_for_selector("#revealed:not([hidden])")
    assert_focus_ring(reader, "revealed")

    reader.reload()
    wait_ready(reader)
    reader.wait_for_selector("#gone:not([hidden])")
    assert_focus_ring(reader, "gone")


def test_an_empty_or_too_large_secret_marks_the_field(contexts: Contexts, server: str) -> None:
    page, log = contexts.page()
    page.goto(f"{server}/")
    wait_ready(page)
    page.focus("#create")
    page.keyboard.press("Enter")
    page.wait_for_selector("#compose-error:not([hidden])")

    assert page.evaluate("document.activeElement.id") == "secret"
    assert page.get_attribute("#secret", "aria-invalid") == "true"
    described = (page.get_attribute("#secret", "aria-describedby") or "").split()
    assert "secret-error" in described
    assert "Type a secret or choose a file first" in (page.text_content("#secret-error") or "")
    assert ("POST", "secrets") not in log.api_calls()
    too_large = "x" * (MAX_BYTES + 1)
    page.fill("#secret", too_large)
    page.click("#create")
    page.wait_for_selector("#secret-error:text('this server accepts at most')")
    assert page.get_attribute("#secret", "aria-invalid") == "true"
    assert page.input_value("#secret") == too_large  # refused, not lost
    assert ("POST", "secrets") not in log.api_calls()
    page.fill("#secret", "now there is one")
    page.click("#create")
    page.wait_for_selector("#result:not([hidden])")
    page.click("#another")
    assert page.get_attribute("#secret", "aria-invalid") is None


def test_a_wrong_passphrase_marks_the_field(contexts: Contexts, server: str) -> None:
    sender, _ = contexts.page()
    shared = compose(sender, server, text="marked", passphrase=PASSPHRASE)
    reader, _ = contexts.page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#passphrase-field:not([hidden])")
    assert reader.get_attribute("#reveal-passphrase", "aria-invalid") is None

    for typed, message in (("", "Type the passphrase"), ("not it", "Wrong passphrase")):
        reader.fill("#reveal-passphrase", typed)
        reader.click("#reveal-button")
        reader.wait_for_selector(f"#reveal-error:text('{message}')")
        assert reader.evaluate("document.activeElement.id") == "reveal-passphrase"
        assert reader.get_attribute("#reveal-passphrase", "aria-invalid") == "true"
        described = (reader.get_attribute("#reveal-passphrase", "aria-describedby") or "").split()
        assert "reveal-error" in described, described

    reveal(reader, PASSPHRASE)
    assert reader.input_value("#secret-text") == "marked"


def test_the_burned_message_stays_in_the_live_region(contexts: Contexts, server: str) -> None:
    sender, _ = contexts.page()
    shared = compose(sender, server, text="burn me", views=2)
    manage, _ = contexts.page()
    # Every text the page's live regions held, in order.
    manage.add_init_script(
        """
        window.spoken = [];
        new MutationObserver(() => {
          for (const region of document.querySelectorAll("[role=status], [aria-live]")) {
            const text = region.textContent.trim();
            if (text && window.spoken.at(-1) !== text) window.spoken.push(text);
          }
        }).observe(document, {subtree: true, childList: true, characterData: true});
        """
    )
    open_link(manage, shared.manage)
    manage.wait_for_selector("#receipt:not([hidden])")
    manage.click("#burn")
    manage.click("#burn-confirm")
    manage.wait_for_selector("#receipt-state:text('Burned')")
    manage.wait_for_function("document.activeElement.id === 'refresh'")
    # The announcement of a state change comes 50 ms after it; give any such change its time.
    manage.wait_for_timeout(500)

    assert "burned" in (manage.text_content("#receipt-status") or "").lower()
    spoken = manage.evaluate("window.spoken")
    burned = [i for i, text in enumerate(spoken) if "burned" in text.lower()]
    assert burned, spoken
    assert spoken[burned[0] :] == [spoken[burned[0]]], spoken


# Roles that may not be named (WAI-ARIA 1.2); axe-core 4.12 does not check a <pre>, whose
# role is generic, so the page's own accessibility tree is asked.
UNNAMEABLE_ROLES = {
    "caption",
    "code",
    "deletion",
    "emphasis",
    "generic",
    "insertion",
    "none",
    "paragraph",
    "presentation",
    "strong",
    "subscript",
    "superscript",
}


def named_roles(page: Page) -> dict[str, str]:
    """The role Chromium gives every shown element that has ``aria-label`` or
    ``aria-labelledby``, keyed by its start tag."""
    cdp = page.context.new_cdp_session(page)
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    found = cdp.send(
        "DOM.querySelectorAll", {"nodeId": root, "selector": "[aria-label], [aria-labelledby]"}
    )
    roles = {}
    for node in found["nodeIds"]:
        html = cdp.send("DOM.getOuterHTML", {"nodeId": node})["outerHTML"]
        tree = cdp.send("Accessibility.getPartialAXTree", {"nodeId": node, "fetchRelatives": False})
        ax = tree["nodes"][0]
        if not ax.get("ignored"):  # hidden: not in the tree, so no role to judge yet
            roles[html.split(">", 1)[0] + ">"] = str(ax.get("role", {}).get("value", ""))
    cdp.detach()
    return roles


def test_only_elements_that_may_be_named_are(contexts: Contexts, server: str) -> None:
    sender, _ = contexts.page()
    shared = compose(sender, server, text="named", views=1)
    reader, _ = contexts.page()
    open_link(reader, shared.link)
    reveal(reader)
    manage, _ = contexts.page()
    open_link(manage, shared.manage)
    manage.wait_for_selector("#proof:not([hidden])")

    for page in (sender, reader, manage):
        roles = named_roles(page)
        assert roles, "no named element found"
        refused = {tag: role for tag, role in roles.items() if role.lower() in UNNAMEABLE_ROLES}
        assert refused == {}, f"named, but their role may not be: {refused}"


def tab_through(page: Page, limit: int = 200) -> list[tuple[str, float, str]]:
    """Press Tab until the focus comes back to an element it was on; the start tag, outline
    width and box shadow of each element on the way (``limit`` presses at most)."""
    seen: list[tuple[str, float, str]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        fresh, tag, style, width, shadow = page.evaluate(
            """() => {
              window.tabbed ??= new WeakSet();
              const e = document.activeElement;
              const fresh = !window.tabbed.has(e);
              window.tabbed.add(e);
              const s = getComputedStyle(e);
              return [fresh, e.outerHTML.split(">")[0] + ">", s.outlineStyle,
                      parseFloat(s.outlineWidth), s.boxShadow];
            }"""
        )
        if tag.startswith("<body"):
            continue
        if not fresh:
            break
        seen.append((tag, width if style != "none" else 0.0, shadow))
    return seen


def assert_every_focus_is_visible(page: Page) -> None:
    steps = tab_through(page)
    assert steps, "nothing took the focus"
    hidden = [step for step in steps if step[1] < 2 and step[2] == "none"]
    assert hidden == [], f"focused without a visible ring: {hidden}"


def test_every_control_shows_its_focus_when_tabbed_to(contexts: Contexts, server: str) -> None:
    sender, _ = contexts.page()
    sender.goto(f"{server}/")
    wait_ready(sender)
    sender.click("#more-options > summary")
    assert_every_focus_is_visible(sender)
    shared = compose(sender, server, text="tabbed", passphrase=PASSPHRASE, views=2)
    assert_every_focus_is_visible(sender)

    reader, _ = contexts.page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#passphrase-field:not([hidden])")
    assert_every_focus_is_visible(reader)
    reveal(reader, PASSPHRASE)
    assert_every_focus_is_visible(reader)

    manage, _ = contexts.page()
    open_link(manage, shared.manage)
    manage.wait_for_selector("#receipt:not([hidden])")
    assert_every_focus_is_visible(manage)
    manage.goto(f"{server}/docs")
    manage.wait_for_selector(".opblock-summary-path")
    assert_every_focus_is_visible(manage)
