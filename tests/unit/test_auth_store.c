/*
 * test_auth_store.c -- unit tests for the login checker with a store that
 * keeps the accounts (auth_open_store, src/server/auth.[ch]; the cluster
 * store in production).
 *
 * The store here is a fake backend (its operations table has `account`
 * only, store_backend.h): store_account notes the request, and an idle
 * handle answers it on a later loop turn, as a real store does, by calling
 * auth_store_done as the server's account_done does. Its accounts: 1
 * ("one"), 2 ("two"); user 50 answers STORE_EIO (Redis down), 51
 * STORE_ENOMEM, 52 a value too long to be a hash; any other: no account.
 *
 * This binary is linked with -Wl,--wrap=uv_queue_work (Makefile): the
 * comparisons handed to the pool are counted.
 *
 * Covers: right, wrong, unknown (after a real Argon2id check, against the
 * dummy), nothing read from SQLite (no data directory at all), the store
 * unreachable -> AUTH_ESTORE at once (no comparison), ENOMEM and a bad
 * hash, the slot bound (at most max_running reads and comparisons at
 * once, the others wait in order and go on when a read fails), answers
 * never inside auth_check, and nothing left on the loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "server/accounts.h"
#include "server/auth.h"
#include "server/store_backend.h"

/* ---- comparisons counted (-Wl,--wrap=uv_queue_work, Makefile) ---------- */

int __real_uv_queue_work(uv_loop_t *loop, uv_work_t *req, uv_work_cb work,
                         uv_after_work_cb after);

static int queued_work; /* comparisons handed to the pool */

int __wrap_uv_queue_work(uv_loop_t *loop, uv_work_t *req, uv_work_cb work,
                         uv_after_work_cb after) {
    queued_work++;
    return __real_uv_queue_work(loop, req, work, after);
}

/* ---- the fake store ---------------------------------------------------- */

#define MAXQ 16

typedef struct fake {
    store base;                 /* first (store_backend.h) */
    uv_idle_t idle;
    uint32_t users[MAXQ];
    void *tokens[MAXQ];
    int n;                      /* asked, not answered */
    int calls, max_out;         /* store_account calls; most at once */
    char h1[ACCOUNTS_HASH_MAX], h2[ACCOUNTS_HASH_MAX];
} fake;

static void fake_answer(uv_idle_t *h) {
    fake *f = h->data;
    /* (the answers may ask again: those wait for the next turn) */
    int n = f->n;
    uint32_t users[MAXQ];
    void *tokens[MAXQ];
    memcpy(users, f->users, sizeof users);
    memcpy(tokens, f->tokens, sizeof tokens);
    f->n = 0;
    (void)uv_idle_stop(h); /* (cannot fail) */
    static char longv[ACCOUNTS_HASH_MAX + 10];
    memset(longv, '$', sizeof longv);
    for (int i = 0; i < n; i++) {
        uint32_t u = users[i];
        if (u == 1) auth_store_done(tokens[i], f->h1, strlen(f->h1), 0);
        else if (u == 2) auth_store_done(tokens[i], f->h2, strlen(f->h2), 0);
        else if (u == 50) auth_store_done(tokens[i], NULL, 0, STORE_EIO);
        else if (u == 51) auth_store_done(tokens[i], NULL, 0, STORE_ENOMEM);
        else if (u == 52)
            auth_store_done(tokens[i], longv, sizeof longv, STORE_OK);
        else auth_store_done(tokens[i], NULL, 0, STORE_OK);
    }
}

static void fake_account(store *s, uint32_t user, void *token) {
    fake *f = (fake *)s;
    assert_true(f->n < MAXQ);
    f->users[f->n] = user;
    f->tokens[f->n++] = token;
    f->calls++;
    if (f->n > f->max_out) f->max_out = f->n;
    assert_int_equal(uv_idle_start(&f->idle, fake_answer), 0);
}

static const store_ops fake_ops = {.account = fake_account};

typedef struct tctx {
    uv_loop_t loop;
    fake f;
} tctx;

static int setup(void **state) {
    tctx *t = calloc(1, sizeof *t);
    if (!t || uv_loop_init(&t->loop)) return -1;
    t->f.base.ops = &fake_ops;
    if (uv_idle_init(&t->loop, &t->f.idle)) return -1;
    t->f.idle.data = &t->f;
    if (accounts_make_hash("one", 3, t->f.h1) ||
        accounts_make_hash("two", 3, t->f.h2))
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state) {
    tctx *t = *state;
    uv_close((uv_handle_t *)&t->f.idle, NULL);
    (void)uv_run(&t->loop, UV_RUN_DEFAULT); /* (only the close is left) */
    /* nothing of auth's is left on the loop */
    if (uv_loop_close(&t->loop)) return -1;
    free(t);
    return 0;
}

