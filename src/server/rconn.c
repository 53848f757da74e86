/*
 * rconn.c -- one Redis connection's state machine (contract: rconn.h):
 * the states and their edges, the invariants, the public calls, commands
 * from rconn_command to their completion, the timer, close. The socket is
 * rconn_net.c's, the replies rconn_reply.c's, making one rconn_new.c's
 * (rconn_int.h).
 *
 * Invariants (rconn_check, after every callback unless NDEBUG):
 *  (1) state < CLOSED (CLOSED lasts only while the memory is freed).
 *  (2) sock => state is CONNECTING, TLS, HELLO or READY; TLS, HELLO and
 *      READY => sock is connected; res => CONNECTING and no sock.
 *  (3) TLS => the sock has a TLS session; HELLO or READY => it has one
 *      exactly when o.tls.
 *  (4) sent non-empty => HELLO or READY; HELLO => every command in sent is
 *      internal and hello_left == sent.n > 0.
 *  (5) out holds exactly the bytes of queued, in order (out.len == the sum
 *      of their len); not READY => every queued command has RCONN_WAIT; no
 *      queued or done command is internal.
 *  (6) charged == the sum of len + RCONN_CMD_OVERHEAD over the owner's
 *      commands in queued, sent, done and held; charged <= max_queue_bytes.
 *  (7) done non-empty or a write failure pending => the idle handle is on.
 *  (8) DOWN, CONNECTING, TLS or HELLO => the timer is on (backoff or
 *      connect deadline), due no later than c->due.
 *  (9) CLOSING => no sock, no res, queued and sent empty, out empty; held
 *      non-empty only inside on_ready.
 * (10) subscription counts >= 0, and non-zero only when READY.
 * (11) streak (on_down told, on_ready not yet) => not READY.
 * (12) every list's n is its length and tail its last element.
 */
#include "server/rconn_int.h"

#include "common/dec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEVER UINT64_MAX

static const char *const state_names[RCONN_NSTATES] = {
    "IDLE", "DOWN", "CONNECTING", "TLS", "HELLO", "READY", "CLOSING",
    "CLOSED"};

#define BIT(s) (1u << (s))
/* An attempt failed: the next address, or the round is over. */
#define ONWARD (BIT(RCONN_CONNECTING) | BIT(RCONN_DOWN) | BIT(RCONN_CLOSING))

/* The diagram of rconn.h, row by row: edges[from] has bit `to` set. */
static const unsigned edges[RCONN_NSTATES] = {
    [RCONN_IDLE] = BIT(RCONN_DOWN) | BIT(RCONN_CLOSING),
    [RCONN_DOWN] = BIT(RCONN_CONNECTING) | BIT(RCONN_CLOSING),
    [RCONN_CONNECTING] = BIT(RCONN_TLS) | BIT(RCONN_HELLO) | ONWARD,
    [RCONN_TLS] = BIT(RCONN_HELLO) | ONWARD,
    [RCONN_HELLO] = BIT(RCONN_READY) | ONWARD,
    [RCONN_READY] = BIT(RCONN_DOWN) | BIT(RCONN_CLOSING),
    [RCONN_CLOSING] = BIT(RCONN_CLOSED),
    [RCONN_CLOSED] = 0,
};

const char *rconn_state_name(rconn_state s) {
    return s < RCONN_NSTATES ? state_names[s] : "?";
}

int rconn_edge(rconn_state from, rconn_state to) {
    return from < RCONN_NSTATES && to < RCONN_NSTATES &&
           (edges[from] & BIT(to)) != 0;
}

void rconn__to(rconn *c, rconn_state to) {
    assert(rconn_edge(c->state, to));
    c->state = to;
}

const char *rconn_strerror(int code) {
    switch (code) {
    case RCONN_OK: return "ok";
    case RCONN_EINVAL: return "invalid argument";
    case RCONN_ENOMEM: return "out of memory";
    case RCONN_ELIMIT: return "queue limit reached (max_queue_bytes)";
    case RCONN_EDOWN: return "connection to Redis lost before the reply";
    case RCONN_EUNSENT: return "not connected to Redis: not sent";
    case RCONN_ECLOSED: return "connection closed by its owner";
    case RCONN_ETLSCONF: return "unusable TLS configuration";
    case RCONN_ESTATE: return "already started";
    default: return "unknown error";
    }
}

/* ---- queues ---------------------------------------------------------- */

