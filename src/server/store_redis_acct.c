/*
 * store_redis_acct.c -- the cluster store keeps the accounts (store.h,
 * store_account; docs/CLUSTER.md 2.3): a user's password hash is field
 * `pw` of its hash u:{U}, written by `chat-server user --cluster`
 * (accounts_redis.c, account.lua) and read here for a login, one HGET on
 * the command connection, in order with the node's other requests.
 *
 * The hash is handed to account_done as Redis sent it (a bulk string,
 * valid during the callback); nil is "no account". Anything else (an
 * error reply, a reply of another type) is STORE_EIO, and Redis down is
 * STORE_EIO too (rconn fails a command it cannot send on the next loop
 * turn: a login waits for no reconnect). Cost: one round trip, O(1) in
 * Redis.
 */
#include "server/store_redis_int.h"


void sr_account(store *st, uint32_t user, void *token) {
    store_redis *s = sr_of(st);
    if (!sr_active(s)) return; /* (stopped: no completion, store.h) */
    sr_req *r = sr_new(s, SR_ACCOUNT, -1, 0);
    if (!r) {
        sr_fail(s, SR_ACCOUNT, token, STORE_ENOMEM);
        return;
    }
    sr_args(r, "HGET");
    sr_argk(r, "u:{", user, "}");
    sr_args(r, "pw");
    r->token = token;
    sr_submit(s, r); /* (a refusal completes it later, in its turn) */
    SR_CHECK(s);
}

/* A bulk string (the hash), nil (no account), or a failure. */
int sr_h_account(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    const char *hash = NULL;
    size_t len = 0;
    if (st == STORE_OK) {
        if (rep->type == REDIS_REPLY_STRING) {
            hash = rep->str;
            len = rep->len;
        } else if (rep->type != REDIS_REPLY_NIL) {
            st = STORE_EIO; /* (not what HGET answers: a broken proxy) */
        }
    }
    if (sr_active(s) && s->cb.account_done)
        s->cb.account_done(s->cb.ctx, r->token, hash, len, st);
    return SR_DONE;
}
