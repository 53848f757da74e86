/*
 * accounts_redis.c -- accounts in the cluster's Redis (accounts_redis.h).
 *
 * Each operation is one command on the blocking session; its reply is
 * taken apart in a `take` callback into a small result (an integer, or a
 * batch of ids) and the operation decides from that. Invariants: a
 * written hash is accounts_make_hash's (account.lua refuses anything that
 * is not a crypto_pwhash_str string); ids are 1..2^32-1.
 */
#include "server/accounts_redis.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/accounts.h"
#include "server/cluster_store.h"
#include "server/rblock.h"
#include "server/redis_scripts.h"

#define SCAN_COUNT "1000" /* SSCAN's hint: members per round trip */

enum { OP_ADD = 1, OP_PASSWD = 2, OP_DEL = 3 }; /* account.lua's */

struct accounts_redis {
    rblock *b;
    char err[512];
};

/* What a reply held, as the operations need it. */
typedef struct answer {
    int ok;               /* the reply had the expected shape */
    long long v;          /* an integer reply */
    char error[256];      /* an error reply's text ("" when none) */
    /* SSCAN: the next cursor and the ids of this batch */
    char cursor[32];
    uint32_t *ids;
    size_t n, cap;
    int bad;              /* a member that is not a user id; or no memory */
} answer;

static void note_error(answer *x, const redisReply *r) {
    snprintf(x->error, sizeof x->error, "%.*s",
             (int)(r->len > 200 ? 200 : r->len), r->str ? r->str : "");
}

static void take_int(void *ud, const redisReply *r) {
    answer *x = ud;
    if (r->type == REDIS_REPLY_ERROR) note_error(x, r);
    else if (r->type == REDIS_REPLY_INTEGER) {
        x->ok = 1;
        x->v = r->integer;
    }
}

/* "1".."4294967295" (no sign, no leading zero) -> id; 0 when not. */
static uint32_t parse_id(const char *s, size_t n) {
    if (n == 0 || n > 10 || s[0] == '0') return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v > UINT32_MAX ? 0 : (uint32_t)v;
}

/* SSCAN's reply: [cursor, [member...]]. */
static void take_scan(void *ud, const redisReply *r) {
    answer *x = ud;
    if (r->type == REDIS_REPLY_ERROR) {
        note_error(x, r);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[0]->len >= sizeof x->cursor ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    memcpy(x->cursor, r->element[0]->str, r->element[0]->len);
    x->cursor[r->element[0]->len] = '\0';
    const redisReply *m = r->element[1];
    for (size_t i = 0; i < m->elements; i++) {
        const redisReply *e = m->element[i];
        uint32_t id = e->type == REDIS_REPLY_STRING ? parse_id(e->str, e->len)
                                                    : 0;
        if (id == 0) {
            x->bad = 1;
            return;
        }
        if (x->n == x->cap) {
            size_t c = x->cap ? x->cap * 2 : 1024;
            uint32_t *p = realloc(x->ids, c * sizeof *p);
            if (!p) {
                x->bad = -1;
                return;
            }
            x->ids = p;
            x->cap = c;
        }
        x->ids[x->n++] = id;
    }
    x->ok = 1;
}

/* Run a command; ACCOUNTS_OK with x filled, or ACCOUNTS_EDB with the
 * reason in a->err (no reply, an error reply, a reply of another shape). */
static int command(accounts_redis *a, int argc, const char **argv,
                   const size_t *lens,
                   void (*take)(void *, const redisReply *), answer *x) {
    if (rblock_command(a->b, argc, argv, lens, take, x, a->err,
                       sizeof a->err))
        return ACCOUNTS_EDB;
    if (*x->error) {
        snprintf(a->err, sizeof a->err, "redis %s answered %s: %s",
                 rblock_peer(a->b), argv[0], x->error);
        return ACCOUNTS_EDB;
    }
    if (!x->ok && x->bad == 0) {
        snprintf(a->err, sizeof a->err, "redis %s answered %s with an "
                 "unexpected reply", rblock_peer(a->b), argv[0]);
        return ACCOUNTS_EDB;
    }
    return ACCOUNTS_OK;
}

int accounts_redis_open(accounts_redis **out, const config *cfg, char *err,
                        size_t errlen) {
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot be initialised");
        return ACCOUNTS_ECRYPTO;
    }
    accounts_redis *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return ACCOUNTS_ENOMEM;
    }
    static cluster_conn cc; /* (~2.6 KiB off the stack; one tool thread) */
    int r = cluster_conn_init(&cc, cfg, err, errlen) ? ACCOUNTS_EDB : 0;
    if (r == 0 && rblock_open(&a->b, &cc.o, err, errlen)) {
        size_t k = strlen(err);
        snprintf(err + k, errlen > k ? errlen - k : 0,
                 " (check --cluster and --cluster-password-file, and that "
                 "redis-server runs)");
        r = ACCOUNTS_EDB;
    }
    cluster_conn_wipe(&cc); /* (rconn copied the password) */
    if (r) {
        free(a);
        return r;
    }
    *out = a;
    return ACCOUNTS_OK;
}

