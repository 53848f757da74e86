/*
 * test_libchat_conv.c -- libchat and CONV (devices and conversations,
 * docs/PROTOCOL.md): the device name in HELLO, POST with client ids, MSG
 * frames, duplicate suppression, and the fall-back to bare data frames when
 * the server does not grant CONV.
 *
 * The fake server is libchat_fake.h's (the test reads the exact bytes the
 * client writes, and writes frames to it); the reconnect timer runs on a
 * fake clock.
 *
 * Covers: HELLO bytes with CONV, a device and a password; chat_new refusing
 * bad device names; POST bytes with cids base+seq (the base random, never
 * 0), the same cids on the resend after a reconnect, a message queued while
 * disconnected; a message resent to a server that no longer grants CONV
 * going out bare; MSG decoded into on_msg (OWN, unknown flag bits, the
 * time), split at every byte; MSG and data frames through on_message when
 * on_msg is NULL; redelivered ids dropped but acknowledged, within a
 * connection and across a reconnect; CONV not granted (or not asked for):
 * bare frames both ways, on_msg with id 0 for a bare frame, a MSG then a
 * protocol error; a malformed MSG; max_recv applied to MSG payloads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "libchat_fake.h"
#include "proto/frame.h"

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* ------------------------------------------------------------------ */
/* HELLO and options                                                   */
/* ------------------------------------------------------------------ */

static void test_hello_carries_conv_and_device(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    conv_opts co = {.device = "phone-1", .password = "pw", .conv = 1};
    chat_client *c = conv_client(&r, s.port, &co);
    assert_int_equal(chat_conv_granted(c), 0);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    static const uint8_t hello[] = {0, 0, 0, 42, 0, 0, 0, 0, 0x80, 0, 0, 0, 12,
                                    1, 3, 7, 'p', 'h', 'o', 'n', 'e', '-', '1',
                                    'p', 'w'};
    srv_expect(&s, c, hello, sizeof hello);
    chat_free(c);
    srv_close(&s);
}

static void test_new_validates_device(void **state) {
    (void)state;
    chat_options o;
    chat_options_init(&o);
    assert_null(o.device);
    o.host = "127.0.0.1";
    o.port = 1;
    o.user = 7;
    static const char *const bad[] = {
        "123456789012345678901234567890123", /* 33 bytes */
        "my phone", "a/b", "tab\t", "caf\xc3\xa9", "a:b", "@home"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.device = bad[i];
        int err = 0;
        char msg[128] = "";
        assert_null(chat_new_ex(&o, &err, msg, sizeof msg));
        assert_int_equal(err, CHAT_EINVAL);
        if (!strstr(msg, "device name")) fail_msg("'%s': message '%s'", bad[i], msg);
    }
    static const char *const good[] = {
        "12345678901234567890123456789012", "", "Laptop_2.home-x"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        o.device = good[i];
        int err = 1;
        chat_client *c = chat_new(&o, &err);
        assert_non_null(c);
        assert_int_equal(err, 0);
        chat_free(c);
    }
}

/* ------------------------------------------------------------------ */
/* Sending: POST with client ids                                       */
/* ------------------------------------------------------------------ */

