"""Parsing and validating envelope v1: every malformation is refused, naming its field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from burnlink.crypto import (
    Payload,
    decode_payload,
    derive_keys,
    encode_payload,
    new_link_key,
    open_envelope,
    seal,
)
from burnlink.envelope import (
    MAX_HEADER_BYTES,
    MAX_ITERATIONS,
    Envelope,
    check_content_size,
    max_framed_bytes,
)
from burnlink.errors import EnvelopeError, InvalidInput, PayloadTooLarge
from burnlink.ids import b64url_encode

LINK_KEY = bytes(32)
PLAIN = seal(Payload(b"s3cret"), LINK_KEY, nonce=bytes(12)).envelope.to_json()
WITH_PASSPHRASE = seal(
    Payload(b"s3cret"), LINK_KEY, passphrase="pw", salt=bytes(16), nonce=bytes(12)
).envelope.to_json()


VERSION = "unsupported version; this server speaks v1"
ALG = "alg must be 'A256GCM'"
KDF = "kdf must be 'none' or 'pbkdf2-sha256'"


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    result = {**base, **changes}
    return {k: v for k, v in result.items() if v is not ...}


FIELDS_NONE = "fields must be exactly ['alg', 'ct', 'kdf', 'nonce', 'v']"
FIELDS_PBKDF2 = "fields must be exactly ['alg', 'ct', 'iter', 'kdf', 'nonce', 'salt', 'v']"
ITERATIONS = f"must be an integer from 600000 to {MAX_ITERATIONS}"
NOT_B64 = "is not unpadded base64url"


@pytest.mark.parametrize(
    ("obj", "field", "reason"),
    [
        pytest.param([], "envelope", "must be a JSON object", id="not-an-object"),
        pytest.param(_with(PLAIN, v=2), "envelope.v", VERSION, id="future-version"),
        pytest.param(_with(PLAIN, v="1"), "envelope.v", VERSION, id="version-as-string"),
        pytest.param(_with(PLAIN, v=True), "envelope.v", VERSION, id="version-as-bool"),
        pytest.param(_with(PLAIN, v=...), "envelope.v", VERSION, id="no-version"),
        pytest.param(_with(PLAIN, alg="A128GCM"), "envelope.alg", ALG, id="other-alg"),
        pytest.param(_with(PLAIN, kdf="argon2"), "envelope.kdf", KDF, id="unknown-kdf"),
        pytest.param(_with(PLAIN, extra=1), "envelope", FIELDS_NONE, id="extra-field"),
        pytest.param(_with(PLAIN, nonce=...), "envelope", FIELDS_NONE, id="missing-nonce"),
        pytest.param(_with(PLAIN, iter=600_000), "envelope", FIELDS_NONE, id="iter-without-kdf"),
        pytest.param(_with(WITH_PASSPHRASE, salt=...), "envelope", FIELDS_PBKDF2, id="no-salt"),
        pytest.param(
            _with(WITH_PASSPHRASE, iter=599_999), "envelope.iter", ITERATIONS, id="too-few"
        ),
        pytest.param(
            _with(WITH_PASSPHRASE, iter=MAX_ITERATIONS + 1),
            "envelope.iter",
            ITERATIONS,
            id="too-many",
        ),
        pytest.param(_with(WITH_PASSPHRASE, iter=6e5), "envelope.iter", ITERATIONS, id="float"),
        pytest.param(_with(WITH_PASSPHRASE, iter=True), "envelope.iter", ITERATIONS, id="bool"),
        pytest.param(
            _with(WITH_PASSPHRASE, salt=b64url_encode(bytes(8))),
            "envelope.salt",
            "must encode exactly 16 bytes",
            id="short-salt",
        ),
        pytest.param(
            _with(WITH_PASSPHRASE, salt=16),
            "envelope.salt",
            "must be a base64url string",
            id="salt-not-string",
        ),
        pytest.param(
            _with(PLAIN, nonce=b64url_encode(bytes(16))),
            "envelope.nonce",
            "must encode exactly 12 bytes",
            id="nonce",
        ),
        pytest.param(_with(PLAIN, ct="not base64!"), "envelope.ct", NOT_B64, id="ct-not-base64"),
        pytest.param(_with(PLAIN, ct=PLAIN["ct"] + "=="), "envelope.ct", NOT_B64, id="ct-padded"),
        pytest.param(
            _with(PLAIN, ct=b64url_encode(bytes(15))),
            "envelope.ct",
            "is shorter than the authentication tag",
            id="ct-short",
        ),
        pytest.param(
            _with(PLAIN, ct=12), "envelope.ct", "must be a base64url string", id="ct-not-string"
        ),
    ],
)
def test_envelope_from_json_refuses_malformed(obj: Any, field: str, reason: str) -> None:
    """Each malformation is refused naming the field and saying what is wrong with it."""
    with pytest.raises(EnvelopeError) as caught:
        Envelope.from_json(obj)
    assert (caught.value.field, caught.value.reason) == (field, reason)


@pytest.mark.parametrize(
    "iterations",
    [pytest.param(600_000, id="minimum"), pytest.param(MAX_ITERATIONS, id="maximum")],
)
def test_envelope_from_json_accepts_the_iteration_bounds(iterations: int) -> None:
    assert Envelope.from_json(_with(WITH_PASSPHRASE, iter=iterations)).iterations == iterations


def test_envelope_from_json_takes_the_servers_minimum() -> None:
    stronger = {"min_iterations": 1_000_000}

    assert Envelope.from_json(_with(WITH_PASSPHRASE, iter=1_000_000), **stronger).iterations
    with pytest.raises(EnvelopeError) as caught:
        Envelope.from_json(_with(WITH_PASSPHRASE, iter=999_999), **stronger)
    assert caught.value.reason == f"must be an integer from 1000000 to {MAX_ITERATIONS}"


def test_envelope_from_json_accepts_a_ciphertext_of_just_the_tag() -> None:
    """An empty payload still carries its 16-byte tag."""
    envelope = Envelope.from_json(_with(PLAIN, ct=b64url_encode(bytes(16))))

    assert envelope.ciphertext == bytes(16)
    assert not envelope.has_passphrase
    assert (envelope.iterations, envelope.salt) == (0, b"")


def test_envelope_to_bytes_is_compact_json_in_the_documented_order() -> None:
    envelope = Envelope.from_json(WITH_PASSPHRASE)

    assert envelope.to_bytes() == (
        b'{"v":1,"alg":"A256GCM","kdf":"pbkdf2-sha256","iter":600000,'
        b'"salt":"AAAAAAAAAAAAAAAAAAAAAA","nonce":"AAAAAAAAAAAAAAAA","ct":"'
        + WITH_PASSPHRASE["ct"].encode()
        + b'"}'
    )
    assert Envelope.from_json(PLAIN).to_bytes().startswith(b'{"v":1,"alg":"A256GCM","kdf":"none",')


def test_envelope_from_bytes_keeps_envelopes_stored_under_an_older_minimum() -> None:
    """A secret stored when the minimum was lower must still open after it is raised."""
    stored = json.dumps(_with(WITH_PASSPHRASE, iter=1)).encode()

    assert Envelope.from_bytes(stored).iterations == 1


def test_envelope_round_trips_through_bytes() -> None:
    envelope = Envelope.from_json(WITH_PASSPHRASE)

    assert Envelope.from_bytes(envelope.to_bytes()) == envelope
    assert envelope.has_passphrase


def test_envelope_from_bytes_refuses_garbage() -> None:
    with pytest.raises(EnvelopeError) as caught:
        Envelope.from_bytes(b"\xff not json")
    assert (caught.value.field, caught.value.reason) == ("envelope", "is not valid JSON")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"iter": 600_001}, id="iterations-swapped"),
        pytest.param({"salt": b64url_encode(b"\x01" * 16)}, id="salt-swapped"),
    ],
)
def test_header_fields_are_bound_to_the_ciphertext(change: dict[str, Any]) -> None:
    """An attacker who edits a header field (say, to weaken the KDF) breaks decryption."""
    tampered = Envelope.from_json({**WITH_PASSPHRASE, **change})
    keys = derive_keys(LINK_KEY, passphrase="pw", salt=bytes(16), iterations=600_000)

    with pytest.raises(EnvelopeError):
        open_envelope(tampered, keys)


def test_open_with_wrong_key_or_passphrase_fails() -> None:
    sealed = seal(Payload(b"x"), LINK_KEY, passphrase="right", salt=bytes(16))
    env = sealed.envelope

    with pytest.raises(EnvelopeError):
        open_envelope(
            env,
            derive_keys(
                new_link_key(), passphrase="right", salt=env.salt, iterations=env.iterations
            ),
        )
    with pytest.raises(EnvelopeError):
        open_envelope(
            env, derive_keys(LINK_KEY, passphrase="wrong", salt=env.salt, iterations=env.iterations)
        )


def test_seal_uses_fresh_key_material_each_time() -> None:
    first = seal(Payload(b"same"), LINK_KEY, passphrase="pw")
    second = seal(Payload(b"same"), LINK_KEY, passphrase="pw")

    assert first.envelope.nonce != second.envelope.nonce
    assert first.envelope.salt != second.envelope.salt
    assert first.envelope.ciphertext != second.envelope.ciphertext


def test_passphrase_proof_and_access_token_are_independent() -> None:
    keys = derive_keys(LINK_KEY, passphrase="pw", salt=bytes(16), iterations=600_000)

    assert keys.passphrase_proof is not None
    assert len({keys.access_token, keys.passphrase_proof, keys.encryption_key}) == 3
    assert derive_keys(LINK_KEY).access_token == keys.access_token


def test_derive_keys_refuses_a_short_key() -> None:
    with pytest.raises(EnvelopeError):
        derive_keys(bytes(16))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(Payload(b"x", is_file=True, name="n" * 256), id="long-name"),
        pytest.param(Payload(b"x", is_file=True, name=""), id="empty-name"),
        pytest.param(Payload(b"x", is_file=True, mime="m" * 256), id="long-mime"),
        pytest.param(
            Payload(b"x", is_file=True, name="\x01" * 255, mime="\x01" * 255),
            id="header-over-1024-bytes",
        ),
    ],
)
def test_seal_refuses_file_names_and_types_out_of_bounds(payload: Payload) -> None:
    with pytest.raises(InvalidInput):
        seal(payload, LINK_KEY)


def test_name_and_type_lengths_count_code_points() -> None:
    """200 astral characters: 200 code points, but 400 UTF-16 units and 800 UTF-8 bytes."""
    payload = Payload(b"x", is_file=True, name="\U0001f511" * 200, mime="m" * 100)

    framed = encode_payload(payload)

    assert decode_payload(framed) == payload
    assert framed.index(b"\n") + 1 <= MAX_HEADER_BYTES


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(Payload("héllo".encode()), {"secret": "héllo", "file": None}, id="text"),
        pytest.param(
            Payload(b"\xff\x00", is_file=True, name="a.bin", mime="application/octet-stream"),
            {
                "secret": None,
                "file": {
                    "name": "a.bin",
                    "mime": "application/octet-stream",
                    "content_base64": "/wA=",
                },
            },
            id="file",
        ),
        pytest.param(
            Payload(b"\xff"),
            {"secret": None, "file": {"name": None, "mime": None, "content_base64": "/w=="}},
            id="text-not-utf8-is-a-file",
        ),
    ],
)
def test_payload_answer_is_text_or_a_file(payload: Payload, expected: dict[str, Any]) -> None:
    assert payload.answer() == expected


def test_content_may_be_exactly_the_limit_and_not_a_byte_more() -> None:
    # The one size rule the API and the CLI both apply.
    check_content_size(1_048_576, 1_048_576)
    with pytest.raises(PayloadTooLarge) as refused:
        check_content_size(1_048_577, 1_048_576)
    assert (refused.value.field, refused.value.limit) == ("secret", 1_048_576)
    assert refused.value.reason == "larger than the limit of 1048576 bytes"


def test_an_e2e_envelope_may_frame_the_limit_plus_the_largest_header() -> None:
    assert max_framed_bytes(1_048_576) == 1_048_576 + MAX_HEADER_BYTES
