"""Sealing answers to a requester's key (docs/crypto.md § Sealing to a requester's public key):
the shared vectors, recomputed from the text with bare primitives and by
``burnlink.request_crypto``; the browser module checks the same file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from burnlink.crypto import Payload
from burnlink.envelope import Envelope
from burnlink.errors import EnvelopeError, InvalidInput
from burnlink.ids import b64url_decode, b64url_encode
from burnlink.request_crypto import (
    KeyPair,
    SealedAnswer,
    answer_aad,
    answer_key,
    check_fingerprint,
    fingerprint,
    open_answer,
    parse_public_key,
    seal_answer,
)
from tests import request_vectors

HERE = Path(__file__).parent
DOCUMENT = json.loads((HERE / "vectors" / "request_v1.json").read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]
INVALID: list[dict[str, Any]] = DOCUMENT["invalid"]
REQUEST_ID = "cmVxdWVzdC1pZC10ZXN0cw"


def _b64u(text: str) -> bytes:
    return b64url_decode(text, field="vector")


def _hkdf_sha256(ikm: bytes, info: bytes) -> bytes:
    """RFC 5869 with an empty salt and one output block, written out from the RFC."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _payload(vector: dict[str, Any]) -> Payload:
    spec = vector["payload"]
    return Payload(
        base64.b64decode(spec["content_base64"]),
        is_file=spec["type"] == "file",
        name=spec["name"],
        mime=spec["mime"],
    )


def _ids(vector: dict[str, Any]) -> str:
    return str(vector["description"])


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_vector_matches_the_spec_computed_with_bare_primitives(vector: dict[str, Any]) -> None:
    curve = ec.SECP256R1()
    requester_key, ephemeral_key = _b64u(vector["requester_key"]), _b64u(vector["ephemeral_key"])
    d, requester = requester_key[:32], requester_key[32:]
    e, ephemeral = ephemeral_key[:32], ephemeral_key[32:]
    private_d = ec.derive_private_key(int.from_bytes(d, "big"), curve)
    private_e = ec.derive_private_key(int.from_bytes(e, "big"), curve)
    uncompressed = (Encoding.X962, PublicFormat.UncompressedPoint)
    sealed = vector["sealed"]

    assert private_d.public_key().public_bytes(*uncompressed) == requester
    assert private_e.public_key().public_bytes(*uncompressed) == ephemeral
    assert b64url_encode(requester) == vector["requester_public"] == sealed["rpk"]
    assert b64url_encode(ephemeral) == vector["ephemeral_public"] == sealed["epk"]
    assert hashlib.sha256(requester).digest() == _b64u(vector["fingerprint"])
    shared = private_e.exchange(ec.ECDH(), private_d.public_key())
    assert shared == private_d.exchange(ec.ECDH(), private_e.public_key())
    assert shared == _b64u(vector["shared_secret"])
    info = b"burnlink v1 sealed answer" + requester + ephemeral
    assert info == _b64u(vector["hkdf_info"])
    key = _hkdf_sha256(shared, info)
    assert key == _b64u(vector["answer_key"])
    aad = (
        f"burnlink-sealed-answer/v1;alg=A256GCM;crv=P-256;rid={vector['request_id']};"
        f"rpk={sealed['rpk']};epk={sealed['epk']}"
    )
    assert aad == vector["aad"]
    assert len(aad) == 258
    plaintext = AESGCM(key).decrypt(_b64u(sealed["nonce"]), _b64u(sealed["ct"]), aad.encode())
    assert plaintext == base64.b64decode(vector["plaintext_base64"])
    assert sealed["nonce"] == vector["nonce"]


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_vector_opens_with_request_crypto(vector: dict[str, Any]) -> None:
    sealed = SealedAnswer.from_json(vector["sealed"])
    key_pair = KeyPair.from_text(vector["requester_key"])

    assert open_answer(sealed, key_pair, vector["request_id"]) == _payload(vector)
    assert sealed.aad(vector["request_id"]).decode() == vector["aad"]
    assert b64url_encode(key_pair.fingerprint) == vector["fingerprint"]


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_vector_is_resealed_byte_for_byte(vector: dict[str, Any]) -> None:
    ephemeral = KeyPair.from_text(vector["ephemeral_key"], "ephemeral")

    sealed = seal_answer(
        _payload(vector),
        _b64u(vector["requester_public"]),
        vector["request_id"],
        expected_fingerprint=_b64u(vector["fingerprint"]),
        ephemeral=ephemeral,
        nonce=_b64u(vector["nonce"]),
    )

    assert sealed.to_json() == vector["sealed"]
    assert json.loads(sealed.to_bytes()) == vector["sealed"]
    assert ephemeral.shared_secret(sealed.requester_public) == _b64u(vector["shared_secret"])


