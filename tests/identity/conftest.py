"""A real OpenID provider (``tests/oidc_provider.py``) for the sign-in tests, one per module,
registered for the app at ``BASE`` (no server listens there: the tests reach the app through
ASGI and the provider only ever redirects the browser to it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oidc_provider import OidcProvider, require_node

BASE = "http://127.0.0.1:8123"
CALLBACK = BASE + "/auth/callback"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    require_node()
    with OidcProvider([CALLBACK], post_logout_redirect_uris=[BASE + "/"]) as running:
        yield running
