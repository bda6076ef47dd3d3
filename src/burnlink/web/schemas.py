"""Request and response bodies of the JSON API v1, with their limits (docs/api.md).

Requests forbid unknown fields, so a client cannot set ids, counters or timestamps, and take
integers strictly (``"60"`` is not a TTL).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from burnlink.audit.events import format_time
from burnlink.config import Settings
from burnlink.envelope import MAX_ITERATIONS
from burnlink.netguard import MAX_URL_LENGTH
from burnlink.policy import EMAIL_PATTERN, MAX_RECIPIENT_CHARS, MAX_RECIPIENTS
from burnlink.service import MAX_PASSPHRASE_CHARS
from burnlink.useragents import AgentInfo

if TYPE_CHECKING:
    from burnlink.service.secrets import Receipt


def _iso_millis(moment: datetime) -> str:
    # format_time writes what isoformat(timespec="milliseconds") does, in one C call.
    return format_time(moment)


Instant = Annotated[datetime, PlainSerializer(_iso_millis, return_type=str, when_used="json")]
"""An aware UTC time, written as ISO 8601 with milliseconds and ``Z``."""

Otp = Annotated[str, Field(pattern=r"^[0-9]{6}$", description="A 6-digit one-time code.")]
Networks = Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=50)]
Countries = Annotated[list[Annotated[str, Field(max_length=2)]], Field(max_length=250)]
Recipients = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_RECIPIENT_CHARS)]],
    Field(max_length=MAX_RECIPIENTS),
]

B64Token = Annotated[
    str,
    Field(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"),
]
"""32 bytes in canonical unpadded base64url (the last character leaves its two spare bits 0)."""


MAX_LABEL_CHARS: Final = 100


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Unpadded canonical base64url, as ``ids.b64url_decode`` takes it: the last character of a
# length that is 2 or 3 modulo 4 leaves its unused bits zero.
_B64URL: Final = (
    r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
)
# What ``Envelope.from_json`` checks, said in the JSON schema only (the checks and their
# messages stay there): a passphrase's KDF fields come with ``pbkdf2-sha256`` and never
# without it; ``describe_limits`` adds the iteration counts the server takes.
_ENVELOPE_KDFS: Final[JsonDict] = {
    "oneOf": [
        {
            "title": "no passphrase",
            "properties": {"kdf": {"const": "none"}},
            "not": {"anyOf": [{"required": ["iter"]}, {"required": ["salt"]}]},
        },
        {
            "title": "passphrase",
            "required": ["iter", "salt"],
            "properties": {
                "kdf": {"const": "pbkdf2-sha256"},
                "iter": {"type": "integer"},
                "salt": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{21}[AQgw]$"},
            },
        },
    ]
}


class EnvelopeBody(_Request):
    """An envelope v1 (docs/crypto.md); checked in full by ``burnlink.envelope``."""

    model_config = ConfigDict(json_schema_extra=_ENVELOPE_KDFS)

    v: StrictInt = Field(json_schema_extra={"const": 1})
    alg: Literal["A256GCM"]
    kdf: Literal["none", "pbkdf2-sha256"]
    iter: StrictInt | None = None
    salt: str | None = Field(default=None, max_length=64)
    nonce: str = Field(max_length=64, json_schema_extra={"pattern": r"^[A-Za-z0-9_-]{16}$"})
    ct: str = Field(json_schema_extra={"pattern": _B64URL, "minLength": 22})


def _end_to_end(kdf: str, title: str, description: str) -> JsonDict:
    # An envelope whose KDF is ``kdf`` with its access token, and the passphrase proof
    # exactly when the envelope has a passphrase.
    proof = kdf != "none"
    return {
        "title": title,
        "description": description,
        "required": ["envelope", "access_token", *(["passphrase_proof"] if proof else [])],
        "properties": {
            "envelope": {"type": "object", "properties": {"kdf": {"const": kdf}}},
            "access_token": {"type": "string"},
            "passphrase_proof": {"type": "string" if proof else "null"},
            "secret": {"type": "null"},
            "passphrase": {"type": "null"},
        },
    }


# The ways to create, as the JSON schema of the body says them. The server enforces the
# same (``_one_mode`` below; the passphrase proof in ``service``), so a body valid against
# the published schema is one it takes; ``describe_limits`` adds the server's own bounds.
_CREATE_MODES: Final[JsonDict] = {
    "oneOf": [
        {
            "title": "curl mode",
            "description": "`secret` is plaintext; the server encrypts it.",
            "required": ["secret"],
            "properties": {
                "secret": {"type": "string"},
                "envelope": {"type": "null"},
                "access_token": {"type": "null"},
                "passphrase_proof": {"type": "null"},
            },
        },
        _end_to_end("none", "end-to-end mode", "`envelope` was sealed by the client"),
        _end_to_end(
            "pbkdf2-sha256",
            "end-to-end mode with a passphrase",
            "`envelope` was sealed by the client with a passphrase; `passphrase_proof` proves it",
        ),
    ]
}


class CreateSecretRequest(_Request):
    """Create a secret: either ``secret`` (the server encrypts) or ``envelope`` (end-to-end)."""

    model_config = ConfigDict(json_schema_extra=_CREATE_MODES)

    secret: str | None = Field(
        default=None, min_length=1, description="Plaintext; the server encrypts it."
    )
    passphrase: str | None = Field(default=None, min_length=1, max_length=MAX_PASSPHRASE_CHARS)
    envelope: EnvelopeBody | None = Field(
        default=None, description="An envelope sealed by the client (end-to-end mode)."
    )
    access_token: B64Token | None = Field(default=None, description="With ``envelope``.")
    passphrase_proof: B64Token | None = Field(
        default=None, description="With a passphrase-protected ``envelope``."
    )
    ttl: StrictInt | None = Field(default=None, description="Seconds until the secret expires.")
    max_views: StrictInt | None = Field(default=None, description="Views before it burns.")
    allowed_ips: Networks = Field(
        default_factory=list, description="IPs/CIDRs (v4, v6) that may reveal; empty: anyone."
    )
    allowed_countries: Countries = Field(
        default_factory=list, description="ISO 3166 alpha-2 codes that may reveal."
    )
    denied_countries: Countries = Field(
        default_factory=list, description="ISO 3166 alpha-2 codes that may not reveal."
    )
    recipient_email: str | None = Field(
        default=None,
        max_length=254,
        json_schema_extra={"pattern": EMAIL_PATTERN},  # checked by ``access.parse_email``
        description="The recipient must enter a code mailed to this address before revealing.",
    )
    recipients: Recipients = Field(
        default_factory=list,
        description="Who may reveal, once signed in: `user@example.com` (their verified email),"
        " `group:NAME` (a group of theirs) or `domain:example.com` (their email's domain);"
        " empty: anyone with the link. Needs sign-in configured (BURNLINK_OIDC_ISSUER).",
    )
    require_mfa: StrictBool = Field(
        default=False,
        description="With `recipients`: the recipient's sign-in must carry a second factor and"
        " be at most five minutes old.",
    )
    notify_url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="A webhook (Standard Webhooks, signed with the server's secret) told of each"
        " view, the burn and the expiry; see docs/audit.md.",
    )
    label: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LABEL_CHARS,
        description='The sender\'s own name for the secret, shown in "my secrets" and the'
        " receipt (never the content; signed-in senders).",
    )

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        if (self.secret is None) == (self.envelope is None):
            raise ValueError("give exactly one of 'secret' and 'envelope'")
        if self.secret is not None and (self.access_token or self.passphrase_proof):
            raise ValueError("'access_token' and 'passphrase_proof' go with 'envelope' only")
        if self.envelope is not None:
            if self.passphrase is not None:
                raise ValueError("'passphrase' never goes with 'envelope'; send the proof")
            if self.access_token is None:
                raise ValueError("'envelope' needs 'access_token'")
        return self


class CreateSecretResponse(BaseModel):
    """A created secret. ``manage_url`` is shown once: only its holder can see the receipt."""

    id: str
    url: str = Field(description="The link; in end-to-end mode without the #key fragment.")
    manage_url: str
    expires_at: Instant
    max_views: int


class RevealRequest(_Request):
    """Reveal with the link key (the server decrypts: curl mode)."""

    key: str = Field(max_length=128)
    passphrase: str | None = Field(default=None, max_length=MAX_PASSPHRASE_CHARS)
    otp: Otp | None = None


class FileBody(BaseModel):
    """A revealed file."""

    name: str | None
    mime: str | None
    content_base64: str


class RevealResponse(BaseModel):
    """A revealed secret: ``secret`` for text, ``file`` for a file."""

    secret: str | None
    file: FileBody | None = None
    views_left: int


class ConsumeRequest(_Request):
    """Take one view (end-to-end mode); the access token goes in ``Authorization``."""

    passphrase_proof: B64Token | None = None
    otp: Otp | None = None


class ConsumeResponse(BaseModel):
    """The envelope of one view, to decrypt on the client."""

    envelope: dict[str, object]
    views_left: int


class PassphraseParams(BaseModel):
    """What a client needs to derive the passphrase proof."""

    kdf: str
    iterations: int
    salt: str


class VerificationParams(BaseModel):
    """How the recipient proves who they are before a reveal."""

    method: Literal["email"]
    hint: str = Field(description="The address, masked: b***@example.com")


class SignInParams(BaseModel):
    """What sign-in a secret bound to recipients needs (never who its recipients are)."""

    require_mfa: bool = Field(
        description="The sign-in must carry a second factor and be at most five minutes old."
    )


class SecretInfoResponse(BaseModel):
    """A live secret's metadata, for the holder of the link. Consumes nothing."""

    id: str
    created_at: Instant
    expires_at: Instant
    max_views: int
    views_left: int
    attempts_left: int
    passphrase: PassphraseParams | None
    verification: VerificationParams | None = Field(
        description="Set when a one-time code mailed to the recipient is required."
    )
    sign_in: SignInParams | None = Field(
        default=None,
        description="Set when the secret is bound to recipients: revealing needs a signed-in"
        " user who is one of them.",
    )


