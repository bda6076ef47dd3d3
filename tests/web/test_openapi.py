"""The OpenAPI document (``/openapi.json``) declares every error answer of the API, and only
real ones, in the one error shape.

``DECLARED`` is the list of each ``/api/`` operation's error statuses; a request below reaches
every one of them. ``tests/test_fuzz.py`` checks the other direction: no answer is undeclared.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI, params
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from burnlink.audit import AuditEntry
from burnlink.audit.sqlite import SqliteAuditStore
from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.crypto import Payload, derive_keys, seal
from burnlink.errors import StorageUnavailable
from burnlink.identity.tokens import new_api_token
from burnlink.ids import b64url_decode, b64url_encode, new_secret_id
from burnlink.models import ReceiptRecord, SecretMeta
from burnlink.request_crypto import KeyPair, seal_answer
from burnlink.store.identity import SessionRecord
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app, max_body
from burnlink.web.errors import error_response
from burnlink.web.schemas import ErrorBody, ErrorDetail
from tests.web.signed_in import ALL_SCOPES, SIGN_IN, make_token, sign_in

pytestmark = pytest.mark.anyio

Operation = tuple[str, str]
CREATE = ("POST", "/api/v1/secrets")
REVEAL = ("POST", "/api/v1/secrets/{secret_id}/reveal")
INFO = ("GET", "/api/v1/secrets/{secret_id}")
CONSUME = ("POST", "/api/v1/secrets/{secret_id}/consume")
RECEIPT = ("GET", "/api/v1/secrets/{secret_id}/receipt")
BURN = ("DELETE", "/api/v1/secrets/{secret_id}")
AUDIT = ("GET", "/api/v1/audit")
POLICY = ("GET", "/api/v1/policy")
TOKENS_CREATE = ("POST", "/api/v1/me/tokens")
TOKENS_LIST = ("GET", "/api/v1/me/tokens")
TOKEN_REVOKE = ("DELETE", "/api/v1/me/tokens/{token_id}")
ADMIN_REVOKE = ("DELETE", "/api/v1/admin/tokens/{token_id}")
ADMIN_SESSION = ("GET", "/api/v1/admin/session")
ADMIN_ACTIVITY = ("GET", "/api/v1/admin/activity")
ADMIN_EXPORT = ("GET", "/api/v1/admin/audit/export")
ADMIN_TOKENS = ("GET", "/api/v1/admin/tokens")
ADMIN_POLICY = ("GET", "/api/v1/admin/policy")
ADMIN_OPS = {
    AUDIT,
    ADMIN_REVOKE,
    ADMIN_SESSION,
    ADMIN_ACTIVITY,
    ADMIN_EXPORT,
    ADMIN_TOKENS,
    ADMIN_POLICY,
}
AUDIT_READS = {AUDIT, ADMIN_ACTIVITY, ADMIN_EXPORT}
MY_LIST = ("GET", "/api/v1/me/secrets")
MY_RECEIPT = ("GET", "/api/v1/me/secrets/{secret_id}")
MY_BURN = ("DELETE", "/api/v1/me/secrets/{secret_id}")
MY_BURN_MANY = ("POST", "/api/v1/me/secrets/burn")
MY_OPS = {MY_LIST, MY_RECEIPT, MY_BURN, MY_BURN_MANY}
TOKEN_OPS = {TOKENS_CREATE, TOKENS_LIST, TOKEN_REVOKE, ADMIN_REVOKE} | MY_OPS
REQ_CREATE = ("POST", "/api/v1/requests")
REQ_VIEW = ("GET", "/api/v1/requests/{request_id}")
REQ_ANSWER = ("POST", "/api/v1/requests/{request_id}/answer")
REQ_STATUS = ("GET", "/api/v1/requests/{request_id}/status")
REQ_OPEN = ("POST", "/api/v1/requests/{request_id}/open")
REQUEST_OPS = {REQ_CREATE, REQ_VIEW, REQ_ANSWER, REQ_STATUS, REQ_OPEN}
BODIES: dict[Operation, dict[str, Any]] = {
    TOKENS_CREATE: {"name": "ci", "scopes": ["secrets:create"]},
    MY_BURN_MANY: {"ids": ["A" * 22]},
}

# Each operation's error statuses, as docs/api.md lists them. A new route goes here, and each
# of its statuses gets a request in SCENARIOS.
DECLARED: dict[Operation, set[int]] = {
    CREATE: {400, 401, 403, 413, 415, 422, 429, 503},
    REVEAL: {400, 401, 403, 404, 413, 415, 422, 429, 503},
    INFO: {403, 404, 429, 503},
    CONSUME: {400, 401, 403, 404, 413, 415, 422, 429, 503},
    RECEIPT: {404, 503},
    BURN: {400, 404, 413, 415, 503},
    AUDIT: {401, 403, 422, 429, 503},
    ADMIN_SESSION: {401, 403, 429, 503},
    ADMIN_ACTIVITY: {401, 403, 422, 429, 503},
    ADMIN_EXPORT: {401, 403, 422, 429, 503},
    ADMIN_TOKENS: {401, 403, 429, 503},
    ADMIN_POLICY: {401, 403, 429, 503},
    POLICY: {401, 503},
    TOKENS_CREATE: {400, 401, 403, 413, 415, 422, 503},
    TOKENS_LIST: {401, 503},
    TOKEN_REVOKE: {400, 401, 404, 413, 415, 503},
    ADMIN_REVOKE: {400, 401, 403, 404, 413, 415, 429, 503},
    MY_LIST: {401, 403, 422, 503},
    MY_RECEIPT: {401, 403, 404, 503},
    MY_BURN: {400, 401, 403, 404, 413, 415, 503},
    MY_BURN_MANY: {400, 401, 403, 413, 415, 422, 503},
    REQ_CREATE: {400, 401, 403, 413, 415, 422, 429, 503},
    REQ_VIEW: {401, 403, 404, 429, 503},
    REQ_ANSWER: {400, 401, 403, 404, 409, 410, 413, 415, 422, 429, 503},
    REQ_STATUS: {404, 422, 429, 503},
    REQ_OPEN: {400, 404, 409, 410, 413, 415, 422, 429, 503},
}
ERROR_MODEL = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
ADMIN_TOKEN = "admin-token-for-the-openapi-tests"
CLIENT_IP = "203.0.113.7"
UNKNOWN = "A" * 43
TOKEN_ID = "tok_AAAAAAAAAAAAAAAA"


def api_operations(document: dict[str, Any]) -> dict[Operation, dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in document["paths"].items()
        if path.startswith("/api/")
        for method, operation in operations.items()
    }


def error_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if int(status) >= 400}


# -- the document -----------------------------------------------------------------------------


async def test_served_openapi_has_no_framework_validation_error(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    served = (await client.get("/openapi.json")).json()

    assert served == app.openapi()
    assert "ValidationError" not in json.dumps(served)


def test_a_receipt_events_viewer_is_an_email_and_mfa_or_null(app: FastAPI) -> None:
    """The shape docs/api.md gives a receipt event's ``viewer``."""
    schemas = app.openapi()["components"]["schemas"]
    viewer = schemas["EventBody"]["properties"]["viewer"]
    body = schemas["ViewerBody"]

    assert viewer["anyOf"] == [{"$ref": "#/components/schemas/ViewerBody"}, {"type": "null"}]
    assert body["required"] == ["email", "mfa"]
    assert body["properties"]["email"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert body["properties"]["mfa"]["type"] == "boolean"


def test_openapi_error_responses_are_the_error_model(app: FastAPI) -> None:
    for (method, path), operation in api_operations(app.openapi()).items():
        for status, response in operation["responses"].items():
            assert status.isdigit(), f"{method} {path}: declare statuses, not {status}"
            if int(status) < 400:
                continue
            where = f"{method} {path} {status}"
            assert response["content"] == ERROR_MODEL, where
            assert response["description"], where
            headers = response.get("headers", {})
            assert ("Retry-After" in headers) == (status == "429"), where
            assert ("WWW-Authenticate" in headers) == (status == "401"), where


def can_fail_validation(route: RouteContext) -> bool:
    """Whether FastAPI can refuse a request to ``route`` (then answered as our 422): it has a
    body or a parameter other than a bare ``str`` in the path."""
    if route.body_field is not None:
        return True
    for param in get_flat_params(route.dependant):
        info = param.field_info
        if not (isinstance(info, params.Path) and info.annotation is str and not info.metadata):
            return True
    return False


def test_openapi_declares_422_where_validation_can_fail(app: FastAPI) -> None:
    declared = api_operations(app.openapi())
    routes = [
        route
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and (route.path or "").startswith("/api/")
    ]

    walked = {(method, route.path or "") for route in routes for method in route.methods or ()}
    assert walked == set(declared)
    for route in routes:
        for method in route.methods or ():
            statuses = error_statuses(declared[(method, route.path or "")])
            assert (422 in statuses) == can_fail_validation(route), f"{method} {route.path}"


def test_openapi_declares_the_error_statuses_of_docs_api_md(app: FastAPI) -> None:
    declared = {op: error_statuses(o) for op, o in api_operations(app.openapi()).items()}

    assert declared == DECLARED


def test_error_detail_has_every_member_error_response_can_write() -> None:
    writes = {
        name
        for name, parameter in inspect.signature(error_response).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }

    assert set(ErrorDetail.model_fields) == {"code", "message", *writes}


# -- every declared status is answered --------------------------------------------------------


class Outage(MemoryStore):
    """A memory store that fails every call that reaches it while ``down``."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable

    async def hit(self, bucket: str, *, window: int, now: datetime, cost: int = 1) -> int:
        self._check()
        return await super().hit(bucket, window=window, now=now, cost=cost)

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        self._check()
        return await super().peek(secret_id, now=now)

    async def receipt(self, secret_id: str, *, now: datetime) -> ReceiptRecord | None:
        self._check()
        return await super().receipt(secret_id, now=now)

    async def touch_session(
        self, digest: bytes, *, now: datetime, idle_seconds: int
    ) -> SessionRecord | None:
        self._check()
        return await super().touch_session(digest, now=now, idle_seconds=idle_seconds)

    async def revoke_token(self, token_id: str, *, now: datetime, subject: str | None) -> bool:
        self._check()
        return await super().revoke_token(token_id, now=now, subject=subject)


class UnreadableAudit(SqliteAuditStore):
    """An audit log whose reads fail."""

    def iter_entries(self, **filters: Any) -> AsyncIterator[AuditEntry]:
        return _unavailable()


async def _unavailable() -> AsyncIterator[AuditEntry]:
    for _ in ():  # an async generator that raises when first read
        yield _
    raise StorageUnavailable


@dataclass
class KeptCodes:
    """A mailer that keeps the codes it is asked to send."""

    codes: list[str] = field(default_factory=list)

    async def send_code(
        self, to: str, code: str, *, minutes_valid: int, language: str = "en"
    ) -> None:
        self.codes.append(code)


@dataclass(frozen=True)
class Secret:
    secret_id: str
    key: str
    access_token: str
    manage_token: str


@dataclass
class Api:
    """A running app on an ``Outage`` store, and a client from ``CLIENT_IP``."""

    client: httpx.AsyncClient
    store: Outage
    body_limit: int
    clock: FrozenClock

    async def create(self, **fields: Any) -> Secret:
        response = await self.client.post("/api/v1/secrets", json={"secret": "s3cret", **fields})
        assert response.status_code == 201, response.text
        body = response.json()
        key = body["url"].split("#", 1)[1]
        access = b64url_encode(derive_keys(b64url_decode(key, field="key")).access_token)
        return Secret(body["id"], key, access, body["manage_url"].split("#", 1)[1])

    async def ask(self, **fields: Any) -> Secret:
        """A request for a secret; as a ``Secret``: its id, the request link's token (as
        ``access_token``) and the requester's (as ``manage_token``)."""
        body = {"public_key": PUBLIC_KEY, "description": "a password", **fields}
        response = await self.client.post("/api/v1/requests", json=body)
        assert response.status_code == 201, response.text
        made = response.json()
        return Secret(made["id"], "", made["link_token"], made["requester_token"])

    async def call(
        self, op: Operation, secret: Secret | None = None, *, token: str = "", **kwargs: Any
    ) -> httpx.Response:
        method, path = op
        some_id = secret.secret_id if secret else new_secret_id()
        path = path.format(secret_id=some_id, request_id=some_id, token_id=TOKEN_ID)
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["authorization"] = f"Bearer {token}"
        return await self.client.request(method, path, headers=headers, **kwargs)


OpenApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def open_api(clock: FrozenClock) -> AsyncIterator[OpenApi]:
    """A factory of running apps with the given settings (and ``mailer``, ``audit``)."""
    async with AsyncExitStack() as stack:

        async def start(
            *, mailer: KeptCodes | None = None, audit: bool = False, **options: Any
        ) -> Api:
            settings = load_settings(
                store="memory://", max_bytes=1024, admin_token=ADMIN_TOKEN, **SIGN_IN, **options
            )
            store = Outage(retention=timedelta(days=30))
            unreadable = None
            if audit:
                unreadable = await UnreadableAudit.open(":memory:", key=bytes(32))
                stack.push_async_callback(unreadable.aclose)
            app = create_app(settings, store, clock, mailer=mailer, audit=unreadable)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000)),
                base_url="http://burnlink.test",
            )
            await stack.enter_async_context(client)
            return Api(client, store, max_body(settings), clock)

        yield start


Scenario = Callable[[OpenApi, Operation], Awaitable[httpx.Response]]

REQUESTER = KeyPair.generate()
PUBLIC_KEY = b64url_encode(REQUESTER.public)
REQUEST_BODY = {"public_key": PUBLIC_KEY, "description": "a password"}


def _request_body(op: Operation) -> dict[str, Any] | None:
    """A body the operation takes, so that a scenario gets past validation."""
    if op == REQ_CREATE:
        return REQUEST_BODY
    if op == REQ_ANSWER:
        return {"answer": {}}
    return None


