"""Webhooks: Standard Webhooks signatures, the payload, and delivery to a real local receiver.

The receiver is a plain HTTP server on 127.0.0.1 in a thread; the dispatcher may reach it only
because the tests put 127.0.0.1 on its allow-list. Signatures are checked with the reference
``standardwebhooks`` verifier.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook, WebhookVerificationError

from burnlink.audit.events import AuditEventType, RequestInfo, audit_event
from burnlink.errors import InvalidInput
from burnlink.metrics import DeliveryResult, DropReason, Metrics, WebhookFailure, render
from burnlink.netguard import AllowList, UnsafeUrl, pin
from burnlink.webhooks import (
    RetryPolicy,
    WebhookDispatcher,
    WebhookEndpoint,
    WebhookMessage,
    new_webhook_secret,
    parse_webhook_secret,
    pinned_request,
    sign,
)
from tests.hooks import tarpit
from tests.servers import free_port

pytestmark = pytest.mark.anyio

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks documentation example
FAST = RetryPolicy(attempts=3, first_delay=0.01, factor=2.0, max_delay=0.05)
LOOPBACK = AllowList.parse("127.0.0.1")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the local server got, and the answers it gives, in order (then 200)."""

    base: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"{self.base}/hooks/burnlink?token=t0k3n"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if state.delay:
                time.sleep(state.delay)
            with state.lock:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
                status, headers = state.answers.pop(0) if state.answers else (200, {})
            state.arrived.set()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _message(kind: AuditEventType = AuditEventType.SECRET_VIEWED) -> WebhookMessage:
    event = audit_event(
        kind,
        at=datetime.now(UTC),
        secret_id="AbCdEfGhIjKlMnOpQrStUv",
        request=RequestInfo("203.0.113.7", "DE", "Slackbot-LinkExpanding 1.0", "req-1"),
    )
    return WebhookMessage.from_event(event, secret_id="AbCdEfGhIjKlMnOpQrStUv")


def _count(metrics: Metrics, name: str, label: str, value: str) -> float:
    body, _ = render(metrics)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get(label) == value:
                return sample.value
    raise AssertionError(f"{name}{{{label}={value}}} not found")


def test_sign_matches_the_reference_implementation() -> None:
    body = b'{"test": 2432232314}'
    timestamp = datetime(2024, 1, 1, tzinfo=UTC)

    ours = sign(
        parse_webhook_secret(SECRET),
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        int(timestamp.timestamp()),
        body,
    )

    assert ours == Webhook(SECRET).sign("msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp, body.decode())


def test_parse_webhook_secret_accepts_with_and_without_prefix() -> None:
    raw = parse_webhook_secret(SECRET)

    assert parse_webhook_secret(SECRET.removeprefix("whsec_")) == raw
    assert len(raw) == 24


@pytest.mark.parametrize(
    "text", ["", "whsec_", "whsec_!!!!", "whsec_" + base64.b64encode(b"x" * 8).decode()]
)
def test_parse_webhook_secret_refuses_bad_secrets(text: str) -> None:
    with pytest.raises(InvalidInput, match="whsec_"):
        parse_webhook_secret(text)


def test_new_webhook_secret_is_random_and_parses() -> None:
    first, second = new_webhook_secret(), new_webhook_secret()

    assert first != second
    assert first.startswith("whsec_")
    assert len(parse_webhook_secret(first)) == 32


def test_webhook_endpoint_hides_url_and_key() -> None:
    endpoint = WebhookEndpoint.parse("https://hooks.slack.com/services/T0/B0/SECRETPATH", SECRET)

    assert "SECRETPATH" not in repr(endpoint)
    assert endpoint.host == "hooks.slack.com"
    assert WebhookEndpoint(url="ftp://x", key=b"k" * 24).host == "(invalid URL)"
    with pytest.raises(UnsafeUrl):
        WebhookEndpoint.parse("https://user:pw@hooks.example.com/", SECRET)


def test_message_payload_has_the_facts_and_no_content() -> None:
    message = _message()

    payload = json.loads(message.body())

    assert payload["type"] == "secret.viewed"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"] == {
        "secret_id": "AbCdEfGhIjKlMnOpQrStUv",
        "client_ip": "203.0.113.7",
        "country": "DE",
        "agent": {"class": "preview", "name": "Slackbot"},
        "outcome": "ok",
    }
    assert payload["text"] == (
        "Secret `AbCdEfGhIjKlMnOpQrStUv` was viewed from 203.0.113.7 (DE) by Slackbot."
    )
    assert message.id.startswith("msg_")
    assert "Slackbot-LinkExpanding" not in message.body().decode()


