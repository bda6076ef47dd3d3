"""Audit events: validation, the canonical form, and that secret material has no way in."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burnlink.audit.chain import entry_mac
from burnlink.audit.events import (
    MAX_VALUE_LENGTH,
    AuditEvent,
    AuditEventType,
    Outcome,
    RequestInfo,
    audit_event,
    canonical_json,
    format_time,
    list_label,
    parse_time,
    secret_hash,
)
from tests.audit.conftest import T0, make_event

SECRET_WORDS = ("content", "envelope", "ciphertext", "plaintext", "passphrase", "token", "key")


def test_secret_hash_is_hex_sha256_of_the_id() -> None:
    assert secret_hash("abc") == hashlib.sha256(b"abc").hexdigest()


def test_audit_event_canonical_form_is_sorted_compact_and_complete() -> None:
    event = audit_event(AuditEventType.SECRET_CREATED, at=T0, detail={"views": 1})

    text = event.canonical().decode()

    assert text == (
        '{"agent_class":null,"at":"2030-01-01T00:00:00.000Z","client_ip":null,"country":null,'
        '"detail":{"views":1},"outcome":"ok","policy":{},"request_id":null,"secret_hash":null,'
        '"type":"secret.created","user_agent":null,"v":1}'
    )


def test_audit_event_round_trips_through_canonical_json() -> None:
    event = audit_event(
        AuditEventType.ACCESS_DENIED_GEO,
        at=T0 + timedelta(microseconds=123_456),
        secret_id="abc",
        request=RequestInfo("2001:db8::1", "fr", "Mozilla/5.0 Grüße ✓", "r-1"),
        policy={"rule": "geo", "allowed": "DE,AT"},
        detail={"attempt": 2, "final": False, "note": None},
    )

    again = AuditEvent.from_json(event.canonical())

    assert again == event
    assert again.canonical() == event.canonical()
    assert again.at == T0 + timedelta(milliseconds=123)


def test_audit_event_stores_time_in_utc_milliseconds() -> None:
    local = datetime(2030, 1, 1, 2, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))

    event = make_event(at=local)

    assert event.at == datetime(2030, 1, 1, 0, 0, 0, 999_000, tzinfo=UTC)
    assert format_time(event.at) == "2030-01-01T00:00:00.999Z"


def test_audit_event_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        AuditEvent(at=datetime(2030, 1, 1), type=AuditEventType.ALERT, outcome=Outcome.OK)  # noqa: DTZ001


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"secret_hash": "abc"}, id="short-hash"),
        pytest.param({"secret_hash": "A" * 64}, id="upper-case-hash"),
        pytest.param({"client_ip": "not-an-ip"}, id="ip"),
        pytest.param({"country": "de"}, id="country-lower"),
        pytest.param({"user_agent": "x" * 600}, id="long-user-agent"),
        pytest.param({"request_id": "x" * 200}, id="long-request-id"),
        pytest.param({"detail": {f"k{i}": i for i in range(17)}}, id="too-many-items"),
        pytest.param({"detail": {"Reason": 1}}, id="key-not-lower-case"),
        pytest.param({"detail": {"note": "x" * 201}}, id="long-value"),
    ],
)
def test_audit_event_refuses_invalid_fields(changes: dict[str, object]) -> None:
    fields = {"at": T0, "type": AuditEventType.ALERT, "outcome": Outcome.OK, **changes}

    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
        AuditEvent(**fields)  # type: ignore[arg-type]


def test_audit_event_has_no_field_for_secret_material() -> None:
    names = {f.name for f in dataclasses.fields(AuditEvent)}
    parameters = set(inspect.signature(audit_event).parameters)
    request_fields = set(RequestInfo.__struct_fields__)

    for name in names | parameters | request_fields:
        assert not any(word in name for word in SECRET_WORDS), name


@pytest.mark.parametrize(
    "key",
    ["passphrase", "otp_code", "access_token", "content", "envelope", "secret", "manage.token"],
)
def test_audit_event_refuses_detail_keys_that_name_secret_material(key: str) -> None:
    with pytest.raises(ValueError, match="names secret material"):
        audit_event(AuditEventType.ALERT, at=T0, detail={key: "x"})
    with pytest.raises(ValueError, match="names secret material"):
        audit_event(AuditEventType.ALERT, at=T0, policy={key: "x"})


@pytest.mark.parametrize("value", [b"bytes", 1.5, ["list"], {"nested": 1}])
def test_audit_event_refuses_non_scalar_detail_values(value: object) -> None:
    with pytest.raises(TypeError):
        audit_event(AuditEventType.ALERT, at=T0, detail={"note": value})  # type: ignore[dict-item]


def test_audit_event_detail_is_read_only() -> None:
    event = audit_event(AuditEventType.ALERT, at=T0, detail={"reason": "bot"})

    with pytest.raises(TypeError):
        event.detail["reason"] = "changed"  # type: ignore[index]


def test_audit_event_builder_hashes_the_id_and_cleans_request_data() -> None:
    event = audit_event(
        AuditEventType.SECRET_OPENED,
        at=T0,
        secret_id="Ab3_x",
        request=RequestInfo(" 203.0.113.9 ", "nl", "Slackbot-LinkExpanding 1.0\x00", "id\n1"),
    )

    assert event.secret_hash == secret_hash("Ab3_x")
    assert "Ab3_x" not in event.canonical().decode()
    assert event.client_ip == "203.0.113.9"
    assert event.country == "NL"
    assert event.user_agent == "Slackbot-LinkExpanding 1.0?"
    assert event.agent_class == "preview"
    assert event.request_id == "id?1"


def test_audit_event_builder_drops_what_does_not_parse() -> None:
    event = audit_event(
        AuditEventType.SECRET_OPENED,
        at=T0,
        request=RequestInfo("unknown", "Germany", "x" * 2000, ""),
    )

    assert (event.client_ip, event.country, event.request_id) == (None, None, None)
    assert event.user_agent is not None
    assert len(event.user_agent) == 512


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        (AuditEventType.SECRET_VIEWED, Outcome.OK),
        (AuditEventType.PASSPHRASE_FAILED, Outcome.FAILED),
        (AuditEventType.KEY_FAILED, Outcome.FAILED),
        (AuditEventType.ACCESS_DENIED_IP, Outcome.DENIED),
        (AuditEventType.RATE_LIMITED, Outcome.DENIED),
    ],
)
def test_audit_event_builder_defaults_outcome_by_type(
    kind: AuditEventType, outcome: Outcome
) -> None:
    assert audit_event(kind, at=T0).outcome is outcome


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"v": 1}, id="missing-fields"),
        pytest.param({**make_event().to_dict(), "v": 2}, id="version"),
        pytest.param({**make_event().to_dict(), "type": "secret.stolen"}, id="type"),
        pytest.param({**make_event().to_dict(), "at": "2030-01-01T00:00:00Z"}, id="time-shape"),
        pytest.param({**make_event().to_dict(), "detail": []}, id="detail-not-mapping"),
        pytest.param({**make_event().to_dict(), "extra": 1}, id="extra-field"),
        pytest.param({**make_event().to_dict(), "type": ["alert"]}, id="type-not-a-string"),
        pytest.param({**make_event().to_dict(), "outcome": "fine"}, id="outcome"),
        # 64 digits are 64 hex digits, but a number is not a secret hash (nor canonical text).
        pytest.param({**make_event().to_dict(), "secret_hash": int("1" * 64)}, id="hash-number"),
    ],
)
def test_audit_event_from_dict_refuses_what_is_not_an_event(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies
        AuditEvent.from_dict(data)


_TEXT = st.text(max_size=40)
_SCALARS = st.none() | st.booleans() | st.integers() | _TEXT
_LABELS = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), _SCALARS, max_size=4
)


@settings(max_examples=300, deadline=None)
@given(
    at=st.datetimes(timezones=st.just(UTC)),
    type_=st.sampled_from(AuditEventType),
    outcome=st.sampled_from(Outcome),
    user_agent=st.none() | _TEXT,
    request_id=st.none() | _TEXT,
    country=st.none() | st.from_regex(r"[A-Z]{2}", fullmatch=True),
    client_ip=st.none() | st.ip_addresses().map(str),
    policy=_LABELS,
    detail=_LABELS,
)
def test_audit_event_json_forms_are_what_the_encoder_makes_of_its_dict(
    at: datetime,
    type_: AuditEventType,
    outcome: Outcome,
    user_agent: str | None,
    request_id: str | None,
    country: str | None,
    client_ip: str | None,
    policy: dict[str, str | int | bool | None],
    detail: dict[str, str | int | bool | None],
) -> None:
    """``canonical()`` and ``to_json()`` write the event member by member; they must be byte
    for byte what the generic encoder makes of ``to_dict()`` (escapes, key order, numbers,
    ``null``), sorted and in ``to_dict``'s order."""
    labels = [{k: v for k, v in d.items() if not _names_secret(k)} for d in (policy, detail)]
    event = AuditEvent(
        at=at,
        type=type_,
        outcome=outcome,
        secret_hash=secret_hash(request_id or ""),
        client_ip=client_ip,
        country=country,
        user_agent=user_agent,
        agent_class=None,
        request_id=request_id,
        policy=labels[0],
        detail=labels[1],
    )

    assert event.canonical() == canonical_json(event.to_dict())
    compact = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False)
    assert event.to_json() == compact


