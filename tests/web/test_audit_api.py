"""The audit trail through the API: every event type with its fields, on SQLite and PostgreSQL,
no secret material anywhere, the admin route, fail-closed writes, receipts and metrics."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from burnlink.audit import AuditEntry, verify_store
from burnlink.audit.checkpoint import verify_checkpoint
from burnlink.audit.events import AuditEventType, Outcome
from burnlink.audit.export import export_lines
from burnlink.crypto import derive_keys
from burnlink.ids import b64url_decode, key_id, new_secret_id
from burnlink.logs import JsonFormatter, quiet_libraries
from burnlink.models import EndReason
from burnlink.signing import verify_statement
from tests.audit.conftest import Raw
from tests.hooks import Receiver, webhook_receiver
from tests.web.audited import (
    ADMIN_TOKEN,
    AUDIT_KEY,
    BROWSER,
    DE,
    FR,
    METRICS_TOKEN,
    Audited,
    audited_app,
    audited_settings,
)

pytestmark = pytest.mark.anyio

MARKER = "AUDIT-LEAK-MARKER-" + os.urandom(6).hex()
PASSPHRASE = "passphrase-marker-" + os.urandom(4).hex()
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
SCRAPE = {"authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'audit.db'}"
    url: str = request.getfixturevalue("pg_audit_url")
    return url


@pytest.fixture
async def audited(audit_url: str, receiver: Receiver) -> AsyncIterator[Audited]:
    async with audited_app(audit_url, audited_settings(receiver)) as harness:
        yield harness


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def of_type(entries: list[AuditEntry], kind: AuditEventType) -> list[AuditEntry]:
    return [e for e in entries if e.event.type is kind]


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/secrets", json={"secret": MARKER, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    created["key"] = created["url"].split("#")[1]
    created["manage"] = created["manage_url"].split("#")[1]
    return created


async def reveal(client: httpx.AsyncClient, created: dict[str, Any], **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/secrets/{created['id']}/reveal", json={"key": created["key"], **body}
    )


async def play_every_event(audited: Audited, receiver: Receiver) -> dict[str, Any]:
    """Make the app write every event type; return the ids, the entries before the audit
    retention purge (``before``) and after it (``after``)."""
    de, fr = audited.client(DE), audited.client(FR)
    slack = audited.client(DE, SLACKBOT)
    notify = receiver.url("/notify?token=hook-token-marker")
    seen: dict[str, Any] = {}

    # created, opened, key.failed, passphrase.failed, viewed (from another country), burned
    a = await create(de, passphrase=PASSPHRASE, max_views=2, notify_url=notify)
    assert (await slack.get(f"/s/{a['id']}")).status_code == 200
    await audited.join()  # the open is recorded after the page's answer
    wrong_token = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    wrong = await fr.get(
        f"/api/v1/secrets/{a['id']}", headers={"authorization": f"Bearer {wrong_token}"}
    )
    assert wrong.status_code == 404
    assert (await reveal(fr, a, passphrase="wrong")).json()["error"]["code"] == "wrong_passphrase"
    viewed = await reveal(fr, a, passphrase=PASSPHRASE)
    assert viewed.json()["secret"] == MARKER
    seen["viewed_request_id"] = viewed.headers["x-request-id"]
    burn = await de.delete(
        f"/api/v1/secrets/{a['id']}", headers={"authorization": f"Bearer {a['manage']}"}
    )
    assert burn.status_code == 204

    # locked: the second wrong passphrase (BURNLINK_PASSPHRASE_ATTEMPTS=2)
    b = await create(de, passphrase=PASSPHRASE, notify_url=notify)
    await reveal(de, b, passphrase="wrong-1")
    assert (await reveal(de, b, passphrase="wrong-2")).json()["error"]["attempts_left"] == 0

    # access.denied_ip, access.denied_geo
    c = await create(de, allowed_ips=["192.0.2.0/24"])
    assert (await reveal(de, c)).json()["error"]["code"] == "ip_denied"
    d = await create(de, allowed_countries=["FR"])
    assert (await reveal(de, d)).json()["error"]["code"] == "geo_denied"

    # otp.failed, then rate.limited (BURNLINK_RATE_LIMIT_VERIFY=1/hour)
    e = await create(de, recipient_email="bob@example.com")
    assert (await reveal(de, e)).json()["error"]["code"] == "verification_required"
    code = audited.mailbox.codes[-1]
    other = f"{(int(code) + 1) % 1_000_000:06d}"
    assert (await reveal(de, e, otp=other)).json()["error"]["code"] == "verification_failed"
    assert (await reveal(de, e)).json()["error"]["code"] == "rate_limited"
    seen["codes"] = [code, other]
    # otp.verified: the right code opens it (secret.viewed follows)
    assert (await reveal(de, e, otp=code)).json()["secret"] == MARKER

    # admin.denied: a wrong admin token
    guess = await de.get("/api/v1/audit", headers={"authorization": "Bearer guessed-admin-token"})
    assert guess.status_code == 401

    # reveals of ids that do not exist raise an alert (BURNLINK_ALERT_NOT_FOUND=3/hour)
    prober = audited.client("203.0.113.99")
    for _ in range(3):
        assert (await reveal(prober, {"id": new_secret_id(), "key": a["key"]})).status_code == 404

    # expired (the sweeper records it from the expiry watch), with its webhook
    f = await create(de, ttl=60, notify_url=notify)
    audited.clock.advance(61)
    await audited.service.sweep()
    await audited.join()
    seen["before"] = await audited.entries()
    seen["receipt_f"] = (
        await de.get(
            f"/api/v1/secrets/{f['id']}/receipt", headers={"authorization": f"Bearer {f['manage']}"}
        )
    ).json()

    # a month later: c, d and e expire, and entries past BURNLINK_AUDIT_DAYS=30 are purged
    audited.clock.advance(31 * 86400)
    await audited.service.sweep()
    await audited.join()
    seen["after"] = await audited.entries()
    seen.update(a=a, b=b, c=c, d=d, e=e, f=f, notify=notify)
    return seen


def single(entries: list[AuditEntry], kind: AuditEventType, secret: dict[str, Any]) -> Any:
    found = [e.event for e in of_type(entries, kind) if e.event.secret_hash == sha(secret["id"])]
    assert len(found) == 1, (kind, found)
    return found[0]


async def test_every_event_type_is_written_with_its_fields(
    audited: Audited, receiver: Receiver
) -> None:
    seen = await play_every_event(audited, receiver)
    before, after = seen["before"], seen["after"]
    a, b, c, d, e, f = (seen[k] for k in "abcdef")
    t0 = datetime(2030, 1, 1, tzinfo=UTC)

    # webhook.dropped needs a flood or a tarpit: tests/service/test_alerts.py writes it through the
    # app's own wiring (open_reporter).
    dropped = {AuditEventType.WEBHOOK_DROPPED}
    # The sign-in events need a real identity provider: tests/identity/test_signin_flow.py and
    # test_device_flow.py write them through it; the token events are in
    # tests/web/test_my_secrets_api.py (a signed-in user making and revoking tokens).
    signed_in = {
        AuditEventType.SIGNED_IN,
        AuditEventType.SIGNED_OUT,
        AuditEventType.SIGN_IN_REFUSED,
        AuditEventType.TOKEN_CREATED,
        AuditEventType.TOKEN_REVOKED,
        # A signed-in user refused a secret bound to recipients: tests/web/test_recipients.py.
        AuditEventType.ACCESS_DENIED_IDENTITY,
    }
    # Requests for a secret: tests/web/test_requests_api.py writes each through this harness.
    signed_in |= {
        AuditEventType.REQUEST_CREATED,
        AuditEventType.REQUEST_OPENED,
        AuditEventType.REQUEST_ANSWERED,
        AuditEventType.REQUEST_EXPIRED,
    }
    assert {x.event.type for x in before + after} == set(AuditEventType) - dropped - signed_in
    for entry in before:
        event = entry.event
        assert event.at.tzinfo is UTC
        assert event.at.microsecond % 1000 == 0
        if event.type is not AuditEventType.SECRET_EXPIRED:
            assert None not in (event.client_ip, event.request_id, event.user_agent)
            assert event.agent_class is not None

    created = single(before, AuditEventType.SECRET_CREATED, a)
    assert (created.at, created.outcome, created.client_ip, created.country) == (
        t0,
        Outcome.OK,
        DE,
        "DE",
    )
    assert (created.user_agent, created.agent_class) == (BROWSER, "browser")
    assert created.detail == {"ttl": 86400, "max_views": 2, "protected": True, "notify": True}

    opened = single(before, AuditEventType.SECRET_OPENED, a)
    assert (opened.agent_class, opened.user_agent, opened.outcome) == (
        "preview",
        SLACKBOT,
        Outcome.OK,
    )

    key_failed = single(before, AuditEventType.KEY_FAILED, a)
    assert (key_failed.outcome, key_failed.client_ip, key_failed.country) == (
        Outcome.FAILED,
        FR,
        "FR",
    )

    wrong = single(before, AuditEventType.PASSPHRASE_FAILED, a)
    assert (wrong.outcome, wrong.policy) == (Outcome.FAILED, {"max_attempts": 2})

    viewed = single(before, AuditEventType.SECRET_VIEWED, a)
    assert (viewed.outcome, viewed.client_ip, viewed.country) == (Outcome.OK, FR, "FR")
    assert viewed.request_id == seen["viewed_request_id"]

    burned = single(before, AuditEventType.SECRET_BURNED, a)
    assert (burned.outcome, burned.client_ip) == (Outcome.OK, DE)

    locked = single(before, AuditEventType.SECRET_LOCKED, b)
    assert (locked.outcome, locked.policy) == (Outcome.OK, {"max_attempts": 2})

    ip_denied = single(before, AuditEventType.ACCESS_DENIED_IP, c)
    assert ip_denied.outcome is Outcome.DENIED
    assert ip_denied.policy == {"rule": "allowed_ips", "allowed": "192.0.2.0/24"}

    geo_denied = single(before, AuditEventType.ACCESS_DENIED_GEO, d)
    assert (geo_denied.outcome, geo_denied.country) == (Outcome.DENIED, "DE")
    assert geo_denied.policy == {"rule": "countries", "allowed": "FR"}

    otp = single(before, AuditEventType.OTP_FAILED, e)
    assert otp.outcome is Outcome.FAILED
    assert otp.policy == {"rule": "recipient_email", "recipient": "b***@example.com"}

    sent = single(before, AuditEventType.OTP_SENT, e)
    assert (sent.outcome, sent.policy) == (
        Outcome.OK,
        {"rule": "recipient_email", "recipient": "b***@example.com"},
    )
    verified = single(before, AuditEventType.OTP_VERIFIED, e)
    assert (verified.outcome, verified.client_ip) == (Outcome.OK, DE)

    limited = single(before, AuditEventType.RATE_LIMITED, e)
    assert (limited.outcome, limited.policy["limit"]) == (Outcome.DENIED, "verify")

    (admin,) = [x.event for x in of_type(before, AuditEventType.ADMIN_DENIED)]
    assert (admin.outcome, admin.client_ip, admin.secret_hash) == (Outcome.DENIED, DE, None)
    assert (admin.policy, admin.detail) == ({"rule": "admin_token"}, {"given": True})
    assert "guessed-admin-token" not in admin.canonical().decode()

    expired = single(before, AuditEventType.SECRET_EXPIRED, f)
    assert (expired.outcome, expired.client_ip) == (Outcome.OK, None)
    assert expired.detail == {"expires_at": "2030-01-01T00:01:00.000Z"}

    alerts = {
        (x.event.detail["reason"], x.event.secret_hash)
        for x in of_type(before, AuditEventType.ALERT)
    }
    assert alerts == {
        ("country_mismatch", sha(a["id"])),
        ("failed_reveals", sha(a["id"])),
        ("failed_reveals", sha(b["id"])),
        ("denied_ip", sha(c["id"])),
        ("denied_geo", sha(d["id"])),
        ("not_found_probes", None),
    }

    # A month on: c, d, e expired too, and what was older than 30 days was purged.
    assert {x.event.secret_hash for x in of_type(after, AuditEventType.SECRET_EXPIRED)} == {
        sha(s["id"]) for s in (c, d, e)
    }
    purged = of_type(after, AuditEventType.AUDIT_PURGED)[0].event
    assert purged.detail["entries"] == len(before)
    assert after[0].seq == len(before) + 1
    assert (await verify_store(audited.audit, AUDIT_KEY)).ok

    # Webhooks: the secret's for each view, burn, lockout and expiry; every alert to the alert URL.
    notified = [hook.json()["type"] for hook in receiver.hooks if hook.path.startswith("/notify")]
    assert sorted(notified) == sorted(
        ["secret.viewed", "secret.burned", "secret.locked", "secret.expired"]
    )
    alerted = [hook.json()["type"] for hook in receiver.on("/alerts")]
    assert alerted == ["alert"] * 6
    # The receipt of the expired secret carries a statement that says so.
    statement = verify_statement(
        json.dumps(seen["receipt_f"]["statement"]), audited.signing_key.public_key()
    )
    assert (statement.how.value, statement.id_hash) == ("expired", sha(f["id"]))


def needles(seen: dict[str, Any]) -> dict[str, bytes]:
    """Every form in which secret material could leak: content, passphrase, link keys,
    tokens derived from them, manage tokens, one-time codes, the webhook URL's token."""
    found: dict[str, bytes] = {
        "plaintext": MARKER.encode(),
        "passphrase": PASSPHRASE.encode(),
        "webhook token": b"hook-token-marker",
    }
    for name in "abcdef":
        created = seen[name]
        key = b64url_decode(created["key"], field="key")
        keys = derive_keys(key)
        found[f"{name}: link key"] = created["key"].encode()
        found[f"{name}: manage token"] = created["manage"].encode()
        found[f"{name}: access token"] = base64.urlsafe_b64encode(keys.access_token).rstrip(b"=")
    for code in seen["codes"]:
        found[f"code {code}"] = f'"{code}"'.encode()
    return found


