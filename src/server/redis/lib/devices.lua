-- lib/devices.lua: a user's devices in its hash u:{U} (fields n:<name> ->
-- device number, d:<dev> -> cursor u64, seen i64, flags u8 (bit 0 CONV),
-- conns u16, then the name), and the deletions their cursors allow.
-- Needs lib/common.lua before it.

local DEVICES_MAX = 64     -- a user's devices; a new one past it replaces
                           -- the least recently seen (as store_dev.c)
local TRIM_MAX = 1024      -- log entries removed per call, at most

local function dev_pack(d)
  return struct.pack('>I8i8BI2', d.cursor, d.seen, d.conv and 1 or 0, d.conns) .. d.name
end

local function dev_unpack(dev, v)
  local cursor, seen, flags, conns = struct.unpack('>I8i8BI2', v)
  return {dev = dev, cursor = cursor, seen = seen, conv = flags % 2 == 1,
          conns = conns, name = string.sub(v, 20)}
end

-- Every device of the user whose hash is hkey: a list, in no order.
local function dev_all(hkey)
  local f, devs = redis.call('HGETALL', hkey), {}
  for i = 1, #f, 2 do
    if string.sub(f[i], 1, 2) == 'd:' then
      devs[#devs + 1] = dev_unpack(tonumber(string.sub(f[i], 3)), f[i + 1])
    end
  end
  return devs
end

local function dev_save(hkey, d) redis.call('HSET', hkey, 'd:' .. S(d.dev), dev_pack(d)) end

-- It holds its user's messages back: seen within --device-ttl (0: always),
-- or a connection has it.
local function dev_active(d, now, ttl)
  return ttl == 0 or d.conns > 0 or d.seen >= now - ttl
end

-- all, conv: the counts store_devices gives (every device kept).
local function dev_counts(devs)
  local all, conv = #devs, 0
  for _, d in ipairs(devs) do if d.conv then conv = conv + 1 end end
  return all, conv
end

-- The least cursor of the active devices (of the CONV ones only when
-- convonly), or nil when there is none.
local function dev_floor(devs, now, ttl, convonly)
  local low
  for _, d in ipairs(devs) do
    if dev_active(d, now, ttl) and (d.conv or not convonly) and (not low or d.cursor < low) then
      low = d.cursor
    end
  end
  return low
end

-- Messages of user are gone from its log: qn/qb (count and body bytes of
-- the entries addressed to it, the quota's figures) follow; both fields go
-- when the count reaches 0.
local function uncharge(hkey, n, bytes)
  if n == 0 then return end
  if redis.call('HINCRBY', hkey, 'qn', -n) <= 0 then
    redis.call('HDEL', hkey, 'qn', 'qb')
  else
    redis.call('HINCRBY', hkey, 'qb', -bytes)
  end
end

-- Remove the entries of user's log (logkey) with id <= upto, at most
-- TRIM_MAX of them, accounting for those addressed to user. Returns the
-- number removed and 1 when some remain at or below upto.
local function trim_log(logkey, hkey, user, upto)
  local es = redis.call('ZRANGE', logkey, '-inf', S(upto), 'BYSCORE', 'LIMIT', 0, TRIM_MAX)
  if #es == 0 then return 0, 0 end
  local n, bytes = 0, 0
  for _, e in ipairs(es) do
    local _, _, receiver = unentry(e)
    if receiver == user then n = n + 1; bytes = bytes + #e - HDR end
  end
  redis.call('ZREMRANGEBYSCORE', logkey, '-inf', S(entry_id(es[#es])))
  uncharge(hkey, n, bytes)
  local more = 0
  if #es == TRIM_MAX and redis.call('ZCOUNT', logkey, '-inf', S(upto)) > 0 then more = 1 end
  return #es, more
end

-- Own copies (sent by user from another device, addressed to someone else)
-- in (lo, hi] of user's log: every CONV device has them, so they go (at
-- most TRIM_MAX entries looked at). Returns the number removed.
local function trim_own(logkey, user, lo, hi)
  if hi <= lo then return 0 end
  local es = redis.call('ZRANGE', logkey, '(' .. S(lo), S(hi), 'BYSCORE', 'LIMIT', 0, TRIM_MAX)
  local own = {}
  for _, e in ipairs(es) do
    local _, sender, receiver = unentry(e)
    if sender == user and receiver ~= user then own[#own + 1] = e end
  end
  for i = 1, #own, 256 do
    redis.call('ZREM', logkey, unpack(own, i, math.min(i + 255, #own)))
  end
  return #own
end

-- Forget device d of user (its fields and client ids go; what it alone
-- held back goes with the next trim).
local function dev_forget(hkey, user, d)
  redis.call('HDEL', hkey, 'd:' .. S(d.dev), 'n:' .. d.name)
  redis.call('DEL', 'u:{' .. S(user) .. '}:cid:' .. S(d.dev))
end

-- Tell user's live nodes its device counts: "\2" .. user u32 .. all u16 ..
-- conv u16 on chat:node:<N>.
local function publish_counts(onkey, alivekey, user, now, all, conv)
  publish_all(live_nodes(onkey, alivekey, user, now), struct.pack('>BI4I2I2', 2, user, all, conv))
end
