"""Session ids, their cookies, and the CSRF token tied to each (docs/identity.md).

A session id is 32 random bytes in base64url, held only in the user's cookie; the store keeps
its digest (``ids.token_digest``). The cookie is ``__Host-burnlink_session`` (Secure, HttpOnly,
SameSite=Lax, Path=/), or ``burnlink_session`` without Secure when the server is reached over
plain http on a loopback address (a developer's machine). The CSRF token is an HMAC of the
session id under the server's CSRF key: the page learns it from ``GET /api/v1/me`` and sends
it back as ``X-Burnlink-CSRF``; a page on another site can read neither.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

from burnlink.ids import b64url_encode, token_digest

__all__ = [
    "CSRF_HEADER",
    "CookieNames",
    "cookie_names",
    "csrf_matches",
    "csrf_token",
    "new_session_id",
    "parse_session_id",
    "session_digest",
]

CSRF_HEADER: Final = "x-burnlink-csrf"
SESSION_BYTES: Final = 32
_SESSION_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
_CSRF_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")


class CookieNames:
    """The names (and the Secure flag) of the sign-in cookies for one kind of origin."""

    __slots__ = ("login", "secure", "session")

    def __init__(self, *, secure: bool) -> None:
        prefix = "__Host-" if secure else ""
        self.secure = secure
        self.session = f"{prefix}burnlink_session"
        self.login = f"{prefix}burnlink_login"


_SECURE: Final = CookieNames(secure=True)
_PLAIN: Final = CookieNames(secure=False)


def cookie_names(*, secure: bool) -> CookieNames:
    """``__Host-`` cookies for https, plain ones for http on loopback."""
    return _SECURE if secure else _PLAIN


def new_session_id() -> str:
    """A fresh session id (256 random bits, base64url)."""
    return b64url_encode(secrets.token_bytes(SESSION_BYTES))


def parse_session_id(value: str | None) -> str | None:
    """``value`` when it has the form of a session id; else ``None`` (no store call)."""
    return value if value is not None and _SESSION_RE.fullmatch(value) else None


def session_digest(session_id: str) -> bytes:
    """What the store keeps of a session id."""
    return token_digest(session_id.encode())


def csrf_token(key: bytes, session_id: str) -> str:
    """The session's CSRF token: HMAC-SHA256 of its id under ``key``."""
    return b64url_encode(hmac.new(key, b"csrf\x00" + session_id.encode(), hashlib.sha256).digest())


def csrf_matches(key: bytes, session_id: str, given: str | None) -> bool:
    """Whether ``given`` is the session's CSRF token, compared in constant time."""
    if given is None or not _CSRF_RE.fullmatch(given):
        return False
    return hmac.compare_digest(csrf_token(key, session_id).encode(), given.encode())
