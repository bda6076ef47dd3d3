"""The lockout fails closed: the wrong passphrase that uses the last attempt is written to the
audit log, with ``secret.locked``, before the store burns the secret; if that write fails,
nothing is counted or burned. Through the API (audit log on SQLite and PostgreSQL), with
requests that overtake each other, and with two servers sharing one store and one log."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from burnlink.audit import (
    AuditBackend,
    AuditEntry,
    AuditEvent,
    Watched,
    open_audit_store,
    verify_store,
)
from burnlink.audit.events import AuditEventType, Outcome
from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.crypto import Payload, seal
from burnlink.errors import SecretUnavailable, StorageUnavailable, WrongPassphrase
from burnlink.models import ClientInfo, EndReason, EventKind
from burnlink.service import SecretService
from burnlink.service.reporting import Reporter
from burnlink.store import SecretStore, open_store
from burnlink.store.secrets import Attempt
from tests.conftest import RETENTION, store_url
from tests.web.audited import AUDIT_KEY, Audited, Breakable, audited_app, audited_settings

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


class Tap(Breakable):
    """Sits between the app's ``Breakable`` and the real log, and awaits ``on_write`` with the
    events of each transaction before writing them; ``on_write`` may raise to fail it."""

    def __init__(self, inner: AuditBackend, on_write: OnWrite) -> None:
        super().__init__(inner)
        self.on_write = on_write

    async def write(
        self,
        events: Sequence[AuditEvent],
        *,
        watch: Sequence[Watched] = (),
        unwatch: Sequence[str] = (),
    ) -> list[AuditEntry]:
        await self.on_write(events)
        return await super().write(events, watch=watch, unwatch=unwatch)


def tap(audited: Audited, on_write: OnWrite) -> AuditBackend:
    """Put a ``Tap`` in front of the app's log; return the log, to put back."""
    log = audited.audit.inner
    audited.audit.inner = Tap(log, on_write)
    return log


def standing(events: Sequence[AuditEvent]) -> dict[AuditEventType, int]:
    """How many events of each type stand: those written less those corrected (an event with
    ``detail.reason`` corrects one of its type written before it)."""
    counts: Counter[AuditEventType] = Counter()
    for event in events:
        counts[event.type] += -1 if event.detail.get("reason") else 1
    return dict(counts)


@dataclass
class Witness:
    """An ``on_write`` for ``Tap``: notes, for each request that writes ``secret.locked``,
    whether the secret was still in the store at that moment."""

    store: SecretStore
    clock: FrozenClock
    secret_id: str = ""
    alive: dict[str, bool] = field(default_factory=dict)

    async def __call__(self, events: Sequence[AuditEvent]) -> None:
        for event in events:
            if event.type is LOCKED and event.outcome is Outcome.OK and event.request_id:
                meta = await self.store.peek(self.secret_id, now=self.clock.now())
                self.alive[event.request_id] = meta is not None


def the_lockout(events: Sequence[AuditEvent]) -> AuditEvent:
    """The one ``secret.locked`` that stands. A request writes it at most once, so a
    correction's request id tells which one it corrects."""
    corrected = {e.request_id for e in events if e.type is LOCKED and e.detail.get("reason")}
    (lockout,) = [e for e in events if e.type is LOCKED and e.request_id not in corrected]
    return lockout


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


async def test_audit_outage_at_the_lockout_counts_and_burns_nothing(audited: Audited) -> None:
    client = audited.client()
    secret = await create(client)
    assert answer(await reveal(client, secret, "wrong-1")) == wrong(1)

    async def refuse_the_lockout(events: Sequence[AuditEvent]) -> None:
        if LOCKED in {event.type for event in events}:
            raise StorageUnavailable("The audit log is unavailable (test).")

    log = tap(audited, refuse_the_lockout)
    refused = await reveal(client, secret, "wrong-2")

    assert answer(refused)[:2] == (503, "audit_unavailable")
    meta = await audited.store.peek(secret["id"], now=audited.clock.now())
    assert meta is not None, "the secret was burned although its lockout is not in the log"
    assert meta.attempts_left == 1
    receipt = await audited.store.receipt(secret["id"], now=audited.clock.now())
    assert receipt is not None
    assert receipt.end_reason is None
    assert EventKind.LOCKED not in {event.kind for event in receipt.events}
    # Neither event of the refused attempt: they were one transaction.
    assert await trail(audited, secret["id"]) == [(FAILED, Outcome.FAILED, None)]

    audited.audit.inner = log  # mended
    revealed = await reveal(client, secret, PASSPHRASE)
    assert revealed == (200, {"secret": MARKER, "file": None, "views_left": 0})


