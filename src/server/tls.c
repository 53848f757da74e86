/*
 * tls.c -- the server's TLS engine (see tls.h for the contract).
 *
 * Each SSL talks to one BIO of our own (a source/sink method made per
 * tls_server, so no global state here) instead of a pair of OpenSSL memory
 * BIOs. Why: a memory BIO's BUF_MEM never shrinks (measured with OpenSSL
 * 3.0: 1 MiB written then read out leaves 1.4 MiB allocated), so a
 * connection that once received or sent a burst would keep that much memory
 * for its lifetime; and its bytes cannot be handed to libuv without a copy. Our BIO reads from
 * tls_conn.in (common/buf, freed as soon as it is empty) and appends to
 * tls_conn.out, which tls_conn_take_buf swaps with the caller's empty buffer
 * and tls_conn_shrink frees when idle.
 *
 * The BIO never asks OpenSSL to retry a write (out grows instead), so
 * SSL_write_ex always encrypts everything it is given in one call:
 * SSL_MODE_ENABLE_PARTIAL_WRITE and SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER,
 * which exist for writes that stop half-way, are not needed. Reads return
 * "retry" when `in` is empty, which OpenSSL reports as SSL_ERROR_WANT_READ.
 *
 * Invariants: in_off <= in.len and out_off <= out.len; an empty `in` is
 * unallocated once the call that emptied it returns; `fatal` and `closed`
 * are sticky.
 */
#include "tls.h"

#include <assert.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites: ECDHE key exchange with an AEAD cipher (TLS 1.3 keeps
 * OpenSSL's default list, which is all AEAD). */
#define TLS_CIPHERS12 "ECDHE+AESGCM:ECDHE+CHACHA20"
/* Sessions are tagged with it; without one, a client resuming a session on
 * a server that verifies client certificates is refused ("session id
 * context uninitialized"; test_resumption). */
#define TLS_SID_CTX "chat-server"
/* What the two record buffers of a busy connection take, about: a record
 * of 16 KiB plus its overhead each way (OpenSSL 3.0 ssl3_setup_buffers). */
#define TLS_RECORD_BUFFERS ((size_t)2 * (16 * 1024 + 2048))

struct tls_server {
    SSL_CTX *ctx;
    BIO_METHOD *meth;
};

struct tls_conn {
    SSL *ssl;
    buf in;             /* ciphertext fed, from in_off on not yet pulled */
    size_t in_off;
    const uint8_t *lent;/* ciphertext lent (tls_conn_lend), read after `in`,
                           from lent_off on, until tls_conn_settle */
    size_t lent_len, lent_off;
    buf out;            /* ciphertext made, from out_off on not yet taken */
    size_t out_off;
    uint8_t done;       /* handshake complete */
    uint8_t closed;     /* close_notify received */
    uint8_t fatal;      /* unusable; reason set */
    uint8_t nomem;      /* the BIO could not grow out */
    uint8_t shut;       /* close_notify queued */
    uint8_t used;       /* read or written since the last tls_conn_shrink */
    char *cn;           /* verified client certificate CN (OPENSSL_malloc) */
    char reason[112];
};

const char *tls_code_name(int code) {
    switch (code) {
    case 0: return "ok";
    case TLS_CLOSED: return "closed";
    case TLS_FATAL: return "fatal";
    case TLS_AGAIN: return "handshake not complete";
    case TLS_ENOMEM: return "out of memory";
    default: return "unknown";
    }
}

/* ---- the BIO ----------------------------------------------------------- */

static int bio_read(BIO *b, char *p, size_t n, size_t *got) {
    tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t avail = t->in.len - t->in_off;
    if (avail == 0 && t->lent_off < t->lent_len) { /* the lent bytes, after */
        size_t k = n < t->lent_len - t->lent_off ? n : t->lent_len - t->lent_off;
        memcpy(p, t->lent + t->lent_off, k);
        t->lent_off += k;
        *got = k;
        return 1;
    }
    if (avail == 0) {
        BIO_set_retry_read(b);
        *got = 0;
        return 0;
    }
    size_t k = n < avail ? n : avail;
    memcpy(p, t->in.data + t->in_off, k);
    t->in_off += k;
    if (t->in_off == t->in.len) {
        buf_free(&t->in);
        t->in_off = 0;
    }
    *got = k;
    return 1;
}

