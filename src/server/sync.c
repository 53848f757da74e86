/* sync.c -- see sync.h. */
#include "server/sync.h"

#include <assert.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/cidset.h"
#include "server/output.h"

static void tail_clear(conn *c) {
    c->tail.len = 0;
    c->tail_over = 0;
    if (c->tail.cap > CONN_PULL_BYTES / 4) buf_free(&c->tail);
}

void sync_start(conn *c) {
    if (c->state == CONN_SYNC) sync_fetch(c);
}

void sync_fetch(conn *c) {
    if (c->state != CONN_SYNC || c->fail || c->devstate != CONN_DEV_READY)
        return; /* (the device's lookup asks when it is back) */
    if (outq_total(&c->out) > CONN_PULL_BYTES / 2) return; /* asked again
                                                           when it drains */
    uint32_t rows = CONN_PULL_ROWS;
    if (c->acks) {
        size_t max = c->hub->cfg->max_unacked, used = sync_unacked(c);
        if (used >= max) return; /* the peer's ACK asks again */
        if (max - used < rows) rows = (uint32_t)(max - used);
    }
    conn_to(c, CONN_FETCHING);
    tail_clear(c);
    c->fetch_out = 1;
    conn_ref(c); /* dropped in sync_fetch_done */
    store_fetch(c->hub->store, c->user, c->dev, c->conv, c->cursor, rows,
                CONN_PULL_BYTES, c);
}

void sync_resync(conn *c) {
    if (c->state != CONN_LIVE && c->state != CONN_HELD) return;
    conn_to(c, CONN_SYNC); /* (its fetch starts after c->cursor: what it
                              has is never sent again) */
    sync_fetch(c);
}

void sync_spill(conn *c) {
    if (c->state != CONN_LIVE && c->state != CONN_HELD) return;
    int held = c->state == CONN_HELD;
    conn_to(c, CONN_SYNC); /* (leaving HELD drops the held messages) */
    c->hub->stats.spilled++;
    if (!(c->logged & CONN_LOGGED_SPILL)) {
        c->logged |= CONN_LOGGED_SPILL;
        CLOG(c, LOG_INFO, "spilled",
             "%s at %zu bytes (--max-outbuf): its frames wait in "
             "the store until it catches up (logged once per connection)",
             held ? "messages waiting for their commit"
                  : "output queue (receiver reads slowly)",
             c->hub->cfg->max_outbuf);
    }
}

/* Append m to the tail. As much as the output queue may hold: a receiver
 * that can take one fetch round trip's worth of frames catches up in one.
 * 0, or -1 when it would pass that (or out of memory). */
static int tail_add(conn *c, const msgref *m) {
    buf *t = &c->tail;
    size_t need = CONN_TAIL_HDR + (size_t)m->len;
    size_t max = c->hub->cfg->max_outbuf;
    if (t->len + need > max && c->tail_at) { /* HELD: drop what went out */
        memmove(t->data, t->data + c->tail_at, t->len - c->tail_at);
        t->len -= c->tail_at;
        c->tail_at = 0;
    }
    if (buf_reserve(t, need, max)) return -1;
    uint8_t *w = t->data + t->len;
    frame_wr64(w, m->id);
    frame_wr64(w + 8, (uint64_t)m->ts);
    frame_wr32(w + 16, m->from);
    frame_wr32(w + 20, m->to);
    frame_wr32(w + 24, m->grp);
    w[28] = (uint8_t)(m->type | (m->held ? CONN_TAIL_HELD : 0));
    frame_wr32(w + 29, m->len);
    if (m->len) memcpy(w + CONN_TAIL_HDR, m->body, m->len);
    t->len += need;
    return 0;
}

/* The tail entry at p (its body stays in the tail). */
static msgref tail_entry(const uint8_t *p) {
    return (msgref){
        .id = frame_rd64(p), .ts = (int64_t)frame_rd64(p + 8),
        .from = frame_rd32(p + 16), .to = frame_rd32(p + 20),
        .grp = frame_rd32(p + 24), .type = p[28] & ~CONN_TAIL_HELD,
        .len = frame_rd32(p + 29), .body = p + CONN_TAIL_HDR,
        .held = (p[28] & CONN_TAIL_HELD) != 0,
    };
}

/* c's tail now holds message id, which waits for its commit: the commit
 * names c (hub.heldq, in id order: ids are handed out in order). 0, or -1
 * when out of memory. */