void accounts_redis_close(accounts_redis *a) {
    if (!a) return;
    rblock_close(a->b);
    free(a);
}

const char *accounts_redis_errmsg(const accounts_redis *a) {
    return a ? a->err : "";
}

int accounts_redis_exists(accounts_redis *a, uint32_t id) {
    char key[32];
    snprintf(key, sizeof key, "u:{%" PRIu32 "}", id);
    const char *argv[] = {"HEXISTS", key, "pw"};
    answer x = {0};
    int r = command(a, 3, argv, NULL, take_int, &x);
    return r ? r : x.v != 0;
}

/* account.lua: 1 done, 0 refused (refused: the code to return). */
static int account(accounts_redis *a, uint32_t id, int op, const char *hash,
                   int refused) {
    const redis_script *sc = &redis_scripts[REDIS_SCRIPT_ACCOUNT];
    char key[32], user[16], opc[4];
    snprintf(key, sizeof key, "u:{%" PRIu32 "}", id);
    snprintf(user, sizeof user, "%" PRIu32, id);
    snprintf(opc, sizeof opc, "%d", op);
    const char *argv[] = {"EVAL", sc->text, "2", key, "chat:accounts", user,
                          opc, hash};
    size_t lens[8] = {4, sc->len, 1, strlen(key), 13, strlen(user),
                      strlen(opc), strlen(hash)};
    answer x = {0};
    int r = command(a, 8, argv, lens, take_int, &x);
    if (r) return r;
    return x.v == 1 ? ACCOUNTS_OK : refused;
}

static int set_pw(accounts_redis *a, uint32_t id, const char *pw, size_t len,
                  int op) {
    if (id == 0 || len == 0) return ACCOUNTS_EINVAL;
    char h[ACCOUNTS_HASH_MAX];
    int r = accounts_make_hash(pw, len, h);
    if (r == ACCOUNTS_OK)
        r = account(a, id, op, h,
                    op == OP_ADD ? ACCOUNTS_EEXIST : ACCOUNTS_ENOENT);
    sodium_memzero(h, sizeof h);
    return r;
}

int accounts_redis_add(accounts_redis *a, uint32_t id, const char *pw,
                       size_t len) {
    return set_pw(a, id, pw, len, OP_ADD);
}

int accounts_redis_passwd(accounts_redis *a, uint32_t id, const char *pw,
                          size_t len) {
    return set_pw(a, id, pw, len, OP_PASSWD);
}

int accounts_redis_del(accounts_redis *a, uint32_t id) {
    if (id == 0) return ACCOUNTS_EINVAL;
    return account(a, id, OP_DEL, "", ACCOUNTS_ENOENT);
}

static int cmp_id(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

int accounts_redis_list(accounts_redis *a, uint32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    answer x = {0};
    snprintf(x.cursor, sizeof x.cursor, "0");
    int r = ACCOUNTS_OK;
    do {
        char cur[32];
        snprintf(cur, sizeof cur, "%s", x.cursor);
        const char *argv[] = {"SSCAN", "chat:accounts", cur, "COUNT",
                              SCAN_COUNT};
        x.ok = 0;
        r = command(a, 5, argv, NULL, take_scan, &x);
        if (r == ACCOUNTS_OK && x.bad < 0) r = ACCOUNTS_ENOMEM;
        if (r == ACCOUNTS_OK && x.bad > 0) {
            snprintf(a->err, sizeof a->err, "redis %s: chat:accounts holds "
                     "a member that is not a user id (1 to 4294967295); "
                     "remove it with SREM", rblock_peer(a->b));
            r = ACCOUNTS_EDB;
        }
    } while (r == ACCOUNTS_OK && strcmp(x.cursor, "0") != 0);
    if (r != ACCOUNTS_OK) {
        free(x.ids);
        return r;
    }
    /* SSCAN may give a member twice (the set grew meanwhile): sorted,
     * each once. */
    if (x.n) qsort(x.ids, x.n, sizeof *x.ids, cmp_id);
    size_t k = 0;
    for (size_t i = 0; i < x.n; i++)
        if (k == 0 || x.ids[k - 1] != x.ids[i]) x.ids[k++] = x.ids[i];
    *ids = k ? x.ids : NULL;
    if (!k) free(x.ids);
    *n = k;
    return ACCOUNTS_OK;
}