static int bio_write(BIO *b, const char *p, size_t n, size_t *done) {
    tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    /* Taken bytes are reclaimed once they outnumber the rest: amortised
     * O(1) per byte. */
    if (t->out_off && t->out_off >= t->out.len - t->out_off) {
        buf_consume(&t->out, t->out_off);
        t->out_off = 0;
    }
    if (buf_append(&t->out, p, n, SIZE_MAX / 2)) {
        t->nomem = 1;
        *done = 0;
        return 0;
    }
    *done = n;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num;
    (void)ptr;
    tls_conn *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return (long)(t->in.len - t->in_off + t->lent_len - t->lent_off);
    case BIO_CTRL_WPENDING:
        return (long)(t->out.len - t->out_off);
    default:
        return 0;
    }
}

/* ---- errors ------------------------------------------------------------ */

/* Record why t failed from the error queue (then empty it). */
static void set_fatal(tls_conn *t, int sslerr) {
    unsigned long e = ERR_get_error();
    const char *r = NULL;
    t->fatal = 1;
    buf_free(&t->in); /* never to be read */
    t->in_off = 0;
    if (t->nomem) {
        r = "out of memory";
    } else if (e && ERR_GET_LIB(e) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(e)) {
        case SSL_R_HTTP_REQUEST:
            r = "http request on TLS port";
            break;
        case SSL_R_HTTPS_PROXY_REQUEST:
            r = "https proxy request on TLS port";
            break;
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            r = "peer did not return a certificate";
            break;
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            snprintf(t->reason, sizeof t->reason,
                     "client certificate not trusted: %s",
                     X509_verify_cert_error_string(
                         SSL_get_verify_result(t->ssl)));
            ERR_clear_error();
            return;
        default:
            break;
        }
    }
    if (!r && e) r = ERR_reason_error_string(e);
    if (!r && e) {
        ERR_error_string_n(e, t->reason, sizeof t->reason);
        ERR_clear_error();
        return;
    }
    if (!r) {
        snprintf(t->reason, sizeof t->reason, "TLS error (SSL_get_error %d)",
                 sslerr);
    } else {
        snprintf(t->reason, sizeof t->reason, "%s", r);
    }
    ERR_clear_error();
}

/* Empty this thread's error queue before an SSL I/O call, as
 * SSL_get_error requires. Peeking first: ERR_clear_error walks all 16
 * slots of the queue on every call (1.5 % of the server's CPU on 64-byte
 * messages over TLS), and the queue is nearly always empty here: this
 * module empties it after every failure it reports. */
static void errors_clear(void) {
    if (ERR_peek_error() != 0) ERR_clear_error();
}

/* The outcome of a failed SSL call (r: its return value). */
static long ssl_outcome(tls_conn *t, int r) {
    int e = SSL_get_error(t->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        t->closed = 1;
        buf_free(&t->in); /* what follows close_notify is ignored */
        t->in_off = 0;
        ERR_clear_error();
        return TLS_CLOSED;
    default:
        set_fatal(t, e);
        return TLS_FATAL;
    }
}

/* ---- the server context ------------------------------------------------ */

/* Never prompt for a passphrase: an encrypted key is an error. */
static int no_password(char *buf_, int size, int rwflag, void *u) {
    (void)buf_;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* "cannot load FLAG FILE: why" from the error queue (then empty it): the
 * first error is the cause; a missing PEM header or a passphrase-protected
 * key get their own words. */
static void load_error(char *err, size_t errlen, const char *flag,
                       const char *file, const char *what) {
    const char *why = NULL;
    int nostart = 0, encrypted = 0;
    for (unsigned long x; (x = ERR_get_error());) {
        int lib = ERR_GET_LIB(x), rsn = ERR_GET_REASON(x);
        if (!why) why = ERR_reason_error_string(x);
        if (lib == ERR_LIB_PEM && rsn == PEM_R_NO_START_LINE) nostart = 1;
        if ((lib == ERR_LIB_PEM && (rsn == PEM_R_BAD_DECRYPT ||
                                    rsn == PEM_R_PROBLEMS_GETTING_PASSWORD)) ||
            (lib == ERR_LIB_EVP && rsn == EVP_R_BAD_DECRYPT))
            encrypted = 1;
    }
    if (encrypted)
        snprintf(err, errlen, "cannot load %s %s: the key is encrypted; give "
                 "an unencrypted key", flag, file);
    else if (nostart || !why)
        snprintf(err, errlen, "cannot load %s %s: no PEM %s in it", flag, file,
                 what);
    else
        snprintf(err, errlen, "cannot load %s %s: %s", flag, file, why);
    ERR_clear_error();
}

/* 0 if the file can be opened for reading, else -1 with a sentence. */
static int check_readable(char *err, size_t errlen, const char *flag,
                          const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s %s: %s", flag, file,
                 strerror(errno));
        return -1;
    }
    (void)fclose(f); /* opened read-only, only to test access */
    return 0;
}

