/*
 * test_tls.c -- unit tests for the server's TLS engine (src/server/tls.{h,c}).
 *
 * No sockets: a plain OpenSSL client on two memory BIOs talks to a tls_conn
 * in the same thread; pump() moves bytes both ways (in chunks of a chosen or
 * random size) until neither side makes progress. The certificates are made
 * at start-up with the OpenSSL API (P-256, one day) in a mkdtemp directory:
 * a test CA, a server certificate for localhost / 127.0.0.1, a second
 * ("rogue") CA the server does not trust, a client certificate from each.
 *
 * Covers: handshake and a round trip both ways, the client checking the
 * server certificate against the CA, the host name and the IP address (and
 * refusing a wrong name); 1 MiB each way in random awkward chunks, read in
 * 777-byte pieces, fed by copy and lent in place (tls_conn_lend, partial
 * records kept by tls_conn_settle), taken by copy and by buffer swap; a
 * small message with every byte (handshake included) fed, or lent, and
 * read one at a time;
 * tls_conn_write before the handshake (TLS_AGAIN); plaintext (HTTP, a chat
 * frame) fed to the TLS port -> TLS_FATAL with a reason, sticky; a TLS 1.1
 * client refused; with a CA file: a client with a good certificate accepted
 * and its CN reported, without one or with an untrusted one refused, a
 * client that does not trust the server -> "unknown ca"; TLS 1.2 only with
 * ECDHE + AEAD; renegotiation refused; resumption from a ticket (TLS 1.3
 * and 1.2, with the client certificate's CN); close_notify both ways (half-close,
 * shutdown once, writes after it refused); bytes fed after an error or
 * close_notify dropped, not buffered; an error left in the OpenSSL queue
 * does not leak into the next
 * connection; tls_server_new with missing, unreadable, garbage, empty,
 * encrypted and mismatched files -> NULL and a sentence naming the file.
 *
 * Memory: main() installs counting allocators for OpenSSL
 * (CRYPTO_set_mem_functions) before anything else; test_memory prints what
 * one idle handshaken tls_conn holds and checks it stays small, also after
 * 1 MiB went through it; test_out_of_memory makes one OpenSSL allocation
 * fail in tls_conn_new or a server-side tls_conn_read, for allocation after
 * allocation of a handshake with a client certificate (NULL or TLS_FATAL
 * with a reason, or a working connection; ASan / valgrind find no leak).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "server/tls.h"

/* ------------------------------------------------------------------ */
/* OpenSSL allocations, counted                                        */
/* ------------------------------------------------------------------ */

static long live_bytes; /* usable bytes OpenSSL holds now */
static int counting;    /* CRYPTO_set_mem_functions took effect */
static int in_server;   /* inside a tls_conn call (server_read, or a test) */
static long server_allocs; /* OpenSSL allocations of 4 KiB or more made
                              while in_server (a record buffer is ~17 KiB;
                              OpenSSL 3.0 also makes 40-byte ones per record,
                              packet.c, which are not buffers) */

/* Allocation failure injection: while inject_on, the allocation after
 * fail_countdown more fails (once). */
static int inject_on;
static long fail_countdown = -1;

static int inject_fail(void) {
    if (!inject_on || fail_countdown < 0) return 0;
    return fail_countdown-- == 0;
}

static void *cm_malloc(size_t n, const char *file, int line) {
    (void)file;
    (void)line;
    if (inject_fail()) return NULL;
    void *p = malloc(n);
    if (p) live_bytes += (long)malloc_usable_size(p);
    server_allocs += in_server && n >= 4096;
    return p;
}

static void *cm_realloc(void *p, size_t n, const char *file, int line) {
    (void)file;
    (void)line;
    long old = p ? (long)malloc_usable_size(p) : 0;
    if (n && inject_fail()) return NULL;
    server_allocs += in_server && n >= 4096;
    void *q = realloc(p, n);
    if (q) live_bytes += (long)malloc_usable_size(q) - old;
    else if (n == 0) live_bytes -= old;
    return q;
}

