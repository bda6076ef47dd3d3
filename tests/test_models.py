"""The records that pass between the service and the stores keep envelopes and digests out of
their reprs, and out of what rich prints (a repr ends up in tracebacks, debuggers and logs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from burnlink.models import AccessPolicy, ClientInfo, SecretMeta, SecretRecord

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ENVELOPE = b'{"v":1,"ct":"the-sealed-envelope"}'
ACCESS = b"access-digest-bytes-0123456789abc"
MANAGE = b"manage-digest-bytes-0123456789abc"


def test_a_secret_records_repr_names_it_without_its_envelope_or_digests() -> None:
    record = SecretRecord(
        secret_id="Qm9vb3Jvb3Jvb3Jvb3Jvbw",
        envelope=ENVELOPE,
        access_digest=ACCESS,
        manage_digest=MANAGE,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        max_views=3,
        max_attempts=5,
        label="db password",
    )

    text = repr(record)

    assert text.startswith("SecretRecord(secret_id='Qm9vb3Jvb3Jvb3Jvb3Jvbw', created_at=")
    assert "max_views=3" in text
    assert "label='db password'" in text
    for hidden in (ENVELOPE, ACCESS, MANAGE):
        assert repr(hidden) not in text
    assert "envelope" not in text
    assert "digest" not in text
    shown = dict(record.__rich_repr__())  # what rich prints, in tracebacks with locals too
    assert shown["max_views"] == 3
    assert not {"envelope", "access_digest", "manage_digest"} & shown.keys()


def test_a_secrets_metadata_repr_leaves_out_its_digest() -> None:
    meta = SecretMeta(
        secret_id="Qm9vb3Jvb3Jvb3Jvb3Jvbw",
        access_digest=ACCESS,
        created_at=NOW,
        expires_at=NOW,
        max_views=1,
        views_left=1,
        attempts_left=5,
        policy=AccessPolicy(allowed_countries=("DE",)),
    )

    text = repr(meta)

    assert "views_left=1" in text
    assert "allowed_countries=('DE',)" in text
    assert repr(ACCESS) not in text
    assert "access_digest" not in text
    assert "access_digest" not in dict(meta.__rich_repr__())


def test_records_are_values_that_cannot_be_changed_in_place() -> None:
    client = ClientInfo(ip="203.0.113.7", user_agent="curl/8.5.0")

    moved = msgspec.structs.replace(client, country="DE")

    assert moved == ClientInfo(ip="203.0.113.7", user_agent="curl/8.5.0", country="DE")
    assert client.country is None
    assert hash(moved) == hash(ClientInfo("203.0.113.7", "curl/8.5.0", "DE"))
    with pytest.raises(AttributeError):
        client.ip = "198.51.100.1"  # type: ignore[misc]
