"""The two hot routes, create and reveal, served without FastAPI's per-request machinery.

They are the requests a server spends its life on, and FastAPI's routing, dependency
solving, request and response objects cost about as much CPU as their own work. Here a
request to one of them is answered by the same handler FastAPI would call
(``api.create_secret``, ``api.reveal_secret``), with the same body model validating it, the
same response model serialising the answer (by alias, as FastAPI does) and the app's own
exception handlers answering its failures, so every answer is byte for byte FastAPI's. The
handlers are looked up and called here, as Starlette's ``ExceptionMiddleware`` would, but
without it: no wrapper of ``send`` per request, and no hop to a thread for a plain function.

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
from inspect import isawaitable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
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

    ``handlers`` is the app's table of exception handlers, read when a hot route fails (after
    ``create_app`` has installed them), as Starlette's ``ExceptionMiddleware`` would use it:
    a handler is looked up by the ``HTTPException``'s status code, else along the exception's
    MRO, and called directly. ``Exception`` itself is left to ``Edge``, which answers and logs
    what no handler takes.
    """

    def __init__(
        self,
        handlers: Mapping[Any, Callable[..., Any]],
        routes: tuple[HotRoute, ...] = HOT_ROUTES,
    ) -> None:
        self._handlers = handlers
        self._routes = [(route, route.pattern()) for route in routes]

    def route_of(self, scope: Scope) -> HotRoute | None:
        """The hot route the request is for, its ``path_params`` set in ``scope``; else
        ``None`` (also for any app under a ``root_path``)."""
        if scope.get("root_path"):
            return None
        method, path = scope["method"], scope["path"]
        for route, pattern in self._routes:
            if route.method == method and (found := pattern.fullmatch(path)):
                scope["path_params"] = found.groupdict()
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        """Answer the request if it is for a hot route, else hand it to ``fallback``."""
        route = self.route_of(scope)
        if route is None:
            await fallback(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            await _serve(route, request, send, fallback)
        except Exception as exc:
            handler = self._handler_of(exc)
            if handler is None:
                raise
            # Only a failure before the answer started reaches here with a handler: _serve
            # sends nothing before its last two sends, and ``fallback`` handles its own.
            response = handler(request, exc)
            if isawaitable(response):
                response = await response
            await response(scope, receive, send)
            exc.__traceback__ = None  # as Starlette: a reused instance keeps no frames

    def _handler_of(self, exc: Exception) -> Callable[..., Any] | None:
        handlers = self._handlers
        if isinstance(exc, HTTPException) and exc.status_code != 500:  # 500: as Starlette
            by_status = handlers.get(exc.status_code)
            if by_status is not None:
                return by_status
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None  # Edge answers and logs it
            if cls in handlers:
                return handlers[cls]
        return None


async def _serve(route: HotRoute, request: Request, send: Send, fallback: ASGIApp) -> None:
    scope, receive = request.scope, request.receive
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
