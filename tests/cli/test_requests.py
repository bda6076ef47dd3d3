"""``burnlink request`` and ``burnlink answer`` against a real server: ``request --wait`` in
one process and ``answer`` in another, and a server that swaps the public key (a proxy in
front of the real one), which ``answer`` refuses without sending anything."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from burnlink.cli.output import ExitCode
from burnlink.ids import b64url_encode
from burnlink.request_crypto import KeyPair
from tests.cli.harness import START_TIMEOUT, Cli, argv
from tests.servers import serve_process

SUBPROCESS_TIMEOUT = 30
SECRET = "pässwörd for staging ✓\n".encode() + b"\x00\xff binary tail"


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURNLINK_")}
    return {**env, **extra}


def _read_link(stream: Any, deadline: float) -> str:
    """The request link ``request --wait`` prints on stderr."""
    seen: list[str] = []
    while time.monotonic() < deadline:
        line: str = stream.readline().decode()
        seen.append(line)
        if "/r/" in line:
            return line.strip()
        if not line:
            break
    raise AssertionError(f"no request link on stderr: {''.join(seen)!r}")


def test_request_waits_in_one_process_for_answer_in_another(server: str) -> None:
    env = _environment()
    requester = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        argv("request", "staging database password", "--server", server, "--timeout", "60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        link = _read_link(requester.stderr, time.monotonic() + SUBPROCESS_TIMEOUT)
        answered = subprocess.run(  # noqa: S603
            argv("answer", link),
            input=SECRET,
            capture_output=True,
            env=env,
            timeout=SUBPROCESS_TIMEOUT,
        )
        out, err = requester.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        requester.kill()
        requester.wait()

    assert answered.returncode == 0, answered.stderr
    assert b"/m/" in answered.stderr  # the answerer's receipt link
    assert requester.returncode == 0, err
    assert out == SECRET
    assert link.partition("#")[2].encode() not in err  # printed once, never again
    again = subprocess.run(  # noqa: S603
        argv("answer", link), input=b"second", capture_output=True, env=env, timeout=30
    )
    assert again.returncode == ExitCode.REQUEST_CLOSED, again.stderr
    assert b"already been answered" in again.stderr


def test_request_without_an_answer_gives_up_at_its_timeout(cli: Cli) -> None:
    started = time.monotonic()

    result = cli("request", "nobody answers", "--timeout", "1")

    assert result.exit_code == ExitCode.REQUEST_TIMEOUT, result.stderr
    assert "no answer within 1 seconds" in result.stderr
    assert time.monotonic() - started < 10
    assert result.stdout == ""


def test_request_no_wait_prints_both_links_as_json(cli: Cli, server: str) -> None:
    result = cli("request", "an API key", "--no-wait", "--json", "--views", "2")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["request_url"].startswith(f"{server}/r/{shown['id']}#")
    token, _, private = shown["requester_url"].partition("#")[2].partition(".")
    assert KeyPair.from_text(private).public  # the private key, for the requester's page
    assert len(token) == 43


def test_answer_reads_a_file_and_prints_json(cli: Cli, server: str, tmp_path: Any) -> None:
    keys = KeyPair.generate()
    made = httpx.post(
        f"{server}/api/v1/requests",
        json={"public_key": b64url_encode(keys.public), "description": "a file"},
    ).json()
    link = f"{made['url']}#{b64url_encode(keys.fingerprint)}.{made['link_token']}"
    file = tmp_path / "id_ed25519"
    file.write_bytes(b"-----BEGIN KEY-----\n")

    result = cli("answer", link, "--file", str(file), "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"] == made["id"]


def test_answer_refuses_a_malformed_link(cli: Cli, server: str) -> None:
    result = cli("answer", f"{server}/r/AAAAAAAAAAAAAAAAAAAAAA#nofingerprint", input=b"x")

    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "fingerprint" in result.stderr


# -- a server that swaps the requester's key ---------------------------------------------------


class SwappingProxy:
    """An HTTP proxy in front of the real server that replaces the ``public_key`` of every
    request view with its own key, and records every path it forwards."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.own = KeyPair.generate()
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append((scope["method"], scope["path"]))
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k != b"host"}
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                scope["method"],
                self.upstream + scope["path"],
                params=scope["query_string"].decode(),
                headers=headers,
                content=body,
            )
        content = answer.content
        if scope["method"] == "GET" and scope["path"].startswith("/api/v1/requests/"):
            shown = answer.json()
            if "public_key" in shown:
                shown["public_key"] = b64url_encode(self.own.public)
                content = json.dumps(shown).encode()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": content})


@pytest.fixture
def swapping(server: str) -> Iterator[tuple[SwappingProxy, str]]:
    proxy = SwappingProxy(server)
    config = uvicorn.Config(proxy, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not running.started:
        assert time.monotonic() < deadline, "the proxy did not start"
        time.sleep(0.01)
    port = running.servers[0].sockets[0].getsockname()[1]
    try:
        yield proxy, f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(START_TIMEOUT)


def test_answer_refuses_a_key_the_server_swapped_and_sends_nothing(
    cli: Cli, server: str, swapping: tuple[SwappingProxy, str]
) -> None:
    proxy, base = swapping
    keys = KeyPair.generate()
    made = httpx.post(
        f"{server}/api/v1/requests",
        json={"public_key": b64url_encode(keys.public), "description": "db password"},
    ).json()
    link = f"{base}/r/{made['id']}#{b64url_encode(keys.fingerprint)}.{made['link_token']}"

    result = cli("answer", link, input=SECRET)

    assert result.exit_code == ExitCode.INTEGRITY, result.stderr
    assert "swapped" in result.stderr
    assert proxy.seen == [("GET", f"/api/v1/requests/{made['id']}")]  # no answer went out
    status = httpx.get(
        f"{server}/api/v1/requests/{made['id']}/status",
        headers={"authorization": f"Bearer {made['requester_token']}"},
    )
    assert status.json()["state"] == "open"


def test_a_long_poll_outlives_the_servers_read_deadlines(tmp_path: Any) -> None:
    """``burnlink serve`` holds a waiting status for its ``wait``, past every read deadline
    (they bound reading a request, not answering it)."""
    env = {"BURNLINK_HEADER_TIMEOUT": "1", "BURNLINK_BODY_TIMEOUT": "1"}
    with serve_process(tmp_path / "serve.log", env=env) as (base, _):
        keys = KeyPair.generate()
        made = httpx.post(
            f"{base}/api/v1/requests",
            json={"public_key": b64url_encode(keys.public), "description": "x"},
        ).json()
        started = time.monotonic()
        waited = httpx.get(
            f"{base}/api/v1/requests/{made['id']}/status",
            params={"wait": 3},
            headers={"authorization": f"Bearer {made['requester_token']}"},
            timeout=10,
        )

    assert waited.status_code == 200, waited.text
    assert waited.json()["state"] == "open"
    assert 3 <= time.monotonic() - started < 8
