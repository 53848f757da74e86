/*
 * tlsc.c -- the TLS client engine: an SSL in client mode between two
 * memory BIOs (rbio: ciphertext fed from the socket; wbio: ciphertext made
 * for the socket). Contract: tlsc.h.
 *
 * No global state: OpenSSL 1.1+ initialises itself; each context owns its
 * SSL_CTX and each session its SSL.
 */
#include "common/tlsc.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tlsc_ctx {
    SSL_CTX *ssl_ctx;
    char *name; /* verified against every session's certificate; NULL:
                   each session's host is */
};

struct tlsc {
    SSL *ssl;
    BIO *rbio, *wbio; /* both owned by ssl */
    int done;         /* handshake complete */
    int failed;       /* a fatal error happened: no close_notify */
};

__attribute__((format(printf, 3, 4)))
static void say(char *err, size_t len, const char *fmt, ...) {
    if (!err || len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, len, fmt, ap); /* truncation is the bound */
    va_end(ap);
}

/* OpenSSL's reason for the newest queued error, or dflt. */
static const char *why(const char *dflt) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : dflt;
}

/* A file the user named that could not be loaded: the system's word when it
 * cannot even be opened (clearer than OpenSSL's), else OpenSSL's. */
static int file_err(const char *what, const char *path, char *err,
                    size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) {
        say(err, len, "cannot load the %s %s: %s", what, path,
            strerror(errno));
    } else {
        (void)fclose(f); /* opened read-only, only to tell the causes apart */
        say(err, len, "cannot load the %s %s: %s", what, path,
            why("not a usable PEM file"));
    }
    return TLSC_ECONF;
}

/* The CAs, the client certificate and key into x->ssl_ctx. 0 or
 * TLSC_ECONF (err says which file and why). */
static int load_files(tlsc_ctx *x, const tlsc_options *o, char *err,
                      size_t errlen) {
    SSL_CTX *ctx = x->ssl_ctx;
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
            return file_err("CA file", o->ca_file, err, errlen);
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        say(err, errlen, "cannot load the system's trusted CAs: %s", why("?"));
        return TLSC_ECONF;
    }
    if (!o->cert_file) return 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
        return file_err("certificate file", o->cert_file, err, errlen);
    /* A key that loads but belongs to another certificate is told below,
     * with both files named, rather than as "key values mismatch". */
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
        return file_err("key file", o->key_file, err, errlen);
    if (SSL_CTX_check_private_key(ctx) != 1) {
        say(err, errlen, "the key file %s does not match the certificate %s",
            o->key_file, o->cert_file);
        return TLSC_ECONF;
    }
    return 0;
}

int tlsc_ctx_new(tlsc_ctx **out, const tlsc_options *o, char *err,
                 size_t errlen) {
    *out = NULL;
    if (!o->cert_file != !o->key_file) {
        say(err, errlen, "a TLS client certificate needs its key: give both "
            "cert_file and key_file, or neither");
        return TLSC_EINVAL;
    }
    const char *name = o->server_name && o->server_name[0] ? o->server_name : NULL;
    tlsc_ctx *x = calloc(1, sizeof *x);
    if (!x || (name && !(x->name = strdup(name)))) {
        free(x);
        say(err, errlen, "out of memory");
        return TLSC_ENOMEM;
    }
    ERR_clear_error();
    int rc = TLSC_ENOMEM;
    x->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!x->ssl_ctx) {
        say(err, errlen, "cannot create the TLS context: %s",
            why("out of memory"));
        goto fail;
    }
    rc = TLSC_ECONF;
    if (SSL_CTX_set_min_proto_version(x->ssl_ctx, TLS1_2_VERSION) != 1) {
        say(err, errlen, "cannot require TLS 1.2: %s", why("?"));
        goto fail;
    }
    /* (void): SSL_CTX_set_mode returns the new mode bits, not a status */
    if (o->release_buffers)
        (void)SSL_CTX_set_mode(x->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(x->ssl_ctx, SSL_VERIFY_PEER, NULL);
    rc = load_files(x, o, err, errlen);
    if (rc) goto fail;
    ERR_clear_error();
    if (err && errlen) err[0] = 0;
    *out = x;
    return 0;
fail:
    ERR_clear_error();
    tlsc_ctx_free(x);
    return rc;
}

void tlsc_ctx_free(tlsc_ctx *x) {
    if (!x) return;
    SSL_CTX_free(x->ssl_ctx);
    free(x->name);
    free(x);
}

