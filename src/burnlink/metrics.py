"""Prometheus metrics: one ``Metrics`` object per app, with its own registry (no global state).

Every label takes its values from an enum defined here, so the number of series is fixed
and known up front; each labelled series is created at zero when ``Metrics`` is built, so
dashboards and alerts see it before the first event. Nothing here names a secret.

Several worker processes: each keeps its own counters, and a scrape of ``/metrics`` sees only
the process that answered it. Run one worker per scrape target, or use prometheus_client's
multiprocess mode (not wired in yet); see docs/audit.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from burnlink.models import EndReason

__all__ = [
    "APP_STATE_KEY",
    "CONTENT_TYPE",
    "REVEAL_BUCKETS",
    "ConnectionLimit",
    "DeliveryResult",
    "DeniedReason",
    "DropReason",
    "Metrics",
    "StoreName",
    "WebhookFailure",
    "WebhookQueue",
    "render",
]

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
"""The ``Content-Type`` of ``render``'s output: Prometheus text format 0.0.4, which every
Prometheus version reads (what prometheus_client itself serves when no format is asked for)."""

APP_STATE_KEY: Final = "burnlink.metrics"
"""Where the app's lifespan state holds its ``Metrics``: the HTTP server's connections
(``web.connections``), which no request reaches, count there."""

REVEAL_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; the upper buckets cover reveals that run the passphrase KDF on the server."""


class DeniedReason(StrEnum):
    """Why an access was refused (``burnlink_access_denied_total{reason}``)."""

    PASSPHRASE = "passphrase"  # noqa: S105 - a label value
    KEY = "key"
    OTP = "otp"
    IP = "ip"
    GEO = "geo"
    IDENTITY = "identity"
    """A signed-in user who is not one of a secret's recipients (or lacks its MFA)."""
    RATE_LIMITED = "rate_limited"
    ADMIN = "admin"
    """A wrong admin token."""


class StoreName(StrEnum):
    """Which store failed (``burnlink_store_errors_total{store}``)."""

    SECRETS = "secrets"
    AUDIT = "audit"


class WebhookFailure(StrEnum):
    """Why one webhook attempt failed (``burnlink_webhook_failures_total{reason}``)."""

    REFUSED = "refused"
    """The URL or an address it resolves to is not allowed (not retried)."""
    UNRESOLVED = "unresolved"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    REDIRECT = "redirect"
    """The receiver answered 3xx; redirects are never followed (not retried)."""
    CLIENT_ERROR = "http_4xx"
    SERVER_ERROR = "http_5xx"
    ERROR = "error"
    """Any other transport error."""
    DROPPED = "dropped"
    """Given up: the queue or destination was full, the deadline passed, or shutdown
    (``burnlink_webhook_dropped_total`` says which)."""


class DeliveryResult(StrEnum):
    """How a webhook delivery ended (``burnlink_webhook_deliveries_total{result}``)."""

    DELIVERED = "delivered"
    FAILED = "failed"
    """Every attempt failed, or a failure that is not retried."""
    DROPPED = "dropped"


class WebhookQueue(StrEnum):
    """Which dispatcher a webhook went through (``burnlink_webhook_dropped_total{queue}``)."""

    NOTIFY = "notify"
    """Secrets' ``notify_url``: destinations chosen by senders."""
    ALERTS = "alerts"
    """``BURNLINK_ALERT_URL``: the operator's, never behind a sender's webhook."""


class DropReason(StrEnum):
    """Why a webhook was given up without being delivered (``..._dropped_total{reason}``)."""

    QUEUE_FULL = "queue_full"
    """The dispatcher already held its most deliveries."""
    DESTINATION_FULL = "destination_full"
    """The destination (host and port) already had its most deliveries waiting."""
    DEADLINE = "deadline"
    """The delivery's total time (waiting, every attempt and backoff) ran out."""
    SHUTDOWN = "shutdown"
    """The server was stopping."""


class ConnectionLimit(StrEnum):
    """Which limit of a connection answered or closed it (``burnlink_connection_limits_total``,
    and ``limit`` in the request log; docs/operations.md)."""

    HEADER_TIMEOUT = "header_timeout"
    """408: a request's head did not arrive within ``BURNLINK_HEADER_TIMEOUT``."""
    BODY_TIMEOUT = "body_timeout"
    """408: the body stopped arriving for ``BURNLINK_BODY_TIMEOUT``."""
    HEADER_TOO_LARGE = "header_too_large"
    """431: the head passed ``BURNLINK_MAX_HEADER_BYTES`` or ``BURNLINK_MAX_HEADERS``."""
    TOO_MANY_CONNECTIONS = "too_many_connections"
    """503: at ``BURNLINK_MAX_CONNECTIONS`` with every connection being answered."""
    SHED = "shed"
    """Closed without an answer to make room for a newcomer at the cap."""
    SEND_TIMEOUT = "send_timeout"
    """Closed: the client left its answer unread for ``BURNLINK_SEND_TIMEOUT``."""