class AgentBody(BaseModel):
    """What kind of client made a request, from its User-Agent (a hint, not a proof)."""

    model_config = ConfigDict(populate_by_name=True)

    kind: str = Field(alias="class", description="browser, cli, preview, scanner, bot or unknown")
    name: str = Field(description="The product: Slackbot, Firefox, curl, …")

    @classmethod
    def of(cls, info: AgentInfo) -> AgentBody:
        """From ``useragents.classify``."""
        return cls(kind=info.kind.value, name=info.name)


class ViewerBody(BaseModel):
    """The signed-in recipient a receipt event was made for, as their identity provider
    vouched for them then."""

    email: str | None = Field(
        description="Their email; `null` when the provider gave no verified email."
    )
    mfa: bool = Field(description="Whether their sign-in carried a second factor.")


class EventBody(BaseModel):
    """One event of a receipt."""

    at: Instant
    type: str
    ip: str | None
    user_agent: str | None
    country: str | None = Field(default=None, description="ISO 3166 alpha-2 code of ip.")
    agent: AgentBody | None = None
    viewer: ViewerBody | None = Field(
        default=None,
        description="For a secret bound to recipients: the signed-in recipient the event was"
        " made for (a view, a wrong passphrase, a one-time code); `null`: anonymous, or an event"
        " written before receipts named viewers.",
    )


