"""The web app in a real Chromium: share, reveal, receipt, and interoperation with the CLI.

Each test records every request its pages make and checks that no key, passphrase or
plaintext left the browser.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from burnlink.audit.events import AuditEventType, audit_event
from burnlink.audit.outbox import OutboxRecord
from burnlink.config import load_settings
from burnlink.models import Event, EventKind
from burnlink.store.secrets import MAX_EVENTS_PER_KIND, Recorded
from burnlink.store.sqlite.store import SqliteStore
from tests.browser.conftest import Contexts, RequestLog, wait_ready
from tests.cli.harness import MAX_BYTES, Cli, fragment, running_server

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page

PASSPHRASE = "correct horse ✓ battery"
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
GONE = "This secret is not available"


@dataclass(frozen=True)
class Shared:
    """What the compose page showed after creating a secret."""

    link: str
    key: str
    manage: str


def compose(
    page: Page,
    server: str,
    *,
    text: str | None = None,
    file: tuple[str, str, bytes] | None = None,
    passphrase: str | None = None,
    views: int | None = None,
    split: bool = False,
    rules: Mapping[str, str] | None = None,
) -> Shared:
    """Fill in the compose page and create the link.

    ``rules`` maps controls under "More options" (``#allowed-ips``, ``#recipient-email``, …)
    to what to type in them.
    """
    page.goto(f"{server}/")
    wait_ready(page)
    if rules:
        open_more_options(page)
        for selector, value in rules.items():
            page.fill(selector, value)
    if text is not None:
        page.fill("#secret", text)
    if file is not None:
        name, mime, content = file
        payload: FilePayload = {"name": name, "mimeType": mime, "buffer": content}
        page.set_input_files("#file", files=[payload])
    if passphrase is not None:
        page.fill("#passphrase", passphrase)
    if views is not None:
        page.fill("#views", str(views))
    if split:
        page.check("#split")
    page.click("#create")
    page.wait_for_selector("#result:not([hidden])")
    link = page.input_value("#result-link")
    key = page.input_value("#result-key") if split else fragment(link)
    return Shared(link, key, page.input_value("#result-manage"))


def open_more_options(page: Page) -> None:
    """Unfold "More options" on the compose page (unless it is open already)."""
    if not page.evaluate("document.getElementById('more-options').open"):
        page.click("#more-options > summary")
    page.wait_for_selector("#allowed-ips", state="visible")


def open_link(page: Page, link: str) -> None:
    page.goto(link)
    wait_ready(page)


def reveal(page: Page, passphrase: str | None = None) -> None:
    """Click Reveal on an opened link (typing the passphrase first) and wait for the secret."""
    page.wait_for_selector("#reveal-form:not([hidden])")
    if passphrase is not None:
        page.fill("#reveal-passphrase", passphrase)
    page.click("#reveal-button")
    page.wait_for_selector("#revealed:not([hidden])")


def receipt(server: str, shared: Shared) -> dict[str, object]:
    secret_id = shared.manage.split("/m/")[1].split("#")[0]
    answer = httpx.get(
        f"{server}/api/v1/secrets/{secret_id}/receipt",
        headers={"authorization": f"Bearer {fragment(shared.manage)}"},
    )
    parsed: dict[str, object] = answer.json()
    return parsed


def event_types(server: str, shared: Shared) -> list[object]:
    """The receipt's event types, without page opens (which ``opened_by`` checks)."""
    events = receipt(server, shared)["events"]
    assert isinstance(events, list)
    return [event["type"] for event in events if event["type"] != "opened"]


def opened_by(server: str, shared: Shared) -> list[object]:
    """The agent class of each recorded page open."""
    events = receipt(server, shared)["events"]
    assert isinstance(events, list)
    opens = [event for event in events if event["type"] == "opened"]
    return [(event.get("agent") or {}).get("class") for event in opens]


def test_share_open_reveal_then_reload_shows_gone(contexts: Contexts, server: str) -> None:
    secret = "db password: pässwörd 東京 🔑\n  indented line\n"
    sender, sender_log = contexts.page()
    shared = compose(sender, server, text=secret)

    assert re.fullmatch(rf"{server}/s/[A-Za-z0-9_-]{{22}}#[A-Za-z0-9_-]{{43}}", shared.link)
    assert "/m/" in shared.manage
    assert "expires" in sender.text_content("#result-expires").lower()  # type: ignore[union-attr]
    assert sender.locator("#result-qr svg path").count() == 1

    reader, reader_log = contexts.page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#reveal-form:not([hidden])")
    assert "1 view left" in reader.text_content("#waiting-details")  # type: ignore[operator]
    assert event_types(server, shared) == ["created"]  # opening consumed nothing
    assert len(opened_by(server, shared)) == 1  # but was recorded (headless Chrome: a bot)

    reveal(reader)

    assert reader.input_value("#secret-text") == secret
    assert "now destroyed" in reader.text_content("#revealed-notice")  # type: ignore[operator]
    reader.reload()
    wait_ready(reader)
    reader.wait_for_selector("#gone:not([hidden])")
    assert GONE in reader.text_content("#gone")  # type: ignore[operator]
    assert event_types(server, shared) == ["created", "viewed"]
    for log in (sender_log, reader_log):
        log.assert_never_sent(shared.key, secret, secret.encode())
    assert reader_log.api_calls()[-1][0] == "GET"  # the reload asked, and consumed nothing


def test_passphrase_with_a_wrong_attempt(contexts: Contexts, server: str) -> None:
    secret = "api-key-0123456789"
    sender, sender_log = contexts.page()
    shared = compose(sender, server, text=secret, passphrase=PASSPHRASE)
    assert sender.is_visible("#result-passphrase")

    reader, reader_log = contexts.page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#passphrase-field:not([hidden])")
    assert "5 attempts left" in reader.text_content("#reveal-passphrase-hint")  # type: ignore[operator]
    reader.click("#reveal-button")  # empty: refused in the page, nothing sent
    assert "Type the passphrase" in reader.text_content("#reveal-error")  # type: ignore[operator]
    reader.fill("#reveal-passphrase", "not the passphrase")
    reader.click("#reveal-button")
    reader.wait_for_selector("#reveal-error:text('Wrong passphrase')")
    assert "4 attempts left" in reader.text_content("#reveal-error")  # type: ignore[operator]
    reveal(reader, PASSPHRASE)

    assert reader.input_value("#secret-text") == secret
    assert event_types(server, shared) == ["created", "wrong_passphrase", "viewed"]
    for log in (sender_log, reader_log):
        log.assert_never_sent(shared.key, secret, PASSPHRASE, "not the passphrase")


def test_file_round_trip_at_the_size_limit(contexts: Contexts, server: str) -> None:
    content = bytes(range(256)) * (MAX_BYTES // 256)
    sender, sender_log = contexts.page()
    shared = compose(sender, server, file=("../keys/id_ed25519", "application/x-pem-file", content))

    reader, reader_log = contexts.page(accept_downloads=True)
    open_link(reader, shared.link)
    reveal(reader)
    info = reader.text_content("#file-info") or ""
    with reader.expect_download() as download_info:
        reader.click("#download")
    download = download_info.value

    assert info.startswith("id_ed25519, 64")
    assert "application/x-pem-file" in info
    assert download.suggested_filename == "id_ed25519"
    path = download.path()
    assert path is not None
    assert path.read_bytes() == content
    assert not reader.is_visible("#revealed-text")
    for log in (sender_log, reader_log):
        log.assert_never_sent(shared.key, content[:4096], "id_ed25519")


def test_long_text_at_the_size_limit(contexts: Contexts, server: str) -> None:
    line = "ключ=значение ✓ 🔑 " * 3 + "\n"
    secret = line * (MAX_BYTES // len(line.encode()))
    secret += "x" * (MAX_BYTES - len(secret.encode()))
    assert len(secret.encode()) == MAX_BYTES
    sender, sender_log = contexts.page()
    shared = compose(sender, server, text=secret)

    reader, reader_log = contexts.page()
    open_link(reader, shared.link)
    reveal(reader)

    assert reader.input_value("#secret-text") == secret
    for log in (sender_log, reader_log):
        log.assert_never_sent(shared.key, line)


def test_too_large_is_refused_before_upload(contexts: Contexts, server: str) -> None:
    page, log = contexts.page()
    page.goto(f"{server}/")
    wait_ready(page)
    big: FilePayload = {"name": "big.bin", "mimeType": "", "buffer": b"x" * (MAX_BYTES + 1)}
    page.set_input_files("#file", files=[big])
    page.wait_for_selector("#compose-error:not([hidden])")
    page.click("#create")
    page.click("#file-remove")
    page.fill("#secret", "é" * (MAX_BYTES // 2 + 1))
    page.click("#create")

    error = page.text_content("#compose-error") or ""
    assert "this server accepts at most 64" in error
    assert "Nothing was sent" in error
    assert ("POST", "secrets") not in log.api_calls()


def test_split_link_asks_for_the_key(contexts: Contexts, server: str) -> None:
    secret = "split secret"
    sender, sender_log = contexts.page()
    shared = compose(sender, server, text=secret, split=True)

    assert "#" not in shared.link
    assert len(shared.key) == 43
    reader, reader_log = contexts.page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#key-form:not([hidden])")
    reader.fill("#key", "not-a-key")
    reader.click("#key-form button[type=submit]")
    assert reader.is_visible("#key-error")
    reader.fill("#key", shared.key)
    reader.click("#key-form button[type=submit]")
    reveal(reader)

    assert reader.input_value("#secret-text") == secret
    for log in (sender_log, reader_log):
        log.assert_never_sent(shared.key, secret)


def test_browser_secret_is_read_by_the_cli(contexts: Contexts, server: str, cli: Cli) -> None:
    secret = "from the browser: ✓\r\nsecond line"
    page, _ = contexts.page()
    shared = compose(page, server, text=secret, passphrase=PASSPHRASE, views=2)

    first = cli("get", shared.link, env={"BURNLINK_PASSPHRASE": PASSPHRASE})
    status = cli("status", "--json", shared.manage)

    assert first.exit_code == 0, first.stderr
    assert first.stdout_bytes == secret.replace("\r\n", "\n").encode()  # a textarea sends \n
    assert json.loads(status.stdout)["views_left"] == 1


def test_browser_file_is_read_by_the_cli(contexts: Contexts, server: str, cli: Cli) -> None:
    content = b"\x00\x01binary\xff" * 100
    page, _ = contexts.page()
    shared = compose(page, server, file=("clé ✓.env", "text/plain", content))

    result = cli("get", "--json", shared.link)

    assert result.exit_code == 0, result.stderr
    file = json.loads(result.stdout)["file"]
    assert file["name"] == "clé ✓.env"
    assert file["mime"] == "text/plain"
    assert base64.b64decode(file["content_base64"]) == content


def test_cli_secret_is_revealed_in_the_browser(contexts: Contexts, cli: Cli) -> None:
    secret = "from the CLI: pässwörd ✓\n"
    link = cli.share(secret.encode(), "--views", "1", env={"BURNLINK_PASSPHRASE": PASSPHRASE})

    page, log = contexts.page()
    open_link(page, link)
    reveal(page, PASSPHRASE)

    assert page.input_value("#secret-text") == secret
    log.assert_never_sent(fragment(link), secret, PASSPHRASE)


def test_cli_file_is_downloaded_in_the_browser(
    contexts: Contexts, cli: Cli, tmp_path: Path
) -> None:
    source = tmp_path / "service-account.json"
    source.write_bytes(b'{"private_key": "-----BEGIN KEY-----"}')
    link = cli.share(b"", "--file", str(source))

    page, _ = contexts.page(accept_downloads=True)
    open_link(page, link)
    reveal(page)
    with page.expect_download() as download_info:
        page.click("#download")

    assert download_info.value.suggested_filename == "service-account.json"
    path = download_info.value.path()
    assert path is not None
    assert path.read_bytes() == source.read_bytes()


def test_curl_mode_secret_is_revealed_in_the_browser(contexts: Contexts, server: str) -> None:
    created = httpx.post(f"{server}/api/v1/secrets", json={"secret": "made by curl"}).json()

    page, _ = contexts.page()
    open_link(page, created["url"])
    reveal(page)

    assert page.input_value("#secret-text") == "made by curl"


def test_link_preview_does_not_consume(contexts: Contexts, server: str, cli: Cli) -> None:
    link = cli.share(b"preview-proof", "--views", "1")
    keyless = link.split("#")[0]

    for agent in ("Slackbot-LinkExpanding 1.0", "TelegramBot (like TwitterBot)"):
        preview = httpx.get(keyless, headers={"user-agent": agent})
        assert preview.status_code == 200
        assert "Someone sent you a secret" in preview.text
        assert "preview-proof" not in preview.text
    page, _ = contexts.page(java_script_enabled=False)
    page.goto(link)
    assert "needs JavaScript" in (page.text_content("main noscript") or page.content())
    scripted, _ = contexts.page()
    open_link(scripted, link)  # a scanner that runs scripts but clicks nothing
    scripted.wait_for_selector("#reveal-form:not([hidden])")

    result = cli("get", link)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"preview-proof"


def test_receipt_shows_events_and_burns(contexts: Contexts, server: str) -> None:
    sender, _ = contexts.page()
    shared = compose(sender, server, text="to be burned", views=3)

    manage, log = contexts.page()
    open_link(manage, shared.manage)
    manage.wait_for_selector("#receipt:not([hidden])")
    assert manage.text_content("#receipt-state") == "Active"
    assert "0 used, 3 left (of 3)" in (manage.text_content("#receipt-views") or "")
    rows = manage.locator("#events-body tr")
    assert rows.count() == 1
    assert "Created" in rows.first.text_content()  # type: ignore[operator]
    assert "127.0.0.1" in rows.first.text_content()  # type: ignore[operator]
    manage.click("#burn")
    assert manage.is_visible("#burn-dialog")
    manage.click("#burn-cancel")
    assert event_types(server, shared) == ["created"]
    manage.click("#burn")
    manage.click("#burn-confirm")
    manage.wait_for_selector("#receipt-state:text('Burned')")

    assert not manage.is_visible("#burn")
    manage.wait_for_selector("#proof:not([hidden])")  # ended: the signed statement is offered
    assert '"burned"' in (manage.text_content("#proof-statement") or "")
    assert event_types(server, shared) == ["created", "burned"]
    reader, _ = contexts.page()
    open_link(reader, shared.link)
    reader.wait_for_selector("#gone:not([hidden])")
    log.assert_never_sent(shared.key, "to be burned")
    assert all("/api/v1/secrets/" in url for url in log.urls() if "/api/" in url)


def test_receipt_summarizes_opens_and_offers_the_proof(contexts: Contexts, server: str) -> None:
    sender, _ = contexts.page()
    shared = compose(sender, server, text="proof please", views=1)
    reader, reader_log = contexts.page()
    open_link(reader, shared.link)
    reveal(reader)
    assert event_types(server, shared) == ["created", "viewed"]
    assert opened_by(server, shared) == ["bot"]  # headless Chrome

    manage, log = contexts.page(accept_downloads=True)
    open_link(manage, shared.manage)
    manage.wait_for_selector("#receipt:not([hidden])")
    summary = manage.text_content("#receipt-summary") or ""
    assert summary == "Link opened once (1 by HeadlessChrome), viewed once."
    rows = [row.text_content() or "" for row in manage.locator("#events-body tr").all()]
    assert any("Opened by HeadlessChrome (robot)" in row for row in rows)
    assert any("Viewed by HeadlessChrome (robot)" in row for row in rows)
    manage.wait_for_selector("#proof:not([hidden])")
    shown = json.loads(manage.text_content("#proof-statement") or "")
    assert shown == receipt(server, shared)["statement"]
    with manage.expect_download() as download_info:
        manage.click("#proof-download")
    download = download_info.value
    secret_id = shared.manage.split("/m/")[1].split("#")[0]
    assert download.suggested_filename == f"burnlink-{secret_id}-statement.json"
    assert json.loads(Path(download.path()).read_text("utf-8")) == shown
    for page_log in (log, reader_log):
        page_log.assert_never_sent(shared.key, "proof please")
    assert all("/api/v1/secrets/" in url for url in log.urls() if "/api/" in url)


def test_unknown_or_malformed_links_look_gone(contexts: Contexts, server: str) -> None:
    page, _ = contexts.page()
    open_link(page, f"{server}/s/AAAAAAAAAAAAAAAAAAAAAA#{'A' * 43}")
    page.wait_for_selector("#gone:not([hidden])")
    manage, _ = contexts.page()
    open_link(manage, f"{server}/m/AAAAAAAAAAAAAAAAAAAAAA#{'A' * 43}")
    manage.wait_for_selector("#receipt-gone:not([hidden])")
    truncated, _ = contexts.page()
    open_link(truncated, f"{server}/s/AAAAAAAAAAAAAAAAAAAAAA#AAAA")
    truncated.wait_for_selector("#key-form:not([hidden])")

    assert GONE in (page.text_content("#gone") or "")
    assert truncated.is_visible("#key-error")


def test_keyboard_only_compose_and_copy(contexts: Contexts, server: str) -> None:
    context, log = contexts.new()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = context.new_page()
    page.goto(f"{server}/")
    wait_ready(page)

    page.keyboard.press("Tab")  # brand
    page.keyboard.press("Tab")  # nav: share
    page.keyboard.press("Tab")  # nav: request a secret
    page.keyboard.press("Tab")  # nav: how it works
    page.keyboard.press("Tab")  # the language picker
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "secret"
    page.keyboard.type("typed with the keyboard")
    page.focus("#passphrase-generate")
    page.keyboard.press("Enter")
    generated = page.input_value("#passphrase")
    assert re.fullmatch(r"([a-z2-9]{5}-){3}[a-z2-9]{5}", generated)
    assert "very strong" in (page.text_content("#strength") or "")
    page.focus("#create")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "result"
    page.keyboard.press("Tab")  # the link field
    page.keyboard.press("Tab")  # its copy button
    assert page.evaluate("document.activeElement.textContent") == "Copy link"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.textContent === 'Copied'")

    assert page.evaluate("navigator.clipboard.readText()") == page.input_value("#result-link")
    log.assert_never_sent(fragment(page.input_value("#result-link")), generated)


@pytest.mark.parametrize("path", ["/", "/s/AAAAAAAAAAAAAAAAAAAAAA", "/m/AAAAAAAAAAAAAAAAAAAAAA"])
def test_every_control_has_a_label(contexts: Contexts, server: str, path: str) -> None:
    page, _ = contexts.page()
    page.goto(server + path)
    wait_ready(page)

    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((el) => !(el.labels?.length || el.getAttribute("aria-label")
                              || (el.tagName === "BUTTON" && el.textContent.trim())))
            .map((el) => el.id || el.outerHTML)"""
    )

    assert unlabelled == []


def test_a_tampered_module_does_not_run(contexts: Contexts, server: str) -> None:
    page, _ = contexts.page()
    page.route(
        "**/static/js/envelope.js",
        lambda route: route.fulfill(
            status=200,
            content_type="text/javascript",
            body=route.fetch().text() + "\nglobalThis.tampered = true;\n",
        ),
    )
    page.goto(f"{server}/s/AAAAAAAAAAAAAAAAAAAAAA#{'A' * 43}")
    page.wait_for_timeout(500)

    assert page.evaluate("globalThis.tampered") is None
    assert page.evaluate("document.documentElement.dataset.ready") is None


def test_request_log_sees_the_api_calls(contexts: Contexts, server: str) -> None:
    # Guards the leak checks above: the log really holds the requests and their bodies.
    page, log = contexts.page()
    compose(page, server, text="logged")

    posts = [r for r in log.requests if r.method == "POST" and r.url.endswith("/api/v1/secrets")]
    assert len(posts) == 1
    body = json.loads(posts[0].post_data_buffer or b"{}")
    assert set(body) == {"envelope", "access_token", "ttl", "max_views"}
    with pytest.raises(AssertionError):
        RequestLog(posts).assert_never_sent(body["access_token"])


def test_receipt_summary_says_when_opens_went_past_the_receipts_cap(
    contexts: Contexts, tmp_path: Path
) -> None:
    """The receipt lists 200 opens at most; the page says there were more, and still lists the
    view that came after them."""
    database = tmp_path / "burnlink.db"
    settings = load_settings(store=f"sqlite:///{database}", max_bytes=MAX_BYTES)
    with running_server(settings) as server:
        created = httpx.post(f"{server}/api/v1/secrets", json={"secret": "many previews"}).json()
        secret_id = str(created["id"])

        async def open_many_times() -> None:
            # Straight into the server's own database: the service records 20 opens an hour.
            store = await SqliteStore.open(str(database), retention=timedelta(days=1))
            try:
                for _ in range(MAX_EVENTS_PER_KIND + 5):
                    at = datetime.now(UTC)
                    opened = Event(at=at, kind=EventKind.OPENED, user_agent=SLACKBOT)
                    audited = audit_event(AuditEventType.SECRET_OPENED, at=at, secret_id=secret_id)
                    await store.record(
                        secret_id, [Recorded(opened, OutboxRecord(audited).to_bytes())]
                    )
            finally:
                await store.aclose()

        with ThreadPoolExecutor(1) as pool:  # Playwright's loop already runs in this thread
            pool.submit(asyncio.run, open_many_times()).result()
        key = str(created["url"]).split("#")[1]
        revealed = httpx.post(f"{server}/api/v1/secrets/{secret_id}/reveal", json={"key": key})
        assert revealed.status_code == 200

        manage, _ = contexts.page()
        open_link(manage, str(created["manage_url"]))
        manage.wait_for_selector("#receipt:not([hidden])")
        summary = manage.text_content("#receipt-summary") or ""
        rows = [row.text_content() or "" for row in manage.locator("#events-body tr").all()]

    cap = MAX_EVENTS_PER_KIND
    assert summary == f"Link opened {cap}+ times ({cap} by Slackbot), viewed once."
    assert sum("Opened by Slackbot" in row for row in rows) == MAX_EVENTS_PER_KIND
    assert any("Viewed" in row for row in rows)
