/*
 * test_frame_conv.c -- unit tests for the codec's CONV bodies
 * (src/proto/frame.{h,c}, docs/PROTOCOL.md "Devices and conversations"):
 * HELLO with a device name, MSG (server -> client) and POST (client ->
 * server), device name validation, GROUP and HISTORY (client -> server),
 * GROUPS and HISTORY_PAGE (server -> client).
 *
 * Covers: byte-exact layouts (big-endian), round trips, the default device
 * (length 0), a name of exactly FRAME_DEVICE_MAX bytes, and every malformed
 * case: a CONV HELLO without its length byte, a name over the maximum, a
 * name past the end of the body (at every truncation), every byte outside
 * [A-Za-z0-9._-]; MSG and POST bodies under their fixed part (every
 * length), kinds outside 1-4, POST flags other than 0 or GROUP; MSG flags this
 * version does not know are kept, not refused. GROUP bodies of every op
 * byte-exact (arguments an op does not take left out); GROUPS prefixes
 * (ops 1-8, arguments only where an op has them, an EVENT's req 0); LIST,
 * MEMBERS and EVENT arguments decoded, and refused at every truncation,
 * with a byte too many, a name over 64 bytes, an EVENT kind outside 1-5.
 * HISTORY byte-exact; HISTORY pages decoded, and refused at every
 * truncation, with a byte too many, `more` other than 0-1, a kind outside
 * 1-4, a payload length past the end.
 *
 * Inputs handed to the decoders are exact heap copies, so AddressSanitizer
 * reports any read past the body.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "testutil.h"

static int hello_of(const uint8_t *body, size_t n, frame_hello *h) {
    uint8_t *b = copy_exact(body, n);
    int r = frame_parse_hello(b, (uint32_t)n, h);
    free(b);
    return r;
}

static int is_name_byte(unsigned b) {
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
           (b >= '0' && b <= '9') || b == '.' || b == '_' || b == '-';
}

/* ------------------------------------------------------------------ */
/* Device names                                                        */
/* ------------------------------------------------------------------ */

static void test_device_valid(void **state) {
    (void)state;
    static const char ok[] = "Phone-2.home_Az09";
    assert_int_equal(frame_device_valid((const uint8_t *)ok, strlen(ok)), 1);
    assert_int_equal(frame_device_valid(NULL, 0), 1); /* the default device */
    uint8_t name[FRAME_DEVICE_MAX + 1];
    memset(name, 'x', sizeof name);
    assert_int_equal(frame_device_valid(name, FRAME_DEVICE_MAX), 1);
    assert_int_equal(frame_device_valid(name, FRAME_DEVICE_MAX + 1), 0);
    /* Every byte value, alone and at the end of a valid name. */
    unsigned valid = 0;
    for (unsigned b = 0; b <= 0xFF; b++) {
        uint8_t one = (uint8_t)b;
        uint8_t two[2] = {'a', (uint8_t)b};
        int want = is_name_byte(b);
        if (frame_device_valid(&one, 1) != want)
            fail_msg("frame_device_valid(0x%02x) != %d", b, want);
        assert_int_equal(frame_device_valid(two, 2), want);
        valid += (unsigned)want;
    }
    assert_int_equal(valid, 26 + 26 + 10 + 3);
}

/* ------------------------------------------------------------------ */
/* HELLO with CONV                                                     */
/* ------------------------------------------------------------------ */

