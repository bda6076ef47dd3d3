"""Alert rules: thresholds counted in the store, each alert once per window."""

from __future__ import annotations

from datetime import timedelta

import pytest

from burnlink.alerts import AlertReason, AlertRules
from burnlink.audit.events import AuditEvent, AuditEventType, Outcome, RequestInfo, audit_event
from burnlink.clock import FrozenClock
from burnlink.ratelimit import Limit
from burnlink.store.memory import MemoryStore

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
