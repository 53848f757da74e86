/*
 * rconn_tls.c -- rconn's TLS client engine: an SSL in client mode between
 * two memory BIOs (rbio: ciphertext fed from the socket; wbio: ciphertext
 * made for the socket). Contract: rconn_tls.h.
 */
#include "server/rconn_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct rconn_tls_ctx {
    SSL_CTX *ssl_ctx;
    char *name; /* verified name for every session, or NULL */
};

struct rconn_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* both owned by ssl */
    int handshaken;
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

/* A file that could not be loaded: the system's word when it cannot even be
 * opened, else OpenSSL's. Always RCONN_TLS_FATAL. */
static int file_err(const char *what, const char *path, char *err,
                    size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) {
        say(err, len, "cannot read the TLS %s %s: %s", what, path,
            strerror(errno));
    } else {
        (void)fclose(f); /* opened read-only to tell the causes apart */
        say(err, len, "cannot load the TLS %s %s: %s", what, path,
            why("not a usable PEM file"));
    }
    return RCONN_TLS_FATAL;
}

int rconn_tls_ctx_new(rconn_tls_ctx **out, const char *ca_file,
                      const char *cert_file, const char *key_file,
                      const char *server_name, char *err, size_t errlen) {
    *out = NULL;
    rconn_tls_ctx *x = calloc(1, sizeof *x);
    if (!x) return RCONN_TLS_ENOMEM;
    if (server_name && server_name[0] && !(x->name = strdup(server_name))) {
        free(x);
        return RCONN_TLS_ENOMEM;
    }
    ERR_clear_error();
    int rc = RCONN_TLS_FATAL;
    x->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!x->ssl_ctx) {
        rc = RCONN_TLS_ENOMEM;
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(x->ssl_ctx, TLS1_2_VERSION) != 1) {
        say(err, errlen, "cannot require TLS 1.2: %s", why("?"));
        goto fail;
    }
    /* (void): SSL_CTX_set_mode returns the new mode bits, not a status */
    (void)SSL_CTX_set_mode(x->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(x->ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(x->ssl_ctx, ca_file, NULL) != 1) {
            rc = file_err("CA file", ca_file, err, errlen);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(x->ssl_ctx) != 1) {
        say(err, errlen, "cannot load the system's trusted CAs: %s", why("?"));
        goto fail;
    }
    if (cert_file) {
        if (SSL_CTX_use_certificate_chain_file(x->ssl_ctx, cert_file) != 1) {
            rc = file_err("client certificate", cert_file, err, errlen);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(x->ssl_ctx, key_file,
                                        SSL_FILETYPE_PEM) != 1) {
            rc = file_err("client key", key_file, err, errlen);
            goto fail;
        }
        if (SSL_CTX_check_private_key(x->ssl_ctx) != 1) {
            say(err, errlen, "the TLS client key %s does not match the "
                "certificate %s", key_file, cert_file);
            goto fail;
        }
    }
    ERR_clear_error();
    *out = x;
    return 0;
fail:
    ERR_clear_error();
    rconn_tls_ctx_free(x);
    return rc;
}

void rconn_tls_ctx_free(rconn_tls_ctx *x) {
    if (!x) return;
    SSL_CTX_free(x->ssl_ctx);
    free(x->name);
    free(x);
}

static int ip_literal(const char *s) {
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int rconn_tls_new(rconn_tls **out, rconn_tls_ctx *x, const char *host,
                  char *err, size_t errlen) {
    *out = NULL;
    rconn_tls *t = calloc(1, sizeof *t);
    if (!t) return RCONN_TLS_ENOMEM;
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
        return RCONN_TLS_ENOMEM;
    }
    /* An empty rbio means "wait for more", not end of file. (void): on a
     * memory BIO this control stores the value and cannot fail. */
    (void)BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_connect_state(t->ssl);
    const char *name = x->name ? x->name : host;
    int ok;
    if (ip_literal(name)) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) == 1;
    } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(t->ssl, name) == 1 &&
             SSL_set_tlsext_host_name(t->ssl, name) == 1;
    }
    if (!ok) {
        say(err, errlen, "cannot verify the TLS name %s: %s", name,
            why("invalid name"));
        rconn_tls_free(t);
        ERR_clear_error();
        return RCONN_TLS_FATAL;
    }
    *out = t;
    return 0;
}

void rconn_tls_free(rconn_tls *t) {
    if (!t) return;
    SSL_free(t->ssl); /* and both BIOs */
    free(t);
}

int rconn_tls_feed(rconn_tls *t, const void *p, size_t n) {
    while (n > 0) {
        int part = n > INT_MAX ? INT_MAX : (int)n;
        if (BIO_write(t->rbio, p, part) != part) {
            ERR_clear_error();
            return RCONN_TLS_ENOMEM;
        }
        p = (const char *)p + part;
        n -= (size_t)part;
    }
    return 0;
}

/* An SSL call failed for good: the verification result when that is why,
 * else OpenSSL's reason. */
static int fatal(rconn_tls *t, const char *what, char *err, size_t errlen) {
    long v = SSL_get_verify_result(t->ssl);
    if (!t->handshaken && v != X509_V_OK)
        say(err, errlen, "certificate verify failed: %s",
            X509_verify_cert_error_string(v));
    else
        say(err, errlen, "%s: %s", what, why("unknown TLS error"));
    ERR_clear_error();
    return RCONN_TLS_FATAL;
}

int rconn_tls_handshake(rconn_tls *t, char *err, size_t errlen) {
    if (t->handshaken) return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->handshaken = 1;
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    return fatal(t, "TLS handshake failed", err, errlen);
}

ssize_t rconn_tls_read(rconn_tls *t, void *dst, size_t cap, char *err,
                       size_t errlen) {
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
        return RCONN_TLS_CLOSED;
    }
    return fatal(t, "TLS read failed", err, errlen);
}

int rconn_tls_write(rconn_tls *t, const void *p, size_t n, char *err,
                    size_t errlen) {
    while (n > 0) {
        int part = n > (1u << 30) ? (1 << 30) : (int)n;
        ERR_clear_error();
        int r = SSL_write(t->ssl, p, part);
        if (r != part) return fatal(t, "TLS write failed", err, errlen);
        p = (const char *)p + part;
        n -= (size_t)part;
    }
    return 0;
}

int rconn_tls_take(rconn_tls *t, buf *out, size_t limit) {
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

int rconn_tls_want_take(const rconn_tls *t) {
    return BIO_ctrl_pending(t->wbio) > 0;
}
