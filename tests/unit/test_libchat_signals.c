/*
 * test_libchat_signals.c -- libchat and signals (docs/PROTOCOL.md
 * "Receipts, typing and presence"): the SIGNALS flag in HELLO and WELCOME,
 * the frames chat_read, chat_receipts_query, chat_typing and
 * chat_presence_* write, on_receipt / on_typing / on_presence on the
 * server's frames, ERROR DENIED, and the server's malformed frames.
 *
 * The fake server is libchat_fake.h's; expected and fed frames are built
 * by hand (bb_*), not with the codec under test.
 *
 * Covers: HELLO flags with and without options.signals (and never SIGNALS
 * without CONV); chat_signals_granted for each WELCOME; CHAT_ESTATE before
 * a session, CHAT_ENOTSUP without SIGNALS, nothing written then; the bytes
 * of READ, QUERY, TYPING (user, group, both states) and PRESENCE (split
 * into frames of 256 ids, all or none when the output is full); argument
 * checks; no callback inside a call; RECEIPT (DELIVERED, READ, END),
 * TYPING and PRESENCE decoded, split at every byte; ERROR DENIED to
 * on_error with the user id, touching neither queued messages nor
 * requests; ERROR GROUP (ref 0) to on_error; POSTED to on_posted with the
 * seq its cid names (a user's and a group's message, again for a resend
 * after a reconnect, cids that are not this client's ignored, no ACK for
 * it); every malformed signal frame (POSTED too) and a signal frame on a
 * connection without SIGNALS refused with CHAT_EPROTO.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "libchat_fake.h"
#include "proto/frame.h"

/* ------------------------------------------------------------------ */
/* Recording callbacks                                                 */
/* ------------------------------------------------------------------ */

typedef struct sig {
    int kind; /* 'r' receipt, 't' typing, 'p' presence, 'x' posted */
    int what, flags, state;
    uint32_t conv, by, from, to, user;
    uint64_t upto, time, last_seen;
    uint64_t seq, id; /* posted */
} sig;

typedef struct st {
    rec r; /* first: the rec callbacks take the same userdata */
    int n;
    sig s[16];
} st;

