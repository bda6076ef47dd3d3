"""Figures over a stretch of the audit log: what the compliance report (``audit.report``)
counts, from the entries alone.

Every figure is computed from events, which never hold secret material, so the figures hold
none either. ``tally`` reads the entries once, in order, and keeps per secret only what the
time from creation to first view needs (the secret's hash and when it was created).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

from burnlink.audit.chain import AuditEntry
from burnlink.audit.events import MAX_VALUE_LENGTH, AuditEvent, AuditEventType

__all__ = [
    "CATEGORIES",
    "DENIALS",
    "RULES",
    "TEAMS",
    "Figures",
    "activity",
    "tally",
    "teams_label",
    "teams_of",
]

DENIALS: Final = (
    AuditEventType.ACCESS_DENIED_IP,
    AuditEventType.ACCESS_DENIED_GEO,
    AuditEventType.ACCESS_DENIED_IDENTITY,
    AuditEventType.PASSPHRASE_FAILED,
    AuditEventType.KEY_FAILED,
    AuditEventType.OTP_FAILED,
    AuditEventType.RATE_LIMITED,
    AuditEventType.ADMIN_DENIED,
    AuditEventType.SIGN_IN_REFUSED,
)
"""The events that are a refusal: an access rule, a wrong passphrase, link or code, a rate
limit, a wrong admin token or a refused sign-in."""

CATEGORIES: Final[Mapping[str, frozenset[AuditEventType]]] = {
    "created": frozenset({AuditEventType.SECRET_CREATED}),
    "viewed": frozenset({AuditEventType.SECRET_VIEWED}),
    "expired": frozenset({AuditEventType.SECRET_EXPIRED}),
    "burned": frozenset({AuditEventType.SECRET_BURNED, AuditEventType.SECRET_LOCKED}),
    "denied": frozenset(DENIALS),
    "alerts": frozenset({AuditEventType.ALERT}),
}
"""The activity the report draws per day, and the event types each counts. ``burned`` counts
secrets burned by their sender and those locked by too many failed attempts."""

RULES: Final = ("passphrase", "recipients", "require_mfa", "emailed_code", "network_or_country")
"""The protections whose share of created secrets the report gives."""

TEAMS: Final = "teams"
"""The ``detail`` key of a ``secret.created`` event that names the creator's teams (those of
the ``[teams.*]`` policy tables their groups match) as a JSON array of strings (``teams_label``;
a group name may hold commas). Every later event of that secret counts for those teams."""

Buckets = list[tuple[datetime, dict[str, int]]]


def teams_label(teams: Sequence[str]) -> str | None:
    """``teams`` as the ``TEAMS`` detail value: a compact JSON array, of as many whole names
    as fit in an event's value (``MAX_VALUE_LENGTH``); ``None`` for none."""
    kept = list(teams)
    while kept:
        text = json.dumps(kept, ensure_ascii=False, separators=(",", ":"))
        if len(text) <= MAX_VALUE_LENGTH:
            return text
        kept.pop()
    return None


def teams_of(event: AuditEvent) -> tuple[str, ...]:
    """The teams a ``secret.created`` event names (none for an anonymous creator, or for a
    value that is not a JSON array of strings)."""
    named = event.detail.get(TEAMS)
    if not isinstance(named, str) or not named.startswith("["):
        return ()
    try:
        teams = json.loads(named)
    except ValueError:
        return ()
    if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
        return ()
    return tuple(teams)


@dataclass
class Figures:
    """What ``tally`` counted between ``since`` (inclusive) and ``until`` (exclusive)."""

    since: datetime | None
    until: datetime | None
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    by_type: Counter[str] = field(default_factory=Counter)
    """Entries per event type (``AuditEventType`` values)."""
    by_day: dict[date, Counter[str]] = field(default_factory=dict)
    """Per UTC day, entries per ``CATEGORIES`` name."""
    created: int = 0
    with_rule: Counter[str] = field(default_factory=Counter)
    """Created secrets with each of ``RULES``."""
    signed_in_creates: int = 0
    """Creates by a signed-in user (the event names an actor)."""
    first_view_seconds: list[float] = field(default_factory=list)
    """For each secret created in the period and first viewed in it: seconds in between."""
    alerts_by_reason: Counter[str] = field(default_factory=Counter)
    by_team: dict[str, Counter[str]] = field(default_factory=dict)
    """Per team, entries per ``CATEGORIES`` name of the secrets its members created in the
    period (``TEAMS``)."""

    @property
    def denials(self) -> dict[str, int]:
        """Refusals per event type, every type of ``DENIALS`` present."""
        return {kind.value: self.by_type[kind.value] for kind in DENIALS}

    @property
    def median_first_view(self) -> float | None:
        """Median seconds from creation to first view, if any secret was both in the period."""
        return statistics.median(self.first_view_seconds) if self.first_view_seconds else None

    def share(self, rule: str) -> float | None:
        """The fraction of created secrets with ``rule`` (one of ``RULES``), if any was made."""
        return self.with_rule[rule] / self.created if self.created else None

    def days(self) -> list[tuple[date, dict[str, int]]]:
        """Every UTC day from the first to the last with activity, each with every category
        (days without entries in between are zeros, so a chart's gaps are real)."""
        if not self.by_day:
            return []
        first, last = min(self.by_day), max(self.by_day)
        out = []
        day = first
        while day <= last:
            counts = self.by_day.get(day, Counter())
            out.append((day, {name: counts[name] for name in CATEGORIES}))
            day += timedelta(days=1)
        return out

    def to_dict(self) -> dict[str, object]:
        """The figures as JSON-ready data (``burnlink audit report --json``)."""
        median = self.median_first_view
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "by_type": {kind.value: self.by_type[kind.value] for kind in AuditEventType},
            "by_day": [{"day": day.isoformat(), **counts} for day, counts in self.days()],
            "created": self.created,
            "signed_in_creates": self.signed_in_creates,
            "shares": {rule: self.share(rule) for rule in RULES},
            "median_first_view_seconds": None if median is None else round(median, 3),
            "first_views": len(self.first_view_seconds),
            "denials": self.denials,
            "alerts": self.by_type[AuditEventType.ALERT.value],
            "alerts_by_reason": dict(sorted(self.alerts_by_reason.items())),
            "by_team": {
                team: {name: counts[name] for name in CATEGORIES}
                for team, counts in sorted(self.by_team.items())
            },
        }


