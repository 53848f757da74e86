/*
 * test_bench.c -- unit tests for chat-bench's pure parts: the protocol
 * decoders (wire.c: a message is decoded as its head, "N bytes follow";
 * other units whole) and the output queue (outq.c: gather list, partial
 * writes, compaction). `make bench-test`.
 *
 * Every decoder is fed each unit at once and cut at every byte (it must
 * answer "incomplete" until the head, or the whole unit, is there), and
 * inputs are heap copies of exactly the given size so that ASan sees reads
 * past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"
#include "proto/frame.h"
#include "wire.h"

static uint8_t *dup_exact(const void *p, size_t n) {
    uint8_t *d = malloc(n ? n : 1);
    assert_non_null(d);
    if (n) memcpy(d, p, n);
    return d;
}

/* Decode d[0..n) cut at every length below `need`: 0 each time; at `need`
 * and at n: `need`. */
static void check_cuts(wire_proto p, const uint8_t *d, size_t n, long need, wire_ev *ev) {
    for (size_t k = 0; k < (size_t)need; k++) {
        uint8_t *c = dup_exact(d, k);
        wire_ev e;
        assert_int_equal(wire_decode(p, c, k, &e), 0);
        free(c);
    }
    uint8_t *c = dup_exact(d, (size_t)need);
    assert_int_equal(wire_decode(p, c, (size_t)need, ev), need);
    free(c);
    c = dup_exact(d, n);
    assert_int_equal(wire_decode(p, c, n, ev), need);
    free(c);
}

/* A server -> client message of `len` payload bytes in each protocol; the
 * head's size in *head and the bytes that follow it in *follow. */
static size_t server_msg(wire_proto p, uint8_t *out, uint32_t len, long *head, uint64_t *follow) {
    size_t n = 0;
    switch (p) {
    case WIRE_CHAT:
        n = frame_put_s2c_hdr(out, 7, FRAME_VIDEO, len);
        *head = (long)n;
        *follow = len;
        break;
    case WIRE_REDIS:
        n = (size_t)sprintf((char *)out, "*3\r\n$7\r\nmessage\r\n$2\r\nu2\r\n$%u\r\n", len);
        *head = (long)n;
        *follow = (uint64_t)len + 2;
        break;
    case WIRE_NATS:
        n = (size_t)sprintf((char *)out, "MSG u2 1 %u\r\n", len);
        *head = (long)n;
        *follow = (uint64_t)len + 2;
        break;
    case WIRE_MQTT: {
        uint32_t rem = 2 + 2 + len, v = rem;
        out[n++] = 0x30;
        do {
            uint8_t b = v & 0x7f;
            v >>= 7;
            out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
        } while (v);
        out[n++] = 0;
        out[n++] = 2;
        out[n++] = 'u';
        out[n++] = '2';
        *head = (long)n;
        *follow = len;
        break;
    }
    }
    memset(out + n, 0xab, len);
    n += len;
    if (p == WIRE_REDIS || p == WIRE_NATS) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    return n;
}

static void test_message_heads(void **state) {
    (void)state;
    static uint8_t buf[200000];
    const uint32_t sizes[] = {12, 64, 1000, 70000};
    for (int p = WIRE_CHAT; p <= WIRE_MQTT; p++)
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            long head;
            uint64_t follow;
            size_t n = server_msg((wire_proto)p, buf, sizes[i], &head, &follow);
            wire_ev ev;
            check_cuts((wire_proto)p, buf, n, head, &ev);
            assert_int_equal(ev.kind, WEV_MSG);
            assert_int_equal(ev.len, sizes[i]);
            assert_int_equal(ev.follow, follow);
            assert_int_equal((size_t)head + follow, n); /* head + follow is the unit */
        }
}