static sig *next_sig(void *ud, int kind) {
    st *t = ud;
    assert_true(t->n < 16);
    sig *s = &t->s[t->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

static void on_receipt(chat_client *c, int what, int flags, uint32_t conv, uint32_t by,
                       uint64_t upto, uint64_t time_ms, void *ud) {
    (void)c;
    sig *s = next_sig(ud, 'r');
    s->what = what;
    s->flags = flags;
    s->conv = conv;
    s->by = by;
    s->upto = upto;
    s->time = time_ms;
}

static void on_typing(chat_client *c, uint32_t from, int flags, uint32_t to, int state,
                      void *ud) {
    (void)c;
    sig *s = next_sig(ud, 't');
    s->from = from;
    s->flags = flags;
    s->to = to;
    s->state = state;
}

static void on_presence(chat_client *c, uint32_t user, int state, uint64_t last_seen,
                        void *ud) {
    (void)c;
    sig *s = next_sig(ud, 'p');
    s->user = user;
    s->state = state;
    s->last_seen = last_seen;
}

static void on_posted(chat_client *c, uint64_t seq, uint64_t id, void *ud) {
    (void)c;
    sig *s = next_sig(ud, 'x');
    s->seq = seq;
    s->id = id;
}

#define SIG_FLAGS (FRAME_FLAG_ACKS | FRAME_FLAG_CONV | FRAME_FLAG_SIGNALS)

static chat_client *sig_client(st *t, uint16_t port, int signals, int conv) {
    chat_options o;
    chat_options_init(&o);
    assert_int_equal(o.signals, 0); /* the default */
    o.host = "127.0.0.1";
    o.port = port;
    o.user = 42;
    o.reconnect = 1;
    o.conv = conv;
    o.signals = signals;
    o.clock_ms = fake_clock;
    o.userdata = t;
    o.cb = (chat_callbacks){.on_message = on_message, .on_acked = on_acked,
                            .on_error = on_error, .on_connected = on_connected,
                            .on_disconnected = on_disconnected, .on_msg = on_msg,
                            .on_receipt = on_receipt, .on_typing = on_typing,
                            .on_presence = on_presence, .on_posted = on_posted};
    int err = 1;
    chat_client *c = chat_new(&o, &err);
    assert_non_null(c);
    assert_int_equal(err, 0);
    return c;
}

/* The HELLO a client with options.signals writes: ACKS, CONV, SIGNALS. */
static const uint8_t HELLO_SIG[16] = {0, 0, 0, 42, 0, 0, 0, 0, 0x80, 0, 0, 0, 3,
                                      1, 0x07, 0};

/* Accept the connection, check HELLO_SIG, answer WELCOME with flags. */
static void sig_session(srv *s, chat_client *c, st *t, uint8_t flags) {
    srv_accept(s, c);
    srv_expect(s, c, HELLO_SIG, sizeof HELLO_SIG);
    srv_expect_nothing(s, c);
    uint8_t w[64];
    int before = t->r.connected;
    srv_feed(s, c, w, s2c_welcome(w, flags, 42, 1u << 20));
    assert_int_equal(t->r.connected, before + 1);
    assert_int_equal(chat_signals_granted(c), (flags & SIG_FLAGS) == SIG_FLAGS);
}

static chat_client *sig_connected(srv *s, st *t, uint8_t flags) {
    srv_open(s);
    chat_client *c = sig_client(t, s->port, 1, 1);
    assert_int_equal(chat_connect(c), 0);
    sig_session(s, c, t, flags);
    return c;
}

/* Expected c2s frames, from user 42, receiver 0. */
static void want_receipt(bb *w, uint8_t what, uint8_t flags, uint32_t conv,
                         uint64_t upto) {
    bb_c2s(w, 42, 0, 0x8C, 26);
    bb_u8(w, what);
    bb_u8(w, flags);
    bb_u32(w, conv);
    bb_u32(w, 0);
    bb_u64(w, upto);
    bb_u64(w, 0);
}

static void want_typing(bb *w, uint8_t flags, uint32_t to, uint8_t state) {
    bb_c2s(w, 42, 0, 0x8D, 6);
    bb_u8(w, flags);
    bb_u32(w, to);
    bb_u8(w, state);
}

static void want_presence(bb *w, uint8_t op, const uint32_t *ids, unsigned n) {
    bb_c2s(w, 42, 0, 0x8E, 3 + 4 * n);
    bb_u8(w, op);
    bb_u16(w, n);
    for (unsigned i = 0; i < n; i++) bb_u32(w, ids[i]);
}

/* Server frames (sender 0 unless said). */
static void s_receipt(bb *w, unsigned what, unsigned flags, uint32_t conv, uint32_t by,
                      uint64_t upto, uint64_t time) {
    w->n = 0;
    bb_u8(w, what);
    bb_u8(w, flags);
    bb_u32(w, conv);
    bb_u32(w, by);
    bb_u64(w, upto);
    bb_u64(w, time);
}

static void s_typing(bb *w, unsigned flags, uint32_t to, unsigned state) {
    w->n = 0;
    bb_u8(w, flags);
    bb_u32(w, to);
    bb_u8(w, state);
}

static void s_presence(bb *w, uint32_t user, unsigned state, uint64_t last) {
    w->n = 0;
    bb_u32(w, user);
    bb_u8(w, state);
    bb_u64(w, last);
}

static void s_posted(bb *w, uint64_t cid, uint64_t id) {
    w->n = 0;
    bb_u64(w, cid);
    bb_u64(w, id);
}

/* Every signal call returns `want` and writes nothing. */
static void calls_refused(chat_client *c, int want) {
    uint32_t ids[2] = {3, 4};
    assert_int_equal(chat_read(c, 7, 0, 5), want);
    assert_int_equal(chat_receipts_query(c, 7, 0), want);
    assert_int_equal(chat_typing(c, 7, 0, 1), want);
    assert_int_equal(chat_presence_subscribe(c, ids, 2), want);
    assert_int_equal(chat_presence_unsubscribe(c, ids, 2), want);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_hello_flags_and_granted(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    st t = {0};
    chat_client *c = sig_client(&t, s.port, 1, 1);
    assert_int_equal(chat_signals_granted(c), 0);
    calls_refused(c, CHAT_ESTATE); /* no session */
    assert_int_equal(chat_connect(c), 0);
    sig_session(&s, c, &t, SIG_FLAGS);
    assert_int_equal(chat_signals_granted(c), 1);
    assert_int_equal(chat_conv_granted(c), 1);
    /* A server that grants CONV only: no signals, nothing written. */
    srv_drop(&s);
    for (int i = 0; i < 100 && t.r.disconnected == 0; i++) chat_run_once(c, 100);
    assert_int_equal(chat_signals_granted(c), 0);
    t.r.now += 10000;
    sig_session(&s, c, &t, CONV_FLAGS);
    assert_int_equal(chat_signals_granted(c), 0);
    calls_refused(c, CHAT_ENOTSUP);
    srv_expect_nothing(&s, c);
    /* SIGNALS without CONV is not SIGNALS. */
    srv_drop(&s);
    for (int i = 0; i < 100 && t.r.disconnected == 1; i++) chat_run_once(c, 100);
    t.r.now += 10000;
    sig_session(&s, c, &t, FRAME_FLAG_ACKS | FRAME_FLAG_SIGNALS);
    assert_int_equal(chat_signals_granted(c), 0);
    calls_refused(c, CHAT_ENOTSUP);
    chat_free(c);
    srv_close(&s);

    /* options.signals 0: HELLO without SIGNALS (the bytes of every other
     * test), and a WELCOME that sets it anyway does not grant it. */
    srv_open(&s);
    memset(&t, 0, sizeof t);
    c = sig_client(&t, s.port, 0, 1);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    srv_expect(&s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    uint8_t w[64];
    srv_feed(&s, c, w, s2c_welcome(w, SIG_FLAGS, 42, 1u << 20));
    assert_int_equal(chat_conv_granted(c), 1);
    assert_int_equal(chat_signals_granted(c), 0);
    calls_refused(c, CHAT_ENOTSUP);
    srv_expect_nothing(&s, c);
    chat_free(c);
    srv_close(&s);

    /* options.signals with conv 0: no CONV, hence no SIGNALS, in HELLO. */
    srv_open(&s);
    memset(&t, 0, sizeof t);
    c = sig_client(&t, s.port, 1, 0);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    static const uint8_t hello_plain[15] = {0, 0, 0, 42, 0, 0, 0, 0, 0x80, 0, 0, 0, 2,
                                            1, FRAME_FLAG_ACKS};
    srv_expect(&s, c, hello_plain, sizeof hello_plain);
    chat_free(c);
    srv_close(&s);
}

static void test_frames_written(void **state) {
    (void)state;
    srv s;
    st t = {0};
    chat_client *c = sig_connected(&s, &t, SIG_FLAGS);
    assert_int_equal(chat_read(c, 7, 0, 0x0102030405060708ull), 0);
    assert_int_equal(chat_read(c, 3, 1, 99), 0);
    assert_int_equal(chat_receipts_query(c, 7, 0), 0);
    assert_int_equal(chat_receipts_query(c, 0xFFFFFFFFu, 1), 0);
    assert_int_equal(chat_typing(c, 7, 0, 1), 0);
    assert_int_equal(chat_typing(c, 3, 1, 0), 0);
    uint32_t ids[3] = {5, 0x01020304u, 9};
    assert_int_equal(chat_presence_subscribe(c, ids, 3), 0);
    assert_int_equal(chat_presence_unsubscribe(c, ids + 1, 1), 0);
    assert_int_equal(t.n, 0); /* no callback inside a call */
    assert_int_equal(t.r.connected, 1);
    bb want = {0};
    want_receipt(&want, 2, 0, 7, 0x0102030405060708ull);
    want_receipt(&want, 2, 2, 3, 99);
    want_receipt(&want, 3, 0, 7, 0);
    want_receipt(&want, 3, 2, 0xFFFFFFFFu, 0);
    want_typing(&want, 0, 7, 1);
    want_typing(&want, 2, 3, 0);
    want_presence(&want, 1, ids, 3);
    want_presence(&want, 2, ids + 1, 1);
    srv_expect(&s, c, want.b, want.n);
    srv_expect_nothing(&s, c);

    /* Argument checks: nothing written. */
    assert_int_equal(chat_read(NULL, 7, 0, 1), CHAT_EINVAL);
    assert_int_equal(chat_read(c, 0, 0, 1), CHAT_EINVAL);
    assert_int_equal(chat_read(c, 7, 0, 0), CHAT_EINVAL);
    assert_int_equal(chat_read(c, 7, 2, 1), CHAT_EINVAL);
    assert_int_equal(chat_receipts_query(NULL, 7, 0), CHAT_EINVAL);
    assert_int_equal(chat_receipts_query(c, 0, 1), CHAT_EINVAL);
    assert_int_equal(chat_receipts_query(c, 7, -1), CHAT_EINVAL);
    assert_int_equal(chat_typing(NULL, 7, 0, 1), CHAT_EINVAL);
    assert_int_equal(chat_typing(c, 0, 0, 1), CHAT_EINVAL);
    assert_int_equal(chat_typing(c, 7, 0, 2), CHAT_EINVAL);
    assert_int_equal(chat_typing(c, 7, 3, 1), CHAT_EINVAL);
    uint32_t zero[2] = {4, 0};
    assert_int_equal(chat_presence_subscribe(NULL, ids, 1), CHAT_EINVAL);
    assert_int_equal(chat_presence_subscribe(c, NULL, 1), CHAT_EINVAL);
    assert_int_equal(chat_presence_subscribe(c, ids, 0), CHAT_EINVAL);
    assert_int_equal(chat_presence_subscribe(c, zero, 2), CHAT_EINVAL);
    assert_int_equal(chat_presence_unsubscribe(c, zero, 2), CHAT_EINVAL);
    assert_int_equal(chat_presence_subscribe(c, ids, CHAT_PRESENCE_USERS_MAX + 1),
                     CHAT_EINVAL);
    srv_expect_nothing(&s, c);
    chat_free(c);
    srv_close(&s);
}

/* More than 256 ids: frames of 256, the last with the rest; a call whose
 * frames do not all fit the control output writes none of them. */
static void test_presence_split_and_full(void **state) {
    (void)state;
    srv s;
    st t = {0};
    chat_client *c = sig_connected(&s, &t, SIG_FLAGS);
    static uint32_t ids[CHAT_PRESENCE_USERS_MAX];
    for (unsigned i = 0; i < CHAT_PRESENCE_USERS_MAX; i++) ids[i] = 1000 + i;
    assert_int_equal(chat_presence_subscribe(c, ids, 300), 0);
    bb want = {0};
    want_presence(&want, 1, ids, 256);
    want_presence(&want, 1, ids + 256, 44);
    uint8_t *got = malloc(70000);
    assert_non_null(got);
    srv_take(&s, c, got, want.n);
    assert_memory_equal(got, want.b, want.n);
    /* Exactly 256: one frame. */
    assert_int_equal(chat_presence_unsubscribe(c, ids, 256), 0);
    want.n = 0;
    want_presence(&want, 2, ids, 256);
    srv_take(&s, c, got, want.n);
    assert_memory_equal(got, want.b, want.n);
    /* The largest call is 16 frames, 16,624 bytes; without chat_process
     * three fit the 64 KiB control output, the fourth does not. */
    const size_t big = 16 * (13 + 3 + 4 * 256);
    int ok = 0, rc;
    while ((rc = chat_presence_subscribe(c, ids, CHAT_PRESENCE_USERS_MAX)) == 0) ok++;
    assert_int_equal(rc, CHAT_EFULL);
    assert_int_equal(ok, 3);
    assert_int_equal(chat_typing(c, 7, 0, 1), 0); /* room left for small frames */
    srv_take(&s, c, got, ok * big + 13 + 6);
    for (int k = 0; k < ok; k++) {
        for (unsigned f = 0; f < 16; f++) {
            const uint8_t *p = got + k * big + f * (13 + 3 + 4 * 256);
            assert_int_equal(p[8], 0x8E);
            assert_int_equal(frame_rd32(p + 9), 3 + 4 * 256);
            assert_int_equal(p[13], 1);
            assert_int_equal(p[14] << 8 | p[15], 256);
            assert_int_equal(frame_rd32(p + 16), 1000 + f * 256);
        }
    }
    assert_int_equal(got[ok * big + 8], 0x8D);
    srv_expect_nothing(&s, c);
    free(got);
    chat_free(c);
    srv_close(&s);
}

static void test_callbacks(void **state) {
    (void)state;
    srv s;
    st t = {0};
    chat_client *c = sig_connected(&s, &t, SIG_FLAGS);
    uint8_t in[256];
    bb b = {0};
    s_receipt(&b, 1, 0, 7, 7, 0x0102030405060708ull, 1700000000123ull);
    srv_feed_bytewise(&s, c, in, s2c_bb(in, 0x8C, &b));
    s_receipt(&b, 2, 2, 3, 9, 55, 1700000000456ull);
    srv_feed_bytewise(&s, c, in, s2c_bb(in, 0x8C, &b));
    s_receipt(&b, 4, 0, 7, 0, 0, 0);
    srv_feed(&s, c, in, s2c_bb(in, 0x8C, &b));
    s_typing(&b, 0, 42, 1);
    srv_feed_bytewise(&s, c, in, s2c(in, 7, 0x8D, b.b, (uint32_t)b.n));
    s_typing(&b, 2, 3, 0);
    srv_feed(&s, c, in, s2c(in, 9, 0x8D, b.b, (uint32_t)b.n));
    s_presence(&b, 7, 1, 0);
    srv_feed_bytewise(&s, c, in, s2c_bb(in, 0x8E, &b));
    s_presence(&b, 0xFFFFFFFEu, 0, 1700000000789ull);
    srv_feed(&s, c, in, s2c_bb(in, 0x8E, &b));
    assert_int_equal(t.n, 7);
    sig *g = t.s;
    assert_int_equal(g[0].kind, 'r');
    assert_int_equal(g[0].what, CHAT_RECEIPT_DELIVERED);
    assert_int_equal(g[0].flags, 0);
    assert_int_equal(g[0].conv, 7);
    assert_int_equal(g[0].by, 7);
    assert_true(g[0].upto == 0x0102030405060708ull);
    assert_true(g[0].time == 1700000000123ull);
    assert_int_equal(g[1].what, CHAT_RECEIPT_READ);
    assert_int_equal(g[1].flags, CHAT_SIGNAL_GROUP);
    assert_int_equal(g[1].conv, 3);
    assert_int_equal(g[1].by, 9);
    assert_true(g[1].upto == 55);
    assert_int_equal(g[2].what, CHAT_RECEIPT_END);
    assert_int_equal(g[2].conv, 7);
    assert_int_equal(g[3].kind, 't');
    assert_int_equal(g[3].from, 7);
    assert_int_equal(g[3].flags, 0);
    assert_int_equal(g[3].to, 42);
    assert_int_equal(g[3].state, 1);
    assert_int_equal(g[4].from, 9);
    assert_int_equal(g[4].flags, CHAT_SIGNAL_GROUP);
    assert_int_equal(g[4].to, 3);
    assert_int_equal(g[4].state, 0);
    assert_int_equal(g[5].kind, 'p');
    assert_int_equal(g[5].user, 7);
    assert_int_equal(g[5].state, CHAT_PRESENCE_ONLINE);
    assert_true(g[5].last_seen == 0);
    assert_int_equal(g[6].user, 0xFFFFFFFEu);
    assert_int_equal(g[6].state, CHAT_PRESENCE_OFFLINE);
    assert_true(g[6].last_seen == 1700000000789ull);
    /* Signals are not data frames: no ACK for them. */
    srv_expect_nothing(&s, c);
    assert_int_equal(t.r.disconnected, 0);
    chat_free(c);
    srv_close(&s);

    /* Without the callbacks: dropped quietly. */
    rec r = {0};
    srv_open(&s);
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = s.port;
    o.user = 42;
    o.signals = 1;
    o.clock_ms = fake_clock;
    o.userdata = &r;
    o.cb = (chat_callbacks){.on_error = on_error, .on_connected = on_connected,
                            .on_disconnected = on_disconnected};
    c = chat_new(&o, NULL);
    assert_non_null(c);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    srv_expect(&s, c, HELLO_SIG, sizeof HELLO_SIG);
    srv_feed(&s, c, in, s2c_welcome(in, SIG_FLAGS, 42, 1u << 20));
    s_receipt(&b, 1, 0, 7, 7, 1, 1);
    srv_feed(&s, c, in, s2c_bb(in, 0x8C, &b));
    s_typing(&b, 0, 42, 1);
    srv_feed(&s, c, in, s2c(in, 7, 0x8D, b.b, (uint32_t)b.n));
    s_presence(&b, 7, 1, 0);
    srv_feed(&s, c, in, s2c_bb(in, 0x8E, &b));
    s_posted(&b, 5, 6);
    srv_feed(&s, c, in, s2c_bb(in, 0x8F, &b));
    assert_int_equal(r.disconnected, 0);
    assert_int_equal(r.errs, 0);
    chat_free(c);
    srv_close(&s);
}

static void test_errors(void **state) {
    (void)state;
    srv s;
    st t = {0};
    chat_client *c = sig_connected(&s, &t, SIG_FLAGS);
    /* A message written (number 1 on the connection), not acknowledged,
     * and a group request (a number from 2^31) waiting. */
    uint64_t seq = 0;
    assert_int_equal(chat_send_text(c, 7, "hi", &seq), 0);
    uint8_t want[64], in[256];
    assert_int_equal(c2s_post(want, 42, 7, 1, 0, "hi"), 25);
    srv_expect(&s, c, want, 15); /* header, kind, flags */
    uint8_t cid[8];
    srv_take(&s, c, cid, 8);   /* (random) */
    srv_expect(&s, c, want + 23, 2);
    uint32_t req = 0;
    assert_int_equal(chat_group_list(c, &req), 0);
    uint8_t greq[13 + 9];
    srv_take(&s, c, greq, sizeof greq);
    uint32_t ids[2] = {1, req};
    assert_int_equal(chat_presence_subscribe(c, ids, 2), 0);
    bb w = {0};
    want_presence(&w, 1, ids, 2);
    srv_expect(&s, c, w.b, w.n);
    /* DENIED naming user 1 (= the message's number) and user `req` (= the
     * request's): on_error with the user id; the message stays queued, the
     * request waits. */
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_DENIED, 1, "not allowed to see 1"));
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_DENIED, req, "past --max-subscriptions"));
    assert_int_equal(t.r.errs, 2);
    assert_int_equal(t.r.err_code[0], CHAT_SERR_DENIED);
    assert_true(t.r.err_seq[0] == 1);
    assert_string_equal(t.r.err_reason[0], "not allowed to see 1");
    assert_int_equal(t.r.err_code[1], CHAT_SERR_DENIED);
    assert_true(t.r.err_seq[1] == req);
    assert_int_equal(chat_queued_frames(c), 1);
    assert_int_equal(t.r.disconnected, 0);
    assert_string_equal(chat_server_strerror(CHAT_SERR_DENIED), "presence subscription refused");
    /* ERROR GROUP with ref 0 (a TYPING to a group this user is not in). */
    assert_int_equal(chat_typing(c, 3, 1, 1), 0);
    srv_take(&s, c, want, 13 + 6);
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_GROUP, 0, "not a member of group 3"));
    assert_int_equal(t.r.errs, 3);
    assert_int_equal(t.r.err_code[2], CHAT_SERR_GROUP);
    assert_true(t.r.err_seq[2] == 0);
    /* The message is acknowledged as usual. */
    srv_feed(&s, c, in, s2c_ack(in, 1));
    assert_int_equal(chat_queued_frames(c), 0);
    assert_true(t.r.acked == seq);
    chat_free(c);
    srv_close(&s);
}

