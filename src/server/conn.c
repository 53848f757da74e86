/*
 * conn.c -- one client connection (see conn.h for states and buffers).
 *
 * The path of a frame: libuv reads into the server's shared buffer (or into
 * c->in when a partial frame is pending) -> conn_process() decodes every
 * complete frame in place -> each header is checked before its body is
 * awaited (refused frames are skipped, never buffered) -> a data frame goes
 * to server_deliver() (live connections and/or the store) or back to the
 * sender (--echo) -> receivers' out buffers grow -> the server's flusher
 * writes each touched connection once per loop iteration (conn_flush).
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "common/log.h"
#include "proto/frame.h"
#include "server.h"

struct conn_linger {
    uv_timer_t timer;        /* linger; first the failed-login delay */
    uv_shutdown_t sreq;
    uint8_t shut_started;
};

/* Largest HELLO body: version, flags, password of up to 1 KiB. */
#define CONN_HELLO_MAX (FRAME_HELLO_MIN + 1024u)

#define CLOG(c, level, fmt, ...)                                              \
    do {                                                                      \
        if (log_enabled(level))                                               \
            log_msg(level, "peer=%s user=%u: " fmt, conn_peer(c),             \
                    (unsigned)(c)->user, __VA_ARGS__);                        \
    } while (0)

static void on_close(uv_handle_t *h);
static void on_write(uv_write_t *req, int status);
static void maybe_shutdown(conn *c);
static void tls_drain(conn *c);
static void take_input(conn *c, const uint8_t *p, size_t n);

static size_t out_bytes(const conn *c) { return c->out[0].len + c->out[1].len; }

static size_t in_limit(const conn *c) {
    return (size_t)c->srv->cfg->max_frame + FRAME_C2S_HDR;
}

static int open_state(const conn *c) {
    return c->state == CONN_NEW || c->state == CONN_LOGIN ||
           c->state == CONN_BOUND;
}

/* NEW or BOUND: frames are parsed (not LOGIN: they wait for the check). */
static int parsing(const conn *c) {
    return c->state == CONN_NEW || c->state == CONN_BOUND;
}

/* ---- the server's lists: pending (login timeout), idle, throttled ------ */

/* The pending and idle lists share the links pprev/pnext. */
static void link_tail(conn **head, conn **tail, conn *c) {
    c->pnext = NULL;
    c->pprev = *tail;
    if (*tail) (*tail)->pnext = c;
    else *head = c;
    *tail = c;
}

static void unlink_from(conn **head, conn **tail, conn *c) {
    if (c->pprev) c->pprev->pnext = c->pnext;
    else *head = c->pnext;
    if (c->pnext) c->pnext->pprev = c->pprev;
    else *tail = c->pprev;
    c->pprev = c->pnext = NULL;
}

static void pending_add(conn *c) {
    server *s = c->srv;
    link_tail(&s->pend_head, &s->pend_tail, c);
    c->pending = 1;
    server_arm_login_timer(s);
}

static void pending_del(conn *c) {
    if (!c->pending) return;
    unlink_from(&c->srv->pend_head, &c->srv->pend_tail, c);
    c->pending = 0;
}

/* A BOUND connection that speaks control frames can be pinged: it joins
 * the idle list (ordered by its last byte received). */
static void idle_add(conn *c) {
    server *s = c->srv;
    if (c->idle_listed || !s->cfg->idle_timeout_ms) return;
    link_tail(&s->idle_head, &s->idle_tail, c);
    c->idle_listed = 1;
    server_arm_idle_timer(s);
}

static void idle_del(conn *c) {
    if (!c->idle_listed) return;
    unlink_from(&c->srv->idle_head, &c->srv->idle_tail, c);
    c->idle_listed = 0;
}

/* Bytes arrived: the connection is the least idle now. */
static void idle_touch(conn *c) {
    c->t_rx = uv_now(c->srv->loop);
    c->pinged = 0;
    if (c->idle_listed && c->srv->idle_tail != c) {
        unlink_from(&c->srv->idle_head, &c->srv->idle_tail, c);
        link_tail(&c->srv->idle_head, &c->srv->idle_tail, c);
    }
}

static void throttle_del(conn *c) {
    if (!c->throttled) return;
    server *s = c->srv;
    if (c->tprev) c->tprev->tnext = c->tnext;
    else s->thr_head = c->tnext;
    if (c->tnext) c->tnext->tprev = c->tprev;
    c->throttled = 0;
    c->tprev = c->tnext = NULL;
}

/* ---- output ------------------------------------------------------------ */

/* Append a server -> client frame to out[outi] if the total stays within
 * limit. 0 or -1. */
static int out_append(conn *c, uint32_t from, uint8_t type,
                      const uint8_t *body, uint32_t len, size_t limit) {
    buf *b = &c->out[c->outi];
    size_t other = c->out[c->outi ^ 1].len;
    size_t need = FRAME_S2C_HDR + (size_t)len;
    if (other > limit || need > limit - other - b->len ||
        (need > b->cap - b->len && buf_reserve(b, need, limit - other)))
        return -1;
    frame_put_s2c_hdr(b->data + b->len, from, type, len);
    if (len) memcpy(b->data + b->len + FRAME_S2C_HDR, body, len);
    b->len += need;
    server_queue_flush(c->srv, c);
    return 0;
}

static void send_control(conn *c, uint8_t type, const uint8_t *body,
                         uint32_t len) {
    if (c->state == CONN_CLOSED) return;
    /* Control frames are small and bounded: they may pass the bound. */
    out_append(c, 0, type, body, len, SIZE_MAX / 2);
}

static void send_error(conn *c, unsigned code, uint64_t ref,
                       const char *reason) {
    if (!c->ctl) return; /* the article's client never gets control frames */
    uint8_t body[FRAME_ERROR_MAX];
    size_t n = frame_put_error(body, (uint16_t)code, ref, reason);
    send_control(c, FRAME_ERROR, body, (uint32_t)n);
}

/* ---- rate limits (token buckets) ---------------------------------------- */

static void refill(conn *c, uint64_t now) {
    const config *cfg = c->srv->cfg;
    if (now <= c->tok_t) return;
    uint64_t el = now - c->tok_t;
    c->tok_t = now;
    if (el > 1000) el = 1000; /* a bucket holds one second */
    int full = 1;
    if (cfg->rate_msgs) {
        int64_t cap = (int64_t)cfg->rate_msgs * 1000;
        c->tok_frames += (int64_t)(el * cfg->rate_msgs);
        if (c->tok_frames >= cap) c->tok_frames = cap;
        else full = 0;
    }
    if (cfg->rate_bytes) {
        int64_t cap = (int64_t)cfg->rate_bytes * 1000;
        c->tok_bytes += (int64_t)(el * cfg->rate_bytes);
        if (c->tok_bytes >= cap) c->tok_bytes = cap;
        else full = 0;
    }
    if (full) c->over_since = 0; /* back under the rate for a second */
}

