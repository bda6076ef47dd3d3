"""The ASGI application: ``create_app`` wires settings, store, clock and routes together."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.telemetry import TelemetryConfig
from starlette.types import Receive, Scope, Send

from burnlink import __version__, keys
from burnlink.audit import AuditBackend, open_audit_store
from burnlink.audit.checkpoint import CheckpointMessage, CheckpointWriter, Publish
from burnlink.audit.export import JsonLinesSink
from burnlink.clientip import ClientAddress
from burnlink.clock import Clock, SystemClock
from burnlink.config import Limit, Settings, load_settings
from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.geo import CountryResolver
from burnlink.hosts import AllowedHosts
from burnlink.logs import configure_logging
from burnlink.mailer import Mailer, SmtpMailer
from burnlink.metrics import APP_STATE_KEY, Metrics, WebhookQueue
from burnlink.netguard import AllowList, Resolver, ThreadedResolver, system_resolver
from burnlink.policy import parse_networks
from burnlink.service import SecretService
from burnlink.service.admin import AdminConsole
from burnlink.service.alerts import AlertRules
from burnlink.service.deferred import defer
from burnlink.service.reporting import Reporter
from burnlink.service.requests import RequestService
from burnlink.service.signin import SignInService
from burnlink.service.sweep import run_sweeper
from burnlink.service.tokens import TokenService
from burnlink.store import SecretStore, describe_failure, open_store, redact_url
from burnlink.web import (
    admin_api,
    api,
    audit_api,
    device_api,
    errors,
    my_secrets_api,
    ops,
    pages,
    requests_api,
    signin,
    tokens_api,
)
from burnlink.web.hot_routes import HotRoutes
from burnlink.web.middleware import Edge
from burnlink.web.page_opens import PageOpens
from burnlink.web.schemas import describe_limits
from burnlink.webhooks import (
    RetryPolicy,
    WebhookDispatcher,
    WebhookEndpoint,
    parse_webhook_secret,
)

log = logging.getLogger("burnlink.web")

# Room for base64 (4/3) and the JSON around a secret of BURNLINK_MAX_BYTES.
BODY_OVERHEAD = 64 * 1024
_NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}
OPENED_PAGE = "/s/{secret_id}"
"""The page whose fetch is recorded as ``secret.opened`` (``record_page_open``)."""
DRAIN_SECONDS = 5.0
SEAL_INTERVAL = 0.5
"""Seconds between the sealer's looks at the outbox when no action wakes it (``audit.sealer``)."""
"""How long shutdown waits for queued page opens to be recorded."""


def max_body(settings: Settings) -> int:
    """The largest request body accepted: an envelope for a secret of ``max_bytes``."""
    return settings.max_bytes * 4 // 3 + BODY_OVERHEAD


async def open_reporter(
    settings: Settings,
    store: SecretStore,
    metrics: Metrics,
    *,
    audit: AuditBackend | None,
    resolver: Resolver = system_resolver,
    retry: RetryPolicy | None = None,
) -> Reporter:
    """The reporter the settings describe; with ``audit`` (tests) that log is used as is.

    Raises ``ConfigError`` for a bad key or sink, ``StorageUnavailable`` for an audit log
    that cannot be opened.
    """
    if audit is None:
        url = settings.audit_url()
        try:
            audit = await open_audit_store(url, key=keys.audit_key(settings))
        except StorageUnavailable as exc:
            if url.partition("://")[0].lower() == "sqlite":
                raise  # its messages already name the file and SQLite's error code
            raise type(exc)(f"Cannot open the audit log {describe_failure(url, exc)}") from exc
        one_host = settings.store.partition("://")[0].lower() == "sqlite"  # its log beside it
        if settings.audit_store is None and url != settings.store and not one_host:
            log.warning(
                "BURNLINK_AUDIT_STORE is unset and the store keeps no audit log: writing it to"
                " %s, one file per host; point every host at one SQL database instead",
                redact_url(url),
            )
        log.info("audit log at %s", redact_url(url))
    sink = None
    if settings.audit_sink:
        try:
            sink = JsonLinesSink.open(settings.audit_sink)
        except OSError as exc:
            raise ConfigError(f"BURNLINK_AUDIT_SINK: cannot open ({exc.strerror})") from None
    secret = settings.webhook_secret
    allow = AllowList.parse(settings.webhook_allow)
    if resolver is system_resolver:
        # Real lookups of senders' names on threads of their own (the dispatcher closes them):
        # a name whose DNS never answers must not hold the default executor's threads, which
        # mail and the alerts' own lookups need.
        resolver = ThreadedResolver(32, name="burnlink-notify-dns")
        alerts_resolver: Resolver | None = None  # the alerts dispatcher's own threads
    else:
        alerts_resolver = resolver
    return Reporter(
        audit,
        store=store,
        metrics=metrics,
        sink=sink,
        # Signed with the wall clock, whatever the app's: receivers check it against theirs.
        webhooks=WebhookDispatcher(
            allow=allow, clock=SystemClock(), metrics=metrics, retry=retry, resolver=resolver
        ),
        webhook_key=None if secret is None else parse_webhook_secret(secret.get_secret_value()),
        alert_url=settings.alert_url,
        # The operator's alerts get their own queue and connections: no notify_url a sender
        # picks (a tarpit, a flood) can delay or crowd them out.
        alerts=None
        if settings.alert_url is None
        else WebhookDispatcher(
            queue=WebhookQueue.ALERTS,
            allow=allow,
            clock=SystemClock(),
            metrics=metrics,
            retry=retry,
            resolver=alerts_resolver,
        ),
        allow=allow,
        resolver=resolver,
        rules=AlertRules(
            store,
            failed_reveals=Limit.parse(settings.alert_failed_reveals),
            not_found=Limit.parse(settings.alert_not_found),
        ),
    )


