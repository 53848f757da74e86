/*
 * libchat_fake.h -- what the libchat unit tests (test_libchat.c,
 * test_libchat_conv.c, test_libchat_groups.c, test_libchat_history.c,
 * test_libchat_signals.c) share: callbacks that record
 * what they are given, a fake clock, and a fake server in the test process
 * (a listening socket on 127.0.0.1 port 0, accepted by the test, which
 * reads the exact bytes the client writes and writes frames to it, often
 * one byte at a time), hand-built frames, and a client with CONV. The
 * client is driven with chat_run_once(); waits are poll(2) on a condition
 * with an iteration cap, never sleeps. Include after <cmocka.h>.
 */
#ifndef CHAT_TESTS_LIBCHAT_FAKE_H
#define CHAT_TESTS_LIBCHAT_FAKE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat.h"
#include "proto/frame.h"

/* ------------------------------------------------------------------ */
/* Recording callbacks and the fake clock                              */
/* ------------------------------------------------------------------ */

typedef struct rec {
    uint64_t now; /* fake clock, ms */
    int msgs;
    uint32_t sender[16];
    int type[16];
    char body[16][64];
    uint32_t len[16];
    int acked_calls;
    uint64_t acked;
    int errs;
    int err_code[8];
    uint64_t err_seq[8];
    char err_reason[8][64];
    int connected;
    int disconnected;
    int disc_err;
    int hold_after; /* on_message calls chat_hold after this many */
    /* on_msg only: the fields on_message does not see */
    uint64_t id[16];
    uint32_t to[16];
    int own[16];
    uint64_t time[16];
    uint32_t group[16];
} rec;

static inline uint64_t fake_clock(void *ud) { return ((rec *)ud)->now; }

static inline void on_message(chat_client *c, uint32_t sender, int type,
                              const void *body, uint32_t len, void *ud) {
    rec *r = ud;
    assert_true(r->msgs < 16);
    assert_true(len < 64);
    r->sender[r->msgs] = sender;
    r->type[r->msgs] = type;
    memcpy(r->body[r->msgs], body, len);
    r->len[r->msgs] = len;
    if (r->hold_after && r->msgs + 1 == r->hold_after) chat_hold(c);
    r->msgs++;
}

/* Records what on_message does, and the rest of chat_msg. */
static inline void on_msg(chat_client *c, const chat_msg *m, void *ud) {
    rec *r = ud;
    assert_true(r->msgs < 16);
    r->id[r->msgs] = m->id;
    r->to[r->msgs] = m->to;
    r->own[r->msgs] = m->own;
    r->time[r->msgs] = m->time_ms;
    r->group[r->msgs] = m->group;
    on_message(c, m->sender, m->type, m->body, m->len, ud);
}

static inline void on_acked(chat_client *c, uint64_t seq, void *ud) {
    rec *r = ud;
    assert_true(seq > r->acked); /* increasing */
    assert_int_equal(seq, chat_acked(c));
    r->acked = seq;
    r->acked_calls++;
}

static inline void on_error(chat_client *c, int code, uint64_t seq, const char *reason,
                            uint32_t reason_len, void *ud) {
    (void)c;
    rec *r = ud;
    assert_true(r->errs < 8);
    r->err_code[r->errs] = code;
    r->err_seq[r->errs] = seq;
    assert_true(reason_len < 64);
    memcpy(r->err_reason[r->errs], reason, reason_len);
    r->err_reason[r->errs][reason_len] = 0;
    r->errs++;
}

static inline void on_connected(chat_client *c, void *ud) {
    (void)c;
    ((rec *)ud)->connected++;
}

static inline void on_disconnected(chat_client *c, int err, void *ud) {
    (void)c;
    rec *r = ud;
    r->disconnected++;
    r->disc_err = err;
}

/* ------------------------------------------------------------------ */
/* Fake server                                                         */
/* ------------------------------------------------------------------ */

typedef struct srv {
    int lfd;
    uint16_t port;
    int cfd;
} srv;

static inline void srv_open(srv *s) {
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    socklen_t sl = sizeof a;
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &sl), 0);
    s->port = ntohs(a.sin_port);
    s->cfd = -1;
}

/* Drive the client until the server can accept its connection. */
static inline void srv_accept(srv *s, chat_client *c) {
    for (int i = 0; i < 100; i++) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            s->cfd = accept(s->lfd, NULL, NULL);
            assert_true(s->cfd >= 0);
            return;
        }
        chat_run_once(c, 0);
    }
    fail_msg("client never connected");
}

