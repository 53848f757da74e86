/*
 * rconn_net.c -- the socket under one rconn (rconn_int.h): a name resolved
 * (uv_getaddrinfo: every address it gives is tried in turn within the
 * address's connect deadline) or a numeric address used as is; the TCP
 * connection (transport.c); the TLS engine (src/common/tlsc.c) between
 * them and the reply parser; the writes (at most one in flight; bytes
 * handed over meanwhile wait in wq and go in the next).
 *
 * Every callback first checks that its sock (or resolution) is still the
 * current one: a detached one's late callbacks (a cancelled connect, a
 * cancelled write, a resolution that ran on) only free it.
 */
#include "server/rconn_int.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAIN_CHUNK 16384 /* plaintext decrypted per tlsc_read */

static rconn_sock *sock_of(transport *t) { return (rconn_sock *)t; } /* io is first */

/* Write what waits (TLS: the engine's ciphertext) unless a write is in
 * flight. 0 or a libuv error. */
static int pump(rconn_sock *s) {
    rconn *c = s->c;
    if (s->writing || !s->connected) return 0;
    if (s->tls && tlsc_take(s->tls, &s->wq, SIZE_MAX)) return UV_ENOMEM;
    if (s->wq.len == 0) return 0;
    assert(s->wbuf.len == 0 && s->wq.len <= UINT32_MAX);
    buf t = s->wbuf;
    s->wbuf = s->wq;
    s->wq = t;
    uv_buf_t b = uv_buf_init((char *)s->wbuf.data, (unsigned)s->wbuf.len);
    c->stats.writes++;
    c->stats.bytes_out += s->wbuf.len;
    c->last_io = uv_now(c->loop);
    int r = transport_write(&s->io, &b, 1);
    if (r == 1) s->wbuf.len = 0; /* the kernel took it all */
    else if (r == 0) s->writing = 1;
    return r < 0 ? r : 0;
}

int rconn__net_put(rconn *c, buf *b) {
    rconn_sock *s = c->sock;
    assert(s && s->connected);
    if (b->len == 0) return 0;
    if (s->tls) {
        char err[RCONN_REASON_MAX];
        if (tlsc_write(s->tls, b->data, b->len, err, sizeof err))
            return UV_EPROTO;
        b->len = 0;
    } else if (s->wq.len == 0) { /* swap: no copy */
        buf t = s->wq;
        s->wq = *b;
        *b = t;
    } else {
        if (buf_append(&s->wq, b->data, b->len, SIZE_MAX)) return UV_ENOMEM;
        b->len = 0;
    }
    return pump(s);
}

int rconn__net_busy(const rconn *c) { return c->sock && c->sock->writing; }

/* ---- the transport's callbacks --------------------------------------- */

static void on_alloc(transport *t, uv_buf_t *b) {
    *b = uv_buf_init(sock_of(t)->c->rbuf, RCONN_READ_CHUNK);
}

static void on_shut(transport *t, int status) {
    (void)t; /* rconn never shuts down: it closes */
    (void)status;
}

static void on_closed(transport *t) {
    rconn_sock *s = sock_of(t);
    rconn *c = s->c;
    tlsc_free(s->tls);
    buf_free(&s->wq);
    buf_free(&s->wbuf);
    free(s);
    assert(c->nsocks > 0);
    c->nsocks--;
    rconn__maybe_free(c);
}

static void on_written(transport *t, int status) {
    rconn_sock *s = sock_of(t);
    rconn *c = s->c;
    s->writing = 0;
    if (s != c->sock) return;
    int r = status;
    if (r == 0) {
        s->wbuf.len = 0;
        if (s->wbuf.cap > (1u << 20)) buf_free(&s->wbuf); /* a big batch */
        r = pump(s);
    }
    if (r) rconn__fail(c, "write failed: %s", uv_strerror(r));
    else if (c->state == RCONN_READY && c->out.len) rconn__wake(c);
    RCONN_CHECK(c);
}

