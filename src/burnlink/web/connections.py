"""What the HTTP server allows one connection, and how many it holds: read deadlines, a cap on
the request head, and a cap on connections per worker process (docs/operations.md).

uvicorn has a keep-alive timeout but no deadline for reading a request, and httptools takes a
header of any size, so a client that sends half a request and then nothing holds a socket, a
file descriptor and (for a half-sent body) an application task for as long as it likes.
``LimitedHttpProtocol`` is uvicorn's httptools protocol with four limits added:

- the request head (request line and header fields) must arrive within ``header_timeout``
  seconds of the connection opening, or of its first byte on a kept-alive connection;
- while a body is expected, no more than ``body_timeout`` seconds may pass between two reads
  (time the server itself is not reading, because the application has not asked for more, does
  not count);
- a client that leaves the answer unread, so that the server cannot write, is cut off
  after ``send_timeout`` seconds;
- the head may hold at most ``max_header_bytes`` bytes and ``max_headers`` fields;
- a worker holds at most ``max_connections`` connections. One more sheds the connection that
  has waited longest for its client (for a request head, an idle keep-alive, a body, or to
  read its answer), never one whose request the application is answering; when none waits,
  the newcomer is refused.

A timeout answers ``408`` when part of a request had arrived (a silent connection is just
closed, as a browser's preconnect expects), a head too large answers ``431``, a refused
connection ``503``; each answer closes the connection and has the API's error shape. Each
answer gets its line in the request log (``web.request_log``) with the status the client got
and the limit in ``limit``, and every answer or close by a limit is counted in
``burnlink_connection_limits_total{reason}`` (``metrics.ConnectionLimit``). A body that stops
arriving is the application's request: its one line, written by ``middleware.Edge``, says 408
(``request_log.CONNECTION_STATUS``), not what the application made of the disconnect.

``raise_open_file_limit`` lifts the soft limit on open files to the hard limit (it is often
1024, fewer than the connections a worker may hold), and ``connection_cap`` keeps the cap
below what the limit allows, so that ``accept`` never fails for want of a descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import sys
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from burnlink.metrics import APP_STATE_KEY, ConnectionLimit, Metrics
from burnlink.web import request_log

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from burnlink.config import Settings

__all__ = [
    "FD_RESERVE",
    "ConnectionLimits",
    "LimitedHttpProtocol",
    "connection_cap",
    "raise_open_file_limit",
]

log = logging.getLogger("burnlink.connections")

FD_RESERVE: Final = 256
"""File descriptors a worker keeps for itself (store and audit pools, SMTP and webhook
connections, log files, the event loop) rather than for client connections."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits ``LimitedHttpProtocol`` enforces; see the module docstring."""

    header_timeout: float
    body_timeout: float
    send_timeout: float
    max_header_bytes: int
    max_headers: int
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings, *, max_connections: int | None = None) -> Self:
        """The limits ``settings`` ask for; ``max_connections`` overrides the setting (with
        ``connection_cap``'s answer)."""
        return cls(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            send_timeout=settings.send_timeout,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            max_connections=max_connections or settings.max_connections,
        )


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (inherited by worker
    processes); return the soft limit in force afterwards."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit cannot be the soft one everywhere (macOS caps it at OPEN_MAX).
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else sys.maxsize
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_cap(wanted: int, open_files: int) -> int:
    """The connections a worker may hold: ``wanted``, or fewer when the open-file limit leaves
    less than that beside ``FD_RESERVE`` (at least 1)."""
    return max(1, min(wanted, open_files - FD_RESERVE))


