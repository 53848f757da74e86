/* output.c -- see output.h. */
#include "server/output.h"

#include <assert.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "proto/signal.h"

static int failed(conn *c) {
    if (!c->fail) c->fail = UV_ENOMEM;
    conn_queue_flush(c); /* io_flush closes it */
    return -1;
}

/* Queue a data frame (pre NULL) or a MSG frame (pre: its prefix): the
 * common part of output_data_slow and output_msg. */
static int queue(conn *c, uint32_t from, uint8_t type, const uint8_t *pre,
                 const uint8_t *body, uint32_t len, blk *b, uint64_t id,
                 uint64_t wid) {
    assert(conn_open(c));
    if (c->fail) return -1;
    if (c->acks && id && seqidq_push(&c->ackq, c->seq_out + 1, id))
        return failed(c);
    int r = pre ? outq_msg(&c->out, from, pre, body, len, b, id)
                : outq_frame(&c->out, from, type, body, len, b, id);
    if (r) {
        if (c->acks && id) c->ackq.n--;
        return failed(c);
    }
    outbuf *o = outq_cur(&c->out);
    if (wid > o->max_id) o->max_id = wid;
    c->seq_out++;
    if (id > c->cursor) c->cursor = id;
    conn_queue_flush(c);
    return 0;
}

int output_data_slow(conn *c, uint32_t from, uint8_t type,
                     const uint8_t *body, uint32_t len, blk *b, uint64_t id) {
    return queue(c, from, type, NULL, body, len, b, id, id);
}

int output_msg(conn *c, const msgref *m, int stored) {
    uint64_t id = stored ? m->id : 0;
    int r;
    if (!c->conv) { /* (a bare frame carries no id; the peer has it once
                       written all the same: m->id moves `confirmed`) */
        r = queue(c, m->from, m->type, NULL, m->body, m->len, m->b, id, m->id);
        if (r == 0) conn_track(c, m->id, m->from, m->grp);
        return r;
    }
    uint8_t pre[FRAME_MSG_PRE];
    int own = m->from == c->user && (m->grp || m->to != c->user);
    frame_wr64(pre, m->id);
    pre[8] = m->type;
    pre[9] = (uint8_t)((own ? FRAME_MSG_OWN : 0) |
                       (m->grp ? FRAME_MSG_GROUP : 0));
    frame_wr32(pre + 10, m->grp ? m->grp : m->to);
    frame_wr64(pre + 14, (uint64_t)m->ts);
    r = queue(c, m->from, FRAME_MSG, pre, m->body, m->len, m->b, id, m->id);
    if (r == 0 && !own) conn_track(c, m->id, m->from, m->grp);
    return r;
}

uint64_t output_device_has(const conn *c) {
    uint64_t low = c->confirmed;
    for (router_node *n = router_first(c->hub->router, c->user); n;
         n = n->next) {
        /* (one whose device is still looked up is the default device,
         * 0: it has nothing yet, so nothing goes until it fetched) */
        const conn *o = DLIST_ENTRY(n, conn, node);
        if (o != c && o->dev == c->dev && o->devstate != CONN_DEV_NONE &&
            o->confirmed < low)
            low = o->confirmed;
    }
    return low;
}

void output_report(conn *c) {
    if (c->confirmed <= c->reported || c->devstate != CONN_DEV_READY) return;
    uint64_t low = output_device_has(c);
    if (low <= c->reported) return; /* another connection of it lags */
    c->reported = low;
    store_cursor(c->hub->store, c->user, c->dev, low, 0);
}

void output_control(conn *c, uint8_t type, const uint8_t *body, uint32_t len) {
    output_control_from(c, 0, type, body, len);
}

void output_control_from(conn *c, uint32_t from, uint8_t type,
                         const uint8_t *body, uint32_t len) {
    if (c->state >= CONN_SHUTDOWN || c->fail) return;
    if (c->ws && framing_ws_close_sent(c->ws)) return; /* nothing after it */
    size_t max = c->hub->cfg->max_outbuf + OUTPUT_CONTROL_SLACK;
    if (output_queued(c) > max) { /* (ERRORs for a flood of bad frames) */
        CLOG(c, LOG_WARN, "control_backlog",
             "control frames pile up unread (over %zu bytes); "
             "closing", max);
        c->fail = UV_ENOBUFS; /* closed at the flush */
        conn_queue_flush(c);
        return;
    }
    if (outq_frame(&c->out, from, type, body, len, NULL, 0)) {
        (void)failed(c); /* (closed at the flush; nothing else to undo) */
        return;
    }
    conn_queue_flush(c);
}

int output_signal(conn *c, uint32_t from, uint8_t type, const uint8_t *body,
                  uint32_t len) {
    if (output_queued(c) + FRAME_S2C_HDR + len > c->hub->cfg->max_outbuf) {
        c->hub->stats.signals_dropped++;
        return 0;
    }
    output_control_from(c, from, type, body, len);
    c->hub->stats.signals++;
    return 1;
}

void output_error(conn *c, unsigned code, uint64_t ref, const char *reason) {
    if (!c->ctl) return;
    uint8_t body[FRAME_ERROR_MAX];
    size_t n = frame_put_error(body, (uint16_t)code, ref, reason);
    if (code < FRAME_ERR_CODES) c->hub->stats.errors[code]++;
    output_control(c, FRAME_ERROR, body, (uint32_t)n);
}

void output_ack(conn *c, uint64_t upto) {
    if (!c->acks || upto <= c->ack_out) return;
    c->ack_out = upto;
    c->ack_dirty = 1;
    conn_queue_flush(c);
}

