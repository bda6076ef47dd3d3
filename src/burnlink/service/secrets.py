"""SecretService: the only home of burnlink's rules for creating, revealing and burning secrets.

The web API and the CLI's server side call this; it calls a ``SecretStore``. It sees link keys
and passphrases only in the curl convenience mode (``create_plaintext``/``reveal_plaintext``)
and forgets them when the call returns.

Every action is one event (``events``), built by the ``Reporter`` and recorded by the store in
the same atomic operation as the change it describes: the create, the view, the counted
passphrase attempt (with the lockout, when it is the last), the burn. So an action and its
event happen together or not at all, whatever fails and whenever the process dies; the
``Sealer`` then moves the events into the audit log. What follows an action that took effect
(metrics, webhooks, alert rules) is ``Reporter.publish``.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import ClassVar, NoReturn

import anyio
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink.audit import AuditBackend, Watched
from burnlink.audit.events import AuditEvent, AuditEventType, Scalar
from burnlink.audit.figures import TEAMS, teams_label
from burnlink.clock import Clock
from burnlink.config import Settings
from burnlink.crypto import Payload, new_link_key
from burnlink.crypto import access_token as token_of_link
from burnlink.envelope import TAG_BYTES, Envelope, check_content_size, max_framed_bytes
from burnlink.errors import (
    AuditUnavailable,
    DuplicateId,
    InvalidInput,
    PassphraseRequired,
    PayloadTooLarge,
    SecretUnavailable,
    StorageError,
    StorageUnavailable,
    WrongPassphrase,
)
from burnlink.geo import CountryResolver, open_resolver
from burnlink.identity.principal import Principal
from burnlink.ids import (
    TOKEN_BYTES,
    digest_matches,
    is_secret_id,
    new_secret_id,
    new_token,
    token_digest,
)
from burnlink.mailer import Mailer
from burnlink.models import (
    AccessPolicy,
    ClientInfo,
    Consumed,
    EndReason,
    Event,
    EventKind,
    PassphraseGate,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
    Viewer,
)
from burnlink.redacted import Redacted
from burnlink.service.access import AccessControl
from burnlink.service.create_policy import CreatePolicy
from burnlink.service.curl_mode import (
    MAX_PASSPHRASE_CHARS,
    check_passphrase,
    keys_for,
    open_stored,
    seal_payload,
)
from burnlink.service.receipts import capped_kinds, proof_of_burn
from burnlink.service.reporting import Reporter, policy_labels
from burnlink.service.sweep import sweep
from burnlink.service.team_policy import TeamRules
from burnlink.store import SecretStore, ViewRecord
from burnlink.store.secrets import STAND_IN_DIGEST

__all__ = ["MAX_PASSPHRASE_CHARS", "CreatedSecret", "Identify", "Receipt", "SecretService"]

Identify = Callable[[], Awaitable[Principal | None]]
"""Who a reveal acts for (``None``: anonymous), asked only when the secret is bound to
recipients: resolving a session or an API token costs a store call."""

OPENED_PER_HOUR = 20
"""Page opens of one secret recorded per hour; more are not (a flood cannot fill the log)."""
_FAILURE_ROUNDS = 2
"""Tries to count one wrong passphrase. Attempts only go down, so only a try made as not the
last can find that it is the last, and the next try (the lockout) counts or finds the secret
gone."""
_CREATE_TRIES = 3
NO_RULES = AccessPolicy()
_MAX_VIEWS_PLACEHOLDER = b'"detail":{"max_views":0}'
_MAX_VIEWS_MEMBER = b'"detail":{"max_views":'


class CreatedSecret(Redacted, frozen=True):
    """A stored secret, as its sender learns it once (a ``Struct``, built on every create;
    its repr leaves out the manage token)."""

    _HIDDEN: ClassVar[tuple[str, ...]] = ("manage_token",)

    secret_id: str
    manage_token: bytes
    expires_at: datetime
    max_views: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """The sender's view of a secret at one moment."""

    record: ReceiptRecord
    state: str
    views_left: int
    events: tuple[Event, ...]
    statement: str | None = None
    """The signed proof of burn (``signing``), once the secret has ended."""
    capped: tuple[EventKind, ...] = ()
    """Kinds with more events than the receipt lists (``history.capped_kinds``)."""


