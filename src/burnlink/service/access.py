"""The gate between a request and a secret: rate limits, address rules, recipient codes.

``SecretService`` asks the gate before it creates, looks up or consumes; the gate raises
``RateLimited``, ``IpDenied``, ``GeoDenied``, ``VerificationRequired`` or ``VerificationFailed``
(``CodesSpent`` when it locked a secret whose codes ran out), and records each refusal as an
event (``access.denied_ip``, ``access.denied_geo``, ``otp.failed``, ``rate.limited``,
``secret.locked``; and ``otp.sent``, ``otp.verified``), which the secret's receipt lists too.
It also checks the admin token (``admin.denied``, limited per client).

A client that keeps hitting a rate limit writes one ``rate.limited`` event per action and
minute, not one per request, so a flood cannot fill the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import NoReturn

from pydantic import SecretStr

from burnlink.audit.events import AuditEventType, Scalar, list_label
from burnlink.config import Limit, Settings
from burnlink.errors import (
    AdminRequired,
    CodesSpent,
    FreshLoginRequired,
    GeoDenied,
    InvalidInput,
    IpDenied,
    LoginRequired,
    MailUnavailable,
    MetricsTokenRequired,
    MfaRequired,
    RateLimited,
    RecipientMismatch,
    SecretUnavailable,
    VerificationFailed,
    VerificationRequired,
)
from burnlink.geo import CountryResolver
from burnlink.identity.principal import Principal
from burnlink.mailer import Mailer
from burnlink.models import AccessPolicy, ClientInfo, CodePut, EndReason, SecretMeta, Viewer
from burnlink.policy import country_allowed, ip_allowed, mask_email, recipient_matches
from burnlink.service.rate_limits import LimitCheck, RateLimiter, client_key
from burnlink.service.reporting import Reporter, recipients_label
from burnlink.store import Reveal, SecretStore, ViewRecord

CODE_DIGITS = 6
CODE_VALID = timedelta(minutes=10)
CODE_TRIES = 5
CODE_RESEND_GAP = timedelta(seconds=60)
CODES_PER_VIEW = 3
"""Codes mailed for one secret between two successful verifications; when the last is used up
or expired, asking for another locks (destroys) the secret."""
RATE_LIMIT_AUDIT_WINDOW = 60
"""How old a recipient's sign-in may be when their secret has ``require_mfa``."""
_CLOCK_SKEW = timedelta(seconds=60)


def code_digest(secret_id: str, code: str) -> bytes:
    """The at-rest form of a one-time code, bound to its secret."""
    return hashlib.sha256(f"burnlink v1 code:{secret_id}:{code}".encode()).digest()


