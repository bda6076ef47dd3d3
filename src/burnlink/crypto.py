"""Client-side cryptography of envelope v1: key derivation, sealing and opening.

Used by the CLI, the tests, and the server only in its curl convenience mode (where it makes
the link key itself and forgets it after answering). The normative text is docs/crypto.md::

    P                = PBKDF2-HMAC-SHA256(NFC(passphrase), salt, iter, 32)   (passphrase only)
    ikm              = K            without a passphrase
                     = K || P       with one
    access_token     = HKDF-SHA256(K,   salt="", info="burnlink v1 access",     32)
    passphrase_proof = HKDF-SHA256(ikm, salt="", info="burnlink v1 passphrase", 32)
    encryption_key   = HKDF-SHA256(ikm, salt="", info="burnlink v1 encrypt",    32)
    ct               = AES-256-GCM(encryption_key, nonce, payload, aad=envelope.aad())
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import unicodedata
from typing import ClassVar

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from burnlink.envelope import (
    KDF_NONE,
    KDF_PBKDF2,
    MAX_HEADER_BYTES,
    MIN_ITERATIONS,
    NONCE_BYTES,
    SALT_BYTES,
    Envelope,
)
from burnlink.errors import EnvelopeError, InvalidInput
from burnlink.redacted import Redacted
from burnlink.strict_json import dumps_compact

KEY_BYTES = 32
# Lengths in Unicode code points (Python's len, JavaScript's [...text].length), not bytes or
# UTF-16 units (docs/crypto.md § Payload framing).
MAX_NAME_CHARS = 255
MAX_MIME_CHARS = 255

_INFO_ACCESS = b"burnlink v1 access"
_INFO_PASSPHRASE = b"burnlink v1 passphrase"
_INFO_ENCRYPT = b"burnlink v1 encrypt"


class Payload(Redacted, frozen=True):
    """What an envelope carries: text, or a file with its name and media type."""

    content: bytes
    is_file: bool = False
    name: str | None = None
    mime: str | None = None

    _HIDDEN: ClassVar[tuple[str, ...]] = ("content",)

    def text(self) -> str:
        """The content as text; raises ``EnvelopeError`` if it is not UTF-8."""
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError("text payload is not UTF-8") from exc

    def text_or_none(self) -> str | None:
        """The content as text, or ``None`` for a file or for text that is not UTF-8."""
        if self.is_file:
            return None
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def answer(self) -> dict[str, object]:
        """The JSON answer of a reveal (the API's curl mode, ``burnlink get --json``):
        ``{"secret": text, "file": null}``, or ``{"secret": null, "file": {name, mime,
        content_base64}}`` for a file or for text that is not UTF-8 (shown, never mangled)."""
        text = self.text_or_none()
        if text is not None:
            return {"secret": text, "file": None}
        content = base64.b64encode(self.content).decode("ascii")
        return {
            "secret": None,
            "file": {"name": self.name, "mime": self.mime, "content_base64": content},
        }


class LinkKeys(Redacted, frozen=True):
    """The keys derived from a link key (and passphrase)."""

    access_token: bytes
    encryption_key: bytes
    passphrase_proof: bytes | None = None

    _HIDDEN: ClassVar[tuple[str, ...]] = ("access_token", "encryption_key", "passphrase_proof")


class Sealed(msgspec.Struct, frozen=True):
    """A freshly sealed secret: the envelope for the server, the keys for the link."""

    envelope: Envelope
    keys: LinkKeys


def _hkdf(ikm: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(ikm)


def access_token(link_key: bytes) -> bytes:
    """The token that proves possession of the link; the server keeps only its digest."""
    return _hkdf(link_key, _INFO_ACCESS)


def stretch_passphrase(passphrase: str, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256 of the NFC-normalised passphrase: slow on purpose."""
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, KEY_BYTES)


