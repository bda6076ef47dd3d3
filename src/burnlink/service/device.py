"""CLI sign-in with the device authorization grant (RFC 8628), ending in a burnlink API token
(docs/identity.md § CLI sign-in).

``start`` has the provider make a user code (``identity.device``); ``complete`` polls the
provider once for the CLI and, when the user approved, verifies the ID token exactly as the
browser sign-in does (signature against the JWKS, ``iss``, ``aud``, ``exp``, ``iat``; this
grant has no ``nonce``), applies ``BURNLINK_OIDC_REQUIRE_MFA`` and the create policy's
domains and groups (``BURNLINK_CREATE_ALLOWED_DOMAINS``/``_GROUPS`` with
``BURNLINK_CREATE_REQUIRES=login``: a token for a user who may not create would be no use) and
the user's teams (``create = "nobody"``),
and makes an API token with
every scope (``DEFAULT_DAYS`` days) that is returned once. A completed sign-in is audited as
``user.signed_in`` with ``via: device``; a refused one as ``user.sign_in_refused``. Neither
the device code nor the token is ever logged or kept (only the token's digest, by the store).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from burnlink.audit.events import AuditEventType
from burnlink.config import Settings
from burnlink.errors import CreateNotAllowed, SignInRefused
from burnlink.identity import device
from burnlink.identity.device import DeviceAuthorization
from burnlink.identity.mfa import has_second_factor, missing_factor
from burnlink.identity.oidc import IdentityClaims
from burnlink.identity.principal import SCOPES, Principal
from burnlink.models import ClientInfo
from burnlink.service.create_policy import CreatePolicy
from burnlink.service.signin import SignInService
from burnlink.service.team_policy import TeamRules
from burnlink.service.tokens import NewToken, TokenService, check_name

__all__ = ["DEFAULT_DAYS", "DEFAULT_NAME", "DeviceSignIn"]

DEFAULT_DAYS: Final = 90
DEFAULT_NAME: Final = "burnlink CLI"


def token_name(name: str | None) -> str:
    """The new token's name: ``name`` trimmed (1-64 printable characters), else the default."""
    return DEFAULT_NAME if name is None else check_name(name)


class DeviceSignIn:
    """See the module docstring; built on the app's ``SignInService`` (its provider client,
    settings, clock and audit reporter) and the app's ``TokenService``, which makes and audits
    the token."""

    def __init__(self, signin: SignInService, tokens: TokenService) -> None:
        self.signin = signin
        self.tokens = tokens

    async def start(self) -> DeviceAuthorization:
        """A new device authorization at the provider; ``SignInRefused``
        (``device_flow_unavailable``) when the provider does not offer the grant to us."""
        return await device.start(self.signin.oidc)

    async def complete(self, device_code: str, *, name: str | None, client: ClientInfo) -> NewToken:
        """The API token for the user who approved ``device_code``.

        Raises ``SignInRefused``: ``authorization_pending`` or ``slow_down`` (ask again
        later, not audited), ``access_denied``, ``expired_token``, ``id_token_invalid``,
        ``id_token_expired``, ``mfa_required``, ``provider_error``, ``provider_unavailable``
        ``create_not_allowed`` (audited as ``user.sign_in_refused``); ``InvalidInput`` for a
        bad ``name``.
        """
        clean_name = token_name(name)
        settings, now = self.signin.settings, self.signin.clock.now()
        claims: IdentityClaims | None = None
        try:
            id_token = await device.poll(self.signin.oidc, device_code)
            claims = await self.signin.oidc.verify_id_token(
                id_token, nonce=None, max_age=None, now=now
            )
            mfa = has_second_factor(claims, settings)
            if settings.oidc_require_mfa and not mfa:
                raise SignInRefused("mfa_required", missing_factor(claims, settings))
            principal = Principal(
                subject=claims.subject,
                email=claims.email,
                groups=claims.groups,
                mfa=mfa,
                auth_time=claims.auth_time,
                via="session",
            )
            _check_create_policy(principal, settings)
        except SignInRefused as exc:
            if exc.reason not in device.PENDING:
                await self.signin.reporter.emit(
                    AuditEventType.SIGN_IN_REFUSED,
                    at=now,
                    client=client,
                    detail={"reason": exc.reason, "via": "device"},
                    actor=None if claims is None else (claims.subject, claims.email),
                )
            raise
        # Their tokens follow the groups this sign-in brought (the new one has them already).
        await self.signin.sessions.refresh_tokens(
            claims.subject, email=claims.email, groups=claims.groups
        )
        # Every scope: the user just signed in at the provider, as fresh as a sign-in gets.
        issued = await self.tokens.issue(
            principal, name=clean_name, scopes=SCOPES, days=DEFAULT_DAYS, client=client, now=now
        )
        await self.signin.reporter.emit(
            AuditEventType.SIGNED_IN,
            at=now,
            client=client,
            detail={"mfa": mfa, "via": "device"},
            actor=(claims.subject, claims.email),
        )
        return issued


def _check_create_policy(principal: Principal, settings: Settings) -> None:
    # As the token to be issued will act: with its scopes, not a session's.
    as_token = replace(principal, via="token", scopes=frozenset(SCOPES))
    try:
        CreatePolicy.of(settings).check(as_token)
        # A team with ``create = "nobody"`` makes the token as useless (docs/identity.md § Teams).
        TeamRules.of(settings, as_token).check_may_create()
    except CreateNotAllowed as exc:
        raise SignInRefused("create_not_allowed", str(exc)) from None