async def _request_call(api: Api, op: Operation, request: Secret, **kwargs: Any) -> httpx.Response:
    """``op`` on ``request`` with the token that operation takes."""
    token = request.manage_token if op in {REQ_STATUS, REQ_OPEN} else request.access_token
    return await api.call(op, request, token=token, json=_request_body(op), **kwargs)


async def conflict(open_api: OpenApi, op: Operation) -> httpx.Response:
    """An answer to an answered request; opening one not answered yet."""
    api = await open_api()
    request = await api.ask()
    if op == REQ_ANSWER:
        sealed = seal_answer(
            Payload(b"s3cret"),
            REQUESTER.public,
            request.secret_id,
            expected_fingerprint=REQUESTER.fingerprint,
        ).to_json()
        first = await api.call(op, request, token=request.access_token, json={"answer": sealed})
        assert first.status_code == 201, first.text
        return await api.call(op, request, token=request.access_token, json={"answer": sealed})
    return await _request_call(api, op, request)


async def gone(open_api: OpenApi, op: Operation) -> httpx.Response:
    """A request whose time ran out."""
    api = await open_api()
    request = await api.ask(ttl=60)
    api.clock.advance(60)
    return await _request_call(api, op, request)


async def bad_content_length(open_api: OpenApi, op: Operation) -> httpx.Response:
    api = await open_api()
    headers = {"content-type": "application/json", "content-length": "nope"}
    return await api.call(op, token=UNKNOWN, content=b"{}", headers=headers)


