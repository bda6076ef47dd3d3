"""Sign-in: starting and completing an OpenID Connect sign-in, the sessions it makes, and
signing out (docs/identity.md).

``begin`` makes the one-time values and the sealed login transaction; ``complete`` checks the
callback against it, has the provider exchange the code, verifies the ID token, applies
``BURNLINK_OIDC_REQUIRE_MFA``, and stores a new session (by digest); a refused callback counts
as a failure of the client, and a client past the failure limit is refused at once.
``resolve`` turns a session id into a ``Principal`` (touching it: idle and absolute timeouts);
``end`` deletes it.
Each sign-in, sign-out and refused sign-in is audited, naming the user as the event's
``actor`` once known (never a code, token or session id).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from burnlink.audit.events import AuditEventType
from burnlink.clock import Clock
from burnlink.config import Settings
from burnlink.errors import DuplicateId, SignInRefused
from burnlink.identity.mfa import has_second_factor, missing_factor
from burnlink.identity.oidc import IdentityClaims, LoginRequest, OidcClient
from burnlink.identity.principal import Principal
from burnlink.identity.sessions import (
    csrf_token,
    new_session_id,
    parse_session_id,
    session_digest,
)
from burnlink.identity.transaction import LOGIN_SECONDS, LoginTransaction, SignInKeys, safe_next
from burnlink.models import ClientInfo
from burnlink.service.access import AccessControl
from burnlink.service.reporting import Reporter
from burnlink.store.identity import SessionRecord, SignInRecords

__all__ = ["SignInService", "Started", "StartedSession"]

MAX_PARAMETER: Final = 2048
"""Longest ``code`` or ``state`` accepted on the callback."""


@dataclass(frozen=True, slots=True)
class Started:
    """A begun sign-in: where to send the browser, and the sealed transaction cookie."""

    url: str
    transaction: str


@dataclass(frozen=True, slots=True)
class StartedSession:
    """A completed sign-in: the new session id (for the cookie only) and where to go."""

    session_id: str
    next: str
    principal: Principal


class SignInService:
    """See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        sessions: SignInRecords,
        *,
        oidc: OidcClient,
        keys: SignInKeys,
        clock: Clock,
        reporter: Reporter,
        access: AccessControl | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.oidc = oidc
        self.keys = keys
        self.clock = clock
        self.reporter = reporter
        self.access = access
        """Where refused sign-ins count as the client's failures (``None``: not counted)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sessions: SignInRecords,
        *,
        clock: Clock,
        reporter: Reporter,
        access: AccessControl | None = None,
    ) -> SignInService:
        """The service the settings describe (they must configure sign-in); ``ConfigError``
        when the client secret file cannot be read. ``access`` counts refused sign-ins as
        failures of the client."""
        secret = settings.oidc_secret()
        oidc = OidcClient(
            issuer=settings.oidc_issuer or "",
            client_id=settings.oidc_client_id or "",
            client_secret=secret,
            scopes=settings.oidc_scopes,
            email_claim=settings.oidc_email_claim,
            groups_claim=settings.oidc_groups_claim,
        )
        return cls(
            settings,
            sessions,
            oidc=oidc,
            keys=SignInKeys.derive(secret),
            clock=clock,
            reporter=reporter,
            access=access,
        )

    async def aclose(self) -> None:
        """Close the connection to the provider."""
        await self.oidc.aclose()

    async def begin(self, *, next: str | None, max_age: int | None, redirect_uri: str) -> Started:
        """Start a sign-in that returns to ``redirect_uri`` and then to ``next`` (a path on
        this site, else ``/``). Raises ``SignInRefused`` when the provider cannot be reached."""
        request = LoginRequest.new()
        url = await self.oidc.authorization_url(request, redirect_uri=redirect_uri, max_age=max_age)
        txn = LoginTransaction(
            state=request.state,
            nonce=request.nonce,
            verifier=request.verifier,
            next=safe_next(next),
            max_age=max_age,
            expires=int(self.clock.now().timestamp()) + LOGIN_SECONDS,
        )
        return Started(url=url, transaction=txn.seal(self.keys.login))

    async def complete(
        self,
        params: Mapping[str, str],
        *,
        transaction: str | None,
        redirect_uri: str,
        client: ClientInfo,
    ) -> StartedSession:
        """Finish a sign-in from the callback's query ``params`` and the transaction cookie.

        Raises ``SignInRefused`` (audited as ``user.sign_in_refused``) for a missing, expired
        or mismatched ``state``, an error from the provider, a code it refuses (e.g. used
        twice), an ID token that does not verify, or a missing second factor. Each counts as
        a failure of the client (as a failed reveal does; not ``provider_unavailable``, which
        is no fault of theirs), and a client past ``BURNLINK_RATE_LIMIT_FAILURES`` gets
        ``RateLimited`` before anything is checked or the provider is asked.
        """
        now = self.clock.now()
        if self.access is not None:
            await self.access.check_failures(client, now=now)
        claims: IdentityClaims | None = None
        try:
            txn = LoginTransaction.open(transaction, self.keys.login, now=now)
            state = params.get("state", "")
            if txn is None or not hmac.compare_digest(
                state.encode()[:MAX_PARAMETER], txn.state.encode()
            ):
                raise SignInRefused(
                    "state_mismatch",
                    "This sign-in link is not the one this browser started, was used already,"
                    " or is too old. Start again.",
                )
            if "error" in params:
                error = params["error"][:40]
                raise SignInRefused(
                    "provider_error",
                    f"The identity provider did not sign you in ({_printable(error)}).",
                )
            code = params.get("code", "")
            if not 0 < len(code) <= MAX_PARAMETER:
                raise SignInRefused("provider_error", "The identity provider sent no code.")
            id_token = await self.oidc.exchange_code(
                code, redirect_uri=redirect_uri, verifier=txn.verifier
            )
            claims = await self.oidc.verify_id_token(
                id_token, nonce=txn.nonce, max_age=txn.max_age, now=now
            )
            mfa = has_second_factor(claims, self.settings)
            if self.settings.oidc_require_mfa and not mfa:
                raise SignInRefused("mfa_required", missing_factor(claims, self.settings))
        except SignInRefused as exc:
            # Once the ID token verified (e.g. a missing second factor) the user is known:
            # they are the actor, as for every signed-in action; before that, nobody is.
            await self.reporter.emit(
                AuditEventType.SIGN_IN_REFUSED,
                at=now,
                client=client,
                detail={"reason": exc.reason},
                actor=None if claims is None else (claims.subject, claims.email),
            )
            if self.access is not None and exc.reason != "provider_unavailable":
                await self.access.failed(client, now=now)
            raise
        session_id = await self._new_session(claims, mfa, now)
        await self.sessions.refresh_tokens(claims.subject, email=claims.email, groups=claims.groups)
        principal = _principal(claims.subject, claims.email, claims.groups, mfa, claims.auth_time)
        await self.reporter.emit(
            AuditEventType.SIGNED_IN,
            at=now,
            client=client,
            detail={"mfa": mfa},
            actor=(claims.subject, claims.email),
        )
        return StartedSession(session_id=session_id, next=txn.next, principal=principal)

    async def _new_session(self, claims: IdentityClaims, mfa: bool, now: datetime) -> str:
        for _ in range(3):
            session_id = new_session_id()
            record = SessionRecord(
                digest=session_digest(session_id),
                subject=claims.subject,
                email=claims.email,
                groups=claims.groups,
                mfa=mfa,
                auth_time=claims.auth_time,
                created_at=now,
                last_seen=now,
                expires_at=now + timedelta(seconds=self.settings.session_max_age),
            )
            try:
                await self.sessions.put_session(record)
            except DuplicateId:  # pragma: no cover - 256 random bits
                continue
            return session_id
        raise DuplicateId  # pragma: no cover

    async def resolve(self, session_id: str | None) -> Principal | None:
        """The principal of a live session; ``None`` for a malformed, unknown, ended, idle or
        expired one (the store deletes the last two)."""
        parsed = parse_session_id(session_id)
        if parsed is None:
            return None
        record = await self.sessions.touch_session(
            session_digest(parsed),
            now=self.clock.now(),
            idle_seconds=self.settings.session_idle_timeout,
        )
        if record is None:
            return None
        return _principal(record.subject, record.email, record.groups, record.mfa, record.auth_time)

    def csrf_token(self, session_id: str) -> str:
        """The CSRF token of the session ``session_id``."""
        return csrf_token(self.keys.csrf, session_id)

    async def end(
        self, session_id: str | None, principal: Principal | None, *, client: ClientInfo
    ) -> None:
        """End the session (on every instance: it is deleted from the store) and audit it."""
        parsed = parse_session_id(session_id)
        if parsed is None:
            return
        ended = await self.sessions.end_session(session_digest(parsed))
        if ended and principal is not None:
            await self.reporter.emit(
                AuditEventType.SIGNED_OUT,
                at=self.clock.now(),
                client=client,
                actor=(principal.subject, principal.email),
            )

    async def end_session_url(self, *, post_logout_redirect_uri: str) -> str | None:
        """Where to sign out at the provider too (RP-initiated logout), when it supports it."""
        return await self.oidc.end_session_url(post_logout_redirect_uri=post_logout_redirect_uri)


def _principal(
    subject: str, email: str | None, groups: tuple[str, ...], mfa: bool, auth_time: datetime
) -> Principal:
    return Principal(
        subject=subject, email=email, groups=groups, mfa=mfa, auth_time=auth_time, via="session"
    )


def _printable(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-." else "?" for ch in text)
