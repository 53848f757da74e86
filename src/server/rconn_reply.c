/*
 * rconn_reply.c -- what comes back from Redis (rconn_int.h): the replies
 * parsed by hiredis' redisReader, each to the head of the FIFO of commands
 * in flight or, in subscribed mode, to on_push; the HELLO phase (AUTH and
 * ROLE, ours) and the keepalive PING.
 *
 * Subscribed mode (RESP2): Redis answers SUBSCRIBE a b with one
 * confirmation per channel (["subscribe", channel, count]), and from then
 * on sends ["message", channel, payload] (["pmessage", pattern, channel,
 * payload], ["smessage", ...]) whenever it likes, interleaved with the
 * replies to the few commands it still accepts (PING answers ["pong", x];
 * the others an error). So while a pub/sub command is at the head of the
 * FIFO, or any subscription is left (the counts Redis reports in its
 * confirmations), an array whose first element names a message or a
 * confirmation is a push; everything else is the head's reply. A pub/sub
 * command is complete after the confirmation of its last argument (or,
 * without arguments, UNSUBSCRIBE & co, when none of its kind is left).
 */
#include "server/rconn_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

static const struct {
    const char *name;
    size_t len;
    uint8_t kind;
} kinds[] = {
    {"subscribe", 9, RCMD_SUB},     {"psubscribe", 10, RCMD_PSUB},
    {"ssubscribe", 10, RCMD_SSUB},  {"unsubscribe", 11, RCMD_UNSUB},
    {"punsubscribe", 12, RCMD_PUNSUB}, {"sunsubscribe", 12, RCMD_SUNSUB},
};

uint8_t rconn__kind(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].len == len && strncasecmp(name, kinds[i].name, len) == 0)
            return kinds[i].kind;
    return RCMD_PLAIN;
}

static int str_is(const redisReply *r, const char *s) {
    size_t n = strlen(s);
    return r->type == REDIS_REPLY_STRING && r->len == n &&
           memcmp(r->str, s, n) == 0;
}

#define PUSH_MESSAGE (-1)

/* 0: not a push; PUSH_MESSAGE; or the RCMD_* kind of a confirmation. */
static int push_kind(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return 0;
    const redisReply *k = r->element[0];
    if (str_is(k, "message") || str_is(k, "pmessage") || str_is(k, "smessage"))
        return PUSH_MESSAGE;
    if (k->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_INTEGER)
        return 0;
    return rconn__kind(k->str, k->len);
}

static int subscribed(const rconn *c) {
    return c->nchan + c->npat + c->nssub > 0 ||
           (c->sent.head && c->sent.head->kind != RCMD_PLAIN);
}

/* A confirmation's count: channels + patterns (subscribe, psubscribe and
 * their unsubscribes), or shard channels (the s- forms). */
static void count(rconn *c, int kind, long long n) {
    if (n < 0) n = 0;
    switch (kind) {
    case RCMD_SUB:
    case RCMD_UNSUB:
        c->nchan = n > c->npat ? n - c->npat : 0;
        break;
    case RCMD_PSUB:
    case RCMD_PUNSUB:
        c->npat = n > c->nchan ? n - c->nchan : 0;
        break;
    default:
        c->nssub = n;
        break;
    }
}

/* The pub/sub command at the head has all its confirmations. */
static int confirmed(const rconn *c, const rconn_cmd *h) {
    if (h->nargs > 0) return h->confirms >= h->nargs;
    switch (h->kind) { /* without arguments: all of its kind */
    case RCMD_UNSUB: return c->nchan == 0;
    case RCMD_PUNSUB: return c->npat == 0;
    case RCMD_SUNSUB: return c->nssub == 0;
    default: return 1;
    }
}

static void dispatch(rconn *c, rconn_sock *s, const redisReply *r) {
    if (c->state == RCONN_READY && subscribed(c)) {
        int k = push_kind(r);
        if (k != 0) {
            if (k > 0) count(c, k, r->element[2]->integer);
            c->stats.pushes++;
            if (c->o.on_push) c->o.on_push(c->o.ud, r);
            if (k == PUSH_MESSAGE || c->sock != s) return;
            rconn_cmd *h = c->sent.head;
            if (!h || h->kind != k) return; /* Redis' own (e.g. a shard
                                               channel moved): a push only */
            h->confirms++;
            if (!confirmed(c, h)) return;
        }
    }
    rconn_cmd *h = rconn__pop(&c->sent);
    if (!h) {
        rconn__fail(c, "protocol error: a reply with no command waiting for "
                    "it");
        return;
    }
    if (!(h->flags & RCMD_INTERNAL) && c->read_hr > h->t_hr)
        metrics_hist_observe(&c->stats.rtt, (c->read_hr - h->t_hr) / 1000);
    rconn__complete(c, h, r, RCONN_OK);
}