/* Take a POST of `body` (sender 42) to `to` from the fake server, check
 * it (flags: 0, or 2 for a group), and return its cid. */
static uint64_t take_post(srv *s, chat_client *c, uint32_t to, uint8_t flags,
                          const char *body) {
    uint8_t want[64], got[64];
    size_t n = c2s_post(want, 42, to, 1, 0, body);
    want[14] = flags;
    srv_take(s, c, got, n);
    assert_memory_equal(got, want, 15);            /* header, kind, flags */
    assert_memory_equal(got + 23, want + 23, n - 23); /* body */
    return frame_rd64(got + 15);
}

/* POSTED: the server id of each message sent, to on_posted with its seq. */
static void test_posted(void **state) {
    (void)state;
    srv s;
    st t = {0};
    chat_client *c = sig_connected(&s, &t, SIG_FLAGS);
    uint64_t seq1 = 0, seq2 = 0;
    assert_int_equal(chat_send_text(c, 7, "hi", &seq1), 0);
    assert_int_equal(chat_send_group_text(c, 3, "all", &seq2), 0);
    assert_true(seq1 == 1 && seq2 == 2);
    uint64_t cid1 = take_post(&s, c, 7, 0, "hi");
    uint64_t cid2 = take_post(&s, c, 3, 2, "all");
    assert_true(cid1 != 0 && cid2 == cid1 + 1);
    srv_expect_nothing(&s, c);
    assert_int_equal(t.n, 0);
    uint8_t in[256];
    bb b = {0};
    /* Queued (written, not acknowledged) messages: their seqs, split at
     * every byte. */
    s_posted(&b, cid1, 0x0102030405060708ull);
    srv_feed_bytewise(&s, c, in, s2c_bb(in, 0x8F, &b));
    s_posted(&b, cid2, 1002);
    srv_feed(&s, c, in, s2c_bb(in, 0x8F, &b));
    assert_int_equal(t.n, 2);
    assert_int_equal(t.s[0].kind, 'x');
    assert_true(t.s[0].seq == seq1 && t.s[0].id == 0x0102030405060708ull);
    assert_int_equal(t.s[1].kind, 'x');
    assert_true(t.s[1].seq == seq2 && t.s[1].id == 1002);
    /* cids that are not this client's: the one before its first (seq 0),
     * the one after its last (seq 3, not handed out yet), one far away,
     * the largest: ignored, the connection stays. */
    s_posted(&b, cid1 - 1, 1);
    srv_feed(&s, c, in, s2c_bb(in, 0x8F, &b));
    s_posted(&b, cid2 + 1, 2);
    srv_feed(&s, c, in, s2c_bb(in, 0x8F, &b));
    s_posted(&b, cid1 ^ 0x4000000000000000ull, 3);
    srv_feed(&s, c, in, s2c_bb(in, 0x8F, &b));
    s_posted(&b, UINT64_MAX, 4);
    srv_feed(&s, c, in, s2c_bb(in, 0x8F, &b));
    assert_int_equal(t.n, 2);
    assert_int_equal(t.r.disconnected, 0);
    /* POSTED is not a data frame: no ACK for it. */
    srv_expect_nothing(&s, c);
    assert_int_equal(chat_queued_frames(c), 2);

    /* The connection is lost before the ACK: both are resent with their
     * cids, and the server, which has them, names their ids again. */
    srv_drop(&s);
    for (int i = 0; i < 100 && t.r.disconnected == 0; i++) chat_run_once(c, 100);
    assert_int_equal(t.r.disconnected, 1);
    t.r.now += 10000;
    sig_session(&s, c, &t, SIG_FLAGS);
    assert_true(take_post(&s, c, 7, 0, "hi") == cid1);
    assert_true(take_post(&s, c, 3, 2, "all") == cid2);
    s_posted(&b, cid1, 0x0102030405060708ull);
    srv_feed(&s, c, in, s2c_bb(in, 0x8F, &b));
    s_posted(&b, cid2, 1002);
    srv_feed_bytewise(&s, c, in, s2c_bb(in, 0x8F, &b));
    assert_int_equal(t.n, 4);
    assert_true(t.s[2].kind == 'x' && t.s[2].seq == seq1 &&
                t.s[2].id == 0x0102030405060708ull);
    assert_true(t.s[3].kind == 'x' && t.s[3].seq == seq2 && t.s[3].id == 1002);
    /* Then the ACK, as usual. */
    srv_feed(&s, c, in, s2c_ack(in, 2));
    assert_int_equal(chat_queued_frames(c), 0);
    assert_true(t.r.acked == seq2);
    /* A later message: the next cid, the next seq. */
    uint64_t seq3 = 0;
    assert_int_equal(chat_send_text(c, 7, "more", &seq3), 0);
    assert_true(take_post(&s, c, 7, 0, "more") == cid1 + 2);
    s_posted(&b, cid1 + 2, 1010);
    srv_feed(&s, c, in, s2c_bb(in, 0x8F, &b));
    assert_int_equal(t.n, 5);
    assert_true(t.s[4].seq == seq3 && seq3 == 3 && t.s[4].id == 1010);
    assert_int_equal(t.r.disconnected, 1); /* (the drop above only) */
    chat_free(c);
    srv_close(&s);
}