static void cm_free(void *p, const char *file, int line) {
    (void)file;
    (void)line;
    if (p) live_bytes -= (long)malloc_usable_size(p);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Certificates                                                        */
/* ------------------------------------------------------------------ */

typedef struct ident {
    X509 *x;
    EVP_PKEY *k;
} ident;

static struct pki {
    char dir[64];
    ident ca, rogue, server, alice, mallory;
    char ca_pem[128], rogue_pem[128], server_pem[128], server_key[128];
    char alice_key[128], garbage[128], empty[128], enc_key[128];
    char missing[128], unreadable[128];
    tls_server *plain;  /* no client certificates */
    tls_server *mutual; /* --tls-ca ca.pem */
} P;

static void add_ext(X509 *x, X509V3_CTX *v, int nid, const char *value) {
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A P-256 key and a certificate for it, signed by issuer (NULL: itself). */
static ident make_ident(const char *cn, const ident *issuer, int ca,
                        const char *san, const char *eku) {
    static long serial = 1;
    ident id;
    id.k = EVP_EC_gen("P-256");
    assert_non_null(id.k);
    id.x = X509_new();
    assert_non_null(id.x);
    assert_int_equal(X509_set_version(id.x, X509_VERSION_3), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(id.x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(id.x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(id.x), 86400);
    assert_int_equal(X509_set_pubkey(id.x, id.k), 1);
    X509_NAME *name = X509_get_subject_name(id.x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)cn, -1,
                                                -1, 0), 1);
    assert_int_equal(X509_set_issuer_name(id.x, issuer ? X509_get_subject_name(
                                                             issuer->x)
                                                       : name), 1);
    X509V3_CTX v;
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, issuer ? issuer->x : id.x, id.x, NULL, NULL, 0);
    add_ext(id.x, &v, NID_basic_constraints,
            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(id.x, &v, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(id.x, &v, NID_subject_key_identifier, "hash");
    if (san) add_ext(id.x, &v, NID_subject_alt_name, san);
    if (eku) add_ext(id.x, &v, NID_ext_key_usage, eku);
    assert_true(X509_sign(id.x, issuer ? issuer->k : id.k, EVP_sha256()) > 0);
    return id;
}

static void ident_free(ident *id) {
    X509_free(id->x);
    EVP_PKEY_free(id->k);
}

static void path(char *out, const char *name) {
    snprintf(out, 128, "%s/%s", P.dir, name);
}

static void write_file(const char *p, const char *text) {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void write_cert(const char *p, X509 *x) {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    assert_int_equal(fclose(f), 0);
}

static void write_key(const char *p, EVP_PKEY *k, const char *pass) {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, pass ? EVP_aes_128_cbc() : NULL,
                                          (const unsigned char *)pass,
                                          pass ? (int)strlen(pass) : 0, NULL,
                                          NULL), 1);
    assert_int_equal(fclose(f), 0);
}

static int pki_setup(void **state) {
    (void)state;
    snprintf(P.dir, sizeof P.dir, "/tmp/chat-tls-XXXXXX");
    assert_non_null(mkdtemp(P.dir));
    P.ca = make_ident("Test CA", NULL, 1, NULL, NULL);
    P.rogue = make_ident("Rogue CA", NULL, 1, NULL, NULL);
    P.server = make_ident("localhost", &P.ca, 0,
                          "DNS:localhost,IP:127.0.0.1", "serverAuth");
    P.alice = make_ident("alice", &P.ca, 0, NULL, "clientAuth");
    P.mallory = make_ident("mallory", &P.rogue, 0, NULL, "clientAuth");
    path(P.ca_pem, "ca.pem");
    path(P.rogue_pem, "rogue.pem");
    path(P.server_pem, "server.pem");
    path(P.server_key, "server.key");
    path(P.alice_key, "alice.key");
    path(P.garbage, "garbage.pem");
    path(P.empty, "empty.pem");
    path(P.enc_key, "enc.key");
    path(P.missing, "missing.pem");
    path(P.unreadable, "unreadable.pem");
    write_cert(P.ca_pem, P.ca.x);
    write_cert(P.rogue_pem, P.rogue.x);
    write_cert(P.server_pem, P.server.x);
    write_key(P.server_key, P.server.k, NULL);
    write_key(P.alice_key, P.alice.k, NULL);
    write_key(P.enc_key, P.server.k, "secret");
    write_file(P.garbage, "this is not PEM\n");
    write_file(P.empty, "");
    write_file(P.unreadable, "x");
    assert_int_equal(chmod(P.unreadable, 0), 0);
    char err[256] = "";
    P.plain = tls_server_new(P.server_pem, P.server_key, NULL, err, sizeof err);
    if (!P.plain) fail_msg("tls_server_new: %s", err);
    P.mutual = tls_server_new(P.server_pem, P.server_key, P.ca_pem, err,
                              sizeof err);
    if (!P.mutual) fail_msg("tls_server_new with CA: %s", err);
    return 0;
}

static int pki_teardown(void **state) {
    (void)state;
    tls_server_free(P.plain);
    tls_server_free(P.mutual);
    ident_free(&P.ca);
    ident_free(&P.rogue);
    ident_free(&P.server);
    ident_free(&P.alice);
    ident_free(&P.mallory);
    chmod(P.unreadable, 0600);
    rm_dir(P.dir);
    return 0;
}

/* ------------------------------------------------------------------ */
/* A client on memory BIOs, and the pump                               */
/* ------------------------------------------------------------------ */

typedef struct copts {
    const ident *trust; /* CA the client verifies the server with (NULL: none) */
    const char *host;   /* expected DNS name */
    const char *ip;     /* expected IP address */
    const ident *cert;  /* client certificate */
    int max_version;    /* 0: default */
    SSL_SESSION *resume; /* a session to resume (from a ticket) */
} copts;

typedef struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rd; /* server -> client */
    BIO *wr; /* client -> server */
} client;

static void client_init(client *c, const copts *o) {
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(c->ctx);
    if (o->trust) {
        assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(c->ctx),
                                             o->trust->x), 1);
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    if (o->cert) {
        assert_int_equal(SSL_CTX_use_certificate(c->ctx, o->cert->x), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(c->ctx, o->cert->k), 1);
    }
    if (o->max_version) {
        SSL_CTX_set_security_level(c->ctx, 0); /* let it offer TLS 1.1 */
        assert_int_equal(SSL_CTX_set_cipher_list(c->ctx, "ALL:@SECLEVEL=0"), 1);
        assert_int_equal(SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION), 1);
        assert_int_equal(SSL_CTX_set_max_proto_version(c->ctx, o->max_version), 1);
    }
    c->ssl = SSL_new(c->ctx);
    assert_non_null(c->ssl);
    if (o->host) {
        assert_int_equal(SSL_set1_host(c->ssl, o->host), 1);
        SSL_set_tlsext_host_name(c->ssl, o->host);
    }
    if (o->resume) assert_int_equal(SSL_set_session(c->ssl, o->resume), 1);
    if (o->ip)
        assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
                                                       o->ip), 1);
    c->rd = BIO_new(BIO_s_mem());
    c->wr = BIO_new(BIO_s_mem());
    assert_non_null(c->rd);
    assert_non_null(c->wr);
    BIO_set_mem_eof_return(c->rd, -1); /* empty: retry, not EOF */
    SSL_set_bio(c->ssl, c->rd, c->wr);
    SSL_set_connect_state(c->ssl);
}

