"""Proof of burn: statements signed with Ed25519, checked with the published key set."""

from __future__ import annotations

import base64
import dataclasses
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from burnlink.audit.events import secret_hash
from burnlink.errors import ConfigError, InvalidInput
from burnlink.ids import key_id
from burnlink.jwk import public_jwk, public_key_from_jwk, public_keys_document
from burnlink.models import EndReason
from burnlink.signing import (
    STATEMENT_TYPE,
    BurnStatement,
    burn_statement,
    load_or_create_signing_key,
    sign_statement,
    verify_statement,
)

CREATED = datetime(2030, 1, 1, tzinfo=UTC)
SECRET_ID = "AbCdEfGhIjKlMnOpQrStUv"
# RFC 8037 appendix A.1: a published Ed25519 key pair.
RFC8037_D = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(RFC8037_D)


def _statement(key: Ed25519PrivateKey, how: EndReason = EndReason.VIEWED) -> BurnStatement:
    return burn_statement(
        SECRET_ID,
        created_at=CREATED,
        ended_at=CREATED + timedelta(minutes=5, microseconds=1500),
        how=how,
        issuer="https://secrets.example.com",
        key=key,
    )


def test_public_jwk_matches_rfc8037(key: Ed25519PrivateKey) -> None:
    jwk = public_jwk(key.public_key())

    assert jwk["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert public_key_from_jwk(jwk).public_bytes_raw() == key.public_key().public_bytes_raw()


def test_statement_names_the_secret_by_its_hash(key: Ed25519PrivateKey) -> None:
    statement = _statement(key)

    assert statement.id_hash == secret_hash(SECRET_ID)
    assert statement.about(SECRET_ID)
    assert not statement.about("another")
    assert statement.to_dict() == {
        "type": STATEMENT_TYPE,
        "id_hash": secret_hash(SECRET_ID),
        "created_at": "2030-01-01T00:00:00.000Z",
        "ended_at": "2030-01-01T00:05:00.001Z",
        "how": "viewed",
        "issuer": "https://secrets.example.com",
        "kid": key_id(key.public_key()),
    }


@pytest.mark.parametrize("how", list(EndReason))
def test_signed_statement_verifies_with_the_key_jwk_and_key_set(
    key: Ed25519PrivateKey, how: EndReason
) -> None:
    statement = _statement(key, how)
    signed = sign_statement(statement, key)
    other = Ed25519PrivateKey.generate().public_key()

    assert verify_statement(signed, key.public_key()) == statement
    assert verify_statement(signed.encode(), public_jwk(key.public_key())) == statement
    assert verify_statement(signed, public_keys_document(other, key.public_key())) == statement


def test_signed_statement_verifies_offline_with_plain_cryptography(key: Ed25519PrivateKey) -> None:
    """What docs/audit.md tells a third party to do, without burnlink."""
    document = json.loads(sign_statement(_statement(key), key))
    message = json.dumps(
        document["statement"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    signature = document["signature"] + "=" * (-len(document["signature"]) % 4)

    Ed25519PublicKey.from_public_bytes(key.public_key().public_bytes_raw()).verify(
        base64.urlsafe_b64decode(signature), message
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda d: d["statement"].update(how="expired"), "does not verify", id="how"),
        pytest.param(
            lambda d: d["statement"].update(ended_at="2031-01-01T00:00:00.000Z"),
            "does not verify",
            id="time",
        ),
        pytest.param(lambda d: d.update(signature="AAAA"), "does not verify", id="signature"),
        pytest.param(lambda d: d.update(alg="HS256"), "algorithm", id="alg"),
        pytest.param(lambda d: d.update(kid="other"), "two different keys", id="kid"),
        pytest.param(lambda d: d["statement"].update(type="x"), "statement", id="type"),
        pytest.param(lambda d: d["statement"].pop("issuer"), "fields", id="missing-field"),
        pytest.param(lambda d: d.pop("alg"), "not a signed", id="missing-alg"),
    ],
)
def test_verify_statement_refuses_tampered_documents(
    key: Ed25519PrivateKey, change: object, message: str
) -> None:
    document = json.loads(sign_statement(_statement(key), key))
    change(document)  # type: ignore[operator]

    with pytest.raises(InvalidInput, match=message):
        verify_statement(json.dumps(document), key.public_key())


def test_verify_statement_refuses_another_key(key: Ed25519PrivateKey) -> None:
    signed = sign_statement(_statement(key), key)
    other = Ed25519PrivateKey.generate().public_key()

    with pytest.raises(InvalidInput, match="another key"):
        verify_statement(signed, other)
    with pytest.raises(InvalidInput, match="not in the key set"):
        verify_statement(signed, public_keys_document(other))


def test_verify_statement_refuses_a_member_given_twice(key: Ed25519PrivateKey) -> None:
    """A reader that keeps the first ``how`` would see "viewed"; the signature covers "burned"."""
    signed = sign_statement(_statement(key, EndReason.BURNED), key)
    assert '"how":"burned"' in signed
    doubled = signed.replace('"how":"burned"', '"how":"viewed","how":"burned"')

    with pytest.raises(InvalidInput, match="appears twice"):
        verify_statement(doubled, key.public_key())


@pytest.mark.parametrize("text", ["not json", "[]", '{"a": 1}'])
def test_verify_statement_refuses_what_is_not_a_statement(
    key: Ed25519PrivateKey, text: str
) -> None:
    with pytest.raises(InvalidInput):
        verify_statement(text, key.public_key())


def test_public_key_from_jwk_refuses_other_keys() -> None:
    with pytest.raises(InvalidInput, match="Ed25519 JWK"):
        public_key_from_jwk({"kty": "RSA", "n": "x", "e": "AQAB"})
    with pytest.raises(InvalidInput, match="Ed25519 JWK"):
        public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": "c2hvcnQ"})


def test_burn_statement_refuses_naive_times_and_bad_hashes(key: Ed25519PrivateKey) -> None:
    good = _statement(key)
    with pytest.raises(ValueError, match="aware"):
        BurnStatement(**{**_fields(good), "ended_at": datetime(2030, 1, 2)})  # noqa: DTZ001
    with pytest.raises(ValueError, match="id_hash"):
        BurnStatement(**{**_fields(good), "id_hash": SECRET_ID})


def _fields(statement: BurnStatement) -> dict[str, Any]:
    return {f.name: getattr(statement, f.name) for f in dataclasses.fields(statement)}


def test_sign_statement_refuses_a_statement_for_another_key(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="another key"):
        sign_statement(_statement(key), Ed25519PrivateKey.generate())


def test_load_or_create_signing_key_creates_pem_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"

    key, created = load_or_create_signing_key(path)
    again, created_again = load_or_create_signing_key(path)

    assert (created, created_again) == (True, False)
    assert key.private_bytes_raw() == again.private_bytes_raw()
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_load_or_create_signing_key_reads_raw_keys(tmp_path: Path) -> None:
    path = tmp_path / "raw.key"
    path.write_bytes(RFC8037_D)

    key, created = load_or_create_signing_key(path)

    assert not created
    assert key.private_bytes_raw() == RFC8037_D


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"garbage", id="garbage"),
        pytest.param(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            id="ec-key",
        ),
    ],
)
def test_load_or_create_signing_key_refuses_other_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)

    with pytest.raises(ConfigError, match=str(path)):
        load_or_create_signing_key(path)
