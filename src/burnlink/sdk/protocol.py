"""API v1 without I/O: each call as a ``Call`` (what to send, how to read the answer), and the
one table that turns the server's error answers into ``burnlink.errors``.

The SDK's clients (``burnlink.sdk.transport``) do the I/O, sync or async, over the same calls;
the steps of ``share`` and ``get`` (``burnlink.sdk.flows``) are written once, as generators of
calls, for both. The server's answers become these errors (each carries the API's ``code``):

    404                                    -> SecretUnavailable
    409 already_answered / not_answered    -> RequestAnswered / RequestNotAnswered
    410 request_expired                    -> RequestExpired
    403 passphrase_required / wrong_...    -> PassphraseRequired / WrongPassphrase (attempts_left)
    403 ip_denied / geo_denied             -> IpDenied / GeoDenied
    403 (other)                            -> AccessDenied
    413                                    -> PayloadTooLarge
    400, 415, 422                          -> InvalidInput, with the server's message
    401 invalid_token / login_required     -> InvalidApiToken / LoginRequired
    401 verification_required / _failed    -> VerificationRequired / VerificationFailed
    403 insufficient_scope / create_not_.. -> InsufficientScope / CreateNotAllowed
    403 team_policy                        -> TeamPolicyRefused (field, teams)
    403 recipient_mismatch / mfa_required  -> RecipientMismatch / MfaRequired
    429                                    -> RateLimited (retry_after)
    503 store_unavailable                  -> StorageUnavailable
    other statuses, no answer, bad answers -> ServerUnavailable
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from burnlink import __version__
from burnlink.envelope import KDF_PBKDF2, MAX_ITERATIONS, MIN_ITERATIONS, SALT_BYTES, Envelope
from burnlink.errors import (
    AccessDenied,
    BurnlinkError,
    CreateNotAllowed,
    EnvelopeError,
    GeoDenied,
    InsufficientScope,
    InvalidApiToken,
    InvalidInput,
    IpDenied,
    LoginRequired,
    MfaRequired,
    PassphraseRequired,
    PayloadTooLarge,
    RateLimited,
    RecipientMismatch,
    RequestAnswered,
    RequestExpired,
    RequestNotAnswered,
    SecretUnavailable,
    StorageUnavailable,
    TeamPolicyRefused,
    VerificationFailed,
    VerificationRequired,
    WrongPassphrase,
)
from burnlink.ids import TOKEN_BYTES, b64url_decode, b64url_encode
from burnlink.request_crypto import SealedAnswer
from burnlink.sdk.models import (
    AskedRequest,
    Consumed,
    Created,
    Event,
    Me,
    PassphraseParams,
    Policy,
    Receipt,
    RequestView,
    SecretInfo,
    Viewer,
)

TIMEOUT = 10.0
"""Seconds a call may take before ``ServerUnavailable``."""
USER_AGENT = f"burnlink-python/{__version__}"
"""The SDK's ``User-Agent``; the CLI sends its own (``burnlink-cli/…``)."""

T = TypeVar("T")


class ServerUnavailable(BurnlinkError):
    """Raised when the server cannot be reached, fails, or answers outside API v1."""


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request of API v1, and how to read its successful answer."""

    method: str
    base: str
    """The server's base URL (``https://host[/prefix]``)."""
    path: str
    """Under ``/api/v1``."""
    parse: Callable[[dict[str, Any]], T] = field(repr=False)
    token: bytes | None = field(default=None, repr=False)
    """A secret's access or manage token, sent as the bearer."""
    user: str | None = field(default=None, repr=False)
    """The user's API token (``blk_…``): the bearer when there is no ``token``, else (for a
    secret bound to recipients) in ``X-Burnlink-Token``."""
    body: dict[str, Any] | None = field(default=None, repr=False)
    params: dict[str, Any] | None = None
    """Query parameters."""
    timeout: float | None = None
    """Seconds this call may take, in place of the client's (a long poll)."""

    @property
    def url(self) -> str:
        """The full URL of the call."""
        return f"{self.base}/api/v1{self.path}"

    def headers(self) -> dict[str, str]:
        """The call's own headers (the client adds ``User-Agent`` and ``Accept``)."""
        if self.token:
            headers = {"Authorization": f"Bearer {b64url_encode(self.token)}"}
            if self.user:
                # The secret's token takes Authorization: the user's goes beside it.
                headers["X-Burnlink-Token"] = self.user
            return headers
        if self.user:
            return {"Authorization": f"Bearer {self.user}"}
        return {}


