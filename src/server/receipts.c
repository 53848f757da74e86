/* receipts.c -- see receipts.h. */
#include "server/receipts.h"

#include <stdlib.h>

#include "common/log.h"
#include "proto/signal.h"
#include "server/close.h"
#include "server/groupops.h"
#include "server/output.h"

#define CONN_OF(n) DLIST_ENTRY(n, conn, node)

/* Distinct (author, conversation) pairs coalesced per confirmation before
 * they are sent (more: sent in several rounds, each still correct). */
#define DUE_MAX 16

/* Does group grp get live receipts (--receipt-group-max)? */
static int group_live(const hub *h, uint32_t grp) {
    const chatgroup *g = groups_get(store_groups(h->store), grp);
    return g && g->n <= h->cfg->receipt_group_max;
}

/* Send r to every SIGNALS connection of user but `skip`. */
static void to_user(hub *h, uint32_t user, const conn *skip,
                    const frame_receipt *r) {
    uint8_t body[FRAME_RECEIPT_SIZE];
    frame_put_receipt(body, r);
    for (router_node *n = router_first(h->router, user); n; n = n->next) {
        conn *o = CONN_OF(n);
        if (o != skip && o->sig && conn_bound(o))
            (void)output_signal(o, 0, FRAME_RECEIPT, body, sizeof body);
    }
    /* (the cluster: its connections on other nodes) */
    store_relay(h->store, user, 0, FRAME_RECEIPT, body, sizeof body);
}

/* Send the DELIVERED marks of the notes c's confirmed passed, at most
 * DUE_MAX (author, conversation) pairs; 1 when notes passed remain. A run
 * confirmed in part gives a mark up to `confirmed` (the user has its log
 * up to there) and stays for the rest. */
static int confirm_some(conn *c) {
    hub *h = c->hub;
    rnoteq *q = &c->track;
    struct { uint32_t author, grp; uint64_t upto; } due[DUE_MAX];
    unsigned nd = 0;
    int more = 0;
    while (q->head < q->n && q->v[q->head].first <= c->confirmed) {
        rnote *e = &q->v[q->head];
        unsigned i = 0;
        while (i < nd && (due[i].author != e->author || due[i].grp != e->grp))
            i++;
        if (i == nd) {
            if (nd == DUE_MAX) { /* (the rest in the next round) */
                more = 1;
                break;
            }
            due[nd].author = e->author;
            due[nd++].grp = e->grp;
        }
        if (e->last > c->confirmed) { /* in part */
            due[i].upto = c->confirmed;
            e->first = c->confirmed + 1;
            break;
        }
        due[i].upto = e->last; /* (ids increase along the queue) */
        q->head++;
    }
    if (q->head == q->n) q->head = q->n = 0;
    for (unsigned i = 0; i < nd; i++) {
        if (due[i].grp && !group_live(h, due[i].grp)) continue;
        frame_receipt r = {FRAME_RCPT_DELIVERED,
                           due[i].grp ? FRAME_MSG_GROUP : 0,
                           due[i].grp ? due[i].grp : c->user, c->user,
                           due[i].upto, (uint64_t)hub_now_ms(h)};
        to_user(h, due[i].author, NULL, &r);
    }
    return more;
}

void receipts_confirmed(conn *c) {
    while (confirm_some(c)) {}
}

/* A QUERY waiting for the store. */
typedef struct mreq {
    conn *c;       /* one reference held */
    uint32_t conv;
    uint8_t flags;
} mreq;

static int refuse(conn *c, const char *why) {
    CLOG(c, LOG_WARN, "signal_malformed",
         "refused: malformed RECEIPT (%s); closing", why);
    c->hub->stats.refused++;
    close_finish(c, FRAME_ERR_PROTO, "malformed RECEIPT: a client sends READ "
                 "or QUERY, by 0, about a conversation");
    return -1;
}

/* Is c's user a member of grp? Else ERROR GROUP (ref 0). */
static const chatgroup *member_of(conn *c, uint32_t grp) {
    const chatgroup *g = groups_get(store_groups(c->hub->store), grp);
    if (g && groups_member(g, c->user) >= 0) return g;
    char why[FRAME_REASON_MAX];
    groupops_reason(g ? STORE_GNOTMEMBER : STORE_GNOGROUP, grp, c->hub->cfg,
                    why, sizeof why);
    output_error(c, FRAME_ERR_GROUP, 0, why);
    return NULL;
}