int output_room(conn *c, uint32_t len) {
    size_t need = FRAME_S2C_HDR + (size_t)len, max = c->hub->cfg->max_outbuf;
    if (output_queued(c) + need <= max) return 1;
    if (!transport_writing(&c->io)) {
        int r = output_flush(c);
        if (r < 0) { /* closed at the next flush */
            c->fail = r;
            conn_queue_flush(c);
            return 0;
        }
    }
    return output_queued(c) + need <= max;
}

/* The kernel took all of out's buffer o: without acknowledgements, its
 * messages are the device's now (max_id: the highest id of a MSG frame or
 * of a stored one in it); the store hears of it when one of them is
 * stored (the others concern no stored row: the cursor then reaches the
 * store with the next report, or when the connection closes). */
static void written(conn *c, outbuf *o) {
    if (!c->acks && o->max_id > c->confirmed) {
        c->confirmed = o->max_id;
        if (o->ids.n > o->ids.head) output_report(c);
        conn_confirmed(c);
    }
    outq_reset(o); /* the memory stays for the next frames (cron frees it) */
    output_own(c);
}

void output_own(conn *c) {
    if (c->own_upto <= c->confirmed || c->state != CONN_LIVE ||
        outq_total(&c->out) || transport_writing(&c->io) ||
        c->ackq.n != c->ackq.head)
        return;
    c->confirmed = c->own_upto; /* (own messages: no receipts to note) */
    output_report(c);
}

void output_written(conn *c) {
    outbuf *o = outq_other(&c->out);
    if (!c->tls || c->tls_inflight) written(c, o);
    c->tls_inflight = 0;
    c->wire.len = 0; /* TLS: its capacity stays for the next flush */
}

static void queue_ack(conn *c) {
    if (!c->ack_dirty) return;
    uint8_t body[FRAME_ACK_SIZE];
    frame_put_ack(body, c->ack_out);
    c->ack_dirty = 0;
    output_control(c, FRAME_ACK, body, sizeof body);
}

static int done(const conn *c) {
    return outq_total(&c->out) == 0 && !transport_writing(&c->io) &&
           c->wire.len == 0;
}

/* A write of n bytes starts: counted, and the live frames in it timed. */
static void writing(conn *c, size_t n) {
    hub *h = c->hub;
    h->stats.writes++;
    h->stats.bytes_out += n;
    if (c->lat_n) {
        uint64_t now = uv_hrtime() / 1000;
        metrics_hist_observe_n(&h->stats.delivery,
                               now > c->lat_t0 ? now - c->lat_t0 : 0,
                               c->lat_n);
        c->lat_n = 0;
    }
}

static int flush_plain(conn *c) {
    outbuf *o = outq_cur(&c->out);
    if (o->total == 0) return 1;
    uv_buf_t *iov;
    unsigned n;
    if (outq_iov(&c->out, o, &iov, &n)) return UV_ENOMEM;
    writing(c, o->total);
    int r = transport_write(&c->io, iov, n);
    if (r == 1) {
        written(c, o);
        return 1;
    }
    if (r == 0) outq_swap(&c->out); /* o is the write's until `written` */
    return r;
}

/* TLS: encrypt out's current buffer (once the handshake is done) and write
 * the ciphertext, handshake records included. The write in flight carries
 * the ciphertext in `wire`; tls_inflight says whether it also holds out's
 * other buffer. */
static int flush_tls(conn *c) {
    outbuf *o = outq_cur(&c->out);
    int enc = 0;
    if (o->total && tls_conn_handshake_done(c->tls)) {
        uv_buf_t *iov;
        unsigned n;
        if (outq_iov(&c->out, o, &iov, &n)) return UV_ENOMEM;
        for (unsigned i = 0; i < n; i++)
            if (tls_conn_write(c->tls, (const uint8_t *)iov[i].base,
                               iov[i].len))
                return UV_EPROTO;
        enc = 1;
    }
    if (tls_conn_take_buf(c->tls, &c->wire, SIZE_MAX / 2)) return UV_ENOMEM;
    if (c->wire.len == 0) return done(c);
    uv_buf_t ub = uv_buf_init((char *)c->wire.data, (unsigned)c->wire.len);
    writing(c, c->wire.len);
    int r = transport_write(&c->io, &ub, 1);
    if (r == 1) {
        c->wire.len = 0;
        if (enc) written(c, o);
        return done(c);
    }
    if (r == 0) {
        c->tls_inflight = (uint8_t)enc;
        if (enc) outq_swap(&c->out);
    }
    return r;
}

int output_flush(conn *c) {
    if (c->state >= CONN_SHUTDOWN) return 1; /* nothing after our FIN */
    if (c->fail) return c->fail;
    queue_ack(c);
    if (transport_writing(&c->io)) return 0;
    int r = c->tls ? flush_tls(c) : flush_plain(c);
    if (r < 0) return r;
    return c->fail ? c->fail : done(c);
}

size_t output_shrink(conn *c) {
    if (transport_writing(&c->io) || dlink_linked(&c->flink)) return 0;
    size_t freed = outq_shrink(&c->out);
    if (c->wire.len == 0) {
        freed += c->wire.cap;
        buf_free(&c->wire);
    }
    if (c->tls) freed += tls_conn_shrink(c->tls);
    if (c->ackq.head == c->ackq.n) {
        freed += c->ackq.cap * sizeof(seqid);
        seqidq_free(&c->ackq);
    }
    return freed;
}

void output_posted(conn *c, uint64_t cid, uint64_t id) {
    if (!c->sig) return;
    uint8_t body[FRAME_POSTED_SIZE];
    frame_put_posted(body, cid, id);
    output_control(c, FRAME_POSTED, body, sizeof body);
}
