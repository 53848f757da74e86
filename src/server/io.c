/* io.c -- see io.h. */
#include "server/io.h"

#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/close.h"
#include "server/httpd.h"
#include "server/output.h"
#include "server/session.h"
#include "server/sync.h"

#define CONN_OF_IO(t) DLIST_ENTRY(t, conn, io)

static int closing(const conn *c) {
    return c->state == CONN_CLOSING || c->state == CONN_SHUTDOWN;
}

/* Where a read lands: the framing layer's block while a large body is
 * awaited (plaintext only), else the loop's scratch buffer. */
static void io_alloc(transport *t, uv_buf_t *out) {
    conn *c = CONN_OF_IO(t);
    hub *h = c->hub;
    uint8_t *p;
    size_t len;
    int r = c->tls || c->kind != CONN_CHAT || !conn_parsing(c)
                ? 0
                : framing_raw_target(&c->raw, h->rbuf_len, &p, &len);
    if (r == 1)
        *out = uv_buf_init((char *)p, (unsigned)len);
    else if (r == 0)
        *out = uv_buf_init((char *)h->rbuf, (unsigned)h->rbuf_len);
    else
        *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
}

/* The layer above the bytes: the article's framing, HTTP, or WebSocket.
 * 0, FRAMING_WS_CLOSE (the WebSocket closed: c is closing now) or
 * FRAMING_ENOMEM. */
static int input(conn *c, uint8_t *p, size_t n) {
    int r;
    if (c->kind == CONN_CHAT) return framing_raw_input(&c->raw, p, n);
    if (c->kind == CONN_HTTP)
        r = httpd_input(c, p, n);
    else
        r = framing_ws_input(c->ws, p, n);
    if (outq_total(&c->out)) conn_queue_flush(c); /* a response, a pong */
    if (r == FRAMING_WS_CLOSE && conn_open(c)) {
        uint16_t code = framing_ws_code_received(c->ws);
        CLOG(c, code ? LOG_DEBUG : LOG_INFO, "ws_closed",
             "WebSocket closed: %s (code %u)",
             framing_ws_why(c->ws), (unsigned)code);
        close_finish(c, 0, NULL);
    }
    return r == FRAMING_WS_CLOSE ? 0 : r;
}

/* TLS: pull the plaintext of what was fed or lent (not while a login is
 * checked: it waits in the engine), into the plaintext scratch buffer, or
 * straight into the framing layer's block when a large body is awaited;
 * send handshake records. */
static void tls_drain(conn *c) {
    hub *h = c->hub;
    int was_up = tls_conn_handshake_done(c->tls);
    long r = 0;
    while (conn_parsing(c)) {
        uint8_t *p = h->pbuf; /* (rbuf holds the ciphertext being read) */
        size_t cap = h->pbuf_len;
        int t = c->kind != CONN_CHAT
                    ? 0
                    : framing_raw_target(&c->raw, h->pbuf_len, &p, &cap);
        if (t < 0 || (r = tls_conn_read(c->tls, p, cap)) <= 0) {
            if (t < 0) r = TLS_ENOMEM;
            break;
        }
        if (input(c, p, (size_t)r)) {
            r = TLS_ENOMEM;
            break;
        }
    }
    if (c->state == CONN_CLOSED) return;
    if (!was_up && tls_conn_handshake_done(c->tls)) {
        const char *cn = tls_conn_peer_cn(c->tls);
        CLOG(c, LOG_DEBUG, "tls_established",
             "TLS %s established%s%s", tls_conn_version(c->tls),
             cn ? ", client certificate CN=" : "", cn ? cn : "");
        if (outq_total(&c->out)) conn_queue_flush(c);
    }
    if (r == TLS_ENOMEM) {
        CLOG(c, LOG_ERROR, "conn_oom", "out of memory for input; closing");
        close_abort(c);
        return;
    }
    if (r == TLS_FATAL && conn_open(c)) {
        CLOG(c, LOG_WARN, "tls_failed",
             "TLS failed: %s; closing", tls_conn_reason(c->tls));
        c->hub->stats.refused++;
        close_finish(c, 0, NULL); /* sends the alert, if any */
        return;
    }
    if (r == TLS_CLOSED && conn_open(c)) {
        CLOG(c, LOG_DEBUG, "tls_close_notify", "TLS close_notify from peer");
        close_finish(c, 0, NULL);
        return;
    }
    if (tls_conn_pending(c->tls)) conn_queue_flush(c);
}

