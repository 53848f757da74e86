/*
 * test_buf.c -- unit tests for the growable byte buffer (src/common/buf.{h,c}).
 *
 * Covers: growth policy (first allocation 4 KiB, doubling, clamped to the
 * limit) with cap <= limit after every call, BUF_ELIMIT when len + extra >
 * limit with the buffer left untouched (same pointer, len, cap, bytes),
 * exact content over thousands of appends of varied sizes, consuming from the
 * front (partial, exact, more than len, 0), free then reuse, the limit edge
 * (exactly to the limit OK, one more byte refused), extra > limit, and the
 * size_t overflow guard (extra = SIZE_MAX with len > 0).
 *
 * After each successful reserve the whole capacity is written, so
 * AddressSanitizer catches a cap that is larger than the real allocation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static uint8_t pat(size_t i) { return (uint8_t)(i * 131u + (i >> 8) + 7u); }


/* Write every byte of the capacity without disturbing [0, len): ASan checks
 * that cap bytes really are allocated. */
static void touch_capacity(buf *b) {
    if (b->cap > b->len) memset(b->data + b->len, 0xEE, b->cap - b->len);
    if (b->cap) {
        volatile uint8_t x = b->data[b->cap - 1];
        (void)x;
    }
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_zero_initialised_is_empty(void **state) {
    (void)state;
    buf b = {0};
    /* Reserving 0 bytes on an empty buffer needs no memory. */
    assert_int_equal(buf_reserve(&b, 0, 100), 0);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* Appending 0 bytes (even from NULL) is a no-op. */
    assert_int_equal(buf_append(&b, NULL, 0, 100), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* Limit 0 with nothing to add is fine, one byte is not. */
    assert_int_equal(buf_reserve(&b, 0, 0), 0);
    assert_int_equal(buf_reserve(&b, 1, 0), BUF_ELIMIT);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    buf_free(&b);
    assert_null(b.data);
}

static void test_growth_policy(void **state) {
    (void)state;
    buf b = {0};
    const size_t limit = 1u << 20;

    /* First allocation of at most 64 bytes: 64 (a trickled header costs
     * little); then doubling. */
    assert_int_equal(buf_reserve(&b, 1, limit), 0);
    assert_non_null(b.data);
    assert_int_equal(b.cap, 64);
    assert_int_equal(b.len, 0);
    touch_capacity(&b);
    assert_int_equal(buf_reserve(&b, 64, limit), 0);
    assert_int_equal(b.cap, 64);
    assert_int_equal(buf_reserve(&b, 65, limit), 0);
    assert_int_equal(b.cap, 128);
    buf_free(&b);

    /* A larger first need: at least 4 KiB. */
    assert_int_equal(buf_reserve(&b, 65, limit), 0);
    assert_int_equal(b.cap, 4096);
    touch_capacity(&b);

    /* Within capacity: no growth. */
    assert_int_equal(buf_reserve(&b, 4096, limit), 0);
    assert_int_equal(b.cap, 4096);

    /* One past: doubles. */
    assert_int_equal(buf_reserve(&b, 4097, limit), 0);
    assert_int_equal(b.cap, 8192);
    touch_capacity(&b);

    /* A big request doubles until it fits. */
    assert_int_equal(buf_reserve(&b, 100000, limit), 0);
    assert_int_equal(b.cap, 131072);
    touch_capacity(&b);

    /* Up to the limit exactly: clamped to the limit, not 2^20 rounded up. */
    assert_int_equal(buf_reserve(&b, limit, limit), 0);
    assert_int_equal(b.cap, limit);
    touch_capacity(&b);
    buf_free(&b);

    /* A limit that is not a power of two: 4096 -> 8192 -> clamp 10000. */
    assert_int_equal(buf_reserve(&b, 5000, 10000), 0);
    assert_int_equal(b.cap, 8192);
    assert_int_equal(buf_reserve(&b, 9000, 10000), 0);
    assert_int_equal(b.cap, 10000);
    touch_capacity(&b);
    buf_free(&b);

    /* A limit below 4 KiB: a first need over 64 bytes allocates the limit
     * itself. */
    assert_int_equal(buf_reserve(&b, 65, 100), 0);
    assert_int_equal(b.cap, 100);
    touch_capacity(&b);
    buf_free(&b);

    /* A limit just above a doubling step. */
    assert_int_equal(buf_reserve(&b, 4097, 4097), 0);
    assert_int_equal(b.cap, 4097);
    touch_capacity(&b);
    buf_free(&b);
}

/* Appends of random sizes under several limits: cap <= limit always,
 * cap >= len always, and the content is byte-exact. */
static void test_append_cap_never_exceeds_limit(void **state) {
    (void)state;
    static const size_t limits[] = {1, 100, 4095, 4096, 4097, 10000,
                                    65536 + 3, 1u << 20};
    uint32_t seed = 0x1234567u;
    uint8_t *ref = malloc(1u << 20);
    uint8_t *chunk = malloc(1u << 20);
    assert_non_null(ref);
    assert_non_null(chunk);

    for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
        size_t limit = limits[li];
        buf b = {0};
        size_t len = 0, refused = 0;
        for (int step = 0; step < 400; step++) {
            size_t n = rng_next(&seed) % (limit / 8 + 2);
            for (size_t k = 0; k < n; k++) chunk[k] = pat(len + k + step);
            uint8_t *old_data = b.data;
            size_t old_cap = b.cap;
            int r = buf_append(&b, chunk, n, limit);
            if (len + n > limit) {
                assert_int_equal(r, BUF_ELIMIT);
                assert_ptr_equal(b.data, old_data);
                assert_int_equal(b.cap, old_cap);
                refused++;
            } else {
                assert_int_equal(r, 0);
                memcpy(ref + len, chunk, n);
                len += n;
            }
            assert_int_equal(b.len, len);
            assert_true(b.cap <= limit);
            assert_true(b.cap >= b.len);
            if (len) assert_memory_equal(b.data, ref, len);
            /* Occasionally drain the front to keep going. */
            if (rng_next(&seed) % 8 == 0 && len) {
                size_t c = rng_next(&seed) % (len + 1);
                buf_consume(&b, c);
                memmove(ref, ref + c, len - c);
                len -= c;
                assert_int_equal(b.len, len);
                if (len) assert_memory_equal(b.data, ref, len);
            }
        }
        assert_true(refused > 0); /* the limit was actually exercised */
        touch_capacity(&b);
        buf_free(&b);
    }
    free(ref);
    free(chunk);
}

static void test_elimit_leaves_buffer_unchanged(void **state) {
    (void)state;
    buf b = {0};
    uint8_t src[100];
    for (size_t i = 0; i < sizeof src; i++) src[i] = pat(i);

    assert_int_equal(buf_append(&b, src, 90, 100), 0);
    uint8_t *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(cap, 100);

    uint8_t junk[11];
    memset(junk, 0xAB, sizeof junk);
    assert_int_equal(buf_append(&b, junk, 11, 100), BUF_ELIMIT);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.len, 90);
    assert_int_equal(b.cap, cap);
    assert_memory_equal(b.data, src, 90);

    assert_int_equal(buf_reserve(&b, 11, 100), BUF_ELIMIT);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.len, 90);
    assert_int_equal(b.cap, cap);

    /* The remaining 10 bytes still fit. */
    assert_int_equal(buf_append(&b, src + 90, 10, 100), 0);
    assert_int_equal(b.len, 100);
    assert_memory_equal(b.data, src, 100);
    buf_free(&b);
}

