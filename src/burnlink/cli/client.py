"""The CLI's HTTP client for API v1 (docs/api.md): one method per call, typed answers.

This is the one boundary where httpx's exceptions, the server's error bodies and malformed
answers become ``burnlink.errors`` (plus ``ServerUnavailable``): callers see nothing else.

    404                                    -> SecretUnavailable
    409 already_answered / not_answered    -> RequestAnswered / RequestNotAnswered
    410 request_expired                    -> RequestExpired
    403 passphrase_required / wrong_...    -> PassphraseRequired / WrongPassphrase (attempts_left)
    403 (other)                            -> AccessDenied
    413                                    -> PayloadTooLarge
    400, 415, 422                          -> InvalidInput, with the server's message
    401 invalid_token / login_required     -> InvalidApiToken / LoginRequired
    403 insufficient_scope / create_not_.. -> InsufficientScope / CreateNotAllowed
    403 team_policy                        -> TeamPolicyRefused (field, teams)
    403 recipient_mismatch / mfa_required  -> RecipientMismatch / MfaRequired
    503 store_unavailable                  -> StorageUnavailable
    other statuses, no answer, bad answers -> ServerUnavailable

httpx is imported when a client is made, so that ``burnlink --help`` does not pay for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from burnlink import __version__
from burnlink.envelope import KDF_PBKDF2, MAX_ITERATIONS, MIN_ITERATIONS, SALT_BYTES, Envelope
from burnlink.errors import (
    AccessDenied,
    BurnlinkError,
    CreateNotAllowed,
    GeoDenied,
    InsufficientScope,
    IntegrityError,
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
from burnlink.ids import b64url_decode, b64url_encode

if TYPE_CHECKING:
    import httpx

TIMEOUT = 10.0
USER_AGENT = f"burnlink-cli/{__version__}"

_T = TypeVar("_T")


class ServerUnavailable(BurnlinkError):
    """Raised when the server cannot be reached, fails, or answers outside API v1."""


class LoginDenied(BurnlinkError):
    """``burnlink login``: the sign-in was denied at the identity provider, or refused by the
    server's policy (a second factor it requires, a token that did not verify)."""


class LoginExpired(BurnlinkError):
    """``burnlink login``: the code expired, or ``--timeout`` passed, before the sign-in was
    approved."""


class RequestTimedOut(BurnlinkError):
    """``burnlink request --wait``: ``--timeout`` passed before the request was answered."""


class KeyMismatch(IntegrityError):
    """``burnlink answer``: the public key the server handed out is not the one the request
    link's fingerprint names (a server that swapped in its own); nothing was sent."""


@dataclass(frozen=True, slots=True)
class Created:
    """A created secret. ``url`` has no key; ``manage_url`` carries the manage token."""

    id: str
    url: str
    manage_url: str = field(repr=False)
    expires_at: str
    max_views: int


@dataclass(frozen=True, slots=True)
class Policy:
    """What a server's ``GET /policy`` says a new secret must respect."""

    max_bytes: int
    """The most content bytes a secret may have (``BURNLINK_MAX_BYTES``)."""
    pbkdf2_iterations: int
    """The fewest PBKDF2 iterations the server accepts for a passphrase."""


@dataclass(frozen=True, slots=True)
class PassphraseParams:
    """How to stretch the passphrase of a protected secret."""

    kdf: str
    iterations: int
    salt: bytes


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What the holder of a link learns before taking a view."""

    attempts_left: int
    passphrase: PassphraseParams | None
    verification_hint: str | None = None
    """Where a one-time code goes, masked (``b***@example.com``), when one is required."""


@dataclass(frozen=True, slots=True)
class Consumed:
    """One view: the envelope to open on this machine, and the views left after it."""

    envelope: dict[str, Any] = field(repr=False)
    views_left: int


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in recipient a receipt event names, as their identity provider vouched."""

    email: str | None
    mfa: bool
    """Whether their sign-in carried a second factor."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a receipt. ``ip`` and ``user_agent`` come from whoever made the request."""

    at: str
    type: str
    ip: str | None
    user_agent: str | None
    country: str | None = None
    agent: str | None = None
    """What kind of client it was, as ``Name (class)``: ``Slackbot (preview)``."""
    viewer: Viewer | None = None
    """The signed-in recipient it was made for (a secret bound to recipients); ``None`` when
    anonymous, or from a server that does not name viewers."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The sender's receipt: state, counts and events, never content."""

    id: str
    state: str
    created_at: str
    expires_at: str
    ended_at: str | None
    max_views: int
    views_used: int
    views_left: int
    events: tuple[Event, ...]
    statement: dict[str, Any] | None = None
    """The server's signed proof of destruction, once the secret has ended."""


@dataclass(frozen=True, slots=True)
class Me:
    """Who a token (or session) acts for, as ``GET /api/v1/me`` says."""

    subject: str
    email: str | None
    groups: tuple[str, ...]
    via: str
    token_id: str | None = None


