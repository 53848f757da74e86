/*
 * conn.c -- a connection's state machine, its invariants, its place on the
 * hub's lists, and its lifetime (see conn.h).
 */
#include "server/conn.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/cidset.h"

static const char *const state_names[CONN_NSTATES] = {
    "NEW", "LOGIN", "DENIED", "SYNC", "FETCHING", "LIVE", "HELD", "ECHO",
    "CLOSING", "SHUTDOWN", "CLOSED"};

#define BIT(s) (1u << (s))
#define LEAVING (BIT(CONN_CLOSING) | BIT(CONN_CLOSED))

/* The diagram of conn.h, row by row: edges[from] has bit `to` set. */
static const unsigned edges[CONN_NSTATES] = {
    [CONN_NEW] = BIT(CONN_LOGIN) | BIT(CONN_SYNC) | BIT(CONN_ECHO) | LEAVING,
    [CONN_LOGIN] = BIT(CONN_DENIED) | BIT(CONN_SYNC) | BIT(CONN_ECHO) | LEAVING,
    [CONN_DENIED] = LEAVING,
    [CONN_SYNC] = BIT(CONN_FETCHING) | LEAVING,
    [CONN_FETCHING] = BIT(CONN_SYNC) | BIT(CONN_LIVE) | BIT(CONN_HELD) | LEAVING,
    [CONN_LIVE] = BIT(CONN_SYNC) | BIT(CONN_HELD) | LEAVING,
    [CONN_HELD] = BIT(CONN_LIVE) | BIT(CONN_SYNC) | LEAVING,
    [CONN_ECHO] = LEAVING,
    [CONN_CLOSING] = BIT(CONN_SHUTDOWN) | BIT(CONN_CLOSED),
    [CONN_SHUTDOWN] = BIT(CONN_CLOSED),
    [CONN_CLOSED] = 0,
};

const char *conn_state_name(conn_state s) {
    return s < CONN_NSTATES ? state_names[s] : "?";
}

int conn_edge(conn_state from, conn_state to) {
    return from < CONN_NSTATES && to < CONN_NSTATES &&
           (edges[from] & BIT(to)) != 0;
}

static void on_timer_closed(uv_handle_t *t);

void conn_to(conn *c, conn_state to) {
    conn_state from = c->state;
    assert(conn_edge(from, to));
    hub *h = c->hub;
    if (from == CONN_NEW) dlist_del(&h->pending, &c->plink);          /* (1) */
    if (from == CONN_HELD) /* (8): sent, or stored (fetched again) */
        c->tail.len = c->tail_at = 0;
    if (to >= CONN_CLOSING) {                                        /* (12) */
        conn_unroute(c);
        if (dlink_linked(&c->plink)) dlist_del(&h->idle, &c->plink);
    }
    c->state = to;
    if (to == CONN_CLOSED) {                                         /* (11) */
        conn_unlist(c);
        transport_close(&c->io);
        if (c->timer) uv_close((uv_handle_t *)c->timer, on_timer_closed);
    }
    if (log_enabled(LOG_DEBUG) && to != CONN_FETCHING && from != CONN_FETCHING)
        CLOG(c, LOG_DEBUG, "conn_state",
             "%s -> %s", state_names[from], state_names[to]);
}

conn *conn_new(hub *h, const transport_ops *ops, int *err) {
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        *err = UV_ENOMEM;
        return NULL;
    }
    if ((*err = transport_init(&c->io, h->loop, ops))) {
        free(c);
        return NULL;
    }
    c->hub = h;
    c->handles = 1;
    c->refs = 1; /* the caller's */
    c->t_accept = c->t_rx = uv_now(h->loop);
    dlist_push_tail(&h->conns, &c->all);
    dlist_push_tail(&h->pending, &c->plink);
    if (h->ops->arm) h->ops->arm(h, HUB_PENDING);
    return c;
}

void conn_pending_renew(conn *c) {
    assert(c->state == CONN_NEW);
    hub *h = c->hub;
    c->t_accept = uv_now(h->loop);
    dlist_del(&h->pending, &c->plink); /* the list stays oldest first */
    dlist_push_tail(&h->pending, &c->plink);
}

static void on_timer_closed(uv_handle_t *t) {
    conn *c = t->data;
    free(t);
    c->timer = NULL;
    conn_handle_closed(c);
}

void conn_unroute(conn *c) {
    uint32_t user = c->node.user;
    if (!user) return;
    hub *h = c->hub;
    router_del(h->router, &c->node);
    if (c->sig) h->nsig--;
    if (!router_first(h->router, user)) h->ops->offline(h, user);
}

