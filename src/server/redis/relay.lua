#!lua
-- relay.lua: store_relay (docs/CLUSTER.md 2.7): a control frame for user
-- U's connections on the other nodes (TYPING, RECEIPT, a GROUPS event),
-- published to every live node that holds U but the one that asks (it
-- told its own connections). Nothing is stored: a node that misses it
-- (down, its feed broken) misses a hint, as a connection that closed would.
--
-- KEYS  1 u:{U}:on   2 chat:alive
-- ARGV  1 user U u32 (not 0)   2 origin node u32   3 sender u32
--       4 frame type u8 (1..255)   5 body (bytes)
-- Reply the number of nodes it was published to.
-- Publishes "\4" .. U u32 .. sender u32 .. type u8 .. body on
-- chat:node:<N> for each live N of u:{U}:on but the origin (dead ones are
-- removed, as by put: lib/common.lua live_nodes).
-- Cost: O(nodes of U) commands.
--@include common

local U = num(1, 'user', U32)
local origin = num(2, 'origin node', U32)
local sender = num(3, 'sender', U32)
local typ = num(4, 'type', 255)
local body = ARGV[5] or fail('body: missing')
if U == 0 or typ == 0 then fail('user and type must not be 0') end
if #KEYS ~= 2 then fail('2 keys expected') end
local payload = struct.pack('>BI4I4B', 4, U, sender, typ) .. body
local n = 0
for _, node in ipairs(live_nodes(KEYS[1], KEYS[2], U, now_ms())) do
  if tonumber(node) ~= origin then
    redis.call('PUBLISH', 'chat:node:' .. node, payload)
    n = n + 1
  end
end
return n