class ActorBody(BaseModel):
    """A signed-in user who acted: the provider's ``sub`` and, where known, their email."""

    subject: str
    email: str | None = None


class ReceiptSummary(BaseModel):
    """Where one secret stands, as its receipt and the list of its sender's secrets both
    begin. Never holds content."""

    id: str
    state: str = Field(description="active, viewed, burned, locked or expired")
    created_at: Instant
    expires_at: Instant
    ended_at: Instant | None
    max_views: int
    views_used: int
    views_left: int

    @classmethod
    def of(cls, receipt: Receipt, **more: Any) -> Self:
        """``receipt``'s summary, with ``more``: the fields a subclass adds."""
        record = receipt.record
        return cls(
            id=record.secret_id,
            state=receipt.state,
            created_at=record.created_at,
            expires_at=record.expires_at,
            ended_at=record.ended_at,
            max_views=record.max_views,
            views_used=record.views_used,
            views_left=receipt.views_left,
            **more,
        )


class ReceiptResponse(ReceiptSummary):
    """The sender's receipt. Never holds content."""

    events: list[EventBody]
    events_capped: list[str] = Field(
        default_factory=list,
        description="Event types of which the receipt lists only the first 200: more of them"
        " happened (page opens, usually). Each type has its own cap, so the created, viewed,"
        " denied and ending events are listed whatever the count of opens.",
    )
    statement: dict[str, object] | None = Field(
        default=None,
        description="Once ended: the Ed25519-signed proof of burn (docs/audit.md), checked"
        " offline with `burnlink receipt verify`.",
    )
    label: str | None = Field(
        default=None, description="The sender's own name for the secret, if they gave one."
    )
    created_by: ActorBody | None = Field(
        default=None,
        description="The signed-in sender who created it, with the email they had then"
        " (`null` when the provider gave no verified email, or for a secret created before"
        " emails were kept); `null`: created anonymously.",
    )


