#!lua
-- group.lua: store_group (docs/CLUSTER.md 2.4, 2.7): a group operation,
-- checked and done in one step; the script is the authority the store
-- thread's copy is for SQLite (store_group.c), with the same checks and
-- status codes.
--
-- KEYS  1 chat:gids   2 chat:groups:all   3 chat:gdirty
--       computed: g:{G}, g:{G}:m, g:{G}:log of the group, u:{M}:g of each
--       member added or removed (so not for a sharded Redis as it is)
-- ARGV  1 op: 1 CREATE, 2 RENAME, 3 ADD, 4 REMOVE, 5 LEAVE, 6 JOINED
--       (STORE_G_*)   2 group G u32 (0 for CREATE)   3 actor u32 (who
--       asks; not 0 but for JOINED)   4 name (CREATE, RENAME: 1-64 bytes;
--       else "")   5 joined (id: members added get messages after it; for
--       JOINED the new value; 0 for CREATE or ADD: the last id given,
--       GET chat:ids, i.e. every message accepted after this change: the
--       cluster's nodes give no ids)   6 was (JOINED: only members whose joined is
--       this)   7 max_members (--max-group-members)   8.. users u32 each
--       (CREATE, ADD, REMOVE, JOINED; ids 0 and repeats are ignored)
-- Reply {status, group, snapshot}: status 0, or -10 STORE_GNOGROUP, -11
--   STORE_GNOTMEMBER, -12 STORE_GNOTADMIN, -13 STORE_GFULL (nothing
--   changed); group: G, the new group's id for CREATE; snapshot: the group
--   as it is now when it changed (else ""), the bytes also published on
--   chat:groups:
--     version u64, group u32, namelen u8, name, count u16, then per member
--     in join order: user u32, flags u8 (bit 0 admin), joined u64;
--   a deleted group has namelen 0 and count 0. version grows by 1 per
--   change of a group (g:{G} field v; a deleted group's is its last + 1),
--   so a node drops an event older than its copy.
-- Rules (docs/PROTOCOL.md, Groups): CREATE makes the actor the first admin
--   and member, then the users (GFULL when they would be more than
--   max_members); RENAME, ADD, REMOVE need an admin (GNOTADMIN), but a
--   member may REMOVE itself alone; ADD past max_members is GFULL; LEAVE
--   (and REMOVE) of the last admin makes the longest-standing member admin;
--   the last member leaving deletes the group with its messages. Checks in
--   this order: GNOGROUP, GNOTMEMBER, GNOTADMIN, GFULL. JOINED has no actor
--   and refuses nothing.
-- Stored: g:{G} (name, v, o: the last join number, a:<user> = 1 per admin,
--   o:<user> = its join number), g:{G}:m (member -> joined), u:{M}:g,
--   chat:groups:all; a change adds G to chat:gdirty (floor due).
-- Cost: O(members + users) commands (members at most max_members).
--@include common

local OP_CREATE, OP_RENAME, OP_ADD, OP_REMOVE, OP_LEAVE, OP_JOINED = 1, 2, 3, 4, 5, 6
local op = num(1, 'op', 6)
local G = num(2, 'group', U32)
local actor = num(3, 'actor', U32)
local name = ARGV[4] or fail('name: missing')
local joined = num(5, 'joined', MAX_ID)
local was = num(6, 'was', MAX_ID)
local maxm = num(7, 'max_members', 65535)
local users = {}
for i = 8, #ARGV do users[#users + 1] = num(i, 'user', U32) end
if op == 0 then fail('op: 1-6') end
if op ~= OP_JOINED and actor == 0 then fail('actor must not be 0') end
if (op == OP_CREATE or op == OP_RENAME) and (#name < 1 or #name > 64) then
  fail('name: 1-64 bytes')
end
if #KEYS ~= 3 then fail('3 keys expected') end
if joined == 0 and (op == OP_CREATE or op == OP_ADD) then
  joined = tonumber(redis.call('GET', 'chat:ids') or '0')
end

local function gkey(g) return 'g:{' .. S(g) .. '}' end

-- The group: {name, v, o, members = list in join order of {user, admin,
-- joined, ord}, by = user -> member}, or nil.
local function load(g)
  local f = redis.call('HGETALL', gkey(g))
  if #f == 0 then return nil end
  local h = {}
  for i = 1, #f, 2 do h[f[i]] = f[i + 1] end
  local grp = {name = h.name or '', v = tonumber(h.v or '0'), o = tonumber(h.o or '0'),
               members = {}, by = {}}
  local m = redis.call('ZRANGE', gkey(g) .. ':m', 0, -1, 'WITHSCORES')
  for i = 1, #m, 2 do
    local x = {user = tonumber(m[i]), admin = h['a:' .. m[i]] ~= nil,
               joined = tonumber(m[i + 1]), ord = tonumber(h['o:' .. m[i]] or '0')}
    grp.members[#grp.members + 1] = x
    grp.by[x.user] = x
  end
  table.sort(grp.members, function(a, b) return a.ord < b.ord end)
  return grp
end

local function snapshot(g, grp)
  local parts = {struct.pack('>I8I4B', grp.v, g, #grp.name), grp.name,
                 struct.pack('>I2', #grp.members)}
  for _, x in ipairs(grp.members) do
    parts[#parts + 1] = struct.pack('>I4BI8', x.user, x.admin and 1 or 0, x.joined)
  end
  return table.concat(parts)
end

-- Users of the list not in grp (nil: none yet), not 0, not the actor, once.
local function newcomers(grp)
  local out, seen = {}, {}
  for _, u in ipairs(users) do
    if u ~= 0 and u ~= actor and not seen[u] and not (grp and grp.by[u]) then
      seen[u] = true
      out[#out + 1] = u
    end
  end
  return out
end

local function add(g, grp, u, admin)
  grp.o = grp.o + 1
  local x = {user = u, admin = admin, joined = joined, ord = grp.o}
  grp.members[#grp.members + 1] = x
  grp.by[u] = x
  redis.call('ZADD', gkey(g) .. ':m', S(joined), S(u))
  redis.call('HSET', gkey(g), 'o:' .. S(u), S(grp.o), 'o', S(grp.o))
  if admin then redis.call('HSET', gkey(g), 'a:' .. S(u), '1') end
  redis.call('SADD', 'u:{' .. S(u) .. '}:g', S(g))
end

-- Remove member u; true when that deleted the group.
local function remove(g, grp, u)
  local x = grp.by[u]
  grp.by[u] = nil
  for i, y in ipairs(grp.members) do
    if y == x then table.remove(grp.members, i); break end
  end
  redis.call('ZREM', gkey(g) .. ':m', S(u))
  redis.call('HDEL', gkey(g), 'a:' .. S(u), 'o:' .. S(u))
  redis.call('SREM', 'u:{' .. S(u) .. '}:g', S(g))
  if #grp.members == 0 then
    redis.call('DEL', gkey(g), gkey(g) .. ':m', gkey(g) .. ':log')
    redis.call('SREM', KEYS[2], S(g))
    redis.call('SREM', KEYS[3], S(g))
    return true
  end
  if x.admin then
    local any = false
    for _, y in ipairs(grp.members) do any = any or y.admin end
    if not any then
      grp.members[1].admin = true
      redis.call('HSET', gkey(g), 'a:' .. S(grp.members[1].user), '1')
    end
  end
  return false
end

-- The change is done: a new version, published whole.
local function changed(g, grp, deleted)
  if deleted then
    grp.v = grp.v + 1
    grp.name, grp.members = '', {}
  else
    grp.v = redis.call('HINCRBY', gkey(g), 'v', 1)
    redis.call('SADD', KEYS[3], S(g))
  end
  local snap = snapshot(g, grp)
  redis.call('PUBLISH', 'chat:groups', snap)
  return {0, g, snap}
end

if op == OP_CREATE then
  local nc = newcomers(nil)
  if 1 + #nc > maxm then return {-13, 0, ''} end
  local g = redis.call('INCR', KEYS[1])
  local grp = {name = name, v = 0, o = 0, members = {}, by = {}}
  redis.call('HSET', gkey(g), 'name', name)
  add(g, grp, actor, true)
  for _, u in ipairs(nc) do add(g, grp, u, false) end
  redis.call('SADD', KEYS[2], S(g))
  return changed(g, grp, false)
end

local grp = load(G)
if op == OP_JOINED then
  if not grp then return {0, G, ''} end
  for _, u in ipairs(users) do
    local x = grp.by[u]
    if x and x.joined == was then
      x.joined = joined
      redis.call('ZADD', gkey(G) .. ':m', S(joined), S(u))
    end
  end
  return changed(G, grp, false)
end

if not grp then return {-10, G, ''} end
local me = grp.by[actor]
if not me then return {-11, G, ''} end
local self_only = op == OP_REMOVE and #users == 1 and users[1] == actor
if not me.admin and op ~= OP_LEAVE and not self_only then return {-12, G, ''} end
if op == OP_ADD and #grp.members + #newcomers(grp) > maxm then return {-13, G, ''} end

if op == OP_RENAME then
  grp.name = name
  redis.call('HSET', gkey(G), 'name', name)
  return changed(G, grp, false)
elseif op == OP_ADD then
  for _, u in ipairs(newcomers(grp)) do add(G, grp, u, false) end
  return changed(G, grp, false)
elseif op == OP_REMOVE then
  local any = false
  for _, u in ipairs(users) do
    if grp.by[u] then
      any = true
      if remove(G, grp, u) then return changed(G, grp, true) end
    end
  end
  if any then return changed(G, grp, false) end
  return {0, G, ''}
else -- OP_LEAVE
  return changed(G, grp, remove(G, grp, actor))
end