static void client_free(client *c) {
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    ERR_clear_error(); /* the client's own failures, if any */
}

typedef struct xfer {
    size_t chunk;      /* bytes per feed / take (0: up to 64 KiB) */
    uint32_t rng;      /* nonzero: random chunk sizes in 1..chunk */
    size_t rcap;       /* plaintext read size on the server (0: 16 KiB) */
    int take_buf;      /* server -> client through tls_conn_take_buf */
    int lend;          /* client -> server through tls_conn_lend/settle */
    buf srv;           /* plaintext the server read */
    buf cli;           /* plaintext the client read */
    long srv_last;     /* the server's last read result <= 0 */
    int cli_err;       /* the client's last SSL error other than WANT_READ */
    int cli_closed;    /* the client got close_notify */
    char cli_why[128]; /* the client's first error reason */
} xfer;

static void client_failed(xfer *l, int e) {
    l->cli_err = e;
    unsigned long x = ERR_peek_error();
    if (x && !l->cli_why[0])
        ERR_error_string_n(x, l->cli_why, sizeof l->cli_why);
}

static uint8_t scratch[1 << 16];
static uint8_t plain[1 << 16];

static size_t next_chunk(xfer *l) {
    size_t max = l->chunk ? l->chunk : sizeof scratch;
    if (max > sizeof scratch) max = sizeof scratch;
    return l->rng ? 1 + rng_next(&l->rng) % max : max;
}

static void server_read(tls_conn *t, xfer *l) {
    for (;;) {
        size_t cap = l->rcap ? l->rcap : 16384;
        inject_on = in_server = 1;
        long r = tls_conn_read(t, plain, cap);
        inject_on = in_server = 0;
        if (r <= 0) {
            l->srv_last = r;
            return;
        }
        assert_true((size_t)r <= cap);
        assert_int_equal(buf_append(&l->srv, plain, (size_t)r, SIZE_MAX / 2), 0);
    }
}

static void client_read(client *c, xfer *l) {
    if (!SSL_is_init_finished(c->ssl)) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e != SSL_ERROR_WANT_READ) client_failed(l, e);
            ERR_clear_error();
            return;
        }
    }
    for (;;) {
        size_t n = 0;
        if (SSL_read_ex(c->ssl, plain, sizeof plain, &n) == 1) {
            assert_int_equal(buf_append(&l->cli, plain, n, SIZE_MAX / 2), 0);
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_ZERO_RETURN) l->cli_closed = 1;
        else if (e != SSL_ERROR_WANT_READ) client_failed(l, e);
        ERR_clear_error();
        return;
    }
}

/* Move bytes both ways until neither side has anything left to say. */
static void pump(client *c, tls_conn *t, xfer *l) {
    for (int progress = 1; progress;) {
        progress = 0;
        client_read(c, l); /* starts or continues the client's handshake */
        while (BIO_ctrl_pending(c->wr)) {
            int n = BIO_read(c->wr, scratch, (int)next_chunk(l));
            assert_true(n > 0);
            if (l->lend) { /* read in place; a partial record is kept */
                tls_conn_lend(t, scratch, (size_t)n);
                server_read(t, l);
                assert_int_equal(tls_conn_settle(t), 0);
            } else {
                assert_int_equal(tls_conn_feed(t, scratch, (size_t)n), 0);
                server_read(t, l);
            }
            progress = 1;
        }
        if (l->take_buf && tls_conn_pending(t)) {
            buf b = {0};
            size_t n = tls_conn_pending(t);
            assert_int_equal(tls_conn_take_buf(t, &b, SIZE_MAX / 2), 0);
            assert_int_equal(b.len, n);
            assert_int_equal(tls_conn_pending(t), 0);
            assert_int_equal(BIO_write(c->rd, b.data, (int)b.len), (int)b.len);
            buf_free(&b);
            client_read(c, l);
            progress = 1;
        }
        while (tls_conn_pending(t)) {
            size_t before = tls_conn_pending(t);
            size_t n = tls_conn_take(t, scratch, next_chunk(l));
            assert_true(n > 0);
            assert_int_equal(tls_conn_pending(t), before - n);
            assert_int_equal(BIO_write(c->rd, scratch, (int)n), (int)n);
            client_read(c, l);
            progress = 1;
        }
    }
}

static void xfer_free(xfer *l) {
    buf_free(&l->srv);
    buf_free(&l->cli);
}

/* A tls_conn on s and a client with options o, after pump(). */
static tls_conn *connect_pair(tls_server *s, client *c, const copts *o,
                              xfer *l) {
    tls_conn *t = tls_conn_new(s);
    assert_non_null(t);
    assert_int_equal(tls_conn_handshake_done(t), 0);
    client_init(c, o);
    pump(c, t, l);
    return t;
}

static void assert_established(client *c, tls_conn *t, xfer *l) {
    if (l->srv_last < 0)
        fail_msg("server: %s: %s", tls_code_name((int)l->srv_last),
                 tls_conn_reason(t));
    assert_int_equal(l->cli_err, 0);
    assert_true(tls_conn_handshake_done(t));
    assert_true(SSL_is_init_finished(c->ssl));
    assert_int_equal(tls_conn_pending(t), 0);
    assert_string_equal(tls_conn_reason(t), "");
}

static void assert_refused(tls_conn *t, xfer *l, const char *why) {
    assert_int_equal(l->srv_last, TLS_FATAL);
    assert_false(tls_conn_handshake_done(t));
    if (!strstr(tls_conn_reason(t), why))
        fail_msg("reason '%s' lacks '%s'", tls_conn_reason(t), why);
    print_message("refused: %s\n", tls_conn_reason(t));
    /* Sticky, and nothing left in the error queue. */
    assert_int_equal(tls_conn_read(t, plain, sizeof plain), TLS_FATAL);
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"x", 1), TLS_FATAL);
    assert_int_equal(ERR_peek_error(), 0);
}

