"""burnlink: self-destructing, end-to-end encrypted links for sharing credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from burnlink.sdk import AsyncClient, Client


def __getattr__(name: str) -> object:
    # The SDK (httpx, cryptography) loads on first use: `burnlink --help` and the server's
    # imports of burnlink.* do not pay for it.
    if name in ("Client", "AsyncClient"):
        from burnlink import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'burnlink' has no attribute {name!r}")
