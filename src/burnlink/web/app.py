"""The ASGI application: ``create_app`` wires settings, store, clock and routes together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from burnlink import __version__
from burnlink.access import parse_networks
from burnlink.clientip import ClientAddress
from burnlink.clock import Clock, SystemClock
from burnlink.config import Settings, load_settings
from burnlink.errors import StorageError
from burnlink.geo import CountryResolver
from burnlink.mailer import Mailer, SmtpMailer
from burnlink.service import SecretService
from burnlink.store import SecretStore, open_store
from burnlink.sweeper import run_sweeper
from burnlink.web import api, errors, pages
from burnlink.web.middleware import BodyGuard, CatchAll, SecurityHeaders
from burnlink.web.schemas import HealthResponse

log = logging.getLogger("burnlink.web")

# Room for base64 (4/3) and the JSON around a secret of BURNLINK_MAX_BYTES.
BODY_OVERHEAD = 64 * 1024


def max_body(settings: Settings) -> int:
    """The largest request body accepted: an envelope for a secret of ``max_bytes``."""
    return settings.max_bytes * 4 // 3 + BODY_OVERHEAD


def create_app(
    settings: Settings,
    store: SecretStore | None = None,
    clock: Clock | None = None,
    *,
    geo: CountryResolver | None = None,
    mailer: Mailer | None = None,
) -> FastAPI:
    """Build the app. Without ``store`` it opens ``settings.store`` on start-up and closes it
    on shutdown; with one (tests) the caller owns it. The sweeper runs while the app lives.
    ``geo`` and ``mailer`` default to what the settings name.
    """
    if mailer is None and settings.smtp_url is not None:
        mailer = SmtpMailer.from_url(settings.smtp_url.get_secret_value(), settings.smtp_from or "")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        retention = timedelta(days=settings.receipt_days)
        opened = store or await open_store(settings.store, retention=retention)
        app.state.service = SecretService(
            opened, settings, clock or SystemClock(), geo=geo, mailer=mailer
        )
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(run_sweeper, app.state.service, settings.sweep_interval)
                yield
                group.cancel_scope.cancel()
        finally:
            if store is None:
                await opened.aclose()

    app = FastAPI(
        title="burnlink",
        version=__version__,
        summary="Self-destructing, end-to-end encrypted links for sharing credentials.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.client_address = ClientAddress(
        parse_networks(settings.trusted_proxies, field="trusted_proxies")
    )
    app.include_router(api.router)
    app.include_router(pages.router)
    pages.mount_static(app)
    errors.install(app)

    @app.get("/healthz", response_model=HealthResponse, tags=["operations"])
    async def healthz(request: Request) -> JSONResponse:
        """200 while the store answers, 503 otherwise."""
        service: SecretService = request.app.state.service
        try:
            with anyio.fail_after(2):
                await service.store.ping()
        except (StorageError, TimeoutError):
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    app.add_middleware(BodyGuard, max_body=max_body(settings))
    app.add_middleware(CatchAll)
    https = (settings.base_url or "").startswith("https://")
    app.add_middleware(SecurityHeaders, hsts=https)
    return app


def app_from_environment() -> FastAPI:
    """The factory ``burnlink serve`` gives uvicorn: settings from ``BURNLINK_*``."""
    return create_app(load_settings())
