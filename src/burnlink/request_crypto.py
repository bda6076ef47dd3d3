"""Sealing an answer to a requester's public key: the cryptography of requests (issue 16 §2).

The requester's client makes a P-256 key pair and keeps the private half in its own link; the
answerer's client seals the secret to the public half. The normative text is docs/crypto.md §
Sealing to a requester's public key::

    R    = requester public key, uncompressed SEC1 (65 bytes)     F = SHA-256(R)
    e, E = the answerer's fresh key pair for this one answer
    Z    = ECDH(e, R) = ECDH(d, E)                                 (32 bytes, X coordinate)
    key  = HKDF-SHA256(Z, salt="", info="burnlink v1 sealed answer" || R || E, 32)
    aad  = "burnlink-sealed-answer/v1;alg=A256GCM;crv=P-256;rid={rid};rpk={R};epk={E}"
    ct   = AES-256-GCM(key, nonce, framed payload, aad)

Parsing and validating a sealed answer needs no key, so the server may use ``SealedAnswer``
and ``parse_public_key``; sealing and opening are for clients and tests.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from burnlink.crypto import Payload, decode_payload, encode_payload
from burnlink.envelope import NONCE_BYTES, TAG_BYTES, decode_field
from burnlink.errors import EnvelopeError, InvalidInput
from burnlink.ids import b64url_encode
from burnlink.strict_json import dumps_compact, loads_strict

__all__ = [
    "ALG",
    "CRV",
    "VERSION",
    "KeyPair",
    "SealedAnswer",
    "answer_aad",
    "answer_key",
    "check_fingerprint",
    "check_request_id",
    "fingerprint",
    "open_answer",
    "parse_public_key",
    "seal_answer",
    "validate_public_key",
]

VERSION = 1
ALG = "A256GCM"
CRV = "P-256"
PUBLIC_KEY_BYTES = 65
SCALAR_BYTES = 32
KEY_PAIR_BYTES = SCALAR_BYTES + PUBLIC_KEY_BYTES
FINGERPRINT_BYTES = 32
KEY_BYTES = 32
INFO_LABEL = b"burnlink v1 sealed answer"
AAD_PREFIX = f"burnlink-sealed-answer/v{VERSION};alg={ALG};crv={CRV}"

# NIST P-256 (SEC 2 §2.4.2): the field prime, the curve's b (a = -3) and the group order.
_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_CURVE = ec.SECP256R1()
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_FIELDS = {"v", "alg", "crv", "rpk", "epk", "nonce", "ct"}


def validate_public_key(point: bytes, field_name: str) -> None:
    """Raise ``EnvelopeError(field_name)`` unless ``point`` is an uncompressed P-256 point
    with reduced coordinates on the curve (so neither the identity nor a compressed form)."""
    if len(point) != PUBLIC_KEY_BYTES or point[0] != 0x04:
        raise EnvelopeError(
            f"must be an uncompressed P-256 point of {PUBLIC_KEY_BYTES} bytes", field_name
        )
    x = int.from_bytes(point[1:33], "big")
    y = int.from_bytes(point[33:], "big")
    if x >= _P or y >= _P or (y * y - (x * x * x - 3 * x + _B)) % _P:
        raise EnvelopeError("is not a point on P-256", field_name)


def parse_public_key(text: object, field_name: str) -> bytes:
    """Decode and validate a public key in its text form (base64url of 65 bytes)."""
    point = decode_field(text, field_name, PUBLIC_KEY_BYTES)
    validate_public_key(point, field_name)
    return point


def fingerprint(public: bytes) -> bytes:
    """SHA-256 of the 65-byte public key: what the request link's fragment carries."""
    return hashlib.sha256(public).digest()


def check_fingerprint(public: bytes, expected: bytes) -> None:
    """Raise ``EnvelopeError`` unless ``public`` hashes to ``expected`` (compared in constant
    time): a key the server handed out that is not the requester's is refused here."""
    if len(expected) != FINGERPRINT_BYTES or not hmac.compare_digest(fingerprint(public), expected):
        raise EnvelopeError(
            "does not match the fingerprint in the request link; nothing was sealed",
            "request.public_key",
        )


