"""The README's commands work as written on a fresh machine after its set-up command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
_SERVE_RE = re.compile(r"python3 -m venv (?P<venv>\S+) && (?P=venv)/bin/pip install \. && ")


def _shell_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_readme_cli_examples_call_the_installed_command() -> None:
    """``burnlink`` is not on PATH after the set-up command; its venv's copy is."""
    match = _SERVE_RE.search(README)
    assert match is not None
    installed = f"{match['venv']}/bin/burnlink"
    calls = [line for line in _shell_lines() if re.search(r"(^|[\s/])burnlink ", line)]

    assert any(" share " in f" {line} " for line in calls)
    for line in calls:
        for word in re.findall(r"\S*burnlink(?= )", line):
            assert word == installed, line
