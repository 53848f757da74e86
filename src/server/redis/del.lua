#!lua
-- del.lua: store_del(s, user, id) (docs/CLUSTER.md 2.4, 2.7): message id
-- leaves user U's log, whoever still needs it.
--
-- KEYS  1 u:{U}:log   2 u:{U}
-- ARGV  1 user U u32   2 id
-- Reply: 1 removed, 0 no such entry (nothing done).
-- An entry addressed to U takes 1 from qn and its body's bytes from qb
-- (both fields go when qn reaches 0); the key goes with its last entry.
-- Only U's log: an own copy of the message in its author's log, or its
-- copy in cv:{a}:{b} (history), stays.
-- Cost: O(log n).
--@include common
--@include devices

local U = num(1, 'user', U32)
local id = num(2, 'id', MAX_ID)
if #KEYS ~= 2 then fail('2 keys expected') end
local es = redis.call('ZRANGE', KEYS[1], S(id), S(id), 'BYSCORE', 'LIMIT', 0, 1)
if #es == 0 then return 0 end
redis.call('ZREM', KEYS[1], es[1])
local _, _, receiver = unentry(es[1])
if receiver == U then uncharge(KEYS[2], 1, #es[1] - HDR) end
return 1