@dataclass(frozen=True, slots=True)
class Work(Generic[T]):
    """CPU-bound work inside a flow (PBKDF2, AES-GCM): the async client runs it in a thread."""

    run: Callable[[], T] = field(repr=False)


Step = Call[Any] | Work[Any]
Flow = Generator[Step, Any, T]
"""The steps of one action: it yields calls and work, and is sent their results (or thrown
their errors); its return value is the action's."""


def do(step: Call[T] | Work[T]) -> Generator[Step, Any, T]:
    """``result = yield from do(step)``: one step, typed."""
    result: T = yield step
    return result


def answered(call: Call[T], status: int, answer: dict[str, Any] | None) -> T:
    """The parsed answer of ``call``, or raise the error its ``status`` and body mean."""
    if status == 204:
        return call.parse({})
    if 200 <= status < 300:
        if answer is None:
            raise ServerUnavailable(
                f"the answer from {call.base} is not burnlink's API; is it a burnlink server?"
            )
        return call.parse(answer)
    raise error_for(status, answer, call.base)


# --- the calls --------------------------------------------------------------------------------


def policy(base: str, user: str | None = None) -> Call[Policy]:
    """The server's limits (``GET /policy``), read before sealing, as the page does.

    Reading raises ``ServerUnavailable`` for a PBKDF2 minimum outside envelope v1's range.
    """
    return Call("GET", base, "/policy", _policy, user=user)


def _policy(answer: dict[str, Any]) -> Policy:
    iterations = _get(answer, "pbkdf2_iterations", int)
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ServerUnavailable(
            f"the server asks for {iterations} PBKDF2 iterations; envelope v1 allows"
            f" {MIN_ITERATIONS} to {MAX_ITERATIONS}"
        )
    max_bytes = _get(answer, "max_bytes", int)
    if max_bytes < 1:
        raise _malformed("max_bytes")
    return Policy(max_bytes=max_bytes, pbkdf2_iterations=iterations)


def create(
    base: str,
    envelope: Envelope,
    access_token: bytes,
    passphrase_proof: bytes | None,
    *,
    ttl: int | None,
    max_views: int | None,
    rules: Mapping[str, Any] | None = None,
    user: str | None = None,
) -> Call[Created]:
    """Store a sealed envelope (``POST /secrets``) with optional access ``rules``."""
    body: dict[str, Any] = {
        "envelope": envelope.to_json(),
        "access_token": b64url_encode(access_token),
        **(rules or {}),
    }
    if passphrase_proof is not None:
        body["passphrase_proof"] = b64url_encode(passphrase_proof)
    if ttl is not None:
        body["ttl"] = ttl
    if max_views is not None:
        body["max_views"] = max_views
    return Call("POST", base, "/secrets", _created, user=user, body=body)


def _created(answer: dict[str, Any]) -> Created:
    return Created(
        id=_get(answer, "id", str),
        url=_get(answer, "url", str),
        manage_url=_get(answer, "manage_url", str),
        expires_at=_get(answer, "expires_at", str),
        max_views=_get(answer, "max_views", int),
    )


def info(base: str, secret_id: str, access_token: bytes) -> Call[SecretInfo]:
    """A secret's metadata (``GET /secrets/{id}``); takes no view."""
    return Call("GET", base, f"/secrets/{secret_id}", _info, token=access_token)


def _info(answer: dict[str, Any]) -> SecretInfo:
    gate = answer.get("passphrase")
    params = None
    if gate is not None:
        if not isinstance(gate, dict):
            raise _malformed("passphrase")
        params = _passphrase_params(gate)
    verification = answer.get("verification")
    hint = verification.get("hint") if isinstance(verification, dict) else None
    return SecretInfo(
        attempts_left=_get(answer, "attempts_left", int),
        passphrase=params,
        verification_hint=hint if isinstance(hint, str) else None,
    )


