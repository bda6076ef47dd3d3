"""The Reporter: events recorded in the store and sealed into the audit log, the sink, metrics
and webhooks."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from burnlink.audit import AuditBackend, open_audit_store
from burnlink.audit.events import AuditEventType, Outcome, audit_event, secret_hash
from burnlink.audit.export import JsonLinesSink
from burnlink.audit.outbox import OutboxRecord
from burnlink.clock import FrozenClock
from burnlink.errors import AuditUnavailable, InvalidInput, StorageUnavailable
from burnlink.metrics import Metrics, StoreName, WebhookQueue
from burnlink.models import AccessPolicy, ClientInfo
from burnlink.netguard import AllowList
from burnlink.service.reporting import Reporter, policy_labels
from burnlink.store import Recorded
from burnlink.store.memory import MemoryStore
from burnlink.webhooks import WebhookDispatcher, parse_webhook_secret
from tests.hooks import tarpit, webhook_receiver
from tests.web.audited import AUDIT_KEY, FAST, WEBHOOK_SECRET, Breakable

pytestmark = pytest.mark.anyio

CLIENT = ClientInfo(ip="203.0.113.7", user_agent="curl/8.5.0", country="DE", request_id="r-1")


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditBackend]:
    store = await open_audit_store(f"sqlite://{tmp_path / 'audit.db'}", key=AUDIT_KEY)
    yield store
    await store.aclose()


def errors_of(metrics: Metrics, store: StoreName) -> float:
    value = metrics.registry.get_sample_value("burnlink_store_errors_total", {"store": store})
    return value or 0.0


def memory() -> MemoryStore:
    return MemoryStore(retention=timedelta(days=1))


async def test_an_event_waits_in_the_store_until_sealed_then_goes_to_the_log_and_sink(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    stream = io.StringIO()
    store = memory()
    reporter = Reporter(audit, store=store, sink=JsonLinesSink(stream))

    event = await reporter.emit(
        AuditEventType.SECRET_OPENED, at=clock.now(), secret_id="abc", client=CLIENT
    )

    assert [e async for e in audit.iter_entries()] == []
    assert len(await store.pending_events(limit=10)) == 1
    assert await reporter.sealer.drain() == 1
    entries = [e async for e in audit.iter_entries()]
    assert [e.event for e in entries] == [event]
    assert (event.client_ip, event.country, event.request_id) == ("203.0.113.7", "DE", "r-1")
    assert json.loads(stream.getvalue())["seq"] == 1
    assert await store.pending_events(limit=10) == []


async def test_an_audit_outage_delays_sealing_and_loses_nothing(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    metrics = Metrics()
    store = memory()
    broken = Breakable(audit)
    reporter = Reporter(broken, store=store, metrics=metrics)
    broken.broken = True

    await reporter.emit(AuditEventType.ACCESS_DENIED_IP, at=clock.now(), client=CLIENT)
    with pytest.raises(StorageUnavailable):
        await reporter.sealer.drain()

    assert errors_of(metrics, StoreName.AUDIT) == 1
    assert len(await store.pending_events(limit=10)) == 1
    broken.broken = False
    assert await reporter.sealer.drain() == 1
    [entry] = [e async for e in audit.iter_entries()]
    assert entry.event.outcome is Outcome.DENIED


async def test_a_record_sealed_twice_is_appended_once(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    """A sealer that dies after appending and before acknowledging hands the same records to
    the next one; the log appends each record id once."""
    store = memory()
    reporter = Reporter(audit, store=store)
    await reporter.emit(AuditEventType.SECRET_OPENED, at=clock.now(), secret_id="abc")
    records = [OutboxRecord.from_bytes(p.outbox) for p in await store.pending_events(limit=10)]

    assert len(await audit.seal(records)) == 1  # sealed, never acknowledged: then a crash
    assert await reporter.sealer.drain() == 1

    assert len([e async for e in audit.iter_entries()]) == 1
    assert await store.pending_events(limit=10) == []


async def test_without_an_audit_log_nothing_is_written(clock: FrozenClock) -> None:
    store = memory()
    reporter = Reporter(store=store)

    event = await reporter.emit(AuditEventType.SECRET_CREATED, at=clock.now())

    assert event.type is AuditEventType.SECRET_CREATED
    assert await reporter.sealer.drain() == 1
    assert await store.pending_events(limit=10) == []
    assert await reporter.claim_due(now=clock.now(), limit=5) == []


async def test_publish_sends_only_notified_types_to_the_secret_url(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    metrics = Metrics()
    with webhook_receiver() as receiver:
        loopback = AllowList.parse("127.0.0.1")
        reporter = Reporter(
            audit,
            store=memory(),
            metrics=metrics,
            webhooks=WebhookDispatcher(allow=loopback, retry=FAST),
            webhook_key=parse_webhook_secret(WEBHOOK_SECRET),
            alert_url=receiver.url("/alerts"),
            alerts=WebhookDispatcher(queue=WebhookQueue.ALERTS, allow=loopback, retry=FAST),
        )
        for kind in (
            AuditEventType.SECRET_OPENED,
            AuditEventType.SECRET_VIEWED,
            AuditEventType.PASSPHRASE_FAILED,
            AuditEventType.SECRET_EXPIRED,
            AuditEventType.ALERT,
        ):
            await reporter.emit(
                kind, at=clock.now(), secret_id="abc", notify_url=receiver.url("/secret")
            )
        await reporter.join()
        await reporter.aclose()

    # Delivered concurrently: which types, not their order.
    assert sorted(h.json()["type"] for h in receiver.on("/secret")) == [
        "secret.expired",
        "secret.viewed",
    ]
    assert [h.json()["type"] for h in receiver.on("/alerts")] == ["alert"]
    assert metrics.registry.get_sample_value("burnlink_alerts_total") == 1
    denied = {"reason": "passphrase"}
    assert metrics.registry.get_sample_value("burnlink_access_denied_total", denied) == 1


async def test_a_dropped_alert_is_audited_as_the_alerts_queue(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    loopback = AllowList.parse("127.0.0.1")
    metrics = Metrics()
    with tarpit() as pit:
        reporter = Reporter(
            audit,
            store=memory(),
            metrics=metrics,
            webhooks=WebhookDispatcher(allow=loopback),
            webhook_key=parse_webhook_secret(WEBHOOK_SECRET),
            alert_url=pit.url(),
            alerts=WebhookDispatcher(
                queue=WebhookQueue.ALERTS, allow=loopback, deadline=0.2, metrics=metrics
            ),
        )
        await reporter.emit(AuditEventType.ALERT, at=clock.now(), secret_id="abc")
        with anyio.fail_after(10):
            await reporter.join()
        await reporter.aclose()
    entries = [entry.event async for entry in audit.iter_entries()]

    [dropped] = [e for e in entries if e.type is AuditEventType.WEBHOOK_DROPPED]
    assert (dropped.outcome, dropped.detail) == (
        Outcome.FAILED,
        {"queue": "alerts", "reason": "deadline"},
    )
    assert dropped.secret_hash == secret_hash("abc")
    counted = {"queue": "alerts", "reason": "deadline"}
    assert metrics.registry.get_sample_value("burnlink_webhook_dropped_total", counted) == 1


def test_alerts_never_fall_back_to_the_senders_dispatcher() -> None:
    with pytest.raises(ValueError, match="alerts="):
        Reporter(webhooks=WebhookDispatcher(), alert_url="https://alerts.example.com/")


async def test_notify_urls_are_refused_without_a_webhook_secret() -> None:
    with pytest.raises(InvalidInput) as raised:
        await Reporter().check_notify_url("https://hooks.example.com/x")

    assert raised.value.field == "notify_url"


async def test_background_reports_log_their_failures(
    audit: AuditBackend, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = Reporter(audit, store=memory())

    async def failing() -> None:
        raise AuditUnavailable

    with caplog.at_level(logging.WARNING):
        reporter.later(failing)
        await reporter.join()

    assert "background audit report failed: AuditUnavailable" in caplog.text


def test_policy_labels_mask_the_recipient_and_leave_out_the_webhook() -> None:
    policy = AccessPolicy(
        allowed_ips=("10.0.0.0/8",),
        recipient_email="bob@example.com",
        notify_url="https://hooks.example.com/T0KEN",
        creator_country="DE",
    )

    assert policy_labels(policy) == {"allowed_ips": "10.0.0.0/8", "recipient": "b***@example.com"}
    assert policy_labels(AccessPolicy(allowed_countries=tuple(["DE"] * 90)))[
        "allowed_countries"
    ].endswith("...")  # type: ignore[union-attr]  # a str, cut to fit


def test_access_policy_bytes_round_trip_and_tolerate_older_forms() -> None:
    full = AccessPolicy(notify_url="https://h.example/x", creator_country="FR")
    old = b'{"allowed_ips":[],"allowed_countries":[],"denied_countries":[],"recipient_email":null}'

    assert AccessPolicy.from_bytes(full.to_bytes()) == full
    assert AccessPolicy.from_bytes(old) == AccessPolicy()
    assert AccessPolicy().to_bytes() == old
    assert full.is_empty()
    assert "h.example" not in repr(full)


async def test_the_log_seals_the_record_the_store_holds_not_the_one_this_process_wrote(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    """The sealer takes a record its own process wrote as it is, without decoding it again,
    only when the store hands out the very bytes written: a record the store holds in another
    form under the same id (altered, or written by another release) is sealed as stored."""
    store = memory()
    reporter = Reporter(audit, store=store)
    kept, recorded = reporter.happened(
        AuditEventType.SECRET_OPENED, at=clock.now(), secret_id="abc"
    )
    written = OutboxRecord.from_bytes(recorded.outbox)
    altered = OutboxRecord(replace(written.event, secret_hash=secret_hash("xyz")), id=written.id)
    await store.record(None, [Recorded(None, altered.to_bytes())])
    same, recorded = reporter.happened(
        AuditEventType.SECRET_OPENED, at=clock.now(), secret_id="def"
    )
    await store.record(None, [recorded])

    assert await reporter.sealer.drain() == 2

    assert [e.event async for e in audit.iter_entries()] == [altered.event, same]
    assert kept != altered.event


async def test_an_outbox_record_that_does_not_parse_is_sealed_as_an_alert_and_sealing_goes_on(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    """A damaged or altered store must neither stop the sealer (and with it the server) nor
    vanish from the log."""
    store = memory()
    reporter = Reporter(audit, store=store)
    await reporter.emit(AuditEventType.SECRET_OPENED, at=clock.now(), secret_id="abc")
    await store.record(None, [Recorded(None, b"{not an outbox record")])
    await reporter.emit(AuditEventType.SECRET_OPENED, at=clock.now(), secret_id="def")

    assert await reporter.sealer.drain() == 3
    assert await reporter.sealer.drain() == 0

    events = [e.event async for e in audit.iter_entries()]
    assert [e.type for e in events] == [
        AuditEventType.SECRET_OPENED,
        AuditEventType.ALERT,
        AuditEventType.SECRET_OPENED,
    ]
    assert events[1].detail == {"reason": "unreadable_event"}
    assert events[1].outcome is Outcome.FAILED
    assert await store.pending_events(limit=10) == []


async def test_a_damaged_record_that_still_names_its_id_is_sealed_as_one_alert_under_it(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    """Its id is read without decoding it; the alert in its place takes that id, so the same
    record handed out again (the sealer stopped before acknowledging) is not alerted twice."""
    good = OutboxRecord(audit_event(AuditEventType.SECRET_OPENED, at=clock.now()))
    damaged = good.to_bytes().replace(b'"type":"secret.opened"', b'"type":"secret.0pened"')
    reporter = Reporter(audit, store=memory())

    await reporter.store.record(None, [Recorded(None, damaged)])
    assert await reporter.sealer.drain() == 1
    await reporter.store.record(None, [Recorded(None, damaged)])
    assert await reporter.sealer.drain() == 1

    entries = [e async for e in audit.iter_entries()]
    assert [e.event.type for e in entries] == [AuditEventType.ALERT]
    assert entries[0].event.detail == {"reason": "unreadable_event"}


async def test_a_record_that_names_two_ids_is_sealed_as_an_alert_under_the_first(
    audit: AuditBackend, clock: FrozenClock
) -> None:
    """A record is sealed under the id its first bytes name; one whose JSON repeats the id
    member with another value (an altered store) is not taken for a record of that other id."""
    good = OutboxRecord(audit_event(AuditEventType.SECRET_OPENED, at=clock.now()))
    other = "f" * 32
    twice = good.to_bytes()[:-1] + b',"id":"' + other.encode() + b'"}'
    assert OutboxRecord.from_bytes(twice).id == other
    reporter = Reporter(audit, store=memory())

    for _ in range(2):  # handed out again after a crash: still one alert
        await reporter.store.record(None, [Recorded(None, twice)])
        assert await reporter.sealer.drain() == 1

    entries = [e async for e in audit.iter_entries()]
    assert [e.event.type for e in entries] == [AuditEventType.ALERT]
