"""Audit events: what happened, to which secret (by hash), from where, and under which rule.

An ``AuditEvent`` is a frozen record with a fixed set of fields, none of which can carry
secret material: there is no field for content, envelopes, tokens or passphrases; the secret
is named only by ``secret_hash`` (hex SHA-256 of its public id); ``policy`` and ``detail``
accept only a few short scalar values under keys that do not name secret material (a key
such as ``passphrase``, ``token`` or ``otp_code`` is refused), and never bytes.

Why hash the id at all, when ids are not secret? Ids appear in URLs, proxy logs and receipts.
Hashing keeps an exported audit trail from being joined to those by someone who holds only
the export, while whoever knows an id (its sender, its recipient) can still find its entries
and check a proof-of-burn statement: ``printf %s "$ID" | sha256sum``. Ids are 128 random
bits, so the hash cannot be reversed by guessing.

``canonical()`` is the byte form that the hash chain authenticates: JSON with sorted keys,
no whitespace, UTF-8, every field present (``null`` when absent), times as
``YYYY-MM-DDTHH:MM:SS.mmmZ``. The one exception is ``actor`` (who acted, for a signed-in
user's action: ``{"email": ..., "subject": ...}``): it is present only on events that have
one, so every event without an actor (every event written before actors existed among them)
keeps its bytes, and its MAC still verifies (tests/vectors/audit_events.json).
``AuditEvent.from_dict(json.loads(e.canonical()))`` gives back an equal event, so a stored or
exported event can be re-verified.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring
from types import MappingProxyType
from typing import Any, Final, TypeVar

import msgspec

from burnlink.clock import to_millis
from burnlink.useragents import MAX_USER_AGENT, classify

__all__ = [
    "FORMAT_VERSION",
    "AuditEvent",
    "AuditEventType",
    "Outcome",
    "RequestInfo",
    "Scalar",
    "audit_event",
    "canonical_ip",
    "canonical_json",
    "format_time",
    "frozen_labels",
    "list_label",
    "parse_time",
    "secret_hash",
]

FORMAT_VERSION: Final = 1
"""The ``v`` field of every canonical event."""

Scalar = str | int | bool | None
"""What ``policy`` and ``detail`` values may be: short, and never bytes."""

MAX_ITEMS: Final = 16
MAX_KEY_LENGTH: Final = 40
MAX_VALUE_LENGTH: Final = 200
MAX_REQUEST_ID: Final = 128
MAX_SUBJECT: Final = 255
MAX_EMAIL: Final = 254
MAX_AGENT_CLASS: Final = 20

_KEY_RE: Final = re.compile(r"^[a-z][a-z0-9_.]*$")
_HASH_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_COUNTRY_RE: Final = re.compile(r"^[A-Z]{2}$")
_TIME_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_TIME_FORMAT: Final = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"
_WORDS_RE: Final = re.compile(r"[._]")
_FORBIDDEN_WORDS: Final = frozenset(
    {
        "ciphertext",
        "code",
        "content",
        "envelope",
        "key",
        "otp",
        "passphrase",
        "password",
        "pin",
        "plaintext",
        "proof",
        "secret",
        "token",
    }
)
_FIELDS: Final = (
    "agent_class",
    "at",
    "client_ip",
    "country",
    "detail",
    "outcome",
    "policy",
    "request_id",
    "secret_hash",
    "type",
    "user_agent",
    "v",
)


class AuditEventType(StrEnum):
    """What happened. The values are the ``type`` field of events, exports and webhooks."""

    SECRET_CREATED = "secret.created"  # noqa: S105 - an event name
    """A secret was stored."""
    SECRET_OPENED = "secret.opened"  # noqa: S105 - an event name
    """The link page was fetched (GET); nothing was revealed or consumed."""
    SECRET_VIEWED = "secret.viewed"  # noqa: S105 - an event name
    """The secret was revealed (one view used)."""
    PASSPHRASE_FAILED = "passphrase.failed"  # noqa: S105 - an event name
    """A wrong passphrase proof was given; one attempt counted."""
    KEY_FAILED = "key.failed"
    """A reveal came with a wrong access token (a wrong or truncated link)."""
    OTP_FAILED = "otp.failed"
    """A wrong one-time code was given."""
    OTP_SENT = "otp.sent"
    """A one-time code was mailed to the secret's recipient (never the code itself)."""
    OTP_VERIFIED = "otp.verified"
    """The recipient gave the right one-time code."""
    ACCESS_DENIED_IP = "access.denied_ip"
    """The client address is outside the secret's or server's allowed networks."""
    ACCESS_DENIED_GEO = "access.denied_geo"
    """The client's country is not allowed."""
    ACCESS_DENIED_IDENTITY = "access.denied_identity"
    """A secret bound to recipients was refused to the signed-in user who tried (as
    ``actor``; ``policy.rule``: ``recipients``, or ``require_mfa`` for a sign-in without a
    fresh second factor)."""
    RATE_LIMITED = "rate.limited"
    """A request was refused by a rate limit."""
    ADMIN_DENIED = "admin.denied"
    """A request to an admin route came without the right admin token."""
    SECRET_BURNED = "secret.burned"  # noqa: S105 - an event name
    """The sender destroyed the secret."""
    SECRET_LOCKED = "secret.locked"  # noqa: S105 - an event name
    """Too many failed attempts destroyed the secret."""
    SECRET_EXPIRED = "secret.expired"  # noqa: S105 - an event name
    """The secret's time ran out and the sweeper removed it."""
    ALERT = "alert"
    """Something worth a person's attention (``detail.reason`` says what)."""
    AUDIT_PURGED = "audit.purged"
    """Audit entries older than the retention period were removed."""
    WEBHOOK_DROPPED = "webhook.dropped"
    """A webhook was given up undelivered (``detail``: ``queue``, ``reason``)."""
    SIGNED_IN = "user.signed_in"
    """A user signed in (the user as ``actor``; ``detail``: ``mfa``)."""
    SIGNED_OUT = "user.signed_out"
    """A user signed out (the user as ``actor``)."""
    SIGN_IN_REFUSED = "user.sign_in_refused"
    """A sign-in was refused (``detail``: ``reason``; the user as ``actor`` once the ID token
    verified, e.g. for a missing second factor); never a code or a token."""
    TOKEN_CREATED = "token.created"  # noqa: S105 - an event name
    """A user made a personal API token (``actor``; ``detail``: ``credential_id``, the token's
    public id, ``name``, ``scopes``, ``expires_at``); never the token."""
    TOKEN_REVOKED = "token.revoked"  # noqa: S105 - an event name
    """An API token was revoked (``detail``: ``credential_id``, ``by``: ``owner`` with the owner as
    ``actor``, or ``admin``)."""
    REQUEST_CREATED = "request.created"
    """A request for a secret was made (``secret_hash`` names the request's id; ``detail``:
    ``ttl``, ``answer_ttl``, ``answer_views``, ``notify``, ``email``; ``actor`` when signed
    in). Never the description or a key."""
    REQUEST_OPENED = "request.opened"
    """The answering side opened the request (its request link's token was right)."""
    REQUEST_ANSWERED = "request.answered"
    """The request was answered: its answer, the secret of the same id, was stored with it
    (the webhook says ``request.fulfilled``)."""
    REQUEST_EXPIRED = "request.expired"
    """The request's time ran out unanswered and the sweeper closed it."""