def test_message_text_escapes_slack_markup() -> None:
    event = audit_event(AuditEventType.ALERT, at=datetime.now(UTC))
    message = WebhookMessage.from_event(event, secret_id="<!channel>&")

    assert "&lt;!channel&gt;&amp;" in message.text()
    assert "<" not in message.text()


def test_retry_policy_backs_off_exponentially_with_a_cap() -> None:
    policy = RetryPolicy(attempts=6, first_delay=1, factor=2, max_delay=5)

    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


async def test_pinned_request_connects_to_the_address_but_names_the_host() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    target = await pin("https://hooks.example.com:8443/x", AllowList(), resolver=resolve)
    async with httpx.AsyncClient() as client:
        request = pinned_request(client, target, headers={"webhook-id": "m"}, body=b"{}")

    assert str(request.url) == "https://93.184.215.14:8443/x"
    assert request.headers["Host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.headers["webhook-id"] == "m"


async def test_deliver_signs_so_that_the_reference_verifier_accepts(receiver: Receiver) -> None:
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=FAST)
    message = _message()
    try:
        delivery = await dispatcher.deliver(WebhookEndpoint.parse(receiver.url, SECRET), message)
    finally:
        await dispatcher.aclose()

    assert (delivery.result, delivery.attempts, delivery.status) == (
        DeliveryResult.DELIVERED,
        1,
        200,
    )
    [got] = receiver.requests
    assert got.path == "/hooks/burnlink?token=t0k3n"
    assert got.headers["webhook-id"] == message.id
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"].startswith("burnlink-webhooks/")
    assert Webhook(SECRET).verify(got.body, got.headers) == message.payload()
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(got.body, got.headers)


async def test_deliver_keeps_the_host_name_when_connecting_to_the_pinned_address(
    receiver: Receiver,
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    port = receiver.base.rsplit(":", 1)[1]
    dispatcher = WebhookDispatcher(allow=AllowList.parse("hooks.internal"), resolver=resolve)
    try:
        endpoint = WebhookEndpoint.parse(f"http://hooks.internal:{port}/x", SECRET)
        delivery = await dispatcher.deliver(endpoint, _message())
    finally:
        await dispatcher.aclose()

    assert delivery.result is DeliveryResult.DELIVERED
    assert receiver.requests[0].headers["Host"] == f"hooks.internal:{port}"


async def test_deliver_retries_a_server_error_with_the_same_id(receiver: Receiver) -> None:
    receiver.answers = [(500, {}), (503, {})]
    metrics = Metrics()
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=FAST, metrics=metrics)
    try:
        delivery = await dispatcher.deliver(WebhookEndpoint.parse(receiver.url, SECRET), _message())
    finally:
        await dispatcher.aclose()

    assert (delivery.result, delivery.attempts) == (DeliveryResult.DELIVERED, 3)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for got in receiver.requests:
        Webhook(SECRET).verify(got.body, got.headers)
    assert _count(metrics, "burnlink_webhook_failures_total", "reason", "http_5xx") == 2
    assert _count(metrics, "burnlink_webhook_deliveries_total", "result", "delivered") == 1


async def test_deliver_gives_up_after_the_last_attempt(receiver: Receiver) -> None:
    receiver.answers = [(500, {})] * 3
    metrics = Metrics()
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=FAST, metrics=metrics)
    try:
        delivery = await dispatcher.deliver(WebhookEndpoint.parse(receiver.url, SECRET), _message())
    finally:
        await dispatcher.aclose()

    assert (delivery.result, delivery.attempts, delivery.status) == (DeliveryResult.FAILED, 3, 500)
    assert delivery.failure is WebhookFailure.SERVER_ERROR
    assert _count(metrics, "burnlink_webhook_deliveries_total", "result", "failed") == 1


