/* btls.c -- see btls.h. A BIO of our own sits under the SSL object: its
 * read side copies from the lent input, its write side appends to the
 * session's output buffer. No read-ahead, so after a btls_read that returned
 * 0 every lent byte is inside OpenSSL (a partial record) and the caller's
 * buffer can be reused. */
#include "btls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct btls_ctx {
    SSL_CTX *ctx;
    BIO_METHOD *meth;
};

struct btls {
    SSL *ssl;
    const uint8_t *in;
    size_t inlen;
    uint8_t *out;
    size_t outoff, outlen, outcap;
    int oom;
};

/* One sentence for the caller: what failed, and OpenSSL's reason. */
static void seterr(char *err, size_t errlen, const char *what) {
    unsigned long e = ERR_get_error();
    char r[256] = "";
    if (e) ERR_error_string_n(e, r, sizeof r);
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", r);
}

/* --- the BIO */

static int bio_write(BIO *b, const char *p, int n) {
    btls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0) return 0;
    size_t need = t->outlen + (size_t)n;
    if (need > t->outcap) {
        if (t->outoff) { /* slide the unsent rest to the front first */
            memmove(t->out, t->out + t->outoff, t->outlen - t->outoff);
            t->outlen -= t->outoff;
            t->outoff = 0;
            need = t->outlen + (size_t)n;
        }
        if (need > t->outcap) {
            size_t cap = t->outcap ? t->outcap : 16384;
            while (cap < need) cap *= 2;
            uint8_t *o = realloc(t->out, cap);
            if (!o) {
                t->oom = 1;
                return -1;
            }
            t->out = o;
            t->outcap = cap;
        }
    }
    memcpy(t->out + t->outlen, p, (size_t)n);
    t->outlen += (size_t)n;
    return n;
}

static int bio_read(BIO *b, char *p, int n) {
    btls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0) return 0;
    if (!t->inlen) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t k = t->inlen < (size_t)n ? t->inlen : (size_t)n;
    memcpy(p, t->in, k);
    t->in += k;
    t->inlen -= k;
    return (int)k;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    btls *t = BIO_get_data(b);
    (void)num; /* no control here takes an argument */
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1; /* the caller sends the output buffer */
    case BIO_CTRL_PENDING: return t ? (long)t->inlen : 0;
    case BIO_CTRL_WPENDING: return t ? (long)(t->outlen - t->outoff) : 0;
    default: return 0;
    }
}

static int bio_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

/* --- context and sessions */

btls_ctx *btls_ctx_new(const char *ca_file, const char *suite, const char *group,
                       char *err, size_t errlen) {
    btls_ctx *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->ctx = SSL_CTX_new(TLS_client_method());
    if (!x->ctx) {
        seterr(err, errlen, "SSL_CTX_new");
        goto fail;
    }
    if (!SSL_CTX_set_min_proto_version(x->ctx, TLS1_3_VERSION)) {
        seterr(err, errlen, "TLS 1.3 is not available");
        goto fail;
    }
    if (!SSL_CTX_set_ciphersuites(x->ctx, suite)) {
        seterr(err, errlen, "--tls-suite: not a TLS 1.3 cipher suite OpenSSL knows");
        goto fail;
    }
    if (!SSL_CTX_set1_groups_list(x->ctx, group)) {
        seterr(err, errlen, "--tls-group: not a group OpenSSL knows");
        goto fail;
    }
    if (!SSL_CTX_load_verify_locations(x->ctx, ca_file, NULL)) {
        char what[512];
        snprintf(what, sizeof what, "--ca %s: cannot read PEM certificates from it", ca_file);
        seterr(err, errlen, what);
        goto fail;
    }
    SSL_CTX_set_verify(x->ctx, SSL_VERIFY_PEER, NULL);
    (void)SSL_CTX_set_session_cache_mode(x->ctx, SSL_SESS_CACHE_OFF); /* returns the old mode */
    x->meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "chat-bench memory");
    if (!x->meth || !BIO_meth_set_write(x->meth, bio_write) ||
        !BIO_meth_set_read(x->meth, bio_read) || !BIO_meth_set_ctrl(x->meth, bio_ctrl) ||
        !BIO_meth_set_create(x->meth, bio_create)) {
        seterr(err, errlen, "BIO_meth_new");
        goto fail;
    }
    return x;
fail:
    btls_ctx_free(x);
    return NULL;
}

void btls_ctx_free(btls_ctx *x) {
    if (!x) return;
    SSL_CTX_free(x->ctx);
    BIO_meth_free(x->meth);
    free(x);
}

btls *btls_new(btls_ctx *x, const char *host) {
    btls *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ssl = SSL_new(x->ctx);
    BIO *b = BIO_new(x->meth);
    if (!t->ssl || !b) {
        BIO_free(b);
        btls_free(t);
        return NULL;
    }
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b); /* one BIO both ways: SSL owns one reference */
    SSL_set_connect_state(t->ssl);
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host)
                   : SSL_set1_host(t->ssl, host) && SSL_set_tlsext_host_name(t->ssl, host);
    if (!ok) {
        btls_free(t);
        return NULL;
    }
    return t;
}

void btls_free(btls *t) {
    if (!t) return;
    SSL_free(t->ssl);
    free(t->out);
    free(t);
}

void btls_input(btls *t, const uint8_t *p, size_t n) {
    t->in = p;
    t->inlen = n;
}

size_t btls_input_left(const btls *t) { return t->inlen; }

int btls_handshake(btls *t, char *err, size_t errlen) {
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) return 1;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ && !t->oom) return 0;
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK) {
        char what[256];
        snprintf(what, sizeof what, "the server's certificate was refused (%s)",
                 X509_verify_cert_error_string(v));
        seterr(err, errlen, what);
    } else {
        seterr(err, errlen, t->oom ? "out of memory" : "TLS handshake failed");
    }
    return -1;
}

long btls_read(btls *t, uint8_t *out, size_t cap, char *err, size_t errlen) {
    size_t got = 0;
    if (SSL_read_ex(t->ssl, out, cap, &got)) return (long)got;
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ && !t->oom) return 0;
    seterr(err, errlen, e == SSL_ERROR_ZERO_RETURN ? "the server closed the TLS session"
                                                   : t->oom ? "out of memory" : "TLS read failed");
    return -1;
}

int btls_write(btls *t, const uint8_t *p, size_t n, char *err, size_t errlen) {
    while (n) {
        size_t w = 0;
        if (!SSL_write_ex(t->ssl, p, n, &w) || t->oom) {
            seterr(err, errlen, t->oom ? "out of memory" : "TLS write failed");
            return -1;
        }
        p += w;
        n -= w;
    }
    return 0;
}

const uint8_t *btls_out(const btls *t, size_t *n) {
    *n = t->outlen - t->outoff;
    return t->out + t->outoff;
}

void btls_out_consume(btls *t, size_t k) {
    t->outoff += k;
    if (t->outoff == t->outlen) t->outoff = t->outlen = 0;
}

void btls_describe(const btls *t, char *buf, size_t len) {
    const char *g = NULL;
    int nid = SSL_get_negotiated_group(t->ssl);
    if (nid > 0) g = OBJ_nid2sn(nid);
    snprintf(buf, len, "%s/%s/%s", SSL_get_version(t->ssl),
             SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl)), g ? g : "unknown");
}
