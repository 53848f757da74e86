/*
 * test_bench.c -- unit tests for chat-bench's pure parts: the protocol
 * decoders (wire.c: a message is decoded as its head, "N bytes follow";
 * other units whole) and the chat encoders for conversations and groups
 * (HELLO with CONV, the client ACK, POST, GROUP CREATE, GROUPS, MSG), the output queue (outq.c: gather list, partial
 * writes, compaction) and the WebSocket client (bws.c: handshake, masking,
 * frame headers, in-place unframing, fragments, control frames).
 * With the tests of a group's account of messages in flight
 * (test_bgroup.c, bgroup.c). `make bench-test`.
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

#include "bws.h"
#include "outq.h"
#include "proto/frame.h"
#include "wire.h"

int test_bgroup_run(void); /* test_bgroup.c: its group, the failures */

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

/* --- chat: conversations and groups */

static void test_chat_conv_hello(void **state) {
    (void)state;
    uint8_t out[WIRE_HELLO_MAX];
    /* the server's own parser reads what chat-bench sends */
    size_t n = wire_hello(WIRE_CHAT, out, 42, WIRE_CONV | WIRE_ACKS);
    frame_c2s f = {0};
    assert_int_equal(frame_decode_c2s(out, n, 1024, &f), (long)n);
    assert_int_equal(f.sender, 42);
    assert_int_equal(f.type, FRAME_HELLO);
    frame_hello h;
    assert_int_equal(frame_parse_hello(f.body, f.len, &h), 0);
    assert_int_equal(h.flags, FRAME_FLAG_CONV | FRAME_FLAG_ACKS);
    assert_int_equal(h.device_len, strlen(WIRE_DEVICE));
    assert_memory_equal(h.device, WIRE_DEVICE, h.device_len);
    assert_null(h.password);
    n = wire_hello(WIRE_CHAT, out, 42, WIRE_CONV); /* CONV alone: no ACKS */
    assert_int_equal(frame_decode_c2s(out, n, 1024, &f), (long)n);
    assert_int_equal(frame_parse_hello(f.body, f.len, &h), 0);
    assert_int_equal(h.flags, FRAME_FLAG_CONV);
    /* WELCOME says what was granted, in wire's flags */
    uint8_t w[FRAME_S2C_HDR + FRAME_WELCOME_SIZE];
    frame_welcome fw = {FRAME_VERSION, FRAME_FLAG_CONV, 42, 1u << 20};
    frame_put_s2c_hdr(w, 0, FRAME_WELCOME, FRAME_WELCOME_SIZE);
    frame_put_welcome(w + FRAME_S2C_HDR, &fw);
    wire_ev ev;
    check_cuts(WIRE_CHAT, w, sizeof w, sizeof w, &ev);
    assert_int_equal(ev.kind, WEV_READY);
    assert_int_equal(ev.count, WIRE_CONV);
    w[FRAME_S2C_HDR + 1] = FRAME_FLAG_ACKS | FRAME_FLAG_CONV;
    check_cuts(WIRE_CHAT, w, sizeof w, sizeof w, &ev);
    assert_int_equal(ev.count, WIRE_CONV | WIRE_ACKS);
    w[8] = 9; /* a WELCOME of 9 bytes is not the protocol */
    assert_int_equal(wire_decode(WIRE_CHAT, w, sizeof w - 1, &ev), -1);
}

/* --acks: the client ACK chat-bench sends is what the server parses. */
static void test_chat_client_ack(void **state) {
    (void)state;
    uint8_t out[WIRE_ACK_MAX];
    size_t n = wire_ack(WIRE_CHAT, out, 7, 123456789012ull);
    assert_int_equal(n, WIRE_ACK_MAX);
    frame_c2s f = {0};
    assert_int_equal(frame_decode_c2s(out, n, 1024, &f), (long)n);
    assert_int_equal(f.sender, 7);
    assert_int_equal(f.receiver, 0);
    assert_int_equal(f.type, FRAME_ACK);
    uint64_t count = 0;
    assert_int_equal(frame_parse_ack(f.body, f.len, &count), 0);
    assert_true(count == 123456789012ull);
    assert_int_equal(wire_ack(WIRE_REDIS, out, 7, 1), 0); /* chat only */
}

