"""The records that pass between the service and the stores.

They hold digests of tokens, never tokens, and opaque envelopes, never plaintext.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Final

import msgspec

from burnlink.redacted import Redacted
from burnlink.strict_json import dumps_compact


class EventKind(StrEnum):
    """What happened to a secret, as listed on its receipt."""

    CREATED = "created"
    OPENED = "opened"
    """The link's page was fetched (``GET /s/{id}``); nothing was revealed."""
    VIEWED = "viewed"
    WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105 - an event name, not a password
    BURNED = "burned"
    LOCKED = "locked"
    EXPIRED = "expired"
    IP_DENIED = "ip_denied"
    GEO_DENIED = "geo_denied"
    VERIFICATION_SENT = "verification_sent"
    VERIFICATION_FAILED = "verification_failed"
    VERIFIED = "verified"


class EndReason(StrEnum):
    """Why a secret no longer exists."""

    VIEWED = "viewed"
    """Its last allowed view was used."""
    BURNED = "burned"
    """Its sender burned it."""
    LOCKED = "locked"
    """Too many wrong passphrases, or every one-time code allowed was spent."""
    EXPIRED = "expired"
    """Its time ran out."""


@dataclass(frozen=True, slots=True)
class PassphraseGate:
    """How a passphrase-protected secret checks the passphrase proof (never the passphrase)."""

    kdf: str
    iterations: int
    salt: bytes
    proof_digest: bytes = field(repr=False)


RECIPIENTS_GUARD: Final = "recipients-need-a-newer-burnlink"
"""The first ``allowed_ips`` entry of a stored policy with ``recipients``: not a network, so an
older process that ignores ``recipients`` fails on the address check instead of revealing
(``AccessPolicy.to_bytes``)."""


class AccessPolicy(Redacted, frozen=True):
    """Who may reveal a secret, beyond holding its link. Empty fields impose nothing.

    Values are already validated and normalised (``burnlink.policy``). It also carries what the
    server needs to report on the secret later (``notify_url``, ``creator_country``): stores
    keep the policy with the secret, so these need no column of their own.
    """

    allowed_ips: tuple[str, ...] = ()
    """Networks in CIDR form (``203.0.113.0/24``, ``2001:db8::/32``)."""
    allowed_countries: tuple[str, ...] = ()
    """ISO 3166 alpha-2 codes; a reveal from anywhere else, or from an unknown place, is refused."""
    denied_countries: tuple[str, ...] = ()
    recipient_email: str | None = None
    """Whoever reveals must first prove control of this address with a one-time code."""
    notify_url: str | None = None
    """Webhook told of each view, the burn and the expiry (may hold a token: never logged)."""
    creator_country: str | None = None
    """The creator's country, to notice a reveal from elsewhere (an alert, never a refusal)."""
    recipients: tuple[str, ...] = ()
    """Who may reveal it once signed in: ``user@example.com``, ``group:NAME`` and
    ``domain:example.com`` entries (``burnlink.policy.parse_recipients``); empty: anyone."""
    require_mfa: bool = False
    """Whether the recipient's sign-in must carry a second factor and be fresh (only with
    ``recipients``)."""

    _HIDDEN: ClassVar[tuple[str, ...]] = ("notify_url",)

    def is_empty(self) -> bool:
        """Whether the policy imposes no access rule (``notify_url`` is not one)."""
        rules = AccessPolicy(
            self.allowed_ips,
            self.allowed_countries,
            self.denied_countries,
            self.recipient_email,
            recipients=self.recipients,
            require_mfa=self.require_mfa,
        )
        return rules == AccessPolicy()

    def to_bytes(self) -> bytes:
        """Compact JSON, the form stores keep. The newer members appear only when set, so a
        policy without them is byte for byte what older versions wrote.

        A policy with ``recipients`` also lists ``RECIPIENTS_GUARD`` first in ``allowed_ips``:
        a process of an older release, which knows nothing of recipients, then neither takes
        the one-trip view (the policy does not start ``NO_RULES_PREFIX`` and is not empty) nor
        reveals it (the guard is no network: its address check fails with an error), so it
        fails closed. ``from_bytes`` drops the guard again."""
        guard = [RECIPIENTS_GUARD] if self.recipients or self.require_mfa else []
        obj: dict[str, object] = {
            "allowed_ips": [*guard, *self.allowed_ips],
            "allowed_countries": list(self.allowed_countries),
            "denied_countries": list(self.denied_countries),
            "recipient_email": self.recipient_email,
        }
        if self.notify_url is not None:
            obj["notify_url"] = self.notify_url
        if self.creator_country is not None:
            obj["creator_country"] = self.creator_country
        if guard:
            obj["recipients"] = list(self.recipients)
            obj["require_mfa"] = self.require_mfa
        return dumps_compact(obj)

    @classmethod
    def from_bytes(cls, data: bytes) -> AccessPolicy:
        """Undo ``to_bytes``; members added later may be absent."""
        return _policy_from_bytes(bytes(data))

    @classmethod
    def _decode(cls, data: bytes) -> AccessPolicy:
        obj = json.loads(data)
        ips = obj["allowed_ips"]
        recipients = obj.get("recipients")
        if recipients is not None:
            if ips[:1] != [RECIPIENTS_GUARD]:
                raise ValueError("a stored policy with recipients lacks its guard")
            ips = ips[1:]
        return cls(
            allowed_ips=tuple(ips),
            allowed_countries=tuple(obj["allowed_countries"]),
            denied_countries=tuple(obj["denied_countries"]),
            recipient_email=obj["recipient_email"],
            notify_url=obj.get("notify_url"),
            creator_country=obj.get("creator_country"),
            recipients=tuple(recipients or ()),
            require_mfa=obj.get("require_mfa", False) is True,
        )


