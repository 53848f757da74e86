/*
 * test_bgroup.c -- unit tests of bgroup.c, the account chat-bench keeps of
 * a group's messages in flight: completion in order, duplicates and
 * messages never posted refused, acknowledgements gating the window. Run
 * by test_bench (test_bgroup_run).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bgroup.h"

int test_bgroup_run(void);

static void test_bgroup_in_order(void **state) {
    (void)state;
    bgroup g;
    assert_int_equal(bgroup_init(&g, 3, 2, 0), 0);
    assert_int_equal(bgroup_room(&g), 2);
    bgroup_posted(&g);
    bgroup_posted(&g);
    assert_int_equal(bgroup_room(&g), 0);
    assert_int_equal(bgroup_due(&g), 6);
    assert_int_equal(bgroup_delivered(&g, 2), -1); /* never posted */
    assert_int_equal(bgroup_delivered(&g, 0), 0);
    assert_int_equal(bgroup_delivered(&g, 1), 0); /* member A is ahead */
    assert_int_equal(bgroup_delivered(&g, 0), 0);
    assert_int_equal(bgroup_room(&g), 0);
    assert_int_equal(bgroup_delivered(&g, 0), 1); /* the last member: complete */
    assert_int_equal(g.complete, 1);
    assert_int_equal(bgroup_delivered(&g, 0), -1); /* a fourth copy */
    assert_int_equal(bgroup_room(&g), 1);
    assert_int_equal(bgroup_due(&g), 2);
    bgroup_posted(&g); /* message 2 takes message 0's slot */
    assert_int_equal(bgroup_room(&g), 0);
    assert_int_equal(bgroup_due(&g), 5);
    assert_int_equal(bgroup_delivered(&g, 1), 0);
    assert_int_equal(bgroup_delivered(&g, 1), 1);
    assert_int_equal(g.complete, 2);
    assert_int_equal(g.acked, 0); /* without acks the server's ACKs do not matter */
    assert_int_equal(bgroup_room(&g), 1);
    bgroup_free(&g);
}

static void test_bgroup_acks(void **state) {
    (void)state;
    bgroup g;
    assert_int_equal(bgroup_init(&g, 1, 2, 1), 0);
    bgroup_posted(&g);
    bgroup_posted(&g);
    assert_int_equal(bgroup_delivered(&g, 0), 1);
    assert_int_equal(bgroup_delivered(&g, 1), 1);
    assert_int_equal(bgroup_room(&g), 0); /* delivered, not yet acknowledged */
    assert_int_equal(bgroup_acked(&g, 1), 0);
    assert_int_equal(bgroup_room(&g), 1);
    assert_int_equal(bgroup_acked(&g, 0), -1); /* backwards */
    assert_int_equal(bgroup_acked(&g, 3), -1); /* more than posted */
    assert_int_equal(g.acked, 1);
    assert_int_equal(bgroup_acked(&g, 2), 0);
    assert_int_equal(bgroup_room(&g), 2);
    bgroup_posted(&g); /* acknowledged first, delivered later */
    assert_int_equal(bgroup_acked(&g, 3), 0);
    assert_int_equal(bgroup_room(&g), 1);
    assert_int_equal(bgroup_delivered(&g, 2), 1);
    assert_int_equal(bgroup_room(&g), 2);
    bgroup_free(&g);
}

int test_bgroup_run(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bgroup_in_order),
        cmocka_unit_test(test_bgroup_acks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
