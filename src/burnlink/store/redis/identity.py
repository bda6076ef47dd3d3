"""Sign-in in the Redis store (``store/identity.py``): sessions and API tokens.

Keys
    Every sign-in key carries the hash tag ``{signin}``, so a Redis Cluster keeps them all on
    one shard and each rule is one script over declared keys of one slot (``end_sessions_of``
    deletes every session of a subject at once). The cost: a cluster's sign-in traffic (one
    ``touch_session`` or ``use_token`` per request) goes to that one shard. Digests appear in
    key names as lowercase hex::

        {prefix}ses:{signin}:<digest>        hash  a session: sub, em, grp (JSON), mfa, aut,
                                                   cat, seen, exp; PEXPIREAT exp
        {prefix}ses-of:{signin}:<subject>    zset  its sessions' digests, scored by exp
        {prefix}ses-index:{signin}           zset  every session's digest, scored by exp
                                                   (for purge_expired)
        {prefix}tok:{signin}:<digest>        hash  a token: tid, sub, em, grp, nm, sc (JSON),
                                                   cat, exp, lu, rv, ku (kept until: its end
                                                   plus the retention); PEXPIREAT ku
        {prefix}tok-id:{signin}:<token_id>   str   the token's digest (hex); PEXPIREAT ku
        {prefix}tok-of:{signin}:<subject>    zset  ``<token_id>|<digest>`` scored by cat
        {prefix}tok-index:{signin}           zset  ``<token_id>|<digest>`` scored by ku

    Hashes expire natively at their end (``PEXPIREAT``, by the application's clock, as the
    secrets do); the per-subject sets get a relative TTL as long as their longest member
    needs, and drop members whose hash is gone when read. ``purge_expired`` walks the two
    index sets, so a store whose server clock lags the application's still deletes them.

Atomicity
    ``put_session``, ``touch_session``, ``use_token``, ``put_token`` and ``revoke_token``
    are one script each, which checks before it writes. ``revoke_token`` and
    ``end_sessions_of`` first read where to look (the token's digest, the subject's sessions),
    then run a script that checks that this is still so before it writes (otherwise it
    answers "changed" and the store reads again), so a session put in between is never left
    behind.
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

from burnlink.clock import from_epoch_ms, to_epoch_ms
from burnlink.errors import DuplicateId, StorageUnavailable
from burnlink.store.identity import SessionRecord, TokenRecord
from burnlink.store.redis.client import LeanScript, translated

__all__ = ["RedisIdentity"]

_OPTIMISTIC_TRIES: Final = 16
"""How often ``end_sessions_of`` and ``revoke_token`` read again when what they read changed
before their script ran."""

_READ_CHUNK: Final = 500
"""Tokens ``all_tokens`` reads per script."""

_EXTEND: Final = """
-- Give key a TTL of at least ttl ms (relative, so the two clocks need not agree).
local function extend(key, ttl)
  if ttl > 0 and redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
"""

PUT_SESSION: Final = (
    _EXTEND
    + """
-- KEYS: session, the subject's sessions, the session index. ARGV: digest (hex), created,
-- expires (ms), then the session's field pairs. Returns 0 if the digest is kept, else 1.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
extend(KEYS[2], tonumber(ARGV[3]) - tonumber(ARGV[2]))
return 1
"""
)

TOUCH_SESSION: Final = """
-- KEYS: session. ARGV: now, and the last_seen at or before which it is idle (ms). Returns
-- the session's fields with last_seen moved to now, or nil (and the session deleted) when it
-- is gone, past its end or idle.
local f = redis.call('HMGET', KEYS[1], 'exp', 'seen')
if not f[1] then return false end
if tonumber(f[1]) <= tonumber(ARGV[1]) or tonumber(f[2]) <= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""

END_SESSIONS: Final = """
-- KEYS: the subject's sessions, then the session key of each member read. ARGV: those
-- members. Returns -1 if the members changed since they were read (nothing done), else how
-- many sessions were deleted.
if redis.call('ZCARD', KEYS[1]) ~= #ARGV then return -1 end
for _, m in ipairs(ARGV) do
  if not redis.call('ZSCORE', KEYS[1], m) then return -1 end
end
local n = 0
if #KEYS > 1 then n = redis.call('DEL', unpack(KEYS, 2)) end
redis.call('DEL', KEYS[1])
return n
"""