/* The TLS handshake with what was fed: on to HELLO when done. */
static void handshake(rconn *c, rconn_sock *s) {
    char err[RCONN_REASON_MAX];
    int r = tlsc_handshake(s->tls, err, sizeof err);
    int w = pump(s); /* our flight, or the alert that explains a failure */
    if (r < 0) rconn__fail(c, "TLS: %s", err);
    else if (w) rconn__fail(c, "write failed: %s", uv_strerror(w));
    else if (r == 1) rconn__link_up(c);
}

/* Ciphertext arrived: the handshake, or plaintext for the parser. */
static void tls_input(rconn *c, rconn_sock *s, const char *p, size_t n) {
    if (tlsc_feed(s->tls, p, n)) {
        rconn__fail(c, "out of memory");
        return;
    }
    if (c->state == RCONN_TLS) {
        handshake(c, s);
        if (c->sock != s || c->state == RCONN_TLS) return;
    }
    char plain[PLAIN_CHUNK], err[RCONN_REASON_MAX];
    ssize_t k;
    while ((k = tlsc_read(s->tls, plain, sizeof plain, err, sizeof err)) > 0) {
        if (redisReaderFeed(c->reader, plain, (size_t)k) != REDIS_OK) {
            rconn__fail(c, "out of memory");
            return;
        }
    }
    rconn__replies(c, s); /* what came before an end or an error counts */
    if (c->sock != s) return;
    if (k == TLSC_ECLOSED) rconn__fail(c, "Redis closed the connection");
    else if (k < 0) rconn__fail(c, "TLS: %s", err);
}

static void on_read(transport *t, ssize_t n, const uv_buf_t *b) {
    rconn_sock *s = sock_of(t);
    rconn *c = s->c;
    if (s != c->sock) return;
    if (n < 0) {
        if (n == UV_EOF) rconn__fail(c, "Redis closed the connection");
        else rconn__fail(c, "read failed: %s", uv_strerror((int)n));
        RCONN_CHECK(c);
        return;
    }
    c->stats.bytes_in += (uint64_t)n;
    c->last_io = uv_now(c->loop);
    c->read_hr = uv_hrtime();
    if (s->tls) {
        tls_input(c, s, b->base, (size_t)n);
    } else if (redisReaderFeed(c->reader, b->base, (size_t)n) != REDIS_OK) {
        rconn__fail(c, "out of memory");
    } else {
        rconn__replies(c, s);
    }
    if (c->sock == s) {
        int r = pump(s); /* TLS may answer (key update) */
        if (r) rconn__fail(c, "write failed: %s", uv_strerror(r));
    }
    RCONN_CHECK(c);
}

const transport_ops rconn__sock_ops = {on_alloc, on_read, on_written,
                                       on_shut, on_closed};

/* ---- connecting ------------------------------------------------------- */

static void sock_drop(rconn *c) {
    rconn_sock *s = c->sock;
    if (!s) return;
    c->sock = NULL;
    if (c->pend_sock == s) {
        c->pend_sock = NULL;
        c->pend_err = 0;
    }
    transport_close(&s->io); /* a connect or write in flight is cancelled */
}

static void on_connect(uv_connect_t *req, int status);

/* A sock connecting to sa. 0 or a libuv error (nothing left behind but a
 * closing handle). */
static int sock_connect(rconn *c, const struct sockaddr *sa) {
    rconn_sock *s = calloc(1, sizeof *s);
    if (!s) return UV_ENOMEM;
    s->c = c;
    int r = transport_init(&s->io, c->loop, &rconn__sock_ops);
    if (r) {
        free(s); /* uv_tcp_init failed: the handle is not on the loop */
        return r;
    }
    c->nsocks++;
    s->creq.data = s;
    r = uv_tcp_connect(&s->creq, &s->io.tcp, sa, on_connect);
    if (r) {
        transport_close(&s->io);
        return r;
    }
    c->sock = s;
    return 0;
}

/* The next resolved address. 0 started, else the last libuv error. */
static int connect_next_ai(rconn *c) {
    int r = UV_EADDRNOTAVAIL;
    while (c->ai_next) {
        struct addrinfo *a = c->ai_next;
        c->ai_next = a->ai_next;
        if ((r = sock_connect(c, a->ai_addr)) == 0) return 0;
    }
    return r;
}

