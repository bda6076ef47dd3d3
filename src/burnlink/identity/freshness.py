"""Fresh sign-in for sensitive actions (creating an API token, an admin action).

A sign-in counts as fresh for ``BURNLINK_OIDC_MAX_AGE`` seconds after the user authenticated
at the provider (the ID token's ``auth_time``). Older, the action is refused with
``FreshLoginRequired``, whose login link asks the provider for a new sign-in (``max_age``).
An API token is never fresh: sensitive actions need a browser session.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from burnlink.config import Settings
from burnlink.errors import FreshLoginRequired
from burnlink.identity.principal import Principal

__all__ = ["is_fresh", "require_fresh"]


def is_fresh(principal: Principal, settings: Settings, now: datetime) -> bool:
    """Whether ``principal`` signed in at the provider at most ``oidc_max_age`` seconds ago."""
    if principal.via != "session" or principal.auth_time is None:
        return False
    age = now - principal.auth_time
    return timedelta(0) - timedelta(seconds=60) <= age <= timedelta(seconds=settings.oidc_max_age)


def require_fresh(principal: Principal, settings: Settings, now: datetime) -> None:
    """Return when ``principal``'s sign-in is fresh; else raise ``FreshLoginRequired``."""
    if not is_fresh(principal, settings, now):
        raise FreshLoginRequired(max_age=settings.oidc_max_age)