static void on_eof(conn *c) {
    c->eof = 1;
    if (closing(c)) {
        close_eof(c);
        return;
    }
    if (c->kind == CONN_CHAT && framing_raw_partial(&c->raw))
        CLOG(c, LOG_INFO, "peer_closed_midframe",
             "closed by peer in the middle of a frame");
    CLOG(c, LOG_DEBUG, "peer_closed", "closed by peer");
    close_finish(c, 0, NULL);
}

static void io_read(transport *t, ssize_t n, const uv_buf_t *b) {
    conn *c = CONN_OF_IO(t);
    conn_ref(c);
    if (n > 0) {
        hub_clock(c->hub, uv_hrtime() / 1000); /* (vDSO: no system call) */
        c->hub->stats.bytes_in += (size_t)n;
    }
    if (n < 0) {
        if (n == UV_EOF) {
            on_eof(c);
        } else {
            if (n == UV_ENOBUFS)
                CLOG(c, LOG_ERROR, "conn_oom",
                     "out of memory for input; closing");
            else
                CLOG(c, LOG_DEBUG, "read_error",
                     "read error: %s", uv_strerror((int)n));
            close_abort(c);
        }
    } else if (conn_open(c)) { /* (closing: read and discarded) */
        conn_idle_touch(c);
        if (c->tls) {
            /* OpenSSL reads the ciphertext where libuv put it; what it did
             * not read (a partial record) is kept after the drain. */
            tls_conn_lend(c->tls, (const uint8_t *)b->base, (size_t)n);
            tls_drain(c);
            if (tls_conn_settle(c->tls) && c->state != CONN_CLOSED) {
                CLOG(c, LOG_ERROR, "conn_oom",
                     "out of memory for input; closing");
                close_abort(c);
            }
        } else if (input(c, (uint8_t *)b->base, (size_t)n)) {
            CLOG(c, LOG_ERROR, "conn_oom", "out of memory for input; closing");
            close_abort(c);
        }
        if (conn_open(c)) session_after_read(c, (size_t)n);
    }
    conn_unref(c);
}

void io_flush(conn *c) {
    if (c->state == CONN_CLOSED) return;
    int r = c->fail ? c->fail : output_flush(c);
    if (r < 0) {
        if (r == UV_ENOMEM)
            CLOG(c, LOG_ERROR, "conn_oom", "out of memory for output; closing");
        else
            CLOG(c, LOG_DEBUG, "write_failed",
                 "write failed: %s", uv_strerror(r));
        close_abort(c);
        return;
    }
    if (r == 1 && c->state == CONN_CLOSING) close_drained(c);
    if (c->state == CONN_SYNC) sync_fetch(c); /* room for the next page */
}

static void io_written(transport *t, int status) {
    conn *c = CONN_OF_IO(t);
    conn_ref(c);
    if (c->state != CONN_CLOSED) { /* (closed: the write was cancelled) */
        if (status < 0) {
            CLOG(c, LOG_DEBUG, "write_failed",
                 "write failed: %s", uv_strerror(status));
            c->wfailed = 1; /* all of the buffer in flight is unsent */
            close_abort(c);
        } else {
            output_written(c);
            io_flush(c);
        }
    }
    conn_unref(c);
}

static void io_shut(transport *t, int status) {
    conn *c = CONN_OF_IO(t);
    conn_ref(c);
    close_shut_done(c, status);
    conn_unref(c);
}

static void io_closed(transport *t) { conn_handle_closed(CONN_OF_IO(t)); }

