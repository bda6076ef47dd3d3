"""Whether a sign-in carried a second factor: an ``amr`` value from ``BURNLINK_OIDC_MFA_AMR``
(RFC 8176 names: ``otp``, ``hwk``, ``mfa``...) or an ``acr`` from ``BURNLINK_OIDC_MFA_ACR``."""

from __future__ import annotations

from burnlink.config import Settings
from burnlink.identity.oidc import IdentityClaims

__all__ = ["has_second_factor", "missing_factor"]


def has_second_factor(claims: IdentityClaims, settings: Settings) -> bool:
    """Whether ``claims`` show a second factor the operator accepts."""
    accepted = set(settings.oidc_mfa_amr)
    if any(method in accepted for method in claims.amr):
        return True
    return claims.acr is not None and claims.acr in settings.oidc_mfa_acr


def missing_factor(claims: IdentityClaims, settings: Settings) -> str:
    """What the user is told when ``BURNLINK_OIDC_REQUIRE_MFA`` refuses their sign-in."""
    shown = ", ".join(claims.amr) or "none"
    wanted = ", ".join(settings.oidc_mfa_amr)
    text = (
        "This server requires a second factor (such as a one-time code or a security key)"
        f" at sign-in. Your identity provider reported these sign-in methods: {shown};"
        f" any of these would do: {wanted}"
    )
    if settings.oidc_mfa_acr:
        text += f", or an authentication level of {', '.join(settings.oidc_mfa_acr)}"
    return (
        text + ". Sign in again with your second factor, or ask your administrator to set one up."
    )