static void rate_close(conn *c) {
    char why[160];
    snprintf(why, sizeof why, "over the rate limit (%llu frames/s, %llu "
             "bytes/s) for %llu ms; closing",
             (unsigned long long)c->srv->cfg->rate_msgs,
             (unsigned long long)c->srv->cfg->rate_bytes,
             (unsigned long long)c->srv->cfg->rate_grace_ms);
    CLOG(c, LOG_WARN, "%s", why);
    c->srv->stats.refused++;
    conn_finish(c, FRAME_ERR_RATE, why);
}

/* Charge what one read brought: frames_seen frames and n bytes. In debt:
 * stop reading until the buckets refill (the rate timer resumes it); tell
 * the peer once per streak; close after --rate-grace of it. */
static void charge(conn *c, size_t n) {
    const config *cfg = c->srv->cfg;
    uint32_t frames = c->frames_seen;
    c->frames_seen = 0;
    if (!cfg->rate_msgs && !cfg->rate_bytes) return;
    uint64_t now = uv_now(c->srv->loop);
    refill(c, now);
    if (cfg->rate_msgs) c->tok_frames -= (int64_t)frames * 1000;
    if (cfg->rate_bytes) c->tok_bytes -= (int64_t)n * 1000;
    if (c->tok_frames >= 0 && c->tok_bytes >= 0) return;
    if (!c->over_since) {
        c->over_since = now;
        char why[160];
        snprintf(why, sizeof why, "over the rate limit (%llu frames/s, %llu "
                 "bytes/s): reading paused; closed after %llu ms of this",
                 (unsigned long long)cfg->rate_msgs,
                 (unsigned long long)cfg->rate_bytes,
                 (unsigned long long)cfg->rate_grace_ms);
        if (!(c->logged & CONN_LOGGED_RATE)) {
            c->logged |= CONN_LOGGED_RATE;
            CLOG(c, LOG_WARN, "%s (logged once per connection)", why);
        }
        send_error(c, FRAME_ERR_RATE, 0, why);
    } else if (now - c->over_since >= cfg->rate_grace_ms) {
        rate_close(c);
        return;
    }
    if (c->throttled || !open_state(c)) return;
    server *s = c->srv;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    c->throttled = 1;
    c->tprev = NULL;
    c->tnext = s->thr_head;
    if (s->thr_head) s->thr_head->tprev = c;
    s->thr_head = c;
    server_arm_rate_timer(s);
}

uint64_t conn_sweep_throttled(server *s) {
    uint64_t now = uv_now(s->loop);
    for (conn *c = s->thr_head, *next; c; c = next) {
        next = c->tnext;
        refill(c, now);
        if (c->tok_frames >= 0 && c->tok_bytes >= 0) {
            throttle_del(c);
            if (!s->paused || c->state == CONN_CLOSING) conn_resume(c);
        } else if (now - c->over_since >= s->cfg->rate_grace_ms) {
            throttle_del(c);
            rate_close(c);
        }
    }
    return s->thr_head ? 50 : 0;
}

/* Frames up to ack_out are handled: tell an opted-in peer at the flush. */
static void ack_handled(conn *c, uint64_t upto) {
    if (!c->acks || upto <= c->ack_out) return;
    c->ack_out = upto;
    c->ack_dirty = 1;
    server_queue_flush(c->srv, c);
}

int conn_has_room(conn *c, uint32_t len) {
    size_t need = FRAME_S2C_HDR + (size_t)len;
    if (out_bytes(c) + need <= c->srv->cfg->max_outbuf) return 1;
    /* A burst within one iteration is not a slow reader: write it now. */
    if (!c->writing) conn_flush(c);
    return c->state != CONN_CLOSED &&
           out_bytes(c) + need <= c->srv->cfg->max_outbuf;
}

int conn_send_data(conn *c, uint32_t from, uint8_t type, const uint8_t *body,
                   uint32_t len, uint64_t id) {
    if (!open_state(c)) return -1;
    size_t at = c->out[c->outi].len;
    if (out_append(c, from, type, body, len, SIZE_MAX / 2) ||
        (id && seqidq_push(&c->ids[c->outi], at, id)) ||
        (c->acks && id && seqidq_push(&c->ackq, c->seq_out + 1, id))) {
        CLOG(c, LOG_ERROR, "%s", "out of memory for output; closing");
        conn_abort(c);
        return -1;
    }
    c->seq_out++;
    if (id > c->cursor) c->cursor = id;
    return 0;
}

/* The kernel took all of out[i]: without acknowledgements its stored
 * frames are delivered; with them, they wait for the peer's ACK. */
static void written(conn *c, int i) {
    seqidq *ids = &c->ids[i];
    if (!c->acks)
        for (size_t k = 0; k < ids->n; k++)
            store_del(c->srv->store, ids->v[k].id);
    ids->n = 0;
    c->out[i].len = 0; /* the memory stays for the next frames: the cron
                          frees it once the connection is quiet */
    if (c->sync) conn_fetch(c); /* room again: the next stored page */
}

/* The slow path (the kernel did not take it all at once): a write request
 * lives only while its write is in flight, so idle connections hold none. */
