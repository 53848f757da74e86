#!lua
-- device.lua: store_device (docs/CLUSTER.md 2.4, 2.7): look up user U's
-- device by name, creating it when new, and mark it seen now with one
-- connection more.
--
-- KEYS  1 u:{U}   2 u:{U}:log   3 u:{U}:on   4 chat:devno   5 chat:alive
--       computed: u:{U}:cid:<dev> (the device's client ids; same {U} slot;
--       and that of a device replaced, below)
-- ARGV  1 user U u32   2 name: 0-32 bytes ("" = the default device, number 0)
--       3 conv 0|1 (the device takes own copies)
--       4 device_ttl_ms (--device-ttl; 0: devices are never forgotten)
--       5 dedup_ms (--dedup-window, > 0)
-- Reply {dev, cursor, all, conv, created, cid1, id1, cid2, id2, ...}:
--   dev its number (0 for "", else INCR chat:devno: never reused); cursor
--   the last id it has; all, conv: U's devices now and how many are CONV
--   (store_devices); created 1 when it is new; then the client ids it sent
--   within the window, oldest first (at most 4,096): cid as a bulk string
--   (u64 decimal), the id of its message as an integer (its time: about
--   id / 1000 + 2024-01-01 in ms, never earlier than it was accepted).
-- A new device's cursor is the least cursor of U's devices seen within
-- device_ttl or with a connection (0 when there is none): it gets what some
-- device of U still lacks. A user has at most 64 devices: a new one past
-- that forgets the least recently seen (its fields, its client ids; what it
-- alone held back is trimmed, at most 1,024 entries here, the rest by the
-- next cursor call). When all or conv changed, "\2" .. U u32 .. all u16 ..
-- conv u16 goes to U's live nodes (chat:node:<N>).
-- Cost: O(devices of U) (HGETALL u:{U}), plus the client ids returned.
--@include common
--@include devices

local U = num(1, 'user', U32)
local name = ARGV[2] or fail('name: missing')
local conv = flag(3, 'conv')
local ttl = num(4, 'device_ttl_ms', MAX_ID)
local dedup = num(5, 'dedup_ms', MAX_ID)
if U == 0 then fail('user must not be 0') end
if #name > 32 then fail('name: longer than 32 bytes') end
if #KEYS ~= 5 then fail('5 keys expected') end

local now = now_ms()
local devs = dev_all(KEYS[1])
local d, changed, created, replaced = nil, false, 0, false
local num_s = redis.call('HGET', KEYS[1], 'n:' .. name)
if num_s then
  for _, x in ipairs(devs) do if x.dev == tonumber(num_s) then d = x end end
end
if not d then
  if #devs >= DEVICES_MAX then
    local old = 1
    for i = 2, #devs do if devs[i].seen < devs[old].seen then old = i end end
    dev_forget(KEYS[1], U, devs[old])
    table.remove(devs, old)
    replaced = true
  end
  local dev = 0
  if #name > 0 then dev = redis.call('INCR', KEYS[4]) end
  d = {dev = dev, cursor = dev_floor(devs, now, ttl, false) or 0, seen = now,
       conv = conv, conns = 0, name = name}
  devs[#devs + 1] = d
  redis.call('HSET', KEYS[1], 'n:' .. name, S(dev))
  changed, created = true, 1
elseif d.conv ~= conv then
  d.conv = conv
  changed = true
end
d.seen = now
if d.conns < 65535 then d.conns = d.conns + 1 end
dev_save(KEYS[1], d)
local all, nconv = dev_counts(devs)
if replaced then -- (it may have held back the oldest entries)
  local floor = dev_floor(devs, now, ttl, false)
  if floor then trim_log(KEYS[2], KEYS[1], U, floor) end
end
if changed then
  publish_counts(KEYS[3], KEYS[5], U, now, all, nconv)
end

local out = {d.dev, d.cursor, all, nconv, created}
local cids = redis.call('ZRANGE', 'u:{' .. S(U) .. '}:cid:' .. S(d.dev),
                        S(id_floor(now - dedup)), '+inf', 'BYSCORE', 'WITHSCORES',
                        'LIMIT', 0, 4096)
for i = 1, #cids, 2 do
  out[#out + 1] = cids[i]
  out[#out + 1] = tonumber(cids[i + 1])
end
return out