/* Why key_file cannot hold a usable key, from its PEM block names (NULL:
 * it has an unencrypted private key block). OpenSSL 3's decoders report a
 * non-key file only as "unsupported". */
static const char *key_file_problem(const char *key_file) {
    BIO *b = BIO_new_file(key_file, "r");
    if (!b) return NULL; /* reported by the load */
    int found = 0, encrypted = 0;
    char *name = NULL, *hdr = NULL;
    unsigned char *data = NULL;
    long len = 0;
    while (!found && PEM_read_bio(b, &name, &hdr, &data, &len) == 1) {
        if (strstr(name, "PRIVATE KEY")) {
            found = 1;
            encrypted = strstr(name, "ENCRYPTED") || strstr(hdr, "ENCRYPTED");
        }
        OPENSSL_free(name);
        OPENSSL_free(hdr);
        OPENSSL_free(data);
    }
    (void)BIO_free(b); /* a read-only file: nothing to lose at close */
    ERR_clear_error();
    if (!found) return "no PEM private key in it";
    return encrypted ? "the key is encrypted; give an unencrypted key" : NULL;
}

static int load_identity(SSL_CTX *ctx, const char *cert_file,
                         const char *key_file, char *err, size_t errlen) {
    if (check_readable(err, errlen, "--tls-cert", cert_file) ||
        check_readable(err, errlen, "--tls-key", key_file))
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        load_error(err, errlen, "--tls-cert", cert_file, "certificate");
        return -1;
    }
    const char *bad = key_file_problem(key_file);
    if (bad) {
        snprintf(err, errlen, "cannot load --tls-key %s: %s", key_file, bad);
        return -1;
    }
    BIO *kb = BIO_new_file(key_file, "r");
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_password, NULL)
                       : NULL;
    (void)BIO_free(kb); /* read-only (or NULL, a no-op) */
    if (!key) {
        load_error(err, errlen, "--tls-key", key_file, "private key");
        return -1;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
             SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok) {
        snprintf(err, errlen, "--tls-key %s does not match the certificate "
                 "in --tls-cert %s", key_file, cert_file);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static int load_client_cas(SSL_CTX *ctx, const char *ca_file, char *err,
                           size_t errlen) {
    if (check_readable(err, errlen, "--tls-ca", ca_file)) return -1;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (!names || sk_X509_NAME_num(names) == 0) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        load_error(err, errlen, "--tls-ca", ca_file, "certificate");
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        load_error(err, errlen, "--tls-ca", ca_file, "certificate");
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    return 0;
}

/* A server context with the identity of cert_file/key_file (and client
 * CAs), or NULL with err. */
static SSL_CTX *ctx_new(const char *cert_file, const char *key_file,
                        const char *ca_file, char *err, size_t errlen) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot set up TLS: out of memory");
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS12) != 1 ||
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SID_CTX,
                                       sizeof TLS_SID_CTX - 1) != 1) {
        snprintf(err, errlen, "cannot set up TLS: %s",
                 ERR_reason_error_string(ERR_peek_last_error()));
        goto fail;
    }
    /* (void): these return the new option and mode masks and the previous
     * cache mode, not a status; they cannot fail. */
    (void)SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
                                   SSL_OP_NO_COMPRESSION |
                                   SSL_OP_NO_RENEGOTIATION);
    /* No SSL_MODE_RELEASE_BUFFERS: it frees and reallocates the record
     * buffers (~17 KiB each way) on every read and write of a busy
     * connection; tls_conn_shrink frees them once the connection is idle. */
    (void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (load_identity(ctx, cert_file, key_file, err, errlen)) goto fail;
    if (ca_file && load_client_cas(ctx, ca_file, err, errlen)) goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

tls_server *tls_server_new(const char *cert_file, const char *key_file,
                           const char *ca_file, char *err, size_t errlen) {
    ERR_clear_error();
    tls_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "cannot set up TLS: out of memory");
        goto fail;
    }
    if (!(s->ctx = ctx_new(cert_file, key_file, ca_file, err, errlen)))
        goto fail;
    s->meth = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "chat-tls");
    if (!s->meth || !BIO_meth_set_read_ex(s->meth, bio_read) ||
        !BIO_meth_set_write_ex(s->meth, bio_write) ||
        !BIO_meth_set_ctrl(s->meth, bio_ctrl)) {
        snprintf(err, errlen, "cannot set up TLS: out of memory");
        goto fail;
    }
    ERR_clear_error();
    return s;