async def too_large(open_api: OpenApi, op: Operation) -> httpx.Response:
    api = await open_api()
    body = b"x" * (api.body_limit + 1)
    headers = {"content-type": "application/json"}
    return await api.call(op, token=UNKNOWN, content=body, headers=headers)


async def not_json(open_api: OpenApi, op: Operation) -> httpx.Response:
    api = await open_api()
    headers = {"content-type": "text/plain"}
    return await api.call(op, token=UNKNOWN, content=b"x", headers=headers)


async def unknown_secret(open_api: OpenApi, op: Operation) -> httpx.Response:
    api = await open_api()
    if op in {TOKEN_REVOKE, MY_RECEIPT, MY_BURN}:
        return await api.call(op, headers=await sign_in(api.store, api.clock.now()))
    if op == ADMIN_REVOKE:
        return await api.call(op, token=ADMIN_TOKEN)
    if op in REQUEST_OPS:
        return await api.call(op, token=UNKNOWN, json=_request_body(op))
    return await api.call(op, token=UNKNOWN, json={"key": UNKNOWN} if op == REVEAL else None)


async def too_fast(open_api: OpenApi, op: Operation) -> httpx.Response:
    if op in ADMIN_OPS:
        api = await open_api(rate_limit_admin="1/hour")
        assert (await api.call(op, token="wrong-" + ADMIN_TOKEN)).status_code == 401
        return await api.call(op, token=ADMIN_TOKEN)
    api = await open_api(rate_limit_create="1/minute", rate_limit_reveal="1/minute")
    body = {"secret": "s3cret"} if op == CREATE else {"key": UNKNOWN} if op == REVEAL else None
    if op in REQUEST_OPS:
        body = _request_body(op)
    first = await api.call(op, token=UNKNOWN, json=body)
    assert first.status_code in {201, 404}, first.text
    return await api.call(op, token=UNKNOWN, json=body)


