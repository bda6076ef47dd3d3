"""The login transaction: what a sign-in must remember between ``/auth/login`` and
``/auth/callback`` (``state``, ``nonce``, PKCE verifier, where to go next, ``max_age``).

It travels in a short-lived cookie, encrypted and authenticated with AES-256-GCM under a key
derived from the OIDC client secret (so every instance can read it and no one else can read
or forge it). It is single use: the callback clears it whatever the outcome, and the code it
goes with is single use at the provider. ``safe_next`` keeps ``next`` a path on this site.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from burnlink.errors import InvalidInput
from burnlink.ids import b64url_decode, b64url_encode

__all__ = ["LOGIN_SECONDS", "LoginTransaction", "SignInKeys", "safe_next"]

LOGIN_SECONDS: Final = 600
"""How long a started sign-in may take at the provider."""
MAX_NEXT: Final = 512
MAX_COOKIE: Final = 2048
_AAD: Final = b"burnlink login transaction v1"
_NONCE_BYTES: Final = 12
_SAFE_NEXT: Final = re.compile(r"^/(?![/\\])[\x21-\x7e]*$")


@dataclass(frozen=True, slots=True)
class SignInKeys:
    """The server's sign-in keys, derived from the OIDC client secret with HKDF-SHA256."""

    login: bytes
    """Encrypts the login transaction cookie."""
    csrf: bytes
    """Keys the CSRF token of a session (``sessions.csrf_token``)."""

    @staticmethod
    def derive(client_secret: str) -> SignInKeys:
        """Both keys from the client secret, each for its one purpose."""

        def one(purpose: bytes) -> bytes:
            return HKDF(hashes.SHA256(), 32, salt=b"burnlink sign-in", info=purpose).derive(
                client_secret.encode("utf-8")
            )

        return SignInKeys(login=one(b"login transaction"), csrf=one(b"csrf"))


def safe_next(value: str | None) -> str:
    """``value`` when it is a path on this site (``/``, ``/me?x=1``); else ``/``.

    Refused: absolute URLs, scheme-relative ``//host`` and ``/\\host`` (which browsers read
    as another host), anything with a backslash, space or control character, or too long.
    """
    if not value or len(value) > MAX_NEXT or "\\" in value:
        return "/"
    return value if _SAFE_NEXT.fullmatch(value) else "/"


@dataclass(frozen=True, slots=True)
class LoginTransaction:
    """One started sign-in; see the module docstring."""

    state: str
    nonce: str
    verifier: str
    next: str
    max_age: int | None
    expires: int
    """Unix time after which the transaction is refused."""

    def seal(self, key: bytes) -> str:
        """The cookie value: nonce and AES-GCM ciphertext, base64url."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = json.dumps(asdict(self), separators=(",", ":")).encode()
        return b64url_encode(nonce + AESGCM(key).encrypt(nonce, plain, _AAD))

    @staticmethod
    def open(value: str | None, key: bytes, *, now: datetime) -> LoginTransaction | None:
        """The transaction in ``value``; ``None`` when missing, forged, malformed or expired."""
        if not value or len(value) > MAX_COOKIE:
            return None
        try:
            raw = b64url_decode(value, field="login")
            plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD)
            data = json.loads(plain)
            txn = LoginTransaction(
                state=str(data["state"]),
                nonce=str(data["nonce"]),
                verifier=str(data["verifier"]),
                next=safe_next(str(data["next"])),
                max_age=None if data["max_age"] is None else int(data["max_age"]),
                expires=int(data["expires"]),
            )
        except (InvalidTag, InvalidInput, ValueError, TypeError, KeyError):
            return None
        return txn if now.timestamp() < txn.expires else None