static void test_hello_conv_layout(void **state) {
    (void)state;
    uint8_t out[64];
    memset(out, 0xEE, sizeof out);
    static const uint8_t want[] = {0x01, 0x03, 0x05, 'p', 'h', 'o', 'n', 'e',
                                   'p', 'w'};
    size_t n = frame_put_hello(out, FRAME_VERSION,
                               FRAME_FLAG_ACKS | FRAME_FLAG_CONV,
                               (const uint8_t *)"phone", 5,
                               (const uint8_t *)"pw", 2);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(out[n], 0xEE);

    uint8_t *b = copy_exact(out, n);
    frame_hello h;
    memset(&h, 0xAB, sizeof h);
    assert_int_equal(frame_parse_hello(b, (uint32_t)n, &h), 0);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.flags, FRAME_FLAG_ACKS | FRAME_FLAG_CONV);
    assert_int_equal(h.device_len, 5);
    assert_ptr_equal(h.device, b + 3);
    assert_int_equal(h.password_len, 2);
    assert_ptr_equal(h.password, b + 8);
    free(b);

    /* The default device (length 0), without and with a password. */
    n = frame_put_hello(out, FRAME_VERSION, FRAME_FLAG_CONV, NULL, 0, NULL, 0);
    assert_int_equal(n, FRAME_HELLO_CONV_MIN);
    static const uint8_t bare[] = {0x01, 0x02, 0x00};
    assert_memory_equal(out, bare, sizeof bare);
    memset(&h, 0xAB, sizeof h);
    assert_int_equal(hello_of(out, n, &h), 0);
    assert_int_equal(h.device_len, 0);
    assert_null(h.device);
    assert_int_equal(h.password_len, 0);
    assert_null(h.password);
    n = frame_put_hello(out, FRAME_VERSION, FRAME_FLAG_CONV, NULL, 0,
                        (const uint8_t *)"secret", 6);
    assert_int_equal(n, 9);
    assert_int_equal(hello_of(out, n, &h), 0);
    assert_int_equal(h.device_len, 0);
    assert_int_equal(h.password_len, 6);

    /* A name of exactly FRAME_DEVICE_MAX bytes. */
    uint8_t name[FRAME_DEVICE_MAX];
    for (unsigned i = 0; i < sizeof name; i++) name[i] = (uint8_t)('a' + i % 26);
    n = frame_put_hello(out, FRAME_VERSION, FRAME_FLAG_CONV, name,
                        FRAME_DEVICE_MAX, NULL, 0);
    assert_int_equal(n, FRAME_HELLO_CONV_MIN + FRAME_DEVICE_MAX);
    assert_int_equal(hello_of(out, n, &h), 0);
    assert_int_equal(h.device_len, FRAME_DEVICE_MAX);
    assert_int_equal(h.password_len, 0);
}

/* Without CONV the old layout holds: what follows the flags is the
 * password, even when it looks like a length and a name. */
static void test_hello_without_conv_is_the_old_layout(void **state) {
    (void)state;
    static const uint8_t body[] = {0x01, 0x01, 0x05, 'p', 'h', 'o', 'n', 'e'};
    frame_hello h;
    assert_int_equal(hello_of(body, sizeof body, &h), 0);
    assert_int_equal(h.device_len, 0);
    assert_null(h.device);
    assert_int_equal(h.password_len, 6);
    /* A byte no name may hold is fine in a password. */
    static const uint8_t pw[] = {0x01, 0x00, 0xFF, ' ', '/'};
    assert_int_equal(hello_of(pw, sizeof pw, &h), 0);
    assert_int_equal(h.password_len, 3);
}

