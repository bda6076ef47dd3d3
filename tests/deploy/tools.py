"""Helpers shared by the deployment tests: finding an optional tool, and the settings that
docs/configuration.md documents."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONFIGURATION = ROOT / "docs" / "configuration.md"


def require_tool(name: str, variable: str, install: str) -> str:
    """The path of ``name`` (or of ``$variable`` when set); skip the calling test without it,
    or fail when ``CI=true``. ``install`` says how to get it."""
    found = os.environ.get(variable) or shutil.which(name)
    if found and os.access(found, os.X_OK):
        return found
    message = f"{name} is not installed: {install}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def documented_settings() -> set[str]:
    """Every ``BURNLINK_*`` variable that a table row of docs/configuration.md describes."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(BURNLINK_[A-Z0-9_]+)`", text, re.MULTILINE))
