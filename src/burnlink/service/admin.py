"""The admin console's rules and reads (docs/admin.md).

Who: a request with ``BURNLINK_ADMIN_TOKEN`` (checked by ``SecretService.check_admin``), or a
browser session of a member of ``BURNLINK_ADMIN_GROUPS`` whose sign-in carried a second
factor and is at most ``BURNLINK_ADMIN_MAX_AGE`` seconds old (``AdminConsole.admit``). An API
token never opens the console: it is not a fresh sign-in.

What: activity over time and audit search and export, read only from entries inside the chain
the authentic state row vouches for, each checked against its MAC; every user's API tokens;
the policy in force, as configured.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from burnlink.audit import AuditBackend, AuditEntry
from burnlink.audit.events import AuditEventType, Outcome, secret_hash
from burnlink.audit.export import csv_lines, jsonl_lines
from burnlink.audit.figures import Buckets, activity, teams_of
from burnlink.clock import Clock
from burnlink.config import Settings
from burnlink.errors import (
    AuditUnavailable,
    FreshLoginRequired,
    InvalidInput,
    LoginRequired,
    MfaRequired,
    NotPermitted,
    StorageError,
)
from burnlink.identity.principal import Principal
from burnlink.models import ClientInfo
from burnlink.service.reporting import Reporter
from burnlink.store import SecretStore
from burnlink.store.identity import TokenRecord

__all__ = ["ADMIN_PATH", "BUCKETS", "MAX_BUCKETS", "AdminConsole", "AuditQuery"]

ADMIN_PATH: Final = "/admin"
"""The console's page, where a sign-in for it comes back to."""
BUCKETS: Final = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS: Final = 1000
"""Buckets one activity request may ask for (about six weeks of hours, or three years of days)."""
MAX_TOKENS: Final = 1000
_SKEW: Final = timedelta(seconds=60)
"""How far in the future a sign-in's ``auth_time`` may be (the provider's clock ahead)."""


@dataclass(frozen=True)
class AuditQuery:
    """What an audit search or export asks for; time and type are filtered by the store,
    the rest entry by entry (``matches``)."""

    since: datetime | None = None
    until: datetime | None = None
    types: Sequence[AuditEventType] | None = None
    actor: str | None = None
    """A signed-in actor's email (any case) or subject, exactly."""
    secret_id: str | None = None
    """A secret's public id; events name it by hash, so it is hashed here."""
    client_ip: str | None = None
    """A client address (compared in canonical form) or a network in CIDR notation."""
    outcome: Outcome | None = None
    team: str | None = None
    """A team (``[teams.NAME]``): the events of the secrets its members created, and their
    creation (``audit.figures.TEAMS``)."""

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InvalidInput("until", "must be later than since")
        if self.client_ip is not None:
            try:
                ipaddress.ip_network(self.client_ip, strict=False)
            except ValueError:
                raise InvalidInput("client_ip", "must be an IP address or a network") from None

    def matches(self, entry: AuditEntry, team_secrets: frozenset[str] = frozenset()) -> bool:
        """Whether ``entry`` passes the filters the store does not apply; ``team_secrets``:
        the hashes of the secrets ``team``'s members created."""
        event = entry.event
        if self.team is not None and (
            event.secret_hash is None or event.secret_hash not in team_secrets
        ):
            return False
        if self.outcome is not None and event.outcome is not self.outcome:
            return False
        if self.secret_id is not None and event.secret_hash != secret_hash(self.secret_id):
            return False
        if self.actor is not None:
            wanted = self.actor.strip()
            email = (event.actor_email or "").lower()
            if event.actor_subject != wanted and (not email or email != wanted.lower()):
                return False
        if self.client_ip is not None:
            if event.client_ip is None:
                return False
            network = ipaddress.ip_network(self.client_ip, strict=False)
            if ipaddress.ip_address(event.client_ip) not in network:
                return False
        return True