def _attempt(case: dict[str, Any]) -> Callable[[], object]:
    """The step an invalid vector's ``stage`` names, ready to run; what comes before it passes."""
    if case["stage"] == "key":
        return lambda: KeyPair.from_text(case["requester_key"])
    if case["stage"] == "seal":
        return lambda: seal_answer(
            _payload(VECTORS[0]),
            _b64u(case["requester_public"]),
            case["request_id"],
            expected_fingerprint=_b64u(case["fingerprint"]),
        )
    if case["stage"] == "parse":
        return lambda: SealedAnswer.from_json(case["sealed"])
    sealed = SealedAnswer.from_json(case["sealed"])
    key_pair = KeyPair.from_text(case["requester_key"])
    return lambda: open_answer(sealed, key_pair, case["request_id"])


@pytest.mark.parametrize("case", [pytest.param(case, id=case["description"]) for case in INVALID])
def test_invalid_vector_fails_on_its_field(case: dict[str, Any]) -> None:
    attempt = _attempt(case)

    with pytest.raises(EnvelopeError) as caught:
        attempt()

    assert caught.value.field == case["field"]


def test_invalid_vectors_cover_every_stage() -> None:
    assert {case["stage"] for case in INVALID} == {"key", "seal", "parse", "open"}
    assert len(VECTORS) == 4


def test_vectors_file_is_what_the_generator_builds() -> None:
    text = (HERE / "vectors" / "request_v1.json").read_text(encoding="utf-8")

    assert request_vectors.render() == text


@pytest.mark.parametrize("part", ["request_id", "requester_public", "ephemeral_public"])
def test_aad_binds_the_request_id_and_both_public_keys(part: str) -> None:
    """With the right key, an AAD built with any one part swapped does not decrypt."""
    vector = VECTORS[0]
    sealed = SealedAnswer.from_json(vector["sealed"])
    parts = {
        "request_id": vector["request_id"],
        "requester_public": sealed.requester_public,
        "ephemeral_public": sealed.ephemeral_public,
    }
    other = {
        "request_id": REQUEST_ID,
        "requester_public": _b64u(VECTORS[3]["requester_public"]),
        "ephemeral_public": _b64u(VECTORS[1]["ephemeral_public"]),
    }
    key = _b64u(vector["answer_key"])
    assert answer_aad(**parts) == vector["aad"].encode()
    AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, answer_aad(**parts))

    swapped = answer_aad(**{**parts, part: other[part]})

    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, swapped)


def test_answer_key_binds_both_public_keys() -> None:
    vector = VECTORS[0]
    shared = _b64u(vector["shared_secret"])
    requester, ephemeral = _b64u(vector["requester_public"]), _b64u(vector["ephemeral_public"])
    other = _b64u(VECTORS[3]["requester_public"])

    keys = {
        answer_key(shared, requester, ephemeral),
        answer_key(shared, other, ephemeral),
        answer_key(shared, requester, other),
        answer_key(shared, ephemeral, requester),
    }

    assert len(keys) == 4


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(Payload("pässwörd ✓".encode()), id="text"),
        pytest.param(Payload(bytes(range(256)) * 4, is_file=True, name="k.pem"), id="file"),
        pytest.param(Payload(b"", is_file=True), id="empty file"),
    ],
)
def test_round_trip_with_fresh_keys(payload: Payload) -> None:
    requester = KeyPair.generate()

    sealed = seal_answer(
        payload, requester.public, REQUEST_ID, expected_fingerprint=requester.fingerprint
    )
    parsed = SealedAnswer.from_bytes(sealed.to_bytes())

    assert open_answer(parsed, KeyPair.from_text(requester.to_text()), REQUEST_ID) == payload


def test_every_answer_has_a_fresh_ephemeral_key_and_nonce() -> None:
    requester = KeyPair.generate()
    payload = Payload(b"same")

    first, second = (
        seal_answer(
            payload, requester.public, REQUEST_ID, expected_fingerprint=requester.fingerprint
        )
        for _ in range(2)
    )

    assert first.ephemeral_public != second.ephemeral_public
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_seal_refuses_a_key_that_does_not_match_the_fingerprint() -> None:
    requester, server = KeyPair.generate(), KeyPair.generate()

    with pytest.raises(EnvelopeError) as caught:
        seal_answer(
            Payload(b"x"), server.public, REQUEST_ID, expected_fingerprint=requester.fingerprint
        )

    assert caught.value.field == "request.public_key"
    assert "fingerprint" in str(caught.value)


@pytest.mark.parametrize(
    "expected",
    [pytest.param(b"", id="empty"), pytest.param(b"\x00" * 31, id="short")],
)
def test_check_fingerprint_refuses_a_fingerprint_of_the_wrong_length(expected: bytes) -> None:
    requester = KeyPair.generate()

    with pytest.raises(EnvelopeError):
        check_fingerprint(requester.public, requester.fingerprint[: len(expected)])
    check_fingerprint(requester.public, fingerprint(requester.public))


