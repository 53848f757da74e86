/*
 * store_redis_q.c -- the cluster store's requests (store_redis_int.h):
 * every command the node sends on its command connections is a request in
 * ONE list, in submission order, and completes (its handler runs) only at
 * the head of that list. rconn answers in FIFO order, so a reply normally
 * finds its request at the head; it does not when a request before it
 * waits again (a NOSCRIPT retry, a fetch that continues after `next`):
 * then the reply is copied and parked in its request until its turn. A
 * request that cannot be sent (out of memory, rconn's queue limit, the
 * store closing) is READY at once with its failure, and completes from the
 * idle handle (never inside the store_* call), in its turn.
 *
 * With several command connections (store_redis_pool.c: puts spread over
 * them) the list is still one: a reply from another connection than the
 * head's is parked the same way, so completions keep submission order.
 *
 * Cost: O(1) per request; a parked reply costs one copy (rare: only behind
 * a retry or a continuation). Requests and their argument buffers are
 * recycled (at most SR_SPARE_MAX kept, none with more than
 * SR_SPARE_BYTES of arguments), so a put allocates nothing in the steady
 * state besides what rconn copies.
 */
#include "server/store_redis_int.h"

#include "common/dec.h"

#include <stdlib.h>
#include <string.h>

#define SR_SPARE_MAX 256
#define SR_SPARE_BYTES ((size_t)64 * 1024)

static const char *const kind_names[SR_NKINDS] = {
    [SR_PUT] = "put", [SR_FETCH] = "fetch", [SR_DEVICE] = "device",
    [SR_HISTORY] = "history", [SR_GROUP] = "group", [SR_MARKS] = "marks",
    [SR_PRESENCE] = "presence", [SR_ACCOUNT] = "HGET pw", [SR_DEL] = "del", [SR_CURSOR] = "cursor",
    [SR_READ_MARK] = "read_mark", [SR_CONTACT] = "contact",
    [SR_ONLINE] = "online", [SR_RELAY] = "relay",
    [SR_CONFIG] = "CONFIG GET",
    [SR_LOAD] = "SCRIPT LOAD", [SR_NODE_ID] = "INCR chat:nodes",
    [SR_HEARTBEAT] = "heartbeat", [SR_GROUPS_ALL] = "SMEMBERS",
    [SR_GROUP_HASH] = "HGETALL", [SR_GROUP_MEMBERS] = "ZRANGE",
    [SR_DEVCOUNT] = "HGETALL", [SR_JANITOR_LOCK] = "SET chat:janitor",
    [SR_JANITOR] = "janitor", [SR_GOODBYE] = "goodbye", [SR_WAIT] = "WAIT",
};

static const sr_handler handlers[SR_NKINDS] = {
    [SR_PUT] = sr_h_put, [SR_FETCH] = sr_h_fetch, [SR_DEVICE] = sr_h_device,
    [SR_HISTORY] = sr_h_history, [SR_GROUP] = sr_h_group,
    [SR_MARKS] = sr_h_marks, [SR_PRESENCE] = sr_h_presence,
    [SR_ACCOUNT] = sr_h_account,
    [SR_DEL] = sr_h_quiet, [SR_CURSOR] = sr_h_cursor,
    [SR_READ_MARK] = sr_h_quiet, [SR_CONTACT] = sr_h_quiet,
    [SR_ONLINE] = sr_h_online, [SR_RELAY] = sr_h_quiet,
    [SR_CONFIG] = sr_h_config,
    [SR_LOAD] = sr_h_load, [SR_NODE_ID] = sr_h_node_id,
    [SR_HEARTBEAT] = sr_h_heartbeat, [SR_GROUPS_ALL] = sr_h_groups_all,
    [SR_GROUP_HASH] = sr_h_group_hash,
    [SR_GROUP_MEMBERS] = sr_h_group_members, [SR_DEVCOUNT] = sr_h_devcount,
    [SR_JANITOR_LOCK] = sr_h_janitor_lock, [SR_JANITOR] = sr_h_janitor,
    [SR_GOODBYE] = sr_h_goodbye, [SR_WAIT] = sr_h_wait,
};

