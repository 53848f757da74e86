#!lua
-- heartbeat.lua: node N is alive (docs/CLUSTER.md 6.5, 2.7): its entry in
-- chat:alive becomes Redis's TIME + ttl_ms. A node calls it every second
-- (ttl 5,000); scripts that read chat:alive take a node whose expiry is not
-- after their TIME for dead. A clean stop is HDEL chat:alive N (no script).
--
-- KEYS  1 chat:alive
-- ARGV  1 node N (u32, not 0: INCR chat:nodes at start)   2 ttl_ms (> 0)
-- Reply {was_alive, now, expires}: was_alive 0 when N had no entry or an
--   expired one (every script took it for dead meanwhile and may have
--   removed it from u:{U}:on sets: re-register the local users with
--   online.lua); now and expires in unix ms.
-- Cost: O(1).
--@include common

local node = num(1, 'node', U32)
local ttl = num(2, 'ttl_ms', MAX_ID)
if node == 0 or ttl == 0 then fail('node and ttl_ms must not be 0') end
if #KEYS ~= 1 then fail('1 key expected') end
local now = now_ms()
local old = redis.call('HGET', KEYS[1], S(node))
local was = 0
if old and tonumber(old) > now then was = 1 end
redis.call('HSET', KEYS[1], S(node), S(now + ttl))
return {was, now, now + ttl}
