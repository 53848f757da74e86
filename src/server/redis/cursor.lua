#!lua
-- cursor.lua: store_cursor (docs/CLUSTER.md 2.4, 2.7): device dev of user
-- U has every message of U's log up to cursor, was seen now, and maybe
-- closed a connection; then what every device has passed is deleted.
--
-- KEYS  1 u:{U}   2 u:{U}:log   3 u:{U}:g   4 chat:gdirty
-- ARGV  1 user U u32   2 dev u32   3 cursor (id; a lower one than the
--       device's changes nothing)   4 closed 0|1 (one of its connections
--       closed: its count goes down)   5 device_ttl_ms (0: never forgotten)
-- Reply {known, removed, more}: known 0 when U has no device dev (nothing
--   done); removed: entries deleted from u:{U}:log; more 1 when entries
--   that may go remain (at most 1,024 go per call): call again, with any
--   cursor (the same one), until more is 0.
-- Deletion: the floor is the least cursor of U's devices seen within
--   device_ttl or with a connection; every entry of u:{U}:log up to it goes
--   (an entry addressed to U takes 1 from qn and its body's bytes from qb;
--   the key goes with its last entry, the two fields when qn reaches 0).
--   When a CONV device moved, the own copies it passed that every active
--   CONV device has go too. A moved cursor marks U's groups for their
--   floor (SADD chat:gdirty: the janitor trims g:{G}:log).
-- Cost: O(devices of U + log n + entries removed or looked at, at most
--   2 x 1,024 + groups of U).
--@include common
--@include devices

local U = num(1, 'user', U32)
local dev = num(2, 'dev', U32)
local cursor = num(3, 'cursor', MAX_ID)
local closed = flag(4, 'closed')
local ttl = num(5, 'device_ttl_ms', MAX_ID)
if #KEYS ~= 4 then fail('4 keys expected') end

local now = now_ms()
local devs = dev_all(KEYS[1])
local d
for _, x in ipairs(devs) do if x.dev == dev then d = x end end
if not d then return {0, 0, 0} end

local old = d.cursor
if cursor > old then d.cursor = cursor end
d.seen = now
if closed and d.conns > 0 then d.conns = d.conns - 1 end
dev_save(KEYS[1], d)

local removed, more = 0, 0
local floor = dev_floor(devs, now, ttl, false)
if floor then removed, more = trim_log(KEYS[2], KEYS[1], U, floor) end
if d.cursor > old then
  if d.conv then
    local cfloor = dev_floor(devs, now, ttl, true)
    removed = removed + trim_own(KEYS[2], U, math.max(old, floor or 0), math.min(d.cursor, cfloor))
  end
  local gs = redis.call('SMEMBERS', KEYS[3])
  for i = 1, #gs, 256 do
    redis.call('SADD', KEYS[4], unpack(gs, i, math.min(i + 255, #gs)))
  end
end
return {1, removed, more}