class AccessControl:
    """Applies the server's and each secret's access rules."""

    def __init__(
        self,
        store: SecretStore,
        settings: Settings,
        *,
        geo: CountryResolver,
        mailer: Mailer | None,
        reporter: Reporter | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.geo = geo
        self.mailer = mailer
        self.reporter = reporter or Reporter()
        self.reporter.attach(store)
        self.limiter = RateLimiter(
            store,
            settings.limit("failures"),
            settings.limit("secret_failures"),
            settings.limit("admin"),
        )

    async def _limit(
        self,
        action: str,
        limit: Limit | None,
        client: ClientInfo,
        now: datetime,
        secret_id: str | None = None,
    ) -> None:
        """Count one ``action`` and ``judge`` it (``secret_id`` only names the secret in a
        ``rate.limited`` event: the failure counts are ``lookup``'s)."""
        checks = self.limiter.checks(action, limit, client.ip)
        await self.count(checks, client, now=now, secret_id=secret_id)

    async def count(
        self,
        checks: Sequence[LimitCheck],
        client: ClientInfo,
        *,
        now: datetime,
        secret_id: str | None = None,
    ) -> None:
        """Send ``checks``' hits to the store on their own, then ``judge`` the totals."""
        if checks:
            counts = await self.store.hits([check.hit for check in checks], now=now)
            await self.judge(checks, counts, client, now=now, secret_id=secret_id)

    async def judge(
        self,
        checks: Sequence[LimitCheck],
        counts: Sequence[int],
        client: ClientInfo,
        *,
        now: datetime,
        secret_id: str | None = None,
    ) -> None:
        """``RateLimiter.judge`` of the store's totals for ``checks``; the first refusal per
        client, limit and minute is audited (``rate.limited``)."""
        try:
            self.limiter.judge(checks, counts, now=now)
        except RateLimited as exc:
            # Every refusal names one of the checks, so the fallback is never reached.
            rule = next((c.rule for c in checks if c.name == exc.limit), None)  # pragma: no mutate
            await self._audit_limited(exc, rule, client, now, secret_id)
            raise

    async def _audit_limited(
        self,
        exc: RateLimited,
        limit: Limit | None,
        client: ClientInfo,
        now: datetime,
        secret_id: str | None,
    ) -> None:
        """Audit the first refusal per client, limit and minute (``rate.limited``)."""
        bucket = f"audited:{exc.limit}:{client_key(client.ip)}"
        if await self.store.hit(bucket, window=RATE_LIMIT_AUDIT_WINDOW, now=now) == 1:
            rule = self.limiter.rule(exc.limit, limit)
            # Every limit that refuses has a rule: None is only a fallback.
            shown = None if rule is None else f"{rule.count}/{rule.window}s"  # pragma: no mutate
            await self.reporter.emit(
                AuditEventType.RATE_LIMITED,
                at=now,
                secret_id=secret_id,
                client=client,
                policy={
                    "limit": exc.limit,
                    "rule": shown,
                },
                detail={"retry_after": exc.retry_after},
            )

    # -- creating -------------------------------------------------------------------------

    async def before_create(
        self, policy: AccessPolicy, has_passphrase: bool, client: ClientInfo, *, now: datetime
    ) -> list[LimitCheck]:
        """Server policy for new secrets: who may create and the required fields; return the
        create rate's checks, for the store to count with the insert (``create(hits=...)``,
        then ``judge``).

        A request refused here for its fields is counted against the create rate first (one
        over it is refused as ``RateLimited``), in a round trip of its own.
        """
        if not ip_allowed(client.ip, self.settings.create_allowed_ips):
            await self.reporter.emit(
                AuditEventType.ACCESS_DENIED_IP,
                at=now,
                client=client,
                policy={"rule": "create_allowed_ips"},
            )
            raise IpDenied
        checks = self.limiter.checks("create", self.settings.limit("create"), client.ip)
        try:
            if self.settings.require_passphrase and not has_passphrase:
                raise InvalidInput(
                    "passphrase", "this server requires a passphrase on every secret"
                )
            if policy.recipients and not self.settings.sign_in:
                raise InvalidInput(
                    "recipients", "sign-in is not configured on this server (BURNLINK_OIDC_ISSUER)"
                )
            if policy.recipient_email is not None and self.mailer is None:
                raise InvalidInput(
                    "recipient_email",
                    "email verification is not configured on this server (BURNLINK_SMTP_URL)",
                )
        except InvalidInput:
            await self.count(checks, client, now=now)
            raise
        return checks

    # -- revealing ------------------------------------------------------------------------

    async def lookup(
        self,
        secret_id: str | None,
        client: ClientInfo,
        *,
        now: datetime,
        access_digest: bytes = b"",  # pragma: no mutate - unused without an id
        view: ViewRecord | None = None,
    ) -> Reveal:
        """Count this reveal against the rate limits and look up ``secret_id`` (a well-formed
        id, or ``None``) in one store operation (``reveal``), which with ``view`` also takes
        the view of a secret that needs nothing but its link (``access_digest``).

        A client that failed too often on ``secret_id`` or on any secrets, or asks too fast,
        is refused (``RateLimited``) before anything is revealed (the store takes no view past
        a limit); the request counts anyway.
        """
        reveal = self.settings.limit("reveal")
        checks = self.limiter.checks(
            "reveal", reveal, client.ip, failures=True, secret_id=secret_id
        )
        if secret_id is None:
            await self.count(checks, client, now=now)
            return Reveal([], None)  # pragma: no mutate - no caller reads counts without an id
        hits = [check.limited for check in checks]
        found = await self.store.reveal(secret_id, access_digest, now=now, hits=hits, view=view)
        await self.judge(checks, found.counts, client, now=now, secret_id=secret_id)
        return found

    async def check_failures(self, client: ClientInfo, *, now: datetime) -> None:
        """Refuse a client already past ``BURNLINK_RATE_LIMIT_FAILURES`` (``RateLimited``,
        audited as ``rate.limited``); this counts nothing (a refused sign-in, for example,
        counts with ``failed``)."""
        checks = self.limiter.checks("failures", None, client.ip, failures=True)
        await self.count(checks, client, now=now)

    async def failed(
        self, client: ClientInfo, *, now: datetime, secret_id: str | None = None
    ) -> None:
        """Count a failed reveal (wrong key, passphrase or code, refused address), of
        ``secret_id`` when the request named a well-formed one."""
        await self.limiter.record_failure(client.ip, now=now, secret_id=secret_id)

    async def check_admin(self, token: str, client: ClientInfo, *, now: datetime) -> None:
        """Let a request with ``BURNLINK_ADMIN_TOKEN`` through; else ``AdminRequired``.

        A client past ``BURNLINK_RATE_LIMIT_ADMIN`` wrong tokens is refused first
        (``RateLimited``), whatever token it sends. Each wrong token is counted and audited
        (``admin.denied``), never with the token itself.
        """
        await self._check_token(token, self.settings.admin_token, "admin_token", client, now)

    async def check_metrics(self, token: str, client: ClientInfo, *, now: datetime) -> None:
        """Let a scrape with ``BURNLINK_METRICS_TOKEN`` (which must be set) through; else
        ``MetricsTokenRequired``, counted and audited as a wrong admin token is (``admin.denied``
        with ``policy.rule`` ``metrics_token``), against the same ``BURNLINK_RATE_LIMIT_ADMIN``."""
        await self._check_token(token, self.settings.metrics_token, "metrics_token", client, now)

    async def _check_token(
        self,
        token: str,
        expected: SecretStr | None,
        rule: str,
        client: ClientInfo,
        now: datetime,
    ) -> None:
        try:
            await self.limiter.check_admin(client.ip, now=now)
        except RateLimited as exc:
            await self._audit_limited(exc, None, client, now, None)
            raise
        # Both sides hashed first: compare_digest then takes equal lengths, and the time it
        # takes says nothing of the expected token's length either.
        given = hashlib.sha256(token.encode()).digest()
        expected_bytes = b""  # pragma: no mutate - with none set, nothing is let through below
        if expected is not None:
            expected_bytes = expected.get_secret_value().strip().encode()
        wanted = hashlib.sha256(expected_bytes).digest()
        if hmac.compare_digest(given, wanted) and expected is not None:
            return
        await self.limiter.record_admin_failure(client.ip, now=now)
        await self.reporter.emit(
            AuditEventType.ADMIN_DENIED,
            at=now,
            client=client,
            policy={"rule": rule if expected is not None else f"{rule}_unset"},
            detail={"given": bool(token)},
        )
        raise AdminRequired if rule == "admin_token" else MetricsTokenRequired

    def server_allows(self, client: ClientInfo) -> bool:
        """Whether the server's own country rule lets ``client`` reveal (a secret without
        rules of its own then needs no ``check_address``)."""
        server = self.settings.allowed_countries
        if not server:
            return True
        return country_allowed(client.country or self.geo.country_of(client.ip), server, ())

    async def check_address(self, meta: SecretMeta, client: ClientInfo, *, now: datetime) -> None:
        """The secret's IP and country rules and the server's country rule."""
        policy = meta.policy
        if not ip_allowed(client.ip, policy.allowed_ips):
            rule = {"rule": "allowed_ips", "allowed": list_label(policy.allowed_ips)}
            await self._refuse(meta, AuditEventType.ACCESS_DENIED_IP, client, now, rule)
            raise IpDenied
        server_countries = self.settings.allowed_countries
        if policy.allowed_countries or policy.denied_countries or server_countries:
            country = client.country or self.geo.country_of(client.ip)
            allowed = country_allowed(country, policy.allowed_countries, policy.denied_countries)
            if not allowed or not country_allowed(country, server_countries, ()):
                listed = {
                    "rule": "countries" if not allowed else "server_countries",
                    "allowed": list_label(policy.allowed_countries),
                    "denied": list_label(policy.denied_countries),
                    "server": list_label(server_countries),
                }
                rule = {name: value for name, value in listed.items() if value is not None}
                await self._refuse(meta, AuditEventType.ACCESS_DENIED_GEO, client, now, rule)
                raise GeoDenied

    async def check_identity(
        self, meta: SecretMeta, principal: Principal | None, client: ClientInfo, *, now: datetime
    ) -> None:
        """A secret bound to ``recipients`` needs a signed-in ``principal`` that matches one
        entry (``policy.recipient_matches``), and with ``require_mfa`` a session signed in
        with a second factor at most ``BURNLINK_RECIPIENT_MAX_AGE`` seconds ago.

        Anonymous: ``LoginRequired`` (not counted, not audited: it only asks to sign in).
        No entry matches: ``RecipientMismatch``; matching but an API token or a sign-in
        without a second factor: ``MfaRequired``; both counted as a failed reveal and audited
        (``access.denied_identity`` with the user as ``actor``). A second-factor sign-in that
        is too old: ``FreshLoginRequired`` (audited, not counted). Each refusal leaves the
        secret as it was and the login link comes back to its page (``/s/{id}``).
        """
        policy = meta.policy
        if not policy.recipients and not policy.require_mfa:
            return
        back = f"/s/{meta.secret_id}"
        if principal is None:
            raise LoginRequired(
                "This secret is for signed-in recipients: sign in, then reveal it again.",
                next_path=back,
            )
        actor = (principal.subject, principal.email)
        rule: dict[str, Scalar] = {
            "rule": "recipients",
            "recipients": recipients_label(policy.recipients),
            "require_mfa": policy.require_mfa,
        }
        matched = recipient_matches(policy.recipients, principal.email, principal.groups)
        if matched is None:
            await self._refuse(
                meta, AuditEventType.ACCESS_DENIED_IDENTITY, client, now, rule, actor=actor
            )
            raise RecipientMismatch
        if not policy.require_mfa:
            return
        rule["rule"] = "require_mfa"
        detail: dict[str, Scalar] = {"via": principal.via, "mfa": principal.mfa}
        if principal.via != "session" or not principal.mfa:
            await self._refuse(
                meta,
                AuditEventType.ACCESS_DENIED_IDENTITY,
                client,
                now,
                rule,
                detail,
                actor=actor,
            )
            raise MfaRequired
        if principal.auth_time is None or not (
            -_CLOCK_SKEW
            <= now - principal.auth_time
            <= timedelta(seconds=self.settings.recipient_max_age)
        ):
            detail["fresh"] = False
            await self.reporter.emit(
                AuditEventType.ACCESS_DENIED_IDENTITY,
                at=now,
                secret_id=meta.secret_id,
                client=client,
                policy=rule,
                detail=detail,
                actor=actor,
            )
            raise FreshLoginRequired(max_age=self.settings.recipient_max_age, next_path=back)

    async def _refuse(
        self,
        meta: SecretMeta,
        type: AuditEventType,
        client: ClientInfo,
        now: datetime,
        rule: Mapping[str, Scalar],
        detail: Mapping[str, Scalar] | None = None,
        *,
        actor: tuple[str, str | None] | None = None,
        viewer: Viewer | None = None,
    ) -> None:
        await self.failed(client, now=now, secret_id=meta.secret_id)
        await self.reporter.emit(
            type,
            at=now,
            secret_id=meta.secret_id,
            client=client,
            policy=rule,
            detail=detail,
            actor=actor,
            viewer=viewer,
        )

    async def verify_recipient(
        self,
        meta: SecretMeta,
        otp: str | None,
        client: ClientInfo,
        *,
        now: datetime,
        viewer: Viewer | None = None,
    ) -> None:
        """Require a valid one-time code when the secret names a recipient.

        Without ``otp`` a fresh code is mailed (at most one a minute, ``CODES_PER_VIEW`` until
        one matches) and ``VerificationRequired`` raised; once those are spent the secret is
        locked (``CodesSpent``). A wrong code raises ``VerificationFailed``. The receipt's
        lines name ``viewer``, the signed-in recipient asking, if any.
        """
        address = meta.policy.recipient_email
        if address is None:
            return
        hint = mask_email(address)
        if otp is None:
            await self._send_code(meta, address, hint, client, now, viewer)
        check = await self.store.check_code(
            meta.secret_id, code_digest(meta.secret_id, otp), now=now
        )
        if check is None:
            raise VerificationRequired(
                hint, "No valid code. Reveal without 'otp' to have a new code sent."
            )
        if not check.matched:
            rule: dict[str, Scalar] = {"rule": "recipient_email", "recipient": hint}
            detail: dict[str, Scalar] = {"tries_left": check.tries_left}
            await self._refuse(
                meta, AuditEventType.OTP_FAILED, client, now, rule, detail, viewer=viewer
            )
            raise VerificationFailed(hint, check.tries_left)
        await self.reporter.emit(
            AuditEventType.OTP_VERIFIED,
            at=now,
            secret_id=meta.secret_id,
            client=client,
            viewer=viewer,
        )

    async def _send_code(
        self,
        meta: SecretMeta,
        address: str,
        hint: str,
        client: ClientInfo,
        now: datetime,
        viewer: Viewer | None,
    ) -> NoReturn:
        if self.mailer is None:
            raise MailUnavailable("not configured")
        await self._limit("verify", self.settings.limit("verify"), client, now, meta.secret_id)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        put = await self.store.put_code(
            meta.secret_id,
            code_digest(meta.secret_id, code),
            now=now,
            expires_at=now + CODE_VALID,
            tries=CODE_TRIES,
            resend_after=now - CODE_RESEND_GAP,
            max_codes=CODES_PER_VIEW,
        )
        if put is CodePut.GONE:
            raise SecretUnavailable
        if put is CodePut.TOO_SOON:
            raise VerificationRequired(
                hint,
                f"No new code can be sent yet: one went to {hint} less than a minute ago, or the"
                f" last of {CODES_PER_VIEW} is still valid. Send it as 'otp'.",
            )
        if put is CodePut.SPENT:
            await self._lock(meta, hint, client, now, viewer)
        await self.mailer.send_code(
            address,
            code,
            minutes_valid=CODE_VALID // timedelta(minutes=1),
            language=client.language,
        )
        await self.reporter.emit(
            AuditEventType.OTP_SENT,
            at=now,
            secret_id=meta.secret_id,
            client=client,
            policy={"rule": "recipient_email", "recipient": hint},
            viewer=viewer,
        )
        raise VerificationRequired(hint)

    async def _lock(
        self,
        meta: SecretMeta,
        hint: str,
        client: ClientInfo,
        now: datetime,
        viewer: Viewer | None,
    ) -> NoReturn:
        """Destroy a secret whose codes are all spent, as ``locked``; raise ``CodesSpent``
        (``SecretUnavailable`` if it went meanwhile).

        ``secret.locked`` is recorded in the store operation that ends the secret.
        """
        secret_id = meta.secret_id
        policy: dict[str, Scalar] = {"rule": "recipient_email", "max_codes": CODES_PER_VIEW}
        event, recorded = self.reporter.happened(
            AuditEventType.SECRET_LOCKED,
            at=now,
            secret_id=secret_id,
            client=client,
            policy=policy,
            unwatch=secret_id,
            viewer=viewer,
        )
        if not await self.store.burn(
            secret_id, now=now, reason=EndReason.LOCKED, events=[recorded]
        ):
            raise SecretUnavailable
        self.reporter.recorded()
        await self.reporter.publish(event, secret_id=secret_id, notify_url=meta.policy.notify_url)
        raise CodesSpent(hint, CODES_PER_VIEW)
