"""Alert rules: thresholds counted in the store, each alert once per window; alert webhooks
that no sender's webhook can delay or crowd out."""

from __future__ import annotations

import asyncio
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from burnlink.audit import open_audit_store
from burnlink.audit.events import (
    AuditEvent,
    AuditEventType,
    Outcome,
    RequestInfo,
    audit_event,
    secret_hash,
)
from burnlink.clock import FrozenClock
from burnlink.config import Limit
from burnlink.metrics import DropReason, Metrics
from burnlink.service.alerts import AlertReason, AlertRules
from burnlink.store.memory import MemoryStore
from burnlink.web.app import open_reporter
from burnlink.webhooks import RetryPolicy
from tests.hooks import tarpit, webhook_receiver
from tests.web.audited import AUDIT_KEY, audited_settings

pytestmark = pytest.mark.anyio

SID = "Qm9vb3Jvb3Jvb3Jvb3Jvbw"


def rules() -> AlertRules:
    return AlertRules(
        MemoryStore(retention=timedelta(days=1)),
        failed_reveals=Limit(3, 3600),
        not_found=Limit(2, 3600),
    )


def event(kind: AuditEventType, clock: FrozenClock, country: str | None = None) -> AuditEvent:
    return audit_event(
        kind, at=clock.now(), secret_id=SID, request=RequestInfo("203.0.113.7", country)
    )


async def test_failed_reveals_alert_once_at_the_threshold_per_window(clock: FrozenClock) -> None:
    checker = rules()
    fired = []
    for kind in [AuditEventType.KEY_FAILED, AuditEventType.PASSPHRASE_FAILED] * 3:
        fired += await checker.check(event(kind, clock), SID)
    clock.advance(3600)
    for _ in range(3):
        fired += await checker.check(event(AuditEventType.OTP_FAILED, clock), SID)

    assert [a.reason for a in fired] == [AlertReason.FAILED_REVEALS] * 2
    assert fired[0].detail() == {"reason": "failed_reveals", "count": 3, "window": 3600}


async def test_address_refusals_alert_on_the_first_per_hour(clock: FrozenClock) -> None:
    checker = rules()
    ip = [await checker.check(event(AuditEventType.ACCESS_DENIED_IP, clock), SID) for _ in range(2)]
    geo = await checker.check(event(AuditEventType.ACCESS_DENIED_GEO, clock), SID)

    assert [a.reason for a in ip[0]] == [AlertReason.DENIED_IP]
    assert ip[1] == []
    # The third refusal of the secret also reaches the failed-reveals threshold.
    assert [a.reason for a in geo] == [AlertReason.FAILED_REVEALS, AlertReason.DENIED_GEO]


async def test_a_reveal_from_another_country_than_the_creators_alerts(clock: FrozenClock) -> None:
    checker = rules()
    viewed_fr = event(AuditEventType.SECRET_VIEWED, clock, "FR")

    assert await checker.check(viewed_fr, SID, creator_country="FR") == []
    assert await checker.check(viewed_fr, SID, creator_country=None) == []
    moved = await checker.check(viewed_fr, SID, creator_country="DE")
    assert moved[0].detail() == {"reason": "country_mismatch", "creator_country": "DE"}
    lost = audit_event(
        AuditEventType.SECRET_VIEWED,
        at=clock.now(),
        secret_id=SID,
        outcome=Outcome.FAILED,
        request=RequestInfo("203.0.113.7", "FR"),
    )
    assert await checker.check(lost, SID, creator_country="DE") == []


async def test_not_found_probes_alert_per_client(clock: FrozenClock) -> None:
    checker = rules()

    first = [await checker.probe("203.0.113.7", now=clock.now()) for _ in range(3)]
    other = await checker.probe("203.0.113.8", now=clock.now())

    assert [a.reason if a else None for a in first] == [None, AlertReason.NOT_FOUND_PROBES, None]
    assert other is None


async def test_rules_switched_off_never_alert(clock: FrozenClock) -> None:
    checker = AlertRules(
        MemoryStore(retention=timedelta(days=1)), failed_reveals=None, not_found=None
    )

    assert await checker.probe("203.0.113.7", now=clock.now()) is None
    assert await checker.check(event(AuditEventType.KEY_FAILED, clock), SID) == []