static int wait_commit(conn *c, uint64_t id) {
    struct heldq *q = &c->hub->heldq;
    assert(q->n == q->head || q->v[q->n - 1].id <= id);
    if (q->n == q->cap) {
        if (q->head > q->cap / 2) { /* reclaim the popped front */
            memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof *q->v);
            q->n -= q->head;
            q->head = 0;
        } else {
            uint32_t cap = q->cap ? q->cap * 2 : 64;
            struct heldwait *v = cap > q->cap ? realloc(q->v, cap * sizeof *v)
                                              : NULL;
            if (!v) return -1;
            q->v = v;
            q->cap = cap;
        }
    }
    q->v[q->n++] = (struct heldwait){id, c};
    conn_ref(c); /* dropped when that commit pops it (sync_committed) */
    return 0;
}

void sync_stored(conn *c, const msgref *m) {
    if (c->state == CONN_FETCHING && !c->tail_over &&
        (tail_add(c, m) || (m->held && wait_commit(c, m->id))))
        c->tail_over = 1; /* too much (or no memory): fetch again */
    sync_fetch(c);
}

void sync_hold(conn *c, const msgref *m) {
    assert(sync_holds(c, m));
    if (tail_add(c, m) || (m->held && wait_commit(c, m->id))) {
        /* it is stored: fetched once committed (the fetch comes after) */
        sync_spill(c);
        sync_fetch(c);
        return;
    }
    if (c->state == CONN_LIVE) conn_to(c, CONN_HELD);
}

/* Queue a stored message for c. 0, or -1 when it did not fit in the
 * acknowledgement window or memory (the caller stays SYNC: it is stored). */
static int send_stored(conn *c, const msgref *m) {
    if (m->id <= c->cursor) return 0; /* queued already */
    if (c->acks && sync_unacked(c) >= c->hub->cfg->max_unacked) return -1;
    if (output_msg(c, m, 1)) return -1;
    c->hub->stats.frames_routed++;
    c->hub->stats.stored_type[(m->type - 1) & (HUB_TYPES - 1)]++;
    return 0;
}

/* The fetch came back with nothing further: the tail holds every message
 * stored since it was asked for; those the page did not return go out
 * now, up to the first that waits for its commit (it and the rest stay:
 * *held_at is its offset, else the tail's length). -1 when they did not
 * all fit (fetch again). */
static int tail_deliver(conn *c, size_t *held_at) {
    for (size_t off = 0; off < c->tail.len;) {
        msgref m = tail_entry(c->tail.data + off);
        if (m.held && m.id > c->cursor) {
            /* Its put was asked for after the fetch, and the store
             * answers in request order: not done yet. */
            assert(m.id > c->hub->committed);
            if (m.id > c->hub->committed) {
                *held_at = off;
                return 0;
            }
            return -1; /* (cannot tell whether it was refused: fetch) */
        }
        if (send_stored(c, &m)) return -1;
        off += CONN_TAIL_HDR + (size_t)m.len;
    }
    *held_at = c->tail.len;
    return 0;
}

void sync_fetch_done(conn *c, const store_row *rows, size_t n, int more,
                     int status) {
    c->fetch_out = 0;
    if (c->state != CONN_FETCHING) { /* closed meanwhile */
        conn_unref(c);
        return;
    }
    if (status) {
        if (!(c->logged & CONN_LOGGED_FETCH)) {
            c->logged |= CONN_LOGGED_FETCH;
            CLOG(c, LOG_ERROR, "stored_read_failed",
                 "cannot read stored messages: %s (retried as "
                 "frames arrive; logged once per connection)",
                 store_strerror(status));
        }
        tail_clear(c);
        conn_to(c, CONN_SYNC);
        conn_unref(c);
        return;
    }
    int full = 0;
    size_t held_at = 0;
    for (size_t i = 0; i < n && !full; i++) {
        const store_row *r = &rows[i];
        msgref m = {r->id, r->ts, r->sender, r->receiver, r->type, r->len,
                    r->body, NULL, r->grp, 0};
        full = send_stored(c, &m) != 0;
    }
    if (!full && !more && !c->tail_over && tail_deliver(c, &held_at) == 0) {
        if (held_at < c->tail.len) { /* caught up, but for held ones */
            c->tail_at = held_at;
            conn_to(c, CONN_HELD);
        } else {
            tail_clear(c);
            conn_to(c, CONN_LIVE); /* caught up */
            output_own(c);
        }
    } else {
        tail_clear(c);
        conn_to(c, CONN_SYNC);
        sync_fetch(c);
    }
    conn_unref(c);
}

