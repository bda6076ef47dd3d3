"""Request and response bodies of ``/api/v1/requests`` (``web/requests_api.py``), with their
limits (docs/api.md § Requests)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from burnlink.netguard import MAX_URL_LENGTH
from burnlink.policy import EMAIL_PATTERN
from burnlink.service.requests import MAX_DESCRIPTION
from burnlink.web.schemas import Instant, Recipients

__all__ = [
    "AnswerRequest",
    "AnswerResponse",
    "AnswerState",
    "CreateRequestBody",
    "CreateRequestResponse",
    "OpenAnswerRequest",
    "OpenAnswerResponse",
    "RequestStatusResponse",
    "RequestView",
]

State = Literal["open", "answered", "expired"]

_SEALED = (
    "A sealed answer (docs/crypto.md § The sealed answer object): exactly `v` (1), `alg`"
    ' ("A256GCM"), `crv` ("P-256"), `rpk` (the request\'s `public_key`), `epk`, `nonce` and'
    " `ct`, in canonical unpadded base64url."
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateRequestBody(_Body):
    """Ask for a secret: the requester's public key, what is wanted, and the answer's rules."""

    public_key: str = Field(
        min_length=87,
        max_length=87,
        pattern=r"^[A-Za-z0-9_-]{86}[AEIMQUYcgkosw048]$",
        description="The requester's P-256 public key: the uncompressed point (65 bytes) in"
        " unpadded base64url. Its private key never leaves the requester.",
    )
    description: str = Field(
        min_length=1,
        max_length=MAX_DESCRIPTION,
        description="What is requested, shown to the answering side (not a secret).",
    )
    ttl: StrictInt | None = Field(
        default=None, description="Seconds the request stays open (the server's TTL bounds)."
    )
    answer_ttl: StrictInt | None = Field(
        default=None, description="Seconds the answer lives once given."
    )
    answer_views: StrictInt | None = Field(
        default=None, description="Views the answer allows (default 1)."
    )
    recipients: Recipients = Field(
        default_factory=list,
        description="Who may answer, once signed in (`user@example.com`, `group:NAME`,"
        " `domain:example.com`); empty: anyone with the request link. Needs sign-in.",
    )
    notify_url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="A webhook told `request.fulfilled` when the answer arrives (and of the"
        " answer's views and expiry, as a secret's `notify_url`).",
    )
    notify_email: str | None = Field(
        default=None,
        max_length=254,
        json_schema_extra={"pattern": EMAIL_PATTERN},
        description="An address mailed when the answer arrives (needs BURNLINK_SMTP_URL).",
    )


class CreateRequestResponse(BaseModel):
    """A new request. The tokens are shown once; the client builds both links itself."""

    id: str
    url: str = Field(
        description="The request link without its fragment: append"
        " `#{fingerprint}.{link_token}` (the fingerprint is SHA-256 of the public key, computed"
        " by the client) and send it to whoever should answer."
    )
    requester_url: str = Field(
        description="The requester's own page without its fragment: append"
        " `#{requester_token}.{private key}`; never send it to anyone."
    )
    link_token: str = Field(description="For the request link: view and answer the request.")
    requester_token: str = Field(
        description="For the requester: status, waiting, opening the answer."
    )
    expires_at: Instant
    answer_ttl: int
    answer_views: int


class RequestView(BaseModel):
    """The request as the answering side sees it (request link's token as bearer)."""

    id: str
    description: str
    public_key: str = Field(description="Check its SHA-256 against the link's fingerprint.")
    state: State
    expires_at: Instant
    answer_ttl: int
    answer_views: int
    max_bytes: int = Field(description="The largest content an answer may hold, in bytes.")
    recipients_only: bool = Field(description="Whether only signed-in recipients may answer.")


class AnswerRequest(_Body):
    """The one answer."""

    answer: dict[str, object] = Field(description=_SEALED)


class AnswerResponse(BaseModel):
    """The stored answer: a secret with the request's id; its receipt is the answerer's."""

    secret_id: str
    manage_url: str = Field(description="The answer's receipt and burn, for the answerer.")
    expires_at: Instant
    max_views: int


class AnswerState(BaseModel):
    """The answer while it can still be opened."""

    expires_at: Instant
    views_left: int


class RequestStatusResponse(BaseModel):
    """The request for its requester (requester token as bearer)."""

    id: str
    state: State
    description: str
    public_key: str = Field(
        description="The request's public key: a client checks that its own private key is"
        " this key's before it opens the answer (a wrong link then uses up no view)."
    )
    created_at: Instant
    expires_at: Instant
    answered_at: Instant | None
    answer: AnswerState | None = Field(
        description="While the answer can be opened; `null` before it arrives and once it is"
        " used up, burned or expired."
    )


class OpenAnswerRequest(_Body):
    """Opening the answer takes no member; the body may be left out."""


class OpenAnswerResponse(BaseModel):
    """One view of the answer, to open on the requester's client."""

    answer: dict[str, object] = Field(description=_SEALED)
    views_left: int
