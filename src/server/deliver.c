/* deliver.c -- see deliver.h. */
#include "server/deliver.h"

#include <string.h>

#include "common/blk.h"
#include "common/log.h"
#include "proto/frame.h"
#include "server/close.h"
#include "server/output.h"
#include "server/outq.h"
#include "server/sync.h"

#define CONN_OF(n) DLIST_ENTRY(n, conn, node)

/* Distinct devices counted per user and message (more: "not all live"). */
#define DEV_SEEN_MAX 8

/* A LIVE connection that acknowledges and has its window full. */
static void slow_consumer(conn *c) {
    char why[160];
    snprintf(why, sizeof why, "%zu frames sent and not acknowledged "
             "(--max-unacked): slow consumer, closing; they stay stored",
             sync_unacked(c));
    CLOG(c, LOG_WARN, "slow_consumer", "%s", why);
    c->hub->stats.refused++;
    close_finish(c, FRAME_ERR_SLOW, why);
}

/* What the connections of one user in this process can take now. */
typedef struct reach {
    int live;           /* LIVE connections that will get it now */
    int ids;            /* one of them shows ids or reports receipts
                           (CONV, SIGNALS) */
    int store;          /* one of them needs a stored copy (it
                           acknowledges, or is catching up) */
    unsigned devs;      /* distinct devices LIVE without acknowledgements */
    uint32_t seen[DEV_SEEN_MAX];
} reach;

static void reach_dev(reach *r, uint32_t dev) {
    for (unsigned i = 0; i < r->devs && i < DEV_SEEN_MAX; i++)
        if (r->seen[i] == dev) return;
    if (r->devs < DEV_SEEN_MAX) r->seen[r->devs] = dev;
    r->devs++;
}

/* Does connection c of a user take message m? Own copies go only to the
 * author's CONV connections of its other devices. */
static int takes(const conn *c, const conn *src, int own) {
    if (!own) return 1;
    return c->conv && c->dev != src->dev;
}

/* Walk the connections of user: close slow consumers, spill LIVE ones
 * without room, and say what they can take. */
static void survey(hub *h, uint32_t user, const conn *src, int own,
                   uint32_t len, reach *r) {
    *r = (reach){0};
    for (router_node *n = router_first(h->router, user), *next; n; n = next) {
        next = n->next; /* (n may leave the router below) */
        conn *c = CONN_OF(n);
        if (!takes(c, src, own)) continue;
        if (c->state == CONN_LIVE && c->acks &&
            sync_unacked(c) >= h->cfg->max_unacked) {
            slow_consumer(c);
            continue;
        }
        if (c->state == CONN_LIVE && !output_room(c, len)) sync_spill(c);
        if (c->fail) continue; /* closed at the flush: it gets nothing */
        if (conn_syncing(c)) {
            r->store = 1;
            continue;
        }
        if (c->state == CONN_HELD) { /* it gets it once what waits went */
            r->live++;
            r->store = 1;
            continue;
        }
        if (c->state != CONN_LIVE) continue;
        r->live++;
        if (c->conv || c->sig) r->ids = 1;
        if (c->acks) r->store = 1;
        else reach_dev(r, c->dev);
    }
}

/* Hand m to the connections of user that take it. */
static void hand(hub *h, uint32_t user, const conn *src, int own,
                 const msgref *m, int stored) {
    for (router_node *n = router_first(h->router, user); n; n = n->next) {
        conn *c = CONN_OF(n);
        if (!takes(c, src, own)) continue;
        if (conn_syncing(c)) {
            if (stored) sync_stored(c, m);
        } else if (conn_takes_live(c) && sync_holds(c, m)) {
            assert(stored); /* (survey: a HELD connection's are stored) */
            sync_hold(c, m);
        } else if (c->state == CONN_LIVE && output_msg(c, m, stored) == 0) {
            conn_live_sent(c, m->type);
        }
    }
}

/* The author's CONV devices other than src's, which get own copies (its
 * counts: the connection's copy once its device is known, else the
 * store's). */
