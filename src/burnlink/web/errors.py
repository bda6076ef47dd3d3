"""The one error shape of the HTTP API, the one table that maps exceptions onto it, and what
the OpenAPI document says about both.

Every error body is ``{"error": {"code": str, "message": str, ...}}``; extra members carry data
(``field``, ``limit``, ``attempts_left``, ``hint``, ``retry_after``), as ``schemas.ErrorBody``
describes. Codes are a public contract (docs/api.md). Routes declare the statuses they can
answer with ``error_responses``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from burnlink.errors import (
    AccessDenied,
    AdminRequired,
    AuditUnavailable,
    BurnlinkError,
    CreateNotAllowed,
    CsrfFailed,
    EnvelopeError,
    FreshLoginRequired,
    GeoDenied,
    InsufficientScope,
    InvalidApiToken,
    InvalidInput,
    IpDenied,
    LoginRequired,
    MailUnavailable,
    MetricsTokenRequired,
    MfaRequired,
    NotPermitted,
    PassphraseRequired,
    PayloadTooLarge,
    RateLimited,
    RecipientMismatch,
    RequestAnswered,
    RequestExpired,
    RequestNotAnswered,
    SecretUnavailable,
    StorageError,
    TeamPolicyRefused,
    TokenNotFound,
    VerificationFailed,
    VerificationRequired,
    WrongPassphrase,
)
from burnlink.metrics import Metrics, StoreName
from burnlink.store import describe_failure
from burnlink.strict_json import DuplicateName, shorten
from burnlink.web.base_url import base_of
from burnlink.web.schemas import ErrorBody

log = logging.getLogger("burnlink.web")

MAX_FIELD_SHOWN = 128
"""Longest ``field`` a validation error echoes (each name in it is cut at ``MAX_NAME_SHOWN``)."""

# Most specific class first: the first match wins.
_TABLE: list[tuple[type[BurnlinkError], int, str]] = [
    (SecretUnavailable, 404, "not_found"),
    (RequestAnswered, 409, "already_answered"),
    (RequestExpired, 410, "request_expired"),
    (RequestNotAnswered, 409, "not_answered"),
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
    (FreshLoginRequired, 401, "fresh_login_required"),
    (LoginRequired, 401, "login_required"),
    (InvalidApiToken, 401, "invalid_token"),
    (CsrfFailed, 403, "csrf_failed"),
    (InsufficientScope, 403, "insufficient_scope"),
    (CreateNotAllowed, 403, "create_not_allowed"),
    (TeamPolicyRefused, 403, "team_policy"),
    (RecipientMismatch, 403, "recipient_mismatch"),
    (MfaRequired, 403, "mfa_required"),
    (NotPermitted, 403, "not_permitted"),
    (TokenNotFound, 404, "not_found"),
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

# What each error status means, for the OpenAPI document: the codes it carries (docs/api.md).
_STATUS_DESCRIPTIONS = {
    400: "The body is not valid JSON or gives a member name twice in one object"
    " (`malformed_json`; `field` names a repeated name), or `Content-Length` is not a decimal"
    " number (`bad_request`).",
    401: "A one-time code mailed to the recipient is needed (`verification_required`; one was"
    " sent, `hint` says where) or was wrong (`verification_failed`, with `attempts_left`)."
    " Send it as `otp`. `WWW-Authenticate` is set.",
    403: "Refused; nothing was consumed. The client's address or country is not allowed"
    " (`ip_denied`, `geo_denied`), or the secret needs a passphrase or proof"
    " (`passphrase_required`, not counted) or it was wrong (`wrong_passphrase`, counted; at"
    " `attempts_left` 0 the secret has been destroyed).",
    404: "`not_found`, the same for every kind of gone: unknown or malformed id, missing or"
    " wrong key or token, expired, used up, burned or locked.",
    409: "The request was answered already (`already_answered`; a second answer changes"
    " nothing), or it is not answered yet (`not_answered`).",
    410: "`request_expired`: the request's time ran out; it takes no answer.",
    413: "`payload_too_large`: the request body, or the secret or ciphertext in it (`field`), is"
    " larger than the server accepts; `limit` is the limit in bytes.",
    415: "`unsupported_media_type`: the request has a body that is not `application/json`.",
    422: "A member is missing, unknown, of the wrong type or out of range (`invalid_field`), or"
    " the envelope breaks a v1 rule (`invalid_envelope`); `field` names it.",
    429: "`rate_limited`: too many requests, or too many failed reveals (of this link, or of"
    " any), from this client; the message says which and for how long."
    " Retry after `retry_after` seconds (also the `Retry-After` header).",
    503: "The store (`store_unavailable`) or the audit log (`audit_unavailable`) did not answer,"
    " or a verification code could not be mailed (`mail_unavailable`). Nothing happened;"
    " retrying is safe.",
}
_STATUS_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with.",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def error_responses(
    *statuses: int, notes: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer these error statuses, each in the one
    error shape; ``notes`` replaces the standard description where a route narrows it.

    Raises ``KeyError`` for a status the API never answers with an error body of its own.
    """
    notes = notes or {}
    declared: dict[int | str, dict[str, Any]] = {}
    for status in sorted(statuses):
        response: dict[str, Any] = {
            "model": ErrorBody,
            "description": notes.get(status, _STATUS_DESCRIPTIONS[status]),
        }
        if status in _STATUS_HEADERS:
            response["headers"] = _STATUS_HEADERS[status]
        declared[status] = response
    return declared


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    field: str | None = None,
    limit: int | None = None,
    attempts_left: int | None = None,
    hint: str | None = None,
    retry_after: int | None = None,
    login_url: str | None = None,
    scope: str | None = None,
    teams: list[str] | None = None,
) -> JSONResponse:
    """A response in the API's one error shape (``schemas.ErrorBody``); a member left as
    ``None`` is left out."""
    extra = {
        "field": field,
        "limit": limit,
        "attempts_left": attempts_left,
        "hint": hint,
        "retry_after": retry_after,
        "login_url": login_url,
        "scope": scope,
        "teams": teams,
    }
    error: dict[str, Any] = {"code": code, "message": message}
    error.update((name, value) for name, value in extra.items() if value is not None)
    return JSONResponse(
        {"error": error}, status_code=status, headers={**NO_STORE, **(headers or {})}
    )


