"""The GitLab CI template's functions run as a job would run them (before_script and script in
one shell, GitLab's variables) against a real server: links and values land in variables
and private files and are never printed."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from burnlink import Client
from tests.cli.harness import running_server, server_settings
from tests.integrations.runner import run_gitlab_job

VALUE = "user=ci\npassword=hunter2\n\n"
SHELLS = [
    "bash",
    pytest.param("sh", marks=pytest.mark.skipif(not shutil.which("sh"), reason="no sh")),
]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(server_settings()) as base:
        yield base


@pytest.mark.parametrize("shell", SHELLS)
def test_share_a_variable_then_get_it_into_another_exactly(
    server: str, tmp_path: Path, shell: str
) -> None:
    job = run_gitlab_job(
        [
            "burnlink_share --variable NEW_PASSWORD --ttl 1h --views 1",
            'burnlink_get "$BURNLINK_LINK" --variable RECEIVED',
        ],
        {"BURNLINK_SERVER": server, "NEW_PASSWORD": VALUE},
        tmp_path,
        shell,
    )

    assert job.returncode == 0, job.stderr
    assert job.env["RECEIVED"] == VALUE
    assert job.env["BURNLINK_LINK"].startswith(f"{server}/s/")
    assert job.env["BURNLINK_MANAGE_LINK"].startswith(f"{server}/m/")
    log = job.stdout + job.stderr
    assert "hunter2" not in log
    assert job.env["BURNLINK_LINK"] not in log
    assert job.env["BURNLINK_MANAGE_LINK"] not in log
    assert "$BURNLINK_LINK expires at" in job.stdout


def test_share_a_file_and_get_it_into_a_private_file(server: str, tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_bytes(b"apiVersion: v1\n")

    job = run_gitlab_job(
        [
            "burnlink_share --file kubeconfig",
            'burnlink_get "$BURNLINK_LINK" --file "$CI_PROJECT_DIR/received"',
        ],
        {"BURNLINK_SERVER": server},
        tmp_path,
    )

    assert job.returncode == 0, job.stderr
    received = tmp_path / "received"
    assert received.read_bytes() == b"apiVersion: v1\n"
    assert stat.S_IMODE(received.stat().st_mode) == 0o600
    assert "apiVersion" not in job.stdout + job.stderr


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (["burnlink_share --variable UNSET_VARIABLE"], "$UNSET_VARIABLE is empty or unset"),
        (["burnlink_share --variable 'A;id'"], "must be a variable name"),
        (["burnlink_share"], "needs --variable NAME or --file PATH"),
        (['burnlink_get "$LINK" --variable CI_JOB_TOKEN'], "must not be one the runner"),
        (['burnlink_get "$LINK" --file taken'], "already exists"),
        (['burnlink_get "$LINK"'], "needs --variable NAME or --file PATH"),
    ],
)
def test_refusals_fail_the_job_before_any_view_is_used(
    server: str, tmp_path: Path, script: list[str], message: str
) -> None:
    (tmp_path / "taken").write_text("keep")
    with Client(server) as client:
        link = client.share("still here").url

    job = run_gitlab_job(
        [*script, "echo never reached"], {"BURNLINK_SERVER": server, "LINK": link}, tmp_path
    )

    assert job.returncode == 1
    assert message in job.stderr
    assert "never reached" not in job.stdout
    assert (tmp_path / "taken").read_text() == "keep"
    with Client() as client:
        assert client.get(link) == b"still here"


def test_a_used_link_fails_the_job_with_the_clis_exit_code(server: str, tmp_path: Path) -> None:
    with Client(server) as client:
        link = client.share("once").url
        client.get(link)

    job = run_gitlab_job(['burnlink_get "$LINK" --variable X'], {"LINK": link}, tmp_path)

    assert job.returncode != 0
    assert "does not exist" in job.stderr
    assert "X" not in job.env
