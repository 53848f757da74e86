/*
 * test_libchat_failover.c -- libchat with several servers (chat_set_servers,
 * include/chat.h "Several servers"), against fake servers in the test
 * process (libchat_fake.h) and closed loopback ports.
 *
 * The reconnect timer runs on the fake clock, which these tests never move
 * unless they say so: an attempt made without moving it was made without
 * a backoff delay. Whether a connect to a closed loopback port fails
 * inside connect(2) or a moment later is the kernel's choice; the tests
 * hold either way (chat_connect then fails over inside the call, or
 * chat_process does after on_disconnected).
 *
 * Covers: chat_set_servers' checks (counts, empty and long hosts, state,
 * all or nothing) and defaults (port 0 = options.port); the first attempt
 * failing over to the next server without a backoff; a lost session moving
 * to the next server (round robin, wrapping) and the unacknowledged POST
 * resent there with the cid its first attempt had; the backoff only after
 * a whole round failed (0, 100, 0, 200 ms with two servers);
 * chat_failures and chat_server_index; reconnect 0: each server tried once
 * before the first session, no retry after a ready session is lost; a
 * server that accepts TCP but never sends WELCOME (frozen) timed out by
 * connect_timeout_ms and skipped; CHAT_EAUTH stopping the rotation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
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

/* A loopback port nothing listens on (bound, then closed). */
static uint16_t dead_port(void) {
    srv s;
    srv_open(&s);
    uint16_t port = s.port;
    srv_close(&s);
    return port;
}

static void set_two(chat_client *c, uint16_t p0, uint16_t p1) {
    const char *hosts[] = {"127.0.0.1", "127.0.0.1"};
    uint16_t ports[] = {p0, p1};
    assert_int_equal(chat_set_servers(c, hosts, ports, 2), 0);
}

/* Two fake servers and a client (reconnect 1) on both, its HELLO read by
 * the first: the session waits for WELCOME. */
static chat_client *hello_on_first(srv *s0, srv *s1, rec *r) {
    srv_open(s0);
    srv_open(s1);
    chat_client *c = client_new(r, s0->port, 1, 1);
    set_two(c, s0->port, s1->port);
    assert_int_equal(chat_connect(c), 0);
    srv_accept(s0, c);
    srv_expect(s0, c, HELLO_ACKS, sizeof HELLO_ACKS);
    assert_int_equal(chat_state(c), CHAT_ST_HELLO);
    return c;
}

/* A client (reconnect or not) on two closed ports, connect started. */
static chat_client *two_dead(rec *r, int reconnect) {
    chat_client *c = client_new(r, 9, 1, reconnect);
    set_two(c, dead_port(), dead_port());
    int rc = chat_connect(c);
    assert_true(rc == 0 || rc == CHAT_ECONNECT);
    return c;
}

/* Drive the client (clock frozen) until chat_failures reaches n. */
static void run_until_failures(chat_client *c, unsigned n) {
    for (int i = 0; i < 200 && chat_failures(c) < n; i++) chat_run_once(c, 20);
    assert_int_equal(chat_failures(c), n);
}

