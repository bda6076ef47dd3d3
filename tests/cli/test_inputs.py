"""TTL strings and the passphrase sources that need no terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from burnlink.cli.inputs import PASSPHRASE_ENV, parse_ttl, receiver_passphrase, sender_passphrase
from burnlink.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("30s", 30),
        ("10m", 600),
        ("1h", 3600),
        ("7d", 7 * 86400),
        ("1w", 7 * 86400),
        (" 2H ", 7200),
    ],
)
def test_parse_ttl_reads_units(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["5x", "0", "0h", "", "1.5h", "-1", "1 h", "h", "12345678901"])
def test_parse_ttl_refuses_other_text(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ttl(text)

    assert caught.value.field == "--ttl"


def test_sender_passphrase_file_drops_one_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "from the environment")
    path = tmp_path / "passphrase"
    path.write_bytes(b"  two words \r\n")

    assert sender_passphrase(ask=False, file=path) == "  two words "


def test_sender_passphrase_file_refuses_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    path.write_bytes(b"\n")

    with pytest.raises(InvalidInput):
        sender_passphrase(ask=False, file=path)


def test_sender_passphrase_comes_from_the_environment_without_asking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "from the environment")

    assert sender_passphrase(ask=False, file=None) == "from the environment"
    assert receiver_passphrase() == "from the environment"


def test_sender_passphrase_is_none_unless_asked_or_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "")  # empty counts as unset, as in most shells

    assert sender_passphrase(ask=False, file=None) is None
