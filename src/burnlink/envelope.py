"""The v1 envelope: the only form in which a secret reaches the server (docs/crypto.md).

An envelope is a JSON object::

    {"v": 1, "alg": "A256GCM", "kdf": "pbkdf2-sha256", "iter": 600000,
     "salt": "<b64url 16 bytes>", "nonce": "<b64url 12 bytes>", "ct": "<b64url>"}

``kdf`` is ``"none"`` (and ``iter``/``salt`` absent) when there is no passphrase. Every header
field is bound into the AES-GCM additional data (``aad``), so none can be swapped. This module
parses and validates envelopes; it holds no keys and decrypts nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from burnlink.errors import EnvelopeError, InvalidInput, PayloadTooLarge
from burnlink.ids import b64url_decode, b64url_encode
from burnlink.redacted import Redacted
from burnlink.strict_json import dumps_compact

VERSION = 1
ALG = "A256GCM"
KDF_NONE = "none"
KDF_PBKDF2 = "pbkdf2-sha256"
MIN_ITERATIONS = 600_000
MAX_ITERATIONS = 10_000_000
SALT_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_HEADER_BYTES = 1024
"""The most bytes a payload's header line may take, its closing 0x0A included."""

# The size rule (docs/api.md § Limits), the one definition every client and the server use:
# BURNLINK_MAX_BYTES counts the content's bytes (a text's UTF-8 bytes, or a file's bytes), never
# the payload header, the encryption or the encoding. The CLI and the page read the number
# from GET /api/v1/policy and refuse more before sending anything.


def check_content_size(size: int, max_bytes: int, *, field: str = "secret") -> None:
    """Raise ``PayloadTooLarge`` when ``size`` content bytes exceed ``max_bytes``."""
    if size > max_bytes:
        raise PayloadTooLarge(max_bytes, field=field)


def max_framed_bytes(max_bytes: int) -> int:
    """The largest framed payload (``len(ct) - 16``) an end-to-end envelope may hold.

    The server cannot see the header inside the ciphertext, so it allows the content limit
    plus the largest header a writer may produce.
    """
    return max_bytes + MAX_HEADER_BYTES


_FIELDS_NONE = {"v", "alg", "kdf", "nonce", "ct"}
_FIELDS_PBKDF2 = _FIELDS_NONE | {"iter", "salt"}


class Envelope(Redacted, frozen=True):
    """A parsed, validated v1 envelope."""

    kdf: str
    iterations: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes
    """AES-256-GCM output: encrypted payload followed by the 16-byte tag."""

    _HIDDEN: ClassVar[tuple[str, ...]] = ("ciphertext",)

    @property
    def has_passphrase(self) -> bool:
        """Whether a passphrase is mixed into the keys."""
        return self.kdf != KDF_NONE

    def aad(self) -> bytes:
        """The additional authenticated data that binds the header to the ciphertext."""
        text = f"burnlink-envelope/v{VERSION};alg={ALG};kdf={self.kdf}"
        if self.has_passphrase:
            text += f";iter={self.iterations};salt={b64url_encode(self.salt)}"
        return text.encode()

    def to_json(self) -> dict[str, Any]:
        """The envelope as a JSON-ready dict, with keys in the documented order."""
        obj: dict[str, Any] = {"v": VERSION, "alg": ALG, "kdf": self.kdf}
        if self.has_passphrase:
            obj["iter"] = self.iterations
            obj["salt"] = b64url_encode(self.salt)
        obj["nonce"] = b64url_encode(self.nonce)
        obj["ct"] = b64url_encode(self.ciphertext)
        return obj

    def to_bytes(self) -> bytes:
        """Compact JSON encoding, the form the store keeps."""
        return dumps_compact(self.to_json())

    @classmethod
    def from_json(cls, obj: object, *, min_iterations: int = MIN_ITERATIONS) -> Envelope:
        """Validate a decoded JSON value; raise ``EnvelopeError`` naming what is wrong."""
        if not isinstance(obj, dict):
            raise EnvelopeError("must be a JSON object")
        if type(obj.get("v")) is not int or obj["v"] != VERSION:
            raise EnvelopeError(f"unsupported version; this server speaks v{VERSION}", "envelope.v")
        if obj.get("alg") != ALG:
            raise EnvelopeError(f"alg must be {ALG!r}", "envelope.alg")
        kdf = obj.get("kdf")
        if kdf not in (KDF_NONE, KDF_PBKDF2):
            raise EnvelopeError(f"kdf must be {KDF_NONE!r} or {KDF_PBKDF2!r}", "envelope.kdf")
        expected = _FIELDS_NONE if kdf == KDF_NONE else _FIELDS_PBKDF2
        if set(obj) != expected:
            raise EnvelopeError(f"fields must be exactly {sorted(expected)}")
        iterations, salt = 0, b""
        if kdf == KDF_PBKDF2:
            iterations = obj["iter"]
            if type(iterations) is not int or not min_iterations <= iterations <= MAX_ITERATIONS:
                raise EnvelopeError(
                    f"must be an integer from {min_iterations} to {MAX_ITERATIONS}", "envelope.iter"
                )
            salt = decode_field(obj["salt"], "envelope.salt", SALT_BYTES)
        nonce = decode_field(obj["nonce"], "envelope.nonce", NONCE_BYTES)
        ciphertext = decode_field(obj["ct"], "envelope.ct", None)
        if len(ciphertext) < TAG_BYTES:
            raise EnvelopeError("is shorter than the authentication tag", "envelope.ct")
        return cls(kdf=kdf, iterations=iterations, salt=salt, nonce=nonce, ciphertext=ciphertext)

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Parse the stored form (trusted: it was validated when created)."""
        try:
            obj = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise EnvelopeError("is not valid JSON") from exc
        return cls.from_json(obj, min_iterations=1)


def decode_field(value: object, field_name: str, length: int | None) -> bytes:
    """A base64url member of a JSON object as bytes (``length`` of them, unless ``None``);
    ``EnvelopeError`` naming ``field_name`` otherwise."""
    if not isinstance(value, str):
        raise EnvelopeError("must be a base64url string", field_name)
    try:
        return b64url_decode(value, field=field_name, length=length)
    except InvalidInput as exc:
        raise EnvelopeError(exc.reason, exc.field) from exc
