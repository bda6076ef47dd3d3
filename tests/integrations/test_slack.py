"""``POST /integrations/slack/command`` on a real server: only requests Slack signed, within
five minutes, once; the answer is private and sends people to the compose page."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.cli.harness import running_server, server_settings

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BASE_URL = "https://secrets.example.com"
PATH = "/integrations/slack/command"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    settings = server_settings(slack_signing_secret=SECRET, base_url=BASE_URL)
    with running_server(settings) as base:
        yield base


def form(text: str = "", **extra: str) -> bytes:
    """A slash command's body, as Slack sends it."""
    fields = {
        "token": "deprecated",
        "team_id": "T0001",
        "channel_id": "C2147483705",
        "user_id": "U2147483697",
        "user_name": "ana",
        "command": "/burnlink",
        "text": text,
        "response_url": "https://hooks.slack.com/commands/1234/5678",
        "trigger_id": f"13345224609.738474920.{time.monotonic_ns()}",
        **extra,
    }
    return urlencode(fields).encode()


def signed(body: bytes, *, at: int | None = None, secret: str = SECRET) -> dict[str, str]:
    """Slack's headers for ``body``: v0 HMAC-SHA256 of ``v0:timestamp:body``."""
    timestamp = str(int(time.time()) if at is None else at)
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def post(server: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server}{PATH}", content=body, headers=headers)


def test_a_signed_command_gets_a_private_answer_with_the_compose_page(server: str) -> None:
    body = form()

    answer = post(server, body, signed(body))

    assert answer.status_code == 200
    reply = answer.json()
    assert reply["response_type"] == "ephemeral"
    assert f"<{BASE_URL}/|the compose page>" in reply["text"]
    assert "Never type a secret into Slack" in reply["text"]
    assert "ignored the text" not in reply["text"]
    assert answer.headers["cache-control"] == "no-store"


def test_text_after_the_command_is_never_repeated_and_the_user_is_warned(server: str) -> None:
    body = form("hunter2-typed-by-mistake")

    answer = post(server, body, signed(body))

    assert answer.status_code == 200
    assert "hunter2" not in answer.text
    assert "change it" in answer.json()["text"]


def test_request_points_to_the_request_page_and_never_repeats_the_text(server: str) -> None:
    body = form("request the staging-db-password-xyz please")
    answer = post(server, body, signed(body))

    assert answer.status_code == 200
    reply = answer.json()
    assert reply["response_type"] == "ephemeral"
    assert f"<{BASE_URL}/request|the request page>" in reply["text"]
    assert "staging-db-password-xyz" not in answer.text
    assert "compose page" not in reply["text"]
    assert "ignored the text" not in reply["text"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(lambda b: signed(b, secret="another-apps-secret"), form(), id="wrong-secret"),
        pytest.param(lambda b: signed(form("other")), form(), id="another-body"),
        # 30 s past the window each way: a second or two of a loaded host between signing here
        # and checking there must not bring the timestamp back inside it.
        pytest.param(lambda b: signed(b, at=int(time.time()) - 330), form(), id="stale"),
        pytest.param(lambda b: signed(b, at=int(time.time()) + 330), form(), id="future"),
        pytest.param(lambda b: {**signed(b), "X-Slack-Signature": ""}, form(), id="unsigned"),
        pytest.param(
            lambda b: {**signed(b), "X-Slack-Request-Timestamp": "1e9"}, form(), id="bad-time"
        ),
        pytest.param(lambda b: {}, form(), id="no-headers"),
    ],
)
def test_requests_slack_did_not_sign_now_are_refused(
    server: str, headers: object, body: bytes
) -> None:
    assert callable(headers)
    answer = post(server, body, headers(body))

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_signature"
    assert "compose" not in answer.text


def test_a_replayed_request_is_refused_even_within_the_window(server: str) -> None:
    body = form()
    headers = signed(body, at=int(time.time()) - 60)

    first = post(server, body, headers)
    again = post(server, body, headers)

    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed_request"


def test_without_the_setting_the_route_does_not_exist() -> None:
    with running_server(server_settings()) as base:
        body = form()
        answer = post(base, body, signed(body))

    assert answer.status_code == 404
