"""Recording link-page opens (``GET /s/{id}``) off the request's path.

The receipt's ``opened`` event needs the secret looked up, a counter spent and an event and
audit entry written, but only for a live id. Done while the page waited, that work made a live
id's page measurably slower than an unknown one's, which told a scanner which ids exist. The
page now only hands the open to ``PageOpens`` (a bounded queue: the same constant work for
every id) and a task of the app records it after the answer has gone. When the queue is full
(a flood of opens), further opens are dropped and counted, never waited for.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from burnlink.models import ClientInfo

__all__ = ["QUEUE_SIZE", "PageOpens"]

QUEUE_SIZE: Final = 1024
"""Opens waiting to be recorded; more are dropped (the page answers the same either way)."""

log = logging.getLogger("burnlink.web")

Recorder = Callable[[str, ClientInfo], Awaitable[None]]
_Open = tuple[str, ClientInfo]


class PageOpens:
    """A bounded queue of page opens and the task that records them with ``record``
    (``SecretService.opened``)."""

    def __init__(self, record: Recorder, *, size: int = QUEUE_SIZE) -> None:
        self._record = record
        send, receive = anyio.create_memory_object_stream[_Open](size)
        self._send: MemoryObjectSendStream[_Open] = send
        self._receive: MemoryObjectReceiveStream[_Open] = receive
        self._pending = 0
        self._idle = anyio.Event()
        self._idle.set()
        self.dropped = 0
        """Opens not recorded because the queue was full or closed."""

    def submit(self, secret_id: str, client: ClientInfo) -> None:
        """Queue an open without waiting; drop it when the queue is full or closed."""
        try:
            self._send.send_nowait((secret_id, client))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1
            if self.dropped == 1 or self.dropped % QUEUE_SIZE == 0:
                log.warning("page opens not recorded (queue full): %d so far", self.dropped)
            return
        if self._pending == 0:
            self._idle = anyio.Event()
        self._pending += 1

    async def run(self) -> None:
        """Record queued opens one at a time until ``close``; a failure is logged, never
        raised, so one bad open cannot stop the others."""
        async with self._receive:
            async for secret_id, client in self._receive:
                try:
                    await self._record(secret_id, client)
                except Exception as exc:  # noqa: BLE001 - the recorder must outlive any one open
                    log.warning("page open not recorded: %s", type(exc).__name__)
                finally:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()

    async def settled(self) -> None:
        """Wait until every open queued so far has been recorded (or has failed)."""
        await self._idle.wait()

    def close(self) -> None:
        """Take no more opens; ``run`` returns once the queued ones are recorded."""
        self._send.close()
