#!lua flags=no-writes
-- history.lua: store_history (docs/CLUSTER.md 2.4, 2.7), read-only: a page
-- of a conversation, newest first.
--
-- KEYS  1 the conversation: cv:{a}:{b} (a user with a peer, a = the lower
--       id) or g:{G}:log (a group; the node checked that U is a member and
--       gives its joined as min_id)
-- ARGV  1 min_id (only ids above it; 0: any)   2 before (only ids below
--       it; 0: any)   3 max_rows (0 counts as 1; at most 4,096)
--       4 max_bytes (body bytes, about; at least one row)
--       5 history_ttl_ms (0: no history: an empty page)
--       6 ttl_ms (--offline-ttl, 0: none)
-- Reply {more, e1, e2, ...}: entries (id u64 + header + body) with
--   decreasing ids, each accepted within both TTLs; more = 1 when older
--   ones remain (ask again with before = the last id).
-- Cost: O(log n + rows).
--@include common

local min_id = num(1, 'min_id', MAX_ID)
local before = num(2, 'before', MAX_ID)
local max_rows = num(3, 'max_rows', U32)
local max_bytes = num(4, 'max_bytes', MAX_ID)
local hist = num(5, 'history_ttl_ms', MAX_ID)
local ttl = num(6, 'ttl_ms', MAX_ID)
if #KEYS ~= 1 then fail('1 key expected') end
if hist == 0 then return {0} end
if max_rows < 1 then max_rows = 1 end
if max_rows > 4096 then max_rows = 4096 end
local now = now_ms()
local since = now - hist
if ttl > 0 and now - ttl > since then since = now - ttl end
local lo = math.max(min_id, id_floor(since) - 1)
local hi = before > 0 and '(' .. S(before) or '+inf'
local es = redis.call('ZRANGE', KEYS[1], hi, '(' .. S(lo), 'BYSCORE', 'REV', 'LIMIT', 0, max_rows + 1)
local out, bytes = {0}, 0
for _, e in ipairs(es) do
  local _, _, _, _, _, _, ts = unentry(e)
  if ts < since then break end -- (older ones are older still)
  local n = #out - 1
  if n == max_rows or (n > 0 and bytes >= max_bytes) then out[1] = 1; break end
  out[#out + 1] = e
  bytes = bytes + #e - HDR
end
return out
