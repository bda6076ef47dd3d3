"""The floor contender: the bare ASGI ceiling plus exactly one Redis round trip per request.

Any service that stores a secret makes at least one call to its store per create and per
reveal. This app does that call and nothing else (no validation, no cryptography, no audit,
no log line), with burnlink's own Redis client settings (``client_for``: hiredis, the same
timeouts), so its throughput is the most a Redis-backed service on this stack can reach. Its
ratio to the ceiling, taken in the same run, bounds the "50 % of the ceiling" target.

Create: ``SET <prefix>floor:<16 random bytes> <body> EX 3600``. Reveal: ``GETDEL`` of the
id in the path (the ids are synthetic, so the answer is nil; the round trip is the same).
The store URL, prefix included, comes from ``BURNLINK_STORE``.
"""

from __future__ import annotations

import os
from typing import Any

from bench.ceiling import Receive, Scope, Send, answer, is_create
from bench.ceiling import app as ceiling
from burnlink.store.redis.client import client_for

_client: Any = None
_prefix = b""


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """One Redis call per request, then the ceiling's fixed answer; lifespan as the ceiling."""
    global _client, _prefix
    if scope["type"] == "lifespan":
        await ceiling(scope, receive, send)
        return
    if _client is None:
        _client, prefix = client_for(os.environ["BURNLINK_STORE"])
        _prefix = prefix.encode() + b"floor:"
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = bool(message.get("more_body", False))
    if is_create(scope):
        await _client.set(_prefix + os.urandom(16), body, ex=3600)
    else:
        await _client.getdel(_prefix + scope["path"].encode())
    await answer(scope, send)