static __attribute__((noinline)) unsigned other_devices(const conn *src) {
    unsigned all, conv = src->uconv;
    if (src->devstate != CONN_DEV_READY)
        store_devices(src->hub->store, src->user, &all, &conv);
    return conv - (src->conv && conv);
}

/* Every case but the common one (deliver). */
static __attribute__((noinline)) int deliver_slow(conn *src, uint64_t seq,
                                                  const frame_c2s *f, blk *b,
                                                  uint64_t cid,
                                                  unsigned others) {
    hub *h = src->hub;
    int named = src->acks;
    uint32_t len = f->len, to = f->receiver, from = f->sender;
    uint64_t id = hub_msg_id(h);
    unsigned r_all, r_conv;
    store_devices(h->store, to, &r_all, &r_conv);
    reach rr, rs;
    survey(h, to, src, 0, len, &rr);
    if (others) survey(h, from, src, 1, len, &rs); /* (for its side effects:
                                     own copies are stored whatever it says) */
    /* Stored unless every device that must get it is LIVE here without
     * acknowledgements and nothing asks to keep it: a sender that wants an
     * acknowledgement, --history-ttl, own copies (kept for the author's
     * devices, which may be on other servers), a receiver device that is
     * not LIVE here or not known yet. */
    int keep = named || h->cfg->history_ttl_ms || others || rr.store ||
                rr.live == 0 || rr.devs < r_all || rr.devs > DEV_SEEN_MAX;
    /* The cluster (the store gives ids): a receiver that shows ids, or a
     * sender or receiver that reports receipts, needs the store's id. */
    if (!h->ids_local && (rr.ids || src->sig)) keep = 1;
    msgref m = {id, hub_now_ms(h), from, to, f->type, len, f->body, b, 0,
                keep && cid};
    if (keep) {
        /* Quota applies to frames held for a receiver that cannot take
         * them now; a durable copy of a live delivery is not held. The put
         * names its sender so a refusal reaches it. */
        store_msg sm = {id, to, from, src->dev, f->type, others != 0, cid,
                        m.ts, f->body, len, 0, 0};
        if (store_put(h->store, &sm, rr.live == 0, src,
                      named ? seq : seq | SYNC_PUT_UNNAMED))
            return STORE_ENOMEM;
        conn_ref(src); /* dropped in sync_put_done */
        if (named) src->puts_pending++;
        if (rr.live == 0) h->stats.frames_stored++;
        /* A shared store (the cluster): it reaches every connection, these
         * included, from the store's feed in id order (deliver_live). */
        if (h->shared) return named ? 1 : 0;
    } else if (src->last_contact != to) { /* (a put notes its own pair) */
        store_contact(h->store, from, to);
        src->last_contact = to;
    }
    hand(h, to, src, 0, &m, keep);
    if (others) hand(h, from, src, 1, &m, keep);
    return named ? 1 : 0;
}

int deliver(conn *src, uint64_t seq, const frame_c2s *f, blk *b,
            uint64_t cid) {
    hub *h = src->hub;
    unsigned others = 0;
    if ((src->uconv || src->devstate != CONN_DEV_READY) &&
        f->sender != f->receiver)
        others = other_devices(src);
    /* The common case first: one device, LIVE, that does not acknowledge
     * or speak CONV, the only one of its user, a sender that does not
     * acknowledge and has no other device to copy, no history kept, room
     * in its queue, no receipts wanted. No id: a bare frame does not carry
     * it, and nothing is stored. */
    router_node *head;
    if (!src->acks && !others && !src->sig && !h->cfg->history_ttl_ms &&
        (head = router_first(h->router, f->receiver)) && !head->next) {
        conn *c = CONN_OF(head);
        uint32_t len = f->len;
        if (c->state == CONN_LIVE && c->udevs <= 1 && !c->acks && !c->conv &&
            !c->fail &&
            output_queued(c) + FRAME_S2C_HDR + len <= h->cfg->max_outbuf) {
            if (output_data(c, f->sender, f->type, f->body, len, b, 0) == 0)
                conn_live_sent(c, f->type);
            return 0;
        }
    }
    return deliver_slow(src, seq, f, b, cid, others);
}

/* Does member connection c take a message of group g from src? A member
 * takes it on every connection, its author only on its CONV connections
 * of other devices (own copies). */