def read_files(folder: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob(pattern)}


async def test_no_secret_material_in_audit_rows_logs_exports_or_webhooks(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    quiet_libraries()  # as the server's logging does
    sink = tmp_path / "sink.jsonl"
    settings = audited_settings(receiver, audit_sink=str(sink))
    async with audited_app(f"sqlite://{tmp_path / 'audit.db'}", settings) as audited:
        seen = await play_every_event(audited, receiver)
        admin = audited.client()
        page = await admin.get("/api/v1/audit", params={"limit": 1000}, headers=ADMIN)
        exports = [
            "".join([line async for line in export_lines(audited.audit.inner, fmt)])
            for fmt in ("jsonl", "csv")
        ]

    haystacks = read_files(tmp_path, "audit.db*")
    haystacks["sink"] = read_files(tmp_path, sink.name)[sink.name]
    haystacks["audit API"] = page.content
    haystacks["exports"] = "".join(exports).encode()
    formatter = JsonFormatter()
    haystacks["log"] = "\n".join(formatter.format(r) for r in caplog.records).encode()
    haystacks["webhook bodies"] = b"\n".join(hook.body for hook in receiver.hooks)
    assert b"secret.created" in haystacks["sink"]
    assert b"POST /api/v1/secrets 201" in haystacks["log"]
    assert len(receiver.hooks) >= 10
    for name, needle in needles(seen).items():
        for where, data in haystacks.items():
            assert needle not in data, f"{name} found in {where}"


async def test_admin_route_needs_the_token_and_pages_with_filters(audited: Audited) -> None:
    client = audited.client()
    for _ in range(3):
        await create(client)
    audited.clock.advance(60)
    late = await create(client)
    await reveal(client, late)

    first = (await client.get("/api/v1/audit", params={"limit": 2}, headers=ADMIN)).json()
    second = (
        await client.get(
            "/api/v1/audit", params={"limit": 2, "after": first["next_after"]}, headers=ADMIN
        )
    ).json()
    third = (
        await client.get(
            "/api/v1/audit", params={"limit": 2, "after": second["next_after"]}, headers=ADMIN
        )
    ).json()
    seqs = [e["seq"] for page in (first, second, third) for e in page["entries"]]
    assert seqs == [1, 2, 3, 4, 5]
    assert third["next_after"] is None

    views = await client.get(
        "/api/v1/audit", params={"type": ["secret.viewed", "alert"]}, headers=ADMIN
    )
    assert [e["event"]["type"] for e in views.json()["entries"]] == ["secret.viewed"]
    recent = await client.get(
        "/api/v1/audit", params={"since": "2030-01-01T00:00:30Z"}, headers=ADMIN
    )
    assert [e["event"]["secret_hash"] for e in recent.json()["entries"]] == [sha(late["id"])] * 2
    early = await client.get(
        "/api/v1/audit", params={"until": "2030-01-01T00:00:30"}, headers=ADMIN
    )
    assert len(early.json()["entries"]) == 3
    bad = await client.get("/api/v1/audit", params={"type": "nope"}, headers=ADMIN)
    assert bad.status_code == 422

    assert (await client.get("/api/v1/audit")).status_code == 401
    wrong = await client.get("/api/v1/audit", headers={"authorization": "Bearer " + "x" * 32})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "unauthorized")


