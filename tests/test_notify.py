"""Secret webhooks through the app: Standard Webhooks signatures checked by the reference
verifier against a real local receiver, payloads without content, never blocking a reveal,
and the SSRF rules at create time and at delivery."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from burnlink.audit import AuditBackend, open_audit_store
from burnlink.clock import FrozenClock
from burnlink.metrics import render
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from tests.hooks import Receiver, webhook_receiver
from tests.web.audited import (
    AUDIT_KEY,
    DE,
    FAST,
    FR,
    WEBHOOK_SECRET,
    Audited,
    Countries,
    audited_app,
    audited_settings,
)

pytestmark = pytest.mark.anyio

CONTENT = "notify-content-marker"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
async def audited(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Audited]:
    settings = audited_settings(receiver, alert_failed_reveals="1/hour")
    async with audited_app(f"sqlite://{tmp_path / 'audit.db'}", settings) as harness:
        yield harness


async def create(audited: Audited, **body: Any) -> dict[str, Any]:
    response = await audited.client(DE).post("/api/v1/secrets", json={"secret": CONTENT, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_webhooks_are_signed_per_standard_webhooks_and_carry_no_content(
    audited: Audited, receiver: Receiver
) -> None:
    url = receiver.url("/notify?token=abc")
    secret = await create(audited, max_views=2, notify_url=url)
    key, manage = secret["url"].split("#")[1], secret["manage_url"].split("#")[1]
    reader = audited.client(FR, "Slackbot 1.0")
    await reader.post(f"/api/v1/secrets/{secret['id']}/reveal", json={"key": key})
    await audited.client(DE).delete(
        f"/api/v1/secrets/{secret['id']}", headers={"authorization": f"Bearer {manage}"}
    )
    await audited.client(FR).post(f"/api/v1/secrets/{secret['id']}/reveal", json={"key": "x"})
    await audited.join()

    hooks = receiver.on("/notify?token=abc")
    verifier = Webhook(WEBHOOK_SECRET)
    payloads = [verifier.verify(hook.body, hook.headers) for hook in hooks]
    # Two deliveries to one destination may be in flight at once, so they can arrive in
    # either order; each says what happened and when.
    assert sorted(p["type"] for p in payloads) == ["secret.burned", "secret.viewed"]
    viewed = next(p for p in payloads if p["type"] == "secret.viewed")
    assert viewed["data"] == {
        "secret_id": secret["id"],
        "client_ip": FR,
        "country": "FR",
        "agent": {"class": "preview", "name": "Slackbot"},
        "outcome": "ok",
    }
    assert viewed["text"] == f"Secret `{secret['id']}` was viewed from {FR} (FR) by Slackbot."
    assert len({hook.headers["webhook-id"] for hook in hooks}) == 2
    for hook in hooks:
        assert CONTENT.encode() not in hook.body
        assert key.encode() not in hook.body
    # A tampered body fails the reference verifier.
    first = hooks[0]
    with pytest.raises(WebhookVerificationError):
        verifier.verify(first.body.replace(b"secret.", b"secret!"), first.headers)


async def test_alert_webhooks_are_signed_too(audited: Audited, receiver: Receiver) -> None:
    secret = await create(audited, allowed_ips=["192.0.2.1"])
    key = secret["url"].split("#")[1]
    await audited.client(DE).post(f"/api/v1/secrets/{secret['id']}/reveal", json={"key": key})
    await audited.join()

    alerts = [Webhook(WEBHOOK_SECRET).verify(h.body, h.headers) for h in receiver.on("/alerts")]
    assert {a["type"] for a in alerts} == {"alert"}
    assert {a["data"]["secret_id"] for a in alerts} == {secret["id"]}
    assert len(alerts) == 2  # failed_reveals (threshold 1) and denied_ip


async def test_a_slow_receiver_never_delays_the_reveal(tmp_path: Path) -> None:
    with webhook_receiver(delay=1.0) as slow:
        settings = audited_settings(slow)
        async with audited_app(f"sqlite://{tmp_path / 'audit.db'}", settings) as audited:
            secret = await create(audited, notify_url=slow.url("/slow"))
            key = secret["url"].split("#")[1]
            started = time.perf_counter()
            response = await audited.client(FR).post(
                f"/api/v1/secrets/{secret['id']}/reveal", json={"key": key}
            )
            elapsed = time.perf_counter() - started
            assert response.json()["secret"] == CONTENT
            assert elapsed < 0.5
            await audited.join()
            assert len(slow.on("/slow")) == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param("http://user:pw@example.com/hook", "user name", id="userinfo"),
        pytest.param("file:///etc/passwd", "http or https", id="scheme"),
    ],
)
async def test_malformed_notify_urls_are_refused_at_create_with_the_reason(
    tmp_path: Path, url: str, reason: str
) -> None:
    app, client, audit = await _app(tmp_path, allow="")
    async with app.router.lifespan_context(app), client:
        response = await client.post("/api/v1/secrets", json={"secret": "x", "notify_url": url})
    await audit.aclose()

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "notify_url"
    assert reason in error["message"]


async def test_internal_and_unresolvable_notify_urls_get_one_answer(tmp_path: Path) -> None:
    # Were "does not resolve" told from "private address", a sender could map internal names.
    answers = {
        "hooks.internal": ["10.1.2.3"],
        "db.internal": ["192.168.0.5", "93.184.216.34"],
        "nowhere.internal": [],
        "garbage.internal": ["not-an-address"],
    }
    urls = [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:192.168.1.1]/hook",
        "http://hooks.internal/hook",
        "http://db.internal/hook",
        "http://nowhere.internal/hook",
        "http://garbage.internal/hook",
    ]
    app, client, audit = await _app(tmp_path, allow="", answers=answers)
    async with app.router.lifespan_context(app), client:
        answered = [
            await client.post("/api/v1/secrets", json={"secret": "x", "notify_url": url})
            for url in urls
        ]
    await audit.aclose()

    assert {response.status_code for response in answered} == {422}
    errors = {json.dumps(response.json()["error"], sort_keys=True) for response in answered}
    assert len(errors) == 1, errors
    error = answered[0].json()["error"]
    assert error["field"] == "notify_url"
    for word in ("resolve", "loopback", "private", "metadata", "internal", "10."):
        assert word not in error["message"]


@pytest.mark.parametrize(
    ("url", "allow", "status"),
    [
        pytest.param("http://10.0.0.5/hook", "10.0.0.0/8", 201, id="listed-network"),
        pytest.param("http://hooks.internal/hook", "hooks.internal", 201, id="listed-host"),
        pytest.param("http://127.0.0.1:9/hook", "127.0.0.1", 201, id="listed-address"),
        pytest.param("http://169.254.169.254/x", "169.254.0.0/16", 422, id="metadata-by-network"),
        pytest.param("http://169.254.169.254/x", "169.254.169.254/32", 201, id="metadata-listed"),
    ],
)
async def test_webhook_allow_lets_listed_internal_targets_through(
    tmp_path: Path, url: str, allow: str, status: int
) -> None:
    app, client, audit = await _app(tmp_path, allow=allow)
    async with app.router.lifespan_context(app), client:
        response = await client.post("/api/v1/secrets", json={"secret": "x", "notify_url": url})
    await audit.aclose()

    assert response.status_code == status, response.text


async def test_a_name_that_later_resolves_inside_is_refused_at_delivery(tmp_path: Path) -> None:
    answers = {"hooks.example.com": ["93.184.216.34"]}
    app, client, audit = await _app(tmp_path, allow="", answers=answers)
    async with app.router.lifespan_context(app), client:
        created = await client.post(
            "/api/v1/secrets",
            json={"secret": "x", "notify_url": "http://hooks.example.com/h"},
        )
        answers["hooks.example.com"] = ["127.0.0.1"]  # DNS rebinding after the check
        key = created.json()["url"].split("#")[1]
        await client.post(f"/api/v1/secrets/{created.json()['id']}/reveal", json={"key": key})
        await app.state.service.reporter.join()
        metrics = render(app.state.metrics)[0].decode()
    await audit.aclose()

    assert created.status_code == 201
    assert 'burnlink_webhook_failures_total{reason="refused"} 1.0' in metrics
    assert 'burnlink_webhook_deliveries_total{result="delivered"} 0.0' in metrics
    assert "hooks.example.com" not in metrics  # labels name no destination
    assert "127.0.0.1" not in metrics


async def test_notify_url_needs_a_webhook_secret(tmp_path: Path) -> None:
    app, client, audit = await _app(tmp_path, allow="127.0.0.1", webhook_secret=None)
    async with app.router.lifespan_context(app), client:
        policy = (await client.get("/api/v1/policy")).json()
        response = await client.post(
            "/api/v1/secrets", json={"secret": "x", "notify_url": "http://127.0.0.1:9/"}
        )
    await audit.aclose()

    assert policy["notifications"] is False
    assert response.status_code == 422
    assert "BURNLINK_WEBHOOK_SECRET" in response.json()["error"]["message"]


async def _app(
    tmp_path: Path,
    *,
    allow: str,
    answers: dict[str, list[str]] | None = None,
    webhook_secret: str | None = WEBHOOK_SECRET,
) -> tuple[FastAPI, httpx.AsyncClient, AuditBackend]:
    table = answers if answers is not None else {"hooks.internal": ["10.1.2.3"]}

    async def resolver(host: str, port: int) -> list[str]:
        return table.get(host, ["93.184.216.34"])

    settings = audited_settings(webhook_allow=allow, webhook_secret=webhook_secret)
    audit = await open_audit_store(f"sqlite://{tmp_path / 'audit.db'}", key=AUDIT_KEY)
    app = create_app(
        settings,
        MemoryStore(retention=timedelta(days=30)),
        FrozenClock(),
        geo=Countries(),
        audit=audit,
        resolver=resolver,
        webhook_retry=FAST,
    )
    transport = httpx.ASGITransport(app=app, client=(DE, 40000))
    return app, httpx.AsyncClient(transport=transport, base_url="http://burnlink.test"), audit