static int takes_group(const conn *c, const conn *src) {
    return c->user != src->user || (c->conv && c->dev != src->dev);
}

/* Is every device of member user LIVE here without acknowledgements (so
 * the message need not be stored for it)? Spills and closes slow
 * consumers as survey() does. */
static int member_live(hub *h, uint32_t user, const conn *src, uint32_t len) {
    reach r = {0};
    unsigned devs = 0; /* the most devices one of its connections knows */
    for (router_node *n = router_first(h->router, user), *next; n; n = next) {
        next = n->next; /* (n may leave the router below) */
        conn *c = CONN_OF(n);
        if (c->udevs > devs) devs = c->udevs;
        if (!takes_group(c, src)) continue;
        if (c->state == CONN_LIVE && c->acks &&
            sync_unacked(c) >= h->cfg->max_unacked) {
            slow_consumer(c);
            continue;
        }
        if (c->state == CONN_LIVE && !output_room(c, len)) sync_spill(c);
        if (c->fail) continue;
        if (conn_syncing(c) || c->state == CONN_HELD ||
            (c->state == CONN_LIVE && c->acks))
            r.store = 1;
        else if (c->state == CONN_LIVE) reach_dev(&r, c->dev);
    }
    if (user == src->user) /* (its other devices: own copies are stored) */
        return 1;
    return !r.store && r.devs >= devs && devs > 0 && r.devs <= DEV_SEEN_MAX;
}

/* Hand m to every connection of every member of g that takes it. */
static void hand_group(const conn *src, const chatgroup *g, const msgref *m,
                       int stored) {
    hub *h = src->hub;
    for (uint32_t i = 0; i < g->n; i++)
        for (router_node *n = router_first(h->router, g->m[i].user); n;
             n = n->next) {
            conn *c = CONN_OF(n);
            if (!takes_group(c, src)) continue;
            if (conn_syncing(c)) {
                if (stored) sync_stored(c, m);
            } else if (conn_takes_live(c) && sync_holds(c, m)) {
                assert(stored);
                sync_hold(c, m);
            } else if (c->state == CONN_LIVE &&
                       output_msg(c, m, stored) == 0) {
                conn_live_sent(c, m->type);
            }
        }
}

int deliver_group(conn *src, uint64_t seq, const frame_c2s *f, blk *b,
                  uint64_t cid, const chatgroup *g) {
    hub *h = src->hub;
    int named = src->acks;
    uint32_t len = f->len;
    unsigned others = other_devices(src);
    int keep = named || h->cfg->history_ttl_ms || others || h->shared;
    for (uint32_t i = 0; !keep && i < g->n; i++)
        if (!member_live(h, g->m[i].user, src, len)) keep = 1;
    uint64_t id = hub_msg_id(h);
    msgref m = {id, hub_now_ms(h), src->user, 0, f->type, len, f->body, b,
                g->id, keep && cid};
    if (keep) {
        /* one row for every member; not held against a receiver's quota
         * (--offline-ttl bounds it) */
        store_msg sm = {id, 0, src->user, src->dev, f->type, 0, cid, m.ts,
                        f->body, len, 0, g->id};
        if (store_put(h->store, &sm, 0, src,
                      named ? seq : seq | SYNC_PUT_UNNAMED))
            return STORE_ENOMEM;
        conn_ref(src); /* dropped in sync_put_done */
        if (named) src->puts_pending++;
        h->stats.frames_stored++;
        /* The author's device has its own message: its cursor passes it
         * as soon as it has everything before it (now, or once what is
         * queued to it is taken or acknowledged: output_own). */
        if (h->shared) return named ? 1 : 0; /* (deliver_live) */
        if (id > src->own_upto) src->own_upto = id;
        output_own(src);
    }
    hand_group(src, g, &m, keep);
    return named ? 1 : 0;
}