@pytest.mark.parametrize(
    ("status", "attempts"),
    [pytest.param(404, 1, id="not-found-is-final"), pytest.param(429, 2, id="429-is-retried")],
)
async def test_deliver_retries_only_what_may_succeed_later(
    receiver: Receiver, status: int, attempts: int
) -> None:
    receiver.answers = [(status, {})]
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=FAST)
    try:
        delivery = await dispatcher.deliver(WebhookEndpoint.parse(receiver.url, SECRET), _message())
    finally:
        await dispatcher.aclose()

    assert delivery.attempts == attempts
    assert len(receiver.requests) == attempts


async def test_deliver_does_not_follow_redirects(receiver: Receiver) -> None:
    receiver.answers = [(302, {"Location": f"{receiver.base}/elsewhere"})]
    metrics = Metrics()
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=FAST, metrics=metrics)
    try:
        delivery = await dispatcher.deliver(WebhookEndpoint.parse(receiver.url, SECRET), _message())
    finally:
        await dispatcher.aclose()

    assert (delivery.result, delivery.status) == (DeliveryResult.FAILED, 302)
    assert delivery.failure is WebhookFailure.REDIRECT
    assert [r.path for r in receiver.requests] == ["/hooks/burnlink?token=t0k3n"]
    assert _count(metrics, "burnlink_webhook_failures_total", "reason", "redirect") == 1


async def test_deliver_refuses_loopback_unless_allowed(receiver: Receiver) -> None:
    metrics = Metrics()
    dispatcher = WebhookDispatcher(retry=FAST, metrics=metrics)
    try:
        delivery = await dispatcher.deliver(WebhookEndpoint.parse(receiver.url, SECRET), _message())
    finally:
        await dispatcher.aclose()

    assert (delivery.result, delivery.attempts) == (DeliveryResult.FAILED, 1)
    assert delivery.failure is WebhookFailure.REFUSED
    assert receiver.requests == []
    assert _count(metrics, "burnlink_webhook_failures_total", "reason", "refused") == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9/hook",
    ],
)
async def test_webhook_urls_to_internal_addresses_are_refused(url: str) -> None:
    # Checked by pin() before any connection, so nothing is ever sent to these addresses.
    with pytest.raises(UnsafeUrl):
        await pin(url, AllowList())


async def test_deliver_counts_a_connection_error_and_retries() -> None:
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=FAST)
    try:
        endpoint = WebhookEndpoint.parse(f"http://127.0.0.1:{free_port()}/", SECRET)
        delivery = await dispatcher.deliver(endpoint, _message())
    finally:
        await dispatcher.aclose()

    assert delivery.result is DeliveryResult.FAILED
    assert delivery.attempts == FAST.attempts
    assert delivery.failure in {WebhookFailure.CONNECT, WebhookFailure.ERROR}


async def test_deliver_times_out_a_slow_receiver(receiver: Receiver) -> None:
    receiver.delay = 0.5
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=RetryPolicy(attempts=1), timeout=0.1)
    try:
        delivery = await dispatcher.deliver(WebhookEndpoint.parse(receiver.url, SECRET), _message())
    finally:
        await dispatcher.aclose()

    assert (delivery.result, delivery.failure) == (DeliveryResult.FAILED, WebhookFailure.TIMEOUT)


async def test_deliver_retries_a_name_that_does_not_resolve() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return []

    dispatcher = WebhookDispatcher(retry=FAST, resolver=resolve)
    try:
        endpoint = WebhookEndpoint.parse("https://hooks.example.com/x", SECRET)
        delivery = await dispatcher.deliver(endpoint, _message())
    finally:
        await dispatcher.aclose()

    assert (delivery.attempts, delivery.failure) == (FAST.attempts, WebhookFailure.UNRESOLVED)


async def test_enqueue_returns_before_delivery_and_join_waits(receiver: Receiver) -> None:
    receiver.delay = 0.2
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=FAST)
    try:
        assert dispatcher.enqueue(WebhookEndpoint.parse(receiver.url, SECRET), _message())
        assert dispatcher.pending == 1
        assert receiver.requests == []
        await dispatcher.join()
        assert dispatcher.pending == 0
        assert len(receiver.requests) == 1
    finally:
        await dispatcher.aclose()


