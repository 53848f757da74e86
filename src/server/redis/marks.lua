#!lua flags=no-writes
-- marks.lua: store_marks (docs/CLUSTER.md 2.4, 2.7), read-only: for each
-- user X asked, its delivered mark (the highest cursor of its devices) and
-- its read mark of one conversation. The node makes the list from its copy
-- of the group: with a peer P of U, (P, "u<U>") then (U, "u<P>"); of a
-- group G, (M, "g<G>") per member M in member order, in calls of at most
-- 256 (4,096 members in one call would hold Redis for milliseconds).
--
-- KEYS  1 u:{X1}   2 u:{X1}:rd   3 u:{X2}   4 u:{X2}:rd ...  (2 per user,
--       at most 256 users)
-- ARGV  1 f1   2 f2 ...: the read-mark field of each (u<peer> or g<group>)
-- Reply {d1, r1, t1, d2, r2, t2, ...}: per user, delivered (0: no device),
--   read (0: none) and its ts (0: none).
-- Cost: O(users x devices).
--@include common
--@include devices

if #KEYS ~= 2 * #ARGV or #ARGV > 256 then fail('2 keys per field, at most 256 fields') end
local out = {}
for i = 1, #ARGV do
  local delivered = 0
  for _, d in ipairs(dev_all(KEYS[2 * i - 1])) do
    if d.cursor > delivered then delivered = d.cursor end
  end
  local read, ts = 0, 0
  local v = redis.call('HGET', KEYS[2 * i], ARGV[i])
  if v then
    local a, b = string.match(v, '^(%d+):(%d+)$')
    read, ts = tonumber(a), tonumber(b)
  end
  out[#out + 1] = delivered
  out[#out + 1] = read
  out[#out + 1] = ts
end
return out
