"""The test OpenID provider (tests/oidc_provider.py) never outlives the test run that started
it: killing the process that holds it, or killing a pytest-xdist run (whose worker, the
provider's parent, lives on as an orphan until its test ends), stops Node within seconds.

Each test starts its own Python processes and, whatever happens, kills every process it
started (by pid), so a failure here leaves nothing behind either.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oidc_provider import require_node
from tests.servers import START_TIMEOUT

REPO = Path(__file__).resolve().parents[1]
GONE_WITHIN = 5.0
"""Seconds the provider may take to notice and stop."""

HOLDER = """
import os, sys, time
from pathlib import Path
from tests.oidc_provider import OidcProvider

provider = OidcProvider([])
provider.start()
assert provider._process is not None
Path(sys.argv[1]).write_text(f"{os.getpid()} {provider._process.pid}")
time.sleep(600)
"""
"""A process that starts a provider, writes its own pid and Node's, and waits."""

HELD_IN_A_TEST = """
import os, time
from pathlib import Path
from tests.oidc_provider import OidcProvider

def test_hold_the_provider() -> None:
    with OidcProvider([]) as provider:
        assert provider._process is not None
        Path(os.environ["HOLDER_PIDS"]).write_text(f"{os.getpid()} {provider._process.pid}")
        time.sleep(600)
"""
"""A test that holds a provider in a pytest(-xdist) run until it is killed."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a pid reused by another user
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True  # pragma: no cover - no /proc


def _pids(path: Path) -> tuple[int, int]:
    """Wait for ``path``: the holder's pid and Node's."""
    deadline = time.monotonic() + 3 * START_TIMEOUT
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text.count(" ") == 1:
            holder, node = text.split()
            return int(holder), int(node)
        time.sleep(0.05)
    raise AssertionError(f"the provider was not started (no {path.name})")


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + GONE_WITHIN
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def _cleanup(started: list[int]) -> Iterator[None]:
    """Kill every pid in ``started`` (the processes this test started) when done."""
    try:
        yield
    finally:
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE_", "PYTEST_"))}
    return {**env, "PYTHONPATH": str(REPO), **extra}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_provider_stops_when_its_process_is_killed(tmp_path: Path, sig: signal.Signals) -> None:
    require_node()
    pids = tmp_path / "pids"
    holder = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-c", HOLDER, str(pids)], cwd=REPO, env=_env()
    )
    started = [holder.pid]
    with _cleanup(started):
        _, node = _pids(pids)
        started.append(node)
        assert _alive(node)

        holder.send_signal(sig)
        holder.wait(timeout=START_TIMEOUT)

        assert _wait_gone(node), "the provider outlived the process that started it"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_provider_stops_when_the_xdist_run_is_killed(tmp_path: Path, sig: signal.Signals) -> None:
    """The provider's parent is an xdist worker, which a killed run leaves running (until its
    test ends): the provider watches the run's own process too."""
    require_node()
    pytest.importorskip("xdist")
    (tmp_path / "test_holder.py").write_text(HELD_IN_A_TEST)
    pids = tmp_path / "pids"
    run = subprocess.Popen(  # noqa: S603 - fixed argv
        [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "xdist", "-p", "no:cacheprovider", "-n", "1"),
            *("--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_holder.py")),
        ],
        cwd=tmp_path,
        env=_env(HOLDER_PIDS=str(pids)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = [run.pid]
    with _cleanup(started):
        worker, node = _pids(pids)
        started += [worker, node]
        assert worker != run.pid  # the provider's parent is the worker, not the run

        run.send_signal(sig)
        run.wait(timeout=START_TIMEOUT)

        assert _wait_gone(node), "the provider outlived the pytest run that started it"
