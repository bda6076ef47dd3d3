"""``Client.request`` and ``Client.answer`` against one real server: a request answered by
another client and opened once, a server that swaps the requester's key (refused, nothing
sent), a wait that runs out, and the same steps on ``AsyncClient``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from burnlink import AsyncClient, Client
from burnlink.sdk import (
    InvalidInput,
    KeyMismatch,
    RequestAnswered,
    Requested,
    RequestTimedOut,
)
from tests.cli.harness import running_server, server_settings
from tests.cli.test_requests import SwappingProxy, swapping  # noqa: F401 - the fixture

SECRET = "pässwörd for staging ✓\n".encode() + b"\x00\xff binary tail"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(server_settings()) as base:
        yield base


def test_a_request_waits_for_the_answer_another_client_sends_and_opens_it_once(
    server: str,
) -> None:
    answers: list[object] = []

    def answer_it(made: Requested) -> None:
        def run() -> None:
            with Client() as answerer:  # another client, knowing only the link
                answers.append(answerer.answer(made.url, SECRET, mime="application/x-test"))

        threading.Thread(target=run, daemon=True).start()

    with Client(server) as client:
        made = client.request("staging database password", wait=True, timeout=30, on_link=answer_it)

    assert made.url.startswith(f"{server}/r/{made.id}#")
    assert made.requester_url.startswith(f"{server}/k/{made.id}#")
    assert made.answer is not None
    assert made.answer.content == SECRET
    assert (made.answer.is_file, made.answer.mime) == (True, "application/x-test")
    assert made.answer.views_left == 0
    assert len(answers) == 1
    # The answer was viewed once: the requester's token opens nothing more.
    token = made.requester_url.partition("#")[2].partition(".")[0]
    again = httpx.post(
        f"{server}/api/v1/requests/{made.id}/open", headers={"authorization": f"Bearer {token}"}
    )
    assert again.status_code in (404, 410), again.text
    # A request takes one answer.
    with Client() as other, pytest.raises(RequestAnswered):
        other.answer(made.url, "second")


def test_an_unwaited_request_gives_links_and_a_file_answer_keeps_its_name(
    server: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(b"-----BEGIN KEY-----\n")
    with Client(server) as client:
        made = client.request("a deploy key", answer_views=2)
        assert made.answer is None
        done = client.answer(made.url, key_file)

    assert done.max_views == 2
    assert done.manage_url.startswith(f"{server}/m/{done.id}#")


def test_answer_refuses_a_key_the_server_swapped_and_sends_nothing(
    server: str,
    swapping: tuple[SwappingProxy, str],  # noqa: F811 - the imported fixture
) -> None:
    proxy, base = swapping
    with Client(server) as client:
        made = client.request("db password")
    link = made.url.replace(server, base, 1)

    with Client() as answerer, pytest.raises(KeyMismatch, match="swapped"):
        answerer.answer(link, SECRET)

    assert proxy.seen == [("GET", f"/api/v1/requests/{made.id}")]  # no answer went out
    token = made.requester_url.partition("#")[2].partition(".")[0]
    status = httpx.get(
        f"{server}/api/v1/requests/{made.id}/status",
        headers={"authorization": f"Bearer {token}"},
    )
    assert status.json()["state"] == "open"


def test_a_wait_without_an_answer_raises_request_timed_out_in_time(server: str) -> None:
    started = time.monotonic()
    with Client(server) as client, pytest.raises(RequestTimedOut, match="no answer within 1"):
        client.request("nobody answers", wait=1)

    assert time.monotonic() - started < 8


def test_bad_arguments_are_refused_before_anything_is_sent(server: str) -> None:
    with Client(server) as client:
        with pytest.raises(InvalidInput, match="description"):
            client.request("  ")
        with pytest.raises(InvalidInput, match="timeout"):
            client.request("x", wait=5, timeout=5)
        with pytest.raises(InvalidInput, match="link"):
            client.answer(f"{server}/r/AAAAAAAAAAAAAAAAAAAAAA#nofingerprint", "x")
    with Client() as client, pytest.raises(InvalidInput, match="server"):
        client.request("no server")


@pytest.mark.anyio
async def test_async_client_requests_and_answers(server: str) -> None:
    async with AsyncClient(server) as client:
        made = await client.request("async", answer_views=1)
        done = await client.answer(made.url, "async secret")
        assert done.max_views == 1
        with pytest.raises(RequestTimedOut):
            await client.request("async nobody", wait=1)
    token = made.requester_url.partition("#")[2].partition(".")[0]
    async with httpx.AsyncClient() as http:
        status = await http.get(
            f"{server}/api/v1/requests/{made.id}/status",
            headers={"authorization": f"Bearer {token}"},
        )
    assert status.json()["state"] == "answered"