static void test_post_with_cid_and_same_cid_on_resend(void **state) {
    (void)state;
    srv s;
    rec r = {.now = 1000};
    conv_opts co = {.conv = 1};
    chat_client *c = connected(&s, &r, &co, CONV_FLAGS);
    uint64_t seq;
    assert_int_equal(chat_send_text(c, 5, "one", &seq), 0);
    assert_int_equal(chat_send(c, 6, CHAT_PICTURE, "img", 3, &seq), 0);
    assert_int_equal(chat_send_text(c, 5, "three", &seq), 0);
    assert_int_equal(seq, 3);

    /* The first POST gives the base; then every byte is known. */
    uint8_t got[64], want[256], in[64];
    srv_take(&s, c, got, 23 + 3);
    uint64_t cid1 = rd64(got + 15);
    assert_true(cid1 != 0);
    size_t n = c2s_post(want, 42, 5, CHAT_TEXT, cid1, "one");
    assert_memory_equal(got, want, n);
    size_t n2 = c2s_post(want, 42, 6, CHAT_PICTURE, cid1 + 1, "img");
    n2 += c2s_post(want + n2, 42, 5, CHAT_TEXT, cid1 + 2, "three");
    srv_expect(&s, c, want, n2);
    srv_expect_nothing(&s, c);
    srv_feed(&s, c, in, s2c_ack(in, 1)); /* POSTs count like data frames */
    assert_int_equal(r.acked, 1);

    /* Lost connection: "img" and "three" come again with their cids, then
     * a message queued while disconnected takes the next one. */
    int before = r.disconnected;
    srv_drop(&s);
    for (int i = 0; i < 100 && r.disconnected == before; i++) chat_run_once(c, 100);
    assert_int_equal(chat_send_text(c, 5, "four", &seq), 0);
    r.now += 10000;
    conv_session(&s, c, &r, CONV_FLAGS);
    n2 += c2s_post(want + n2, 42, 5, CHAT_TEXT, cid1 + 3, "four");
    srv_expect(&s, c, want, n2); /* "img", "three", "four"; not "one" */
    srv_expect_nothing(&s, c);
    srv_feed(&s, c, in, s2c_ack(in, 3));
    assert_int_equal(r.acked, 4);
    assert_int_equal(chat_queued_frames(c), 0);

    /* Another client of the same device draws another base. */
    rec r2 = {0};
    chat_client *c2 = conv_client(&r2, s.port, &co);
    assert_int_equal(chat_send_text(c2, 5, "x", NULL), 0);
    assert_int_equal(chat_connect(c2), 0);
    srv_drop(&s);
    conv_session(&s, c2, &r2, CONV_FLAGS);
    srv_take(&s, c2, got, 23 + 1);
    assert_true(rd64(got + 15) != cid1);
    chat_free(c2);
    chat_free(c);
    srv_close(&s);
}

/* A message written as a POST and not acknowledged, resent to a server
 * that no longer grants CONV (say, restarted with --echo), goes out bare. */
static void test_resend_takes_the_new_connections_form(void **state) {
    (void)state;
    srv s;
    rec r = {0};
    conv_opts co = {.conv = 1};
    chat_client *c = connected(&s, &r, &co, CONV_FLAGS);
    assert_int_equal(chat_send_text(c, 5, "hi", NULL), 0);
    uint8_t got[64], want[64];
    srv_take(&s, c, got, 23 + 2);
    uint64_t cid = rd64(got + 15);
    reconnect(&s, c, &r, FRAME_FLAG_ACKS);
    srv_expect(&s, c, want, c2s_data(want, 42, 5, CHAT_TEXT, "hi"));
    /* And back: CONV again, the same cid. */
    reconnect(&s, c, &r, CONV_FLAGS);
    srv_expect(&s, c, want, c2s_post(want, 42, 5, CHAT_TEXT, cid, "hi"));
    chat_free(c);
    srv_close(&s);
}

/* ------------------------------------------------------------------ */
/* Receiving: MSG                                                      */
/* ------------------------------------------------------------------ */

static void test_msg_decoded_into_on_msg(void **state) {
    (void)state;
    srv s;
    rec r = {0};
    conv_opts co = {.use_on_msg = 1, .conv = 1};
    chat_client *c = connected(&s, &r, &co, CONV_FLAGS);

    uint8_t in[256], want[64];
    size_t n = s2c_msg(in, 7, 100, CHAT_TEXT, 0, 42, 1700000000123ull, "hello");
    srv_feed_bytewise(&s, c, in, n);
    assert_int_equal(r.msgs, 1);
    assert_true(r.id[0] == 100);
    assert_int_equal(r.sender[0], 7);
    assert_int_equal(r.to[0], 42);
    assert_int_equal(r.own[0], 0);
    assert_true(r.time[0] == 1700000000123ull);
    assert_int_equal(r.type[0], CHAT_TEXT);
    assert_int_equal(r.len[0], 5);
    assert_memory_equal(r.body[0], "hello", 5);
    srv_expect(&s, c, want, c2s_ack(want, 42, 1)); /* a MSG counts for the ACK */

    /* Own (sent from another device, to 9), and a flag bit this version
     * does not know (ignored), in one read: one ACK for both. */
    n = s2c_msg(in, 42, 101, CHAT_VOICE, FRAME_MSG_OWN, 9, 5, "v");
    n += s2c_msg(in + n, 8, 102, CHAT_TEXT, 0x80, 42, 6, "");
    srv_feed(&s, c, in, n);
    assert_int_equal(r.msgs, 3);
    assert_int_equal(r.own[1], 1);
    assert_int_equal(r.sender[1], 42);
    assert_int_equal(r.to[1], 9);
    assert_int_equal(r.type[1], CHAT_VOICE);
    assert_int_equal(r.own[2], 0);
    assert_int_equal(r.len[2], 0);
    srv_expect(&s, c, want, c2s_ack(want, 42, 3));
    srv_expect_nothing(&s, c);
    chat_free(c);
    srv_close(&s);
}

