#!lua flags=no-writes
-- presence.lua: store_presence (docs/CLUSTER.md 2.4, 2.7), read-only: for
-- users X1.. asked by U, when each was last seen and whether U may see it.
--
-- KEYS  1 u:{U}:ct   2 u:{U}:g   then per user: u:{Xi}, u:{Xi}:g
--       (at most 256 users); computed: u:{Xi}:on and chat:alive (read
--       only: a dead node's entry is skipped here, removed by writers)
-- ARGV  1 user U u32   2 check 0|1   3.. X1, X2, ... u32
-- Reply {a1, s1, o1, a2, s2, o2, ...}: per user asked, in order: allowed
--   (1: U may see it: not check, or X is U, or X is in U's contacts, or they
--   share a group), last seen (the latest seen of X's devices, unix ms; 0:
--   none) and online (1: a node whose heartbeat is current holds a
--   connection of X).
-- Cost: O(users x (devices + min(groups of U, groups of X))).
--@include common
--@include devices

local U = num(1, 'user', U32)
local check = flag(2, 'check')
local n = #ARGV - 2
if n > 256 or #KEYS ~= 2 + 2 * n then fail('2 keys and 2 more per user, at most 256 users') end
local now = now_ms()
local out = {}
for i = 1, n do
  local X = num(i + 2, 'user', U32)
  local seen = 0
  for _, d in ipairs(dev_all(KEYS[1 + 2 * i])) do
    if d.seen > seen then seen = d.seen end
  end
  local ok = not check or X == U
  if not ok and X ~= 0 and U ~= 0 then
    ok = redis.call('SISMEMBER', KEYS[1], S(X)) == 1 or
         redis.call('SINTERCARD', 2, KEYS[2], KEYS[2 + 2 * i], 'LIMIT', 1) > 0
  end
  local on = 0
  for _, node in ipairs(redis.call('SMEMBERS', 'u:{' .. S(X) .. '}:on')) do
    local exp = redis.call('HGET', 'chat:alive', node)
    if exp and tonumber(exp) > now then on = 1 break end
  end
  out[#out + 1] = ok and 1 or 0
  out[#out + 1] = seen
  out[#out + 1] = on
end
return out
