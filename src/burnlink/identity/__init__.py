"""Who is signed in: OpenID Connect sign-in, sessions, API tokens and the ``Principal`` they
yield (docs/identity.md). Nothing here is used unless sign-in is configured."""

from burnlink.identity.principal import Principal

__all__ = ["Principal"]
