/* deliver.c -- see deliver.h. */
#include "server/deliver.h"

#include "common/log.h"
#include "proto/frame.h"
#include "server/close.h"
#include "server/output.h"
#include "server/sync.h"

#define CONN_OF(n) DLIST_ENTRY(n, conn, node)

/* A LIVE connection that acknowledges and has its window full. */
static void slow_consumer(conn *c) {
    char why[160];
    snprintf(why, sizeof why, "%zu frames sent and not acknowledged "
             "(--max-unacked): slow consumer, closing; they stay stored",
             sync_unacked(c));
    CLOG(c, LOG_WARN, "%s", why);
    c->hub->stats.refused++;
    close_finish(c, FRAME_ERR_SLOW, why);
}

int deliver(conn *src, uint64_t seq, const frame_c2s *f, blk *b) {
    hub *h = src->hub;
    int named = src->acks;
    uint32_t len = f->len;
    router_node *head = router_first(h->router, f->receiver);
    /* The common case first: one LIVE device that does not acknowledge, a
     * sender that does not either, room in its queue. */
    if (head && !head->next && !named) {
        conn *c = CONN_OF(head);
        if (c->state == CONN_LIVE && !c->acks && !c->fail &&
            output_queued(c) + FRAME_S2C_HDR + len <= h->cfg->max_outbuf) {
            if (output_data(c, f->sender, f->type, f->body, len, b, 0) == 0)
                conn_live_sent(c, f->type);
            return 0;
        }
    }
    int live = 0, ack_live = 0, sync = 0, changed = 0;
    for (router_node *n = head, *next; n; n = next) {
        next = n->next; /* (n may leave the router below) */
        conn *c = CONN_OF(n);
        if (c->state == CONN_LIVE && c->acks &&
            sync_unacked(c) >= h->cfg->max_unacked) {
            slow_consumer(c);
            changed = 1;
            continue;
        }
        if (c->state == CONN_LIVE && !output_room(c, len)) sync_spill(c);
        if (c->fail) continue; /* closed at the flush: it gets nothing */
        if (conn_syncing(c)) {
            sync = 1;
            continue;
        }
        live++;
        ack_live |= c->acks;
    }
    uint64_t id = 0;
    if (named || live == 0 || ack_live || sync) {
        id = h->next_id++;
        /* Quota applies to frames held for a receiver that cannot take them
         * now; a durable copy of a live delivery is not held. The put names
         * its sender so a refusal reaches it. */
        if (store_put(h->store, id, f->receiver, f->sender, f->type, f->body,
                      len, live == 0, src, named ? seq : seq | SYNC_PUT_UNNAMED))
            return STORE_ENOMEM;
        conn_ref(src); /* dropped in sync_put_done */
        if (named) src->puts_pending++;
        if (live == 0) h->stats.frames_stored++;
    }
    if (changed) head = router_first(h->router, f->receiver);
    for (router_node *n = head; n; n = n->next) {
        conn *c = CONN_OF(n);
        if (conn_syncing(c))
            sync_stored(c, f->sender, f->type, f->body, len, id);
        else if (c->state == CONN_LIVE &&
                 output_data(c, f->sender, f->type, f->body, len, b, id) == 0)
            conn_live_sent(c, f->type);
    }
    return named ? 1 : 0;
}
