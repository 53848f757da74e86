-- SPIKE (not built by make): the cluster store's put of one 1:1 message,
-- atomic in one EVALSHA: dedup check, quota, id, append to the receiver's
-- log (and the author's, for own copies), client id remembered, contacts,
-- and the live hand-off to every node that holds a device of the receiver
-- (or, for an own copy, of the author). Redis 7.0, single instance.
-- KEYS: 1 u:{B}:log  2 u:{B}  3 u:{A}:log  4 u:{A}:cid:<sdev>  5 u:{B}:on
--       6 u:{A}:on   7 chat:ids  8 chat:alive  9 u:{A}:ct  10 u:{B}:ct
-- ARGV: 1 sender 2 receiver 3 sdev 4 type 5 cid 6 body 7 quota(0/1)
--       8 max_messages 9 max_bytes 10 own(0/1) 11 dedup_ms 12 contacts(0/1)
-- Returns {0, id} stored, {1, id} a resend (cid known), {-1, 0} quota full.
local cid = ARGV[5]
if cid ~= '0' then
  local old = redis.call('ZSCORE', KEYS[4], cid)
  if old then return {1, old} end
end
local body = ARGV[6]
if ARGV[7] == '1' then
  local maxm, maxb = tonumber(ARGV[8]), tonumber(ARGV[9])
  if maxm > 0 and redis.call('ZCARD', KEYS[1]) >= maxm then return {-1, 0} end
  if maxb > 0 and (tonumber(redis.call('HGET', KEYS[2], 'qb') or '0') + #body) > maxb then
    return {-1, 0}
  end
end
-- one counter, never below the milliseconds since 2024 x 1000 (as store_next_id)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local floor = (now - 1704067200000) * 1000
local id = redis.call('INCR', KEYS[7])
if id < floor then redis.call('SET', KEYS[7], floor); id = floor end
-- header: sender u32, receiver u32, group u32, type u8, sdev u32, ts i64
local hdr = struct.pack('>I4I4I4BI4l', ARGV[1], ARGV[2], 0, ARGV[4], ARGV[3], now)
-- a log is a sorted set: score the id, member the id (8 bytes, so members
-- are unique), the header and the body
local entry = struct.pack('>I8', id) .. hdr .. body
redis.call('ZADD', KEYS[1], id, entry)
redis.call('HINCRBY', KEYS[2], 'qb', #body)
if ARGV[10] == '1' then redis.call('ZADD', KEYS[3], id, entry) end
if cid ~= '0' then
  redis.call('ZADD', KEYS[4], id, cid)
  -- at most 4,096 per device, none older than the dedup window
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -4097)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ((now - tonumber(ARGV[11]) - 1704067200000) * 1000))
  redis.call('PEXPIRE', KEYS[4], ARGV[11])
end
if ARGV[12] == '1' then
  redis.call('SADD', KEYS[9], ARGV[2]); redis.call('SADD', KEYS[10], ARGV[1])
end
-- live hand-off: one PUBLISH per node that holds a device (node alive = its
-- heartbeat in chat:alive is in the future; stale entries are dropped)
local msg = struct.pack('>I4', ARGV[2]) .. entry
local function handoff(onkey, user)
  for _, n in ipairs(redis.call('SMEMBERS', onkey)) do
    local exp = redis.call('HGET', KEYS[8], n)
    if exp and tonumber(exp) > now then
      redis.call('PUBLISH', 'chat:node:' .. n, msg)
    else
      redis.call('SREM', onkey, n)
    end
  end
end
handoff(KEYS[5], ARGV[2])
if ARGV[10] == '1' then handoff(KEYS[6], ARGV[1]) end
return {0, id}
