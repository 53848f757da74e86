/*
 * test_libchat_tls.c -- libchat over TLS (src/client/tls.c).
 *
 * The certificates are made at start-up with OpenSSL's X509 API into a
 * mkdtemp directory (removed at the end): a test CA, a server certificate
 * for 127.0.0.1 and localhost signed by it, a second CA nobody trusts and a
 * server certificate signed by that one, a certificate of the test CA for
 * other names (other.example, 10.9.8.7), and a client certificate.
 *
 * The fake server lives in the test process and the same thread, as in
 * test_libchat.c: a listening socket on 127.0.0.1 port 0 and, once
 * accepted, an OpenSSL server session on the non-blocking socket. The test
 * alternates between the server's side (SSL_do_handshake, SSL_read,
 * SSL_write) and the client's (chat_run_once with a short poll), so waits
 * are conditions polled with an iteration cap, never sleeps. The reconnect
 * timer and the connect timeout run on a fake clock.
 *
 * Covers: a round trip (HELLO, WELCOME, data both ways, ACK both ways) with
 * the server's address verified, a DNS name verified and sent as SNI, an
 * untrusted CA (CHAT_ETLSVERIFY, reason, no retry), a wrong name and a
 * wrong address, a plaintext server (answers: CHAT_ETLS at once; silent:
 * CHAT_ETLS at the connect timeout), a client certificate required by the
 * server (presented when configured, the session refused otherwise; over
 * TLS 1.3 and 1.2), a server stopping at TLS 1.1 refused, bad
 * CA/certificate/key files (CHAT_ETLSCONF at chat_new, with a sentence),
 * resend of unacknowledged frames after a reconnect over TLS, and large
 * transfers both ways (partial writes, records left inside the library
 * make chat_next_timeout_ms 0).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "chat.h"
#include "proto/frame.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Certificates                                                        */
/* ------------------------------------------------------------------ */

static char g_dir[64];

