"""The Redis store: ``redis://host:6379/0?prefix=burnlink:`` (``rediss://`` for TLS), or on a
Redis Cluster ``redis+cluster://host:6379,host:6379?prefix=burnlink:`` (``rediss+cluster://``).

Keys
    Every key starts with the URL's ``prefix`` (default ``burnlink:``; the parameter is
    removed before the URL reaches redis-py). One secret owns four keys, all hash-tagged
    with its id so that a Redis Cluster keeps them on one shard::

        {prefix}s:{<id>}   hash   the live secret (envelope, digests, counters, expiry, and
                                  ``pol``, the access policy as ``AccessPolicy.to_bytes``)
        {prefix}r:{<id>}   hash   its receipt (manage digest, views used, how it ended,
                                  and ``n:<kind>``, the events of each kind so far)
        {prefix}e:{<id>}   list   the receipt's events, compact JSON, capped per kind
        {prefix}o:{<id>}   hash   its one-time code, if one was sent (digest, put at, expiry,
                                  tries left, codes put since the last match)

    On a Redis Cluster a secret also owns its outbox stream (see Outbox)::

        {prefix}x:{<id>}   stream the secret's outbox records not yet sealed

    The receipt hash also holds ``v:<n>``, the viewer of the n-th event in ``e:`` (from 1;
    compact JSON ``{"email", "mfa"}``, ``models.Viewer``) for a line made for a signed-in
    recipient; a release before it ignores the field, as it reads fields by name. It also
    holds ``own``, ``oem`` and ``lbl`` (the secret's owner, the owner's
    email at the create, and its label) when set, and an owned secret's id is entered in its
    owner's sorted set, scored by its creation (``owned_secrets``; on a single node by the
    create script, on a cluster by a script of its own run before it, whose failure fails the
    create)::

        {prefix}own:{<owner>}   zset  the owner's secret ids (a relative TTL as long as the
                                      longest-kept receipt; ids whose receipt is gone are
                                      dropped when read)

    Sessions and API tokens share the hash tag ``{signin}`` (``burnlink.store.redis.identity``
    lists their keys).

    The store shares one sorted set, ``{prefix}index:expiry``, of ids scored by
    ``expires_at`` for the sweeper, the stream ``{prefix}outbox`` (every outbox record on a
    single node; on a cluster those of no secret) and, on a cluster, the sorted set
    ``{prefix}index:outbox`` of the ids that have an ``x:`` stream. Rate counters are plain
    integer keys, one per bucket and fixed window, each hash-tagged with itself (so a cluster
    spreads them over shards; a ``}`` in a bucket only shortens the tag)::

        {prefix}c:{<bucket>:<window start, epoch seconds>}

    A live hash written before access policies existed has no ``pol`` field and reads as the
    empty policy, so an upgrade needs no migration; nor does the outbox, which only adds
    keys (the layout has no schema version: the test
    ``test_a_database_written_before_the_outbox_opens_and_works`` writes the previous one).
    During a rolling upgrade, older processes end secrets without deleting their code keys;
    such a code is harmless (a code is only checked while its secret is alive) and expires
    natively with its secret.

Atomicity
    Every rule that reads and writes (create, reveal, consume, record_failure, burn, record,
    put_code, check_code, and the sweeper's expiry of one secret) is one Lua script
    (``burnlink.store.redis.scripts``) that touches only that secret's keys, so Redis runs it
    without interleaving and a cluster can route it to one shard. On a single node ``create``
    and ``reveal`` also count the request's rate counters in their script, so a reveal that
    needs nothing but its link (no passphrase, no access rule) is one round trip: counts,
    lookup, the view and its event; on a cluster the counters go first, in a pipeline of
    their own. ``hits`` is one script over
    a request's counter keys (on a cluster, one per key), and ``receipt`` reads a receipt
    and its events in one read-only script. A script that changes a secret keeps the
    change's events in the same run (receipt lines and outbox records), and keeps none when
    it refuses the change; a Lua script is not rolled back on error, so each checks
    everything before its first write.
    Time never decides anything in Redis (``TIME`` only orders the outbox, see Outbox): the
    application's ``now`` is passed in as integer milliseconds and every script checks
    ``expires_at > now`` itself.
    Scripts are never retried by the client, because a reply lost after a committed view must
    not take a second view; a lost connection surfaces as ``StorageUnavailable`` (see
    Retries for how each client is set up to keep this).

Redis Cluster
    ``burnlink.store.redis.client`` reads a ``redis+cluster://`` URL (a list of nodes) and sets
    the client up. Each script names only keys of one hash tag, so the client sends it to that
    slot's primary, and Redis would refuse a script that crossed slots (``CROSSSLOT``). What is
    not per secret is one key each: the expiry index, the outbox index and the shared
    outbox stream live on the shards their names hash to (see Outbox for the per-secret
    outbox streams);
    ``create`` sends its script and the expiry index's ``ZADD NX`` in one non-transactional
    pipeline (on a single node the script enters the id itself),
    which the client splits by node; the sweeper reads the index on its shard and sends each
    indexed secret's expiry script to that secret's shard (one pipeline per batch, split the
    same way), then updates the index; every rate counter is a tag of its own (``hits`` sends
    one script per counter in a pipeline); ``ping`` asks every primary. ``receipt`` is a script
    rather than a ``MULTI`` because redis-py's cluster transactions follow no ``MOVED`` when
    retries are off. A cluster pipeline cannot load scripts, so in a pipeline a script goes as
    ``EVAL`` with its text (on a single node too: see ``_queue_script``); direct calls use
    ``EVALSHA``. Queued commands are never awaited (that would empty a cluster pipeline's
    queue).

Retries
    For a single Redis, the client's ``Retry`` allows no retries. ``RedisCluster`` (redis-py
    8.1) has more layers, set or relied on as follows:

    - Its ``retry`` object (which replaced ``cluster_error_retry_attempts``, ignored once
      ``retry`` is given) decides how often a whole command or pipeline is sent again after
      ``ConnectionError``, ``TimeoutError``, ``ClusterDownError`` or ``SlotNotCoveredError``.
      A timeout or a dropped connection can come after the script committed, so it gets
      ``Retry(NoBackoff(), 0)``: one attempt. (``CLUSTERDOWN`` alone would be safe to retry,
      but it shares that count, so it surfaces as ``StorageUnavailable`` too.)
    - Each node's connections get their own ``Retry`` with no retries from redis-py,
      whatever the client is given, so nothing is re-sent below the cluster layer either.
    - ``MOVED``, ``ASK`` and ``TRYAGAIN`` replies are followed, up to 16 hops per command,
      outside the retry count; a pipeline re-sends only its redirected commands. A node sends
      these instead of running the command (it checks the keys' slot before it executes
      anything), so following them cannot run a script twice. While a slot migrates, a
      script on it gets ``TRYAGAIN`` whenever some of its keys are missing on the node asked
      (a secret's events and code keys often do not exist), so until the move is done it
      fails as ``StorageUnavailable``, having run nowhere.
    - ``NOSCRIPT`` (a node that has not seen the script: a slot's new owner, a restart, a
      failover) makes the client load the script on every primary and send the ``EVALSHA``
      once more; ``NOSCRIPT`` too means that nothing ran.

    ``tests/store/test_redis_cluster.py`` stalls a node past the client's timeout after it has
    received a view's script and checks that exactly one view was taken, and follows
    ``MOVED`` through a direct script and a pipeline.

Outbox
    The records of ``Recorded`` events wait in a stream until the sealer acknowledges them
    (``audit.outbox``). Each entry has two fields: ``r``, the record's bytes as given, and
    ``t``, the server's ``TIME`` in microseconds when the script ran; ``TIME`` is used for
    nothing else, and never decides anything.

    On a single node every record goes to ``{prefix}outbox``, passed to the script as one of
    its keys; ``pending_events`` is one ``XRANGE`` and a ref is the entry's stream id, which
    ``ack_events`` deletes with one ``XDEL``. The stream keeps the order the scripts ran in.

    On a cluster a script may touch one slot only, so a secret's records go to its own stream
    ``{prefix}x:{<id>}``, and ``record(None, ...)`` writes ``{prefix}outbox``. A ref is
    ``<key without the prefix>|<stream id>``. To find the streams without scanning the
    keyspace, each call that keeps events sends ``ZADD NX {prefix}index:outbox <its time> <id>``
    with its script in one non-transactional pipeline (as ``create`` does for the expiry
    index). That entry is best effort: it goes even when the script refuses the change and
    keeps nothing, and it may be lost (a failed ``ZADD``; or ``ack_events`` empties a stream,
    deletes it and removes its entry just as another script re-creates it, whose ``ZADD NX``
    landed before the ``ZREM``; after each removal the store checks the streams again and
    puts back the ones that exist, which leaves only the case where the two nodes ran the
    pipeline's commands in the other order). So ``pending_events``:

    - drops index entries whose stream does not exist;
    - on a store's first call, and then once in ``OUTBOX_RESCAN_EVERY`` calls, runs ``SCAN`` on
      every primary for ``x:`` streams and indexes any it finds (its cost grows with the
      keyspace, hence the spacing): a record is never lost, only sealed late, at worst
      ``OUTBOX_RESCAN_EVERY`` sealer runs after it was kept;
    - reads ``{prefix}outbox`` and the ``OUTBOX_STREAMS`` lowest-scored indexed streams in
      one pipeline and merges them by ``t`` (each stream in its own order). Across shards
      this is oldest first only as far as the nodes' clocks agree, and a stream beyond the
      first ``OUTBOX_STREAMS`` waits for a later batch; the audit log's order is the order of
      sealing, and every record is sealed once.

    ``ack_events`` runs one script per stream (``XDEL``, and ``DEL`` of a stream it leaves
    empty) and removes the emptied streams' index entries.

    Streams have no cap and no TTL: while the audit log is down they grow by one entry per
    action and nothing is dropped.

Expiry
    The live key is given ``PEXPIREAT expires_at``, the code key the same (a spent code
    still counts towards ``max_codes``), and the receipt and events keys
    ``PEXPIREAT (ended_at or expires_at) + retention``, so Redis frees them natively even if
    no sweeper ever runs. Native expiry uses the Redis server's clock, so it is only a
    garbage collector: correctness comes from the checks against ``now`` (``receipt`` hides a
    receipt past retention even while Redis still holds it). Keep the server's clock in sync
    with the application's, or secrets may be freed early by the skew. Every script that
    ends a secret deletes its code key with it.

    A counter key is given a relative TTL (``PEXPIRE``) when first written: the time left in
    its window by the application's clock, plus ``COUNTER_GRACE``. Being relative, it does not
    depend on the two clocks agreeing, so a skewed server cannot reset a window that is still
    running. A window's key is only ever addressed by its start, so a key outliving its window
    is harmless: the next window counts in a new key. ``purge_expired`` leaves counters to
    this native expiry.

    The expiry index is a separate key outside the hash tags. On a single node the create
    script enters the id itself (``ZADD NX``, only when it inserts); on a cluster the index
    lives on one shard and the per-secret scripts stay on theirs, so the ``ZADD NX`` goes
    next to the script, in its pipeline, and is best-effort. Ended secrets stay in the index
    until the sweeper meets them, and the sweeper re-scores an entry whose secret turns out
    to be alive. A secret missing from the index
    is still deleted by native expiry, and its receipt then reads as expired.

Durability and residue
    Redis acknowledges a write before it reaches disk. Without the append-only file a
    restart loses every secret created since the last snapshot, and a failover to an
    asynchronous replica can bring back a secret that was already viewed. Run Redis with
    ``appendonly yes`` and ``appendfsync everysec`` (or ``always`` to lose nothing), with
    ``maxmemory-policy noeviction`` (every key here has a TTL, so ``volatile-*`` policies
    would evict live secrets), and prefer a single primary to asynchronous failover. A
    cluster's replicas are asynchronous too, so the same holds for each of its shards. Freed
    memory is not zeroed, and AOF and RDB files keep deleted envelopes (and access policies,
    which may name a recipient's address) until they are rewritten.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from burnlink.clock import MILLISECOND, from_epoch_ms, to_epoch_ms
from burnlink.errors import DuplicateId
from burnlink.models import (
    AccessPolicy,
    CodeCheck,
    CodePut,
    Consumed,
    EndReason,
    Event,
    EventKind,
    PassphraseGate,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
    Viewer,
)
from burnlink.store.counters import Hit, over_limit
from burnlink.store.outbox import Pending
from burnlink.store.redis import scripts as lua
from burnlink.store.redis.args import encode_event, event_args
from burnlink.store.redis.client import LeanRedis, LeanScript, client_for, translated
from burnlink.store.redis.identity import RedisIdentity
from burnlink.store.redis.requests import RedisRequests
from burnlink.store.secrets import (
    MAX_EVENTS_PER_KIND,
    NO_RULES_PREFIX,
    STAND_IN_DIGEST,
    Attempt,
    Recorded,
    Reveal,
    ViewRecord,
)

_SWEEP_BATCH: Final = 500
OUTBOX_STREAMS: Final = 128
"""On a cluster, how many per-secret outbox streams ``pending_events`` reads at most."""
OUTBOX_RESCAN_EVERY: Final = 100
"""On a cluster, ``pending_events`` scans for unindexed outbox streams on its first call and
then once in this many calls."""
_STREAM_ID: Final = re.compile(r"[0-9]+-[0-9]+")
COUNTER_GRACE: Final = timedelta(seconds=5)
"""How long a counter key outlives its window, for the latency between ``now`` and Redis."""

_PEEK_FIELDS: Final = (
    b"exp", b"acc", b"cat", b"mv", b"vl", b"al", b"pk", b"pi", b"ps", b"pd", b"pol"
)  # fmt: skip


def _encode_id(secret_id: str) -> bytes:
    return secret_id.encode("utf-8", "surrogatepass")


def _queue(pipe: Pipeline | ClusterPipeline, *command: EncodableT) -> None:
    """Add ``command`` to ``pipe`` without awaiting it: awaiting a queued command of a cluster
    pipeline initializes the pipeline again, which empties its queue."""
    pipe.execute_command(*command)


def _queue_script(
    pipe: Pipeline | ClusterPipeline,
    script: AsyncScript,
    keys: Sequence[bytes],
    args: Sequence[EncodableT],
) -> None:
    """Add ``script`` to ``pipe`` as ``EVAL`` with its text. A cluster pipeline cannot load
    scripts, and a single-node pipeline would ask ``SCRIPT EXISTS`` on every ``execute`` (one
    more round trip per create); ``EVAL`` never fails with ``NOSCRIPT``, and Redis keeps the
    compiled script by its hash, so the text costs only its bytes on the wire."""
    _queue(pipe, "EVAL", script.script, len(keys), *keys, *args)


def _glob_escape(text: bytes) -> bytes:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return re.sub(rb"([\\*?\[\]])", rb"\\\1", text)


def _script_fields(fields: list[bytes]) -> bool:
    """Whether a stream entry's raw field list is the script's ``r <record> t <time>``."""
    return len(fields) == 4 and fields[0] == b"r" and fields[2] == b"t"


_SCRIPT_FIELDS: Final = _script_fields


def _field_r(fields: list[bytes]) -> bytes:
    """The ``r`` field of a stream entry's raw field list (the last, as in redis-py's dict)."""
    pairs = iter(fields)
    return dict(zip(pairs, pairs, strict=False))[b"r"]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _decode_event(raw: bytes, viewer_raw: bytes | None = None) -> Event:
    at, kind, ip, user_agent = json.loads(raw)
    viewer = None
    if viewer_raw is not None:
        obj = json.loads(viewer_raw)
        viewer = Viewer(email=obj["email"], mfa=obj["mfa"] is True)
    return Event(
        at=from_epoch_ms(int(at)), kind=EventKind(kind), ip=ip, user_agent=user_agent, viewer=viewer
    )


class RedisStore(RedisIdentity, RedisRequests):
    """A ``SecretStore`` in Redis, one Lua script per rule (see the module docstring)."""

    def __init__(self, client: Redis | RedisCluster, *, prefix: str, retention: timedelta) -> None:
        self._client = client
        self._prefix = prefix.encode("utf-8")
        self._retention = retention
        self._retention_ms = retention // MILLISECOND
        self._index = self._prefix + b"index:expiry"
        self._cluster = isinstance(client, RedisCluster)
        self._outbox = self._prefix + b"outbox"
        self._outbox_index = self._prefix + b"index:outbox"
        self._pending_calls = 0
        self._create = LeanScript(client, lua.CREATE)
        self._consume = LeanScript(client, lua.CONSUME)
        self._reveal = LeanScript(client, lua.REVEAL)
        self._record_failure = LeanScript(client, lua.RECORD_FAILURE)
        self._burn = LeanScript(client, lua.BURN)
        self._expire = LeanScript(client, lua.EXPIRE)
        self._record = LeanScript(client, lua.RECORD)
        self._ack = LeanScript(client, lua.ACK)
        self._put_code = LeanScript(client, lua.PUT_CODE)
        self._check_code = LeanScript(client, lua.CHECK_CODE)
        self._hits = LeanScript(client, lua.HITS)
        self._receipt = LeanScript(client, lua.RECEIPT)
        self._own = LeanScript(client, lua.OWN)
        self._signin_scripts()
        self._request_scripts()

    @classmethod
    async def open(cls, url: str, *, retention: timedelta) -> RedisStore:
        """Connect to the Redis (or, for ``redis+cluster://``, the Redis Cluster) named by
        ``url`` and check that it answers.

        Raises ``ConfigError`` for a malformed URL and ``StorageUnavailable`` when Redis
        cannot be reached within a few seconds.
        """
        client, prefix = client_for(url)
        store = cls(client, prefix=prefix, retention=retention)
        try:
            await store.ping()
        except BaseException:
            await client.aclose()
            raise
        return store

    def _keys(self, secret_id: str) -> list[bytes]:
        """The secret's live, receipt, events and code keys, in the order the scripts take."""
        tag = b"{" + _encode_id(secret_id) + b"}"
        return [self._prefix + kind + tag for kind in (b"s:", b"r:", b"e:", b"o:")]

    def _stream(self, secret_id: str) -> bytes:
        """Where the secret's outbox records go: on a cluster its own stream, in its slot;
        on a single node the store's one outbox stream."""
        if not self._cluster:
            return self._outbox
        return self._prefix + b"x:{" + _encode_id(secret_id) + b"}"

    async def _keeping(
        self,
        script: AsyncScript,
        secret_id: str,
        args: Sequence[EncodableT],
        *,
        events: Sequence[Recorded],
        now_ms: int,
    ) -> Any:
        """Run one of the secret's scripts that keeps ``events`` (its keys and outbox stream)
        and return its answer. On a cluster with events, the stream's ``ZADD NX`` into the
        outbox index goes with it in one non-transactional pipeline (best effort: see the
        module docstring, Outbox)."""
        keys = [*self._keys(secret_id), self._stream(secret_id)]
        with translated():
            if not (self._cluster and events):
                return await script(keys=keys, args=args)
            async with self._client.pipeline(transaction=False) as pipe:
                _queue_script(pipe, script, keys, args)
                _queue(pipe, "ZADD", self._outbox_index, "NX", now_ms, _encode_id(secret_id))
                result, _ = await pipe.execute(raise_on_error=False)
            if isinstance(result, Exception):
                raise result
            return result

    async def create(
        self, record: SecretRecord, *, events: Sequence[Recorded] = (), hits: Sequence[Hit] = ()
    ) -> list[int]:
        """See ``SecretStore.create``: on a single node one script counts ``hits``, inserts
        and enters the id in the expiry index (one round trip, nothing kept past a limit); on
        a cluster the counters are on other shards, so they are counted first (``hits``) and
        the insert follows only if none is past its limit, with the expiry index's ``ZADD``
        beside it in one pipeline.
        """
        counts: list[int] = []
        counter_keys: list[bytes] = []
        counter_args: list[int] = []
        if self._cluster and hits:
            counts = await self.hits(hits, now=record.created_at)
            if over_limit(hits, counts):
                return counts
        elif hits:
            counter_keys, timed = self._hit_keys(hits, record.created_at)
            for i, hit in enumerate(hits):
                limit = -1 if hit.limit is None else hit.limit
                counter_args += [*timed[2 * i : 2 * i + 2], limit]
        expires_ms = to_epoch_ms(record.expires_at)
        live: list[bytes | str | int] = [
            b"env", record.envelope,
            b"acc", record.access_digest,
            b"cat", to_epoch_ms(record.created_at),
            b"exp", expires_ms,
            b"mv", record.max_views,
            b"vl", record.max_views,
            b"al", record.max_attempts,
        ]  # fmt: skip
        gate = record.passphrase
        if gate is not None:
            live += [
                b"pk", gate.kdf,
                b"pi", gate.iterations,
                b"ps", gate.salt,
                b"pd", gate.proof_digest,
            ]  # fmt: skip
        if record.owner is not None:
            live += [b"own", record.owner]
        live += [b"pol", record.policy.to_bytes()]
        receipt: list[bytes | str | int] = [
            b"mng", record.manage_digest,
            b"cat", to_epoch_ms(record.created_at),
            b"exp", expires_ms,
            b"mv", record.max_views,
            b"vu", 0,
        ]  # fmt: skip
        if record.owner is not None:
            receipt += [b"own", record.owner]
        if record.owner_email is not None:
            receipt += [b"oem", record.owner_email]
        if record.label is not None:
            receipt += [b"lbl", record.label]
        member = _encode_id(record.secret_id)
        created_ms = to_epoch_ms(record.created_at)
        owned = record.owner is not None and not self._cluster
        args = [
            expires_ms, self._retention_ms, len(live) // 2, len(receipt) // 2,
            MAX_EVENTS_PER_KIND, b"" if self._cluster else member,
            created_ms if owned else b"", *counter_args, *live, *receipt, *event_args(events),
        ]  # fmt: skip
        keys = [*self._keys(record.secret_id), self._stream(record.secret_id)]
        with translated():
            if not self._cluster:
                owner_keys = [self._owned_key(record.owner)] if record.owner is not None else []
                created = await self._create(
                    keys=[*keys, self._index, *counter_keys, *owner_keys], args=args
                )
            else:
                if record.owner is not None:
                    # The owner's set is on the owner's shard. It is written first, and a
                    # failure there fails the create, so every owned secret is in its owner's
                    # list; an entry for an id the create then refuses shows nothing, because
                    # "my secrets" reads the receipt's own owner.
                    ttl = expires_ms + self._retention_ms - created_ms
                    owner_args: list[EncodableT] = [created_ms, member, ttl]
                    await self._own(keys=[self._owned_key(record.owner)], args=owner_args)
                async with self._client.pipeline(transaction=False) as pipe:
                    _queue_script(pipe, self._create, keys, args)
                    _queue(pipe, "ZADD", self._index, "NX", expires_ms, member)
                    if events:
                        _queue(pipe, "ZADD", self._outbox_index, "NX", created_ms, member)
                    created, *_ = await pipe.execute(raise_on_error=False)
                if isinstance(created, Exception):
                    raise created
        if not created:
            raise DuplicateId("secret id already taken")
        _, totals = created
        return counts if self._cluster else [int(total) for total in totals]

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        """See ``SecretStore.peek``."""
        with translated():
            values = cast(
                "list[bytes | None]",
                await self._client.hmget(self._keys(secret_id)[0], list(_PEEK_FIELDS)),
            )
        return _meta(secret_id, values, now)

    async def reveal(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        hits: Sequence[Hit],
        view: ViewRecord | None = None,
    ) -> Reveal:
        """See ``SecretStore.reveal``: on a single node one script counts ``hits``, reads the
        secret and takes the view (one round trip). On a cluster the counters are on other
        shards: with a ``view`` they are counted first (``hits``) and the script follows only
        if none is past its limit, with the outbox index's ``ZADD NX`` in its pipeline (as
        ``_keeping``); without one, the counting scripts and the read go in one pipeline, to
        each key's shard at once."""
        if self._cluster and view is None:
            return await self._cluster_lookup(secret_id, now=now, hits=hits)
        now_ms = to_epoch_ms(now)
        counts: list[int] = []
        counter_keys: list[bytes] = []
        counter_args: list[int] = []
        if self._cluster and hits:
            counts = await self.hits(hits, now=now)
            if over_limit(hits, counts):
                return Reveal(counts, None)
        elif hits:
            counter_keys, timed = self._hit_keys(hits, now)
            for i, hit in enumerate(hits):
                limit = -1 if hit.limit is None else hit.limit
                counter_args += [*timed[2 * i : 2 * i + 2], limit]
        line = None if view is None else view.line
        args: list[EncodableT] = [
            access_digest, now_ms, self._retention_ms, MAX_EVENTS_PER_KIND,
            0 if view is None else 1, NO_RULES_PREFIX,
            b"" if line is None else encode_event(line),
            b"" if line is None else line.kind.value,
            b"" if view is None else view.head, b"" if view is None else view.tail,
            *counter_args,
        ]  # fmt: skip
        keys = [*self._keys(secret_id), self._stream(secret_id), *counter_keys]
        with translated():
            if not self._cluster:
                result = await self._reveal(keys=keys, args=args)
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    _queue_script(pipe, self._reveal, keys, args)
                    _queue(pipe, "ZADD", self._outbox_index, "NX", now_ms, _encode_id(secret_id))
                    result, _ = await pipe.execute(raise_on_error=False)
                if isinstance(result, Exception):
                    raise result
        totals, fields, *taken = result
        if not self._cluster:
            counts = [int(total) for total in totals]
        if fields is None:
            return Reveal(counts, None)
        meta = _meta(secret_id, cast("list[bytes | None]", fields), now)
        envelope, views_left = taken
        if envelope is None:
            return Reveal(counts, meta)
        return Reveal(counts, meta, Consumed(envelope=bytes(envelope), views_left=int(views_left)))

    async def _cluster_lookup(
        self, secret_id: str, *, now: datetime, hits: Sequence[Hit]
    ) -> Reveal:
        """``reveal`` without a view on a cluster: the counting scripts (as ``hits``) and the
        ``HMGET`` of ``peek`` in one pipeline, which sends each command to its key's shard,
        all at once; the metadata is left out when a count passed its limit."""
        keys, args = self._hit_keys(hits, now)
        with translated():
            async with self._client.pipeline(transaction=False) as pipe:
                for i, key in enumerate(keys):
                    _queue_script(pipe, self._hits, [key], args[2 * i : 2 * i + 2])
                _queue(pipe, "HMGET", self._keys(secret_id)[0], *_PEEK_FIELDS)
                results: list[Any] = await pipe.execute()
        *counted, values = results
        counts = [int(total) for (total,) in counted]
        if over_limit(hits, counts):
            return Reveal(counts, None)
        return Reveal(counts, _meta(secret_id, cast("list[bytes | None]", values), now))

    async def consume(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        events: Sequence[Recorded] = (),
    ) -> Consumed | None:
        """See ``SecretStore.consume``."""
        now_ms = to_epoch_ms(now)
        args = [
            access_digest, now_ms, self._retention_ms, MAX_EVENTS_PER_KIND, *event_args(events)
        ]  # fmt: skip
        result = await self._keeping(self._consume, secret_id, args, events=events, now_ms=now_ms)
        if result is None:
            return None
        envelope, views_left = result
        return Consumed(envelope=bytes(envelope), views_left=int(views_left))

    async def record_failure(
        self, secret_id: str, *, now: datetime, locks: bool, events: Sequence[Recorded] = ()
    ) -> Attempt | None:
        """See ``SecretStore.record_failure``; the script decides and counts."""
        now_ms = to_epoch_ms(now)
        args = [
            now_ms, self._retention_ms, 1 if locks else 0, MAX_EVENTS_PER_KIND,
            *event_args(events),
        ]  # fmt: skip
        result = await self._keeping(
            self._record_failure, secret_id, args, events=events, now_ms=now_ms
        )
        if result is None:
            return None
        counted, attempts_left = result
        return Attempt(counted=bool(counted), attempts_left=int(attempts_left))

    async def burn(
        self,
        secret_id: str,
        *,
        now: datetime,
        reason: EndReason = EndReason.BURNED,
        events: Sequence[Recorded] = (),
    ) -> bool:
        """See ``SecretStore.burn``."""
        now_ms = to_epoch_ms(now)
        args = [
            now_ms, self._retention_ms, reason.value, MAX_EVENTS_PER_KIND, *event_args(events)
        ]  # fmt: skip
        result = await self._keeping(self._burn, secret_id, args, events=events, now_ms=now_ms)
        return bool(result)

    async def receipt(self, secret_id: str, *, now: datetime) -> ReceiptRecord | None:
        """See ``SecretStore.receipt``."""
        _, receipt_key, events_key, _ = self._keys(secret_id)
        with translated():
            result: Any = await self._receipt(keys=[receipt_key, events_key])
        flat, rows = result
        return self._decode_receipt(secret_id, flat, rows, now)

    def _decode_receipt(
        self, secret_id: str, flat: Sequence[bytes], rows: Sequence[bytes], now: datetime
    ) -> ReceiptRecord | None:
        """The receipt from its hash's fields (flat) and its events; ``None`` when there is
        none or it is past retention."""
        if not flat:
            return None
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        expires_at = from_epoch_ms(int(fields[b"exp"]))
        ended_raw = fields.get(b"end")
        ended_at = None if ended_raw is None else from_epoch_ms(int(ended_raw))
        if (ended_at or expires_at) + self._retention <= now:
            return None
        reason_raw = fields.get(b"why")
        owner, label, owner_email = fields.get(b"own"), fields.get(b"lbl"), fields.get(b"oem")
        return ReceiptRecord(
            secret_id=secret_id,
            manage_digest=fields[b"mng"],
            created_at=from_epoch_ms(int(fields[b"cat"])),
            expires_at=expires_at,
            max_views=int(fields[b"mv"]),
            views_used=int(fields[b"vu"]),
            ended_at=ended_at,
            end_reason=None if reason_raw is None else EndReason(reason_raw.decode("ascii")),
            events=tuple(
                _decode_event(row, fields.get(b"v:%d" % n)) for n, row in enumerate(rows, 1)
            ),
            owner=None if owner is None else _text(owner),
            owner_email=None if owner_email is None else _text(owner_email),
            label=None if label is None else _text(label),
        )

    def _owned_key(self, owner: str) -> bytes:
        """The owner's set of secret ids, scored by creation, hash-tagged with the owner."""
        return self._prefix + b"own:{" + owner.encode("utf-8", "surrogatepass") + b"}"

    async def owned_secrets(self, owner: str, *, now: datetime, limit: int) -> list[ReceiptRecord]:
        """See ``OwnedSecrets.owned_secrets``: the owner's set newest first, a page at a
        time; each receipt read by its own script (one pipeline, which a cluster splits by
        shard). Ids whose receipt is gone, or names another owner (an entry a refused
        create left), are dropped from the set."""
        key = self._owned_key(owner)
        found: list[ReceiptRecord] = []
        start = 0
        while len(found) < limit:
            page = max(limit - len(found), 16)
            with translated():
                members = cast(
                    "list[bytes]", await self._client.zrevrange(key, start, start + page - 1)
                )
                if not members:
                    break
                async with self._client.pipeline(transaction=False) as pipe:
                    for member in members:
                        _, receipt_key, events_key, _ = self._keys(_text(member))
                        _queue_script(pipe, self._receipt, [receipt_key, events_key], [])
                    results: list[Any] = await pipe.execute()
            stale: list[bytes] = []
            for member, (flat, rows) in zip(members, results, strict=True):
                receipt = self._decode_receipt(_text(member), flat, rows, now)
                if not flat or (receipt is not None and receipt.owner != owner):
                    stale.append(member)
                elif receipt is not None and len(found) < limit:
                    found.append(receipt)
            if stale:
                with translated():
                    await self._client.zrem(key, *stale)
            start += len(members) - len(stale)
        return found

    async def record(self, secret_id: str | None, events: Sequence[Recorded]) -> None:
        """See ``SecretStore.record``: one script appends the lines to the receipt (if any)
        and the records to the secret's outbox stream, or, without a secret, to the store's
        one outbox stream (on a cluster too)."""
        if not events:
            return
        if secret_id is None:
            # Every line is dropped, so the script never touches a receipt: the outbox key
            # stands in for the receipt's keys, and the script names one slot.
            args = [MAX_EVENTS_PER_KIND, self._retention_ms, *event_args(events, lines=False)]
            with translated():
                await self._record(keys=[self._outbox] * 3, args=args)
            return
        _, receipt_key, events_key, _ = self._keys(secret_id)
        stream = self._stream(secret_id)
        args = [MAX_EVENTS_PER_KIND, self._retention_ms, *event_args(events)]
        with translated():
            if not self._cluster:
                await self._record(keys=[receipt_key, events_key, stream], args=args)
                return
            # Not every recorded event has a time; the latest line's orders the index.
            at = max((to_epoch_ms(r.line.at) for r in events if r.line is not None), default=0)
            async with self._client.pipeline(transaction=False) as pipe:
                _queue_script(pipe, self._record, [receipt_key, events_key, stream], args)
                _queue(pipe, "ZADD", self._outbox_index, "NX", at, _encode_id(secret_id))
                result, _ = await pipe.execute(raise_on_error=False)
            if isinstance(result, Exception):
                raise result

    async def pending_events(self, *, limit: int) -> list[Pending]:
        """See ``SecretStore.pending_events``.

        On a single node, one ``XRANGE`` of the outbox stream (refs are stream ids), read
        as hiredis parses it (``LeanRedis.execute_raw``: redis-py's callback would build a
        tuple and a dict per entry; a plain client's reply still goes through it). On a
        cluster, the shared stream and the oldest ``OUTBOX_STREAMS`` indexed per-secret
        streams in one pipeline, merged by their entries' ``t`` (refs are ``<key>|<id>``,
        the key without the prefix); see the module docstring, Outbox.
        """
        if limit <= 0:
            return []
        with translated():
            if isinstance(self._client, LeanRedis):
                rows: Any = await self._client.execute_raw(
                    "XRANGE", self._outbox, "-", "+", "COUNT", limit
                )
                # An entry is [id, [b"r", record, b"t", time]] as the script adds it.
                return [
                    Pending(
                        _text(entry_id), fields[1] if _SCRIPT_FIELDS(fields) else _field_r(fields)
                    )
                    for entry_id, fields in rows
                ]
            if not self._cluster:
                rows = await self._client.xrange(self._outbox, count=limit)
                return [Pending(_text(entry_id), fields[b"r"]) for entry_id, fields in rows]
            self._pending_calls += 1
            if self._pending_calls % OUTBOX_RESCAN_EVERY == 1:
                await self._rescan_outbox()
            members = cast(
                "list[bytes]",
                await self._client.zrange(self._outbox_index, 0, min(limit, OUTBOX_STREAMS) - 1),
            )
            streams = [self._outbox] + [self._prefix + b"x:{" + m + b"}" for m in members]
            async with self._client.pipeline(transaction=False) as pipe:
                for stream in streams:
                    _queue(pipe, "XRANGE", stream, "-", "+", "COUNT", limit)
                results: list[Any] = await pipe.execute()
            await self._unindex(
                [m for m, rows in zip(members, results[1:], strict=True) if not rows]
            )
        merged = heapq.merge(
            *(
                [(int(fields[b"t"]), stream, entry_id, fields[b"r"]) for entry_id, fields in rows]
                for stream, rows in zip(streams, results, strict=True)
            ),
            key=lambda entry: entry[0],
        )
        pending: list[Pending] = []
        for _, stream, entry_id, outbox in merged:
            if len(pending) == limit:
                break
            name = _text(stream[len(self._prefix) :])
            pending.append(Pending(f"{name}|{_text(entry_id)}", outbox))
        return pending

    async def ack_events(self, refs: Sequence[str]) -> None:
        """See ``SecretStore.ack_events``: ``XDEL`` by stream; on a cluster one script per
        stream, which deletes a stream it empties (whose index entry then goes too)."""
        by_stream: dict[bytes, list[str]] = {}
        for ref in refs:
            name, _, entry_id = ref.rpartition("|")
            if not _STREAM_ID.fullmatch(entry_id) or (bool(name) != self._cluster):
                continue  # not a ref this store hands out: already gone, as far as it knows
            stream = self._outbox if not name else self._prefix + _encode_id(name)
            by_stream.setdefault(stream, []).append(entry_id)
        if not by_stream:
            return
        with translated():
            if not self._cluster:
                await self._client.xdel(self._outbox, *by_stream[self._outbox])
                return
            async with self._client.pipeline(transaction=False) as pipe:
                for stream, ids in by_stream.items():
                    _queue_script(pipe, self._ack, [stream], ids)
                emptied: list[Any] = await pipe.execute()
            tagged = self._prefix + b"x:{"
            await self._unindex(
                [
                    stream[len(tagged) : -1]
                    for stream, empty in zip(by_stream, emptied, strict=True)
                    if empty and stream.startswith(tagged)
                ]
            )

    async def _unindex(self, members: Sequence[bytes]) -> None:
        """Drop these secrets from the outbox index, then put back any whose stream exists
        after all (a record kept meanwhile, whose own ``ZADD NX`` came before the ``ZREM``)."""
        if not members:
            return
        await self._client.zrem(self._outbox_index, *members)
        async with self._client.pipeline(transaction=False) as pipe:
            for member in members:
                _queue(pipe, "EXISTS", self._prefix + b"x:{" + member + b"}")
            exists: list[Any] = await pipe.execute()
        back = [part for m, e in zip(members, exists, strict=True) if e for part in (0, m)]
        if back:
            await self._client.execute_command("ZADD", self._outbox_index, "NX", *back)

    async def _rescan_outbox(self) -> None:
        """Index every per-secret outbox stream on the cluster (``SCAN`` of each primary), for
        an index entry lost to a failed ``ZADD`` or a race with ``_unindex``."""
        tagged = self._prefix + b"x:{"
        found: list[bytes | int] = []
        async for key in self._client.scan_iter(
            match=_glob_escape(tagged) + b"*", count=1000, _type="stream"
        ):
            found += [0, bytes(key)[len(tagged) : -1]]
        if found:
            await self._client.execute_command("ZADD", self._outbox_index, "NX", *found)

    async def put_code(
        self,
        secret_id: str,
        code_digest: bytes,
        *,
        now: datetime,
        expires_at: datetime,
        tries: int,
        resend_after: datetime,
        max_codes: int,
    ) -> CodePut:
        """See ``SecretStore.put_code``.

        One script reads the live secret and the current code and replaces the code; the code
        key expires natively with its secret.
        """
        live_key, _, _, code_key = self._keys(secret_id)
        args: list[bytes | int] = [
            code_digest,
            to_epoch_ms(now),
            to_epoch_ms(expires_at),
            tries,
            to_epoch_ms(resend_after),
            max_codes,
        ]
        with translated():
            result: Any = await self._put_code(keys=[live_key, code_key], args=args)
        return _CODE_PUT[int(result)]

    async def check_code(
        self, secret_id: str, code_digest: bytes, *, now: datetime
    ) -> CodeCheck | None:
        """See ``SecretStore.check_code``. One script; digests are compared in constant time."""
        live_key, _, _, code_key = self._keys(secret_id)
        with translated():
            result: Any = await self._check_code(
                keys=[live_key, code_key], args=[code_digest, to_epoch_ms(now)]
            )
        if result is None:
            return None
        matched, tries_left = result
        return CodeCheck(matched=bool(matched), tries_left=int(tries_left))

    def _counter_key(self, bucket: str, start: int) -> bytes:
        tag = bucket.encode("utf-8", "surrogatepass") + b":" + str(start).encode("ascii")
        return self._prefix + b"c:{" + tag + b"}"

    async def hit(self, bucket: str, *, window: int, now: datetime, cost: int = 1) -> int:
        """See ``SecretStore.hit``."""
        (total,) = await self.hits([Hit(bucket, window, cost)], now=now)
        return total

    async def hits(self, hits: Sequence[Hit], *, now: datetime) -> list[int]:
        """See ``SecretStore.hits``: one script adds each ``cost`` to its window's key
        (``cost=0`` only reads it). A new key lives for the rest of its window by ``now`` plus
        ``COUNTER_GRACE``, as a relative TTL.

        On a cluster each counter is its own hash tag, so there the script runs once per
        counter, in one pipeline that goes to each counter's shard.
        """
        keys, args = self._hit_keys(hits, now)
        if not keys:
            return []
        with translated():
            if not self._cluster:
                totals: list[Any] = await self._hits(keys=keys, args=args)
                return [int(total) for total in totals]
            async with self._client.pipeline(transaction=False) as pipe:
                for i, key in enumerate(keys):
                    _queue_script(pipe, self._hits, [key], args[2 * i : 2 * i + 2])
                results: list[Any] = await pipe.execute()
        return [int(total) for (total,) in results]

    def _hit_keys(self, hits: Sequence[Hit], now: datetime) -> tuple[list[bytes], list[int]]:
        """The ``HITS`` script's keys and arguments for ``hits`` at ``now``."""
        now_ms = to_epoch_ms(now)
        grace_ms = COUNTER_GRACE // MILLISECOND
        keys: list[bytes] = []
        args: list[int] = []
        for hit in hits:
            start = now_ms // 1000 // hit.window * hit.window
            keys.append(self._counter_key(hit.bucket, start))
            args += [hit.cost, (start + hit.window) * 1000 - now_ms + grace_ms]
        return keys, args

    async def clear_hits(self, bucket: str, *, window: int, now: datetime) -> int:
        """See ``SecretStore.clear_hits``: one ``GETDEL`` of the window's key."""
        start = to_epoch_ms(now) // 1000 // window * window
        with translated():
            value: Any = await self._client.getdel(self._counter_key(bucket, start))
        return 0 if value is None else int(value)

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """See ``SecretStore.purge_expired``.

        Walks the expiry index up to ``now``, ending each secret (and deleting its code) with
        its own atomic script. Receipts past retention are freed by Redis's native expiry (and
        hidden by ``receipt`` as soon as ``now`` passes their retention), and so are counter
        windows that have ended (never read again, since a window is addressed by its start).
        """
        now_ms = to_epoch_ms(now)
        ended = 0
        with translated():
            while ended < limit:
                members = cast(
                    "list[bytes]",
                    await self._client.zrangebyscore(
                        self._index, "-inf", now_ms, start=0, num=min(limit - ended, _SWEEP_BATCH)
                    ),
                )
                if not members:
                    break
                ended += await self._expire_batch(members, now_ms)
        await self._purge_signin(now_ms, max(limit, 0))
        return ended

    async def _expire_batch(self, members: Sequence[bytes], now_ms: int) -> int:
        """Run the expiry script on each indexed id; drop done ids from the index, re-score live."""
        async with self._client.pipeline(transaction=False) as pipe:
            for member in members:
                secret_id = member.decode("utf-8", "surrogatepass")
                _queue_script(
                    pipe, self._expire, self._keys(secret_id), [now_ms, self._retention_ms]
                )
            results: list[Any] = await pipe.execute()
        ended = 0
        done: list[bytes] = []
        alive: dict[bytes, int] = {}
        for member, (status, expires_ms) in zip(members, results, strict=True):
            if int(status) == 2:
                alive[member] = int(expires_ms)
            else:
                ended += int(status)
                done.append(member)
        async with self._client.pipeline(transaction=False) as pipe:
            if done:
                _queue(pipe, "ZREM", self._index, *done)
            if alive:
                scored = [part for member, score in alive.items() for part in (score, member)]
                _queue(pipe, "ZADD", self._index, "XX", *scored)
            await pipe.execute()
        return ended

    async def ping(self) -> None:
        """Return if Redis (on a cluster: every primary) answers, else raise
        ``StorageUnavailable``."""
        with translated():
            if isinstance(self._client, RedisCluster):
                await self._client.ping(target_nodes=RedisCluster.PRIMARIES)
            else:
                await self._client.ping()

    async def aclose(self) -> None:
        """Close the client and its connections."""
        with translated():
            await self._client.aclose()


_CODE_PUT: Final = (CodePut.GONE, CodePut.SENT, CodePut.TOO_SOON, CodePut.SPENT)
"""``PUT_CODE``'s answers, by number."""


_STAND_IN: Final[list[bytes | None]] = [
    b"0", STAND_IN_DIGEST, b"0", b"1", b"1", b"5", None, None, None, None,
    AccessPolicy().to_bytes(),
]  # fmt: skip
"""``_PEEK_FIELDS`` values as a secret without rules has them: what a lookup of an id that is
not live decodes instead (``store.secrets.STAND_IN_DIGEST``)."""


def _meta(secret_id: str, values: list[bytes | None], now: datetime) -> SecretMeta | None:
    """A secret's metadata from its ``_PEEK_FIELDS`` values (``None`` when gone or expired,
    after decoding a stand-in: the same work)."""
    meta = _decode(secret_id, values)
    if meta is None or meta.expires_at <= now:
        _decode(secret_id, _STAND_IN)
        return None
    return meta


def _decode(secret_id: str, values: list[bytes | None]) -> SecretMeta | None:
    fields = dict(zip(_PEEK_FIELDS, values, strict=True))
    policy = fields[b"pol"]
    exp, acc, cat, mv, vl, al = (fields[name] for name in _PEEK_FIELDS[:6])
    if exp is None or acc is None or cat is None or mv is None or vl is None or al is None:
        return None
    expires_at = from_epoch_ms(int(exp))
    gate = None
    kdf, iterations, salt, proof = fields[b"pk"], fields[b"pi"], fields[b"ps"], fields[b"pd"]
    if kdf is not None and iterations is not None and salt is not None and proof is not None:
        gate = PassphraseGate(
            kdf=kdf.decode("utf-8"),
            iterations=int(iterations),
            salt=salt,
            proof_digest=proof,
        )
    return SecretMeta(
        secret_id=secret_id,
        access_digest=acc,
        created_at=from_epoch_ms(int(cat)),
        expires_at=expires_at,
        max_views=int(mv),
        views_left=int(vl),
        attempts_left=int(al),
        passphrase=gate,
        policy=AccessPolicy() if policy is None else AccessPolicy.from_bytes(policy),
    )