async def test_enqueue_drops_when_full_or_closed(receiver: Receiver) -> None:
    receiver.delay = 0.1
    metrics = Metrics()
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=FAST, max_pending=1, metrics=metrics)
    endpoint = WebhookEndpoint.parse(receiver.url, SECRET)

    assert dispatcher.enqueue(endpoint, _message())
    assert not dispatcher.enqueue(endpoint, _message())
    await dispatcher.aclose()
    assert not dispatcher.enqueue(endpoint, _message())

    assert len(receiver.requests) == 1
    assert _count(metrics, "burnlink_webhook_deliveries_total", "result", "dropped") == 2
    assert _count(metrics, "burnlink_webhook_deliveries_total", "result", "delivered") == 1


async def test_aclose_cancels_what_does_not_finish_in_time(receiver: Receiver) -> None:
    receiver.answers = [(500, {})] * 10
    metrics = Metrics()
    slow = RetryPolicy(attempts=5, first_delay=30)
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=slow, metrics=metrics)
    dispatcher.enqueue(WebhookEndpoint.parse(receiver.url, SECRET), _message())

    assert await anyio.to_thread.run_sync(receiver.arrived.wait, 5)
    await dispatcher.aclose(grace=0.05)

    assert dispatcher.pending == 0
    assert _count(metrics, "burnlink_webhook_deliveries_total", "result", "dropped") == 1


async def _until(check: Callable[[], bool]) -> None:
    """Wait (at most 5 s) until ``check()`` holds: for what another task finishes."""
    for _ in range(500):
        if check():
            return
        await anyio.sleep(0.01)
    raise AssertionError("still not so after 5 s")


def _dropped(metrics: Metrics, reason: str, queue: str = "notify") -> float:
    value = metrics.registry.get_sample_value(
        "burnlink_webhook_dropped_total", {"queue": queue, "reason": reason}
    )
    return value or 0.0


@pytest.mark.parametrize("count", [pytest.param(30, id="30"), pytest.param(1000, id="1000")])
async def test_a_tarpit_destination_does_not_delay_another(receiver: Receiver, count: int) -> None:
    metrics = Metrics()
    # Patient enough that, were they shared, the tarpit's requests would hold every slot.
    dispatcher = WebhookDispatcher(
        allow=LOOPBACK, retry=RetryPolicy(attempts=1), timeout=60, metrics=metrics
    )
    with tarpit() as pit:
        stuck = WebhookEndpoint.parse(pit.url(), SECRET)
        accepted = [dispatcher.enqueue(stuck, _message()) for _ in range(count)]
        assert dispatcher.enqueue(WebhookEndpoint.parse(receiver.url, SECRET), _message())

        arrived = await anyio.to_thread.run_sync(receiver.arrived.wait, 10)
        ended = _count(metrics, "burnlink_webhook_deliveries_total", "result", "failed")
        held = pit.accepted
        if arrived:
            await _until(lambda: dispatcher.pending == len([a for a in accepted if a]))
        await dispatcher.aclose(grace=0)

    assert arrived, "the fast receiver's webhook waited behind the tarpit's"
    assert ended == 0  # it arrived while every tarpit request was still hanging
    assert held <= 2  # the tarpit's share of connections
    refused = accepted.count(False)
    assert _dropped(metrics, "destination_full") == refused
    assert _dropped(metrics, "queue_full") == 0
    assert _dropped(metrics, "shutdown") == count - refused


async def test_a_delivery_is_dropped_at_its_deadline() -> None:
    metrics = Metrics()
    dispatcher = WebhookDispatcher(
        allow=LOOPBACK, retry=FAST, timeout=60, deadline=0.3, metrics=metrics
    )
    with tarpit() as pit:
        endpoint = WebhookEndpoint.parse(pit.url(), SECRET)
        with anyio.fail_after(10):
            delivery = await dispatcher.deliver(endpoint, _message())
        await dispatcher.aclose()

    assert (delivery.result, delivery.attempts) == (DeliveryResult.DROPPED, 1)
    assert delivery.failure is WebhookFailure.DROPPED
    assert _dropped(metrics, "deadline") == 1
    assert _count(metrics, "burnlink_webhook_deliveries_total", "result", "dropped") == 1