def _names_secret(key: str) -> bool:
    try:
        AuditEvent(at=T0, type=AuditEventType.ALERT, outcome=Outcome.OK, detail={key: 1})
    except ValueError:
        return True
    return False


def test_parse_time_inverts_format_time() -> None:
    assert parse_time(format_time(T0 + timedelta(milliseconds=5))) == T0 + timedelta(milliseconds=5)


def test_canonical_json_keeps_unicode_and_refuses_nan() -> None:
    assert canonical_json({"b": "ü", "a": 1}) == '{"a":1,"b":"ü"}'.encode()
    with pytest.raises(ValueError):  # noqa: PT011
        canonical_json({"x": float("nan")})
    assert json.loads(canonical_json({"a": [1, 2]})) == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param((), None, id="empty"),
        pytest.param(("DE", "FR"), "DE,FR", id="short"),
        pytest.param(("x" * 200,), "x" * 200, id="exactly-the-limit"),
        pytest.param(("x" * 150, "y" * 60), "x" * 150 + "," + "y" * 46 + "...", id="cut"),
    ],
)
def test_list_label_joins_and_cuts_to_fit(values: tuple[str, ...], expected: str | None) -> None:
    label = list_label(values)

    assert label == expected
    assert label is None or len(label) <= MAX_VALUE_LENGTH


