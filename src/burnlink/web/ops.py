"""Operational routes: liveness, readiness, Prometheus metrics and the proof-of-burn keys.

``/healthz`` answers 200 while the process serves and its secret store answers (the core API's
contract), else 503; ``/readyz`` checks, side by side, that the secret store answers and that
the audit log could take an append now (its write lock and state row, in a transaction rolled
back: a log that answers reads but refuses writes is not ready), within 2 seconds, since
neither a create nor a reveal can succeed without both.
``/metrics`` is the Prometheus text format of ``burnlink.metrics``.
``/.well-known/burnlink-keys`` is the JWK set that checks statements.
"""

from __future__ import annotations

import logging
from typing import Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from burnlink.errors import StorageError
from burnlink.metrics import Metrics, render
from burnlink.service import SecretService
from burnlink.signing import public_keys_document
from burnlink.store import describe_failure
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


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (docs/audit.md lists them)."""
    registry: Metrics = request.app.state.metrics
    body, content_type = render(registry)
    return Response(body, media_type=content_type)


@router.get(KEYS_PATH)
async def burnlink_keys(request: Request) -> JSONResponse:
    """The public keys that check proof-of-burn statements, as a JWK set."""
    service: SecretService = request.app.state.service
    keys = [] if service.signing_key is None else [service.signing_key.public_key()]
    return JSONResponse(public_keys_document(*keys))