static const char *path_of(const char *name) {
    static char p[8][256];
    static int i;
    i = (i + 1) % 8;
    snprintf(p[i], sizeof p[i], "%s/%s", g_dir, name);
    return p[i];
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for `key`, signed by issuer/issuer_key (self-signed when
 * NULL). san: subjectAltName value or NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, int is_ca,
                       X509 *issuer, EVP_PKEY *issuer_key, long serial) {
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(x, &ctx, NID_key_usage, is_ca ? "critical,keyCertSign,cRLSign"
                                          : "critical,digitalSignature");
    if (!is_ca) add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    if (san) add_ext(x, &ctx, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_cert(const char *name, X509 *x) {
    FILE *f = fopen(path_of(name), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k) {
    FILE *f = fopen(path_of(name), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* A leaf signed by (ca, ca_key): name.pem and name.key. */
static void make_leaf(const char *name, const char *cn, const char *san, X509 *ca,
                      EVP_PKEY *ca_key, long serial) {
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = make_cert(k, cn, san, 0, ca, ca_key, serial);
    char n[64];
    snprintf(n, sizeof n, "%s.pem", name);
    write_cert(n, x);
    snprintf(n, sizeof n, "%s.key", name);
    write_key(n, k);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int make_certs(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/chat-tls-test-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
    if (!ca_key || !other_key) return -1;
    X509 *ca = make_cert(ca_key, "chat test CA", NULL, 1, NULL, NULL, 1);
    X509 *other = make_cert(other_key, "untrusted CA", NULL, 1, NULL, NULL, 2);
    write_cert("ca.pem", ca);
    write_cert("other-ca.pem", other);
    make_leaf("srv", "chat server", "IP:127.0.0.1,DNS:localhost", ca, ca_key, 10);
    make_leaf("untrusted", "chat server", "IP:127.0.0.1,DNS:localhost", other, other_key, 11);
    make_leaf("wrong", "somewhere else", "IP:10.9.8.7,DNS:other.example", ca, ca_key, 12);
    make_leaf("client", "user42", NULL, ca, ca_key, 13);
    FILE *f = fopen(path_of("garbage.pem"), "w");
    if (!f) return -1;
    fputs("this is not PEM\n", f);
    fclose(f);
    X509_free(ca);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    return 0;
}

static int remove_certs(void **state) {
    (void)state;
    rm_dir(g_dir);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Recording callbacks and the fake clock                              */
/* ------------------------------------------------------------------ */

typedef struct rec {
    uint64_t now;
    int msgs;
    uint64_t msg_bytes;
    uint32_t last_sender;
    char last_body[64];
    uint64_t acked;
    int connected, disconnected, disc_err;
    char disc_tls[256]; /* chat_tls_error() inside on_disconnected */
} rec;

static uint64_t fake_clock(void *ud) { return ((rec *)ud)->now; }

static void on_message(chat_client *c, uint32_t sender, int type, const void *body,
                       uint32_t len, void *ud) {
    (void)c; (void)type;
    rec *r = ud;
    r->msgs++;
    r->msg_bytes += len;
    r->last_sender = sender;
    size_t n = len < sizeof r->last_body - 1 ? len : sizeof r->last_body - 1;
    memcpy(r->last_body, body, n);
    r->last_body[n] = 0;
}

static void on_acked(chat_client *c, uint64_t seq, void *ud) {
    (void)c;
    ((rec *)ud)->acked = seq;
}

static void on_connected(chat_client *c, void *ud) {
    (void)c;
    ((rec *)ud)->connected++;
}

static void on_disconnected(chat_client *c, int err, void *ud) {
    rec *r = ud;
    r->disconnected++;
    r->disc_err = err;
    snprintf(r->disc_tls, sizeof r->disc_tls, "%s", chat_tls_error(c));
}

typedef struct copts {
    const char *ca, *name, *cert, *key;
    int reconnect;
} copts;

static chat_client *client_new(rec *r, uint16_t port, const copts *t) {
    chat_tls_options tls = {0};
    tls.ca_file = t->ca;
    tls.server_name = t->name;
    tls.cert_file = t->cert;
    tls.key_file = t->key;
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = port;
    o.user = 42;
    o.reconnect = t->reconnect;
    o.tls = &tls;
    o.clock_ms = fake_clock;
    o.userdata = r;
    o.cb.on_message = on_message;
    o.cb.on_acked = on_acked;
    o.cb.on_connected = on_connected;
    o.cb.on_disconnected = on_disconnected;
    int err = 1;
    char msg[256];
    chat_client *c = chat_new_ex(&o, &err, msg, sizeof msg);
    if (!c) fail_msg("chat_new: %s: %s", chat_strerror(err), msg);
    assert_int_equal(err, 0);
    assert_string_equal(msg, "");
    assert_int_equal(chat_tls_enabled(c), 1);
    return c;
}

/* ------------------------------------------------------------------ */
/* Fake TLS server                                                     */
/* ------------------------------------------------------------------ */

typedef struct tsrv {
    int lfd, cfd;
    uint16_t port;
    SSL_CTX *ctx; /* NULL: a plaintext server */
    SSL *ssl;
} tsrv;

/* cert: "srv", "untrusted", "wrong" or NULL (plaintext). client_ca: when
 * set, the server requires a client certificate signed by it. */
static void tsrv_open(tsrv *s, const char *cert, const char *client_ca) {
    memset(s, 0, sizeof *s);
    s->cfd = -1;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    socklen_t sl = sizeof a;
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &sl), 0);
    s->port = ntohs(a.sin_port);
    if (!cert) return;
    char pem[64], key[64];
    snprintf(pem, sizeof pem, "%s.pem", cert);
    snprintf(key, sizeof key, "%s.key", cert);
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate_file(s->ctx, path_of(pem), SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(s->ctx, path_of(key), SSL_FILETYPE_PEM), 1);
    if (client_ca) {
        assert_int_equal(SSL_CTX_load_verify_locations(s->ctx, client_ca, NULL), 1);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
}

static void tsrv_drop(tsrv *s) {
    SSL_free(s->ssl);
    s->ssl = NULL;
    if (s->cfd >= 0) close(s->cfd);
    s->cfd = -1;
    ERR_clear_error();
}

static void tsrv_close(tsrv *s) {
    tsrv_drop(s);
    SSL_CTX_free(s->ctx);
    close(s->lfd);
}

/* Drive the client until its connection can be accepted; start the
 * server's TLS session on it (non-blocking). */
static void tsrv_accept(tsrv *s, chat_client *c) {
    for (int i = 0; i < 200; i++) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            s->cfd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            assert_true(s->cfd >= 0);
            if (s->ctx) {
                s->ssl = SSL_new(s->ctx);
                assert_non_null(s->ssl);
                SSL_set_fd(s->ssl, s->cfd);
                SSL_set_accept_state(s->ssl);
            }
            return;
        }
        chat_run_once(c, 0);
    }
    fail_msg("client never connected");
}

static void wait_fd(int fd, short ev) {
    struct pollfd p = {.fd = fd, .events = ev};
    poll(&p, 1, 10);
}

/* Run both sides of the handshake. 1 done, -1 the server's side failed. */
static int tsrv_handshake(tsrv *s, chat_client *c) {
    for (int i = 0; i < 500; i++) {
        ERR_clear_error();
        int r = SSL_do_handshake(s->ssl);
        if (r == 1) return 1;
        int e = SSL_get_error(s->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            return -1;
        }
        chat_run_once(c, 0);
        wait_fd(s->cfd, POLLIN);
    }
    fail_msg("TLS handshake did not end");
    return 0;
}

/* Read exactly n plaintext bytes from the client (driving it). */
static void tsrv_expect_any(tsrv *s, chat_client *c, uint8_t *got, size_t n) {
    size_t have = 0;
    for (int i = 0; i < 5000 && have < n; i++) {
        chat_run_once(c, 0);
        int r = SSL_read(s->ssl, got + have, (int)(n - have));
        if (r > 0) { have += (size_t)r; continue; }
        int e = SSL_get_error(s->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) break;
        wait_fd(s->cfd, POLLIN);
    }
    assert_int_equal(have, n);
}

/* Read exactly n plaintext bytes from the client (driving it), compare. */
static void tsrv_expect(tsrv *s, chat_client *c, const uint8_t *want, size_t n) {
    uint8_t *got = malloc(n ? n : 1);
    assert_non_null(got);
    tsrv_expect_any(s, c, got, n);
    assert_memory_equal(got, want, n);
    free(got);
}

/* The client has nothing more to send right now. */
static void tsrv_expect_nothing(tsrv *s, chat_client *c) {
    for (int i = 0; i < 3; i++) chat_run_once(c, 0);
    uint8_t b;
    int r = SSL_read(s->ssl, &b, 1);
    assert_true(r <= 0);
    assert_int_equal(SSL_get_error(s->ssl, r), SSL_ERROR_WANT_READ);
}

/* Write n plaintext bytes to the client, driving it while the socket is
 * full. */
static void tsrv_write(tsrv *s, chat_client *c, const uint8_t *p, size_t n) {
    for (int i = 0; i < 5000; i++) {
        int r = SSL_write(s->ssl, p, (int)n);
        if (r == (int)n) return;
        assert_int_equal(SSL_get_error(s->ssl, r), SSL_ERROR_WANT_WRITE);
        chat_run_once(c, 0);
        wait_fd(s->cfd, POLLOUT);
    }
    fail_msg("the client did not read");
}

#define DRIVE_UNTIL(c, cond)                                                 \
    do {                                                                     \
        for (int i_ = 0; i_ < 500 && !(cond); i_++) chat_run_once((c), 10); \
        assert_true(cond);                                                   \
    } while (0)

/* s2c frames (the codec's layouts are pinned by test_frame.c). */
static size_t s2c(uint8_t *out, uint32_t sender, uint8_t type, const void *body,
                  uint32_t len) {
    frame_put_s2c_hdr(out, sender, type, len);
    memcpy(out + FRAME_S2C_HDR, body, len);
    return FRAME_S2C_HDR + len;
}

static size_t s2c_welcome(uint8_t *out, uint32_t max) {
    frame_welcome w = {FRAME_VERSION, FRAME_FLAG_ACKS, 42, max};
    uint8_t b[FRAME_WELCOME_SIZE];
    frame_put_welcome(b, &w);
    return s2c(out, 0, FRAME_WELCOME, b, sizeof b);
}

static size_t s2c_ack(uint8_t *out, uint64_t count) {
    uint8_t b[FRAME_ACK_SIZE];
    frame_put_ack(b, count);
    return s2c(out, 0, FRAME_ACK, b, sizeof b);
}

static size_t c2s_data(uint8_t *out, uint32_t to, const char *body) {
    uint32_t len = (uint32_t)strlen(body);
    frame_put_c2s_hdr(out, 42, to, FRAME_TEXT, len);
    memcpy(out + FRAME_C2S_HDR, body, len);
    return FRAME_C2S_HDR + len;
}

static size_t c2s_ack(uint8_t *out, uint64_t count) {
    uint8_t b[FRAME_ACK_SIZE];
    frame_put_ack(b, count);
    frame_put_c2s_hdr(out, 42, 0, FRAME_ACK, FRAME_ACK_SIZE);
    memcpy(out + FRAME_C2S_HDR, b, FRAME_ACK_SIZE);
    return FRAME_C2S_HDR + FRAME_ACK_SIZE;
}

/* ACKS and CONV asked for, the default device; the WELCOME grants ACKS
 * only, so data frames are bare (CONV over TLS is the same bytes). */
static const uint8_t HELLO_ACKS[16] = {0, 0, 0, 42, 0, 0, 0, 0, 0x80, 0, 0, 0, 3,
                                       1, FRAME_FLAG_ACKS | FRAME_FLAG_CONV, 0};

/* Connect, TLS handshake, HELLO, WELCOME (ACKS, max_frame max). */
static void session(tsrv *s, chat_client *c, rec *r, uint32_t max) {
    assert_int_equal(chat_connect(c), 0);
    tsrv_accept(s, c);
    assert_int_equal(tsrv_handshake(s, c), 1);
    tsrv_expect(s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    uint8_t w[64];
    int before = r->connected;
    tsrv_write(s, c, w, s2c_welcome(w, max));
    DRIVE_UNTIL(c, r->connected == before + 1);
    assert_int_equal(chat_state(c), CHAT_ST_READY);
    assert_int_equal(chat_acks_granted(c), 1);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_round_trip_verified_ip(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, "srv", NULL);
    rec r = {0};
    copts t = {.ca = path_of("ca.pem")};
    chat_client *c = client_new(&r, s.port, &t);
    uint64_t seq;
    assert_int_equal(chat_send_text(c, 7, "hi", &seq), 0); /* waits for WELCOME */
    session(&s, c, &r, 1u << 20);
    assert_null(SSL_get_servername(s.ssl, TLSEXT_NAMETYPE_host_name)); /* no SNI for an IP */
    assert_string_equal(chat_tls_error(c), "");

    uint8_t buf[128];
    tsrv_expect(&s, c, buf, c2s_data(buf, 7, "hi"));
    assert_int_equal(chat_acked(c), 0);
    tsrv_write(&s, c, buf, s2c_ack(buf, 1));
    DRIVE_UNTIL(c, r.acked == 1);
    assert_int_equal(chat_queued_frames(c), 0);

    tsrv_write(&s, c, buf, s2c(buf, 7, FRAME_TEXT, "yo", 2));
    DRIVE_UNTIL(c, r.msgs == 1);
    assert_int_equal(r.last_sender, 7);
    assert_string_equal(r.last_body, "yo");
    tsrv_expect(&s, c, buf, c2s_ack(buf, 1));
    tsrv_expect_nothing(&s, c);
    assert_int_equal(chat_want_write(c), 0);
    assert_int_equal(chat_next_timeout_ms(c), -1);
    assert_int_equal(r.disconnected, 0);
    chat_free(c);
    tsrv_close(&s);
}

static void test_dns_name_verified_and_sent_as_sni(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, "srv", NULL);
    rec r = {0};
    copts t = {.ca = path_of("ca.pem"), .name = "localhost"};
    chat_client *c = client_new(&r, s.port, &t);
    session(&s, c, &r, 1u << 20);
    assert_string_equal(SSL_get_servername(s.ssl, TLSEXT_NAMETYPE_host_name), "localhost");
    chat_free(c);
    tsrv_close(&s);
}

/* The server's certificate fails verification: reason, no retry. */
static void expect_verify_failure(const char *cert, const copts *t, const char *reason) {
    tsrv s;
    tsrv_open(&s, cert, NULL);
    rec r = {0};
    chat_client *c = client_new(&r, s.port, t);
    assert_int_equal(chat_connect(c), 0);
    tsrv_accept(&s, c);
    assert_int_equal(tsrv_handshake(&s, c), -1);
    DRIVE_UNTIL(c, r.disconnected == 1);
    assert_int_equal(r.disc_err, CHAT_ETLSVERIFY);
    assert_non_null(strstr(r.disc_tls, "certificate verify failed: "));
    if (!strstr(r.disc_tls, reason)) fail_msg("reason '%s' lacks '%s'", r.disc_tls, reason);
    assert_string_equal(chat_tls_error(c), r.disc_tls);
    /* reconnect is on, yet a verification failure is not retried. */
    assert_int_equal(chat_state(c), CHAT_ST_IDLE);
    assert_int_equal(chat_fd(c), -1);
    assert_int_equal(chat_next_timeout_ms(c), -1);
    assert_int_equal(r.connected, 0);
    chat_free(c);
    tsrv_close(&s);
}

static void test_untrusted_ca_refused(void **state) {
    (void)state;
    copts t = {.ca = path_of("ca.pem"), .reconnect = 1};
    expect_verify_failure("untrusted", &t, "unable to get local issuer certificate");
}

static void test_wrong_address_refused(void **state) {
    (void)state;
    copts t = {.ca = path_of("ca.pem"), .reconnect = 1};
    expect_verify_failure("wrong", &t, "IP address mismatch");
}

static void test_wrong_host_name_refused(void **state) {
    (void)state;
    copts t = {.ca = path_of("ca.pem"), .name = "localhost", .reconnect = 1};
    expect_verify_failure("wrong", &t, "hostname mismatch");
}

static void test_system_cas_do_not_trust_test_ca(void **state) {
    (void)state;
    copts t = {.ca = NULL, .reconnect = 1}; /* the system's default paths */
    expect_verify_failure("srv", &t, "unable to get local issuer certificate");
}

/* A plaintext server that answers (a WELCOME in clear): CHAT_ETLS at once. */
static void test_plaintext_server_answering(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, NULL, NULL);
    rec r = {0};
    copts t = {.ca = path_of("ca.pem")};
    chat_client *c = client_new(&r, s.port, &t);
    assert_int_equal(chat_connect(c), 0);
    tsrv_accept(&s, c);
    DRIVE_UNTIL(c, chat_state(c) == CHAT_ST_HANDSHAKE);
    uint8_t w[64];
    size_t n = s2c_welcome(w, 1000);
    assert_int_equal(write(s.cfd, w, n), (ssize_t)n);
    DRIVE_UNTIL(c, r.disconnected == 1);
    assert_int_equal(r.disc_err, CHAT_ETLS);
    assert_true(strlen(r.disc_tls) > 0);
    assert_int_equal(r.connected, 0);
    assert_int_equal(chat_state(c), CHAT_ST_IDLE);
    chat_free(c);
    tsrv_close(&s);
}

/* A server that closes without answering: CHAT_ETLS, "closed ... handshake". */
static void test_server_closing_during_handshake(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, NULL, NULL);
    rec r = {0};
    copts t = {.ca = path_of("ca.pem")};
    chat_client *c = client_new(&r, s.port, &t);
    assert_int_equal(chat_connect(c), 0);
    tsrv_accept(&s, c);
    tsrv_drop(&s);
    DRIVE_UNTIL(c, r.disconnected == 1);
    assert_int_equal(r.disc_err, CHAT_ETLS);
    assert_non_null(strstr(r.disc_tls, "during the handshake"));
    chat_free(c);
    tsrv_close(&s);
}

/* A silent server: the handshake never ends; the connect timeout does. */
static void test_silent_server_times_out(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, NULL, NULL);
    rec r = {0};
    r.now = 5000;
    copts t = {.ca = path_of("ca.pem"), .reconnect = 1};
    chat_client *c = client_new(&r, s.port, &t);
    assert_int_equal(chat_connect(c), 0);
    tsrv_accept(&s, c);
    DRIVE_UNTIL(c, chat_state(c) == CHAT_ST_HANDSHAKE);
    assert_int_equal(chat_want_write(c), 0); /* ClientHello sent, waiting */
    assert_int_equal(chat_next_timeout_ms(c), 10000);
    r.now += 9999;
    assert_int_equal(chat_process(c, 0, 0), 0);
    assert_int_equal(chat_state(c), CHAT_ST_HANDSHAKE);
    r.now += 1;
    assert_int_equal(chat_next_timeout_ms(c), 0);
    assert_int_equal(chat_process(c, 0, 0), CHAT_ETLS);
    assert_int_equal(r.disc_err, CHAT_ETLS);
    assert_non_null(strstr(r.disc_tls, "did not finish within 10000 ms"));
    assert_int_equal(chat_state(c), CHAT_ST_BACKOFF); /* this one is retried */
    chat_free(c);
    tsrv_close(&s);
}

static void test_client_certificate_presented(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, "srv", path_of("ca.pem"));
    rec r = {0};
    copts t = {.ca = path_of("ca.pem"), .cert = path_of("client.pem"),
               .key = path_of("client.key")};
    chat_client *c = client_new(&r, s.port, &t);
    session(&s, c, &r, 1u << 20);
    X509 *peer = SSL_get1_peer_certificate(s.ssl);
    assert_non_null(peer);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "user42");
    X509_free(peer);
    assert_int_equal(SSL_get_verify_result(s.ssl), X509_V_OK);
    chat_free(c);
    tsrv_close(&s);
}