def checkpoint_writer(
    settings: Settings, service: SecretService, reporter: Reporter, clock: Clock
) -> CheckpointWriter | None:
    """The writer of signed audit checkpoints, when the settings name somewhere to put them
    (``BURNLINK_AUDIT_CHECKPOINT_FILE``, ``_URL``, or the sink) and there is a log and a key."""
    if reporter.audit is None or service.signing_key is None:
        return None
    publish: list[Publish] = []
    sink = reporter.sink
    if sink is not None:
        publish.append(sink.write_checkpoint)
    url = settings.audit_checkpoint_url
    webhooks, webhook_key = reporter.webhooks, reporter.webhook_key
    if url is not None and webhooks is not None and webhook_key is not None:
        endpoint = WebhookEndpoint(url=url, key=webhook_key)

        def send(document: str) -> None:
            webhooks.enqueue(endpoint, CheckpointMessage.of(document, clock.now()))

        publish.append(send)
    file = settings.audit_checkpoint_file
    if file is None and not publish:
        return None
    return CheckpointWriter(
        reporter.audit,
        signing_key=service.signing_key,
        now=clock.now,
        file=None if file is None else Path(file).expanduser(),
        publish=tuple(publish),
    )


async def record_page_open(request: Request) -> None:
    """Queue ``GET /s/{id}`` to be recorded as ``secret.opened`` (a dependency of the page
    routes).

    Only queued (``PageOpens``), and only once the answer has gone out (``deferred``): the
    lookup and writes happen after it, so the page costs the same whether or not the id is
    live, and a full queue drops the open.
    """
    route = request.scope.get("route")
    if request.method != "GET" or getattr(route, "path", None) != OPENED_PAGE:
        return
    opens: PageOpens | None = getattr(request.app.state, "page_opens", None)
    if opens is not None:
        secret_id, client = str(request.path_params.get("secret_id", "")), api.client_of(request)
        defer(lambda: opens.submit(secret_id, client))


class BurnlinkApp(FastAPI):
    """FastAPI with ``middleware.Edge`` in front of its whole stack rather than inside it.

    As a middleware Edge ran under Starlette's ``ServerErrorMiddleware`` and FastAPI's
    telemetry wrapper, which a hot route (``web.hot_routes``) paid for without needing. Now
    an HTTP request reaches Edge first, and FastAPI's stack only through ``behind_edge``;
    lifespan and websocket scopes go straight to FastAPI.
    """

    edge: Edge | None = None
    """Set by ``create_app``; until then requests go straight to FastAPI."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = self.edge
        if scope["type"] != "http" or edge is None:
            await FastAPI.__call__(self, scope, receive, send)
            return
        # What Starlette and FastAPI set before a middleware ran: the hot routes read both.
        scope["app"] = self
        if self.root_path:
            scope["root_path"] = self.root_path
        await edge(scope, receive, send)

    async def behind_edge(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own stack: what ``Edge`` hands every request it does not answer."""
        await FastAPI.__call__(self, scope, receive, send)