void rconn__push(rconn_cmdq *q, rconn_cmd *x) {
    x->next = NULL;
    if (q->tail) q->tail->next = x;
    else q->head = x;
    q->tail = x;
    q->n++;
}

rconn_cmd *rconn__pop(rconn_cmdq *q) {
    rconn_cmd *x = q->head;
    if (!x) return NULL;
    q->head = x->next;
    if (!q->head) q->tail = NULL;
    q->n--;
    x->next = NULL;
    return x;
}

/* Append all of b to the end of a; b is left empty. O(1). */
static void q_append(rconn_cmdq *a, rconn_cmdq *b) {
    if (!b->head) return;
    if (a->tail) a->tail->next = b->head;
    else a->head = b->head;
    a->tail = b->tail;
    a->n += b->n;
    *b = (rconn_cmdq){0};
}

/* Move every command of q to done with status (internal ones: freed). */
static void fail_all(rconn *c, rconn_cmdq *q, int status) {
    rconn_cmd *x;
    while ((x = rconn__pop(q))) {
        if (x->flags & RCMD_INTERNAL) {
            free(x);
            continue;
        }
        x->status = (int8_t)status;
        rconn__push(&c->done, x);
    }
}

/* ---- reasons --------------------------------------------------------- */

static void vsay(rconn *c, const char *fmt, va_list ap) {
    int n = snprintf(c->reason, sizeof c->reason, "%s: ", c->peer);
    if (n < 0 || (size_t)n >= sizeof c->reason) return;
    (void)vsnprintf(c->reason + n, sizeof c->reason - (size_t)n, fmt, ap);
}

void rconn__say(rconn *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsay(c, fmt, ap);
    va_end(ap);
}

/* ---- handles: timer, prepare, idle ----------------------------------- */

static void on_timer(uv_timer_t *t);
static void on_prep(uv_prepare_t *p);
static void on_idle(uv_idle_t *h);

static uint64_t now_ms(const rconn *c) { return uv_now(c->loop); }

/* When the timer must fire next (NEVER: not at all). */
static uint64_t next_due(const rconn *c) {
    uint64_t due = NEVER, t = c->o.command_timeout_ms;
    switch (c->state) {
    case RCONN_DOWN:
    case RCONN_CONNECTING:
    case RCONN_TLS:
    case RCONN_HELLO:
        due = c->due;
        break;
    case RCONN_READY:
        if (c->sent.head) due = c->sent.head->t_ms + t;
        else if (c->o.keepalive_ms) due = c->last_io + c->o.keepalive_ms;
        break;
    default:
        break;
    }
    if (c->state != RCONN_READY && c->queued.head &&
        c->queued.head->t_ms + c->o.wait_timeout_ms < due)
        due = c->queued.head->t_ms + c->o.wait_timeout_ms;
    return due;
}

/* Start the timer for next_due unless it fires sooner already (it then
 * looks again: deadlines only move later between two firings, so a late
 * re-arm costs one early wake-up, never a missed deadline). */
static void rearm(rconn *c) {
    if (c->state >= RCONN_CLOSING) return;
    uint64_t due = next_due(c);
    if (due == NEVER) {
        if (c->timer_due) {
            /* (void): uv_timer_stop cannot fail (returns 0) */
            (void)uv_timer_stop(&c->timer);
            c->timer_due = 0;
        }
        return;
    }
    if (c->timer_due && c->timer_due <= due) return;
    uint64_t now = now_ms(c);
    int r = uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
    assert(r == 0); /* fails only on a closing handle: never before CLOSING */
    (void)r;
    c->timer_due = due;
}

void rconn__wake(rconn *c) {
    int r = uv_prepare_start(&c->prep, on_prep);
    assert(r == 0); /* fails only on a closing handle: never before CLOSING */
    (void)r;
}

static void defer(rconn *c) {
    if (!c->done.head && !c->pend_sock && c->state != RCONN_CLOSING) return;
    int r = uv_idle_start(&c->idle, on_idle);
    assert(r == 0); /* fails only on a closing handle: not before the
                       idle callback itself closes it */
    (void)r;
}

/* A wait in [w/2, w] (xorshift64: jitter, not secrecy). */
static unsigned jitter(rconn *c, unsigned w) {
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    unsigned half = w / 2;
    return half + (unsigned)(c->rng % (uint64_t)(w - half + 1));
}

