"""Strict parsing of JSON request bodies: a name given twice in one object is refused.

Every route of the app parses its body with ``StrictJSONRequest`` (``StrictJSONRoute`` is the
routers' route class), which uses ``strict_json.loads_strict``; a duplicate gets the API's
``400 malformed_json`` answer naming it (``errors``). The hot routes (``hot_routes``) parse
with ``loads_strict`` too, and hand any body it refuses to these routes for that answer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from burnlink.strict_json import loads_strict

__all__ = ["StrictJSONRequest", "StrictJSONRoute"]


class StrictJSONRequest(Request):
    """A request whose ``json()`` refuses duplicate names (``loads_strict``)."""

    async def json(self) -> Any:
        """The body parsed with ``loads_strict``; ``JSONDecodeError`` when it is not valid."""
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route that hands its endpoint (and FastAPI's body parsing) a ``StrictJSONRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given the request as a ``StrictJSONRequest``."""
        handle = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handle(StrictJSONRequest(request.scope, request.receive))

        return strict