class AdminConsole:
    """The console's admission rule and its reads; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: SecretStore,
        reporter: Reporter,
        clock: Clock,
    ) -> None:
        """Read the audit log through ``reporter`` (where the service writes it)."""
        self.settings = settings
        self.store = store
        self.reporter = reporter
        self.clock = clock

    @property
    def enabled(self) -> bool:
        """Whether any signed-in user may use the console (``BURNLINK_ADMIN_GROUPS`` is set)."""
        return bool(self.settings.admin_groups)

    async def admit(self, principal: Principal | None, client: ClientInfo) -> Principal:
        """Return ``principal`` when it may use the console; else raise, in this order:
        ``LoginRequired`` (anonymous; the sign-in comes back to the console), ``NotPermitted``
        (an API token, or a user outside ``BURNLINK_ADMIN_GROUPS``; audited ``admin.denied``),
        ``MfaRequired`` (a sign-in without a second factor; audited), and
        ``FreshLoginRequired`` (one older than ``BURNLINK_ADMIN_MAX_AGE``)."""
        max_age = self.settings.admin_max_age
        if principal is None:
            raise LoginRequired(
                "The admin console needs you to sign in.", max_age=max_age, next_path=ADMIN_PATH
            )
        if principal.via != "session":
            raise NotPermitted(
                "The admin console needs a browser sign-in; API tokens are for the secrets API"
                " (the admin token serves the admin API)."
            )
        if not self.enabled or not set(principal.groups) & set(self.settings.admin_groups):
            await self._refused(principal, client, "admin_group")
            raise NotPermitted("Your account is not in a group that may use the admin console.")
        if not principal.mfa:
            await self._refused(principal, client, "mfa")
            raise MfaRequired(
                "The admin console needs a sign-in with a second factor (MFA): sign out, then"
                " sign in again with your second factor."
            )
        now = self.clock.now()
        age = None if principal.auth_time is None else now - principal.auth_time
        if age is None or age < -_SKEW or age > timedelta(seconds=max_age):
            raise FreshLoginRequired(max_age=max_age, next_path=ADMIN_PATH)
        return principal

    def fresh_until(self, principal: Principal) -> datetime | None:
        """When ``principal``'s sign-in stops serving the console."""
        if principal.auth_time is None:
            return None
        return principal.auth_time + timedelta(seconds=self.settings.admin_max_age)

    async def _refused(self, principal: Principal, client: ClientInfo, rule: str) -> None:
        await self.reporter.emit(
            AuditEventType.ADMIN_DENIED,
            at=self.clock.now(),
            client=client,
            policy={"rule": rule},
            actor=(principal.subject, principal.email),
        )

    # -- reads ------------------------------------------------------------------------------

    def _log(self) -> AuditBackend:
        if self.reporter.audit is None:
            raise AuditUnavailable("The audit log is not configured.")
        return self.reporter.audit

    async def _entries(
        self, query: AuditQuery, *, after: int = 0, limit: int | None = None
    ) -> AsyncIterator[AuditEntry]:
        """The entries of the verified chain that ``query`` matches, oldest first, after
        ``after``. Events recorded but not sealed yet are sealed first, so a read shows every
        action that took effect before it. A state or entry that fails its MAC stops the read
        (``AuditUnavailable``) rather than be served as if it were the log's."""
        log = self._log()
        try:
            await self.reporter.sealer.drain()
        except StorageError:
            raise AuditUnavailable from None
        state = (await log.bounds()).state
        if state is None or not log.is_authentic(state):
            raise AuditUnavailable(
                "The audit log's state row is missing or does not verify;"
                " run `burnlink audit verify`."
            )
        team_secrets: frozenset[str] = frozenset()
        if query.team is not None:
            team_secrets = await self._secrets_of_team(
                log, query.team, after=state.base.seq, through=state.head.seq
            )
        found = 0
        async for entry in log.iter_entries(
            since=query.since,
            until=query.until,
            types=query.types,
            after_seq=max(after, state.base.seq),
            through_seq=state.head.seq,
        ):
            if not log.is_authentic(entry):
                raise AuditUnavailable(
                    f"Audit entry {entry.seq} does not verify; run `burnlink audit verify`."
                )
            if query.matches(entry, team_secrets):
                yield entry
                found += 1
                if limit is not None and found >= limit:
                    return

    async def _secrets_of_team(
        self, log: AuditBackend, team: str, *, after: int, through: int
    ) -> frozenset[str]:
        """The hashes of the secrets whose creation, anywhere in the verified chain, names
        ``team``: a first pass over the creations, so that a page or period sees a secret made
        before it."""
        found = set()
        async for entry in log.iter_entries(
            types=[AuditEventType.SECRET_CREATED], after_seq=after, through_seq=through
        ):
            if not log.is_authentic(entry):
                raise AuditUnavailable(
                    f"Audit entry {entry.seq} does not verify; run `burnlink audit verify`."
                )
            if entry.event.secret_hash is not None and team in teams_of(entry.event):
                found.add(entry.event.secret_hash)
        return frozenset(found)

    async def search(
        self, query: AuditQuery, *, after: int, limit: int
    ) -> tuple[list[AuditEntry], int | None]:
        """A page of at most ``limit`` matching entries after ``after``, and the ``after`` of
        the next page (``None`` at the end)."""
        entries = [entry async for entry in self._entries(query, after=after, limit=limit + 1)]
        page = entries[:limit]
        return page, page[-1].seq if len(entries) > limit else None

    async def export(
        self, query: AuditQuery, format: Literal["jsonl", "csv"]
    ) -> AsyncIterator[str]:
        """Every matching entry as JSON Lines or CSV lines (``audit.export``), streamed. The
        log is checked and its first matching entry read before this returns, so a log that
        is down or does not verify raises here, before anything is sent."""
        entries = self._entries(query)
        first = await anext(entries, None)

        async def every() -> AsyncIterator[AuditEntry]:
            if first is None:
                return
            yield first
            async for entry in entries:
                yield entry

        return jsonl_lines(every()) if format == "jsonl" else csv_lines(every())

    async def activity(
        self,
        *,
        since: datetime | None,
        until: datetime | None,
        bucket: str,
        team: str | None = None,
    ) -> tuple[datetime, datetime, Buckets]:
        """Created, viewed, expired, burned, denied and alerts per ``bucket`` (``hour`` or
        ``day``) from ``since`` (default: 30 days, or 48 hours, before ``until``) to ``until``
        (default: now); the period as used, and the buckets. With ``team``, only the events of
        the secrets its members created (``AuditQuery.team``)."""
        step = BUCKETS.get(bucket)
        if step is None:
            raise InvalidInput("bucket", "must be hour or day")
        end = until or self.clock.now()
        start = since or end - (timedelta(days=30) if bucket == "day" else timedelta(hours=48))
        if end <= start:
            raise InvalidInput("until", "must be later than since")
        if (end - start) / step > MAX_BUCKETS:
            raise InvalidInput(
                "since", f"asks for more than {MAX_BUCKETS} buckets; use a shorter period or days"
            )
        entries = self._entries(AuditQuery(since=start, until=end, team=team))
        return start, end, await activity(entries, start=start, end=end, bucket=step)

    async def tokens(self) -> list[TokenRecord]:
        """Every user's API tokens, newest first (live ones, and ended ones for a while)."""
        return await self.store.all_tokens(now=self.clock.now(), limit=MAX_TOKENS)

    def teams(self) -> list[str]:
        """The configured teams' names, sorted (what the console's team filters offer)."""
        return sorted(self.settings.teams)

    def policy(self) -> dict[str, dict[str, object]]:
        """The rules in force, as configured: read-only, since they change only with the
        settings (docs/configuration.md). Never a secret setting's value, only whether it
        is set."""
        s = self.settings
        return {
            "create": {
                "requires": s.create_requires,
                "allowed_domains": list(s.create_allowed_domains),
                "allowed_groups": list(s.create_allowed_groups),
                "allowed_ips": list(s.create_allowed_ips),
                "organisation_domains": list(s.organisation_domains),
            },
            "secrets": {
                "min_ttl": s.min_ttl,
                "max_ttl": s.max_ttl,
                "default_ttl": s.default_ttl,
                "max_views": s.max_views,
                "max_bytes": s.max_bytes,
                "require_passphrase": s.require_passphrase,
                "passphrase_attempts": s.passphrase_attempts,
                "allowed_countries": list(s.allowed_countries),
            },
            "sign_in": {
                "configured": s.oidc_issuer is not None,
                "require_mfa": s.oidc_require_mfa,
                "fresh_sign_in_seconds": s.oidc_max_age,
                "session_idle_timeout": s.session_idle_timeout,
                "session_max_age": s.session_max_age,
            },
            "admin": {
                "groups": list(s.admin_groups),
                "max_age": s.admin_max_age,
                "admin_token_set": s.admin_token is not None,
                "metrics_token_set": s.metrics_token is not None,
            },
            "rate_limits": {
                "create": s.rate_limit_create,
                "reveal": s.rate_limit_reveal,
                "verify": s.rate_limit_verify,
                "failures": s.rate_limit_failures,
                "secret_failures": s.rate_limit_secret_failures,
                "admin": s.rate_limit_admin,
            },
            "teams": {name: team.rules() for name, team in sorted(s.teams.items())},
            "audit": {
                "retention_days": s.audit_days,
                "checkpoint_interval": s.audit_checkpoint_interval,
                "checkpoint_file_set": s.audit_checkpoint_file is not None,
                "checkpoint_url_set": s.audit_checkpoint_url is not None,
            },
        }