async def test_wrong_admin_tokens_are_audited_and_then_refused_whatever_the_token(
    audit_url: str, receiver: Receiver
) -> None:
    settings = audited_settings(receiver, rate_limit_admin="3/hour")
    async with audited_app(audit_url, settings) as audited:
        audited.clock.advance(3600 - audited.clock.now().timestamp() % 3600 + 600)  # 10 min in
        guesser, elsewhere = audited.client(DE), audited.client(FR)
        wrong = {"authorization": "Bearer " + "g" * 32}

        guesses = [(await guesser.get("/api/v1/audit", headers=wrong)) for _ in range(3)]
        limited = await guesser.get("/api/v1/audit", headers=wrong)
        right_but_limited = await guesser.get("/api/v1/audit", headers=ADMIN)
        other_client = await elsewhere.get("/api/v1/audit", headers=ADMIN)
        audited.clock.advance(3000)
        later = await guesser.get("/api/v1/audit", headers=ADMIN)
        await audited.join()
        entries = await audited.entries()

    assert [g.status_code for g in guesses] == [401, 401, 401]
    for response in (limited, right_but_limited):
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limited"
        assert response.headers["retry-after"] == "3000"
        assert "Too many wrong admin tokens" in response.json()["error"]["message"]
        assert "50 minutes" in response.json()["error"]["message"]
    assert (other_client.status_code, later.status_code) == (200, 200)
    denied = of_type(entries, AuditEventType.ADMIN_DENIED)
    assert [(e.event.client_ip, e.event.outcome) for e in denied] == [(DE, Outcome.DENIED)] * 3
    (limit,) = of_type(entries, AuditEventType.RATE_LIMITED)
    assert limit.event.policy == {"limit": "admin", "rule": "3/3600s"}


