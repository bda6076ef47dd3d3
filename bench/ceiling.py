"""The ceiling contender: a bare ASGI endpoint that reads the body and answers fixed JSON.

It runs on the same stack as ``burnlink serve`` (uvicorn, same options and workers), so the
gap between it and burnlink is what burnlink itself costs per request. Its answers are about
as long as burnlink's: 201 for a create, 200 for a reveal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CREATED = (
    b'{"id":"AAAAAAAAAAAAAAAAAAAAAA",'
    b'"url":"http://127.0.0.1/s/AAAAAAAAAAAAAAAAAAAAAA#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",'
    b'"manage_url":"http://127.0.0.1/m/AAAAAAAAAAAAAAAAAAAAAA#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",'
    b'"expires_at":"2026-01-01T00:00:00.000Z","max_views":1}'
)
_REVEALED = b'{"secret":"bench: correct horse battery staple","file":null,"views_left":0}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer every request with a fixed JSON body; handle the lifespan protocol."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body", False))
    await answer(scope, send)


def is_create(scope: Scope) -> bool:
    """Whether the request is a create (``POST /api/v1/secrets``); anything else is a reveal."""
    return bool(scope["method"] == "POST" and scope["path"] == "/api/v1/secrets")


async def answer(scope: Scope, send: Send) -> None:
    """Send the fixed answer: 201 and a created secret, or 200 and a revealed one."""
    created = is_create(scope)
    body = _CREATED if created else _REVEALED
    await send(
        {
            "type": "http.response.start",
            "status": 201 if created else 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
