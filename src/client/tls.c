/*
 * tls.c -- libchat's TLS layer: OpenSSL over memory BIOs, the socket driven
 * here with recv/send. Contract and invariants: tls.h.
 *
 * No global state: OpenSSL 1.1+ initialises itself; each client owns its
 * SSL_CTX and each connection its SSL.
 */
#include "client/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/buf.h"

#define TLS__RECORD 16384u           /* largest plaintext record */
#define TLS__OUT_LIMIT (1u << 20)    /* ciphertext waiting: about one record */
#define TLS__RECV_CHUNK (TLS__RECORD + 512u)

struct ctls_ctx {
    SSL_CTX *ctx;
    char *name; /* server_name, verified against every server's
                   certificate; NULL: each attempt's host is */
};

struct ctls_conn {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    buf out;          /* ciphertext not yet accepted by the socket */
    int done;         /* handshake complete */
    int fatal;        /* a fatal error happened: no close_notify */
};

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t len, const char *fmt, ...) {
    if (!err || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* The reason of OpenSSL's last queued error, or `dflt`. */
static const char *ssl_reason(const char *dflt) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : dflt;
}

static int is_ip_literal(const char *s) {
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* A file the user named: say "No such file" before OpenSSL's vaguer words. */
static int load_err(const char *what, const char *path, char *msg, size_t len) {
    FILE *f = fopen(path, "r");
    char why[160];
    if (!f)
        snprintf(why, sizeof why, "%s", strerror(errno));
    else {
        (void)fclose(f); /* opened read-only, only to tell the causes apart */
        snprintf(why, sizeof why, "%s", ssl_reason("not a usable PEM file"));
    }
    if (msg && len) snprintf(msg, len, "cannot load the %s %s: %s", what, path, why);
    return CHAT_ETLSCONF;
}

int ctls_ctx_new(ctls_ctx **out, const chat_tls_options *o, char *msg,
                 size_t msg_len) {
    *out = NULL;
    if (!o->cert_file != !o->key_file) {
        set_err(msg, msg_len, "a TLS client certificate needs its key: give both "
                "cert_file and key_file, or neither");
        return CHAT_EINVAL;
    }
    const char *name = o->server_name && o->server_name[0] ? o->server_name : NULL;
    ctls_ctx *x = calloc(1, sizeof *x);
    if (!x || (name && !(x->name = strdup(name)))) {
        free(x);
        set_err(msg, msg_len, "out of memory");
        return CHAT_ENOMEM;
    }
    ERR_clear_error();
    int rc = CHAT_ENOMEM;
    x->ctx = SSL_CTX_new(TLS_client_method());
    if (!x->ctx) {
        set_err(msg, msg_len, "cannot create the TLS context: %s",
                ssl_reason("out of memory"));
        goto fail;
    }
    rc = CHAT_ETLSCONF;
    if (!SSL_CTX_set_min_proto_version(x->ctx, TLS1_2_VERSION)) {
        set_err(msg, msg_len, "cannot require TLS 1.2: %s", ssl_reason("?"));
        goto fail;
    }
    SSL_CTX_set_verify(x->ctx, SSL_VERIFY_PEER, NULL);
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(x->ctx, o->ca_file, NULL) != 1) {
            rc = load_err("CA file", o->ca_file, msg, msg_len);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(x->ctx) != 1) {
        set_err(msg, msg_len, "cannot load the system's trusted CAs: %s",
                ssl_reason("?"));
        goto fail;
    }
    if (o->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(x->ctx, o->cert_file) != 1) {
            rc = load_err("certificate file", o->cert_file, msg, msg_len);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(x->ctx, o->key_file, SSL_FILETYPE_PEM) != 1 &&
            ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
            rc = load_err("key file", o->key_file, msg, msg_len);
            goto fail;
        }
        if (SSL_CTX_check_private_key(x->ctx) != 1) {
            set_err(msg, msg_len, "the key file %s does not match the certificate %s",
                    o->key_file, o->cert_file);
            goto fail;
        }
    }
    ERR_clear_error();
    if (msg && msg_len) msg[0] = 0;
    *out = x;
    return CHAT_OK;
fail:
    ERR_clear_error();
    ctls_ctx_free(x);
    return rc;
}

void ctls_ctx_free(ctls_ctx *x) {
    if (!x) return;
    SSL_CTX_free(x->ctx);
    free(x->name);
    free(x);
}

int ctls_conn_new(ctls_ctx *x, const char *host, ctls_conn **out, char *err,
                  size_t err_len) {
    const char *name = x->name ? x->name : host;
    *out = NULL;
    ctls_conn *t = calloc(1, sizeof *t);
    if (!t) return CHAT_ENOMEM;
    ERR_clear_error();
    t->ssl = SSL_new(x->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        /* (void): unused memory BIOs (or NULL, a no-op): nothing to lose */
        (void)BIO_free(t->rbio);
        (void)BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return CHAT_ENOMEM;
    }
    /* Empty = "retry", not end of file. (void): on a memory BIO this
     * control only stores the value and returns 1. */
    (void)BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_connect_state(t->ssl);
    int ok;
    if (is_ip_literal(name)) { /* an address: no SNI, the IP is checked */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) == 1;
    } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(t->ssl, name) == 1 &&
             SSL_set_tlsext_host_name(t->ssl, name) == 1;
    }
    if (!ok) {
        set_err(err, err_len, "cannot set the name to verify (%s): %s", name,
                ssl_reason("invalid name"));
        ctls_conn_free(t);
        ERR_clear_error();
        return CHAT_ETLS;
    }
    *out = t;
    return CHAT_OK;
}