void conn_track_slow(conn *c, uint64_t id, uint32_t author, uint32_t grp) {
    rnoteq *q = &c->track;
    if (q->n > q->head && q->v[q->n - 1].author == author &&
        q->v[q->n - 1].grp == grp) {
        assert(id > q->v[q->n - 1].last);
        q->v[q->n - 1].last = id; /* (the run goes on) */
        return;
    }
    if (q->n - q->head >= CONN_TRACK_MAX) return; /* (conn.h) */
    if (q->n == q->cap) {
        if (q->head) { /* reclaim the front */
            memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof *q->v);
            q->n -= q->head;
            q->head = 0;
        } else {
            uint32_t cap = q->cap ? q->cap * 2 : 8;
            rnote *v = realloc(q->v, cap * sizeof *v);
            if (!v) return; /* (this live receipt is lost, its mark is not) */
            q->v = v;
            q->cap = cap;
        }
    }
    q->v[q->n++] = (rnote){id, id, author, grp};
}

static void conn_free(conn *c) {
    hub *h = c->hub;
    dlist_del(&h->conns, &c->all);
    h->ops->freed(h, c);
    framing_raw_free(&c->raw);
    framing_ws_free(c->ws);
    buf_free(&c->hin);
    outq_free(&c->out);
    buf_free(&c->wire);
    tls_conn_free(c->tls);
    buf_free(&c->tail);
    seqidq_free(&c->ackq);
    cidset_free(c->cids);
    free(c->track.v);
    CLOG(c, LOG_DEBUG, "conn_freed", "freed");
    free(c);
}

/* Free c once it is closed, its handles are closed and nothing names it. */
static void maybe_free(conn *c) {
    if (c->state == CONN_CLOSED && c->refs == 0 && c->handles == 0)
        conn_free(c);
}

void conn_unref(conn *c) {
    assert(c->refs > 0);
    if (--c->refs == 0 && c->state == CONN_CLOSED && c->handles == 0) {
        conn_free(c);
        return;
    }
    conn_check(c);
}

void conn_handle_closed(conn *c) {
    assert(c->handles > 0);
    c->handles--;
    maybe_free(c);
}

int conn_timer(conn *c, uv_timer_cb cb, uint64_t ms) {
    assert(c->state != CONN_CLOSED);
    if (!c->timer) {
        uv_timer_t *t = malloc(sizeof *t);
        if (!t) return UV_ENOMEM;
        int r = uv_timer_init(c->hub->loop, t);
        if (r) {
            free(t);
            return r;
        }
        t->data = c;
        c->timer = t;
        c->handles++;
    }
    return uv_timer_start(c->timer, cb, ms, 0);
}

int conn_reading(conn *c) {
    int closing = c->state == CONN_CLOSING || c->state == CONN_SHUTDOWN;
    int want = (c->state == CONN_NEW || conn_bound(c) || closing) &&
               !dlink_linked(&c->tlink) && (!c->hub->paused || closing);
    return transport_read(&c->io, want);
}

void conn_idle_add(conn *c) {
    hub *h = c->hub;
    if (dlink_linked(&c->plink) || !conn_bound(c) || !c->ctl ||
        !h->cfg->idle_timeout_ms)
        return;
    dlist_push_tail(&h->idle, &c->plink);
    h->ops->arm(h, HUB_IDLE);
}

void conn_idle_touch(conn *c) {
    c->t_rx = uv_now(c->hub->loop);
    c->pinged = 0;
    if (conn_bound(c) && dlink_linked(&c->plink))
        dlist_move_tail(&c->hub->idle, &c->plink);
}

void conn_throttle(conn *c) {
    hub *h = c->hub;
    if (dlink_linked(&c->tlink)) return;
    dlist_push_tail(&h->throttled, &c->tlink);
    (void)transport_read(&c->io, 0); /* (stopping cannot fail) */
    h->ops->arm(h, HUB_THROTTLED);
}

void conn_unthrottle(conn *c) {
    if (dlink_linked(&c->tlink)) dlist_del(&c->hub->throttled, &c->tlink);
}

void conn_queue_resume(conn *c) {
    if (c->state == CONN_CLOSED) return;
    c->resume = 1;
    conn_queue_flush(c);
}

void conn_unlist(conn *c) {
    hub *h = c->hub;
    if (dlink_linked(&c->plink))
        dlist_del(c->state == CONN_NEW ? &h->pending : &h->idle, &c->plink);
    if (dlink_linked(&c->tlink)) dlist_del(&h->throttled, &c->tlink);
    if (dlink_linked(&c->flink)) dlist_del(&h->flush, &c->flink);
    c->resume = 0;
}

