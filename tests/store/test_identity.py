"""The sign-in part of the storage contract (``burnlink.store.identity``): sessions, API tokens
and the secrets an owner created, run on every backend through ``store``."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta

import anyio
import msgspec
import pytest

from burnlink.clock import FrozenClock
from burnlink.errors import DuplicateId
from burnlink.ids import new_secret_id, token_digest
from burnlink.models import EndReason, Event, EventKind, SecretRecord, Viewer
from burnlink.store import SecretStore
from burnlink.store.identity import SessionRecord, TokenRecord
from burnlink.store.secrets import Recorded
from tests.conftest import RETENTION

pytestmark = pytest.mark.anyio


IDLE = 1800
MS = timedelta(milliseconds=1)


def new_digest() -> bytes:
    return token_digest(secrets.token_bytes(32))


def make_session(
    clock: FrozenClock, *, subject: str = "alice", ttl: float = 8 * 3600
) -> SessionRecord:
    now = clock.now()
    return SessionRecord(
        digest=new_digest(),
        subject=subject,
        email=f"{subject}@example.com",
        groups=("staff", "ops"),
        mfa=True,
        auth_time=now - timedelta(seconds=5),
        created_at=now,
        last_seen=now,
        expires_at=now + timedelta(seconds=ttl),
    )


def make_token(
    clock: FrozenClock, *, subject: str = "alice", ttl: float = 30 * 86400, name: str = "ci"
) -> TokenRecord:
    now = clock.now()
    return TokenRecord(
        token_id=f"tok_{secrets.token_hex(8)}",
        digest=new_digest(),
        subject=subject,
        email=f"{subject}@example.com",
        groups=("staff",),
        name=name,
        scopes=("secrets:create", "secrets:burn"),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )


def make_secret(
    clock: FrozenClock,
    *,
    owner: str | None,
    label: str | None = None,
    ttl: float = 3600,
    owner_email: str | None = None,
) -> SecretRecord:
    now = clock.now()
    return SecretRecord(
        secret_id=new_secret_id(),
        envelope=b'{"v":1,"ct":"opaque"}',
        access_digest=token_digest(b"access"),
        manage_digest=token_digest(b"manage"),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
        max_views=1,
        max_attempts=5,
        owner=owner,
        owner_email=owner_email,
        label=label,
    )


# Sessions


async def test_touch_session_returns_it_with_last_seen_now(
    store: SecretStore, clock: FrozenClock
) -> None:
    session = make_session(clock)
    await store.put_session(session)
    clock.advance(60)

    touched = await store.touch_session(session.digest, now=clock.now(), idle_seconds=IDLE)

    assert touched == dataclasses.replace(session, last_seen=clock.now())
    assert touched is not None
    assert touched.digest == session.digest


async def test_session_without_email_or_groups_round_trips(
    store: SecretStore, clock: FrozenClock
) -> None:
    session = dataclasses.replace(make_session(clock), email=None, groups=(), mfa=False)
    await store.put_session(session)

    assert await store.touch_session(session.digest, now=clock.now(), idle_seconds=IDLE) == session


async def test_put_session_refuses_a_kept_digest(store: SecretStore, clock: FrozenClock) -> None:
    session = make_session(clock)
    await store.put_session(session)

    with pytest.raises(DuplicateId):
        await store.put_session(dataclasses.replace(session, subject="mallory"))

    touched = await store.touch_session(session.digest, now=clock.now(), idle_seconds=IDLE)
    assert touched is not None
    assert touched.subject == "alice"


async def test_touch_unknown_session_is_none(store: SecretStore, clock: FrozenClock) -> None:
    assert await store.touch_session(new_digest(), now=clock.now(), idle_seconds=IDLE) is None


async def test_session_ends_exactly_at_its_absolute_end(
    store: SecretStore, clock: FrozenClock
) -> None:
    session = make_session(clock, ttl=3600)
    await store.put_session(session)
    end = session.expires_at

    # Active all along, so never idle: only the absolute end stops it.
    for at in range(1000, 3600, 1000):
        assert await store.touch_session(
            session.digest, now=session.created_at + timedelta(seconds=at), idle_seconds=IDLE
        )
    assert await store.touch_session(session.digest, now=end - MS, idle_seconds=IDLE)
    assert await store.touch_session(session.digest, now=end, idle_seconds=IDLE) is None
    # Deleted, not only refused: an earlier time does not bring it back.
    assert await store.touch_session(session.digest, now=end - MS, idle_seconds=IDLE) is None


async def test_session_ends_exactly_when_idle_for_idle_seconds(
    store: SecretStore, clock: FrozenClock
) -> None:
    session = make_session(clock)
    await store.put_session(session)
    start = session.last_seen
    idle = timedelta(seconds=IDLE)

    assert await store.touch_session(session.digest, now=start + idle - MS, idle_seconds=IDLE)
    # The touch moved last_seen: idle is counted from it.
    later = start + idle - MS + idle - MS
    assert await store.touch_session(session.digest, now=later, idle_seconds=IDLE)
    assert await store.touch_session(session.digest, now=later + idle, idle_seconds=IDLE) is None
    assert await store.touch_session(session.digest, now=later, idle_seconds=IDLE) is None


async def test_end_session_deletes_it_once(store: SecretStore, clock: FrozenClock) -> None:
    session = make_session(clock)
    other = make_session(clock)
    await store.put_session(session)
    await store.put_session(other)

    assert await store.end_session(session.digest) is True
    assert await store.end_session(session.digest) is False
    assert await store.touch_session(session.digest, now=clock.now(), idle_seconds=IDLE) is None
    assert await store.touch_session(other.digest, now=clock.now(), idle_seconds=IDLE)


async def test_end_unknown_session_is_false(store: SecretStore) -> None:
    assert await store.end_session(new_digest()) is False


async def test_end_sessions_of_ends_every_session_of_one_subject(
    store: SecretStore, clock: FrozenClock
) -> None:
    alices = [make_session(clock, subject="alice") for _ in range(3)]
    bob = make_session(clock, subject="bob")
    for session in [*alices, bob]:
        await store.put_session(session)

    assert await store.end_sessions_of("alice") == 3
    assert await store.end_sessions_of("alice") == 0
    assert await store.end_sessions_of("nobody") == 0
    for session in alices:
        assert await store.touch_session(session.digest, now=clock.now(), idle_seconds=IDLE) is None
    assert await store.touch_session(bob.digest, now=clock.now(), idle_seconds=IDLE)


async def test_end_sessions_of_skips_sessions_already_ended(
    store: SecretStore, clock: FrozenClock
) -> None:
    first, second = make_session(clock), make_session(clock)
    await store.put_session(first)
    await store.put_session(second)
    await store.end_session(first.digest)

    assert await store.end_sessions_of("alice") == 1


async def test_concurrent_touches_of_a_live_session_all_succeed(
    store: SecretStore, clock: FrozenClock
) -> None:
    session = make_session(clock)
    await store.put_session(session)
    start = clock.now()
    results: list[SessionRecord | None] = []

    async def touch(offset: int) -> None:
        now = start + timedelta(seconds=offset)
        results.append(await store.touch_session(session.digest, now=now, idle_seconds=IDLE))

    async with anyio.create_task_group() as tg:
        for offset in range(1, 11):
            tg.start_soon(touch, offset)

    assert all(r is not None and r.subject == "alice" for r in results)
    assert len(results) == 10
    final = await store.touch_session(
        session.digest, now=start + timedelta(seconds=10), idle_seconds=IDLE
    )
    assert final is not None


async def test_concurrent_touches_of_an_idle_session_all_fail(
    store: SecretStore, clock: FrozenClock
) -> None:
    session = make_session(clock)
    await store.put_session(session)
    now = session.last_seen + timedelta(seconds=IDLE)
    results: list[SessionRecord | None] = []

    async def touch() -> None:
        results.append(await store.touch_session(session.digest, now=now, idle_seconds=IDLE))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(touch)

    assert results == [None] * 5


async def test_purge_expired_drops_sessions_past_their_end(
    store: SecretStore, clock: FrozenClock
) -> None:
    short = make_session(clock, ttl=60)
    long = make_session(clock, ttl=3600)
    await store.put_session(short)
    await store.put_session(long)
    clock.advance(60)

    await store.purge_expired(now=clock.now(), limit=100)

    assert await store.touch_session(long.digest, now=clock.now(), idle_seconds=IDLE)
    assert await store.end_session(short.digest) is False


# API tokens


async def test_use_token_returns_it_with_last_used_now(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = make_token(clock)
    await store.put_token(token)
    clock.advance(10)

    used = await store.use_token(token.digest, now=clock.now())

    assert used == dataclasses.replace(token, last_used=clock.now())
    assert used is not None
    assert used.digest == token.digest


async def test_token_without_email_or_groups_round_trips(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = dataclasses.replace(make_token(clock), email=None, groups=(), scopes=())
    await store.put_token(token)

    assert await store.list_tokens("alice", now=clock.now()) == [token]


async def test_put_token_refuses_a_kept_digest_or_id(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = make_token(clock)
    await store.put_token(token)

    with pytest.raises(DuplicateId):
        await store.put_token(dataclasses.replace(make_token(clock), digest=token.digest))
    with pytest.raises(DuplicateId):
        await store.put_token(dataclasses.replace(make_token(clock), token_id=token.token_id))

    assert await store.list_tokens("alice", now=clock.now()) == [token]
    used = await store.use_token(token.digest, now=clock.now())
    assert used is not None
    assert used.token_id == token.token_id


async def test_use_unknown_token_is_none(store: SecretStore, clock: FrozenClock) -> None:
    assert await store.use_token(new_digest(), now=clock.now()) is None


async def test_token_stops_working_exactly_at_its_expiry(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = make_token(clock, ttl=3600)
    await store.put_token(token)

    assert await store.use_token(token.digest, now=token.expires_at - MS)
    assert await store.use_token(token.digest, now=token.expires_at) is None
    listed = await store.list_tokens("alice", now=token.expires_at)
    assert [t.last_used for t in listed] == [token.expires_at - MS]


async def test_revoked_token_stops_working(store: SecretStore, clock: FrozenClock) -> None:
    token = make_token(clock)
    await store.put_token(token)

    assert await store.revoke_token(token.token_id, now=clock.now(), subject="alice") is True

    assert await store.use_token(token.digest, now=clock.now()) is None
    assert await store.list_tokens("alice", now=clock.now()) == [
        dataclasses.replace(token, revoked_at=clock.now())
    ]


async def test_list_tokens_newest_first_and_only_the_subjects(
    store: SecretStore, clock: FrozenClock
) -> None:
    first = make_token(clock, name="first")
    clock.advance(1)
    bobs = make_token(clock, subject="bob")
    clock.advance(1)
    second = make_token(clock, name="second")
    for token in (first, bobs, second):
        await store.put_token(token)

    assert await store.list_tokens("alice", now=clock.now()) == [second, first]
    assert await store.list_tokens("bob", now=clock.now()) == [bobs]
    assert await store.list_tokens("carol", now=clock.now()) == []


async def test_refresh_tokens_gives_a_users_tokens_their_latest_email_and_groups(
    store: SecretStore, clock: FrozenClock
) -> None:
    first = make_token(clock, name="first")
    second = make_token(clock, name="second")
    bobs = make_token(clock, subject="bob")
    for token in (first, second, bobs):
        await store.put_token(token)

    refreshed = await store.refresh_tokens(
        "alice", email="alice@new.example", groups=("sales", "cn=ops,dc=example")
    )

    assert refreshed == 2
    listed = await store.list_tokens("alice", now=clock.now())
    assert {(t.email, t.groups) for t in listed} == {
        ("alice@new.example", ("sales", "cn=ops,dc=example"))
    }
    used = await store.use_token(first.digest, now=clock.now())
    assert used is not None
    assert used.groups == ("sales", "cn=ops,dc=example")
    assert [t.groups for t in await store.list_tokens("bob", now=clock.now())] == [bobs.groups]
    assert await store.refresh_tokens("alice", email=None, groups=()) == 2
    assert {(t.email, t.groups) for t in await store.list_tokens("alice", now=clock.now())} == {
        (None, ())
    }
    assert await store.refresh_tokens("carol", email=None, groups=()) == 0


async def test_all_tokens_lists_every_users_newest_first_up_to_the_limit(
    store: SecretStore, clock: FrozenClock
) -> None:
    first = make_token(clock, name="first")
    clock.advance(1)
    bobs = make_token(clock, subject="bob")
    clock.advance(1)
    second = make_token(clock, name="second")
    for token in (first, bobs, second):
        await store.put_token(token)

    assert await store.all_tokens(now=clock.now(), limit=10) == [second, bobs, first]
    assert await store.all_tokens(now=clock.now(), limit=2) == [second, bobs]


async def test_all_tokens_keeps_an_ended_token_until_retention_as_list_tokens_does(
    store: SecretStore, clock: FrozenClock
) -> None:
    short = make_token(clock, ttl=60)
    kept = make_token(clock, subject="bob", ttl=365 * 86400)
    for token in (short, kept):
        await store.put_token(token)
    clock.advance(10)
    await store.revoke_token(kept.token_id, now=clock.now(), subject=None)

    revoked = dataclasses.replace(kept, revoked_at=clock.now())
    listed = await store.all_tokens(now=clock.now(), limit=10)
    assert sorted(t.token_id for t in listed) == sorted([short.token_id, kept.token_id])
    assert revoked in listed
    # The revoked one goes RETENTION after its revoke, the other RETENTION after its expiry.
    after_revoke = clock.now() + RETENTION
    assert [t.token_id for t in await store.all_tokens(now=after_revoke, limit=10)] == [
        short.token_id
    ]
    assert await store.all_tokens(now=short.expires_at + RETENTION, limit=10) == []


async def test_list_tokens_keeps_a_revoked_token_until_retention_after_the_revoke(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = make_token(clock, ttl=365 * 86400)
    await store.put_token(token)
    clock.advance(100)
    revoked_at = clock.now()
    await store.revoke_token(token.token_id, now=revoked_at, subject=None)

    end = revoked_at + RETENTION
    assert [t.token_id for t in await store.list_tokens("alice", now=end - MS)] == [token.token_id]
    await store.purge_expired(now=end - MS, limit=100)
    assert [t.revoked_at for t in await store.list_tokens("alice", now=end - MS)] == [revoked_at]
    assert await store.list_tokens("alice", now=end) == []


async def test_list_tokens_keeps_an_expired_token_until_retention_after_its_expiry(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = make_token(clock, ttl=60)
    await store.put_token(token)

    end = token.expires_at + RETENTION
    await store.purge_expired(now=end - MS, limit=100)
    assert await store.list_tokens("alice", now=end - MS) == [token]
    assert await store.list_tokens("alice", now=end) == []
    await store.purge_expired(now=end, limit=100)
    assert await store.list_tokens("alice", now=end - MS) == []


async def test_revoke_token_by_its_owner_once(store: SecretStore, clock: FrozenClock) -> None:
    token = make_token(clock)
    await store.put_token(token)

    assert await store.revoke_token(token.token_id, now=clock.now(), subject="alice") is True
    clock.advance(5)
    assert await store.revoke_token(token.token_id, now=clock.now(), subject="alice") is False
    assert await store.revoke_token(token.token_id, now=clock.now(), subject=None) is False
    listed = await store.list_tokens("alice", now=clock.now())
    assert [t.revoked_at for t in listed] == [clock.now() - timedelta(seconds=5)]


async def test_revoke_token_of_another_owner_is_false_and_keeps_it(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = make_token(clock)
    await store.put_token(token)

    assert await store.revoke_token(token.token_id, now=clock.now(), subject="mallory") is False
    assert await store.use_token(token.digest, now=clock.now())
    assert [t.revoked_at for t in await store.list_tokens("alice", now=clock.now())] == [None]


async def test_revoke_token_by_an_administrator(store: SecretStore, clock: FrozenClock) -> None:
    token = make_token(clock)
    await store.put_token(token)

    assert await store.revoke_token(token.token_id, now=clock.now(), subject=None) is True
    assert await store.use_token(token.digest, now=clock.now()) is None


async def test_revoke_an_expired_or_unknown_token_is_false(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = make_token(clock, ttl=60)
    await store.put_token(token)

    assert await store.revoke_token(token.token_id, now=token.expires_at, subject=None) is False
    assert await store.revoke_token("tok_unknown", now=clock.now(), subject=None) is False
    assert await store.list_tokens("alice", now=token.expires_at) == [token]


async def test_concurrent_uses_of_a_token_all_succeed_and_keep_one_last_used(
    store: SecretStore, clock: FrozenClock
) -> None:
    token = make_token(clock)
    await store.put_token(token)
    start = clock.now()
    results: list[TokenRecord | None] = []

    async def use(offset: int) -> None:
        results.append(await store.use_token(token.digest, now=start + timedelta(seconds=offset)))

    async with anyio.create_task_group() as tg:
        for offset in range(1, 11):
            tg.start_soon(use, offset)

    assert len(results) == 10
    assert all(r is not None and r.token_id == token.token_id for r in results)
    used = {r.last_used for r in results if r is not None}
    assert used == {start + timedelta(seconds=offset) for offset in range(1, 11)}
    (listed,) = await store.list_tokens("alice", now=start)
    assert listed.last_used in used


async def test_concurrent_revokes_revoke_once(store: SecretStore, clock: FrozenClock) -> None:
    token = make_token(clock)
    await store.put_token(token)
    results: list[bool] = []

    async def revoke(subject: str | None) -> None:
        results.append(await store.revoke_token(token.token_id, now=clock.now(), subject=subject))

    async with anyio.create_task_group() as tg:
        for subject in ["alice", None, "alice", None, "alice"]:
            tg.start_soon(revoke, subject)

    assert sorted(results) == [False, False, False, False, True]


async def test_concurrent_puts_of_one_digest_keep_one(
    store: SecretStore, clock: FrozenClock
) -> None:
    digest = new_digest()
    tokens = [dataclasses.replace(make_token(clock), digest=digest) for _ in range(5)]
    refused: list[TokenRecord] = []

    async def put(token: TokenRecord) -> None:
        try:
            await store.put_token(token)
        except DuplicateId:
            refused.append(token)

    async with anyio.create_task_group() as tg:
        for token in tokens:
            tg.start_soon(put, token)

    assert len(refused) == 4
    (kept,) = [t for t in tokens if t not in refused]
    assert await store.list_tokens("alice", now=clock.now()) == [kept]


# Owned secrets


async def test_receipt_carries_owner_and_label(store: SecretStore, clock: FrozenClock) -> None:
    record = make_secret(clock, owner="alice", label="db password for staging")
    await store.create(record)

    receipt = await store.receipt(record.secret_id, now=clock.now())

    assert receipt is not None
    assert (receipt.owner, receipt.label) == ("alice", "db password for staging")


async def test_receipt_and_owned_secrets_carry_the_owners_email(
    store: SecretStore, clock: FrozenClock
) -> None:
    """The email the owner had when creating, or none when the provider gave none."""
    with_email = make_secret(clock, owner="alice", owner_email="alice@example.com")
    without = make_secret(clock, owner="bob")
    for record in (with_email, without):
        await store.create(record)

    receipts = [await store.receipt(r.secret_id, now=clock.now()) for r in (with_email, without)]
    (owned,) = await store.owned_secrets("alice", now=clock.now(), limit=10)

    assert [(r.owner, r.owner_email) for r in receipts if r is not None] == [
        ("alice", "alice@example.com"),
        ("bob", None),
    ]
    assert owned.owner_email == "alice@example.com"


async def test_owned_secrets_carry_the_viewer_of_each_line(
    store: SecretStore, clock: FrozenClock
) -> None:
    """ "My secrets" reads receipts its own way: their lines name their viewers there too."""
    record = make_secret(clock, owner="alice")
    await store.create(record)
    viewer = Viewer(email="bob@example.com", mfa=True)
    viewed = Event(at=clock.now(), kind=EventKind.VIEWED, ip="203.0.113.7", viewer=viewer)
    await store.record(record.secret_id, [Recorded(viewed, b"record")])

    (owned,) = await store.owned_secrets("alice", now=clock.now(), limit=10)

    assert owned.events == (viewed,)


async def test_anonymous_receipt_has_no_owner_or_label(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_secret(clock, owner=None)
    await store.create(record)

    receipt = await store.receipt(record.secret_id, now=clock.now())

    assert receipt is not None
    assert (receipt.owner, receipt.owner_email, receipt.label) == (None, None, None)


async def test_owned_secrets_newest_first_up_to_limit(
    store: SecretStore, clock: FrozenClock
) -> None:
    records = []
    for n in range(5):
        records.append(make_secret(clock, owner="alice", label=f"n{n}" if n % 2 else None))
        clock.advance(1)
    for record in records:
        await store.create(record)

    owned = await store.owned_secrets("alice", now=clock.now(), limit=3)

    assert [r.secret_id for r in owned] == [r.secret_id for r in reversed(records)][:3]
    assert [r.label for r in owned] == [None, "n3", None]
    assert all(r.owner == "alice" for r in owned)
    everything = await store.owned_secrets("alice", now=clock.now(), limit=100)
    assert len(everything) == 5
    assert everything[0] == await store.receipt(records[-1].secret_id, now=clock.now())


async def test_owned_secrets_are_only_the_owners(store: SecretStore, clock: FrozenClock) -> None:
    alices = make_secret(clock, owner="alice")
    bobs = make_secret(clock, owner="bob")
    anonymous = make_secret(clock, owner=None)
    for record in (alices, bobs, anonymous):
        await store.create(record)

    assert [r.secret_id for r in await store.owned_secrets("alice", now=clock.now(), limit=10)] == [
        alices.secret_id
    ]
    assert [r.secret_id for r in await store.owned_secrets("bob", now=clock.now(), limit=10)] == [
        bobs.secret_id
    ]
    assert await store.owned_secrets("carol", now=clock.now(), limit=10) == []


async def test_owned_secret_stays_listed_after_it_ends_until_retention(
    store: SecretStore, clock: FrozenClock
) -> None:
    viewed = make_secret(clock, owner="alice", label="viewed")
    burned = make_secret(clock, owner="alice", label="burned")
    live = make_secret(clock, owner="alice", label="live", ttl=90 * 86400)
    for record in (viewed, burned, live):
        await store.create(record)
    assert await store.consume(viewed.secret_id, viewed.access_digest, now=clock.now())
    assert await store.burn(burned.secret_id, now=clock.now())
    ended_at = clock.now()

    owned = await store.owned_secrets("alice", now=clock.now(), limit=10)
    states = {r.label: (r.end_reason, r.ended_at) for r in owned}
    assert states == {
        "viewed": (EndReason.VIEWED, ended_at),
        "burned": (EndReason.BURNED, ended_at),
        "live": (None, None),
    }

    end = ended_at + RETENTION
    await store.purge_expired(now=end - MS, limit=100)
    assert len(await store.owned_secrets("alice", now=end - MS, limit=10)) == 3
    assert [r.label for r in await store.owned_secrets("alice", now=end, limit=10)] == ["live"]
    await store.purge_expired(now=end, limit=100)
    assert [r.label for r in await store.owned_secrets("alice", now=end, limit=10)] == ["live"]


async def test_owned_secret_that_expired_is_listed_until_retention_after_expiry(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_secret(clock, owner="alice", ttl=60)
    await store.create(record)
    expired = record.expires_at

    (before_sweep,) = await store.owned_secrets("alice", now=expired, limit=10)
    assert before_sweep.state(expired) == "expired"
    await store.purge_expired(now=expired, limit=100)
    (after_sweep,) = await store.owned_secrets("alice", now=expired, limit=10)
    assert (after_sweep.end_reason, after_sweep.ended_at) == (EndReason.EXPIRED, expired)
    assert await store.owned_secrets("alice", now=expired + RETENTION, limit=10) == []


async def test_owned_secrets_limit_counts_only_kept_receipts(
    store: SecretStore, clock: FrozenClock
) -> None:
    """Receipts past retention neither fill the page nor push out older kept ones."""
    kept = [make_secret(clock, owner="alice", ttl=3 * RETENTION.total_seconds()) for _ in range(2)]
    clock.advance(1)
    gone = [make_secret(clock, owner="alice", ttl=60) for _ in range(3)]
    for record in (*kept, *gone):
        await store.create(record)
    clock.advance(60 + RETENTION.total_seconds())

    owned = await store.owned_secrets("alice", now=clock.now(), limit=2)

    assert {r.secret_id for r in owned} == {r.secret_id for r in kept}


async def test_a_refused_create_lists_nothing_for_its_owner(
    store: SecretStore, clock: FrozenClock
) -> None:
    bobs = make_secret(clock, owner="bob")
    await store.create(bobs)

    with pytest.raises(DuplicateId):
        await store.create(msgspec.structs.replace(bobs, owner="alice", label="mine"))

    assert await store.owned_secrets("alice", now=clock.now(), limit=10) == []
    (owned,) = await store.owned_secrets("bob", now=clock.now(), limit=10)
    assert (owned.owner, owned.label) == ("bob", None)


async def test_owned_secrets_with_limit_zero_is_empty(
    store: SecretStore, clock: FrozenClock
) -> None:
    await store.create(make_secret(clock, owner="alice"))

    assert await store.owned_secrets("alice", now=clock.now(), limit=0) == []


async def test_end_sessions_of_racing_new_sessions_leaves_none_behind_uncounted(
    store: SecretStore, clock: FrozenClock
) -> None:
    """Each session is either ended (and counted) or still live afterwards: none is lost
    from the count nor left half ended."""
    sessions = [make_session(clock) for _ in range(10)]
    for session in sessions[:5]:
        await store.put_session(session)
    ended: list[int] = []

    async def end_all() -> None:
        ended.append(await store.end_sessions_of("alice"))

    async with anyio.create_task_group() as tg:
        for session in sessions[5:]:
            tg.start_soon(store.put_session, session)
        tg.start_soon(end_all)

    live = [
        s
        for s in sessions
        if await store.touch_session(s.digest, now=clock.now(), idle_seconds=IDLE) is not None
    ]
    assert ended[0] >= 5
    assert ended[0] + len(live) == 10
    assert all(s in sessions[5:] for s in live)