static void test_set_servers_validates(void **state) {
    (void)state;
    rec r = {0};
    chat_client *c = client_new(&r, 9, 1, 1);
    const char *hosts[CHAT_SERVERS_MAX + 1];
    for (size_t i = 0; i <= CHAT_SERVERS_MAX; i++) hosts[i] = "127.0.0.1";
    assert_int_equal(chat_set_servers(NULL, hosts, NULL, 1), CHAT_EINVAL);
    assert_int_equal(chat_set_servers(c, NULL, NULL, 1), CHAT_EINVAL);
    assert_int_equal(chat_set_servers(c, hosts, NULL, 0), CHAT_EINVAL);
    assert_int_equal(chat_set_servers(c, hosts, NULL, CHAT_SERVERS_MAX + 1), CHAT_EINVAL);
    assert_int_equal(chat_set_servers(c, hosts, NULL, CHAT_SERVERS_MAX), 0);
    char long_host[CHAT_HOST_MAX + 2];
    memset(long_host, 'a', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = 0; /* 256 bytes */
    const char *bad[][2] = {{"127.0.0.1", ""}, {"127.0.0.1", NULL}, {long_host, "x"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(chat_set_servers(c, bad[i], NULL, 2), CHAT_EINVAL);
    long_host[CHAT_HOST_MAX] = 0; /* 255 bytes: the limit itself */
    const char *ok[] = {long_host, "localhost"};
    assert_int_equal(chat_set_servers(c, ok, NULL, 2), 0);
    assert_int_equal(chat_server_index(c), 0);
    assert_int_equal(chat_server_index(NULL), CHAT_EINVAL);
    assert_int_equal(chat_failures(NULL), 0);

    /* Only while idle: not while an attempt is under way or scheduled. */
    srv s;
    srv_open(&s);
    const char *one[] = {"127.0.0.1"};
    uint16_t port[] = {s.port};
    assert_int_equal(chat_set_servers(c, one, port, 1), 0);
    assert_int_equal(chat_connect(c), 0);
    assert_int_equal(chat_set_servers(c, one, port, 1), CHAT_ESTATE);
    assert_int_equal(chat_disconnect(c), 0);
    assert_int_equal(chat_set_servers(c, one, port, 1), 0);
    chat_free(c);
    srv_close(&s);
}

/* Port 0 (or ports NULL) is options.port: the client connects there. */
static void test_port_zero_is_the_options_port(void **state) {
    (void)state;
    srv s;
    srv_open(&s);
    rec r = {0};
    chat_client *c = client_new(&r, s.port, 1, 1);
    const char *hosts[] = {"127.0.0.1", "127.0.0.1"};
    assert_int_equal(chat_set_servers(c, hosts, NULL, 2), 0);
    handshake(&s, c, &r);
    assert_int_equal(chat_server_index(c), 0);
    chat_free(c);
    srv_close(&s);
}

static void test_first_attempt_fails_over_without_backoff(void **state) {
    (void)state;
    srv live;
    srv_open(&live);
    rec r = {.now = 1000};
    conv_opts co = {.conv = 1};
    chat_client *c = conv_client(&r, live.port, &co);
    set_two(c, dead_port(), live.port);
    assert_int_equal(chat_connect(c), 0); /* server 1's attempt is under way */
    conv_session(&live, c, &r, CONV_FLAGS); /* clock frozen: no backoff */
    assert_int_equal(chat_server_index(c), 1);
    assert_true(r.disconnected <= 1); /* 1: reported by chat_process */
    if (r.disconnected) assert_int_equal(r.disc_err, CHAT_ECONNECT);
    assert_int_equal(chat_failures(c), 0); /* a ready session resets it */
    chat_free(c);
    srv_close(&live);
}

static void test_lost_session_moves_on_and_resends_same_cid(void **state) {
    (void)state;
    srv s0, s1;
    srv_open(&s0);
    srv_open(&s1);
    rec r = {.now = 1000};
    conv_opts co = {.conv = 1};
    chat_client *c = conv_client(&r, s0.port, &co);
    set_two(c, s0.port, s1.port);
    assert_int_equal(chat_connect(c), 0);
    conv_session(&s0, c, &r, CONV_FLAGS);
    assert_int_equal(chat_server_index(c), 0);
    uint64_t seq;
    assert_int_equal(chat_send_text(c, 5, "one", &seq), 0);
    assert_int_equal(chat_send_text(c, 5, "two", &seq), 0);
    uint8_t got[64], want[128], in[64];
    srv_take(&s0, c, got, 23 + 3);
    uint64_t cid1 = rd64(got + 15);
    srv_expect(&s0, c, want, c2s_post(want, 42, 5, CHAT_TEXT, cid1 + 1, "two"));
    srv_feed(&s0, c, in, s2c_ack(in, 1)); /* "two" stored there, say; ACK lost */
    assert_int_equal(r.acked, 1);

    /* Server 0 dies: on_disconnected names it, the next attempt is due now
     * and goes to server 1, which gets "two" with the same cid. */
    srv_drop(&s0);
    for (int i = 0; i < 100 && !r.disconnected; i++) chat_run_once(c, 20);
    assert_int_equal(r.disc_err, CHAT_ECLOSED);
    assert_int_equal(chat_state(c), CHAT_ST_BACKOFF);
    assert_int_equal(chat_server_index(c), 0);
    assert_int_equal(chat_failures(c), 1);
    assert_int_equal(chat_next_timeout_ms(c), 0);
    conv_session(&s1, c, &r, CONV_FLAGS);
    assert_int_equal(chat_server_index(c), 1);
    srv_expect(&s1, c, want, c2s_post(want, 42, 5, CHAT_TEXT, cid1 + 1, "two"));
    srv_expect_nothing(&s1, c);
    srv_feed(&s1, c, in, s2c_ack(in, 1));
    assert_int_equal(r.acked, 2);
    assert_int_equal(chat_queued_frames(c), 0);

    /* Server 1 dies too: round robin wraps to server 0, again at once. */
    srv_drop(&s1);
    for (int i = 0; i < 100 && r.disconnected < 2; i++) chat_run_once(c, 20);
    assert_int_equal(r.disconnected, 2);
    assert_int_equal(chat_next_timeout_ms(c), 0);
    conv_session(&s0, c, &r, CONV_FLAGS);
    assert_int_equal(chat_server_index(c), 0);
    chat_free(c);
    srv_close(&s0);
    srv_close(&s1);
}

static void test_backoff_only_after_a_whole_round(void **state) {
    (void)state;
    rec r = {.now = 1000};
    chat_client *c = two_dead(&r, 1);
    /* Both servers fail without the clock moving: the first failure cost
     * no delay; the round's end starts the backoff (100 ms). */
    run_until_failures(c, 2);
    assert_int_equal(chat_state(c), CHAT_ST_BACKOFF);
    assert_int_equal(chat_next_timeout_ms(c), 100);
    assert_int_equal(chat_last_errno(c), ECONNREFUSED);
    r.now += 100;
    run_until_failures(c, 4); /* again one quick failover, then 200 ms */
    assert_int_equal(chat_next_timeout_ms(c), 200);
    r.now += 200;
    run_until_failures(c, 6);
    assert_int_equal(chat_next_timeout_ms(c), 400);
    /* The rotation went 0, 1, 0, 1, 0, 1: the last attempt was server 1. */
    assert_int_equal(chat_server_index(c), 1);
    /* chat_reconnect starts afresh: a new round, no delay carried over. */
    int rc = chat_reconnect(c);
    assert_true(rc == 0 || rc == CHAT_ECONNECT);
    run_until_failures(c, 2);
    assert_int_equal(chat_next_timeout_ms(c), 100);
    chat_free(c);
}

static void test_no_reconnect_tries_each_server_once(void **state) {
    (void)state;
    rec r = {.now = 1000};
    chat_client *c = two_dead(&r, 0);
    for (int i = 0; i < 200 && chat_state(c) != CHAT_ST_IDLE; i++) chat_run_once(c, 20);
    assert_int_equal(chat_state(c), CHAT_ST_IDLE);
    assert_int_equal(chat_failures(c), 2);
    assert_int_equal(chat_next_timeout_ms(c), -1);
    assert_int_equal(chat_run_once(c, 0), CHAT_ENOTCONN);
    chat_free(c);

    /* A ready session that is lost is not retried, server list or not. */
    srv s0, s1;
    srv_open(&s0);
    srv_open(&s1);
    rec r2 = {.now = 1000};
    c = client_new(&r2, s0.port, 1, 0);
    set_two(c, s0.port, s1.port);
    handshake(&s0, c, &r2);
    srv_drop(&s0);
    for (int i = 0; i < 100 && !r2.disconnected; i++) chat_run_once(c, 20);
    assert_int_equal(r2.disc_err, CHAT_ECLOSED);
    assert_int_equal(chat_state(c), CHAT_ST_IDLE);
    chat_free(c);
    srv_close(&s0);
    srv_close(&s1);
}

/* A frozen server: its kernel completes the TCP handshake but no WELCOME
 * ever comes. The connect timeout covers the wait for WELCOME too, and the
 * next server is tried at once when it expires. */
static void test_no_welcome_times_out_and_fails_over(void **state) {
    (void)state;
    srv s0, s1;
    rec r = {.now = 1000};
    chat_client *c = hello_on_first(&s0, &s1, &r);
    assert_int_equal(chat_next_timeout_ms(c), 10000); /* the default bound */
    r.now += 9999;
    assert_int_equal(chat_process(c, 0, 0), 0);
    assert_int_equal(chat_state(c), CHAT_ST_HELLO);
    r.now += 1;
    assert_int_equal(chat_process(c, 0, 0), CHAT_ECONNECT);
    assert_int_equal(r.disc_err, CHAT_ECONNECT);
    assert_int_equal(chat_last_errno(c), ETIMEDOUT);
    assert_int_equal(chat_next_timeout_ms(c), 0);
    handshake(&s1, c, &r); /* (chat_connect in BACKOFF: now, to server 1) */
    assert_int_equal(chat_server_index(c), 1);
    assert_int_equal(chat_next_timeout_ms(c), -1); /* READY: no bound */
    chat_free(c);
    srv_close(&s0);
    srv_close(&s1);
}

/* A refused login stops the rotation: servers of one store answer alike. */
static void test_auth_error_stops_the_rotation(void **state) {
    (void)state;
    srv s0, s1;
    rec r = {.now = 1000};
    chat_client *c = hello_on_first(&s0, &s1, &r);
    uint8_t in[64];
    size_t n = s2c_error(in, FRAME_ERR_AUTH, 0, "bad password");
    assert_int_equal(write(s0.cfd, in, n), (ssize_t)n);
    assert_int_equal(chat_run_once(c, 1000), CHAT_EAUTH);
    assert_int_equal(chat_state(c), CHAT_ST_IDLE);
    assert_int_equal(chat_next_timeout_ms(c), -1);
    chat_free(c);
    srv_close(&s0);
    srv_close(&s1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_servers_validates),
        cmocka_unit_test(test_port_zero_is_the_options_port),
        cmocka_unit_test(test_first_attempt_fails_over_without_backoff),
        cmocka_unit_test(test_lost_session_moves_on_and_resends_same_cid),
        cmocka_unit_test(test_backoff_only_after_a_whole_round),
        cmocka_unit_test(test_no_reconnect_tries_each_server_once),
        cmocka_unit_test(test_no_welcome_times_out_and_fails_over),
        cmocka_unit_test(test_auth_error_stops_the_rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
