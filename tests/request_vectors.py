"""Builds tests/vectors/request_v1.json: fixed inputs of a sealed answer and what they give.

``python -m tests.request_vectors`` writes the file. It was run once; the format is fixed, so
it is never run again for v1. ``test_request_crypto`` checks that the file is what ``build``
gives, so this code stays honest without being a second source of truth.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from burnlink.crypto import Payload, encode_payload
from burnlink.ids import b64url_decode, b64url_encode
from burnlink.request_crypto import (
    KeyPair,
    answer_aad,
    answer_key,
    fingerprint,
    seal_answer,
)

OUT = Path(__file__).parent / "vectors" / "request_v1.json"
# P-256's field prime and b, to build points that are not on the curve.
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def key_pair(scalar: bytes) -> KeyPair:
    """The key pair of a fixed 32-byte scalar."""
    return KeyPair.from_bytes(scalar + _public_of(scalar))


def _public_of(scalar: bytes) -> bytes:
    private = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    return private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _raw(text: str) -> bytes:
    return b64url_decode(text, field="vector")


def _with_leading_zero_secret(peer: bytes, start: bytes) -> KeyPair:
    """The first key pair from ``start`` upwards whose shared secret with ``peer`` begins with
    a zero byte: readers must keep Z at 32 bytes."""
    value = int.from_bytes(start, "big")
    while True:
        pair = key_pair(value.to_bytes(32, "big"))
        if pair.shared_secret(peer)[0] == 0:
            return pair
        value += 1


def _request_id(text: bytes) -> str:
    return b64url_encode(text)


REQUESTER_A = key_pair(bytes(range(0x20, 0x40)))
# A scalar with a leading zero byte: its 32-byte encoding keeps it.
REQUESTER_B = key_pair(b"\x00" + bytes(range(0xA1, 0xC0)))
REQUEST_1 = _request_id(b"burnlink request")
REQUEST_2 = _request_id(b"second request!!")

CASES: list[tuple[str, KeyPair, str, KeyPair, Payload]] = [
    (
        "text, ASCII",
        REQUESTER_A,
        REQUEST_1,
        key_pair(bytes(range(0x60, 0x80))),
        Payload(b"postgres://app:s3cr3t@db.internal:5432/prod"),
    ),
    (
        "text, non-ASCII",
        REQUESTER_A,
        REQUEST_1,
        key_pair(bytes(range(0x80, 0xA0))),
        Payload("Grüße, 東京 🔑".encode()),
    ),
    (
        "file with name and media type, 256 bytes of binary content",
        REQUESTER_A,
        REQUEST_1,
        key_pair(bytes(range(0xC0, 0xE0))),
        Payload(bytes(range(256)), is_file=True, name="id_ed25519", mime="application/x-pem"),
    ),
    (
        "file without name or type; the requester's scalar and the shared secret Z begin with 00",
        REQUESTER_B,
        REQUEST_2,
        _with_leading_zero_secret(REQUESTER_B.public, bytes(range(0x40, 0x60))),
        Payload(b"\x00\xff", is_file=True),
    ),
]


def _nonce(number: int) -> bytes:
    return f"nonce-vec-{number:02d}".encode("ascii")


def _vector(number: int, case: tuple[str, KeyPair, str, KeyPair, Payload]) -> dict[str, Any]:
    description, requester, request_id, ephemeral, payload = case
    nonce = _nonce(number)
    shared = ephemeral.shared_secret(requester.public)
    info = b"burnlink v1 sealed answer" + requester.public + ephemeral.public
    sealed = seal_answer(
        payload,
        requester.public,
        request_id,
        expected_fingerprint=requester.fingerprint,
        ephemeral=ephemeral,
        nonce=nonce,
    )
    return {
        "description": description,
        "requester_key": requester.to_text(),
        "requester_public": b64url_encode(requester.public),
        "fingerprint": b64url_encode(fingerprint(requester.public)),
        "request_id": request_id,
        "ephemeral_key": ephemeral.to_text(),
        "ephemeral_public": b64url_encode(ephemeral.public),
        "nonce": b64url_encode(nonce),
        "payload": {
            "type": "file" if payload.is_file else "text",
            "name": payload.name,
            "mime": payload.mime,
            "content_base64": base64.b64encode(payload.content).decode(),
        },
        "plaintext_base64": base64.b64encode(encode_payload(payload)).decode(),
        "shared_secret": b64url_encode(shared),
        "hkdf_info": b64url_encode(info),
        "answer_key": b64url_encode(answer_key(shared, requester.public, ephemeral.public)),
        "aad": answer_aad(request_id, requester.public, ephemeral.public).decode("ascii"),
        "sealed": sealed.to_json(),
    }


def _point(x: int, y: int, prefix: int = 0x04) -> str:
    return b64url_encode(bytes([prefix]) + x.to_bytes(32, "big") + y.to_bytes(32, "big"))


def _coordinates(public: bytes) -> tuple[int, int]:
    return int.from_bytes(public[1:33], "big"), int.from_bytes(public[33:], "big")


def _unreduced_point() -> str:
    """A point on the curve written with X + p in place of X (fits 32 bytes for a small X)."""
    x = 0
    while True:
        rhs = (x**3 - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return _point(x + P, y)
        x += 1


def _invalid(vectors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first, fourth = vectors[0], vectors[3]
    good = first["sealed"]
    ax, ay = _coordinates(REQUESTER_A.public)
    ex, ey = _coordinates(_raw(first["ephemeral_public"]))
    off_curve_a = _point(ax, (ay + 1) % P)
    compressed_a = b64url_encode(bytes([0x02 | (ay & 1)]) + ax.to_bytes(32, "big"))
    ct = _raw(good["ct"])
    tampered = b64url_encode(ct[:-1] + bytes([ct[-1] ^ 0x01]))
    other = key_pair(bytes(range(0xE0, 0x100)))

    def parse(description: str, field: str, **changes: Any) -> dict[str, Any]:
        sealed = {**good, **changes}
        return {"description": description, "stage": "parse", "field": field, "sealed": sealed}

    def opening(description: str, field: str, **changes: Any) -> dict[str, Any]:
        case = {
            "description": description,
            "stage": "open",
            "field": field,
            "sealed": good,
            "requester_key": first["requester_key"],
            "request_id": first["request_id"],
        }
        sealed = {name: value for name, value in changes.items() if name in good}
        case["sealed"] = {**good, **sealed}
        case.update({name: value for name, value in changes.items() if name not in good})
        return case

    def sealing(description: str, public: str, fp: str) -> dict[str, Any]:
        return {
            "description": description,
            "stage": "seal",
            "field": "request.public_key",
            "requester_public": public,
            "fingerprint": fp,
            "request_id": first["request_id"],
        }

    def key(description: str, value: bytes) -> dict[str, Any]:
        return {
            "description": description,
            "stage": "key",
            "field": "request.private_key",
            "requester_key": b64url_encode(value),
        }

    def sha(text: str) -> str:
        return b64url_encode(hashlib.sha256(_raw(text)).digest())

    without_rpk = {name: value for name, value in good.items() if name != "rpk"}
    return [
        key(
            "the requester key's public half is not d·G (another key's)",
            REQUESTER_A.scalar + REQUESTER_B.public,
        ),
        key("the requester key's scalar is zero", bytes(32) + REQUESTER_A.public),
        key(
            "the requester key's scalar is the group order n",
            N.to_bytes(32, "big") + REQUESTER_A.public,
        ),
        sealing(
            "the server hands out a key of its own: it does not match the link's fingerprint",
            b64url_encode(REQUESTER_B.public),
            first["fingerprint"],
        ),
        sealing("the requester key is not on the curve", off_curve_a, sha(off_curve_a)),
        sealing("the requester key is compressed (33 bytes)", compressed_a, sha(compressed_a)),
        parse("crv is P-384", "answer.crv", crv="P-384"),
        parse("crv is X25519 (not defined in v1)", "answer.crv", crv="X25519"),
        parse("v is 2", "answer.v", v=2),
        parse("v is true", "answer.v", v=True),
        parse("alg is A128GCM", "answer.alg", alg="A128GCM"),
        parse("an unknown field", "answer", kid="x"),
        {
            "description": "rpk is missing",
            "stage": "parse",
            "field": "answer",
            "sealed": without_rpk,
        },
        parse("epk is not on the curve (Y + 1)", "answer.epk", epk=_point(ex, (ey + 1) % P)),
        parse(
            "epk is compressed (33 bytes)",
            "answer.epk",
            epk=b64url_encode(bytes([0x02 | (ey & 1)]) + ex.to_bytes(32, "big")),
        ),
        parse(
            "epk is in hybrid form (0x06/0x07)", "answer.epk", epk=_point(ex, ey, 0x06 | (ey & 1))
        ),
        parse("epk is the identity point (SEC1 0x00)", "answer.epk", epk="AA"),
        parse("epk is (0, 0)", "answer.epk", epk=_point(0, 0)),
        parse("epk has X not reduced modulo p", "answer.epk", epk=_unreduced_point()),
        parse(
            "epk is not canonical base64url",
            "answer.epk",
            epk=good["epk"][:-1] + _next(good["epk"][-1]),
        ),
        parse("rpk is not on the curve", "answer.rpk", rpk=off_curve_a),
        parse("nonce is 8 bytes", "answer.nonce", nonce=b64url_encode(b"12345678")),
        parse("ct is shorter than the tag", "answer.ct", ct=b64url_encode(bytes(15))),
        opening("ct is tampered (one bit of the tag)", "answer", ct=tampered),
        opening("the nonce is changed", "answer", nonce=b64url_encode(b"nonce-vec-99")),
        opening("the answer is opened for another request id", "answer", request_id=REQUEST_2),
        opening("epk is swapped for another valid key", "answer", epk=b64url_encode(other.public)),
        opening(
            "rpk is swapped for B's key and opened by B (the AAD and the key bind rpk)",
            "answer",
            rpk=fourth["requester_public"],
            requester_key=fourth["requester_key"],
        ),
        opening(
            "an answer sealed to A is opened by B: rpk is not B's key",
            "answer.rpk",
            requester_key=fourth["requester_key"],
        ),
    ]


def _next(character: str) -> str:
    """The base64url character after ``character``: the same 6 bits but one, so the unused
    low bits of a final character become non-zero."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return alphabet[alphabet.index(character) + 1]


def build() -> dict[str, Any]:
    """The whole document, as the JSON file holds it."""
    vectors = [_vector(number, case) for number, case in enumerate(CASES, start=1)]
    return {
        "format": "burnlink sealed answer v1",
        "spec": "docs/crypto.md",
        "vectors": vectors,
        "invalid": _invalid(vectors),
    }


def render() -> str:
    """``build`` as the file's text."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
