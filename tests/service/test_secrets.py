"""``SecretService`` (``burnlink.service.secrets``) on its own: real stores (memory, a SQLite
file), the real audit log inside a ``Reporter``, a frozen clock; no web layer and no mocks.

Secrets are created end to end (the client seals, the server stores an opaque envelope), so
no test pays for PBKDF2: a passphrase is only a proof the service compares."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import anyio
import msgspec
import pytest

from burnlink.audit import AuditBackend, open_audit_store
from burnlink.audit.events import AuditEvent, AuditEventType, Outcome, secret_hash
from burnlink.audit.outbox import OutboxRecord
from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.crypto import Payload
from burnlink.envelope import (
    KDF_NONE,
    KDF_PBKDF2,
    MIN_ITERATIONS,
    NONCE_BYTES,
    SALT_BYTES,
    TAG_BYTES,
    Envelope,
    max_framed_bytes,
)
from burnlink.errors import (
    GeoDenied,
    InvalidInput,
    PassphraseRequired,
    PayloadTooLarge,
    RateLimited,
    SecretUnavailable,
    WrongPassphrase,
)
from burnlink.ids import new_secret_id, token_digest
from burnlink.models import (
    AccessPolicy,
    ClientInfo,
    Consumed,
    EventKind,
    PassphraseGate,
    SecretRecord,
)
from burnlink.service import CreatedSecret, SecretService
from burnlink.service.reporting import Reporter, policy_labels
from burnlink.store import SecretStore, open_store
from tests.conftest import RETENTION, store_url
from tests.web.audited import AUDIT_KEY
from tests.web.test_access import GEO

pytestmark = pytest.mark.anyio

CLIENT = ClientInfo(ip="203.0.113.7", user_agent="curl/8.5.0")
ACCESS = bytes(range(32))
PROOF = bytes(range(32, 64))
WRONG = bytes(32)
ATTEMPTS = 3


def sealed(*, passphrase: bool = False) -> Envelope:
    """An envelope as a client would seal it; its ciphertext is opaque to the server."""
    ciphertext = os.urandom(TAG_BYTES + 16)
    if passphrase:
        salt = os.urandom(SALT_BYTES)
        return Envelope(KDF_PBKDF2, MIN_ITERATIONS, salt, os.urandom(NONCE_BYTES), ciphertext)
    return Envelope(KDF_NONE, 0, b"", os.urandom(NONCE_BYTES), ciphertext)


@dataclass
class Service:
    """The service under test and the real parts it talks to."""

    service: SecretService
    store: SecretStore
    audit: AuditBackend
    clock: FrozenClock

    async def create(
        self,
        *,
        views: int | None = 1,
        ttl: int | None = 3600,
        passphrase: bool = False,
        envelope: Envelope | None = None,
    ) -> CreatedSecret:
        return await self.service.create(
            envelope or sealed(passphrase=passphrase),
            ACCESS,
            PROOF if passphrase else None,
            ttl=ttl,
            max_views=views,
            client=CLIENT,
        )

    async def consume(
        self, secret_id: str, *, token: bytes = ACCESS, proof: bytes | None = None
    ) -> Consumed:
        return await self.service.consume(secret_id, token, proof, client=CLIENT)

    async def events(self, secret_id: str | None = None) -> list[AuditEvent]:
        """The audit log read back once background reports are done (one secret's, if given)."""
        await self.service.reporter.join()
        events = [entry.event async for entry in self.audit.iter_entries()]
        if secret_id is None:
            return events
        return [event for event in events if event.secret_hash == secret_hash(secret_id)]

    async def types(self, secret_id: str) -> list[tuple[AuditEventType, Outcome]]:
        return [(event.type, event.outcome) for event in await self.events(secret_id)]


@pytest.fixture(params=["memory", "sqlite"])
async def svc(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Service]:
    """A ``SecretService`` on each store, with the audit log in memory."""
    store = await open_store(store_url(request.param, request, tmp_path), retention=RETENTION)
    audit = await open_audit_store("memory://", key=AUDIT_KEY)
    reporter = Reporter(audit, clock=clock)
    settings = load_settings(store="memory://", passphrase_attempts=ATTEMPTS)
    try:
        yield Service(SecretService(store, settings, clock, reporter=reporter), store, audit, clock)
    finally:
        await reporter.aclose()
        await audit.aclose()
        await store.aclose()


# -- creating -------------------------------------------------------------------------------


async def test_create_applies_the_default_ttl_and_one_view(svc: Service) -> None:
    created = await svc.create(ttl=None, views=None)

    assert created.expires_at == svc.clock.now() + timedelta(days=1)
    assert created.max_views == 1
    meta = await svc.store.peek(created.secret_id, now=svc.clock.now())
    assert meta is not None
    assert (meta.views_left, meta.attempts_left) == (1, ATTEMPTS)


async def test_create_keeps_the_bounds_given(svc: Service) -> None:
    created = await svc.create(ttl=60, views=100)

    assert (created.expires_at, created.max_views) == (svc.clock.now() + timedelta(seconds=60), 100)


@pytest.mark.parametrize(
    ("ttl", "views", "field"),
    [
        pytest.param(59, 1, "ttl", id="ttl-below-the-minimum"),
        pytest.param(30 * 86400 + 1, 1, "ttl", id="ttl-above-the-maximum"),
        pytest.param(3600, 0, "max_views", id="no-views"),
        pytest.param(3600, 101, "max_views", id="views-above-the-maximum"),
    ],
)
async def test_create_refuses_limits_out_of_bounds_naming_the_field(
    svc: Service, ttl: int, views: int, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await svc.create(ttl=ttl, views=views)

    assert refused.value.field == field
    assert await svc.events() == []


async def test_create_refuses_a_proof_the_envelope_does_not_ask_for(svc: Service) -> None:
    with pytest.raises(InvalidInput) as refused:
        await svc.service.create(sealed(), ACCESS, PROOF, ttl=3600, max_views=1, client=CLIENT)

    assert refused.value.field == "passphrase_proof"


async def test_create_refuses_a_short_access_token(svc: Service) -> None:
    with pytest.raises(InvalidInput) as refused:
        await svc.service.create(sealed(), b"short", None, ttl=3600, max_views=1, client=CLIENT)

    assert refused.value.field == "access_token"


async def test_size_limits_are_the_service_s_in_both_modes(svc: Service) -> None:
    """The content limit (``BURNLINK_MAX_BYTES``) holds whoever calls: a plaintext one byte
    over it, or an envelope that could frame more, is refused before anything is kept."""
    limit = svc.service.settings.max_bytes
    framed = max_framed_bytes(limit)
    fits = Envelope(KDF_NONE, 0, b"", os.urandom(NONCE_BYTES), bytes(framed + TAG_BYTES))
    over = msgspec.structs.replace(fits, ciphertext=bytes(framed + 1 + TAG_BYTES))
    with pytest.raises(PayloadTooLarge) as refused:
        await svc.service.create(over, ACCESS, None, ttl=3600, max_views=1, client=CLIENT)
    assert refused.value.field == "envelope.ct"
    with pytest.raises(PayloadTooLarge) as refused:
        await svc.service.create_plaintext(
            Payload(bytes(limit + 1)), passphrase=None, ttl=3600, max_views=1, client=CLIENT
        )
    assert refused.value.field == "secret"
    assert await svc.events() == []

    await svc.service.create(fits, ACCESS, None, ttl=3600, max_views=1, client=CLIENT)
    await svc.service.create_plaintext(
        Payload(bytes(limit)), passphrase=None, ttl=3600, max_views=1, client=CLIENT
    )
    assert len(await svc.events()) == 2


async def test_a_required_passphrase_is_one_rule_for_both_modes(clock: FrozenClock) -> None:
    """``BURNLINK_REQUIRE_PASSPHRASE`` refuses a plaintext create as it refuses an envelope:
    same field and reason, and counted against the create rate."""
    store = await open_store("memory://", retention=RETENTION)
    settings = load_settings(
        store="memory://", require_passphrase=True, rate_limit_create="1/minute"
    )
    service = SecretService(store, settings, clock, reporter=Reporter(None, clock=clock))
    try:
        with pytest.raises(InvalidInput) as plaintext:
            await service.create_plaintext(
                Payload(b"x"), passphrase=None, ttl=3600, max_views=1, client=CLIENT
            )
        with pytest.raises(RateLimited):  # the refusal above was this minute's create
            await service.create(
                sealed(passphrase=True), ACCESS, PROOF, ttl=3600, max_views=1, client=CLIENT
            )
        other = msgspec.structs.replace(CLIENT, ip="203.0.113.8")
        with pytest.raises(InvalidInput) as envelope:
            await service.create(sealed(), ACCESS, None, ttl=3600, max_views=1, client=other)
        assert (plaintext.value.field, plaintext.value.reason) == (
            envelope.value.field,
            envelope.value.reason,
        )
        assert plaintext.value.field == "passphrase"
    finally:
        await store.aclose()


async def test_create_is_audited_with_its_limits(svc: Service) -> None:
    created = await svc.create(views=2, passphrase=True)

    [event] = await svc.events(created.secret_id)
    assert (event.type, event.outcome) == (AuditEventType.SECRET_CREATED, Outcome.OK)
    assert dict(event.detail) == {
        "ttl": 3600,
        "max_views": 2,
        "protected": True,
        "notify": False,
    }


# -- revealing ------------------------------------------------------------------------------


async def test_consume_takes_one_view_and_the_last_ends_the_secret(svc: Service) -> None:
    envelope = sealed()
    created = await svc.create(views=2, envelope=envelope)

    first = await svc.consume(created.secret_id)
    second = await svc.consume(created.secret_id)

    assert (first.views_left, second.views_left) == (1, 0)
    assert first.envelope == second.envelope == envelope.to_bytes()
    with pytest.raises(SecretUnavailable):
        await svc.consume(created.secret_id)
    assert await svc.store.peek(created.secret_id, now=svc.clock.now()) is None
    assert await svc.types(created.secret_id) == [
        (AuditEventType.SECRET_CREATED, Outcome.OK),
        (AuditEventType.SECRET_VIEWED, Outcome.OK),
        (AuditEventType.SECRET_VIEWED, Outcome.OK),
    ]


class Calls:
    """A store that lists the calls made to it (each is one round trip), but the sealer's."""

    def __init__(self, store: SecretStore) -> None:
        self.store = store
        self.names: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if name in {"pending_events", "ack_events"} or not callable(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.names.append(name)
            return await attribute(*args, **kwargs)

        return call


async def test_a_create_is_one_store_call_and_a_reveal_one(
    svc: Service, clock: FrozenClock
) -> None:
    calls = Calls(svc.store)
    settings = load_settings(store="memory://", passphrase_attempts=ATTEMPTS)
    service = SecretService(cast("SecretStore", calls), settings, clock)
    created = await service.create(sealed(), ACCESS, None, ttl=60, max_views=2, client=CLIENT)
    made = calls.names[:]
    calls.names.clear()

    await service.consume(created.secret_id, ACCESS, None, client=CLIENT)
    taken = calls.names[:]
    calls.names.clear()
    with pytest.raises(SecretUnavailable):
        await service.consume(created.secret_id, WRONG, None, client=CLIENT)

    assert made == ["create"]
    assert taken == ["reveal"]
    assert calls.names == ["reveal", "hits"]


async def store_secret(
    svc: Service, *, policy: AccessPolicy | None = None, passphrase: bool = False
) -> str:
    """A secret put in the store directly, with a policy the create route would check."""
    now = svc.clock.now()
    gate = None
    if passphrase:
        gate = PassphraseGate(KDF_PBKDF2, MIN_ITERATIONS, bytes(SALT_BYTES), token_digest(PROOF))
    record = SecretRecord(
        secret_id=new_secret_id(),
        envelope=sealed(passphrase=passphrase).to_bytes(),
        access_digest=token_digest(ACCESS),
        manage_digest=token_digest(WRONG),
        created_at=now,
        expires_at=now + timedelta(hours=1),
        max_views=3,
        max_attempts=ATTEMPTS,
        passphrase=gate,
        policy=policy or AccessPolicy(),
    )
    await svc.store.create(record)
    return record.secret_id


@pytest.mark.parametrize(
    ("policy", "passphrase"),
    [
        pytest.param(AccessPolicy(), True, id="passphrase"),
        pytest.param(AccessPolicy(allowed_ips=("203.0.113.0/24",)), False, id="allowed-ips"),
        pytest.param(AccessPolicy(denied_countries=("FR",)), False, id="denied-countries"),
    ],
)
async def test_a_secret_that_needs_more_than_its_link_is_taken_in_a_second_call(
    svc: Service, clock: FrozenClock, policy: AccessPolicy, passphrase: bool
) -> None:
    secret_id = await store_secret(svc, policy=policy, passphrase=passphrase)
    calls = Calls(svc.store)
    settings = load_settings(store="memory://", passphrase_attempts=ATTEMPTS)
    service = SecretService(cast("SecretStore", calls), settings, clock)

    consumed = await service.consume(
        secret_id, ACCESS, PROOF if passphrase else None, client=CLIENT
    )

    assert consumed.views_left == 2
    assert calls.names == ["reveal", "consume"]


class Publishing(Reporter):
    """A reporter that lists what it publishes."""

    def __init__(self, audit: AuditBackend, clock: FrozenClock) -> None:
        super().__init__(audit, clock=clock)
        self.published: list[tuple[AuditEvent, dict[str, Any]]] = []

    async def publish(self, event: AuditEvent, **kwargs: Any) -> None:
        self.published.append((event, kwargs))
        await super().publish(event, **kwargs)


async def test_a_view_taken_with_the_lookup_is_recorded_and_published_as_a_second_call_would(
    svc: Service, clock: FrozenClock
) -> None:
    policy = AccessPolicy(notify_url="https://example.com/hook", creator_country="DE")
    fast = await store_secret(svc, policy=policy)
    slow = await store_secret(svc, policy=policy, passphrase=True)
    reporter = Publishing(svc.audit, clock)
    settings = load_settings(store="memory://", passphrase_attempts=ATTEMPTS)
    service = SecretService(svc.store, settings, clock, reporter=reporter)
    try:
        await service.consume(fast, ACCESS, None, client=CLIENT)
        await service.consume(slow, ACCESS, PROOF, client=CLIENT)
        await reporter.join()
    finally:
        await reporter.aclose()

    (fast_event, fast_how), (slow_event, slow_how) = reporter.published
    assert fast_how == {**slow_how, "secret_id": fast}
    assert fast_how["notify_url"] == "https://example.com/hook"
    assert fast_how["creator_country"] == "DE"
    assert fast_how["last_view"] is False
    assert fast_event == dataclasses.replace(slow_event, secret_hash=secret_hash(fast))
    assert dict(fast_event.detail) == {"max_views": 3}
    assert dict(fast_event.policy) == {}
    sealed_events = [entry.event async for entry in svc.audit.iter_entries()]
    assert fast_event in sealed_events
    assert slow_event in sealed_events


async def test_the_view_record_the_store_completes_is_the_one_a_second_call_keeps(
    svc: Service,
) -> None:
    now = svc.clock.now()
    secret_id = new_secret_id()
    event, view = svc.service._viewed(secret_id, CLIENT, now)

    completed = view.completed(17)

    record = OutboxRecord.from_bytes(completed.outbox)
    expected, kept = svc.service.reporter.happened(
        AuditEventType.SECRET_VIEWED,
        at=now,
        secret_id=secret_id,
        client=CLIENT,
        policy=policy_labels(AccessPolicy()),
        detail={"max_views": 17},
    )
    assert record.event == expected
    assert completed.outbox == OutboxRecord(expected, id=record.id).to_bytes()
    assert completed.line == kept.line
    assert event == dataclasses.replace(expected, detail={"max_views": 0})


async def test_the_servers_country_rule_is_checked_before_any_view_is_taken(
    tmp_path: Path, clock: FrozenClock
) -> None:
    store = await open_store("memory://", retention=RETENTION)
    calls = Calls(store)
    settings = load_settings(store="memory://", allowed_countries="DE")
    service = SecretService(cast("SecretStore", calls), settings, clock)
    german = ClientInfo(ip="203.0.113.8", country="DE")
    french = ClientInfo(ip="203.0.113.9", country="FR")
    created = await service.create(sealed(), ACCESS, None, ttl=60, max_views=2, client=german)
    calls.names.clear()

    with pytest.raises(GeoDenied):
        await service.consume(created.secret_id, ACCESS, None, client=french)
    refused = calls.names[:]
    calls.names.clear()
    consumed = await service.consume(created.secret_id, ACCESS, None, client=german)

    assert refused == ["reveal", "hits", "record"]
    assert consumed.views_left == 1
    assert calls.names == ["reveal"]
    await store.aclose()


async def test_a_client_the_server_locates_itself_takes_the_one_trip_path(
    clock: FrozenClock,
) -> None:
    """A client that carries no country (no proxy header) is located by its address: one in
    the server's allowed countries is served in one store call, one outside is refused."""
    store = await open_store("memory://", retention=RETENTION)
    calls = Calls(store)
    settings = load_settings(store="memory://", allowed_countries="DE")
    service = SecretService(cast("SecretStore", calls), settings, clock, geo=GEO)
    german = ClientInfo(ip="198.51.100.1")  # DE in GEO
    created = await service.create(sealed(), ACCESS, None, ttl=60, max_views=2, client=german)
    calls.names.clear()

    consumed = await service.consume(created.secret_id, ACCESS, None, client=german)
    assert calls.names == ["reveal"]
    assert consumed.views_left == 1
    with pytest.raises(GeoDenied):
        await service.consume(created.secret_id, ACCESS, None, client=ClientInfo(ip="198.51.100.2"))
    await store.aclose()


async def test_a_rate_limited_reveal_takes_no_view(tmp_path: Path, clock: FrozenClock) -> None:
    store = await open_store("memory://", retention=RETENTION)
    settings = load_settings(store="memory://", rate_limit_reveal="1/minute")
    service = SecretService(store, settings, clock)
    created = await service.create(sealed(), ACCESS, None, ttl=60, max_views=3, client=CLIENT)
    await service.consume(created.secret_id, ACCESS, None, client=CLIENT)

    with pytest.raises(RateLimited):
        await service.consume(created.secret_id, ACCESS, None, client=CLIENT)

    meta = await store.peek(created.secret_id, now=clock.now())
    assert meta is not None
    assert meta.views_left == 2
    types = [
        OutboxRecord.from_bytes(p.outbox).event.type for p in await store.pending_events(limit=10)
    ]
    assert types == [
        AuditEventType.SECRET_CREATED,
        AuditEventType.SECRET_VIEWED,
        AuditEventType.RATE_LIMITED,
    ]
    await store.aclose()


async def test_reveal_plaintext_of_a_secret_with_rules_takes_the_view_in_a_second_call(
    svc: Service, clock: FrozenClock
) -> None:
    calls = Calls(svc.store)
    settings = load_settings(store="memory://", passphrase_attempts=ATTEMPTS)
    service = SecretService(cast("SecretStore", calls), settings, clock)
    plain, plain_key = await service.create_plaintext(
        Payload(b"one"), passphrase=None, ttl=3600, max_views=1, client=CLIENT
    )
    ruled, ruled_key = await service.create_plaintext(
        Payload(b"two"),
        passphrase=None,
        ttl=3600,
        max_views=1,
        client=CLIENT,
        policy=AccessPolicy(allowed_ips=("203.0.113.0/24",)),
    )
    calls.names.clear()

    first = await service.reveal_plaintext(plain.secret_id, plain_key, None, client=CLIENT)
    fast = calls.names[:]
    calls.names.clear()
    second = await service.reveal_plaintext(ruled.secret_id, ruled_key, None, client=CLIENT)

    assert (first[0].content, first[1]) == (b"one", 0)
    assert (second[0].content, second[1]) == (b"two", 0)
    assert fast == ["reveal"]
    assert calls.names == ["reveal", "consume"]


@pytest.mark.parametrize(
    ("readers", "views"),
    [
        pytest.param(6, 2, id="more-readers-than-views"),
        pytest.param(3, 3, id="as-many"),
        pytest.param(2, 5, id="fewer-readers"),
    ],
)
async def test_concurrent_consumes_get_exactly_min_readers_views(
    svc: Service, readers: int, views: int
) -> None:
    created = await svc.create(views=views)
    results: list[int | None] = []

    async def reader() -> None:
        try:
            results.append((await svc.consume(created.secret_id)).views_left)
        except SecretUnavailable:
            results.append(None)

    async with anyio.create_task_group() as group:
        for _ in range(readers):
            group.start_soon(reader)

    won = sorted((left for left in results if left is not None), reverse=True)
    assert won == list(range(views - 1, views - 1 - min(readers, views), -1))
    # The audit log agrees: a view audited before a lost race is corrected as failed.
    viewed = [
        outcome
        for type, outcome in await svc.types(created.secret_id)
        if type is AuditEventType.SECRET_VIEWED
    ]
    assert viewed.count(Outcome.OK) - viewed.count(Outcome.FAILED) == min(readers, views)


async def test_a_wrong_access_token_is_unavailable_and_consumes_nothing(svc: Service) -> None:
    created = await svc.create()

    with pytest.raises(SecretUnavailable):
        await svc.consume(created.secret_id, token=WRONG)

    meta = await svc.store.peek(created.secret_id, now=svc.clock.now())
    assert meta is not None
    assert meta.views_left == 1
    assert (AuditEventType.KEY_FAILED, Outcome.FAILED) in await svc.types(created.secret_id)
    assert (await svc.consume(created.secret_id)).views_left == 0


@pytest.mark.parametrize(
    "secret_id",
    [
        pytest.param("AAAAAAAAAAAAAAAAAAAAAA", id="unknown"),
        pytest.param("not an id", id="malformed"),
    ],
)
async def test_consume_of_no_such_secret_is_unavailable(svc: Service, secret_id: str) -> None:
    with pytest.raises(SecretUnavailable):
        await svc.consume(secret_id)


async def test_consume_after_expiry_is_unavailable(svc: Service) -> None:
    created = await svc.create(ttl=60)
    svc.clock.advance(60)

    with pytest.raises(SecretUnavailable):
        await svc.consume(created.secret_id)


async def test_reveal_plaintext_opens_what_create_plaintext_sealed(svc: Service) -> None:
    created, link_key = await svc.service.create_plaintext(
        Payload(b"hunter2"), passphrase=None, ttl=3600, max_views=1, client=CLIENT
    )

    payload, views_left = await svc.service.reveal_plaintext(
        created.secret_id, link_key, None, client=CLIENT
    )

    assert (payload.content, views_left) == (b"hunter2", 0)


# -- passphrases ----------------------------------------------------------------------------


async def test_a_missing_passphrase_proof_is_not_counted(svc: Service) -> None:
    created = await svc.create(passphrase=True)

    with pytest.raises(PassphraseRequired) as refused:
        await svc.consume(created.secret_id)

    assert refused.value.attempts_left == ATTEMPTS
    meta = await svc.store.peek(created.secret_id, now=svc.clock.now())
    assert meta is not None
    assert (meta.views_left, meta.attempts_left) == (1, ATTEMPTS)
    assert await svc.types(created.secret_id) == [(AuditEventType.SECRET_CREATED, Outcome.OK)]


async def test_the_right_passphrase_proof_takes_the_view(svc: Service) -> None:
    created = await svc.create(passphrase=True)

    assert (await svc.consume(created.secret_id, proof=PROOF)).views_left == 0


async def test_a_wrong_passphrase_is_counted_and_the_last_attempt_locks(svc: Service) -> None:
    created = await svc.create(passphrase=True)

    left = []
    for _ in range(ATTEMPTS):
        with pytest.raises(WrongPassphrase) as refused:
            await svc.consume(created.secret_id, proof=WRONG)
        left.append(refused.value.attempts_left)

    assert left == [2, 1, 0]
    with pytest.raises(SecretUnavailable):  # locked: gone, even for the right proof
        await svc.consume(created.secret_id, proof=PROOF)
    types = [type for type, _ in await svc.types(created.secret_id)]
    assert types.count(AuditEventType.PASSPHRASE_FAILED) == ATTEMPTS
    assert types[-1] is AuditEventType.SECRET_LOCKED
    receipt = await svc.service.receipt(created.secret_id, created.manage_token)
    assert receipt.state == "locked"
    kinds = [event.kind for event in receipt.events]
    assert kinds.count(EventKind.WRONG_PASSPHRASE) == ATTEMPTS
    assert kinds[-1] is EventKind.LOCKED


# -- the sender's side ----------------------------------------------------------------------


async def test_burn_by_the_manage_token_ends_the_secret(svc: Service) -> None:
    created = await svc.create()

    await svc.service.burn(created.secret_id, created.manage_token, client=CLIENT)

    with pytest.raises(SecretUnavailable):
        await svc.consume(created.secret_id)
    receipt = await svc.service.receipt(created.secret_id, created.manage_token)
    assert receipt.state == "burned"
    assert [event.kind for event in receipt.events] == [EventKind.CREATED, EventKind.BURNED]
    assert await svc.types(created.secret_id) == [
        (AuditEventType.SECRET_CREATED, Outcome.OK),
        (AuditEventType.SECRET_BURNED, Outcome.OK),
    ]


async def test_burning_twice_is_not_an_error_and_audits_once(svc: Service) -> None:
    created = await svc.create()

    await svc.service.burn(created.secret_id, created.manage_token, client=CLIENT)
    await svc.service.burn(created.secret_id, created.manage_token, client=CLIENT)

    types = [type for type, _ in await svc.types(created.secret_id)]
    assert types.count(AuditEventType.SECRET_BURNED) == 1


async def test_burn_with_a_wrong_manage_token_is_unavailable(svc: Service) -> None:
    created = await svc.create()

    with pytest.raises(SecretUnavailable):
        await svc.service.burn(created.secret_id, WRONG, client=CLIENT)

    assert (await svc.consume(created.secret_id)).views_left == 0


async def test_receipt_follows_the_secret_from_active_to_viewed(svc: Service) -> None:
    created = await svc.create(views=2)

    await svc.consume(created.secret_id)
    active = await svc.service.receipt(created.secret_id, created.manage_token)
    await svc.consume(created.secret_id)
    ended = await svc.service.receipt(created.secret_id, created.manage_token)

    assert (active.state, active.views_left) == ("active", 1)
    assert [event.kind for event in active.events] == [EventKind.CREATED, EventKind.VIEWED]
    assert (ended.state, ended.views_left, ended.record.views_used) == ("viewed", 0, 2)
    assert [event.kind for event in ended.events] == [
        EventKind.CREATED,
        EventKind.VIEWED,
        EventKind.VIEWED,
    ]
    assert all(event.ip == CLIENT.ip for event in ended.events)


async def test_receipt_reads_expired_before_the_sweep(svc: Service) -> None:
    created = await svc.create(ttl=60)
    svc.clock.advance(61)

    receipt = await svc.service.receipt(created.secret_id, created.manage_token)

    assert (receipt.state, receipt.views_left) == ("expired", 0)
    assert receipt.events[-1].kind is EventKind.EXPIRED
    assert receipt.record.ended_at == created.expires_at


async def test_receipt_needs_the_manage_token(svc: Service) -> None:
    created = await svc.create()

    with pytest.raises(SecretUnavailable):
        await svc.service.receipt(created.secret_id, ACCESS)