/* DOWN with the next backoff; on_down when a streak begins. */
static void go_down(rconn *c) {
    rconn__to(c, RCONN_DOWN);
    unsigned w = jitter(c, c->backoff);
    c->backoff = c->backoff > c->o.backoff_max_ms / 2 ? c->o.backoff_max_ms
                                                      : c->backoff * 2;
    c->due = now_ms(c) + w;
    rearm(c);
    defer(c);
    if (!c->streak) {
        c->streak = 1;
        if (c->o.on_down) c->o.on_down(c->o.ud, c->reason);
    }
}

/* Try o.addrs from addr_i on until one starts; DOWN when none does. */
static void try_addresses(rconn *c) {
    while (c->addr_i < c->o.naddrs) {
        rconn__to(c, RCONN_CONNECTING);
        c->due = now_ms(c) + c->o.connect_timeout_ms;
        if (rconn__net_start(c) == 0) {
            rearm(c);
            return;
        }
        c->stats.attempts_failed++;
        c->addr_i++;
    }
    go_down(c);
}

/* Keep the queued RCONN_WAIT commands (and their bytes, compacted); the
 * rest fail with status. O(queued). */
static void keep_waiting(rconn *c, int status) {
    rconn_cmdq keep = {0};
    size_t rd = 0, wr = 0;
    rconn_cmd *x;
    while ((x = rconn__pop(&c->queued))) {
        size_t len = x->len;
        assert(rd + len <= c->out.len);
        if (x->flags & RCONN_WAIT) {
            if (wr != rd) memmove(c->out.data + wr, c->out.data + rd, len);
            wr += len;
            rconn__push(&keep, x);
        } else {
            x->status = (int8_t)status;
            rconn__push(&c->done, x);
        }
        rd += len;
    }
    c->out.len = wr;
    c->queued = keep;
}

/* READY broke: everything in flight fails, DOWN. */
static void lose(rconn *c) {
    c->stats.downs++;
    rconn__net_stop(c);
    c->nchan = c->npat = c->nssub = 0;
    fail_all(c, &c->sent, RCONN_EDOWN);
    keep_waiting(c, RCONN_EUNSENT);
    go_down(c); /* streak was 0 (11): on_down is told */
}

void rconn__fail(rconn *c, const char *fmt, ...) {
    if (c->state < RCONN_CONNECTING || c->state > RCONN_READY) return;
    va_list ap;
    va_start(ap, fmt);
    vsay(c, fmt, ap);
    va_end(ap);
    if (c->state == RCONN_READY) {
        lose(c);
        return;
    }
    rconn__net_stop(c);
    fail_all(c, &c->sent, RCONN_EDOWN); /* internal (AUTH, ROLE): freed */
    c->hello_left = 0;
    c->stats.attempts_failed++;
    c->addr_i++;
    try_addresses(c);
}

void rconn__ready(rconn *c) {
    rconn__to(c, RCONN_READY);
    c->streak = 0;
    c->backoff = c->o.backoff_min_ms;
    c->stats.connects++;
    c->last_io = now_ms(c);
    /* The RCONN_WAIT backlog goes after what on_ready queues. */
    assert(!c->held.head && c->held_out.len == 0);
    c->held = c->queued;
    c->queued = (rconn_cmdq){0};
    buf t = c->held_out;
    c->held_out = c->out;
    c->out = t;
    c->in_ready = 1;
    if (c->o.on_ready) c->o.on_ready(c->o.ud);
    c->in_ready = 0;
    if (c->state != RCONN_READY) { /* closed inside on_ready */
        fail_all(c, &c->held, RCONN_ECLOSED);
        c->held_out.len = 0;
    } else if (c->out.len == 0) {
        t = c->out;
        c->out = c->held_out;
        c->held_out = t;
        q_append(&c->queued, &c->held);
    } else if (buf_append(&c->out, c->held_out.data, c->held_out.len,
                          SIZE_MAX) == 0) {
        c->held_out.len = 0;
        q_append(&c->queued, &c->held);
    } else {
        rconn__say(c, "out of memory: the commands that waited for the "
                   "connection were not sent");
        fail_all(c, &c->held, RCONN_EUNSENT);
        c->held_out.len = 0;
    }
    if (c->out.len) rconn__wake(c);
    rearm(c);
    defer(c);
}

/* ---- callbacks of the handles ---------------------------------------- */