static void test_chat_post_head(void **state) {
    (void)state;
    uint8_t h[WIRE_HEAD_MAX];
    size_t n = wire_post_head(h, 7, 0x01020304u, WIRE_POST_GROUP, 0x1122334455667788ull, 64);
    assert_int_equal(n, WIRE_POST_HEAD);
    const uint8_t want[] = {0, 0, 0, 7, 1, 2, 3, 4, FRAME_POST, 0, 0, 0, 74, /* 10 + 64 */
                            FRAME_TEXT, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    assert_int_equal(sizeof want, WIRE_POST_HEAD);
    assert_memory_equal(h, want, sizeof want);
    n = wire_post_head(h, 7, 9, 0, 0, 0); /* to a user, no cid, empty */
    assert_int_equal(h[12], FRAME_POST_PRE);
    assert_int_equal(h[14], 0);
    for (size_t i = 15; i < n; i++) assert_int_equal(h[i], 0);
}

static void test_chat_group_create(void **state) {
    (void)state;
    const uint32_t ids[] = {2, 0x01000003u, 4};
    uint8_t f[64];
    size_t want = wire_group_create_size(3, 3);
    assert_int_equal(want, 13 + 9 + 1 + 3 + 2 + 12);
    assert_true(want <= sizeof f);
    assert_int_equal(wire_group_create(f, 1, 0x0a0b0c0du, "abc", ids, 3), want);
    const uint8_t exp[] = {0, 0, 0, 1, 0, 0, 0, 0, FRAME_GROUP, 0, 0, 0, 27,
                           1, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 0, /* op, req, group 0 */
                           3, 'a', 'b', 'c', 0, 3,                 /* name, count */
                           0, 0, 0, 2, 1, 0, 0, 3, 0, 0, 0, 4};
    assert_int_equal(sizeof exp, want);
    assert_memory_equal(f, exp, want);
    /* a name must be 1 to 64 bytes, the count fit a u16 */
    char name[WIRE_GROUP_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    static uint8_t big[200];
    assert_int_equal(wire_group_create(big, 1, 1, name, ids, 0), 0);
    name[WIRE_GROUP_NAME_MAX] = 0;
    assert_int_equal(wire_group_create(big, 1, 1, name, ids, 0), wire_group_create_size(64, 0));
    assert_int_equal(wire_group_create(big, 1, 1, "", ids, 0), 0);
    assert_int_equal(wire_group_create(big, 1, 1, "x", ids, WIRE_GROUP_MEMBERS_MAX + 1), 0);
    /* the count's high byte */
    static uint32_t many[300];
    uint8_t *m = malloc(wire_group_create_size(1, 300));
    assert_non_null(m);
    assert_int_equal(wire_group_create(m, 1, 1, "x", many, 300), wire_group_create_size(1, 300));
    assert_int_equal(m[13 + 9 + 2], 1);
    assert_int_equal(m[13 + 9 + 3], 300 - 256);
    free(m);
}

/* A server -> client GROUPS frame with `rest` bytes after the fixed part. */
static size_t groups_frame(uint8_t *out, uint8_t op, uint32_t req, uint32_t group, size_t rest) {
    frame_put_s2c_hdr(out, 0, FRAME_GROUPS, (uint32_t)(9 + rest));
    uint8_t *b = out + FRAME_S2C_HDR;
    b[0] = op;
    frame_wr32(b + 1, req);
    frame_wr32(b + 5, group);
    memset(b + 9, 0xee, rest);
    return FRAME_S2C_HDR + 9 + rest;
}

static void test_chat_groups_answer(void **state) {
    (void)state;
    static uint8_t f[70000];
    wire_ev ev;
    wire_groups g;
    size_t n = groups_frame(f, WIRE_GROUP_CREATE, 1, 77, 0); /* CREATE's answer */
    check_cuts(WIRE_CHAT, f, n, (long)n, &ev);
    assert_int_equal(ev.kind, WEV_GROUPS);
    assert_int_equal(wire_decode(WIRE_CHAT, f, n, &ev), (long)n); /* body into f */
    assert_int_equal(wire_parse_groups(ev.body, ev.len, &g), 0);
    assert_int_equal(g.op, WIRE_GROUP_CREATE);
    assert_int_equal(g.req, 1);
    assert_int_equal(g.group, 77);
    assert_int_equal(g.rest_len, 0);
    /* an EVENT naming 1,024 members is decoded whole */
    n = groups_frame(f, WIRE_GROUP_EVENT, 0, 77, 1 + 4 + 2 + 4 * 1024 + 1 + 7);
    check_cuts(WIRE_CHAT, f, n, (long)n, &ev);
    assert_int_equal(ev.kind, WEV_GROUPS);
    assert_int_equal(wire_decode(WIRE_CHAT, f, n, &ev), (long)n); /* body into f */
    assert_int_equal(wire_parse_groups(ev.body, ev.len, &g), 0);
    assert_int_equal(g.op, WIRE_GROUP_EVENT);
    assert_int_equal(g.rest_len, n - FRAME_S2C_HDR - 9);
    assert_ptr_equal(g.rest, ev.body + 9);
    /* malformed bodies: too short, op 0 or past EVENT */
    assert_int_equal(wire_parse_groups(ev.body, 8, &g), -1);
    uint8_t b[9] = {0};
    assert_int_equal(wire_parse_groups(b, 9, &g), -1);
    b[0] = WIRE_GROUP_EVENT + 1;
    assert_int_equal(wire_parse_groups(b, 9, &g), -1);
    /* one larger than chat-bench keeps is not what it expects */
    n = groups_frame(f, WIRE_GROUP_EVENT, 0, 77, 61 << 10);
    assert_int_equal(wire_decode(WIRE_CHAT, f, n, &ev), -1);
}

static void test_chat_msg_head(void **state) {
    (void)state;
    static uint8_t f[FRAME_S2C_HDR + FRAME_MSG_PRE + 70000];
    const uint32_t sizes[] = {0, 16, 64, 70000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        frame_put_s2c_hdr(f, 5, FRAME_MSG, FRAME_MSG_PRE + sizes[i]);
        memset(f + FRAME_S2C_HDR, 0xab, FRAME_MSG_PRE); /* id, kind, flags, to, time */
        wire_ev ev;
        long head = FRAME_S2C_HDR + FRAME_MSG_PRE;
        check_cuts(WIRE_CHAT, f, (size_t)head + sizes[i], head, &ev);
        assert_int_equal(ev.kind, WEV_MSG);
        assert_int_equal(ev.len, sizes[i]);
        assert_int_equal(ev.follow, sizes[i]);
    }
    frame_put_s2c_hdr(f, 5, FRAME_MSG, FRAME_MSG_PRE - 1); /* shorter than its prefix */
    wire_ev ev;
    assert_int_equal(wire_decode(WIRE_CHAT, f, FRAME_S2C_HDR, &ev), -1);
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

/* --- bws: the WebSocket client */

static void test_ws_handshake_keys(void **state) {
    (void)state;
    /* RFC 6455 1.3: the nonce "the sample nonce" */
    char key[BWS_KEY_LEN + 1], accept[BWS_ACCEPT_LEN + 1];
    assert_int_equal(bws_keys((const uint8_t *)"the sample nonce", key, accept), 0);
    assert_string_equal(key, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    char req[BWS_REQ_MAX];
    size_t n = bws_request(req, "127.0.0.1:80", "/ws", "chat.v1", key);
    assert_int_equal(n, strlen(req));
    assert_non_null(strstr(req, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:80\r\n"));
    assert_non_null(strstr(req, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
    assert_non_null(strstr(req, "\r\nSec-WebSocket-Protocol: chat.v1\r\n\r\n"));
    n = bws_request(req, "h:1", "/", NULL, key);
    assert_null(strstr(req, "Protocol"));
    assert_memory_equal(req + n - 4, "\r\n\r\n", 4);
    char path[BWS_REQ_MAX];
    memset(path, 'a', sizeof path - 1);
    path[sizeof path - 1] = 0;
    assert_int_equal(bws_request(req, "h:1", path, NULL, key), 0); /* does not fit */
}

static const char *ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/* bws_response on a heap copy of exactly the given text. */
static long response(const char *r, const char *proto, char *err, size_t errlen) {
    uint8_t *d = dup_exact(r, strlen(r));
    long n = bws_response(d, strlen(r), ACCEPT, proto, err, errlen);
    free(d);
    return n;
}

static void test_ws_response(void **state) {
    (void)state;
    char err[256];
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n"
                     "Connection: keep-alive, Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     "Sec-WebSocket-Protocol: chat.v1\r\n\r\n\x82\x01x";
    long head = (long)strlen(ok) - 3; /* a frame follows the head */
    for (size_t k = 0; k < (size_t)head; k++) { /* incomplete at every cut */
        uint8_t *d = dup_exact(ok, k);
        assert_int_equal(bws_response(d, k, ACCEPT, "chat.v1", err, sizeof err), 0);
        free(d);
    }
    assert_int_equal(response(ok, "chat.v1", err, sizeof err), head);
    /* a subprotocol not offered, or the offered one missing */
    assert_int_equal(response(ok, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not offered"));
    const char *noproto = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert_int_equal(response(noproto, NULL, err, sizeof err), (long)strlen(noproto));
    assert_int_equal(response(noproto, "mqtt", err, sizeof err), -1);
    assert_non_null(strstr(err, "Sec-WebSocket-Protocol"));
    /* a wrong accept, a missing one, a refusal */
    const char *wrong = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo-\r\n\r\n";
    assert_int_equal(response(wrong, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "is not the one for our key"));
    const char *none = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    assert_int_equal(response(none, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "lacks Sec-WebSocket-Accept"));
    assert_int_equal(response("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", NULL, err,
                              sizeof err), -1);
    assert_non_null(strstr(err, "404 Not Found"));
    assert_int_equal(response("HTTP/1.1 1010 x\r\n\r\n", NULL, err, sizeof err), -1);
    /* a head that never ends */
    static uint8_t big[BWS_RESP_MAX];
    memset(big, 'x', sizeof big);
    assert_int_equal(bws_response(big, sizeof big, ACCEPT, NULL, err, sizeof err), -1);
}

/* Masking byte by byte, as RFC 6455 5.3 states it. */
static void mask_ref(uint8_t *d, const uint8_t *s, size_t n, uint32_t key, uint64_t off) {
    uint8_t k[4];
    memcpy(k, &key, 4);
    for (size_t i = 0; i < n; i++) d[i] = s[i] ^ k[(off + i) % 4];
}

static void test_ws_mask_round_trip(void **state) {
    (void)state;
    static uint8_t src[70001], a[70001], b[70001], c[70001];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 131 + 7);
    const uint32_t key = 0xa1b2c3d4u;
    const size_t lens[] = {0, 1, 3, 7, 8, 9, 31, 32, 33, 64, 77, 1000, 70001};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (uint64_t off = 0; off < 6; off++) {
            size_t n = lens[li];
            bws_mask(a, src, n, key, off);
            mask_ref(b, src, n, key, off);
            assert_memory_equal(a, b, n);         /* the RFC's masking */
            memcpy(c, src, n);
            bws_mask(c, c, n, key, off);          /* in place: the same */
            assert_memory_equal(c, a, n);
            bws_mask(c, a, n, key, off);          /* twice: back to the source */
            assert_memory_equal(c, src, n);
            if (n >= 4) assert_memory_not_equal(a, src, 4);
        }
    /* a message masked in pieces (the head, the stamp, the payload) is
     * masked as a whole */
    bws_mask(a, src, 1000, key, 0);
    bws_mask(b, src, 13, key, 0);
    bws_mask(b + 13, src + 13, 12, key, 13);
    bws_mask(b + 25, src + 25, 975, key, 25);
    assert_memory_equal(a, b, 1000);
}

static void test_ws_client_header_lengths(void **state) {
    (void)state;
    uint8_t h[BWS_HDR_MAX];
    const uint32_t key = 0x04030201u;
    const struct { uint64_t len; size_t size; } cases[] = {
        {0, 6}, {125, 6}, {126, 8}, {65535, 8}, {65536, 14}, {(uint64_t)1 << 32, 14}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = bws_frame_head(h, BWS_BINARY, cases[i].len, key);
        assert_int_equal(n, cases[i].size);
        assert_int_equal(h[0], 0x82);     /* FIN, binary */
        assert_true(h[1] & 0x80);         /* masked */
        uint64_t len = h[1] & 0x7f;
        if (n == 8) len = (uint64_t)h[2] << 8 | h[3];
        if (n == 14) {
            assert_int_equal(len, 127);
            len = 0;
            for (int j = 0; j < 8; j++) len = len << 8 | h[2 + j];
        }
        assert_int_equal(len, cases[i].len);
        assert_memory_equal(h + n - 4, &key, 4);
    }
}

/* A server frame (unmasked): header and payload into out. */
static size_t server_frame(uint8_t *out, unsigned b0, const uint8_t *p, uint64_t len) {
    size_t n = 0;
    out[n++] = (uint8_t)b0;
    if (len < 126) {
        out[n++] = (uint8_t)len;
    } else if (len <= 0xffff) {
        out[n++] = 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = 127;
        for (int i = 0; i < 8; i++) out[n++] = (uint8_t)(len >> (56 - 8 * i));
    }
    if (p) memcpy(out + n, p, len);
    return n + len;
}

/* Unframe s[0..n) fed in pieces of `step` bytes (each a heap copy of
 * exactly its size); the payload into out. -1 on an error. */
static long unframe_steps(bws_rx *rx, const uint8_t *s, size_t n, size_t step, uint8_t *out) {
    size_t got = 0;
    for (size_t i = 0; i < n && !rx->closed; i += step) {
        size_t k = n - i < step ? n - i : step;
        uint8_t *d = dup_exact(s + i, k);
        long r = bws_unframe(rx, d, k);
        if (r < 0) {
            free(d);
            return -1;
        }
        memcpy(out + got, d, (size_t)r);
        got += (size_t)r;
        free(d);
    }
    return (long)got;
}

static void test_ws_server_header_lengths(void **state) {
    (void)state;
    static uint8_t payload[70000], stream[3 * 70100], out[3 * 70000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7 + 1);
    /* 7-bit, 16-bit and 64-bit lengths, one after the other */
    size_t n = server_frame(stream, 0x82, payload, 100);
    n += server_frame(stream + n, 0x82, payload, 1000);
    n += server_frame(stream + n, 0x82, payload, 70000);
    assert_int_equal(n, 2 + 100 + 4 + 1000 + 10 + 70000);
    const size_t steps[] = {1, 2, 3, 5, 9, 13, 4096, sizeof stream};
    for (size_t si = 0; si < sizeof steps / sizeof *steps; si++) {
        bws_rx rx = {0};
        long got = unframe_steps(&rx, stream, n, steps[si], out);
        assert_int_equal(got, 100 + 1000 + 70000);
        assert_memory_equal(out, payload, 100);
        assert_memory_equal(out + 100, payload, 1000);
        assert_memory_equal(out + 1100, payload, 70000);
        assert_int_equal(rx.left, 0);
        assert_int_equal(rx.hlen, 0);
        assert_false(rx.frag);
    }
}

static void test_ws_fragments_reassembled(void **state) {
    (void)state;
    /* binary "abc" (not final), a ping, "def" (not final), a pong, "gh"
     * (final), then text "ij" whole */
    uint8_t s[128], out[128];
    size_t n = server_frame(s, 0x02, (const uint8_t *)"abc", 3);
    n += server_frame(s + n, 0x89, (const uint8_t *)"hi", 2);
    n += server_frame(s + n, 0x00, (const uint8_t *)"def", 3);
    n += server_frame(s + n, 0x8a, (const uint8_t *)"x", 1);
    n += server_frame(s + n, 0x80, (const uint8_t *)"gh", 2);
    n += server_frame(s + n, 0x81, (const uint8_t *)"ij", 2);
    for (size_t step = 1; step <= n; step++) {
        bws_rx rx = {0};
        long got = unframe_steps(&rx, s, n, step, out);
        assert_int_equal(got, 10);
        assert_memory_equal(out, "abcdefghij", 10);
        assert_true(rx.ping_due);
        assert_int_equal(rx.ping_len, 2);
        assert_memory_equal(rx.ping, "hi", 2);
        assert_false(rx.frag);
    }
    /* a message left open is still open */
    bws_rx rx = {0};
    assert_int_equal(unframe_steps(&rx, s, server_frame(s, 0x02, (const uint8_t *)"a", 1), 1, out), 1);
    assert_true(rx.frag);
}

static void test_ws_ping_answered(void **state) {
    (void)state;
    uint8_t s[200], out[200], pong[BWS_HDR_MAX + BWS_CTL_MAX];
    uint8_t body[BWS_CTL_MAX];
    for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)(200 - i);
    const uint32_t key = 0x5a6b7c8du;
    size_t n = server_frame(s, 0x89, body, sizeof body); /* the largest ping */
    bws_rx rx = {0};
    assert_int_equal(unframe_steps(&rx, s, n, 7, out), 0);
    assert_true(rx.ping_due);
    size_t pn = bws_pong(&rx, pong, key);
    assert_false(rx.ping_due);
    assert_int_equal(pn, 6 + sizeof body);
    assert_int_equal(pong[0], 0x8a);                    /* FIN, pong */
    assert_int_equal(pong[1], 0x80 | sizeof body);      /* masked, 125 */
    assert_memory_equal(pong + 2, &key, 4);
    uint8_t plain[BWS_CTL_MAX];
    bws_mask(plain, pong + 6, sizeof body, key, 0);
    assert_memory_equal(plain, body, sizeof body);      /* the ping's payload */
    /* an empty ping, and of two the later one is answered */
    n = server_frame(s, 0x89, NULL, 0);
    n += server_frame(s + n, 0x89, (const uint8_t *)"two", 3);
    rx = (bws_rx){0};
    assert_int_equal(unframe_steps(&rx, s, 2, 2, out), 0);
    assert_true(rx.ping_due);
    assert_int_equal(bws_pong(&rx, pong, key), 6);
    assert_int_equal(unframe_steps(&rx, s + 2, n - 2, 100, out), 0);
    assert_int_equal(bws_pong(&rx, pong, key), 9);
    bws_mask(plain, pong + 6, 3, key, 0);
    assert_memory_equal(plain, "two", 3);
}

static void test_ws_close(void **state) {
    (void)state;
    uint8_t s[64], out[64];
    size_t n = server_frame(s, 0x82, (const uint8_t *)"ab", 2);
    n += server_frame(s + n, 0x88, (const uint8_t *)"\x03\xe9going", 7); /* 1001 */
    n += server_frame(s + n, 0x82, (const uint8_t *)"cd", 2);           /* not looked at */
    for (size_t step = 1; step <= n; step++) {
        bws_rx rx = {0};
        assert_int_equal(unframe_steps(&rx, s, n, step, out), 2);
        assert_memory_equal(out, "ab", 2);
        assert_true(rx.closed);
        assert_int_equal(rx.close_code, 1001);
        assert_string_equal(rx.reason, "going");
    }
    bws_rx rx = {0};
    n = server_frame(s, 0x88, NULL, 0);
    assert_int_equal(unframe_steps(&rx, s, n, n, out), 0);
    assert_int_equal(rx.close_code, 1005);
}

static void test_ws_protocol_errors(void **state) {
    (void)state;
    const struct { uint8_t b[12]; size_t n; const char *why; } bad[] = {
        {{0x82, 0x81, 1, 2, 3, 4, 'x'}, 7, "masked"},
        {{0xc2, 0x01, 'x'}, 3, "reserved bits"},
        {{0x8b, 0x00}, 2, "reserved opcode"},
        {{0x83, 0x00}, 2, "reserved opcode"},
        {{0x80, 0x01, 'x'}, 3, "continuation frame outside"},
        {{0x02, 0x01, 'x', 0x82, 0x01, 'y'}, 6, "inside a fragmented one"},
        {{0x09, 0x00}, 2, "fragmented control"},
        {{0x89, 126, 0, 126}, 4, "over 125"},
        {{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10, "over 2^63"},
    };
    uint8_t out[16];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        for (size_t step = 1; step <= bad[i].n; step++) {
            bws_rx rx = {0};
            assert_int_equal(unframe_steps(&rx, bad[i].b, bad[i].n, step, out), -1);
            assert_non_null(rx.err);
            assert_non_null(strstr(rx.err, bad[i].why));
        }
}

static void test_ws_skip(void **state) {
    (void)state;
    /* a reader that discards a body in the kernel: the header is read, the
     * payload skipped, the next header read */
    static uint8_t s[20000];
    size_t n = server_frame(s, 0x82, NULL, 10000);
    n += server_frame(s + n, 0x89, (const uint8_t *)"p", 1);
    n += server_frame(s + n, 0x82, (const uint8_t *)"z", 1);
    bws_rx rx = {0};
    uint8_t *d = dup_exact(s, 14); /* the header and 10 payload bytes */
    assert_int_equal(bws_unframe(&rx, d, 14), 10);
    free(d);
    assert_int_equal(bws_data_left(&rx), 9990);
    bws_data_skipped(&rx, 9990);
    assert_int_equal(bws_data_left(&rx), 0);
    d = dup_exact(s + 4 + 10000, 3); /* the ping */
    assert_int_equal(bws_unframe(&rx, d, 3), 0);
    free(d);
    assert_int_equal(bws_data_left(&rx), 0);
    assert_true(rx.ping_due);
    d = dup_exact(s + 4 + 10000 + 3, 3);
    assert_int_equal(bws_unframe(&rx, d, 3), 1);
    assert_int_equal(d[0], 'z');
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_handshake_keys),
        cmocka_unit_test(test_ws_response),
        cmocka_unit_test(test_ws_mask_round_trip),
        cmocka_unit_test(test_ws_client_header_lengths),
        cmocka_unit_test(test_ws_server_header_lengths),
        cmocka_unit_test(test_ws_fragments_reassembled),
        cmocka_unit_test(test_ws_ping_answered),
        cmocka_unit_test(test_ws_close),
        cmocka_unit_test(test_ws_protocol_errors),
        cmocka_unit_test(test_ws_skip),
        cmocka_unit_test(test_message_heads),
        cmocka_unit_test(test_control_units),
        cmocka_unit_test(test_not_the_protocol),
        cmocka_unit_test(test_chat_conv_hello),
        cmocka_unit_test(test_chat_client_ack),
        cmocka_unit_test(test_chat_post_head),
        cmocka_unit_test(test_chat_group_create),
        cmocka_unit_test(test_chat_groups_answer),
        cmocka_unit_test(test_chat_msg_head),
        cmocka_unit_test(test_outq_order_and_partial_writes),
        cmocka_unit_test(test_outq_adjacent_stage_bytes_share_a_segment),
        cmocka_unit_test(test_outq_never_drained_stays_small),
        cmocka_unit_test(test_outq_big_segments),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + test_bgroup_run();
}