static void test_many_appends_exact_content(void **state) {
    (void)state;
    const size_t limit = (size_t)8 << 20;
    buf b = {0};
    size_t total = 0;
    uint8_t chunk[1000];
    for (unsigned i = 0; i < 5000; i++) {
        size_t n = (i * 37u) % 997u; /* includes 0-length appends */
        for (size_t k = 0; k < n; k++) chunk[k] = pat(total + k);
        assert_int_equal(buf_append(&b, chunk, n, limit), 0);
        total += n;
        assert_int_equal(b.len, total);
        assert_true(b.cap <= limit);
    }
    for (size_t k = 0; k < total; k++) {
        if (b.data[k] != pat(k)) fail_msg("byte %zu differs", k);
    }
    /* Power-of-two growth from 4 KiB: cap is the smallest 4096 * 2^k >= len. */
    size_t expect = 4096;
    while (expect < total) expect *= 2;
    assert_int_equal(b.cap, expect);
    buf_free(&b);
}

static void test_consume(void **state) {
    (void)state;
    buf b = {0};
    uint8_t src[1000];
    for (size_t i = 0; i < sizeof src; i++) src[i] = pat(i);
    assert_int_equal(buf_append(&b, src, 1000, 4096), 0);
    size_t cap = b.cap;

    buf_consume(&b, 0);
    assert_int_equal(b.len, 1000);
    assert_memory_equal(b.data, src, 1000);

    /* Partial: remaining bytes moved to the front. */
    buf_consume(&b, 1);
    assert_int_equal(b.len, 999);
    assert_memory_equal(b.data, src + 1, 999);
    buf_consume(&b, 300);
    assert_int_equal(b.len, 699);
    assert_memory_equal(b.data, src + 301, 699);
    assert_int_equal(b.cap, cap); /* consume never reallocates */

    /* Append after a partial consume goes at the new end. */
    assert_int_equal(buf_append(&b, src, 10, 4096), 0);
    assert_int_equal(b.len, 709);
    assert_memory_equal(b.data, src + 301, 699);
    assert_memory_equal(b.data + 699, src, 10);

    /* Exact. */
    buf_consume(&b, 709);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_non_null(b.data);

    /* More than len: empties, no underflow. */
    assert_int_equal(buf_append(&b, src, 5, 4096), 0);
    buf_consume(&b, 6);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, src, 3, 4096), 0);
    buf_consume(&b, SIZE_MAX);
    assert_int_equal(b.len, 0);

    /* Consume on an empty, unallocated buffer. */
    buf e = {0};
    buf_consume(&e, 0);
    buf_consume(&e, 10);
    assert_int_equal(e.len, 0);
    assert_null(e.data);

    /* After consuming, the freed room is usable up to the limit again. */
    assert_int_equal(buf_append(&b, src, 1000, 1000), 0);
    assert_int_equal(buf_append(&b, src, 1, 1000), BUF_ELIMIT);
    buf_consume(&b, 400);
    assert_int_equal(buf_append(&b, src, 400, 1000), 0);
    assert_int_equal(b.len, 1000);
    assert_memory_equal(b.data, src + 400, 600);
    assert_memory_equal(b.data + 600, src, 400);
    assert_true(b.cap <= 4096);
    buf_free(&b);
}

