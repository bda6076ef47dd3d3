"""Real webhook receivers on 127.0.0.1, each in a thread: a plain HTTP server that keeps each
request, and a tarpit that holds connections open without answering."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hook:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """The receiver's address and what it got so far."""

    base: str = ""
    hooks: list[Hook] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)
    """Set by the first request."""

    def url(self, path: str = "/hooks/burnlink") -> str:
        return f"{self.base}{path}"

    def on(self, path: str) -> list[Hook]:
        with self.lock:
            return [hook for hook in self.hooks if hook.path == path]


@contextmanager
def webhook_receiver(delay: float = 0.0, *, host: str = "127.0.0.1") -> Iterator[Receiver]:
    """Run a receiver that answers 200 to every POST, after ``delay`` seconds, on ``host``
    (an IPv4 or IPv6 loopback address)."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(delay)
            with state.lock:
                state.hooks.append(Hook(self.path, dict(self.headers.items()), body))
            state.arrived.set()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = Server((host, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.base = f"http://{f'[{host}]' if ':' in host else host}:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Tarpit:
    """A receiver that accepts connections and never answers (or answers a byte a second)."""

    base: str = ""
    accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/tarpit") -> str:
        return f"{self.base}{path}"


@contextmanager
def tarpit(*, trickle: float | None = None) -> Iterator[Tarpit]:
    """Run a tarpit on 127.0.0.1: it reads nothing and holds every connection open until the
    end; with ``trickle`` it starts an answer and adds one byte every ``trickle`` seconds,
    never finishing it, so that no single read waits long enough to time out."""
    state = Tarpit()
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    listener.setblocking(False)
    held: list[socket.socket] = []

    def run() -> None:
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        next_byte = time.monotonic()
        while not stop.is_set():
            for _ in selector.select(timeout=0.05):
                while True:
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, OSError):
                        break
                    held.append(conn)
                    if trickle:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Wait: ")
                    with state.lock:
                        state.accepted += 1
            if trickle and time.monotonic() >= next_byte:
                next_byte += trickle
                for conn in held:
                    with contextlib.suppress(OSError):
                        conn.send(b"a")
        selector.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        yield state
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
