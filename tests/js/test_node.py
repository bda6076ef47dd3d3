"""Runs the JavaScript tests (``node --test tests/js/``) as part of the Python suite.

They check the browser's envelope module against the shared vectors, and the pages' checks of
typed access rules (``access.js``). Without Node they skip with a message, except on CI
(``CI=true``), where a missing ``node`` fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MIN_NODE_MAJOR = 20
TIMEOUT = 120


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        message = f"node {MIN_NODE_MAJOR}+ is not installed: apt-get install nodejs"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return node


def test_envelope_module_passes_the_shared_vectors() -> None:
    node = _node()
    version = subprocess.run(  # noqa: S603 - fixed argv
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert int(version.lstrip("v").split(".")[0]) >= MIN_NODE_MAJOR, version

    result = subprocess.run(  # noqa: S603 - fixed argv
        [node, "--test", str(HERE)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=HERE.parent.parent,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    assert "# pass 0" not in result.stdout