class PolicyResponse(BaseModel):
    """The server's limits, for clients to check input before sending it."""

    min_ttl: int
    max_ttl: int
    default_ttl: int
    max_views: int
    max_bytes: int
    passphrase_attempts: int
    pbkdf2_iterations: int = Field(description="Least PBKDF2 iterations the server accepts.")
    require_passphrase: bool = Field(description="Every secret must have a passphrase.")
    allowed_countries: list[str] = Field(
        description="Countries every reveal must come from (empty: anywhere)."
    )
    recipient_verification: bool = Field(
        description="Whether recipient_email can be used (the server can send mail)."
    )
    notifications: bool = Field(
        default=False, description="Whether notify_url can be used (webhooks are configured)."
    )
    recipients: bool = Field(
        default=False,
        description="Whether recipients and require_mfa can be used (sign-in is configured).",
    )
    teams: list[str] = Field(
        default_factory=list,
        description="The caller's teams (groups with rules in the server's config) whose rules"
        " are folded into this answer; empty for an anonymous caller or one in no team.",
    )
    may_create: bool = Field(
        default=True,
        description="Whether the caller may create secrets at all (false: `create_not_allowed`"
        " or `login_required` would answer).",
    )
    refusal: str | None = Field(
        default=None, description="Why the caller's teams let them create nothing, if so."
    )
    recipients_required: bool = Field(
        default=False, description="Every secret of the caller must name `recipients`."
    )
    recipients_inside: bool = Field(
        default=False,
        description="Every recipient must be inside the organisation: an email or `domain:`"
        " entry in `organisation_domains`, or a `group:`.",
    )
    recipients_require_mfa: bool = Field(
        default=False,
        description="Every secret of the caller gets `require_mfa` (the recipients sign in"
        " with a second factor).",
    )
    organisation_domains: list[str] = Field(
        default_factory=list,
        description="The email domains inside the organisation, when `recipients_inside`.",
    )
    team_countries: list[str] | None = Field(
        default=None,
        description="Countries the caller's teams let reveals come from (a secret naming"
        " none gets these); null: the teams set none.",
    )
    imposed_by: dict[str, list[str]] = Field(
        default_factory=dict,
        description="For each rule the caller's teams tightened (`ttl`, `max_views`,"
        " `passphrase`, `recipients`, `require_mfa`, `allowed_countries`, `create`), the teams"
        " that did.",
    )


