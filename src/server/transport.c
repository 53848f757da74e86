/* transport.c -- see transport.h. */
#include "server/transport.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested; /* the owner knows how much it wants */
    transport *t = h->data;
    t->ops->alloc(t, buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    transport *t = s->data;
    if (n == 0 || t->state >= TRANSPORT_CLOSING) return; /* EAGAIN, or late */
    t->ops->read(t, n, buf);
}

static void on_write(uv_write_t *req, int status) {
    transport *t = req->data;
    assert(t->wreq == req);
    free(req);
    t->wreq = NULL;
    t->ops->written(t, status);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    transport *t = req->data;
    free(req);
    t->sreq = NULL;
    if (t->state >= TRANSPORT_CLOSING) return; /* cancelled by the close */
    t->ops->shut(t, status);
}

static void on_close(uv_handle_t *h) {
    transport *t = h->data;
    t->state = TRANSPORT_CLOSED;
    t->ops->closed(t);
}

int transport_init(transport *t, uv_loop_t *loop, const transport_ops *ops) {
    t->ops = ops;
    t->wreq = NULL;
    t->sreq = NULL;
    t->reading = 0;
    t->state = TRANSPORT_OPEN;
    int r = uv_tcp_init(loop, &t->tcp);
    t->tcp.data = t;
    return r;
}

int transport_accept(transport *t, uv_stream_t *listener) {
    return uv_accept(listener, (uv_stream_t *)&t->tcp);
}

int transport_tune(transport *t, unsigned keepalive_s) {
    int r = uv_tcp_nodelay(&t->tcp, 1);
    if (r == 0 && keepalive_s) r = uv_tcp_keepalive(&t->tcp, 1, keepalive_s);
    return r;
}

int transport_peer(transport *t, struct sockaddr_storage *ss) {
    int len = sizeof *ss;
    return uv_tcp_getpeername(&t->tcp, (struct sockaddr *)ss, &len);
}

int transport_read(transport *t, int on) {
    if (t->state >= TRANSPORT_CLOSING || t->reading == on) return 0;
    int r = on ? uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read)
               : uv_read_stop((uv_stream_t *)&t->tcp);
    if (r == 0) t->reading = (uint8_t)on;
    return r;
}

int transport_write(transport *t, const uv_buf_t *bufs, unsigned n) {
    assert(!t->wreq && n > 0 && t->state == TRANSPORT_OPEN);
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) total += bufs[i].len;
    int w = uv_try_write((uv_stream_t *)&t->tcp, bufs, n);
    if (w >= 0 && (size_t)w == total) return 1;
    if (w < 0 && w != UV_EAGAIN) return w;
    /* The rest goes to a write request: skip what the kernel took. */
    size_t done = w > 0 ? (size_t)w : 0;
    while (done && done >= bufs[0].len) {
        assert(n > 1); /* w < total: part of the last buffer is left */
        done -= bufs[0].len;
        bufs++;
        n--;
    }
    const uv_buf_t *rest = bufs;
    uv_buf_t stack[16], *copy = NULL;
    if (done) { /* the first buffer was taken in part: a shifted copy (uv_write
                   copies the array itself, so this one dies with the call) */
        copy = n <= 16 ? stack : malloc(n * sizeof *copy);
        if (!copy) return UV_ENOMEM;
        memcpy(copy, bufs, n * sizeof *copy);
        copy[0].base += done;
        copy[0].len -= done;
        rest = copy;
    }
    uv_write_t *req = malloc(sizeof *req);
    int r = req ? 0 : UV_ENOMEM;
    if (req) {
        req->data = t;
        r = uv_write(req, (uv_stream_t *)&t->tcp, rest, n, on_write);
        if (r == 0) t->wreq = req;
        else free(req);
    }
    if (copy != stack) free(copy);
    return r;
}

int transport_try(transport *t, const uv_buf_t *b) {
    if (t->wreq || t->state != TRANSPORT_OPEN) return UV_EAGAIN;
    return uv_try_write((uv_stream_t *)&t->tcp, b, 1);
}

int transport_shutdown(transport *t) {
    assert(t->state == TRANSPORT_OPEN && !t->sreq);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) return UV_ENOMEM;
    req->data = t;
    int r = uv_shutdown(req, (uv_stream_t *)&t->tcp, on_shutdown);
    if (r) {
        free(req);
        return r;
    }
    t->sreq = req;
    t->state = TRANSPORT_SHUT;
    return 0;
}

void transport_close(transport *t) {
    if (t->state >= TRANSPORT_CLOSING) return;
    t->state = TRANSPORT_CLOSING;
    t->reading = 0;
    uv_close((uv_handle_t *)&t->tcp, on_close);
}
