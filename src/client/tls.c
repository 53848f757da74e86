/*
 * tls.c -- libchat's TLS layer: the shared engine (src/common/tlsc.h)
 * driven from the socket with recv/send. Contract and invariants: tls.h.
 */
#include "client/tls.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/tlsc.h"

#define TLS__RECORD 16384u           /* largest plaintext record */
#define TLS__OUT_LIMIT (1u << 20)    /* ciphertext waiting: about one record */
#define TLS__RECV_CHUNK (TLS__RECORD + 512u)

struct ctls_conn {
    tlsc *t;
    buf out; /* ciphertext not yet accepted by the socket */
};

/* The engine's failure codes as libchat's. */
static int chat_code(int rc) {
    switch (rc) {
    case TLSC_ENOMEM: return CHAT_ENOMEM;
    case TLSC_EINVAL: return CHAT_EINVAL;
    case TLSC_ECONF: return CHAT_ETLSCONF;
    case TLSC_EVERIFY: return CHAT_ETLSVERIFY;
    case TLSC_ECLOSED: return CHAT_ECLOSED;
    default: return CHAT_ETLS;
    }
}

int ctls_ctx_new(ctls_ctx **out, const chat_tls_options *o, char *msg,
                 size_t msg_len) {
    tlsc_options to = {.ca_file = o->ca_file, .cert_file = o->cert_file,
                       .key_file = o->key_file, .server_name = o->server_name};
    int rc = tlsc_ctx_new(out, &to, msg, msg_len);
    return rc ? chat_code(rc) : CHAT_OK;
}

void ctls_ctx_free(ctls_ctx *x) { tlsc_ctx_free(x); }

int ctls_conn_new(ctls_ctx *x, const char *host, ctls_conn **out, char *err,
                  size_t err_len) {
    *out = NULL;
    ctls_conn *t = calloc(1, sizeof *t);
    if (!t) return CHAT_ENOMEM;
    int rc = tlsc_new(&t->t, x, host, err, err_len);
    if (rc) {
        free(t);
        return chat_code(rc);
    }
    *out = t;
    return CHAT_OK;
}

void ctls_conn_free(ctls_conn *t) {
    if (!t) return;
    tlsc_free(t->t);
    buf_free(&t->out);
    free(t);
}

/* Move everything the engine made into `out`. 0 or CHAT_ENOMEM. */
static int drain(ctls_conn *t) {
    return tlsc_take(t->t, &t->out, TLS__OUT_LIMIT) ? CHAT_ENOMEM : 0;
}

int ctls_send_out(ctls_conn *t, int fd) {
    while (t->out.len > 0) {
        ssize_t w = send(fd, t->out.data, t->out.len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return CHAT_ECLOSED;
        }
        buf_consume(&t->out, (size_t)w);
    }
    return 1;
}

/* Read one chunk of ciphertext from the socket into the engine: 1 got
 * some, 0 would block, CHAT_ECLOSED end of stream or error, CHAT_ENOMEM. */
static int fill(ctls_conn *t, int fd) {
    uint8_t tmp[TLS__RECV_CHUNK];
    for (;;) {
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r == 0) return CHAT_ECLOSED;
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return CHAT_ECLOSED;
        }
        return tlsc_feed(t->t, tmp, (size_t)r) ? CHAT_ENOMEM : 1;
    }
}

int ctls_handshake(ctls_conn *t, int fd, char *err, size_t err_len) {
    for (;;) {
        int r = tlsc_handshake(t->t, err, err_len);
        if (drain(t)) return CHAT_ENOMEM;
        /* sent even after a failure: the alert that explains it */
        if (ctls_send_out(t, fd) < 0) {
            if (err && err_len) /* (void): truncation is the bound */
                (void)snprintf(err, err_len, "the connection broke during the "
                               "handshake: %s", strerror(errno));
            return CHAT_ETLS;
        }
        if (r == 1) return 1;
        if (r < 0) return chat_code(r);
        int f = fill(t, fd);
        if (f == 0) return 0;
        if (f == CHAT_ENOMEM) return f;
        if (f < 0) {
            if (err && err_len) /* (void): truncation is the bound */
                (void)snprintf(err, err_len, "the server closed the connection "
                               "during the handshake (is it a TLS port? does it "
                               "want a client certificate?)");
            return CHAT_ETLS;
        }
    }
}

int ctls_write(ctls_conn *t, const void *p, size_t n, char *err,
               size_t err_len) {
    int r = tlsc_write(t->t, p, n, err, err_len);
    if (drain(t)) return CHAT_ENOMEM;
    return r ? chat_code(r) : 0;
}

ssize_t ctls_read(ctls_conn *t, int fd, void *dst, size_t cap,
                  char *err, size_t err_len) {
    for (;;) {
        ssize_t r = tlsc_read(t->t, dst, cap, err, err_len);
        /* Reading may produce records to send (TLS 1.3 key update). */
        if (drain(t)) return CHAT_ENOMEM;
        if (r > 0) return r;
        if (r < 0) return chat_code((int)r);
        int f = fill(t, fd);
        if (f <= 0) return f; /* 0 would block, or closed / no memory */
    }
}

int ctls_want_write(const ctls_conn *t) { return t && t->out.len > 0; }

int ctls_pending(const ctls_conn *t) { return t && tlsc_pending(t->t); }

void ctls_shutdown(ctls_conn *t, int fd) {
    /* (void): best effort, one non-blocking try; the socket is closed next */
    if (t && tlsc_close_notify(t->t) && drain(t) == 0)
        (void)ctls_send_out(t, fd);
}
