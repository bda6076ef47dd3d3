"""The Lua scripts of the Redis store (``burnlink.store.redis.store``), one per atomic rule, and one
that reads a receipt with its events.

Each script touches only keys that share one hash tag: a secret's keys (live, receipt,
events, code, and on a cluster its outbox stream; see the store's module docstring) or one
counter key. On a single node the scripts that keep events also write the store's one
outbox stream, and ``CREATE`` counts the create's rate counters before it inserts. Every time
comparison uses the ``now`` the application passes in as integer milliseconds; ``TIME`` is
read only to stamp outbox entries with the order a cluster's streams are merged in
(``keep``), never to decide anything.
"""

from __future__ import annotations

from typing import Final

# Helpers shared by the scripts. Lua numbers are doubles: integers below 2**53 (every
# millisecond timestamp) are exact, and ``ms`` prints them without an exponent.
_PRELUDE: Final = """
local function ms(x) return string.format('%.0f', x) end

local function same(a, b)
  if not a or not b or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    diff = bit.bor(diff, bit.bxor(string.byte(a, i), string.byte(b, i)))
  end
  return diff == 0
end

-- Count one more event of this kind on the receipt (field 'n:<kind>'); returns the count.
local function counted(receipt, kind)
  return redis.call('HINCRBY', receipt, 'n:' .. kind, 1)
end

-- Keep the events in items, each {receipt line ('' for none), kind, outbox record}. A line
-- goes on the receipt while it exists and its kind is under the cap; every record goes into
-- the outbox stream, stamped 't' with the server's time in microseconds (only to merge a
-- cluster's streams in order). A line may carry its viewer after a newline (compact JSON
-- holds none of its own): the list gets the part before, the receipt hash the viewer as
-- field 'v:<the line's position in the list, from 1>'.
local function keep_items(receipt, events, stream, items, cap, retention)
  if #items == 0 then return end
  local listed = redis.call('EXISTS', receipt) == 1
  local pushed = false
  local now = redis.call('TIME')
  local t = now[1] .. string.format('%06d', tonumber(now[2]))
  for _, item in ipairs(items) do
    local line, kind, record = item[1], item[2], item[3]
    if listed and line ~= '' and counted(receipt, kind) <= cap then
      local cut = string.find(line, '\\n', 1, true)
      if cut then
        local n = redis.call('RPUSH', events, string.sub(line, 1, cut - 1))
        redis.call('HSET', receipt, 'v:' .. n, string.sub(line, cut + 1))
      else
        redis.call('RPUSH', events, line)
      end
      pushed = true
    end
    redis.call('XADD', stream, '*', 'r', record, 't', t)
  end
  if pushed then
    local r = redis.call('HMGET', receipt, 'exp', 'end')
    redis.call('PEXPIREAT', events, ms(tonumber(r[2] or r[1]) + retention))
  end
end

-- Keep the events given in ARGV from index i on: their count, then for each its receipt
-- line ('' for none), its kind and its outbox record (see keep_items).
local function keep(receipt, events, stream, i, cap, retention)
  local items = {}
  for j = 0, tonumber(ARGV[i]) - 1 do
    items[j + 1] = {ARGV[i + 1 + 3 * j], ARGV[i + 2 + 3 * j], ARGV[i + 3 + 3 * j]}
  end
  keep_items(receipt, events, stream, items, cap, retention)
end

-- Enter a secret in its owner's set of secrets, scored by its creation; the set lives at
-- least as long as the receipt (ttl ms, relative: the two clocks need not agree).
local function own(key, created, member, ttl)
  redis.call('ZADD', key, created, member)
  if ttl > 0 and redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end

local function end_receipt(receipt, events, at, reason, retention)
  if redis.call('EXISTS', receipt) == 1 then
    redis.call('HSET', receipt, 'end', ms(at), 'why', reason)
    local keep = ms(at + retention)
    redis.call('PEXPIREAT', receipt, keep)
    redis.call('PEXPIREAT', events, keep)
  end
end
"""

