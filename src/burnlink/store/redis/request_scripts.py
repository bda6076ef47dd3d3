"""The Lua scripts of requests in the Redis store (``burnlink.store.redis.requests``), one per
atomic rule.

A request's hash ``{prefix}q:{<id>}`` shares its hash tag with the keys of the secret of the
same id, its answer, so ``ANSWER_REQUEST`` closes the one and creates the other in one script
on one shard: it checks the request, then runs ``CREATE``'s own body (``scripts.CREATE_BODY``)
over the secret's keys, which follow the request's key in ``KEYS`` and its two arguments in
``ARGV``. Every time comparison uses the ``now`` the application passes in (milliseconds).
"""

from __future__ import annotations

from typing import Final

from burnlink.store.redis.scripts import _PRELUDE, CREATE_BODY

__all__ = ["ANSWER_REQUEST", "CREATE_REQUEST", "EXPIRE_REQUEST"]

_OUTBOX: Final = """
-- Add ARGV[from..] to the outbox stream, each stamped 't' with the server's time in
-- microseconds (only to merge a cluster's streams in order).
local function outbox(stream, from)
  local now = redis.call('TIME')
  local t = now[1] .. string.format('%06d', tonumber(now[2]))
  for i = from, #ARGV do redis.call('XADD', stream, '*', 'r', ARGV[i], 't', t) end
end
"""

CREATE_REQUEST: Final = (
    _OUTBOX
    + """
-- KEYS: the request, the outbox stream, then on a single node the index of open requests.
-- ARGV: keep until (ms), expires at (ms), the id for the index, number of field pairs, the
-- pairs, then the outbox records. Returns 0 when the id is taken (keeping nothing), else 1.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], unpack(ARGV, 5, 4 + 2 * n))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
if KEYS[3] then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3]) end
outbox(KEYS[2], 5 + 2 * n)
return 1
"""
)

EXPIRE_REQUEST: Final = (
    _OUTBOX
    + """
-- KEYS: the request, the outbox stream. ARGV: now (ms), then the outbox records. Marks an
-- open request past its expiry as expired and keeps the records: 1; else nothing: 0 while
-- it is open and not due, 2 when it is not open (or gone).
local r = redis.call('HMGET', KEYS[1], 'st', 'exp')
if r[1] ~= 'open' then return 2 end
if tonumber(r[2]) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'st', 'expired')
outbox(KEYS[2], 2)
return 1
"""
)

_ANSWER_CHECK: Final = """
-- KEYS: the request, then CREATE's keys. ARGV: now (ms), keep the request until at least
-- (ms), then CREATE's arguments. Returns 'gone', 'taken' or 'expired' (changing and keeping
-- nothing), 'dup' if the secret's id is taken, else what CREATE returns.
local r = redis.call('HMGET', KEYS[1], 'st', 'exp', 'kpu')
if not r[1] then return 'gone' end
if r[1] == 'answered' then return 'taken' end
if r[1] ~= 'open' or tonumber(r[2]) <= tonumber(ARGV[1]) then return 'expired' end
if redis.call('EXISTS', K[1], K[2]) > 0 then return 'dup' end
redis.call('HSET', KEYS[1], 'st', 'answered', 'aat', ARGV[1])
if tonumber(r[3]) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'kpu', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
"""

# CREATE's prelude and body read KEYS and ARGV; here they read K and A, the same lists
# without the request's key and its two arguments.
ANSWER_REQUEST: Final = (
    """
local K, A = {}, {}
for i = 2, #KEYS do K[i - 1] = KEYS[i] end
for i = 3, #ARGV do A[i - 2] = ARGV[i] end
"""
    + _PRELUDE.replace("ARGV", "A")
    + _ANSWER_CHECK
    + CREATE_BODY.replace("KEYS", "K").replace("ARGV", "A")
)