class ApiClient:
    """A client of one burnlink server, given by its base URL. Use it as a context manager."""

    def __init__(
        self,
        base: str,
        *,
        timeout: float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        api_token: str | None = None,
    ) -> None:
        """``api_token`` (``blk_…``) is sent as the bearer of every call that carries no
        secret's own token: the signed-in user's creates are theirs."""
        import httpx

        self.base = base
        self.api_token = api_token
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=f"{base}/api/v1",
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def policy(self) -> Policy:
        """The server's limits (``GET /policy``), read before sealing, as the page does.

        Raises ``ServerUnavailable`` for a PBKDF2 minimum outside envelope v1's range.
        """
        answer = self._call("GET", "/policy")
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
        self,
        envelope: Envelope,
        access_token: bytes,
        passphrase_proof: bytes | None,
        *,
        ttl: int | None,
        max_views: int | None,
        rules: Mapping[str, Any] | None = None,
    ) -> Created:
        """Store a sealed envelope (``POST /secrets``) with optional access ``rules``
        (``allowed_ips``, ``allowed_countries``, ``denied_countries``, ``recipient_email``)."""
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
        answer = self._call("POST", "/secrets", body=body)
        return Created(
            id=_get(answer, "id", str),
            url=_get(answer, "url", str),
            manage_url=_get(answer, "manage_url", str),
            expires_at=_get(answer, "expires_at", str),
            max_views=_get(answer, "max_views", int),
        )

    def info(self, secret_id: str, access_token: bytes) -> SecretInfo:
        """A secret's metadata (``GET /secrets/{id}``); takes no view."""
        answer = self._call("GET", f"/secrets/{secret_id}", token=access_token)
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
        self,
        secret_id: str,
        access_token: bytes,
        passphrase_proof: bytes | None,
        otp: str | None = None,
    ) -> Consumed:
        """Take one view (``POST /secrets/{id}/consume``) and return its envelope."""
        body: dict[str, str] = {}
        if passphrase_proof is not None:
            body["passphrase_proof"] = b64url_encode(passphrase_proof)
        if otp is not None:
            body["otp"] = otp
        answer = self._call(
            "POST",
            f"/secrets/{secret_id}/consume",
            token=access_token,
            body=body,
            recipient=True,
        )
        return Consumed(
            envelope=_get(answer, "envelope", dict),
            views_left=_get(answer, "views_left", int),
        )

    def receipt(self, secret_id: str, manage_token: bytes) -> Receipt:
        """The sender's receipt (``GET /secrets/{id}/receipt``)."""
        answer = self._call("GET", f"/secrets/{secret_id}/receipt", token=manage_token)
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

    def burn(self, secret_id: str, manage_token: bytes) -> None:
        """Destroy the secret now (``DELETE /secrets/{id}``)."""
        self._call("DELETE", f"/secrets/{secret_id}", token=manage_token)

    def me(self) -> Me:
        """Who the API token acts for (``GET /me``); ``InvalidApiToken`` or ``LoginRequired``
        when it does not, ``InvalidInput`` when the server has no sign-in (no such route)."""
        try:
            answer = self._call("GET", "/me")
        except SecretUnavailable:  # the 404 of a server without sign-in, not a secret's
            raise InvalidInput("--server", "this server has no sign-in") from None
        groups = _get(answer, "groups", list)
        return Me(
            subject=_get(answer, "subject", str),
            email=_optional(answer, "email", str),
            groups=tuple(str(group) for group in groups),
            via=_get(answer, "via", str),
            token_id=_optional(answer, "token_id", str),
        )

    def revoke_token(self, token_id: str) -> None:
        """Revoke one of the user's API tokens (``DELETE /me/tokens/{id}``)."""
        self._call("DELETE", f"/me/tokens/{token_id}")

    def _call(
        self,
        method: str,
        path: str,
        *,
        token: bytes | None = None,
        body: dict[str, Any] | None = None,
        recipient: bool = False,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One call; with ``recipient``, ``api_token`` goes in ``X-Burnlink-Token`` beside the
        secret's ``token`` (a secret bound to recipients). ``timeout`` replaces the client's
        for this call (a long poll)."""
        import httpx

        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {b64url_encode(token)}"
            if self.api_token and recipient:
                # The secret's token takes Authorization: the user's goes beside it.
                headers["X-Burnlink-Token"] = self.api_token
        elif self.api_token:
            headers["Authorization"] = f"Bearer {self.api_token}"
        try:
            response = self._http.request(
                method,
                path,
                headers=headers,
                json=body,
                params=params,
                timeout=self.timeout if timeout is None else timeout,
            )
        except httpx.TimeoutException:
            seconds = self.timeout if timeout is None else timeout
            raise ServerUnavailable(
                f"the server at {self.base} did not answer within {seconds:g} seconds"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ServerUnavailable(f"cannot reach the server at {self.base} ({exc})") from None
        if response.status_code == 204:
            return {}
        answer = _json_object(response)
        if response.is_success:
            if answer is None:
                raise ServerUnavailable(
                    f"the answer from {self.base} is not burnlink's API; is it a burnlink server?"
                )
            return answer
        raise self._error(response.status_code, answer)

    def _error(self, status: int, answer: dict[str, Any] | None) -> BurnlinkError:
        error = answer.get("error") if answer else None
        if not isinstance(error, dict):
            if status >= 500:
                return ServerUnavailable(f"the server at {self.base} failed (HTTP {status})")
            return ServerUnavailable(
                f"unexpected answer from {self.base} (HTTP {status}); is it a burnlink server?"
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
            return TeamPolicyRefused(
                str(error.get("field") or "policy")[:64], message, tuple(named)
            )
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
        return ServerUnavailable(f"the server at {self.base} failed (HTTP {status}): {message}")


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


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


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


def _get(obj: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _malformed(name)
    return value


def _optional(obj: Mapping[str, Any], name: str, kind: type[_T]) -> _T | None:
    return None if obj.get(name) is None else _get(obj, name, kind)


def _malformed(name: str) -> ServerUnavailable:
    return ServerUnavailable(
        f"the server's answer is malformed ({name!r}); is it a burnlink server?"
    )
