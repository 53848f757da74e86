/* history.c -- see history.h. */
#include "server/history.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/close.h"
#include "server/groupops.h"
#include "server/output.h"

enum { KIND_USER = 1, KIND_GROUP = 2 };

/* A request waiting for the store. */
typedef struct hreq {
    conn *c;       /* one reference held */
    uint32_t req;
} hreq;

/* Answer c's request req with rows (newest first). */
static void page(conn *c, uint32_t req, const store_row *rows, size_t n,
                 int more) {
    size_t need = FRAME_PAGE_PRE;
    for (size_t i = 0; i < n; i++) need += FRAME_PAGE_ENTRY + rows[i].len;
    buf *o = &c->hub->scratch;
    o->len = 0;
    if (need > UINT32_MAX || buf_reserve(o, need, SIZE_MAX / 2)) {
        CLOG(c, LOG_ERROR, "conn_oom",
             "out of memory answering HISTORY; closing");
        close_abort(c);
        return;
    }
    uint8_t *w = o->data;
    frame_wr32(w, req);
    w[4] = (uint8_t)(more != 0);
    w[5] = (uint8_t)(n >> 8);
    w[6] = (uint8_t)n;
    size_t at = FRAME_PAGE_PRE;
    for (size_t i = 0; i < n; i++) {
        const store_row *r = &rows[i];
        int grp = r->grp && r->receiver == 0;
        frame_wr64(w + at, r->id);
        frame_wr32(w + at + 8, r->sender);
        w[at + 12] = r->type;
        w[at + 13] = (uint8_t)((r->sender == c->user ? FRAME_MSG_OWN : 0) |
                               (grp ? FRAME_MSG_GROUP : 0));
        frame_wr32(w + at + 14, grp ? r->grp : r->receiver);
        frame_wr64(w + at + 18, (uint64_t)r->ts);
        frame_wr32(w + at + 26, r->len);
        if (r->len) memcpy(w + at + FRAME_PAGE_ENTRY, r->body, r->len);
        at += FRAME_PAGE_ENTRY + r->len;
    }
    output_control(c, FRAME_HISTORY_PAGE, w, (uint32_t)at);
}

void history_request(conn *c, const frame_c2s *f) {
    const uint8_t *p = f->body;
    uint32_t req = frame_rd32(p), peer = frame_rd32(p + 5);
    uint8_t kind = p[4];
    uint64_t before = frame_rd64(p + 9);
    uint16_t limit = (uint16_t)((p[17] << 8) | p[18]);
    if ((kind != KIND_USER && kind != KIND_GROUP) || peer == 0 ||
        limit == 0 || limit > FRAME_HISTORY_MAX) {
        CLOG(c, LOG_WARN, "history_malformed",
             "refused: malformed HISTORY (kind %u, peer %u, "
             "limit %u); closing", kind, (unsigned)peer, limit);
        c->hub->stats.refused++;
        close_finish(c, FRAME_ERR_PROTO, "malformed HISTORY: kind 1 or 2, a "
                     "peer, a limit of 1 to 200");
        return;
    }
    hub *h = c->hub;
    uint64_t min_id = 0;
    if (kind == KIND_GROUP) {
        const chatgroup *g = groups_get(store_groups(h->store), peer);
        long me = g ? groups_member(g, c->user) : -1;
        if (me < 0) {
            char why[FRAME_REASON_MAX];
            groupops_reason(g ? STORE_GNOTMEMBER : STORE_GNOGROUP, peer,
                            h->cfg, why, sizeof why);
            output_error(c, FRAME_ERR_GROUP, req, why);
            return;
        }
        min_id = g->m[me].joined;
    }
    if (!h->cfg->history_ttl_ms) { /* nothing is kept to read */
        page(c, req, NULL, 0, 0);
        return;
    }
    hreq *t = malloc(sizeof *t);
    if (!t) {
        CLOG(c, LOG_ERROR, "conn_oom", "out of memory for a HISTORY; closing");
        close_abort(c);
        return;
    }
    *t = (hreq){c, req};
    conn_ref(c); /* dropped in history_done */
    store_history(h->store, c->user, kind == KIND_USER ? peer : 0,
                  kind == KIND_GROUP ? peer : 0, min_id, before, limit,
                  HISTORY_PAGE_BYTES, t);
}

void history_done(void *token, const store_row *rows, size_t n, int more,
                  int status) {
    hreq *t = token;
    conn *c = t->c;
    if (conn_open(c)) {
        if (status == STORE_OK) {
            page(c, t->req, rows, n, more);
        } else {
            char why[FRAME_REASON_MAX];
            snprintf(why, sizeof why, "history not read: %s",
                     store_strerror(status));
            output_error(c, FRAME_ERR_STORE, t->req, why);
        }
    }
    free(t);
    conn_unref(c);
}