/* RCONN_WAIT commands older than the wait timeout, not READY: fail. */
static void expire_waiting(rconn *c, uint64_t now) {
    if (c->state == RCONN_READY) return;
    rconn_cmd *x;
    while ((x = c->queued.head) && x->t_ms + c->o.wait_timeout_ms <= now) {
        x = rconn__pop(&c->queued);
        buf_consume(&c->out, x->len);
        x->status = RCONN_EUNSENT;
        rconn__push(&c->done, x);
    }
    defer(c);
}

static void on_timer(uv_timer_t *t) {
    rconn *c = t->data;
    uint64_t now = now_ms(c);
    c->timer_due = 0;
    expire_waiting(c, now);
    switch (c->state) {
    case RCONN_DOWN:
        if (now >= c->due) {
            c->addr_i = 0;
            try_addresses(c);
        }
        break;
    case RCONN_CONNECTING:
    case RCONN_TLS:
    case RCONN_HELLO:
        if (now >= c->due)
            rconn__fail(c, "no answer within %u ms (connect timeout)",
                        c->o.connect_timeout_ms);
        break;
    case RCONN_READY:
        if (c->sent.head &&
            now >= c->sent.head->t_ms + c->o.command_timeout_ms) {
            c->stats.deadlines++;
            rconn__fail(c, "no reply within %u ms (command timeout): Redis "
                        "is stalled or unreachable", c->o.command_timeout_ms);
        } else if (!c->sent.head && !c->queued.head && c->o.keepalive_ms &&
                   now >= c->last_io + c->o.keepalive_ms) {
            rconn__ping(c);
        }
        break;
    default:
        break;
    }
    rearm(c);
    RCONN_CHECK(c);
}

/* Write every queued command in one write. 0 or a libuv error. */
static int flush(rconn *c) {
    if (c->state != RCONN_READY || c->out.len == 0 || rconn__net_busy(c))
        return 0;
    uint64_t now = now_ms(c), hr = uv_hrtime();
    rconn_cmd *x;
    while ((x = rconn__pop(&c->queued))) {
        x->t_ms = now;
        x->t_hr = hr;
        c->stats.commands++;
        rconn__push(&c->sent, x);
    }
    int r = rconn__net_put(c, &c->out);
    rearm(c);
    return r;
}

static void on_prep(uv_prepare_t *p) {
    rconn *c = p->data;
    /* (void): uv_prepare_stop cannot fail (returns 0) */
    (void)uv_prepare_stop(p);
    int r = flush(c);
    if (r) rconn__fail(c, "write failed: %s", uv_strerror(r));
    RCONN_CHECK(c);
}

static void on_handle_closed(uv_handle_t *h) {
    rconn *c = h->data;
    assert(c->nhandles > 0);
    c->nhandles--;
    rconn__maybe_free(c);
}

static void on_idle(uv_idle_t *h) {
    rconn *c = h->data;
    if (c->pend_sock) {
        int e = c->pend_err;
        c->pend_sock = NULL;
        c->pend_err = 0;
        rconn__fail(c, "write failed: %s", uv_strerror(e));
    }
    rconn_cmdq q = c->done;
    c->done = (rconn_cmdq){0};
    rconn_cmd *x;
    while ((x = rconn__pop(&q))) rconn__complete(c, x, NULL, x->status);
    if (c->done.head || c->pend_sock) return; /* queued by a callback: next */
    /* (void): uv_idle_stop cannot fail (returns 0) */
    (void)uv_idle_stop(h);
    if (c->state == RCONN_CLOSING) {
        if (c->handles_closing) return;
        c->handles_closing = 1;
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->prep, on_handle_closed);
        uv_close((uv_handle_t *)&c->idle, on_handle_closed);
        return;
    }
    RCONN_CHECK(c);
}

/* ---- completions ----------------------------------------------------- */

void rconn__complete(rconn *c, rconn_cmd *x, const redisReply *r, int status) {
    rconn_cb cb = x->cb;
    void *ud = x->ud;
    if (!(x->flags & RCMD_INTERNAL)) {
        size_t charge = (size_t)x->len + RCONN_CMD_OVERHEAD;
        assert(c->charged >= charge);
        c->charged -= charge;
        if (status == RCONN_OK) c->stats.replies++;
        else c->stats.failed++;
    }
    free(x);
    if (cb) cb(ud, r, status);
}

/* ---- the public calls ------------------------------------------------ */