#define MAXR 16
typedef struct results {
    int n;
    int order[MAXR];
    int result[MAXR];
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
    int r = auth_open_store(&a, &t->loop, &t->f.base, running, queued, err,
                            sizeof err);
    if (r) fail_msg("auth_open_store: %d %s", r, err);
    return a;
}

/* Run the loop until every check answered (the idle handle keeps it
 * going only while a read is unanswered). */
static void run_until(tctx *t, results *r, int n) {
    while (r->n < n) (void)uv_run(&t->loop, UV_RUN_ONCE);
}

static int check(auth *a, uint32_t id, const char *pw, tok *k) {
    return auth_check(a, id, (const uint8_t *)pw, strlen(pw), done, k);
}

static void test_right_wrong_unknown(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 2, 8);
    results r = {0};
    tok k[4] = {{&r, 0}, {&r, 1}, {&r, 2}, {&r, 3}};
    assert_int_equal(check(a, 1, "one", &k[0]), 0);
    assert_int_equal(check(a, 2, "one", &k[1]), 0);
    assert_int_equal(check(a, 9, "one", &k[2]), 0);
    assert_int_equal(check(a, 2, "two", &k[3]), 0);
    assert_int_equal(r.n, 0); /* answers come later, on the loop */
    assert_int_equal(t->f.calls, 2); /* two slots: two reads at once */
    run_until(t, &r, 4);
    assert_int_equal(r.result[0], ACCOUNTS_OK);
    assert_int_equal(r.result[1], ACCOUNTS_EBADPW);
    assert_int_equal(r.result[2], ACCOUNTS_ENOENT);
    assert_int_equal(r.result[3], ACCOUNTS_OK);
    assert_int_equal(t->f.calls, 4);
    assert_true(t->f.max_out <= 2);
    assert_int_equal(auth_running(a) + auth_queued(a), 0);
    auth_close(a);
}

/* An unknown id costs a comparison (against the dummy), as a wrong
 * password does. */
static void test_unknown_costs_a_check(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 1, 8);
    results r = {0};
    tok k[2] = {{&r, 0}, {&r, 1}};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(check(a, 9, "x", &k[0]), 0);
    run_until(t, &r, 1);
    uint64_t unknown = uv_hrtime() - t0;
    t0 = uv_hrtime();
    assert_int_equal(check(a, 1, "x", &k[1]), 0);
    run_until(t, &r, 2);
    uint64_t wrong = uv_hrtime() - t0;
    assert_int_equal(r.result[0], ACCOUNTS_ENOENT);
    assert_int_equal(r.result[1], ACCOUNTS_EBADPW);
    assert_true(unknown > wrong / 4);
    auth_close(a);
}

/* The store fails: answered at once (no Argon2id run), each with its
 * code; the slot goes to the next check, which still works. */
static void test_store_failures(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 1, 8);
    results r = {0};
    tok k[4] = {{&r, 0}, {&r, 1}, {&r, 2}, {&r, 3}};
    assert_int_equal(check(a, 50, "one", &k[0]), 0);
    assert_int_equal(check(a, 51, "one", &k[1]), 0);
    assert_int_equal(check(a, 52, "one", &k[2]), 0);
    assert_int_equal(check(a, 1, "one", &k[3]), 0);
    assert_int_equal(auth_running(a), 1);
    assert_int_equal(auth_queued(a), 3);
    queued_work = 0;
    run_until(t, &r, 3);
    assert_int_equal(queued_work, 0); /* three failures, no comparison */
    run_until(t, &r, 4);
    assert_int_equal(queued_work, 1);
    assert_int_equal(r.result[0], AUTH_ESTORE);
    assert_int_equal(r.result[1], ACCOUNTS_ENOMEM);
    assert_int_equal(r.result[2], ACCOUNTS_EDB);
    assert_int_equal(r.result[3], ACCOUNTS_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(r.order[i], i); /* FIFO */
    assert_int_equal(t->f.max_out, 1);
    auth_close(a);
}

/* The queue bound holds with a store too. */
static void test_bounded_queue(void **state) {
    tctx *t = *state;
    auth *a = open_auth(t, 1, 2);
    results r = {0};
    tok k[4] = {{&r, 0}, {&r, 1}, {&r, 2}, {&r, 3}};
    for (int i = 0; i < 3; i++) assert_int_equal(check(a, 1, "one", &k[i]), 0);
    assert_int_equal(check(a, 1, "one", &k[3]), AUTH_EBUSY);
    run_until(t, &r, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(r.result[i], ACCOUNTS_OK);
    auth_close(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_right_wrong_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_costs_a_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_queue, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