def test_with_detail_is_replace_with_only_the_detail_checked_again() -> None:
    event = make_event(7)
    changed = event.with_detail({"max_views": 3})
    assert changed == dataclasses.replace(event, detail={"max_views": 3})
    assert changed.canonical() == dataclasses.replace(event, detail={"max_views": 3}).canonical()
    assert event.detail == make_event(7).detail
    with pytest.raises(ValueError, match="secret material"):
        event.with_detail({"passphrase": "x"})
    with pytest.raises(TypeError):
        event.with_detail({"max_views": 1.5})  # type: ignore[dict-item]


# -- the actor, and the vectors that keep old entries verifying ------------------------------

_VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "audit_events.json").read_text("utf-8")
)


@pytest.mark.parametrize(
    "vector",
    [
        pytest.param(v, id=f"{kind}-{n}")
        for kind in ("without_actor", "with_actor")
        for n, v in enumerate(_VECTORS[kind])
    ],
)
def test_audit_event_vectors_keep_their_canonical_bytes_and_mac(vector: dict[str, Any]) -> None:
    """The events without an actor were made by the code before actors: their bytes and MACs
    are unchanged, so entries written then still verify."""
    event = AuditEvent.from_dict(vector["event"])

    assert event.canonical() == vector["canonical"].encode("utf-8")
    assert canonical_json(event.to_dict()) == event.canonical()
    assert AuditEvent.from_json(event.to_json()) == event
    assert entry_mac(bytes(32), bytes(32), event, 1).hex() == vector["mac"]


def test_audit_event_actor_is_absent_never_null() -> None:
    plain = AuditEvent(at=T0, type=AuditEventType.SECRET_CREATED, outcome=Outcome.OK)
    signed = dataclasses.replace(plain, actor_subject="alice-sub", actor_email="a@example.com")

    assert "actor" not in plain.to_dict()
    assert b"actor" not in plain.canonical()
    assert signed.to_dict()["actor"] == {"email": "a@example.com", "subject": "alice-sub"}
    with pytest.raises(ValueError, match="never null"):
        AuditEvent.from_dict({**plain.to_dict(), "actor": None})
    with pytest.raises(ValueError, match="email and subject"):
        AuditEvent.from_dict({**plain.to_dict(), "actor": {"subject": "x"}})


@pytest.mark.parametrize(
    ("subject", "email"),
    [
        pytest.param(None, "a@example.com", id="email-alone"),
        pytest.param("x" * 256, None, id="long-subject"),
        pytest.param("x", "e" * 255, id="long-email"),
    ],
)
def test_audit_event_refuses_a_bad_actor(subject: str | None, email: str | None) -> None:
    with pytest.raises(ValueError, match="actor"):
        AuditEvent(
            at=T0,
            type=AuditEventType.SECRET_CREATED,
            outcome=Outcome.OK,
            actor_subject=subject,
            actor_email=email,
        )
