/*
 * test_ratelimit.c -- unit tests for src/server/ratelimit.{h,c}: the two
 * token buckets, their one-second capacity, debt, the over-rate streak and
 * its grace period, with the time passed in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/ratelimit.h"

static void test_off(void **state) {
    (void)state;
    ratelimit_cfg cfg = {0, 0, 1000};
    ratelimit r;
    ratelimit_init(&r, &cfg, 100);
    assert_false(ratelimit_on(&cfg));
    assert_int_equal(ratelimit_charge(&r, &cfg, 1000000, 1u << 30, 100),
                     RATE_OK);
}

static void test_frames(void **state) {
    (void)state;
    ratelimit_cfg cfg = {10, 0, 5000}; /* 10 frames/s */
    ratelimit r;
    ratelimit_init(&r, &cfg, 1000);
    assert_int_equal(ratelimit_charge(&r, &cfg, 10, 999999, 1000), RATE_OK);
    /* The eleventh within the same millisecond: over, first of a streak. */
    assert_int_equal(ratelimit_charge(&r, &cfg, 1, 0, 1000), RATE_OVER_NEW);
    assert_int_equal(ratelimit_poll(&r, &cfg, 1050), RATE_OVER);
    /* 100 ms later one frame's worth is back: the debt of one is paid. */
    assert_int_equal(ratelimit_poll(&r, &cfg, 1100), RATE_OK);
    /* Over again within the streak: not new. */
    assert_int_equal(ratelimit_charge(&r, &cfg, 5, 0, 1100), RATE_OVER);
}

static void test_bytes_and_grace(void **state) {
    (void)state;
    ratelimit_cfg cfg = {0, 1000, 2000}; /* 1000 bytes/s, 2 s grace */
    ratelimit r;
    ratelimit_init(&r, &cfg, 10);
    assert_int_equal(ratelimit_charge(&r, &cfg, 1, 1000, 10), RATE_OK);
    assert_int_equal(ratelimit_charge(&r, &cfg, 1, 5000, 10), RATE_OVER_NEW);
    /* In debt by 5000 bytes: 5 s to pay; the grace (2 s) ends first. */
    assert_int_equal(ratelimit_poll(&r, &cfg, 2009), RATE_OVER);
    assert_int_equal(ratelimit_poll(&r, &cfg, 2010), RATE_EXPIRED);
    assert_int_equal(ratelimit_charge(&r, &cfg, 0, 1, 2500), RATE_EXPIRED);
}

static void test_capacity_and_streak_reset(void **state) {
    (void)state;
    ratelimit_cfg cfg = {100, 0, 1000};
    ratelimit r;
    ratelimit_init(&r, &cfg, 0);
    /* An hour idle still holds one second: 100 frames, not 360000. */
    assert_int_equal(ratelimit_charge(&r, &cfg, 100, 0, 3600000), RATE_OK);
    assert_int_equal(ratelimit_charge(&r, &cfg, 1, 0, 3600000), RATE_OVER_NEW);
    /* Out of debt, but not yet full: the streak goes on. */
    assert_int_equal(ratelimit_poll(&r, &cfg, 3601000), RATE_OK);
    assert_int_not_equal(r.over_since, 0);
    /* Full again (one more frame's worth): the streak ends, the next one
     * is new. */
    assert_int_equal(ratelimit_poll(&r, &cfg, 3601010), RATE_OK);
    assert_int_equal(r.over_since, 0);
    assert_int_equal(ratelimit_charge(&r, &cfg, 101, 0, 3601010), RATE_OVER_NEW);
}

static void test_time_going_back(void **state) {
    (void)state;
    ratelimit_cfg cfg = {10, 0, 1000};
    ratelimit r;
    ratelimit_init(&r, &cfg, 5000);
    assert_int_equal(ratelimit_charge(&r, &cfg, 10, 0, 5000), RATE_OK);
    /* A clock read earlier than the last refill adds nothing. */
    assert_int_equal(ratelimit_poll(&r, &cfg, 4000), RATE_OK);
    assert_int_equal(ratelimit_charge(&r, &cfg, 1, 0, 4000), RATE_OVER_NEW);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_bytes_and_grace),
        cmocka_unit_test(test_capacity_and_streak_reset),
        cmocka_unit_test(test_time_going_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