/* HELD connection c: queue its held messages up to the next that waits
 * for a commit after `id`'s (id's own: dropped when refused). */
static void release(conn *c, uint64_t id, int status) {
    size_t at = c->tail_at;
    while (at < c->tail.len) {
        msgref m = tail_entry(c->tail.data + at);
        if (m.held && m.id > id) break; /* its commit is still to come */
        assert(!m.held || m.id == id); /* (in id order: earlier ones went) */
        at += CONN_TAIL_HDR + (size_t)m.len;
        if (m.held && status) continue; /* refused: it goes to no one */
        if (m.id <= c->cursor) continue; /* (queued already) */
        if ((c->acks && sync_unacked(c) >= c->hub->cfg->max_unacked) ||
            !output_room(c, m.len) || output_msg(c, &m, 1)) {
            /* the rest (this one included) is stored: fetch it once the
             * peer has room (a failed append closes the connection) */
            sync_spill(c);
            sync_fetch(c);
            return;
        }
        conn_live_sent(c, m.type);
    }
    if (at == c->tail.len) {
        conn_to(c, CONN_LIVE); /* (leaving HELD empties the tail) */
        output_own(c);
        return;
    }
    c->tail_at = at;
    if (at > c->tail.len / 2) { /* keep the tail's memory O(what waits) */
        memmove(c->tail.data, c->tail.data + at, c->tail.len - at);
        c->tail.len -= at;
        c->tail_at = 0;
    }
}

void sync_committed(hub *h, uint64_t id, int status) {
    assert(id > h->committed); /* puts that name a connection: in id order */
    if (id > h->committed) h->committed = id;
    struct heldq *q = &h->heldq;
    while (q->head < q->n && q->v[q->head].id <= id) {
        struct heldwait w = q->v[q->head++];
        conn *c = w.c;
        /* (an entry whose connection spilled, closed or went on is stale) */
        if (c->state == CONN_HELD && frame_rd64(c->tail.data + c->tail_at) ==
                                         w.id)
            release(c, id, status);
        conn_unref(c); /* (may free it) */
    }
    if (q->head == q->n) q->head = q->n = 0;
}

void sync_acked(conn *c, uint64_t count) {
    seqidq *q = &c->ackq;
    uint64_t upto = 0;
    while (q->head < q->n && q->v[q->head].seq <= count)
        upto = q->v[q->head++].id;
    if (q->head == q->n) q->head = q->n = 0;
    if (upto > c->confirmed) { /* (ids increase along the queue) */
        c->confirmed = upto;
        output_report(c);
        conn_confirmed(c);
    }
    output_own(c);
    sync_fetch(c); /* the window may have room again */
}

void sync_put_done(conn *c, uint64_t seq, int named, uint64_t id, uint64_t cid,
                   int status) {
    if (named) {
        assert(c->puts_pending > 0);
        c->puts_pending--;
    }
    int talk = c->state < CONN_SHUTDOWN; /* (no frames after our FIN) */
    if (status && talk) {
        char why[160];
        snprintf(why, sizeof why, "message %llu not accepted: %s",
                 (unsigned long long)seq, store_strerror(status));
        c->hub->stats.refused++;
        if (!(c->logged & CONN_LOGGED_STORE)) {
            c->logged |= CONN_LOGGED_STORE;
            CLOG(c, LOG_WARN, "message_not_stored",
                 "refused frame: %s (logged once per connection)",
                 why);
        }
        output_error(c, status == STORE_EQUOTA ? FRAME_ERR_QUOTA
                                               : FRAME_ERR_STORE, seq, why);
    }
    if (status && cid) cidset_del(c->cids, cid); /* a resend must go in */
    if (!status && cid && id && !c->hub->ids_local && talk &&
        cidset_has(c->cids, cid, INT64_MIN)) {
        /* the store gave the id (a resend it knew: the first one's) */
        cidset_set_id(c->cids, cid, id);
        output_posted(c, cid, id);
    }
    if (named && talk) output_ack(c, c->puts_pending ? seq : c->seq_in);
    conn_unref(c);
}

size_t sync_shrink(conn *c) {
    if (c->state == CONN_FETCHING || c->tail.len) return 0;
    size_t freed = c->tail.cap;
    buf_free(&c->tail);
    return freed;
}
