/*
 * test_libchat_history.c -- libchat and history (docs/PROTOCOL.md
 * "History"): chat_history's HISTORY frame, pages through on_history,
 * refusals and lost requests.
 *
 * The fake server is libchat_fake.h's; expected and fed frames are built
 * by hand (bb_*), not with the codec under test.
 *
 * Covers: HISTORY bytes for both kinds; argument checks, CHAT_ESTATE
 * without CONV; a page decoded (a user's message, an own one, a group's,
 * media), newest first as sent, split at every byte, neither acknowledged
 * nor fed to the duplicates filter of on_msg; an empty page; a page of
 * more than max_recv bytes whose messages each fit; a refusal (ERROR with
 * ref = req) to on_history, or to on_error without it; a request lost
 * with the connection; every malformed page refused with CHAT_EPROTO.
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
/* Recording on_history                                                */
/* ------------------------------------------------------------------ */

typedef struct hpage {
    uint32_t req;
    int err, code, more;
    char reason[96];
    size_t n;
    chat_msg m[8];     /* body pointers cleared: see body[] */
    char body[8][64];
    size_t total;      /* sum of the body lengths */
} hpage;

typedef struct ht {
    rec r; /* first: the rec callbacks take the same userdata */
    int n;
    hpage p[24];
} ht;

static void on_history(chat_client *c, const chat_history_page *p, void *ud) {
    (void)c;
    ht *t = ud;
    assert_true(t->n < 24);
    hpage *h = &t->p[t->n++];
    memset(h, 0, sizeof *h);
    h->req = p->req;
    h->err = p->err;
    h->code = p->code;
    h->more = p->more;
    assert_non_null(p->reason);
    assert_true(p->reason_len < sizeof h->reason);
    memcpy(h->reason, p->reason, p->reason_len);
    h->n = p->n;
    for (size_t i = 0; i < p->n; i++) {
        h->total += p->msgs[i].len;
        if (i >= 8) continue;
        h->m[i] = p->msgs[i];
        h->m[i].body = NULL;
        memcpy(h->body[i], p->msgs[i].body, p->msgs[i].len < 63 ? p->msgs[i].len : 63);
    }
}

static chat_client *history_client(srv *s, ht *t, uint32_t max_recv) {
    conv_opts co = {.use_on_msg = 1, .conv = 1, .on_history = on_history,
                    .max_recv = max_recv};
    return connected(s, &t->r, &co, CONV_FLAGS);
}

/* The HISTORY frame the client must write. */
static void want_history(bb *w, uint32_t req, uint8_t kind, uint32_t peer,
                         uint64_t before, uint16_t limit) {
    bb_c2s(w, 42, 0, 0x8A, 19);
    bb_u32(w, req);
    bb_u8(w, kind);
    bb_u32(w, peer);
    bb_u64(w, before);
    bb_u16(w, limit);
}

static void page_pre(bb *w, uint32_t req, unsigned more, unsigned count) {
    bb_u32(w, req);
    bb_u8(w, more);
    bb_u16(w, count);
}

static void page_entry(bb *w, uint64_t id, uint32_t sender, uint8_t kind,
                       uint8_t flags, uint32_t to, uint64_t time,
                       const char *body) {
    bb_u64(w, id);
    bb_u32(w, sender);
    bb_u8(w, kind);
    bb_u8(w, flags);
    bb_u32(w, to);
    bb_u64(w, time);
    bb_u32(w, (uint32_t)strlen(body));
    bb_bytes(w, body, strlen(body));
}

