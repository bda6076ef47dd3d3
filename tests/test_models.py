"""The records that pass between the service and the stores keep envelopes and digests out of
their reprs, and out of what rich prints (a repr ends up in tracebacks, debuggers and logs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from burnlink.audit.watch import Watched
from burnlink.crypto import LinkKeys, Payload
from burnlink.envelope import Envelope
from burnlink.models import AccessPolicy, ClientInfo, Consumed, SecretMeta, SecretRecord
from burnlink.service.secrets import CreatedSecret
from burnlink.store import Pending, Recorded
from burnlink.store.secrets import ViewRecord

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


HOOK = "https://hooks.example.com/T0K3N-in-the-path"
SECRET = b"the-content-or-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("record", "shown", "hidden"),
    [
        (Payload(SECRET, name="id_rsa"), "name='id_rsa'", ("content",)),
        (LinkKeys(SECRET, SECRET + b"2", SECRET + b"3"), "LinkKeys()", ("access_token",)),
        (Envelope("none", 0, b"", b"nonce-bytes!", SECRET), "nonce=", ("ciphertext",)),
        (AccessPolicy(allowed_countries=("DE",), notify_url=HOOK), "('DE',)", ("notify_url",)),
        (Watched("Qm9vb3Jvb3Jvb3Jvb3Jvbw", NOW, HOOK), "expires_at=", ("notify_url",)),
        (Recorded(None, SECRET), "line=None", ("outbox",)),
        (ViewRecord(None, SECRET, SECRET), "line=None", ("head", "tail")),
        (Pending("1-0", SECRET), "ref='1-0'", ("outbox",)),
        (Consumed(SECRET, 2), "views_left=2", ("envelope",)),
        (CreatedSecret("Qm9vb3Jvb3Jvb3Jvb3Jvbw", SECRET, NOW, 1), "max_views=1", ("manage_token",)),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, str | tuple) else "",
)
def test_records_built_per_request_keep_keys_content_and_hooks_out_of_their_reprs(
    record: object, shown: str, hidden: tuple[str, ...]
) -> None:
    text = repr(record)
    rich = dict(record.__rich_repr__())  # type: ignore[attr-defined]

    assert shown in text
    assert repr(SECRET) not in text
    assert HOOK not in text
    for name in hidden:
        assert f"{name}=" not in text
        assert name not in rich
