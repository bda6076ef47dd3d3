"""Ed25519 public keys as JSON Web Keys (RFC 8037 ``OKP``/``Ed25519``) and JWK sets, as
``GET /.well-known/burnlink-keys`` serves them and as signed burn statements and audit
checkpoints name them by ``kid`` (``burnlink.ids.key_id``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from burnlink.errors import InvalidInput
from burnlink.ids import b64url_encode, key_id

__all__ = [
    "decode_unpadded",
    "pick_key",
    "public_jwk",
    "public_key_from_jwk",
    "public_keys_document",
]


def decode_unpadded(text: str) -> bytes:
    """Unpadded base64url, as JWKs and signatures are written (``binascii.Error`` if not)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 8037 ``OKP``/``Ed25519``) with ``kid``, ``use`` and ``alg``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(raw),
        "kid": key_id(public_key),
        "use": "sig",
        "alg": "EdDSA",
    }


def public_keys_document(*keys: Ed25519PublicKey) -> dict[str, list[dict[str, str]]]:
    """The body of ``GET /.well-known/burnlink-keys``: ``{"keys": [JWK, …]}``.

    Pass the current key first, then any retired keys whose statements should still verify.
    """
    return {"keys": [public_jwk(key) for key in keys]}


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """The key of an Ed25519 JWK; ``InvalidInput`` if it is not one."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise InvalidInput("key", "is not an Ed25519 JWK")
    try:
        return Ed25519PublicKey.from_public_bytes(decode_unpadded(jwk["x"]))
    except (ValueError, binascii.Error):
        raise InvalidInput("key", "is not an Ed25519 JWK") from None


def pick_key(keys: Ed25519PublicKey | Mapping[str, Any], kid: str) -> Ed25519PublicKey:
    """The key named ``kid``: ``keys`` itself, one JWK, or the match in a JWK set
    (``InvalidInput`` when the set has none)."""
    if isinstance(keys, Ed25519PublicKey):
        return keys
    if "keys" in keys:
        found = [k for k in keys["keys"] if isinstance(k, Mapping) and k.get("kid") == kid]
        if not found:
            raise InvalidInput("statement", "is signed by a key that is not in the key set")
        return public_key_from_jwk(found[0])
    return public_key_from_jwk(keys)