def check_request_id(request_id: str) -> None:
    """Raise ``EnvelopeError`` unless ``request_id`` has the shape of a public id (22
    base64url characters), the form the AAD binds."""
    if not _REQUEST_ID_RE.fullmatch(request_id):
        raise EnvelopeError("must be 22 base64url characters", "request.id")


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A P-256 key pair: the requester's (kept in its own link) or an answer's ephemeral one."""

    scalar: bytes = field(repr=False)
    """The private scalar ``d``, 32 bytes big-endian."""
    public: bytes
    """The public key ``d·G``, uncompressed SEC1 (65 bytes)."""

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh key pair from the operating system's CSPRNG."""
        private = ec.generate_private_key(_CURVE)
        return cls._of(private)

    @classmethod
    def from_bytes(cls, data: bytes, field_name: str = "request.private_key") -> KeyPair:
        """Undo ``to_bytes``; raise ``EnvelopeError`` unless ``d`` is in range and the
        public key is ``d·G``."""
        if len(data) != KEY_PAIR_BYTES:
            raise EnvelopeError(f"must be {KEY_PAIR_BYTES} bytes", field_name)
        scalar = int.from_bytes(data[:SCALAR_BYTES], "big")
        if not 1 <= scalar < _N:
            raise EnvelopeError("holds a private scalar out of range", field_name)
        validate_public_key(data[SCALAR_BYTES:], field_name)
        pair = cls._of(ec.derive_private_key(scalar, _CURVE))
        if not hmac.compare_digest(pair.public, data[SCALAR_BYTES:]):
            raise EnvelopeError("holds a public key that is not its private key's", field_name)
        return pair

    @classmethod
    def from_text(cls, text: str, field_name: str = "request.private_key") -> KeyPair:
        """Parse the base64url form a link fragment carries (130 characters)."""
        return cls.from_bytes(decode_field(text, field_name, KEY_PAIR_BYTES), field_name)

    @classmethod
    def _of(cls, private: ec.EllipticCurvePrivateKey) -> KeyPair:
        scalar = private.private_numbers().private_value.to_bytes(SCALAR_BYTES, "big")
        public = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return cls(scalar, public)

    def to_bytes(self) -> bytes:
        """``d || public`` (97 bytes): the requester key its own link's fragment carries."""
        return self.scalar + self.public

    def to_text(self) -> str:
        """``to_bytes`` in base64url (130 characters)."""
        return b64url_encode(self.to_bytes())

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the public key, for the request link."""
        return fingerprint(self.public)

    def shared_secret(self, peer_public: bytes) -> bytes:
        """ECDH with a validated public key: the X coordinate of the shared point (32 bytes)."""
        private = ec.derive_private_key(int.from_bytes(self.scalar, "big"), _CURVE)
        peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, peer_public)
        return private.exchange(ec.ECDH(), peer)


def answer_key(shared_secret: bytes, requester_public: bytes, ephemeral_public: bytes) -> bytes:
    """HKDF-SHA256(Z, salt="", info="burnlink v1 sealed answer" || R || E, 32)."""
    info = INFO_LABEL + requester_public + ephemeral_public
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info)
    return hkdf.derive(shared_secret)


def answer_aad(request_id: str, requester_public: bytes, ephemeral_public: bytes) -> bytes:
    """The AAD that binds the request id and both public keys (ASCII, 258 bytes)."""
    check_request_id(request_id)
    rpk, epk = b64url_encode(requester_public), b64url_encode(ephemeral_public)
    return f"{AAD_PREFIX};rid={request_id};rpk={rpk};epk={epk}".encode("ascii")


@dataclass(frozen=True, slots=True)
class SealedAnswer:
    """A parsed, validated sealed answer (docs/crypto.md § The sealed answer object)."""

    requester_public: bytes
    ephemeral_public: bytes
    nonce: bytes
    ciphertext: bytes = field(repr=False)
    """AES-256-GCM output: encrypted framed payload followed by the 16-byte tag."""

    def aad(self, request_id: str) -> bytes:
        """The AAD of this answer for ``request_id`` (the reader's own, not the server's)."""
        return answer_aad(request_id, self.requester_public, self.ephemeral_public)

    def to_json(self) -> dict[str, Any]:
        """The object as a JSON-ready dict, members in the documented order."""
        return {
            "v": VERSION,
            "alg": ALG,
            "crv": CRV,
            "rpk": b64url_encode(self.requester_public),
            "epk": b64url_encode(self.ephemeral_public),
            "nonce": b64url_encode(self.nonce),
            "ct": b64url_encode(self.ciphertext),
        }

    def to_bytes(self) -> bytes:
        """Compact JSON, the form a store keeps."""
        return dumps_compact(self.to_json())

    @classmethod
    def from_json(cls, obj: object) -> SealedAnswer:
        """Validate a decoded JSON value; raise ``EnvelopeError`` naming what is wrong."""
        if not isinstance(obj, dict):
            raise EnvelopeError("must be a JSON object", "answer")
        if type(obj.get("v")) is not int or obj["v"] != VERSION:
            raise EnvelopeError(f"unsupported version; this speaks v{VERSION}", "answer.v")
        if set(obj) != _FIELDS:
            raise EnvelopeError(f"fields must be exactly {sorted(_FIELDS)}", "answer")
        if obj["alg"] != ALG:
            raise EnvelopeError(f"alg must be {ALG!r}", "answer.alg")
        if obj["crv"] != CRV:
            raise EnvelopeError(f"crv must be {CRV!r}", "answer.crv")
        ciphertext = decode_field(obj["ct"], "answer.ct", None)
        if len(ciphertext) < TAG_BYTES:
            raise EnvelopeError("is shorter than the authentication tag", "answer.ct")
        return cls(
            requester_public=parse_public_key(obj["rpk"], "answer.rpk"),
            ephemeral_public=parse_public_key(obj["epk"], "answer.epk"),
            nonce=decode_field(obj["nonce"], "answer.nonce", NONCE_BYTES),
            ciphertext=ciphertext,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedAnswer:
        """Parse and validate the compact JSON form; a member named twice is refused, as in
        every JSON the server reads."""
        try:
            obj = loads_strict(data)
        except ValueError as exc:
            raise EnvelopeError("is not valid JSON", "answer") from exc
        return cls.from_json(obj)


def seal_answer(
    payload: Payload,
    requester_public: bytes,
    request_id: str,
    *,
    expected_fingerprint: bytes,
    ephemeral: KeyPair | None = None,
    nonce: bytes | None = None,
) -> SealedAnswer:
    """Seal ``payload`` to the requester's public key for ``request_id``.

    ``expected_fingerprint`` is the one in the request link: a key that does not hash to it is
    refused (``EnvelopeError``, field ``request.public_key``) before anything is sealed. The
    ephemeral key pair and the nonce are fresh unless a test fixes them.
    """
    validate_public_key(requester_public, "request.public_key")
    check_fingerprint(requester_public, expected_fingerprint)
    check_request_id(request_id)
    framed = encode_payload(payload)
    ephemeral = ephemeral or KeyPair.generate()
    nonce = nonce or os.urandom(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise InvalidInput("nonce", f"must be {NONCE_BYTES} bytes")
    key = answer_key(ephemeral.shared_secret(requester_public), requester_public, ephemeral.public)
    aad = answer_aad(request_id, requester_public, ephemeral.public)
    ciphertext = AESGCM(key).encrypt(nonce, framed, aad)
    return SealedAnswer(requester_public, ephemeral.public, nonce, ciphertext)


def open_answer(sealed: SealedAnswer, key_pair: KeyPair, request_id: str) -> Payload:
    """Open an answer with the requester's key pair and the request id of its own link.

    Raises ``EnvelopeError``: field ``answer.rpk`` for an answer sealed to another key, and
    ``answer`` for one that does not decrypt (tampered, or of another request).
    """
    if not hmac.compare_digest(sealed.requester_public, key_pair.public):
        raise EnvelopeError(
            "is not this request's public key; the answer was sealed to another", "answer.rpk"
        )
    validate_public_key(sealed.ephemeral_public, "answer.epk")
    aad = sealed.aad(request_id)
    shared = key_pair.shared_secret(sealed.ephemeral_public)
    key = answer_key(shared, sealed.requester_public, sealed.ephemeral_public)
    try:
        plain = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except InvalidTag as exc:
        raise EnvelopeError("does not decrypt with this key and request id", "answer") from exc
    return decode_payload(plain)
