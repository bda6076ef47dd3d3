"""The two hot routes, create and reveal, served without FastAPI's per-request machinery.

They are the requests a server spends its life on, and FastAPI's routing, dependency
solving, request and response objects cost about as much CPU as their own work. Here a
request to one of them is answered by the same handler FastAPI would call
(``api.create_secret``, ``api.reveal_secret``), with the same body model validating it, the
same response model serialising the answer (by alias, as FastAPI does) and the app's own
exception handlers answering its failures, so every answer is byte for byte FastAPI's.

Anything off the plain path goes to FastAPI instead, with the body replayed: a body that is
empty, not JSON, repeats a name or fails validation, so those errors keep FastAPI's exact
shape; and any app mounted under a ``root_path``. FastAPI's routes stay registered, so the
OpenAPI document is generated from them as before; ``HOT_ROUTES`` and the test that compares
it with them keep the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burnlink.service import SecretService
from burnlink.strict_json import loads_strict
from burnlink.web import api
from burnlink.web.schemas import (
    CreateSecretRequest,
    CreateSecretResponse,
    RevealRequest,
    RevealResponse,
)

__all__ = ["HOT_ROUTES", "HotRoute", "HotRoutes"]

Answer = Callable[[Any, Request, SecretService, Mapping[str, str]], Awaitable[BaseModel]]


@dataclass(frozen=True)
class HotRoute:
    """One route served here: its method and path (as FastAPI writes them), the status of a
    success, the body and response models, and the call that answers it."""

    method: str
    path: str
    status: int
    body: type[BaseModel]
    response: type[BaseModel]
    answer: Answer

    def pattern(self) -> re.Pattern[str]:
        """The path as a regular expression; a parameter is one non-empty segment, as in
        Starlette."""
        return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path))


async def _create(
    body: Any, request: Request, service: SecretService, _: Mapping[str, str]
) -> BaseModel:
    return await api.create_secret(body, request, service)


async def _reveal(
    body: Any, request: Request, service: SecretService, params: Mapping[str, str]
) -> BaseModel:
    return await api.reveal_secret(params["secret_id"], body, request, service)


HOT_ROUTES = (
    HotRoute("POST", "/api/v1/secrets", 201, CreateSecretRequest, CreateSecretResponse, _create),
    HotRoute(
        "POST",
        "/api/v1/secrets/{secret_id}/reveal",
        200,
        RevealRequest,
        RevealResponse,
        _reveal,
    ),
)


class HotRoutes:
    """Serves ``HOT_ROUTES`` for ``middleware.Edge``; every other request goes to ``fallback``.

    ``handlers`` is the app's table of exception handlers, read on the first request (after
    ``create_app`` has installed them), as FastAPI's own ``ExceptionMiddleware`` reads it.
    """

    def __init__(
        self,
        handlers: Mapping[Any, Callable[..., Any]],
        routes: tuple[HotRoute, ...] = HOT_ROUTES,
    ) -> None:
        self._handlers = handlers
        self._routes = [(route, route.pattern()) for route in routes]
        self._guarded: ExceptionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        """Answer the request if it is for a hot route, else hand it to ``fallback``."""
        if not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            for route, pattern in self._routes:
                if route.method == method and (found := pattern.fullmatch(path)):
                    scope["path_params"] = found.groupdict()
                    scope["burnlink.hot_route"] = (route, fallback)
                    await self._guard()(scope, receive, send)
                    return
        await fallback(scope, receive, send)

    def _guard(self) -> ExceptionMiddleware:
        if self._guarded is None:
            handlers = {
                key: handler
                for key, handler in self._handlers.items()
                if key not in (500, Exception)  # Edge answers those, as before
            }
            self._guarded = ExceptionMiddleware(_serve, handlers=handlers)
        return self._guarded


async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
    route, fallback = scope.pop("burnlink.hot_route")
    messages = await _read_body(receive)
    body = b"".join(message.get("body", b"") for message in messages)
    parsed = None
    if body and messages[-1]["type"] == "http.request":
        try:
            parsed = route.body.model_validate(loads_strict(body))
        except (ValueError, ValidationError):  # JSONDecodeError and DuplicateName are ValueErrors
            parsed = None
    if parsed is None:
        await fallback(scope, _replay(messages, receive), send)
        return
    request = Request(scope, receive)
    result = await route.answer(parsed, request, request.app.state.service, scope["path_params"])
    content = route.response.__pydantic_serializer__.to_json(result, by_alias=True)
    await send(
        {
            "type": "http.response.start",
            "status": route.status,
            "headers": [
                (b"content-length", str(len(content)).encode("latin-1")),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive) -> list[Message]:
    """The messages of the request body, up to its last or a disconnect (``Edge`` has already
    refused a body past the limit)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives ``messages`` once more, then what the connection sends next."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