enum { BAD_R_SHORT, BAD_R_LONG, BAD_R_WHAT0, BAD_R_QUERY, BAD_R_WHAT5, BAD_R_FLAGS,
       BAD_R_CONV0, BAD_T_SHORT, BAD_T_FLAGS, BAD_T_TO0, BAD_T_STATE, BAD_T_SENDER0,
       BAD_P_SHORT, BAD_P_LONG, BAD_P_USER0, BAD_P_STATE, BAD_X_SHORT, BAD_X_LONG,
       BAD_X_CID0, BAD_N };

/* The server frame for malformed case k. */
static size_t bad_frame(uint8_t *out, int k) {
    bb b = {0};
    uint8_t type = 0x8C;
    uint32_t sender = 0;
    switch (k) {
    case BAD_R_SHORT: s_receipt(&b, 1, 0, 7, 7, 1, 1); b.n--; break;
    case BAD_R_LONG: s_receipt(&b, 1, 0, 7, 7, 1, 1); bb_u8(&b, 0); break;
    case BAD_R_WHAT0: s_receipt(&b, 0, 0, 7, 7, 1, 1); break;
    case BAD_R_QUERY: s_receipt(&b, 3, 0, 7, 0, 0, 0); break;
    case BAD_R_WHAT5: s_receipt(&b, 5, 0, 7, 7, 1, 1); break;
    case BAD_R_FLAGS: s_receipt(&b, 1, 1, 7, 7, 1, 1); break;
    case BAD_R_CONV0: s_receipt(&b, 1, 0, 0, 7, 1, 1); break;
    default: break;
    }
    if (k >= BAD_T_SHORT && k <= BAD_T_SENDER0) {
        type = 0x8D;
        sender = 7;
        switch (k) {
        case BAD_T_SHORT: s_typing(&b, 0, 42, 1); b.n--; break;
        case BAD_T_FLAGS: s_typing(&b, 4, 42, 1); break;
        case BAD_T_TO0: s_typing(&b, 0, 0, 1); break;
        case BAD_T_STATE: s_typing(&b, 0, 42, 2); break;
        default: s_typing(&b, 0, 42, 1); sender = 0; break;
        }
    }
    if (k >= BAD_X_SHORT) {
        switch (k) {
        case BAD_X_SHORT: s_posted(&b, 5, 6); b.n--; break;
        case BAD_X_LONG: s_posted(&b, 5, 6); bb_u8(&b, 0); break;
        default: s_posted(&b, 0, 6); break; /* BAD_X_CID0 */
        }
        return s2c(out, 0, 0x8F, b.b, (uint32_t)b.n);
    }
    if (k >= BAD_P_SHORT) {
        type = 0x8E;
        switch (k) {
        case BAD_P_SHORT: s_presence(&b, 7, 1, 0); b.n--; break;
        case BAD_P_LONG: s_presence(&b, 7, 1, 0); bb_u8(&b, 0); break;
        case BAD_P_USER0: s_presence(&b, 0, 1, 0); break;
        default: s_presence(&b, 7, 2, 0); break;
        }
    }
    return s2c(out, sender, type, b.b, (uint32_t)b.n);
}

