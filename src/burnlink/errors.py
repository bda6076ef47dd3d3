"""The exceptions burnlink raises, independent of HTTP and of any storage driver.

Callers see only these; driver and library exceptions are translated where they occur.
Web and CLI each map them in one table (``web/errors.py``, ``cli/output.py``).

    BurnlinkError
    ├── ConfigError
    ├── InvalidInput(field, reason)
    │   ├── EnvelopeError
    │   └── PayloadTooLarge(limit)
    ├── SecretUnavailable
    ├── RequestClosed
    │   ├── RequestAnswered
    │   └── RequestExpired
    ├── RequestNotAnswered
    ├── RequestTimedOut
    ├── AccessDenied(attempts_left)
    │   ├── PassphraseRequired
    │   └── WrongPassphrase
    ├── AddressDenied
    │   ├── IpDenied
    │   └── GeoDenied
    ├── VerificationRequired(hint)
    │   └── VerificationFailed(attempts_left)
    │       └── CodesSpent
    ├── RateLimited(retry_after)
    ├── MailUnavailable
    ├── AdminRequired
    │   └── MetricsTokenRequired
    ├── SignInRequired
    │   ├── LoginRequired(max_age, next_path)
    │   │   └── FreshLoginRequired
    │   └── InvalidApiToken
    ├── NotPermitted
    │   ├── InsufficientScope(scope)
    │   ├── CreateNotAllowed
    │   ├── TeamPolicyRefused(field, teams)
    │   ├── RecipientMismatch
    │   └── MfaRequired
    ├── TokenNotFound
    ├── CsrfFailed
    ├── SignInRefused(reason)
    ├── IntegrityError
    │   ├── KeyMismatch
    │   ├── AuditStateInvalid
    │   ├── AuditOutsideChain
    │   ├── AuditLogMissing
    │   ├── AuditBehindAnchor
    │   └── CheckpointInvalid
    └── StorageError
        ├── StorageUnavailable
        │   └── AuditUnavailable
        └── DuplicateId

Messages never contain ids, tokens, keys or content.
"""

from __future__ import annotations


class BurnlinkError(Exception):
    """Root of every error burnlink raises on purpose."""

    code: str | None = None
    """The API's error code (``not_found``, ``wrong_passphrase``, …) when the error came from a
    server's answer (the SDK sets it); ``None`` otherwise."""


class ConfigError(BurnlinkError):
    """Raised at start-up when a setting is missing or invalid."""


class InvalidInput(BurnlinkError):
    """Raised when a request or envelope field fails validation."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EnvelopeError(InvalidInput):
    """Raised when an envelope is malformed, of an unknown version, or fails to decrypt."""

    def __init__(self, reason: str, field: str = "envelope") -> None:
        super().__init__(field, reason)


class PayloadTooLarge(InvalidInput):
    """Raised when a secret or request body exceeds the configured size limit."""

    def __init__(self, limit: int, field: str = "body") -> None:
        super().__init__(field, f"larger than the limit of {limit} bytes")
        self.limit = limit


class SecretUnavailable(BurnlinkError):
    """Raised for a secret that never existed, expired, was used up or burned, or a wrong key.

    All of these look the same on purpose, so that an id alone reveals nothing.
    """

    def __init__(self) -> None:
        super().__init__("This secret does not exist, has expired, or has already been viewed.")


class RequestClosed(BurnlinkError):
    """Raised for an answer to a request that no longer takes one (changing nothing)."""


class RequestAnswered(RequestClosed):
    """Raised for a second answer: the request was answered already."""

    def __init__(self) -> None:
        super().__init__("This request has already been answered; it takes one answer.")


class RequestExpired(RequestClosed):
    """Raised for an answer after the request's time ran out."""

    def __init__(self) -> None:
        super().__init__("This request has expired; ask the requester for a new one.")


class RequestNotAnswered(BurnlinkError):
    """Raised when the requester opens the answer of a request not answered yet."""

    def __init__(self) -> None:
        super().__init__("This request has not been answered yet.")


class RequestTimedOut(BurnlinkError):
    """Raised when a requester stops waiting (its timeout passed) before the answer came;
    ``expires_at`` is when the request itself ends, when known."""

    def __init__(self, message: str, expires_at: str | None = None) -> None:
        super().__init__(message)
        self.expires_at = expires_at


class AccessDenied(BurnlinkError):
    """Raised when the link is right but an access rule refused the reveal."""

    def __init__(self, message: str, attempts_left: int) -> None:
        super().__init__(message)
        self.attempts_left = attempts_left