async def test_wrong_metrics_tokens_are_audited_and_share_the_admin_limit(
    audit_url: str, receiver: Receiver
) -> None:
    """A scraper's token is guarded as the admin token is: each wrong one audited
    (``admin.denied``, rule ``metrics_token``) and counted against
    ``BURNLINK_RATE_LIMIT_ADMIN``, after which even the right one is refused."""
    settings = audited_settings(receiver, rate_limit_admin="3/hour")
    async with audited_app(audit_url, settings) as audited:
        audited.clock.advance(3600 - audited.clock.now().timestamp() % 3600 + 600)  # 10 min in
        guesser, elsewhere = audited.client(DE), audited.client(FR)
        wrong = {"authorization": "Bearer " + "g" * 32}

        missing = await guesser.get("/metrics")
        guesses = [(await guesser.get("/metrics", headers=wrong)) for _ in range(2)]
        right_but_limited = await guesser.get("/metrics", headers=SCRAPE)
        admin_limited = await guesser.get("/api/v1/audit", headers=ADMIN)
        other_client = await elsewhere.get("/metrics", headers=SCRAPE)
        await audited.join()
        entries = await audited.entries()

    for refused in (missing, *guesses):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers["www-authenticate"] == 'Bearer realm="burnlink metrics"'
        assert "burnlink_" not in refused.text
    assert (right_but_limited.status_code, admin_limited.status_code) == (429, 429)
    assert other_client.status_code == 200
    assert "burnlink_secrets_created_total" in other_client.text
    denied = of_type(entries, AuditEventType.ADMIN_DENIED)
    assert [(e.event.client_ip, e.event.policy) for e in denied] == [
        (DE, {"rule": "metrics_token"})
    ] * 3
    assert [e.event.detail for e in denied] == [{"given": False}, {"given": True}, {"given": True}]