static const copts verify_host = {&P.ca, "localhost", NULL, NULL, 0, NULL};

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_handshake_round_trip(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    tls_conn *t = tls_conn_new(P.plain);
    assert_non_null(t);
    /* Before the handshake: nothing to read, writes are held back. */
    assert_int_equal(tls_conn_read(t, plain, sizeof plain), 0);
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"early", 5), TLS_AGAIN);
    assert_int_equal(tls_conn_pending(t), 0);
    tls_conn_shutdown(t); /* ignored before the handshake */
    assert_int_equal(tls_conn_pending(t), 0);
    client_init(&c, &verify_host);
    pump(&c, t, &l);
    assert_established(&c, t, &l);
    assert_int_equal(SSL_get_verify_result(c.ssl), X509_V_OK);
    assert_string_equal(tls_conn_version(t), "TLSv1.3");
    assert_null(tls_conn_peer_cn(t));
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"", 0), 0);
    assert_int_equal(tls_conn_pending(t), 0);

    assert_int_equal(SSL_write(c.ssl, "hello server", 12), 12);
    pump(&c, t, &l);
    assert_int_equal(l.srv.len, 12);
    assert_memory_equal(l.srv.data, "hello server", 12);
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"hello client", 12), 0);
    assert_true(tls_conn_pending(t) > 12);
    pump(&c, t, &l);
    assert_int_equal(l.cli.len, 12);
    assert_memory_equal(l.cli.data, "hello client", 12);
    assert_int_equal(l.cli_err, 0);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

static void test_tls12(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    copts o = verify_host;
    o.max_version = TLS1_2_VERSION;
    tls_conn *t = connect_pair(P.plain, &c, &o, &l);
    assert_established(&c, t, &l);
    assert_string_equal(tls_conn_version(t), "TLSv1.2");
    /* ECDHE + AEAD only. */
    const char *suite = SSL_get_cipher_name(c.ssl);
    if (!strstr(suite, "ECDHE") ||
        (!strstr(suite, "GCM") && !strstr(suite, "CHACHA20")))
        fail_msg("TLS 1.2 suite %s", suite);
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"v12", 3), 0);
    pump(&c, t, &l);
    assert_int_equal(l.cli.len, 3);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

static void test_verify_ip_and_wrong_name(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    copts o = {&P.ca, NULL, "127.0.0.1", NULL, 0, NULL};
    tls_conn *t = connect_pair(P.plain, &c, &o, &l);
    assert_established(&c, t, &l);
    assert_int_equal(SSL_get_verify_result(c.ssl), X509_V_OK);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);

    /* A client expecting another name refuses the certificate. */
    xfer l2 = {0};
    copts wrong = {&P.ca, "chat.example.com", NULL, NULL, 0, NULL};
    t = connect_pair(P.plain, &c, &wrong, &l2);
    assert_int_equal(SSL_get_verify_result(c.ssl),
                     X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_not_equal(l2.cli_err, 0);
    assert_refused(t, &l2, "alert");
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l2);
}

static uint8_t *pattern(size_t n, uint32_t seed) {
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rng_next(&seed);
    return p;
}

static void test_one_mib_awkward(void **state) {
    (void)state;
    const size_t N = 1u << 20;
    uint8_t *up = pattern(N, 7), *down = pattern(N, 11);
    for (int mode = 0; mode < 4; mode++) { /* take_buf, lend: each way */
        client c;
        xfer l = {.chunk = 20000, .rng = 12345u + (uint32_t)mode,
                  .rcap = 777, .take_buf = mode & 1, .lend = mode >> 1};
        tls_conn *t = connect_pair(P.plain, &c, &verify_host, &l);
        assert_established(&c, t, &l);
        /* Client -> server: in several writes of awkward sizes. */
        static const size_t parts[] = {1, 16383, 16385, 5, 70001, 1};
        size_t off = 0;
        for (size_t i = 0; off < N; i++) {
            size_t k = i < sizeof parts / sizeof parts[0] ? parts[i] : 99991;
            if (k > N - off) k = N - off;
            size_t w = 0;
            assert_int_equal(SSL_write_ex(c.ssl, up + off, k, &w), 1);
            assert_int_equal(w, k);
            off += k;
            if (i % 3 == 0) pump(&c, t, &l);
        }
        pump(&c, t, &l);
        assert_int_equal(l.srv.len, N);
        assert_memory_equal(l.srv.data, up, N);
        /* Server -> client: one write of 1 MiB, then a few small ones. */
        assert_int_equal(tls_conn_write(t, down, N - 3), 0);
        assert_true(tls_conn_pending(t) > N - 3);
        for (int i = 0; i < 3; i++)
            assert_int_equal(tls_conn_write(t, down + N - 3 + i, 1), 0);
        pump(&c, t, &l);
        assert_int_equal(l.cli_err, 0);
        assert_int_equal(l.cli.len, N);
        assert_memory_equal(l.cli.data, down, N);
        assert_int_equal(tls_conn_pending(t), 0);
        tls_conn_free(t);
        client_free(&c);
        xfer_free(&l);
    }
    free(up);
    free(down);
}

static void test_byte_by_byte(void **state) {
    (void)state;
    for (int lend = 0; lend < 2; lend++) {
    client c;
    xfer l = {.chunk = 1, .rcap = 1, .lend = lend};
    tls_conn *t = connect_pair(P.plain, &c, &verify_host, &l);
    assert_established(&c, t, &l);
    assert_int_equal(SSL_write(c.ssl, "ping, one byte at a time", 24), 24);
    pump(&c, t, &l);
    assert_int_equal(l.srv.len, 24);
    assert_memory_equal(l.srv.data, "ping, one byte at a time", 24);
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"pong", 4), 0);
    pump(&c, t, &l);
    assert_int_equal(l.cli.len, 4);
    assert_memory_equal(l.cli.data, "pong", 4);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
    }
}