async def store_down(open_api: OpenApi, op: Operation) -> httpx.Response:
    api = await open_api()
    if op in ADMIN_OPS - {ADMIN_REVOKE}:
        api.store.down = True
        return await api.call(op, token=ADMIN_TOKEN)
    if op in TOKEN_OPS or op == POLICY:
        session = await sign_in(api.store, api.clock.now())
        api.store.down = True
        if op == ADMIN_REVOKE:
            return await api.call(op, token=ADMIN_TOKEN)
        return await api.call(op, json=BODIES.get(op), headers=session)
    if op in REQUEST_OPS:
        request = await api.ask()
        api.store.down = True
        return await _request_call(api, op, request)
    secret = await api.create()
    api.store.down = True
    token = secret.manage_token if op in {RECEIPT, BURN} else secret.access_token
    body = {"secret": "s3cret"} if op == CREATE else {"key": secret.key} if op == REVEAL else None
    return await api.call(op, secret, token=token, json=body)


async def invalid_member(open_api: OpenApi, op: Operation) -> httpx.Response:
    api = await open_api()
    if op in {TOKENS_CREATE, MY_BURN_MANY, MY_LIST}:
        session = await sign_in(api.store, api.clock.now())
        if op == MY_LIST:
            return await api.call(op, headers=session, params={"limit": 0})
        wrong: dict[str, object] = (
            {"ids": []} if op == MY_BURN_MANY else {"name": "ci", "scopes": ["root"]}
        )
        return await api.call(op, json=wrong, headers=session)
    if op == AUDIT:
        return await api.call(op, token=ADMIN_TOKEN, params={"limit": 0})
    if op == ADMIN_ACTIVITY:
        return await api.call(op, token=ADMIN_TOKEN, params={"bucket": "week"})
    if op == ADMIN_EXPORT:
        return await api.call(op, token=ADMIN_TOKEN, params={"format": "xml"})
    if op == REQ_CREATE:
        return await api.call(op, json={**REQUEST_BODY, "ttl": "60"})
    if op in {REQ_ANSWER, REQ_STATUS, REQ_OPEN}:
        request = await api.ask()
        if op == REQ_OPEN:
            return await api.call(op, request, token=request.manage_token, json={"x": 1})
        if op == REQ_STATUS:
            return await api.call(op, request, token=request.manage_token, params={"wait": 61})
        return await api.call(op, request, token=request.access_token, json={"answer": "x"})
    body = {
        CREATE: {"secret": "s3cret", "ttl": "60"},
        REVEAL: {"key": UNKNOWN, "unknown": 1},
        CONSUME: {"passphrase_proof": "short"},
    }[op]
    return await api.call(op, token=UNKNOWN, json=body)


