"""Operational routes: liveness, readiness, Prometheus metrics and the proof-of-burn keys.

``/healthz`` answers 200 while the process serves and its secret store answers (the core API's
contract), else 503; ``/readyz`` checks, side by side, that the secret store answers and that
the audit log could take an append now (its write lock and state row, in a transaction rolled
back: a log that answers reads but refuses writes is not ready), within 2 seconds, since
neither a create nor a reveal can succeed without both.
``/metrics`` is the Prometheus text format of ``burnlink.metrics``, for a scraper holding
``BURNLINK_METRICS_TOKEN`` as a bearer token (wrong ones are counted and audited as wrong admin
tokens are); with no token set, only for a peer on loopback that connects directly: not a
trusted proxy, and no forwarding header (``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``,
``Via``) in the request. Its webhook failure counts, with ``BURNLINK_WEBHOOK_ALLOW`` opened to
internal networks, could tell a sender which internal ports answer.
``/.well-known/burnlink-keys`` is the JWK set that checks statements.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from burnlink.clientip import ClientAddress
from burnlink.errors import MetricsTokenRequired, StorageError
from burnlink.jwk import public_keys_document
from burnlink.metrics import Metrics, render
from burnlink.service import SecretService
from burnlink.store import describe_failure
from burnlink.web.api import client_of
from burnlink.web.errors import error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.schemas import HealthResponse

__all__ = ["KEYS_PATH", "router"]

log = logging.getLogger("burnlink.web")

KEYS_PATH = "/.well-known/burnlink-keys"
CHECK_SECONDS = 1.5

router = APIRouter(tags=["operations"], route_class=StrictJSONRoute)


@router.get(
    "/healthz",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "The store did not answer."}},
)
async def healthz(request: Request) -> JSONResponse:
    """200 while the store answers, 503 otherwise (``/readyz`` also checks the audit log)."""
    service: SecretService = request.app.state.service
    if await _check("store", service):
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable"}, status_code=503)


async def _check(probe: Literal["store", "audit"], service: SecretService) -> bool:
    try:
        with anyio.fail_after(CHECK_SECONDS):
            if probe == "store":
                await service.store.ping()
            elif service.audit_log is not None:
                await service.audit_log.check_writable()
    except (StorageError, TimeoutError) as exc:
        # The probe's answer says only "unavailable"; the operator's log says which and why.
        settings = service.settings
        url = settings.store if probe == "store" else settings.audit_url()
        what = "secret store" if probe == "store" else "audit log"
        log.warning("%s check failed: the %s %s", probe, what, describe_failure(url, exc))
        return False
    return True


@router.get(
    "/readyz",
    response_model=HealthResponse,
    responses={
        503: {
            "model": HealthResponse,
            "description": "The store or the audit log did not answer; `checks` says which.",
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the store and the audit log answer, else 503 naming which fails."""
    service: SecretService = request.app.state.service
    checks: dict[str, bool] = {}

    async def run(name: Literal["store", "audit"]) -> None:
        checks[name] = await _check(name, service)

    async with anyio.create_task_group() as group:  # side by side: one deadline for both
        group.start_soon(run, "store")
        group.start_soon(run, "audit")
    checks = {name: checks[name] for name in ("store", "audit")}
    ok = all(checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {name: "ok" if good else "unavailable" for name, good in checks.items()},
    }
    return JSONResponse(body, status_code=200 if ok else 503)


_metrics_token = HTTPBearer(
    auto_error=False, scheme_name="MetricsToken", description="BURNLINK_METRICS_TOKEN"
)
_FORWARDING = frozenset({b"forwarded", b"x-real-ip", b"via"})


def _direct_from_loopback(request: Request) -> bool:
    """Whether the peer is on loopback and no proxy stands between: the peer is not a trusted
    proxy and the request carries no header a proxy adds."""
    peer = request.scope.get("client")
    try:
        if not peer or not ipaddress.ip_address(peer[0]).is_loopback:
            return False
    except ValueError:
        return False
    proxies: ClientAddress = request.app.state.client_address
    if proxies.trusted and any(ipaddress.ip_address(peer[0]) in net for net in proxies.trusted):
        return False
    return not any(
        name in _FORWARDING or name.startswith(b"x-forwarded-")
        for name, _ in request.scope["headers"]
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses=error_responses(
        401,
        429,
        notes={
            401: "`unauthorized`: no `BURNLINK_METRICS_TOKEN` as a bearer token, or the wrong"
            " one; with none set, the request did not come directly from loopback."
            " `WWW-Authenticate` is set.",
            429: "`rate_limited`: too many wrong admin or metrics tokens from this client"
            " (`BURNLINK_RATE_LIMIT_ADMIN`).",
        },
    ),
)
async def metrics(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_metrics_token)],
) -> Response:
    """Prometheus metrics of this process (docs/audit.md lists them), for a bearer of
    ``BURNLINK_METRICS_TOKEN``; with none set, for direct connections from loopback only."""
    service: SecretService = request.app.state.service
    if service.settings.metrics_token is not None:
        given = credentials.credentials if credentials is not None else ""
        await service.check_metrics(given, client_of(request))
    elif not _direct_from_loopback(request):
        raise MetricsTokenRequired
    registry: Metrics = request.app.state.metrics
    body, content_type = render(registry)
    return Response(body, media_type=content_type)


@router.get(KEYS_PATH)
async def burnlink_keys(request: Request) -> JSONResponse:
    """The public keys that check proof-of-burn statements, as a JWK set."""
    service: SecretService = request.app.state.service
    keys = [] if service.signing_key is None else [service.signing_key.public_key()]
    return JSONResponse(public_keys_document(*keys))
