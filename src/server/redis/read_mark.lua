#!lua
-- read_mark.lua: store_read_mark (docs/CLUSTER.md 2.4, 2.7): user U has
-- shown its conversation with a peer, or a group's, up to an id; the
-- highest mark given is kept, with its time.
--
-- KEYS  1 u:{U}:rd
-- ARGV  1 peer u32   2 group u32 (exactly one of the two is not 0)
--       3 upto (id)   4 ts (unix ms)
-- Reply: 1 the mark was set, 0 kept (it was not higher than the one there).
-- Stored: field u<peer> or g<group> = "<upto>:<ts>" (decimal).
-- Cost: O(1).
--@include common

local peer = num(1, 'peer', U32)
local group = num(2, 'group', U32)
local upto = num(3, 'upto', MAX_ID)
local ts = num(4, 'ts', MAX_ID)
if (peer == 0) == (group == 0) then fail('one of peer and group') end
if #KEYS ~= 1 then fail('1 key expected') end
local field = peer ~= 0 and 'u' .. S(peer) or 'g' .. S(group)
local old = redis.call('HGET', KEYS[1], field)
if old and tonumber(string.match(old, '^(%d+)')) >= upto then return 0 end
redis.call('HSET', KEYS[1], field, S(upto) .. ':' .. S(ts))
return 1
