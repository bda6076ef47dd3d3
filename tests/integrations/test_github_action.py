"""The GitHub Action's script run as the runner would run it (inputs through action.yml's
``env``, ``$GITHUB_OUTPUT``, ``$GITHUB_ENV``) against a real server: links and values are
masked before anything could print them, and a value never appears outside its mask."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from burnlink import Client
from burnlink.sdk import SecretUnavailable
from tests.cli.harness import running_server, server_settings
from tests.integrations.runner import run_github_action

VALUE = "line one: p%40ss\nline two: hunter2\n"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(server_settings()) as base:
        yield base


def test_share_a_value_outputs_a_masked_link_that_opens_to_the_exact_value(
    server: str, tmp_path: Path
) -> None:
    step = run_github_action(
        {"mode": "share", "server": server, "value": VALUE, "ttl": "10m", "views": "2"}, tmp_path
    )

    assert step.returncode == 0, step.stderr
    link, manage = step.outputs["link"], step.outputs["manage-link"]
    assert link in step.masks()
    assert manage in step.masks()
    assert link not in step.printed_outside_masks()
    assert "hunter2" not in step.stdout + step.stderr
    assert "expires at" in step.stdout
    with Client() as client:
        assert client.get(link) == VALUE.encode()
        assert client.status(manage).max_views == 2


def test_share_a_file_keeps_its_name(server: str, tmp_path: Path) -> None:
    (tmp_path / "deploy.pem").write_bytes(b"-----BEGIN KEY-----\n")

    step = run_github_action({"mode": "share", "server": server, "file": "deploy.pem"}, tmp_path)

    assert step.returncode == 0, step.stderr
    with Client() as client:
        revealed = client.reveal(step.outputs["link"])
    assert (revealed.name, revealed.content) == ("deploy.pem", b"-----BEGIN KEY-----\n")


def test_get_into_a_variable_masks_every_line_and_sets_it_exactly(
    server: str, tmp_path: Path
) -> None:
    with Client(server) as client:
        link = client.share(VALUE).url

    step = run_github_action({"mode": "get", "link": link, "env-name": "DB_PASSWORD"}, tmp_path)

    assert step.returncode == 0, step.stderr
    assert step.env == {"DB_PASSWORD": VALUE}
    masks = step.masks()
    assert {"line one: p%40ss", "line two: hunter2", link} <= set(masks)
    # The value's lines appear on stdout only inside the mask commands, never on stderr.
    assert "hunter2" not in step.printed_outside_masks()
    assert "p%40ss" not in step.printed_outside_masks()
    assert "::add-mask::line one: p%2540ss" in step.stdout
    assert "$DB_PASSWORD" in step.stdout


def test_get_into_a_file_writes_it_privately_and_prints_nothing_of_it(
    server: str, tmp_path: Path
) -> None:
    with Client(server) as client:
        link = client.share("file secret").url

    step = run_github_action({"mode": "get", "link": link, "output-file": "s.txt"}, tmp_path)

    assert step.returncode == 0, step.stderr
    path = tmp_path / "s.txt"
    assert path.read_bytes() == b"file secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert step.outputs["path"] == "s.txt"
    assert "file secret" not in step.stdout + step.stderr


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "github_path", "PATH", "1BAD", "A-B"])
def test_a_bad_variable_name_is_refused_before_the_view_is_used(
    server: str, tmp_path: Path, name: str
) -> None:
    with Client(server) as client:
        link = client.share("still here").url

    step = run_github_action({"mode": "get", "link": link, "env-name": name}, tmp_path)

    assert step.returncode == 1
    assert "::error title=burnlink::env-name" in step.stdout
    assert step.env == {}
    with Client() as client:
        assert client.get(link) == b"still here"


def test_a_used_link_fails_the_step_with_the_clis_message(server: str, tmp_path: Path) -> None:
    with Client(server) as client:
        link = client.share("once").url
        client.get(link)
        with pytest.raises(SecretUnavailable):
            client.get(link)

    step = run_github_action({"mode": "get", "link": link, "env-name": "X"}, tmp_path)

    assert step.returncode == 3
    assert "does not exist" in step.stderr
    assert step.env == {}


def test_missing_or_conflicting_inputs_are_refused(server: str, tmp_path: Path) -> None:
    nothing = run_github_action({"mode": "share", "server": server}, tmp_path)
    both = run_github_action(
        {"mode": "share", "server": server, "value": "v", "file": "f"}, tmp_path
    )
    mode = run_github_action({"mode": "send"}, tmp_path)

    assert [s.returncode for s in (nothing, both, mode)] == [1, 1, 1]
    assert "value or the file" in nothing.stdout
    assert "not both" in both.stdout
    assert "mode must be share or get" in mode.stdout
