/*
 * test_libchat_groups.c -- libchat and groups (docs/PROTOCOL.md "Groups"):
 * the group requests (chat_group_*), their answers, refusals and events
 * through on_group, and group messages (chat_send_group*, MSG with the
 * GROUP flag).
 *
 * The fake server is libchat_fake.h's: the test reads the exact bytes the
 * client writes and writes frames to it; expected and fed frames are built
 * by hand (bb_*), not with the codec under test.
 *
 * Covers: every request's bytes; request numbers from 2^31, distinct; no
 * callback inside a call; argument checks, CHAT_ESTATE without CONV,
 * CHAT_EFULL at CHAT_REQUESTS_MAX; CREATE, LIST, MEMBERS answers and an
 * EVENT decoded (split at every byte), answers in another order than the
 * requests; an ERROR GROUP naming a request routed to on_group (not
 * on_error) while one naming a group message goes to on_error with its
 * seq, another code naming a request refusing it too, a refusal to
 * on_error when on_group is NULL; requests reported lost with
 * the connection (before on_disconnected), forgotten by chat_disconnect;
 * group POST bytes (flag 0x02, cid) and their resend, refused locally on a
 * connection without CONV, CHAT_ESTATE when CONV cannot be had; a group
 * file; group MSG into chat_msg.group; every malformed GROUPS refused with
 * CHAT_EPROTO.
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
/* Recording on_group                                                  */
/* ------------------------------------------------------------------ */

typedef struct gev {
    int op, err, code, what;
    uint32_t req, group, by;
    char reason[96];
    size_t n_groups, n_members, n_users;
    chat_group_info groups[4];
    chat_group_member members[8];
    uint32_t users[8];
    char name[CHAT_GROUP_NAME_MAX + 1];
    int disconnected; /* rec.disconnected when it was called */
} gev;

typedef struct gt {
    rec r; /* first: the rec callbacks take the same userdata */
    int n;
    gev ev[80];
} gt;

static void on_group(chat_client *c, const chat_group_event *e, void *ud) {
    (void)c;
    gt *t = ud;
    assert_true(t->n < 80);
    gev *g = &t->ev[t->n++];
    memset(g, 0, sizeof *g);
    g->op = e->op;
    g->err = e->err;
    g->code = e->code;
    g->req = e->req;
    g->group = e->group;
    assert_non_null(e->reason);
    assert_true(e->reason_len < sizeof g->reason);
    memcpy(g->reason, e->reason, e->reason_len);
    g->n_groups = e->n_groups;
    assert_true(e->n_groups <= 4 && e->n_members <= 8 && e->n_users <= 8);
    if (e->n_groups) memcpy(g->groups, e->groups, e->n_groups * sizeof e->groups[0]);
    g->n_members = e->n_members;
    if (e->n_members) memcpy(g->members, e->members, e->n_members * sizeof e->members[0]);
    g->what = e->what;
    g->by = e->by;
    g->n_users = e->n_users;
    if (e->n_users) memcpy(g->users, e->users, e->n_users * sizeof e->users[0]);
    assert_non_null(e->name);
    assert_int_equal(strlen(e->name), e->name_len);
    memcpy(g->name, e->name, e->name_len + 1);
    g->disconnected = t->r.disconnected;
}

static chat_client *group_client(srv *s, gt *t, uint8_t flags) {
    conv_opts co = {.use_on_msg = 1, .conv = 1, .on_group = on_group};
    return connected(s, &t->r, &co, flags);
}

/* The GROUP frame the client must write: header, prefix, then args. */
static void want_group(bb *w, uint8_t op, uint32_t req, uint32_t group,
                       const bb *args) {
    bb_c2s(w, 42, 0, 0x88, 9 + (uint32_t)args->n);
    bb_u8(w, op);
    bb_u32(w, req);
    bb_u32(w, group);
    bb_bytes(w, args->b, args->n);
}

/* A GROUPS body: prefix, then args. */
static void groups_body(bb *w, uint8_t op, uint32_t req, uint32_t group) {
    bb_u8(w, op);
    bb_u32(w, req);
    bb_u32(w, group);
}

