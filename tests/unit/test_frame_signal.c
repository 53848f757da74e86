/*
 * test_frame_signal.c -- unit tests for the signal bodies (src/proto/
 * signal.{h,c}, docs/PROTOCOL.md "Receipts, typing and presence"):
 * RECEIPT, TYPING and PRESENCE (both directions), POSTED.
 *
 * Covers: byte-exact layouts (big-endian) and round trips; every length
 * other than the fixed one refused; each field's out-of-range values
 * (what outside 1-4, unknown flags, conv / to / user 0, state over 1, an
 * unknown op, count 0 or over 256, a count that disagrees with the length,
 * an id 0 anywhere in the list). Inputs are exact heap copies, so
 * AddressSanitizer reports any read past the body.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/signal.h"
#include "testutil.h"

static int receipt_of(const uint8_t *body, size_t n, frame_receipt *r) {
    uint8_t *b = copy_exact(body, n);
    int rc = frame_parse_receipt(b, (uint32_t)n, r);
    free(b);
    return rc;
}

static void test_receipt_layout_and_roundtrip(void **state) {
    (void)state;
    frame_receipt r = {FRAME_RCPT_READ, FRAME_MSG_GROUP, 0x01020304u,
                       0x0a0b0c0du, 0x1112131415161718ull,
                       0x2122232425262728ull};
    uint8_t out[FRAME_RECEIPT_SIZE];
    assert_int_equal(frame_put_receipt(out, &r), 26);
    const uint8_t want[26] = {2, 2, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d,
                              0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                              0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28};
    assert_memory_equal(out, want, 26);
    frame_receipt back;
    assert_int_equal(receipt_of(out, 26, &back), 0);
    assert_int_equal(back.what, r.what);
    assert_int_equal(back.flags, r.flags);
    assert_int_equal(back.conv, r.conv);
    assert_int_equal(back.by, r.by);
    assert_true(back.upto == r.upto && back.time_ms == r.time_ms);
    for (uint8_t w = FRAME_RCPT_DELIVERED; w <= FRAME_RCPT_END; w++) {
        out[0] = w;
        assert_int_equal(receipt_of(out, 26, &back), 0);
    }
}

static void test_receipt_malformed(void **state) {
    (void)state;
    frame_receipt r = {FRAME_RCPT_DELIVERED, 0, 7, 7, 9, 0}, back;
    uint8_t out[FRAME_RECEIPT_SIZE + 1] = {0};
    frame_put_receipt(out, &r);
    for (size_t n = 0; n <= sizeof out; n++)
        if (n != FRAME_RECEIPT_SIZE)
            assert_int_equal(receipt_of(out, n, &back), FRAME_EBADBODY);
    out[0] = 0;
    assert_int_equal(receipt_of(out, 26, &back), FRAME_EBADBODY);
    out[0] = 5;
    assert_int_equal(receipt_of(out, 26, &back), FRAME_EBADBODY);
    out[0] = 1;
    for (unsigned f = 1; f < 256; f++) {
        out[1] = (uint8_t)f;
        assert_int_equal(receipt_of(out, 26, &back),
                         f == FRAME_MSG_GROUP ? 0 : FRAME_EBADBODY);
    }
    out[1] = 0;
    memset(out + 2, 0, 4); /* conv 0 */
    assert_int_equal(receipt_of(out, 26, &back), FRAME_EBADBODY);
}

static int typing_of(const uint8_t *body, size_t n, frame_typing *t) {
    uint8_t *b = copy_exact(body, n);
    int rc = frame_parse_typing(b, (uint32_t)n, t);
    free(b);
    return rc;
}

static void test_typing(void **state) {
    (void)state;
    frame_typing t = {FRAME_MSG_GROUP, 0x01020304u, 1}, back;
    uint8_t out[FRAME_TYPING_SIZE + 1] = {0};
    assert_int_equal(frame_put_typing(out, &t), 6);
    const uint8_t want[6] = {2, 1, 2, 3, 4, 1};
    assert_memory_equal(out, want, 6);
    assert_int_equal(typing_of(out, 6, &back), 0);
    assert_int_equal(back.flags, t.flags);
    assert_int_equal(back.to, t.to);
    assert_int_equal(back.state, 1);
    for (size_t n = 0; n <= sizeof out; n++)
        if (n != FRAME_TYPING_SIZE)
            assert_int_equal(typing_of(out, n, &back), FRAME_EBADBODY);
    out[5] = 2;
    assert_int_equal(typing_of(out, 6, &back), FRAME_EBADBODY);
    out[5] = 0;
    assert_int_equal(typing_of(out, 6, &back), 0);
    out[0] = 1;
    assert_int_equal(typing_of(out, 6, &back), FRAME_EBADBODY);
    out[0] = 0;
    memset(out + 1, 0, 4);
    assert_int_equal(typing_of(out, 6, &back), FRAME_EBADBODY);
}

static int preq_of(const uint8_t *body, size_t n, uint8_t *op, uint16_t *c) {
    uint8_t *b = copy_exact(body, n);
    int rc = frame_parse_presence_req(b, (uint32_t)n, op, c);
    free(b);
    return rc;
}

