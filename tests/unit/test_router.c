/*
 * test_router.c -- unit tests for the local user -> connections router
 * (src/server/router.{h,c}).
 *
 * Covers: an empty router, one node, several nodes (devices) for one user
 * listed newest first via router_first / ->next with consistent ->prev links,
 * deleting the middle, head and tail node, deleting the last node (the user
 * disappears: router_first NULL, users table empty), deleting a node that is
 * not in the router (user 0, fresh or already deleted) as a no-op, re-adding
 * a deleted node, the `nodes` counter throughout, users independent of each
 * other, and 10,000 users with 1..4 devices each removed in a scrambled
 * order and checked against a reference model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "server/router.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Check that user's list is exactly want[0..n) (first to last) with
 * consistent prev/next links and user fields. n == 0: user absent. */
static void check_list(const router *r, uint32_t user, router_node *const *want,
                       size_t n) {
    router_node *p = router_first(r, user);
    if (n == 0) {
        assert_null(p);
        return;
    }
    assert_non_null(p);
    assert_null(p->prev);
    router_node *prev = NULL;
    size_t i = 0;
    for (; p; p = p->next, i++) {
        if (i >= n) fail_msg("user %u: list longer than %zu", user, n);
        assert_ptr_equal(p, want[i]);
        assert_ptr_equal(p->prev, prev);
        assert_int_equal(p->user, user);
        prev = p;
    }
    assert_int_equal(i, n);
}

static void check_detached(const router_node *n) {
    assert_int_equal(n->user, 0);
    assert_null(n->prev);
    assert_null(n->next);
}


/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_empty(void **state) {
    (void)state;
    router r;
    router_init(&r);
    assert_int_equal(r.nodes, 0);
    assert_null(router_first(&r, 1));
    assert_null(router_first(&r, 0));
    assert_null(router_first(&r, UINT32_MAX));
    router_free(&r);
}

static void test_single_node(void **state) {
    (void)state;
    router r;
    router_init(&r);
    router_node a;
    memset(&a, 0x5A, sizeof a); /* garbage links: router_add must set them */
    assert_int_equal(router_add(&r, &a, 7), 0);
    assert_int_equal(r.nodes, 1);
    router_node *const want[] = {&a};
    check_list(&r, 7, want, 1);
    assert_null(a.next);
    assert_null(router_first(&r, 8));
    assert_null(router_first(&r, 6));
    router_del(&r, &a);
    check_detached(&a);
    assert_int_equal(r.nodes, 0);
    assert_null(router_first(&r, 7));
    assert_int_equal(r.users.count, 0);
    router_free(&r);
}

static void test_devices_newest_first(void **state) {
    (void)state;
    router r;
    router_init(&r);
    router_node n[5];
    memset(n, 0, sizeof n);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(router_add(&r, &n[i], 1000), 0);
        assert_int_equal(r.nodes, (uint64_t)i + 1);
        assert_ptr_equal(router_first(&r, 1000), &n[i]);
    }
    router_node *const want[] = {&n[4], &n[3], &n[2], &n[1], &n[0]};
    check_list(&r, 1000, want, 5);
    assert_int_equal(r.users.count, 1);
    router_free(&r);
}

/* Build users 1..3 with 3 devices each: a[0..2] for user 1 etc. */
static void build3(router *r, router_node a[3], router_node b[3], router_node c[3]) {
    router_init(r);
    memset(a, 0, 3 * sizeof *a);
    memset(b, 0, 3 * sizeof *b);
    memset(c, 0, 3 * sizeof *c);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(router_add(r, &a[i], 1), 0);
        assert_int_equal(router_add(r, &b[i], 2), 0);
        assert_int_equal(router_add(r, &c[i], 3), 0);
    }
    assert_int_equal(r->nodes, 9);
}

static void test_delete_middle(void **state) {
    (void)state;
    router r;
    router_node a[3], b[3], c[3];
    build3(&r, a, b, c);
    router_del(&r, &b[1]); /* list for user 2 is b2, b1, b0 */
    check_detached(&b[1]);
    assert_int_equal(r.nodes, 8);
    router_node *const want[] = {&b[2], &b[0]};
    check_list(&r, 2, want, 2);
    /* Other users untouched. */
    router_node *const wa[] = {&a[2], &a[1], &a[0]};
    router_node *const wc[] = {&c[2], &c[1], &c[0]};
    check_list(&r, 1, wa, 3);
    check_list(&r, 3, wc, 3);
    router_free(&r);
}

