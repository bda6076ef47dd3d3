"""The Reporter: how ``SecretService`` records what happened, and what follows from it.

``happened`` builds an action's event (``events``) once: the audit event, the receipt's line
and the outbox record the store keeps with the change (``audit.outbox``). The service passes
it to the store call that makes the change, so the event is recorded in the same atomic
operation or not at all, and the ``Sealer`` moves it into the audit log in the background.
``publish`` does what follows an event that took effect: metrics, the secret's webhook
(``notify_url``), alert rules, and for an alert the webhook to ``BURNLINK_ALERT_URL``.
``emit`` records an event that changes no secret (a refusal, an observation) and publishes
it; ``ROUTES`` says which receipt line, metric and webhook each type gets.

Recorded by construction
    A view, a counted passphrase attempt, a burn, a lockout or a create is one store
    operation with its event: a view that was taken has its event, an event that was not
    written means no view. An audit log that does not answer delays sealing, never an
    action (see ``audit.sealer``). Refusals and observations (wrong link, refused address or
    country, rate limits, wrong code, a link page opened) are recorded the same way, but a
    store failure there is logged and counted, never raised: the refusal stands as it is.

Never blocking
    Webhooks are only enqueued (``WebhookDispatcher`` delivers in the background), and a
    failing alert rule or counter is logged, never raised. Alerts go through a dispatcher of
    their own: no ``notify_url`` a sender picks can delay or crowd out an operator's alert.
    A webhook that is given up (``DropReason``) is recorded as ``webhook.dropped``.
    ``later`` runs a report in the background, so that answering a wrong link for a live
    secret takes no longer than for an unknown id; ``join`` waits for those and for the
    sealer (tests, shutdown).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Final

from burnlink.audit import AuditBackend, Watched
from burnlink.audit.events import (
    AuditEvent,
    AuditEventType,
    Outcome,
    RequestInfo,
    Scalar,
    audit_event,
    format_time,
    list_label,
)
from burnlink.audit.export import JsonLinesSink
from burnlink.audit.outbox import OutboxRecord, WrittenRecords
from burnlink.audit.sealer import Sealer
from burnlink.clock import Clock, SystemClock
from burnlink.errors import AuditUnavailable, BurnlinkError, InvalidInput, StorageError
from burnlink.events import ROUTES
from burnlink.metrics import DropReason, Metrics, StoreName, WebhookQueue
from burnlink.models import AccessPolicy, ClientInfo, EndReason, Event, Viewer
from burnlink.netguard import (
    AllowList,
    Resolver,
    UnresolvableHost,
    UnsafeUrl,
    check_url,
    pin,
    system_resolver,
)
from burnlink.policy import mask_email
from burnlink.service.alerts import Alert, AlertRules
from burnlink.service.deferred import defer
from burnlink.store import Recorded, SecretStore
from burnlink.webhooks import Deliverable, WebhookDispatcher, WebhookEndpoint, WebhookMessage

__all__ = ["NOTIFIED", "NOTIFY_URL_REFUSED", "Reporter", "policy_labels", "request_info"]

log = logging.getLogger("burnlink.audit")

NOTIFIED = frozenset(t for t, r in ROUTES.items() if r.notify)
"""Events that go to a secret's ``notify_url``."""

NOTIFY_URL_REFUSED: Final = "must reach a public address (or one BURNLINK_WEBHOOK_ALLOW lists)"
"""The one answer for a ``notify_url`` whose host is internal, does not resolve, or does not
answer the lookup in time: which of these it was would map the server's network."""

DROP_RECORDS_GRACE: Final = 5.0
"""Seconds ``aclose`` gives at least to recording the webhooks it cancelled."""

NOTIFY_URL_LOOKUP: Final = 5.0
"""Seconds the create request waits for a ``notify_url``'s name lookup."""

MAX_USER_AGENT_CHARS: Final = 256
"""A receipt line keeps this much of a user agent."""


