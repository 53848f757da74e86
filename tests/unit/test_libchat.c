/*
 * test_libchat.c -- unit tests for libchat (include/chat.h, src/client/).
 *
 * A fake server lives in the test process (libchat_fake.h): the test reads
 * the exact bytes the client writes and writes frames to it. The reconnect
 * timer runs on a fake clock (chat_options.clock_ms). The server here
 * grants ACKS but not CONV (an older server): messages go both ways as bare
 * data frames; CONV is test_libchat_conv.c's.
 *
 * Covers: HELLO (without CONV) and data frame byte layouts, nothing sent
 * before WELCOME, WELCOME/ACK/ERROR/data/PING fed split at every byte,
 * cumulative ACK sent
 * once per chat_process, PONG, ERROR with ref reported and dropped,
 * resending unacknowledged frames in order after a reconnect (acked ones
 * not), backoff timer and schedule, control=0 (no control frame ever, frames
 * handled once written), AUTH stops reconnecting, oversize frames refused
 * at WELCOME, queue bounds, chat_send_file errors, chat_type_from_path,
 * chat_strerror, chat_new validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chat.h"
#include "libchat_fake.h"
#include "proto/frame.h"

/* ------------------------------------------------------------------ */
/* Pure helpers                                                        */
/* ------------------------------------------------------------------ */

static void test_strerror_names_every_code(void **state) {
    (void)state;
    const char *unknown = chat_strerror(1);
    assert_string_equal(unknown, "unknown error");
    assert_string_equal(chat_strerror(CHAT_ERROR_MIN - 1), unknown);
    for (int e = 0; e >= CHAT_ERROR_MIN; e--) {
        const char *s = chat_strerror(e);
        assert_non_null(s);
        assert_string_not_equal(s, unknown);
        for (int f = e + 1; f <= 0; f++) assert_string_not_equal(s, chat_strerror(f));
    }
    assert_string_equal(chat_server_strerror(CHAT_SERR_AUTH), "authentication failed");
    assert_non_null(chat_server_strerror(-5));
}

static void test_backoff_schedule(void **state) {
    (void)state;
    static const uint32_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(chat_backoff_ms(i, 100, 5000), want[i]);
    assert_int_equal(chat_backoff_ms(UINT_MAX, 100, 5000), 5000);
    assert_int_equal(chat_backoff_ms(UINT_MAX, 0, 5000), 0);
    assert_int_equal(chat_backoff_ms(3, 7, 7), 7);
    assert_int_equal(chat_backoff_ms(40, UINT32_MAX, UINT32_MAX), UINT32_MAX);
}

static void test_type_from_path(void **state) {
    (void)state;
    assert_int_equal(chat_type_from_path("a.png"), CHAT_PICTURE);
    assert_int_equal(chat_type_from_path("/x.y/photo.JPEG"), CHAT_PICTURE);
    assert_int_equal(chat_type_from_path("s.mp3"), CHAT_VOICE);
    assert_int_equal(chat_type_from_path("s.wav"), CHAT_VOICE);
    assert_int_equal(chat_type_from_path("s.ogg"), CHAT_VOICE);
    assert_int_equal(chat_type_from_path("s.M4A"), CHAT_VOICE);
    assert_int_equal(chat_type_from_path("v.mp4"), CHAT_VIDEO);
    assert_int_equal(chat_type_from_path("v.webm"), CHAT_VIDEO);
    assert_int_equal(chat_type_from_path("v.mkv"), CHAT_VIDEO);
    assert_int_equal(chat_type_from_path("v.mov"), CHAT_VIDEO);
    assert_int_equal(chat_type_from_path("doc.pdf"), CHAT_EINVAL);
    assert_int_equal(chat_type_from_path("noext"), CHAT_EINVAL);
    assert_int_equal(chat_type_from_path("dir.png/file"), CHAT_EINVAL);
    assert_int_equal(chat_type_from_path(".png"), CHAT_EINVAL);
    assert_int_equal(chat_type_from_path(NULL), CHAT_EINVAL);
}

