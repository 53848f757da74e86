/* close.c -- see close.h. */
#include "server/close.h"

#include "common/log.h"
#include "proto/frame.h"
#include "server/output.h"

typedef struct handoff {
    conn *c;
    uint64_t stored, lost;
    uint64_t sent;     /* the highest message id the kernel took */
} handoff;

/* One frame of an output buffer at close: delivered ones (the kernel took
 * all of it) move the device's cursor unless the peer acknowledges; unsent
 * ones without a stored copy are put in the store for the user (a MSG
 * frame's with its own id, so that handing it off twice stores it once;
 * a bare frame's has none on the wire, so it gets a new one); unsent ones
 * with a stored copy stay stored (delivered at the next connection). */
static void handoff_frame(void *ctx, const frame_s2c *f, const uint8_t *pre,
                          uint64_t id, int sent) {
    handoff *h = ctx;
    conn *c = h->c;
    hub *hb = c->hub;
    if (!frame_is_data(f->type) && !pre) return;
    uint64_t wid = pre ? frame_rd64(pre) : id;
    if (sent) {
        if (wid > h->sent) h->sent = wid;
        return;
    }
    if (id) return;
    /* a group message: a copy for this user alone, with an id of its own
     * (two members handing the same message back must both keep it) */
    uint32_t grp = pre && (pre[9] & FRAME_MSG_GROUP) ? frame_rd32(pre + 10) : 0;
    store_msg m = {
        .id = pre && !grp ? wid : hub_msg_id(hb), .receiver = c->user,
        .sender = f->sender, .type = pre ? pre[8] : f->type,
        .ts = pre ? (int64_t)frame_rd64(pre + 14) : hub_now_ms(hb),
        .body = f->body, .len = f->len, .again = pre && !grp, .grp = grp,
    };
    if (store_put(hb->store, &m, 1, NULL, 0))
        h->lost++;
    else
        h->stored++;
}

static void hand_off(conn *c) {
    hub *hb = c->hub;
    int closing = c->state == CONN_CLOSING || c->state == CONN_SHUTDOWN;
    if (!c->user || hb->cfg->echo || !(conn_bound(c) || closing))
        return;
    conn_unroute(c);
    handoff h = {c, 0, 0, 0};
    outbuf *o = outq_other(&c->out);
    if (o->total) { /* the write in flight: from the first byte not taken */
        size_t unsent = c->wfailed || c->tls ? o->total
                                             : transport_unsent(&c->io);
        outq_walk(o, unsent <= o->total ? o->total - unsent : 0,
                  handoff_frame, &h);
    }
    if (outq_total(&c->out)) outq_walk(outq_cur(&c->out), 0, handoff_frame, &h);
    hb->stats.frames_stored += h.stored;
    if (h.stored)
        CLOG(c, LOG_INFO, "handoff_stored",
             "%llu undelivered frames handed to the store",
             (unsigned long long)h.stored);
    if (h.lost)
        CLOG(c, LOG_ERROR, "handoff_lost",
             "%llu undelivered frames lost: out of memory",
             (unsigned long long)h.lost);
    /* where its device got to (with its other connections, c being out
     * of the router now), and that it was seen now */
    if (c->devstate == CONN_DEV_READY) {
        if (!c->acks && h.sent > c->confirmed) c->confirmed = h.sent;
        conn_confirmed(c);
        uint64_t low = output_device_has(c);
        if (low > c->reported) c->reported = low;
        store_cursor(hb->store, c->user, c->dev, low, 1);
    }
}

int close_if_unread(conn *c, const char *what) {
    size_t max = c->hub->cfg->max_outbuf;
    if (output_queued(c) <= max) return 0;
    CLOG(c, LOG_WARN, "answers_unread",
         "%s while its answers pile up unread (over %zu bytes, "
         "--max-outbuf); closing", what, max);
    close_abort(c);
    return 1;
}

void close_abort(conn *c) {
    if (c->state == CONN_CLOSED) return;
    hand_off(c);
    conn_to(c, CONN_CLOSED);
}

static void on_linger(uv_timer_t *t) {
    conn *c = t->data;
    conn_ref(c);
    CLOG(c, LOG_DEBUG, "linger_over", "closing: linger time over");
    close_abort(c);
    conn_unref(c);
}

/* The WebSocket close code for a close with ERROR code (0: none). */
static uint16_t ws_code(unsigned code) {
    if (code == 0) return WS_NORMAL;
    return code == FRAME_ERR_SHUTDOWN ? WS_GOING_AWAY : WS_POLICY;
}

void close_finish(conn *c, unsigned code, const char *reason) {
    if (!conn_open(c)) return;
    if (code) output_error(c, code, 0, reason);
    if (c->ws && framing_ws_close(c->ws, ws_code(code), reason) && !c->fail)
        c->fail = UV_ENOMEM; /* (closed at once below) */
    conn_unthrottle(c);
    conn_to(c, CONN_CLOSING);
    int r = conn_reading(c); /* keep reading (and discarding) while closing */
    if (r == 0) r = conn_timer(c, on_linger, CONN_LINGER_MS);
    if (r == 0) r = output_flush(c);
    if (r < 0) {
        CLOG(c, LOG_DEBUG, "close_abrupt",
             "closing at once: %s", uv_strerror(r));
        close_abort(c);
    } else if (r == 1) {
        close_drained(c);
    }
}

void close_drained(conn *c) {
    if (c->state != CONN_CLOSING) return;
    if (c->tls && !c->tls_notified) { /* close_notify, then FIN */
        c->tls_notified = 1;
        tls_conn_shutdown(c->tls);
        int r = output_flush(c);
        if (r < 0) {
            close_abort(c);
            return;
        }
        if (r == 0) return; /* called again when that write is done */
    }
    if (transport_shutdown(&c->io)) {
        close_abort(c);
        return;
    }
    conn_to(c, CONN_SHUTDOWN);
}

void close_shut_done(conn *c, int status) {
    if (c->state != CONN_SHUTDOWN) return;
    if (status < 0 || c->eof) close_abort(c);
    /* else: wait for the peer's EOF, or the linger timer. */
}

void close_eof(conn *c) {
    if (c->state == CONN_SHUTDOWN) close_abort(c); /* FIN both ways: done */
}
