"""docs/cli.md documents every command, option, environment variable and exit code."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from burnlink.cli.main import main
from burnlink.cli.output import ERRORS, ExitCode
from tests.cli.harness import Cli

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


def _comparable(text: str) -> list[str]:
    # What varies between runs: times, addresses, countries and the signed statement.
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "<time>", text)
    text = re.sub(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", "<ip>", text)
    text = re.sub(r"(?<=<ip>  )(?:[A-Z]{2}|--)(?=  )", "<cc>", text)
    text = re.sub(r"(?<=<cc>  ).+", "<agent>", text)
    lines = text.splitlines()
    proof = [i for i, line in enumerate(lines) if line.startswith("Proof of destruction")]
    if not proof:
        return lines
    return [*lines[: proof[0] + 1], *("  <statement>" for _ in lines[proof[0] + 1 :])]


def test_docs_status_example_is_the_real_output(cli: Cli) -> None:
    example = re.search(r'```\n\$ burnlink status "\$MANAGE_LINK"\n(?P<out>.*?)```', DOC, re.DOTALL)
    assert example is not None
    shared = cli("share", input=b"s3cret")
    manage_link = shared.stderr.rsplit(": ", 1)[1].strip()
    assert cli("get", shared.stdout.strip()).exit_code == 0

    result = cli("status", manage_link)

    assert result.exit_code == 0
    assert _comparable(result.stdout) == _comparable(example["out"])