static void test_hello_conv_malformed(void **state) {
    (void)state;
    frame_hello h;
    /* No room for the length byte. */
    static const uint8_t two[] = {0x01, FRAME_FLAG_CONV};
    assert_int_equal(hello_of(two, sizeof two, &h), FRAME_EBADBODY);
    assert_int_equal(hello_of(two, 1, &h), FRAME_EBADBODY);
    assert_int_equal(hello_of(two, 0, &h), FRAME_EBADBODY);

    /* A name over the maximum, even with the bytes present. */
    uint8_t big[3 + 40];
    memset(big, 'x', sizeof big);
    big[0] = 1;
    big[1] = FRAME_FLAG_CONV;
    big[2] = FRAME_DEVICE_MAX + 1;
    assert_int_equal(hello_of(big, sizeof big, &h), FRAME_EBADBODY);
    big[2] = 0xFF;
    assert_int_equal(hello_of(big, sizeof big, &h), FRAME_EBADBODY);
    big[2] = FRAME_DEVICE_MAX;
    assert_int_equal(hello_of(big, sizeof big, &h), 0);
    assert_int_equal(h.password_len, sizeof big - 3 - FRAME_DEVICE_MAX);

    /* A name past the end: every truncation of a valid body. */
    static const uint8_t ok[] = {0x01, 0x03, 0x05, 'p', 'h', 'o', 'n', 'e',
                                 'p', 'w'};
    for (size_t n = 0; n <= sizeof ok; n++) {
        int r = hello_of(ok, n, &h);
        if (n < 3 + 5) {
            if (r != FRAME_EBADBODY) fail_msg("%zu bytes parsed: %d", n, r);
        } else {
            assert_int_equal(r, 0);
            assert_int_equal(h.device_len, 5);
            assert_int_equal(h.password_len, n - 8);
        }
    }

    /* Every byte outside [A-Za-z0-9._-], at each position of the name. */
    uint8_t body[3 + 3 + 1] = {0x01, FRAME_FLAG_CONV, 3, 'a', 'b', 'c', 'z'};
    for (unsigned b = 0; b <= 0xFF; b++) {
        for (int pos = 0; pos < 3; pos++) {
            uint8_t copy[sizeof body];
            memcpy(copy, body, sizeof body);
            copy[3 + pos] = (uint8_t)b;
            int want = is_name_byte(b) ? 0 : FRAME_EBADBODY;
            int r = hello_of(copy, sizeof copy, &h);
            if (r != want) fail_msg("byte 0x%02x at %d: %d", b, pos, r);
        }
    }
}

/* ------------------------------------------------------------------ */
/* MSG                                                                 */
/* ------------------------------------------------------------------ */

static void test_msg_layout_and_roundtrip(void **state) {
    (void)state;
    uint8_t out[FRAME_MSG_PRE + 1];
    memset(out, 0xEE, sizeof out);
    frame_msg m = {.id = 0x0102030405060708ull, .kind = FRAME_VOICE,
                   .flags = FRAME_MSG_OWN, .to = 0x0A0B0C0Du,
                   .time_ms = 0x1112131415161718ull};
    static const uint8_t want[FRAME_MSG_PRE] = {
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* id */
        0x03, 0x01,                                     /* kind, flags */
        0x0A, 0x0B, 0x0C, 0x0D,                         /* to */
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18  /* time */
    };
    assert_int_equal(frame_put_msg(out, &m), FRAME_MSG_PRE);
    assert_memory_equal(out, want, FRAME_MSG_PRE);
    assert_int_equal(out[FRAME_MSG_PRE], 0xEE);

    /* A whole s2c frame: header, prefix, payload. */
    uint8_t frame[FRAME_S2C_HDR + FRAME_MSG_PRE + 5];
    frame_put_s2c_hdr(frame, 42, FRAME_MSG, FRAME_MSG_PRE + 5);
    memcpy(frame + FRAME_S2C_HDR, want, FRAME_MSG_PRE);
    memcpy(frame + FRAME_S2C_HDR + FRAME_MSG_PRE, "hello", 5);
    uint8_t *b = copy_exact(frame, sizeof frame);
    frame_s2c f;
    assert_int_equal(frame_decode_s2c(b, sizeof frame, 1000, &f),
                     (long)sizeof frame);
    assert_int_equal(f.type, FRAME_MSG);
    assert_true(frame_is_control(f.type));
    frame_msg r;
    memset(&r, 0, sizeof r);
    assert_int_equal(frame_parse_msg(f.body, f.len, &r), 0);
    assert_true(r.id == m.id);
    assert_int_equal(r.kind, FRAME_VOICE);
    assert_int_equal(r.flags, FRAME_MSG_OWN);
    assert_int_equal(r.to, 0x0A0B0C0Du);
    assert_true(r.time_ms == m.time_ms);
    assert_ptr_equal(r.payload, b + FRAME_S2C_HDR + FRAME_MSG_PRE);
    assert_int_equal(r.payload_len, 5);
    free(b);

    /* An empty payload; flags this version does not know are kept. */
    out[9] = 0xFF;
    b = copy_exact(out, FRAME_MSG_PRE);
    assert_int_equal(frame_parse_msg(b, FRAME_MSG_PRE, &r), 0);
    assert_int_equal(r.payload_len, 0);
    assert_int_equal(r.flags, 0xFF);
    free(b);
}

