"""Ids, tokens, strict base64url, how tokens are checked against their stored digests, and the
public ids of the server's keys."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from burnlink.errors import InvalidInput
from burnlink.ids import (
    b64url_decode,
    b64url_encode,
    digest_matches,
    digests_equal,
    is_secret_id,
    key_id,
    new_secret_id,
    new_token,
    token_digest,
)


def test_new_secret_id_is_a_fresh_22_character_id() -> None:
    ids = {new_secret_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(is_secret_id(i) and len(b64url_decode(i, field="id")) == 16 for i in ids)


def test_new_token_is_a_fresh_256_bit_secret() -> None:
    tokens = {new_token() for _ in range(100)}

    assert len(tokens) == 100
    assert {len(t) for t in tokens} == {32}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("A" * 22, True, id="22"),
        pytest.param("aZ09_-" * 3 + "abcd", True, id="every-class"),
        pytest.param("A" * 21, False, id="21"),
        pytest.param("A" * 23, False, id="23"),
        pytest.param("A" * 21 + "=", False, id="padding"),
        pytest.param("A" * 21 + "+", False, id="plus"),
        pytest.param("A" * 21 + "/", False, id="slash"),
        pytest.param("A" * 22 + "\n", False, id="trailing-newline"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_secret_id(value: str, valid: bool) -> None:
    assert is_secret_id(value) is valid


@pytest.mark.parametrize(
    ("data", "text"),
    [
        pytest.param(b"", "", id="empty"),
        pytest.param(b"\xfb\xff", "-_8", id="url-alphabet-no-padding"),
        pytest.param(b"\x00\x01\x02", "AAEC", id="whole-block"),
        pytest.param(b"\x00\x00\x17", "AAAX", id="ends-in-x"),
        pytest.param(bytes(range(256)), None, id="every-byte"),
    ],
)
def test_b64url_round_trips(data: bytes, text: str | None) -> None:
    encoded = b64url_encode(data)

    assert "=" not in encoded
    if text is not None:
        assert encoded == text
    assert encoded == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert b64url_decode(encoded, field="f") == data


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("AAE=", "is not unpadded base64url", id="padded"),
        pytest.param("AAF", "is not canonical base64url", id="spare-bits-set"),
        pytest.param("AAAAA", "is not unpadded base64url", id="one-extra-character"),
        pytest.param("A", "is not unpadded base64url", id="one-character"),
        pytest.param("AA+/", "is not unpadded base64url", id="standard-alphabet"),
        pytest.param("AA AA", "is not unpadded base64url", id="space"),
        pytest.param("AAAA\n", "is not unpadded base64url", id="trailing-newline"),
    ],
)
def test_b64url_decode_refuses_what_is_not_canonical(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        b64url_decode(text, field="envelope.nonce")

    assert (caught.value.field, caught.value.reason) == ("envelope.nonce", reason)


def test_b64url_decode_checks_the_length_when_asked() -> None:
    text = b64url_encode(bytes(12))

    assert b64url_decode(text, field="nonce", length=12) == bytes(12)
    for wrong in (11, 13):
        with pytest.raises(InvalidInput) as caught:
            b64url_decode(text, field="nonce", length=wrong)
        assert (caught.value.field, caught.value.reason) == (
            "nonce",
            f"must encode exactly {wrong} bytes",
        )


def test_token_digest_is_sha256() -> None:
    assert token_digest(b"token") == hashlib.sha256(b"token").digest()


def test_digest_matches_only_the_token_it_was_made_from() -> None:
    token = new_token()
    stored = token_digest(token)

    assert digest_matches(token, stored)
    assert not digest_matches(new_token(), stored)
    assert not digest_matches(token, token)


def test_digests_equal() -> None:
    left = token_digest(b"a")

    assert digests_equal(left, token_digest(b"a"))
    assert not digests_equal(left, token_digest(b"b"))


def test_key_id_of_the_audit_key_is_16_hex_digits_of_its_hmac() -> None:
    # docs/audit.md: the first 16 hex digits of HMAC-SHA256(key, "burnlink audit key id v1").
    assert key_id(bytes(range(32))) == "7ddb4ce79f42457c"
    assert key_id(bytes(32)) != key_id(bytes(range(32)))


def test_key_id_of_a_signing_key_is_the_rfc7638_thumbprint() -> None:
    # RFC 8037 appendix A.3 gives the thumbprint of this very key.
    d = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public_key = Ed25519PrivateKey.from_private_bytes(d).public_key()

    assert key_id(public_key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def _reference_decode(text: str) -> bytes | None:
    """Strict unpadded base64url as the standard library's base64 module reads it."""
    if any(
        c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text
    ):
        return None
    if len(text) % 4 == 1:
        return None
    data = base64.urlsafe_b64decode(text + "==")
    return data if base64.urlsafe_b64encode(data).rstrip(b"=").decode() == text else None


@given(st.binary(max_size=80))
def test_b64url_encode_is_the_standard_urlsafe_encoding_unpadded(data: bytes) -> None:
    assert b64url_encode(data) == base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert b64url_decode(b64url_encode(data), field="f") == data


@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \n.",
        max_size=12,
    )
)
def test_b64url_decode_accepts_exactly_what_the_standard_library_reads_strictly(text: str) -> None:
    expected = _reference_decode(text)
    if expected is None:
        with pytest.raises(InvalidInput):
            b64url_decode(text, field="f")
    else:
        assert b64url_decode(text, field="f") == expected
