/*
 * test_auth.c -- unit tests for the login checker (src/server/auth.[ch]).
 *
 * A real libuv loop and thread pool, a fresh data directory per test with
 * accounts made by accounts_add. Covers: right password, wrong password,
 * unknown id (ENOENT, after a real Argon2id check: it takes as long as a
 * wrong password), the bound on checks running at once and waiting
 * (AUTH_EBUSY past it, and nothing lost: every accepted check answers
 * exactly once), a password longer than the limit, the hash read on a
 * pool thread (never the loop's), and checks the thread pool refuses:
 * answered ACCOUNTS_ENOMEM on a later loop turn, never inside auth_check,
 * with nothing left on the loop afterwards.
 *
 * This binary is linked with -Wl,--wrap=uv_queue_work,--wrap=accounts_hash
 * (Makefile): auth.c's calls go through the __wrap_ versions below, which
 * refuse fail_queue calls to the pool and note which threads read hashes.
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

int __real_uv_queue_work(uv_loop_t *loop, uv_work_t *req, uv_work_cb work,
                         uv_after_work_cb after);
int __real_accounts_hash(accounts *a, uint32_t id, char *out);

static int fail_queue;          /* refuse this many uv_queue_work calls */
static uv_thread_t loop_thread; /* the test's (the loop's) thread */
static int hash_reads, hash_reads_on_loop; /* pool threads write, under: */
static uv_mutex_t hash_mu;

int __wrap_uv_queue_work(uv_loop_t *loop, uv_work_t *req, uv_work_cb work,
                         uv_after_work_cb after) {
    if (fail_queue > 0) {
        fail_queue--;
        return UV_ENOMEM;
    }
    return __real_uv_queue_work(loop, req, work, after);
}

int __wrap_accounts_hash(accounts *a, uint32_t id, char *out) {
    uv_thread_t self = uv_thread_self();
    uv_mutex_lock(&hash_mu);
    hash_reads++;
    hash_reads_on_loop += uv_thread_equal(&self, &loop_thread);
    uv_mutex_unlock(&hash_mu);
    return __real_accounts_hash(a, id, out);
}

typedef struct tctx {
    char dir[64];
    uv_loop_t loop;
} tctx;

static int setup(void **state) {
    tctx *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/test_auth.XXXXXX");
    if (!mkdtemp(t->dir)) return -1;
    if (uv_loop_init(&t->loop)) return -1;
    loop_thread = uv_thread_self();
    fail_queue = 0;
    hash_reads = hash_reads_on_loop = 0;
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
    /* nothing of auth's is left on the loop (a deferred answer's timer
     * closes itself) */
    if (uv_loop_close(&t->loop)) return -1;
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

/* The hash is read on the pool, never on the loop thread. */
static void test_hash_read_off_the_loop(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 2, 8);
    results r = {0};
    tok k[3] = {{&r, 0}, {&r, 1}, {&r, 2}};
    assert_int_equal(auth_check(a, 1, (const uint8_t *)"one", 3, done, &k[0]), 0);
    assert_int_equal(auth_check(a, 2, (const uint8_t *)"two", 3, done, &k[1]), 0);
    assert_int_equal(auth_check(a, 7, (const uint8_t *)"one", 3, done, &k[2]), 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.result[0], ACCOUNTS_OK);
    assert_int_equal(r.result[1], ACCOUNTS_OK);
    assert_int_equal(r.result[2], ACCOUNTS_ENOENT);
    assert_int_equal(hash_reads, 3);
    assert_int_equal(hash_reads_on_loop, 0);
    auth_close(a);
}

/* The pool refuses a check: the answer (ACCOUNTS_ENOMEM) comes on the next
 * loop turn, not inside auth_check; the next check works. */
static void test_refused_by_pool_answers_later(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 2, 8);
    results r = {0};
    tok k[2] = {{&r, 0}, {&r, 1}};
    fail_queue = 1;
    assert_int_equal(auth_check(a, 1, (const uint8_t *)"one", 3, done, &k[0]), 0);
    assert_int_equal(fail_queue, 0);
    assert_int_equal(r.n, 0); /* not inside auth_check */
    assert_int_equal(auth_running(a) + auth_queued(a), 0);
    uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.result[0], ACCOUNTS_ENOMEM);
    assert_int_equal(auth_check(a, 1, (const uint8_t *)"one", 3, done, &k[1]), 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.result[1], ACCOUNTS_OK);
    auth_close(a);
}

/* A waiting check the pool refuses when a slot frees: answered on a later
 * turn too, after the one that ran; the others are unaffected. */
static void test_refused_waiting_check(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 1, 8);
    results r = {0};
    tok k[3] = {{&r, 0}, {&r, 1}, {&r, 2}};
    assert_int_equal(auth_check(a, 1, (const uint8_t *)"one", 3, done, &k[0]), 0);
    assert_int_equal(auth_check(a, 2, (const uint8_t *)"two", 3, done, &k[1]), 0);
    assert_int_equal(auth_check(a, 2, (const uint8_t *)"one", 3, done, &k[2]), 0);
    assert_int_equal(auth_running(a), 1);
    assert_int_equal(auth_queued(a), 2);
    fail_queue = 1; /* check 1, started when check 0 is done */
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.order[0], 0);
    assert_int_equal(r.result[0], ACCOUNTS_OK);
    assert_int_equal(r.result[1], ACCOUNTS_ENOMEM);
    assert_int_equal(r.result[2], ACCOUNTS_EBADPW);
    assert_int_equal(auth_running(a) + auth_queued(a), 0);
    auth_close(a);
}

int main(void) {
    uv_mutex_init(&hash_mu);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_right_wrong_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_costs_a_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_running_and_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_read_off_the_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_by_pool_answers_later,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_waiting_check, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