PUT_TOKEN: Final = (
    _EXTEND
    + """
-- KEYS: token, its id's pointer, the subject's tokens, the token index. ARGV: member
-- ('<token_id>|<digest hex>'), digest hex, created, kept until (ms), then the token's field
-- pairs. Returns 0 if the digest or the id is kept, else 1.
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
extend(KEYS[3], tonumber(ARGV[4]) - tonumber(ARGV[3]))
return 1
"""
)

USE_TOKEN: Final = """
-- KEYS: token. ARGV: now (ms). Returns the token's fields with last_used set to now, or nil
-- when it is gone, revoked or expired.
local f = redis.call('HMGET', KEYS[1], 'exp', 'rv')
if not f[1] or f[2] or tonumber(f[1]) <= tonumber(ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'lu', ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""  # noqa: S105 - a script, not a password

REVOKE_TOKEN: Final = """
-- KEYS: the id's pointer, the token, the token index. ARGV: the digest hex read from the
-- pointer, now, kept until (ms), subject, '1' when the subject must own it, member.
-- Returns -1 if the pointer changed since it was read, 1 when revoked, else 0.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local f = redis.call('HMGET', KEYS[2], 'exp', 'rv', 'sub')
if not f[1] or f[2] or tonumber(f[1]) <= tonumber(ARGV[2]) then return 0 end
if ARGV[5] == '1' and f[3] ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[2], 'rv', ARGV[2], 'ku', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('PEXPIREAT', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 'XX', ARGV[3], ARGV[6])
return 1
"""  # noqa: S105 - a script, not a password

READ_ALL: Final = """
-- KEYS: a set, then the hash of each member given. ARGV: those members. Returns each hash's
-- fields (empty when gone), dropping the members whose hash is gone from the set.
local out = {}
for i = 2, #KEYS do
  local h = redis.call('HGETALL', KEYS[i])
  if #h == 0 then redis.call('ZREM', KEYS[1], ARGV[i - 1]) end
  out[i - 1] = h
end
return out
"""

REFRESH: Final = """
-- KEYS: a subject's token set, then the hash of each member given. ARGV: the groups (JSON),
-- whether there is an email (1/0), the email, then the members. Sets grp (and em, or drops
-- it) on each token still kept, drops the members whose hash is gone; returns how many.
local n = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'grp', ARGV[1])
    if ARGV[2] == '1' then
      redis.call('HSET', KEYS[i], 'em', ARGV[3])
    else
      redis.call('HDEL', KEYS[i], 'em')
    end
    n = n + 1
  else
    redis.call('ZREM', KEYS[1], ARGV[i + 2])
  end
end
return n
"""

PURGE: Final = """
-- KEYS: an index, then for each member given its keys (KEYS_PER members each: the hash
-- first). ARGV: now (ms), keys per member, the field that holds the end, then the members.
-- Deletes each member whose end is at or before now (or whose hash is gone) with its keys;
-- re-scores the others. Returns how many were deleted.
local now, per, field = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local n = 0
for i = 4, #ARGV do
  local first = 2 + (i - 4) * per
  local ends = redis.call('HGET', KEYS[first], field)
  if not ends or tonumber(ends) <= now then
    redis.call('DEL', unpack(KEYS, first, first + per - 1))
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  else
    redis.call('ZADD', KEYS[1], ends, ARGV[i])
  end