/* Without on_msg, on_message gets MSG frames too. */
static void test_msg_through_on_message(void **state) {
    (void)state;
    srv s;
    rec r = {0};
    conv_opts co = {.conv = 1};
    chat_client *c = connected(&s, &r, &co, CONV_FLAGS);
    uint8_t in[128];
    srv_feed(&s, c, in, s2c_msg(in, 42, 3, CHAT_VIDEO, FRAME_MSG_OWN, 9, 1, "mp4"));
    assert_int_equal(r.msgs, 1);
    assert_int_equal(r.sender[0], 42);
    assert_int_equal(r.type[0], CHAT_VIDEO);
    assert_memory_equal(r.body[0], "mp4", 3);
    assert_true(r.id[0] == 0); /* (on_msg never ran) */
    chat_free(c);
    srv_close(&s);
}

static void test_duplicate_id_dropped_but_acknowledged(void **state) {
    (void)state;
    srv s;
    rec r = {0};
    conv_opts co = {.use_on_msg = 1, .conv = 1};
    chat_client *c = connected(&s, &r, &co, CONV_FLAGS);
    uint8_t in[512], want[64];
    size_t n = s2c_msg(in, 7, 5, CHAT_TEXT, 0, 42, 1, "five");
    n += s2c_msg(in + n, 7, 6, CHAT_TEXT, 0, 42, 1, "six");
    n += s2c_msg(in + n, 7, 6, CHAT_TEXT, 0, 42, 1, "six");  /* again */
    n += s2c_msg(in + n, 7, 4, CHAT_TEXT, 0, 42, 1, "four"); /* older */
    srv_feed(&s, c, in, n);
    assert_int_equal(r.msgs, 2);
    assert_memory_equal(r.body[1], "six", 3);
    srv_expect(&s, c, want, c2s_ack(want, 42, 4)); /* all four counted */

    /* The server redelivers after a reconnect (say its copy of our ACK was
     * lost): 6 again, then 7 is new. */
    reconnect(&s, c, &r, CONV_FLAGS);
    n = s2c_msg(in, 7, 6, CHAT_TEXT, 0, 42, 1, "six");
    srv_feed(&s, c, in, n);
    assert_int_equal(r.msgs, 2);
    srv_expect(&s, c, want, c2s_ack(want, 42, 1));
    n = s2c_msg(in, 7, 7, CHAT_TEXT, 0, 42, 1, "seven");
    srv_feed(&s, c, in, n);
    assert_int_equal(r.msgs, 3);
    assert_true(r.id[2] == 7);
    srv_expect(&s, c, want, c2s_ack(want, 42, 2));
    chat_free(c);
    srv_close(&s);
}

static void test_malformed_or_oversized_msg(void **state) {
    (void)state;
    srv s;
    rec r = {0};
    conv_opts co = {.use_on_msg = 1, .conv = 1, .max_recv = 8};
    chat_client *c = connected(&s, &r, &co, CONV_FLAGS);
    /* A payload of exactly max_recv: the frame is 22 bytes longer. */
    uint8_t in[128];
    srv_feed(&s, c, in, s2c_msg(in, 7, 1, CHAT_TEXT, 0, 42, 1, "12345678"));
    assert_int_equal(r.msgs, 1);
    /* One byte more: a protocol error, the connection is dropped. */
    feed_proto_error(&s, c, &r, in, s2c_msg(in, 7, 2, CHAT_TEXT, 0, 42, 1, "123456789"));

    /* A kind outside 1-4. */
    assert_int_equal(chat_connect(c), 0);
    srv_drop(&s);
    conv_session(&s, c, &r, CONV_FLAGS);
    feed_proto_error(&s, c, &r, in, s2c_msg(in, 7, 3, 9, 0, 42, 1, "x"));
    chat_free(c);
    srv_close(&s);
}