_CATEGORY_OF: Final = {kind: name for name, kinds in CATEGORIES.items() for kind in kinds}


async def tally(
    entries: AsyncIterable[AuditEntry], *, since: datetime | None, until: datetime | None
) -> Figures:
    """Count ``entries`` (oldest first, already limited to ``since``..``until``)."""
    figures = Figures(since, until)
    created_at: dict[str, datetime] = {}
    team_of_secret: dict[str, tuple[str, ...]] = {}
    async for entry in entries:
        event = entry.event
        figures.entries += 1
        if figures.first_seq is None:
            figures.first_seq = entry.seq
        figures.last_seq = entry.seq
        figures.by_type[event.type.value] += 1
        category = _CATEGORY_OF.get(event.type)
        if category is not None:
            day = event.at.astimezone(UTC).date()
            figures.by_day.setdefault(day, Counter())[category] += 1
        if event.type is AuditEventType.SECRET_CREATED and event.secret_hash is not None:
            created_at[event.secret_hash] = event.at
            teams = teams_of(event)
            if teams:
                team_of_secret[event.secret_hash] = teams
        if category is not None and event.secret_hash is not None:
            for team in team_of_secret.get(event.secret_hash, ()):
                figures.by_team.setdefault(team, Counter())[category] += 1
        if event.type is AuditEventType.SECRET_CREATED:
            _count_create(figures, event)
        elif event.type is AuditEventType.SECRET_VIEWED and event.secret_hash is not None:
            made = created_at.pop(event.secret_hash, None)  # the first view only
            if made is not None:
                figures.first_view_seconds.append((event.at - made).total_seconds())
        elif event.type is AuditEventType.ALERT:
            figures.alerts_by_reason[str(event.detail.get("reason") or "unspecified")] += 1
    return figures


def _count_create(figures: Figures, event: AuditEvent) -> None:
    figures.created += 1
    if event.actor_subject is not None:
        figures.signed_in_creates += 1
    policy, rules = event.policy, figures.with_rule
    if event.detail.get("protected") is True:
        rules["passphrase"] += 1
    if policy.get("recipients"):
        rules["recipients"] += 1
    if policy.get("require_mfa") is True:
        rules["require_mfa"] += 1
    if policy.get("recipient"):
        rules["emailed_code"] += 1
    if any(policy.get(name) for name in ("allowed_ips", "allowed_countries", "denied_countries")):
        rules["network_or_country"] += 1


async def activity(
    entries: AsyncIterable[AuditEntry], *, start: datetime, end: datetime, bucket: timedelta
) -> Buckets:
    """Entries per ``CATEGORIES`` name in each ``bucket`` from ``start`` (inclusive, aligned
    down to the bucket from the epoch) to ``end`` (exclusive): every bucket, empty ones as
    zeros, so a chart's gaps are real. ``entries`` are already limited to that time (and to
    whatever else the caller filters them by)."""
    step = bucket.total_seconds()
    first = datetime.fromtimestamp((start.timestamp() // step) * step, UTC)
    count = max(1, int(-(-(end - first).total_seconds() // step)))
    buckets: Buckets = [(first + i * bucket, dict.fromkeys(CATEGORIES, 0)) for i in range(count)]
    async for entry in entries:
        category = _CATEGORY_OF.get(entry.event.type)
        if category is None:
            continue
        index = int((entry.event.at - first).total_seconds() // step)
        if 0 <= index < count:
            buckets[index][1][category] += 1
    return buckets
