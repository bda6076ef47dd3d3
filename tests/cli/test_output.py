"""Exit codes, error messages and the human receipt."""

from __future__ import annotations

import pytest

from burnlink.cli.client import Event, Receipt, ServerUnavailable, Viewer
from burnlink.cli.output import ExitCode, classify, error_message, receipt_json, receipt_text
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
    assert [int(code) for code in ExitCode] == list(range(19))


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


def _receipt_with(*events: Event) -> Receipt:
    return Receipt(
        id="Qm9vb3Jvb3Jvb3Jvb3Jvbw",
        state="viewed",
        created_at="2030-01-01T00:00:00.000Z",
        expires_at="2030-01-02T00:00:00.000Z",
        ended_at="2030-01-01T00:01:00.000Z",
        max_views=1,
        views_used=1,
        views_left=0,
        events=events,
    )


def test_receipt_text_and_json_name_the_viewer() -> None:
    at = "2030-01-01T00:01:00.000Z"
    receipt = _receipt_with(
        Event(at=at, type="created", ip="192.0.2.1", user_agent=None),
        Event(
            at=at,
            type="viewed",
            ip="203.0.113.7",
            user_agent=None,
            agent="Firefox (browser)",
            viewer=Viewer(email="alice@example.com", mfa=True),
        ),
        Event(at=at, type="viewed", ip=None, user_agent=None, viewer=Viewer(email=None, mfa=False)),
    )

    lines = receipt_text(receipt).splitlines()
    events = receipt_json(receipt)["events"]

    assert lines[-3].endswith("created  192.0.2.1  --  -")
    assert lines[-2].endswith(
        "viewed   203.0.113.7  --  Firefox (browser)  by alice@example.com (MFA)"
    )
    assert lines[-1].endswith("by a signed-in user without an email address (without MFA)")
    assert [e["viewer"] for e in events] == [
        None,
        {"email": "alice@example.com", "mfa": True},
        {"email": None, "mfa": False},
    ]


def test_receipt_text_neutralises_control_characters_in_a_viewers_email() -> None:
    viewer = Viewer(email="a\x1b[2J@example.com", mfa=True)
    receipt = _receipt_with(Event(at="t", type="viewed", ip=None, user_agent=None, viewer=viewer))

    assert "\x1b" not in receipt_text(receipt)
