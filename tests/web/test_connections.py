"""Slow, idle and oversized clients against a real ``burnlink serve`` process, over real
loopback sockets (web/connections.py).

The servers run with short deadlines and with the soft open-file limit many hosts start with
(1024), so that 2,000 stalled sockets would exhaust it unless the server raises it.
"""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from burnlink.config import load_settings
from burnlink.errors import ConfigError
from burnlink.web.connections import FD_RESERVE, connection_cap
from tests.servers import serve_process

STALLED = 2000
DEADLINE = 3.0
"""The servers' header, body and send timeouts, in seconds."""

HEAD = b"GET /healthz HTTP/1.1\r\nHost: burnlink.test\r\n"
CREATE = (
    b"POST /api/v1/secrets HTTP/1.1\r\nHost: burnlink.test\r\n"
    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
)

Server = tuple[str, subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def many_sockets() -> Iterator[None]:
    """Let this test process hold ``STALLED`` client sockets at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = STALLED + 512
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs a hard open-file limit of {needed} or more (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def server(many_sockets: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "BURNLINK_HEADER_TIMEOUT": str(DEADLINE),
        "BURNLINK_BODY_TIMEOUT": str(DEADLINE),
        "BURNLINK_SEND_TIMEOUT": str(DEADLINE),
        "BURNLINK_RATE_LIMIT_CREATE": "off",
    }
    log = tmp_path_factory.mktemp("slow") / "server.log"
    with serve_process(log, env=env, open_files=1024) as running:
        yield running


def address(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def open_stalled(base: str, count: int, data: bytes) -> list[socket.socket]:
    """``count`` connections that each send ``data`` (part of a request) and then nothing."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(address(base), timeout=5)
            sockets.append(sock)
            sock.sendall(data)
    except BaseException:
        close_all(sockets)
        raise
    return sockets


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def closed_by_server(
    sockets: list[socket.socket], within: float, *, enough: int | None = None
) -> dict[socket.socket, bytes]:
    """The sockets the server closed within ``within`` seconds (or by the time ``enough`` of
    them are), with what each received."""
    received = dict.fromkeys(sockets, b"")
    closed: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + within
        wanted = len(sockets) if enough is None else enough
        while len(closed) < wanted and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=left):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    chunk = ready.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[ready] += chunk
                else:
                    selector.unregister(ready)
                    closed[ready] = received[ready]
    return closed


def exchange(base: str, request: bytes) -> bytes:
    """Send ``request`` on a new connection; what came back until the server closed it.

    Each read waits up to a minute: an answer may wait for key derivations on a busy host."""
    with socket.create_connection(address(base), timeout=60) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer on a kept-alive connection (its head and ``Content-Length`` bytes),
    however the server split it into writes."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, "the server closed before answering"
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed inside an answer"
        body += chunk
    assert len(body) == length, "more than one answer arrived"
    return head + b"\r\n\r\n" + body


TCP_ESTABLISHED = 1


