"""ASGI middleware: security headers on every response, guards on request bodies, and the
request id with its one log line per request.

All are plain ASGI (no per-request framework objects) because they sit on every request.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import traceback

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burnlink.useragents import classify
from burnlink.web.api import client_address
from burnlink.web.errors import error_response, internal_error

log = logging.getLogger("burnlink.web")
access_log = logging.getLogger("burnlink.access")

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


class SecurityHeaders:
    """Add the security headers to every response; ``no-store`` on all but static files.

    A route may set its own value for any of them (the API docs page relaxes the CSP).
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = dict(_SECURITY_HEADERS)
        if hsts:
            self.headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if not cacheable:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyGuard:
    """Refuse oversized bodies (declared or streamed) with 413 and non-JSON API bodies with 415.

    A chunked body is counted as it arrives and refused once past the limit, so it is never
    held whole in memory.
    """

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and not declared.isdigit():
            await error_response(400, "bad_request", "Content-Length is invalid.")(
                scope, receive, send
            )
            return
        if declared is not None and int(declared) > self.max_body:
            await _too_large(self.max_body)(scope, receive, send)
            return
        has_body = declared not in (None, "0") or "transfer-encoding" in headers
        if has_body and scope["path"].startswith("/api/") and not _is_json(headers):
            await error_response(
                415, "unsupported_media_type", "The request body must be application/json."
            )(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, detail=str(self.max_body))
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int) -> JSONResponse:
    return error_response(
        413, "payload_too_large", f"The request body is larger than {limit} bytes.", limit=limit
    )


def _is_json(headers: Headers) -> bool:
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class CatchAll:
    """Answer an unexpected exception with a bare 500 in the one error shape.

    It logs the exception's type and stack, never its message or locals: either could quote
    a secret. It sits inside ``SecurityHeaders``, so a 500 carries the same headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence, logged below
            stack = "".join(traceback.format_tb(exc.__traceback__))
            log.error("unexpected error %s\n%s", type(exc).__name__, stack)
            if not started:
                await internal_error()(scope, receive, send)


def request_id_of(scope: Scope) -> str | None:
    """The id ``RequestLog`` gave the request in ``scope``."""
    state = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


class RequestLog:
    """Give each request an id and log one line for it when it is answered.

    The id is the client's ``X-Request-ID`` when that is a short token (a proxy's id joins
    its logs to ours), else 16 random hex digits; it is echoed in ``X-Request-ID``, kept in
    ``request.state.request_id`` and written into audit events. The line names the method,
    the path (never the query string), the status, the duration, the client address (after
    trusted proxies, from ``client_of``) and the agent class. The fragment of a link never
    reaches a server, so no line can hold a key.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = offered if _REQUEST_ID_RE.fullmatch(offered) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._log(scope, status, time.perf_counter() - started, request_id)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float, request_id: str) -> None:
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        level = logging.WARNING if status >= 500 else logging.INFO
        access_log.log(
            level,
            "%s %s %d",
            method,
            path,
            status,
            extra={
                "fields": {
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "request_id": request_id,
                    "client_ip": client_address(scope),
                    "agent": classify(headers.get("user-agent")).kind.value,
                }
            },
        )
