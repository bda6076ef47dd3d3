"""Webhooks: tell the sender's systems (Slack, a SIEM, a script) what happened to a secret.

Signing follows Standard Webhooks (https://www.standardwebhooks.com/): each request carries
``webhook-id`` (the same on every retry), ``webhook-timestamp`` (Unix seconds of the attempt)
and ``webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``, where
the secret is the base64 after ``whsec_``. Any Standard Webhooks verifier checks it (the
tests use the reference ``standardwebhooks`` package).

The body is JSON: ``type``, ``timestamp``, ``data`` (secret id, client address, country,
agent class and name, outcome) and a Slack-compatible ``text``. It never holds content,
tokens, passphrases or the user agent string.

Delivery
    ``WebhookDispatcher.enqueue`` returns at once; a background task per delivery checks the
    URL (``netguard.pin``: no internal addresses, no user info), connects to the pinned
    address with ``Host`` and TLS SNI set to the URL's host, follows no redirects, and retries
    timeouts, connection errors, 408, 429 and 5xx with exponential backoff up to a bounded
    number of attempts. Refusals, redirects and other 4xx are not retried. Failures are
    counted in ``metrics`` and logged with the host only (URLs may hold tokens).

Isolation
    Senders choose ``notify_url``, so a destination may be a tarpit. Each destination
    (``host:port``) gets a share of the queue and of the connections, each attempt is bounded
    as a whole and each delivery by a total deadline, and names are looked up on threads of
    the dispatcher's own. Operator alerts use a dispatcher of their own (``WebhookQueue``).
    What is given up is counted by reason (``DropReason``) and passed to ``on_drop``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

import httpx

from burnlink import __version__
from burnlink.audit.events import AuditEvent, AuditEventType, canonical_json, format_time
from burnlink.clock import Clock, SystemClock
from burnlink.errors import InvalidInput
from burnlink.events import ROUTES
from burnlink.metrics import DeliveryResult, DropReason, Metrics, WebhookFailure, WebhookQueue
from burnlink.netguard import (
    AllowList,
    PinnedTarget,
    Resolver,
    ThreadedResolver,
    UnresolvableHost,
    UnsafeUrl,
    canonical_host,
    check_url,
    pin,
)
from burnlink.useragents import classify

__all__ = [
    "SECRET_PREFIX",
    "Deliverable",
    "Delivery",
    "DropHandler",
    "RetryPolicy",
    "WebhookDispatcher",
    "WebhookEndpoint",
    "WebhookMessage",
    "new_webhook_secret",
    "parse_webhook_secret",
    "pinned_request",
    "sign",
]

LOG = logging.getLogger(__name__)

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
MIN_SECRET_BYTES: Final = 24
MAX_SECRET_BYTES: Final = 64
USER_AGENT: Final = f"burnlink-webhooks/{__version__}"

_RETRY_STATUSES: Final = frozenset({408, 429})


def parse_webhook_secret(text: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret (the prefix is optional).

    Raises ``InvalidInput`` unless it decodes to 24 to 64 bytes.
    """
    value = text.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidInput("webhook_secret", "must be whsec_ followed by 24 to 64 bytes in base64")
    return key


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and base64 HMAC-SHA256 of ``id.timestamp.body``."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """Where to send, and the key to sign with. Neither appears in ``repr`` or logs."""

    url: str = field(repr=False)
    key: bytes = field(repr=False)

    @classmethod
    def parse(cls, url: str, secret: str) -> WebhookEndpoint:
        """Check the URL's form (``UnsafeUrl``, no DNS) and the secret (``InvalidInput``)."""
        check_url(url)
        return cls(url=url, key=parse_webhook_secret(secret))

    @property
    def host(self) -> str:
        """The URL's host: what logs may name."""
        try:
            return check_url(self.url)[1]
        except UnsafeUrl:
            return "(invalid URL)"

    @property
    def destination(self) -> str:
        """``host:port``: what a dispatcher shares out its queue and connections by, with
        the host in one spelling (``canonical_host``), so that ``EXAMPLE.com.`` and
        ``example.com`` share one budget."""
        try:
            _, host, port = check_url(self.url)
        except UnsafeUrl:
            return "(invalid URL)"
        return f"{canonical_host(host)}:{port}"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Deliverable(Protocol):
    """What the dispatcher sends: an id (``webhook-id``) and the exact body bytes."""

    @property
    def id(self) -> str:
        """Unique per message, the same for each retry."""
        ...

    def body(self) -> bytes:
        """The exact bytes sent and signed."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookMessage:
    """What one webhook says. Build it with ``from_event``."""

    id: str
    """``webhook-id``: unique per message, the same for each retry."""
    type: AuditEventType
    at: datetime
    secret_id: str | None = None
    client_ip: str | None = None
    country: str | None = None
    agent_class: str | None = None
    agent_name: str | None = None
    outcome: str | None = None
    actor_subject: str | None = None
    """The signed-in user who acted; ``None`` (and no ``actor`` member) when anonymous."""
    actor_email: str | None = None

    @classmethod
    def from_event(cls, event: AuditEvent, *, secret_id: str | None = None) -> WebhookMessage:
        """The message for an audit event; ``secret_id`` is the id the event's hash names."""
        agent = classify(event.user_agent) if event.user_agent else None
        return cls(
            id="msg_" + secrets.token_urlsafe(16),
            type=event.type,
            at=event.at,
            secret_id=secret_id,
            client_ip=event.client_ip,
            country=event.country,
            agent_class=None if agent is None else agent.kind.value,
            agent_name=None if agent is None else agent.name,
            outcome=event.outcome.value,
            actor_subject=event.actor_subject,
            actor_email=event.actor_email,
        )

    def text(self) -> str:
        """One line for chat, with Slack's ``&``, ``<``, ``>`` escaped."""
        noun = "Request" if self.type.value.startswith("request.") else "Secret"
        subject = f"{noun} `{self.secret_id}`" if self.secret_id else "burnlink"
        verb = ROUTES[self.type].verb if self.type in ROUTES else self.type.value
        where = ""
        if self.client_ip:
            where = f" from {self.client_ip}" + (f" ({self.country})" if self.country else "")
        by = f" by {self.agent_name}" if self.agent_class not in {None, "browser"} else ""
        if self.actor_subject is not None:
            by = f" by {self.actor_email or self.actor_subject}"
        return _slack_escape(f"{subject} {verb}{where}{by}.")

    def payload(self) -> dict[str, Any]:
        """The JSON body as a dict (``data.actor`` only for a signed-in user's action)."""
        data: dict[str, Any] = {
            "secret_id": self.secret_id,
            "client_ip": self.client_ip,
            "country": self.country,
            "agent": {"class": self.agent_class, "name": self.agent_name},
            "outcome": self.outcome,
        }
        if self.actor_subject is not None:
            data["actor"] = {"subject": self.actor_subject, "email": self.actor_email}
        route = ROUTES.get(self.type)
        if self.type.value.startswith("request."):
            # A request's id is also its answer's: the secret the requester opens.
            data["request_id"] = self.secret_id
        return {
            "type": route.webhook if route is not None and route.webhook else self.type.value,
            "timestamp": format_time(self.at),
            "data": data,
            "text": self.text(),
        }

    def body(self) -> bytes:
        """The exact bytes sent and signed."""
        return canonical_json(self.payload())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry: ``first_delay * factor**n``, capped."""

    attempts: int = 5
    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.first_delay * self.factor ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a delivery ended."""

    result: DeliveryResult
    attempts: int
    status: int | None = None
    """The last HTTP status received, if any."""
    failure: WebhookFailure | None = None
    """Why the last attempt failed, if it did."""