static void test_control_units(void **state) {
    (void)state;
    wire_ev ev;
    /* chat: WELCOME and ACK whole; a 0-length data frame is the bind's echo */
    uint8_t w[FRAME_S2C_HDR + 10] = {0, 0, 0, 0, 0x81, 0, 0, 0, 10, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0};
    check_cuts(WIRE_CHAT, w, sizeof w, sizeof w, &ev);
    assert_int_equal(ev.kind, WEV_READY);
    uint8_t a[FRAME_S2C_HDR + 8] = {0, 0, 0, 0, 0x82, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2};
    check_cuts(WIRE_CHAT, a, sizeof a, sizeof a, &ev);
    assert_int_equal(ev.kind, WEV_ACK);
    assert_int_equal(ev.count, 258);
    uint8_t e[FRAME_S2C_HDR] = {0, 0, 0, 1, 1, 0, 0, 0, 0};
    check_cuts(WIRE_CHAT, e, sizeof e, sizeof e, &ev);
    assert_int_equal(ev.kind, WEV_READY);
    /* redis: subscribe confirmation, PUBLISH's answer */
    const char *sub = "*3\r\n$9\r\nsubscribe\r\n$2\r\nu1\r\n:1\r\n";
    check_cuts(WIRE_REDIS, (const uint8_t *)sub, strlen(sub), (long)strlen(sub), &ev);
    assert_int_equal(ev.kind, WEV_READY);
    check_cuts(WIRE_REDIS, (const uint8_t *)":0\r\n", 4, 4, &ev);
    assert_int_equal(ev.kind, WEV_PUBLISHED);
    assert_int_equal(ev.count, 0);
    /* nats: INFO, PONG, PING */
    const char *info = "INFO {\"server_id\":\"x\",\"tls_required\":true}\r\n";
    check_cuts(WIRE_NATS, (const uint8_t *)info, strlen(info), (long)strlen(info), &ev);
    assert_int_equal(ev.kind, WEV_NONE);
    check_cuts(WIRE_NATS, (const uint8_t *)"PONG\r\n", 6, 6, &ev);
    assert_int_equal(ev.kind, WEV_READY);
    check_cuts(WIRE_NATS, (const uint8_t *)"PING\r\n", 6, 6, &ev);
    assert_int_equal(ev.kind, WEV_PING);
    /* mqtt: CONNACK accepted, SUBACK granted / refused */
    const uint8_t ca[] = {0x20, 2, 0, 0}, sa[] = {0x90, 3, 0, 1, 0}, sr[] = {0x90, 3, 0, 1, 0x80};
    check_cuts(WIRE_MQTT, ca, sizeof ca, sizeof ca, &ev);
    assert_int_equal(ev.kind, WEV_NONE);
    check_cuts(WIRE_MQTT, sa, sizeof sa, sizeof sa, &ev);
    assert_int_equal(ev.kind, WEV_READY);
    check_cuts(WIRE_MQTT, sr, sizeof sr, sizeof sr, &ev);
    assert_int_equal(ev.kind, WEV_ERROR);
}

static void test_not_the_protocol(void **state) {
    (void)state;
    wire_ev ev;
    const uint8_t big_ctl[FRAME_S2C_HDR] = {0, 0, 0, 0, 0x83, 0, 0x10, 0, 0}; /* 1 MiB ERROR */
    assert_int_equal(wire_decode(WIRE_CHAT, big_ctl, sizeof big_ctl, &ev), -1);
    assert_int_equal(wire_decode(WIRE_REDIS, (const uint8_t *)"hello\r\n", 7, &ev), -1);
    assert_int_equal(wire_decode(WIRE_NATS, (const uint8_t *)"HELLO\r\n", 7, &ev), -1);
    assert_int_equal(wire_decode(WIRE_NATS, (const uint8_t *)"MSG u1 1 x\r\n", 12, &ev), -1);
    const uint8_t mq[] = {0x90, 0xff, 0xff, 0xff, 0x7f}; /* SUBACK of 256 MB */
    assert_int_equal(wire_decode(WIRE_MQTT, mq, sizeof mq, &ev), -1);
}

/* --- outq */

static size_t drain(outq *q, uint8_t *out, size_t max_per_write) {
    size_t got = 0;
    struct iovec iov[8];
    while (q->bytes) {
        int k = outq_iov(q, iov, 8, 0);
        assert_true(k > 0);
        size_t w = 0;
        for (int i = 0; i < k && w < max_per_write; i++) {
            size_t t = iov[i].iov_len < max_per_write - w ? iov[i].iov_len : max_per_write - w;
            memcpy(out + got + w, iov[i].iov_base, t);
            w += t;
        }
        outq_consume(q, w);
        got += w;
    }
    return got;
}