class Metrics:
    """The counters and histograms of one burnlink app, in their own ``CollectorRegistry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create every metric in ``registry`` (a new one by default)."""
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.secrets_created = Counter("burnlink_secrets_created", "Secrets stored.", registry=r)
        self.secrets_revealed = Counter(
            "burnlink_secrets_revealed", "Successful reveals (views used).", registry=r
        )
        self.secrets_ended = Counter(
            "burnlink_secrets_ended",
            "Secrets that ended, by how: viewed (last view), burned (by the sender), "
            "locked (too many failed attempts), expired.",
            ["reason"],
            registry=r,
        )
        self.access_denied = Counter(
            "burnlink_access_denied",
            "Refused reveals and page views, by reason.",
            ["reason"],
            registry=r,
        )
        self.reveal_seconds = Histogram(
            "burnlink_reveal_duration_seconds",
            "Time to answer a reveal, successful or not.",
            buckets=REVEAL_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "burnlink_store_errors",
            "Operations that failed because a store was unavailable.",
            ["store"],
            registry=r,
        )
        self.webhook_failures = Counter(
            "burnlink_webhook_failures",
            "Failed webhook attempts, by reason (a delivery may fail several times).",
            ["reason"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "burnlink_webhook_deliveries",
            "Webhook deliveries by final result.",
            ["result"],
            registry=r,
        )
        self.webhook_drops = Counter(
            "burnlink_webhook_dropped",
            "Webhooks given up without being delivered, by queue and reason.",
            ["queue", "reason"],
            registry=r,
        )
        self.alerts = Counter("burnlink_alerts", "Alert events raised.", registry=r)
        self.connection_limits = Counter(
            "burnlink_connection_limits",
            "Connections a limit answered (408, 431, 503) or closed, by which limit.",
            ["reason"],
            registry=r,
        )
        for limit in ConnectionLimit:
            self.connection_limits.labels(limit.value)
        for end in EndReason:
            self.secrets_ended.labels(end.value)
        for denied in DeniedReason:
            self.access_denied.labels(denied.value)
        for store in StoreName:
            self.store_errors.labels(store.value)
        for failure in WebhookFailure:
            self.webhook_failures.labels(failure.value)
        for result in DeliveryResult:
            self.webhook_deliveries.labels(result.value)
        for queue in WebhookQueue:
            for drop in DropReason:
                self.webhook_drops.labels(queue.value, drop.value)

    def secret_created(self) -> None:
        """Count a stored secret."""
        self.secrets_created.inc()

    def secret_revealed(self, seconds: float) -> None:
        """Count a successful reveal and record how long it took."""
        self.secrets_revealed.inc()
        self.reveal_seconds.observe(seconds)

    def secret_viewed(self) -> None:
        """Count a successful reveal whose duration is recorded apart (``reveal_took``)."""
        self.secrets_revealed.inc()

    def reveal_took(self, seconds: float) -> None:
        """Record the duration of a reveal that did not succeed."""
        self.reveal_seconds.observe(seconds)

    def secret_ended(self, reason: EndReason, count: int = 1) -> None:
        """Count secrets that ended (``count`` at once for a sweep of expired ones)."""
        if count > 0:
            self.secrets_ended.labels(EndReason(reason).value).inc(count)

    def denied(self, reason: DeniedReason) -> None:
        """Count a refused access."""
        self.access_denied.labels(DeniedReason(reason).value).inc()

    def store_error(self, store: StoreName) -> None:
        """Count an operation that failed with ``StorageUnavailable``."""
        self.store_errors.labels(StoreName(store).value).inc()

    def webhook_failed(self, reason: WebhookFailure) -> None:
        """Count one failed webhook attempt."""
        self.webhook_failures.labels(WebhookFailure(reason).value).inc()

    def webhook_done(self, result: DeliveryResult) -> None:
        """Count a finished webhook delivery."""
        self.webhook_deliveries.labels(DeliveryResult(result).value).inc()

    def webhook_dropped(self, queue: WebhookQueue, reason: DropReason) -> None:
        """Count a webhook given up without being delivered."""
        self.webhook_drops.labels(WebhookQueue(queue).value, DropReason(reason).value).inc()

    def alert(self) -> None:
        """Count an alert event."""
        self.alerts.inc()

    def connection_limited(self, limit: ConnectionLimit) -> None:
        """Count a connection a limit answered or closed."""
        self.connection_limits.labels(ConnectionLimit(limit).value).inc()


def render(metrics: Metrics) -> tuple[bytes, str]:
    """The text exposition of ``metrics`` and its ``Content-Type``, for ``GET /metrics``."""
    return generate_latest(metrics.registry), CONTENT_TYPE