def consume(
    base: str,
    secret_id: str,
    access_token: bytes,
    passphrase_proof: bytes | None,
    otp: str | None = None,
    user: str | None = None,
) -> Call[Consumed]:
    """Take one view (``POST /secrets/{id}/consume``) and return its envelope; ``user`` is the
    recipient's API token, for a secret bound to recipients."""
    body: dict[str, Any] = {}
    if passphrase_proof is not None:
        body["passphrase_proof"] = b64url_encode(passphrase_proof)
    if otp is not None:
        body["otp"] = otp
    return Call(
        "POST",
        base,
        f"/secrets/{secret_id}/consume",
        _consumed,
        token=access_token,
        user=user,
        body=body,
    )


def _consumed(answer: dict[str, Any]) -> Consumed:
    return Consumed(
        envelope=_get(answer, "envelope", dict),
        views_left=_get(answer, "views_left", int),
    )


def receipt(base: str, secret_id: str, manage_token: bytes) -> Call[Receipt]:
    """The sender's receipt (``GET /secrets/{id}/receipt``)."""
    return Call("GET", base, f"/secrets/{secret_id}/receipt", _receipt, token=manage_token)


def _receipt(answer: dict[str, Any]) -> Receipt:
    events = _get(answer, "events", list)
    if not all(isinstance(event, dict) for event in events):
        raise _malformed("events")
    return Receipt(
        id=_get(answer, "id", str),
        state=_get(answer, "state", str),
        created_at=_get(answer, "created_at", str),
        expires_at=_get(answer, "expires_at", str),
        ended_at=_optional(answer, "ended_at", str),
        max_views=_get(answer, "max_views", int),
        views_used=_get(answer, "views_used", int),
        views_left=_get(answer, "views_left", int),
        events=tuple(
            Event(
                at=_get(event, "at", str),
                type=_get(event, "type", str),
                ip=_optional(event, "ip", str),
                user_agent=_optional(event, "user_agent", str),
                country=_optional(event, "country", str),
                agent=_agent_text(event.get("agent")),
                viewer=_viewer(event.get("viewer")),
            )
            for event in events
        ),
        statement=_optional(answer, "statement", dict),
    )


def burn(base: str, secret_id: str, manage_token: bytes) -> Call[None]:
    """Destroy the secret now (``DELETE /secrets/{id}``)."""
    return Call("DELETE", base, f"/secrets/{secret_id}", _nothing, token=manage_token)


def me(base: str, user: str | None) -> Call[Me]:
    """Who the API token acts for (``GET /me``)."""
    return Call("GET", base, "/me", _me, user=user)


def _me(answer: dict[str, Any]) -> Me:
    groups = _get(answer, "groups", list)
    return Me(
        subject=_get(answer, "subject", str),
        email=_optional(answer, "email", str),
        groups=tuple(str(group) for group in groups),
        via=_get(answer, "via", str),
        token_id=_optional(answer, "token_id", str),
    )


def revoke_token(base: str, user: str | None, token_id: str) -> Call[None]:
    """Revoke one of the user's API tokens (``DELETE /me/tokens/{id}``)."""
    return Call("DELETE", base, f"/me/tokens/{token_id}", _nothing, user=user)


# --- requests for a secret (docs/api.md § Requests for a secret) -------------------------------


def ask(
    base: str,
    public_key: bytes,
    description: str,
    *,
    ttl: int | None,
    answer_ttl: int | None,
    answer_views: int | None,
    recipients: tuple[str, ...] = (),
    user: str | None = None,
) -> Call[AskedRequest]:
    """Create a request for a secret (``POST /requests``) for the requester's public key."""
    body: dict[str, Any] = {"public_key": b64url_encode(public_key), "description": description}
    if recipients:
        body["recipients"] = list(recipients)
    for name, value in (("ttl", ttl), ("answer_ttl", answer_ttl), ("answer_views", answer_views)):
        if value is not None:
            body[name] = value
    return Call("POST", base, "/requests", _asked, user=user, body=body)


