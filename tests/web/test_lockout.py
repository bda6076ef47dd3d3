"""The lockout holds by construction: the wrong passphrase that uses the last attempt is counted,
the secret burned and both events (``passphrase.failed``, ``secret.locked``) recorded in one
store operation, or none of it happens. Through the API (audit log on SQLite and PostgreSQL),
with requests that overtake each other, with the audit log down, and with two servers sharing
one store and one log."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from burnlink.audit import (
    AuditEvent,
    open_audit_store,
    verify_store,
)
from burnlink.audit.events import AuditEventType, Outcome
from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.crypto import Payload, seal
from burnlink.errors import SecretUnavailable, WrongPassphrase
from burnlink.models import ClientInfo, EndReason, EventKind
from burnlink.service import SecretService
from burnlink.service.reporting import Reporter
from burnlink.store import open_store
from burnlink.store.secrets import Attempt
from tests.conftest import RETENTION, store_url
from tests.web.audited import AUDIT_KEY, Audited, audited_app, audited_settings

pytestmark = pytest.mark.anyio

MARKER = "LOCKOUT-MARKER-" + os.urandom(6).hex()
PASSPHRASE = "passphrase-" + os.urandom(4).hex()
FAILED, LOCKED = AuditEventType.PASSPHRASE_FAILED, AuditEventType.SECRET_LOCKED
OnWrite = Callable[[Sequence[AuditEvent]], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres"])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'audit.db'}"
    url: str = request.getfixturevalue("pg_audit_url")
    return url


@pytest.fixture
async def audited(audit_url: str) -> AsyncIterator[Audited]:
    """The app with ``BURNLINK_PASSPHRASE_ATTEMPTS=2``."""
    async with audited_app(audit_url, audited_settings()) as harness:
        yield harness


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def create(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/secrets", json={"secret": MARKER, "passphrase": PASSPHRASE}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    created["key"] = created["url"].split("#")[1]
    return created


async def reveal(client: httpx.AsyncClient, secret: dict[str, Any], passphrase: str) -> Any:
    response = await client.post(
        f"/api/v1/secrets/{secret['id']}/reveal",
        json={"key": secret["key"], "passphrase": passphrase},
    )
    return response.status_code, response.json()


def wrong(attempts_left: int) -> tuple[int, str, int]:
    return 403, "wrong_passphrase", attempts_left


def answer(status_and_body: Any) -> tuple[int, str, int | None]:
    status, body = status_and_body
    return status, body["error"]["code"], body["error"].get("attempts_left")


async def trail(audited: Audited, secret_id: str) -> list[tuple[AuditEventType, Outcome, Any]]:
    """The secret's passphrase and lockout events: type, outcome, ``detail.reason``."""
    return [
        (e.event.type, e.event.outcome, e.event.detail.get("reason"))
        for e in await audited.entries()
        if e.event.secret_hash == sha(secret_id) and e.event.type in (FAILED, LOCKED)
    ]


async def test_an_audit_outage_at_the_lockout_delays_its_events_and_loses_none(
    audited: Audited,
) -> None:
    client = audited.client()
    secret = await create(client)
    assert answer(await reveal(client, secret, "wrong-1")) == wrong(1)
    audited.audit.broken = True

    locked = await reveal(client, secret, "wrong-2")
    ready = await client.get("/readyz")

    assert answer(locked) == wrong(0)
    assert await audited.store.peek(secret["id"], now=audited.clock.now()) is None
    assert ready.status_code == 503
    assert len(await audited.store.pending_events(limit=100)) >= 2  # the lockout's two events
    audited.audit.broken = False
    assert await trail(audited, secret["id"]) == [
        (FAILED, Outcome.FAILED, None),
        (FAILED, Outcome.FAILED, None),
        (LOCKED, Outcome.OK, None),
    ]
    assert answer(await reveal(client, secret, PASSPHRASE)) == (404, "not_found", None)


async def test_the_lockout_and_its_events_are_one_operation(audited: Audited) -> None:
    client = audited.client()
    secret = await create(client)

    first = await reveal(client, secret, "wrong-1")
    last = await reveal(client, secret, "wrong-2")

    assert (answer(first), answer(last)) == (wrong(1), wrong(0))
    entries = [e for e in await audited.entries() if e.event.secret_hash == sha(secret["id"])]
    types = [e.event.type for e in entries if e.event.type is not AuditEventType.ALERT]
    assert types == [AuditEventType.SECRET_CREATED, FAILED, FAILED, LOCKED]
    failed, locked = [e for e in entries if e.event.type in (FAILED, LOCKED)][-2:]
    assert locked.seq == failed.seq + 1
    assert (locked.event.outcome, locked.event.request_id) == (Outcome.OK, failed.event.request_id)
    assert answer(await reveal(client, secret, PASSPHRASE)) == (404, "not_found", None)
    receipt = await audited.store.receipt(secret["id"], now=audited.clock.now())
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED
    assert [line.kind for line in receipt.events] == [
        EventKind.CREATED,
        EventKind.WRONG_PASSPHRASE,
        EventKind.WRONG_PASSPHRASE,
        EventKind.LOCKED,
    ]


