-- lib/common.lua: included by every script (scripts/embed_lua.py puts this
-- text in place of the line that names it). Conventions of
-- docs/CLUSTER.md 2.7: integers in ARGV are decimal ASCII; ids, cursors
-- and ts stay below 2^53 (Lua numbers are doubles); a malformed argument
-- is the error reply "CHATARG <what>" and the script writes nothing.

local EPOCH_MS = 1704067200000        -- 2024-01-01 (STORE_ID_EPOCH_MS)
local MAX_ID = 9007199254740991       -- 2^53 - 1
local U32 = 4294967295
local HDR = 33                        -- id u64 + the 25-byte header

-- A number as Redis needs it in a command or a key (tostring would give
-- "1.2345678901235e+14" for an id).
local function S(n) return string.format('%.0f', n) end

local function fail(what) error({err = 'CHATARG ' .. what}) end

-- ARGV[i], an integer 0..max written in decimal.
local function num(i, what, max)
  local s = ARGV[i]
  if type(s) ~= 'string' or #s == 0 or #s > 16 or string.find(s, '[^0-9]') then
    fail(what .. ': not a decimal integer')
  end
  local n = tonumber(s)
  if n > max then fail(what .. ': above ' .. S(max)) end
  return n
end

-- ARGV[i], a u64 in decimal (a client id), kept as the string it is: "0",
-- or 1-20 digits without a leading zero, at most 2^64 - 1.
local function u64s(i, what)
  local s = ARGV[i]
  if type(s) ~= 'string' or not string.find(s, '^[1-9][0-9]*$') and s ~= '0' or #s > 20
      or (#s == 20 and s > '18446744073709551615') then
    fail(what .. ': not a u64 in decimal')
  end
  return s
end

-- ARGV[i], a flag: 0 or 1.
local function flag(i, what) return num(i, what, 1) == 1 end

-- Redis's clock, unix ms (one clock for every node).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The least id given at time t (ms): ids never go below it, so an id below
-- id_floor(t) was accepted before t.
local function id_floor(t) return (t - EPOCH_MS) * 1000 end

-- A log entry: id u64, then the header (sender u32, receiver u32, group u32,
-- type u8, sdev u32, ts i64), then the body.
local function entry(id, sender, receiver, grp, typ, sdev, ts, body)
  return struct.pack('>I8I4I4I4BI4i8', id, sender, receiver, grp, typ, sdev, ts) .. body
end

-- id, sender, receiver, group, type, sdev, ts of an entry (not the body).
local function unentry(e)
  return struct.unpack('>I8I4I4I4BI4i8', e)
end

local function entry_id(e) return (struct.unpack('>I8', e)) end

-- The nodes of onkey (a u:{U}:on set) whose heartbeat in chat:alive is
-- after now. Dead ones are removed; when that empties the set, user is
-- offline for everyone: "\0" .. user u32 .. now i64 on chat:presence.
local function live_nodes(onkey, alivekey, user, now)
  local live, dead = {}, 0
  for _, n in ipairs(redis.call('SMEMBERS', onkey)) do
    local exp = redis.call('HGET', alivekey, n)
    if exp and tonumber(exp) > now then
      live[#live + 1] = n
    else
      redis.call('SREM', onkey, n)
      dead = dead + 1
    end
  end
  if dead > 0 and #live == 0 then
    redis.call('PUBLISH', 'chat:presence', struct.pack('>BI4i8', 0, user, now))
  end
  return live
end

local function publish_all(nodes, payload)
  for _, n in ipairs(nodes) do redis.call('PUBLISH', 'chat:node:' .. n, payload) end
end