void rconn__maybe_free(rconn *c) {
    if (c->state != RCONN_CLOSING || !c->handles_closing || c->nhandles ||
        c->nsocks || c->nres)
        return;
    rconn__to(c, RCONN_CLOSED);
    void (*closed)(void *) = c->closed;
    void *ud = c->closed_ud;
    rconn__free(c);
    if (closed) closed(ud);
}

int rconn_start(rconn *c) {
    if (c->state != RCONN_IDLE) return RCONN_ESTATE;
    rconn__to(c, RCONN_DOWN);
    c->due = now_ms(c);
    rearm(c);
    return 0;
}

/* A command in RESP (*argc, then $len and the bytes of each argument),
 * written straight into the output: hiredis' redisFormatCommandArgv
 * formats each length with sprintf into a buffer of its own, which the
 * output then copied (about half of a node's instructions per put,
 * callgrind). The size first, for the queue's limit. */
static size_t arg_len(const char **argv, const size_t *lens, int i) {
    return lens ? lens[i] : strlen(argv[i]);
}

size_t rconn__resp_size(int argc, const char **argv, const size_t *lens) {
    size_t n = 1 + dec_len((uint64_t)argc) + 2;
    for (int i = 0; i < argc; i++) {
        size_t l = arg_len(argv, lens, i);
        n += 1 + dec_len(l) + 2 + l + 2;
    }
    return n;
}