async def refused(open_api: OpenApi, op: Operation) -> httpx.Response:
    if op in ADMIN_OPS:  # a signed-in user outside BURNLINK_ADMIN_GROUPS
        api = await open_api(admin_groups=["admins"])
        session = await sign_in(api.store, api.clock.now(), groups=("sales",))
        return await api.call(op, headers=session)
    if op == TOKENS_CREATE:
        api = await open_api()
        made = await make_token(api.client, await sign_in(api.store, api.clock.now()))
        return await api.call(op, token=made["token"], json={"name": "x", "scopes": ALL_SCOPES})
    if op in MY_OPS:
        api = await open_api()
        session = await sign_in(api.store, api.clock.now())
        made = await make_token(api.client, session, scopes=["secrets:create"])
        return await api.call(op, token=made["token"], json=BODIES.get(op))
    if op in {CREATE, REQ_CREATE}:
        api = await open_api(create_allowed_ips=["198.51.100.0/24"])
        body = REQUEST_BODY if op == REQ_CREATE else {"secret": "s3cret"}
        return await api.call(op, json=body)
    api = await open_api()
    if op in REQUEST_OPS:  # a signed-in user who is none of the request's recipients
        request = await api.ask(recipients=["group:ops"])
        session = await sign_in(api.store, api.clock.now(), groups=("sales",))
        return await _request_call(api, op, request, headers=session)
    if op == INFO:
        secret = await api.create(allowed_ips=["198.51.100.1"])
        return await api.call(op, secret, token=secret.access_token)
    secret = await api.create(passphrase="correct horse")
    if op == REVEAL:
        return await api.call(op, secret, json={"key": secret.key})
    return await api.call(op, secret, token=secret.access_token)


async def unauthenticated(open_api: OpenApi, op: Operation) -> httpx.Response:
    if op in ADMIN_OPS or op in TOKEN_OPS:
        return await (await open_api()).call(op, json=BODIES.get(op))
    if op == CREATE:
        return await (await open_api()).call(op, token=new_api_token(), json={"secret": "x"})
    if op == REQ_CREATE:
        return await (await open_api()).call(op, token=new_api_token(), json=REQUEST_BODY)
    if op in REQUEST_OPS:  # a request for signed-in recipients, and nobody signed in
        api = await open_api()
        return await _request_call(api, op, await api.ask(recipients=["group:ops"]))
    if op == POLICY:
        return await (await open_api()).call(op, token=new_api_token())
    api = await open_api(mailer=KeptCodes())
    secret = await api.create(recipient_email="bob@example.com")
    if op == REVEAL:
        return await api.call(op, secret, json={"key": secret.key})
    return await api.call(op, secret, token=secret.access_token)


async def audit_down(open_api: OpenApi, op: Operation) -> httpx.Response:
    return await (await open_api(audit=True)).call(op, token=ADMIN_TOKEN)


SCENARIOS: dict[int, Scenario] = {
    400: bad_content_length,
    401: unauthenticated,
    403: refused,
    404: unknown_secret,
    413: too_large,
    415: not_json,
    422: invalid_member,
    409: conflict,
    410: gone,
    429: too_fast,
    503: store_down,
}