static int ip_literal(const char *s) {
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int tlsc_new(tlsc **out, tlsc_ctx *x, const char *host, char *err,
             size_t errlen) {
    const char *name = x->name ? x->name : host;
    assert(name);
    *out = NULL;
    tlsc *t = calloc(1, sizeof *t);
    if (!t) return TLSC_ENOMEM;
    ERR_clear_error();
    t->ssl = SSL_new(x->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        /* (void): fresh memory BIOs or NULL: freeing cannot lose data */
        (void)BIO_free(t->rbio);
        (void)BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return TLSC_ENOMEM;
    }
    /* An empty rbio means "wait for more", not end of file. (void): on a
     * memory BIO this control only stores the value and returns 1. */
    (void)BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_connect_state(t->ssl);
    int ok;
    if (ip_literal(name)) { /* an address: no SNI, the IP is checked */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) == 1;
    } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(t->ssl, name) == 1 &&
             SSL_set_tlsext_host_name(t->ssl, name) == 1;
    }
    if (!ok) {
        say(err, errlen, "cannot set the name to verify (%s): %s", name,
            why("invalid name"));
        tlsc_free(t);
        ERR_clear_error();
        return TLSC_EFATAL;
    }
    *out = t;
    return 0;
}

void tlsc_free(tlsc *t) {
    if (!t) return;
    SSL_free(t->ssl); /* and both BIOs */
    free(t);
}

int tlsc_feed(tlsc *t, const void *p, size_t n) {
    while (n > 0) {
        int part = n > INT_MAX ? INT_MAX : (int)n;
        if (BIO_write(t->rbio, p, part) != part) {
            ERR_clear_error();
            return TLSC_ENOMEM;
        }
        p = (const char *)p + part;
        n -= (size_t)part;
    }
    return 0;
}

/* An SSL call failed for good: the verification result when that is why,
 * else OpenSSL's reason after `what`. */
static int failure(tlsc *t, const char *what, char *err, size_t errlen) {
    t->failed = 1;
    long v = SSL_get_verify_result(t->ssl);
    int rc = TLSC_EFATAL;
    if (!t->done && v != X509_V_OK) {
        say(err, errlen, "certificate verify failed: %s",
            X509_verify_cert_error_string(v));
        rc = TLSC_EVERIFY;
    } else {
        say(err, errlen, "%s: %s", what, why("unknown TLS error"));
    }
    ERR_clear_error();
    return rc;
}

int tlsc_handshake(tlsc *t, char *err, size_t errlen) {
    if (t->done) return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = 1;
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    /* WANT_WRITE cannot happen with a memory BIO; waiting is right if so */
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    return failure(t, "handshake failed", err, errlen);
}

ssize_t tlsc_read(tlsc *t, void *dst, size_t cap, char *err, size_t errlen) {
    if (cap > INT_MAX) cap = INT_MAX;
    ERR_clear_error();
    int r = SSL_read(t->ssl, dst, (int)cap);
    if (r > 0) return r;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return TLSC_ECLOSED;
    }
    return failure(t, "connection failed", err, errlen);
}

int tlsc_write(tlsc *t, const void *p, size_t n, char *err, size_t errlen) {
    assert(t->done);
    while (n > 0) {
        int part = n > (1u << 30) ? (1 << 30) : (int)n;
        ERR_clear_error();
        int r = SSL_write(t->ssl, p, part);
        if (r != part) return failure(t, "write failed", err, errlen);
        p = (const char *)p + part;
        n -= (size_t)part;
    }
    return 0;
}

int tlsc_take(tlsc *t, buf *out, size_t limit) {
    size_t n;
    while ((n = (size_t)BIO_ctrl_pending(t->wbio)) > 0) {
        if (n > INT_MAX) n = INT_MAX;
        int r = buf_reserve(out, n, limit);
        if (r) return r;
        int got = BIO_read(t->wbio, out->data + out->len, (int)n);
        if (got <= 0) break; /* cannot happen: n bytes are pending */
        out->len += (size_t)got;
    }
    return 0;
}

int tlsc_pending(const tlsc *t) {
    return t->done && SSL_pending(t->ssl) > 0;
}

int tlsc_close_notify(tlsc *t) {
    if (!t->done || t->failed) return 0;
    ERR_clear_error();
    /* (void): 0 is "close_notify queued" (the server's is not awaited);
     * < 0 means it could not be made, and the caller closes either way. */
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
    return 1;
}