async def tamper(audit_url: str, sql: str, *, guarded: bool = False) -> None:
    """Run ``sql`` on the audit tables from another connection, off the event loop: the app's
    sweeper may hold the state row's lock in a transaction that needs the loop to finish."""
    raw = Raw("sqlite" if audit_url.startswith("sqlite") else "postgres", audit_url)
    await anyio.to_thread.run_sync(lambda: raw.execute(sql, guarded=guarded))


async def test_admin_route_serves_only_entries_inside_the_verified_chain(
    audited: Audited, audit_url: str
) -> None:
    client = audited.client()
    for _ in range(2):
        await create(client)
    # A row appended past the head with the append-only triggers in place (seq 3 is head + 1):
    # the state row still says the head is 2, so it is not part of the log.
    await tamper(
        audit_url,
        "INSERT INTO {log} (seq, at, type, event, prev_mac, mac)"
        " SELECT 3, at, type, event, mac, prev_mac FROM {log} WHERE seq = 2",
        guarded=True,
    )

    page = await client.get("/api/v1/audit", params={"after": 1}, headers=ADMIN)

    assert page.status_code == 200, page.text
    assert [e["seq"] for e in page.json()["entries"]] == [2]
    assert page.json()["next_after"] is None


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(
            "UPDATE {log} SET event = replace(event, '198.51.100.1', '198.51.100.9') WHERE seq = 2",
            id="edited-entry",
        ),
        pytest.param("UPDATE {state} SET head_seq = 1", id="forged-state"),
    ],
)
async def test_admin_route_refuses_entries_that_do_not_verify(
    audited: Audited, audit_url: str, sql: str
) -> None:
    client = audited.client()
    for _ in range(2):
        await create(client)
    await audited.service.seal_pending()
    await tamper(audit_url, sql)

    page = await client.get("/api/v1/audit", headers=ADMIN)

    assert page.status_code == 503, page.text
    assert page.json()["error"]["code"] == "audit_unavailable"
    assert "burnlink audit verify" in page.json()["error"]["message"]