static void test_client_certificate_missing(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, "srv", path_of("ca.pem"));
    rec r = {0};
    copts t = {.ca = path_of("ca.pem"), .reconnect = 0};
    chat_client *c = client_new(&r, s.port, &t);
    assert_int_equal(chat_connect(c), 0);
    tsrv_accept(&s, c);
    assert_int_equal(tsrv_handshake(&s, c), -1); /* the server refuses */
    DRIVE_UNTIL(c, r.disconnected == 1);
    assert_int_equal(r.disc_err, CHAT_ETLS); /* the server's alert, not ours */
    assert_true(strlen(r.disc_tls) > 0);
    assert_int_equal(r.connected, 0); /* never READY */
    chat_free(c);
    tsrv_close(&s);
}

/* TLS 1.2 works (another handshake: no post-handshake tickets, the client
 * certificate checked inside the handshake); below 1.2 is refused. */
static void test_tls12_accepted_older_refused(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, "srv", path_of("ca.pem"));
    assert_int_equal(SSL_CTX_set_max_proto_version(s.ctx, TLS1_2_VERSION), 1);
    rec r = {0};
    copts t = {.ca = path_of("ca.pem"), .cert = path_of("client.pem"),
               .key = path_of("client.key")};
    chat_client *c = client_new(&r, s.port, &t);
    session(&s, c, &r, 1u << 20);
    assert_int_equal(SSL_version(s.ssl), TLS1_2_VERSION);
    uint8_t buf[64];
    assert_int_equal(chat_send_text(c, 7, "v1.2", NULL), 0);
    tsrv_expect(&s, c, buf, c2s_data(buf, 7, "v1.2"));
    chat_free(c);
    tsrv_drop(&s);

    /* TLS 1.2 without the client certificate the server requires. */
    rec r2 = {0};
    copts t2 = {.ca = path_of("ca.pem")};
    c = client_new(&r2, s.port, &t2);
    assert_int_equal(chat_connect(c), 0);
    tsrv_accept(&s, c);
    assert_int_equal(tsrv_handshake(&s, c), -1);
    DRIVE_UNTIL(c, r2.disconnected == 1);
    assert_int_equal(r2.disc_err, CHAT_ETLS);
    assert_int_equal(r2.connected, 0);
    chat_free(c);
    tsrv_drop(&s);

    /* A server that stops at TLS 1.1. */
    SSL_CTX_set_security_level(s.ctx, 0);
    assert_int_equal(SSL_CTX_set_min_proto_version(s.ctx, TLS1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(s.ctx, TLS1_1_VERSION), 1);
    rec r3 = {0};
    c = client_new(&r3, s.port, &t);
    assert_int_equal(chat_connect(c), 0);
    tsrv_accept(&s, c);
    assert_int_equal(tsrv_handshake(&s, c), -1);
    DRIVE_UNTIL(c, r3.disconnected == 1);
    assert_int_equal(r3.disc_err, CHAT_ETLS);
    assert_true(strlen(r3.disc_tls) > 0);
    chat_free(c);
    tsrv_close(&s);
}