static void test_new_validates(void **state) {
    (void)state;
    chat_options o;
    chat_options_init(&o);
    int err = 0;
    assert_null(chat_new(&o, &err));
    assert_int_equal(err, CHAT_EINVAL);
    o.host = "127.0.0.1";
    o.port = 1;
    assert_null(chat_new(&o, &err)); /* user 0 */
    assert_int_equal(err, CHAT_EINVAL);
    o.user = 7;
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 5;
    assert_null(chat_new(&o, &err));
    assert_int_equal(err, CHAT_EINVAL);
    o.backoff_max_ms = 10;
    chat_client *c = chat_new(&o, &err);
    assert_non_null(c);
    assert_int_equal(chat_fd(c), -1);
    assert_int_equal(chat_next_timeout_ms(c), -1);
    assert_int_equal(chat_run_once(c, 0), CHAT_ENOTCONN);
    chat_free(c);
    chat_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Sending, acks                                                       */
/* ------------------------------------------------------------------ */

static void test_hello_welcome_data_layout(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = s.port;
    o.user = 0x01020304;
    o.password = "pw";
    o.conv = 0; /* the HELLO of before CONV: the password follows the flags */
    o.device = "ignored-without-conv";
    o.userdata = &r;
    o.cb.on_connected = on_connected;
    o.cb.on_acked = on_acked;
    chat_client *c = chat_new(&o, NULL);
    assert_non_null(c);
    uint64_t seq = 0;
    /* Queued before connecting: must wait for WELCOME. */
    assert_int_equal(chat_send_text(c, 0x0A0B0C0D, "hi", &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(chat_connect(c), 0);
    assert_int_equal(chat_connect(c), CHAT_ESTATE);
    srv_accept(&s, c);
    static const uint8_t hello[] = {1, 2, 3, 4, 0, 0, 0, 0, 0x80, 0, 0, 0, 4,
                                    1, 1, 'p', 'w'};
    srv_expect(&s, c, hello, sizeof hello);
    srv_expect_nothing(&s, c);
    assert_int_equal(chat_state(c), CHAT_ST_HELLO);

    uint8_t w[64];
    size_t n = s2c_welcome(w, FRAME_FLAG_ACKS, 0x01020304, 1000);
    srv_feed_bytewise(&s, c, w, n - 1);
    assert_int_equal(r.connected, 0);
    srv_feed_bytewise(&s, c, w + n - 1, 1);
    assert_int_equal(r.connected, 1);
    assert_int_equal(chat_max_frame(c), 1000);

    static const uint8_t data[] = {1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 1, 0, 0, 0, 2,
                                   'h', 'i'};
    srv_expect(&s, c, data, sizeof data);
    assert_int_equal(chat_acked(c), 0); /* written, not acknowledged */
    assert_int_equal(chat_queued_frames(c), 1);

    n = s2c_ack(w, 1);
    srv_feed_bytewise(&s, c, w, n);
    assert_int_equal(r.acked, 1);
    assert_int_equal(r.acked_calls, 1);
    assert_int_equal(chat_queued_frames(c), 0);
    assert_int_equal(chat_queued_bytes(c), 0);
    chat_free(c);
    srv_close(&s);
}

static void test_receive_split_and_ack(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    chat_client *c = client_new(&r, s.port, 1, 0);
    handshake(&s, c, &r);

    uint8_t in[256], want[128];
    size_t n = s2c(in, 7, FRAME_TEXT, "hello", 5);
    srv_feed_bytewise(&s, c, in, n);
    assert_int_equal(r.msgs, 1);
    assert_int_equal(r.sender[0], 7);
    assert_int_equal(r.type[0], CHAT_TEXT);
    assert_int_equal(r.len[0], 5);
    assert_memory_equal(r.body[0], "hello", 5);
    srv_expect(&s, c, want, c2s_ack(want, 42, 1));

    /* Two data frames (one empty) and a PING in one read: one ACK(3), PONG. */
    n = s2c(in, 8, FRAME_VOICE, "", 0);
    n += s2c(in + n, 9, FRAME_VIDEO, "vid", 3);
    n += s2c(in + n, 0, FRAME_PING, "xy", 2);
    srv_feed(&s, c, in, n);
    assert_int_equal(r.msgs, 3);
    assert_int_equal(r.type[1], CHAT_VOICE);
    assert_int_equal(r.len[1], 0);
    assert_int_equal(r.sender[2], 9);
    assert_memory_equal(r.body[2], "vid", 3);
    static const uint8_t pong[] = {0, 0, 0, 42, 0, 0, 0, 0, 0x85, 0, 0, 0, 2, 'x', 'y'};
    memcpy(want, pong, sizeof pong);
    size_t m = sizeof pong + c2s_ack(want + sizeof pong, 42, 3);
    srv_expect(&s, c, want, m);
    srv_expect_nothing(&s, c);
    chat_free(c);
    srv_close(&s);
}

/* chat_hold from on_message: the frames read with it are neither handed
 * over nor acknowledged; the ACK covers only what was; release resumes. */
static void test_hold_stops_delivery_and_ack(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    r.hold_after = 1;
    chat_client *c = client_new(&r, s.port, 1, 0);
    handshake(&s, c, &r);
    uint8_t in[256], want[64];
    size_t n = s2c(in, 7, FRAME_TEXT, "one", 3);
    n += s2c(in + n, 7, FRAME_TEXT, "two", 3);
    n += s2c(in + n, 7, FRAME_TEXT, "three", 5);
    srv_feed(&s, c, in, n);
    assert_int_equal(r.msgs, 1);
    srv_expect(&s, c, want, c2s_ack(want, 42, 1));
    chat_process(c, 1, 1);
    assert_int_equal(r.msgs, 1); /* held: nothing more */
    srv_expect_nothing(&s, c);
    assert_int_equal(chat_release(c), 0);
    chat_process(c, 1, 1);
    assert_int_equal(r.msgs, 3);
    assert_memory_equal(r.body[2], "three", 5);
    srv_expect(&s, c, want, c2s_ack(want, 42, 3));
    chat_free(c);
    srv_close(&s);
}

static void test_error_ref_drops_frame(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    chat_client *c = client_new(&r, s.port, 1, 0);
    handshake(&s, c, &r);
    uint64_t seq;
    assert_int_equal(chat_send_text(c, 5, "a", &seq), 0);
    assert_int_equal(chat_send_text(c, 5, "b", &seq), 0);
    assert_int_equal(chat_send_text(c, 5, "c", &seq), 0);
    assert_int_equal(seq, 3);
    uint8_t want[64], in[128];
    size_t n = c2s_data(want, 42, 5, 1, "a");
    n += c2s_data(want + n, 42, 5, 1, "b");
    n += c2s_data(want + n, 42, 5, 1, "c");
    srv_expect(&s, c, want, n);

    n = s2c_error(in, FRAME_ERR_QUOTA, 2, "full");
    srv_feed_bytewise(&s, c, in, n);
    assert_int_equal(r.errs, 1);
    assert_int_equal(r.err_code[0], CHAT_SERR_QUOTA);
    assert_int_equal(r.err_seq[0], 2);
    assert_string_equal(r.err_reason[0], "full");
    assert_int_equal(chat_queued_frames(c), 2);
    assert_int_equal(chat_acked(c), 0);

    n = s2c_ack(in, 3);
    srv_feed(&s, c, in, n);
    assert_int_equal(r.acked, 3);
    assert_int_equal(chat_queued_frames(c), 0);
    assert_int_equal(chat_state(c), CHAT_ST_READY); /* QUOTA keeps the connection */
    chat_free(c);
    srv_close(&s);
}

static void test_reconnect_resends_unacked_in_order(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    r.now = 1000;
    chat_client *c = client_new(&r, s.port, 1, 1);
    handshake(&s, c, &r);
    uint64_t seq;
    assert_int_equal(chat_send_text(c, 5, "one", &seq), 0);
    assert_int_equal(chat_send_text(c, 5, "two", &seq), 0);
    assert_int_equal(chat_send_text(c, 5, "three", &seq), 0);
    uint8_t want[128], in[64];
    size_t n = c2s_data(want, 42, 5, 1, "one");
    size_t n1 = n;
    n += c2s_data(want + n, 42, 5, 1, "two");
    n += c2s_data(want + n, 42, 5, 1, "three");
    srv_expect(&s, c, want, n);
    srv_feed(&s, c, in, s2c_ack(in, 1));
    assert_int_equal(r.acked, 1);

    srv_drop(&s); /* the server goes away */
    for (int i = 0; i < 100 && !r.disconnected; i++) chat_run_once(c, 100);
    assert_int_equal(r.disconnected, 1);
    assert_int_equal(r.disc_err, CHAT_ECLOSED);
    assert_int_equal(chat_state(c), CHAT_ST_BACKOFF);
    assert_int_equal(chat_fd(c), -1);
    assert_int_equal(chat_queued_frames(c), 2);
    assert_int_equal(chat_next_timeout_ms(c), 100);
    r.now += 99;
    assert_int_equal(chat_next_timeout_ms(c), 1);
    assert_int_equal(chat_process(c, 0, 0), 0);
    assert_int_equal(chat_state(c), CHAT_ST_BACKOFF);
    r.now += 1;
    assert_int_equal(chat_next_timeout_ms(c), 0);

    srv_accept(&s, c); /* run_once fires the timer and connects */
    srv_expect(&s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    srv_expect_nothing(&s, c); /* nothing resent before WELCOME */
    srv_feed(&s, c, in, s2c_welcome(in, FRAME_FLAG_ACKS, 42, 1u << 20));
    assert_int_equal(r.connected, 2);
    srv_expect(&s, c, want + n1, n - n1); /* "two", "three"; not "one" */
    srv_expect_nothing(&s, c);
    srv_feed(&s, c, in, s2c_ack(in, 2)); /* counts restart per connection */
    assert_int_equal(r.acked, 3);
    assert_int_equal(chat_queued_frames(c), 0);

    /* A successful WELCOME reset the backoff: the next delay is 100 again. */
    srv_drop(&s);
    for (int i = 0; i < 100 && r.disconnected < 2; i++) chat_run_once(c, 100);
    assert_int_equal(r.disconnected, 2);
    assert_int_equal(chat_next_timeout_ms(c), 100);
    chat_free(c);
    srv_close(&s);
}

static void test_backoff_doubles_on_failed_connects(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    uint16_t port = s.port;
    srv_close(&s); /* nothing listens on port now */
    rec r = {0};
    chat_client *c = client_new(&r, port, 1, 1);
    assert_int_equal(chat_connect(c), 0);
    for (int i = 0; i < 100 && !r.disconnected; i++) chat_run_once(c, 100);
    assert_int_equal(r.disc_err, CHAT_ECONNECT);
    assert_int_equal(chat_last_errno(c), ECONNREFUSED); /* the cause, for messages */
    assert_int_equal(chat_next_timeout_ms(c), 100);
    r.now += 100;
    for (int i = 0; i < 100 && r.disconnected < 2; i++) chat_run_once(c, 100);
    assert_int_equal(r.disconnected, 2);
    assert_int_equal(chat_next_timeout_ms(c), 200);
    r.now += 200;
    for (int i = 0; i < 100 && r.disconnected < 3; i++) chat_run_once(c, 100);
    assert_int_equal(chat_next_timeout_ms(c), 400);
    /* chat_disconnect stops the timer. */
    assert_int_equal(chat_disconnect(c), 0);
    assert_int_equal(chat_next_timeout_ms(c), -1);
    assert_int_equal(chat_state(c), CHAT_ST_IDLE);
    chat_free(c);
}

static void test_auth_error_stops_reconnect(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    chat_client *c = client_new(&r, s.port, 1, 1);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    srv_expect(&s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    uint8_t in[64];
    size_t n = s2c_error(in, FRAME_ERR_AUTH, 0, "bad password");
    srv_feed_bytewise(&s, c, in, n - 1);
    assert_int_equal(r.errs, 0);
    assert_int_equal(write(s.cfd, in + n - 1, 1), 1);
    assert_int_equal(chat_run_once(c, 1000), CHAT_EAUTH); /* also returned */
    assert_int_equal(r.errs, 1);
    assert_int_equal(r.err_code[0], CHAT_SERR_AUTH);
    assert_int_equal(r.err_seq[0], 0);
    assert_int_equal(r.disconnected, 1);
    assert_int_equal(r.disc_err, CHAT_EAUTH);
    assert_int_equal(chat_state(c), CHAT_ST_IDLE);
    assert_int_equal(chat_next_timeout_ms(c), -1);
    chat_free(c);
    srv_close(&s);
}

static void test_oversize_refused_at_welcome(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    chat_client *c = client_new(&r, s.port, 1, 0);
    char big[40];
    memset(big, 'x', sizeof big);
    uint64_t seq;
    assert_int_equal(chat_send(c, 5, CHAT_PICTURE, big, sizeof big, &seq), 0);
    assert_int_equal(chat_send_text(c, 5, "ok", &seq), 0);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    srv_expect(&s, c, HELLO_ACKS, sizeof HELLO_ACKS);
    uint8_t in[64], want[32];
    srv_feed(&s, c, in, s2c_welcome(in, FRAME_FLAG_ACKS, 42, 10));
    assert_int_equal(r.errs, 1);
    assert_int_equal(r.err_code[0], CHAT_SERR_TOOBIG);
    assert_int_equal(r.err_seq[0], 1);
    srv_expect(&s, c, want, c2s_data(want, 42, 5, 1, "ok"));
    assert_int_equal(chat_send(c, 5, CHAT_PICTURE, big, 11, NULL), CHAT_ETOOBIG);
    chat_free(c);
    srv_close(&s);
}

static void test_control_off_sends_no_control_frame(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    chat_client *c = client_new(&r, s.port, 0, 0);
    uint64_t seq;
    assert_int_equal(chat_send_text(c, 9, "yo", &seq), 0);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    uint8_t want[32], in[128];
    srv_expect(&s, c, want, c2s_data(want, 42, 9, 1, "yo")); /* no HELLO first */
    for (int i = 0; i < 10 && r.acked < 1; i++) chat_run_once(c, 0);
    assert_int_equal(r.connected, 1);
    assert_int_equal(r.acked, 1); /* handled once written */
    assert_int_equal(chat_queued_frames(c), 0);
    assert_int_equal(chat_acks_granted(c), 0);

    /* Data frames are received but never acknowledged; a stray PING is
     * ignored (no PONG). */
    size_t n = s2c(in, 3, FRAME_PICTURE, "img", 3);
    srv_feed_bytewise(&s, c, in, n);
    n = s2c(in, 0, FRAME_PING, "p", 1);
    n += s2c(in + n, 4, FRAME_TEXT, "t", 1);
    srv_feed(&s, c, in, n);
    assert_int_equal(r.msgs, 2);
    assert_int_equal(r.type[0], CHAT_PICTURE);
    assert_int_equal(r.sender[1], 4);
    srv_expect_nothing(&s, c);
    chat_free(c);
    srv_close(&s);
}

/* ------------------------------------------------------------------ */
/* Limits and files                                                    */
/* ------------------------------------------------------------------ */

static void test_queue_bounds(void **state) {
    (void)state;
    rec r = {0};
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = 1;
    o.user = 42;
    o.max_queue_frames = 2;
    o.max_queue_bytes = 10;
    o.userdata = &r;
    chat_client *c = chat_new(&o, NULL);
    assert_non_null(c);
    assert_int_equal(chat_send(c, 1, 0, "x", 1, NULL), CHAT_EINVAL);
    assert_int_equal(chat_send(c, 1, 5, "x", 1, NULL), CHAT_EINVAL);
    assert_int_equal(chat_send(c, 0, CHAT_TEXT, "x", 1, NULL), CHAT_EINVAL);
    assert_int_equal(chat_send(c, 1, CHAT_TEXT, NULL, 1, NULL), CHAT_EINVAL);
    assert_int_equal(chat_send(c, 1, CHAT_TEXT, "0123456789a", 11, NULL), CHAT_ETOOBIG);
    assert_int_equal(chat_send(c, 1, CHAT_TEXT, "0123456", 7, NULL), 0);
    assert_int_equal(chat_send(c, 1, CHAT_TEXT, "0123", 4, NULL), CHAT_EFULL);
    assert_int_equal(chat_send(c, 1, CHAT_TEXT, "012", 3, NULL), 0);
    assert_int_equal(chat_send(c, 1, CHAT_TEXT, NULL, 0, NULL), CHAT_EFULL);
    assert_int_equal(chat_queued_frames(c), 2);
    assert_int_equal(chat_queued_bytes(c), 10);
    assert_int_equal(chat_acked(c), 0);
    chat_free(c); /* frees queued frames (ASan checks) */
}

static void write_file(const char *path, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) fputc((int)('a' + i % 26), f);
    assert_int_equal(fclose(f), 0);
}

static void test_send_file(void **state) {
    (void)state;
    char dir[] = "/tmp/libchat-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ok[64], big[64], missing[64];
    snprintf(ok, sizeof ok, "%s/ok.png", dir);
    snprintf(big, sizeof big, "%s/big.mp4", dir);
    snprintf(missing, sizeof missing, "%s/none.png", dir);
    write_file(ok, 16);
    write_file(big, 17);

    srv s;
    srv_open(&s);
    rec r = {0};
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = s.port;
    o.user = 42;
    o.control = 0;
    o.max_frame = 16;
    o.userdata = &r;
    chat_client *c = chat_new(&o, NULL);
    assert_non_null(c);
    uint64_t seq = 0;
    assert_int_equal(chat_send_file(c, 5, CHAT_PICTURE, missing, &seq), CHAT_ENOENT);
    assert_int_equal(chat_send_file(c, 5, CHAT_VIDEO, big, &seq), CHAT_ETOOBIG);
    assert_int_equal(chat_send_file(c, 5, CHAT_PICTURE, dir, &seq), CHAT_EIO);
    assert_int_equal(chat_send_file(c, 5, 9, ok, &seq), CHAT_EINVAL);
    assert_int_equal(seq, 0);
    assert_int_equal(chat_send_file(c, 5, chat_type_from_path(ok), ok, &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(chat_queued_bytes(c), 16);

    assert_int_equal(chat_connect(c), 0);
    srv_accept(&s, c);
    uint8_t want[32];
    size_t n = c2s_data(want, 42, 5, CHAT_PICTURE, "abcdefghijklmnop");
    srv_expect(&s, c, want, n);
    chat_free(c);
    srv_close(&s);
    unlink(ok);
    unlink(big);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names_every_code),
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_type_from_path),
        cmocka_unit_test(test_new_validates),
        cmocka_unit_test(test_hello_welcome_data_layout),
        cmocka_unit_test(test_receive_split_and_ack),
        cmocka_unit_test(test_hold_stops_delivery_and_ack),
        cmocka_unit_test(test_error_ref_drops_frame),
        cmocka_unit_test(test_reconnect_resends_unacked_in_order),
        cmocka_unit_test(test_backoff_doubles_on_failed_connects),
        cmocka_unit_test(test_auth_error_stops_reconnect),
        cmocka_unit_test(test_oversize_refused_at_welcome),
        cmocka_unit_test(test_control_off_sends_no_control_frame),
        cmocka_unit_test(test_queue_bounds),
        cmocka_unit_test(test_send_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
