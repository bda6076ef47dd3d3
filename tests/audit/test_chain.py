"""The hash chain on plain lists of entries (no store), and the audit key file."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from burnlink.audit.chain import (
    GENESIS,
    AuditEntry,
    ChainHead,
    Problem,
    entry_mac,
    load_or_create_key,
    next_entry,
    parse_key,
    read_or_create_private_file,
    verify,
)
from burnlink.errors import ConfigError
from tests.audit.conftest import KEY, make_event


def _chain(count: int, key: bytes = KEY) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    head = GENESIS
    for n in range(1, count + 1):
        entry = next_entry(key, head, make_event(n))
        entries.append(entry)
        head = entry.head
    return entries


def test_entry_mac_is_hmac_of_prev_mac_event_and_seq() -> None:
    event = make_event(1)
    expected = hmac.new(
        KEY, bytes(32) + event.canonical() + (1).to_bytes(8, "big"), hashlib.sha256
    ).digest()

    assert entry_mac(KEY, GENESIS.mac, event, 1) == expected
    assert next_entry(KEY, GENESIS, event).mac == expected


def test_verify_accepts_an_intact_chain() -> None:
    result = verify(_chain(5), KEY, start=GENESIS, end=_chain(5)[-1].head)

    assert result.ok
    assert bool(result)
    assert (result.checked, result.last_seq) == (5, 5)
    assert result.describe() == "OK: 5 entries verified"


def test_verify_accepts_an_empty_chain() -> None:
    assert verify([], KEY, start=GENESIS, end=GENESIS)


def test_verify_reports_an_edited_entry() -> None:
    entries = _chain(5)
    entries[2] = dataclasses.replace(entries[2], event=make_event(99))

    result = verify(entries, KEY)

    assert (result.problem, result.seq, result.checked) == (Problem.BAD_MAC, 3, 2)
    assert not result
    assert result.describe() == "FAILED at seq 3: bad_mac"


def test_verify_reports_a_deleted_entry() -> None:
    entries = _chain(5)
    del entries[1]

    result = verify(entries, KEY)

    assert (result.problem, result.seq) == (Problem.MISSING, 2)


def test_verify_reports_an_entry_that_comes_again_later() -> None:
    entries = _chain(5)
    entries.append(entries[1])

    result = verify(entries, KEY)

    assert (result.problem, result.seq) == (Problem.REORDERED, 2)
    assert result.detail == "comes after seq 5"


def test_verify_reports_swapped_lines_of_an_export_where_the_first_is_missing() -> None:
    entries = _chain(5)
    entries[2], entries[3] = entries[3], entries[2]

    result = verify(entries, KEY)

    assert (result.problem, result.seq) == (Problem.MISSING, 3)


def test_verify_reports_an_entry_moved_to_another_seq() -> None:
    entries = _chain(5)
    moved = dataclasses.replace(entries[3], seq=3)
    entries[2:4] = [moved, dataclasses.replace(entries[2], seq=4)]

    result = verify(entries, KEY)

    assert (result.problem, result.seq) == (Problem.REORDERED, 3)
    assert result.detail == "belongs at seq 4"


def test_verify_reports_a_spliced_chain() -> None:
    # Authentic on its own (right key), but made after another entry 2 than this one.
    entries = [*_chain(2), next_entry(KEY, ChainHead(2, bytes(32)), make_event(7))]

    result = verify(entries, KEY)

    assert (result.problem, result.seq) == (Problem.BROKEN_LINK, 3)


def test_verify_reports_a_wrong_key() -> None:
    assert verify(_chain(2), bytes(32)).problem is Problem.BAD_MAC


def test_verify_reports_missing_entries_at_the_end() -> None:
    entries = _chain(5)

    result = verify(entries[:3], KEY, start=GENESIS, end=entries[-1].head)

    assert (result.problem, result.seq) == (Problem.TRUNCATED, 4)


def test_verify_reports_a_last_entry_that_is_not_the_head() -> None:
    entries = _chain(3)

    result = verify(entries, KEY, end=ChainHead(3, bytes(32)))

    assert (result.problem, result.seq) == (Problem.BROKEN_LINK, 3)


def test_verify_checks_a_slice_from_its_first_entry() -> None:
    entries = _chain(6)

    assert verify(entries[2:], KEY).checked == 4
    assert verify(entries[2:], KEY, start=entries[1].head)
    assert verify(entries[2:], KEY, start=GENESIS).problem is Problem.MISSING


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(KEY.hex(), id="hex"),
        pytest.param(base64.b64encode(KEY).decode(), id="base64"),
        pytest.param(base64.urlsafe_b64encode(KEY).decode().rstrip("="), id="base64url"),
        pytest.param(f"  {KEY.hex()}\n", id="whitespace"),
    ],
)
def test_parse_key_accepts_hex_and_base64(text: str) -> None:
    assert parse_key(text) == KEY


@pytest.mark.parametrize("text", ["", "short", KEY.hex()[:62], "!" * 44])
def test_parse_key_refuses_short_or_garbled_keys(text: str) -> None:
    with pytest.raises(ConfigError, match="BURNLINK_AUDIT_KEY") as caught:
        parse_key(text)
    assert text.strip() not in str(caught.value) or not text.strip()


def test_load_or_create_key_creates_a_private_file_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"

    key, created = load_or_create_key(path)
    again, created_again = load_or_create_key(path)

    assert (created, created_again) == (True, False)
    assert key == again
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["audit.key"]


def test_load_or_create_key_refuses_a_file_that_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    path.write_bytes(b"\xff\xfe not a key")

    with pytest.raises(ConfigError, match="not an audit key"):
        load_or_create_key(path)


def test_read_or_create_private_file_keeps_the_first_content(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"first")

    assert read_or_create_private_file(path, lambda: b"second") == (b"first", False)


def test_read_or_create_private_file_reports_unwritable_places(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")

    with pytest.raises(ConfigError, match="cannot"):
        read_or_create_private_file(blocker / "key", lambda: b"x")


def test_read_or_create_private_file_keeps_what_another_process_wrote_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "key"

    def make_while_another_process_wins() -> bytes:
        path.write_bytes(b"theirs")
        return b"ours"

    assert read_or_create_private_file(path, make_while_another_process_wins) == (b"theirs", False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]