/* Ask for a page, take the request's bytes; its number. */
static uint32_t ask(srv *s, chat_client *c, int kind, uint32_t peer) {
    uint32_t req = 0;
    assert_int_equal(chat_history(c, kind, peer, 0, 10, &req), 0);
    uint8_t got[32];
    srv_take(s, c, got, 13 + 19);
    return req;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_history_request_bytes_and_checks(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    ht t = {0};
    conv_opts co = {.use_on_msg = 1, .conv = 1, .on_history = on_history};
    chat_client *c = conv_client(&t.r, s.port, &co);
    uint32_t r1 = 0, r2 = 0;
    assert_int_equal(chat_history(c, CHAT_HISTORY_USER, 7, 0, 50, &r1), CHAT_ESTATE);
    assert_int_equal(chat_connect(c), 0);
    conv_session(&s, c, &t.r, CONV_FLAGS);
    assert_int_equal(chat_history(c, CHAT_HISTORY_USER, 7, 0, 50, &r1), 0);
    assert_int_equal(chat_history(c, CHAT_HISTORY_GROUP, 3, 0x0102030405060708ull,
                                  CHAT_HISTORY_LIMIT_MAX, &r2), 0);
    assert_int_equal(t.n, 0); /* no callback inside a call */
    assert_true(r1 >= 0x80000000u && r2 >= 0x80000000u && r1 != r2);
    bb want = {0};
    want_history(&want, r1, 1, 7, 0, 50);
    want_history(&want, r2, 2, 3, 0x0102030405060708ull, 200);
    srv_expect(&s, c, want.b, want.n);
    assert_int_equal(chat_history(NULL, 1, 7, 0, 1, NULL), CHAT_EINVAL);
    assert_int_equal(chat_history(c, 0, 7, 0, 1, NULL), CHAT_EINVAL);
    assert_int_equal(chat_history(c, 3, 7, 0, 1, NULL), CHAT_EINVAL);
    assert_int_equal(chat_history(c, 1, 0, 0, 1, NULL), CHAT_EINVAL);
    assert_int_equal(chat_history(c, 1, 7, 0, 0, NULL), CHAT_EINVAL);
    assert_int_equal(chat_history(c, 1, 7, 0, 201, NULL), CHAT_EINVAL);
    srv_expect_nothing(&s, c);
    reconnect(&s, c, &t.r, FRAME_FLAG_ACKS); /* (the two are lost with it) */
    assert_int_equal(t.n, 2);
    assert_int_equal(chat_history(c, 1, 7, 0, 1, NULL), CHAT_ESTATE);
    chat_free(c);
    srv_close(&s);
}

static void test_page_decoded(void **state) {
    (void)state;
    srv s;
    ht t = {0};
    chat_client *c = history_client(&s, &t, 0);
    uint32_t req = ask(&s, c, CHAT_HISTORY_USER, 7);
    bb b = {0};
    page_pre(&b, req, 1, 3);
    page_entry(&b, 300, 7, CHAT_TEXT, 0, 42, 1700000000300ull, "newest");
    page_entry(&b, 200, 42, CHAT_PICTURE, FRAME_MSG_OWN, 7, 1700000000200ull, "png");
    page_entry(&b, 100, 42, CHAT_TEXT, FRAME_MSG_OWN | FRAME_MSG_GROUP, 3, 1, "");
    uint8_t in[512];
    srv_feed_bytewise(&s, c, in, s2c_bb(in, FRAME_HISTORY_PAGE, &b));
    assert_int_equal(t.n, 1);
    hpage *h = &t.p[0];
    assert_int_equal(h->req, req);
    assert_int_equal(h->err, 0);
    assert_int_equal(h->more, 1);
    assert_int_equal(h->n, 3);
    assert_true(h->m[0].id == 300);
    assert_int_equal(h->m[0].sender, 7);
    assert_int_equal(h->m[0].to, 42);
    assert_int_equal(h->m[0].type, CHAT_TEXT);
    assert_int_equal(h->m[0].own, 0);
    assert_int_equal(h->m[0].group, 0);
    assert_true(h->m[0].time_ms == 1700000000300ull);
    assert_string_equal(h->body[0], "newest");
    assert_true(h->m[1].id == 200);
    assert_int_equal(h->m[1].own, 1);
    assert_int_equal(h->m[1].type, CHAT_PICTURE);
    assert_int_equal(h->m[1].len, 3);
    assert_int_equal(h->m[2].group, 3);
    assert_int_equal(h->m[2].to, 3);
    assert_int_equal(h->m[2].own, 1);
    assert_int_equal(h->m[2].len, 0);
    assert_string_equal(h->reason, "");

    /* Not acknowledged, and not part of the duplicates filter: a live MSG
     * with a lower id than the page's still comes through. */
    srv_expect_nothing(&s, c);
    uint8_t want[64];
    srv_feed(&s, c, in, s2c_msg(in, 7, 50, CHAT_TEXT, 0, 42, 1, "live"));
    assert_int_equal(t.r.msgs, 1);
    srv_expect(&s, c, want, c2s_ack(want, 42, 1));

    /* An empty page (a server without --history-ttl). */
    req = ask(&s, c, CHAT_HISTORY_GROUP, 3);
    b.n = 0;
    page_pre(&b, req, 0, 0);
    srv_feed(&s, c, in, s2c_bb(in, FRAME_HISTORY_PAGE, &b));
    assert_int_equal(t.n, 2);
    assert_int_equal(t.p[1].n, 0);
    assert_int_equal(t.p[1].more, 0);
    assert_int_equal(t.p[1].err, 0);
    chat_free(c);
    srv_close(&s);
}

/* A page far larger than max_recv (200 messages of max_recv bytes each):
 * accepted, since each message fits. */
static void test_page_larger_than_max_recv(void **state) {
    (void)state;
    srv s;
    ht t = {0};
    enum { MAX = 1000, SMALL = 999, N_SMALL = 199 };
    chat_client *c = history_client(&s, &t, MAX);
    uint32_t req = ask(&s, c, CHAT_HISTORY_USER, 7);
    size_t cap = 9 + 7 + (size_t)N_SMALL * (30 + SMALL) + 30 + MAX;
    uint8_t *p = malloc(cap), *w = p + 9;
    assert_non_null(p);
    frame_wr32(w, req);
    w[4] = 0;
    w[5] = 0;
    w[6] = (uint8_t)(N_SMALL + 1);
    size_t at = 7;
    for (int i = 0; i <= N_SMALL; i++) {
        uint32_t len = i < N_SMALL ? SMALL : MAX;
        memset(w + at, 0, 30);
        frame_wr64(w + at, 1000 - (uint64_t)i);
        frame_wr32(w + at + 8, 7);
        w[at + 12] = CHAT_VOICE;
        frame_wr32(w + at + 14, 42);
        frame_wr32(w + at + 26, len);
        memset(w + at + 30, 'v', len);
        at += 30 + len;
    }
    frame_put_s2c_hdr(p, 0, FRAME_HISTORY_PAGE, (uint32_t)at);
    assert_true(at > 200u * MAX);
    size_t off = 0;
    while (off < 9 + at) { /* the socket takes it in pieces */
        ssize_t k = write(s.cfd, p + off, 9 + at - off);
        assert_true(k > 0);
        off += (size_t)k;
        for (int i = 0; i < 20; i++) assert_int_equal(chat_run_once(c, 10), 0);
    }
    for (int i = 0; i < 100 && t.n == 0; i++) assert_int_equal(chat_run_once(c, 100), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.p[0].n, N_SMALL + 1);
    assert_int_equal(t.p[0].total, (size_t)N_SMALL * SMALL + MAX);
    /* One byte over max_recv in a message: refused. */
    req = ask(&s, c, CHAT_HISTORY_USER, 7);
    bb b = {0};
    page_pre(&b, req, 0, 1);
    char big[MAX + 2];
    memset(big, 'x', MAX + 1);
    big[MAX + 1] = '\0';
    page_entry(&b, 5, 7, CHAT_TEXT, 0, 42, 1, big);
    uint8_t in[2048];
    feed_proto_error(&s, c, &t.r, in, s2c_bb(in, FRAME_HISTORY_PAGE, &b));
    free(p);
    chat_free(c);
    srv_close(&s);
}

static void test_refused_and_lost(void **state) {
    (void)state;
    srv s;
    ht t = {0};
    chat_client *c = history_client(&s, &t, 0);
    uint32_t req = ask(&s, c, CHAT_HISTORY_GROUP, 3);
    uint8_t in[256];
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_GROUP, req, "not a member of group 3"));
    assert_int_equal(t.n, 1);
    assert_int_equal(t.r.errs, 0);
    assert_int_equal(t.p[0].req, req);
    assert_int_equal(t.p[0].err, CHAT_EREFUSED);
    assert_int_equal(t.p[0].code, CHAT_SERR_GROUP);
    assert_string_equal(t.p[0].reason, "not a member of group 3");
    assert_int_equal(t.p[0].n, 0);
    /* Lost with the connection. */
    req = ask(&s, c, CHAT_HISTORY_USER, 9);
    reconnect(&s, c, &t.r, CONV_FLAGS);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.p[1].req, req);
    assert_int_equal(t.p[1].err, CHAT_ECLOSED);
    chat_free(c);
    srv_close(&s);

    /* Without on_history: the refusal to on_error (seq 0). */
    rec r = {0};
    conv_opts co = {.conv = 1};
    c = connected(&s, &r, &co, CONV_FLAGS);
    req = ask(&s, c, CHAT_HISTORY_GROUP, 3);
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_GROUP, req, "no group 3"));
    assert_int_equal(r.errs, 1);
    assert_int_equal(r.err_code[0], CHAT_SERR_GROUP);
    assert_true(r.err_seq[0] == 0);
    chat_free(c);
    srv_close(&s);
}

