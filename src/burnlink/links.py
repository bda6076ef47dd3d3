"""Server addresses, secret links and manage links: parsing what a user gives, formatting links.

A secret link is ``{base}/s/{id}#{key}`` and a manage link ``{base}/m/{id}#{token}``. ``base`` is
the server's scheme, host and optional path prefix (``https://x.example/burn``); the fragment,
which HTTP clients never send, holds the 32-byte link key or manage token as unpadded base64url.
Errors say what is wrong with a link but never repeat it: it may hold a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from burnlink.errors import InvalidInput
from burnlink.ids import TOKEN_BYTES, b64url_decode, b64url_encode, is_secret_id
from burnlink.request_crypto import FINGERPRINT_BYTES

SECRET = "s"  # noqa: S105 - a path segment, not a password
MANAGE = "m"

_PATH_RE = re.compile(r"(?P<prefix>(?:/[^/]+)*?)/(?P<kind>[sm])/(?P<id>[^/]+)/?")
_SHAPES = {SECRET: "https://HOST/s/ID#KEY", MANAGE: "https://HOST/m/ID#TOKEN"}


@dataclass(frozen=True, slots=True)
class Link:
    """A parsed link: the server base, the secret id, and the key or token of its fragment."""

    base: str
    secret_id: str
    token: bytes = field(repr=False)


def parse_server(url: str, name: str = "--server") -> str:
    """Check a server address (``--server``; errors name it ``name``) and return it without a
    trailing slash."""
    parts = split_link(url, name)
    if parts.query or parts.fragment:
        raise InvalidInput(name, "must not have a query or a fragment")
    return link_base(parts, parts.path.rstrip("/"))


def parse_secret_link(text: str, key: str | None = None) -> Link:
    """Parse ``{base}/s/{id}#{key}``; ``key`` supplies the key of a link sent without it."""
    return _parse(text, SECRET, key)


def parse_manage_link(text: str) -> Link:
    """Parse ``{base}/m/{id}#{manage_token}``."""
    return _parse(text, MANAGE, None)


def secret_link(url: str, link_key: bytes) -> str:
    """The full secret link: the server's ``url`` (which has no fragment) and ``#`` + the key."""
    return f"{url.partition('#')[0]}#{b64url_encode(link_key)}"


def _parse(text: str, kind: str, key: str | None) -> Link:
    name = "link" if kind == SECRET else "manage link"
    parts = split_link(text, name)
    match = _PATH_RE.fullmatch(parts.path)
    if parts.query or match is None:
        raise InvalidInput(name, f"must look like {_SHAPES[kind]}")
    if match["kind"] != kind:
        other = "a manage link (/m/)" if kind == SECRET else "a secret link (/s/)"
        raise InvalidInput(name, f"is {other}; this command needs {_SHAPES[kind]}")
    if not is_secret_id(match["id"]):
        raise InvalidInput(name, "has a malformed secret id")
    fragment = parts.fragment.strip()
    if key is not None and fragment and key.strip() != fragment:
        raise InvalidInput("--key", "differs from the key in the link")
    encoded = key.strip() if key is not None else fragment
    if not encoded:
        hint = "; pass the key with --key" if kind == SECRET else ""
        raise InvalidInput(name, f"has no key after '#'{hint}")
    try:
        token = b64url_decode(encoded, field=name, length=TOKEN_BYTES)
    except InvalidInput:
        what = "key" if kind == SECRET else "token"
        raise InvalidInput(
            name, f"has a malformed {what} (expected 43 base64url characters)"
        ) from None
    return Link(link_base(parts, match["prefix"]), match["id"], token)


def split_link(text: str, name: str) -> SplitResult:
    """``text`` as an http(s) URL with a host and no credentials; ``InvalidInput`` naming
    ``name`` otherwise (never repeating the text: a link holds a token)."""
    try:
        parts = urlsplit(text.strip())
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        raise InvalidInput(name, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(name, "must start with http:// or https:// and name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(name, "must not contain a user name or password")
    return parts


def link_base(parts: SplitResult, prefix: str) -> str:
    """The server's base URL: scheme, host and port of ``parts``, then ``prefix``."""
    return f"{parts.scheme}://{parts.netloc}{prefix}"


_REQUEST_PATH_RE = re.compile(r"(?P<prefix>(?:/[^/]+)*?)/r/(?P<id>[^/]+)/?")
_REQUEST_SHAPE = "https://HOST/r/ID#FINGERPRINT.TOKEN"


@dataclass(frozen=True, slots=True)
class RequestLink:
    """A parsed request link: server base, request id, and the fragment's two parts."""

    base: str
    request_id: str
    fingerprint: bytes
    link_token: bytes = field(repr=False)


def parse_request_link(text: str) -> RequestLink:
    """Parse ``{base}/r/{id}#{fingerprint}.{link_token}``; ``InvalidInput`` naming what is
    wrong, never repeating the link (it holds a token)."""
    name = "link"
    parts = split_link(text, name)
    match = _REQUEST_PATH_RE.fullmatch(parts.path)
    if parts.query or match is None:
        raise InvalidInput(name, f"must be a request link, {_REQUEST_SHAPE}")
    if not is_secret_id(match["id"]):
        raise InvalidInput(name, "has a malformed request id")
    fingerprint, dot, token = parts.fragment.strip().partition(".")
    if not dot:
        raise InvalidInput(name, f"has no fingerprint and token after '#' ({_REQUEST_SHAPE})")
    try:
        digest = b64url_decode(fingerprint, field=name, length=FINGERPRINT_BYTES)
        secret = b64url_decode(token, field=name, length=TOKEN_BYTES)
    except InvalidInput:
        raise InvalidInput(name, "has a malformed fingerprint or token") from None
    return RequestLink(link_base(parts, match["prefix"]), match["id"], digest, secret)