def tcp_state(sock: socket.socket) -> int:
    """The kernel's state of this TCP connection (``TCP_ESTABLISHED`` while it is open)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


def healthz_answers(base: str) -> None:
    response = httpx.get(f"{base}/healthz", timeout=2)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param(HEAD + b"User-Agent: slow", id="heads"),
        pytest.param(CREATE + b'{"secret": "par', id="bodies"),
    ],
)
def test_serve_answers_healthz_while_2000_clients_stall(server: Server, partial: bytes) -> None:
    """2,000 sockets stalled in their heads or bodies: /healthz keeps answering, and each
    stalled socket gets 408 and is closed at the deadline."""
    base, _ = server
    stalled = open_stalled(base, STALLED, partial)
    try:
        for _ in range(3):
            healthz_answers(base)
        closed = closed_by_server(stalled, within=DEADLINE + 15)
        assert len(closed) == STALLED
        assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in closed.values())
    finally:
        close_all(stalled)
    healthz_answers(base)


def test_serve_closes_a_connection_that_never_sends_a_byte(server: Server) -> None:
    base, _ = server
    with socket.create_connection(address(base), timeout=DEADLINE + 15) as sock:
        assert sock.recv(1024) == b""


def test_serve_drops_a_client_that_stops_reading_its_answers(server: Server) -> None:
    base, _ = server
    if not hasattr(socket, "TCP_INFO"):
        pytest.skip("needs TCP_INFO (Linux)")
    request = b"GET /openapi.json HTTP/1.1\r\nHost: burnlink.test\r\n\r\n"
    with socket.socket() as sock:
        # A small window, and 300 answers of 33 KB: more than every buffer on the way holds.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(address(base))
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            for _ in range(300):
                sock.sendall(request)
        deadline = time.monotonic() + DEADLINE + 15
        while tcp_state(sock) == TCP_ESTABLISHED and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tcp_state(sock) != TCP_ESTABLISHED
    healthz_answers(base)


def test_serve_raises_its_open_file_limit_to_the_hard_limit(server: Server) -> None:
    _, process = server
    limits = Path(f"/proc/{process.pid}/limits")
    if not limits.exists():
        pytest.skip("needs /proc")
    line = next(row for row in limits.read_text().splitlines() if row.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard


def test_serve_waits_for_a_client_that_is_slow_within_the_deadlines(server: Server) -> None:
    base, _ = server
    body = json.dumps({"secret": "slow but fine"}).encode()
    head = CREATE.replace(b"1000", str(len(body)).encode())
    with socket.create_connection(address(base), timeout=10) as sock:
        sock.sendall(head[:30])
        time.sleep(DEADLINE / 3)
        sock.sendall(head[30:])
        for start in range(0, len(body), 10):
            time.sleep(DEADLINE / 3)
            sock.sendall(body[start : start + 10])
        assert sock.recv(65536).startswith(b"HTTP/1.1 201 ")


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(HEAD + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n", id="one-large-field"),
        pytest.param(HEAD + b"X-Big: " + b"a" * 70_000, id="large-field-never-ending"),
        pytest.param(b"GET /healthz?" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", id="long-target"),
        pytest.param(
            HEAD + b"".join(b"X-%d: 1\r\n" % n for n in range(150)) + b"\r\n", id="many-fields"
        ),
    ],
)
def test_serve_answers_431_to_a_request_head_over_the_limits(
    server: Server, request_bytes: bytes
) -> None:
    base, _ = server
    answer = exchange(base, request_bytes)
    assert answer.startswith(b"HTTP/1.1 431 ")
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == "header_too_large"
    assert body["error"]["limit"] == 64 * 1024
    healthz_answers(base)


def test_serve_takes_a_request_head_within_the_limits(server: Server) -> None:
    base, _ = server
    fields = {f"x-{n}": "1" for n in range(90)} | {"x-big": "a" * 60_000}
    response = httpx.get(f"{base}/healthz", headers=fields, timeout=5)
    assert response.status_code == 200


def test_serve_sheds_the_longest_waiting_connections_at_the_cap(
    many_sockets: None, tmp_path: Path
) -> None:
    env = {
        "BURNLINK_MAX_CONNECTIONS": "50",
        "BURNLINK_HEADER_TIMEOUT": "600",
        "BURNLINK_BODY_TIMEOUT": "600",
    }
    with serve_process(tmp_path / "server.log", env=env) as (base, _):
        stalled = open_stalled(base, 100, HEAD)
        try:
            for _ in range(3):
                healthz_answers(base)
            closed = closed_by_server(stalled, within=10, enough=50)
        finally:
            close_all(stalled)
        counted = limits_counted(base)
    assert counted["shed"] >= 50
    assert set(stalled[:50]) <= set(closed)
    assert stalled[-1] not in closed


def test_serve_keeps_answering_when_the_hard_open_file_limit_is_low(
    many_sockets: None, tmp_path: Path
) -> None:
    """With only 1024 descriptors the cap drops to 768 and stalled sockets are shed."""
    log = tmp_path / "server.log"
    env = {"BURNLINK_HEADER_TIMEOUT": "600", "BURNLINK_BODY_TIMEOUT": "600"}
    with serve_process(log, env=env, open_files=1024, hard_open_files=1024) as (base, _):
        stalled = open_stalled(base, STALLED, HEAD)
        try:
            for _ in range(3):
                healthz_answers(base)
        finally:
            close_all(stalled)
    assert f"allows {1024 - FD_RESERVE} connections per worker" in log.read_text()


def test_serve_refuses_a_newcomer_when_every_connection_is_being_answered(
    many_sockets: None, tmp_path: Path
) -> None:
    # Curl-mode creates derive a key (PBKDF2) one at a time: they keep the server busy.
    env = {
        "BURNLINK_MAX_CONNECTIONS": "3",
        "BURNLINK_KDF_CONCURRENCY": "1",
        "BURNLINK_PBKDF2_ITERATIONS": "10000000",  # about 2 s a create here
    }
    body = json.dumps({"secret": "s", "passphrase": "correct horse battery"}).encode()
    head = CREATE.replace(b"1000", str(len(body)).encode())
    create = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") + body
    with serve_process(tmp_path / "server.log", env=env) as (base, _):
        busy = open_stalled(base, 3, create)
        try:
            # Let the server read the three requests before the fourth comes: a request not
            # yet read is one the cap may shed, so give a loaded machine time to read them.
            time.sleep(1.0)
            answer = exchange(base, HEAD + b"\r\n")
            for sock in busy:
                sock.settimeout(60)  # three key derivations one after another
            answered = [b"".join(iter(partial(sock.recv, 65536), b"")) for sock in busy]
        finally:
            close_all(busy)
        counted = limits_counted(base)
    assert counted["too_many_connections"] == 1
    refused = [line for line in access_lines(tmp_path / "server.log") if line["status"] == 503]
    assert [(line["limit"], line["client_ip"]) for line in refused] == [
        ("too_many_connections", "127.0.0.1")
    ]
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "too_many_connections"
    assert all(reply.startswith(b"HTTP/1.1 201 ") for reply in answered)


def test_serve_answers_a_slow_request_before_timing_out_the_head_pipelined_after_it(
    tmp_path: Path,
) -> None:
    # The create derives a key for longer than the head deadline, and the next head stalls.
    env = {"BURNLINK_HEADER_TIMEOUT": "1", "BURNLINK_PBKDF2_ITERATIONS": "4000000"}
    body = json.dumps({"secret": "s", "passphrase": "correct horse battery"}).encode()
    create = CREATE.replace(b"1000", str(len(body)).encode()) + body
    with serve_process(tmp_path / "server.log", env=env) as (base, _):
        answer = exchange(base, create + HEAD)
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert b"HTTP/1.1 408 " in answer


def access_lines(log: Path) -> list[dict[str, object]]:
    """The request log's lines in a server's log file."""
    lines = []
    for text in log.read_text().splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line.get("logger") == "burnlink.access":
                lines.append(line)
    return lines


def limits_counted(base: str) -> dict[str, float]:
    """``burnlink_connection_limits_total`` by reason, scraped from loopback."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "burnlink_connection_limits_total"
    }


