"""SecretService: the only home of burnlink's rules for creating, revealing and burning secrets.

The web API and the CLI's server side call this; it calls a ``SecretStore``. It sees link keys
and passphrases only in the curl convenience mode (``create_plaintext``/``reveal_plaintext``)
and forgets them when the call returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import anyio

from burnlink.clock import Clock
from burnlink.config import Settings
from burnlink.crypto import LinkKeys, Payload, derive_keys, new_link_key, open_envelope, seal
from burnlink.envelope import Envelope
from burnlink.errors import (
    DuplicateId,
    InvalidInput,
    PassphraseRequired,
    SecretUnavailable,
    WrongPassphrase,
)
from burnlink.gate import AccessGate
from burnlink.geo import CountryResolver, open_resolver
from burnlink.history import record
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
    Event,
    EventKind,
    PassphraseGate,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
)
from burnlink.store import SecretStore

MAX_PASSPHRASE_CHARS = 1024
SWEEP_BATCH = 500
_CREATE_TRIES = 3
NO_RULES = AccessPolicy()


@dataclass(frozen=True, slots=True)
class CreatedSecret:
    """A stored secret, as its sender learns it once."""

    secret_id: str
    manage_token: bytes = field(repr=False)
    expires_at: datetime
    max_views: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """The sender's view of a secret at one moment."""

    record: ReceiptRecord
    state: str
    views_left: int
    events: tuple[Event, ...]


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
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.gate = AccessGate(
            store, settings, geo=geo or open_resolver(settings.geoip_db), mailer=mailer
        )
        # Server-side PBKDF2 costs hundreds of ms of CPU; bound how many run at once.
        self._kdf_limiter = anyio.CapacityLimiter(settings.kdf_concurrency)

    # -- creating -------------------------------------------------------------------------

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
    ) -> CreatedSecret:
        """Store an envelope sealed by the client (end-to-end mode)."""
        ttl, views = self.check_limits(ttl, max_views)
        if len(access_token) != TOKEN_BYTES:
            raise InvalidInput("access_token", f"must be {TOKEN_BYTES} bytes")
        if envelope.has_passphrase != (passphrase_proof is not None):
            raise InvalidInput(
                "passphrase_proof", "is required exactly when the envelope uses a passphrase"
            )
        now = self.clock.now()
        await self.gate.before_create(policy, envelope.has_passphrase, client, now=now)
        gate = None
        if passphrase_proof is not None:
            if len(passphrase_proof) != TOKEN_BYTES:
                raise InvalidInput("passphrase_proof", f"must be {TOKEN_BYTES} bytes")
            gate = PassphraseGate(
                kdf=envelope.kdf,
                iterations=envelope.iterations,
                salt=envelope.salt,
                proof_digest=token_digest(passphrase_proof),
            )
        manage_token = new_token()
        for _ in range(_CREATE_TRIES):
            stored = SecretRecord(
                secret_id=new_secret_id(),
                envelope=envelope.to_bytes(),
                access_digest=token_digest(access_token),
                manage_digest=token_digest(manage_token),
                created_at=now,
                expires_at=now + timedelta(seconds=ttl),
                max_views=views,
                max_attempts=self.settings.passphrase_attempts,
                passphrase=gate,
                policy=policy,
            )
            try:
                await self.store.create(stored)
                break
            except DuplicateId:  # 128 random bits: in practice never, but never overwrite
                continue
        else:
            raise DuplicateId("could not allocate a fresh id")
        await record(self.store, stored.secret_id, EventKind.CREATED, client, now)
        return CreatedSecret(stored.secret_id, manage_token, stored.expires_at, views)

    async def create_plaintext(
        self,
        payload: Payload,
        *,
        passphrase: str | None,
        ttl: int | None,
        max_views: int | None,
        client: ClientInfo,
        policy: AccessPolicy = NO_RULES,
    ) -> tuple[CreatedSecret, bytes]:
        """Seal ``payload`` with a fresh link key (curl mode); return the secret and the key.

        The key is not kept anywhere: losing the returned value loses the secret.
        """
        self.check_limits(ttl, max_views)
        if not payload.content:
            raise InvalidInput("secret", "must not be empty")
        _check_passphrase(passphrase)
        if self.settings.require_passphrase and passphrase is None:
            raise InvalidInput("passphrase", "this server requires a passphrase on every secret")
        link_key = new_link_key()
        iterations = self.settings.pbkdf2_iterations
        async with self._kdf_limiter:
            sealed = await anyio.to_thread.run_sync(
                lambda: seal(payload, link_key, passphrase=passphrase, iterations=iterations)
            )
        created = await self.create(
            sealed.envelope,
            sealed.keys.access_token,
            sealed.keys.passphrase_proof,
            ttl=ttl,
            max_views=max_views,
            client=client,
            policy=policy,
        )
        return created, link_key

    # -- revealing ------------------------------------------------------------------------

    async def peek(self, secret_id: str, access_token: bytes, *, client: ClientInfo) -> SecretMeta:
        """Metadata for the holder of the link; consumes nothing.

        A wrong token, a malformed or unknown id and a gone secret all raise
        ``SecretUnavailable``; a refused address raises ``IpDenied`` or ``GeoDenied``.
        """
        now = self.clock.now()
        await self.gate.before_lookup(client, now=now)
        meta = await self.store.peek(secret_id, now=now) if is_secret_id(secret_id) else None
        if meta is None or not digest_matches(access_token, meta.access_digest):
            await self.gate.failed(client, now=now)
            raise SecretUnavailable
        await self.gate.check_address(meta, client, now=now)
        return meta

    async def consume(
        self,
        secret_id: str,
        access_token: bytes,
        passphrase_proof: bytes | None,
        *,
        otp: str | None = None,
        client: ClientInfo,
    ) -> Consumed:
        """Take one view and return the envelope (end-to-end mode).

        Checks, in order: rate limits, the access token (``SecretUnavailable``), address rules,
        the recipient's one-time code (``VerificationRequired``/``VerificationFailed``), the
        passphrase proof (``PassphraseRequired``, not counted; ``WrongPassphrase``, counted:
        the last one burns the secret).
        """
        meta = await self.peek(secret_id, access_token, client=client)
        await self.gate.verify_recipient(meta, otp, client, now=self.clock.now())
        return await self._take(meta, passphrase_proof, client)

    async def reveal_plaintext(
        self,
        secret_id: str,
        link_key: bytes,
        passphrase: str | None,
        *,
        otp: str | None = None,
        client: ClientInfo,
    ) -> tuple[Payload, int]:
        """Take one view and decrypt it on the server (curl mode); return it and views left."""
        keys = derive_keys(link_key)
        meta = await self.peek(secret_id, keys.access_token, client=client)
        await self.gate.verify_recipient(meta, otp, client, now=self.clock.now())
        if meta.passphrase is not None:
            if not passphrase:
                raise PassphraseRequired(meta.attempts_left)
            _check_passphrase(passphrase)
            gate = meta.passphrase
            if gate.iterations > self.settings.pbkdf2_iterations:
                # Only end-to-end clients choose more; they derive on their own CPU.
                raise InvalidInput(
                    "passphrase",
                    "this secret's passphrase is too costly to check on the server; "
                    "reveal it with an end-to-end client (burnlink get, or the web page)",
                )
            async with self._kdf_limiter:
                keys = await anyio.to_thread.run_sync(
                    lambda: derive_keys(
                        link_key, passphrase=passphrase, salt=gate.salt, iterations=gate.iterations
                    )
                )
        consumed = await self._take(meta, keys.passphrase_proof, client)
        return _open(consumed.envelope, keys), consumed.views_left

    async def _take(
        self, meta: SecretMeta, passphrase_proof: bytes | None, client: ClientInfo
    ) -> Consumed:
        """Check the passphrase proof, then atomically take one view."""
        if meta.passphrase is not None:
            if passphrase_proof is None:
                raise PassphraseRequired(meta.attempts_left)
            if not digest_matches(passphrase_proof, meta.passphrase.proof_digest):
                await self._wrong_passphrase(meta.secret_id, client)
        now = self.clock.now()
        consumed = await self.store.consume(meta.secret_id, meta.access_digest, now=now)
        if consumed is None:
            raise SecretUnavailable
        await record(self.store, meta.secret_id, EventKind.VIEWED, client, now)
        return consumed

    async def _wrong_passphrase(self, secret_id: str, client: ClientInfo) -> None:
        now = self.clock.now()
        await self.gate.failed(client, now=now)
        left = await self.store.record_failure(secret_id, now=now)
        if left is None:
            raise SecretUnavailable
        await record(self.store, secret_id, EventKind.WRONG_PASSPHRASE, client, now)
        if left == 0:
            await record(self.store, secret_id, EventKind.LOCKED, client, now)
        raise WrongPassphrase(left)

    # -- the sender's side ----------------------------------------------------------------

    async def receipt(self, secret_id: str, manage_token: bytes) -> Receipt:
        """The receipt for the holder of the manage token; else ``SecretUnavailable``."""
        record = await self._owned(secret_id, manage_token)
        now = self.clock.now()
        state = record.state(now)
        events = record.events
        if state == "expired" and record.ended_at is None:  # not swept yet
            record = replace(record, ended_at=record.expires_at)
            events = (*events, Event(at=record.expires_at, kind=EventKind.EXPIRED))
        views_left = record.max_views - record.views_used if state == "active" else 0
        return Receipt(record, state, views_left, events)

    async def burn(self, secret_id: str, manage_token: bytes, *, client: ClientInfo) -> None:
        """Destroy the secret now. Burning an already ended secret is not an error."""
        await self._owned(secret_id, manage_token)
        now = self.clock.now()
        if await self.store.burn(secret_id, now=now):
            await record(self.store, secret_id, EventKind.BURNED, client, now)

    async def _owned(self, secret_id: str, manage_token: bytes) -> ReceiptRecord:
        record = (
            await self.store.receipt(secret_id, now=self.clock.now())
            if is_secret_id(secret_id)
            else None
        )
        if record is None or not digest_matches(manage_token, record.manage_digest):
            raise SecretUnavailable
        return record

    # -- housekeeping ---------------------------------------------------------------------

    async def sweep(self) -> int:
        """Delete every expired secret and stale receipt now; return how many secrets went."""
        total = 0
        while True:
            purged = await self.store.purge_expired(now=self.clock.now(), limit=SWEEP_BATCH)
            total += purged
            if purged < SWEEP_BATCH:
                return total


def _check_passphrase(passphrase: str | None) -> None:
    if passphrase is not None and not 1 <= len(passphrase) <= MAX_PASSPHRASE_CHARS:
        raise InvalidInput("passphrase", f"must be 1 to {MAX_PASSPHRASE_CHARS} characters")


def _open(stored: bytes, keys: LinkKeys) -> Payload:
    # Raises EnvelopeError only for an envelope a broken end-to-end client stored.
    return open_envelope(Envelope.from_bytes(stored), keys)
