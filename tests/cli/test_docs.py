"""docs/cli.md documents every command, option, environment variable and exit code."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

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


def _help_exit_codes(*args: str) -> dict[int, str]:
    text = CliRunner().invoke(main, [*args, "--help"], terminal_width=80).stdout
    listing = " ".join(text.split("Exit codes:", 1)[1].split()).removesuffix(".")
    items = (item.split(" ", 1) for item in re.split(r", (?=\d+ )", listing))
    return {int(number): what for number, what in items}


@pytest.mark.parametrize("command", [(), *((name,) for name in COMMANDS if name != "config")])
def test_help_lists_every_exit_code(command: tuple[str, ...]) -> None:
    """``burnlink --help`` once stopped at 7: the list must follow ``ExitCode``."""
    listed = _help_exit_codes(*command)

    assert sorted(listed) == [code.value for code in ExitCode]
    assert all(listed.values())