static void feed_plaintext(const void *p, size_t n, const char *why) {
    tls_conn *t = tls_conn_new(P.plain);
    assert_non_null(t);
    assert_int_equal(tls_conn_feed(t, p, n), 0);
    xfer l = {0};
    server_read(t, &l);
    assert_int_equal(l.srv.len, 0);
    assert_refused(t, &l, why);
    tls_conn_free(t);
}

/* Bytes fed after TLS_FATAL or TLS_CLOSED are dropped, not kept: the heap
 * does not grow by the megabyte fed (glibc's count; 0 under ASan). */
static void assert_feed_dropped(tls_conn *t, long expect) {
    static uint8_t junk[1 << 16];
    size_t heap = mallinfo2().uordblks;
    for (int i = 0; i < 16; i++)
        assert_int_equal(tls_conn_feed(t, junk, sizeof junk), 0);
    assert_true(mallinfo2().uordblks < heap + 65536);
    assert_int_equal(tls_conn_read(t, plain, sizeof plain), expect);
}

static void test_plaintext_refused(void **state) {
    (void)state;
    static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    feed_plaintext(http, sizeof http - 1, "http request on TLS port");
    /* A chat frame header (13 bytes: length, sender, receiver, type). */
    static const uint8_t frame[] = {0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 1,
                                    'h', 'e', 'l', 'l', 'o'};
    feed_plaintext(frame, sizeof frame, "wrong version number");
    /* Arriving a byte at a time changes nothing. */
    tls_conn *t = tls_conn_new(P.plain);
    assert_non_null(t);
    xfer l = {0};
    for (size_t i = 0; i < sizeof http - 1 && l.srv_last == 0; i++) {
        assert_int_equal(tls_conn_feed(t, (const uint8_t *)http + i, 1), 0);
        server_read(t, &l);
    }
    assert_refused(t, &l, "http request on TLS port");
    assert_feed_dropped(t, TLS_FATAL);
    tls_conn_free(t);
}

/* TLS 1.2 renegotiation is refused (a warning alert), and the connection
 * is not broken by the attempt on the server's side. */
static void test_no_renegotiation(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    copts o = verify_host;
    o.max_version = TLS1_2_VERSION;
    tls_conn *t = connect_pair(P.plain, &c, &o, &l);
    assert_established(&c, t, &l);
    assert_int_equal(SSL_renegotiate(c.ssl), 1);
    assert_true(SSL_do_handshake(c.ssl) <= 0);
    ERR_clear_error();
    pump(&c, t, &l);
    /* The server answered with a no_renegotiation alert, which this
     * client treats as fatal (and tells the server so). */
    print_message("renegotiation: client: %s; server: %s\n", l.cli_why,
                  tls_conn_reason(t));
    assert_int_not_equal(l.cli_err, 0);
    assert_non_null(strstr(l.cli_why, "no renegotiation"));
    assert_int_equal(l.srv_last, TLS_FATAL);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

static void test_tls11_refused(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    copts o = {NULL, NULL, NULL, NULL, TLS1_1_VERSION, NULL};
    tls_conn *t = connect_pair(P.plain, &c, &o, &l);
    assert_int_not_equal(l.cli_err, 0);
    assert_false(SSL_is_init_finished(c.ssl));
    assert_refused(t, &l, "unsupported protocol");
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

static void test_client_cert_accepted(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    copts o = {&P.ca, "localhost", NULL, &P.alice, 0, NULL};
    tls_conn *t = connect_pair(P.mutual, &c, &o, &l);
    assert_established(&c, t, &l);
    assert_non_null(tls_conn_peer_cn(t));
    assert_string_equal(tls_conn_peer_cn(t), "alice");
    assert_int_equal(SSL_write(c.ssl, "from alice", 10), 10);
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"to alice", 8), 0);
    pump(&c, t, &l);
    assert_int_equal(l.srv.len, 10);
    assert_int_equal(l.cli.len, 8);
    assert_memory_equal(l.cli.data, "to alice", 8);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);

    /* TLS 1.2 too (the certificate request is in another message). */
    xfer l2 = {0};
    o.max_version = TLS1_2_VERSION;
    t = connect_pair(P.mutual, &c, &o, &l2);
    assert_established(&c, t, &l2);
    assert_string_equal(tls_conn_peer_cn(t), "alice");
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l2);
}

/* Stateless tickets: a second connection resumes the first's session
 * (no server-side cache), and the client certificate comes with it. */
static void test_resumption(void **state) {
    (void)state;
    for (int v = 0; v < 2; v++) {
        client c;
        xfer l = {0};
        copts o = {&P.ca, "localhost", NULL, &P.alice,
                   v ? TLS1_2_VERSION : 0, NULL};
        tls_conn *t = connect_pair(P.mutual, &c, &o, &l);
        assert_established(&c, t, &l);
        assert_int_equal(SSL_session_reused(c.ssl), 0);
        SSL_SESSION *sess = SSL_get1_session(c.ssl); /* ticket read by pump */
        assert_non_null(sess);
        assert_true(SSL_SESSION_is_resumable(sess));
        /* Freed without a close_notify, OpenSSL marks the session bad. */
        SSL_shutdown(c.ssl);
        pump(&c, t, &l);
        assert_int_equal(l.srv_last, TLS_CLOSED);
        assert_true(SSL_SESSION_is_resumable(sess));
        tls_conn_free(t);
        client_free(&c);
        xfer_free(&l);

        xfer l2 = {0};
        o.resume = sess;
        t = connect_pair(P.mutual, &c, &o, &l2);
        assert_established(&c, t, &l2);
        assert_int_equal(SSL_session_reused(c.ssl), 1);
        assert_string_equal(tls_conn_peer_cn(t), "alice");
        assert_int_equal(SSL_write(c.ssl, "resumed", 7), 7);
        pump(&c, t, &l2);
        assert_int_equal(l2.srv.len, 7);
        SSL_SESSION_free(sess);
        tls_conn_free(t);
        client_free(&c);
        xfer_free(&l2);
    }
}