static const transport_ops io_ops = {io_alloc, io_read, io_written, io_shut,
                                     io_closed};

conn *io_accept(hub *h, uv_stream_t *listener, tls_server *tls, int http,
                int *err) {
    conn *c = conn_new(h, &io_ops, err);
    if (!c) return NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int r = transport_accept(&c->io, listener);
    if (r == 0 && transport_peer(&c->io, &ss) == 0) {
        netaddr_from_sockaddr(&c->peer, (struct sockaddr *)&ss);
        c->local = (uint8_t)netaddr_is_loopback(&c->peer);
    }
    /* Dead peers that never speak control frames: TCP keepalive. */
    uint64_t idle = h->cfg->idle_timeout_ms, ka = idle / 2000;
    if (r == 0) r = transport_tune(&c->io, idle ? (ka ? (unsigned)ka : 1) : 0);
    if (r == 0 && tls && !(c->tls = tls_conn_new(tls))) r = UV_ENOMEM;
    if (r == 0 && http) httpd_start(c, http);
    if (r) {
        *err = r;
        close_abort(c);
        conn_unref(c);
        return NULL;
    }
    const config *cfg = h->cfg;
    /* (a POST carries its prefix on top of --max-frame payload bytes) */
    framing_raw_init(&c->raw, &h->pool, cfg->max_frame + FRAME_POST_PRE,
                     &session_sink, c);
    ratelimit_cfg rc = {cfg->rate_msgs, cfg->rate_bytes, cfg->rate_grace_ms};
    ratelimit_init(&c->rl, &rc, c->t_accept);
    h->stats.accepted++;
    return c;
}

void io_start(conn *c) {
    int r = conn_reading(c);
    if (r) {
        CLOG(c, LOG_ERROR, "conn_reading_failed",
             "cannot read: %s; closing", uv_strerror(r));
        close_abort(c);
        return;
    }
    CLOG(c, LOG_DEBUG, "connected", "connected");
}

void io_refuse(conn *c, unsigned code, const char *why) {
    if (!c->tls && c->kind == CONN_HTTP) {
        httpd_refuse(c, code == FRAME_ERR_AUTH ? 403 : 503, why);
    } else if (!c->tls) {
        uint8_t fr[FRAME_S2C_HDR + FRAME_ERROR_MAX];
        size_t n = frame_put_error(fr + FRAME_S2C_HDR, (uint16_t)code, 0, why);
        frame_put_s2c_hdr(fr, 0, FRAME_ERROR, (uint32_t)n);
        uv_buf_t b = uv_buf_init((char *)fr, (unsigned)(FRAME_S2C_HDR + n));
        /* Best effort: the client learns why if its socket takes it now. */
        (void)transport_try(&c->io, &b);
    }
    close_abort(c);
}

void io_resume(conn *c) {
    if (!conn_bound(c)) return;
    if (framing_raw_resume(&c->raw)) {
        CLOG(c, LOG_ERROR, "conn_oom", "out of memory for input; closing");
        close_abort(c);
        return;
    }
    if (c->tls && conn_bound(c)) tls_drain(c);
    if (!conn_bound(c)) return;
    int r = conn_reading(c);
    if (r) {
        CLOG(c, LOG_ERROR, "conn_reading_failed",
             "cannot read: %s; closing", uv_strerror(r));
        close_abort(c);
    }
}

void io_flush_all(hub *h) {
    dlink *k;
    while ((k = dlist_first(&h->flush))) {
        conn *c = DLIST_ENTRY(k, conn, flink);
        dlist_del(&h->flush, k);
        conn_ref(c);
        if (c->resume) {
            c->resume = 0;
            io_resume(c);
        }
        io_flush(c);
        conn_unref(c);
    }
}

size_t io_shrink(conn *c) {
    if (c->state == CONN_CLOSED) return 0;
    return framing_raw_shrink(&c->raw) + output_shrink(c) + sync_shrink(c);
}
