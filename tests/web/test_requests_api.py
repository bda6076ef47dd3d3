"""``/api/v1/requests`` end to end on a real audit log (SQLite) and a real webhook receiver:
the flow with its events, each refusal changing nothing, the long poll, the sweep's expiry,
the rate limit, and the requester's email through a real SMTP server."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from burnlink.audit.events import AuditEventType
from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.crypto import Payload
from burnlink.ids import b64url_decode, b64url_encode
from burnlink.mailer import SmtpMailer
from burnlink.request_crypto import KeyPair, SealedAnswer, open_answer, seal_answer
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from tests.hooks import Receiver, webhook_receiver
from tests.mail import Outbox
from tests.web.audited import Audited, audited_app, audited_settings
from tests.web.signed_in import SIGN_IN, sign_in

pytestmark = pytest.mark.anyio

SECRET = b"postgres://app:s3cr3t@db.internal:5432/prod"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
async def audited(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Audited]:
    settings = audited_settings(receiver, max_bytes=4096, rate_limit_create="6/minute")
    async with audited_app(f"sqlite://{tmp_path / 'audit.db'}", settings) as harness:
        yield harness


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def ask(client: httpx.AsyncClient, keys: KeyPair, **body: Any) -> dict[str, Any]:
    body = {"public_key": b64url_encode(keys.public), "description": "staging DB password", **body}
    response = await client.post("/api/v1/requests", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def sealed_for(created: dict[str, Any], keys: KeyPair, content: bytes = SECRET) -> dict[str, Any]:
    answer = seal_answer(
        Payload(content), keys.public, created["id"], expected_fingerprint=keys.fingerprint
    )
    return answer.to_json()


async def answer(
    client: httpx.AsyncClient, created: dict[str, Any], sealed: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/requests/{created['id']}/answer",
        json={"answer": sealed},
        headers=bearer(created["link_token"]),
    )


async def status(client: httpx.AsyncClient, created: dict[str, Any], **params: Any) -> Any:
    response = await client.get(
        f"/api/v1/requests/{created['id']}/status",
        params=params,
        headers=bearer(created["requester_token"]),
    )
    assert response.status_code == 200, response.text
    return response.json()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_a_request_is_asked_answered_once_and_opened_with_its_events(
    audited: Audited, receiver: Receiver
) -> None:
    requester, answerer = audited.client(), audited.client(ip="198.51.100.2")
    keys = KeyPair.generate()
    created = await ask(requester, keys, answer_views=1, notify_url=receiver.url("/requests"))
    assert created["url"] == f"http://burnlink.test/r/{created['id']}"
    assert created["requester_url"] == f"http://burnlink.test/k/{created['id']}"
    assert (created["answer_views"], created["answer_ttl"]) == (1, 86400)

    view = await answerer.get(
        f"/api/v1/requests/{created['id']}", headers=bearer(created["link_token"])
    )
    assert view.status_code == 200, view.text
    shown = view.json()
    assert shown["description"] == "staging DB password"
    assert shown["state"] == "open"
    assert b64url_decode(shown["public_key"], field="public_key") == keys.public
    assert shown["max_bytes"] == 4096
    assert (await status(requester, created))["state"] == "open"

    answered = await answer(answerer, created, sealed_for(created, keys))
    assert answered.status_code == 201, answered.text
    assert answered.json()["secret_id"] == created["id"]
    assert answered.json()["manage_url"].startswith(f"http://burnlink.test/m/{created['id']}#")

    now = await status(requester, created)
    assert now["state"] == "answered"
    assert now["answer"]["views_left"] == 1
    opened = await requester.post(
        f"/api/v1/requests/{created['id']}/open", headers=bearer(created["requester_token"])
    )
    assert opened.status_code == 200, opened.text
    assert opened.json()["views_left"] == 0
    payload = open_answer(SealedAnswer.from_json(opened.json()["answer"]), keys, created["id"])
    assert payload.content == SECRET
    again = await requester.post(
        f"/api/v1/requests/{created['id']}/open", headers=bearer(created["requester_token"])
    )
    assert again.status_code == 404
    assert (await status(requester, created))["answer"] is None

    # The answerer's receipt: created, then viewed once by the requester.
    manage = answered.json()["manage_url"].split("#")[1]
    receipt = await answerer.get(f"/api/v1/secrets/{created['id']}/receipt", headers=bearer(manage))
    assert receipt.status_code == 200, receipt.text
    assert [e["type"] for e in receipt.json()["events"]] == ["created", "viewed"]

    await audited.join()
    types = [
        e.event.type
        for e in await audited.entries()
        if e.event.secret_hash == sha(created["id"]) and e.event.type is not AuditEventType.ALERT
    ]
    assert types == [
        AuditEventType.REQUEST_CREATED,
        AuditEventType.REQUEST_OPENED,
        AuditEventType.SECRET_CREATED,
        AuditEventType.REQUEST_ANSWERED,
        AuditEventType.SECRET_VIEWED,
    ]
    hooks = {h.json()["type"]: h for h in receiver.on("/requests")}  # delivered in any order
    assert set(hooks) == {"request.fulfilled", "secret.viewed"}
    assert hooks["request.fulfilled"].json()["data"]["request_id"] == created["id"]
    assert "webhook-signature" in hooks["request.fulfilled"].headers


async def test_refusals_change_nothing(audited: Audited) -> None:
    client = audited.client()
    keys = KeyPair.generate()
    created = await ask(client, keys)
    other = KeyPair.generate()

    unknown = await client.get(
        "/api/v1/requests/AAAAAAAAAAAAAAAAAAAAAA", headers=bearer(created["link_token"])
    )
    wrong = await client.get(
        f"/api/v1/requests/{created['id']}", headers=bearer(created["requester_token"])
    )
    assert unknown.status_code == wrong.status_code == 404
    assert unknown.json() == wrong.json()
    wrong_answer = await client.post(
        f"/api/v1/requests/{created['id']}/answer",
        json={"answer": sealed_for(created, keys)},
        headers=bearer(created["requester_token"]),
    )
    assert wrong_answer.status_code == 404

    malformed = await answer(client, created, {**sealed_for(created, keys), "crv": "X25519"})
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "invalid_envelope"
    assert malformed.json()["error"]["field"] == "answer.crv"

    to_other = seal_answer(
        Payload(SECRET), other.public, created["id"], expected_fingerprint=other.fingerprint
    )
    swapped = await answer(client, created, to_other.to_json())
    assert swapped.status_code == 422
    assert swapped.json()["error"]["field"] == "answer.rpk"

    too_large = await answer(client, created, sealed_for(created, keys, b"x" * 6000))
    assert too_large.status_code == 413
    assert too_large.json()["error"]["field"] == "answer.ct"

    assert (await status(client, created))["state"] == "open"

    first = await answer(client, created, sealed_for(created, keys, b"first"))
    assert first.status_code == 201
    second = await answer(client, created, sealed_for(created, keys, b"second"))
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "already_answered"
    opened = await client.post(
        f"/api/v1/requests/{created['id']}/open", headers=bearer(created["requester_token"])
    )
    payload = open_answer(SealedAnswer.from_json(opened.json()["answer"]), keys, created["id"])
    assert payload.content == b"first"


async def test_an_answer_after_expiry_is_refused_and_the_sweep_records_the_expiry(
    audited: Audited,
) -> None:
    client = audited.client()
    keys = KeyPair.generate()
    created = await ask(client, keys, ttl=60)
    not_yet = await client.post(
        f"/api/v1/requests/{created['id']}/open", headers=bearer(created["requester_token"])
    )
    assert not_yet.status_code == 409
    assert not_yet.json()["error"]["code"] == "not_answered"
    audited.clock.advance(60)

    late = await answer(client, created, sealed_for(created, keys))

    assert late.status_code == 410
    assert late.json()["error"]["code"] == "request_expired"
    assert (await status(client, created))["state"] == "expired"
    await audited.service.sweep()
    await audited.service.sweep()
    expired = [
        e.event for e in await audited.entries() if e.event.type is AuditEventType.REQUEST_EXPIRED
    ]
    assert [e.secret_hash for e in expired] == [sha(created["id"])]


async def test_the_requester_waits_for_the_answer_without_polling(audited: Audited) -> None:
    requester, answerer = audited.client(), audited.client(ip="198.51.100.2")
    keys = KeyPair.generate()
    created = await ask(requester, keys)

    async def answer_soon() -> None:
        await asyncio.sleep(0.3)
        response = await answer(answerer, created, sealed_for(created, keys))
        assert response.status_code == 201

    started = time.monotonic()
    waited, _ = await asyncio.gather(status(requester, created, wait=30), answer_soon())

    assert waited["state"] == "answered"
    assert 0.3 <= time.monotonic() - started < 5
    bad = await requester.get(
        f"/api/v1/requests/{created['id']}/status",
        params={"wait": 61},
        headers=bearer(created["requester_token"]),
    )
    assert bad.status_code == 422


async def test_requests_count_against_the_create_rate(audited: Audited) -> None:
    client = audited.client(ip="198.51.100.9")
    keys = KeyPair.generate()
    for _ in range(6):
        await ask(client, keys)

    refused = await client.post(
        "/api/v1/requests",
        json={"public_key": b64url_encode(keys.public), "description": "one more"},
    )

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"


async def test_a_bad_public_key_or_description_is_refused(audited: Audited) -> None:
    client = audited.client()
    point = bytearray(KeyPair.generate().public)
    point[-1] ^= 1  # off the curve
    off_curve = await client.post(
        "/api/v1/requests",
        json={"public_key": b64url_encode(bytes(point)), "description": "x"},
    )
    assert off_curve.status_code == 422
    assert off_curve.json()["error"]["field"] == "public_key"
    control = await client.post(
        "/api/v1/requests",
        json={"public_key": b64url_encode(KeyPair.generate().public), "description": "a\x00b"},
    )
    assert control.status_code == 422
    assert control.json()["error"]["field"] == "description"


async def test_the_requester_is_mailed_when_the_answer_arrives(
    outbox: Outbox, clock: FrozenClock
) -> None:
    settings = load_settings(
        store="memory://",
        smtp_url=f"smtp://127.0.0.1:{outbox.port}",
        smtp_from="burnlink@example.org",
    )
    app = create_app(
        settings,
        MemoryStore(retention=timedelta(days=1)),
        clock,
        mailer=SmtpMailer.from_url(f"smtp://127.0.0.1:{outbox.port}", "burnlink@example.org"),
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as client,
    ):
        keys = KeyPair.generate()
        created = await ask(client, keys, notify_email="req@example.com")
        response = await answer(client, created, sealed_for(created, keys))
        assert response.status_code == 201
        await app.state.service.reporter.join()

    (_, recipients, message) = outbox.messages[-1]
    assert recipients == ["req@example.com"]
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert created["id"] in body.decode()
    assert created["link_token"] not in body.decode()
    assert created["requester_token"] not in body.decode()


async def test_only_a_signed_in_recipient_may_answer_a_request_for_recipients(
    clock: FrozenClock,
) -> None:
    settings = load_settings(store="memory://", **SIGN_IN)
    store = MemoryStore(retention=timedelta(days=1))
    app = create_app(settings, store, clock)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client,
    ):
        keys = KeyPair.generate()
        created = await ask(client, keys, recipients=["group:ops"])
        link = bearer(created["link_token"])
        path = f"/api/v1/requests/{created['id']}"
        ops = await sign_in(store, clock.now(), groups=("ops",))
        sales = await sign_in(store, clock.now(), subject="bob", groups=("sales",))

        anonymous = await client.get(path, headers=link)
        outsider = await client.post(
            f"{path}/answer", json={"answer": sealed_for(created, keys)}, headers={**link, **sales}
        )
        shown = await client.get(path, headers={**link, **ops})
        answered = await client.post(
            f"{path}/answer", json={"answer": sealed_for(created, keys)}, headers={**link, **ops}
        )

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "login_required"
    assert outsider.status_code == 403
    assert outsider.json()["error"]["code"] == "recipient_mismatch"
    assert shown.status_code == 200
    assert shown.json()["recipients_only"] is True
    assert answered.status_code == 201, answered.text


async def test_an_answer_of_exactly_the_size_limit_is_taken(audited: Audited) -> None:
    client = audited.client()
    keys = KeyPair.generate()
    created = await ask(client, keys)

    response = await answer(client, created, sealed_for(created, keys, b"x" * 4096))

    assert response.status_code == 201, response.text
