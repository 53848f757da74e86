/*
 * test_u32map.c -- unit tests for the u32 -> pointer hash map
 * (src/common/u32map.{h,c}).
 *
 * Covers: empty map, put/get/del of 100,000 sequential and 100,000
 * pseudo-random distinct keys, replacing a value (count unchanged), absent
 * keys (get and del return NULL), key 0 (put refused, never found, del NULL),
 * capacity a power of two with load <= 50%, free then reuse, and
 * backward-shift deletion: hand-built collision clusters (including runs that
 * wrap around the end of the table) deleted in every position, and hundreds
 * of thousands of random put/del/get operations with a fixed seed checked
 * against a plain reference array, with the table's structure (count equals
 * occupied slots; every stored key reachable from its home slot without
 * crossing an empty slot) verified along the way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "common/u32map.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A non-NULL value derived from a key and a generation. */
static void *val_of(uint32_t key, unsigned gen) {
    return (void *)(((uintptr_t)key << 4) | ((uintptr_t)gen << 1) | 1u);
}


/* A bijection on uint32_t that maps 0 to 0 only: distinct non-zero inputs
 * give distinct non-zero, well scattered keys. */
static uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* The map's home-slot function, mirrored here only to build keys that
 * collide on purpose. If the implementation's hash changes these tests still
 * check correctness; they just collide less. */
static size_t home_of(uint32_t key, size_t mask) {
    return (size_t)((key * 2654435769u) >> 7) & mask;
}

/* Structural check through the public struct: count matches the occupied
 * slots, load <= 50%, capacity a power of two, and every stored key is
 * found by u32map_get with its value. */
