#!lua
-- gput.lua: store_put of a group message (receiver 0; docs/CLUSTER.md 2.4,
-- 2.7), atomic: membership, dedup by client id, id, the group's log (one
-- entry for every member), the client id, and the hand-off to every live
-- node (each fans out to its members from its copy of the group).
--
-- KEYS  1 g:{G}:m   2 g:{G}:log   3 u:{A}:cid:<sdev>   4 chat:ids
--       5 chat:alive   6 chat:gdirty
-- ARGV  1 sender A u32   2 group G u32 (not 0)   3 sdev u32   4 type u8
--       (1..255)   5 cid u64 (decimal; 0: none)   6 body (bytes)
--       7 dedup_ms (> 0)   8 again: the message's id (0: a new one)
--       9 ts of the again message, unix ms (0 when ARGV 8 is 0)
-- Reply {status, id, how}: as put.lua ({0, id, 0} stored, {0, id, 1} a
--   resend of a known cid, {0, id, 2} again and there already), or
--   {-10, 0, 0} STORE_GNOGROUP (no such group), {-11, 0, 0}
--   STORE_GNOTMEMBER (A is not a member). Never a quota refusal: group
--   messages count against no one's quota (--offline-ttl bounds them).
-- Stored: the entry (receiver 0, group G) in g:{G}:log, score its id;
--   SADD chat:gdirty G (the janitor deletes what every member has).
-- Hand-off (new messages only): "\3" .. G u32 .. entry on chat:node:<N>
--   for every N of chat:alive whose expiry is after now.
-- Cost: O(log n) commands plus one HGETALL of chat:alive and a PUBLISH per
--   live node.
--@include common

local A = num(1, 'sender', U32)
local G = num(2, 'group', U32)
local sdev = num(3, 'sdev', U32)
local typ = num(4, 'type', 255)
local cid = u64s(5, 'cid')
local body = ARGV[6] or fail('body: missing')
local dedup = num(7, 'dedup_ms', MAX_ID)
local again = num(8, 'again id', MAX_ID)
local again_ts = num(9, 'again ts', MAX_ID)
if G == 0 or typ == 0 then fail('group and type must not be 0') end
if #KEYS ~= 6 then fail('6 keys expected') end

local now = now_ms()
if not redis.call('ZSCORE', KEYS[1], S(A)) then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {-10, 0, 0} end
  return {-11, 0, 0}
end
if again > 0 then
  if #redis.call('ZRANGE', KEYS[2], S(again), S(again), 'BYSCORE', 'LIMIT', 0, 1) > 0 then
    return {0, again, 2}
  end
elseif cid ~= '0' then
  local first = redis.call('ZSCORE', KEYS[3], cid)
  if first and tonumber(first) >= id_floor(now - dedup) then
    return {0, tonumber(first), 1}
  end
end

local id, ts = again, again_ts
if again == 0 then
  ts = now
  id = redis.call('INCR', KEYS[4])
  local floor = id_floor(now)
  if id < floor then
    redis.call('SET', KEYS[4], S(floor))
    id = floor
  end
end
local e = entry(id, A, 0, G, typ, sdev, ts, body)
redis.call('ZADD', KEYS[2], S(id), e)
redis.call('SADD', KEYS[6], S(G))
if cid ~= '0' then
  redis.call('ZADD', KEYS[3], 'NX', S(id), cid)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -4097)
  if id % 64 == 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. S(id_floor(now - dedup)))
  end
  redis.call('PEXPIRE', KEYS[3], S(dedup))
end
if again == 0 then
  local alive = redis.call('HGETALL', KEYS[5])
  local msg = struct.pack('>BI4', 3, G) .. e
  for i = 1, #alive, 2 do
    if tonumber(alive[i + 1]) > now then
      redis.call('PUBLISH', 'chat:node:' .. alive[i], msg)
    end
  end
end
return {0, id, 0}