def _status_and_code(exc: Exception) -> tuple[int, str]:
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"  # pragma: no cover - ConfigError is raised only at start-up


def _storage_failure(request: Request, exc: StorageError) -> str:
    # For the operator's log only: which store and why. The client gets the generic message.
    service = getattr(request.app.state, "service", None)
    if service is None:
        return type(exc).__name__
    if isinstance(exc, AuditUnavailable):
        return f"the audit log {describe_failure(service.settings.audit_url(), exc)}"
    return f"the secret store {describe_failure(service.settings.store, exc)}"


def _burnlink_error(request: Request, exc: Exception) -> JSONResponse:
    status, code = _status_and_code(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, VerificationRequired):
        headers["WWW-Authenticate"] = 'OTP realm="burnlink"'
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, MetricsTokenRequired):
        headers["WWW-Authenticate"] = 'Bearer realm="burnlink metrics"'
    elif isinstance(exc, AdminRequired):
        headers["WWW-Authenticate"] = 'Bearer realm="burnlink admin"'
    elif isinstance(exc, InvalidApiToken):
        headers["WWW-Authenticate"] = 'Bearer realm="burnlink", error="invalid_token"'
    elif isinstance(exc, InsufficientScope):
        headers["WWW-Authenticate"] = (
            f'Bearer realm="burnlink", error="insufficient_scope", scope="{exc.scope}"'
        )
    login_url = None
    if isinstance(exc, LoginRequired):
        headers["WWW-Authenticate"] = 'Bearer realm="burnlink"'
        login_url = _login_url(request, exc.max_age, exc.next_path)
    if isinstance(exc, StorageError):
        log.warning("%s", _storage_failure(request, exc))
    elif isinstance(exc, MailUnavailable):
        log.warning("%s", type(exc).__name__)
    if isinstance(exc, StorageError) and not isinstance(exc, AuditUnavailable):
        # Audit failures are counted where they happen (``observe``), refusals included.
        metrics: Metrics | None = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.store_error(StoreName.SECRETS)
    return error_response(
        status,
        code,
        str(exc),
        headers=headers,
        field=exc.field if isinstance(exc, InvalidInput | TeamPolicyRefused) else None,
        limit=exc.limit if isinstance(exc, PayloadTooLarge) else None,
        attempts_left=(
            exc.attempts_left if isinstance(exc, AccessDenied | VerificationFailed) else None
        ),
        hint=exc.hint if isinstance(exc, VerificationRequired) else None,
        retry_after=exc.retry_after if isinstance(exc, RateLimited) else None,
        login_url=login_url,
        scope=exc.scope if isinstance(exc, InsufficientScope) else None,
        teams=list(exc.teams) if isinstance(exc, TeamPolicyRefused) else None,
    )