class PassphraseRequired(AccessDenied):
    """Raised when a passphrase-protected secret is revealed without a passphrase (not counted)."""

    def __init__(self, attempts_left: int) -> None:
        super().__init__("This secret is protected by a passphrase.", attempts_left)


class WrongPassphrase(AccessDenied):
    """Raised when the passphrase is wrong; the attempt counted, and at zero the secret burned."""

    def __init__(self, attempts_left: int) -> None:
        message = (
            "Wrong passphrase."
            if attempts_left
            else "Wrong passphrase. No attempts are left: the secret has been destroyed."
        )
        super().__init__(message, attempts_left)


class AddressDenied(BurnlinkError):
    """Raised when the client's address is refused by an access rule; nothing was consumed."""


class IpDenied(AddressDenied):
    """Raised when the client's IP is outside the secret's (or the server's) allowed networks."""

    def __init__(self) -> None:
        super().__init__("Your network address is not allowed to do this.")


class GeoDenied(AddressDenied):
    """Raised when the client's country is refused by the secret's or the server's rules."""

    def __init__(self) -> None:
        super().__init__("This secret cannot be opened from your location.")


class VerificationRequired(BurnlinkError):
    """Raised when the recipient must prove control of an email address; a code was sent."""

    def __init__(self, hint: str, message: str | None = None) -> None:
        super().__init__(message or f"A verification code was sent to {hint}. Send it as 'otp'.")
        self.hint = hint


class VerificationFailed(VerificationRequired):
    """Raised when the one-time code is wrong; at zero attempts a new code must be requested."""

    def __init__(self, hint: str, attempts_left: int) -> None:
        message = (
            "Wrong verification code."
            if attempts_left
            else "Wrong verification code. Request a new code by revealing without one."
        )
        super().__init__(hint, message)
        self.attempts_left = attempts_left


class CodesSpent(VerificationFailed):
    """Raised when every one-time code a secret allows was used up or expired unused; the
    secret was destroyed (locked)."""

    def __init__(self, hint: str, codes: int) -> None:
        super().__init__(hint, 0)
        self.args = (
            f"All {codes} verification codes sent for this secret were used up or expired: "
            "the secret has been destroyed. Ask the sender for a new link.",
        )


class RateLimited(BurnlinkError):
    """Raised when a client made too many requests; it may retry after ``retry_after`` s."""

    def __init__(self, retry_after: int, *, limit: str = "", why: str = "") -> None:
        super().__init__(
            f"{why or 'Too many requests'}; try again in {in_words(retry_after)}."
            if why
            else f"Too many requests. Try again in {retry_after} seconds."
        )
        self.retry_after = retry_after
        # Which one, for the audit: create, reveal, verify, failures, secret_failures, admin.
        self.limit = limit