class Outcome(StrEnum):
    """How the request that caused the event ended."""

    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"


_DEFAULT_OUTCOME: Final[Mapping[AuditEventType, Outcome]] = MappingProxyType(
    {
        AuditEventType.PASSPHRASE_FAILED: Outcome.FAILED,
        AuditEventType.KEY_FAILED: Outcome.FAILED,
        AuditEventType.OTP_FAILED: Outcome.FAILED,
        AuditEventType.ACCESS_DENIED_IP: Outcome.DENIED,
        AuditEventType.ACCESS_DENIED_GEO: Outcome.DENIED,
        AuditEventType.ACCESS_DENIED_IDENTITY: Outcome.DENIED,
        AuditEventType.RATE_LIMITED: Outcome.DENIED,
        AuditEventType.WEBHOOK_DROPPED: Outcome.FAILED,
        AuditEventType.ADMIN_DENIED: Outcome.DENIED,
        AuditEventType.SIGN_IN_REFUSED: Outcome.DENIED,
    }
)


_E = TypeVar("_E", AuditEventType, Outcome)
_FIELD_SET: Final = frozenset(_FIELDS)
_FIELD_SET_WITH_ACTOR: Final = _FIELD_SET | {"actor"}
_ACTOR_KEYS: Final = frozenset({"email", "subject"})
_TYPES: Final[Mapping[object, AuditEventType]] = MappingProxyType(
    {t.value: t for t in AuditEventType}
)
_OUTCOMES: Final[Mapping[object, Outcome]] = MappingProxyType({o.value: o for o in Outcome})