class SecretService:
    """Create, peek, consume, reveal, burn and sweep secrets under the configured limits."""

    def __init__(
        self,
        store: SecretStore,
        settings: Settings,
        clock: Clock,
        *,
        geo: CountryResolver | None = None,
        mailer: Mailer | None = None,
        reporter: Reporter | None = None,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> None:
        """Without ``reporter`` nothing is audited (library use, tests); without
        ``signing_key`` receipts carry no statement."""
        self.store = store
        self.settings = settings
        self.clock = clock
        self.reporter = reporter or Reporter()
        self.reporter.attach(store)
        self.signing_key = signing_key
        self.geo = geo or open_resolver(settings.geoip_db)
        self.access = AccessControl(
            store, settings, geo=self.geo, mailer=mailer, reporter=self.reporter
        )
        self.create_policy = CreatePolicy.of(settings)
        self._anonymous_rules = TeamRules.of(settings, None)
        # Server-side PBKDF2 costs hundreds of ms of CPU; bound how many run at once.
        self._kdf_limiter = anyio.CapacityLimiter(settings.kdf_concurrency)

    @property
    def audit_log(self) -> AuditBackend | None:
        """The audit log events are written to, if there is one."""
        return self.reporter.audit

    @property
    def recipient_verification(self) -> bool:
        """Whether secrets may name a recipient who proves an address (mail is set up)."""
        return self.access.mailer is not None

    @property
    def notifications(self) -> bool:
        """Whether secrets may have a ``notify_url`` (``BURNLINK_WEBHOOK_SECRET`` is set)."""
        return self.reporter.notifications

    async def seal_pending(self) -> None:
        """Seal the events recorded so far into the audit log (``AuditUnavailable`` when it
        or the store does not answer)."""
        try:
            await self.reporter.sealer.drain()
        except StorageError:
            raise AuditUnavailable from None

    def locate(self, client: ClientInfo) -> ClientInfo:
        """``client`` with its country filled in from the address (when known)."""
        if client.country is not None:
            return client
        country = self.geo.country_of(client.ip)
        return client if country is None else msgspec.structs.replace(client, country=country)

    def country_of(self, ip: str | None) -> str | None:
        """The country of an address, for receipts."""
        return self.geo.country_of(ip)

    # -- creating -------------------------------------------------------------------------

    def team_rules(self, principal: Principal | None) -> TeamRules:
        """The rules ``principal``'s teams set with the server's (``None``: anonymous, the
        server's alone); see ``service.team_policy``."""
        if principal is None or not self.settings.teams:
            return self._anonymous_rules
        return TeamRules.of(self.settings, principal)

    def check_limits(self, ttl: int | None, max_views: int | None) -> tuple[int, int]:
        """Apply defaults and the server's bounds; raise ``InvalidInput`` naming the field."""
        s = self.settings
        ttl = s.default_ttl if ttl is None else ttl
        views = 1 if max_views is None else max_views
        if not s.min_ttl <= ttl <= s.max_ttl:
            raise InvalidInput("ttl", f"must be from {s.min_ttl} to {s.max_ttl} seconds")
        if not 1 <= views <= s.max_views:
            raise InvalidInput("max_views", f"must be from 1 to {s.max_views}")
        return ttl, views

    async def create(
        self,
        envelope: Envelope,
        access_token: bytes,
        passphrase_proof: bytes | None,
        *,
        ttl: int | None,
        max_views: int | None,
        client: ClientInfo,
        policy: AccessPolicy = NO_RULES,
        notify_url: str | None = None,
        principal: Principal | None = None,
        label: str | None = None,
    ) -> CreatedSecret:
        """Store an envelope sealed by the client (end-to-end mode).

        ``principal`` is who creates it (``None``: anonymous), held to ``BURNLINK_CREATE_*``
        (``CreatePolicy``: ``LoginRequired``, ``InsufficientScope``, ``CreateNotAllowed``) and
        to the rules of their teams (``TeamRules``: ``CreateNotAllowed``,
        ``TeamPolicyRefused``); a signed-in sender owns the secret, and ``label`` is their name
        for it.

        ``notify_url`` gets a webhook on each view, the burn and the expiry; a URL that no
        delivery could use is refused now (``InvalidInput``). An envelope whose framed payload
        could hold more than ``BURNLINK_MAX_BYTES`` of content is ``PayloadTooLarge``.
        """
        self.create_policy.check(principal)
        rules = self.team_rules(principal)
        ttl, policy = rules.apply(
            ttl=ttl, max_views=max_views, has_passphrase=envelope.has_passphrase, policy=policy
        )
        if label is not None and any(unicodedata.category(c).startswith("C") for c in label):
            raise InvalidInput("label", "must not contain control or format characters")
        if len(envelope.ciphertext) - TAG_BYTES > max_framed_bytes(self.settings.max_bytes):
            raise PayloadTooLarge(self.settings.max_bytes, field="envelope.ct")
        ttl, views = self.check_limits(ttl, max_views)
        if len(access_token) != TOKEN_BYTES:
            raise InvalidInput("access_token", f"must be {TOKEN_BYTES} bytes")
        if envelope.has_passphrase != (passphrase_proof is not None):
            raise InvalidInput(
                "passphrase_proof", "is required exactly when the envelope uses a passphrase"
            )
        client = self.locate(client)
        now = self.clock.now()
        checks = await self.access.before_create(policy, envelope.has_passphrase, client, now=now)
        try:
            if notify_url is not None:
                await self.reporter.check_notify_url(notify_url)
            if passphrase_proof is not None and len(passphrase_proof) != TOKEN_BYTES:
                raise InvalidInput("passphrase_proof", f"must be {TOKEN_BYTES} bytes")
        except InvalidInput:  # refused, but counted against the create rate all the same
            await self.access.count(checks, client, now=now)
            raise
        if policy.notify_url != notify_url or policy.creator_country != client.country:
            # Most secrets have neither: their policy is kept as it is (a copy costs ~1 %).
            policy = msgspec.structs.replace(
                policy, notify_url=notify_url, creator_country=client.country
            )
        gate = None
        if passphrase_proof is not None:
            gate = PassphraseGate(
                kdf=envelope.kdf,
                iterations=envelope.iterations,
                salt=envelope.salt,
                proof_digest=token_digest(passphrase_proof),
            )
        manage_token = new_token()
        for _ in range(_CREATE_TRIES):
            secret_id = new_secret_id()
            expires_at = now + timedelta(seconds=ttl)
            event, recorded = self.reporter.happened(
                AuditEventType.SECRET_CREATED,
                at=now,
                secret_id=secret_id,
                client=client,
                policy=policy_labels(policy),
                detail={
                    "ttl": ttl,
                    "max_views": views,
                    "protected": gate is not None,
                    "notify": notify_url is not None,
                    **({TEAMS: teams_label(rules.teams)} if rules.teams else {}),
                },
                watch=Watched(secret_id, expires_at, notify_url),
                actor=None if principal is None else (principal.subject, principal.email),
            )
            stored = SecretRecord(
                secret_id=secret_id,
                envelope=envelope.to_bytes(),
                access_digest=token_digest(access_token),
                manage_digest=token_digest(manage_token),
                created_at=now,
                expires_at=expires_at,
                max_views=views,
                max_attempts=self.settings.passphrase_attempts,
                passphrase=gate,
                policy=policy,
                owner=None if principal is None else principal.subject,
                owner_email=None if principal is None else principal.email,
                label=label,
            )
            try:
                # The rate counters go with the insert; past a limit the store inserts nothing.
                counts = await self.store.create(
                    stored, events=[recorded], hits=[check.limited for check in checks]
                )
                break
            except DuplicateId:  # 128 random bits: in practice never, but never overwrite
                continue
        else:
            raise DuplicateId("could not allocate a fresh id")
        await self.access.judge(checks, counts, client, now=now)
        self.reporter.recorded()
        await self.reporter.publish(event, secret_id=secret_id)
        return CreatedSecret(secret_id, manage_token, stored.expires_at, views)

    async def create_plaintext(
        self,
        payload: Payload,
        *,
        passphrase: str | None,
        ttl: int | None,
        max_views: int | None,
        client: ClientInfo,
        policy: AccessPolicy = NO_RULES,
        notify_url: str | None = None,
        principal: Principal | None = None,
        label: str | None = None,
    ) -> tuple[CreatedSecret, bytes]:
        """Seal ``payload`` with a fresh link key (curl mode); return the secret and the key.

        The key is not kept anywhere: losing the returned value loses the secret. Content
        past ``BURNLINK_MAX_BYTES`` is ``PayloadTooLarge``; the server's other rules for new
        secrets (``require_passphrase`` among them) are ``create``'s.
        """
        # Before the sealing's KDF is paid for; ``create`` applies the team rules again.
        self.create_policy.check(principal)
        self.team_rules(principal).apply(
            ttl=ttl, max_views=max_views, has_passphrase=bool(passphrase), policy=policy
        )
        check_content_size(len(payload.content), self.settings.max_bytes)
        self.check_limits(ttl, max_views)
        if not payload.content:
            raise InvalidInput("secret", "must not be empty")
        check_passphrase(passphrase)
        link_key = new_link_key()
        sealed = await seal_payload(
            payload,
            link_key,
            passphrase,
            iterations=self.settings.pbkdf2_iterations,
            limiter=self._kdf_limiter,
        )
        created = await self.create(
            sealed.envelope,
            sealed.keys.access_token,
            sealed.keys.passphrase_proof,
            ttl=ttl,
            max_views=max_views,
            client=client,
            policy=policy,
            notify_url=notify_url,
            principal=principal,
            label=label,
        )
        return created, link_key

    # -- revealing ------------------------------------------------------------------------

    async def peek(self, secret_id: str, access_token: bytes, *, client: ClientInfo) -> SecretMeta:
        """Metadata for the holder of the link; consumes nothing.

        A wrong token, a malformed or unknown id and a gone secret all raise
        ``SecretUnavailable``; a refused address raises ``IpDenied`` or ``GeoDenied``.
        """
        meta, _ = await self._open(secret_id, access_token, self.locate(client), take=False)
        return meta

    async def _open(
        self, secret_id: str, access_token: bytes, client: ClientInfo, *, take: bool
    ) -> tuple[SecretMeta, Consumed | None]:
        """``peek`` in one store operation (``AccessControl.lookup``, ``store.reveal``) that,
        with ``take``, also takes the view of a secret that needs nothing but its link: then
        the view is published here and returned with the metadata. Otherwise (a passphrase,
        an access rule, the server's country rule refusing ``client``) nothing is taken, the
        address rules are checked, and the caller goes on to ``_take``.

        The view's event is built before the secret is read (``_viewed``): the store fills in
        ``max_views``, the one value it alone knows, so the record kept is the one ``_take``
        would keep."""
        now = self.clock.now()
        known = is_secret_id(secret_id)
        view = None
        event = None
        if take and known and self.access.server_allows(client):
            event, view = self._viewed(secret_id, client, now)
        found = await self.access.lookup(
            secret_id if known else None,
            client,
            now=now,
            access_digest=token_digest(access_token),
            view=view,
        )
        meta = found.meta
        # An id that is not live is weighed against a stand-in digest: the same work.
        stored = STAND_IN_DIGEST if meta is None else meta.access_digest
        if not digest_matches(access_token, stored) or meta is None:
            await self.access.failed(client, now=now, secret_id=secret_id if known else None)
            self.reporter.failed_lookup(secret_id if meta else None, client, at=now)
            raise SecretUnavailable
        consumed = found.consumed
        if consumed is None or event is None:
            await self.access.check_address(meta, client, now=now)
            return meta, None
        self.reporter.recorded()
        await self.reporter.publish(
            event.with_detail({"max_views": meta.max_views}),
            secret_id=secret_id,
            notify_url=meta.policy.notify_url,
            creator_country=meta.policy.creator_country,
            last_view=consumed.views_left == 0,
        )
        return meta, consumed

    def _viewed(
        self, secret_id: str, client: ClientInfo, now: datetime
    ) -> tuple[AuditEvent, ViewRecord]:
        """The ``secret.viewed`` event of a secret without rules (empty policy labels) as
        ``_take`` builds it, its outbox record cut where ``max_views`` goes
        (``store.ViewRecord``)."""
        event, recorded = self.reporter.happened(
            AuditEventType.SECRET_VIEWED,
            at=now,
            secret_id=secret_id,
            client=client,
            policy=policy_labels(NO_RULES),
            detail={"max_views": 0},
        )
        # JSON escapes every quote inside a string, so the marker can only be the member.
        head, marker, tail = recorded.outbox.rpartition(_MAX_VIEWS_PLACEHOLDER)
        if not marker:  # pragma: no cover - the outbox format puts it there
            raise RuntimeError("the viewed event's outbox record has no max_views member")
        view = ViewRecord(recorded.line, head + _MAX_VIEWS_MEMBER, b"}" + tail)
        self.reporter.expect_views(recorded.outbox, view.head, view.tail)
        return event, view

    async def consume(
        self,
        secret_id: str,
        access_token: bytes,
        passphrase_proof: bytes | None,
        *,
        otp: str | None = None,
        client: ClientInfo,
        identify: Identify | None = None,
    ) -> Consumed:
        """Take one view and return the envelope (end-to-end mode).

        Checks, in order: rate limits, the access token (``SecretUnavailable``), address rules,
        the signed-in recipient (``AccessControl.check_identity``; ``identify`` says who the
        request acts for, asked only for a secret bound to recipients), the recipient's
        one-time code (``VerificationRequired``/``VerificationFailed``), the passphrase proof
        (``PassphraseRequired``, not counted; ``WrongPassphrase``, counted: the last one burns
        the secret). A secret that needs none of these is taken in the same store operation
        as the lookup.
        """
        with _Timed(self.reporter):
            client = self.locate(client)
            meta, consumed = await self._open(secret_id, access_token, client, take=True)
            if consumed is not None:
                return consumed
            recipient = await self._check_identity(meta, identify, client)
            await self.access.verify_recipient(
                meta, otp, client, now=self.clock.now(), viewer=_viewer_of(recipient)
            )
            return await self._take(meta, passphrase_proof, client, recipient=recipient)

    async def _check_identity(
        self, meta: SecretMeta, identify: Identify | None, client: ClientInfo
    ) -> Principal | None:
        """``AccessControl.check_identity``; the recipient who passed it (``None`` for a
        secret not bound to recipients: who asks is not looked up)."""
        if not meta.policy.recipients and not meta.policy.require_mfa:
            return None
        principal = None if identify is None else await identify()
        await self.access.check_identity(meta, principal, client, now=self.clock.now())
        return principal

    async def reveal_plaintext(
        self,
        secret_id: str,
        link_key: bytes,
        passphrase: str | None,
        *,
        otp: str | None = None,
        client: ClientInfo,
        identify: Identify | None = None,
    ) -> tuple[Payload, int]:
        """Take one view and decrypt it on the server (curl mode); return it and views left.
        The checks and their order are ``consume``'s."""
        with _Timed(self.reporter):
            client = self.locate(client)
            access = token_of_link(link_key)
            meta, consumed = await self._open(secret_id, access, client, take=True)
            recipient = None
            if consumed is None:
                recipient = await self._check_identity(meta, identify, client)
                await self.access.verify_recipient(
                    meta, otp, client, now=self.clock.now(), viewer=_viewer_of(recipient)
                )
            keys = await keys_for(
                meta,
                link_key,
                passphrase,
                max_iterations=self.settings.pbkdf2_iterations,
                limiter=self._kdf_limiter,
                access=access,
            )
            if consumed is None:
                consumed = await self._take(
                    meta, keys.passphrase_proof, client, recipient=recipient
                )
            return open_stored(consumed.envelope, keys), consumed.views_left

    async def _take(
        self,
        meta: SecretMeta,
        passphrase_proof: bytes | None,
        client: ClientInfo,
        *,
        recipient: Principal | None = None,
    ) -> Consumed:
        """Check the passphrase proof, then atomically take one view (audited first, naming
        ``recipient``, who signed in for it, as the actor, and on the receipt's line as its
        viewer)."""
        viewer = _viewer_of(recipient)
        if meta.passphrase is not None:
            if passphrase_proof is None:
                raise PassphraseRequired(meta.attempts_left)
            if not digest_matches(passphrase_proof, meta.passphrase.proof_digest):
                await self._wrong_passphrase(meta, client, viewer)
        now = self.clock.now()
        secret_id = meta.secret_id
        event, recorded = self.reporter.happened(
            AuditEventType.SECRET_VIEWED,
            at=now,
            secret_id=secret_id,
            client=client,
            policy=policy_labels(meta.policy),
            detail={"max_views": meta.max_views},
            actor=None if recipient is None else (recipient.subject, recipient.email),
            viewer=viewer,
        )
        consumed = await self.store.consume(
            secret_id, meta.access_digest, now=now, events=[recorded]
        )
        if consumed is None:
            raise SecretUnavailable
        self.reporter.recorded()
        await self.reporter.publish(
            event,
            secret_id=secret_id,
            notify_url=meta.policy.notify_url,
            creator_country=meta.policy.creator_country,
            last_view=consumed.views_left == 0,
        )
        return consumed

    async def _wrong_passphrase(
        self, meta: SecretMeta, client: ClientInfo, viewer: Viewer | None
    ) -> NoReturn:
        """Count a wrong passphrase and raise ``WrongPassphrase``; ``SecretUnavailable`` if
        the secret went meanwhile. Its receipt lines name ``viewer``, the signed-in recipient
        who tried, if any.

        The attempt is recorded as ``passphrase.failed``, and the attempt that locks the
        secret also as ``secret.locked``, in the store operation that counts it. The store
        counts it only if it locks exactly as the events say (``record_failure(locks=...)``);
        if a concurrent attempt took the last but one first, this one is counted again, as
        the lockout.
        """
        now = self.clock.now()
        secret_id = meta.secret_id
        await self.access.failed(client, now=now, secret_id=secret_id)
        policy: dict[str, Scalar] = {"max_attempts": self.settings.passphrase_attempts}
        locks = meta.attempts_left <= 1
        for _ in range(_FAILURE_ROUNDS):
            failed = self.reporter.happened(
                AuditEventType.PASSPHRASE_FAILED,
                at=now,
                secret_id=secret_id,
                client=client,
                policy=policy,
                viewer=viewer,
            )
            happened = [failed]
            if locks:
                happened.append(
                    self.reporter.happened(
                        AuditEventType.SECRET_LOCKED,
                        at=now,
                        secret_id=secret_id,
                        client=client,
                        policy=policy,
                        unwatch=secret_id,
                        viewer=viewer,
                    )
                )
            attempt = await self.store.record_failure(
                secret_id, now=now, locks=locks, events=[r for _, r in happened]
            )
            if attempt is None:
                raise SecretUnavailable
            if not attempt.counted:
                locks = attempt.attempts_left <= 1
                continue
            self.reporter.recorded()
            await self.reporter.publish(happened[0][0], secret_id=secret_id)
            if locks:
                await self.reporter.publish(
                    happened[1][0], secret_id=secret_id, notify_url=meta.policy.notify_url
                )
            raise WrongPassphrase(attempt.attempts_left)
        # Attempts only go down, so a store that keeps the contract never gets here.
        raise StorageUnavailable("The passphrase attempt could not be counted.")

    async def opened(self, secret_id: str, client: ClientInfo) -> None:
        """Record that a live secret's link page was fetched (``GET /s/{id}``).

        Nothing is revealed or used, and the page looks the same whether or not the secret
        exists, so this never raises for an unknown id or an audit outage (only logs).
        """
        if not is_secret_id(secret_id):
            return
        client = self.locate(client)
        now = self.clock.now()
        meta = await self.store.peek(secret_id, now=now)
        if meta is None:
            return
        if await self.store.hit(f"opened:{secret_id}", window=3600, now=now) > OPENED_PER_HOUR:
            return
        await self.reporter.emit(
            AuditEventType.SECRET_OPENED, at=now, secret_id=secret_id, client=client
        )

    # -- the sender's side ----------------------------------------------------------------

    async def receipt(self, secret_id: str, manage_token: bytes, *, issuer: str = "") -> Receipt:
        """The receipt for the holder of the manage token; else ``SecretUnavailable``.

        Once the secret has ended it carries a statement signed for ``issuer`` (the public
        base URL), when the service has a signing key.
        """
        return self._receipt_of(await self._owned(secret_id, manage_token), issuer=issuer)

    def _receipt_of(self, record: ReceiptRecord, *, issuer: str, signed: bool = True) -> Receipt:
        now = self.clock.now()
        state = record.state(now)
        events = record.events
        if state == "expired" and record.ended_at is None:  # not swept yet
            record = replace(record, ended_at=record.expires_at)
            events = (*events, Event(at=record.expires_at, kind=EventKind.EXPIRED))
        views_left = record.max_views - record.views_used if state == "active" else 0
        statement = None
        if signed and state != "active" and self.signing_key is not None:
            statement = proof_of_burn(record, EndReason(state), self.signing_key, issuer=issuer)
        return Receipt(record, state, views_left, events, statement, capped_kinds(events))

    async def burn(self, secret_id: str, manage_token: bytes, *, client: ClientInfo) -> None:
        """Destroy the secret now. Burning an already ended secret is not an error."""
        await self._burn(await self._owned(secret_id, manage_token), client, actor=None)

    async def _burn(
        self, owned: ReceiptRecord, client: ClientInfo, *, actor: tuple[str, str | None] | None
    ) -> None:
        secret_id = owned.secret_id
        client = self.locate(client)
        now = self.clock.now()
        meta = await self.store.peek(secret_id, now=now) if owned.state(now) == "active" else None
        if meta is None:
            return
        event, recorded = self.reporter.happened(
            AuditEventType.SECRET_BURNED,
            at=now,
            secret_id=secret_id,
            client=client,
            unwatch=secret_id,
            actor=actor,
        )
        if not await self.store.burn(secret_id, now=now, events=[recorded]):
            return
        self.reporter.recorded()
        await self.reporter.publish(event, secret_id=secret_id, notify_url=meta.policy.notify_url)

    # -- a signed-in sender's own secrets ("my secrets") -----------------------------------

    async def owned_receipts(self, principal: Principal, *, limit: int) -> list[Receipt]:
        """The receipts of at most ``limit`` secrets ``principal``'s user created, newest
        first (live ones, and ended ones while their receipts are kept); unsigned."""
        records = await self.store.owned_secrets(
            principal.subject, now=self.clock.now(), limit=limit
        )
        return [self._receipt_of(record, issuer="", signed=False) for record in records]

    async def owned_receipt(
        self, principal: Principal, secret_id: str, *, issuer: str = ""
    ) -> Receipt:
        """The receipt of a secret ``principal``'s user created, as its manage token would
        show it; any other id is ``SecretUnavailable``."""
        return self._receipt_of(await self._owned_by(principal, secret_id), issuer=issuer)

    async def burn_owned(self, principal: Principal, secret_id: str, *, client: ClientInfo) -> None:
        """Burn a secret ``principal``'s user created, naming them as the actor; any other id
        is ``SecretUnavailable``. Burning an ended one is not an error."""
        owned = await self._owned_by(principal, secret_id)
        await self._burn(owned, client, actor=(principal.subject, principal.email))

    async def _owned_by(self, principal: Principal, secret_id: str) -> ReceiptRecord:
        record = (
            await self.store.receipt(secret_id, now=self.clock.now())
            if is_secret_id(secret_id)
            else None
        )
        if record is None or record.owner is None or record.owner != principal.subject:
            raise SecretUnavailable
        return record

    async def _owned(self, secret_id: str, manage_token: bytes) -> ReceiptRecord:
        record = (
            await self.store.receipt(secret_id, now=self.clock.now())
            if is_secret_id(secret_id)
            else None
        )
        if record is None or not digest_matches(manage_token, record.manage_digest):
            raise SecretUnavailable
        return record

    # -- the operator's side --------------------------------------------------------------

    async def check_admin(self, token: str, client: ClientInfo) -> None:
        """Return for the admin token; else ``AdminRequired`` (counted and audited), or
        ``RateLimited`` for a client that sent too many wrong ones."""
        await self.access.check_admin(token, client, now=self.clock.now())

    async def check_metrics(self, token: str, client: ClientInfo) -> None:
        """Return for ``BURNLINK_METRICS_TOKEN``; else ``MetricsTokenRequired`` (counted and
        audited as a wrong admin token is), or ``RateLimited`` for a client that sent too many
        wrong admin or metrics tokens."""
        await self.access.check_metrics(token, client, now=self.clock.now())

    async def unlock(self, ip: str, *, secret_ids: tuple[str, ...] = ()) -> int:
        """Lift the failure locks of a client address (and of it on ``secret_ids``) now;
        return how many counted failures were cleared."""
        return await self.access.limiter.unlock(ip, now=self.clock.now(), secret_ids=secret_ids)

    # -- housekeeping ---------------------------------------------------------------------

    async def sweep(self) -> int:
        """Delete every expired secret and stale receipt now, record the expiries, and drop
        audit entries past ``BURNLINK_AUDIT_DAYS``; return how many secrets went."""
        return await sweep(self.store, self.reporter, self.settings, self.clock)


def _viewer_of(recipient: Principal | None) -> Viewer | None:
    """How a receipt line names ``recipient``: their email and whether their sign-in had a
    second factor (never their subject or groups)."""
    return None if recipient is None else Viewer(email=recipient.email, mfa=recipient.mfa)


class _Timed:
    """Reports how long the reveal inside it took (``Reporter.reveal_took``), however it
    ended. A plain class: an ``asynccontextmanager`` cost a reveal three coroutine steps."""

    __slots__ = ("_reporter", "_started")

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self._reporter.reveal_took(time.perf_counter() - self._started)