async def test_readyz_fails_when_audit_writes_fail_though_reads_answer(
    audited: Audited, audit_url: str
) -> None:
    client = audited.client()
    await create(client)
    assert (await client.get("/readyz")).status_code == 200
    await tamper(audit_url, "DELETE FROM {state}")  # reads answer; every append now fails

    ready = await client.get("/readyz")
    created = await client.post("/api/v1/secrets", json={"secret": MARKER})
    page = await client.get("/api/v1/audit", headers=ADMIN)

    # The create and its event are one store operation; only sealing them waits for the log.
    assert created.status_code == 201
    assert (page.status_code, page.json()["error"]["code"]) == (503, "audit_unavailable")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"store": "ok", "audit": "unavailable"},
    }


async def test_checkpoints_of_the_head_go_to_the_file_the_sink_and_the_webhook(
    audit_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    target, sink = tmp_path / "checkpoint.json", tmp_path / "sink.jsonl"
    settings = audited_settings(
        receiver,
        audit_checkpoint_file=str(target),
        audit_checkpoint_url=receiver.url("/checkpoints"),
        audit_checkpoint_interval=0.05,
        audit_sink=str(sink),
    )
    async with audited_app(audit_url, settings) as audited:
        client = audited.client()
        for _ in range(2):
            await create(client)
        await audited.service.seal_pending()
        head = (await audited.audit.chain_state()).head
        public = audited.signing_key.public_key()

        def everywhere() -> bool:
            """Whether a checkpoint of ``head`` reached the file, the sink and the webhook
            (the file is written before the other two, so wait for each)."""
            if not target.exists() or not sink.exists():
                return False
            hooks = [h.json()["data"]["checkpoint"] for h in receiver.on("/checkpoints")]
            lines = [json.loads(line) for line in sink.read_text().splitlines()]
            shipped = [x["checkpoint"] for x in lines if "checkpoint" in x]
            return (
                verify_checkpoint(target.read_text(), public).head_seq == head.seq
                and any(c["statement"]["head_seq"] == head.seq for c in hooks)
                and any(c["statement"]["head_seq"] == head.seq for c in shipped)
            )

        for _ in range(500):  # a bound on waiting (10 s), not a timing assertion
            if everywhere():
                break
            await anyio.sleep(0.02)
        await audited.join()

    written = verify_checkpoint(target.read_text(), public)
    assert (written.head_seq, written.head_mac) == (head.seq, head.mac)
    assert written.log == key_id(AUDIT_KEY)
    shipped = [json.loads(line) for line in sink.read_text().splitlines()]
    in_sink = [
        verify_checkpoint(json.dumps(x["checkpoint"]), public) for x in shipped if "checkpoint" in x
    ]
    assert head.seq in [c.head_seq for c in in_sink]
    hooks = receiver.on("/checkpoints")
    assert {hook.json()["type"] for hook in hooks} == {"audit.checkpoint"}
    assert all(hook.headers.get("webhook-signature", "").startswith("v1,") for hook in hooks)
    sent = [verify_checkpoint(json.dumps(h.json()["data"]["checkpoint"]), public) for h in hooks]
    assert head.seq in [c.head_seq for c in sent]
    assert os.stat(target).st_mode & 0o777 == 0o644


async def test_an_audit_outage_delays_sealing_and_loses_no_event(audited: Audited) -> None:
    """An action and its event are one store operation: while the log does not answer,
    actions go on and their events wait in the store; /readyz says so; nothing is lost."""
    client = audited.client()
    kept = await create(client, max_views=1)
    audited.audit.broken = True

    created = await create(client, max_views=2)
    revealed = await reveal(client, kept)
    burned = await client.delete(
        f"/api/v1/secrets/{created['id']}", headers={"authorization": f"Bearer {created['manage']}"}
    )
    ready = await client.get("/readyz")
    page = await client.get("/api/v1/audit", headers=ADMIN)

    assert revealed.json() == {"secret": MARKER, "file": None, "views_left": 0}
    assert burned.status_code == 204
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"store": "ok", "audit": "unavailable"},
    }
    assert (page.status_code, page.json()["error"]["code"]) == (503, "audit_unavailable")
    audited.audit.broken = False
    types = [(e.event.type, e.event.secret_hash) for e in await audited.entries()]
    assert types == [
        (AuditEventType.SECRET_CREATED, sha(kept["id"])),
        (AuditEventType.SECRET_CREATED, sha(created["id"])),
        (AuditEventType.SECRET_VIEWED, sha(kept["id"])),
        (AuditEventType.SECRET_BURNED, sha(created["id"])),
    ]
    assert (await client.get("/readyz")).status_code == 200
    assert (await verify_store(audited.audit, AUDIT_KEY)).ok