fail:
    ERR_clear_error();
    tls_server_free(s);
    return NULL;
}

int tls_server_reload(tls_server *s, const char *cert_file,
                      const char *key_file, const char *ca_file, char *err,
                      size_t errlen) {
    ERR_clear_error();
    SSL_CTX *ctx = ctx_new(cert_file, key_file, ca_file, err, errlen);
    ERR_clear_error();
    if (!ctx) return -1;
    /* Every SSL made from the old context holds a reference to it
     * (SSL_new), so open connections keep their certificate; this drops
     * only ours. */
    SSL_CTX_free(s->ctx);
    s->ctx = ctx;
    return 0;
}

void tls_server_free(tls_server *s) {
    if (!s) return;
    SSL_CTX_free(s->ctx);
    BIO_meth_free(s->meth);
    free(s);
}

/* ---- one connection ---------------------------------------------------- */

tls_conn *tls_conn_new(tls_server *s) {
    ERR_clear_error();
    tls_conn *t = OPENSSL_zalloc(sizeof *t);
    if (!t) return NULL;
    BIO *b = NULL;
    if (!(t->ssl = SSL_new(s->ctx)) || !(b = BIO_new(s->meth))) {
        SSL_free(t->ssl);
        OPENSSL_free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(b, t);
    BIO_set_init(b, 1);
    SSL_set_bio(t->ssl, b, b); /* one reference, owned by the SSL */
    SSL_set_accept_state(t->ssl);
    return t;
}

void tls_conn_free(tls_conn *t) {
    if (!t) return;
    SSL_free(t->ssl); /* frees the BIO; no I/O */
    buf_free(&t->in);
    buf_free(&t->out);
    OPENSSL_free(t->cn);
    OPENSSL_free(t);
}

int tls_conn_feed(tls_conn *t, const uint8_t *p, size_t n) {
    if (n == 0 || t->fatal || t->closed) return 0; /* nobody will read it */
    if (buf_append(&t->in, p, n, SIZE_MAX / 2)) return TLS_ENOMEM;
    return 0;
}

void tls_conn_lend(tls_conn *t, const uint8_t *p, size_t n) {
    assert(!t->lent); /* one lend at a time, settled before the next */
    if (n == 0 || t->fatal || t->closed) return; /* nobody will read it */
    t->lent = p;
    t->lent_len = n;
    t->lent_off = 0;
}

int tls_conn_settle(tls_conn *t) {
    if (!t->lent) return 0;
    const uint8_t *p = t->lent + t->lent_off;
    size_t n = t->lent_len - t->lent_off;
    t->lent = NULL;
    t->lent_len = t->lent_off = 0;
    if (n == 0 || t->fatal || t->closed) return 0;
    return buf_append(&t->in, p, n, SIZE_MAX / 2) ? TLS_ENOMEM : 0;
}

/* Keep the verified client certificate's CN for the log. */
static void keep_peer_cn(tls_conn *t) {
    if (!(SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER)) return;
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK) return;
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) return;
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(
        &u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) return;
    t->cn = OPENSSL_malloc((size_t)n + 1);
    if (t->cn) {
        for (int k = 0; k < n; k++)
            t->cn[k] = (char)(u[k] < 0x20 || u[k] == 0x7f ? '?' : u[k]);
        t->cn[n] = '\0';
    }
    OPENSSL_free(u);
}