static void test_msg_malformed(void **state) {
    (void)state;
    uint8_t body[FRAME_MSG_PRE + 2];
    frame_msg m = {.id = 9, .kind = FRAME_TEXT, .to = 2, .time_ms = 1};
    frame_put_msg(body, &m);
    body[FRAME_MSG_PRE] = 'h';
    body[FRAME_MSG_PRE + 1] = 'i';
    frame_msg r;
    for (uint32_t n = 0; n < FRAME_MSG_PRE; n++) {
        uint8_t *b = copy_exact(body, n);
        if (frame_parse_msg(b, n, &r) != FRAME_EBADBODY)
            fail_msg("a MSG body of %u bytes parsed", (unsigned)n);
        free(b);
    }
    for (unsigned k = 0; k <= 0xFF; k++) {
        body[8] = (uint8_t)k;
        uint8_t *b = copy_exact(body, sizeof body);
        int want = k >= 1 && k <= 4 ? 0 : FRAME_EBADBODY;
        if (frame_parse_msg(b, sizeof body, &r) != want)
            fail_msg("MSG kind %u", k);
        free(b);
    }
}

/* ------------------------------------------------------------------ */
/* POST                                                                */
/* ------------------------------------------------------------------ */

static void test_post_layout_and_roundtrip(void **state) {
    (void)state;
    uint8_t out[FRAME_POST_PRE + 1];
    memset(out, 0xEE, sizeof out);
    frame_post p = {.kind = FRAME_PICTURE, .flags = 0,
                    .cid = 0x8877665544332211ull};
    static const uint8_t want[FRAME_POST_PRE] = {
        0x02, 0x00, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    assert_int_equal(frame_put_post_hdr(out, &p), FRAME_POST_PRE);
    assert_memory_equal(out, want, FRAME_POST_PRE);
    assert_int_equal(out[FRAME_POST_PRE], 0xEE);

    /* A whole c2s frame: header, prefix, payload. */
    uint8_t frame[FRAME_C2S_HDR + FRAME_POST_PRE + 3];
    frame_put_c2s_hdr(frame, 1, 2, FRAME_POST, FRAME_POST_PRE + 3);
    memcpy(frame + FRAME_C2S_HDR, want, FRAME_POST_PRE);
    memcpy(frame + FRAME_C2S_HDR + FRAME_POST_PRE, "img", 3);
    uint8_t *b = copy_exact(frame, sizeof frame);
    frame_c2s f;
    assert_int_equal(frame_decode_c2s(b, sizeof frame, 1000, &f),
                     (long)sizeof frame);
    assert_int_equal(f.type, FRAME_POST);
    assert_true(frame_is_control(f.type));
    assert_int_equal(f.receiver, 2);
    frame_post r;
    memset(&r, 0xAB, sizeof r);
    assert_int_equal(frame_parse_post(f.body, f.len, &r), 0);
    assert_int_equal(r.kind, FRAME_PICTURE);
    assert_int_equal(r.flags, 0);
    assert_true(r.cid == p.cid);
    assert_ptr_equal(r.payload, b + FRAME_C2S_HDR + FRAME_POST_PRE);
    assert_int_equal(r.len, 3);
    free(b);

    /* cid 0 (none) and an empty payload. */
    p.cid = 0;
    frame_put_post_hdr(out, &p);
    b = copy_exact(out, FRAME_POST_PRE);
    assert_int_equal(frame_parse_post(b, FRAME_POST_PRE, &r), 0);
    assert_true(r.cid == 0);
    assert_int_equal(r.len, 0);
    free(b);
}

static void test_post_malformed(void **state) {
    (void)state;
    uint8_t body[FRAME_POST_PRE + 1];
    frame_post p = {.kind = FRAME_TEXT, .cid = 5};
    frame_put_post_hdr(body, &p);
    body[FRAME_POST_PRE] = 'x';
    frame_post r;
    for (uint32_t n = 0; n < FRAME_POST_PRE; n++) {
        uint8_t *b = copy_exact(body, n);
        if (frame_parse_post(b, n, &r) != FRAME_EBADBODY)
            fail_msg("a POST body of %u bytes parsed", (unsigned)n);
        free(b);
    }
    for (unsigned v = 0; v <= 0xFF; v++) {
        uint8_t *b = copy_exact(body, sizeof body);
        b[0] = (uint8_t)v; /* kind */
        int want = v >= 1 && v <= 4 ? 0 : FRAME_EBADBODY;
        if (frame_parse_post(b, sizeof body, &r) != want) fail_msg("POST kind %u", v);
        b[0] = FRAME_TEXT;
        b[1] = (uint8_t)v; /* flags: 0 or GROUP, the others reserved */
        want = v == 0 || v == FRAME_MSG_GROUP ? 0 : FRAME_EBADBODY;
        if (frame_parse_post(b, sizeof body, &r) != want) fail_msg("POST flags %u", v);
        free(b);
    }
}

/* ------------------------------------------------------------------ */
/* GROUP and GROUPS                                                    */
/* ------------------------------------------------------------------ */

/* A parser of whole bodies (the decoders below, their outputs dropped). */
typedef int (*body_parser)(const uint8_t *body, uint32_t len);

static int list_parser(const uint8_t *b, uint32_t n) {
    uint16_t count;
    return frame_parse_group_list(b, n, &count);
}
static int members_parser(const uint8_t *b, uint32_t n) {
    uint16_t count;
    return frame_parse_group_members(b, n, &count);
}
static int event_parser(const uint8_t *b, uint32_t n) {
    frame_group_event e;
    return frame_parse_group_event(b, n, &e);
}
static int page_parser(const uint8_t *b, uint32_t n) {
    frame_page p;
    return frame_parse_page(b, n, &p);
}

/* body[0..n) is valid: every shorter prefix of it, and it with one byte
 * more, are refused (exact heap copies: ASan sees a read past them). */
static void refuse_truncated(const uint8_t *body, size_t n, body_parser parse,
                             const char *what) {
    uint8_t *longer = malloc(n + 1);
    assert_non_null(longer);
    memcpy(longer, body, n);
    longer[n] = 0;
    for (size_t k = 0; k <= n + 1; k++) {
        if (k == n) continue;
        uint8_t *b = copy_exact(longer, k);
        if (parse(b, (uint32_t)k) != FRAME_EBADBODY)
            fail_msg("%s of %zu bytes (of %zu) parsed", what, k, n);
        free(b);
    }
    free(longer);
}

static void test_group_request_layouts(void **state) {
    (void)state;
    uint8_t out[64];
    const uint32_t users[2] = {0x01020304u, 5};
    /* CREATE: prefix, name, count, users. */
    static const uint8_t create[] = {
        1, 0x80, 0, 0, 7, 0, 0, 0, 0, 2, 'h', 'i', 0, 2,
        1, 2, 3, 4, 0, 0, 0, 5};
    memset(out, 0xEE, sizeof out);
    assert_int_equal(frame_group_size(FRAME_GOP_CREATE, 2, 2), sizeof create);
    assert_int_equal(frame_put_group(out, FRAME_GOP_CREATE, 0x80000007u, 0,
                                     (const uint8_t *)"hi", 2, users, 2),
                     sizeof create);
    assert_memory_equal(out, create, sizeof create);
    assert_int_equal(out[sizeof create], 0xEE);
    /* RENAME: the name only (users ignored). */
    static const uint8_t rename[] = {2, 0, 0, 0, 1, 0, 0, 1, 0, 1, 'x'};
    assert_int_equal(frame_group_size(FRAME_GOP_RENAME, 1, 0), sizeof rename);
    assert_int_equal(frame_put_group(out, FRAME_GOP_RENAME, 1, 256,
                                     (const uint8_t *)"x", 1, users, 2),
                     sizeof rename);
    assert_memory_equal(out, rename, sizeof rename);
    /* ADD, REMOVE: the users only (the name ignored). */
    static const uint8_t add[] = {3, 0, 0, 0, 2, 0, 0, 0, 9, 0, 1, 0, 0, 0, 5};
    assert_int_equal(frame_group_size(FRAME_GOP_ADD, 0, 1), sizeof add);
    assert_int_equal(frame_put_group(out, FRAME_GOP_ADD, 2, 9,
                                     (const uint8_t *)"x", 1, users + 1, 1),
                     sizeof add);
    assert_memory_equal(out, add, sizeof add);
    assert_int_equal(frame_put_group(out, FRAME_GOP_REMOVE, 2, 9, NULL, 0,
                                     users + 1, 1), sizeof add);
    assert_int_equal(out[0], FRAME_GOP_REMOVE);
    /* LEAVE, LIST, MEMBERS: the prefix alone. */
    for (uint8_t op = FRAME_GOP_LEAVE; op <= FRAME_GOP_MEMBERS; op++) {
        assert_int_equal(frame_group_size(op, 5, 5), FRAME_GROUP_PRE);
        assert_int_equal(frame_put_group(out, op, 3, 4, (const uint8_t *)"x", 1,
                                         users, 2), FRAME_GROUP_PRE);
        static const uint8_t pre[] = {0, 0, 0, 0, 3, 0, 0, 0, 4};
        assert_int_equal(out[0], op);
        assert_memory_equal(out + 1, pre + 1, FRAME_GROUP_PRE - 1);
    }
}

/* frame_parse_groups on an exact heap copy. */
static int groups_of(const uint8_t *body, size_t n, frame_groups *g) {
    uint8_t *b = copy_exact(body, n);
    int r = frame_parse_groups(b, (uint32_t)n, g);
    if (r == 0) g->args = body + (g->args - b); /* (b is freed) */
    free(b);
    return r;
}

static void test_groups_prefix(void **state) {
    (void)state;
    uint8_t body[16] = {FRAME_GOP_CREATE, 0x80, 0, 0, 1, 0, 0, 0x01, 0x02};
    frame_groups g;
    assert_int_equal(groups_of(body, FRAME_GROUP_PRE, &g), 0);
    assert_int_equal(g.op, FRAME_GOP_CREATE);
    assert_int_equal(g.req, 0x80000001u);
    assert_int_equal(g.group, 0x0102);
    assert_int_equal(g.args_len, 0);
    for (uint32_t n = 0; n < FRAME_GROUP_PRE; n++)
        assert_int_equal(groups_of(body, n, &g), FRAME_EBADBODY);
    /* Answers without arguments take none; LIST, MEMBERS, EVENT keep them
     * for their parsers. Ops outside 1-8 are malformed. */
    for (unsigned op = 0; op <= 0xFF; op++) {
        body[0] = (uint8_t)op;
        int ok0 = op >= 1 && op <= 8, ok1 = op >= 6 && op <= 8;
        if (op == FRAME_GOP_EVENT) { /* an EVENT's req is 0 */
            assert_int_equal(groups_of(body, 10, &g), FRAME_EBADBODY);
            memset(body + 1, 0, 4);
        }
        if ((groups_of(body, FRAME_GROUP_PRE, &g) == 0) != ok0) fail_msg("op %u", op);
        if ((groups_of(body, 10, &g) == 0) != ok1) fail_msg("op %u + 1 byte", op);
        if (ok1) assert_int_equal(g.args_len, 1);
    }
}

static void test_group_list_and_members(void **state) {
    (void)state;
    /* LIST: two groups, the second with an empty name. */
    static const uint8_t list[] = {
        0, 2,
        0, 0, 0, 9, 1, 0x04, 0x00, 3, 'a', 'b', 'c',
        0xFF, 0, 0, 1, 0, 0, 2, 0};
    uint8_t *b = copy_exact(list, sizeof list);
    uint16_t n = 0;
    assert_int_equal(frame_parse_group_list(b, sizeof list, &n), 0);
    assert_int_equal(n, 2);
    uint32_t off = 2;
    frame_group_info e;
    frame_group_list_next(b, &off, &e);
    assert_int_equal(e.id, 9);
    assert_int_equal(e.flags, FRAME_GROUP_ADMIN);
    assert_int_equal(e.members, 1024);
    assert_int_equal(e.name_len, 3);
    assert_memory_equal(e.name, "abc", 3);
    frame_group_list_next(b, &off, &e);
    assert_int_equal(e.id, 0xFF000001u);
    assert_int_equal(e.flags, 0);
    assert_int_equal(e.members, 2);
    assert_int_equal(e.name_len, 0);
    assert_int_equal(off, sizeof list);
    free(b);
    refuse_truncated(list, sizeof list, list_parser, "a LIST");
    /* A name of 65 bytes. */
    uint8_t big[2 + 8 + 65] = {0, 1, 0, 0, 0, 1, 0, 0, 1, 65};
    memset(big + 10, 'n', 65);
    b = copy_exact(big, sizeof big);
    assert_int_equal(frame_parse_group_list(b, sizeof big, &n), FRAME_EBADBODY);
    free(b);
    big[9] = 64; /* the most */
    b = copy_exact(big, sizeof big - 1);
    assert_int_equal(frame_parse_group_list(b, sizeof big - 1, &n), 0);
    free(b);

    /* MEMBERS. */
    static const uint8_t mem[] = {0, 2, 0, 0, 0, 42, 1, 0, 0, 1, 0, 0x80};
    b = copy_exact(mem, sizeof mem);
    assert_int_equal(frame_parse_group_members(b, sizeof mem, &n), 0);
    assert_int_equal(n, 2);
    uint32_t user;
    uint8_t flags;
    frame_group_member(b, 0, &user, &flags);
    assert_int_equal(user, 42);
    assert_int_equal(flags, 1);
    frame_group_member(b, 1, &user, &flags);
    assert_int_equal(user, 256);
    assert_int_equal(flags, 0x80);
    free(b);
    refuse_truncated(mem, sizeof mem, members_parser, "MEMBERS");
    static const uint8_t none[] = {0, 0};
    assert_int_equal(frame_parse_group_members(none, 2, &n), 0);
    assert_int_equal(n, 0);
}

static void test_group_event(void **state) {
    (void)state;
    static const uint8_t ev[] = {3, 0, 0, 0, 42, 0, 2, 0, 0, 0, 7, 0, 0, 1, 0,
                                 2, 'g', '1'};
    uint8_t *b = copy_exact(ev, sizeof ev);
    frame_group_event e;
    assert_int_equal(frame_parse_group_event(b, sizeof ev, &e), 0);
    assert_int_equal(e.what, FRAME_GEV_ADDED);
    assert_int_equal(e.by, 42);
    assert_int_equal(e.count, 2);
    assert_int_equal(frame_rd32(e.users), 7);
    assert_int_equal(frame_rd32(e.users + 4), 256);
    assert_int_equal(e.name_len, 2);
    assert_memory_equal(e.name, "g1", 2);
    free(b);
    refuse_truncated(ev, sizeof ev, event_parser, "an EVENT");
    uint8_t x[sizeof ev];
    memcpy(x, ev, sizeof ev);
    for (unsigned what = 0; what <= 0xFF; what++) {
        x[0] = (uint8_t)what;
        int want = what >= 1 && what <= 5 ? 0 : FRAME_EBADBODY;
        if (frame_parse_group_event(x, sizeof ev, &e) != want) fail_msg("what %u", what);
    }
    /* No users, no name (the group is gone). */
    static const uint8_t bare[] = {5, 0, 0, 0, 6, 0, 0, 0};
    assert_int_equal(frame_parse_group_event(bare, sizeof bare, &e), 0);
    assert_int_equal(e.count, 0);
    assert_int_equal(e.name_len, 0);
}

/* ------------------------------------------------------------------ */
/* HISTORY and HISTORY_PAGE                                            */
/* ------------------------------------------------------------------ */

static void test_history_layout(void **state) {
    (void)state;
    uint8_t out[FRAME_HISTORY_SIZE + 1];
    memset(out, 0xEE, sizeof out);
    static const uint8_t want[FRAME_HISTORY_SIZE] = {
        0x80, 0, 0, 5, 2, 0, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 200};
    assert_int_equal(frame_put_history(out, 0x80000005u, FRAME_HISTORY_GROUP, 256,
                                       0x0102030405060708ull, 200),
                     FRAME_HISTORY_SIZE);
    assert_memory_equal(out, want, FRAME_HISTORY_SIZE);
    assert_int_equal(out[FRAME_HISTORY_SIZE], 0xEE);
}

static void test_page_parse(void **state) {
    (void)state;
    static const uint8_t page[] = {
        0x80, 0, 0, 9, 1, 0, 2,
        /* id 0x0100, sender 7, text, OWN|GROUP, to 3, time 0x0200, "hi" */
        0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 7, 1, 3, 0, 0, 0, 3,
        0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 'h', 'i',
        /* id 5, sender 8, video, no flags, to 42, time 1, empty */
        0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 8, 4, 0, 0, 0, 0, 42,
        0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    uint8_t *b = copy_exact(page, sizeof page);
    frame_page p;
    assert_int_equal(frame_parse_page(b, sizeof page, &p), 0);
    assert_int_equal(p.req, 0x80000009u);
    assert_int_equal(p.more, 1);
    assert_int_equal(p.count, 2);
    uint32_t off = FRAME_PAGE_PRE;
    frame_page_entry e;
    frame_page_next(b, &off, &e);
    assert_true(e.id == 0x100 && e.time_ms == 0x200);
    assert_int_equal(e.sender, 7);
    assert_int_equal(e.kind, FRAME_TEXT);
    assert_int_equal(e.flags, FRAME_MSG_OWN | FRAME_MSG_GROUP);
    assert_int_equal(e.to, 3);
    assert_int_equal(e.len, 2);
    assert_memory_equal(e.payload, "hi", 2);
    frame_page_next(b, &off, &e);
    assert_true(e.id == 5 && e.time_ms == 1);
    assert_int_equal(e.kind, FRAME_VIDEO);
    assert_int_equal(e.len, 0);
    assert_int_equal(off, sizeof page);
    free(b);
    refuse_truncated(page, sizeof page, page_parser, "a page");
    /* `more` is 0 or 1; kinds are 1-4. */
    uint8_t x[sizeof page];
    memcpy(x, page, sizeof page);
    for (unsigned v = 0; v <= 0xFF; v++) {
        x[4] = (uint8_t)v;
        if ((frame_parse_page(x, sizeof x, &p) == 0) != (v <= 1)) fail_msg("more %u", v);
        x[4] = 0;
        x[FRAME_PAGE_PRE + 12] = (uint8_t)v;
        if ((frame_parse_page(x, sizeof x, &p) == 0) != (v >= 1 && v <= 4))
            fail_msg("kind %u", v);
        x[FRAME_PAGE_PRE + 12] = FRAME_TEXT;
    }
    /* A payload length past the end (and one that would wrap). */
    x[FRAME_PAGE_PRE + 29] = 3;
    assert_int_equal(frame_parse_page(x, sizeof x, &p), FRAME_EBADBODY);
    memset(x + FRAME_PAGE_PRE + 26, 0xFF, 4);
    assert_int_equal(frame_parse_page(x, sizeof x, &p), FRAME_EBADBODY);
    /* An empty page. */
    static const uint8_t empty[] = {0, 0, 0, 1, 0, 0, 0};
    assert_int_equal(frame_parse_page(empty, sizeof empty, &p), 0);
    assert_int_equal(p.count, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_valid),
        cmocka_unit_test(test_hello_conv_layout),
        cmocka_unit_test(test_hello_without_conv_is_the_old_layout),
        cmocka_unit_test(test_hello_conv_malformed),
        cmocka_unit_test(test_msg_layout_and_roundtrip),
        cmocka_unit_test(test_msg_malformed),
        cmocka_unit_test(test_post_layout_and_roundtrip),
        cmocka_unit_test(test_post_malformed),
        cmocka_unit_test(test_group_request_layouts),
        cmocka_unit_test(test_groups_prefix),
        cmocka_unit_test(test_group_list_and_members),
        cmocka_unit_test(test_group_event),
        cmocka_unit_test(test_history_layout),
        cmocka_unit_test(test_page_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