enum { BADP_SHORT, BADP_MORE2, BADP_COUNT, BADP_KIND0, BADP_KIND5, BADP_PAYLOAD,
       BADP_TAIL, BADP_NOREQ, BADP_GROUPREQ, BADP_N };

static void bad_page(bb *b, int k, uint32_t req, uint32_t greq) {
    b->n = 0;
    switch (k) {
    case BADP_SHORT: page_pre(b, req, 0, 0); b->n = 6; break;
    case BADP_MORE2: page_pre(b, req, 2, 0); break;
    case BADP_COUNT:
        page_pre(b, req, 0, 2);
        page_entry(b, 5, 7, CHAT_TEXT, 0, 42, 1, "a");
        break;
    case BADP_KIND0:
        page_pre(b, req, 0, 1);
        page_entry(b, 5, 7, 0, 0, 42, 1, "a");
        break;
    case BADP_KIND5:
        page_pre(b, req, 0, 1);
        page_entry(b, 5, 7, 5, 0, 42, 1, "a");
        break;
    case BADP_PAYLOAD:
        page_pre(b, req, 0, 1);
        page_entry(b, 5, 7, CHAT_TEXT, 0, 42, 1, "ab");
        b->n--; /* its length says 2, 1 byte follows */
        break;
    case BADP_TAIL:
        page_pre(b, req, 0, 1);
        page_entry(b, 5, 7, CHAT_TEXT, 0, 42, 1, "a");
        bb_u8(b, 0);
        break;
    case BADP_NOREQ: page_pre(b, req + 7, 0, 0); break;
    case BADP_GROUPREQ: page_pre(b, greq, 0, 0); break; /* a GROUP request's number */
    default: fail();
    }
}

