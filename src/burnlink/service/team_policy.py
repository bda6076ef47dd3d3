"""``TeamRules``: the rules one creator's teams set, applied to a new secret (docs/identity.md §
Teams).

What can be applied is applied: a create without a TTL gets the server's default cut to the
teams' ``max_ttl``, ``recipients_require_mfa`` sets ``require_mfa`` on the secret, and the teams'
countries become the secret's allowed countries when it names none. What the sender asked
beyond the rules is refused with ``TeamPolicyRefused`` (``403 team_policy``, naming the rule
and the teams that set it); a creator whose teams may not create at all gets
``CreateNotAllowed``. The same rules hold for a browser session, an API token and both modes of
``POST /api/v1/secrets``: ``SecretService.create`` applies them, and everything creates
through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import msgspec

from burnlink.config import Settings
from burnlink.errors import CreateNotAllowed, TeamPolicyRefused
from burnlink.identity.principal import Principal
from burnlink.models import AccessPolicy
from burnlink.policy import DOMAIN_PREFIX, GROUP_PREFIX
from burnlink.teams import Resolution, resolve

__all__ = ["TeamRules"]


@dataclass(frozen=True, slots=True)
class TeamRules:
    """The effective rules for one creator: the server's, tightened by their teams."""

    resolution: Resolution
    default_ttl: int
    organisation_domains: frozenset[str]

    @classmethod
    def of(cls, settings: Settings, principal: Principal | None) -> TeamRules:
        """The rules for ``principal`` (``None``: anonymous, in no team)."""
        return cls(
            resolution=resolve(
                settings.teams,
                () if principal is None else principal.groups,
                max_ttl=settings.max_ttl,
                max_views=settings.max_views,
                require_passphrase=settings.require_passphrase,
            ),
            default_ttl=settings.default_ttl,
            organisation_domains=frozenset(settings.organisation_domains),
        )

    @property
    def teams(self) -> tuple[str, ...]:
        """The creator's configured teams."""
        return self.resolution.teams

    @property
    def default_ttl_cut(self) -> int:
        """The lifetime of a secret created without a TTL."""
        return min(self.default_ttl, self.resolution.max_ttl)

    def check_may_create(self) -> None:
        """Return when the teams let the creator create at all; else ``CreateNotAllowed``."""
        if self.resolution.refusal is not None:
            raise CreateNotAllowed(self.resolution.refusal)

    def apply(
        self,
        *,
        ttl: int | None,
        max_views: int | None,
        has_passphrase: bool,
        policy: AccessPolicy,
    ) -> tuple[int | None, AccessPolicy]:
        """The TTL and access policy of a new secret under these rules; raises
        ``CreateNotAllowed`` or ``TeamPolicyRefused`` (the first rule broken, in the order
        of the keys in docs/identity.md)."""
        self.check_may_create()
        r = self.resolution
        if not r.teams:
            return ttl, policy
        if ttl is None:
            ttl = self.default_ttl_cut
        elif "ttl" in r.imposed and ttl > r.max_ttl:
            self._refuse("ttl", f"Your teams allow a lifetime of at most {r.max_ttl} seconds.")
        if "max_views" in r.imposed and (1 if max_views is None else max_views) > r.max_views:
            self._refuse("max_views", f"Your teams allow at most {r.max_views} views.")
        if r.require_passphrase and "passphrase" in r.imposed and not has_passphrase:
            self._refuse("passphrase", "Your teams require a passphrase on every secret.")
        if r.recipients_required and not policy.recipients:
            self._refuse(
                "recipients",
                "Your teams require recipients on every secret: the signed-in users, groups or"
                " domains who alone may open it.",
            )
        if r.recipients_inside:
            self._check_inside(policy)
        if r.recipients_require_mfa:
            policy = msgspec.structs.replace(policy, require_mfa=True)
        if r.countries is not None:
            asked = policy.allowed_countries
            if not asked:
                policy = msgspec.structs.replace(policy, allowed_countries=r.countries)
            elif not set(asked) <= set(r.countries):
                self._refuse(
                    "allowed_countries",
                    "Your teams allow reveals only from " + ", ".join(r.countries) + ".",
                )
        return ttl, policy

    def _check_inside(self, policy: AccessPolicy) -> None:
        domains = self.organisation_domains
        outside = [
            entry
            for entry in policy.recipients
            # A group comes from the organisation's own provider; its members sign in there.
            if not entry.startswith(GROUP_PREFIX) and _domain_of(entry) not in domains
        ]
        inside = ", ".join(sorted(domains))
        if outside:
            count = len(outside)
            self._refuse(
                "recipients",
                f"Your teams allow recipients only inside the organisation ({inside});"
                f" {count} {'entry is' if count == 1 else 'entries are'} not.",
            )
        if policy.recipient_email is not None and _domain_of(policy.recipient_email) not in domains:
            self._refuse(
                "recipient_email",
                f"Your teams allow recipients only inside the organisation ({inside}).",
                rule="recipients",
            )

    def _refuse(self, field: str, message: str, *, rule: str | None = None) -> NoReturn:
        raise TeamPolicyRefused(field, message, self.resolution.by(rule or field))


def _domain_of(entry: str) -> str:
    if entry.startswith(DOMAIN_PREFIX):
        return entry[len(DOMAIN_PREFIX) :]
    return entry.rpartition("@")[2].lower()
