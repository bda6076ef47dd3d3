"""Random ids and tokens, their text form, and how tokens are kept at rest.

Ids are public (they appear in URLs and logs) and prove nothing. Tokens (link keys, access
tokens, manage tokens, passphrase proofs) are 256-bit secrets: only their SHA-256 digest is
stored, and digests are compared in constant time. The server's own keys are named by a public
``key_id``.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import secrets
from typing import TYPE_CHECKING, Final

from burnlink.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ID_BYTES = 16
TOKEN_BYTES = 32
SECRET_ID_PATTERN = r"^[A-Za-z0-9_-]{22}$"  # noqa: S105 - a regex, not a password
_SECRET_ID_RE = re.compile(SECRET_ID_PATTERN)
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")
_AUDIT_KEY_ID_LABEL: Final = b"burnlink audit key id v1"


def new_secret_id() -> str:
    """A fresh public id: 128 random bits, base64url without padding (22 characters)."""
    return secrets.token_urlsafe(ID_BYTES)


def new_token() -> bytes:
    """A fresh 256-bit token from the operating system's CSPRNG."""
    return secrets.token_bytes(TOKEN_BYTES)  # pragma: no mutate - None also means 32 bytes


def is_secret_id(value: str) -> bool:
    """Whether ``value`` has the shape of a secret id (anything else cannot exist)."""
    return _SECRET_ID_RE.fullmatch(value) is not None


# base64's urlsafe functions, without their layers of Python calls (a request decodes and
# encodes a few of these).
_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as used everywhere in links, envelopes and the API."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def b64url_decode(text: str, *, field: str, length: int | None = None) -> bytes:
    """Strictly decode unpadded base64url; raise ``InvalidInput(field)`` on any deviation."""
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidInput(field, "is not unpadded base64url")
    try:
        # Surplus padding is ignored and two "=" complete any length the check above admits.
        raw = text.encode("ascii")  # pragma: no mutate - "ASCII" names the same codec
        data = binascii.a2b_base64(raw.translate(_FROM_URLSAFE) + b"==")
    except (
        binascii.Error,
        ValueError,
    ) as exc:  # pragma: no cover - the regex admits only valid text
        raise InvalidInput(field, "is not unpadded base64url") from exc  # pragma: no mutate
    if b64url_encode(data) != text:
        raise InvalidInput(field, "is not canonical base64url")
    if length is not None and len(data) != length:
        raise InvalidInput(field, f"must encode exactly {length} bytes")
    return data


def token_digest(token: bytes) -> bytes:
    """The at-rest form of a token: its SHA-256 digest."""
    return hashlib.sha256(token).digest()


def digest_matches(token: bytes, stored_digest: bytes) -> bool:
    """Whether ``token`` hashes to ``stored_digest``, compared in constant time."""
    return hmac.compare_digest(token_digest(token), stored_digest)


def digests_equal(left: bytes, right: bytes) -> bool:
    """Constant-time equality of two digests."""
    return hmac.compare_digest(left, right)


def key_id(key: bytes | Ed25519PublicKey) -> str:
    """The public id of one of the server's keys, as logs, checkpoints and statements print it.

    The audit chain key (``bytes``): the first 16 hex digits of
    ``HMAC-SHA256(key, "burnlink audit key id v1")``, to notice a key that changed. A signing
    key's public half: its RFC 7638 JWK thumbprint (SHA-256 of the JWK's required members,
    base64url), the ``kid`` of burn statements and checkpoints.
    """
    if isinstance(key, bytes):
        return hmac.new(key, _AUDIT_KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]
    # RFC 7638: the required members in lexicographic order, no white space.
    x = b64url_encode(key.public_bytes_raw())
    members = f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'
    digest = hashlib.sha256(members.encode("ascii")).digest()  # pragma: no mutate - "ASCII" too
    return b64url_encode(digest)