/* Feed a GROUPS frame of body b. */
static void feed_groups(srv *s, chat_client *c, const bb *b) {
    static uint8_t in[9000];
    srv_feed(s, c, in, s2c_bb(in, FRAME_GROUPS, b));
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static void test_request_bytes(void **state) {
    (void)state;
    srv s;
    gt t = {0};
    chat_client *c = group_client(&s, &t, CONV_FLAGS);
    uint32_t req[7] = {0};
    const uint32_t two[] = {5, 6}, seven[] = {7};
    assert_int_equal(chat_group_create(c, "friends", two, 2, &req[0]), 0);
    assert_int_equal(chat_group_rename(c, 9, "pals \xe2\x9c\x93", &req[1]), 0);
    assert_int_equal(chat_group_add(c, 9, seven, 1, &req[2]), 0);
    assert_int_equal(chat_group_remove(c, 9, two, 2, &req[3]), 0);
    assert_int_equal(chat_group_leave(c, 9, &req[4]), 0);
    assert_int_equal(chat_group_list(c, &req[5]), 0);
    assert_int_equal(chat_group_members(c, 9, &req[6]), 0);
    assert_int_equal(chat_group_list(c, NULL), 0); /* req_out is optional */
    assert_int_equal(t.n, 0); /* no callback inside a call */
    for (int i = 0; i < 7; i++) {
        assert_true(req[i] >= 0x80000000u);
        for (int j = 0; j < i; j++) assert_true(req[i] != req[j]);
    }
    bb want = {0}, a = {0};
    bb_name(&a, "friends");
    bb_u16(&a, 2);
    bb_u32(&a, 5);
    bb_u32(&a, 6);
    want_group(&want, 1, req[0], 0, &a);
    a.n = 0;
    bb_name(&a, "pals \xe2\x9c\x93");
    want_group(&want, 2, req[1], 9, &a);
    a.n = 0;
    bb_u16(&a, 1);
    bb_u32(&a, 7);
    want_group(&want, 3, req[2], 9, &a);
    a.n = 0;
    bb_u16(&a, 2);
    bb_u32(&a, 5);
    bb_u32(&a, 6);
    want_group(&want, 4, req[3], 9, &a);
    a.n = 0;
    want_group(&want, 5, req[4], 9, &a);
    want_group(&want, 6, req[5], 0, &a);
    want_group(&want, 7, req[6], 9, &a);
    srv_expect(&s, c, want.b, want.n);
    uint8_t last[22];
    srv_take(&s, c, last, sizeof last); /* the LIST without req_out */
    assert_int_equal(last[13], 6);
    srv_expect_nothing(&s, c);
    assert_int_equal(t.n, 0);
    chat_free(c);
    srv_close(&s);
}

static void test_request_arguments_and_state(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    gt t = {0};
    conv_opts co = {.use_on_msg = 1, .conv = 1, .on_group = on_group};
    chat_client *c = conv_client(&t.r, s.port, &co);
    const uint32_t one[] = {5}, zero[] = {5, 0};
    uint32_t req = 0;
    /* Not connected: no request (they are not queued). */
    assert_int_equal(chat_group_list(c, &req), CHAT_ESTATE);
    assert_int_equal(chat_group_create(c, "x", NULL, 0, &req), CHAT_ESTATE);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    srv_expect(&s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    assert_int_equal(chat_group_list(c, &req), CHAT_ESTATE); /* before WELCOME */
    uint8_t in[64];
    srv_feed(&s, c, in, s2c_welcome(in, CONV_FLAGS, 42, 1u << 20));

    char name65[66];
    memset(name65, 'n', 65);
    name65[65] = '\0';
    assert_int_equal(chat_group_create(NULL, "x", NULL, 0, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_create(c, "", NULL, 0, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_create(c, NULL, NULL, 0, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_create(c, name65, NULL, 0, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_create(c, "x", zero, 2, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_create(c, "x", NULL, 1, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_rename(c, 0, "x", &req), CHAT_EINVAL);
    assert_int_equal(chat_group_rename(c, 3, "", &req), CHAT_EINVAL);
    assert_int_equal(chat_group_add(c, 3, one, 0, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_add(c, 0, one, 1, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_remove(c, 3, zero, 2, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_leave(c, 0, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_members(c, 0, &req), CHAT_EINVAL);
    assert_int_equal(chat_group_list(NULL, &req), CHAT_EINVAL);
    uint32_t *many = calloc(CHAT_GROUP_USERS_MAX + 1, sizeof *many);
    assert_non_null(many);
    for (unsigned i = 0; i <= CHAT_GROUP_USERS_MAX; i++) many[i] = i + 1;
    assert_int_equal(chat_group_add(c, 3, many, CHAT_GROUP_USERS_MAX + 1, &req),
                     CHAT_EINVAL);
    srv_expect_nothing(&s, c); /* nothing refused was written */

    /* The largest request fits; the table holds CHAT_REQUESTS_MAX. */
    assert_int_equal(chat_group_create(c, name65 + 1, many, CHAT_GROUP_USERS_MAX, &req), 0);
    free(many);
    for (unsigned i = 1; i < CHAT_REQUESTS_MAX; i++)
        assert_int_equal(chat_group_list(c, NULL), 0);
    assert_int_equal(chat_group_list(c, &req), CHAT_EFULL);
    assert_int_equal(t.n, 0);
    chat_free(c);

    /* A connection without CONV: CHAT_ESTATE. */
    rec r2 = {0};
    conv_opts co2 = {.conv = 1};
    c = conv_client(&r2, s.port, &co2);
    assert_int_equal(chat_connect(c), 0);
    srv_drop(&s);
    conv_session(&s, c, &r2, FRAME_FLAG_ACKS);
    assert_int_equal(chat_group_list(c, &req), CHAT_ESTATE);
    assert_int_equal(chat_group_leave(c, 3, &req), CHAT_ESTATE);
    chat_free(c);
    srv_close(&s);
}

/* ------------------------------------------------------------------ */
/* Answers and events                                                  */
/* ------------------------------------------------------------------ */

static void test_answers_and_events_decoded(void **state) {
    (void)state;
    srv s;
    gt t = {0};
    chat_client *c = group_client(&s, &t, CONV_FLAGS);
    uint32_t rc_, rl, rm;
    const uint32_t two[] = {5, 6};
    assert_int_equal(chat_group_create(c, "friends", two, 2, &rc_), 0);
    assert_int_equal(chat_group_list(c, &rl), 0);
    assert_int_equal(chat_group_members(c, 9, &rm), 0);
    uint8_t in[512];
    srv_take(&s, c, in, 40 + 22 + 22); /* (their bytes: test_request_bytes) */

    /* MEMBERS first, then CREATE, then LIST: any order. */
    bb b = {0};
    groups_body(&b, 7, rm, 9);
    bb_u16(&b, 3);
    bb_u32(&b, 42);
    bb_u8(&b, 1);
    bb_u32(&b, 5);
    bb_u8(&b, 0);
    bb_u32(&b, 6);
    bb_u8(&b, 0x80); /* a flag this version does not know */
    feed_groups(&s, c, &b);
    assert_int_equal(t.n, 1);
    gev *g = &t.ev[0];
    assert_int_equal(g->op, CHAT_GROUP_MEMBERS);
    assert_int_equal(g->req, rm);
    assert_int_equal(g->group, 9);
    assert_int_equal(g->err, 0);
    assert_int_equal(g->n_members, 3);
    assert_int_equal(g->members[0].user, 42);
    assert_int_equal(g->members[0].admin, 1);
    assert_int_equal(g->members[1].user, 5);
    assert_int_equal(g->members[1].admin, 0);
    assert_int_equal(g->members[2].user, 6);
    assert_int_equal(g->members[2].admin, 0);

    b.n = 0;
    groups_body(&b, 1, rc_, 9);
    feed_groups(&s, c, &b);
    assert_int_equal(t.n, 2);
    g = &t.ev[1];
    assert_int_equal(g->op, CHAT_GROUP_CREATE);
    assert_int_equal(g->req, rc_);
    assert_int_equal(g->group, 9);
    assert_int_equal(g->err, 0);
    assert_int_equal(g->n_groups + g->n_members + g->n_users, 0);

    b.n = 0;
    groups_body(&b, 6, rl, 0);
    bb_u16(&b, 2);
    bb_u32(&b, 9);
    bb_u8(&b, 1);
    bb_u16(&b, 3);
    bb_name(&b, "friends");
    bb_u32(&b, 12);
    bb_u8(&b, 0);
    bb_u16(&b, 1024);
    bb_name(&b, "\xe4\xb8\xad\xe6\x96\x87");
    srv_feed_bytewise(&s, c, in, s2c_bb(in, FRAME_GROUPS, &b));
    assert_int_equal(t.n, 3);
    g = &t.ev[2];
    assert_int_equal(g->op, CHAT_GROUP_LIST);
    assert_int_equal(g->req, rl);
    assert_int_equal(g->n_groups, 2);
    assert_int_equal(g->groups[0].id, 9);
    assert_int_equal(g->groups[0].admin, 1);
    assert_int_equal(g->groups[0].members, 3);
    assert_string_equal(g->groups[0].name, "friends");
    assert_int_equal(g->groups[0].name_len, 7);
    assert_int_equal(g->groups[1].id, 12);
    assert_int_equal(g->groups[1].admin, 0);
    assert_int_equal(g->groups[1].members, 1024);
    assert_string_equal(g->groups[1].name, "\xe4\xb8\xad\xe6\x96\x87");

    /* An empty LIST. */
    assert_int_equal(chat_group_list(c, &rl), 0);
    srv_take(&s, c, in, 22);
    b.n = 0;
    groups_body(&b, 6, rl, 0);
    bb_u16(&b, 0);
    feed_groups(&s, c, &b);
    assert_int_equal(t.n, 4);
    assert_int_equal(t.ev[3].n_groups, 0);

    /* Events: ADDED by 42 of 7, split at every byte; a group that is gone
     * (the last member left: no name). */
    b.n = 0;
    groups_body(&b, 8, 0, 9);
    bb_u8(&b, 3);
    bb_u32(&b, 42);
    bb_u16(&b, 1);
    bb_u32(&b, 7);
    bb_name(&b, "friends");
    srv_feed_bytewise(&s, c, in, s2c_bb(in, FRAME_GROUPS, &b));
    assert_int_equal(t.n, 5);
    g = &t.ev[4];
    assert_int_equal(g->op, CHAT_GROUP_EVENT);
    assert_int_equal(g->req, 0);
    assert_int_equal(g->group, 9);
    assert_int_equal(g->what, CHAT_GROUP_ADDED);
    assert_int_equal(g->by, 42);
    assert_int_equal(g->n_users, 1);
    assert_int_equal(g->users[0], 7);
    assert_string_equal(g->name, "friends");
    b.n = 0;
    groups_body(&b, 8, 0, 9);
    bb_u8(&b, 5);
    bb_u32(&b, 6);
    bb_u16(&b, 1);
    bb_u32(&b, 6);
    bb_u8(&b, 0);
    feed_groups(&s, c, &b);
    assert_int_equal(t.n, 6);
    assert_int_equal(t.ev[5].what, CHAT_GROUP_LEFT);
    assert_string_equal(t.ev[5].name, "");
    assert_int_equal(t.r.errs, 0);
    assert_int_equal(t.r.disconnected, 0);
    /* Answers are not acknowledged (not messages). */
    srv_expect_nothing(&s, c);
    chat_free(c);
    srv_close(&s);
}

/* ------------------------------------------------------------------ */
/* Refusals and lost requests                                          */
/* ------------------------------------------------------------------ */

static void test_refusal_goes_to_on_group_not_on_error(void **state) {
    (void)state;
    srv s;
    gt t = {0};
    chat_client *c = group_client(&s, &t, CONV_FLAGS);
    uint64_t seq;
    uint32_t req;
    /* A group message (number 1 on the connection), then a request. */
    assert_int_equal(chat_send_group_text(c, 3, "x", &seq), 0);
    assert_int_equal(chat_group_members(c, 3, &req), 0);
    uint8_t got[64], in[256];
    srv_take(&s, c, got, 23 + 1 + 13 + 9);

    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_GROUP, req, "not a member of group 3"));
    assert_int_equal(t.n, 1);
    assert_int_equal(t.r.errs, 0);
    gev *g = &t.ev[0];
    assert_int_equal(g->op, CHAT_GROUP_MEMBERS);
    assert_int_equal(g->req, req);
    assert_int_equal(g->group, 3);
    assert_int_equal(g->err, CHAT_EREFUSED);
    assert_int_equal(g->code, CHAT_SERR_GROUP);
    assert_string_equal(g->reason, "not a member of group 3");
    assert_int_equal(chat_queued_frames(c), 1); /* the message is untouched */

    /* The same code naming the message: on_error, with its seq. */
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_GROUP, 1, "not a member of group 3"));
    assert_int_equal(t.n, 1);
    assert_int_equal(t.r.errs, 1);
    assert_int_equal(t.r.err_code[0], CHAT_SERR_GROUP);
    assert_true(t.r.err_seq[0] == seq);
    assert_int_equal(chat_queued_frames(c), 0);

    /* A ref that names no waiting request (answered already): on_error. */
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_GROUP, req, "again"));
    assert_int_equal(t.n, 1);
    assert_int_equal(t.r.errs, 2);
    assert_true(t.r.err_seq[1] == 0);
    /* Another code naming a waiting request refuses it too. */
    assert_int_equal(chat_group_list(c, &req), 0);
    srv_take(&s, c, got, 13 + 9);
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_STORE, req, "store failed"));
    assert_int_equal(t.n, 2);
    assert_int_equal(t.r.errs, 2);
    assert_int_equal(t.ev[1].err, CHAT_EREFUSED);
    assert_int_equal(t.ev[1].code, CHAT_SERR_STORE);
    assert_int_equal(t.ev[1].op, CHAT_GROUP_LIST);
    chat_free(c);
    srv_close(&s);

    /* Without on_group, a refusal comes to on_error (seq 0). */
    rec r = {0};
    conv_opts co = {.conv = 1};
    c = connected(&s, &r, &co, CONV_FLAGS);
    assert_int_equal(chat_group_leave(c, 4, &req), 0);
    srv_take(&s, c, got, 13 + 9);
    srv_feed(&s, c, in, s2c_error(in, FRAME_ERR_GROUP, req, "no group 4"));
    assert_int_equal(r.errs, 1);
    assert_int_equal(r.err_code[0], CHAT_SERR_GROUP);
    assert_true(r.err_seq[0] == 0);
    assert_string_equal(r.err_reason[0], "no group 4");
    chat_free(c);
    srv_close(&s);
}

static void test_requests_lost_with_the_connection(void **state) {
    (void)state;
    srv s;
    gt t = {0};
    chat_client *c = group_client(&s, &t, CONV_FLAGS);
    uint32_t r1, r2;
    const uint32_t one[] = {8};
    assert_int_equal(chat_group_create(c, "g", one, 1, &r1), 0);
    assert_int_equal(chat_group_add(c, 2, one, 1, &r2), 0);
    uint8_t got[64];
    srv_take(&s, c, got, 2 * 13 + 9 + 2 + 6 + 9 + 6);
    srv_drop(&s);
    for (int i = 0; i < 100 && !t.r.disconnected; i++) chat_run_once(c, 100);
    assert_int_equal(t.r.disconnected, 1);
    assert_int_equal(t.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(t.ev[i].err, CHAT_ECLOSED);
        assert_int_equal(t.ev[i].disconnected, 0); /* before on_disconnected */
        assert_string_equal(t.ev[i].reason, "");
    }
    assert_true((t.ev[0].req == r1 && t.ev[1].req == r2) ||
                (t.ev[0].req == r2 && t.ev[1].req == r1));
    gev *add = t.ev[0].req == r2 ? &t.ev[0] : &t.ev[1];
    assert_int_equal(add->op, CHAT_GROUP_ADD);
    assert_int_equal(add->group, 2);

    /* Reconnected: nothing is sent again; an answer to an old request is a
     * server's error. */
    t.r.now += 10000;
    conv_session(&s, c, &t.r, CONV_FLAGS);
    srv_expect_nothing(&s, c);
    /* chat_disconnect forgets waiting requests without a callback. */
    assert_int_equal(chat_group_list(c, &r1), 0);
    assert_int_equal(chat_disconnect(c), 0);
    assert_int_equal(chat_run_once(c, 0), CHAT_ENOTCONN);
    assert_int_equal(t.n, 2);
    assert_int_equal(chat_connect(c), 0);
    srv_drop(&s);
    conv_session(&s, c, &t.r, CONV_FLAGS);
    bb b = {0};
    groups_body(&b, 6, r1, 0);
    bb_u16(&b, 0);
    uint8_t in[64];
    feed_proto_error(&s, c, &t.r, in, s2c_bb(in, FRAME_GROUPS, &b));
    assert_int_equal(t.n, 2);
    chat_free(c);
    srv_close(&s);
}

/* ------------------------------------------------------------------ */
/* Group messages                                                      */
/* ------------------------------------------------------------------ */

/* A POST to group `group` as the client must write it. */
static size_t want_group_post(uint8_t *out, uint32_t group, uint8_t kind,
                              uint64_t cid, const char *body) {
    size_t n = c2s_post(out, 42, group, kind, cid, body);
    out[14] = 0x02; /* the GROUP flag */
    return n;
}

static void test_group_post_bytes_resend_and_refusal(void **state) {
    (void)state;
    srv s;
    gt t = {0};
    chat_client *c = group_client(&s, &t, CONV_FLAGS);
    uint64_t seq;
    assert_int_equal(chat_send_group_text(c, 3, "hey", &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(chat_send_text(c, 3, "to user 3", NULL), 0);
    uint8_t got[64], want[128];
    srv_take(&s, c, got, 23 + 3);
    uint64_t cid = 0;
    for (int i = 0; i < 8; i++) cid = cid << 8 | got[15 + i];
    size_t n = want_group_post(want, 3, CHAT_TEXT, cid, "hey");
    assert_memory_equal(got, want, n);
    srv_expect(&s, c, want, c2s_post(want, 42, 3, CHAT_TEXT, cid + 1, "to user 3"));

    /* Lost before its ACK: the same bytes again. */
    reconnect(&s, c, &t.r, CONV_FLAGS);
    n = want_group_post(want, 3, CHAT_TEXT, cid, "hey");
    n += c2s_post(want + n, 42, 3, CHAT_TEXT, cid + 1, "to user 3");
    srv_expect(&s, c, want, n);

    /* A server that no longer grants CONV: the group message is refused
     * here, never sent bare (to user 3); the other one goes bare. */
    reconnect(&s, c, &t.r, FRAME_FLAG_ACKS);
    assert_int_equal(t.r.errs, 1);
    assert_int_equal(t.r.err_code[0], CHAT_SERR_GROUP);
    assert_true(t.r.err_seq[0] == 1);
    assert_non_null(strstr(t.r.err_reason[0], "CONV"));
    srv_expect(&s, c, want, c2s_data(want, 42, 3, CHAT_TEXT, "to user 3"));
    srv_expect_nothing(&s, c);
    uint8_t in[64];
    srv_feed(&s, c, in, s2c_ack(in, 1));
    assert_int_equal(chat_queued_frames(c), 0);
    /* ... and refuses new ones. */
    assert_int_equal(chat_send_group_text(c, 3, "no", NULL), CHAT_ESTATE);
    assert_int_equal(chat_send_group(c, 3, CHAT_PICTURE, "p", 1, NULL), CHAT_ESTATE);

    /* Queued while disconnected, sent once CONV is granted. */
    assert_int_equal(chat_disconnect(c), 0);
    assert_int_equal(chat_send_group(c, 8, CHAT_VOICE, "ogg", 3, &seq), 0);
    assert_int_equal(chat_send_group(c, 0, CHAT_VOICE, "ogg", 3, NULL), CHAT_EINVAL);
    assert_int_equal(chat_send_group(c, 8, 9, "ogg", 3, NULL), CHAT_EINVAL);
    assert_int_equal(chat_connect(c), 0);
    srv_drop(&s);
    conv_session(&s, c, &t.r, CONV_FLAGS);
    srv_expect(&s, c, want, want_group_post(want, 8, CHAT_VOICE, cid + seq - 1, "ogg"));

    /* A group file. */
    char path[] = "/tmp/test_libchat_groups_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "PNG!", 4), 4);
    close(fd);
    assert_int_equal(chat_send_group_file(c, 8, CHAT_PICTURE, path, &seq), 0);
    srv_expect(&s, c, want, want_group_post(want, 8, CHAT_PICTURE, cid + seq - 1, "PNG!"));
    assert_int_equal(chat_send_group_file(c, 0, CHAT_PICTURE, path, NULL), CHAT_EINVAL);
    unlink(path);
    assert_int_equal(chat_send_group_file(c, 8, CHAT_PICTURE, path, NULL), CHAT_ENOENT);
    chat_free(c);

    /* Without control frames or CONV, a group message can never go out. */
    rec r = {0};
    c = client_new(&r, s.port, 0, 0);
    assert_int_equal(chat_send_group_text(c, 3, "x", NULL), CHAT_ESTATE);
    chat_free(c);
    conv_opts off = {.conv = 0};
    c = conv_client(&r, s.port, &off);
    assert_int_equal(chat_send_group_text(c, 3, "x", NULL), CHAT_ESTATE);
    assert_int_equal(chat_send_text(c, 3, "x", NULL), 0);
    chat_free(c);
    srv_close(&s);
}

static void test_group_msg_received(void **state) {
    (void)state;
    srv s;
    gt t = {0};
    chat_client *c = group_client(&s, &t, CONV_FLAGS);
    uint8_t in[256], want[64];
    size_t n = s2c_msg(in, 7, 10, CHAT_TEXT, FRAME_MSG_GROUP, 3, 11, "to all");
    n += s2c_msg(in + n, 42, 11, CHAT_TEXT, FRAME_MSG_GROUP | FRAME_MSG_OWN, 3, 12, "mine");
    n += s2c_msg(in + n, 7, 12, CHAT_TEXT, 0, 42, 13, "direct");
    srv_feed(&s, c, in, n);
    assert_int_equal(t.r.msgs, 3);
    assert_int_equal(t.r.sender[0], 7);
    assert_int_equal(t.r.group[0], 3);
    assert_int_equal(t.r.to[0], 3);
    assert_int_equal(t.r.own[0], 0);
    assert_int_equal(t.r.group[1], 3);
    assert_int_equal(t.r.own[1], 1);
    assert_int_equal(t.r.group[2], 0);
    assert_int_equal(t.r.to[2], 42);
    srv_expect(&s, c, want, c2s_ack(want, 42, 3));
    chat_free(c);
    srv_close(&s);
}

/* ------------------------------------------------------------------ */
/* Malformed GROUPS                                                    */
/* ------------------------------------------------------------------ */

enum { BAD_SHORT, BAD_OP0, BAD_OP9, BAD_NOREQ, BAD_OTHEROP, BAD_CREATE_EXTRA,
       BAD_LIST_COUNT, BAD_LIST_NAME, BAD_LIST_NAMEPAST, BAD_LIST_TAIL,
       BAD_LIST_NOCOUNT, BAD_MEMBERS_COUNT, BAD_MEMBERS_TAIL, BAD_EVENT_REQ, BAD_EVENT_WHAT, BAD_EVENT_COUNT,
       BAD_EVENT_TAIL, BAD_EVENT_NAME64, BAD_N };

/* Bad GROUPS body number `k`, given the waiting LIST's, CREATE's and
 * MEMBERS' reqs. */
static void bad_groups(bb *b, int k, uint32_t rl, uint32_t rc_, uint32_t rm) {
    b->n = 0;
    switch (k) {
    case BAD_SHORT: groups_body(b, 6, rl, 0); b->n = 8; break;
    case BAD_OP0: groups_body(b, 0, rl, 0); break;
    case BAD_OP9: groups_body(b, 9, 0, 0); break;
    case BAD_NOREQ: groups_body(b, 6, rl + 1000, 0); bb_u16(b, 0); break;
    case BAD_OTHEROP: groups_body(b, 7, rl, 0); bb_u16(b, 0); break;
    case BAD_CREATE_EXTRA: groups_body(b, 1, rc_, 4); bb_u8(b, 0); break;
    case BAD_LIST_COUNT:
        groups_body(b, 6, rl, 0);
        bb_u16(b, 2);
        bb_u32(b, 1); bb_u8(b, 0); bb_u16(b, 1); bb_name(b, "a");
        break;
    case BAD_LIST_NAME:
        groups_body(b, 6, rl, 0);
        bb_u16(b, 1);
        bb_u32(b, 1); bb_u8(b, 0); bb_u16(b, 1); bb_u8(b, 65);
        for (int i = 0; i < 65; i++) bb_u8(b, 'a');
        break;
    case BAD_LIST_TAIL:
        groups_body(b, 6, rl, 0);
        bb_u16(b, 1);
        bb_u32(b, 1); bb_u8(b, 0); bb_u16(b, 1); bb_name(b, "a");
        bb_u8(b, 0);
        break;
    case BAD_LIST_NOCOUNT: groups_body(b, 6, rl, 0); bb_u8(b, 0); break;
    case BAD_LIST_NAMEPAST:
        groups_body(b, 6, rl, 0);
        bb_u16(b, 1);
        bb_u32(b, 1); bb_u8(b, 0); bb_u16(b, 1); bb_u8(b, 2); bb_u8(b, 'a');
        break;
    case BAD_MEMBERS_COUNT:
        groups_body(b, 7, rm, 4);
        bb_u16(b, 2);
        bb_u32(b, 42); bb_u8(b, 1);
        break;
    case BAD_MEMBERS_TAIL:
        groups_body(b, 7, rm, 4);
        bb_u16(b, 1);
        bb_u32(b, 42); bb_u8(b, 1); bb_u8(b, 0);
        break;
    case BAD_EVENT_REQ:
        groups_body(b, 8, 5, 4);
        bb_u8(b, 1); bb_u32(b, 42); bb_u16(b, 0); bb_name(b, "g");
        break;
    case BAD_EVENT_WHAT:
        groups_body(b, 8, 0, 4);
        bb_u8(b, 6); bb_u32(b, 42); bb_u16(b, 0); bb_name(b, "g");
        break;
    case BAD_EVENT_COUNT:
        groups_body(b, 8, 0, 4);
        bb_u8(b, 3); bb_u32(b, 42); bb_u16(b, 3); bb_u32(b, 7); bb_name(b, "g");
        break;
    case BAD_EVENT_TAIL:
        groups_body(b, 8, 0, 4);
        bb_u8(b, 3); bb_u32(b, 42); bb_u16(b, 0); bb_name(b, "g"); bb_u8(b, 0);
        break;
    case BAD_EVENT_NAME64:
        groups_body(b, 8, 0, 4);
        bb_u8(b, 2); bb_u32(b, 42); bb_u16(b, 0); bb_u8(b, 65);
        for (int i = 0; i < 65; i++) bb_u8(b, 'a');
        break;
    default: fail();
    }
}

static void test_malformed_groups_rejected(void **state) {
    (void)state;
    srv s;
    gt t = {0};
    chat_client *c = group_client(&s, &t, CONV_FLAGS);
    uint8_t in[512];
    bb b;
    for (int k = 0; k < BAD_N; k++) {
        uint32_t rl, rc_, rm;
        assert_int_equal(chat_group_list(c, &rl), 0);
        assert_int_equal(chat_group_create(c, "g", NULL, 0, &rc_), 0);
        assert_int_equal(chat_group_members(c, 4, &rm), 0);
        int before = t.n;
        bad_groups(&b, k, rl, rc_, rm);
        size_t n = s2c_bb(in, FRAME_GROUPS, &b);
        if (k % 2) { /* split at every byte: the error comes at the end */
            srv_feed_bytewise(&s, c, in, n - 1);
            feed_proto_error(&s, c, &t.r, in + n - 1, 1);
        } else {
            feed_proto_error(&s, c, &t.r, in, n);
        }
        /* Nothing decoded; the waiting requests reported lost. */
        assert_int_equal(t.n, before + 3);
        for (int i = before; i < t.n; i++) {
            assert_int_equal(t.ev[i].err, CHAT_EPROTO);
            assert_int_equal(t.ev[i].n_groups + t.ev[i].n_members, 0);
        }
        assert_int_equal(chat_connect(c), 0);
        srv_drop(&s);
        conv_session(&s, c, &t.r, CONV_FLAGS);
    }
    /* A valid answer still goes through, and GROUPS without CONV is a
     * breach. */
    uint32_t rl;
    assert_int_equal(chat_group_list(c, &rl), 0);
    b.n = 0;
    groups_body(&b, 6, rl, 0);
    bb_u16(&b, 0);
    int before = t.n;
    feed_groups(&s, c, &b);
    assert_int_equal(t.n, before + 1);
    assert_int_equal(t.ev[before].err, 0);
    reconnect(&s, c, &t.r, FRAME_FLAG_ACKS);
    b.n = 0;
    groups_body(&b, 8, 0, 4);
    bb_u8(&b, 1); bb_u32(&b, 42); bb_u16(&b, 0); bb_name(&b, "g");
    feed_proto_error(&s, c, &t.r, in, s2c_bb(in, FRAME_GROUPS, &b));
    chat_free(c);
    srv_close(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_bytes),
        cmocka_unit_test(test_request_arguments_and_state),
        cmocka_unit_test(test_answers_and_events_decoded),
        cmocka_unit_test(test_refusal_goes_to_on_group_not_on_error),
        cmocka_unit_test(test_requests_lost_with_the_connection),
        cmocka_unit_test(test_group_post_bytes_resend_and_refusal),
        cmocka_unit_test(test_group_msg_received),
        cmocka_unit_test(test_malformed_groups_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