def policy_labels(policy: AccessPolicy) -> dict[str, Scalar]:
    """A secret's access rules as an audit event's ``policy``: lists cut to fit, the
    recipient's address masked, never the ``notify_url`` (it may hold a token)."""
    labels: dict[str, Scalar] = {}
    for name in ("allowed_ips", "allowed_countries", "denied_countries"):
        values: tuple[str, ...] = getattr(policy, name)
        if values:
            text = ",".join(values)
            labels[name] = text if len(text) <= 200 else text[:197] + "..."
    if policy.recipient_email is not None:
        labels["recipient"] = mask_email(policy.recipient_email)
    if policy.recipients:
        labels["recipients"] = recipients_label(policy.recipients)
    if policy.require_mfa:
        labels["require_mfa"] = True
    return labels


def recipients_label(recipients: tuple[str, ...]) -> str | None:
    """A secret's ``recipients`` as one audit value, email entries masked as
    ``recipient_email`` is (``b***@example.com``); groups and domains as they are."""
    shown = [e if e.startswith(("group:", "domain:")) else mask_email(e) for e in recipients]
    return list_label(shown)


def request_info(client: ClientInfo | None) -> RequestInfo:
    """What an audit event records of a client."""
    if client is None:
        return RequestInfo()
    return RequestInfo(client.ip, client.country, client.user_agent, client.request_id)


