/*
 * test_auth.c -- unit tests for the login checker (src/server/auth.[ch]).
 *
 * A real libuv loop and thread pool, a fresh data directory per test with
 * accounts made by accounts_add. Covers: right password, wrong password,
 * unknown id (ENOENT, after a real Argon2id check: it takes as long as a
 * wrong password), the bound on checks running at once and waiting
 * (AUTH_EBUSY past it, and nothing lost: every accepted check answers
 * exactly once), and a password longer than the
 * limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "server/accounts.h"
#include "server/auth.h"

typedef struct tctx {
    char dir[64];
    uv_loop_t loop;
} tctx;

static int setup(void **state) {
    tctx *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/test_auth.XXXXXX");
    if (!mkdtemp(t->dir)) return -1;
    uv_loop_init(&t->loop);
    accounts *a;
    char err[256];
    if (accounts_open(&a, t->dir, err, sizeof err)) return -1;
    if (accounts_add(a, 1, "one", 3) || accounts_add(a, 2, "two", 3))
        return -1;
    accounts_close(a);
    *state = t;
    return 0;
}

static int teardown(void **state) {
    tctx *t = *state;
    uv_loop_close(&t->loop);
    rm_dir(t->dir);
    free(t);
    return 0;
}

#define MAXR 16
typedef struct results {
    int n;
    int order[MAXR];   /* token index per answer, in order of answers */
    int result[MAXR];  /* by token index */
} results;

typedef struct tok {
    results *r;
    int idx;
} tok;

static void done(void *token, int result) {
    tok *k = token;
    k->r->order[k->r->n++] = k->idx;
    k->r->result[k->idx] = result;
}

static auth *open_auth(tctx *t, size_t running, size_t queued) {
    auth *a;
    char err[256];
    int r = auth_open(&a, &t->loop, t->dir, running, queued, err, sizeof err);
    if (r) fail_msg("auth_open: %d %s", r, err);
    return a;
}

static void test_right_wrong_unknown(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 2, 8);
    results r = {0};
    tok k[3] = {{&r, 0}, {&r, 1}, {&r, 2}};
    assert_int_equal(auth_check(a, 1, (const uint8_t *)"one", 3, done, &k[0]), 0);
    assert_int_equal(auth_check(a, 2, (const uint8_t *)"one", 3, done, &k[1]), 0);
    assert_int_equal(auth_check(a, 9, (const uint8_t *)"one", 3, done, &k[2]), 0);
    assert_int_equal(r.n, 0); /* answers come later, on the loop */
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.result[0], ACCOUNTS_OK);
    assert_int_equal(r.result[1], ACCOUNTS_EBADPW);
    assert_int_equal(r.result[2], ACCOUNTS_ENOENT);
    assert_int_equal(auth_running(a) + auth_queued(a), 0);
    auth_close(a);
}

/* An unknown id is checked against the dummy hash: it costs about what a
 * wrong password costs (both run Argon2id; neither is instant). */
static void test_unknown_costs_a_check(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 1, 8);
    results r = {0};
    tok k[2] = {{&r, 0}, {&r, 1}};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(auth_check(a, 9, (const uint8_t *)"x", 1, done, &k[0]), 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uint64_t unknown = uv_hrtime() - t0;
    t0 = uv_hrtime();
    assert_int_equal(auth_check(a, 1, (const uint8_t *)"x", 1, done, &k[1]), 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uint64_t wrong = uv_hrtime() - t0;
    assert_int_equal(r.result[0], ACCOUNTS_ENOENT);
    assert_int_equal(r.result[1], ACCOUNTS_EBADPW);
    /* Both are Argon2id runs (tens of ms), not a table miss (microseconds). */
    assert_true(unknown > wrong / 4);
    auth_close(a);
}

static void test_bounded_running_and_queue(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 2, 3);
    results r = {0};
    tok k[6];
    for (int i = 0; i < 6; i++) k[i] = (tok){&r, i};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(auth_check(a, 1, (const uint8_t *)(i % 2 ? "no" : "one"),
                                    i % 2 ? 2 : 3, done, &k[i]), 0);
        assert_true(auth_running(a) <= 2);
    }
    assert_int_equal(auth_running(a), 2);
    assert_int_equal(auth_queued(a), 3);
    assert_int_equal(auth_check(a, 1, (const uint8_t *)"one", 3, done, &k[5]),
                     AUTH_EBUSY);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 5); /* each accepted check answered once */
    for (int i = 0; i < 5; i++)
        assert_int_equal(r.result[i], i % 2 ? ACCOUNTS_EBADPW : ACCOUNTS_OK);
    /* A waiting check cannot answer before both that ran first started:
     * the first answer is one of the two that ran at once. */
    assert_true(r.order[0] == 0 || r.order[0] == 1);
    auth_close(a);
}

static void test_long_password(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 1, 1);
    results r = {0};
    tok k = {&r, 0};
    uint8_t pw[ACCOUNTS_MAX_PASSWORD + 100];
    memset(pw, 'o', sizeof pw);
    assert_int_equal(auth_check(a, 1, pw, sizeof pw, done, &k), 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.result[0], ACCOUNTS_EBADPW);
    auth_close(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_right_wrong_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_costs_a_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_running_and_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_password, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