static void test_free_then_reuse(void **state) {
    (void)state;
    buf b = {0};
    uint8_t src[5000];
    for (size_t i = 0; i < sizeof src; i++) src[i] = pat(i);
    assert_int_equal(buf_append(&b, src, 5000, 1u << 20), 0);
    assert_int_equal(b.cap, 8192);

    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    /* Double free is harmless (free(NULL)). */
    buf_free(&b);
    assert_null(b.data);

    /* Reuse: growth starts over (from 64 bytes for a small need). */
    assert_int_equal(buf_append(&b, src + 7, 10, 1u << 20), 0);
    assert_int_equal(b.len, 10);
    assert_int_equal(b.cap, 64);
    assert_memory_equal(b.data, src + 7, 10);
    /* And with a smaller limit than before. */
    buf_free(&b);
    assert_int_equal(buf_append(&b, src, 50, 50), 0);
    assert_int_equal(b.cap, 50);
    assert_memory_equal(b.data, src, 50);
    buf_free(&b);
}

static void test_limit_edge(void **state) {
    (void)state;
    static const size_t limits[] = {1, 7, 4096, 8192, 12345};
    uint8_t src[12346];
    for (size_t i = 0; i < sizeof src; i++) src[i] = pat(i);
    for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
        size_t limit = limits[li];
        buf b = {0};
        /* Exactly to the limit in one append. */
        assert_int_equal(buf_append(&b, src, limit, limit), 0);
        assert_int_equal(b.len, limit);
        assert_int_equal(b.cap, limit);
        assert_memory_equal(b.data, src, limit);
        /* One more byte refused, nothing changed. */
        uint8_t *data = b.data;
        assert_int_equal(buf_append(&b, src, 1, limit), BUF_ELIMIT);
        assert_int_equal(buf_reserve(&b, 1, limit), BUF_ELIMIT);
        assert_ptr_equal(b.data, data);
        assert_int_equal(b.len, limit);
        assert_int_equal(b.cap, limit);
        assert_memory_equal(b.data, src, limit);
        /* Reserving 0 at the limit is fine. */
        assert_int_equal(buf_reserve(&b, 0, limit), 0);
        buf_free(&b);

        /* Byte by byte up to the limit, then refused. */
        for (size_t i = 0; i < limit; i++) {
            assert_int_equal(buf_append(&b, src + i, 1, limit), 0);
            assert_true(b.cap <= limit);
        }
        assert_int_equal(b.len, limit);
        assert_int_equal(b.cap, limit);
        assert_int_equal(buf_append(&b, src, 1, limit), BUF_ELIMIT);
        assert_int_equal(b.len, limit);
        assert_memory_equal(b.data, src, limit);
        buf_free(&b);
    }
}

