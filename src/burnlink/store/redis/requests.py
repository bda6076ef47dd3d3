"""Requests in the Redis store (``store/requests.py``).

Keys
    A request is one hash, hash-tagged with its id like the keys of the secret of the same
    id (its answer), so a Redis Cluster keeps both on one shard::

        {prefix}q:{<id>}   hash   the request: ``rd``/``ad`` (the requester's and the
                                  request link's token digests), ``pk``, ``desc``, ``cat``,
                                  ``exp``, ``ttl``, ``vw``, ``rcp`` (recipients, JSON),
                                  ``nu``, ``ne``, ``own``, ``oem``, ``st`` (state), ``aat``
                                  (answered at) and ``kpu`` (kept until; the key expires then)

    Open requests are indexed by expiry in one sorted set, ``{prefix}index:requests``, for the
    sweep: on a single node the create script enters the id itself; on a cluster the set is
    on another shard and the ``ZADD`` goes beside the script in one non-transactional
    pipeline. ``expire_request`` removes an id once its script has run, whatever it found.

Atomicity
    ``create_request``, ``answer_request`` and ``expire_request`` are one Lua script each
    (``burnlink.store.redis.request_scripts``) over the request's tag (and, on a single node,
    the store's outbox stream and the index): the answer's check, the request's close and the
    answer's insert (``CREATE``'s own body) run without interleaving.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from burnlink.clock import MILLISECOND, from_epoch_ms, to_epoch_ms
from burnlink.errors import DuplicateId
from burnlink.models import SecretRecord
from burnlink.store.redis import request_scripts as lua
from burnlink.store.redis.args import event_args
from burnlink.store.redis.client import LeanScript, translated
from burnlink.store.requests import Answer, RequestRecord, RequestState, StoredRequest
from burnlink.store.secrets import MAX_EVENTS_PER_KIND, Recorded

__all__ = ["RedisRequests"]

_ANSWERS: Final = {b"gone": Answer.GONE, b"taken": Answer.TAKEN, b"expired": Answer.EXPIRED}


def _id(request_id: str) -> bytes:
    return request_id.encode("utf-8", "surrogatepass")


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "surrogatepass")


def _request_from_hash(request_id: str, h: dict[bytes, bytes]) -> StoredRequest:
    record = RequestRecord(
        request_id=request_id,
        requester_digest=h[b"rd"],
        answer_digest=h[b"ad"],
        public_key=h[b"pk"],
        description=h[b"desc"].decode("utf-8", "surrogatepass"),
        created_at=from_epoch_ms(int(h[b"cat"])),
        expires_at=from_epoch_ms(int(h[b"exp"])),
        answer_ttl=int(h[b"ttl"]),
        answer_views=int(h[b"vw"]),
        recipients=tuple(json.loads(h[b"rcp"])),
        notify_url=_text(h.get(b"nu")),
        notify_email=_text(h.get(b"ne")),
        owner=_text(h.get(b"own")),
        owner_email=_text(h.get(b"oem")),
    )
    answered = h.get(b"aat")
    return StoredRequest(
        record,
        RequestState(h[b"st"].decode("ascii")),
        None if answered is None else from_epoch_ms(int(answered)),
    )


class RedisRequests:
    """``RequestRecords`` of ``RedisStore``."""

    if TYPE_CHECKING:
        _client: Redis | RedisCluster
        _prefix: bytes
        _retention: timedelta
        _cluster: bool
        _index: bytes
        _outbox_index: bytes

        def _keys(self, secret_id: str) -> list[bytes]: ...

        def _stream(self, secret_id: str) -> bytes: ...

    def _request_scripts(self) -> None:
        """Register the scripts (from ``RedisStore.__init__``)."""
        client = self._client
        self._create_request = LeanScript(client, lua.CREATE_REQUEST)
        self._answer_request = LeanScript(client, lua.ANSWER_REQUEST)
        self._expire_request = LeanScript(client, lua.EXPIRE_REQUEST)
        self._requests_index = self._prefix + b"index:requests"

    def _request_key(self, request_id: str) -> bytes:
        return self._prefix + b"q:{" + _id(request_id) + b"}"

    async def _run_script(
        self,
        script: AsyncScript,
        keys: list[bytes],
        args: Sequence[EncodableT],
        *,
        member: bytes,
        now_ms: int,
        extra: Sequence[tuple[EncodableT, ...]] = (),
    ) -> Any:
        """Run ``script``; on a cluster, with the outbox index's ``ZADD NX`` for ``member``
        and the ``extra`` commands beside it in one non-transactional pipeline (best effort,
        as for secrets: see ``burnlink.store.redis.store``)."""
        with translated():
            if not self._cluster:
                return await script(keys=keys, args=args)
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)
                pipe.execute_command("ZADD", self._outbox_index, "NX", now_ms, member)
                for command in extra:
                    pipe.execute_command(*command)
                result, *_ = await pipe.execute(raise_on_error=False)
            if isinstance(result, Exception):
                raise result
            return result

    async def create_request(self, record: RequestRecord, *, events: Sequence[Recorded]) -> None:
        """See ``RequestRecords.create_request``: one script."""
        expires_ms = to_epoch_ms(record.expires_at)
        keep_ms = expires_ms + self._retention // MILLISECOND
        pairs: list[EncodableT] = [
            b"rd", record.requester_digest,
            b"ad", record.answer_digest,
            b"pk", record.public_key,
            b"desc", record.description.encode("utf-8", "surrogatepass"),
            b"cat", to_epoch_ms(record.created_at),
            b"exp", expires_ms,
            b"ttl", record.answer_ttl,
            b"vw", record.answer_views,
            b"rcp", json.dumps(list(record.recipients)),
            b"st", b"open",
            b"kpu", keep_ms,
        ]  # fmt: skip
        for name, value in (
            (b"nu", record.notify_url),
            (b"ne", record.notify_email),
            (b"own", record.owner),
            (b"oem", record.owner_email),
        ):
            if value is not None:
                pairs += [name, value.encode("utf-8", "surrogatepass")]
        member = _id(record.request_id)
        keys = [self._request_key(record.request_id), self._stream(record.request_id)]
        if not self._cluster:
            keys.append(self._requests_index)
        args: list[EncodableT] = [
            keep_ms,
            expires_ms,
            member,
            len(pairs) // 2,
            *pairs,
            *(recorded.outbox for recorded in events),
        ]
        extra = [("ZADD", self._requests_index, expires_ms, member)] if self._cluster else []
        created = await self._run_script(
            self._create_request,
            keys,
            args,
            member=member,
            now_ms=to_epoch_ms(record.created_at),
            extra=extra,
        )
        if not created:
            raise DuplicateId("request id already taken")

    async def get_request(self, request_id: str, *, now: datetime) -> StoredRequest | None:
        """See ``RequestRecords.get_request``: one ``HGETALL``."""
        with translated():
            raw: Any = await self._client.hgetall(self._request_key(request_id))
        found = cast(dict[bytes, bytes], raw)
        if not found or int(found[b"kpu"]) <= to_epoch_ms(now):
            return None
        request = _request_from_hash(request_id, found)
        if request.state is RequestState.OPEN and request.record.expires_at <= now:
            return StoredRequest(request.record, RequestState.EXPIRED)
        return request

    async def answer_request(
        self, record: SecretRecord, *, now: datetime, events: Sequence[Recorded]
    ) -> Answer:
        """See ``RequestRecords.answer_request``: one script (the module docstring)."""
        now_ms = to_epoch_ms(now)
        expires_ms = to_epoch_ms(record.expires_at)
        retention_ms = self._retention // MILLISECOND
        live: list[EncodableT] = [
            b"env", record.envelope,
            b"acc", record.access_digest,
            b"cat", to_epoch_ms(record.created_at),
            b"exp", expires_ms,
            b"mv", record.max_views,
            b"vl", record.max_views,
            b"al", record.max_attempts,
            b"pol", record.policy.to_bytes(),
        ]  # fmt: skip
        receipt: list[EncodableT] = [
            b"mng", record.manage_digest,
            b"cat", to_epoch_ms(record.created_at),
            b"exp", expires_ms,
            b"mv", record.max_views,
            b"vu", 0,
        ]  # fmt: skip
        member = _id(record.secret_id)
        create_args: list[EncodableT] = [
            expires_ms, retention_ms, len(live) // 2, len(receipt) // 2, MAX_EVENTS_PER_KIND,
            b"" if self._cluster else member, b"", *live, *receipt, *event_args(events),
        ]  # fmt: skip
        keys = [
            self._request_key(record.secret_id),
            *self._keys(record.secret_id),
            self._stream(record.secret_id),
        ]
        if not self._cluster:
            keys.append(self._index)
        extra = [("ZADD", self._index, "NX", expires_ms, member)] if self._cluster else []
        result = await self._run_script(
            self._answer_request,
            keys,
            [now_ms, expires_ms + retention_ms, *create_args],
            member=member,
            now_ms=now_ms,
            extra=extra,
        )
        if isinstance(result, bytes):
            if result == b"dup":
                raise DuplicateId("secret id already taken")
            return _ANSWERS[result]
        return Answer.ANSWERED

    async def due_requests(self, *, now: datetime, limit: int) -> list[str]:
        """See ``RequestRecords.due_requests``: the index may still name requests that are
        no longer open (``expire_request`` refuses those and drops them from it)."""
        with translated():
            members: Any = await self._client.zrangebyscore(
                self._requests_index, "-inf", to_epoch_ms(now), start=0, num=max(limit, 0)
            )
        return [m.decode("utf-8", "surrogatepass") for m in members]

    async def expire_request(
        self, request_id: str, *, now: datetime, events: Sequence[Recorded]
    ) -> bool:
        """See ``RequestRecords.expire_request``: one script, then the id leaves the index
        unless it is still open and not due."""
        now_ms = to_epoch_ms(now)
        keys = [self._request_key(request_id), self._stream(request_id)]
        args: list[EncodableT] = [now_ms, *(recorded.outbox for recorded in events)]
        member = _id(request_id)
        done: int = await self._run_script(
            self._expire_request, keys, args, member=member, now_ms=now_ms
        )
        if done:  # expired now, or no longer open: either way, not due again
            with translated():
                await self._client.zrem(self._requests_index, member)
        return done == 1

    async def purge_requests(self, *, now: datetime, limit: int) -> int:
        """See ``RequestRecords.purge_requests``: request keys expire by themselves (0)."""
        return 0