static char *put_dec_line(char *p, char kind, uint64_t v) {
    char t[DEC_MAX];
    char *d = dec_back(t + sizeof t, v);
    size_t k = (size_t)(t + sizeof t - d);
    *p++ = kind;
    memcpy(p, d, k);
    p += k;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

void rconn__resp_write(char *p, int argc, const char **argv,
                       const size_t *lens) {
    p = put_dec_line(p, '*', (uint64_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t l = arg_len(argv, lens, i);
        p = put_dec_line(p, '$', l);
        if (l) memcpy(p, argv[i], l);
        p += l;
        *p++ = '\r';
        *p++ = '\n';
    }
}

int rconn_command(rconn *c, int argc, const char **argv,
                  const size_t *argvlen, rconn_cb cb, void *ud) {
    return rconn_command_ex(c, 0, argc, argv, argvlen, cb, ud);
}

int rconn_command_ex(rconn *c, unsigned flags, int argc, const char **argv,
                     const size_t *argvlen, rconn_cb cb, void *ud) {
    if (c->state >= RCONN_CLOSING) return RCONN_ECLOSED;
    if (argc < 1 || !argv || !argv[0] || (flags & ~RCONN_WAIT))
        return RCONN_EINVAL;
    size_t n = rconn__resp_size(argc, argv, argvlen);
    size_t charge = n + RCONN_CMD_OVERHEAD;
    if (n > UINT32_MAX || charge > c->o.max_queue_bytes - c->charged)
        return RCONN_ELIMIT;
    rconn_cmd *x = calloc(1, sizeof *x);
    int queue = c->state == RCONN_READY || (flags & RCONN_WAIT);
    if (!x || (queue && buf_reserve(&c->out, n, SIZE_MAX))) {
        free(x);
        return RCONN_ENOMEM;
    }
    if (queue) {
        rconn__resp_write((char *)c->out.data + c->out.len, argc, argv,
                          argvlen);
        c->out.len += n;
    }
    x->cb = cb;
    x->ud = ud;
    x->len = (uint32_t)n;
    x->flags = (uint8_t)flags;
    x->t_ms = now_ms(c);
    x->kind = rconn__kind(argv[0], argvlen ? argvlen[0] : strlen(argv[0]));
    x->nargs = (uint32_t)(argc - 1);
    c->charged += charge;
    if (!queue) { /* fail fast, later */
        x->status = RCONN_EUNSENT;
        rconn__push(&c->done, x);
        defer(c);
    } else {
        rconn__push(&c->queued, x);
        if (c->state == RCONN_READY) rconn__wake(c);
        else rearm(c);
    }
    return 0;
}

void rconn_flush(rconn *c) {
    int r = flush(c);
    if (r) { /* reported from the idle callback, not inside this call */
        c->pend_sock = c->sock;
        c->pend_err = r;
        defer(c);
    }
}

void rconn_close(rconn *c, void (*closed)(void *ud), void *ud) {
    if (c->state >= RCONN_CLOSING) return;
    c->closed = closed;
    c->closed_ud = ud;
    rconn__net_stop(c);
    rconn__to(c, RCONN_CLOSING);
    (void)snprintf(c->reason, sizeof c->reason, "closed by its owner");
    c->nchan = c->npat = c->nssub = 0;
    fail_all(c, &c->sent, RCONN_ECLOSED);
    fail_all(c, &c->queued, RCONN_ECLOSED);
    c->out.len = 0;
    c->streak = 0;
    /* (void): both stops cannot fail (they return 0) */
    (void)uv_timer_stop(&c->timer);
    (void)uv_prepare_stop(&c->prep);
    c->timer_due = 0;
    defer(c); /* completions, then the handles close */
}

rconn_state rconn_get_state(const rconn *c) { return c->state; }
const char *rconn_last_error(const rconn *c) { return c->reason; }
const char *rconn_peer(const rconn *c) { return c->peer; }
size_t rconn_queued_bytes(const rconn *c) { return c->charged; }
const rconn_stats *rconn_stats_get(const rconn *c) { return &c->stats; }

/* ---- invariants ------------------------------------------------------ */

/* (12) and the sums of (5) and (6) over one list. */
static void walk(const rconn *c, const rconn_cmdq *q, size_t *bytes,
                 size_t *charge, int queued) {
    size_t n = 0;
    const rconn_cmd *last = NULL;
    for (const rconn_cmd *x = q->head; x; x = x->next) {
        n++;
        last = x;
        *bytes += x->len;
        if (!(x->flags & RCMD_INTERNAL))
            *charge += (size_t)x->len + RCONN_CMD_OVERHEAD;
        if (queued) {
            assert(!(x->flags & RCMD_INTERNAL));                       /* (5) */
            assert(c->state == RCONN_READY || (x->flags & RCONN_WAIT));
        }
    }
    assert(n == q->n && last == q->tail);                             /* (12) */
    (void)c;
    (void)queued;
    (void)n;
    (void)last;
}

int rconn_check(const rconn *c) {
    rconn_state s = c->state;
    assert(s < RCONN_CLOSED);                                          /* (1) */
    int live = s >= RCONN_CONNECTING && s <= RCONN_READY;
    int linked = s >= RCONN_TLS && s <= RCONN_READY;
    assert(!c->sock || live);                                          /* (2) */
    assert(!linked || (c->sock && c->sock->connected));
    assert(!c->res || (s == RCONN_CONNECTING && !c->sock));
    assert(s != RCONN_TLS || c->sock->tls);                            /* (3) */
    assert(!(s == RCONN_HELLO || s == RCONN_READY) ||
           !c->sock->tls == !c->o.tls);
    assert(!c->sent.head || s == RCONN_HELLO || s == RCONN_READY);     /* (4) */
    if (s == RCONN_HELLO) {
        assert(c->hello_left > 0 && c->hello_left == c->sent.n);
        for (const rconn_cmd *x = c->sent.head; x; x = x->next)
            assert(x->flags & RCMD_INTERNAL);
    }
    size_t bytes = 0, charge = 0, ignore = 0;
    walk(c, &c->queued, &bytes, &charge, 1);
    assert(bytes == c->out.len);                                       /* (5) */
    walk(c, &c->sent, &ignore, &charge, 0);
    walk(c, &c->done, &ignore, &charge, 0);
    for (const rconn_cmd *x = c->done.head; x; x = x->next)
        assert(!(x->flags & RCMD_INTERNAL) && x->status < 0);
    walk(c, &c->held, &ignore, &charge, 0);
    assert(charge == c->charged && c->charged <= c->o.max_queue_bytes);/* (6) */
    assert(!(c->done.head || c->pend_sock) ||                          /* (7) */
           uv_is_active((const uv_handle_t *)&c->idle));
    if (s == RCONN_DOWN || (live && s != RCONN_READY))                 /* (8) */
        assert(c->timer_due != 0 && c->timer_due <= c->due);
    if (s == RCONN_CLOSING) {                                          /* (9) */
        assert(!c->sock && !c->res && !c->queued.head && !c->sent.head);
        assert(c->out.len == 0);
    }
    assert(!c->held.head || c->in_ready);
    assert(c->nchan >= 0 && c->npat >= 0 && c->nssub >= 0);          /* (10) */
    assert(s == RCONN_READY || c->nchan + c->npat + c->nssub == 0);
    assert(!c->streak || s != RCONN_READY);                           /* (11) */
    (void)live;
    (void)linked;
    (void)bytes;
    (void)charge;
    (void)ignore;
    return 1;
}