CREATE_BODY: Final = """
-- KEYS: live, receipt, events, code, outbox, then on a single node the expiry index, the
-- rate counters to count first and, for an owned secret, the owner's set of secrets. ARGV:
-- live expiry, retention (ms), number of live field pairs, number of receipt field pairs, cap
-- on events of a kind, the id to enter in the expiry index (empty on a cluster, where the
-- index is on another shard), the creation time (ms) to score it by in the owner's set
-- (empty: no such key), each counter's cost, time to live (ms) and limit (-1: none), live
-- pairs, receipt pairs, then the events (see keep). Returns 0 when the id is taken
-- (counting and keeping nothing), else {1 when created or 0 when a counter passed its limit
-- (then keeping only the counts), the counters' totals}.
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
local indexed = ARGV[6] ~= ''
local owned = ARGV[7] ~= ''
local c0 = indexed and 7 or 6
local last = owned and #KEYS - 1 or #KEYS
local totals, over = {}, false
for i = c0, last do
  local a = 8 + 3 * (i - c0)
  local cost, total = tonumber(ARGV[a]), 0
  if cost == 0 then
    total = tonumber(redis.call('GET', KEYS[i]) or '0')
  else
    total = redis.call('INCRBY', KEYS[i], cost)
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[a + 1]) end
  end
  totals[i - c0 + 1] = total
  local most = tonumber(ARGV[a + 2])
  if most >= 0 and total > most then over = true end
end
if over then return {0, totals} end
local base = 8 + 3 * (last - c0 + 1)
local live, receipt = tonumber(ARGV[3]), tonumber(ARGV[4])
local first = base + 2 * (live + receipt)
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], unpack(ARGV, base, base - 1 + 2 * live))
redis.call('HSET', KEYS[2], unpack(ARGV, base + 2 * live, first - 1))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[2], ms(tonumber(ARGV[1]) + tonumber(ARGV[2])))
keep(KEYS[2], KEYS[3], KEYS[5], first, tonumber(ARGV[5]), tonumber(ARGV[2]))
if indexed then redis.call('ZADD', KEYS[6], 'NX', ARGV[1], ARGV[6]) end
if owned then
  own(KEYS[#KEYS], ARGV[7], ARGV[6], tonumber(ARGV[1]) + tonumber(ARGV[2]) - tonumber(ARGV[7]))
end
return {1, totals}
"""
"""The body of ``CREATE`` after the prelude (``ANSWER_REQUEST`` runs it too)."""

CREATE: Final = _PRELUDE + CREATE_BODY


CONSUME: Final = (
    _PRELUDE
    + """
-- KEYS: live, receipt, events, code, outbox. ARGV: access digest, now, retention (ms), the
-- cap on events of a kind, then the events (see keep). Returns {envelope, views_left} or
-- nil (keeping nothing); the last view deletes the secret and its code.
local now = tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[1], 'exp', 'acc', 'vl', 'env')
if not f[1] or tonumber(f[1]) <= now then return false end
if not same(f[2], ARGV[1]) then return false end
if tonumber(f[3]) <= 0 then return false end
local left = redis.call('HINCRBY', KEYS[1], 'vl', -1)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HINCRBY', KEYS[2], 'vu', 1) end
keep(KEYS[2], KEYS[3], KEYS[5], 5, tonumber(ARGV[4]), tonumber(ARGV[3]))
if left <= 0 then
  redis.call('DEL', KEYS[1], KEYS[4])
  end_receipt(KEYS[2], KEYS[3], now, 'viewed', tonumber(ARGV[3]))
end
return {f[4], left}
"""
)