static int start_write(conn *c, uv_buf_t ub) {
    uv_write_t *w = malloc(sizeof *w);
    if (!w) return UV_ENOMEM;
    w->data = c;
    int r = uv_write(w, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
    if (r < 0) free(w);
    return r;
}

/* Write p[0..n): 1 when the kernel took it all at once (the common case: no
 * request, no callback), 0 when the rest went to a write request (writing
 * is set), -1 when the connection failed (it is closed). */
static int write_now(conn *c, const uint8_t *p, size_t n) {
    uv_buf_t ub = uv_buf_init((char *)p, (unsigned)n);
    c->srv->stats.writes++;
    int w = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
    if (w == (int)n) return 1;
    if (w >= 0 || w == UV_EAGAIN) {
        if (w > 0) ub = uv_buf_init(ub.base + w, ub.len - (unsigned)w);
        w = start_write(c, ub);
        if (w == 0) {
            c->writing = 1;
            return 0;
        }
    }
    CLOG(c, LOG_DEBUG, "write failed: %s", uv_strerror(w));
    conn_abort(c);
    return -1;
}

/* TLS: encrypt out[outi] (when no write is in flight and the handshake is
 * done) and write the ciphertext, once per iteration like plaintext. The
 * in-flight ciphertext in `wire` is that of out[outi ^ 1] (tls_inflight),
 * which written() releases when the kernel took all of it. */
static void tls_flush(conn *c) {
    if (c->writing) return;
    int i = c->outi, enc = 0;
    buf *b = &c->out[i];
    if (b->len && tls_conn_handshake_done(c->tls)) {
        if (tls_conn_write(c->tls, b->data, b->len)) {
            CLOG(c, LOG_DEBUG, "TLS write failed: %s", tls_conn_reason(c->tls));
            conn_abort(c);
            return;
        }
        enc = 1;
    }
    if (tls_conn_take_buf(c->tls, &c->wire, SIZE_MAX / 2)) {
        CLOG(c, LOG_ERROR, "%s", "out of memory for output; closing");
        conn_abort(c);
        return;
    }
    if (c->wire.len == 0) return;
    int r = write_now(c, c->wire.data, c->wire.len);
    if (r == 1) {
        buf_free(&c->wire);
        if (enc) written(c, i);
    } else if (r == 0) {
        c->tls_inflight = (uint8_t)enc;
        if (enc) c->outi ^= 1;
    }
}

void conn_flush(conn *c) {
    if (c->state == CONN_CLOSED) return;
    if (c->ack_dirty) {
        uint8_t body[FRAME_ACK_SIZE];
        frame_put_ack(body, c->ack_out);
        c->ack_dirty = 0;
        send_control(c, FRAME_ACK, body, sizeof body);
    }
    if (c->tls) {
        tls_flush(c);
        return;
    }
    if (c->writing) return;
    buf *b = &c->out[c->outi];
    if (b->len == 0) return;
    int r = write_now(c, b->data, b->len);
    if (r == 1) written(c, c->outi);
    else if (r == 0) c->outi ^= 1;
}

static void on_write(uv_write_t *req, int status) {
    conn *c = req->data;
    free(req);
    c->writing = 0;
    if (c->state == CONN_CLOSED) return; /* cancelled by uv_close */
    if (status < 0) {
        CLOG(c, LOG_DEBUG, "write failed: %s", uv_strerror(status));
        c->writing = 1; /* so conn_abort treats the failed buffer as unsent */
        c->wfailed = 1;
        conn_abort(c);
        c->writing = 0;
        return;
    }
    if (c->tls) buf_free(&c->wire);
    /* (A TLS write of handshake records only carried no out buffer.) */
    if (!c->tls || c->tls_inflight) written(c, c->outi ^ 1);
    c->tls_inflight = 0;
    conn_flush(c);
    if (c->state == CONN_CLOSING) maybe_shutdown(c);
}

/* ---- the store --------------------------------------------------------- */

void conn_spill(conn *c) {
    if (c->sync) return;
    c->sync = 1;
    c->sync_dirty = 1;
    if (!(c->logged & CONN_LOGGED_SPILL)) {
        c->logged |= CONN_LOGGED_SPILL;
        CLOG(c, LOG_INFO, "output queue at %zu bytes (receiver reads slowly): "
             "its frames wait in the store until it catches up "
             "(logged once per connection)", c->srv->cfg->max_outbuf);
    }
}

static void tail_clear(conn *c) {
    c->tail.len = 0;
    c->tail_ids.n = 0;
    c->tail_over = 0;
    if (c->tail.cap > CONN_PULL_BYTES / 4) {
        buf_free(&c->tail);
        u64vec_free(&c->tail_ids);
    }
}

void conn_stored(conn *c, uint32_t from, uint8_t type, const uint8_t *body,
                 uint32_t len, uint64_t id) {
    c->sync_dirty = 1;
    if (c->fetching && !c->tail_over) {
        buf *t = &c->tail;
        size_t need = FRAME_S2C_HDR + (size_t)len;
        /* As much as the output queue may hold: a receiver that can take
         * one fetch round trip's worth of frames catches up in one. */
        if (buf_reserve(t, need, c->srv->cfg->max_outbuf) ||
            u64vec_push(&c->tail_ids, id)) {
            c->tail_over = 1; /* too much (or no memory): fetch again */
        } else {
            frame_put_s2c_hdr(t->data + t->len, from, type, len);
            if (len) memcpy(t->data + t->len + FRAME_S2C_HDR, body, len);
            t->len += need;
        }
    }
    conn_fetch(c);
}

/* The fetch came back with nothing further: the tail holds every frame
 * stored since it was asked for; those it did not return go out now. */
static void tail_deliver(conn *c) {
    frame_s2c f;
    long r;
    size_t k = 0;
    for (size_t off = 0; off < c->tail.len && c->state == CONN_BOUND;
         off += (size_t)r, k++) {
        r = frame_decode_s2c(c->tail.data + off, c->tail.len - off,
                             FRAME_LEN_MAX, &f);
        if (r <= 0) break; /* cannot happen: we wrote these frames */
        uint64_t id = c->tail_ids.v[k];
        if (id <= c->cursor) continue; /* the fetch returned it */
        conn_send_data(c, f.sender, f.type, f.body, f.len, id);
        c->srv->stats.frames_routed++;
    }
}

void conn_fetch(conn *c) {
    if (c->state != CONN_BOUND || !c->sync || c->fetching) return;
    if (out_bytes(c) > CONN_PULL_BYTES / 2) return; /* on_write asks again */
    c->fetching = 1;
    c->sync_dirty = 0;
    tail_clear(c);
    c->refs++;
    store_fetch(c->srv->store, c->user, c->cursor, CONN_PULL_ROWS,
                CONN_PULL_BYTES, c);
}

static void conn_release(conn *c);

void conn_fetch_done(conn *c, const void *rowsp, size_t n, int more,
                     int status) {
    const store_row *rows = rowsp;
    c->refs--;
    c->fetching = 0;
    if (c->state != CONN_BOUND) {
        conn_release(c);
        return;
    }
    if (status) {
        if (!(c->logged & CONN_LOGGED_FETCH)) {
            c->logged |= CONN_LOGGED_FETCH;
            CLOG(c, LOG_ERROR, "cannot read stored messages: %s (retried as "
                 "frames arrive; logged once per connection)",
                 store_strerror(status));
        }
        c->sync_dirty = 1;
        return;
    }
    for (size_t i = 0; i < n && c->state == CONN_BOUND; i++) {
        if (rows[i].id <= c->cursor) continue;
        conn_send_data(c, rows[i].sender, rows[i].type, rows[i].body,
                       rows[i].len, rows[i].id);
        c->srv->stats.frames_routed++;
    }
    if (c->state != CONN_BOUND) return;
    if (!more && !c->tail_over) {
        tail_deliver(c);
        c->sync = 0; /* caught up: LIVE */
        c->sync_dirty = 0;
    } else {
        c->sync_dirty = 1;
        conn_fetch(c);
    }
    tail_clear(c);
}

void conn_put_done(conn *c, uint64_t seq, int named, int status) {
    c->refs--;
    if (named) c->puts_pending--;
    if (status && c->state != CONN_CLOSED) {
        char why[160];
        snprintf(why, sizeof why, "message %llu not accepted: %s",
                 (unsigned long long)seq, store_strerror(status));
        c->srv->stats.refused++;
        if (!(c->logged & CONN_LOGGED_STORE)) {
            c->logged |= CONN_LOGGED_STORE;
            CLOG(c, LOG_WARN, "refused frame: %s (logged once per connection)",
                 why);
        }
        send_error(c, status == STORE_EQUOTA ? FRAME_ERR_QUOTA
                                             : FRAME_ERR_STORE, seq, why);
    }
    if (named && c->state != CONN_CLOSED)
        ack_handled(c, c->puts_pending ? seq : c->seq_in);
    conn_release(c);
}

/* Frames in the s2c stream p[0..n) (ids: one per data frame) that end after
 * byte `sent` and have no stored copy go to the store for c->user; stored
 * ones that the kernel fully took are deleted (no-ack peers). */
static uint64_t handoff(conn *c, const uint8_t *p, size_t n, size_t sent,
                        const seqidq *ids) {
    uint64_t count = 0;
    size_t k = 0;
    frame_s2c f;
    long r;
    for (size_t off = 0; off < n; off += (size_t)r) {
        r = frame_decode_s2c(p + off, n - off, FRAME_LEN_MAX, &f);
        if (r <= 0) break; /* cannot happen: we wrote these frames */
        uint64_t id = 0;
        if (k < ids->n && ids->v[k].seq == off) id = ids->v[k++].id;
        if (!frame_is_data(f.type)) continue;
        if (off + (size_t)r <= sent) {
            if (id && !c->acks) store_del(c->srv->store, id);
            continue;
        }
        if (id) continue; /* stored already: delivered on reconnect */
        server *s = c->srv;
        if (store_put(s->store, s->next_id++, c->user, f.sender, f.type,
                      f.body, f.len, 1, NULL, 0)) {
            CLOG(c, LOG_ERROR, "%s", "undelivered frame lost: out of memory");
            continue;
        }
        count++;
    }
    return count;
}

/* ---- closing ----------------------------------------------------------- */

void conn_abort(conn *c) {
    if (c->state == CONN_CLOSED) return;
    pending_del(c);
    idle_del(c);
    throttle_del(c);
    int was_bound = c->node.user != 0;
    router_del(&c->srv->router, &c->node);
    /* Unsent output without a stored copy goes to the store, unless another
     * device of the same user is live (it got these frames itself). */
    if (c->user && !c->srv->cfg->echo &&
        (was_bound || c->state == CONN_CLOSING) &&
        !router_first(&c->srv->router, c->user) && out_bytes(c)) {
        uint64_t n = 0;
        if (c->writing) {
            int w = c->outi ^ 1;
            /* TLS: ciphertext offsets do not map back to frames. */
            size_t unsent = c->wfailed || c->tls ? c->out[w].len
                                                 : c->tcp.write_queue_size;
            n += handoff(c, c->out[w].data, c->out[w].len,
                         unsent <= c->out[w].len ? c->out[w].len - unsent : 0,
                         &c->ids[w]);
        }
        n += handoff(c, c->out[c->outi].data, c->out[c->outi].len, 0,
                     &c->ids[c->outi]);
        c->srv->stats.frames_stored += n;
        if (n) CLOG(c, LOG_INFO, "%llu undelivered frames handed to the store",
                    (unsigned long long)n);
    }
    c->state = CONN_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    if (c->linger) {
        c->handles++;
        uv_close((uv_handle_t *)&c->linger->timer, on_close);
    }
}

static void on_linger_timeout(uv_timer_t *t) {
    conn *c = t->data;
    CLOG(c, LOG_DEBUG, "%s", "closing: linger time over");
    conn_abort(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    conn *c = req->data;
    if (c->state == CONN_CLOSED) return;
    if (status < 0 || c->eof) conn_abort(c);
    /* else: wait for the peer's EOF, or the linger timer. */
}

static void maybe_shutdown(conn *c) {
    conn_linger *l = c->linger;
    if (!l || l->shut_started || c->out[c->outi].len) return;
    if (c->tls && !c->tls_notified) { /* close_notify, then FIN */
        c->tls_notified = 1;
        tls_conn_shutdown(c->tls);
        conn_flush(c);
        if (c->state != CONN_CLOSING || c->writing) return; /* on_write */
    }
    l->shut_started = 1;
    l->sreq.data = c;
    if (uv_shutdown(&l->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_abort(c);
}

void conn_finish(conn *c, unsigned code, const char *reason) {
    if (!open_state(c)) return;
    if (code) send_error(c, code, 0, reason);
    router_del(&c->srv->router, &c->node);
    pending_del(c);
    idle_del(c);
    throttle_del(c);
    c->state = CONN_CLOSING;
    c->skip = 0;
    buf_free(&c->in);
    conn_resume(c); /* keep reading (and discarding) while closing */
    if (!c->linger) { /* (a failed login allocated it already) */
        c->linger = calloc(1, sizeof *c->linger);
        if (!c->linger) {
            conn_abort(c);
            return;
        }
        uv_timer_init(c->srv->loop, &c->linger->timer);
        c->linger->timer.data = c;
    }
    uv_timer_start(&c->linger->timer, on_linger_timeout, CONN_LINGER_MS, 0);
    conn_flush(c);
    if (c->state == CONN_CLOSING) maybe_shutdown(c);
}

/* Free c once its handles are closed and no store request names it. */
static void conn_release(conn *c) {
    if (c->state != CONN_CLOSED || c->handles || c->refs) return;
    server *s = c->srv;
    if (c->flush_queued) { /* unlink from the flush list (rare) */
        for (conn **pp = &s->flush_head; *pp; pp = &(*pp)->flush_next)
            if (*pp == c) { *pp = c->flush_next; break; }
    }
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    if (c->ipkey) {
        uintptr_t n = (uintptr_t)u32map_get(&s->per_ip, c->ipkey);
        if (n <= 1) u32map_del(&s->per_ip, c->ipkey);
        else u32map_put(&s->per_ip, c->ipkey, (void *)(n - 1));
    }
    buf_free(&c->in);
    buf_free(&c->wire);
    tls_conn_free(c->tls);
    for (int i = 0; i < 2; i++) {
        buf_free(&c->out[i]);
        seqidq_free(&c->ids[i]);
    }
    seqidq_free(&c->ackq);
    buf_free(&c->tail);
    u64vec_free(&c->tail_ids);
    free(c->linger);
    CLOG(c, LOG_DEBUG, "%s", "closed");
    free(c);
    if (s->stopping && s->nconns == 0) server_stop(s);
}

static void on_close(uv_handle_t *h) {
    conn *c = h->data;
    c->handles--;
    conn_release(c);
}

/* ---- input ------------------------------------------------------------- */

static int bind_user(conn *c, uint32_t user) {
    if (user == 0) {
        CLOG(c, LOG_WARN, "%s", "refused: user id 0 is reserved; closing");
        c->srv->stats.refused++;
        conn_finish(c, FRAME_ERR_PROTO, "user id 0 is reserved");
        return -1;
    }
    if (router_add(&c->srv->router, &c->node, user)) {
        log_error("out of memory binding peer=%s", conn_peer(c));
        conn_abort(c);
        return -1;
    }
    c->user = user;
    c->state = CONN_BOUND;
    pending_del(c);
    CLOG(c, LOG_DEBUG, "%s", "bound");
    return 0;
}

/* Stored frames come first: start SYNC and ask for the first page. */
static void start_sync(conn *c) {
    if (c->srv->cfg->echo || c->state != CONN_BOUND) return;
    c->sync = 1;
    conn_fetch(c);
}

static void refuse_once(conn *c, unsigned flag, unsigned code, uint64_t ref,
                        const char *reason) {
    c->srv->stats.refused++;
    if (!(c->logged & flag)) {
        c->logged |= (uint16_t)flag;
        CLOG(c, LOG_WARN, "refused frame: %s (logged once per connection)",
             reason);
    }
    send_error(c, code, ref, reason);
    if (ref && !c->puts_pending) ack_handled(c, ref);
}

enum verdict { V_BODY, V_SKIP, V_CLOSED };

/* Look at a complete header before its body is awaited. Refusals happen
 * here, so a refused body is skipped instead of buffered. Side effects
 * only for refusals (a header that needs its body is looked at again when
 * more bytes arrive). */
static enum verdict check_header(conn *c, const frame_c2s *h) {
    server *s = c->srv;
    char why[160];
    if (h->len > s->cfg->max_frame) {
        if (frame_is_data(h->type)) c->seq_in++;
        CLOG(c, LOG_WARN, "refused: frame too large (%u bytes, limit %u); "
             "closing", (unsigned)h->len, (unsigned)s->cfg->max_frame);
        s->stats.refused++;
        snprintf(why, sizeof why, "frame too large: %u bytes, limit %u",
                 (unsigned)h->len, (unsigned)s->cfg->max_frame);
        conn_finish(c, FRAME_ERR_TOOBIG, why);
        return V_CLOSED;
    }
    if (s->auth && c->state == CONN_NEW && h->type != FRAME_HELLO) {
        if (frame_is_data(h->type)) c->seq_in++;
        CLOG(c, LOG_WARN, "refused: frame type %u before login; closing",
             (unsigned)h->type);
        s->stats.refused++;
        c->ctl = 1; /* a server with logins speaks control frames */
        conn_finish(c, FRAME_ERR_NOLOGIN, "log in first: this server "
                    "requires HELLO with your password (--auth on)");
        return V_CLOSED;
    }
    if (h->type == FRAME_HELLO && c->state != CONN_NEW) {
        c->ctl = 1;
        refuse_once(c, CONN_LOGGED_HELLO, FRAME_ERR_PROTO, 0,
                    "HELLO must be the first frame; ignored");
        return V_SKIP;
    }
    if (c->user && h->sender != c->user) {
        if (frame_is_data(h->type)) c->seq_in++;
        snprintf(why, sizeof why,
                 "spoofed sender: frame claims sender %u, connection is user %u",
                 (unsigned)h->sender, (unsigned)c->user);
        refuse_once(c, CONN_LOGGED_SPOOF, FRAME_ERR_SPOOF,
                    frame_is_data(h->type) ? c->seq_in : 0, why);
        return V_SKIP;
    }
    if (frame_is_data(h->type)) {
        if (!s->cfg->echo && h->receiver == 0) {
            c->seq_in++;
            refuse_once(c, CONN_LOGGED_BADRCPT, FRAME_ERR_BADRCPT, c->seq_in,
                        "invalid receiver: user id 0");
            return V_SKIP;
        }
        return V_BODY;
    }
    switch (h->type) {
    case FRAME_HELLO:
        c->ctl = 1;
        if (h->len < FRAME_HELLO_MIN || h->len > CONN_HELLO_MAX) {
            CLOG(c, LOG_WARN, "refused: malformed HELLO (%u bytes); closing",
                 (unsigned)h->len);
            s->stats.refused++;
            conn_finish(c, FRAME_ERR_PROTO, "malformed HELLO");
            return V_CLOSED;
        }
        return V_BODY;
    case FRAME_PING:
    case FRAME_PONG:
    case FRAME_ACK:
        c->ctl = 1;
        if ((h->type == FRAME_ACK && h->len != FRAME_ACK_SIZE) ||
            (h->type != FRAME_ACK && h->len > FRAME_PING_MAX)) {
            CLOG(c, LOG_WARN, "refused: malformed control frame 0x%02x "
                 "(%u bytes); closing", h->type, (unsigned)h->len);
            s->stats.refused++;
            conn_finish(c, FRAME_ERR_PROTO, "malformed control frame");
            return V_CLOSED;
        }
        return V_BODY;
    default:
        snprintf(why, sizeof why, "unknown frame type %u", (unsigned)h->type);
        refuse_once(c, CONN_LOGGED_BADTYPE, FRAME_ERR_BADTYPE, 0, why);
        return V_SKIP;
    }
}

static void handle_data(conn *c, const frame_c2s *f) {
    server *s = c->srv;
    if (c->state == CONN_NEW) {
        if (bind_user(c, f->sender)) return;
        start_sync(c);
    }
    c->seq_in++;
    s->stats.frames_in++;
    if (s->cfg->echo) {
        if (!conn_has_room(c, f->len)) {
            /* Echo frames have no other home: a sender that does not read
             * its echoes is closed. */
            CLOG(c, LOG_WARN, "output queue over %zu bytes (not reading its "
                 "echoes); closing", s->cfg->max_outbuf);
            conn_abort(c);
            return;
        }
        if (conn_send_data(c, f->sender, f->type, f->body, f->len, 0) == 0)
            s->stats.frames_routed++;
        if (!c->puts_pending) ack_handled(c, c->seq_in);
        return;
    }
    int r = server_deliver(s, c, c->seq_in, f->receiver, f->sender, f->type,
                           f->body, f->len);
    if (r < 0) {
        char why[160];
        snprintf(why, sizeof why, "message to %u not accepted: %s",
                 (unsigned)f->receiver, store_strerror(r));
        refuse_once(c, CONN_LOGGED_STORE, FRAME_ERR_STORE, c->seq_in, why);
    } else if (r == 0 && !c->puts_pending) {
        ack_handled(c, c->seq_in);
    }
}

static void handle_ack(conn *c, const frame_c2s *f) {
    uint64_t h;
    if (!c->acks || frame_parse_ack(f->body, f->len, &h)) return;
    if (h > c->seq_out) {
        CLOG(c, LOG_WARN, "refused: ACK of %llu frames, only %llu sent; "
             "closing", (unsigned long long)h, (unsigned long long)c->seq_out);
        c->srv->stats.refused++;
        conn_finish(c, FRAME_ERR_PROTO, "ACK counts more frames than were sent");
        return;
    }
    seqidq *q = &c->ackq;
    while (q->head < q->n && q->v[q->head].seq <= h)
        store_del(c->srv->store, q->v[q->head++].id);
    if (q->head == q->n) q->head = q->n = 0;
}

static void welcome(conn *c) {
    frame_welcome w = {FRAME_VERSION, (uint8_t)(c->acks ? FRAME_FLAG_ACKS : 0),
                       c->user, c->srv->cfg->max_frame};
    uint8_t body[FRAME_WELCOME_SIZE];
    frame_put_welcome(body, &w);
    send_control(c, FRAME_WELCOME, body, sizeof body);
    if (c->state == CONN_BOUND) idle_add(c);
    start_sync(c);
}

/* --auth on: check the HELLO's password off the loop (NEW -> LOGIN). */
static void start_login(conn *c, uint32_t user, const frame_hello *h) {
    server *s = c->srv;
    if (user == 0 || h->password_len == 0) {
        CLOG(c, LOG_WARN, "refused: HELLO %s; closing",
             user ? "without a password" : "as user 0");
        s->stats.refused++;
        conn_finish(c, user ? FRAME_ERR_AUTH : FRAME_ERR_PROTO,
                    user ? "this server requires a password in HELLO"
                         : "user id 0 is reserved");
        return;
    }
    c->refs++; /* held by the check until conn_auth_done */
    int r = auth_check(s->auth, user, h->password, h->password_len,
                       conn_auth_done, c);
    if (r) {
        c->refs--;
        CLOG(c, LOG_WARN, "refused: too many logins in progress (%s); "
             "closing", r == AUTH_EBUSY ? "queue full" : "out of memory");
        s->stats.refused++;
        conn_finish(c, FRAME_ERR_BUSY, "too many logins in progress; try "
                    "again later");
        return;
    }
    c->user = user;
    c->t_hello = uv_now(s->loop);
    c->state = CONN_LOGIN;
    pending_del(c); /* the check's time is ours, not the client's */
    if (c->reading) { /* what follows waits for the verdict */
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void on_login_failed(uv_timer_t *t) {
    conn *c = t->data;
    conn_finish(c, FRAME_ERR_AUTH, "wrong user id or password");
}

static size_t conn_process(conn *c, const uint8_t *p, size_t n);

void conn_auth_done(void *token, int result) {
    conn *c = token;
    server *s = c->srv;
    c->refs--;
    if (c->state != CONN_LOGIN) { /* closed meanwhile */
        conn_release(c);
        return;
    }
    pending_del(c);
    if (result != ACCOUNTS_OK) {
        s->stats.login_failures++;
        if (result != ACCOUNTS_EBADPW && result != ACCOUNTS_ENOENT) {
            CLOG(c, LOG_ERROR, "login failed: cannot check the password "
                 "(%s); closing", accounts_strerror(result));
            conn_finish(c, FRAME_ERR_BUSY, "cannot check passwords now; "
                        "try again later");
            return;
        }
        CLOG(c, LOG_WARN, "login failed: %s; answering after %d ms, then "
             "closing", result == ACCOUNTS_EBADPW ? "wrong password"
                                                  : "no such account",
             CONN_AUTH_FAIL_MS);
        /* Every failure is answered CONN_AUTH_FAIL_MS after its HELLO:
         * the same for unknown ids, and slow for guessing. */
        uint64_t now = uv_now(s->loop), due = c->t_hello + CONN_AUTH_FAIL_MS;
        c->linger = calloc(1, sizeof *c->linger);
        if (!c->linger) {
            conn_abort(c);
            return;
        }
        uv_timer_init(s->loop, &c->linger->timer);
        c->linger->timer.data = c;
        uv_timer_start(&c->linger->timer, on_login_failed,
                       due > now ? due - now : 0, 0);
        return;
    }
    c->state = CONN_NEW;
    if (bind_user(c, c->user)) return;
    s->stats.logins++;
    CLOG(c, LOG_INFO, "%s", "logged in");
    welcome(c);
    if (c->in.len && c->state == CONN_BOUND) { /* sent right after HELLO */
        size_t used = conn_process(c, c->in.data, c->in.len);
        if (c->state == CONN_CLOSED) return;
        if (used >= c->in.len) c->in.len = 0;
        else buf_consume(&c->in, used);
    }
    if (c->tls && c->state == CONN_BOUND) tls_drain(c);
    if (!s->paused && c->state == CONN_BOUND) conn_resume(c);
}

uint64_t conn_sweep_idle(server *s) {
    uint64_t now = uv_now(s->loop), idle = s->cfg->idle_timeout_ms;
    for (conn *c = s->idle_head, *next; c; c = next) {
        next = c->pnext;
        if (c->t_rx + idle / 2 > now) break; /* the rest spoke later */
        if (c->t_rx + idle <= now) {
            idle_del(c);
            CLOG(c, LOG_INFO, "silent for %llu ms (no answer to PING); "
                 "closing", (unsigned long long)idle);
            conn_finish(c, 0, NULL);
            continue;
        }
        if (!c->pinged) {
            c->pinged = 1;
            send_control(c, FRAME_PING, (const uint8_t *)"keepalive", 9);
        }
    }
    uint64_t every = idle / 4 < 100 ? 100 : idle / 4;
    return s->idle_head ? every : 0;
}

/* At most this many timed-out connections are closed per loop iteration,
 * so a crowd of them cannot stall everyone else. */
#define CONN_SWEEP_BATCH 256

uint64_t conn_sweep_pending(server *s) {
    uint64_t now = uv_now(s->loop), limit = s->cfg->login_timeout_ms;
    char why[128];
    snprintf(why, sizeof why, "%s within %llu ms",
             s->auth ? "not logged in" : "no first frame",
             (unsigned long long)limit);
    unsigned closed = 0;
    uint64_t next = 0;
    conn *c;
    while ((c = s->pend_head)) {
        uint64_t due = c->t_accept + limit;
        if (due > now) {
            next = due - now;
            break;
        }
        if (closed == CONN_SWEEP_BATCH) {
            next = 1; /* the rest after other work */
            break;
        }
        pending_del(c);
        if (closed++ == 0) CLOG(c, LOG_INFO, "%s; closing", why);
        else CLOG(c, LOG_DEBUG, "%s; closing", why);
        /* One that never spoke gets no goodbye: just the close. */
        if (c->ctl) conn_finish(c, s->auth ? FRAME_ERR_NOLOGIN
                                           : FRAME_ERR_PROTO, why);
        else conn_abort(c);
    }
    if (closed > 1)
        log_info("closed %u connections: %s", closed, why);
    return next;
}

static void handle_control(conn *c, const frame_c2s *f) {
    switch (f->type) {
    case FRAME_HELLO: {
        frame_hello h;
        if (frame_parse_hello(f->body, f->len, &h) || h.version != FRAME_VERSION) {
            CLOG(c, LOG_WARN, "refused: HELLO version %u unsupported; closing",
                 f->len ? f->body[0] : 0);
            c->srv->stats.refused++;
            conn_finish(c, FRAME_ERR_PROTO,
                        "unsupported protocol version (this server speaks 1)");
            return;
        }
        c->acks = (h.flags & FRAME_FLAG_ACKS) != 0;
        if (c->srv->auth) {
            start_login(c, f->sender, &h);
            return;
        }
        if (bind_user(c, f->sender)) return;
        welcome(c);
        return;
    }
    case FRAME_PING:
        send_control(c, FRAME_PONG, f->body, f->len);
        return;
    case FRAME_ACK:
        handle_ack(c, f);
        return;
    default: /* PONG answers our PING */
        return;
    }
}

/* Consume every complete frame in p[0..n). Returns the bytes consumed; the
 * rest (< one frame) is a partial frame for the caller to keep. */
static size_t conn_process(conn *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    while (off < n && parsing(c)) {
        if (c->skip) {
            size_t k = n - off < c->skip ? n - off : c->skip;
            off += k;
            c->skip -= (uint32_t)k;
            continue;
        }
        frame_c2s f = {0};
        long r = frame_decode_c2s(p + off, n - off, FRAME_LEN_MAX, &f);
        if (r == FRAME_PARTIAL && n - off < FRAME_C2S_HDR) break;
        enum verdict v = check_header(c, &f);
        if (v == V_CLOSED) return n;
        if (v == V_SKIP) {
            off += FRAME_C2S_HDR;
            c->skip = f.len;
            c->frames_seen++;
            continue;
        }
        if (r == FRAME_PARTIAL) break; /* body not all here yet */
        c->frames_seen++;
        if (frame_is_data(f.type)) handle_data(c, &f);
        else handle_control(c, &f);
        off += (size_t)r;
    }
    return off;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
    (void)suggested;
    conn *c = h->data;
    uint64_t total = c->in.len ? frame_c2s_total(c->in.data, c->in.len) : 0;
    size_t need = total ? (size_t)(total - c->in.len)
                        : FRAME_C2S_HDR - c->in.len;
    /* Whole reads land in the shared buffer (take_input completes a pending
     * partial frame from there), unless a large body is pending: then it is
     * read straight into place. */
    if (c->tls || c->in.len == 0 || c->state == CONN_CLOSING ||
        need < SERVER_READ_BUF) {
        *out = uv_buf_init((char *)c->srv->rbuf, sizeof c->srv->rbuf);
        return;
    }
    /* Growing the buffer at most twofold per read, never past max_frame +
     * header. */
    size_t want = need;
    size_t grow = c->in.len < 65536 ? 65536 : c->in.len;
    if (want > grow) want = grow;
    size_t limit = in_limit(c);
    if (want > limit - c->in.len) want = limit - c->in.len;
    if (want == 0 || buf_reserve(&c->in, want, limit)) {
        *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    *out = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)want);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
    conn *c = st->data;
    if (c->state == CONN_CLOSED) return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            c->eof = 1;
            if (c->state == CONN_CLOSING) {
                if (c->linger && c->linger->shut_started) conn_abort(c);
                return;
            }
            if (c->in.len || c->skip)
                CLOG(c, LOG_INFO, "%s", "closed by peer in the middle of a frame");
            CLOG(c, LOG_DEBUG, "%s", "closed by peer");
            conn_finish(c, 0, NULL);
            return;
        }
        if (nread == UV_ENOBUFS)
            CLOG(c, LOG_ERROR, "%s", "out of memory for input; closing");
        else
            CLOG(c, LOG_DEBUG, "read error: %s", uv_strerror((int)nread));
        conn_abort(c);
        return;
    }
    if (nread == 0 || c->state == CONN_CLOSING) return; /* discard */
    size_t n = (size_t)nread;
    idle_touch(c);
    if (c->tls) {
        if (tls_conn_feed(c->tls, c->srv->rbuf, n)) {
            CLOG(c, LOG_ERROR, "%s", "out of memory for input; closing");
            conn_abort(c);
            return;
        }
        tls_drain(c);
    } else if ((uint8_t *)b->base == c->srv->rbuf) {
        take_input(c, c->srv->rbuf, n);
        if (c->state == CONN_CLOSED) return;
    } else {
        c->in.len += n;
        size_t used = conn_process(c, c->in.data, c->in.len);
        if (c->state == CONN_CLOSED) return;
        if (used >= c->in.len) c->in.len = 0; /* kept until the cron */
        else buf_consume(&c->in, used);
    }
    if (!open_state(c)) return;
    if (c->ctl && c->state == CONN_BOUND && !c->idle_listed) idle_add(c);
    charge(c, n);
}

/* Input p[0..n) in a scratch buffer (the server's rbuf: a read, or TLS
 * plaintext): complete a partial frame held in `in` first (appending only
 * what it lacks, so `in` stays within its bound), then decode the rest in
 * place and keep its trailing partial frame (LOGIN: all of it, unparsed). */
static void take_input(conn *c, const uint8_t *p, size_t n) {
    while (n && parsing(c)) {
        if (c->in.len == 0) {
            size_t used = conn_process(c, p, n);
            p += used;
            n -= used;
            break;
        }
        uint64_t total = frame_c2s_total(c->in.data, c->in.len);
        size_t need = total ? (size_t)(total - c->in.len)
                            : FRAME_C2S_HDR - c->in.len;
        size_t k = need < n ? need : n;
        if (buf_append(&c->in, p, k, in_limit(c))) {
            CLOG(c, LOG_ERROR, "%s", "out of memory for input; closing");
            conn_abort(c);
            return;
        }
        p += k;
        n -= k;
        size_t used = conn_process(c, c->in.data, c->in.len);
        if (c->state == CONN_CLOSED) return;
        if (used >= c->in.len) c->in.len = 0;
        else buf_consume(&c->in, used);
    }
    if (n && open_state(c) &&
        buf_append(&c->in, p, n, c->state == CONN_LOGIN ? SERVER_READ_BUF
                                                         : in_limit(c))) {
        CLOG(c, LOG_ERROR, "%s", "out of memory for input; closing");
        conn_abort(c);
    }
}

/* TLS: pull the plaintext of what was fed (not while LOGIN: it waits in
 * the engine until the password is checked), send handshake records. */
static void tls_drain(conn *c) {
    int was_up = tls_conn_handshake_done(c->tls);
    long r = 0;
    while (parsing(c) &&
           (r = tls_conn_read(c->tls, c->srv->rbuf, sizeof c->srv->rbuf)) > 0)
        take_input(c, c->srv->rbuf, (size_t)r);
    if (c->state == CONN_CLOSED) return;
    if (!was_up && tls_conn_handshake_done(c->tls)) {
        const char *cn = tls_conn_peer_cn(c->tls);
        CLOG(c, LOG_DEBUG, "TLS %s established%s%s",
             tls_conn_version(c->tls), cn ? ", client certificate CN=" : "",
             cn ? cn : "");
        if (c->out[c->outi].len) server_queue_flush(c->srv, c);
    }
    if (r == TLS_FATAL && open_state(c)) {
        CLOG(c, LOG_WARN, "TLS failed: %s; closing", tls_conn_reason(c->tls));
        c->srv->stats.refused++;
        conn_finish(c, 0, NULL); /* sends the alert, if any */
        return;
    }
    if (r == TLS_CLOSED && open_state(c)) {
        CLOG(c, LOG_DEBUG, "%s", "TLS close_notify from peer");
        conn_finish(c, 0, NULL);
        return;
    }
    if (tls_conn_pending(c->tls)) server_queue_flush(c->srv, c);
}

size_t conn_shrink(conn *c) {
    if (c->state == CONN_CLOSED || c->writing || c->flush_queued) return 0;
    size_t freed = 0;
    if (c->in.len == 0) {
        freed += c->in.cap;
        buf_free(&c->in);
    }
    for (int i = 0; i < 2; i++) {
        if (c->out[i].len == 0) {
            freed += c->out[i].cap;
            buf_free(&c->out[i]);
        }
        if (c->ids[i].n == 0) {
            freed += c->ids[i].cap * sizeof(seqid);
            seqidq_free(&c->ids[i]);
        }
    }
    if (!c->fetching && c->tail.len == 0) {
        freed += c->tail.cap + c->tail_ids.cap * sizeof(uint64_t);
        buf_free(&c->tail);
        u64vec_free(&c->tail_ids);
    }
    if (c->ackq.head == c->ackq.n) {
        freed += c->ackq.cap * sizeof(seqid);
        seqidq_free(&c->ackq);
    }
    return freed;
}

void conn_pause(conn *c) {
    if (c->reading && open_state(c)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

void conn_resume(conn *c) {
    if (!c->reading && c->state != CONN_CLOSED && !c->throttled &&
        c->state != CONN_LOGIN &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

const char *conn_peer(const conn *c) {
    static char out[64];
    char ip[48] = "?";
    if (c->peer_v6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6};
        memcpy(&a.sin6_addr, c->peer_ip, 16);
        uv_ip6_name(&a, ip, sizeof ip);
    } else if (c->peer_port) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        memcpy(&a.sin_addr, c->peer_ip, 4);
        uv_ip4_name(&a, ip, sizeof ip);
    }
    snprintf(out, sizeof out, "%s:%u", ip, (unsigned)c->peer_port);
    return out;
}

/* 1 for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static int sa_loopback(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24)
               == 127;
    if (ss->ss_family != AF_INET6) return 0;
    const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    static const uint8_t one[16] = {[15] = 1};
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    return memcmp(a, one, 16) == 0 ||
           (memcmp(a, mapped, 12) == 0 && a[12] == 127);
}

/* The per-address count key: an IPv4 address as is (IPv4-mapped too); for
 * IPv6 a hash of its /64 (one host usually holds a whole /64). Never 0. */
static uint32_t sa_key(const struct sockaddr_storage *ss) {
    uint32_t k;
    if (ss->ss_family == AF_INET) {
        k = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
    } else {
        const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            k = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 |
                (uint32_t)a[14] << 8 | a[15];
        } else {
            k = 2166136261u; /* FNV-1a */
            for (int i = 0; i < 8; i++) k = (k ^ a[i]) * 16777619u;
        }
    }
    return k ? k : 1;
}

/* Refuse a connection just accepted: log (at most one line a second for
 * all such refusals, a flood must not flood the log), write ERROR code
 * why (whatever the client speaks: it has said nothing yet), close. */
static void refuse_conn(conn *c, unsigned code, const char *why) {
    server *s = c->srv;
    s->stats.refused_conns++;
    unsigned long long quiet;
    if (log_limit_pass(&s->refuse_log, uv_now(s->loop), &quiet)) {
        if (quiet)
            log_warn("peer=%s: connection refused: %s (and %llu more "
                     "refusals not logged)", conn_peer(c), why, quiet);
        else
            log_warn("peer=%s: connection refused: %s", conn_peer(c), why);
    }
    if (!c->tls) { /* (a TLS client could not read it before a handshake) */
        uint8_t fr[FRAME_S2C_HDR + FRAME_ERROR_MAX];
        size_t n = frame_put_error(fr + FRAME_S2C_HDR, (uint16_t)code, 0, why);
        frame_put_s2c_hdr(fr, 0, FRAME_ERROR, (uint32_t)n);
        uv_buf_t b = uv_buf_init((char *)fr, (unsigned)(FRAME_S2C_HDR + n));
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    conn_abort(c);
}

/* Protected mode, --max-connections, --max-conns-per-ip. 0 when c may
 * stay, else -1 (refused and closing). */
static int admit(conn *c, const struct sockaddr_storage *ss) {
    server *s = c->srv;
    const config *cfg = s->cfg;
    char why[160];
    if (!cfg->auth && !cfg->insecure_open && !c->local) {
        refuse_conn(c, FRAME_ERR_AUTH, "protected mode: without --auth on "
                    "this server accepts only loopback clients (see "
                    "--auth and --insecure-open)");
        return -1;
    }
    uint64_t max = cfg->max_connections;
    int by_fds = s->conn_cap && (!max || s->conn_cap < max);
    if (by_fds) max = s->conn_cap;
    if (max && s->nconns > max) {
        snprintf(why, sizeof why, "server full: %llu connections (%s)",
                 (unsigned long long)max,
                 by_fds ? "open file limit" : "--max-connections");
        refuse_conn(c, FRAME_ERR_BUSY, why);
        return -1;
    }
    if (!c->local && cfg->max_conns_per_ip) {
        uint32_t k = sa_key(ss);
        uintptr_t n = (uintptr_t)u32map_get(&s->per_ip, k);
        if (n >= cfg->max_conns_per_ip) {
            snprintf(why, sizeof why, "too many connections from this "
                     "address: %llu (--max-conns-per-ip)",
                     (unsigned long long)cfg->max_conns_per_ip);
            refuse_conn(c, FRAME_ERR_BUSY, why);
            return -1;
        }
        if (u32map_put(&s->per_ip, k, (void *)(n + 1)) == 0) c->ipkey = k;
    }
    return 0;
}

int conn_accept(server *s, uv_stream_t *listener, int tls) {
    conn *c = calloc(1, sizeof *c);
    if (!c) return UV_ENOMEM;

    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->handles = 1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int r = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (r == 0) {
        int len = sizeof ss;
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
            if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
                memcpy(c->peer_ip, &a->sin6_addr, 16);
                c->peer_port = ntohs(a->sin6_port);
                c->peer_v6 = 1;
            } else {
                struct sockaddr_in *a = (struct sockaddr_in *)&ss;
                memcpy(c->peer_ip, &a->sin_addr, 4);
                c->peer_port = ntohs(a->sin_port);
            }
        }
        c->local = (uint8_t)sa_loopback(&ss);
        uv_tcp_nodelay(&c->tcp, 1);
        /* Dead peers that never speak control frames: TCP keepalive. */
        uint64_t ka = s->cfg->idle_timeout_ms / 2000;
        if (s->cfg->idle_timeout_ms)
            uv_tcp_keepalive(&c->tcp, 1, ka ? (unsigned)ka : 1);
    }
    /* Linked in before any close, so conn_release can unlink it. */
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->stats.accepted++;
    if (r == 0 && tls && !(c->tls = tls_conn_new(s->tls))) r = UV_ENOMEM;
    if (r) {
        c->state = CONN_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return r;
    }
    if (admit(c, &ss)) return 0;
    const config *cfg = s->cfg;
    c->t_accept = c->tok_t = c->t_rx = uv_now(s->loop);
    c->tok_frames = (int64_t)cfg->rate_msgs * 1000;
    c->tok_bytes = (int64_t)cfg->rate_bytes * 1000;
    pending_add(c);
    if (!s->paused) {
        r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = r == 0;
    }
    CLOG(c, LOG_DEBUG, "%s", "connected");
    return 0;
}
