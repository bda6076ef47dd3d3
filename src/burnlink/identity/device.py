"""The OAuth 2.0 device authorization grant (RFC 8628), as burnlink's server plays it for the
CLI (docs/identity.md § CLI sign-in).

The server, not the CLI, talks to the provider: it asks the provider's
``device_authorization_endpoint`` for a user code with its own client credentials
(``start``), then polls the token endpoint with ``grant_type=...:device_code`` when the CLI
asks (``poll``). The client secret never leaves the server; the CLI only ever holds the
device code and, in the end, a burnlink API token.

Every failure is a ``SignInRefused`` whose ``reason`` is RFC 8628's error code where the
provider gave one (``authorization_pending``, ``slow_down``, ``access_denied``,
``expired_token``), else ``device_flow_unavailable``, ``provider_error`` or
``provider_unavailable``. Nothing here logs or keeps a device code or a token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from burnlink.config import https_or_loopback
from burnlink.errors import SignInRefused
from burnlink.identity.oidc import MAX_ID_TOKEN, OidcClient

__all__ = [
    "DEVICE_GRANT",
    "MAX_DEVICE_CODE",
    "PENDING",
    "DeviceAuthorization",
    "poll",
    "start",
    "valid_device_code",
]

DEVICE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
MAX_DEVICE_CODE: Final = 512
"""Longest device code passed on to the provider (theirs are 43 to ~100 characters)."""
MAX_USER_CODE: Final = 64
MAX_URI: Final = 2048
DEFAULT_INTERVAL: Final = 5
"""RFC 8628 §3.2: poll every 5 seconds when the provider names no interval."""
MAX_INTERVAL: Final = 60
MAX_EXPIRES: Final = 3600
PENDING: Final = frozenset({"authorization_pending", "slow_down"})
"""Reasons that mean "ask again later", not "refused"."""
_KNOWN: Final = frozenset({"authorization_pending", "slow_down", "access_denied", "expired_token"})
_MESSAGES: Final = {
    "authorization_pending": "Waiting for you to approve the sign-in at the identity provider.",
    "slow_down": "Polling too often: wait longer between polls.",
    "access_denied": "The sign-in was denied at the identity provider.",
    "expired_token": "The code expired before the sign-in was approved. Run `burnlink login`"
    " again.",
}


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """What the user is shown (``user_code`` at ``verification_uri``) and what the CLI polls
    with (``device_code``, every ``interval`` seconds, for ``expires_in`` seconds)."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    device_code: str = field(repr=False)
    interval: int
    expires_in: int


def valid_device_code(code: object) -> bool:
    """Whether ``code`` may be sent on to the provider: 1-512 printable ASCII characters."""
    return (
        isinstance(code, str)
        and 0 < len(code) <= MAX_DEVICE_CODE
        and code.isascii()
        and code.isprintable()
    )


def _unavailable() -> SignInRefused:
    return SignInRefused(
        "device_flow_unavailable",
        "The identity provider does not offer the device sign-in (RFC 8628) to this server:"
        " sign in at the web page, make an API token and use `burnlink login --paste`.",
    )


async def start(client: OidcClient) -> DeviceAuthorization:
    """Ask the provider for a device code and a user code for ``client``'s scopes."""
    meta = await client.metadata()
    if meta.device_authorization_endpoint is None:
        raise _unavailable()
    status, answer = await client.post_form(
        meta.device_authorization_endpoint, {"client_id": client.client_id, "scope": client.scopes}
    )
    if status != 200:
        error = _error_of(answer)
        if error in {"unauthorized_client", "invalid_grant", "invalid_client", "invalid_scope"}:
            # The provider knows the grant but not for this client: the operator must enable it.
            raise _unavailable()
        raise SignInRefused(
            "provider_error", f"The identity provider refused the device sign-in ({error})."
        )
    device_code = answer.get("device_code")
    user_code = answer.get("user_code")
    uri = answer.get("verification_uri")
    complete = answer.get("verification_uri_complete")
    if (
        not isinstance(device_code, str)
        or not valid_device_code(device_code)
        or not isinstance(user_code, str)
        or not 0 < len(user_code) <= MAX_USER_CODE
        or not user_code.isprintable()
        or not isinstance(uri, str)
        or not _uri(uri)
    ):
        raise SignInRefused(
            "provider_error", "The identity provider's device authorization is not usable."
        )
    return DeviceAuthorization(
        user_code=user_code,
        verification_uri=uri,
        verification_uri_complete=complete if _uri(complete) else None,
        device_code=device_code,
        interval=_bounded(answer.get("interval"), DEFAULT_INTERVAL, 1, MAX_INTERVAL),
        expires_in=_bounded(answer.get("expires_in"), 600, 1, MAX_EXPIRES),
    )


async def poll(client: OidcClient, device_code: str) -> str:
    """The ID token once the user approved ``device_code``; else ``SignInRefused`` with
    RFC 8628's reason (``authorization_pending``, ``slow_down``, ``access_denied``,
    ``expired_token``) or ``provider_error``."""
    meta = await client.metadata()
    if meta.device_authorization_endpoint is None:
        raise _unavailable()
    if not valid_device_code(device_code):
        raise SignInRefused("expired_token", _MESSAGES["expired_token"])
    status, answer = await client.post_form(
        meta.token_endpoint,
        {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client.client_id},
    )
    if status != 200:
        error = _error_of(answer)
        if error in _KNOWN:
            raise SignInRefused(error, _MESSAGES[error])
        if error == "invalid_grant":
            # An unknown or already used device code: to the user, as good as expired.
            raise SignInRefused("expired_token", _MESSAGES["expired_token"])
        raise SignInRefused(
            "provider_error", f"The identity provider refused the device sign-in ({error})."
        )
    id_token = answer.get("id_token")
    if not isinstance(id_token, str) or not 0 < len(id_token) <= MAX_ID_TOKEN:
        raise SignInRefused("id_token_invalid", "The identity provider sent no usable ID token.")
    return id_token


def _error_of(answer: dict[str, Any]) -> str:
    error = answer.get("error")
    if isinstance(error, str) and error.isidentifier() and len(error) <= 40:
        return error
    return "provider_error"


def _uri(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_URI
        and value.isprintable()
        and https_or_loopback(value.split("?", 1)[0])
    )


def _bounded(value: object, default: int, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        return default
    return min(max(value, low), high)
