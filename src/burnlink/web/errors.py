"""The one error shape of the HTTP API, and the one table that maps exceptions onto it.

Every error body is ``{"error": {"code": str, "message": str, ...}}``; extra members carry data
(``field``, ``attempts_left``, ``limit``). Codes are a public contract (docs/api.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from burnlink.errors import (
    AccessDenied,
    AdminRequired,
    AuditUnavailable,
    BurnlinkError,
    EnvelopeError,
    GeoDenied,
    InvalidInput,
    IpDenied,
    MailUnavailable,
    PassphraseRequired,
    PayloadTooLarge,
    RateLimited,
    SecretUnavailable,
    StorageError,
    VerificationFailed,
    VerificationRequired,
    WrongPassphrase,
)
from burnlink.metrics import Metrics, StoreName

log = logging.getLogger("burnlink.web")

# Most specific class first: the first match wins.
_TABLE: list[tuple[type[BurnlinkError], int, str]] = [
    (SecretUnavailable, 404, "not_found"),
    (PassphraseRequired, 403, "passphrase_required"),
    (WrongPassphrase, 403, "wrong_passphrase"),
    (AccessDenied, 403, "access_denied"),
    (IpDenied, 403, "ip_denied"),
    (GeoDenied, 403, "geo_denied"),
    (VerificationFailed, 401, "verification_failed"),
    (VerificationRequired, 401, "verification_required"),
    (RateLimited, 429, "rate_limited"),
    (MailUnavailable, 503, "mail_unavailable"),
    (AdminRequired, 401, "unauthorized"),
    (PayloadTooLarge, 413, "payload_too_large"),
    (EnvelopeError, 422, "invalid_envelope"),
    (InvalidInput, 422, "invalid_field"),
    (AuditUnavailable, 503, "audit_unavailable"),
    (StorageError, 503, "store_unavailable"),
]

_HTTP_CODES = {
    400: ("bad_request", "The request is malformed."),
    404: ("not_found", "No such route."),
    405: ("method_not_allowed", "This method is not allowed on this route."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "The request body must be application/json."),
}

NO_STORE = {"Cache-Control": "no-store"}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A response in the API's one error shape."""
    body = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def _status_and_code(exc: Exception) -> tuple[int, str]:
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"  # pragma: no cover - ConfigError is raised only at start-up


def _burnlink_error(request: Request, exc: Exception) -> JSONResponse:
    status, code = _status_and_code(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInput):
        extra["field"] = exc.field
    if isinstance(exc, PayloadTooLarge):
        extra["limit"] = exc.limit
    headers: dict[str, str] = {}
    if isinstance(exc, AccessDenied | VerificationFailed):
        extra["attempts_left"] = exc.attempts_left
    if isinstance(exc, VerificationRequired):
        extra["hint"] = exc.hint
        headers["WWW-Authenticate"] = 'OTP realm="burnlink"'
    if isinstance(exc, RateLimited):
        extra["retry_after"] = exc.retry_after
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, AdminRequired):
        headers["WWW-Authenticate"] = 'Bearer realm="burnlink admin"'
    if isinstance(exc, StorageError | MailUnavailable):
        log.warning("%s", type(exc).__name__)
    if isinstance(exc, StorageError) and not isinstance(exc, AuditUnavailable):
        # Audit failures are counted where they happen (``observe``), refusals included.
        metrics: Metrics | None = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.store_error(StoreName.SECRETS)
    return error_response(status, code, str(exc), headers=headers, **extra)


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(HTTPException, exc)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", "The request failed."))
    extra: dict[str, Any] = {}
    if exc.status_code == 413 and str(exc.detail).isdigit():
        extra["limit"] = int(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers, **extra)


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    errors = cast(RequestValidationError, exc).errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return error_response(400, "malformed_json", "The request body is not valid JSON.")
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = ".".join(loc) or "body"
    # pydantic's messages name the rule, never echo the value.
    message = str(first.get("msg", "is invalid"))
    code = "invalid_envelope" if field.startswith("envelope") else "invalid_field"
    return error_response(422, code, f"{field}: {message}", field=field)


def internal_error() -> JSONResponse:
    """The answer to an unexpected failure: no detail, since it could hold anything."""
    return error_response(500, "internal_error", "An unexpected error occurred.")


def install(app: FastAPI) -> None:
    """Register the handlers that turn expected failures into the one error shape.

    Unexpected exceptions are caught by ``middleware.CatchAll``, inside the security headers.
    """
    app.add_exception_handler(BurnlinkError, _burnlink_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
