"""The SDK's I/O: running a flow's calls over httpx, sync or async.

This is the one boundary where httpx's exceptions and answers that are not JSON become
``ServerUnavailable``; the server's error answers become ``burnlink.errors`` through
``protocol.answered``. Work steps (PBKDF2, AES-GCM) run inline in the sync client and in a
worker thread in the async one, so an event loop never stalls on a passphrase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from burnlink.errors import BurnlinkError
from burnlink.sdk.protocol import TIMEOUT, USER_AGENT, Call, Flow, ServerUnavailable, T, answered

if TYPE_CHECKING:
    import httpx


def _headers(user_agent: str) -> dict[str, str]:
    return {"User-Agent": user_agent, "Accept": "application/json"}


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _unreachable(call: Call[Any], exc: Exception, timeout: float) -> ServerUnavailable:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return ServerUnavailable(
            f"the server at {call.base} did not answer within {timeout:g} seconds"
        )
    return ServerUnavailable(f"cannot reach the server at {call.base} ({exc})")


class SyncTransport:
    """Runs calls and flows on one ``httpx.Client`` (any server: each call names its own)."""

    def __init__(
        self,
        *,
        timeout: float = TIMEOUT,
        user_agent: str = USER_AGENT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx  # here, so that `burnlink --help` does not load it

        self.timeout = timeout
        self._http = httpx.Client(
            timeout=timeout, headers=_headers(user_agent), transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def send(self, call: Call[T]) -> T:
        """One call; its parsed answer, or the error it means."""
        import httpx

        try:
            response = self._http.request(
                call.method,
                call.url,
                headers=call.headers(),
                json=call.body,
                params=call.params,
                timeout=self.timeout if call.timeout is None else call.timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _unreachable(
                call, exc, self.timeout if call.timeout is None else call.timeout
            ) from None
        return answered(call, response.status_code, _json_object(response))

    def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end: each call sent, each work done, errors thrown back in."""
        try:
            step = next(flow)
            while True:
                try:
                    result = self.send(step) if isinstance(step, Call) else step.run()
                except BurnlinkError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value


class AsyncTransport:
    """``SyncTransport`` for asyncio (or trio): ``httpx.AsyncClient``, work in a thread."""

    def __init__(
        self,
        *,
        timeout: float = TIMEOUT,
        user_agent: str = USER_AGENT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        import httpx

        self.timeout = timeout
        self._http = httpx.AsyncClient(
            timeout=timeout, headers=_headers(user_agent), transport=transport
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """One call; its parsed answer, or the error it means."""
        import httpx

        try:
            response = await self._http.request(
                call.method,
                call.url,
                headers=call.headers(),
                json=call.body,
                params=call.params,
                timeout=self.timeout if call.timeout is None else call.timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _unreachable(
                call, exc, self.timeout if call.timeout is None else call.timeout
            ) from None
        return answered(call, response.status_code, _json_object(response))

    async def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end, as ``SyncTransport.run`` does."""
        import anyio.to_thread

        try:
            step = next(flow)
            while True:
                try:
                    if isinstance(step, Call):
                        result = await self.send(step)
                    else:
                        result = await anyio.to_thread.run_sync(step.run)
                except BurnlinkError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value