/* -- replies ---------------------------------------------------------------- */

void sr_reply_free(redisReply *r) {
    if (!r) return;
    for (size_t i = 0; i < r->elements; i++) sr_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

/* Depth: our replies nest two levels at most (arrays of strings). */
redisReply *sr_reply_copy(const redisReply *r) {
    redisReply *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->type = r->type;
    c->integer = r->integer;
    if (r->str) {
        c->str = malloc(r->len + 1);
        if (!c->str) goto fail;
        if (r->len) memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }
    if (r->elements) {
        c->element = calloc(r->elements, sizeof *c->element);
        if (!c->element) goto fail;
        c->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            if (!(c->element[i] = sr_reply_copy(r->element[i]))) goto fail;
    }
    return c;
fail:
    sr_reply_free(c);
    return NULL;
}

long long sr_int(const redisReply *rep, size_t i) {
    if (!rep || rep->type != REDIS_REPLY_ARRAY || i >= rep->elements ||
        rep->element[i]->type != REDIS_REPLY_INTEGER)
        return 0;
    return rep->element[i]->integer;
}

/* -- building a request ------------------------------------------------------ */

sr_req *sr_new(store_redis *s, int kind, int script, int nkeys) {
    sr_req *r = s->spare;
    if (r) {
        s->spare = r->next;
        s->nspare--;
    } else if (!(r = calloc(1, sizeof *r))) {
        return NULL;
    }
    char *b = r->buf;
    size_t cb = r->cbuf;
    size_t *lens = r->lens;
    int clens = r->clens;
    *r = (sr_req){.s = s, .kind = (uint8_t)kind, .script = (int16_t)script,
                  .buf = b, .cbuf = cb, .lens = lens, .clens = clens};
    if (script >= 0) {
        const redis_script *sc = &redis_scripts[script];
        sr_args(r, sc->readonly ? "EVALSHA_RO" : "EVALSHA");
        sr_args(r, sc->sha1);
        sr_argu(r, (uint64_t)nkeys);
    }
    return r;
}

void sr_reset_args(sr_req *r, int nkeys) {
    r->argc = 0;
    r->nbuf = 0;
    r->oom = 0;
    if (r->script >= 0) {
        const redis_script *sc = &redis_scripts[r->script];
        sr_args(r, sc->readonly ? "EVALSHA_RO" : "EVALSHA");
        sr_args(r, sc->sha1);
        sr_argu(r, (uint64_t)nkeys);
    }
}

void sr_arg(sr_req *r, const void *p, size_t n) {
    if (r->oom) return;
    if (r->argc == r->clens) {
        int c = r->clens ? r->clens * 2 : 32;
        size_t *l = realloc(r->lens, (size_t)c * sizeof *l);
        if (!l) {
            r->oom = 1;
            return;
        }
        r->lens = l;
        r->clens = c;
    }
    if (n > r->cbuf - r->nbuf) {
        size_t c = r->cbuf ? r->cbuf : 256;
        while (c - r->nbuf < n) {
            if (c > SIZE_MAX / 2) {
                r->oom = 1;
                return;
            }
            c *= 2;
        }
        char *b = realloc(r->buf, c);
        if (!b) {
            r->oom = 1;
            return;
        }
        r->buf = b;
        r->cbuf = c;
    }
    if (n) memcpy(r->buf + r->nbuf, p, n);
    r->nbuf += n;
    r->lens[r->argc++] = n;
}

void sr_args(sr_req *r, const char *str) { sr_arg(r, str, strlen(str)); }

#define SR_DEC_MAX DEC_MAX
#define SR_KEY_MAX 128 /* (our keys are short: a longer one is a bug) */

/* str written backwards to end at `end`: its start. */
static char *str_back(char *end, const char *str, size_t n) {
    end -= n;
    memcpy(end, str, n);
    return end;
}

void sr_argu(sr_req *r, uint64_t v) {
    char t[SR_DEC_MAX];
    char *p = dec_back(t + sizeof t, v);
    sr_arg(r, p, (size_t)(t + sizeof t - p));
}

/* pre a post, or (two) pre a mid b post, built from its end. */
static void key(sr_req *r, const char *pre, uint64_t a, const char *mid,
                uint64_t b, const char *post, int two) {
    size_t lpre = strlen(pre), lmid = two ? strlen(mid) : 0;
    size_t lpost = strlen(post);
    char t[SR_KEY_MAX];
    if (lpre + lmid + lpost + 2 * SR_DEC_MAX > sizeof t) {
        r->oom = 1; /* (a bug, reported as a failure) */
        return;
    }
    char *p = str_back(t + sizeof t, post, lpost);
    if (two) p = str_back(dec_back(p, b), mid, lmid);
    p = str_back(dec_back(p, a), pre, lpre);
    sr_arg(r, p, (size_t)(t + sizeof t - p));
}

void sr_argk(sr_req *r, const char *pre, uint64_t id, const char *post) {
    key(r, pre, id, NULL, 0, post, 0);
}

void sr_argk2(sr_req *r, const char *pre, uint64_t a, const char *mid,
              uint64_t b, const char *post) {
    key(r, pre, a, mid, b, post, 1);
}

/* -- the list ------------------------------------------------------------- */

static void recycle(store_redis *s, sr_req *r) {
    if (r->kind == SR_PRESENCE) free(r->u.pres.users);
    r->u.pres.users = NULL;
    sr_reply_free(r->parked);
    r->parked = NULL;
    if (r->reserve) {
        r->next = s->reserve;
        s->reserve = r;
        return;
    }
    if (s->nspare >= SR_SPARE_MAX || r->cbuf > SR_SPARE_BYTES) {
        free(r->buf);
        free(r->lens);
        free(r);
        return;
    }
    r->next = s->spare;
    s->spare = r;
    s->nspare++;
}

static void idle_update(store_redis *s) {
    if (s->handles_closing) return;
    if (s->head && s->head->state == SR_READY) {
        int rc = uv_idle_start(&s->idle, sr_on_idle);
        assert(rc == 0); /* fails only on a closing handle: not before CLOSED */
        (void)rc;
    } else {
        /* (void): uv_idle_stop cannot fail (returns 0) */
        (void)uv_idle_stop(&s->idle);
    }
}

static int status_of(int rconn_status) {
    return rconn_status == RCONN_ENOMEM ? STORE_ENOMEM : STORE_EIO;
}

static void on_reply(void *ud, const redisReply *rep, int status);

static int send_req(store_redis *s, sr_req *r) {
    rconn *conn = sr_conn(s, r->conn);
    if (!conn) return RCONN_ECLOSED;
    if ((size_t)r->argc > s->cargv) {
        size_t c = (size_t)r->argc * 2;
        const char **a = realloc(s->argv, c * sizeof *a);
        if (!a) return RCONN_ENOMEM;
        s->argv = a;
        s->cargv = c;
    }
    size_t off = 0;
    for (int i = 0; i < r->argc; i++) {
        s->argv[i] = r->buf + off;
        off += r->lens[i];
    }
    return rconn_command(conn, r->argc, s->argv, r->lens, on_reply, r);
}

static void make_ready(store_redis *s, sr_req *r, int status) {
    r->state = SR_READY;
    r->status = status;
    idle_update(s);
}

static void append(store_redis *s, sr_req *r) {
    r->next = NULL;
    if (s->tail) s->tail->next = r;
    else s->head = r;
    s->tail = r;
    s->nreq++;
    r->t_us = uv_hrtime() / 1000;
    if (r->kind == SR_PUT) sr_wait_note(s, r);
}

void sr_submit(store_redis *s, sr_req *r) {
    append(s, r);
    if (r->oom) {
        make_ready(s, r, STORE_ENOMEM);
        return;
    }
    int rc = send_req(s, r);
    if (rc) make_ready(s, r, status_of(rc));
    else r->state = SR_SENT;
}

void sr_submit_ready(store_redis *s, sr_req *r, int status) {
    append(s, r);
    make_ready(s, r, status);
}

void sr_discard(store_redis *s, sr_req *r) { recycle(s, r); }

int sr_reserve_init(store_redis *s) {
    for (int i = 0; i < SR_RESERVE; i++) {
        sr_req *r = calloc(1, sizeof *r);
        if (!r) return -1;
        r->reserve = 1;
        r->next = s->reserve;
        s->reserve = r;
    }
    return 0;
}

sr_req *sr_fail(store_redis *s, int kind, void *token, int status) {
    sr_req *r = sr_new(s, kind, -1, 0);
    if (!r && (r = s->reserve)) {
        s->reserve = r->next;
        *r = (sr_req){.s = s, .kind = (uint8_t)kind, .script = -1,
                      .reserve = 1};
    }
    if (!r) {
        log_error("store_oom_abort",
                  "store: out of memory with %d failed requests waiting to "
                  "be answered; aborting (nothing acknowledged is lost)",
                  SR_RESERVE);
        abort();
    }
    r->token = token;
    sr_submit_ready(s, r, status);
    return r;
}

int sr_resend(store_redis *s, sr_req *r) {
    if (r->kind == SR_PUT) sr_wait_note(s, r); /* (sent after the WAIT
                                                   it had: the next one) */
    int rc = r->oom ? RCONN_ENOMEM : send_req(s, r);
    if (rc) make_ready(s, r, status_of(rc));
    else r->state = SR_SENT;
    return SR_AGAIN;
}

/* The NOSCRIPT answer of a script call (Redis restarted or flushed its
 * cache): SCRIPT LOAD it and resend r once. 1 when resent. */
static int noscript(store_redis *s, sr_req *r, const redisReply *rep) {
    if (r->script < 0 || r->retried || rep->len < 8 ||
        memcmp(rep->str, "NOSCRIPT", 8) != 0)
        return 0;
    sr_req *l = sr_new(s, SR_LOAD, -1, 0);
    if (!l) return 0;
    const redis_script *sc = &redis_scripts[r->script];
    sr_args(l, "SCRIPT");
    sr_args(l, "LOAD");
    sr_arg(l, sc->text, sc->len);
    l->u.config.which = r->script;
    l->conn = r->conn; /* (before r's resend on r's connection) */
    sr_submit(s, l);
    r->retried = 1;
    return 1;
}

static void log_error_reply(store_redis *s, const sr_req *r,
                            const redisReply *rep) {
    unsigned long long quiet;
    if (!log_limit_pass(&s->err_limit, uv_now(s->loop), &quiet)) return;
    log_warn("cluster_redis_error",
             "cluster: redis %s answered %s with an error: %.*s (%llu more "
             "not logged in the last second)",
             s->cmd ? rconn_peer(s->cmd) : "?", kind_names[r->kind],
             (int)(rep->len > 300 ? 300 : rep->len), rep->str, quiet);
}

/* Complete r (the head) with rep (STORE_OK) or a failure; it leaves the
 * list unless its handler sent it again. */
static void run(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    assert(s->head == r);
    r->state = SR_HANDLING;
    if (st == STORE_OK && rep && rep->type == REDIS_REPLY_ERROR) {
        if (noscript(s, r, rep)) {
            (void)sr_resend(s, r); /* (always SR_AGAIN) */
            return;
        }
        if (r->kind != SR_CONFIG) log_error_reply(s, r, rep);
        st = STORE_EIO;
    }
    if (handlers[r->kind](s, r, rep, st) == SR_AGAIN) return;
    assert(s->head == r);
    s->head = r->next;
    if (!s->head) s->tail = NULL;
    s->nreq--;
    recycle(s, r);
}

/* Complete every READY request at the head, in order. */
static void drain(store_redis *s) {
    sr_req *r;
    while ((r = s->head) && r->state == SR_READY) {
        redisReply *p = r->parked;
        r->parked = NULL;
        run(s, r, p, p ? STORE_OK : r->status);
        sr_reply_free(p);
    }
}

static void on_reply(void *ud, const redisReply *rep, int status) {
    sr_req *r = ud;
    store_redis *s = r->s;
    assert(r->state == SR_SENT);
    drain(s);
    if (s->head == r) {
        run(s, r, rep, status == RCONN_OK ? STORE_OK : status_of(status));
        drain(s);
    } else { /* its turn has not come: park it */
        r->state = SR_READY;
        r->status = status == RCONN_OK ? STORE_OK : status_of(status);
        if (status == RCONN_OK && !(r->parked = sr_reply_copy(rep)))
            r->status = STORE_ENOMEM;
    }
    idle_update(s);
    SR_CHECK(s);
}

void sr_on_idle(uv_idle_t *h) {
    store_redis *s = h->data;
    drain(s);
    idle_update(s);
    SR_CHECK(s);
}

void sr_q_free(store_redis *s) {
    sr_req *r;
    while ((r = s->head)) {
        s->head = r->next;
        if (r->kind == SR_MARKS && r->u.marks.acc &&
            --r->u.marks.acc->left == 0) {
            free(r->u.marks.acc->m);
            free(r->u.marks.acc);
        } else if (r->kind == SR_GROUP_MEMBERS && r->u.gload.gl) {
            sr_reply_free(r->u.gload.gl->hash);
            free(r->u.gload.gl);
        }
        sr_reply_free(r->parked);
        if (r->kind == SR_PRESENCE) free(r->u.pres.users);
        free(r->buf);
        free(r->lens);
        free(r);
    }
    s->tail = NULL;
    s->nreq = 0;
    while ((r = s->spare)) {
        s->spare = r->next;
        free(r->buf);
        free(r->lens);
        free(r);
    }
    while ((r = s->reserve)) {
        s->reserve = r->next;
        free(r);
    }
    s->nspare = 0;
    free(s->argv);
    s->argv = NULL;
    s->cargv = 0;
}

/* The list's part of the invariants (store_redis.c lists them). */
int sr_q_check(const store_redis *s) {
    size_t n = 0, pending = 0;
    const sr_req *last = NULL;
    for (const sr_req *r = s->head; r; r = r->next) {
        n++;
        last = r;
        assert(r->s == s && r->kind < SR_NKINDS);                     /* (3) */
        assert(r->state == SR_SENT || r->state == SR_READY ||
               (r->state == SR_HANDLING && r == s->head));
        assert(!r->parked || r->state == SR_READY);
        assert(r->argc <= r->clens && r->nbuf <= r->cbuf);
        assert(r->conn < s->nconns);
        assert(r->conn == 0 || r->kind == SR_PUT || r->kind == SR_WAIT ||
               r->kind == SR_LOAD);
        if (r->kind == SR_PUT) pending += r->u.put.len;
    }
    assert(n == s->nreq && last == s->tail);                          /* (2) */
    assert(pending == s->pending);                                    /* (4) */
    assert(!(s->head && s->head->state == SR_READY) ||                /* (5) */
           s->handles_closing ||
           uv_is_active((const uv_handle_t *)&s->idle));
    size_t k = 0;
    for (const sr_req *r = s->spare; r; r = r->next) k++;
    assert(k == s->nspare && k <= SR_SPARE_MAX);
    (void)n;
    (void)pending;
    (void)last;
    (void)k;
    return 1;
}
