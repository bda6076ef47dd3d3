"""docs/cli.md documents every command, option, environment variable and exit code."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from burnlink.cli.main import main
from burnlink.cli.output import ERRORS, ExitCode

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_docs_describe_every_command_and_option(name: str) -> None:
    command = main.commands[name]

    assert f"## `burnlink {name}" in DOC
    for param in command.params:
        if isinstance(param, click.Option):
            assert any(f"`{opt}" in DOC for opt in param.opts), (name, param.opts)
        if isinstance(param, click.Option) and isinstance(param.envvar, str):
            assert f"`{param.envvar}`" in DOC


def test_docs_list_every_exit_code_and_json_code() -> None:
    for code in ExitCode:
        assert f"| {code.value} | `{code.name}` |" in DOC
    for _, _, json_code in ERRORS:
        assert f"`{json_code}`" in DOC


def test_docs_name_the_passphrase_variable() -> None:
    assert "`BURNLINK_PASSPHRASE`" in DOC