static void test_outq_order_and_partial_writes(void **state) {
    (void)state;
    static uint8_t payload[5000], want[100000], got[100000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7);
    for (size_t step = 1; step < 9000; step = step * 3 + 1) {
        outq q = {0};
        size_t n = 0;
        for (int m = 0; m < 10; m++) { /* head, stamp (staged), payload (referenced), tail */
            uint8_t head[20];
            memset(head, 'a' + m, sizeof head);
            assert_int_equal(outq_put(&q, head, sizeof head), 0);
            memcpy(want + n, head, sizeof head);
            n += sizeof head;
            assert_int_equal(outq_ref(&q, payload, sizeof payload), 0);
            memcpy(want + n, payload, sizeof payload);
            n += sizeof payload;
            assert_int_equal(outq_put(&q, "\r\n", 2), 0);
            memcpy(want + n, "\r\n", 2);
            n += 2;
        }
        assert_int_equal(q.bytes, n);
        assert_int_equal(drain(&q, got, step), n);
        assert_memory_equal(got, want, n);
        assert_int_equal(q.n, 0); /* drained: back at the front */
        outq_free(&q);
    }
}

static void test_outq_adjacent_stage_bytes_share_a_segment(void **state) {
    (void)state;
    outq q = {0};
    for (int i = 0; i < 100; i++) {
        uint8_t *p = outq_reserve(&q, 77);
        assert_non_null(p);
        memset(p, i, 77);
        outq_commit(&q, 77);
    }
    struct iovec iov[4];
    assert_int_equal(outq_iov(&q, iov, 4, 0), 1);
    assert_int_equal(iov[0].iov_len, 7700);
    outq_free(&q);
}

static void test_outq_never_drained_stays_small(void **state) {
    (void)state;
    /* a socket that always keeps some bytes: the queue must not grow */
    static uint8_t payload[1000];
    outq q = {0};
    size_t maxcap = 0, maxseg = 0;
    for (int round = 0; round < 20000; round++) {
        assert_int_equal(outq_put(&q, "headstamp...", 12), 0);
        assert_int_equal(outq_ref(&q, payload, sizeof payload), 0);
        if (q.bytes > 3000) outq_consume(&q, q.bytes - 2000); /* leave 2000 behind */
        if (q.scap > maxcap) maxcap = q.scap;
        if (q.cap > maxseg) maxseg = q.cap;
    }
    assert_true(maxcap <= 4096);
    assert_true(maxseg <= 64);
    outq_free(&q);
}

static void test_outq_big_segments(void **state) {
    (void)state;
    static uint8_t payload[100000];
    outq q = {0};
    assert_int_equal(outq_put(&q, "head", 4), 0);
    assert_int_equal(outq_ref(&q, payload, sizeof payload), 0);
    struct iovec iov[4];
    size_t len = 0;
    assert_int_equal(outq_iov(&q, iov, 4, 65536), 1); /* stops before the big one */
    assert_null(outq_big(&q, 65536, &len));
    outq_consume(&q, 4);
    assert_ptr_equal(outq_big(&q, 65536, &len), payload);
    assert_int_equal(len, sizeof payload);
    outq_consume(&q, 50000);
    assert_null(outq_big(&q, 65536, &len)); /* 50000 left: under the bar */
    assert_int_equal(outq_iov(&q, iov, 4, 65536), 1);
    assert_ptr_equal(iov[0].iov_base, payload + 50000);
    outq_free(&q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_heads),
        cmocka_unit_test(test_control_units),
        cmocka_unit_test(test_not_the_protocol),
        cmocka_unit_test(test_outq_order_and_partial_writes),
        cmocka_unit_test(test_outq_adjacent_stage_bytes_share_a_segment),
        cmocka_unit_test(test_outq_never_drained_stays_small),
        cmocka_unit_test(test_outq_big_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