static void on_read(conn *c, frame_receipt *r) {
    hub *h = c->hub;
    int grp = (r->flags & FRAME_MSG_GROUP) != 0;
    const chatgroup *g = NULL;
    if (grp && !(g = member_of(c, r->conv))) return;
    if (h->ids_local && r->upto >= h->next_id)
        r->upto = h->next_id - 1; /* (no id above) */
    int64_t now = hub_now_ms(h);
    store_read_mark(h->store, c->user, grp ? 0 : r->conv, grp ? r->conv : 0,
                    r->upto, now);
    frame_receipt own = {FRAME_RCPT_READ, r->flags, r->conv, c->user,
                         r->upto, (uint64_t)now};
    to_user(h, c->user, c, &own); /* its other devices */
    if (!grp) {
        frame_receipt peer = own;
        peer.conv = c->user;
        if (r->conv != c->user) to_user(h, r->conv, NULL, &peer);
        return;
    }
    if (g->n > h->cfg->receipt_group_max) return; /* (QUERY only) */
    for (uint32_t i = 0; i < g->n; i++)
        if (g->m[i].user != c->user) to_user(h, g->m[i].user, NULL, &own);
}

static void on_query(conn *c, const frame_receipt *r) {
    int grp = (r->flags & FRAME_MSG_GROUP) != 0;
    if (grp && !member_of(c, r->conv)) return;
    mreq *t = malloc(sizeof *t);
    if (!t) {
        CLOG(c, LOG_ERROR, "conn_oom",
             "out of memory for a receipts QUERY; closing");
        close_abort(c);
        return;
    }
    *t = (mreq){c, r->conv, r->flags};
    conn_ref(c); /* dropped in receipts_marks_done */
    store_marks(c->hub->store, c->user, grp ? 0 : r->conv, grp ? r->conv : 0,
                t);
}

void receipts_request(conn *c, const frame_c2s *f) {
    frame_receipt r;
    if (frame_parse_receipt(f->body, f->len, &r)) {
        (void)refuse(c, "its layout");
        return;
    }
    if (r.by != 0 || (r.what != FRAME_RCPT_READ && r.what != FRAME_RCPT_QUERY)) {
        (void)refuse(c, "what a server sends");
        return;
    }
    if (r.what == FRAME_RCPT_READ) on_read(c, &r);
    else on_query(c, &r);
}

static void put(conn *c, uint8_t what, uint8_t flags, uint32_t conv,
                uint32_t by, uint64_t upto, int64_t ts) {
    frame_receipt r = {what, flags, conv, by, upto, (uint64_t)ts};
    uint8_t body[FRAME_RECEIPT_SIZE];
    frame_put_receipt(body, &r);
    output_control(c, FRAME_RECEIPT, body, sizeof body);
}

void receipts_marks_done(void *token, const store_mark *marks, size_t n,
                         int status) {
    mreq *t = token;
    conn *c = t->c;
    if (conn_open(c) && status != STORE_OK) {
        char why[FRAME_REASON_MAX];
        snprintf(why, sizeof why, "receipts not read: %s",
                 store_strerror(status));
        output_error(c, FRAME_ERR_STORE, 0, why);
    } else if (conn_open(c)) {
        int grp = (t->flags & FRAME_MSG_GROUP) != 0;
        for (size_t i = 0; i < n; i++) {
            const store_mark *m = &marks[i];
            /* (1:1: the peer's two marks, then this user's READ) */
            if (grp || m->user != c->user)
                put(c, FRAME_RCPT_DELIVERED, t->flags, t->conv, m->user,
                    m->delivered, 0);
            put(c, FRAME_RCPT_READ, t->flags, t->conv, m->user, m->read,
                m->read_ts);
        }
        put(c, FRAME_RCPT_END, t->flags, t->conv, 0, 0, 0);
    }
    free(t);
    conn_unref(c);
}