static void test_delete_head(void **state) {
    (void)state;
    router r;
    router_node a[3], b[3], c[3];
    build3(&r, a, b, c);
    router_del(&r, &b[2]);
    check_detached(&b[2]);
    assert_int_equal(r.nodes, 8);
    router_node *const want[] = {&b[1], &b[0]};
    check_list(&r, 2, want, 2);
    /* Head again. */
    router_del(&r, &b[1]);
    router_node *const want2[] = {&b[0]};
    check_list(&r, 2, want2, 1);
    assert_int_equal(r.nodes, 7);
    router_node *const wa[] = {&a[2], &a[1], &a[0]};
    check_list(&r, 1, wa, 3);
    router_free(&r);
}

static void test_delete_tail(void **state) {
    (void)state;
    router r;
    router_node a[3], b[3], c[3];
    build3(&r, a, b, c);
    router_del(&r, &b[0]);
    check_detached(&b[0]);
    assert_int_equal(r.nodes, 8);
    router_node *const want[] = {&b[2], &b[1]};
    check_list(&r, 2, want, 2);
    assert_null(b[1].next);
    router_del(&r, &b[1]);
    router_node *const want2[] = {&b[2]};
    check_list(&r, 2, want2, 1);
    assert_null(b[2].next);
    router_node *const wc[] = {&c[2], &c[1], &c[0]};
    check_list(&r, 3, wc, 3);
    router_free(&r);
}

static void test_delete_last_removes_user(void **state) {
    (void)state;
    router r;
    router_node a[3], b[3], c[3];
    build3(&r, a, b, c);
    assert_int_equal(r.users.count, 3);
    router_del(&r, &b[1]);
    router_del(&r, &b[0]);
    router_del(&r, &b[2]);
    assert_null(router_first(&r, 2));
    assert_int_equal(r.users.count, 2);
    assert_int_equal(r.nodes, 6);
    for (int i = 0; i < 3; i++) check_detached(&b[i]);
    /* The user can come back. */
    assert_int_equal(router_add(&r, &b[1], 2), 0);
    router_node *const want[] = {&b[1]};
    check_list(&r, 2, want, 1);
    assert_int_equal(r.users.count, 3);
    assert_int_equal(r.nodes, 7);
    /* Remove everything. */
    for (int i = 0; i < 3; i++) {
        router_del(&r, &a[i]);
        router_del(&r, &c[i]);
    }
    router_del(&r, &b[1]);
    assert_int_equal(r.nodes, 0);
    assert_int_equal(r.users.count, 0);
    for (uint32_t u = 1; u <= 3; u++) assert_null(router_first(&r, u));
    router_free(&r);
}

static void test_delete_not_in_router(void **state) {
    (void)state;
    router r;
    router_node a[3], b[3], c[3];
    build3(&r, a, b, c);

    /* A fresh node (user 0) is ignored, even with garbage links. */
    router_node stray;
    memset(&stray, 0, sizeof stray);
    router_del(&r, &stray);
    assert_int_equal(r.nodes, 9);
    stray.prev = &a[1];
    stray.next = &a[0];
    router_del(&r, &stray);
    assert_int_equal(r.nodes, 9);
    router_node *const wa[] = {&a[2], &a[1], &a[0]};
    check_list(&r, 1, wa, 3);

    /* Deleting a node twice: the second call is a no-op. */
    router_del(&r, &a[1]);
    assert_int_equal(r.nodes, 8);
    router_del(&r, &a[1]);
    assert_int_equal(r.nodes, 8);
    router_node *const wa2[] = {&a[2], &a[0]};
    check_list(&r, 1, wa2, 2);
    router_node *const wb[] = {&b[2], &b[1], &b[0]};
    check_list(&r, 2, wb, 3);

    /* A deleted node can be added again, to a different user. */
    assert_int_equal(router_add(&r, &a[1], 2), 0);
    router_node *const wb2[] = {&a[1], &b[2], &b[1], &b[0]};
    check_list(&r, 2, wb2, 4);
    assert_int_equal(r.nodes, 9);
    router_free(&r);
}