static void test_malformed_pages_rejected(void **state) {
    (void)state;
    srv s;
    ht t = {0};
    chat_client *c = history_client(&s, &t, 0);
    uint8_t in[256];
    bb b;
    for (int k = 0; k < BADP_N; k++) {
        uint32_t req = ask(&s, c, CHAT_HISTORY_USER, 7), greq;
        assert_int_equal(chat_group_list(c, &greq), 0);
        int before = t.n;
        bad_page(&b, k, req, greq);
        size_t n = s2c_bb(in, FRAME_HISTORY_PAGE, &b);
        if (k % 2) {
            srv_feed_bytewise(&s, c, in, n - 1);
            feed_proto_error(&s, c, &t.r, in + n - 1, 1);
        } else {
            feed_proto_error(&s, c, &t.r, in, n);
        }
        assert_int_equal(t.n, before + 1); /* the history request, lost */
        assert_int_equal(t.p[before].err, CHAT_EPROTO);
        assert_int_equal(t.p[before].n, 0);
        assert_int_equal(chat_connect(c), 0);
        srv_drop(&s);
        conv_session(&s, c, &t.r, CONV_FLAGS);
    }
    /* A page on a connection without CONV. */
    reconnect(&s, c, &t.r, FRAME_FLAG_ACKS);
    b.n = 0;
    page_pre(&b, 0x80000001u, 0, 0);
    feed_proto_error(&s, c, &t.r, in, s2c_bb(in, FRAME_HISTORY_PAGE, &b));
    chat_free(c);
    srv_close(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_request_bytes_and_checks),
        cmocka_unit_test(test_page_decoded),
        cmocka_unit_test(test_page_larger_than_max_recv),
        cmocka_unit_test(test_refused_and_lost),
        cmocka_unit_test(test_malformed_pages_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
