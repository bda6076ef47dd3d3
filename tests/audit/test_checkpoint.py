"""Signed checkpoints of the audit head: the format, its checks, and the writer's refusals."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink.audit import AuditStore
from burnlink.audit.checkpoint import (
    CHECKPOINT_TYPE,
    Checkpoint,
    CheckpointWriter,
    sign_checkpoint,
    verify_checkpoint,
)
from burnlink.errors import CheckpointInvalid
from burnlink.ids import key_id
from burnlink.jwk import public_keys_document
from burnlink.models import EndReason
from burnlink.signing import burn_statement, sign_statement
from tests.audit.conftest import KEY, T0, Raw, make_event

pytestmark = pytest.mark.anyio

SIGNER = Ed25519PrivateKey.generate()


def _checkpoint(seq: int = 7) -> Checkpoint:
    return Checkpoint(head_seq=seq, head_mac=bytes(range(32)), at=T0, log=key_id(KEY))


def test_a_checkpoint_round_trips_through_its_signed_document() -> None:
    document = sign_checkpoint(_checkpoint(), SIGNER)

    checked = verify_checkpoint(document, public_keys_document(SIGNER.public_key()))

    assert checked == _checkpoint()
    assert json.loads(document)["statement"] == {
        "type": CHECKPOINT_TYPE,
        "head_seq": 7,
        "head_mac": bytes(range(32)).hex(),
        "at": "2030-01-01T00:00:00.000Z",
        "log": key_id(KEY),
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("head_seq", 8),
        ("head_seq", -1),
        ("head_seq", True),
        ("head_mac", "00" * 32),
        ("head_mac", "zz"),
        ("log", "0" * 16),
        ("at", "yesterday"),
        ("type", "burnlink.burn.v1"),
    ],
)
def test_an_altered_or_malformed_checkpoint_does_not_verify(field: str, value: object) -> None:
    document = json.loads(sign_checkpoint(_checkpoint(), SIGNER))
    document["statement"][field] = value

    with pytest.raises(CheckpointInvalid):
        verify_checkpoint(json.dumps(document), SIGNER.public_key())


def test_a_burn_statement_is_not_a_checkpoint() -> None:
    statement = burn_statement(
        "Qm9vb3Jvb3Jvb3Jvb3Jvbw",
        created_at=T0,
        ended_at=T0 + timedelta(minutes=1),
        how=EndReason.VIEWED,
        issuer="https://secrets.example.com",
        key=SIGNER,
    )

    with pytest.raises(CheckpointInvalid):
        verify_checkpoint(sign_statement(statement, SIGNER), SIGNER.public_key())


def test_an_oversized_document_is_refused_before_parsing() -> None:
    with pytest.raises(CheckpointInvalid, match="too large"):
        verify_checkpoint(" " * 5000, SIGNER.public_key())


async def test_the_writer_refuses_to_sign_a_state_row_that_does_not_verify(
    audit_store: AuditStore, raw: Raw, tmp_path: Path
) -> None:
    for n in range(3):
        await audit_store.append(make_event(n))
    target = tmp_path / "checkpoint.json"
    published: list[str] = []
    writer = CheckpointWriter(
        audit_store, signing_key=SIGNER, now=lambda: T0, file=target, publish=(published.append,)
    )
    assert await writer.write_once() is not None
    first = target.read_text()
    raw.execute("UPDATE {state} SET head_seq = 2")

    assert await writer.write_once() is None

    assert target.read_text() == first  # the last good checkpoint stays
    assert len(published) == 1
    assert writer.failures == 1
    assert verify_checkpoint(first, SIGNER.public_key()).head_seq == 3