static inline void srv_drop(srv *s) {
    if (s->cfd >= 0) close(s->cfd);
    s->cfd = -1;
}

static inline void srv_close(srv *s) {
    srv_drop(s);
    close(s->lfd);
}

/* Read exactly n bytes the client sends into got (driving it meanwhile). */
static inline void srv_take(srv *s, chat_client *c, uint8_t *got, size_t n) {
    size_t have = 0;
    for (int i = 0; i < 200 && have < n; i++) {
        chat_run_once(c, 0);
        struct pollfd p = {.fd = s->cfd, .events = POLLIN};
        if (poll(&p, 1, 20) != 1) continue;
        ssize_t r = recv(s->cfd, got + have, n - have, MSG_DONTWAIT);
        if (r > 0) have += (size_t)r;
        else if (r == 0) break;
    }
    assert_int_equal(have, n);
}

/* Read exactly n bytes the client sends, compare them with want. */
static inline void srv_expect(srv *s, chat_client *c, const uint8_t *want,
                              size_t n) {
    uint8_t got[4096];
    assert_true(n <= sizeof got);
    srv_take(s, c, got, n);
    assert_memory_equal(got, want, n);
}

/* The client has nothing more to send right now. */
static inline void srv_expect_nothing(srv *s, chat_client *c) {
    for (int i = 0; i < 3; i++) chat_run_once(c, 0);
    uint8_t b;
    ssize_t r = recv(s->cfd, &b, 1, MSG_DONTWAIT);
    assert_int_equal(r, -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Write bytes to the client one at a time, processing after each. */
static inline void srv_feed_bytewise(srv *s, chat_client *c, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(write(s->cfd, p + i, 1), 1);
        assert_int_equal(chat_run_once(c, 1000), 0);
    }
}

/* Write bytes at once, then process once. */
static inline void srv_feed(srv *s, chat_client *c, const uint8_t *p, size_t n) {
    assert_int_equal(write(s->cfd, p, n), (ssize_t)n);
    assert_int_equal(chat_run_once(c, 1000), 0);
}

/* s2c frame builders (using the codec, whose layouts test_frame.c pins). */
static inline size_t s2c(uint8_t *out, uint32_t sender, uint8_t type,
                         const void *body, uint32_t len) {
    frame_put_s2c_hdr(out, sender, type, len);
    memcpy(out + FRAME_S2C_HDR, body, len);
    return FRAME_S2C_HDR + len;
}

static inline size_t s2c_welcome(uint8_t *out, uint8_t flags, uint32_t user,
                                 uint32_t max) {
    frame_welcome w = {FRAME_VERSION, flags, user, max};
    uint8_t b[FRAME_WELCOME_SIZE];
    frame_put_welcome(b, &w);
    return s2c(out, 0, FRAME_WELCOME, b, sizeof b);
}

static inline size_t s2c_ack(uint8_t *out, uint64_t count) {
    uint8_t b[FRAME_ACK_SIZE];
    frame_put_ack(b, count);
    return s2c(out, 0, FRAME_ACK, b, sizeof b);
}

static inline size_t s2c_error(uint8_t *out, uint16_t code, uint64_t ref,
                               const char *why) {
    uint8_t b[FRAME_ERROR_MAX];
    size_t n = frame_put_error(b, code, ref, why);
    return s2c(out, 0, FRAME_ERROR, b, (uint32_t)n);
}

/* c2s data frame as the client must write it (hand-built, no codec). */
static inline size_t c2s_data(uint8_t *out, uint32_t from, uint32_t to, uint8_t type,
                              const char *body) {
    uint32_t len = (uint32_t)strlen(body);
    uint8_t h[13] = {(uint8_t)(from >> 24), (uint8_t)(from >> 16), (uint8_t)(from >> 8),
                     (uint8_t)from, (uint8_t)(to >> 24), (uint8_t)(to >> 16),
                     (uint8_t)(to >> 8), (uint8_t)to, type, (uint8_t)(len >> 24),
                     (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    memcpy(out, h, 13);
    memcpy(out + 13, body, len);
    return 13 + len;
}

static inline size_t c2s_ack(uint8_t *out, uint32_t from, uint64_t count) {
    uint8_t h[21] = {(uint8_t)(from >> 24), (uint8_t)(from >> 16), (uint8_t)(from >> 8),
                     (uint8_t)from, 0, 0, 0, 0, 0x82, 0, 0, 0, 8};
    for (int i = 0; i < 8; i++) h[13 + i] = (uint8_t)(count >> (56 - 8 * i));
    memcpy(out, h, 21);
    return 21;
}

static inline chat_client *client_new(rec *r, uint16_t port, int control, int reconnect) {
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = port;
    o.user = 42;
    o.control = control;
    o.reconnect = reconnect;
    o.clock_ms = fake_clock;
    o.userdata = r;
    o.cb = (chat_callbacks){.on_message = on_message, .on_acked = on_acked,
                            .on_error = on_error, .on_connected = on_connected,
                            .on_disconnected = on_disconnected};
    int err = 1;
    chat_client *c = chat_new(&o, &err);
    assert_non_null(c);
    assert_int_equal(err, 0);
    return c;
}

/* The HELLO of client_new's clients: ACKS and CONV asked for, the default
 * device (name length 0), no password. */
static const uint8_t HELLO_ACKS[16] = {0, 0, 0, 42, 0, 0, 0, 0, 0x80, 0, 0, 0, 3,
                                       1, FRAME_FLAG_ACKS | FRAME_FLAG_CONV, 0};

/* Connect, check HELLO, answer WELCOME (ACKS granted, max 1 MiB). */
static inline void handshake(srv *s, chat_client *c, rec *r) {
    assert_int_equal(chat_connect(c), 0);
    srv_accept(s, c);
    srv_expect(s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    uint8_t w[64];
    int before = r->connected;
    srv_feed(s, c, w, s2c_welcome(w, FRAME_FLAG_ACKS, 42, 1u << 20));
    assert_int_equal(r->connected, before + 1);
    assert_int_equal(chat_state(c), CHAT_ST_READY);
    assert_int_equal(chat_acks_granted(c), 1);
}

/* A MSG frame as the server writes it: header, 22-byte prefix, payload. */
static inline size_t s2c_msg(uint8_t *out, uint32_t sender, uint64_t id,
                             uint8_t kind, uint8_t flags, uint32_t to,
                             uint64_t time_ms, const char *payload) {
    uint32_t len = (uint32_t)strlen(payload);
    frame_msg m = {id, kind, flags, to, time_ms, NULL, 0};
    frame_put_s2c_hdr(out, sender, FRAME_MSG, FRAME_MSG_PRE + len);
    frame_put_msg(out + FRAME_S2C_HDR, &m);
    memcpy(out + FRAME_S2C_HDR + FRAME_MSG_PRE, payload, len);
    return FRAME_S2C_HDR + FRAME_MSG_PRE + len;
}

/* A POST as the client must write it (hand-built, no codec). */
static inline size_t c2s_post(uint8_t *out, uint32_t from, uint32_t to,
                              uint8_t kind, uint64_t cid, const char *body) {
    uint32_t len = (uint32_t)strlen(body);
    uint32_t flen = 10 + len;
    uint8_t h[23] = {(uint8_t)(from >> 24), (uint8_t)(from >> 16), (uint8_t)(from >> 8),
                     (uint8_t)from, (uint8_t)(to >> 24), (uint8_t)(to >> 16),
                     (uint8_t)(to >> 8), (uint8_t)to, 0x87, (uint8_t)(flen >> 24),
                     (uint8_t)(flen >> 16), (uint8_t)(flen >> 8), (uint8_t)flen,
                     kind, 0};
    for (int i = 0; i < 8; i++) h[15 + i] = (uint8_t)(cid >> (56 - 8 * i));
    memcpy(out, h, 23);
    memcpy(out + 23, body, len);
    return 23 + len;
}

/* ------------------------------------------------------------------ */
/* Hand-built bytes (groups, history): big-endian, no codec            */
/* ------------------------------------------------------------------ */

typedef struct bb {
    uint8_t b[8192];
    size_t n;
} bb;

static inline void bb_u8(bb *w, unsigned v) {
    assert_true(w->n < sizeof w->b);
    w->b[w->n++] = (uint8_t)v;
}
static inline void bb_u16(bb *w, unsigned v) { bb_u8(w, v >> 8); bb_u8(w, v); }
static inline void bb_u32(bb *w, uint32_t v) {
    for (int i = 3; i >= 0; i--) bb_u8(w, (uint8_t)(v >> (8 * i)));
}
static inline void bb_u64(bb *w, uint64_t v) {
    for (int i = 7; i >= 0; i--) bb_u8(w, (uint8_t)(v >> (8 * i)));
}
static inline void bb_bytes(bb *w, const void *p, size_t n) {
    assert_true(w->n + n <= sizeof w->b);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
/* A string with its u8 length first. */
static inline void bb_name(bb *w, const char *s) {
    bb_u8(w, (unsigned)strlen(s));
    bb_bytes(w, s, strlen(s));
}

/* A c2s frame header (13 bytes) for a body of len bytes. */
static inline void bb_c2s(bb *w, uint32_t from, uint32_t to, uint8_t type,
                          uint32_t len) {
    bb_u32(w, from);
    bb_u32(w, to);
    bb_u8(w, type);
    bb_u32(w, len);
}

/* The s2c frame of `type` from server (sender 0) around body b. */
static inline size_t s2c_bb(uint8_t *out, uint8_t type, const bb *b) {
    return s2c(out, 0, type, b->b, (uint32_t)b->n);
}

/* The client takes p[0..n) as a breach of the protocol: the connection is
 * dropped (CHAT_EPROTO, no reconnect) and nothing is handed over. */
static inline void feed_proto_error(srv *s, chat_client *c, rec *r,
                                    const uint8_t *p, size_t n) {
    int msgs = r->msgs;
    assert_int_equal(write(s->cfd, p, n), (ssize_t)n);
    assert_int_equal(chat_run_once(c, 1000), CHAT_EPROTO);
    assert_int_equal(r->disc_err, CHAT_EPROTO);
    assert_int_equal(chat_state(c), CHAT_ST_IDLE);
    assert_int_equal(r->msgs, msgs);
}

/* ------------------------------------------------------------------ */
/* A client with CONV (test_libchat_conv.c, test_libchat_groups.c)     */
/* ------------------------------------------------------------------ */

#define CONV_FLAGS (FRAME_FLAG_ACKS | FRAME_FLAG_CONV)

typedef struct conv_opts {
    const char *device;
    const char *password;
    int use_on_msg;    /* register on_msg (else only on_message) */
    int conv;          /* chat_options.conv */
    uint32_t max_recv; /* 0 = the default */
    void (*on_group)(chat_client *, const chat_group_event *, void *);
    void (*on_history)(chat_client *, const chat_history_page *, void *);
} conv_opts;

static inline chat_client *conv_client(rec *r, uint16_t port, const conv_opts *co) {
    chat_options o;
    chat_options_init(&o);
    assert_int_equal(o.conv, 1); /* the default */
    o.host = "127.0.0.1";
    o.port = port;
    o.user = 42;
    o.reconnect = 1;
    o.device = co->device;
    o.password = co->password;
    o.conv = co->conv;
    if (co->max_recv) o.max_recv = co->max_recv;
    o.clock_ms = fake_clock;
    o.userdata = r;
    o.cb = (chat_callbacks){.on_message = on_message, .on_acked = on_acked,
                            .on_error = on_error, .on_connected = on_connected,
                            .on_disconnected = on_disconnected,
                            .on_msg = co->use_on_msg ? on_msg : NULL,
                            .on_group = co->on_group, .on_history = co->on_history};
    int err = 1;
    chat_client *c = chat_new(&o, &err);
    assert_non_null(c);
    assert_int_equal(err, 0);
    return c;
}

/* The connection is up: HELLO (the default device, ACKS and CONV), answer
 * WELCOME with `flags`. */
static inline void conv_session(srv *s, chat_client *c, rec *r, uint8_t flags) {
    srv_accept(s, c);
    srv_expect(s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    srv_expect_nothing(s, c); /* nothing before WELCOME */
    uint8_t w[64];
    int before = r->connected;
    srv_feed(s, c, w, s2c_welcome(w, flags, 42, 1u << 20));
    assert_int_equal(r->connected, before + 1);
    assert_int_equal(chat_conv_granted(c), (flags & FRAME_FLAG_CONV) != 0);
}

/* A fake server, a client with `co` connected to it, WELCOME with flags. */
static inline chat_client *connected(srv *s, rec *r, const conv_opts *co, uint8_t flags) {
    srv_open(s);
    chat_client *c = conv_client(r, s->port, co);
    assert_int_equal(chat_connect(c), 0);
    conv_session(s, c, r, flags);
    return c;
}

/* The server drops the connection; the client reconnects on the fake clock
 * and gets a WELCOME with `flags`. */
static inline void reconnect(srv *s, chat_client *c, rec *r, uint8_t flags) {
    int before = r->disconnected;
    srv_drop(s);
    for (int i = 0; i < 100 && r->disconnected == before; i++) chat_run_once(c, 100);
    assert_int_equal(r->disconnected, before + 1);
    assert_int_equal(chat_conv_granted(c), 0); /* no connection, no CONV */
    r->now += 10000; /* past any backoff */
    conv_session(s, c, r, flags);
}

#endif
