/*
 * accounts_redis.h -- user accounts in the cluster's Redis (docs/CLUSTER.md
 * 2.3), for `chat-server user --cluster` (admin.c): the same operations
 * and codes as accounts.h, on a blocking session (rblock.h).
 *
 *     u:{U}           field pw: the Argon2id hash (accounts_make_hash)
 *     chat:accounts   set: the users that have one
 *
 * Every write is one call of the script account.lua (EVAL: a tool makes
 * one call, so there is nothing to gain from EVALSHA and its NOSCRIPT
 * retry): the check and the change in one step, so two administrators, or
 * `user del` beside a login, never leave pw and chat:accounts apart. The
 * nodes read pw with HGET (store_account); a change applies to the next
 * login on every node, at once.
 *
 * Pure of output: nothing is printed or logged; every function returns 0
 * or a negative ACCOUNTS_E* code (ACCOUNTS_EDB: Redis failed or answered
 * an error, accounts_redis_errmsg says what). Blocking. Passwords are
 * (pointer, length), never copied except into libsodium.
 */
#ifndef CHAT_SERVER_ACCOUNTS_REDIS_H
#define CHAT_SERVER_ACCOUNTS_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

typedef struct accounts_redis accounts_redis;

/* Connect to the Redis of cfg->cluster (with cfg's
 * --cluster-password-file and --cluster-tls-*; cfg->cluster set) and call
 * sodium_init(). 0 with *out set, or a code with one sentence in err
 * naming the address and what to do. The caller frees *out with
 * accounts_redis_close. */
int accounts_redis_open(accounts_redis **out, const config *cfg, char *err,
                        size_t errlen);
void accounts_redis_close(accounts_redis *a);

/* As accounts.h: 1 / 0 / a code; ACCOUNTS_EEXIST; ACCOUNTS_ENOENT. */
int accounts_redis_exists(accounts_redis *a, uint32_t id);
int accounts_redis_add(accounts_redis *a, uint32_t id, const char *pw,
                       size_t len);
int accounts_redis_passwd(accounts_redis *a, uint32_t id, const char *pw,
                          size_t len);
int accounts_redis_del(accounts_redis *a, uint32_t id);

/* Every id of chat:accounts, ascending, in *ids (malloc'd, the caller
 * frees it; NULL when *n is 0). Read with SSCAN, a bounded batch per
 * round trip (Redis is never held for the whole set). O(accounts). */
int accounts_redis_list(accounts_redis *a, uint32_t **ids, size_t *n);

/* The last failure, a sentence naming the address ("" when none). */
const char *accounts_redis_errmsg(const accounts_redis *a);

#endif