static void test_extra_over_limit(void **state) {
    (void)state;
    buf b = {0};
    uint8_t src[200] = {0};
    /* Empty buffer, extra > limit: nothing allocated. */
    assert_int_equal(buf_reserve(&b, 101, 100), BUF_ELIMIT);
    assert_int_equal(buf_append(&b, src, 101, 100), BUF_ELIMIT);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    /* Non-empty buffer, extra > limit. */
    assert_int_equal(buf_append(&b, src, 10, 100), 0);
    assert_int_equal(buf_reserve(&b, 200, 100), BUF_ELIMIT);
    assert_int_equal(b.len, 10);
    assert_int_equal(b.cap, 64);
    buf_free(&b);
}

static void test_size_overflow_guard(void **state) {
    (void)state;
    buf b = {0};
    uint8_t src[16];
    for (size_t i = 0; i < sizeof src; i++) src[i] = pat(i);
    assert_int_equal(buf_append(&b, src, 16, 4096), 0);
    uint8_t *data = b.data;
    size_t cap = b.cap;

    /* len + SIZE_MAX wraps around to len - 1: must be refused, not taken
     * for "fits" (which would make a later memcpy overflow the heap). */
    assert_int_equal(buf_reserve(&b, SIZE_MAX, SIZE_MAX), BUF_ELIMIT);
    assert_int_equal(buf_reserve(&b, SIZE_MAX, 4096), BUF_ELIMIT);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 15, SIZE_MAX), BUF_ELIMIT);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 16, SIZE_MAX - 1), BUF_ELIMIT);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.len, 16);
    assert_int_equal(b.cap, cap);
    assert_memory_equal(b.data, src, 16);

    /* Limit SIZE_MAX but a small extra behaves normally. */
    assert_int_equal(buf_append(&b, src, 16, SIZE_MAX), 0);
    assert_int_equal(b.len, 32);
    assert_memory_equal(b.data + 16, src, 16);
    buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_initialised_is_empty),
        cmocka_unit_test(test_growth_policy),
        cmocka_unit_test(test_append_cap_never_exceeds_limit),
        cmocka_unit_test(test_elimit_leaves_buffer_unchanged),
        cmocka_unit_test(test_many_appends_exact_content),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_free_then_reuse),
        cmocka_unit_test(test_limit_edge),
        cmocka_unit_test(test_extra_over_limit),
        cmocka_unit_test(test_size_overflow_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