def derive_keys(
    link_key: bytes,
    *,
    passphrase: str | None = None,
    salt: bytes = b"",
    iterations: int = 0,
    access: bytes | None = None,
) -> LinkKeys:
    """Every key of envelope v1 from the link key and, when set, the passphrase; ``access``
    is ``access_token(link_key)`` when the caller has already derived it."""
    if len(link_key) != KEY_BYTES:
        raise EnvelopeError(f"must be {KEY_BYTES} bytes", "key")
    if access is None:
        access = access_token(link_key)
    if passphrase is None:
        return LinkKeys(access, _hkdf(link_key, _INFO_ENCRYPT))
    ikm = link_key + stretch_passphrase(passphrase, salt, iterations)
    return LinkKeys(
        access_token=access,
        encryption_key=_hkdf(ikm, _INFO_ENCRYPT),
        passphrase_proof=_hkdf(ikm, _INFO_PASSPHRASE),
    )


def new_link_key() -> bytes:
    """A fresh 256-bit link key."""
    return os.urandom(KEY_BYTES)


def encode_payload(payload: Payload) -> bytes:
    """Frame a payload: one line of compact JSON header, a newline, then the raw content.

    Raises ``InvalidInput`` for a name or type outside 1 to 255 code points, or a header line
    longer than ``MAX_HEADER_BYTES``.
    """
    if payload.name is not None and not 1 <= len(payload.name) <= MAX_NAME_CHARS:
        raise InvalidInput("name", f"must be 1 to {MAX_NAME_CHARS} characters")
    if payload.mime is not None and not 1 <= len(payload.mime) <= MAX_MIME_CHARS:
        raise InvalidInput("mime", f"must be 1 to {MAX_MIME_CHARS} characters")
    header: dict[str, str] = {"type": "file" if payload.is_file else "text"}
    if payload.name is not None:
        header["name"] = payload.name
    if payload.mime is not None:
        header["mime"] = payload.mime
    line = dumps_compact(header, ascii=False) + b"\n"
    if len(line) > MAX_HEADER_BYTES:
        raise InvalidInput(
            "name", f"with the type, takes more than the payload header's {MAX_HEADER_BYTES} bytes"
        )
    return line + payload.content


def decode_payload(data: bytes) -> Payload:
    """Undo ``encode_payload``; raise ``EnvelopeError`` if the framing is wrong."""
    head, newline, content = data.partition(b"\n")
    try:
        header = json.loads(head) if newline else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("type") not in ("text", "file"):
        raise EnvelopeError("payload header is malformed")
    if header["type"] == "text":
        return Payload(content)
    name, mime = header.get("name"), header.get("mime")
    if not isinstance(name, str | None) or not isinstance(mime, str | None):
        raise EnvelopeError("payload header is malformed")
    return Payload(content, is_file=True, name=name, mime=mime)


def seal(
    payload: Payload,
    link_key: bytes,
    *,
    passphrase: str | None = None,
    iterations: int = MIN_ITERATIONS,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> Sealed:
    """Encrypt ``payload`` into a v1 envelope. ``salt`` and ``nonce`` are fixed only by tests."""
    salt = (salt or os.urandom(SALT_BYTES)) if passphrase is not None else b""
    keys = derive_keys(link_key, passphrase=passphrase, salt=salt, iterations=iterations)
    header = Envelope(
        kdf=KDF_NONE if passphrase is None else KDF_PBKDF2,
        iterations=0 if passphrase is None else iterations,
        salt=salt,
        nonce=nonce or os.urandom(NONCE_BYTES),
        ciphertext=b"",
    )
    ciphertext = AESGCM(keys.encryption_key).encrypt(
        header.nonce, encode_payload(payload), header.aad()
    )
    envelope = Envelope(header.kdf, header.iterations, header.salt, header.nonce, ciphertext)
    return Sealed(envelope, keys)


def open_envelope(envelope: Envelope, keys: LinkKeys) -> Payload:
    """Decrypt with keys from ``derive_keys``; raise ``EnvelopeError`` if it does not open."""
    try:
        plain = AESGCM(keys.encryption_key).decrypt(
            envelope.nonce, envelope.ciphertext, envelope.aad()
        )
    except InvalidTag as exc:
        raise EnvelopeError("does not decrypt with this key and passphrase") from exc
    return decode_payload(plain)