def _member(members: Mapping[object, _E], value: object, name: str) -> _E:
    """The member of an enum whose value is ``value`` (a dict look-up: the enum's own call is
    slow); ``ValueError`` for any other value."""
    try:
        return members[value]
    except (KeyError, TypeError):
        raise ValueError(f"not an audit event {name}: {value!r}") from None


def secret_hash(secret_id: str) -> str:
    """The name of a secret in audit events and statements: hex SHA-256 of its UTF-8 id."""
    return hashlib.sha256(secret_id.encode("utf-8")).hexdigest()


# One encoder for every call: ``json.dumps`` with options builds a new one each time.
_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: object) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: the byte form that is hashed and signed."""
    return _CANONICAL.encode(value).encode("utf-8")


def _json_scalar(value: Scalar) -> str:
    """``value`` as ``canonical_json`` writes it (``bool`` before ``int``: it is one)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    return encode_basestring(value)


def _json_optional(value: str | None) -> str:
    """An optional string field as ``canonical_json`` writes it."""
    return "null" if value is None else encode_basestring(value)


def _json_labels(items: Mapping[str, Scalar]) -> str:
    """A ``policy`` or ``detail`` mapping as ``canonical_json`` writes it (keys sorted)."""
    if not items:
        return "{}"
    members = [encode_basestring(k) + ":" + _json_scalar(items[k]) for k in sorted(items)]
    return "{" + ",".join(members) + "}"


def format_time(moment: datetime) -> str:
    """``moment`` (aware) in UTC as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (milliseconds truncated)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # One C formatting call; milliseconds truncated, as strftime and isoformat do.
    return _TIME_FORMAT % (
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond // 1000,
    )


def parse_time(text: str) -> datetime:
    """The inverse of ``format_time``; raise ``ValueError`` for any other shape."""
    if not _TIME_RE.fullmatch(text):
        raise ValueError("time must look like 2030-01-01T00:00:00.000Z")
    return datetime.fromisoformat(text[:-1] + "+00:00")


def list_label(values: Sequence[str]) -> str | None:
    """``values`` as one ``policy``/``detail`` value: comma-separated and, past
    ``MAX_VALUE_LENGTH`` characters, cut to fit and ending ``...``; ``None`` when empty."""
    if not values:
        return None
    text = ",".join(values)
    return text if len(text) <= MAX_VALUE_LENGTH else text[: MAX_VALUE_LENGTH - 3] + "..."


_GOOD_KEYS: set[str] = set()
"""Keys already checked: our code uses a few dozen, over and over."""


def _check_key(key: object) -> str:
    if key in _GOOD_KEYS:
        return key  # only str are added
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _KEY_RE.fullmatch(key):
        raise ValueError("policy/detail keys are short lower-case identifiers")
    if _FORBIDDEN_WORDS.intersection(_WORDS_RE.split(key)):
        raise ValueError(f"policy/detail key {key!r} names secret material")
    if type(key) is str and len(_GOOD_KEYS) < 1024:  # a str subclass could compare equal
        _GOOD_KEYS.add(key)
    return key


def _check_value(value: object) -> Scalar:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        if len(value) > MAX_VALUE_LENGTH:
            raise ValueError(f"policy/detail values are at most {MAX_VALUE_LENGTH} characters")
        return value
    raise TypeError(f"policy/detail values are str, int, bool or None, not {type(value).__name__}")


_NO_LABELS: Final[Mapping[str, Scalar]] = MappingProxyType({})


def frozen_labels(items: Mapping[str, Scalar] | None) -> Mapping[str, Scalar]:
    """``policy`` or ``detail`` checked (``ValueError``/``TypeError``) and frozen, keys sorted:
    what an event holds for ``items``."""
    if items is None or items is _NO_LABELS:
        return _NO_LABELS
    if type(items) is not dict and not isinstance(items, Mapping):
        raise TypeError("policy/detail must be a mapping")
    if not items:
        return _NO_LABELS
    if len(items) > MAX_ITEMS:
        raise ValueError(f"policy/detail hold at most {MAX_ITEMS} items")
    checked: dict[str, Scalar] = {}
    for key in sorted(items):
        value = items[key]
        # The checks of _check_key and _check_value, without a call for the common cases.
        if key not in _GOOD_KEYS:
            _check_key(key)
        if type(value) is str:
            if len(value) > MAX_VALUE_LENGTH:
                _check_value(value)
        elif value is not None and type(value) is not int and type(value) is not bool:
            value = _check_value(value)
        checked[key] = value
    return MappingProxyType(checked)


def _utc_millis(at: datetime) -> datetime:
    """``at`` (aware) in UTC, truncated to milliseconds: itself when it already is."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be an aware datetime")
    utc = at if at.tzinfo is UTC else at.astimezone(UTC)
    return to_millis(utc) if utc.microsecond % 1000 or utc is not at else at


