"""Proof of burn: Ed25519-signed statements that a secret no longer exists, and how it ended.

A ``BurnStatement`` names the secret by ``secret_hash`` (hex SHA-256 of its id, as in audit
events), says when it was created and ended and how (``viewed``, ``burned``, ``locked``,
``expired``), who issued the statement and with which key (``kid``, the RFC 7638 thumbprint of
the public key). The signed document is JSON::

    {"alg": "EdDSA", "kid": "…", "signature": "<base64url>", "statement": {…}}

where the signature is Ed25519 over the canonical JSON of ``statement`` (sorted keys, no
whitespace, UTF-8). Anyone can check it offline with the public keys from
``GET /.well-known/burnlink-keys`` (``public_keys_document``), a JWK set; docs/audit.md shows how.

The private key lives in a 0600 file made on first start (``load_or_create_signing_key``),
PEM (PKCS#8) when made here; a file holding the 32 raw bytes of a key is read too.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from burnlink.audit.chain import read_or_create_private_file
from burnlink.audit.events import canonical_json, format_time, parse_time, secret_hash
from burnlink.clock import to_millis
from burnlink.errors import ConfigError, InvalidInput
from burnlink.ids import b64url_encode, key_id
from burnlink.jwk import decode_unpadded, pick_key
from burnlink.models import EndReason
from burnlink.strict_json import DuplicateName, loads_strict

__all__ = [
    "STATEMENT_TYPE",
    "BurnStatement",
    "burn_statement",
    "load_or_create_signing_key",
    "sign_statement",
    "verify_statement",
]

STATEMENT_TYPE: Final = "burnlink.burn.v1"
"""The ``type`` of a statement; also keeps its signature from meaning anything else."""

_FIELDS: Final = frozenset({"type", "id_hash", "created_at", "ended_at", "how", "issuer", "kid"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnStatement:
    """What a proof of burn asserts. Build it with ``burn_statement``."""

    id_hash: str
    created_at: datetime
    ended_at: datetime
    how: EndReason
    issuer: str
    """Who says so: the service's public base URL."""
    kid: str
    """The id of the key that signs it."""

    def __post_init__(self) -> None:
        for name in ("created_at", "ended_at"):
            moment: datetime = getattr(self, name)
            if moment.tzinfo is None:
                raise ValueError(f"{name} must be an aware datetime")
            object.__setattr__(self, name, to_millis(moment.astimezone(UTC)))
        if len(self.id_hash) != 64 or self.id_hash.strip("0123456789abcdef"):
            raise ValueError("id_hash must be 64 lower-case hex digits")
        object.__setattr__(self, "how", EndReason(self.how))

    def to_dict(self) -> dict[str, str]:
        """The statement as JSON-ready strings, ``type`` included."""
        return {
            "type": STATEMENT_TYPE,
            "id_hash": self.id_hash,
            "created_at": format_time(self.created_at),
            "ended_at": format_time(self.ended_at),
            "how": self.how.value,
            "issuer": self.issuer,
            "kid": self.kid,
        }

    def canonical(self) -> bytes:
        """The bytes that are signed."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BurnStatement:
        """Parse ``to_dict`` output; ``InvalidInput`` if it is not a v1 statement."""
        if not isinstance(data, Mapping) or set(data) != _FIELDS:
            raise InvalidInput("statement", "has unexpected or missing fields")
        if data["type"] != STATEMENT_TYPE or not all(isinstance(v, str) for v in data.values()):
            raise InvalidInput("statement", f"is not a {STATEMENT_TYPE} statement")
        try:
            return cls(
                id_hash=data["id_hash"],
                created_at=parse_time(data["created_at"]),
                ended_at=parse_time(data["ended_at"]),
                how=EndReason(data["how"]),
                issuer=data["issuer"],
                kid=data["kid"],
            )
        except ValueError as exc:
            raise InvalidInput("statement", str(exc)) from None

    def about(self, secret_id: str) -> bool:
        """Whether this statement is about the secret with id ``secret_id``."""
        return self.id_hash == secret_hash(secret_id)


def burn_statement(
    secret_id: str,
    *,
    created_at: datetime,
    ended_at: datetime,
    how: EndReason,
    issuer: str,
    key: Ed25519PrivateKey,
) -> BurnStatement:
    """The statement that the secret ``secret_id`` ended at ``ended_at`` by ``how``."""
    return BurnStatement(
        id_hash=secret_hash(secret_id),
        created_at=created_at.astimezone(UTC),
        ended_at=ended_at.astimezone(UTC),
        how=EndReason(how),
        issuer=issuer,
        kid=key_id(key.public_key()),
    )


def sign_statement(statement: BurnStatement, key: Ed25519PrivateKey) -> str:
    """The signed JSON document (compact, one line). ``ValueError`` if ``kid`` is not ``key``'s."""
    kid = key_id(key.public_key())
    if statement.kid != kid:
        raise ValueError("the statement names another key than the one signing it")
    signature = key.sign(statement.canonical())
    document = {
        "alg": "EdDSA",
        "kid": kid,
        "signature": b64url_encode(signature),
        "statement": statement.to_dict(),
    }
    return canonical_json(document).decode("utf-8")


def verify_statement(
    statement_json: str | bytes, public_key: Ed25519PublicKey | Mapping[str, Any]
) -> BurnStatement:
    """Check a signed statement and return what it says.

    ``public_key`` is a key, one JWK, or a key set (``{"keys": […]}``, picked by ``kid``).
    Raises ``InvalidInput`` when the document is malformed, names another key, or the
    signature does not verify.
    """
    try:
        # Strict: with a member given twice, tools that keep the first would read another
        # statement than the one whose signature is checked here.
        document = loads_strict(statement_json)
    except DuplicateName as exc:
        raise InvalidInput("statement", exc.msg) from None
    except ValueError:
        raise InvalidInput("statement", "is not JSON") from None
    if not isinstance(document, dict) or set(document) != {"alg", "kid", "signature", "statement"}:
        raise InvalidInput("statement", "is not a signed burnlink statement")
    if document["alg"] != "EdDSA" or not isinstance(document["signature"], str):
        raise InvalidInput("statement", "uses an unsupported algorithm")
    statement = BurnStatement.from_dict(document["statement"])
    if document["kid"] != statement.kid:
        raise InvalidInput("statement", "names two different keys")
    key = pick_key(public_key, statement.kid)
    if key_id(key) != statement.kid:
        raise InvalidInput("statement", "is signed by another key")
    try:
        key.verify(decode_unpadded(document["signature"]), statement.canonical())
    except (InvalidSignature, ValueError, binascii.Error):
        raise InvalidInput("statement", "signature does not verify") from None
    return statement


def _parse_private_key(content: bytes, path: Path) -> Ed25519PrivateKey:
    if len(content) == 32:
        return Ed25519PrivateKey.from_private_bytes(content)
    try:
        key = serialization.load_pem_private_key(content, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: not an Ed25519 private key (PEM or 32 raw bytes)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: holds a key of another type than Ed25519")
    return key


def load_or_create_signing_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The Ed25519 key in ``path`` (PEM or 32 raw bytes), made as PEM (0600) if missing.

    Returns the key and whether it was created now (the caller may log its ``kid``).
    Raises ``ConfigError`` when the file cannot be read, written or parsed.
    """

    def make() -> bytes:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    content, created = read_or_create_private_file(path, make)
    return _parse_private_key(content, path), created