/* ------------------------------------------------------------------ */
/* CONV not granted                                                    */
/* ------------------------------------------------------------------ */

static void test_conv_not_granted_bare_frames(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    conv_opts co = {.device = "tablet", .use_on_msg = 1, .conv = 1};
    chat_client *c = conv_client(&r, s.port, &co);
    assert_int_equal(chat_send_text(c, 5, "queued", NULL), 0);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    static const uint8_t hello[] = {0, 0, 0, 42, 0, 0, 0, 0, 0x80, 0, 0, 0, 9,
                                    1, 3, 6, 't', 'a', 'b', 'l', 'e', 't'};
    srv_expect(&s, c, hello, sizeof hello);
    uint8_t in[128], want[64];
    /* An older server: ACKS only. */
    srv_feed(&s, c, in, s2c_welcome(in, FRAME_FLAG_ACKS, 42, 1u << 20));
    assert_int_equal(chat_conv_granted(c), 0);
    assert_int_equal(chat_acks_granted(c), 1);
    size_t n = c2s_data(want, 42, 5, CHAT_TEXT, "queued");
    srv_expect(&s, c, want, n);
    assert_int_equal(chat_send_text(c, 6, "live", NULL), 0);
    srv_expect(&s, c, want, c2s_data(want, 42, 6, CHAT_TEXT, "live"));

    /* A bare data frame reaches on_msg with id 0, to = this user. */
    srv_feed(&s, c, in, s2c(in, 7, CHAT_PICTURE, "png", 3));
    assert_int_equal(r.msgs, 1);
    assert_true(r.id[0] == 0);
    assert_int_equal(r.to[0], 42);
    assert_int_equal(r.own[0], 0);
    assert_true(r.time[0] == 0);
    assert_int_equal(r.sender[0], 7);
    assert_int_equal(r.type[0], CHAT_PICTURE);
    srv_expect(&s, c, want, c2s_ack(want, 42, 1));

    /* A MSG on a connection without CONV breaks the protocol. */
    feed_proto_error(&s, c, &r, in, s2c_msg(in, 7, 1, CHAT_TEXT, 0, 42, 1, "x"));
    chat_free(c);
    srv_close(&s);
}

/* conv = 0: HELLO asks for ACKS only, and a WELCOME that grants CONV all
 * the same changes nothing. */
static void test_conv_off(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    conv_opts co = {.device = "ignored", .conv = 0};
    chat_client *c = conv_client(&r, s.port, &co);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    static const uint8_t hello[] = {0, 0, 0, 42, 0, 0, 0, 0, 0x80, 0, 0, 0, 2, 1, 1};
    srv_expect(&s, c, hello, sizeof hello);
    uint8_t in[64], want[64];
    srv_feed(&s, c, in, s2c_welcome(in, CONV_FLAGS, 42, 1u << 20));
    assert_int_equal(chat_conv_granted(c), 0);
    assert_int_equal(chat_send_text(c, 5, "a", NULL), 0);
    srv_expect(&s, c, want, c2s_data(want, 42, 5, CHAT_TEXT, "a"));
    chat_free(c);
    srv_close(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_carries_conv_and_device),
        cmocka_unit_test(test_new_validates_device),
        cmocka_unit_test(test_post_with_cid_and_same_cid_on_resend),
        cmocka_unit_test(test_resend_takes_the_new_connections_form),
        cmocka_unit_test(test_msg_decoded_into_on_msg),
        cmocka_unit_test(test_msg_through_on_message),
        cmocka_unit_test(test_duplicate_id_dropped_but_acknowledged),
        cmocka_unit_test(test_malformed_or_oversized_msg),
        cmocka_unit_test(test_conv_not_granted_bare_frames),
        cmocka_unit_test(test_conv_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