@functools.lru_cache(maxsize=1024)
def _policy_from_bytes(data: bytes) -> AccessPolicy:
    # Cached: many secrets share a policy (most have none), and a policy is immutable.
    return AccessPolicy._decode(data)


class SecretRecord(Redacted, frozen=True):
    """A new secret as the store keeps it.

    Like the other records built on every request (``SecretMeta``, ``Event``, ``ClientInfo``),
    a frozen msgspec ``Struct`` rather than a frozen dataclass: built in C, in about a tenth of
    the time a frozen dataclass's ``__init__`` takes (one ``object.__setattr__`` per field).
    Change one with ``msgspec.structs.replace``. Its reprs leave out the envelope and the
    digests."""

    secret_id: str
    envelope: bytes
    access_digest: bytes
    manage_digest: bytes
    created_at: datetime
    expires_at: datetime
    max_views: int
    max_attempts: int
    passphrase: PassphraseGate | None = None
    policy: AccessPolicy = AccessPolicy()
    owner: str | None = None
    """The signed-in sender's subject (it shows in their "my secrets"); ``None``: anonymous."""
    owner_email: str | None = None
    """The signed-in sender's email when they created it (``Principal.email``); ``None``:
    anonymous, or the provider gave no verified email."""
    label: str | None = None
    """A name the sender chose to tell it apart in "my secrets" (never its content)."""

    _HIDDEN: ClassVar[tuple[str, ...]] = ("envelope", "access_digest", "manage_digest")


class SecretMeta(Redacted, frozen=True):
    """What ``peek`` returns about a live secret: everything but the envelope (a ``Struct``
    as ``SecretRecord`` says; its repr leaves out the digest)."""

    secret_id: str
    access_digest: bytes
    created_at: datetime
    expires_at: datetime
    max_views: int
    views_left: int
    attempts_left: int
    passphrase: PassphraseGate | None = None
    policy: AccessPolicy = AccessPolicy()

    _HIDDEN: ClassVar[tuple[str, ...]] = ("access_digest",)


class CodePut(StrEnum):
    """What ``put_code`` did."""

    SENT = "sent"
    """The new code replaced the old one: mail it."""
    TOO_SOON = "too_soon"
    """Nothing changed: a code was put after ``resend_after``, or the last code allowed is
    still live."""
    SPENT = "spent"
    """Nothing changed: ``max_codes`` codes were put since the last match and the last is used
    up or expired; no more can be sent."""
    GONE = "gone"
    """Nothing changed: the secret is gone."""


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The outcome of checking a one-time code against the live one."""

    matched: bool
    tries_left: int
    """Wrong codes the live code still tolerates (0: it is gone, a new one must be sent)."""


class Consumed(Redacted, frozen=True):
    """The result of a successful ``consume``: the envelope and the views still allowed (a
    ``Struct`` as ``SecretRecord`` says; its repr leaves out the envelope)."""

    _HIDDEN: ClassVar[tuple[str, ...]] = ("envelope",)

    envelope: bytes
    views_left: int


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in recipient a receipt line names: who revealed a secret bound to
    recipients, as the identity provider vouched for them when they did."""

    email: str | None
    """``Principal.email``; ``None`` when the provider gave no verified email."""
    mfa: bool
    """Whether that sign-in carried a second factor (``Principal.mfa``)."""


class Event(msgspec.Struct, frozen=True):
    """One line of a receipt's history. Never holds secret material (a ``Struct`` as
    ``SecretRecord`` says)."""

    at: datetime
    kind: EventKind
    ip: str | None = None
    user_agent: str | None = None
    viewer: Viewer | None = None
    """The signed-in recipient it was made for; ``None`` when anonymous (and on lines written
    before receipts named viewers: schema 8)."""


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """The sender's view of a secret; it outlives the secret by the retention period."""

    secret_id: str
    manage_digest: bytes = field(repr=False)
    created_at: datetime
    expires_at: datetime
    max_views: int
    views_used: int
    ended_at: datetime | None
    end_reason: EndReason | None
    events: tuple[Event, ...] = ()
    owner: str | None = None
    """The secret's ``SecretRecord.owner``, kept as long as the receipt."""
    owner_email: str | None = None
    """The secret's ``SecretRecord.owner_email``, kept as long as the receipt (``None`` also on
    receipts written before it was kept: schema 7)."""
    label: str | None = None
    """The secret's ``SecretRecord.label``, kept as long as the receipt."""

    def state(self, now: datetime) -> str:
        """``active`` while the secret can be revealed, else why it ended."""
        if self.end_reason is not None:
            return self.end_reason.value
        if self.expires_at <= now:
            return EndReason.EXPIRED.value
        return "active"


class ClientInfo(msgspec.Struct, frozen=True):
    """Who made a request, as recorded on the receipt (a ``Struct`` as ``SecretRecord``
    says)."""

    ip: str | None = None
    user_agent: str | None = None
    country: str | None = None
    """ISO 3166 alpha-2 code of ``ip``, when known."""
    request_id: str | None = None
    """The request's id (``X-Request-ID``), to join audit events with request logs."""
    language: str = "en"
    """The language the client reads (a catalogue's tag, from ``Accept-Language``): mail sent
    on its behalf (a verification code) is written in it."""
