#!lua
-- janitor.lua: one slice of the periodic work (docs/CLUSTER.md 2.6, 2.7).
-- One node at a time runs it (the node takes SET chat:janitor <N> NX PX
-- 10000 first), a slice per second or more often while slices come back
-- busy; the SCAN cursor lives in Redis, so another node continues a pass
-- where a dead one stopped.
--
-- KEYS  1 chat:janitor:scan (the SCAN cursor)   2 chat:alive
--       3 chat:gdirty
--       computed: the keys SCAN gives (below), the users' u:{U}:log,
--       u:{U}:on, u:{U}:g and u:{U}:cid:<dev> beside them, and for a group
--       floor g:{G}:m, g:{G}:log and u:{M} of its members: a janitor
--       for one Redis, not for a sharded one
-- ARGV  1 ttl_ms (--offline-ttl, 0: none)   2 history_ttl_ms (0: none)
--       3 device_ttl_ms (0: devices are never forgotten)
--       4 scan_count: keys per slice (SCAN COUNT; 1-1,000)
--       5 groups: group floors per slice, at most (0-1,000)
-- Reply {cursor, keys, purged, forgotten, dead, floored, busy}: cursor the
--   SCAN cursor after the slice, a bulk string ("0": a pass over the keys
--   just ended), the others integers:
--   keys looked at; purged entries removed by the TTLs; forgotten devices;
--   dead nodes removed from u:{U}:on sets; floored group entries every
--   member has; busy 1 when some work was left for the next slice (a key
--   with more than 1,024 entries to go, or groups still in chat:gdirty).
-- What each key SCAN gives gets:
--   u:{U}:log   its entries older than ttl_ms go (with U's qn/qb)
--   g:{G}:log   the same (a group's messages are bounded by --offline-ttl)
--   cv:{a}:{b}  its entries older than history_ttl_ms go (all of them when
--               history_ttl_ms is 0: history was turned off)
--   u:{U}:on    dead nodes go; "\0" .. U .. now on chat:presence when that
--               leaves none (lib/common.lua live_nodes)
--   u:{U}       when U has no live node, its devices' connection counts go
--               to 0 (connections of dead nodes); devices not seen within
--               device_ttl and without a connection are forgotten (fields
--               and client ids), U's groups are marked for their floor,
--               its log trimmed to the new floor, and the new counts
--               published to U's live nodes
--   (others: nothing; expired client-id sets go by their PEXPIRE)
-- Group floors: up to `groups` groups taken from chat:gdirty (SPOP; fewer
--   when their members pass 4,096 in all, at least one): the floor is the
--   least over members of their least active device cursor, or their
--   joined when lower or when they have no active device; the entries of
--   g:{G}:log up to the floor go, but with history_ttl_ms only those older
--   than it. A group with more to go is put back.
-- Bounds: at most 1,024 entries removed per key or group, scan_count keys,
--   `groups` groups (and about 4,096 member lookups) per slice.
--@include common
--@include devices

local ttl = num(1, 'ttl_ms', MAX_ID)
local hist = num(2, 'history_ttl_ms', MAX_ID)
local dttl = num(3, 'device_ttl_ms', MAX_ID)
local count = num(4, 'scan_count', 1000)
local ngroups = num(5, 'groups', 1000)
if count == 0 then fail('scan_count: 1-1000') end
if #KEYS ~= 3 then fail('3 keys expected') end

local now = now_ms()
local purged, forgotten, dead, floored, busy = 0, 0, 0, 0, 0

-- Remove key's entries with id <= upto (at most TRIM_MAX), no accounting.
local function drop_upto(key, upto)
  local last = redis.call('ZRANGE', key, '-inf', S(upto), 'BYSCORE', 'LIMIT', TRIM_MAX - 1, 1, 'WITHSCORES')
  local n
  if #last > 0 then
    n = redis.call('ZREMRANGEBYSCORE', key, '-inf', last[2])
    if redis.call('ZCOUNT', key, '-inf', S(upto)) > 0 then busy = 1 end
  else
    n = redis.call('ZREMRANGEBYSCORE', key, '-inf', S(upto))
  end
  return n
end

local function ukey(u) return 'u:{' .. u .. '}' end

-- The live nodes of u:{U}:on (the dead ones removed and counted).
local function prune(onkey, U)
  local before = redis.call('SCARD', onkey)
  local live = live_nodes(onkey, KEYS[2], U, now)
  dead = dead + before - #live
  return live
end

local function user_devices(u)
  local U = tonumber(u)
  local hkey = ukey(u)
  local devs = dev_all(hkey)
  if #devs == 0 then return end
  local online = #prune(hkey .. ':on', U) > 0
  local keep, gone = {}, 0
  for _, d in ipairs(devs) do
    if not online and d.conns > 0 then
      d.conns = 0
      dev_save(hkey, d)
    end
    if dttl > 0 and not dev_active(d, now, dttl) then
      dev_forget(hkey, U, d)
      gone = gone + 1
    else
      keep[#keep + 1] = d
    end
  end
  if gone == 0 then return end
  forgotten = forgotten + gone
  local gs = redis.call('SMEMBERS', hkey .. ':g')
  for i = 1, #gs, 256 do
    redis.call('SADD', KEYS[3], unpack(gs, i, math.min(i + 255, #gs)))
  end
  local floor = dev_floor(keep, now, dttl, false)
  if floor then
    local n, more = trim_log(hkey .. ':log', hkey, U, floor)
    purged = purged + n
    if more == 1 then busy = 1 end
  end
  publish_counts(hkey .. ':on', KEYS[2], U, now, dev_counts(keep))
end

local cur = redis.call('GET', KEYS[1]) or '0'
local sc = redis.call('SCAN', cur, 'COUNT', count)
for _, k in ipairs(sc[2]) do
  local u = string.match(k, '^u:{(%d+)}:log$')
  if u then
    if ttl > 0 then
      local n, more = trim_log(k, ukey(u), tonumber(u), id_floor(now - ttl) - 1)
      purged = purged + n
      if more == 1 then busy = 1 end
    end
  elseif string.match(k, '^g:{%d+}:log$') then
    if ttl > 0 then purged = purged + drop_upto(k, id_floor(now - ttl) - 1) end
  elseif string.match(k, '^cv:{%d+}:{%d+}$') then
    if hist > 0 then
      purged = purged + drop_upto(k, id_floor(now - hist) - 1)
    else
      purged = purged + redis.call('ZCARD', k)
      redis.call('DEL', k)
    end
  else
    u = string.match(k, '^u:{(%d+)}:on$')
    if u then
      prune(k, tonumber(u))
    else
      u = string.match(k, '^u:{(%d+)}$')
      if u then user_devices(u) end
    end
  end
end
redis.call('SET', KEYS[1], sc[1])

local lookups = 0
for _ = 1, ngroups do
  if lookups >= 4096 then break end
  local g = redis.call('SPOP', KEYS[3])
  if not g then break end
  local gk = 'g:{' .. g .. '}'
  local m = redis.call('ZRANGE', gk .. ':m', 0, -1, 'WITHSCORES')
  local floor
  for i = 1, #m, 2 do
    local joined = tonumber(m[i + 1])
    local low = dev_floor(dev_all(ukey(m[i])), now, dttl, false)
    if not low or low < joined then low = joined end
    if not floor or low < floor then floor = low end
  end
  lookups = lookups + #m / 2
  if floor then
    if hist > 0 then floor = math.min(floor, id_floor(now - hist) - 1) end
    local before = busy
    busy = 0
    floored = floored + drop_upto(gk .. ':log', floor)
    if busy == 1 then redis.call('SADD', KEYS[3], g) end
    busy = math.max(busy, before)
  end
end
if redis.call('SCARD', KEYS[3]) > 0 then busy = 1 end
return {sc[1], #sc[2], purged, forgotten, dead, floored, busy}
