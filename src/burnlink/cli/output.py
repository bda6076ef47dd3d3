"""What the CLI prints: results for people or as JSON, errors as one line, and exit codes.

One table maps each error class to its exit code and JSON code (docs/cli.md). An error is one
line on stderr, ``burnlink: <message>``, or with ``--json`` the object
``{"error": {"code", "message", ...}}``. Messages never hold a key, token, passphrase or content:
the errors are built that way, and an unexpected exception shows only its type.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any

import click

from burnlink.cli.client import (
    KeyMismatch,
    LoginDenied,
    LoginExpired,
    Receipt,
    RequestTimedOut,
    ServerUnavailable,
    Viewer,
)
from burnlink.errors import (
    AccessDenied,
    AuditBehindAnchor,
    AuditLogMissing,
    AuditOutsideChain,
    AuditStateInvalid,
    BurnlinkError,
    CheckpointInvalid,
    ConfigError,
    CreateNotAllowed,
    EnvelopeError,
    GeoDenied,
    InsufficientScope,
    IntegrityError,
    InvalidApiToken,
    InvalidInput,
    IpDenied,
    MfaRequired,
    NotPermitted,
    PassphraseRequired,
    PayloadTooLarge,
    RateLimited,
    RecipientMismatch,
    RequestAnswered,
    RequestExpired,
    SecretUnavailable,
    SignInRequired,
    StorageError,
    TeamPolicyRefused,
    VerificationFailed,
    VerificationRequired,
    WrongPassphrase,
)


class ExitCode(IntEnum):
    """The CLI's exit codes; a public contract."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    """Click's own: an unknown option, a missing argument, a value of the wrong type."""
    UNAVAILABLE = 3
    """The secret does not exist, expired, was used up or burned, or the key is wrong."""
    ACCESS_DENIED = 4
    """A passphrase or verification code is required or wrong, no attempts are left, or the
    secret's rules refuse this network or country."""
    SERVER = 5
    """The server or its store cannot be reached or failed, or it asks to retry later (429)."""
    INVALID_INPUT = 6
    """A bad link, TTL, file or empty secret, a secret too large, or a value the server refused."""
    CONFIG = 7
    """``burnlink serve`` was given an invalid setting."""
    INTEGRITY = 8
    """A verification failed: ``audit verify`` found the audit log altered, ``receipt verify``
    a statement that does not verify (``verify-site``'s mismatch is this code too)."""
    AUDIT_STATE = 9
    """``audit verify``: the audit log's state row (base and head) is missing or fails its MAC."""
    AUDIT_OUTSIDE_CHAIN = 10
    """``audit verify``: an entry lies outside base..head (forged past the head, or left behind
    the base)."""
    AUDIT_MISSING = 11
    """``audit verify``/``export``: there is no audit log at the location (nothing is created)."""
    AUDIT_BEHIND_ANCHOR = 12
    """``audit verify``: the head is behind ``--checkpoint`` or ``--expect-head``, or the entry at
    the checkpoint's seq is another one (the tail was deleted, or the log rolled back)."""
    CHECKPOINT_INVALID = 13
    """``audit verify --checkpoint``: the checkpoint does not verify, or is of another log."""
    SIGN_IN = 14
    """Not signed in: no API token, or the server refused it (unknown, revoked, expired), or the
    server lets only signed-in users create."""
    LOGIN_DENIED = 15
    """``login``: the sign-in was denied at the identity provider, or the server refused it
    (e.g. a second factor it requires was missing)."""
    LOGIN_EXPIRED = 16
    """``login``: the code expired, or ``--timeout`` passed, before the sign-in was approved."""
    REQUEST_TIMEOUT = 17
    """``request --wait``: ``--timeout`` passed before the request was answered (it stays open
    until it expires, but this process's private key is gone with it)."""
    REQUEST_CLOSED = 18
    """``request``/``answer``: the request expired unanswered, or (``answer``) it was answered
    already; nothing was sent."""