const char *conn_peer(const conn *c) {
    static char out[NETADDR_STRLEN];
    return netaddr_format(&c->peer, out);
}

void conn_check(const conn *c) {
#ifndef NDEBUG
    const hub *h = c->hub;
    const config *cfg = h->cfg;
    int closing = c->state == CONN_CLOSING || c->state == CONN_SHUTDOWN;
    assert(c->state < CONN_NSTATES);
    /* (1): while NEW, plink is on pending (otherwise on idle, see (5)) */
    assert(c->state != CONN_NEW || dlink_linked(&c->plink));
    /* (2) */
    assert(conn_bound(c) == (c->node.user != 0));
    assert(!conn_bound(c) || (c->user != 0 && c->node.user == c->user));
    /* (3), (4) */
    assert(c->state != CONN_FETCHING || c->fetch_out);
    assert(!c->fetch_out || c->refs > 0);
    assert(c->refs >= c->puts_pending + c->fetch_out);
    /* (5) */
    assert(!(c->state != CONN_NEW && dlink_linked(&c->plink)) ||
           (conn_bound(c) && c->ctl && cfg->idle_timeout_ms));
    /* (6) */
    if (c->io.reading) {
        assert(c->state == CONN_NEW || conn_bound(c) || closing);
        assert(!dlink_linked(&c->tlink));
        assert(!h->paused || closing);
    }
    /* (7) */
    assert(transport_writing(&c->io) || c->out.b[c->out.cur ^ 1].total == 0);
    /* (8) */
    assert(c->tail.len == 0 || c->state == CONN_FETCHING ||
           c->state == CONN_HELD || c->state >= CONN_CLOSING);
    size_t off = 0;
    int at_entry = c->tail_at == 0;
    while (off + CONN_TAIL_HDR <= c->tail.len) {
        off += CONN_TAIL_HDR + frame_rd32(c->tail.data + off + CONN_TAIL_HDR - 4);
        at_entry |= off == c->tail_at;
    }
    assert(off == c->tail.len);
    assert(at_entry && c->tail_at <= c->tail.len);
    if (c->state == CONN_HELD) {
        const uint8_t *e = c->tail.data + c->tail_at;
        assert(c->tail_at < c->tail.len);
        assert((e[28] & CONN_TAIL_HELD) && frame_rd64(e) > h->committed);
    } else {
        assert(c->tail_at == 0);
    }

    /* (9) */
    assert(c->ackq.n - c->ackq.head <= cfg->max_unacked);
    assert(c->acks || c->ackq.n == c->ackq.head);
    for (size_t i = c->ackq.head; i < c->ackq.n; i++) {
        assert(c->ackq.v[i].seq <= c->seq_out);
        assert(i == c->ackq.head || c->ackq.v[i].seq > c->ackq.v[i - 1].seq);
    }
    /* (10) */
    assert(c->ack_out <= c->seq_in);
    assert(c->acks || c->puts_pending == 0);
    /* (11) */
    if (c->state == CONN_CLOSED) {
        assert(!dlink_linked(&c->plink) && !dlink_linked(&c->tlink) &&
               !dlink_linked(&c->flink));
        assert(c->io.state >= TRANSPORT_CLOSING);
    }
    assert(!c->resume || dlink_linked(&c->flink));
    /* (12) */
    assert(c->state < CONN_CLOSING ||
           (!dlink_linked(&c->plink) && c->node.user == 0));
    /* (13) */
    assert(outq_check(&c->out));
    assert(framing_raw_check(&c->raw));
    /* (14) */
    static const uint8_t mode_of[CONN_NKINDS] = {OUTQ_FRAMES, OUTQ_HTTP,
                                                OUTQ_WS};
    assert(c->kind < CONN_NKINDS && c->out.b[0].mode == mode_of[c->kind]);
    assert(c->kind == CONN_HTTP || c->hin.len == 0);
    assert((c->kind == CONN_WS) == (c->ws != NULL));
    assert(c->kind != CONN_HTTP || c->state == CONN_NEW ||
           c->state >= CONN_CLOSING);
    /* (15) */
    assert(c->devstate != CONN_DEV_ASKED || c->refs > 0);
    assert(c->devstate != CONN_DEV_ASKED || !c->conv ||
           c->state == CONN_LOGIN || c->state >= CONN_CLOSING);
    assert(c->state != CONN_FETCHING || c->devstate == CONN_DEV_READY);
    assert(c->reported <= c->confirmed);
    assert(c->conv || c->cids == NULL);
    assert(!c->conv || c->kind != CONN_HTTP);
#else
    (void)c;
#endif
}