REVEAL: Final = (
    _PRELUDE
    + """
-- KEYS: live, receipt, events, code, outbox, then the rate counters to count first (only on a
-- single node). ARGV: access digest, now, retention (ms), cap on events of a kind, take (1/0),
-- the no-rules policy prefix, the view's receipt line ('' for none), its kind, its outbox
-- record's head and tail (max_views goes between), then each counter's cost, time to live
-- (ms) and limit (-1: none). Returns {the counters' totals, nil} when one passed its limit
-- (reading nothing more), else {totals, the peek fields (as HMGET), envelope or nil, views
-- left}: with take, a live secret with this access digest, views left, no passphrase and a
-- policy without rules (starting with the prefix, or none) has one view taken as CONSUME
-- takes it, keeping the view's event; otherwise nothing changes but the counts.
local now = tonumber(ARGV[2])
local totals, over = {}, false
for i = 6, #KEYS do
  local a = 11 + 3 * (i - 6)
  local cost, total = tonumber(ARGV[a]), 0
  if cost == 0 then
    total = tonumber(redis.call('GET', KEYS[i]) or '0')
  else
    total = redis.call('INCRBY', KEYS[i], cost)
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[a + 1]) end
  end
  totals[i - 5] = total
  local most = tonumber(ARGV[a + 2])
  if most >= 0 and total > most then over = true end
end
if over then return {totals, false} end
local f = redis.call('HMGET', KEYS[1], 'exp', 'acc', 'cat', 'mv', 'vl', 'al', 'pk', 'pi', 'ps',
  'pd', 'pol')
if ARGV[5] ~= '1' or not f[1] or tonumber(f[1]) <= now or not same(f[2], ARGV[1])
    or tonumber(f[5]) <= 0 or f[7]
    or (f[11] and string.sub(f[11], 1, #ARGV[6]) ~= ARGV[6]) then
  return {totals, f, false, 0}
end
local envelope = redis.call('HGET', KEYS[1], 'env')
local left = redis.call('HINCRBY', KEYS[1], 'vl', -1)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HINCRBY', KEYS[2], 'vu', 1) end
local record = ARGV[9] .. f[4] .. ARGV[10]
keep_items(KEYS[2], KEYS[3], KEYS[5], {{ARGV[7], ARGV[8], record}}, tonumber(ARGV[4]),
  tonumber(ARGV[3]))
if left <= 0 then
  redis.call('DEL', KEYS[1], KEYS[4])
  end_receipt(KEYS[2], KEYS[3], now, 'viewed', tonumber(ARGV[3]))
end
return {totals, f, envelope, left}
"""
)

RECORD_FAILURE: Final = (
    _PRELUDE
    + """
-- KEYS: live, receipt, events, code, outbox. ARGV: now, retention, locks (1/0), the cap on
-- events of a kind, then the events (see keep). Returns nil if gone, else {counted (1/0),
-- attempts left}. Counts (and keeps the events) only if this attempt is the last (1 left)
-- exactly when ARGV[3] says so; at zero the secret and its code are deleted.
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'exp', 'al')
if not f[1] or tonumber(f[1]) <= now then return false end
local left = tonumber(f[2])
if (left == 1) ~= (ARGV[3] == '1') then return {0, left} end
left = redis.call('HINCRBY', KEYS[1], 'al', -1)
keep(KEYS[2], KEYS[3], KEYS[5], 5, tonumber(ARGV[4]), tonumber(ARGV[2]))
if left <= 0 then
  redis.call('DEL', KEYS[1], KEYS[4])
  end_receipt(KEYS[2], KEYS[3], now, 'locked', tonumber(ARGV[2]))
end
return {1, left}
"""
)

BURN: Final = (
    _PRELUDE
    + """
-- KEYS: live, receipt, events, code, outbox. ARGV: now, retention, end reason (burned or
-- locked), the cap on events of a kind, then the events (see keep). Returns 1 if a live
-- secret was ended (with its code and keeping the events), else 0 (keeping nothing).
local now = tonumber(ARGV[1])
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp or tonumber(exp) <= now then return 0 end
keep(KEYS[2], KEYS[3], KEYS[5], 5, tonumber(ARGV[4]), tonumber(ARGV[2]))
redis.call('DEL', KEYS[1], KEYS[4])
end_receipt(KEYS[2], KEYS[3], now, ARGV[3], tonumber(ARGV[2]))
return 1
"""
)

