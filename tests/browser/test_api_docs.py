"""The API docs page (``/docs``) in a real Chromium: Swagger UI renders the app's OpenAPI 3.1
document from the package's own files, under the site's Content Security Policy."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from tests.browser.conftest import Contexts, axe_violations

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page

CREATE = "#operations-secrets-create_secret_api_v1_secrets_post"


def open_docs(contexts: Contexts, server: str) -> tuple[Page, list[str]]:
    """``/docs`` with its operations drawn; the console's errors and warnings."""
    page, log = contexts.page()
    console: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(message.text)

    page.on("console", keep)
    page.goto(f"{server}/docs")
    page.wait_for_selector(".opblock-summary-path")
    origins = {urlsplit(url)[:2] for url in log.urls()}
    assert origins == {urlsplit(server)[:2]}, "the page loaded something from another host"
    return page, console


def test_docs_render_every_operation_of_the_openapi_document(
    contexts: Contexts, server: str
) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    assert spec["openapi"].startswith("3.1.")
    page, console = open_docs(contexts, server)

    assert "Unable to render this definition" not in page.inner_text("body")
    shown = {
        (method.strip().upper(), path.strip().replace("\u200b", ""))
        for method, path in zip(
            page.locator(".opblock-summary-method").all_inner_texts(),
            page.locator(".opblock-summary-path").all_inner_texts(),
            strict=True,
        )
    }
    described = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
    }
    assert shown == described
    page.click(f"{CREATE} .opblock-summary-control")
    # The request body's example, drawn from the document's schema.
    page.wait_for_selector(f"{CREATE} .opblock-body .body-param__example >> text=envelope")
    # Nothing refused by the CSP, no integrity failure, no script error.
    assert console == []


def test_docs_have_no_accessibility_violations(contexts: Contexts, server: str) -> None:
    page, _ = open_docs(contexts, server)
    assert axe_violations(page) == []

    # An operation opened for a try, and a schema unfolded in full.
    page.click(f"{CREATE} .opblock-summary-control")
    page.click(f"{CREATE} .try-out__btn")
    page.wait_for_selector(f"{CREATE} textarea")
    page.locator("section.models .json-schema-2020-12-expand-deep-button").first.click()
    page.wait_for_selector("section.models .json-schema-2020-12-body")
    assert axe_violations(page) == []


def test_docs_try_it_out_calls_the_api(contexts: Contexts, server: str) -> None:
    page, console = open_docs(contexts, server)
    policy = "#operations-secrets-server_policy_api_v1_policy_get"
    page.click(f"{policy} .opblock-summary-control")
    page.click(f"{policy} .try-out__btn")
    page.click(f"{policy} .execute")
    page.wait_for_selector(f"{policy} .live-responses-table .response-col_status >> text=200")

    assert "max_bytes" in page.inner_text(f"{policy} .live-responses-table")
    assert console == []