def _login_url(request: Request, max_age: int | None, next_path: str | None) -> str:
    # Back to the page asked for after the sign-in; an API call comes back to the compose page.
    path = request.url.path
    query = {"next": next_path or ("/" if path.startswith("/api/") else path)}
    if max_age is not None:
        query["max_age"] = str(max_age)
    return f"{base_of(request)}/auth/login?{urlencode(query)}"


def _http_error_handler(
    routes: Sequence[BaseRoute],
) -> Callable[[Request, Exception], JSONResponse]:
    def handle(request: Request, exc: Exception) -> JSONResponse:
        exc = cast(HTTPException, exc)
        code, message = _HTTP_CODES.get(exc.status_code, ("http_error", "The request failed."))
        detail = str(exc.detail)
        limit = int(detail) if exc.status_code == 413 and detail.isdigit() else None
        headers = exc.headers
        allow = allowed_methods(routes, request.scope) if exc.status_code == 405 else ""
        if allow:
            headers = {**(headers or {}), "Allow": allow}
        return error_response(exc.status_code, code, message, headers=headers, limit=limit)

    return handle


def allowed_methods(routes: Sequence[BaseRoute], scope: Mapping[str, Any]) -> str:
    """The ``Allow`` header of a 405: every method of every route on the request's path
    (empty when no route with methods is on it, e.g. a static file).

    Starlette names only the methods of the first route whose path matches, so on a path
    served by two routes (``GET`` and ``DELETE /api/v1/secrets/{id}``) it left one out.
    """
    request = dict(scope)
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(request)
        route_methods = getattr(route, "methods", None)
        if match is not Match.NONE and route_methods:
            methods.update(route_methods)
    return ", ".join(sorted(methods))


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    errors = cast(RequestValidationError, exc).errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        cause = exc.__cause__
        if isinstance(cause, DuplicateName):
            return error_response(
                400,
                "malformed_json",
                f"The request body is refused: {cause.msg} (names must be unique).",
                field=cause.name,
            )
        return error_response(400, "malformed_json", "The request body is not valid JSON.")
    # An unknown member's name is echoed (the sender needs to see which), but cut short: it
    # is the sender's text, and may be as long as the body.
    loc = [shorten(str(part)) for part in first.get("loc", ()) if part != "body"]
    field = shorten(".".join(loc) or "body", MAX_FIELD_SHOWN)
    # pydantic's messages name the rule, never echo the value.
    message = str(first.get("msg", "is invalid"))
    code = "invalid_envelope" if field.startswith("envelope") else "invalid_field"
    return error_response(422, code, f"{field}: {message}", field=field)


def internal_error() -> JSONResponse:
    """The answer to an unexpected failure: no detail, since it could hold anything."""
    return error_response(500, "internal_error", "An unexpected error occurred.")


async def _unexpected_error(_: Request, __: Exception) -> JSONResponse:
    # Starlette's ServerErrorMiddleware sends this, then re-raises to ``middleware.Edge``,
    # which logs. A coroutine, so that it runs without a hop to a thread.
    return internal_error()


_FRAMEWORK_422 = "#/components/schemas/HTTPValidationError"


def _without_framework_422(document: dict[str, Any]) -> dict[str, Any]:
    """Drop the ``422 HTTPValidationError`` FastAPI adds to every route with parameters.

    This app answers validation errors in its own shape (``_validation_error``), and routes
    that can answer 422 declare it with ``error_responses``; the rest cannot answer it.
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            schema = responses.get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref") == _FRAMEWORK_422:
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def _openapi_in_the_one_shape(
    generate: Callable[[], dict[str, Any]],
) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        return _without_framework_422(generate())  # idempotent on FastAPI's cached document

    return openapi


def install(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Register the handlers that turn expected failures into the one error shape, and make
    the OpenAPI document (``/openapi.json``) describe validation errors in that shape.

    ``routes`` are every route of the app, for the ``Allow`` header of a 405. Unexpected
    exceptions are answered with ``internal_error`` by Starlette's ``ServerErrorMiddleware``
    (or by ``middleware.Edge`` for what never reached it), which re-raises them to Edge, the
    one place that logs them; Edge adds the security headers to that answer too.
    """
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_exception_handler(BurnlinkError, _burnlink_error)
    app.add_exception_handler(HTTPException, _http_error_handler(routes))
    app.add_exception_handler(RequestValidationError, _validation_error)
    # FastAPI's documented way to change the document ("Extending OpenAPI").
    app.openapi = _openapi_in_the_one_shape(app.openapi)  # type: ignore[method-assign]
