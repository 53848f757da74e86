#!lua
-- put.lua: store_put of a 1:1 message (docs/CLUSTER.md 2.4, 2.7), atomic:
-- dedup by client id, quota, id, the receiver's log, the author's own copy,
-- the client id, contacts, history, and the hand-off to the live nodes.
--
-- KEYS  1 u:{B}:log   2 u:{B}   3 u:{A}:log   4 u:{A}:cid:<sdev>
--       5 u:{B}:on    6 u:{A}:on   7 chat:ids   8 chat:alive
--       9 u:{A}:ct   10 u:{B}:ct  11 cv:{a}:{b} (a = min(A, B), b = max)
--       (A = sender, B = receiver; KEYS 9-11 are touched only with their
--       flags, but always given)
-- ARGV  1 sender A u32          2 receiver B u32 (not 0)
--       3 sdev u32 (the sending device)   4 type u8 (1..255)
--       5 cid u64 (decimal; 0: none)      6 body (bytes, any length)
--       7 quota 0|1 (check B's limits)    8 max_messages (0: none)
--       9 max_bytes (0: none)            10 own 0|1 (A has other CONV
--      devices: a copy goes to A's log; ignored when A = B)
--      11 dedup_ms (--dedup-window, > 0) 12 contacts 0|1 (--auth on)
--      13 history 0|1 (--history-ttl set: a copy in cv:{a}:{b})
--      14 group u32 (0; else a group message's copy for B alone)
--      15 again: the message's id (0: a new message)
--      16 ts of the again message, unix ms (0 when ARGV 15 is 0)
-- Reply {status, id, how}:
--   {0, id, 0}   stored now with this id (and handed off)
--   {0, id, 1}   a resend: device sdev of A sent cid within the window as
--                message id; nothing stored or handed off
--   {0, id, 2}   again, and B's log has id already: nothing done
--   {-1, 0, 0}   STORE_EQUOTA: B's quota is full; nothing stored
-- Errors: CHATARG <what> (a malformed argument; nothing written).
-- Stored: the entry id u64 + header + body (lib/common.lua) with ts =
-- Redis's TIME in ms for a new message, score id, in u:{B}:log (and
-- u:{A}:log for an own copy); u:{B} qn += 1, qb += #body; the cid in
-- u:{A}:cid:<sdev> (score id; at most 4,096, none older than the window,
-- PEXPIRE dedup_ms). A new id = INCR chat:ids, raised to
-- (now - 2024-01-01) x 1000 when below.
-- Hand-off (new messages only, not again): "\1" .. B u32 .. entry on
-- chat:node:<N> for each live node N of u:{B}:on, and "\1" .. A u32 ..
-- entry to the live nodes of u:{A}:on for an own copy; dead nodes are
-- removed from the sets (lib/common.lua live_nodes).
-- Cost: about 10-20 commands; O(log n) each, plus the nodes of the two
-- users and, every 64th id, the expired client ids removed.
--@include common

local A = num(1, 'sender', U32)
local B = num(2, 'receiver', U32)
local sdev = num(3, 'sdev', U32)
local typ = num(4, 'type', 255)
local cid = u64s(5, 'cid')
local body = ARGV[6] or fail('body: missing')
local quota = flag(7, 'quota')
local maxm = num(8, 'max_messages', MAX_ID)
local maxb = num(9, 'max_bytes', MAX_ID)
local own = flag(10, 'own') and A ~= B
local dedup = num(11, 'dedup_ms', MAX_ID)
local contacts = flag(12, 'contacts')
local history = flag(13, 'history')
local grp = num(14, 'group', U32)
local again = num(15, 'again id', MAX_ID)
local again_ts = num(16, 'again ts', MAX_ID)
if B == 0 or typ == 0 then fail('receiver and type must not be 0') end
if #KEYS ~= 11 then fail('11 keys expected') end

local now = now_ms()

if again > 0 then
  if #redis.call('ZRANGE', KEYS[1], S(again), S(again), 'BYSCORE', 'LIMIT', 0, 1) > 0 then
    return {0, again, 2}
  end
elseif cid ~= '0' then
  local first = redis.call('ZSCORE', KEYS[4], cid)
  if first then
    first = tonumber(first)
    if first >= id_floor(now - dedup) then return {0, first, 1} end
  end
end

local len = #body
if quota then
  local q = redis.call('HMGET', KEYS[2], 'qn', 'qb')
  local n, b = tonumber(q[1] or '0'), tonumber(q[2] or '0')
  if (maxm > 0 and n + 1 > maxm) or (maxb > 0 and b + len > maxb) then
    return {-1, 0, 0}
  end
end

local id, ts = again, again_ts
if again == 0 then
  ts = now
  id = redis.call('INCR', KEYS[7])
  local floor = id_floor(now)
  if id < floor then
    redis.call('SET', KEYS[7], S(floor))
    id = floor
  end
end

local e = entry(id, A, B, grp, typ, sdev, ts, body)
redis.call('ZADD', KEYS[1], S(id), e)
redis.call('HINCRBY', KEYS[2], 'qn', 1)
redis.call('HINCRBY', KEYS[2], 'qb', len)
if own and (again == 0 or
    #redis.call('ZRANGE', KEYS[3], S(again), S(again), 'BYSCORE', 'LIMIT', 0, 1) == 0) then
  redis.call('ZADD', KEYS[3], S(id), e)
end
if cid ~= '0' then
  redis.call('ZADD', KEYS[4], 'NX', S(id), cid)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -4097)
  if id % 64 == 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. S(id_floor(now - dedup)))
  end
  redis.call('PEXPIRE', KEYS[4], S(dedup))
end
if contacts and grp == 0 and A ~= B and A ~= 0 then
  redis.call('SADD', KEYS[9], S(B))
  redis.call('SADD', KEYS[10], S(A))
end
if history and grp == 0 then redis.call('ZADD', KEYS[11], S(id), e) end

if again == 0 then
  publish_all(live_nodes(KEYS[5], KEYS[8], B, now), struct.pack('>BI4', 1, B) .. e)
  if own then
    publish_all(live_nodes(KEYS[6], KEYS[8], A, now), struct.pack('>BI4', 1, A) .. e)
  end
end
return {0, id, 0}
