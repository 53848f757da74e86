#!lua
-- account.lua: an account of the cluster (docs/CLUSTER.md 2.3, 2.7),
-- written by `chat-server user --cluster` (accounts_redis.c): user U's
-- password hash is field pw of u:{U}; chat:accounts lists the users that
-- have one (`user list`). Nodes read pw with HGET (store_account).
--
-- KEYS  1 u:{U}   2 chat:accounts
-- ARGV  1 user U u32   2 op: 1 add, 2 passwd, 3 del
--       3 hash (add, passwd): libsodium's crypto_pwhash_str text
--         ($argon2...), 1..127 bytes; empty for del
-- Reply: 1 done; 0 refused, nothing written: add: U has an account
--   already; passwd, del: U has none.
-- Only pw and U's place in chat:accounts: U's messages, devices, groups
-- and marks stay (as `user del` leaves them in SQLite).
-- Cost: O(1).
--@include common

local U = num(1, 'user', U32)
local op = num(2, 'op', 3)
local hash = ARGV[3]
if U == 0 then fail('user must not be 0') end
if op == 0 then fail('op: 1, 2 or 3') end
if #KEYS ~= 2 then fail('2 keys expected') end
if type(hash) ~= 'string' then fail('hash: missing') end
if op == 3 then
  if #hash ~= 0 then fail('hash: empty for del') end
elseif #hash == 0 or #hash > 127 or string.sub(hash, 1, 7) ~= '$argon2' then
  fail('hash: not a crypto_pwhash_str string of at most 127 bytes')
end
local has = redis.call('HEXISTS', KEYS[1], 'pw') == 1
if op == 1 then
  if has then return 0 end
  redis.call('HSET', KEYS[1], 'pw', hash)
  redis.call('SADD', KEYS[2], S(U))
  return 1
elseif op == 2 then
  if not has then return 0 end
  redis.call('HSET', KEYS[1], 'pw', hash)
  return 1
end
if not has then return 0 end
redis.call('HDEL', KEYS[1], 'pw')
redis.call('SREM', KEYS[2], S(U))
return 1