async def test_lockout_is_in_the_log_before_the_secret_is_burned(audited: Audited) -> None:
    client = audited.client()
    secret = await create(client)
    seen: list[tuple[list[AuditEventType], bool]] = []

    async def note_whether_alive(events: Sequence[AuditEvent]) -> None:
        types = [event.type for event in events if event.type in (FAILED, LOCKED)]
        if types:
            meta = await audited.store.peek(secret["id"], now=audited.clock.now())
            seen.append((types, meta is not None))

    tap(audited, note_whether_alive)
    first = await reveal(client, secret, "wrong-1")
    last = await reveal(client, secret, "wrong-2")

    assert (answer(first), answer(last)) == (wrong(1), wrong(0))
    assert seen == [([FAILED], True), ([FAILED, LOCKED], True)]
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


async def test_attempt_overtaken_by_another_server_is_audited_again_as_the_lockout(
    audited: Audited,
) -> None:
    client = audited.client()
    secret = await create(client)
    overtaken = False

    async def another_server_counts_first(events: Sequence[AuditEvent]) -> None:
        # Between this request's look at the secret (2 attempts left) and its count, another
        # server counts a wrong passphrase: this one becomes the last.
        nonlocal overtaken
        if not overtaken and FAILED in {event.type for event in events}:
            overtaken = True
            other = await audited.store.record_failure(
                secret["id"], now=audited.clock.now(), locks=False
            )
            assert other == Attempt(counted=True, attempts_left=1)

    tap(audited, another_server_counts_first)
    response = await reveal(client, secret, "wrong")

    assert answer(response) == wrong(0)
    assert await trail(audited, secret["id"]) == [
        (FAILED, Outcome.FAILED, None),
        (FAILED, Outcome.FAILED, "retried"),
        (FAILED, Outcome.FAILED, None),
        (LOCKED, Outcome.OK, None),
    ]
    assert await audited.store.peek(secret["id"], now=audited.clock.now()) is None


async def test_concurrent_wrong_passphrases_are_each_counted_and_lock_once(
    audited: Audited,
) -> None:
    client = audited.client()
    secret = await create(client)
    witness = Witness(audited.store, audited.clock, secret["id"])
    tap(audited, witness)
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
    events = [
        e.event
        for e in await audited.entries()
        if e.event.secret_hash == sha(secret["id"]) and e.event.type in (FAILED, LOCKED)
    ]
    assert standing(events) == {FAILED: 2, LOCKED: 1}
    assert witness.alive[the_lockout(events).request_id or ""]
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
        witnesses: list[Witness] = []
        for _ in range(2):
            store = await open_store(url, retention=RETENTION)
            stack.push_async_callback(store.aclose)
            audit = await open_audit_store(f"sqlite://{tmp_path / 'audit.db'}", key=AUDIT_KEY)
            stack.push_async_callback(audit.aclose)
            witnesses.append(Witness(store, clock))
            reporter = Reporter(Tap(audit, witnesses[-1]))
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
        for witness in witnesses:
            witness.secret_id = secret_id
        left: list[int] = []
        gone = 0

        async def guess(n: int) -> None:
            nonlocal gone
            server, request = servers[n % 2], replace(client, request_id=f"guess-{n}")
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
        events = [
            e.event
            async for e in audit.iter_entries()
            if e.event.secret_hash == sha(secret_id) and e.event.type in (FAILED, LOCKED)
        ]
        assert standing(events) == {FAILED: 3, LOCKED: 1}
        lockout = the_lockout(events).request_id or ""
        assert (witnesses[0].alive | witnesses[1].alive)[lockout]
        assert (await verify_store(audit, AUDIT_KEY)).ok
        receipt = await servers[0].store.receipt(secret_id, now=clock.now())
        assert receipt is not None
        assert receipt.end_reason is EndReason.LOCKED