def _optional_str(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{name} must be a string of at most {limit} characters")
    return value


def _empty_labels() -> Mapping[str, Scalar]:
    return _NO_LABELS


@functools.lru_cache(maxsize=4096)
def canonical_ip(text: str) -> str | None:
    """``text`` as an IP address in its canonical form; ``None`` if it is not one. Cached: the
    same few client addresses are parsed for every event they cause."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One audited happening. Validated on construction; see the module docstring."""

    at: datetime
    """When, as an aware datetime; stored in UTC, truncated to milliseconds."""
    type: AuditEventType
    outcome: Outcome
    secret_hash: str | None = None
    """``secret_hash(secret_id)``, or ``None`` for events about no single secret."""
    client_ip: str | None = None
    country: str | None = None
    """ISO 3166-1 alpha-2, upper case."""
    user_agent: str | None = None
    agent_class: str | None = None
    """``useragents.AgentClass`` value of ``user_agent``."""
    request_id: str | None = None
    policy: Mapping[str, Scalar] = field(default_factory=_empty_labels, hash=False)
    """Which rule applied (e.g. ``{"rule": "cidr", "allowed": "10.0.0.0/8"}``)."""
    detail: Mapping[str, Scalar] = field(default_factory=_empty_labels, hash=False)
    """Small facts about the event (e.g. ``{"attempts_left": 2}``); never secret material."""
    actor_subject: str | None = None
    """The signed-in user who acted (the provider's ``sub``); ``None`` when anonymous."""
    actor_email: str | None = None
    """Their email, when the provider gave one (only with ``actor_subject``)."""

    def __post_init__(self) -> None:
        at = _utc_millis(self.at)
        if at is not self.at:
            object.__setattr__(self, "at", at)
        if type(self.type) is not AuditEventType:
            object.__setattr__(self, "type", AuditEventType(self.type))
        if type(self.outcome) is not Outcome:
            object.__setattr__(self, "outcome", Outcome(self.outcome))
        if self.secret_hash is not None and not (
            isinstance(self.secret_hash, str) and _HASH_RE.fullmatch(self.secret_hash)
        ):
            raise ValueError("secret_hash must be 64 lower-case hex digits (use secret_hash())")
        if self.client_ip is not None and not (
            isinstance(self.client_ip, str) and canonical_ip(self.client_ip) is not None
        ):
            raise ValueError(f"client_ip {self.client_ip!r} is not an IP address")
        if self.country is not None and not (
            isinstance(self.country, str) and _COUNTRY_RE.fullmatch(self.country)
        ):
            raise ValueError("country must be an ISO 3166-1 alpha-2 code in upper case")
        # _optional_str's checks, called only when the common case (None, a short str) fails.
        if self.user_agent is not None and (
            type(self.user_agent) is not str or len(self.user_agent) > MAX_USER_AGENT
        ):
            _optional_str(self.user_agent, "user_agent", MAX_USER_AGENT)
        if self.agent_class is not None and (
            type(self.agent_class) is not str or len(self.agent_class) > MAX_AGENT_CLASS
        ):
            _optional_str(self.agent_class, "agent_class", MAX_AGENT_CLASS)
        if self.request_id is not None and (
            type(self.request_id) is not str or len(self.request_id) > MAX_REQUEST_ID
        ):
            _optional_str(self.request_id, "request_id", MAX_REQUEST_ID)
        object.__setattr__(self, "policy", frozen_labels(self.policy))
        object.__setattr__(self, "detail", frozen_labels(self.detail))
        if self.actor_subject is not None or self.actor_email is not None:
            if self.actor_subject is None:
                raise ValueError("actor_email needs actor_subject")
            _optional_str(self.actor_subject, "actor_subject", MAX_SUBJECT)
            _optional_str(self.actor_email, "actor_email", MAX_EMAIL)

    def _actor_json(self) -> str:
        """The ``actor`` member's value as ``canonical_json`` writes it."""
        return (
            f'{{"email":{_json_optional(self.actor_email)}'
            f',"subject":{_json_optional(self.actor_subject)}}}'
        )

    def with_detail(self, detail: Mapping[str, Scalar]) -> AuditEvent:
        """This event with ``detail`` in place of its own: only ``detail`` is checked again
        (``dataclasses.replace`` would check every field, already checked here, once more)."""
        event = object.__new__(AuditEvent)
        for name in _SLOTS:
            object.__setattr__(event, name, getattr(self, name))
        object.__setattr__(event, "detail", frozen_labels(detail))
        return event

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict with every field present."""
        return {
            "v": FORMAT_VERSION,
            "at": format_time(self.at),
            "type": self.type.value,
            "outcome": self.outcome.value,
            "secret_hash": self.secret_hash,
            "client_ip": self.client_ip,
            "country": self.country,
            "user_agent": self.user_agent,
            "agent_class": self.agent_class,
            "request_id": self.request_id,
            "policy": dict(self.policy),
            "detail": dict(self.detail),
            **(
                {}
                if self.actor_subject is None
                else {"actor": {"email": self.actor_email, "subject": self.actor_subject}}
            ),
        }

    def to_json(self) -> str:
        """``to_dict()`` as compact JSON text (no whitespace, not ASCII-escaped), in its own
        member order, written as ``canonical`` is: the form an outbox record carries."""
        return (
            f'{{"v":{FORMAT_VERSION},"at":"{format_time(self.at)}","type":"{self.type.value}"'
            f',"outcome":"{self.outcome.value}"'
            f',"secret_hash":{_json_optional(self.secret_hash)}'
            f',"client_ip":{_json_optional(self.client_ip)}'
            f',"country":{_json_optional(self.country)}'
            f',"user_agent":{_json_optional(self.user_agent)}'
            f',"agent_class":{_json_optional(self.agent_class)}'
            f',"request_id":{_json_optional(self.request_id)}'
            f',"policy":{_json_labels(self.policy)},"detail":{_json_labels(self.detail)}'
            + ("}" if self.actor_subject is None else f',"actor":{self._actor_json()}}}')
        )

    def canonical(self) -> bytes:
        """The canonical JSON bytes of ``to_dict()`` (what the chain MAC covers).

        Written member by member in ``canonical_json``'s order and escaping (each string by
        the encoder's own ``encode_basestring``), without building the dict and an encoder
        pass over it: every event is built once per request and again when it is sealed."""
        actor = "" if self.actor_subject is None else f'"actor":{self._actor_json()},'
        text = (
            f'{{{actor}"agent_class":{_json_optional(self.agent_class)}'
            f',"at":"{format_time(self.at)}"'
            f',"client_ip":{_json_optional(self.client_ip)}'
            f',"country":{_json_optional(self.country)}'
            f',"detail":{_json_labels(self.detail)}'
            f',"outcome":"{self.outcome.value}"'
            f',"policy":{_json_labels(self.policy)}'
            f',"request_id":{_json_optional(self.request_id)}'
            f',"secret_hash":{_json_optional(self.secret_hash)}'
            f',"type":"{self.type.value}"'
            f',"user_agent":{_json_optional(self.user_agent)}'
            f',"v":{FORMAT_VERSION}}}'
        )
        return text.encode("utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEvent:
        """Rebuild an event from ``to_dict()`` output; raise ``ValueError`` if it is not one."""
        if (type(data) is not dict and not isinstance(data, Mapping)) or (
            data.keys() != _FIELD_SET and data.keys() != _FIELD_SET_WITH_ACTOR
        ):
            raise ValueError("not an audit event: unexpected or missing fields")
        actor = data.get("actor")
        if actor is not None and (not isinstance(actor, Mapping) or actor.keys() != _ACTOR_KEYS):
            raise ValueError("not an audit event: actor must have email and subject")
        if "actor" in data and actor is None:
            raise ValueError("not an audit event: actor is absent, never null")
        if data["v"] != FORMAT_VERSION:
            raise ValueError(f"unsupported audit event version {data['v']!r}")
        try:
            return cls(
                at=parse_time(str(data["at"])),
                type=_member(_TYPES, data["type"], "type"),
                outcome=_member(_OUTCOMES, data["outcome"], "outcome"),
                secret_hash=data["secret_hash"],
                client_ip=data["client_ip"],
                country=data["country"],
                user_agent=data["user_agent"],
                agent_class=data["agent_class"],
                request_id=data["request_id"],
                policy=data["policy"],
                detail=data["detail"],
                actor_subject=None if actor is None else actor["subject"],
                actor_email=None if actor is None else actor["email"],
            )
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def from_checked(
        cls,
        *,
        at: datetime,
        type: AuditEventType,
        outcome: Outcome,
        secret_hash: str | None,
        client_ip: str | None,
        country: str | None,
        user_agent: str | None,
        agent_class: str | None,
        request_id: str | None,
        policy: Mapping[str, Scalar],
        detail: Mapping[str, Scalar],
        actor_subject: str | None,
        actor_email: str | None,
    ) -> AuditEvent:
        """An event holding exactly these values, set without ``__post_init__``: only for a
        caller that has made every one of its checks and conversions itself (the outbox's
        decoder, whose tests compare it with ``from_dict``)."""
        event = object.__new__(cls)
        put = object.__setattr__
        put(event, "at", at)
        put(event, "type", type)
        put(event, "outcome", outcome)
        put(event, "secret_hash", secret_hash)
        put(event, "client_ip", client_ip)
        put(event, "country", country)
        put(event, "user_agent", user_agent)
        put(event, "agent_class", agent_class)
        put(event, "request_id", request_id)
        put(event, "policy", policy)
        put(event, "detail", detail)
        put(event, "actor_subject", actor_subject)
        put(event, "actor_email", actor_email)
        return event

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditEvent:
        """Parse canonical (or any) JSON text of an event; raise ``ValueError`` if invalid."""
        return cls.from_dict(json.loads(text))


_SLOTS: Final = tuple(f.name for f in fields(AuditEvent))


class RequestInfo(msgspec.Struct, frozen=True):
    """Who made the request, as the web layer determined it. Any field may be unknown (a
    frozen msgspec ``Struct``, built in C: one is made on every request)."""

    client_ip: str | None = None
    country: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


def _clean_ip(value: str | None) -> str | None:
    return canonical_ip(value.strip()) if value else None


def _clean_country(value: str | None) -> str | None:
    code = (value or "").strip().upper()
    return code if _COUNTRY_RE.fullmatch(code) else None


def _clean_text(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    if value.isprintable():
        return value[:limit]
    printable = "".join(ch if ch.isprintable() else "?" for ch in value[:limit])
    return printable or None


def audit_event(
    type: AuditEventType,
    *,
    at: datetime,
    secret_id: str | None = None,
    outcome: Outcome | None = None,
    request: RequestInfo | None = None,
    policy: Mapping[str, Scalar] | None = None,
    detail: Mapping[str, Scalar] | None = None,
    actor: tuple[str, str | None] | None = None,
) -> AuditEvent:
    """Build an event from what the service knows; forgiving where ``AuditEvent`` is strict.

    ``actor`` is the signed-in user who acted, as ``(subject, email)``; ``None`` when anonymous.

    The secret id is hashed here; an address or country that does not parse is dropped and
    over-long or unprintable text is cut or replaced, because request data must never make
    auditing fail. ``outcome`` defaults by type (``failed`` for wrong credentials,
    ``denied`` for refused access, else ``ok``). ``policy`` and ``detail`` are checked as
    ``AuditEvent`` checks them (``ValueError``/``TypeError``): they come from our code.
    """
    info = request or RequestInfo()
    user_agent = _clean_text(info.user_agent, MAX_USER_AGENT)
    event = AuditEvent.from_checked(
        at=_utc_millis(at),
        type=type if type.__class__ is AuditEventType else AuditEventType(type),
        outcome=outcome or _DEFAULT_OUTCOME.get(type, Outcome.OK),
        secret_hash=None if secret_id is None else secret_hash(secret_id),
        client_ip=_clean_ip(info.client_ip),
        country=_clean_country(info.country),
        user_agent=user_agent,
        agent_class=None if user_agent is None else classify(user_agent).kind.value,
        request_id=_clean_text(info.request_id, MAX_REQUEST_ID),
        policy=frozen_labels(policy),
        detail=frozen_labels(detail),
        actor_subject=None,
        actor_email=None,
    )
    if actor is None:
        return event
    # The rare case: ``replace`` runs the constructor, which checks the actor's fields too.
    return replace(
        event,
        actor_subject=actor[0][:MAX_SUBJECT],
        actor_email=None if actor[1] is None else actor[1][:MAX_EMAIL],
    )
