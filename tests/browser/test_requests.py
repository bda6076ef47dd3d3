"""Requests for a secret in a real Chromium, both ways: the requester's page makes the key
pair and waits, the answering page checks the fingerprint and seals, the requester's page
opens the answer once; the CLI answers a page's request and a page answers the CLI's; and a
server that swaps the public key (a route in the browser standing in for it) is refused by
the answering page before anything is sent."""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING

import httpx

from burnlink.ids import b64url_encode
from burnlink.request_crypto import KeyPair
from tests.browser.conftest import Contexts, axe_violations, wait_ready
from tests.cli.harness import Cli, argv

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

SECRET = "staging-db: p4ss ✓ wörd"


def ask(page: Page, server: str, description: str = "staging database password") -> tuple[str, str]:
    """Create a request on the "Request a secret" page; the request link and the own link."""
    page.goto(f"{server}/request")
    wait_ready(page)
    page.fill("#description", description)
    page.click("#create-request")
    page.wait_for_selector("#request-made:not([hidden])")
    return page.input_value("#request-link"), page.input_value("#own-link")


def answer_in(page: Page, link: str, text: str) -> None:
    page.goto(link)
    wait_ready(page)
    page.wait_for_selector("#answer-form:not([hidden])")
    page.fill("#answer-secret", text)
    page.click("#send-answer")
    page.wait_for_selector("#answer-sent:not([hidden])")


def test_a_page_request_is_answered_in_another_browser_and_opened_once(
    contexts: Contexts, server: str
) -> None:
    requester, requester_log = contexts.page()
    link, own = ask(requester, server)
    requester.goto(own)
    wait_ready(requester)
    requester.wait_for_selector("#own-request:not([hidden])")
    assert requester.text_content("#own-state") == "Waiting for the answer"

    answerer, answerer_log = contexts.page()
    answer_in(answerer, link, SECRET)
    assert "staging database password" in (answerer.text_content("#answer-description") or "")

    requester.wait_for_selector("#open-answer:not([hidden])")  # the long poll woke up
    requester.click("#open-answer")
    requester.wait_for_selector("#own-answer:not([hidden])")
    assert requester.input_value("#own-answer-text") == SECRET
    assert "cannot be opened again" in (requester.text_content("#own-views-left") or "")

    # Neither the private key, the request link's fingerprint nor the secret left a browser.
    private = own.partition("#")[2].partition(".")[2]
    fingerprint = link.partition("#")[2].partition(".")[0]
    for log in (requester_log, answerer_log):
        log.assert_never_sent(private, fingerprint, SECRET)

    again, _ = contexts.page()
    again.goto(own)
    wait_ready(again)
    again.wait_for_selector("#own-gone:not([hidden])")


def test_the_answering_page_refuses_a_key_the_server_swapped(
    contexts: Contexts, server: str
) -> None:
    requester, _ = contexts.page()
    link, own = ask(requester, server)
    swapped = b64url_encode(KeyPair.generate().public)
    answerer, log = contexts.page()
    sent: list[str] = []

    def swap(route: Route) -> None:
        if route.request.method == "POST":
            sent.append(route.request.url)
            route.continue_()
            return
        response = route.fetch()
        shown = response.json()
        shown["public_key"] = swapped
        route.fulfill(response=response, body=json.dumps(shown))

    answerer.route("**/api/v1/requests/*", swap)
    answerer.goto(link)
    wait_ready(answerer)

    answerer.wait_for_selector("#answer-refused:not([hidden])")
    assert answerer.is_hidden("#answer-form")
    assert sent == []
    assert not [m for m, url in log.api_calls() if m == "POST"]
    token, _, _ = own.partition("#")[2].partition(".")
    request_id = own.split("/k/")[1].partition("#")[0]
    state = httpx.get(
        f"{server}/api/v1/requests/{request_id}/status",
        headers={"authorization": f"Bearer {token}"},
    ).json()
    assert state["state"] == "open"


def test_the_cli_answers_a_page_request(contexts: Contexts, server: str, cli: Cli) -> None:
    requester, _ = contexts.page()
    link, own = ask(requester, server, "deploy key")
    requester.goto(own)
    wait_ready(requester)

    result = cli("answer", link, input=SECRET.encode())

    assert result.exit_code == 0, result.stderr
    requester.wait_for_selector("#open-answer:not([hidden])")
    requester.click("#open-answer")
    requester.wait_for_selector("#own-answer:not([hidden])")
    assert requester.input_value("#own-answer-text") == SECRET


def test_a_page_answers_the_cli_request(contexts: Contexts, server: str) -> None:
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        argv("request", "an API key", "--server", server, "--timeout", "60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        link = ""
        deadline = time.monotonic() + 30
        while "/r/" not in link and time.monotonic() < deadline:
            assert process.stderr is not None
            link = process.stderr.readline().decode().strip()
        answerer, _ = contexts.page()
        answer_in(answerer, link, SECRET)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 0, err
    assert out.decode() == SECRET


def test_the_request_pages_have_no_axe_violation(contexts: Contexts, server: str) -> None:
    requester, _ = contexts.page()
    requester.goto(f"{server}/request")
    wait_ready(requester)
    assert axe_violations(requester) == [], "request page"
    link, own = ask(requester, server)
    assert axe_violations(requester) == [], "request made"
    requester.goto(own)
    wait_ready(requester)
    requester.wait_for_selector("#own-request:not([hidden])")
    assert axe_violations(requester) == [], "waiting"
    answerer, _ = contexts.page()
    answerer.goto(link)
    wait_ready(answerer)
    answerer.wait_for_selector("#answer-form:not([hidden])")
    assert axe_violations(answerer) == [], "answer page"
    answer_in(answerer, link, SECRET)
    assert axe_violations(answerer) == [], "answer sent"
    requester.wait_for_selector("#open-answer:not([hidden])")
    requester.click("#open-answer")
    requester.wait_for_selector("#own-answer:not([hidden])")
    assert axe_violations(requester) == [], "answer opened"


def test_the_requesters_page_with_a_wrong_key_opens_nothing(
    contexts: Contexts, server: str, cli: Cli
) -> None:
    requester, _ = contexts.page()
    link, own = ask(requester, server)
    assert cli("answer", link, input=SECRET.encode()).exit_code == 0
    address, _, parts = own.partition("#")
    token = parts.partition(".")[0]
    wrong, log = contexts.page()

    wrong.goto(f"{address}#{token}.{KeyPair.generate().to_text()}")
    wait_ready(wrong)

    wrong.wait_for_selector("#own-gone:not([hidden])")
    assert "not this request's" in (wrong.text_content("#own-gone-text") or "")
    assert not [path for method, path in log.api_calls() if method == "POST"]
    requester.goto(own)  # the right link still opens it: no view was used
    wait_ready(requester)
    requester.wait_for_selector("#open-answer:not([hidden])")
    requester.click("#open-answer")
    requester.wait_for_selector("#own-answer:not([hidden])")
    assert requester.input_value("#own-answer-text") == SECRET