static void expect_conf_error(const chat_tls_options *tls, int want, const char *needle) {
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = 1;
    o.user = 1;
    o.tls = tls;
    int err = 0;
    char msg[256] = "x";
    assert_null(chat_new_ex(&o, &err, msg, sizeof msg));
    assert_int_equal(err, want);
    if (!strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    assert_null(chat_new(&o, &err)); /* the short form says the same code */
    assert_int_equal(err, want);
}

static void test_bad_files_refused_at_new(void **state) {
    (void)state;
    chat_tls_options t = {0};
    t.ca_file = path_of("missing.pem");
    expect_conf_error(&t, CHAT_ETLSCONF, "cannot load the CA file");
    expect_conf_error(&t, CHAT_ETLSCONF, "No such file or directory");
    t.ca_file = path_of("garbage.pem");
    expect_conf_error(&t, CHAT_ETLSCONF, "garbage.pem");
    t.ca_file = path_of("ca.pem");
    t.cert_file = path_of("client.pem");
    expect_conf_error(&t, CHAT_EINVAL, "key_file");
    t.key_file = path_of("srv.key"); /* another certificate's key */
    expect_conf_error(&t, CHAT_ETLSCONF, "does not match");
    t.key_file = path_of("nope.key");
    expect_conf_error(&t, CHAT_ETLSCONF, "cannot load the key file");
    t.cert_file = path_of("garbage.pem");
    t.key_file = path_of("client.key");
    expect_conf_error(&t, CHAT_ETLSCONF, "cannot load the certificate file");
    assert_string_not_equal(chat_strerror(CHAT_ETLSCONF), "unknown error");

    /* Valid: no error, and the files may go afterwards. */
    t.cert_file = path_of("client.pem");
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = 1;
    o.user = 1;
    o.tls = &t;
    int err = 1;
    chat_client *c = chat_new(&o, &err);
    assert_non_null(c);
    assert_int_equal(err, 0);
    assert_string_equal(chat_tls_error(c), "");
    chat_free(c);
    o.tls = NULL;
    c = chat_new(&o, &err);
    assert_int_equal(chat_tls_enabled(c), 0);
    chat_free(c);
}

static void test_reconnect_resends_unacked_over_tls(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, "srv", NULL);
    rec r = {0};
    r.now = 1000;
    copts t = {.ca = path_of("ca.pem"), .reconnect = 1};
    chat_client *c = client_new(&r, s.port, &t);
    session(&s, c, &r, 1u << 20);
    assert_int_equal(chat_send_text(c, 5, "one", NULL), 0);
    assert_int_equal(chat_send_text(c, 5, "two", NULL), 0);
    assert_int_equal(chat_send_text(c, 5, "three", NULL), 0);
    uint8_t want[128], in[64];
    size_t n = c2s_data(want, 5, "one");
    size_t n1 = n;
    n += c2s_data(want + n, 5, "two");
    n += c2s_data(want + n, 5, "three");
    tsrv_expect(&s, c, want, n);
    tsrv_write(&s, c, in, s2c_ack(in, 1));
    DRIVE_UNTIL(c, r.acked == 1);

    tsrv_drop(&s); /* the server goes away (no close_notify) */
    DRIVE_UNTIL(c, r.disconnected == 1);
    assert_int_equal(r.disc_err, CHAT_ECLOSED);
    assert_int_equal(chat_state(c), CHAT_ST_BACKOFF);
    assert_int_equal(chat_queued_frames(c), 2);
    assert_int_equal(chat_next_timeout_ms(c), 100);
    r.now += 100;

    tsrv_accept(&s, c); /* the timer fires, a new TLS session starts */
    assert_int_equal(tsrv_handshake(&s, c), 1);
    tsrv_expect(&s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    tsrv_expect_nothing(&s, c); /* nothing resent before WELCOME */
    tsrv_write(&s, c, in, s2c_welcome(in, 1u << 20));
    DRIVE_UNTIL(c, r.connected == 2);
    tsrv_expect(&s, c, want + n1, n - n1); /* "two", "three"; not "one" */
    tsrv_expect_nothing(&s, c);
    tsrv_write(&s, c, in, s2c_ack(in, 2));
    DRIVE_UNTIL(c, r.acked == 3);
    assert_int_equal(chat_queued_frames(c), 0);
    chat_free(c);
    tsrv_close(&s);
}

/* A 3 MiB frame out (many records, partial writes) and 2000 records in at
 * once (more than many chat_process calls read): whenever frames are still
 * due and the socket has nothing to report, chat_next_timeout_ms is 0. */
static void test_large_transfers_both_ways(void **state) {
    (void)state;
    tsrv s;
    tsrv_open(&s, "srv", NULL);
    rec r = {0};
    copts t = {.ca = path_of("ca.pem")};
    chat_client *c = client_new(&r, s.port, &t);
    session(&s, c, &r, 4u << 20);

    const uint32_t big = 3u << 20;
    uint8_t *body = malloc(big), *frame = malloc(FRAME_C2S_HDR + (size_t)big);
    assert_non_null(body);
    assert_non_null(frame);
    uint32_t seed = 7;
    for (uint32_t i = 0; i < big; i++) body[i] = (uint8_t)rng_next(&seed);
    assert_int_equal(chat_send(c, 9, CHAT_VIDEO, body, big, NULL), 0);
    frame_put_c2s_hdr(frame, 42, 9, FRAME_VIDEO, big);
    memcpy(frame + FRAME_C2S_HDR, body, big);
    tsrv_expect(&s, c, frame, FRAME_C2S_HDR + (size_t)big);
    uint8_t in[64];
    tsrv_write(&s, c, in, s2c_ack(in, 1));
    DRIVE_UNTIL(c, r.acked == 1);

    /* Many small records at once: each chat_process hands over at most 16
     * of them, so most wait decrypted or undecrypted inside the library
     * while the socket has nothing left to report. */
    enum { N = 2000, LEN = 60 };
    for (int i = 0; i < N; i++) {
        uint8_t f[FRAME_S2C_HDR + LEN];
        tsrv_write(&s, c, f, s2c(f, 3, FRAME_PICTURE, body + i, LEN)); /* one record */
    }
    int inside = 0; /* times only chat_next_timeout_ms said there was more */
    for (int i = 0; i < 5000 && r.msgs < N; i++) {
        struct pollfd p = {.fd = chat_fd(c), .events = POLLIN};
        int ready = poll(&p, 1, 0);
        if (ready == 0) {
            if (chat_next_timeout_ms(c) == 0) inside++;
            else assert_int_equal(poll(&p, 1, 1000), 1); /* still on its way */
        }
        chat_process(c, p.revents != 0, 0);
    }
    assert_int_equal(r.msgs, N);
    assert_int_equal(r.msg_bytes, (uint64_t)N * LEN);
    assert_true(inside > 0);
    /* One cumulative ACK per chat_process that handed frames over. */
    uint64_t count = 0;
    for (int i = 0; i < N && count < N; i++) {
        uint8_t ack[FRAME_C2S_HDR + FRAME_ACK_SIZE], got[sizeof ack];
        tsrv_expect_any(&s, c, got, sizeof got);
        frame_put_c2s_hdr(ack, 42, 0, FRAME_ACK, FRAME_ACK_SIZE);
        assert_memory_equal(got, ack, FRAME_C2S_HDR);
        assert_int_equal(frame_parse_ack(got + FRAME_C2S_HDR, FRAME_ACK_SIZE, &count), 0);
    }
    assert_int_equal(count, N);
    chat_run_once(c, 0);
    assert_int_equal(chat_next_timeout_ms(c), -1); /* all read: nothing to spin on */
    free(body);
    free(frame);
    chat_free(c);
    tsrv_close(&s);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* the fake server writes with write(2) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_verified_ip),
        cmocka_unit_test(test_dns_name_verified_and_sent_as_sni),
        cmocka_unit_test(test_untrusted_ca_refused),
        cmocka_unit_test(test_wrong_address_refused),
        cmocka_unit_test(test_wrong_host_name_refused),
        cmocka_unit_test(test_system_cas_do_not_trust_test_ca),
        cmocka_unit_test(test_plaintext_server_answering),
        cmocka_unit_test(test_server_closing_during_handshake),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_client_certificate_presented),
        cmocka_unit_test(test_client_certificate_missing),
        cmocka_unit_test(test_tls12_accepted_older_refused),
        cmocka_unit_test(test_bad_files_refused_at_new),
        cmocka_unit_test(test_reconnect_resends_unacked_over_tls),
        cmocka_unit_test(test_large_transfers_both_ways),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