async def test_deliver_times_out_a_receiver_that_trickles_its_answer() -> None:
    # A byte every 0.1 s resets httpx's 0.5 s read timeout each time (as a byte a second does
    # the default 5 s): only a limit on the attempt as a whole ends it.
    dispatcher = WebhookDispatcher(allow=LOOPBACK, retry=RetryPolicy(attempts=1), timeout=0.5)
    with tarpit(trickle=0.1) as pit:
        endpoint = WebhookEndpoint.parse(pit.url(), SECRET)
        with anyio.fail_after(10):
            delivery = await dispatcher.deliver(endpoint, _message())
        await dispatcher.aclose()

    assert (delivery.result, delivery.failure) == (DeliveryResult.FAILED, WebhookFailure.TIMEOUT)


async def test_drops_are_reported_with_their_reason(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Drops reach the handler with their reason; the log names the reason, never the host
    (a ``notify_url``'s host can be its secret part)."""
    drops: list[tuple[str, str | None, DropReason]] = []
    dispatcher = WebhookDispatcher(
        allow=LOOPBACK, retry=FAST, max_pending=2, max_pending_per_destination=1
    )
    dispatcher.on_drop = lambda endpoint, message, reason: drops.append(
        (endpoint.host, message.secret_id if isinstance(message, WebhookMessage) else None, reason)
    )
    with tarpit() as pit:
        stuck = WebhookEndpoint.parse(pit.url(), SECRET)
        assert dispatcher.enqueue(stuck, _message())
        assert not dispatcher.enqueue(stuck, _message())
        assert dispatcher.enqueue(WebhookEndpoint.parse(receiver.url, SECRET), _message())
        assert not dispatcher.enqueue(WebhookEndpoint.parse(receiver.url, SECRET), _message())
        assert await anyio.to_thread.run_sync(receiver.arrived.wait, 5)
        await _until(lambda: dispatcher.pending == 1)  # the receiver's delivery finished
        await dispatcher.aclose(grace=0)

    sid = "AbCdEfGhIjKlMnOpQrStUv"
    assert drops == [
        ("127.0.0.1", sid, DropReason.DESTINATION_FULL),
        ("127.0.0.1", sid, DropReason.QUEUE_FULL),
        ("127.0.0.1", sid, DropReason.SHUTDOWN),
    ]
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped == [
        "notify webhook dropped: destination_full",
        "notify webhook dropped: queue_full",
        "notify webhook dropped: shutdown",
    ]
    assert not any("127.0.0.1" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("example.com", "EXAMPLE.com.", id="case-and-trailing-dot"),
        pytest.param("bücher.example", "xn--bcher-kva.example", id="idna"),
        pytest.param("BÜCHER.example.", "bücher.example", id="idna-case-dot"),
        pytest.param("192.0.2.7", "[::ffff:192.0.2.7]", id="ipv4-mapped"),
        pytest.param("192.0.2.7", "3221225991", id="ipv4-as-a-number"),
        pytest.param("[2001:db8::1]", "[2001:DB8:0:0::1]", id="ipv6-forms"),
    ],
)
async def test_spellings_of_one_host_share_one_destination_budget(first: str, second: str) -> None:
    """A sender cannot multiply a destination's share of the queue by spelling its host
    differently: the second spelling finds the budget (one delivery here) already used."""
    metrics = Metrics()

    async def never(host: str, port: int) -> list[str]:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    dispatcher = WebhookDispatcher(
        allow=AllowList.parse("0.0.0.0/0 ::/0"),
        retry=RetryPolicy(attempts=1),
        metrics=metrics,
        max_pending_per_destination=1,
        resolver=never,
    )
    accepted = [
        dispatcher.enqueue(WebhookEndpoint.parse(f"http://{host}:8080/hook", SECRET), _message())
        for host in (first, second)
    ]
    await dispatcher.aclose(grace=0)

    assert accepted == [True, False]
    assert _dropped(metrics, "destination_full") == 1
