"""Choosing a backend by URL scheme, and keeping passwords out of printed URLs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from burnlink.errors import ConfigError
from burnlink.store import open_store, redact_url
from burnlink.store.memory import MemoryStore

pytestmark = pytest.mark.anyio


async def test_open_store_memory_scheme() -> None:
    store = await open_store("memory://", retention=timedelta(days=1))

    assert isinstance(store, MemoryStore)


@pytest.mark.parametrize("url", ["mysql://localhost/db", "nonsense", "file:///tmp/x"])
async def test_open_store_refuses_unknown_schemes(url: str) -> None:
    with pytest.raises(ConfigError, match="BURNLINK_STORE"):
        await open_store(url, retention=timedelta(days=1))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:hunter2@db:5432/burn", "postgresql://app:***@db:5432/burn"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("sqlite:///var/lib/burnlink.db", "sqlite:///var/lib/burnlink.db"),
    ],
)
def test_redact_url_masks_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
