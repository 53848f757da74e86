#!lua
-- online.lua: presence registration (docs/CLUSTER.md 6.5, 2.7): node N
-- holds a connection of user U (op 1: its first there), or no longer
-- (op 0: its last there left).
--
-- KEYS  1 u:{U}:on   2 chat:alive
-- ARGV  1 user U u32   2 node N u32   3 op 1 (add) | 0 (remove)
-- Reply {changed, live}: live = the live nodes of U after the change (N
--   counts as live when it added itself); changed 1 when U went from no
--   live node to some (online) or back (offline): then "\1" (online) or
--   "\0" (offline) .. U u32 .. now i64 was published on chat:presence.
-- Dead nodes found in the set are removed first (lib/common.lua
--   live_nodes; when that alone empties the set it publishes the offline
--   event itself, and the add then publishes online).
-- Cost: O(nodes of U).
--@include common

local U = num(1, 'user', U32)
local node = num(2, 'node', U32)
local add = flag(3, 'op')
if U == 0 or node == 0 then fail('user and node must not be 0') end
if #KEYS ~= 2 then fail('2 keys expected') end
local now = now_ms()
local n = S(node)
local before = 0
for _, x in ipairs(live_nodes(KEYS[1], KEYS[2], U, now)) do
  if x ~= n then before = before + 1 end
end
local was = before > 0 or redis.call('SISMEMBER', KEYS[1], n) == 1
local live = before
if add then
  redis.call('SADD', KEYS[1], n)
  live = before + 1
else
  redis.call('SREM', KEYS[1], n)
end
local changed = 0
if (live > 0) ~= was then
  changed = 1
  redis.call('PUBLISH', 'chat:presence', struct.pack('>BI4i8', live > 0 and 1 or 0, U, now))
end
return {changed, live}