/* A stored message from the feed, for the first connection that queues
 * it: its body copied into one block of the hub's pool, which that
 * connection and every other one then references (outq.h), as a frame
 * read from a client is (framing_raw.c); without it each would copy the
 * body. Only a body that would be referenced (OUTQ_REF_MIN: below it, a
 * copy is cheaper than an iovec entry). The feed's reply is freed when
 * the `live` callback returns (rconn_reply.c), so the body must be copied
 * once; deliver_live drops its own reference at the end, and the block
 * goes back to the pool once the last connection wrote it out. Out of
 * memory: nothing changes (each connection copies, and fails on its
 * own). */
static void live_block(hub *h, msgref *m) {
    if (m->b || m->len < OUTQ_REF_MIN) return;
    size_t len = m->len;
    blk *b = blk_pooled(&h->pool, len, 4 * len);
    if (!b && !(b = blk_new(&h->pool, len))) return;
    memcpy(b->data, m->body, len);
    m->b = b;
    m->body = b->data;
}

/* One connection c of a user that takes stored message m from the feed. */
static void live_to(hub *h, conn *c, msgref *m) {
    if (conn_syncing(c)) { /* (its fetch may hold it too: dropped by id) */
        sync_stored(c, m);
        return;
    }
    if (c->state != CONN_LIVE || c->fail) return; /* (it fetches later) */
    if (m->id <= c->cursor) return; /* its fetch had it */
    if (c->acks && sync_unacked(c) >= h->cfg->max_unacked) {
        slow_consumer(c);
        return;
    }
    if (!output_room(c, m->len)) {
        sync_spill(c); /* (stored: its next fetch brings it) */
        return;
    }
    live_block(h, m);
    if (output_msg(c, m, 1) == 0) {
        conn_live_sent(c, m->type);
        h->stats.frames_routed++;
    }
}

void deliver_live(hub *h, uint32_t user, const store_row *row) {
    assert(h->shared);
    msgref m = {row->id, row->ts, row->sender, row->receiver, row->type,
                row->len, row->body, NULL, row->grp, 0};
    if (row->grp) {
        if (user) return; /* (a group's messages come once, for all) */
        const chatgroup *g = groups_get(store_groups(h->store), row->grp);
        if (!g) return; /* (deleted meanwhile: no one to tell) */
        for (uint32_t i = 0; i < g->n; i++)
            for (router_node *n = router_first(h->router, g->m[i].user),
                             *next; n; n = next) {
                next = n->next; /* (n may leave the router in live_to) */
                conn *c = CONN_OF(n);
                if (g->m[i].user == row->sender &&
                    !(c->conv && c->dev != row->sdev))
                    continue; /* (its author: own copies to other CONV
                                 devices only) */
                if (row->id > g->m[i].joined) live_to(h, c, &m);
            }
        blk_unref(m.b); /* (NULL: none made) */
        return;
    }
    int own = row->sender == user && row->receiver != user;
    for (router_node *n = router_first(h->router, user), *next; n;
         n = next) {
        next = n->next; /* (n may leave the router in live_to) */
        conn *c = CONN_OF(n);
        if (own && !(c->conv && c->dev != row->sdev)) continue;
        live_to(h, c, &m);
    }
    blk_unref(m.b); /* (NULL: none made) */
}

void deliver_resync(hub *h) {
    for (dlink *k = dlist_first(&h->conns), *next; k; k = next) {
        next = dlist_next(&h->conns, k); /* (sync_spill never frees c) */
        conn *c = DLIST_ENTRY(k, conn, all);
        if ((c->state == CONN_LIVE || c->state == CONN_HELD) && !c->fail)
            sync_resync(c);
    }
}

void deliver_relayed(hub *h, uint32_t user, uint32_t sender, uint8_t type,
                     const uint8_t *body, size_t len) {
    if (len > UINT32_MAX) return; /* (no frame is this big: not ours) */
    for (router_node *n = router_first(h->router, user); n; n = n->next) {
        conn *c = CONN_OF(n);
        if (type == FRAME_GROUPS) { /* (as groupops.c tells them) */
            if (c->conv && conn_open(c))
                output_control(c, FRAME_GROUPS, body, (uint32_t)len);
        } else if (c->sig && conn_bound(c)) { /* TYPING, RECEIPT */
            (void)output_signal(c, sender, type, body, (uint32_t)len);
            /* (-1: its queue is full: a hint dropped, counted there) */
        }
    }
}