void ctls_conn_free(ctls_conn *t) {
    if (!t) return;
    SSL_free(t->ssl); /* frees both BIOs */
    buf_free(&t->out);
    free(t);
}

/* Move everything OpenSSL wrote into `out`. 0 or CHAT_ENOMEM. */
static int drain_wbio(ctls_conn *t) {
    size_t n;
    while ((n = (size_t)BIO_ctrl_pending(t->wbio)) > 0) {
        if (buf_reserve(&t->out, n, TLS__OUT_LIMIT)) return CHAT_ENOMEM;
        int r = BIO_read(t->wbio, t->out.data + t->out.len, (int)n);
        if (r <= 0) break;
        t->out.len += (size_t)r;
    }
    return 0;
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

/* Read one chunk of ciphertext from the socket into the read BIO: 1 got
 * some, 0 would block, CHAT_ECLOSED end of stream or error. */
static int fill_rbio(ctls_conn *t, int fd) {
    uint8_t tmp[TLS__RECV_CHUNK];
    for (;;) {
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r == 0) return CHAT_ECLOSED;
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return CHAT_ECLOSED;
        }
        if (BIO_write(t->rbio, tmp, (int)r) != (int)r) return CHAT_ENOMEM;
        return 1;
    }
}

/* An SSL call failed with SSL_ERROR_SSL (or an unexpected code): name it. */
static int failure(ctls_conn *t, const char *what, char *err, size_t err_len) {
    t->fatal = 1;
    long v = SSL_get_verify_result(t->ssl);
    if (!t->done && v != X509_V_OK) {
        set_err(err, err_len, "certificate verify failed: %s",
                X509_verify_cert_error_string(v));
        ERR_clear_error();
        return CHAT_ETLSVERIFY;
    }
    set_err(err, err_len, "%s: %s", what, ssl_reason("unknown TLS error"));
    ERR_clear_error();
    return CHAT_ETLS;
}

int ctls_handshake(ctls_conn *t, int fd, char *err, size_t err_len) {
    if (t->done) return 1;
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(t->ssl);
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
        if (drain_wbio(t)) return CHAT_ENOMEM;
        int s = ctls_send_out(t, fd);
        if (s < 0) {
            t->fatal = 1;
            set_err(err, err_len, "the connection broke during the handshake: %s",
                    strerror(errno));
            return CHAT_ETLS;
        }
        if (r == 1) {
            t->done = 1;
            return 1;
        }
        if (e == SSL_ERROR_WANT_WRITE) return 0; /* cannot happen with a memory BIO */
        if (e != SSL_ERROR_WANT_READ) return failure(t, "handshake failed", err, err_len);
        int f = fill_rbio(t, fd);
        if (f == 0) return 0;
        if (f == CHAT_ENOMEM) return f;
        if (f < 0) {
            t->fatal = 1;
            set_err(err, err_len, "the server closed the connection during the "
                    "handshake (is it a TLS port? does it want a client certificate?)");
            return CHAT_ETLS;
        }
    }
}

int ctls_write(ctls_conn *t, const void *p, size_t n, char *err,
               size_t err_len) {
    if (n == 0) return 0;
    ERR_clear_error();
    int r = SSL_write(t->ssl, p, (int)n);
    if (drain_wbio(t)) return CHAT_ENOMEM;
    if (r != (int)n) return failure(t, "write failed", err, err_len);
    return 0;
}

ssize_t ctls_read(ctls_conn *t, int fd, void *dst, size_t cap,
                  char *err, size_t err_len) {
    if (cap > INT32_MAX) cap = INT32_MAX;
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(t->ssl, dst, (int)cap);
        int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
        /* Reading may produce records to send (TLS 1.3 key update). */
        if (drain_wbio(t)) return CHAT_ENOMEM;
        if (r > 0) return r;
        if (e == SSL_ERROR_ZERO_RETURN) return CHAT_ECLOSED; /* close_notify */
        if (e != SSL_ERROR_WANT_READ) return failure(t, "connection failed", err, err_len);
        int f = fill_rbio(t, fd);
        if (f <= 0) return f; /* 0 would block, or closed / no memory */
    }
}

int ctls_want_write(const ctls_conn *t) { return t && t->out.len > 0; }

int ctls_pending(const ctls_conn *t) {
    return t && t->done && SSL_pending(t->ssl) > 0;
}

void ctls_shutdown(ctls_conn *t, int fd) {
    if (!t || !t->done || t->fatal) return;
    ERR_clear_error();
    /* (void): 0 is "close_notify queued" (the server's is not awaited);
     * < 0 means it could not be made, and we are closing either way. */
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
    /* (void): best effort, one non-blocking try; the socket is closed next */
    if (drain_wbio(t) == 0) (void)ctls_send_out(t, fd);
}