static void test_malformed_rejected(void **state) {
    (void)state;
    srv s;
    st t = {0};
    chat_client *c = sig_connected(&s, &t, SIG_FLAGS);
    uint8_t in[256];
    for (int k = 0; k < BAD_N; k++) {
        size_t n = bad_frame(in, k);
        if (k % 2) {
            srv_feed_bytewise(&s, c, in, n - 1);
            feed_proto_error(&s, c, &t.r, in + n - 1, 1);
        } else {
            feed_proto_error(&s, c, &t.r, in, n);
        }
        assert_int_equal(t.n, 0);
        assert_int_equal(chat_signals_granted(c), 0);
        assert_int_equal(chat_connect(c), 0);
        srv_drop(&s);
        sig_session(&s, c, &t, SIG_FLAGS);
    }
    /* Well-formed signal frames on a connection without SIGNALS. */
    bb b = {0};
    int before = t.r.disconnected;
    srv_drop(&s);
    for (int i = 0; i < 100 && t.r.disconnected == before; i++) chat_run_once(c, 100);
    t.r.now += 10000;
    for (int k = 0; k < 4; k++) {
        if (k) {
            assert_int_equal(chat_connect(c), 0);
            srv_drop(&s);
        }
        sig_session(&s, c, &t, CONV_FLAGS);
        size_t n;
        if (k == 0) { s_receipt(&b, 1, 0, 7, 7, 1, 1); n = s2c_bb(in, 0x8C, &b); }
        else if (k == 1) { s_typing(&b, 0, 42, 1); n = s2c(in, 7, 0x8D, b.b, (uint32_t)b.n); }
        else if (k == 2) { s_presence(&b, 7, 1, 0); n = s2c_bb(in, 0x8E, &b); }
        else { s_posted(&b, 5, 6); n = s2c_bb(in, 0x8F, &b); }
        feed_proto_error(&s, c, &t.r, in, n);
        assert_int_equal(t.n, 0);
    }
    chat_free(c);
    srv_close(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_flags_and_granted),
        cmocka_unit_test(test_frames_written),
        cmocka_unit_test(test_presence_split_and_full),
        cmocka_unit_test(test_callbacks),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_posted),
        cmocka_unit_test(test_malformed_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