def _asked(answer: dict[str, Any]) -> AskedRequest:
    return AskedRequest(
        id=_get(answer, "id", str),
        url=_get(answer, "url", str),
        requester_url=_get(answer, "requester_url", str),
        link_token=_token(answer, "link_token"),
        requester_token=_token(answer, "requester_token"),
        expires_at=_get(answer, "expires_at", str),
    )


def view_request(
    base: str, request_id: str, link_token: bytes, user: str | None = None
) -> Call[RequestView]:
    """What the answerer sees (``GET /requests/{id}``); ``user`` for a request bound to
    recipients."""
    return Call("GET", base, f"/requests/{request_id}", _request_view, token=link_token, user=user)


def _request_view(answer: dict[str, Any]) -> RequestView:
    max_bytes = answer.get("max_bytes")
    return RequestView(
        public_key=answer.get("public_key"),
        state=_get(answer, "state", str),
        description=str(answer.get("description") or ""),
        max_bytes=max_bytes if type(max_bytes) is int else None,
    )


def submit_answer(
    base: str, request_id: str, link_token: bytes, sealed: SealedAnswer, user: str | None = None
) -> Call[Created]:
    """Store the sealed answer (``POST /requests/{id}/answer``), once."""
    return Call(
        "POST",
        base,
        f"/requests/{request_id}/answer",
        _answer_created,
        token=link_token,
        user=user,
        body={"answer": sealed.to_json()},
    )


def _answer_created(answer: dict[str, Any]) -> Created:
    return Created(
        id=_get(answer, "secret_id", str),
        url="",
        manage_url=_get(answer, "manage_url", str),
        expires_at=_get(answer, "expires_at", str),
        max_views=_get(answer, "max_views", int),
    )


def request_status(
    base: str, request_id: str, requester_token: bytes, *, wait: int, timeout: float
) -> Call[str]:
    """The request's state (``GET /requests/{id}/status?wait=``): a long poll of ``wait``
    seconds (at most 60), so the call's own ``timeout`` must outlast it."""
    return Call(
        "GET",
        base,
        f"/requests/{request_id}/status",
        _state,
        token=requester_token,
        params={"wait": wait},
        timeout=timeout + wait,
    )


def _state(answer: dict[str, Any]) -> str:
    return _get(answer, "state", str)


def open_request(
    base: str, request_id: str, requester_token: bytes
) -> Call[tuple[SealedAnswer, int]]:
    """One view of the sealed answer (``POST /requests/{id}/open``)."""
    return Call("POST", base, f"/requests/{request_id}/open", _opened, token=requester_token)


def _opened(answer: dict[str, Any]) -> tuple[SealedAnswer, int]:
    views = _get(answer, "views_left", int)
    try:
        return SealedAnswer.from_json(answer.get("answer")), views
    except EnvelopeError as exc:
        raise ServerUnavailable(f"the server returned a malformed answer ({exc})") from None


def _token(answer: dict[str, Any], name: str) -> bytes:
    try:
        return b64url_decode(_get(answer, name, str), field=name, length=TOKEN_BYTES)
    except InvalidInput:
        raise _malformed(name) from None


def _nothing(answer: dict[str, Any]) -> None:
    return None


# --- errors -----------------------------------------------------------------------------------


def error_for(status: int, answer: dict[str, Any] | None, base: str) -> BurnlinkError:
    """The error an answer with ``status`` and body ``answer`` from the server at ``base`` means
    (the table in this module's docstring); its ``code`` is the API's error code."""
    exc = _error(status, answer, base)
    error = answer.get("error") if answer else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and code.isascii() and len(code) <= 64:
        exc.code = code
    return exc