def test_serve_logs_and_counts_what_its_connection_limits_answer(
    many_sockets: None, tmp_path: Path
) -> None:
    """A 408 for a head or a body and a 431 each get their line in the request log, with the
    status the client got and the limit, and are counted in /metrics; the body's line is the
    request's one line, with its method and path, and says 408, not what the application
    made of the disconnect."""
    log = tmp_path / "server.log"
    env = {
        "BURNLINK_HEADER_TIMEOUT": str(DEADLINE),
        "BURNLINK_BODY_TIMEOUT": str(DEADLINE),
        "BURNLINK_RATE_LIMIT_CREATE": "off",
    }
    with serve_process(log, env=env) as (base, _):
        before = limits_counted(base)
        stalled = [
            *open_stalled(base, 1, HEAD + b"User-Agent: slow"),
            *open_stalled(base, 1, CREATE + b'{"secret": "par'),
        ]
        try:
            too_large = exchange(base, HEAD + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n")
            closed = closed_by_server(stalled, within=DEADLINE + 15)
        finally:
            close_all(stalled)
        # The body's line comes once the application has finished with the disconnect.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(line["path"] == "/api/v1/secrets" for line in access_lines(log)):
                break
            time.sleep(0.1)
        after = limits_counted(base)
        lines = access_lines(log)

    assert too_large.startswith(b"HTTP/1.1 431 ")
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in closed.values())
    refused = [line for line in lines if line["path"] not in ("/metrics", "/healthz")]
    summary = sorted(
        (line["status"], line.get("limit"), line["method"], line["path"]) for line in refused
    )
    assert summary == [
        (408, "body_timeout", "POST", "/api/v1/secrets"),
        (408, "header_timeout", None, None),
        (431, "header_too_large", None, None),
    ]
    assert all(line["client_ip"] == "127.0.0.1" for line in refused)
    counted = {reason: after[reason] - before.get(reason, 0.0) for reason in after}
    assert counted == {
        "header_timeout": 1,
        "body_timeout": 1,
        "header_too_large": 1,
        "too_many_connections": 0,
        "shed": 0,
        "send_timeout": 0,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("header_timeout", "0", id="header-timeout-zero"),
        pytest.param("body_timeout", "-1", id="body-timeout-negative"),
        pytest.param("max_header_bytes", "100", id="header-bytes-too-few"),
        pytest.param("max_headers", "5000", id="too-many-headers-allowed"),
        pytest.param("max_connections", "0", id="no-connections"),
    ],
)
def test_settings_refuse_connection_limits_out_of_range(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"BURNLINK_{name.upper()}"):
        load_settings(**{name: value})