def in_words(seconds: int) -> str:
    """``45`` → ``45 seconds``, ``61`` → ``2 minutes``: a wait, rounded up, for a message."""
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = -(-seconds // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class MailUnavailable(BurnlinkError):
    """Raised when a verification mail could not be sent."""

    def __init__(self, reason: str = "") -> None:
        super().__init__("The verification code could not be sent. Try again in a minute.")
        self.reason = reason


class AdminRequired(BurnlinkError):
    """Raised when an admin route is called without the right ``BURNLINK_ADMIN_TOKEN``."""

    def __init__(self) -> None:
        super().__init__("This route needs the server's admin token as a bearer token.")


class MetricsTokenRequired(AdminRequired):
    """Raised when ``GET /metrics`` is called without the right ``BURNLINK_METRICS_TOKEN``
    (or, with none set, other than directly from loopback)."""

    def __init__(self) -> None:
        BurnlinkError.__init__(
            self,
            "GET /metrics needs BURNLINK_METRICS_TOKEN as a bearer token; with none set, it"
            " answers only direct connections from loopback.",
        )


class SignInRequired(BurnlinkError):
    """Raised when a request needs a signed-in user (a session or an API token) it lacks."""


class LoginRequired(SignInRequired):
    """Raised when a route needs a signed-in user and the request has no live session or token.

    The web layer answers with a ``login_url``: ``/auth/login``, with ``max_age`` when set, and
    ``next`` (``next_path``, else the page asked for) to come back to after the sign-in."""

    def __init__(
        self, message: str = "", *, max_age: int | None = None, next_path: str | None = None
    ) -> None:
        super().__init__(message or "This needs you to sign in.")
        self.max_age = max_age
        self.next_path = next_path


class FreshLoginRequired(LoginRequired):
    """Raised when a sensitive action needs a sign-in at most ``max_age`` seconds old."""

    def __init__(self, *, max_age: int, next_path: str | None = None) -> None:
        super().__init__(
            "This needs a recent sign-in: sign in again, then retry.",
            max_age=max_age,
            next_path=next_path,
        )


class CsrfFailed(BurnlinkError):
    """Raised when a cookie-authenticated request that changes state lacks the session's
    ``X-Burnlink-CSRF`` token or comes from another origin."""

    def __init__(self) -> None:
        super().__init__(
            "Refused: a signed-in request that changes something needs the X-Burnlink-CSRF"
            " header from GET /api/v1/me, sent from this site."
        )


class SignInRefused(BurnlinkError):
    """Raised when a sign-in cannot complete: a wrong or replayed ``state``, an ID token that
    does not verify, a provider that refused or did not answer, or a missing second factor.

    ``reason`` is a short code for the audit (``state_mismatch``, ``id_token_invalid``,
    ``mfa_required``, ``provider_error``, ``provider_unavailable``, ...); the message is for
    the user and never holds a token or code.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidApiToken(SignInRequired):
    """Raised for a bearer API token that is unknown, revoked, expired or malformed: the same
    answer for each, so a guess learns nothing."""

    def __init__(self) -> None:
        super().__init__("The API token is invalid, expired or revoked.")


class NotPermitted(BurnlinkError):
    """Raised when the signed-in user may not do what the request asks."""


class InsufficientScope(NotPermitted):
    """Raised when an API token lacks the scope a route needs; ``scope`` names it."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"The API token lacks the scope this needs: {scope}.")
        self.scope = scope


class CreateNotAllowed(NotPermitted):
    """Raised when a signed-in user is outside the domains and groups that may create, or is
    in a team that may not (``create = "nobody"``)."""

    def __init__(
        self, message: str = "Your account may not create secrets on this server."
    ) -> None:
        super().__init__(message)


class TeamPolicyRefused(NotPermitted):
    """Raised when a create asks for more than the sender's teams allow (docs/identity.md §
    Teams); ``field`` names the rule, ``teams`` the sender's teams that set it."""

    def __init__(self, field: str, message: str, teams: tuple[str, ...]) -> None:
        super().__init__(message)
        self.field = field
        self.teams = teams


class RecipientMismatch(NotPermitted):
    """Raised when the signed-in user revealing a secret bound to recipients is none of them."""

    def __init__(self) -> None:
        super().__init__(
            "This secret is for other recipients: the signed-in user's verified email, groups"
            " and domain match none of them."
        )


class MfaRequired(NotPermitted):
    """Raised when a secret needs its recipient's fresh sign-in with a second factor and the
    request has none: an API token (never fresh), or a sign-in without a second factor."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "This secret needs a sign-in with a second factor (MFA) at most five minutes old:"
            " open its link in a browser and sign in there with your second factor (an API"
            " token, such as the one 'burnlink login' keeps, never counts)."
        )


class TokenNotFound(BurnlinkError):
    """Raised when an API token id names no live token the caller may revoke."""

    def __init__(self) -> None:
        super().__init__("No such API token (or it was already revoked or has expired).")


class IntegrityError(BurnlinkError):
    """Raised when an audit chain or a signed statement does not verify."""


class KeyMismatch(IntegrityError):
    """Raised by an answerer when the public key the server handed out is not the one the
    request link's fingerprint names (a server that swapped in its own); nothing was sent."""


class AuditStateInvalid(IntegrityError):
    """Raised when the audit log's state row (its base and head) is missing or fails its MAC."""


class AuditOutsideChain(IntegrityError):
    """Raised when the audit log holds entries outside the base..head its state row records."""


class AuditLogMissing(IntegrityError):
    """Raised when there is no audit log where one is expected (nothing is created)."""


class AuditBehindAnchor(IntegrityError):
    """Raised when the audit log's head is behind (or differs from) a head recorded outside
    the database: a signed checkpoint or ``--expect-head``."""


class CheckpointInvalid(IntegrityError):
    """Raised when a signed audit checkpoint does not verify, or is of another audit log."""


class StorageError(BurnlinkError):
    """Raised when the store fails."""


class StorageUnavailable(StorageError):
    """Raised when the store cannot be reached or timed out; the operation did not happen."""

    def __init__(self, message: str = "The secret store is unavailable.") -> None:
        super().__init__(message)


class AuditUnavailable(StorageUnavailable):
    """Raised when an event cannot be written to the audit log; the action it records did not
    happen (fail closed)."""

    def __init__(self, message: str = "The audit log is unavailable; nothing was changed.") -> None:
        super().__init__(message)


class DuplicateId(StorageError):
    """Raised by ``create`` when the id is taken; the existing secret is untouched."""
