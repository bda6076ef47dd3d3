"""Who may create secrets: anyone (the default), or only signed-in users of some email
domains and groups (docs/identity.md § Who may create).

``BURNLINK_CREATE_REQUIRES=login`` refuses an anonymous create with ``LoginRequired`` (401,
with where to sign in); a signed-in user outside ``BURNLINK_CREATE_ALLOWED_DOMAINS`` and
``BURNLINK_CREATE_ALLOWED_GROUPS`` (when either is set) gets ``CreateNotAllowed`` (403). An API
token needs the ``secrets:create`` scope whatever the mode (``InsufficientScope``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from burnlink.config import Settings
from burnlink.errors import CreateNotAllowed, InsufficientScope, LoginRequired
from burnlink.identity.principal import Principal

__all__ = ["CREATE_SCOPE", "CreatePolicy"]

CREATE_SCOPE: Final = "secrets:create"


@dataclass(frozen=True, slots=True)
class CreatePolicy:
    """The server's rule on who may create, read once from the settings."""

    requires_login: bool = False
    domains: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @classmethod
    def of(cls, settings: Settings) -> CreatePolicy:
        """The policy ``BURNLINK_CREATE_*`` describe."""
        return cls(
            requires_login=settings.create_requires == "login",
            domains=frozenset(settings.create_allowed_domains),
            groups=frozenset(settings.create_allowed_groups),
        )

    def check(self, principal: Principal | None) -> None:
        """Return when ``principal`` (``None``: anonymous) may create; else raise
        ``LoginRequired``, ``InsufficientScope`` or ``CreateNotAllowed``."""
        if principal is None:
            if self.requires_login:
                raise LoginRequired("Sign in to create secrets on this server.", next_path="/")
            return
        if not principal.may(CREATE_SCOPE):
            raise InsufficientScope(CREATE_SCOPE)
        if self.requires_login and (self.domains or self.groups) and not self._member(principal):
            raise CreateNotAllowed

    def allows(self, principal: Principal | None) -> bool:
        """Whether ``check`` would let ``principal`` create."""
        try:
            self.check(principal)
        except (LoginRequired, InsufficientScope, CreateNotAllowed):
            return False
        return True

    def _member(self, principal: Principal) -> bool:
        email = principal.email
        domain = email.rpartition("@")[2].lower() if email and "@" in email else None
        return (domain is not None and domain in self.domains) or not self.groups.isdisjoint(
            principal.groups
        )