static void on_connect(uv_connect_t *req, int status) {
    rconn_sock *s = req->data;
    rconn *c = s->c;
    if (s != c->sock) return; /* cancelled by a close */
    if (status < 0) {
        sock_drop(c);
        if (!c->ai_next || connect_next_ai(c) != 0)
            rconn__fail(c, "connect failed: %s", uv_strerror(status));
        RCONN_CHECK(c);
        return;
    }
    s->connected = 1;
    /* (void): TCP_NODELAY only saves latency; without it the link works */
    (void)transport_tune(&s->io, 0);
    redisReaderFree(c->reader);
    c->reader = redisReaderCreate();
    int r = c->reader ? transport_read(&s->io, 1) : UV_ENOMEM;
    if (r) {
        rconn__fail(c, "cannot read: %s", uv_strerror(r));
    } else if (c->o.tls) {
        char err[RCONN_REASON_MAX];
        int t = tlsc_new(&s->tls, c->tls_ctx, c->hosts[c->addr_i], err,
                         sizeof err);
        if (t == TLSC_ENOMEM) {
            rconn__fail(c, "out of memory");
        } else if (t) {
            rconn__fail(c, "TLS: %s", err);
        } else {
            rconn__to(c, RCONN_TLS);
            handshake(c, s);
        }
    } else {
        rconn__link_up(c);
    }
    RCONN_CHECK(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *ai) {
    rconn_res *q = (rconn_res *)req; /* req is first */
    rconn *c = q->c;
    int current = c->res == q;
    free(q);
    assert(c->nres > 0);
    c->nres--;
    if (!current) { /* the attempt ran on, or rconn_close */
        if (ai) uv_freeaddrinfo(ai);
        rconn__maybe_free(c);
        return;
    }
    c->res = NULL;
    if (status < 0) {
        rconn__fail(c, "cannot resolve the name: %s", uv_strerror(status));
    } else {
        c->ai = c->ai_next = ai;
        int r = connect_next_ai(c);
        if (r) rconn__fail(c, "connect failed: %s", uv_strerror(r));
    }
    RCONN_CHECK(c);
}

int rconn__net_start(rconn *c) {
    const rconn_addr *a = &c->o.addrs[c->addr_i];
    int v6 = strchr(a->host, ':') != NULL;
    (void)snprintf(c->peer, sizeof c->peer, v6 ? "[%s]:%u" : "%s:%u",
                   a->host, (unsigned)a->port); /* fits: host <= 255 */
    assert(!c->sock && !c->res && !c->ai);
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } sa;
    int r;
    if (uv_ip4_addr(a->host, a->port, &sa.in4) == 0 ||
        uv_ip6_addr(a->host, a->port, &sa.in6) == 0) {
        r = sock_connect(c, &sa.sa);
        if (r) rconn__say(c, "connect failed: %s", uv_strerror(r));
        return r ? -1 : 0;
    }
    rconn_res *q = calloc(1, sizeof *q);
    if (!q) {
        rconn__say(c, "out of memory");
        return -1;
    }
    q->c = c;
    char port[8];
    (void)snprintf(port, sizeof port, "%u", (unsigned)a->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r = uv_getaddrinfo(c->loop, &q->req, on_resolved, a->host, port, &hints);
    if (r) {
        free(q);
        rconn__say(c, "cannot resolve the name: %s", uv_strerror(r));
        return -1;
    }
    c->res = q;
    c->nres++;
    return 0;
}

void rconn__net_stop(rconn *c) {
    if (c->res) {
        rconn_res *q = c->res;
        c->res = NULL;
        /* (void): when the lookup already runs it cannot be cancelled; its
         * callback then finds it detached all the same */
        (void)uv_cancel((uv_req_t *)&q->req);
    }
    if (c->ai) {
        uv_freeaddrinfo(c->ai);
        c->ai = c->ai_next = NULL;
    }
    sock_drop(c);
}
