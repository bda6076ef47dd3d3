"""The ASGI layer every request goes through first: request id and log line, security
headers, body guards and the catch-all for unexpected errors (``Edge``).

It is one plain ASGI layer (one wrapper of ``send``, no per-request framework objects)
because it sits on every request: four separate layers cost about 6 % of a create's CPU.
``web.app.BurnlinkApp`` calls it in front of FastAPI's whole stack, not as a middleware
inside it, so that the hot routes skip Starlette's error and exception layers too.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import traceback
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burnlink.hosts import AllowedHosts
from burnlink.service.deferred import deferring
from burnlink.useragents import classify
from burnlink.web import request_log
from burnlink.web.api import client_address
from burnlink.web.errors import error_response, internal_error
from burnlink.web.hot_routes import HotRoutes
from burnlink.web.request_headers import header

log = logging.getLogger("burnlink.web")
access_log = request_log.access_log

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REQUEST_ID_RAW = REQUEST_ID_HEADER.encode("latin-1")
_NO_STORE = (b"cache-control", b"no-store")
_REPLACED = frozenset({_REQUEST_ID_RAW, _NO_STORE[0]})
_REPLACED_CACHEABLE = frozenset({_REQUEST_ID_RAW})


class Edge:
    """What every HTTP request goes through, in one ASGI layer (one wrapper of ``send``):

    - **Request id and log line.** The id is the client's ``X-Request-ID`` when that is a
      short token (a proxy's id joins its logs to ours), else 16 random hex digits; it is
      echoed in ``X-Request-ID``, kept in ``request.state.request_id`` and written into audit
      events. One line per request names the method, the path (never the query string), the
      status, the duration, the client address (after trusted proxies, from ``client_of``) and
      the agent class. The fragment of a link never reaches a server, so no line can hold a
      key.
    - **Security headers** on every response, 500s included; ``Cache-Control: no-store`` on
      all but static files. A route may set its own value for any of them (none does today:
      the API docs page runs under the same CSP as the others).
    - **Body guards.** Oversized bodies (declared or streamed) get 413, non-JSON API bodies
      415, a malformed ``Content-Length`` 400. A chunked body is counted as it arrives and
      refused once past the limit, so it is never held whole in memory.
    - **Hot routes.** Creates and reveals are answered by ``hot_routes`` without FastAPI's
      routing and dependency machinery (``web.hot_routes``); everything else by the app.
    - **Catch-all.** An unexpected exception is answered with a bare 500 in the one error
      shape: by Starlette's ``ServerErrorMiddleware`` (with ``errors.internal_error``) for
      what reached FastAPI, here for the rest. Either way it ends here and is logged here,
      once: its type and stack, never its message or locals, since either could quote a
      secret.
    - **Host.** With ``BURNLINK_ALLOWED_HOSTS`` set, a request whose one ``Host`` is not
      listed is refused with 400 ``host_not_allowed`` before anything else reads it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        hsts: bool,
        allowed_hosts: AllowedHosts | None = None,
        hot_routes: HotRoutes | None = None,
    ) -> None:
        self.app = app
        self.hot_routes = hot_routes
        self.max_body = max_body
        # None when any Host is allowed: then no request pays for reading its Host lines.
        self.allowed_hosts = allowed_hosts if allowed_hosts and allowed_hosts.hosts else None
        headers = dict(_SECURITY_HEADERS)
        if hsts:
            headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
        self.security_headers = headers
        # Encoded once: each response only appends the ones its route did not set itself.
        self._security_raw = tuple(
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        offered = header(scope, _REQUEST_ID_RAW) or ""
        request_id = offered if _REQUEST_ID_RE.fullmatch(offered) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        cacheable = scope["path"].startswith("/static/")
        status = 500
        answered = False

        async def send_at_edge(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                answered = True
                status = int(message["status"])
                message["headers"] = self._with_headers(
                    message.get("headers", ()), request_id, cacheable
                )
            await send(message)

        # Background work the request starts (audit reports, page opens) waits until the
        # answer is out, so that it never adds to the answer's time (``burnlink.service.deferred``).
        with deferring():
            try:
                refusal = self._refusal(scope)
                if refusal is not None:
                    await refusal(scope, receive, send_at_edge)
                elif self.hot_routes is not None and scope["method"] == "POST":
                    await self.hot_routes(scope, self._counting(receive), send_at_edge, self.app)
                elif scope["method"] in _BODY_METHODS:
                    await self.app(scope, self._counting(receive), send_at_edge)
                else:
                    await self.app(scope, receive, send_at_edge)
            except Exception as exc:  # noqa: BLE001 - the last line of defence, logged below
                stack = "".join(traceback.format_tb(exc.__traceback__))
                log.error("unexpected error %s\n%s", type(exc).__name__, stack)
                if not answered:
                    await internal_error()(scope, receive, send_at_edge)
            finally:
                _log(scope, status, time.perf_counter() - started, request_id)

    def _with_headers(
        self, headers: Iterable[tuple[bytes, bytes]], request_id: str, cacheable: bool
    ) -> list[tuple[bytes, bytes]]:
        """A response's headers with the security headers it lacks, ``no-store`` unless
        ``cacheable``, and the request id (these two replace any the route set).

        Plain tuples built once per app: ``MutableHeaders`` walked the list once per header
        (about 3 % of a create's CPU)."""
        replaced = _REPLACED if not cacheable else _REPLACED_CACHEABLE
        raw = [(name.lower(), value) for name, value in headers]
        present = {name for name, _ in raw}
        if not present.isdisjoint(replaced):
            raw = [header for header in raw if header[0] not in replaced]
        raw.extend(header for header in self._security_raw if header[0] not in present)
        if not cacheable:
            raw.append(_NO_STORE)
        raw.append((_REQUEST_ID_RAW, request_id.encode("latin-1")))
        return raw

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        """The answer to a request refused before it is read (its Host is not allowed, or its
        body is refused), if it is."""
        if self.allowed_hosts is not None and not self.allowed_hosts.allows(
            Headers(scope=scope).getlist("host")
        ):
            return error_response(
                400, "host_not_allowed", "This server does not answer to that Host."
            )
        if scope["method"] not in _BODY_METHODS:
            return None
        declared = header(scope, b"content-length")
        if declared is not None and not declared.isdigit():
            return error_response(400, "bad_request", "Content-Length is invalid.")
        if declared is not None and int(declared) > self.max_body:
            return _too_large(self.max_body)
        has_body = declared not in (None, "0") or header(scope, b"transfer-encoding") is not None
        if has_body and scope["path"].startswith("/api/") and not _is_json(scope):
            return error_response(
                415, "unsupported_media_type", "The request body must be application/json."
            )
        return None

    def _counting(self, receive: Receive) -> Receive:
        """``receive`` that raises a 413 once the body passes ``max_body``."""
        received = 0
        limit = self.max_body

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail=str(limit))
            return message

        return counting_receive


def _too_large(limit: int) -> JSONResponse:
    return error_response(
        413, "payload_too_large", f"The request body is larger than {limit} bytes.", limit=limit
    )


def _is_json(scope: Scope) -> bool:
    media_type = (header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def request_id_of(scope: Scope) -> str | None:
    """The id ``Edge`` gave the request in ``scope``."""
    state = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def _log(scope: Scope, status: int, seconds: float, request_id: str) -> None:
    # A limit of the connection (a body that stopped arriving: 408) may have answered instead
    # of the application, whose own answer then never left: log what the client got.
    state = scope.get("state") or {}
    status = state.get(request_log.CONNECTION_STATUS, status)
    level = logging.WARNING if status >= 500 else logging.INFO
    if not access_log.isEnabledFor(level):
        return  # nobody reads the line: build nothing
    request_log.write(
        method=scope["method"],
        path=scope["path"],
        status=status,
        seconds=seconds,
        request_id=request_id,
        client_ip=client_address(scope),
        agent=classify(header(scope, b"user-agent")).kind.value,
        limit=state.get(request_log.CONNECTION_LIMIT),
    )
