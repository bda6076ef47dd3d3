"""The CLI's HTTP client: the SDK's ``ApiClient`` (``burnlink.sdk``) with the CLI's own
``User-Agent``, and the errors only ``burnlink login`` raises.

The SDK is the one boundary where httpx's exceptions, the server's error bodies and malformed
answers become ``burnlink.errors`` (plus ``ServerUnavailable``); see ``burnlink.sdk.protocol``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from burnlink import __version__
from burnlink.errors import BurnlinkError, KeyMismatch, RequestTimedOut
from burnlink.sdk import client as _sdk
from burnlink.sdk.models import (
    Consumed,
    Created,
    Event,
    Me,
    PassphraseParams,
    Policy,
    Receipt,
    SecretInfo,
    Viewer,
)
from burnlink.sdk.protocol import TIMEOUT, ServerUnavailable

if TYPE_CHECKING:
    import httpx

USER_AGENT = f"burnlink-cli/{__version__}"

__all__ = [
    "TIMEOUT",
    "USER_AGENT",
    "ApiClient",
    "Consumed",
    "Created",
    "Event",
    "KeyMismatch",
    "LoginDenied",
    "LoginExpired",
    "Me",
    "PassphraseParams",
    "Policy",
    "Receipt",
    "RequestTimedOut",
    "SecretInfo",
    "ServerUnavailable",
    "Viewer",
]


class LoginDenied(BurnlinkError):
    """``burnlink login``: the sign-in was denied at the identity provider, or refused by the
    server's policy (a second factor it requires, a token that did not verify)."""


class LoginExpired(BurnlinkError):
    """``burnlink login``: the code expired, or ``--timeout`` passed, before the sign-in was
    approved."""


class ApiClient(_sdk.ApiClient):
    """``burnlink.sdk.ApiClient`` sending ``burnlink-cli/VERSION`` as its ``User-Agent``."""

    def __init__(
        self,
        base: str,
        *,
        timeout: float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        api_token: str | None = None,
    ) -> None:
        super().__init__(
            base, timeout=timeout, transport=transport, api_token=api_token, user_agent=USER_AGENT
        )