class Reporter:
    """Fans the service's events out; see the module docstring."""

    def __init__(
        self,
        audit: AuditBackend | None = None,
        *,
        store: SecretStore | None = None,
        metrics: Metrics | None = None,
        sink: JsonLinesSink | None = None,
        webhooks: WebhookDispatcher | None = None,
        webhook_key: bytes | None = None,
        alert_url: str | None = None,
        alerts: WebhookDispatcher | None = None,
        allow: AllowList | None = None,
        resolver: Resolver = system_resolver,
        rules: AlertRules | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Events are recorded in ``store`` (``SecretService`` gives its own when this is
        ``None``) and sealed into ``audit``; without ``audit`` nothing is sealed (a service
        used as a library, or a test);
        without ``webhooks`` and ``webhook_key`` nothing is sent. ``alerts`` delivers to
        ``alert_url``: a dispatcher of its own (``ValueError`` without one when ``webhooks``
        is given). ``clock`` dates ``webhook.dropped`` (the wall clock by default: drops
        happen in real time)."""
        self.audit = audit
        self.metrics = metrics or Metrics()
        self.sink = sink
        self._store = store
        self._sealer: Sealer | None = None
        self._written = WrittenRecords() if audit is not None else None
        """The records recorded here lately, which this reporter's sealer need not decode."""
        self.webhooks = webhooks
        self.webhook_key = webhook_key
        self.alert_url = alert_url
        self.allow = allow or AllowList()
        self.resolver = resolver
        self.rules = rules
        self.clock = clock or SystemClock()
        if alert_url is not None and webhooks is not None and alerts is None:
            # Falling back to the senders' dispatcher is what let a tarpit silence alerts.
            raise ValueError("alert_url needs its own dispatcher (alerts=)")
        self.alerts = alerts
        for dispatcher in (webhooks, alerts):
            if dispatcher is not None:
                dispatcher.on_drop = functools.partial(self._webhook_dropped, dispatcher.queue)
        self._background: set[asyncio.Task[None]] = set()

    # -- recording ---------------------------------------------------------------------------

    @property
    def store(self) -> SecretStore:
        """The store events are recorded in."""
        if self._store is None:
            raise RuntimeError("the reporter has no store yet")
        return self._store

    def attach(self, store: SecretStore) -> None:
        """Record events in ``store`` unless the reporter was given one."""
        if self._store is None:
            self._store = store

    @property
    def sealer(self) -> Sealer:
        """The sealer of this reporter's store into its audit log."""
        if self._sealer is None:
            self._sealer = Sealer(
                self.store, self.audit, sink=self.sink, metrics=self.metrics, written=self._written
            )
        return self._sealer

    def happened(
        self,
        type: AuditEventType,
        *,
        at: datetime,
        secret_id: str | None = None,
        client: ClientInfo | RequestInfo | None = None,
        outcome: Outcome | None = None,
        policy: Mapping[str, Scalar] | None = None,
        detail: Mapping[str, Scalar] | None = None,
        watch: Watched | None = None,
        unwatch: str | None = None,
        actor: tuple[str, str | None] | None = None,
        viewer: Viewer | None = None,
    ) -> tuple[AuditEvent, Recorded]:
        """An action's event, and what the store keeps of it: the receipt's line (``ROUTES``)
        and the outbox record, with the expiry-watch change it implies. ``actor`` is the
        signed-in user who acted, as ``(subject, email)``; ``viewer`` is the signed-in
        recipient the receipt's line names (only its sender sees it)."""
        info = client if isinstance(client, RequestInfo) else request_info(client)
        event = audit_event(
            type,
            at=at,
            secret_id=secret_id,
            outcome=outcome,
            request=info,
            policy=policy,
            detail=detail,
            actor=actor,
        )
        kind = ROUTES[type].receipt
        line = None
        if kind is not None and secret_id is not None:
            agent = info.user_agent[:MAX_USER_AGENT_CHARS] if info.user_agent else None
            line = Event(at=at, kind=kind, ip=info.client_ip, user_agent=agent, viewer=viewer)
        record = OutboxRecord(event, watch=watch, unwatch=unwatch, canonical=event.canonical())
        data = record.to_bytes()
        if self._written is not None:
            self._written.keep(record, data)
        return event, Recorded(line, data)

    def expect_views(self, data: bytes, head: bytes, tail: bytes) -> None:
        """The record ``happened`` gave as ``data`` (a view's, with ``max_views`` 0) is to be
        stored as ``head``, the secret's ``max_views`` and ``tail`` (``store.ViewRecord``):
        so the sealer still takes it as built (``outbox.WrittenRecords``)."""
        if self._written is not None:
            self._written.expect_views(data, head, tail)

    def recorded(self) -> None:
        """Tell the sealer that the store holds new events."""
        if self._sealer is not None:
            self._sealer.wake()

    async def emit(
        self,
        type: AuditEventType,
        *,
        at: datetime,
        secret_id: str | None = None,
        client: ClientInfo | RequestInfo | None = None,
        outcome: Outcome | None = None,
        policy: Mapping[str, Scalar] | None = None,
        detail: Mapping[str, Scalar] | None = None,
        notify_url: str | None = None,
        actor: tuple[str, str | None] | None = None,
        viewer: Viewer | None = None,
    ) -> AuditEvent:
        """Record an event that changes no secret (on its receipt too, when it has a line,
        naming ``viewer``), then ``publish`` it. A store failure is logged and counted, never
        raised."""
        event, recorded = self.happened(
            type,
            at=at,
            secret_id=secret_id,
            client=client,
            outcome=outcome,
            policy=policy,
            detail=detail,
            actor=actor,
            viewer=viewer,
        )
        try:
            await self.store.record(secret_id, [recorded])
        except StorageError:
            self.metrics.store_error(StoreName.SECRETS)
            log.error("event not recorded: %s (the store failed)", type.value)
        else:
            self.recorded()
        await self.publish(event, secret_id=secret_id, notify_url=notify_url)
        return event

    async def publish(
        self,
        event: AuditEvent,
        *,
        secret_id: str | None = None,
        notify_url: str | None = None,
        creator_country: str | None = None,
        last_view: bool = False,
    ) -> None:
        """Metrics, the secret's webhook, alert rules. Never raises for a failing part."""
        self._count(event, last_view=last_view)
        if notify_url is not None and event.type in NOTIFIED:
            self._send(self.webhooks, notify_url, event, secret_id)
        if event.type is AuditEventType.ALERT:
            if self.alert_url is not None:
                self._send(self.alerts, self.alert_url, event, secret_id)
            return
        if self.rules is None:
            return
        try:
            alerts = await self.rules.check(event, secret_id, creator_country=creator_country)
        except StorageError:
            log.warning("alert rules skipped: the store is unavailable")
            return
        for alert in alerts:
            await self._alert(alert, event.at, secret_id, _info_of(event))

    def failed_lookup(self, secret_id: str | None, client: ClientInfo, *, at: datetime) -> None:
        """A wrong link for the live secret ``secret_id`` (``key.failed``), or with ``None``
        an id that does not exist (counted towards the probing alert). Reported in the
        background, so that both take as long to answer."""
        if secret_id is None:
            self.later(lambda: self.not_found(client, at=at))
            return
        self.later(
            lambda: self.emit(AuditEventType.KEY_FAILED, at=at, secret_id=secret_id, client=client)
        )

    async def not_found(self, client: ClientInfo, *, at: datetime) -> None:
        """A reveal of an id that does not exist: count it towards the probing alert."""
        if self.rules is None:
            return
        try:
            alert = await self.rules.probe(client.ip, now=at)
        except StorageError:
            log.warning("alert rules skipped: the store is unavailable")
            return
        if alert is not None:
            await self._alert(alert, at, None, request_info(client))

    async def _alert(
        self, alert: Alert, at: datetime, secret_id: str | None, info: RequestInfo
    ) -> None:
        log.warning("alert: %s", alert.reason.value)
        await self.emit(
            AuditEventType.ALERT, at=at, secret_id=secret_id, client=info, detail=alert.detail()
        )

    # -- the expiry watch and retention -----------------------------------------------------

    async def watch(self, item: Watched) -> None:
        """Put back a secret's expiry watch; ``AuditUnavailable`` if it cannot be written."""
        if self.audit is None:
            return
        try:
            await self.audit.watch(item)
        except StorageError:
            self.metrics.store_error(StoreName.AUDIT)
            raise AuditUnavailable from None

    async def claim_due(self, *, now: datetime, limit: int) -> list[Watched]:
        """Secrets whose expiry is due, each handed to one caller (``ExpiryWatch``)."""
        if self.audit is None:
            return []
        try:
            return await self.audit.claim_due(now=now, limit=limit)
        except StorageError:
            self.metrics.store_error(StoreName.AUDIT)
            raise AuditUnavailable from None

    async def purge(self, cutoff: datetime, *, at: datetime, batch: int) -> int:
        """Drop audit entries before ``cutoff`` (in batches); record it if any went."""
        if self.audit is None:
            return 0
        total = 0
        while True:
            try:
                purged = await self.audit.purge_before(cutoff, limit=batch)
            except StorageError:
                self.metrics.store_error(StoreName.AUDIT)
                raise AuditUnavailable from None
            total += purged
            if purged < batch:
                break
        if total:
            await self.emit(
                AuditEventType.AUDIT_PURGED,
                at=at,
                detail={"entries": total, "before": format_time(cutoff)},
            )
        return total

    # -- webhooks ---------------------------------------------------------------------------

    @property
    def notifications(self) -> bool:
        """Whether secrets may have a ``notify_url`` (``BURNLINK_WEBHOOK_SECRET`` is set)."""
        return self.webhooks is not None and self.webhook_key is not None

    async def check_notify_url(self, url: str) -> str:
        """Refuse a ``notify_url`` now that no delivery could use (``InvalidInput``).

        Every delivery checks it again, since what a name resolves to can change.
        """
        if not self.notifications:
            raise InvalidInput(
                "notify_url",
                "notifications are not configured on this server (BURNLINK_WEBHOOK_SECRET)",
            )
        try:
            check_url(url)  # its form: telling what is wrong with it reveals nothing
        except UnsafeUrl as exc:
            raise InvalidInput("notify_url", exc.reason) from None
        try:
            async with asyncio.timeout(NOTIFY_URL_LOOKUP):
                await pin(url, self.allow, resolver=self.resolver)
        except (UnsafeUrl, UnresolvableHost, TimeoutError):
            # One answer whatever the reason: "does not resolve" against "private address"
            # would let a sender map which internal names exist.
            raise InvalidInput("notify_url", NOTIFY_URL_REFUSED) from None
        return url

    def _send(
        self, dispatcher: WebhookDispatcher | None, url: str, event: AuditEvent, sid: str | None
    ) -> None:
        if dispatcher is None or self.webhook_key is None:
            return
        endpoint = WebhookEndpoint(url=url, key=self.webhook_key)
        dispatcher.enqueue(endpoint, WebhookMessage.from_event(event, secret_id=sid))

    def _webhook_dropped(
        self,
        queue: WebhookQueue,
        endpoint: WebhookEndpoint,
        message: Deliverable,
        reason: DropReason,
    ) -> None:
        """Record a webhook given up, in the background. Not the host: a URL's host can be
        its secret part (``<token>.example.net``), and the log never holds a ``notify_url``."""
        at = self.clock.now()
        self.later(
            lambda: self.emit(
                AuditEventType.WEBHOOK_DROPPED,
                at=at,
                secret_id=message.secret_id if isinstance(message, WebhookMessage) else None,
                detail={"queue": queue.value, "reason": reason.value},
            )
        )

    # -- metrics ----------------------------------------------------------------------------

    def _count(self, event: AuditEvent, *, last_view: bool) -> None:
        m = self.metrics
        row = ROUTES[event.type]
        if event.type is AuditEventType.SECRET_CREATED:
            m.secret_created()
        elif event.type is AuditEventType.SECRET_VIEWED and event.outcome is Outcome.OK:
            m.secret_viewed()
            if last_view:
                m.secret_ended(EndReason.VIEWED)
        elif row.ended is not None:
            m.secret_ended(row.ended)
        elif row.denied is not None:
            m.denied(row.denied)
        elif event.type is AuditEventType.ALERT:
            m.alert()

    def reveal_took(self, seconds: float) -> None:
        """Record how long a reveal took, successful or not."""
        self.metrics.reveal_took(seconds)

    # -- background reports -----------------------------------------------------------------

    def later(self, report: Callable[[], Awaitable[object]]) -> None:
        """Run ``report`` in the background, once the current request (if any) has been
        answered (``burnlink.service.deferred``); its failures are logged, never raised."""

        async def run() -> None:
            try:
                await report()
            except BurnlinkError as exc:
                log.warning("background audit report failed: %s", type(exc).__name__)

        def start() -> None:
            task = loop.create_task(run(), name="burnlink-audit")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        loop = asyncio.get_running_loop()
        defer(start)  # after the answer: its cost must not tell which ids are live

    def _dispatchers(self) -> list[WebhookDispatcher]:
        return [d for d in (self.webhooks, self.alerts) if d is not None]

    async def join(self) -> None:
        """Wait for background reports and webhook deliveries started so far (and for the
        records of webhooks that were dropped meanwhile), then seal what the store holds (a log
        that does not answer leaves it for the sealer)."""
        while self._background or any(d.pending for d in self._dispatchers()):
            while self._background:
                await asyncio.wait(set(self._background))
            for dispatcher in self._dispatchers():
                await dispatcher.join()
        if self._store is not None:
            try:
                await self.sealer.drain()
            except StorageError:
                log.warning("events left in the store's outbox; the sealer retries them")

    async def aclose(self, *, grace: float = 10.0) -> None:
        """Finish background reports, give webhooks ``grace`` seconds, close the sink."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=grace)
        await asyncio.gather(*(d.aclose(grace=grace) for d in self._dispatchers()))
        if self._background:  # records of the webhooks just cancelled: not cut by ``grace``
            await asyncio.wait(set(self._background), timeout=max(grace, DROP_RECORDS_GRACE))
        if self._store is not None:
            try:
                await self.sealer.drain()
            except StorageError:
                log.warning("events left in the store's outbox; the next start seals them")
        if self.sink is not None:
            self.sink.close()


def _info_of(event: AuditEvent) -> RequestInfo:
    return RequestInfo(event.client_ip, event.country, event.user_agent, event.request_id)