static void check_structure(const u32map *m) {
    if (!m->slots) {
        assert_int_equal(m->count, 0);
        return;
    }
    size_t cap = m->mask + 1;
    assert_true((cap & m->mask) == 0);
    assert_true(m->count * 2 <= cap);
    size_t used = 0;
    for (size_t i = 0; i < cap; i++) {
        if (m->slots[i].key == 0) continue;
        used++;
        assert_non_null(m->slots[i].val);
        assert_ptr_equal(u32map_get(m, m->slots[i].key), m->slots[i].val);
    }
    assert_int_equal(used, m->count);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_empty(void **state) {
    (void)state;
    u32map m;
    u32map_init(&m);
    assert_int_equal(m.count, 0);
    assert_null(u32map_get(&m, 1));
    assert_null(u32map_get(&m, 0));
    assert_null(u32map_get(&m, UINT32_MAX));
    assert_null(u32map_del(&m, 1));
    assert_null(u32map_del(&m, 0));
    assert_int_equal(m.count, 0);
    u32map_free(&m);
    u32map_free(&m); /* idempotent */
    assert_null(m.slots);
    assert_int_equal(m.count, 0);
}

static void test_single_put_get_del(void **state) {
    (void)state;
    u32map m;
    u32map_init(&m);
    assert_int_equal(u32map_put(&m, 42, val_of(42, 0)), 0);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(u32map_get(&m, 42), val_of(42, 0));
    assert_null(u32map_get(&m, 43));
    assert_null(u32map_del(&m, 43));
    assert_int_equal(m.count, 1);
    assert_ptr_equal(u32map_del(&m, 42), val_of(42, 0));
    assert_int_equal(m.count, 0);
    assert_null(u32map_get(&m, 42));
    assert_null(u32map_del(&m, 42)); /* second delete: absent */
    assert_int_equal(m.count, 0);
    /* Extreme keys. */
    assert_int_equal(u32map_put(&m, UINT32_MAX, val_of(7, 1)), 0);
    assert_int_equal(u32map_put(&m, 1, val_of(1, 1)), 0);
    assert_ptr_equal(u32map_get(&m, UINT32_MAX), val_of(7, 1));
    assert_ptr_equal(u32map_get(&m, 1), val_of(1, 1));
    assert_int_equal(m.count, 2);
    check_structure(&m);
    u32map_free(&m);
}

static void test_replace_value(void **state) {
    (void)state;
    u32map m;
    u32map_init(&m);
    for (uint32_t k = 1; k <= 1000; k++)
        assert_int_equal(u32map_put(&m, k, val_of(k, 0)), 0);
    assert_int_equal(m.count, 1000);
    for (uint32_t k = 1; k <= 1000; k += 3)
        assert_int_equal(u32map_put(&m, k, val_of(k, 5)), 0);
    assert_int_equal(m.count, 1000);
    for (uint32_t k = 1; k <= 1000; k++) {
        unsigned gen = (k - 1) % 3 == 0 ? 5 : 0;
        assert_ptr_equal(u32map_get(&m, k), val_of(k, gen));
    }
    /* del returns the latest value. */
    assert_ptr_equal(u32map_del(&m, 4), val_of(4, 5));
    assert_ptr_equal(u32map_del(&m, 5), val_of(5, 0));
    assert_int_equal(m.count, 998);
    check_structure(&m);
    u32map_free(&m);
}

/* Replacing a present key never grows the table: router_del relies on it
 * (a replace that cannot fail). 32 keys fill 64 slots to the growth point. */
static void test_replace_never_grows(void **state) {
    (void)state;
    u32map m;
    u32map_init(&m);
    for (uint32_t k = 1; k <= 32; k++)
        assert_int_equal(u32map_put(&m, k, val_of(k, 0)), 0);
    assert_int_equal(m.mask + 1, 64);
    u32map_slot *before = m.slots;
    assert_int_equal(u32map_put(&m, 5, val_of(5, 1)), 0);
    assert_ptr_equal(m.slots, before);
    assert_int_equal(m.mask + 1, 64);
    assert_ptr_equal(u32map_get(&m, 5), val_of(5, 1));
    assert_int_equal(m.count, 32);
    u32map_free(&m);
}

static void test_key_zero_rejected(void **state) {
    (void)state;
    u32map m;
    u32map_init(&m);
    /* On an empty map. */
    assert_int_equal(u32map_put(&m, 0, val_of(1, 0)), -1);
    assert_int_equal(m.count, 0);
    assert_null(u32map_get(&m, 0));
    assert_null(u32map_del(&m, 0));

    /* On a populated map (it has empty slots with key 0 everywhere). */
    for (uint32_t k = 1; k <= 100; k++)
        assert_int_equal(u32map_put(&m, k, val_of(k, 0)), 0);
    u32map_slot *slots = m.slots;
    size_t mask = m.mask;
    assert_int_equal(u32map_put(&m, 0, val_of(1, 0)), -1);
    assert_ptr_equal(m.slots, slots); /* map unchanged */
    assert_int_equal(m.mask, mask);
    assert_int_equal(m.count, 100);
    assert_null(u32map_get(&m, 0));
    assert_null(u32map_del(&m, 0));
    assert_int_equal(m.count, 100);
    for (uint32_t k = 1; k <= 100; k++)
        assert_ptr_equal(u32map_get(&m, k), val_of(k, 0));
    check_structure(&m);
    u32map_free(&m);
}

static void test_sequential_100k(void **state) {
    (void)state;
    const uint32_t N = 100000;
    u32map m;
    u32map_init(&m);
    for (uint32_t k = 1; k <= N; k++) {
        assert_int_equal(u32map_put(&m, k, val_of(k, 0)), 0);
        if (m.count != k) fail_msg("count %zu after %u puts", m.count, k);
    }
    check_structure(&m);
    /* Smallest power of two >= 2 * N (doubling at 50% load, from 64). */
    assert_int_equal(m.mask + 1, 262144);
    for (uint32_t k = 1; k <= N; k++)
        if (u32map_get(&m, k) != val_of(k, 0)) fail_msg("key %u lost", k);
    for (uint32_t k = N + 1; k <= N + 1000; k++) assert_null(u32map_get(&m, k));
    assert_null(u32map_get(&m, UINT32_MAX));

    /* Delete the even keys. */
    for (uint32_t k = 2; k <= N; k += 2)
        if (u32map_del(&m, k) != val_of(k, 0)) fail_msg("del %u", k);
    assert_int_equal(m.count, N / 2);
    check_structure(&m);
    for (uint32_t k = 1; k <= N; k++) {
        void *v = u32map_get(&m, k);
        if (k % 2 ? v != val_of(k, 0) : v != NULL) fail_msg("key %u after dels", k);
    }
    /* The table never shrinks. */
    assert_int_equal(m.mask + 1, 262144);
    /* Delete the rest in reverse. */
    for (uint32_t k = N - 1; k >= 1; k -= 2) {
        if (u32map_del(&m, k) != val_of(k, 0)) fail_msg("del %u", k);
        if (k == 1) break;
    }
    assert_int_equal(m.count, 0);
    check_structure(&m);
    for (uint32_t k = 1; k <= N; k += 97) assert_null(u32map_get(&m, k));
    u32map_free(&m);
}

static void test_random_100k(void **state) {
    (void)state;
    const uint32_t N = 100000;
    u32map m;
    u32map_init(&m);
    for (uint32_t i = 1; i <= N; i++)
        assert_int_equal(u32map_put(&m, mix32(i), val_of(i, 1)), 0);
    assert_int_equal(m.count, N);
    check_structure(&m);
    for (uint32_t i = 1; i <= N; i++)
        if (u32map_get(&m, mix32(i)) != val_of(i, 1)) fail_msg("key #%u lost", i);
    for (uint32_t i = N + 1; i <= N + 5000; i++) assert_null(u32map_get(&m, mix32(i)));

    /* Delete every third, then check everything. */
    for (uint32_t i = 3; i <= N; i += 3)
        if (u32map_del(&m, mix32(i)) != val_of(i, 1)) fail_msg("del #%u", i);
    assert_int_equal(m.count, N - N / 3);
    check_structure(&m);
    for (uint32_t i = 1; i <= N; i++) {
        void *v = u32map_get(&m, mix32(i));
        if (i % 3 ? v != val_of(i, 1) : v != NULL) fail_msg("key #%u after dels", i);
    }
    /* Re-insert them with a new value. */
    for (uint32_t i = 3; i <= N; i += 3)
        assert_int_equal(u32map_put(&m, mix32(i), val_of(i, 2)), 0);
    assert_int_equal(m.count, N);
    for (uint32_t i = 1; i <= N; i++) {
        void *v = u32map_get(&m, mix32(i));
        if (v != val_of(i, i % 3 ? 1 : 2)) fail_msg("key #%u after re-put", i);
    }
    u32map_free(&m);
    assert_null(m.slots);
    assert_int_equal(m.count, 0);
}

/* Find `n` distinct keys whose home slot (for table mask `mask`) is `home`,
 * starting the search from *next. */
static void keys_with_home(size_t home, size_t mask, uint32_t *next,
                           uint32_t *out, size_t n) {
    size_t got = 0;
    while (got < n) {
        uint32_t k = (*next)++;
        if (k && home_of(k, mask) == home) out[got++] = k;
    }
}

/* Delete each key of a hand-built cluster in turn (from a fresh map each
 * time) and check the others are still found: exercises the backward-shift
 * in the plain case, across a wrap-around, and with keys at their home slot
 * that must not be moved. Table stays at 64 slots (<= 32 keys). */
static void test_backward_shift_clusters(void **state) {
    (void)state;
    const size_t mask = 63;
    /* Layouts: list of home slots; keys are inserted in this order. */
    static const size_t layouts[][12] = {
        /* one long run from one home */
        {10, 10, 10, 10, 10, 10, 0xFF},
        /* interleaved homes: some keys sit at home, some displaced */
        {10, 10, 11, 11, 12, 10, 14, 13, 0xFF},
        /* wrap around the end: homes 62, 63 spill into 0, 1, 2 */
        {62, 62, 63, 62, 0, 1, 63, 0xFF},
        /* key homed at 0/1 sitting after a wrapped run */
        {63, 63, 63, 0, 1, 0, 2, 0xFF},
        /* a run ending at the last slot, then one homed at 0 */
        {60, 61, 60, 60, 0, 0xFF},
    };
    for (size_t L = 0; L < sizeof layouts / sizeof layouts[0]; L++) {
        uint32_t keys[12];
        size_t n = 0;
        uint32_t next = 1;
        while (layouts[L][n] != 0xFF) {
            keys_with_home(layouts[L][n], mask, &next, &keys[n], 1);
            n++;
        }
        for (size_t victim = 0; victim < n; victim++) {
            u32map m;
            u32map_init(&m);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(u32map_put(&m, keys[i], val_of(keys[i], 0)), 0);
            assert_int_equal(m.mask, mask);
            assert_ptr_equal(u32map_del(&m, keys[victim]), val_of(keys[victim], 0));
            assert_int_equal(m.count, n - 1);
            assert_null(u32map_get(&m, keys[victim]));
            for (size_t i = 0; i < n; i++)
                if (i != victim)
                    assert_ptr_equal(u32map_get(&m, keys[i]), val_of(keys[i], 0));
            check_structure(&m);
            /* Then delete the rest, one by one, in insertion order. */
            size_t left = n - 1;
            for (size_t i = 0; i < n; i++) {
                if (i == victim) continue;
                assert_ptr_equal(u32map_del(&m, keys[i]), val_of(keys[i], 0));
                left--;
                assert_int_equal(m.count, left);
                for (size_t j = i + 1; j < n; j++)
                    if (j != victim)
                        assert_ptr_equal(u32map_get(&m, keys[j]), val_of(keys[j], 0));
                check_structure(&m);
            }
            /* Every slot is empty again: no tombstones. */
            for (size_t s = 0; s <= m.mask; s++) assert_int_equal(m.slots[s].key, 0);
            u32map_free(&m);
        }
    }
}

/* Random operations against a reference array. `universe` keys are drawn as
 * base[0..universe), so a small universe keeps the table small and crowded
 * (long runs, wrap-arounds), a large one makes it grow. */
static void random_ops(uint32_t seed, const uint32_t *base, size_t universe,
                       unsigned ops) {
    void **ref = calloc(universe, sizeof *ref);
    assert_non_null(ref);
    size_t live = 0;
    u32map m;
    u32map_init(&m);
    for (unsigned op = 0; op < ops; op++) {
        uint32_t r = rng_next(&seed);
        size_t idx = rng_next(&seed) % universe;
        uint32_t key = base[idx];
        switch (r % 8) {
        case 0: case 1: case 2: { /* put (insert or replace) */
            void *v = val_of(key, op & 0x7);
            assert_int_equal(u32map_put(&m, key, v), 0);
            if (!ref[idx]) live++;
            ref[idx] = v;
            break;
        }
        case 3: case 4: case 5: { /* del */
            void *got = u32map_del(&m, key);
            if (got != ref[idx])
                fail_msg("op %u: del %u returned %p, expected %p", op, key, got, ref[idx]);
            if (ref[idx]) live--;
            ref[idx] = NULL;
            break;
        }
        default: { /* get */
            void *got = u32map_get(&m, key);
            if (got != ref[idx])
                fail_msg("op %u: get %u returned %p, expected %p", op, key, got, ref[idx]);
        }
        }
        if (m.count != live) fail_msg("op %u: count %zu, expected %zu", op, m.count, live);
        if (op % 997 == 0 || op == ops - 1) {
            for (size_t i = 0; i < universe; i++) {
                void *got = u32map_get(&m, base[i]);
                if (got != ref[i])
                    fail_msg("op %u: key %u is %p, expected %p", op, base[i], got, ref[i]);
            }
            check_structure(&m);
        }
    }
    /* Drain. */
    for (size_t i = 0; i < universe; i++) {
        if (u32map_del(&m, base[i]) != ref[i]) fail_msg("drain key %u", base[i]);
    }
    assert_int_equal(m.count, 0);
    check_structure(&m);
    u32map_free(&m);
    free(ref);
}

static void test_random_ops_small_universe(void **state) {
    (void)state;
    /* 40 keys: table 64..128 slots, heavy clustering. */
    uint32_t base[40];
    for (uint32_t i = 0; i < 40; i++) base[i] = i + 1;
    random_ops(0xC0FFEEu, base, 40, 200000);
}

static void test_random_ops_colliding_keys(void **state) {
    (void)state;
    /* 30 keys sharing only 4 home slots in a 64-slot table, two of them at
     * the end so runs wrap around; at most 30 live keys keeps the table at
     * 64 slots. */
    uint32_t base[30];
    uint32_t next = 1;
    keys_with_home(61, 63, &next, base, 8);
    keys_with_home(63, 63, &next, base + 8, 8);
    keys_with_home(0, 63, &next, base + 16, 7);
    keys_with_home(30, 63, &next, base + 23, 7);
    random_ops(0xBADC0DEu, base, 30, 200000);
}

static void test_random_ops_large_universe(void **state) {
    (void)state;
    enum { U = 5000 };
    uint32_t *base = malloc(U * sizeof *base);
    assert_non_null(base);
    for (uint32_t i = 0; i < U; i++) base[i] = mix32(i + 1);
    random_ops(12345u, base, U, 300000);
    /* Sequential keys as well (Fibonacci hashing of neighbours). */
    for (uint32_t i = 0; i < U; i++) base[i] = i + 1;
    random_ops(777u, base, U, 300000);
    free(base);
}

static void test_free_then_reuse(void **state) {
    (void)state;
    u32map m;
    u32map_init(&m);
    for (uint32_t k = 1; k <= 500; k++) assert_int_equal(u32map_put(&m, k, val_of(k, 0)), 0);
    u32map_free(&m);
    assert_null(m.slots);
    assert_int_equal(m.count, 0);
    assert_null(u32map_get(&m, 1));
    assert_int_equal(u32map_put(&m, 9, val_of(9, 3)), 0);
    assert_int_equal(m.count, 1);
    assert_int_equal(m.mask + 1, 64);
    assert_ptr_equal(u32map_get(&m, 9), val_of(9, 3));
    assert_null(u32map_get(&m, 1));
    u32map_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_single_put_get_del),
        cmocka_unit_test(test_replace_value),
        cmocka_unit_test(test_replace_never_grows),
        cmocka_unit_test(test_key_zero_rejected),
        cmocka_unit_test(test_sequential_100k),
        cmocka_unit_test(test_random_100k),
        cmocka_unit_test(test_backward_shift_clusters),
        cmocka_unit_test(test_random_ops_small_universe),
        cmocka_unit_test(test_random_ops_colliding_keys),
        cmocka_unit_test(test_random_ops_large_universe),
        cmocka_unit_test(test_free_then_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