def create_app(
    settings: Settings,
    store: SecretStore | None = None,
    clock: Clock | None = None,
    *,
    geo: CountryResolver | None = None,
    mailer: Mailer | None = None,
    audit: AuditBackend | None = None,
    signing_key: Ed25519PrivateKey | None = None,
    resolver: Resolver = system_resolver,
    webhook_retry: RetryPolicy | None = None,
) -> FastAPI:
    """Build the app. Without ``store`` it opens ``settings.store`` on start-up and closes it
    on shutdown; with one (tests) the caller owns it, and the same holds for ``audit``. The
    sweeper runs while the app lives. ``geo``, ``mailer`` and ``signing_key`` default to what
    the settings name; ``resolver`` and ``webhook_retry`` are for tests of webhooks.
    """
    if mailer is None and settings.smtp_url is not None:
        mailer = SmtpMailer.from_url(settings.smtp_url.get_secret_value(), settings.smtp_from or "")
    metrics = Metrics()
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        retention = timedelta(days=settings.receipt_days)
        async with AsyncExitStack() as stack:
            opened = store or await open_store(settings.store, retention=retention)
            if store is None:
                stack.push_async_callback(opened.aclose)
            reporter = await open_reporter(
                settings,
                opened,
                metrics,
                audit=audit,
                resolver=resolver,
                retry=webhook_retry,
            )
            if audit is None and reporter.audit is not None:
                stack.push_async_callback(reporter.audit.aclose)
            stack.push_async_callback(reporter.aclose)
            app.state.service = SecretService(
                opened,
                settings,
                clock,
                geo=geo,
                mailer=mailer,
                reporter=reporter,
                signing_key=signing_key or keys.signing_key(settings),
            )
            app.state.requests = RequestService(app.state.service, mailer=mailer)
            app.state.admin = AdminConsole(settings, opened, reporter, clock)
            app.state.tokens = TokenService(
                opened, clock, fresh_seconds=settings.oidc_max_age, reporter=reporter
            )
            if settings.sign_in:
                app.state.signin = SignInService.from_settings(
                    settings,
                    opened,
                    clock=clock,
                    reporter=reporter,
                    access=app.state.service.access,
                )
                stack.push_async_callback(app.state.signin.aclose)
            page_opens = PageOpens(app.state.service.opened)
            app.state.page_opens = page_opens
            checkpoints = checkpoint_writer(settings, app.state.service, reporter, clock)
            async with anyio.create_task_group() as group:
                group.start_soon(run_sweeper, app.state.service, settings.sweep_interval)
                group.start_soon(page_opens.run)
                group.start_soon(reporter.sealer.run, SEAL_INTERVAL)
                if checkpoints is not None:
                    group.start_soon(checkpoints.run, settings.audit_checkpoint_interval)
                # Everything made so far (the app, its routes and schemas, the store's
                # clients) lives as long as the process: keep it out of every later garbage
                # collection, which otherwise walks it again and again under load.
                gc.freeze()
                # The server's lifespan state: its connections count their limits here.
                yield {APP_STATE_KEY: metrics}
                page_opens.close()
                with anyio.move_on_after(DRAIN_SECONDS):  # record the opens already queued
                    await page_opens.settled()
                group.cancel_scope.cancel()

    app = BurnlinkApp(
        title="burnlink",
        version=__version__,
        summary="Self-destructing, end-to-end encrypted links for sharing credentials.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # burnlink reports through /metrics and its own log line. FastAPI's native
        # OpenTelemetry would start exporting request attributes (paths hold secret ids) as
        # soon as some library configured a global provider, and costs a check per request.
        telemetry=_NO_TELEMETRY,
        # Starlette answers "/path/" with a redirect to an absolute URL built from the Host
        # header, whatever BURNLINK_BASE_URL says: a Host-chosen Location. Paths are exact.
        redirect_slashes=False,
    )
    app.state.metrics = metrics
    app.state.client_address = ClientAddress(
        parse_networks(settings.trusted_proxies, field="trusted_proxies"), settings.proxy_header
    )
    app.include_router(api.router)
    app.include_router(audit_api.router)
    app.include_router(admin_api.router)
    app.include_router(tokens_api.router)
    app.include_router(my_secrets_api.router)
    app.include_router(requests_api.router)
    app.include_router(ops.router)
    app.include_router(pages.router, dependencies=[Depends(record_page_open)])
    routers: tuple[APIRouter, ...] = (
        api.router,
        audit_api.router,
        admin_api.router,
        tokens_api.router,
        my_secrets_api.router,
        requests_api.router,
        ops.router,
        pages.router,
    )
    if settings.sign_in:
        # Off by default: without an issuer no route changes and no request pays for it.
        app.include_router(signin.router)
        app.include_router(signin.api_router)
        app.include_router(device_api.router)
        app.include_router(pages.me_router)
        routers += (signin.router, signin.api_router, device_api.router, pages.me_router)
    if settings.admin_groups:
        app.include_router(pages.admin_router)
        routers += (pages.admin_router,)
    if settings.slack_signing_secret is not None:
        from burnlink.web import slack

        app.include_router(slack.router)
        routers += (slack.router,)
    pages.mount_static(app)
    errors.install(app, [*app.router.routes, *(r for router in routers for r in router.routes)])
    described = app.openapi  # FastAPI's documented way to change the document

    def openapi() -> dict[str, Any]:
        service: SecretService | None = getattr(app.state, "service", None)
        return describe_limits(
            described(),
            settings,
            mail=None if service is None else service.recipient_verification,
            webhooks=None if service is None else service.notifications,
        )

    app.openapi = openapi  # type: ignore[method-assign]

    https = (settings.base_url or "").startswith("https://")
    app.edge = Edge(
        app.behind_edge,
        max_body=max_body(settings),
        hsts=https,
        allowed_hosts=AllowedHosts(settings.allowed_hosts),
        hot_routes=HotRoutes(app.exception_handlers),
    )
    return app


def app_from_environment() -> FastAPI:
    """The factory ``burnlink serve`` gives uvicorn: settings from ``BURNLINK_*``, and the
    JSON logs (``burnlink.logs``) at ``BURNLINK_LOG_LEVEL``."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
