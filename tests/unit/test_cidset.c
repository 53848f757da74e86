/*
 * test_cidset.c -- unit tests for the set of recent client message ids
 * (src/server/cidset.{h,c}).
 *
 * Covers: the empty (NULL) set; add then has; the time window; growth from
 * 16 entries to CIDSET_MAX keeping every id; a full set dropping its
 * oldest id for each new one; delete (and a deleted id's place in the ring
 * dropped later without harm); and a long random run checked against a
 * reference ring of the last CIDSET_MAX ids, which exercises the
 * backward-shift deletion of the hash slots.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "server/cidset.h"

static void test_empty(void **state) {
    (void)state;
    assert_int_equal(cidset_has(NULL, 5, 0), 0);
    assert_int_equal(cidset_count(NULL), 0);
    cidset_del(NULL, 5);
    cidset_free(NULL);
}

static void test_add_has_window(void **state) {
    (void)state;
    cidset *s = NULL;
    assert_int_equal(cidset_add(&s, 42, 1000), 0);
    assert_non_null(s);
    assert_int_equal(cidset_has(s, 42, 0), 1);
    assert_int_equal(cidset_has(s, 42, 1000), 1);
    assert_int_equal(cidset_has(s, 42, 1001), 0); /* older than the window */
    assert_int_equal(cidset_has(s, 43, 0), 0);
    assert_int_equal(cidset_has(s, 0, 0), 0);     /* 0 is "no id" */
    assert_int_equal(cidset_add(&s, 42, 2000), 0); /* renewed, not doubled */
    assert_int_equal(cidset_count(s), 1);
    assert_int_equal(cidset_has(s, 42, 1500), 1);
    cidset_free(s);
}

static void test_grow_then_drop_oldest(void **state) {
    (void)state;
    cidset *s = NULL;
    for (uint64_t i = 1; i <= CIDSET_MAX; i++)
        assert_int_equal(cidset_add(&s, i * 7919, (int64_t)i), 0);
    assert_int_equal(cidset_count(s), CIDSET_MAX);
    for (uint64_t i = 1; i <= CIDSET_MAX; i++)
        assert_int_equal(cidset_has(s, i * 7919, 0), 1);
    /* full: each new id drops the oldest */
    for (uint64_t i = CIDSET_MAX + 1; i <= CIDSET_MAX + 10; i++)
        assert_int_equal(cidset_add(&s, i * 7919, (int64_t)i), 0);
    assert_int_equal(cidset_count(s), CIDSET_MAX);
    for (uint64_t i = 1; i <= 10; i++)
        assert_int_equal(cidset_has(s, i * 7919, 0), 0);
    for (uint64_t i = 11; i <= CIDSET_MAX + 10; i++)
        assert_int_equal(cidset_has(s, i * 7919, 0), 1);
    cidset_free(s);
}

static void test_delete(void **state) {
    (void)state;
    cidset *s = NULL;
    for (uint64_t i = 1; i <= 100; i++)
        assert_int_equal(cidset_add(&s, i, (int64_t)i), 0);
    cidset_del(s, 50);
    cidset_del(s, 50);   /* twice: nothing */
    cidset_del(s, 1000); /* absent: nothing */
    assert_int_equal(cidset_has(s, 50, 0), 0);
    for (uint64_t i = 1; i <= 100; i++)
        if (i != 50) assert_int_equal(cidset_has(s, i, 0), 1);
    assert_int_equal(cidset_add(&s, 50, 200), 0); /* may come back */
    assert_int_equal(cidset_has(s, 50, 150), 1);
    /* growing past the deleted entry's place keeps the others */
    for (uint64_t i = 101; i <= 300; i++)
        assert_int_equal(cidset_add(&s, i, (int64_t)i + 200), 0);
    for (uint64_t i = 1; i <= 300; i++) assert_int_equal(cidset_has(s, i, 0), 1);
    cidset_free(s);
}

/* Random ids (many colliding in the low bits), some deleted, checked
 * against the last CIDSET_MAX ids added. */
/* Ids kept with client ids: set, kept when the cid is renewed and when
 * the set grows, gone with the cid. */
static void test_ids(void **state) {
    (void)state;
    cidset *s = NULL;
    assert_int_equal(cidset_id(NULL, 1), 0);
    cidset_set_id(NULL, 1, 9); /* (nothing) */
    assert_int_equal(cidset_add(&s, 7, 10), 0);
    assert_int_equal(cidset_id(s, 7), 0);
    cidset_set_id(s, 7, 1234);
    cidset_set_id(s, 8, 99); /* absent: nothing */
    assert_int_equal(cidset_id(s, 7), 1234);
    assert_int_equal(cidset_id(s, 8), 0);
    assert_int_equal(cidset_add(&s, 7, 11), 0); /* renewed */
    assert_int_equal(cidset_id(s, 7), 1234);
    for (uint64_t c = 100; c < 200; c++) { /* grows from 16 */
        assert_int_equal(cidset_add(&s, c, 20), 0);
        cidset_set_id(s, c, c * 10);
    }
    assert_int_equal(cidset_id(s, 7), 1234);
    for (uint64_t c = 100; c < 200; c++) assert_int_equal(cidset_id(s, c), c * 10);
    cidset_del(s, 7);
    assert_int_equal(cidset_id(s, 7), 0);
    cidset_free(s);
}

static void test_random_against_reference(void **state) {
    (void)state;
    enum { N = 5 * CIDSET_MAX };
    uint64_t *ref = calloc(N, sizeof *ref);
    assert_non_null(ref);
    cidset *s = NULL;
    uint64_t x = 88172645463325252ull;
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t cid = (x & 0xFFF0000000000000ull) | (i + 1); /* distinct */
        assert_int_equal(cidset_add(&s, cid, (int64_t)i), 0);
        ref[n++] = cid;
        if (x % 97 == 0) { /* delete a recent one */
            size_t k = n - 1 - (size_t)(x % (n < 100 ? n : 100));
            cidset_del(s, ref[k]);
            ref[k] = 0;
        }
    }
    for (size_t k = 0; k < n; k++) {
        int want = ref[k] && k + CIDSET_MAX >= n;
        if (cidset_has(s, ref[k], 0) != want)
            fail_msg("id %zu: has %d, want %d", k, !want, want);
    }
    cidset_free(s);
    free(ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_has_window),
        cmocka_unit_test(test_grow_then_drop_oldest),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