static void test_client_without_cert(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    tls_conn *t = connect_pair(P.mutual, &c, &verify_host, &l);
    assert_refused(t, &l, "peer did not return a certificate");
    assert_null(tls_conn_peer_cn(t));
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

static void test_client_untrusted_cert(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    copts o = {&P.ca, "localhost", NULL, &P.mallory, 0, NULL};
    tls_conn *t = connect_pair(P.mutual, &c, &o, &l);
    assert_refused(t, &l, "client certificate not trusted");
    assert_null(tls_conn_peer_cn(t));
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

static void test_client_distrusts_server(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    copts o = {&P.rogue, "localhost", NULL, NULL, 0, NULL};
    tls_conn *t = connect_pair(P.plain, &c, &o, &l);
    assert_int_not_equal(l.cli_err, 0);
    assert_refused(t, &l, "unknown ca");
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

static void test_close_notify(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    tls_conn *t = connect_pair(P.plain, &c, &verify_host, &l);
    assert_established(&c, t, &l);
    /* The client says goodbye after one last message. */
    assert_int_equal(SSL_write(c.ssl, "bye", 3), 3);
    assert_true(SSL_shutdown(c.ssl) >= 0);
    pump(&c, t, &l);
    assert_int_equal(l.srv.len, 3);
    assert_int_equal(l.srv_last, TLS_CLOSED);
    assert_int_equal(tls_conn_read(t, plain, sizeof plain), TLS_CLOSED);
    assert_string_equal(tls_conn_reason(t), "");
    assert_feed_dropped(t, TLS_CLOSED);
    /* Half-closed: the server may still answer, then closes too. */
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"ok", 2), 0);
    tls_conn_shutdown(t);
    size_t p = tls_conn_pending(t);
    assert_true(p > 2);
    tls_conn_shutdown(t); /* once */
    assert_int_equal(tls_conn_pending(t), p);
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"late", 4), TLS_FATAL);
    pump(&c, t, &l);
    assert_int_equal(l.cli.len, 2);
    assert_true(l.cli_closed);
    assert_int_equal(SSL_shutdown(c.ssl), 1);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);

    /* Server first: the client sees close_notify. */
    xfer l2 = {0};
    t = connect_pair(P.plain, &c, &verify_host, &l2);
    assert_established(&c, t, &l2);
    tls_conn_shutdown(t);
    pump(&c, t, &l2);
    assert_true(l2.cli_closed);
    assert_int_equal(l2.cli_err, 0);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l2);
}

/* One connection's failure, or an error some other code left in the
 * thread's queue, does not show up in the next connection. */