EXPIRE: Final = (
    _PRELUDE
    + """
-- KEYS: live, receipt, events, code. ARGV: now, retention.
-- Returns {0, 0} if there is no live secret, {1, expires_at} if it was expired and ended now,
-- {2, expires_at} if it is still alive. A code of a secret that is not alive is deleted.
local now = tonumber(ARGV[1])
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp then
  redis.call('DEL', KEYS[4])
  return {0, 0}
end
exp = tonumber(exp)
if exp > now then return {2, exp} end
redis.call('DEL', KEYS[1], KEYS[4])
end_receipt(KEYS[2], KEYS[3], exp, 'expired', tonumber(ARGV[2]))
return {1, exp}
"""
)

RECORD: Final = (
    _PRELUDE
    + """
-- KEYS: receipt, events, outbox. ARGV: cap on events of a kind, retention, then the events
-- (see keep): lines go on the receipt if it exists, records into the outbox whatever it is.
keep(KEYS[1], KEYS[2], KEYS[3], 3, tonumber(ARGV[1]), tonumber(ARGV[2]))
return 1
"""
)

ACK: Final = """
-- KEYS: an outbox stream. ARGV: entry ids in it. Deletes them; returns 1 if the stream is
-- now empty (and deletes it), else 0.
if #ARGV > 0 then redis.call('XDEL', KEYS[1], unpack(ARGV)) end
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

PUT_CODE: Final = (
    _PRELUDE
    + """
-- KEYS: live, code. ARGV: code digest, now, code expiry, tries, resend after, max codes.
-- Returns 1 if the code was (re)placed, 0 if the secret is gone, 2 if the current code (live
-- or not) is too recent or is the last allowed and still live, 3 if the last allowed is spent.
-- The code key lives as long as its secret, so a spent code still counts.
local now = tonumber(ARGV[2])
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp or tonumber(exp) <= now then return 0 end
local c = redis.call('HMGET', KEYS[2], 'at', 'exp', 't', 'n')
local sent = 0
if c[1] then
  if tonumber(c[1]) > tonumber(ARGV[5]) then return 2 end
  sent = tonumber(c[4] or '1')
  if sent >= tonumber(ARGV[6]) then
    if tonumber(c[2]) > now and tonumber(c[3]) > 0 then return 2 end
    return 3
  end
end
redis.call('HSET', KEYS[2], 'd', ARGV[1], 'at', ARGV[2], 'exp', ARGV[3], 't', ARGV[4],
  'n', sent + 1)
redis.call('PEXPIREAT', KEYS[2], ms(tonumber(exp)))
return 1
"""
)

CHECK_CODE: Final = (
    _PRELUDE
    + """
-- KEYS: live, code. ARGV: code digest, now.
-- Returns nil without a live code (or a live secret), else {matched (1/0), tries left}.
-- A match deletes the code; a mismatch takes a try (a used-up code stays, for PUT_CODE).
local now = tonumber(ARGV[2])
local c = redis.call('HMGET', KEYS[2], 'd', 'exp', 't')
if not c[1] or not c[2] or not c[3] then return false end
local left = tonumber(c[3])
if tonumber(c[2]) <= now or left <= 0 then return false end
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp or tonumber(exp) <= now then return false end
if same(c[1], ARGV[1]) then
  redis.call('DEL', KEYS[2])
  return {1, left}
end
left = redis.call('HINCRBY', KEYS[2], 't', -1)
return {0, left}
"""
)

OWN: Final = (
    _PRELUDE
    + """
-- KEYS: the owner's set of secrets. ARGV: creation time (ms), id, time to live (ms). On a
-- cluster, beside the create (the set is on the owner's shard).
own(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))
return 1
"""
)

RECEIPT: Final = """
-- KEYS: receipt, events. Reads only. Returns {receipt fields and values, flat; events}.
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
"""

HITS: Final = """
-- KEYS: counters. ARGV: each counter's cost and time to live (ms), in KEYS' order. Returns
-- each window's total after adding its cost; cost 0 only reads. A counter without a TTL gets
-- one, relative to the server's clock.
local totals = {}
for i, key in ipairs(KEYS) do
  local cost = tonumber(ARGV[2 * i - 1])
  if cost == 0 then
    totals[i] = tonumber(redis.call('GET', key) or '0')
  else
    totals[i] = redis.call('INCRBY', key, cost)
    if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
  end
end
return totals
"""
