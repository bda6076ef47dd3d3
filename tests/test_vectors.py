"""Envelope v1 test vectors: recomputed from docs/crypto.md with bare primitives, and by
``burnlink.crypto``. The browser client checks the same file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from burnlink.crypto import Payload, derive_keys, encode_payload, open_envelope, seal
from burnlink.envelope import Envelope
from burnlink.ids import b64url_decode

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "envelope_v1.json").read_text(encoding="utf-8")
)["vectors"]


def _b64u(text: str) -> bytes:
    return b64url_decode(text, field="vector")


def _hkdf_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 with an empty salt, written out from the RFC."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def _ids(vector: dict[str, Any]) -> str:
    return str(vector["description"])


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_vector_matches_the_spec_computed_with_bare_primitives(vector: dict[str, Any]) -> None:
    key = _b64u(vector["link_key"])
    ikm = key
    if vector["passphrase"] is not None:
        secret = unicodedata.normalize("NFC", vector["passphrase"]).encode()
        stretched = hashlib.pbkdf2_hmac(
            "sha256", secret, _b64u(vector["salt"]), vector["iterations"], 32
        )
        ikm = key + stretched
        proof = _hkdf_sha256(ikm, b"burnlink v1 passphrase")
        assert proof == _b64u(vector["passphrase_proof"])
    assert _hkdf_sha256(key, b"burnlink v1 access") == _b64u(vector["access_token"])
    encryption_key = _hkdf_sha256(ikm, b"burnlink v1 encrypt")
    assert encryption_key == _b64u(vector["encryption_key"])

    envelope = vector["envelope"]
    plaintext = AESGCM(encryption_key).decrypt(
        _b64u(envelope["nonce"]), _b64u(envelope["ct"]), vector["aad"].encode()
    )

    assert plaintext == base64.b64decode(vector["plaintext_base64"])
    header, _, content = plaintext.partition(b"\n")
    assert content == base64.b64decode(vector["payload"]["content_base64"])
    assert json.loads(header)["type"] == vector["payload"]["type"]


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_vector_is_reproduced_by_burnlink_crypto(vector: dict[str, Any]) -> None:
    spec = vector["payload"]
    payload = Payload(
        base64.b64decode(spec["content_base64"]),
        is_file=spec["type"] == "file",
        name=spec["name"],
        mime=spec["mime"],
    )
    envelope = Envelope.from_json(vector["envelope"])
    keys = derive_keys(
        _b64u(vector["link_key"]),
        passphrase=vector["passphrase"],
        salt=envelope.salt,
        iterations=envelope.iterations,
    )

    assert open_envelope(envelope, keys) == payload
    assert encode_payload(payload) == base64.b64decode(vector["plaintext_base64"])
    assert envelope.aad().decode() == vector["aad"]
    resealed = seal(
        payload,
        _b64u(vector["link_key"]),
        passphrase=vector["passphrase"],
        iterations=envelope.iterations or 600_000,
        salt=envelope.salt or None,
        nonce=envelope.nonce,
    )
    assert resealed.envelope.to_json() == vector["envelope"]