@pytest.mark.parametrize(
    ("op", "status"),
    [
        pytest.param(op, status, id=f"{op[0]} {op[1]} {status}")
        for op, statuses in DECLARED.items()
        for status in sorted(statuses)
    ],
)
async def test_every_declared_error_status_is_answered(
    app: FastAPI, open_api: OpenApi, op: Operation, status: int
) -> None:
    """Each declared status is a real answer, in the error model, with a code that the
    declared description names."""
    scenario = audit_down if op in AUDIT_READS and status == 503 else SCENARIOS[status]
    declared = api_operations(app.openapi())[op]["responses"][str(status)]

    response = await scenario(open_api, op)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    code = ErrorBody.model_validate_json(response.content).error.code
    assert f"`{code}`" in declared["description"]
    if status == 429:
        assert int(response.headers["retry-after"]) >= 1
    if status == 401:
        assert response.headers["www-authenticate"]


# -- the create body's schema says what the server takes -----------------------------------

_TOKEN = "A" * 43


def _envelope() -> dict[str, Any]:
    sealed = seal(Payload(b"s3cret"), bytes(range(32)), passphrase=None)
    envelope: dict[str, Any] = sealed.envelope.to_json()
    return envelope


@pytest.mark.parametrize(
    ("body", "taken"),
    [
        pytest.param({"secret": "x"}, True, id="curl"),
        pytest.param({"secret": "x", "envelope": None, "access_token": None}, True, id="nulls"),
        pytest.param({"secret": "x", "ttl": 60, "max_views": 100}, True, id="bounds"),
        pytest.param({"secret": "x", "ttl": 30 * 86400}, True, id="longest-ttl"),
        pytest.param({"envelope": "E", "access_token": _TOKEN}, True, id="e2e"),
        pytest.param({}, False, id="empty"),
        pytest.param({"secret": None}, False, id="null-secret"),
        pytest.param({"secret": ""}, False, id="empty-secret"),
        pytest.param({"secret": "x", "envelope": "E", "access_token": _TOKEN}, False, id="both"),
        pytest.param({"secret": "x", "access_token": _TOKEN}, False, id="curl-with-token"),
        pytest.param({"secret": "x", "passphrase_proof": _TOKEN}, False, id="curl-with-proof"),
        pytest.param({"envelope": "E"}, False, id="e2e-without-token"),
        pytest.param({"envelope": "E", "access_token": "A" * 42 + "B"}, False, id="token-bits"),
        pytest.param(
            {"envelope": "E", "access_token": _TOKEN, "passphrase": "p"}, False, id="e2e-passphrase"
        ),
        pytest.param({"secret": "x", "ttl": 59}, False, id="ttl-too-short"),
        pytest.param({"secret": "x", "ttl": 30 * 86400 + 1}, False, id="ttl-too-long"),
        pytest.param({"secret": "x", "max_views": 0}, False, id="no-views"),
        pytest.param({"secret": "x", "max_views": 101}, False, id="too-many-views"),
        pytest.param({"secret": "x", "recipient_email": "a@b"}, False, id="email-no-dot"),
        pytest.param({"secret": "x", "recipient_email": "a b@c.example"}, False, id="email-space"),
    ],
)
async def test_the_create_schema_takes_what_the_server_takes(
    client: httpx.AsyncClient, body: dict[str, Any], taken: bool
) -> None:
    # A client that checks its body against /openapi.json learns the server's answer from it.
    if body.get("envelope") == "E":
        body = {**body, "envelope": _envelope()}
    await _assert_schema_agrees(client, body, taken)


