"""The built wheel installs with ``pipx`` into an environment of its own and serves.

The wheel is built from this checkout (``pip wheel --no-deps``), and ``pipx install`` puts it
with its pinned dependencies into a fresh venv under a temporary ``PIPX_HOME``; nothing of the
tests' own environment is used. pipx is a pinned test dependency (``pyproject.toml``), so the
test needs no system package and no root. It takes about 25 s, nearly all of it pip installing
burnlink's dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

import burnlink
from tests.deploy.tools import ROOT
from tests.servers import started

INSTALL_TIMEOUT = 600


def _clean_environment(tmp_path: Path) -> dict[str, str]:
    """The environment without this test run's venv or settings, pipx's homes in ``tmp_path``."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BURNLINK_", "PIPX_", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    environment.update(
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(tmp_path / "bin"),
        PIPX_MAN_DIR=str(tmp_path / "man"),
    )
    return environment


def _run(command: list[str], environment: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv
        command,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=INSTALL_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_pipx_installs_the_wheel_and_it_serves(tmp_path: Path) -> None:
    environment = _clean_environment(tmp_path)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run(
        [*pip, "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(ROOT)],
        environment,
    )
    (wheel,) = (tmp_path / "dist").glob("burnlink-*.whl")
    # --no-compile: byte-compiling every dependency is a third of the install's time.
    pipx = [sys.executable, "-m", "pipx", "install", "--pip-args=--no-compile", str(wheel)]
    _run(pipx, environment)
    installed = tmp_path / "bin" / "burnlink"
    interpreter = installed.read_text(encoding="utf-8").splitlines()[0]
    version = _run([str(installed), "--version"], environment)

    # The command runs from pipx's venv, not from this test run's.
    assert interpreter.startswith(f"#!{tmp_path / 'pipx' / 'venvs' / 'burnlink'}/")
    assert version.strip() == f"burnlink {burnlink.__version__}"

    environment.update(
        BURNLINK_STORE=f"sqlite://{tmp_path / 'data' / 'burnlink.db'}",
        BURNLINK_KEY_DIR=str(tmp_path / "data"),
    )

    def command(port: int) -> list[str]:
        return [str(installed), "serve", "--port", str(port)]

    with started(command, environment, tmp_path / "burnlink.log") as (base, _):
        health = httpx.get(f"{base}/healthz", timeout=10)
        ready = httpx.get(f"{base}/readyz", timeout=10)
        page = httpx.get(f"{base}/", timeout=10)

    assert health.status_code == 200
    assert ready.status_code == 200
    # The page's template and scripts are in the wheel.
    assert page.status_code == 200
    assert "burnlink" in page.text