def test_open_refuses_an_answer_sealed_to_another_key() -> None:
    requester, other = KeyPair.generate(), KeyPair.generate()
    sealed = seal_answer(
        Payload(b"x"), other.public, REQUEST_ID, expected_fingerprint=other.fingerprint
    )

    with pytest.raises(EnvelopeError) as caught:
        open_answer(sealed, requester, REQUEST_ID)

    assert caught.value.field == "answer.rpk"


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param("short", id="short"),
        pytest.param("cmVxdWVzdC1pZC10ZXN0c+", id="plus"),
        pytest.param("cmVxdWVzdC1pZC10ZXN0cw=", id="padding"),
        pytest.param("cmVxdWVzdC1pZC10ZXN0cwA", id="23 characters"),
    ],
)
def test_request_ids_of_another_shape_are_refused(request_id: str) -> None:
    requester = KeyPair.generate()

    with pytest.raises(EnvelopeError) as caught:
        seal_answer(
            Payload(b"x"), requester.public, request_id, expected_fingerprint=requester.fingerprint
        )

    assert caught.value.field == "request.id"


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(None, id="null"),
        pytest.param([], id="array"),
        pytest.param({**VECTORS[0]["sealed"], "v": 1.0}, id="v 1.0"),
        pytest.param({**VECTORS[0]["sealed"], "v": "1"}, id="v string"),
        pytest.param({**VECTORS[0]["sealed"], "epk": 1}, id="epk number"),
        pytest.param({**VECTORS[0]["sealed"], "kdf": "none"}, id="kdf"),
        pytest.param(
            json.loads('{"v":1,"alg":"A256GCM","kdf":"none","nonce":"","ct":""}'), id="v1"
        ),
    ],
)
def test_sealed_answers_of_another_shape_are_refused(obj: object) -> None:
    with pytest.raises(EnvelopeError) as caught:
        SealedAnswer.from_json(obj)

    assert caught.value.field.startswith("answer")


def test_a_sealed_answer_is_not_an_envelope_and_the_reverse() -> None:
    envelope = json.loads((HERE / "vectors" / "envelope_v1.json").read_text("utf-8"))
    with pytest.raises(EnvelopeError):
        Envelope.from_json(VECTORS[0]["sealed"])
    with pytest.raises(EnvelopeError):
        SealedAnswer.from_json(envelope["vectors"][0]["envelope"])


def test_sealed_answer_naming_a_member_twice_is_refused() -> None:
    requester = KeyPair.generate()
    sealed = seal_answer(
        Payload(b"s"), requester.public, REQUEST_ID, expected_fingerprint=requester.fingerprint
    )
    text = sealed.to_bytes().decode()
    # A second "ct": a reader that kept the last one would open something else than was checked.
    doubled = text[:-1] + ',"ct":"' + b64url_encode(bytes(32)) + '"}'

    with pytest.raises(EnvelopeError, match="not valid JSON"):
        SealedAnswer.from_bytes(doubled.encode())


def test_sealed_answer_from_bytes_refuses_what_is_not_json() -> None:
    with pytest.raises(EnvelopeError) as caught:
        SealedAnswer.from_bytes(b"{not json")

    assert caught.value.field == "answer"


def test_open_refuses_an_unvalidated_answer_with_a_bad_point() -> None:
    requester = KeyPair.generate()
    sealed = SealedAnswer(requester.public, b"\x04" + bytes(64), bytes(12), bytes(16))

    with pytest.raises(EnvelopeError) as caught:
        open_answer(sealed, requester, REQUEST_ID)

    assert caught.value.field == "answer.epk"


def test_parse_public_key_accepts_a_valid_key_and_names_its_field() -> None:
    requester = KeyPair.generate()

    assert parse_public_key(b64url_encode(requester.public), "public_key") == requester.public
    with pytest.raises(EnvelopeError) as caught:
        parse_public_key(b64url_encode(requester.public[:-1]), "public_key")
    assert caught.value.field == "public_key"


def test_key_pair_text_refuses_the_wrong_length() -> None:
    with pytest.raises(EnvelopeError) as caught:
        KeyPair.from_bytes(bytes(96))

    assert caught.value.field == "request.private_key"


def test_seal_refuses_a_nonce_of_the_wrong_length() -> None:
    requester = KeyPair.generate()

    with pytest.raises(InvalidInput):
        seal_answer(
            Payload(b"x"),
            requester.public,
            REQUEST_ID,
            expected_fingerprint=requester.fingerprint,
            nonce=bytes(8),
        )


def test_reprs_hold_no_private_scalar_or_ciphertext() -> None:
    requester = KeyPair.generate()
    sealed = seal_answer(
        Payload(b"x"), requester.public, REQUEST_ID, expected_fingerprint=requester.fingerprint
    )

    assert "scalar" not in repr(requester)
    assert repr(requester.scalar) not in repr(requester)
    assert "ciphertext" not in repr(sealed)