async def test_refusals_stand_when_the_audit_log_is_down(audited: Audited) -> None:
    client = audited.client()
    guarded = await create(client, allowed_ips=["192.0.2.0/24"])
    audited.audit.broken = True

    denied = await reveal(client, guarded)
    page = await client.get(f"/s/{guarded['id']}")

    assert denied.json()["error"]["code"] == "ip_denied"
    assert page.status_code == 200


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_change_as_actions_happen(audited: Audited) -> None:
    client = audited.client()
    before = samples((await client.get("/metrics", headers=SCRAPE)).text)
    one = await create(client, passphrase=PASSPHRASE)
    two = await create(client)
    await reveal(client, one, passphrase="wrong")
    await reveal(client, one, passphrase=PASSPHRASE)
    await client.delete(
        f"/api/v1/secrets/{two['id']}", headers={"authorization": f"Bearer {two['manage']}"}
    )
    guarded = await create(client, allowed_countries=["FR"])
    await reveal(client, guarded)
    await client.get("/api/v1/audit", headers={"authorization": "Bearer " + "w" * 32})
    audited.audit.broken = True
    await create(client)  # the create goes on; its event waits in the store
    refused = await client.get("/api/v1/audit", headers=ADMIN)  # it cannot seal: counted
    audited.audit.broken = False
    assert refused.status_code == 503
    expiring = await create(client, ttl=60)
    audited.clock.advance(61)
    await audited.service.sweep()
    await audited.join()
    response = await client.get("/metrics", headers=SCRAPE)
    after = samples(response.text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert response.headers["content-type"].startswith("text/plain")
    assert delta("burnlink_secrets_created_total") == 5
    assert delta("burnlink_secrets_revealed_total") == 1
    assert delta("burnlink_secrets_ended_total", reason="viewed") == 1
    assert delta("burnlink_secrets_ended_total", reason="burned") == 1
    assert delta("burnlink_secrets_ended_total", reason="expired") == 1
    assert delta("burnlink_access_denied_total", reason="passphrase") == 1
    assert delta("burnlink_access_denied_total", reason="geo") == 1
    assert delta("burnlink_access_denied_total", reason="admin") == 1
    assert delta("burnlink_store_errors_total", store="audit") >= 1  # each sealing attempt
    assert delta("burnlink_reveal_duration_seconds_count") == 3
    assert delta("burnlink_alerts_total") == 1  # the geo refusal
    assert expiring["id"] not in response.text


async def test_receipt_tells_opens_by_agent_and_carries_a_verifiable_statement(
    audited: Audited,
) -> None:
    sender, reader = audited.client(DE), audited.client(FR)
    secret = await create(sender)
    for _ in range(3):
        await audited.client(DE, SLACKBOT).get(f"/s/{secret['id']}")
    await audited.join()
    await reveal(reader, secret)
    receipt = (
        await sender.get(
            f"/api/v1/secrets/{secret['id']}/receipt",
            headers={"authorization": f"Bearer {secret['manage']}"},
        )
    ).json()
    keys = (await sender.get("/.well-known/burnlink-keys")).json()

    opens = [e for e in receipt["events"] if e["type"] == "opened"]
    assert [e["agent"] for e in opens] == [{"class": "preview", "name": "Slackbot"}] * 3
    assert receipt["events_capped"] == []
    view = next(e for e in receipt["events"] if e["type"] == "viewed")
    assert (view["agent"], view["country"]) == ({"class": "browser", "name": "Firefox"}, "FR")
    statement = verify_statement(json.dumps(receipt["statement"]), keys)
    assert statement.about(secret["id"])
    assert (statement.how.value, statement.issuer) == ("viewed", "http://burnlink.test")


async def test_receipt_lists_the_view_whatever_the_count_of_opens(audited: Audited) -> None:
    """Opens (20 recorded an hour) used to fill the receipt's 200 events and push the reader's
    view off it; now each kind has its own cap, and the receipt says which kinds reached it."""
    sender, reader = audited.client(DE), audited.client(FR)
    secret = await create(sender, ttl=86400)
    previewer = audited.client(DE, SLACKBOT)
    for _ in range(11):
        for _ in range(20):
            await previewer.get(f"/s/{secret['id']}")
        await audited.join()
        audited.clock.advance(3600)
    assert (await reveal(reader, secret)).status_code == 200

    receipt = (
        await sender.get(
            f"/api/v1/secrets/{secret['id']}/receipt",
            headers={"authorization": f"Bearer {secret['manage']}"},
        )
    ).json()

    types = [event["type"] for event in receipt["events"]]
    assert types.count("opened") == 200
    assert [t for t in types if t != "opened"] == ["created", "viewed"]
    assert receipt["events_capped"] == ["opened"]
    assert receipt["state"] == "viewed"


async def test_receipt_of_a_live_secret_has_no_statement(audited: Audited) -> None:
    client = audited.client()
    secret = await create(client)
    receipt = await client.get(
        f"/api/v1/secrets/{secret['id']}/receipt",
        headers={"authorization": f"Bearer {secret['manage']}"},
    )
    assert receipt.json()["statement"] is None


async def test_liveness_and_readiness(audited: Audited) -> None:
    client = audited.client()
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.json() == {"status": "ok", "checks": {"store": "ok", "audit": "ok"}}


async def test_opening_an_unknown_or_malformed_id_records_nothing(audited: Audited) -> None:
    client = audited.client()
    for path in (f"/s/{new_secret_id()}", "/s/not-an-id", "/m/" + new_secret_id(), "/"):
        assert (await client.get(path)).status_code == 200
    await audited.join()
    assert await audited.entries() == []


async def test_page_opens_are_recorded_at_most_twenty_times_an_hour(audited: Audited) -> None:
    client = audited.client(DE, SLACKBOT)
    secret = await create(audited.client())
    for _ in range(25):
        await client.get(f"/s/{secret['id']}")
    await audited.join()
    opened = of_type(await audited.entries(), AuditEventType.SECRET_OPENED)
    assert len(opened) == 20


async def test_lock_for_spent_codes_is_recorded_with_the_end_of_the_secret(
    audit_url: str, receiver: Receiver
) -> None:
    settings = audited_settings(receiver, rate_limit_verify="off")
    async with audited_app(audit_url, settings) as audited:
        client = audited.client()
        secret = await create(client, recipient_email="bob@example.com")
        for _ in range(3):
            sent = await reveal(client, secret)
            assert sent.json()["error"]["code"] == "verification_required"
            audited.clock.advance(601)  # each code expires unused

        audited.audit.broken = True  # the lockout does not wait for the log
        locked = await reveal(client, secret)
        gone = await audited.store.peek(secret["id"], now=audited.clock.now())
        audited.audit.broken = False
        receipt = await audited.store.receipt(secret["id"], now=audited.clock.now())
        entries = await audited.entries()

    assert (locked.status_code, locked.json()["error"]["attempts_left"]) == (401, 0)
    assert gone is None
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED
    (lock,) = [e.event for e in of_type(entries, AuditEventType.SECRET_LOCKED)]
    assert (lock.secret_hash, lock.outcome) == (sha(secret["id"]), Outcome.OK)
    assert lock.policy == {"rule": "recipient_email", "max_codes": 3}
    assert len(audited.mailbox.codes) == 3