@pytest.mark.parametrize(
    ("change", "taken"),
    [
        pytest.param({}, True, id="as-sealed"),
        pytest.param({"v": 2}, False, id="version"),
        pytest.param({"iter": 600_000}, False, id="iter-without-passphrase"),
        pytest.param({"salt": "A" * 22}, False, id="salt-without-passphrase"),
        pytest.param({"nonce": "A" * 15}, False, id="short-nonce"),
        pytest.param({"ct": "A" * 21}, False, id="short-ct"),
        pytest.param({"ct": "A" * 22 + "B"}, False, id="non-canonical-ct"),
        pytest.param({"ct": "A" * 25}, False, id="ct-length-1-mod-4"),
        pytest.param({"ct": "A" * 24 + "!"}, False, id="ct-not-base64url"),
        pytest.param({"kdf": "pbkdf2-sha256"}, False, id="passphrase-without-kdf-fields"),
        pytest.param(
            {"kdf": "pbkdf2-sha256", "iter": 600_000, "salt": "A" * 21 + "Q"}, True, id="passphrase"
        ),
        pytest.param(
            {"kdf": "pbkdf2-sha256", "iter": 599_999, "salt": "A" * 22}, False, id="too-few-iter"
        ),
        pytest.param(
            {"kdf": "pbkdf2-sha256", "iter": 600_000, "salt": "A" * 21 + "B"}, False, id="salt"
        ),
    ],
)
async def test_the_envelope_schema_takes_what_the_server_takes(
    client: httpx.AsyncClient, change: dict[str, Any], taken: bool
) -> None:
    envelope = {**_envelope(), **change}
    body: dict[str, Any] = {"envelope": envelope, "access_token": _TOKEN}
    if envelope["kdf"] != "none":
        body["passphrase_proof"] = _TOKEN
    await _assert_schema_agrees(client, body, taken)


@pytest.mark.parametrize("with_passphrase", [True, False])
async def test_the_passphrase_proof_comes_exactly_with_a_passphrase(
    client: httpx.AsyncClient, with_passphrase: bool
) -> None:
    passphrase = {"kdf": "pbkdf2-sha256", "iter": 600_000, "salt": "A" * 22}
    envelope = {**_envelope(), **(passphrase if with_passphrase else {})}
    body = {"envelope": envelope, "access_token": _TOKEN}

    await _assert_schema_agrees(client, body, taken=not with_passphrase)
    await _assert_schema_agrees(client, {**body, "passphrase_proof": _TOKEN}, with_passphrase)


async def _assert_schema_agrees(client: httpx.AsyncClient, body: Any, taken: bool) -> None:
    document = (await client.get("/openapi.json")).json()
    schema = {"$ref": "#/components/schemas/CreateSecretRequest", **document}

    response = await client.post("/api/v1/secrets", json=body)

    assert jsonschema_rs.validator_for(schema).is_valid(body) is taken
    assert response.status_code == (201 if taken else 422), response.text


@pytest.mark.parametrize(
    ("address", "taken"),
    [
        pytest.param("bob@example.com", True, id="plain"),
        pytest.param("o'neil+ops@mail.example.org", True, id="atext"),
        pytest.param("root,victim@example.com", False, id="comma-list"),
        pytest.param("root;victim@example.com", False, id="semicolon-list"),
        pytest.param("Bob <bob@example.com>", False, id="display-name"),
        pytest.param("bob(x)@example.com", False, id="comment"),
        pytest.param('"a,b"@example.com', False, id="quoted"),
        pytest.param("a..b@example.com", False, id="double-dot"),
    ],
)
async def test_the_schema_takes_the_recipient_emails_the_server_takes(
    open_api: OpenApi, address: str, taken: bool
) -> None:
    api = await open_api(mailer=KeptCodes())

    await _assert_schema_agrees(api.client, {"secret": "x", "recipient_email": address}, taken)


@pytest.mark.parametrize("able", [True, False])
async def test_the_schema_offers_mail_and_webhooks_only_where_the_server_has_them(
    open_api: OpenApi, able: bool
) -> None:
    options: dict[str, Any] = {"webhook_secret": "whsec_" + "A" * 43} if able else {}
    api = await open_api(mailer=KeptCodes() if able else None, **options)
    fields = {"recipient_email": "r@example.com", "notify_url": "https://93.184.216.34/hook"}

    for name, value in fields.items():
        await _assert_schema_agrees(api.client, {"secret": "x", name: value}, able)