static void test_error_isolation(void **state) {
    (void)state;
    tls_conn *bad = tls_conn_new(P.plain);
    assert_non_null(bad);
    assert_int_equal(tls_conn_feed(bad, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n",
                                   18), 0);
    assert_int_equal(tls_conn_read(bad, plain, sizeof plain), TLS_FATAL);
    assert_int_equal(ERR_peek_error(), 0);
    ERR_raise(ERR_LIB_SSL, SSL_R_HTTP_REQUEST); /* a stale error */
    client c;
    xfer l = {0};
    tls_conn *t = connect_pair(P.plain, &c, &verify_host, &l);
    assert_established(&c, t, &l);
    ERR_raise(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER);
    assert_int_equal(tls_conn_write(t, (const uint8_t *)"fine", 4), 0);
    ERR_raise(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER);
    assert_int_equal(SSL_write(c.ssl, "also fine", 9), 9);
    pump(&c, t, &l);
    assert_int_equal(l.srv.len, 9);
    assert_int_equal(l.cli.len, 4);
    assert_string_equal(tls_conn_reason(t), "");
    assert_string_equal(tls_conn_reason(bad), "http request on TLS port");
    tls_conn_free(bad);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

static void expect_load_error(const char *cert, const char *key, const char *ca,
                              const char *w1, const char *w2) {
    char err[512];
    memset(err, 'Z', sizeof err);
    tls_server *s = tls_server_new(cert, key, ca, err, sizeof err);
    if (s) {
        tls_server_free(s);
        fail_msg("accepted cert=%s key=%s ca=%s", cert, key, ca ? ca : "-");
    }
    assert_non_null(memchr(err, '\0', sizeof err));
    if (!strstr(err, w1)) fail_msg("'%s' lacks '%s'", err, w1);
    if (w2 && !strstr(err, w2)) fail_msg("'%s' lacks '%s'", err, w2);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_server_new_errors(void **state) {
    (void)state;
    expect_load_error(P.missing, P.server_key, NULL, "--tls-cert", P.missing);
    expect_load_error(P.missing, P.server_key, NULL, "No such file", NULL);
    expect_load_error(P.server_pem, P.missing, NULL, "--tls-key", P.missing);
    expect_load_error(P.server_pem, P.server_key, P.missing, "--tls-ca",
                      P.missing);
    expect_load_error(P.garbage, P.server_key, NULL, "--tls-cert", P.garbage);
    expect_load_error(P.garbage, P.server_key, NULL, "no PEM certificate", NULL);
    expect_load_error(P.empty, P.server_key, NULL, "--tls-cert", P.empty);
    expect_load_error(P.server_pem, P.garbage, NULL, "--tls-key", P.garbage);
    expect_load_error(P.server_pem, P.garbage, NULL, "no PEM private key", NULL);
    expect_load_error(P.server_pem, P.server_pem, NULL, "--tls-key",
                      P.server_pem); /* a certificate where the key should be */
    expect_load_error(P.server_pem, P.enc_key, NULL, "encrypted", P.enc_key);
    expect_load_error(P.server_pem, P.alice_key, NULL, "does not match",
                      P.alice_key);
    expect_load_error(P.server_pem, P.server_key, P.garbage, "--tls-ca",
                      P.garbage);
    expect_load_error(P.server_pem, P.server_key, P.empty, "--tls-ca", P.empty);
    if (geteuid() != 0) /* root reads anything */
        expect_load_error(P.unreadable, P.server_key, NULL, "Permission denied",
                          P.unreadable);
    /* A truncated buffer is still a terminated string. */
    char small[16];
    assert_null(tls_server_new(P.missing, P.server_key, NULL, small,
                               sizeof small));
    assert_int_equal(strlen(small), sizeof small - 1);
}

/* Bytes of OpenSSL memory that tls_conn_free(t) releases once idle (the
 * server's cron has called tls_conn_shrink twice: the first call after
 * traffic keeps the record buffers a busy connection uses, the second
 * frees them). */
static long freed_by(tls_conn *t) {
    /* (what they freed is what is not counted) */
    (void)tls_conn_shrink(t);
    (void)tls_conn_shrink(t);
    long before = live_bytes;
    tls_conn_free(t);
    return before - live_bytes;
}

/* What one idle, handshaken tls_conn holds: the OpenSSL memory it frees,
 * plus its own two buffers, which are unallocated when empty (pending 0 and
 * every fed byte read). */
static void test_memory(void **state) {
    (void)state;
    if (!counting) skip();
    long before = live_bytes;
    tls_conn *t = tls_conn_new(P.plain);
    assert_non_null(t);
    long fresh = live_bytes - before;
    tls_conn_free(t);

    client c;
    xfer l = {0};
    t = connect_pair(P.plain, &c, &verify_host, &l);
    assert_established(&c, t, &l);
    long idle = freed_by(t);
    client_free(&c);
    xfer_free(&l);

    /* A megabyte each way, then idle again: nothing kept from it. */
    xfer l2 = {0};
    t = connect_pair(P.plain, &c, &verify_host, &l2);
    assert_established(&c, t, &l2);
    uint8_t *big = pattern(1u << 20, 3);
    assert_int_equal(tls_conn_write(t, big, 1u << 20), 0);
    size_t w = 0;
    assert_int_equal(SSL_write_ex(c.ssl, big, 1u << 20, &w), 1);
    pump(&c, t, &l2);
    free(big);
    assert_int_equal(l2.srv.len, 1u << 20);
    assert_int_equal(l2.cli.len, 1u << 20);
    assert_int_equal(tls_conn_pending(t), 0);
    long after_mib = freed_by(t);
    client_free(&c);
    xfer_free(&l2);

    /* With a verified client certificate (kept in the session). */
    xfer l3 = {0};
    t = connect_pair(P.mutual, &c,
                     &(copts){&P.ca, "localhost", NULL, &P.alice, 0, NULL}, &l3);
    assert_established(&c, t, &l3);
    long mutual = freed_by(t);
    client_free(&c);
    xfer_free(&l3);

    print_message("tls_conn memory (TLS 1.3, X25519, AES-GCM, P-256 "
                  "certificates): new %ld bytes; idle after the handshake "
                  "%ld; idle after 1 MiB each way %ld; idle with a verified "
                  "client certificate %ld\n", fresh, idle, after_mib, mutual);
    /* Without tls_conn_shrink's SSL_free_buffers an idle one holds ~46 KiB. */
    assert_true(idle > 0 && idle < 20 * 1024);
    assert_true(after_mib <= idle + 256);
    assert_true(mutual > 0 && mutual < 28 * 1024);
}

/* A busy connection keeps OpenSSL's record buffers from one message to the
 * next, as a plaintext one keeps its buffers: once warm, reading and
 * writing allocate no buffer (SSL_MODE_RELEASE_BUFFERS freed and allocated
 * them on every call). tls_conn_shrink, the cron's call, gives them back
 * after a period without traffic, and the next message still goes
 * through. */
static void test_busy_keeps_buffers(void **state) {
    (void)state;
    if (!counting) skip();
    client c;
    xfer l = {0};
    tls_conn *t = connect_pair(P.plain, &c, &verify_host, &l);
    assert_established(&c, t, &l);
    uint8_t msg[100];
    memset(msg, 'm', sizeof msg);
    long warm = 0;
    for (int i = 0; i < 20; i++) {
        if (i == 1) warm = server_allocs; /* after the first exchange */
        size_t w = 0;
        assert_int_equal(SSL_write_ex(c.ssl, msg, sizeof msg, &w), 1);
        in_server = 1;
        assert_int_equal(tls_conn_write(t, msg, sizeof msg), 0);
        in_server = 0;
        pump(&c, t, &l);
    }
    assert_int_equal(l.srv.len, 20 * sizeof msg);
    assert_int_equal(l.cli.len, 20 * sizeof msg);
    print_message("OpenSSL buffers allocated in 19 busy exchanges: %ld\n",
                  server_allocs - warm);
    assert_int_equal(server_allocs - warm, 0);

    /* Busy in the period before: the cron's first call keeps them. */
    long held = live_bytes;
    assert_true(tls_conn_shrink(t) < 32 * 1024);
    assert_true(held - live_bytes < 1024);
    /* A period with no read or write: the next call frees them. */
    held = live_bytes;
    assert_true(tls_conn_shrink(t) > 32 * 1024);
    print_message("tls_conn_shrink gave back %ld bytes of OpenSSL memory\n",
                  held - live_bytes);
    assert_true(held - live_bytes > 32 * 1024); /* both record buffers */
    size_t w = 0;
    assert_int_equal(SSL_write_ex(c.ssl, msg, sizeof msg, &w), 1);
    assert_int_equal(tls_conn_write(t, msg, sizeof msg), 0);
    pump(&c, t, &l);
    assert_int_equal(l.srv.len, 21 * sizeof msg);
    assert_int_equal(l.cli.len, 21 * sizeof msg);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

/* A record half read when the connection goes quiet: tls_conn_shrink
 * leaves OpenSSL's buffers alone (they hold it), and the rest of the
 * record completes it. (Freeing them then was CVE-2024-4741 in OpenSSL
 * before 3.0.14: a use after free, which ASan would report here.) */
static void test_shrink_keeps_a_partial_record(void **state) {
    (void)state;
    client c;
    xfer l = {0};
    tls_conn *t = connect_pair(P.plain, &c, &verify_host, &l);
    assert_established(&c, t, &l);
    static const char msg[] = "half now, half after the cron";
    size_t w = 0;
    assert_int_equal(SSL_write_ex(c.ssl, msg, sizeof msg, &w), 1);
    int n = BIO_read(c.wr, scratch, sizeof scratch);
    assert_true(n > 10);
    assert_int_equal(tls_conn_feed(t, scratch, (size_t)n / 2), 0);
    assert_int_equal(tls_conn_read(t, plain, sizeof plain), 0); /* wants more */
    long held = live_bytes;
    (void)tls_conn_shrink(t); /* (a read in this period) */
    (void)tls_conn_shrink(t); /* a quiet period: the record still pending */
    if (counting) assert_true(held - live_bytes < 1024);
    assert_int_equal(tls_conn_feed(t, scratch + n / 2, (size_t)(n - n / 2)), 0);
    assert_int_equal(tls_conn_read(t, plain, sizeof plain), (long)sizeof msg);
    assert_memory_equal(plain, msg, sizeof msg);
    tls_conn_free(t);
    client_free(&c);
    xfer_free(&l);
}

/* OpenSSL running out of memory at one allocation after another, in
 * tls_conn_new and in every tls_conn_read of a handshake and a message:
 * either NULL, TLS_FATAL with a reason, or (when OpenSSL recovers) a
 * working connection; never a crash or a leak (ASan / valgrind). */
static void test_out_of_memory(void **state) {
    (void)state;
    if (!counting) skip();
    int fatal = 0, ok = 0, nulls = 0;
    /* Every one of the first 300 allocations, then every 61st: a
     * handshake makes ~7000 (OpenSSL 3 fetches its algorithms). */
    for (long k = 0;; k += k < 300 ? 1 : 61) {
        fail_countdown = k;
        inject_on = 1;
        tls_conn *t = tls_conn_new(P.mutual);
        inject_on = 0;
        if (!t) {
            nulls++;
            continue;
        }
        client c;
        xfer l = {0};
        client_init(&c, &(copts){&P.ca, "localhost", NULL, &P.alice, 0, NULL});
        pump(&c, t, &l);
        if (tls_conn_handshake_done(t) && l.srv_last == 0) {
            assert_int_equal(SSL_write(c.ssl, "still here", 10), 10);
            pump(&c, t, &l);
        }
        int injected = fail_countdown < 0;
        fail_countdown = -1;
        if (l.srv_last == TLS_FATAL) {
            assert_true(tls_conn_reason(t)[0] != '\0');
            assert_int_equal(ERR_peek_error(), 0);
            fatal++;
        } else if (l.srv.len == 10) {
            ok++;
        }
        tls_conn_free(t);
        client_free(&c);
        xfer_free(&l);
        if (!injected) break; /* k passed the last allocation: done */
    }
    print_message("allocation failures injected: %d NULL, %d fatal, %d "
                  "recovered\n", nulls, fatal, ok);
    assert_true(nulls > 0 && fatal > 0);
}

static void test_code_names(void **state) {
    (void)state;
    assert_string_equal(tls_code_name(0), "ok");
    assert_string_equal(tls_code_name(TLS_CLOSED), "closed");
    assert_string_equal(tls_code_name(TLS_FATAL), "fatal");
    assert_string_equal(tls_code_name(TLS_AGAIN), "handshake not complete");
    assert_string_equal(tls_code_name(TLS_ENOMEM), "out of memory");
    assert_string_equal(tls_code_name(-99), "unknown");
}

int main(void) {
    /* Before any OpenSSL allocation, or it refuses. */
    counting = CRYPTO_set_mem_functions(cm_malloc, cm_realloc, cm_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_round_trip),
        cmocka_unit_test(test_tls12),
        cmocka_unit_test(test_verify_ip_and_wrong_name),
        cmocka_unit_test(test_one_mib_awkward),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_plaintext_refused),
        cmocka_unit_test(test_no_renegotiation),
        cmocka_unit_test(test_tls11_refused),
        cmocka_unit_test(test_client_cert_accepted),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_client_without_cert),
        cmocka_unit_test(test_client_untrusted_cert),
        cmocka_unit_test(test_client_distrusts_server),
        cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_error_isolation),
        cmocka_unit_test(test_server_new_errors),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_busy_keeps_buffers),
        cmocka_unit_test(test_shrink_keeps_a_partial_record),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_code_names),
    };
    return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
