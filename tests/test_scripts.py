"""The developer scripts never touch the environment the README's server runs from."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCRIPTS = ("scripts/_venv", "scripts/test", "scripts/check", "scripts/container-test", ".ci/run")
# The README's one command that installs and starts a server: its venv is the user's.
_SERVE_RE = re.compile(
    r"python3 -m venv (?P<venv>\S+) && (?P=venv)/bin/pip install \. && (?P=venv)/bin/burnlink serve"
)


def _serve_venv() -> str:
    match = _SERVE_RE.search(README)
    assert match is not None, "README lost its set-up command"
    return match["venv"]


def _test_venv() -> str:
    match = re.search(r"^VENV=(?P<venv>\S+)$", (ROOT / "scripts/_venv").read_text(), re.MULTILINE)
    assert match is not None
    return match["venv"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_never_use_the_readme_server_venv(script: str) -> None:
    """``bash scripts/test`` reinstalling into the server's venv made it answer 500."""
    text = (ROOT / script).read_text(encoding="utf-8")

    assert f"{_serve_venv()}/" not in text
    assert _test_venv() != _serve_venv()


def test_scripts_test_venv_is_git_ignored() -> None:
    ignored = subprocess.run(  # noqa: S603 - fixed argv
        ["git", "check-ignore", "-q", f"{_test_venv()}/bin/python"],  # noqa: S607 - git on PATH
        cwd=ROOT,
        check=False,
    )

    assert ignored.returncode == 0


def test_scripts_venv_resolves_the_repository_when_sourced_from_anywhere(tmp_path: Path) -> None:
    """Sourced from ``bash -c``, ``$0`` is ``bash``: the helper must not use it to find home."""
    probe = 'source "$1/scripts/_venv_root"; pwd'
    helper = ROOT / "scripts" / "_venv"
    # Only the first lines, up to the cd: the install itself is not run here.
    head = helper.read_text(encoding="utf-8").split("VENV=", 1)[0]
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "_venv_root").write_text(head, encoding="utf-8")
    result = subprocess.run(  # noqa: S603 - fixed argv
        ["bash", "-c", probe, "bash", str(tmp_path)],  # noqa: S607 - bash on PATH
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == str(tmp_path)


def test_scripts_ci_runs_the_container_test() -> None:
    """The image has no pytest test: scripts/container-test is its test, and CI runs it."""
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")

    assert "bash scripts/container-test" in ci
    assert (ROOT / "scripts/container-test").stat().st_mode & 0o111