EXIT_SUMMARIES: dict[ExitCode, str] = {
    ExitCode.OK: "ok",
    ExitCode.UNEXPECTED: "unexpected error",
    ExitCode.USAGE: "usage error",
    ExitCode.UNAVAILABLE: "secret unavailable (gone, expired, already viewed, wrong key)",
    ExitCode.ACCESS_DENIED: "access denied (passphrase, code or access rules)",
    ExitCode.SERVER: "server or store unreachable",
    ExitCode.INVALID_INPUT: "invalid input",
    ExitCode.CONFIG: "configuration error",
    ExitCode.INTEGRITY: "a verification failed (audit verify, receipt verify, verify-site)",
    ExitCode.AUDIT_STATE: "audit state row missing or invalid",
    ExitCode.AUDIT_OUTSIDE_CHAIN: "audit entry outside the chain",
    ExitCode.AUDIT_MISSING: "no audit log there",
    ExitCode.AUDIT_BEHIND_ANCHOR: "audit log behind its checkpoint or --expect-head",
    ExitCode.CHECKPOINT_INVALID: "checkpoint does not verify",
    ExitCode.SIGN_IN: "not signed in, or the API token is invalid",
    ExitCode.LOGIN_DENIED: "sign-in denied or refused",
    ExitCode.LOGIN_EXPIRED: "sign-in not approved in time",
    ExitCode.REQUEST_TIMEOUT: "request not answered in time",
    ExitCode.REQUEST_CLOSED: "request expired or already answered",
}
"""The short form of each exit code, for ``--help``; every member must have one."""


def exit_codes_help() -> str:
    """The ``Exit codes: ...`` paragraph of every command's help, built from ``ExitCode``."""
    text = "Exit codes: " + ", ".join(f"{code.value} {EXIT_SUMMARIES[code]}" for code in ExitCode)
    # \b keeps click from rewrapping the list (it would join it with the text above).
    return "\b\n" + textwrap.fill(text, width=78, break_on_hyphens=False) + "."


# Most specific class first: the first match wins.
ERRORS: tuple[tuple[type[BurnlinkError], ExitCode, str], ...] = (
    (SecretUnavailable, ExitCode.UNAVAILABLE, "not_found"),
    (RequestAnswered, ExitCode.REQUEST_CLOSED, "already_answered"),
    (RequestExpired, ExitCode.REQUEST_CLOSED, "request_expired"),
    (RequestTimedOut, ExitCode.REQUEST_TIMEOUT, "request_timeout"),
    (InvalidApiToken, ExitCode.SIGN_IN, "invalid_token"),
    (SignInRequired, ExitCode.SIGN_IN, "login_required"),
    (InsufficientScope, ExitCode.ACCESS_DENIED, "insufficient_scope"),
    (CreateNotAllowed, ExitCode.ACCESS_DENIED, "create_not_allowed"),
    (TeamPolicyRefused, ExitCode.ACCESS_DENIED, "team_policy"),
    (RecipientMismatch, ExitCode.ACCESS_DENIED, "recipient_mismatch"),
    (MfaRequired, ExitCode.ACCESS_DENIED, "mfa_required"),
    (NotPermitted, ExitCode.ACCESS_DENIED, "not_permitted"),
    (PassphraseRequired, ExitCode.ACCESS_DENIED, "passphrase_required"),
    (WrongPassphrase, ExitCode.ACCESS_DENIED, "wrong_passphrase"),
    (AccessDenied, ExitCode.ACCESS_DENIED, "access_denied"),
    (IpDenied, ExitCode.ACCESS_DENIED, "ip_denied"),
    (GeoDenied, ExitCode.ACCESS_DENIED, "geo_denied"),
    (VerificationFailed, ExitCode.ACCESS_DENIED, "verification_failed"),
    (VerificationRequired, ExitCode.ACCESS_DENIED, "verification_required"),
    (RateLimited, ExitCode.SERVER, "rate_limited"),
    (ServerUnavailable, ExitCode.SERVER, "server_unavailable"),
    (StorageError, ExitCode.SERVER, "store_unavailable"),
    (PayloadTooLarge, ExitCode.INVALID_INPUT, "payload_too_large"),
    (EnvelopeError, ExitCode.INVALID_INPUT, "invalid_envelope"),
    (InvalidInput, ExitCode.INVALID_INPUT, "invalid_input"),
    (AuditStateInvalid, ExitCode.AUDIT_STATE, "audit_state_invalid"),
    (AuditOutsideChain, ExitCode.AUDIT_OUTSIDE_CHAIN, "audit_outside_chain"),
    (AuditLogMissing, ExitCode.AUDIT_MISSING, "audit_log_missing"),
    (AuditBehindAnchor, ExitCode.AUDIT_BEHIND_ANCHOR, "audit_behind_anchor"),
    (CheckpointInvalid, ExitCode.CHECKPOINT_INVALID, "checkpoint_invalid"),
    (KeyMismatch, ExitCode.INTEGRITY, "key_mismatch"),
    (IntegrityError, ExitCode.INTEGRITY, "integrity_failed"),
    (ConfigError, ExitCode.CONFIG, "config_error"),
    (LoginDenied, ExitCode.LOGIN_DENIED, "login_denied"),
    (LoginExpired, ExitCode.LOGIN_EXPIRED, "login_expired"),
)


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and JSON error code for ``exc``."""
    for cls, exit_code, code in ERRORS:
        if isinstance(exc, cls):
            return exit_code, code
    return ExitCode.UNEXPECTED, "internal_error"


def error_message(exc: BaseException) -> str:
    """The one-line message for ``exc``, with the hint a CLI user needs."""
    if not isinstance(exc, BurnlinkError):
        return f"unexpected error ({type(exc).__name__}); please report it"
    message = str(exc)
    if isinstance(exc, PassphraseRequired):
        message += " Set BURNLINK_PASSPHRASE, or run on a terminal to be asked for it."
    elif isinstance(exc, AccessDenied | VerificationFailed) and exc.attempts_left:
        plural = "s" if exc.attempts_left != 1 else ""
        message += f" {exc.attempts_left} attempt{plural} left."
    elif isinstance(exc, VerificationRequired):
        message += " Pass it with --otp (or BURNLINK_OTP), or run on a terminal to be asked."
    elif isinstance(exc, SignInRequired):
        message += " Run `burnlink login`, or set BURNLINK_TOKEN."
    elif isinstance(exc, TeamPolicyRefused) and exc.teams:
        message += f" (set by your team{'s' if len(exc.teams) > 1 else ''}: {', '.join(exc.teams)})"
    return clean(message)


@contextmanager
def reporting(as_json: bool) -> Iterator[None]:
    """Turn an error in the block into its report on stderr and its exit code."""
    try:
        yield
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI's last boundary; see error_message
        exit_code, code = classify(exc)
        message = error_message(exc)
        if as_json:
            body: dict[str, Any] = {"code": code, "message": message}
            if isinstance(exc, InvalidInput | TeamPolicyRefused):
                body["field"] = exc.field
            if isinstance(exc, TeamPolicyRefused):
                body["teams"] = list(exc.teams)
            if isinstance(exc, AccessDenied | VerificationFailed):
                body["attempts_left"] = exc.attempts_left
            if isinstance(exc, RateLimited):
                body["retry_after"] = exc.retry_after
            click.echo(json.dumps({"error": body}), err=True)
        else:
            click.echo(f"burnlink: {message}", err=True)
        raise click.exceptions.Exit(exit_code) from None


def print_json(value: object) -> None:
    """One JSON document on stdout (ASCII, so any terminal or pipe encoding takes it)."""
    click.echo(json.dumps(value))


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """The receipt as ``status --json`` prints it: the API's receipt fields."""
    return {
        "id": receipt.id,
        "state": receipt.state,
        "created_at": receipt.created_at,
        "expires_at": receipt.expires_at,
        "ended_at": receipt.ended_at,
        "max_views": receipt.max_views,
        "views_used": receipt.views_used,
        "views_left": receipt.views_left,
        "events": [
            {
                "at": e.at,
                "type": e.type,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "country": e.country,
                "agent": e.agent,
                "viewer": None
                if e.viewer is None
                else {"email": e.viewer.email, "mfa": e.viewer.mfa},
            }
            for e in receipt.events
        ],
        "statement": receipt.statement,
    }