@pytest.mark.parametrize("count", [pytest.param(30, id="30"), pytest.param(1000, id="1000")])
async def test_an_alert_arrives_while_sender_webhooks_hang_on_a_tarpit(
    tmp_path: Path, count: int
) -> None:
    audit = await open_audit_store(f"sqlite://{tmp_path / 'audit.db'}", key=AUDIT_KEY)
    metrics = Metrics()
    now = datetime.now(UTC)
    with webhook_receiver() as operator, tarpit() as pit:
        # As the app builds it: BURNLINK_ALERT_URL on the operator's receiver, 127.0.0.1 allowed.
        reporter = await open_reporter(
            audited_settings(operator),
            MemoryStore(retention=timedelta(days=1)),
            metrics,
            audit=audit,
            retry=RetryPolicy(attempts=1),
        )
        try:
            for n in range(count):
                sender = f"sender-secret-{n}"
                burned = audit_event(AuditEventType.SECRET_BURNED, at=now, secret_id=sender)
                await reporter.publish(burned, secret_id=sender, notify_url=pit.url())
            alert = audit_event(
                AuditEventType.ALERT, at=now, secret_id=SID, detail={"reason": "denied_ip"}
            )
            await reporter.publish(alert, secret_id=SID)

            arrived = await anyio.to_thread.run_sync(operator.arrived.wait, 10)
            ended = metrics.registry.get_sample_value(
                "burnlink_webhook_deliveries_total", {"result": "failed"}
            )
        finally:
            await reporter.aclose(grace=0)
        entries = [entry async for entry in audit.iter_entries()]
    await audit.aclose()

    assert arrived, "the operator's alert waited behind the senders' webhooks, or was dropped"
    assert [hook.json()["type"] for hook in operator.on("/alerts")] == ["alert"]
    assert ended == 0  # it arrived while every sender webhook was still hanging
    # Every sender webhook given up is counted and audited, by reason, without the URL.
    # (The alert's own delivery may still be reading its answer when aclose(grace=0) cancels
    # it, and is then dropped as queue "alerts": only the senders' queue is counted here.)
    drops = [
        e.event
        for e in entries
        if e.event.type is AuditEventType.WEBHOOK_DROPPED and e.event.detail["queue"] == "notify"
    ]
    assert len(drops) == count
    for reason in DropReason:
        counted = metrics.registry.get_sample_value(
            "burnlink_webhook_dropped_total", {"queue": "notify", "reason": reason.value}
        )
        audited = [d for d in drops if d.detail == {"queue": "notify", "reason": reason.value}]
        assert counted == len(audited), reason
    assert {d.secret_hash for d in drops} == {
        secret_hash(f"sender-secret-{n}") for n in range(count)
    }
    assert all(pit.url().encode() not in e.event.canonical() for e in entries)


async def test_an_alert_is_looked_up_while_the_default_executor_is_busy(tmp_path: Path) -> None:
    # A name whose DNS never answers holds a lookup thread for tens of seconds, and senders
    # pick names. Here jobs waiting on an event hold every thread of the loop's default
    # executor, as such lookups (or mail) would: the alert's lookup must not queue behind.
    audit = await open_audit_store(f"sqlite://{tmp_path / 'audit.db'}", key=AUDIT_KEY)
    [info, *_] = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    release = threading.Event()
    loop = asyncio.get_running_loop()
    holders = [loop.run_in_executor(None, release.wait, 30) for _ in range(64)]
    try:
        with webhook_receiver(host=str(info[4][0])) as operator:
            port = operator.base.rsplit(":", 1)[1]
            settings = audited_settings(
                alert_url=f"http://localhost:{port}/alerts", webhook_allow="localhost"
            )
            reporter = await open_reporter(
                settings, MemoryStore(retention=timedelta(days=1)), Metrics(), audit=audit
            )
            try:
                alert = audit_event(AuditEventType.ALERT, at=datetime.now(UTC), secret_id=SID)
                await reporter.publish(alert, secret_id=SID)
                arrived = await anyio.to_thread.run_sync(operator.arrived.wait, 10)
            finally:
                await reporter.aclose(grace=0)
    finally:
        release.set()
        await asyncio.gather(*holders)
        await audit.aclose()

    assert arrived, "the alert's name lookup waited for the loop's default executor"