class HealthResponse(BaseModel):
    """Liveness of the server, or readiness with each dependency's state."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "unavailable"]] | None = None


def _absent_not_null(schema: dict[str, Any]) -> None:
    """An optional error member is left out, never sent as ``null``: say no default."""
    schema.pop("default", None)


class ErrorDetail(BaseModel):
    """The ``error`` member of every error answer (docs/api.md § Errors).

    ``code`` and ``message`` are always present; each other member only on the errors that
    carry it, and never as ``null``. ``web.errors.error_response`` writes exactly these.
    """

    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        description="Stable and machine-readable; clients branch on it and the status"
        " (docs/api.md § Errors lists every code).",
        examples=["not_found", "wrong_passphrase", "invalid_field"],
    )
    message: str = Field(
        description="For people; may change. Never holds ids, keys, tokens or content."
    )
    field: str | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_not_null,
        description="invalid_field, invalid_envelope, and payload_too_large for a secret or"
        " ciphertext: the dotted path of the member at fault (`body` for the whole body);"
        " team_policy: the rule the request broke (`ttl`, `max_views`, `passphrase`,"
        " `recipients`, `recipient_email`, `allowed_countries`).",
        examples=["ttl", "envelope.iter"],
    )
    limit: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_not_null,
        description="payload_too_large: the size limit in bytes.",
    )
    attempts_left: Annotated[int, Field(ge=0)] | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_not_null,
        description="passphrase_required, wrong_passphrase (at 0 the secret was destroyed),"
        " access_denied: wrong passphrases still tolerated; verification_failed: wrong"
        " codes still tolerated for the current code.",
    )
    hint: str | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_not_null,
        description="verification_required, verification_failed: where the code was mailed,"
        " masked (b***@example.com).",
    )
    retry_after: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_not_null,
        description="rate_limited: seconds to wait before retrying (also in `Retry-After`).",
    )
    login_url: str | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_not_null,
        description="login_required, fresh_login_required: where to sign in, coming back to"
        " `next` after (for fresh_login_required it asks the provider for a new sign-in,"
        " `max_age`).",
        examples=["https://burnlink.example.com/auth/login?next=%2F"],
    )
    scope: str | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_not_null,
        description="insufficient_scope: the API token scope the route needs.",
        examples=["secrets:create"],
    )
    teams: list[str] | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_not_null,
        description="team_policy: the sender's teams (groups) that set the rule broken.",
        examples=[["engineering"]],
    )


class ErrorBody(BaseModel):
    """The one error shape: ``{"error": {"code", "message", ...}}``."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class MeResponse(BaseModel):
    """Who is signed in (``GET /api/v1/me``)."""

    subject: str = Field(description="The identity provider's `sub` for the user.")
    email: str | None = Field(
        description="The user's email; null when the provider sent none or marked it unverified."
    )
    groups: list[str]
    mfa: bool = Field(description="Whether the sign-in carried a second factor (`amr`/`acr`).")
    auth_time: Instant | None = Field(
        description="When the user last authenticated at the provider (null for an API token)."
    )
    csrf_token: str | None = Field(
        description="Send as `X-Burnlink-CSRF` on every POST, PUT, PATCH or DELETE made with the"
        " session cookie (null for an API token, which needs none)."
    )
    via: Literal["session", "token"]
    token_id: str | None = Field(
        default=None, description="The API token's id (`tok_…`) when `via` is `token`."
    )


class AuditEntryBody(BaseModel):
    """One audit entry, as a line of the JSON Lines export (verifiable with the key)."""

    seq: int
    prev_mac: str
    mac: str
    event: dict[str, object]


class AuditPage(BaseModel):
    """A page of the audit log, oldest first."""

    entries: list[AuditEntryBody]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this is the last."
    )


def describe_limits(
    document: dict[str, Any],
    settings: Settings,
    *,
    mail: bool | None = None,
    webhooks: bool | None = None,
) -> dict[str, Any]:
    """``document`` (the OpenAPI description) with this server's bounds on a new secret's
    ``ttl``, ``max_views`` and envelope ``iter`` in the create body's schema, and
    ``recipient_email`` / ``notify_url`` only ``null`` where the server cannot send mail
    (``mail=False``) or webhooks (``webhooks=False``); idempotent."""
    schemas = document["components"]["schemas"]
    fields = schemas["CreateSecretRequest"]["properties"]
    bounds = {"ttl": (settings.min_ttl, settings.max_ttl), "max_views": (1, settings.max_views)}
    for name, (low, high) in bounds.items():
        for branch in fields[name]["anyOf"]:
            if branch.get("type") == "integer":
                branch.update(minimum=low, maximum=high)
    passphrase = schemas["EnvelopeBody"]["oneOf"][1]["properties"]
    passphrase["iter"].update(minimum=settings.pbkdf2_iterations, maximum=MAX_ITERATIONS)
    for name, able, setting in (
        ("recipient_email", mail, "BURNLINK_SMTP_URL"),
        ("notify_url", webhooks, "BURNLINK_WEBHOOK_SECRET"),
    ):
        if able is False:
            fields[name] = {"type": "null", "description": f"Off on this server ({setting})."}
    return document