def test_connection_cap_leaves_room_for_the_workers_own_files() -> None:
    assert connection_cap(4096, 1024) == 1024 - FD_RESERVE
    assert connection_cap(4096, 1_000_000) == 4096
    assert connection_cap(4096, 100) == 1


@pytest.mark.parametrize(
    ("header_timeout", "body_timeout", "stall"),
    [
        # A body stalls: the body's deadline, shorter than the head's, is the one that counts.
        pytest.param(6.0, 1.0, "body", id="short-body-deadline"),
        # A kept-alive connection's next head stalls after a request whose body armed the
        # longer deadline: the head's shorter one still counts.
        pytest.param(1.0, 6.0, "next-head", id="short-head-deadline-after-a-body"),
    ],
)
def test_serve_times_out_at_the_deadline_in_force_whichever_is_shorter(
    tmp_path: Path, header_timeout: float, body_timeout: float, stall: str
) -> None:
    """Each read deadline passes when it is due, not when one armed earlier for a longer
    timeout would have (the connection's one timer wakes at the shortest timeout's pace)."""
    env = {
        "BURNLINK_HEADER_TIMEOUT": str(header_timeout),
        "BURNLINK_BODY_TIMEOUT": str(body_timeout),
        "BURNLINK_RATE_LIMIT_CREATE": "off",
    }
    body = json.dumps({"secret": "on time"}).encode()
    full = CREATE.replace(b"1000", str(len(body)).encode()) + body
    with (
        serve_process(tmp_path / "server.log", env=env) as (base, _),
        socket.create_connection(address(base), timeout=30) as sock,
    ):
        if stall == "body":
            sock.sendall(CREATE + b'{"secret": "par')
        else:
            sock.sendall(full)
            assert read_answer(sock).startswith(b"HTTP/1.1 201 ")
            sock.sendall(HEAD)  # and never the blank line that ends it
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.8 <= waited < 3.5, waited  # the short deadline is 1 s; the long one 6 s
