"""Exit codes, error messages and the human receipt."""

from __future__ import annotations

import pytest

from burnlink.cli.client import Event, Receipt, ServerUnavailable
from burnlink.cli.output import ExitCode, classify, error_message, receipt_text
from burnlink.errors import (
    AuditBehindAnchor,
    AuditLogMissing,
    AuditOutsideChain,
    AuditStateInvalid,
    CheckpointInvalid,
    ConfigError,
    DuplicateId,
    EnvelopeError,
    IntegrityError,
    InvalidInput,
    PassphraseRequired,
    PayloadTooLarge,
    SecretUnavailable,
    StorageUnavailable,
    WrongPassphrase,
)


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (SecretUnavailable(), ExitCode.UNAVAILABLE),
        (PassphraseRequired(5), ExitCode.ACCESS_DENIED),
        (WrongPassphrase(0), ExitCode.ACCESS_DENIED),
        (ServerUnavailable("down"), ExitCode.SERVER),
        (StorageUnavailable(), ExitCode.SERVER),
        (DuplicateId(), ExitCode.SERVER),
        (PayloadTooLarge(1024), ExitCode.INVALID_INPUT),
        (EnvelopeError("bad"), ExitCode.INVALID_INPUT),
        (InvalidInput("--ttl", "bad"), ExitCode.INVALID_INPUT),
        (ConfigError("bad"), ExitCode.CONFIG),
        (IntegrityError("bad"), ExitCode.INTEGRITY),
        (AuditStateInvalid("bad"), ExitCode.AUDIT_STATE),
        (AuditOutsideChain("bad"), ExitCode.AUDIT_OUTSIDE_CHAIN),
        (AuditLogMissing("bad"), ExitCode.AUDIT_MISSING),
        (AuditBehindAnchor("bad"), ExitCode.AUDIT_BEHIND_ANCHOR),
        (CheckpointInvalid("bad"), ExitCode.CHECKPOINT_INVALID),
        (KeyError("a secret value"), ExitCode.UNEXPECTED),
    ],
)
def test_classify_maps_each_error_to_its_exit_code(error: Exception, exit_code: ExitCode) -> None:
    assert classify(error)[0] == exit_code


def test_exit_codes_are_the_documented_numbers() -> None:
    assert [int(code) for code in ExitCode] == list(range(15))


def test_error_message_of_an_unexpected_error_shows_only_its_type() -> None:
    message = error_message(KeyError("a secret value"))

    assert "KeyError" in message
    assert "secret value" not in message


def test_error_message_counts_attempts_left() -> None:
    assert error_message(WrongPassphrase(1)) == "Wrong passphrase. 1 attempt left."
    assert "BURNLINK_PASSPHRASE" in error_message(PassphraseRequired(5))


def test_receipt_text_neutralises_control_characters() -> None:
    receipt = Receipt(
        id="Qm9vb3Jvb3Jvb3Jvb3Jvbw",
        state="viewed",
        created_at="2030-01-01T00:00:00.000Z",
        expires_at="2030-01-02T00:00:00.000Z",
        ended_at="2030-01-01T00:01:00.000Z",
        max_views=1,
        views_used=1,
        views_left=0,
        events=(
            Event(
                at="2030-01-01T00:01:00.000Z", type="viewed", ip=None, user_agent="x\x1b]0;pwn\x07"
            ),
        ),
    )

    text = receipt_text(receipt)

    assert "\x1b" not in text
    assert "\x07" not in text
    assert "viewed  -  --  x?]0;pwn?" in text
