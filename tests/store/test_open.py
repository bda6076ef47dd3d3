"""Choosing a backend by URL scheme, and keeping passwords out of printed URLs."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest

from burnlink.errors import ConfigError, StorageUnavailable
from burnlink.store import describe_failure, open_store, redact_url
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
        (
            "postgresql://app@db/burn?sslmode=require&password=hunter2",
            "postgresql://app@db/burn?sslmode=require&password=***",
        ),
        ("redis://cache/0?password=s3cret&prefix=x", "redis://cache/0?password=***&prefix=x"),
        ("postgresql://db/burn?sslpassword=k3y", "postgresql://db/burn?sslpassword=***"),
    ],
)
def test_redact_url_masks_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# Port 1 on the loopback: nothing listens there, so every connection is refused at once.
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("redis://:hunter2@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0", id="redis"),
        pytest.param(
            "postgresql://burn:hunter2@127.0.0.1:1/burn",
            "postgresql://burn:***@127.0.0.1:1/burn",
            id="postgresql",
        ),
        pytest.param(
            "postgresql://burn@127.0.0.1:1/burn?password=hunter2",
            "postgresql://burn@127.0.0.1:1/burn?password=***",
            id="postgresql-query-password",
        ),
    ],
)
async def test_open_store_failure_names_the_store_and_the_cause(url: str, shown: str) -> None:
    """A new user saw only "unavailable": the store, its address and the reason must show."""
    with pytest.raises(StorageUnavailable) as caught:
        await open_store(url, retention=timedelta(days=1))

    message = str(caught.value)
    assert shown in message
    assert "refused" in message.lower() or "111" in message
    assert "hunter2" not in message


def test_describe_failure_masks_a_password_the_driver_quotes() -> None:
    url = "postgresql://app:p%40ss@db/burn"
    cause = OSError("login failed for app with p@ss and p%40ss")
    error = StorageUnavailable()
    error.__cause__ = cause

    described = describe_failure(url, error)

    assert (
        described == "postgresql://app:***@db/burn: OSError: login failed for app with *** and ***"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:hunter2@db/burn?application_name=a@b",
        "redis://:hunter2@cache:6379/0",
        "redis://cache:6379/0?password=hunter2",
        "postgresql://app:hunter%2F2@db/burn",
    ],
)
def test_describe_failure_never_shows_the_password(url: str) -> None:
    error = StorageUnavailable()
    error.__cause__ = OSError(f"failed for {unquote(url)} and {url}")

    assert "hunter" not in describe_failure(url, error)