void rconn__replies(rconn *c, rconn_sock *s) {
    while (c->sock == s) {
        void *r = NULL;
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
            rconn__fail(c, "protocol error: %s", c->reader->errstr);
            return;
        }
        if (!r) break;
        dispatch(c, s, r);
        freeReplyObject(r);
    }
    if (c->sock == s && c->reader->len - c->reader->pos > c->o.max_reply_bytes)
        rconn__fail(c, "a reply of more than %zu bytes (max_reply_bytes)",
                    c->o.max_reply_bytes);
}

int rconn__internal(rconn *c, buf *b, int argc, const char **argv,
                    const size_t *argvlen, rconn_cb cb) {
    size_t n = rconn__resp_size(argc, argv, argvlen);
    rconn_cmd *x = calloc(1, sizeof *x);
    if (!x || n > UINT32_MAX || buf_reserve(b, n, SIZE_MAX)) {
        free(x);
        return RCONN_ENOMEM;
    }
    /* (written straight into b: no copy of AUTH's password to wipe) */
    rconn__resp_write((char *)b->data + b->len, argc, argv, argvlen);
    b->len += n;
    x->cb = cb;
    x->ud = c;
    x->len = (uint32_t)n;
    x->flags = RCMD_INTERNAL;
    x->t_ms = uv_now(c->loop);
    x->t_hr = uv_hrtime();
    rconn__push(&c->sent, x);
    return 0;
}

/* ---- HELLO: AUTH, ROLE ----------------------------------------------- */

static void hello_step(rconn *c) {
    assert(c->state == RCONN_HELLO && c->hello_left > 0);
    if (--c->hello_left == 0) rconn__ready(c);
}

static void on_auth(void *ud, const redisReply *r, int status) {
    rconn *c = ud;
    (void)status; /* internal commands complete only with a reply */
    if (r->type == REDIS_REPLY_ERROR) {
        rconn__fail(c, "AUTH refused: %.*s", (int)r->len, r->str);
        return;
    }
    hello_step(c);
}

static void on_role(void *ud, const redisReply *r, int status) {
    rconn *c = ud;
    (void)status;
    if (r->type == REDIS_REPLY_ERROR) {
        rconn__fail(c, "ROLE failed: %.*s", (int)r->len, r->str);
        return;
    }
    const redisReply *role =
        r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0] : NULL;
    if (!role || !str_is(role, "master")) {
        int known = role && role->type == REDIS_REPLY_STRING;
        rconn__fail(c, "not the master (ROLE says %.*s)",
                    known ? (int)role->len : 1, known ? role->str : "?");
        return;
    }
    hello_step(c);
}

static void on_hello_ping(void *ud, const redisReply *r, int status) {
    rconn *c = ud;
    (void)status;
    if (r->type == REDIS_REPLY_ERROR) {
        rconn__fail(c, "PING refused: %.*s", (int)r->len, r->str);
        return;
    }
    hello_step(c);
}

void rconn__link_up(rconn *c) {
    buf b = {0};
    int r = 0;
    c->hello_left = 0;
    if (c->o.password) {
        const char *argv[3] = {"AUTH", c->o.user, c->o.password};
        if (!c->o.user) argv[1] = c->o.password;
        r = rconn__internal(c, &b, c->o.user ? 3 : 2, argv, NULL, on_auth);
        c->hello_left += r == 0;
    }
    if (r == 0 && c->o.require_master) {
        const char *argv[1] = {"ROLE"};
        r = rconn__internal(c, &b, 1, argv, NULL, on_role);
        c->hello_left += r == 0;
    }
    if (r == 0 && c->hello_left == 0) { /* READY only once Redis answers */
        const char *argv[1] = {"PING"};
        r = rconn__internal(c, &b, 1, argv, NULL, on_hello_ping);
        c->hello_left += r == 0;
    }
    if (r) {
        buf_free(&b);
        rconn__fail(c, "out of memory");
        return;
    }
    rconn__to(c, RCONN_HELLO);
    r = rconn__net_put(c, &b);
    if (b.data) OPENSSL_cleanse(b.data, b.cap);
    buf_free(&b);
    if (r) rconn__fail(c, "write failed: %s", uv_strerror(r));
}

/* ---- keepalive ------------------------------------------------------- */

static void on_pong(void *ud, const redisReply *r, int status) {
    (void)ud; /* the reply (PONG, or ["pong", ""] when subscribed) only */
    (void)r;  /* proves Redis is alive: the command deadline did the rest */
    (void)status;
}

void rconn__ping(rconn *c) {
    assert(c->state == RCONN_READY && !c->sent.head && !c->queued.head);
    buf b = {0};
    const char *argv[1] = {"PING"};
    int r = rconn__internal(c, &b, 1, argv, NULL, on_pong);
    if (r == 0) r = rconn__net_put(c, &b);
    buf_free(&b);
    if (r) rconn__fail(c, "cannot send the keepalive PING: %s",
                       r == RCONN_ENOMEM ? "out of memory" : uv_strerror(r));
}
