"""A real Chromium (Debian's ``chromium`` package) driven by Playwright, against a real server.

Without ``/usr/bin/chromium`` or the ``playwright`` package the browser tests skip with a
message, except on CI (``CI=true``), where they fail: ``bash scripts/test`` installs both.
Playwright's own browser download is never used.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller

from burnlink.config import load_settings
from tests.cli.harness import MAX_BYTES, Cli, running_server
from tests.servers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request

CHROMIUM = os.environ.get("BURNLINK_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 15_000


def require_browser() -> None:
    """Skip (or, on CI, fail) the calling test without Chromium and Playwright."""
    missing = []
    if shutil.which(CHROMIUM) is None:
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[test]')")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module.

    Not per session: Playwright's sync API runs an event loop in this thread while it lives,
    which would clash with the anyio tests of other modules.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """A real server (uvicorn in a thread, memory store) with a small ``max_bytes``."""
    settings = load_settings(store="memory://", max_bytes=MAX_BYTES, sweep_interval=3600)
    with running_server(settings) as base:
        yield base


class Outbox:
    """An aiosmtpd handler that keeps every message it receives (the recipients' inboxes)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        """The messages sent to ``address``, oldest first."""
        return [message for recipients, message in self.messages if address in recipients]

    def last_code(self, address: str) -> str:
        """The 6-digit code of the newest message to ``address``."""
        body = self.to(address)[-1].get_payload(decode=True)
        assert isinstance(body, bytes)
        codes = re.findall(r"\b(\d{6})\b", body.decode())
        assert len(codes) == 1, body
        return str(codes[0])


@dataclass(frozen=True)
class MailServer:
    """A burnlink server that mails verification codes, and the inbox they reach."""

    base: str
    outbox: Outbox


@pytest.fixture(scope="session")
def mail_server() -> Iterator[MailServer]:
    """A real server with SMTP set to a local aiosmtpd server that keeps what it receives.

    The code-mail and failure rate limits are off: every page here comes from 127.0.0.1, and
    the tests make more wrong attempts and mails than one client normally may.
    """
    outbox = Outbox()
    controller = Controller(outbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = load_settings(
            store="memory://",
            max_bytes=MAX_BYTES,
            sweep_interval=3600,
            smtp_url=f"smtp://127.0.0.1:{controller.port}",
            smtp_from="burnlink@example.org",
            rate_limit_verify="off",
            rate_limit_failures="off",
            rate_limit_secret_failures="off",
        )
        with running_server(settings) as base:
            yield MailServer(base, outbox)
    finally:
        controller.stop()


@pytest.fixture
def cli(server: str) -> Cli:
    """Runs ``burnlink`` against ``server``."""
    return Cli(server)


@dataclass
class RequestLog:
    """Every request the pages of a browser context made, with headers and bodies."""

    requests: list[Request] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.requests.append(request)

    def urls(self) -> list[str]:
        return [request.url for request in self.requests]

    def api_calls(self) -> list[tuple[str, str]]:
        """``(method, path)`` of each API request, in order."""
        return [
            (r.method, r.url.split("/api/v1/", 1)[1]) for r in self.requests if "/api/v1/" in r.url
        ]

    def assert_never_sent(self, *secrets: str | bytes) -> None:
        """No URL, header or body carried any of ``secrets`` (as text, base64 or base64url)."""
        needles: set[bytes] = set()
        for secret in secrets:
            raw = secret.encode() if isinstance(secret, str) else secret
            needles |= {
                raw,
                base64.b64encode(raw).rstrip(b"="),
                base64.urlsafe_b64encode(raw).rstrip(b"="),
            }
        needles = {n for n in needles if len(n) >= 6}
        assert self.requests, "the pages made no request"
        for request in self.requests:
            parts = [request.url.encode(), (request.post_data_buffer or b"")]
            parts += [f"{k}: {v}".encode() for k, v in request.all_headers().items()]
            for part in parts:
                for needle in needles:
                    assert needle not in part, f"{request.method} {request.url} carried a secret"


@dataclass
class Contexts:
    """Makes browser contexts (separate profiles) that log their requests; closes them."""

    browser: Browser
    opened: list[tuple[BrowserContext, RequestLog]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def new(self, **options: object) -> tuple[BrowserContext, RequestLog]:
        context = self.browser.new_context(**options)  # type: ignore[arg-type]  # options pass through
        context.set_default_timeout(TIMEOUT_MS)
        log = RequestLog()
        context.on("request", log.record)
        self.opened.append((context, log))
        return context, log

    def page(self, **options: object) -> tuple[Page, RequestLog]:
        """A page in a new context, with console errors turned into test failures."""
        context, log = self.new(**options)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page, log

    def close(self) -> None:
        for context, _ in self.opened:
            context.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Contexts]:
    """Browser contexts for one test; an uncaught error in any of their pages fails it."""
    made = Contexts(browser)
    try:
        yield made
    finally:
        made.close()
    assert made.errors == [], "uncaught errors in the pages"


def wait_ready(page: Page) -> None:
    """Wait until the page's script has loaded its messages and wired its controls."""
    page.wait_for_selector("html[data-ready=true]", state="attached")


def axe_violations(page: Page) -> list[str]:
    """Run axe-core (all rules of the pinned ``axe-playwright-python`` copy) on the page as it
    is now; one line per violation and element, empty when there is none.

    The script is evaluated through the DevTools protocol, which the page's CSP does not
    govern, so the page is audited as served.
    """
    from axe_playwright_python.base import AXE_SCRIPT

    page.evaluate(AXE_SCRIPT)
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']} {node['html'][:120]}"
        for violation in results["violations"]
        for node in violation["nodes"]
    ]