static void test_presence_request(void **state) {
    (void)state;
    enum { N = FRAME_PRESENCE_USERS_MAX + 1 };
    uint8_t body[FRAME_PRESENCE_PRE + 4 * N];
    assert_int_equal(frame_put_presence_req(body, FRAME_PRES_SUBSCRIBE, 2), 3);
    const uint8_t head[3] = {1, 0, 2};
    assert_memory_equal(body, head, 3);
    frame_wr32(body + 3, 7);
    frame_wr32(body + 7, 0x01020304u);
    uint8_t op;
    uint16_t count;
    assert_int_equal(preq_of(body, 11, &op, &count), 0);
    assert_int_equal(op, FRAME_PRES_SUBSCRIBE);
    assert_int_equal(count, 2);
    for (size_t n = 0; n < 20; n++)
        if (n != 11)
            assert_int_equal(preq_of(body, n, &op, &count), FRAME_EBADBODY);
    body[0] = FRAME_PRES_UNSUBSCRIBE;
    assert_int_equal(preq_of(body, 11, &op, &count), 0);
    body[0] = 3;
    assert_int_equal(preq_of(body, 11, &op, &count), FRAME_EBADBODY);
    body[0] = 0;
    assert_int_equal(preq_of(body, 11, &op, &count), FRAME_EBADBODY);
    body[0] = 1;
    frame_wr32(body + 7, 0); /* an id 0 */
    assert_int_equal(preq_of(body, 11, &op, &count), FRAME_EBADBODY);
    /* count 0, 256 (the most), 257 */
    frame_put_presence_req(body, 1, 0);
    assert_int_equal(preq_of(body, 3, &op, &count), FRAME_EBADBODY);
    for (uint32_t i = 0; i < N; i++) frame_wr32(body + 3 + 4 * i, i + 1);
    frame_put_presence_req(body, 1, FRAME_PRESENCE_USERS_MAX);
    assert_int_equal(preq_of(body, 3 + 4 * FRAME_PRESENCE_USERS_MAX, &op,
                             &count), 0);
    assert_int_equal(count, FRAME_PRESENCE_USERS_MAX);
    frame_put_presence_req(body, 1, N);
    assert_int_equal(preq_of(body, sizeof body, &op, &count), FRAME_EBADBODY);
}

static int pres_of(const uint8_t *body, size_t n, frame_presence *p) {
    uint8_t *b = copy_exact(body, n);
    int rc = frame_parse_presence(b, (uint32_t)n, p);
    free(b);
    return rc;
}

static void test_presence_state(void **state) {
    (void)state;
    frame_presence p = {0x01020304u, FRAME_PRES_ONLINE, 0x1112131415161718ull},
                   back;
    uint8_t out[FRAME_PRESENCE_SIZE + 1] = {0};
    assert_int_equal(frame_put_presence(out, &p), 13);
    const uint8_t want[13] = {1, 2, 3, 4, 1, 0x11, 0x12, 0x13, 0x14,
                              0x15, 0x16, 0x17, 0x18};
    assert_memory_equal(out, want, 13);
    assert_int_equal(pres_of(out, 13, &back), 0);
    assert_int_equal(back.user, p.user);
    assert_int_equal(back.state, 1);
    assert_true(back.last_seen_ms == p.last_seen_ms);
    for (size_t n = 0; n <= sizeof out; n++)
        if (n != FRAME_PRESENCE_SIZE)
            assert_int_equal(pres_of(out, n, &back), FRAME_EBADBODY);
    out[4] = 2;
    assert_int_equal(pres_of(out, 13, &back), FRAME_EBADBODY);
    out[4] = 0;
    memset(out, 0, 4);
    assert_int_equal(pres_of(out, 13, &back), FRAME_EBADBODY);
}

static void test_posted(void **state) {
    (void)state;
    uint8_t out[FRAME_POSTED_SIZE + 1] = {0};
    assert_int_equal(frame_put_posted(out, 0x0102030405060708ull,
                                      0x1112131415161718ull), 16);
    const uint8_t want[16] = {1, 2, 3, 4, 5, 6, 7, 8,
                              0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
    assert_memory_equal(out, want, 16);
    uint64_t cid, id;
    for (size_t n = 0; n <= sizeof out; n++) {
        uint8_t *b = copy_exact(out, n);
        int rc = frame_parse_posted(b, (uint32_t)n, &cid, &id);
        free(b);
        assert_int_equal(rc, n == FRAME_POSTED_SIZE ? 0 : FRAME_EBADBODY);
    }
    assert_true(cid == 0x0102030405060708ull && id == 0x1112131415161718ull);
    memset(out, 0, 8); /* cid 0 */
    assert_int_equal(frame_parse_posted(out, 16, &cid, &id), FRAME_EBADBODY);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receipt_layout_and_roundtrip),
        cmocka_unit_test(test_receipt_malformed),
        cmocka_unit_test(test_typing),
        cmocka_unit_test(test_presence_request),
        cmocka_unit_test(test_presence_state),
        cmocka_unit_test(test_posted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