class _Waiting:
    """A worker's connections that wait for their client, oldest first: those the cap sheds."""

    def __init__(self) -> None:
        # Dicts keep insertion order: the first key is the one that has waited longest.
        self.heads: dict[LimitedHttpProtocol, None] = {}
        self.bodies: dict[LimitedHttpProtocol, None] = {}
        self.readers: dict[LimitedHttpProtocol, None] = {}  # the server waits to write
        self.closing: dict[LimitedHttpProtocol, None] = {}  # answered, lingering

    def discard(self, protocol: LimitedHttpProtocol) -> None:
        self.closing.pop(protocol, None)
        self.heads.pop(protocol, None)
        self.bodies.pop(protocol, None)
        self.readers.pop(protocol, None)

    def oldest(self) -> LimitedHttpProtocol | None:
        for waiting in (self.closing, self.heads, self.bodies, self.readers):
            for protocol in waiting:
                return protocol
        return None


LINGER: Final = 2.0
"""Seconds an answered connection that is being closed waits for its client to close first."""

# One list per uvicorn server (one per worker process; tests may run several in one process).
_WAITING: weakref.WeakKeyDictionary[ServerState, _Waiting] = weakref.WeakKeyDictionary()


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing a head past the limits."""


def _error_response(status: int, reason: str, code: str, message: str, **extra: object) -> bytes:
    # The API's error shape (web/errors.py), written before any route sees the request.
    body = json.dumps({"error": {"code": code, "message": message, **extra}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "cache-control: no-store\r\n"
        "x-content-type-options: nosniff\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_TIMEOUT: Final = _error_response(
    408, "Request Timeout", "request_timeout", "The request did not arrive in time."
)
_REFUSED: Final = _error_response(
    503, "Service Unavailable", "too_many_connections", "The server holds too many connections."
)


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines, a head size cap and a connection cap.

    uvicorn builds one per connection; give it the limits with ``functools.partial``.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.waiting = _WAITING.setdefault(server_state, _Waiting())
        self.due: float | None = None  # loop time the read deadline passes, while armed
        self.deadline_timer: asyncio.TimerHandle | None = None
        # The timer wakes at least this often while a deadline is armed: never later than a
        # deadline armed afterwards could pass (see ``arm``).
        self.tick = min(limits.header_timeout, limits.body_timeout)
        self.send_deadline: asyncio.TimerHandle | None = None
        self.done = False  # answered or refused by us: read nothing more
        self.refused = False  # refused at the cap: uvicorn never took it
        self.reading_head = True
        self.head_begun = False
        self.head_chunks = 0  # bytes received while this head is incomplete (an upper bound)
        self.head_started = 0.0  # loop time the head's clock started

    # Connection

    def connection_made(  # type: ignore[override]  # uvicorn's own signature
        self, transport: asyncio.Transport
    ) -> None:
        """Take the connection, shedding the longest-waiting one at the cap."""
        self.head_started = self.loop.time()
        if len(self.connections) >= self.limits.max_connections:
            victim = self.waiting.oldest()
            if victim is None:
                log.debug("connection refused: every connection is busy")
                self.transport = transport
                self.refused = True
                self.answer_and_close(_REFUSED)
                peer = transport.get_extra_info("peername")
                self.limited(ConnectionLimit.TOO_MANY_CONNECTIONS, 503, peer=peer)
                return
            log.debug("connection shed: the cap is reached")
            victim.abort()
            victim.limited(ConnectionLimit.SHED)
        super().connection_made(transport)
        self.waiting.heads[self] = None
        self.arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and its deadlines."""
        self.forget()
        if self.refused:
            return
        super().connection_lost(exc)

    def close(self) -> None:
        """Close now, without an answer."""
        self.done = True
        self.forget()
        if not self.transport.is_closing():
            self.transport.close()

    def answer_and_close(self, answer: bytes) -> None:
        """Send ``answer``, then close without losing it.

        Closing a socket that still has unread request bytes makes the kernel reset the
        connection, and a reset can destroy the answer before the client reads it. So send,
        end our side (FIN), ignore what still arrives, and close when the client does, or
        after ``LINGER`` seconds.
        """
        self.done = True
        self.forget()
        self.waiting.closing[self] = None
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.send_deadline = self.loop.call_later(LINGER, self.abort)

    def abort(self) -> None:
        """Close now and reset the connection, dropping what it could not send: a client
        that does not read would otherwise keep the unsent bytes in the kernel's buffers."""
        self.done = True
        self.forget()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    # Reading

    def data_received(self, data: bytes) -> None:
        """Feed the parser, as uvicorn does, and hold the head to its byte limit."""
        if self.done:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self.head_too_large()
                return
            self.bad_request()
            return
        except httptools.HttpParserError:
            self.bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.forget()
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self.reading_head and self.head_begun:
            # httptools buffers a field until it is complete and never limits it, so the bytes
            # received since the head began are what bounds its buffer. When a pipelined head
            # begins inside a chunk, the whole chunk is counted: fail closed.
            self.head_chunks += len(data)
            if self.head_chunks > self.limits.max_header_bytes:
                self.head_too_large()

    def on_message_begin(self) -> None:
        """A request begins: its head is now on the clock."""
        super().on_message_begin()
        self.reading_head = True
        self.head_begun = True
        self.head_chunks = 0
        if self.cycle is None or self.cycle.response_complete:
            self.waiting.heads.setdefault(self, None)
        if self.due is None:
            self.head_started = self.loop.time()
            self.arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        """The head is in: hold it to the limits, stop its clock, and start the body's if one
        follows.

        The fields are counted here, once, not as each arrives (a call more per field on
        every request): until the head is whole, ``data_received`` bounds what the parser
        holds by the bytes received, so a head past the limits is refused before any
        application sees it either way."""
        limits = self.limits
        headers = self.headers
        if len(headers) > limits.max_headers or (
            len(self.url) + sum(len(name) + len(value) + 4 for name, value in headers)
            > limits.max_header_bytes  # each field's ": " and CRLF
        ):
            raise _HeadTooLarge
        self.reading_head = False
        self.head_chunks = 0
        self.disarm()
        self.waiting.heads.pop(self, None)
        super().on_headers_complete()
        # Without a body, httptools calls on_message_complete next, which disarms again.
        self.waiting.bodies[self] = None
        self.arm(self.limits.body_timeout)

    def on_body(self, body: bytes) -> None:
        """A piece of the body: the client is still sending, so its clock starts again."""
        super().on_body(body)
        if self.due is not None:
            self.arm(self.limits.body_timeout)

    def on_message_complete(self) -> None:
        """The whole request is in: nothing more to wait for from the client."""
        self.disarm()
        self.waiting.bodies.pop(self, None)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """Answered: the connection idles until the next request or the keep-alive timeout."""
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self.waiting.heads[self] = None

    # Writing

    def pause_writing(self) -> None:
        """The client is not reading what it is sent: start the send deadline."""
        if self.refused:  # uvicorn never took it, and its answer is small
            return
        super().pause_writing()
        if self.send_deadline is None and not self.transport.is_closing():
            self.send_deadline = self.loop.call_later(self.limits.send_timeout, self.send_stalled)
            self.waiting.readers[self] = None

    def resume_writing(self) -> None:
        """The client reads again."""
        if self.refused:
            return
        super().resume_writing()
        self.waiting.readers.pop(self, None)
        if self.send_deadline is not None:
            self.send_deadline.cancel()
            self.send_deadline = None

    def send_stalled(self) -> None:
        """The client left its answer unread for too long: drop the connection."""
        self.send_deadline = None
        log.debug("client stopped reading")
        self.abort()
        self.limited(ConnectionLimit.SEND_TIMEOUT)

    # Deadlines

    def arm(self, seconds: float) -> None:
        """(Re)start the connection's one read deadline, ``seconds`` (a header or body
        timeout) from now.

        Arming sets no timer of its own: a request arms and disarms three times, and a timer
        made and cancelled each time cost about 7 % of the instructions of the benchmark
        floor's whole request (docs/operations.md, stop 44).
        One timer per connection wakes every ``tick`` seconds at most while a deadline is
        armed (``_check_deadline``): ``tick`` is the shortest timeout, so no deadline armed
        later can pass before the timer's next wake."""
        now = self.loop.time()
        self.due = now + seconds
        if self.deadline_timer is None:
            self.deadline_timer = self.loop.call_at(now + self.tick, self._check_deadline)

    def disarm(self) -> None:
        """Stop the read deadline (its timer, if any, finds nothing due when it wakes)."""
        self.due = None

    def _check_deadline(self) -> None:
        """The timer's wake: the deadline has passed, or the timer waits on for it."""
        self.deadline_timer = None
        due = self.due
        if due is None:
            return
        now = self.loop.time()
        if now < due:
            self.deadline_timer = self.loop.call_at(min(due, now + self.tick), self._check_deadline)
            return
        self.due = None
        self.deadline_passed()

    def forget(self) -> None:
        """Stop both deadlines and leave the lists of waiting connections: the connection is
        closing."""
        self.disarm()
        if self.deadline_timer is not None:
            self.deadline_timer.cancel()
            self.deadline_timer = None
        if self.send_deadline is not None:
            self.send_deadline.cancel()
            self.send_deadline = None
        self.waiting.discard(self)

    def deadline_passed(self) -> None:
        """The client took too long: answer 408 if it had begun a request, and close."""
        if self.transport.is_closing() or self.done:
            return
        if self.reading_head and self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head waits while the request before it is answered: the server is
            # the slow one, and a 408 now would land inside that answer.
            self.arm(self.limits.header_timeout)
            return
        if not self.reading_head and self.cycle is not None:
            if self.flow.read_paused or self.cycle.waiting_for_100_continue:
                # The server, not the client, is the one not reading: wait on.
                self.arm(self.limits.body_timeout)
                return
            if self.cycle.response_started:
                self.close()
                return
            # The application is waiting for the rest of the body: it hears a disconnect,
            # and nothing it sends afterwards reaches the socket. Its request's log line
            # (middleware.Edge) must say what the client got instead.
            state = self.cycle.scope.setdefault("state", {})
            state[request_log.CONNECTION_STATUS] = 408
            state[request_log.CONNECTION_LIMIT] = ConnectionLimit.BODY_TIMEOUT.value
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            log.debug("request timed out")
            self.answer_and_close(_TIMEOUT)
            self.limited(ConnectionLimit.BODY_TIMEOUT)
            return
        log.debug("request timed out")
        if self.head_begun:
            self.answer_and_close(_TIMEOUT)
            self.limited(ConnectionLimit.HEADER_TIMEOUT, 408)
        else:
            self.close()

    # Answers

    def head_too_large(self) -> None:
        """Answer 431 and close."""
        log.debug("request head too large")
        message = (
            "The request's header fields are too large: at most"
            f" {self.limits.max_header_bytes} bytes in {self.limits.max_headers} fields."
        )
        self.answer_and_close(
            _error_response(
                431,
                "Request Header Fields Too Large",
                "header_too_large",
                message,
                limit=self.limits.max_header_bytes,
            )
        )
        self.limited(ConnectionLimit.HEADER_TOO_LARGE, 431)

    # Reporting

    def limited(
        self, limit: ConnectionLimit, status: int | None = None, *, peer: object = None
    ) -> None:
        """Count ``limit`` in the app's metrics and, when it answered the client with
        ``status`` before any application saw the request, write the request's log line.

        The head never arrived whole, so the line has no method, path or request id, and the
        client is the peer as connected (a trusted proxy's header was never read)."""
        metrics = self.app_state.get(APP_STATE_KEY)
        if isinstance(metrics, Metrics):
            metrics.connection_limited(limit)
        if status is None:
            return
        address = peer if peer is not None else self.client
        request_log.write(
            method=None,
            path=None,
            status=status,
            seconds=self.loop.time() - self.head_started,
            request_id=None,
            client_ip=address[0] if isinstance(address, tuple) and address else None,
            agent="unknown",
            limit=limit.value,
        )

    def bad_request(self) -> None:
        """uvicorn's answer to a request it cannot parse."""
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.done = True
        self.forget()
        self.send_400_response(message)