end
return n
"""


def _names(values: tuple[str, ...]) -> bytes:
    return json.dumps(list(values), separators=(",", ":")).encode()


def _fields(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _at(raw: bytes | None) -> datetime | None:
    return None if raw is None else from_epoch_ms(int(raw))


def _principal_fields(record: SessionRecord | TokenRecord) -> list[EncodableT]:
    """The field pairs of whom a session or token acts for: ``sub``, ``grp``, and ``em`` when
    there is an email (absent for none)."""
    fields: list[EncodableT] = [b"sub", _encode(record.subject), b"grp", _names(record.groups)]
    if record.email is not None:
        fields += [b"em", _encode(record.email)]
    return fields


def _email(f: dict[bytes, bytes]) -> str | None:
    email = f.get(b"em")
    return None if email is None else _text(email)


def _session(digest: bytes, flat: Sequence[bytes]) -> SessionRecord:
    f = _fields(flat)
    return SessionRecord(
        digest=digest,
        subject=_text(f[b"sub"]),
        email=_email(f),
        groups=tuple(json.loads(f[b"grp"])),
        mfa=f[b"mfa"] == b"1",
        auth_time=from_epoch_ms(int(f[b"aut"])),
        created_at=from_epoch_ms(int(f[b"cat"])),
        last_seen=from_epoch_ms(int(f[b"seen"])),
        expires_at=from_epoch_ms(int(f[b"exp"])),
    )


def _token(digest: bytes, f: dict[bytes, bytes]) -> TokenRecord:
    return TokenRecord(
        token_id=_text(f[b"tid"]),
        digest=digest,
        subject=_text(f[b"sub"]),
        email=_email(f),
        groups=tuple(json.loads(f[b"grp"])),
        name=_text(f[b"nm"]),
        scopes=tuple(json.loads(f[b"sc"])),
        created_at=from_epoch_ms(int(f[b"cat"])),
        expires_at=from_epoch_ms(int(f[b"exp"])),
        last_used=_at(f.get(b"lu")),
        revoked_at=_at(f.get(b"rv")),
    )


def _member(token_id: str, digest: bytes) -> bytes:
    return _encode(token_id) + b"|" + digest.hex().encode()


def _member_digest(member: bytes) -> bytes:
    return bytes.fromhex(member.rsplit(b"|", 1)[1].decode())


class RedisIdentity:
    """``Sessions`` and ``ApiTokens`` of ``RedisStore``."""

    if TYPE_CHECKING:
        _client: Redis | RedisCluster
        _prefix: bytes
        _retention: timedelta

    def _signin_scripts(self) -> None:
        """Register the scripts (from ``RedisStore.__init__``)."""
        client = self._client
        self._put_session_script = LeanScript(client, PUT_SESSION)
        self._touch_session_script = LeanScript(client, TOUCH_SESSION)
        self._end_sessions_script = LeanScript(client, END_SESSIONS)
        self._put_token_script = LeanScript(client, PUT_TOKEN)
        self._use_token_script = LeanScript(client, USE_TOKEN)
        self._revoke_token_script = LeanScript(client, REVOKE_TOKEN)
        self._read_all_script = LeanScript(client, READ_ALL)
        self._refresh_script = LeanScript(client, REFRESH)
        self._purge_script = LeanScript(client, PURGE)

    def _signin_key(self, kind: bytes, name: bytes = b"") -> bytes:
        return self._prefix + kind + b":{signin}" + (b":" + name if name else b"")

    def _session_key(self, digest: bytes) -> bytes:
        return self._signin_key(b"ses", digest.hex().encode())

    def _token_key(self, digest: bytes) -> bytes:
        return self._signin_key(b"tok", digest.hex().encode())

    def _token_id_key(self, token_id: str) -> bytes:
        return self._signin_key(b"tok-id", _encode(token_id))

    async def _script(self, script: AsyncScript, keys: list[bytes], args: list[EncodableT]) -> Any:
        with translated():
            return await script(keys=keys, args=args)

    async def put_session(self, record: SessionRecord) -> None:
        """See ``Sessions.put_session``: one script."""
        fields: list[EncodableT] = [
            *_principal_fields(record),
            b"mfa", int(record.mfa),
            b"aut", to_epoch_ms(record.auth_time),
            b"cat", to_epoch_ms(record.created_at),
            b"seen", to_epoch_ms(record.last_seen),
            b"exp", to_epoch_ms(record.expires_at),
        ]  # fmt: skip
        keys = [
            self._session_key(record.digest),
            self._signin_key(b"ses-of", _encode(record.subject)),
            self._signin_key(b"ses-index"),
        ]
        args: list[EncodableT] = [
            record.digest.hex(),
            to_epoch_ms(record.created_at),
            to_epoch_ms(record.expires_at),
            *fields,
        ]
        if not await self._script(self._put_session_script, keys, args):
            raise DuplicateId("session already kept")

    async def touch_session(
        self, digest: bytes, *, now: datetime, idle_seconds: int
    ) -> SessionRecord | None:
        """See ``Sessions.touch_session``: one script."""
        now_ms = to_epoch_ms(now)
        idle_from = now_ms - idle_seconds * 1000
        flat = await self._script(
            self._touch_session_script, [self._session_key(digest)], [now_ms, idle_from]
        )
        return None if not flat else _session(digest, flat)

    async def end_session(self, digest: bytes) -> bool:
        """See ``Sessions.end_session``: one ``DEL`` (the subject's set drops it later)."""
        with translated():
            return bool(await self._client.delete(self._session_key(digest)))

    async def end_sessions_of(self, subject: str) -> int:
        """See ``Sessions.end_sessions_of``: read the subject's sessions, then one script
        deletes them all if they are still those (else read again)."""
        of = self._signin_key(b"ses-of", _encode(subject))
        for _ in range(_OPTIMISTIC_TRIES):
            with translated():
                members = cast("list[bytes]", await self._client.zrange(of, 0, -1))
            keys = [of, *(self._session_key(bytes.fromhex(m.decode())) for m in members)]
            ended = int(await self._script(self._end_sessions_script, keys, list(members)))
            if ended >= 0:
                return ended
        raise StorageUnavailable("The sessions kept changed while they were being ended.")

    async def put_token(self, record: TokenRecord) -> None:
        """See ``ApiTokens.put_token``: one script."""
        ended = record.revoked_at or record.expires_at
        keep_until_ms = to_epoch_ms(ended + self._retention)
        fields: list[EncodableT] = [
            b"tid", _encode(record.token_id),
            *_principal_fields(record),
            b"nm", _encode(record.name),
            b"sc", _names(record.scopes),
            b"cat", to_epoch_ms(record.created_at),
            b"exp", to_epoch_ms(record.expires_at),
            b"ku", keep_until_ms,
        ]  # fmt: skip
        if record.last_used is not None:
            fields += [b"lu", to_epoch_ms(record.last_used)]
        if record.revoked_at is not None:
            fields += [b"rv", to_epoch_ms(record.revoked_at)]
        keys = [
            self._token_key(record.digest),
            self._token_id_key(record.token_id),
            self._signin_key(b"tok-of", _encode(record.subject)),
            self._signin_key(b"tok-index"),
        ]
        args: list[EncodableT] = [
            _member(record.token_id, record.digest),
            record.digest.hex(),
            to_epoch_ms(record.created_at),
            keep_until_ms,
            *fields,
        ]
        if not await self._script(self._put_token_script, keys, args):
            raise DuplicateId("token already kept")

    async def use_token(self, digest: bytes, *, now: datetime) -> TokenRecord | None:
        """See ``ApiTokens.use_token``: one script."""
        flat = await self._script(
            self._use_token_script, [self._token_key(digest)], [to_epoch_ms(now)]
        )
        return None if not flat else _token(digest, _fields(flat))

    async def list_tokens(self, subject: str, *, now: datetime) -> list[TokenRecord]:
        """See ``ApiTokens.list_tokens``: the subject's set newest first, then one script
        reads each token (and drops the ones gone from the set)."""
        of = self._signin_key(b"tok-of", _encode(subject))
        with translated():
            members = cast("list[bytes]", await self._client.zrevrange(of, 0, -1))
        if not members:
            return []
        digests = [_member_digest(m) for m in members]
        keys = [of, *(self._token_key(d) for d in digests)]
        hashes = await self._script(self._read_all_script, keys, list(members))
        now_ms = to_epoch_ms(now)
        tokens = []
        for digest, flat in zip(digests, hashes, strict=True):
            fields = _fields(flat)
            if fields and int(fields[b"ku"]) > now_ms:
                tokens.append(_token(digest, fields))
        return tokens

    async def refresh_tokens(
        self, subject: str, *, email: str | None, groups: tuple[str, ...]
    ) -> int:
        """See ``ApiTokens.refresh_tokens``: the subject's set, then one script per
        ``_READ_CHUNK`` of its tokens."""
        of = self._signin_key(b"tok-of", _encode(subject))
        with translated():
            members = cast("list[bytes]", await self._client.zrange(of, 0, -1))
        refreshed = 0
        for start in range(0, len(members), _READ_CHUNK):
            chunk = members[start : start + _READ_CHUNK]
            keys = [of, *(self._token_key(_member_digest(m)) for m in chunk)]
            args: list[EncodableT] = [
                _names(groups),
                b"1" if email is not None else b"0",
                _encode(email or ""),
                *chunk,
            ]
            refreshed += int(await self._script(self._refresh_script, keys, args))
        return refreshed

    async def all_tokens(self, *, now: datetime, limit: int) -> list[TokenRecord]:
        """See ``ApiTokens.all_tokens``: the members of ``tok-index`` (every token kept), read
        by one script per ``_READ_CHUNK`` of them, then sorted newest first."""
        index = self._signin_key(b"tok-index")
        with translated():
            members = cast("list[bytes]", await self._client.zrange(index, 0, -1))
        now_ms = to_epoch_ms(now)
        tokens = []
        for start in range(0, len(members), _READ_CHUNK):
            chunk = members[start : start + _READ_CHUNK]
            digests = [_member_digest(m) for m in chunk]
            keys = [index, *(self._token_key(d) for d in digests)]
            hashes = await self._script(self._read_all_script, keys, list(chunk))
            for digest, flat in zip(digests, hashes, strict=True):
                fields = _fields(flat)
                if fields and int(fields[b"ku"]) > now_ms:
                    tokens.append(_token(digest, fields))
        tokens.sort(key=lambda t: (t.created_at, t.token_id), reverse=True)
        return tokens[: max(limit, 0)]

    async def revoke_token(self, token_id: str, *, now: datetime, subject: str | None) -> bool:
        """See ``ApiTokens.revoke_token``: read the token's digest, then one script revokes
        it if the id still names that token (else read again)."""
        pointer = self._token_id_key(token_id)
        now_ms = to_epoch_ms(now)
        keep_until_ms = to_epoch_ms(now + self._retention)
        for _ in range(_OPTIMISTIC_TRIES):
            with translated():
                raw = cast("bytes | None", await self._client.get(pointer))
            if raw is None:
                return False
            digest = bytes.fromhex(raw.decode())
            keys = [pointer, self._token_key(digest), self._signin_key(b"tok-index")]
            args: list[EncodableT] = [
                raw,
                now_ms,
                keep_until_ms,
                b"" if subject is None else _encode(subject),
                0 if subject is None else 1,
                _member(token_id, digest),
            ]
            revoked = int(await self._script(self._revoke_token_script, keys, args))
            if revoked >= 0:
                return revoked == 1
        raise StorageUnavailable("The token changed while it was being revoked.")

    async def _purge_signin(self, now_ms: int, limit: int) -> None:
        """Delete up to ``limit`` sessions past their end and tokens past retention, by the
        two indexes (``purge_expired``)."""
        sessions = self._signin_key(b"ses-index")
        tokens = self._signin_key(b"tok-index")
        with translated():
            ended = cast(
                "list[bytes]",
                await self._client.zrangebyscore(sessions, "-inf", now_ms, start=0, num=limit),
            )
            gone = cast(
                "list[bytes]",
                await self._client.zrangebyscore(tokens, "-inf", now_ms, start=0, num=limit),
            )
        if ended:
            keys = [sessions, *(self._session_key(bytes.fromhex(m.decode())) for m in ended)]
            await self._script(self._purge_script, keys, [now_ms, 1, b"exp", *ended])
        if gone:
            keys = [tokens]
            for member in gone:
                token_id = _text(member.rsplit(b"|", 1)[0])
                keys += [self._token_key(_member_digest(member)), self._token_id_key(token_id)]
            await self._script(self._purge_script, keys, [now_ms, 2, b"ku", *gone])
