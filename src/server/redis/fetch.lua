#!lua flags=no-writes
-- fetch.lua: store_fetch (docs/CLUSTER.md 2.4, 2.7), read-only (EVALSHA_RO,
-- one snapshot): the oldest messages of user U's log after a cursor, for
-- its device dev, merged in id order with those of U's groups.
--
-- KEYS  1 u:{U}:log   2 u:{U}:g
--       computed: g:{G}:m and g:{G}:log for each group G of u:{U}:g
-- ARGV  1 user U u32   2 dev u32 (the fetching device)
--       3 conv 0|1 (the device takes own copies)
--       4 after: the device's cursor (id; 0: from the start)
--       5 max_rows (0 counts as 1; above 4,096 counts as 4,096)
--       6 max_bytes: body bytes, about (at least one row)
--       7 ttl_ms: --offline-ttl (0: none); older messages are not given
-- Reply {more, next, e1, e2, ...}: e1.. the entries (id u64 + header + body,
--   lib/common.lua) in increasing id order, each with id > after;
--   more = 1 when U has further messages after them; next = the id to fetch
--   after next time: the last entry's, or, when the scan stopped on its
--   budget before finding a row, an id up to which nothing is for dev
--   (more = 1 and no entry: fetch again after next, not after the cursor).
-- Which entries: in u:{U}:log, those addressed to U, and own copies
--   (sender U, to someone else) when conv and not sent by dev; in g:{G}:log
--   for each group G where U is a member (score = joined), those with id >
--   max(after, joined), sent by someone else, or by U from another device
--   when conv; none accepted before now - ttl_ms.
-- Cost: O(groups of U) lookups; entries looked at: 16,384 at most (the
--   budget), plus one page (at most 512) per group once it is spent; each
--   page one O(log n + page) range.
--@include common

local U = num(1, 'user', U32)
local dev = num(2, 'dev', U32)
local conv = flag(3, 'conv')
local after = num(4, 'after', MAX_ID)
local max_rows = num(5, 'max_rows', U32)
local max_bytes = num(6, 'max_bytes', MAX_ID)
local ttl = num(7, 'ttl_ms', MAX_ID)
if max_rows < 1 then max_rows = 1 end
if max_rows > 4096 then max_rows = 4096 end
if #KEYS ~= 2 then fail('2 keys expected') end

local BUDGET = 16384
local need = max_rows + 1
local page = math.min(need, 512)
local cut, cut_id = 0, 0
if ttl > 0 then
  cut = now_ms() - ttl
  cut_id = id_floor(cut) - 1       -- every id up to it is older than cut
end

local cands = {}        -- {id, entry}
local horizon = nil     -- the scan of some source stopped there (budget)
local examined = 0

-- Read key's entries after lo (exclusive) that keep() accepts, until need
-- of them, the end of the key, or the budget.
local function scan(key, lo, keep)
  local got = 0
  while true do
    local es = redis.call('ZRANGE', key, '(' .. S(lo), '+inf', 'BYSCORE', 'LIMIT', 0, page)
    for _, e in ipairs(es) do
      local id, sender, receiver, _, _, sdev, ts = unentry(e)
      lo = id
      if ts >= cut and keep(sender, receiver, sdev) then
        cands[#cands + 1] = {id, e}
        got = got + 1
      end
    end
    examined = examined + #es
    if #es < page or got >= need then return end
    if examined >= BUDGET then
      if not horizon or lo < horizon then horizon = lo end
      return
    end
  end
end

scan(KEYS[1], math.max(after, cut_id), function(sender, receiver, sdev)
  return receiver == U or (conv and sender == U and sdev ~= dev)
end)
local function keep_group(sender, _, sdev)
  return sender ~= U or (conv and sdev ~= dev)
end
for _, g in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local joined = redis.call('ZSCORE', 'g:{' .. g .. '}:m', S(U))
  if joined then
    scan('g:{' .. g .. '}:log', math.max(after, tonumber(joined), cut_id), keep_group)
  end
end

table.sort(cands, function(a, b) return a[1] < b[1] end)
local out, bytes, more, next_after = {0, after}, 0, 0, after
for _, c in ipairs(cands) do
  if horizon and c[1] > horizon then more = 1; break end
  local n = #out - 2
  if n == max_rows or (n > 0 and bytes >= max_bytes) then more = 1; break end
  out[#out + 1] = c[2]
  bytes = bytes + #c[2] - HDR
  next_after = c[1]
end
if horizon then
  more = 1
  if #out == 2 then next_after = horizon end
end
out[1], out[2] = more, next_after
return out