long tls_conn_read(tls_conn *t, uint8_t *p, size_t cap) {
    if (t->fatal) return TLS_FATAL;
    if (t->closed) return TLS_CLOSED;
    t->used = 1;
    errors_clear();
    if (!t->done) {
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) return ssl_outcome(t, r);
        t->done = 1;
        keep_peer_cn(t);
    }
    if (cap == 0) return 0;
    if (cap > (size_t)1 << 30) cap = (size_t)1 << 30; /* fits a long */
    size_t n = 0;
    if (SSL_read_ex(t->ssl, p, cap, &n) == 1) return (long)n;
    return ssl_outcome(t, 0);
}

int tls_conn_write(tls_conn *t, const uint8_t *p, size_t n) {
    if (t->fatal) return TLS_FATAL;
    if (!t->done) return TLS_AGAIN;
    if (t->shut) return TLS_FATAL;
    t->used = 1;
    errors_clear();
    while (n) {
        size_t w = 0;
        if (SSL_write_ex(t->ssl, p, n, &w) != 1) {
            set_fatal(t, SSL_get_error(t->ssl, 0));
            return TLS_FATAL;
        }
        p += w;
        n -= w;
    }
    return 0;
}

size_t tls_conn_pending(const tls_conn *t) { return t->out.len - t->out_off; }

size_t tls_conn_take(tls_conn *t, uint8_t *dst, size_t cap) {
    size_t k = t->out.len - t->out_off;
    if (k > cap) k = cap;
    if (k) memcpy(dst, t->out.data + t->out_off, k);
    t->out_off += k;
    if (t->out_off == t->out.len) {
        buf_free(&t->out);
        t->out_off = 0;
    }
    return k;
}

int tls_conn_take_buf(tls_conn *t, buf *dst, size_t limit) {
    size_t n = t->out.len - t->out_off;
    if (n == 0) return 0;
    if (dst->len == 0 && t->out_off == 0 && t->out.cap <= limit) {
        /* Swap: the caller's empty buffer (with its capacity) takes the
         * next records, so a busy connection allocates nothing per flush. */
        buf spare = *dst;
        *dst = t->out;
        t->out = spare;
        return 0;
    }
    int r = buf_append(dst, t->out.data + t->out_off, n, limit);
    if (r) return r;
    t->out.len = 0;
    t->out_off = 0;
    return 0;
}

size_t tls_conn_shrink(tls_conn *t) {
    size_t freed = 0;
    if (t->out.len == t->out_off) {
        freed += t->out.cap;
        buf_free(&t->out);
        t->out_off = 0;
    }
    /* OpenSSL's record buffers, once a whole period went by without a
     * read or a write (a busy connection keeps them: freeing them every
     * second would have the cron free megabytes and malloc_trim the heap
     * under load), and unless they hold a partial record or unread
     * plaintext: SSL_has_pending says so, and then they stay (as
     * SSL_free_buffers would refuse; asking first also keeps clear of
     * CVE-2024-4741, its use after free on a partly read record in
     * OpenSSL before 3.0.14). Their size is OpenSSL's, not told: counted
     * as one record each way. */
    if (!t->used && !SSL_has_pending(t->ssl) && SSL_free_buffers(t->ssl) == 1)
        freed += TLS_RECORD_BUFFERS;
    t->used = 0;
    return freed;
}

int tls_conn_handshake_done(const tls_conn *t) { return t->done; }

void tls_conn_shutdown(tls_conn *t) {
    if (!t->done || t->fatal || t->shut) return;
    t->shut = 1;
    ERR_clear_error();
    /* (void): 0 is "close_notify queued, the peer's not seen yet", which
     * is all we want; < 0 means it could not be queued (out of memory),
     * and the connection closes without it either way. */
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

const char *tls_conn_reason(const tls_conn *t) { return t->reason; }

const char *tls_conn_peer_cn(const tls_conn *t) { return t->cn; }

const char *tls_conn_version(const tls_conn *t) {
    return SSL_get_version(t->ssl);
}