/* Many users with several devices each, against a reference model. */
static void test_many_users(void **state) {
    (void)state;
    enum { USERS = 10000, MAXDEV = 4 };
    router_node *nodes = calloc((size_t)USERS * MAXDEV, sizeof *nodes);
    int *alive = calloc((size_t)USERS * MAXDEV, sizeof *alive);
    unsigned *order = malloc((size_t)USERS * MAXDEV * sizeof *order);
    assert_non_null(nodes);
    assert_non_null(alive);
    assert_non_null(order);
    router r;
    router_init(&r);

    /* User u (1-based) has ndev(u) devices; ids spread over the key space. */
#define NDEV(u) (1 + (u) % MAXDEV)
#define UID(u) ((uint32_t)((u) + 1) * 2654435761u) /* bijective, non-zero */
    uint64_t total = 0;
    /* Interleave: device d of every user, then device d+1, ... */
    for (int d = 0; d < MAXDEV; d++) {
        for (int u = 0; u < USERS; u++) {
            if (d >= NDEV(u)) continue;
            size_t idx = (size_t)u * MAXDEV + d;
            assert_int_equal(router_add(&r, &nodes[idx], UID(u)), 0);
            alive[idx] = 1;
            total++;
        }
    }
    assert_int_equal(r.nodes, total);
    assert_int_equal(r.users.count, USERS);

    router_node *want[MAXDEV];
    for (int u = 0; u < USERS; u++) {
        size_t n = 0;
        for (int d = NDEV(u) - 1; d >= 0; d--) want[n++] = &nodes[(size_t)u * MAXDEV + d];
        check_list(&r, UID(u), want, n);
    }

    /* Remove in a scrambled order, checking samples along the way. */
    size_t cnt = 0;
    for (int u = 0; u < USERS; u++)
        for (int d = 0; d < NDEV(u); d++) order[cnt++] = (unsigned)(u * MAXDEV + d);
    uint32_t seed = 99;
    for (size_t i = cnt - 1; i > 0; i--) {
        size_t j = rng_next(&seed) % (i + 1);
        unsigned t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < cnt; i++) {
        size_t idx = order[i];
        int u = (int)(idx / MAXDEV);
        router_del(&r, &nodes[idx]);
        alive[idx] = 0;
        total--;
        check_detached(&nodes[idx]);
        if (r.nodes != total) fail_msg("nodes %llu, expected %llu",
                                       (unsigned long long)r.nodes,
                                       (unsigned long long)total);
        /* The touched user's list is exactly its live devices, newest first. */
        size_t n = 0;
        for (int d = NDEV(u) - 1; d >= 0; d--)
            if (alive[(size_t)u * MAXDEV + d]) want[n++] = &nodes[(size_t)u * MAXDEV + d];
        check_list(&r, UID(u), want, n);
        if (i % 2000 == 0) {
            size_t users_left = 0;
            for (int v = 0; v < USERS; v++) {
                n = 0;
                for (int d = NDEV(v) - 1; d >= 0; d--)
                    if (alive[(size_t)v * MAXDEV + d])
                        want[n++] = &nodes[(size_t)v * MAXDEV + d];
                check_list(&r, UID(v), want, n);
                users_left += n > 0;
            }
            assert_int_equal(r.users.count, users_left);
        }
    }
#undef NDEV
#undef UID
    assert_int_equal(r.nodes, 0);
    assert_int_equal(r.users.count, 0);
    router_free(&r);
    free(nodes);
    free(alive);
    free(order);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_single_node),
        cmocka_unit_test(test_devices_newest_first),
        cmocka_unit_test(test_delete_middle),
        cmocka_unit_test(test_delete_head),
        cmocka_unit_test(test_delete_tail),
        cmocka_unit_test(test_delete_last_removes_user),
        cmocka_unit_test(test_delete_not_in_router),
        cmocka_unit_test(test_many_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