def receipt_text(receipt: Receipt) -> str:
    """The receipt for people: state, times, views, and one line per event."""
    lines = [
        f"State:    {clean(receipt.state)}",
        f"Created:  {clean(receipt.created_at)}",
        f"Expires:  {clean(receipt.expires_at)}",
    ]
    if receipt.ended_at:
        lines.append(f"Ended:    {clean(receipt.ended_at)}")
    lines.append(
        f"Views:    {receipt.views_used} used, {receipt.views_left} left (of {receipt.max_views})"
    )
    lines.append("Events:")
    width = max((len(e.type) for e in receipt.events), default=0)
    for e in receipt.events:
        who = e.agent or e.user_agent or "-"
        fields = [e.at, e.type.ljust(width), e.ip or "-", e.country or "--", who]
        if e.viewer is not None:
            fields.append(f"by {viewer_text(e.viewer)}")
        lines.append("  " + "  ".join(clean(f) for f in fields).rstrip())
    if not receipt.events:
        lines.append("  (none)")
    if receipt.statement:
        lines.append("Proof of destruction (signed; check with `burnlink receipt verify`):")
        lines.append("  " + clean(json.dumps(receipt.statement, separators=(",", ":"))))
    return "\n".join(lines)


def viewer_text(viewer: Viewer) -> str:
    """``alice@example.com (MFA)``: the signed-in recipient a receipt event names."""
    email = viewer.email or "a signed-in user without an email address"
    return f"{email} ({'MFA' if viewer.mfa else 'without MFA'})"


def clean(text: str) -> str:
    """``text`` with control characters replaced: a user agent must not drive the terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