def _error(status: int, answer: dict[str, Any] | None, base: str) -> BurnlinkError:
    error = answer.get("error") if answer else None
    if not isinstance(error, dict):
        if status >= 500:
            return ServerUnavailable(f"the server at {base} failed (HTTP {status})")
        return ServerUnavailable(
            f"unexpected answer from {base} (HTTP {status}); is it a burnlink server?"
        )
    code = error.get("code")
    message = str(error.get("message") or "no reason given")
    attempts = error.get("attempts_left")
    attempts_left = attempts if type(attempts) is int else 0
    if status == 404:
        return SecretUnavailable()
    if status == 409 and code == "already_answered":
        return RequestAnswered()
    if status == 409 and code == "not_answered":
        return RequestNotAnswered()
    if status == 410 and code == "request_expired":
        return RequestExpired()
    if status == 401 and code == "invalid_token":
        return InvalidApiToken()
    if status == 401 and code in ("login_required", "fresh_login_required"):
        return LoginRequired(message)
    if status == 403 and code == "insufficient_scope":
        return InsufficientScope(str(error.get("scope") or "unknown"))
    if status == 403 and code == "create_not_allowed":
        return CreateNotAllowed(message)
    if status == 403 and code == "team_policy":
        teams = error.get("teams")
        named = [str(t)[:256] for t in teams[:100]] if isinstance(teams, list) else []
        return TeamPolicyRefused(str(error.get("field") or "policy")[:64], message, tuple(named))
    if status == 403 and code == "recipient_mismatch":
        return RecipientMismatch()
    if status == 403 and code == "mfa_required":
        return MfaRequired()
    if status == 401:
        hint = str(error.get("hint") or "the recipient")
        if code == "verification_failed":
            failed = VerificationFailed(hint, attempts_left)
            if not attempts_left:
                # The server says whether a new code may be asked for, or none is left
                # and the secret was destroyed.
                failed.args = (message,)
            return failed
        return VerificationRequired(hint, message)
    if status == 429:
        retry = error.get("retry_after")
        limited = RateLimited(retry if type(retry) is int else 60)
        if error.get("message"):
            limited.args = (message,)  # which limit and for how long, in words
        return limited
    if status == 403:
        if code == "ip_denied":
            return IpDenied()
        if code == "geo_denied":
            return GeoDenied()
        if code == "passphrase_required":
            return PassphraseRequired(attempts_left)
        if code == "wrong_passphrase":
            return WrongPassphrase(attempts_left)
        return AccessDenied(message, attempts_left)
    if status == 413:
        limit = error.get("limit")
        if type(limit) is int:
            return PayloadTooLarge(limit, field="secret" if "field" in error else "request")
        return InvalidInput("request", "is larger than the server accepts")
    if status in (400, 415, 422):
        name = str(error.get("field") or "request")
        return InvalidInput(name, message.removeprefix(f"{name}: "))
    if status == 503 and code in ("store_unavailable", "mail_unavailable"):
        return StorageUnavailable(message)
    return ServerUnavailable(f"the server at {base} failed (HTTP {status}): {message}")


def _agent_text(agent: object) -> str | None:
    if not isinstance(agent, dict):
        return None
    name, kind = agent.get("name"), agent.get("class")
    if not isinstance(name, str) or not isinstance(kind, str):
        return None
    return f"{name} ({kind})"


def _viewer(viewer: object) -> Viewer | None:
    if viewer is None:
        return None
    if not isinstance(viewer, dict):
        raise _malformed("viewer")
    return Viewer(email=_optional(viewer, "email", str), mfa=_get(viewer, "mfa", bool))


def _passphrase_params(gate: Mapping[str, Any]) -> PassphraseParams:
    kdf = _get(gate, "kdf", str)
    iterations = _get(gate, "iterations", int)
    if kdf != KDF_PBKDF2:
        raise ServerUnavailable(f"the server asks for an unknown passphrase KDF ({kdf[:40]!r})")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ServerUnavailable(
            f"the server asks for {iterations} PBKDF2 iterations; refusing more than "
            f"{MAX_ITERATIONS}"
        )
    try:
        salt = b64url_decode(_get(gate, "salt", str), field="salt", length=SALT_BYTES)
    except InvalidInput:
        raise _malformed("passphrase.salt") from None
    return PassphraseParams(kdf=kdf, iterations=iterations, salt=salt)


def _get(obj: Mapping[str, Any], name: str, kind: type[T]) -> T:
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _malformed(name)
    return value


def _optional(obj: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    return None if obj.get(name) is None else _get(obj, name, kind)


def _malformed(name: str) -> ServerUnavailable:
    return ServerUnavailable(
        f"the server's answer is malformed ({name!r}); is it a burnlink server?"
    )