def pinned_request(
    client: httpx.AsyncClient, target: PinnedTarget, *, headers: dict[str, str], body: bytes
) -> httpx.Request:
    """A POST to the pinned address that still says ``Host: <name>`` and uses SNI ``<name>``."""
    extensions: dict[str, Any] = {}
    if target.sni_hostname is not None:
        extensions["sni_hostname"] = target.sni_hostname
    return client.build_request(
        "POST",
        target.connect_url,
        headers={**headers, "Host": target.host_header},
        content=body,
        extensions=extensions,
    )


DropHandler = Callable[["WebhookEndpoint", Deliverable, DropReason], None]
"""Told of every webhook a dispatcher gives up (the reporter audits it). Must not raise."""


@dataclass(slots=True)
class _Destination:
    """One destination's share of a dispatcher: its deliveries and its connection slots."""

    slots: asyncio.Semaphore
    deliveries: int = 0


class WebhookDispatcher:
    """Sends webhooks in the background, retrying with backoff; never blocks its caller.

    Each destination (a URL's host and port) gets its own share: at most
    ``max_pending_per_destination`` deliveries waiting or running and
    ``concurrency_per_destination`` requests in flight, so a destination that answers slowly
    or never (a tarpit) holds only its own share, not the slots of the others. Each
    delivery has a total ``deadline``. Whatever is given up is counted
    (``burnlink_webhook_dropped_total{queue,reason}``) and passed to ``on_drop``.
    """

    def __init__(
        self,
        *,
        queue: WebhookQueue = WebhookQueue.NOTIFY,
        allow: AllowList | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 5.0,
        deadline: float = 60.0,
        max_pending: int = 1000,
        max_pending_per_destination: int = 50,
        concurrency: int = 32,
        concurrency_per_destination: int = 2,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """Configure; nothing connects until the first delivery.

        ``queue`` names this dispatcher in metrics; ``allow`` is ``BURNLINK_WEBHOOK_ALLOW``;
        ``timeout`` bounds each attempt as a whole (name lookup, connect, every byte of the
        answer; connect alone is capped at 3 s); ``deadline`` bounds a delivery (waiting for
        a slot, every attempt and the backoff between them). At most ``max_pending``
        deliveries wait or run at once, ``max_pending_per_destination`` of them for one
        destination, and more are dropped; ``concurrency`` requests are in flight at a time,
        ``concurrency_per_destination`` to one destination. Names are looked up with
        ``resolver``, by default on ``concurrency`` threads of the dispatcher's own
        (``ThreadedResolver``), so that slow names never hold threads others need; a
        ``ThreadedResolver`` passed in is closed with the dispatcher too.
        """
        self.queue = queue
        self.on_drop: DropHandler | None = None
        """Called for each webhook given up (after it is counted); set by the reporter."""
        self._allow = allow or AllowList()
        self._clock = clock or SystemClock()
        self._metrics = metrics
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._deadline = deadline
        self._max_pending = max_pending
        self._max_per_destination = max_pending_per_destination
        self._per_destination = concurrency_per_destination
        self._resolver = resolver or ThreadedResolver(concurrency, name=f"burnlink-{queue}-dns")
        self._semaphore = asyncio.Semaphore(concurrency)
        self._destinations: dict[str, _Destination] = {}
        self._tasks: dict[asyncio.Task[Delivery], tuple[WebhookEndpoint, Deliverable]] = {}
        self._closed = False
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would bypass the pinned address
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            verify=verify,
            headers={"User-Agent": USER_AGENT},
        )

    @property
    def pending(self) -> int:
        """Deliveries queued or running."""
        return len(self._tasks)

    def enqueue(self, endpoint: WebhookEndpoint, message: Deliverable) -> bool:
        """Start delivering ``message`` in the background; ``False`` if dropped (closing, the
        dispatcher full, or the destination's share full).

        Must be called from the event loop's thread.
        """
        destination = endpoint.destination
        share = self._share(destination)
        if self._closed:
            reason: DropReason | None = DropReason.SHUTDOWN
        elif len(self._tasks) >= self._max_pending:
            reason = DropReason.QUEUE_FULL
        elif share.deliveries >= self._max_per_destination:
            reason = DropReason.DESTINATION_FULL
        else:
            reason = None
        if reason is not None:
            self._release(destination, share)
            self._dropped(endpoint, message, reason)
            return False
        share.deliveries += 1  # counted now: a burst is enqueued before any task runs
        task = asyncio.get_running_loop().create_task(
            self._run(endpoint, message, share), name="burnlink-webhook"
        )
        self._tasks[task] = (endpoint, message)
        task.add_done_callback(self._forget)
        return True

    def _forget(self, task: asyncio.Task[Delivery]) -> None:
        self._tasks.pop(task, None)

    async def join(self) -> None:
        """Wait until every delivery started so far has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self, *, grace: float = 10.0) -> None:
        """Stop accepting, give running deliveries ``grace`` seconds, cancel the rest."""
        self._closed = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            cancelled = [(task, self._tasks[task]) for task in pending]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                LOG.warning("%d webhook deliveries cancelled at shutdown", len(pending))
                for _, (endpoint, message) in cancelled:
                    self._dropped(endpoint, message, DropReason.SHUTDOWN)
        await self._client.aclose()
        if isinstance(self._resolver, ThreadedResolver):
            self._resolver.close()

    async def _run(
        self, endpoint: WebhookEndpoint, message: Deliverable, share: _Destination
    ) -> Delivery:
        try:
            return await self._within_deadline(endpoint, message, share)
        except Exception as exc:  # noqa: BLE001 - a background task must log, not die silently
            LOG.error("%s webhook crashed: %s", self.queue.value, type(exc).__name__)
            self._count(WebhookFailure.ERROR)
            self._done(DeliveryResult.FAILED)
            return Delivery(DeliveryResult.FAILED, 0, None, WebhookFailure.ERROR)
        finally:
            share.deliveries -= 1
            self._release(endpoint.destination, share)

    async def deliver(self, endpoint: WebhookEndpoint, message: Deliverable) -> Delivery:
        """Deliver now, retrying as configured, within the deadline; return how it ended
        (never raises)."""
        share = self._share(endpoint.destination)
        share.deliveries += 1
        try:
            return await self._within_deadline(endpoint, message, share)
        finally:
            share.deliveries -= 1
            self._release(endpoint.destination, share)

    async def _within_deadline(
        self, endpoint: WebhookEndpoint, message: Deliverable, share: _Destination
    ) -> Delivery:
        tried: list[int] = []
        try:
            async with asyncio.timeout(self._deadline):
                return await self._deliver(endpoint, message, share, tried)
        except TimeoutError:
            self._dropped(endpoint, message, DropReason.DEADLINE)
            return Delivery(DeliveryResult.DROPPED, len(tried), None, WebhookFailure.DROPPED)

    async def _deliver(
        self,
        endpoint: WebhookEndpoint,
        message: Deliverable,
        share: _Destination,
        tried: list[int],
    ) -> Delivery:
        body = message.body()
        attempts = max(1, self._retry.attempts)
        for attempt in range(1, attempts + 1):
            tried.append(attempt)
            # The destination's slot first: waiting for a busy destination holds no slot
            # that another destination could use.
            async with share.slots, self._semaphore:
                failure, status, retryable = await self._attempt(endpoint, message.id, body)
            if failure is None:
                self._done(DeliveryResult.DELIVERED)
                return Delivery(DeliveryResult.DELIVERED, attempt, status)
            self._count(failure)
            LOG.warning(
                "webhook to %s failed: %s%s (attempt %d of %d)",
                endpoint.host,
                failure.value,
                f" {status}" if status else "",
                attempt,
                attempts,
            )
            if not retryable or attempt == attempts:
                self._done(DeliveryResult.FAILED)
                return Delivery(DeliveryResult.FAILED, attempt, status, failure)
            await asyncio.sleep(self._retry.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self, endpoint: WebhookEndpoint, msg_id: str, body: bytes
    ) -> tuple[WebhookFailure | None, int | None, bool]:
        """One attempt: ``(failure or None, HTTP status, whether to retry)``."""
        try:
            async with asyncio.timeout(self._timeout):
                target = await pin(endpoint.url, self._allow, resolver=self._resolver)
        except UnsafeUrl:
            return WebhookFailure.REFUSED, None, False
        except (UnresolvableHost, TimeoutError):
            return WebhookFailure.UNRESOLVED, None, True
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.key, msg_id, timestamp, body),
        }
        request = pinned_request(self._client, target, headers=headers, body=body)
        try:
            # httpx's timeouts are per read: a receiver sending a byte a second never trips
            # them. This bounds the attempt as a whole.
            async with asyncio.timeout(self._timeout):
                response = await self._client.send(request, stream=True)
                await response.aclose()  # the body is never read
        except (httpx.TimeoutException, TimeoutError):
            return WebhookFailure.TIMEOUT, None, True
        except httpx.ConnectError:
            return WebhookFailure.CONNECT, None, True
        except httpx.HTTPError:
            return WebhookFailure.ERROR, None, True
        status = response.status_code
        if 200 <= status < 300:
            return None, status, False
        if 300 <= status < 400:
            return WebhookFailure.REDIRECT, status, False
        if status >= 500:
            return WebhookFailure.SERVER_ERROR, status, True
        return WebhookFailure.CLIENT_ERROR, status, status in _RETRY_STATUSES

    def _share(self, destination: str) -> _Destination:
        share = self._destinations.get(destination)
        if share is None:
            share = _Destination(asyncio.Semaphore(self._per_destination))
            self._destinations[destination] = share
        return share

    def _release(self, destination: str, share: _Destination) -> None:
        # A destination's share lives while it has deliveries: the map cannot grow without
        # bound however many hosts senders name.
        if share.deliveries == 0 and self._destinations.get(destination) is share:
            del self._destinations[destination]

    def _dropped(self, endpoint: WebhookEndpoint, message: Deliverable, reason: DropReason) -> None:
        self._count(WebhookFailure.DROPPED)
        self._done(DeliveryResult.DROPPED)
        if self._metrics is not None:
            self._metrics.webhook_dropped(self.queue, reason)
        LOG.warning("%s webhook dropped: %s", self.queue.value, reason.value)
        if self.on_drop is not None:
            self.on_drop(endpoint, message, reason)

    def _count(self, failure: WebhookFailure) -> None:
        if self._metrics is not None:
            self._metrics.webhook_failed(failure)

    def _done(self, result: DeliveryResult) -> None:
        if self._metrics is not None:
            self._metrics.webhook_done(result)