async def test_an_attempt_overtaken_by_another_server_counts_as_the_lockout(
    audited: Audited, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = audited.client()
    secret = await create(client)
    store = audited.store
    count = store.record_failure

    async def another_server_counts_first(secret_id: str, **kwargs: Any) -> Attempt | None:
        # Between this request's look at the secret (2 attempts left) and its count, another
        # server counts a wrong passphrase (its events are not part of this test): this one
        # becomes the last.
        monkeypatch.setattr(store, "record_failure", count)
        other = await count(secret_id, now=audited.clock.now(), locks=False)
        assert other == Attempt(counted=True, attempts_left=1)
        return await count(secret_id, **kwargs)

    monkeypatch.setattr(store, "record_failure", another_server_counts_first)
    response = await reveal(client, secret, "wrong")

    assert answer(response) == wrong(0)
    assert await trail(audited, secret["id"]) == [
        (FAILED, Outcome.FAILED, None),
        (LOCKED, Outcome.OK, None),
    ]
    assert await store.peek(secret["id"], now=audited.clock.now()) is None


async def test_concurrent_wrong_passphrases_are_each_counted_and_lock_once(
    audited: Audited,
) -> None:
    client = audited.client()
    secret = await create(client)
    answers: list[tuple[int, str, int | None]] = []

    async def guess(n: int) -> None:
        answers.append(answer(await reveal(client, secret, f"wrong-{n}")))

    async with anyio.create_task_group() as group:
        for n in range(8):
            group.start_soon(guess, n)

    assert (
        sorted(answers)
        == [(403, "wrong_passphrase", 0), (403, "wrong_passphrase", 1)]
        + [(404, "not_found", None)] * 6
    )
    assert await trail(audited, secret["id"]) == [
        (FAILED, Outcome.FAILED, None),
        (FAILED, Outcome.FAILED, None),
        (LOCKED, Outcome.OK, None),
    ]
    receipt = await audited.store.receipt(secret["id"], now=audited.clock.now())
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED
    assert (await verify_store(audited.audit, AUDIT_KEY)).ok


@pytest.mark.parametrize("backend", ["sqlite", "redis", "redis-cluster", "postgres"])
async def test_two_servers_sharing_a_store_and_a_log_lock_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> None:
    url = store_url(backend, request, tmp_path)
    # Twelve guesses from one client at one secret: past the per-secret failure limit.
    settings = load_settings(store=url, passphrase_attempts=3, rate_limit_secret_failures="off")
    link_key = os.urandom(32)
    sealed = seal(Payload(MARKER.encode()), link_key, passphrase=PASSPHRASE)
    keys = sealed.keys
    assert keys.passphrase_proof is not None
    client = ClientInfo(ip="198.51.100.1", user_agent="test")
    async with AsyncExitStack() as stack:
        servers: list[SecretService] = []
        for _ in range(2):
            store = await open_store(url, retention=RETENTION)
            stack.push_async_callback(store.aclose)
            audit = await open_audit_store(f"sqlite://{tmp_path / 'audit.db'}", key=AUDIT_KEY)
            stack.push_async_callback(audit.aclose)
            reporter = Reporter(audit, store=store)
            stack.push_async_callback(reporter.aclose)
            servers.append(SecretService(store, settings, clock, reporter=reporter))
        created = await servers[0].create(
            sealed.envelope,
            keys.access_token,
            keys.passphrase_proof,
            ttl=None,
            max_views=None,
            client=client,
        )
        secret_id = created.secret_id
        left: list[int] = []
        gone = 0

        async def guess(n: int) -> None:
            nonlocal gone
            server, request = (
                servers[n % 2],
                msgspec.structs.replace(client, request_id=f"guess-{n}"),
            )
            try:
                await server.consume(secret_id, keys.access_token, os.urandom(32), client=request)
            except WrongPassphrase as exc:
                left.append(exc.attempts_left)
            except SecretUnavailable:
                gone += 1

        async with anyio.create_task_group() as group:
            for n in range(12):
                group.start_soon(guess, n)

        assert (sorted(left), gone) == ([0, 1, 2], 9)
        with pytest.raises(SecretUnavailable):
            await servers[1].consume(
                secret_id, keys.access_token, keys.passphrase_proof, client=client
            )
        for server in servers:
            await server.seal_pending()
        events = [
            e.event
            async for e in audit.iter_entries()
            if e.event.secret_hash == sha(secret_id) and e.event.type in (FAILED, LOCKED)
        ]
        assert Counter(e.type for e in events) == {FAILED: 3, LOCKED: 1}
        assert events[-1].type is LOCKED
        assert (await verify_store(audit, AUDIT_KEY)).ok
        receipt = await servers[0].store.receipt(secret_id, now=clock.now())
        assert receipt is not None
        assert receipt.end_reason is EndReason.LOCKED
