/*
 * test_groups.c -- unit tests for groups in memory (src/server/groups.{h,c}).
 *
 * Covers: create, add (idempotent, admin raised), the user index both
 * ways, remove keeping the join order, the longest-standing member made
 * admin when the last admin leaves, the last member's leaving reported,
 * drop, rename cut at 64 bytes, and a random run of adds and removes over
 * many groups checked by groups_check after every step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <string.h>

#include "server/groups.h"

static void test_create_add_remove(void **state) {
    (void)state;
    groups gs;
    groups_init(&gs);
    assert_int_equal(groups_create(&gs, 7, "team", 4), 0);
    chatgroup *g = groups_get(&gs, 7);
    assert_non_null(g);
    assert_null(groups_get(&gs, 8));
    assert_null(groups_get(&gs, 0));
    assert_int_equal(groups_add(&gs, g, 1, 1, 100), 0);
    assert_int_equal(groups_add(&gs, g, 2, 0, 100), 0);
    assert_int_equal(groups_add(&gs, g, 3, 0, 150), 0);
    assert_int_equal(groups_add(&gs, g, 2, 0, 999), 0); /* already in */
    assert_int_equal(g->n, 3);
    assert_int_equal(g->m[1].joined, 100);
    assert_int_equal(groups_member(g, 3), 2);
    assert_int_equal(groups_member(g, 4), -1);
    const ugroups *u = groups_of(&gs, 2);
    assert_non_null(u);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->ids[0], 7);
    assert_true(groups_check(&gs));
    /* the only admin leaves: the longest-standing member (2) is one */
    assert_int_equal(groups_remove(&gs, g, 1), 0);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->m[0].user, 2);
    assert_int_equal(g->m[0].admin, 1);
    assert_int_equal(g->m[1].admin, 0);
    assert_null(groups_of(&gs, 1));
    assert_int_equal(groups_remove(&gs, g, 99), 0); /* not a member */
    assert_true(groups_check(&gs));
    assert_int_equal(groups_remove(&gs, g, 3), 0);
    assert_int_equal(groups_remove(&gs, g, 2), 1); /* the last: empty */
    groups_drop(&gs, g);
    assert_null(groups_get(&gs, 7));
    assert_true(groups_check(&gs));
    groups_free(&gs);
}

static void test_rename_and_admin(void **state) {
    (void)state;
    groups gs;
    groups_init(&gs);
    char long_name[100];
    memset(long_name, 'x', sizeof long_name);
    assert_int_equal(groups_create(&gs, 1, long_name, sizeof long_name), 0);
    chatgroup *g = groups_get(&gs, 1);
    assert_int_equal(g->namelen, GROUPS_NAME_MAX);
    groups_rename(g, "b", 1);
    assert_int_equal(g->namelen, 1);
    assert_memory_equal(g->name, "b", 1);
    assert_int_equal(groups_add(&gs, g, 5, 0, 0), 0);
    assert_int_equal(groups_add(&gs, g, 5, 1, 0), 0); /* raised */
    assert_int_equal(g->m[0].admin, 1);
    groups_free(&gs); /* frees a non-empty group too */
}

static void test_random_memberships(void **state) {
    (void)state;
    groups gs;
    groups_init(&gs);
    uint32_t x = 12345;
    for (uint32_t id = 1; id <= 20; id++)
        assert_int_equal(groups_create(&gs, id, "g", 1), 0);
    for (int step = 0; step < 5000; step++) {
        x = x * 1103515245u + 12345u;
        uint32_t id = 1 + (x >> 8) % 20, user = 1 + (x >> 16) % 50;
        chatgroup *g = groups_get(&gs, id);
        if (!g) {
            assert_int_equal(groups_create(&gs, id, "g", 1), 0);
            g = groups_get(&gs, id);
        }
        if ((x >> 4) & 1) {
            assert_int_equal(groups_add(&gs, g, user, g->n == 0, 0), 0);
        } else if (groups_remove(&gs, g, user)) {
            groups_drop(&gs, g);
        }
        if (step % 97 == 0) assert_true(groups_check(&gs));
    }
    assert_true(groups_check(&gs));
    groups_free(&gs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_add_remove),
        cmocka_unit_test(test_rename_and_admin),
        cmocka_unit_test(test_random_memberships),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
