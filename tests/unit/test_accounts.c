/*
 * test_accounts.c -- unit tests for the accounts module
 * (src/server/accounts.h, accounts.c) and its migration in store_sqlite.c.
 *
 * Each test gets a fresh temporary directory. Covers: add then verify with
 * the right and a wrong password, the stored hash is an Argon2id string,
 * passwd changes the password, del, list in ascending order, a duplicate
 * add refused, unknown ids (passwd, del, verify), id 0 and an empty
 * password refused, a version-1 database (messages only) upgraded to
 * version 2 with its messages kept, and the store reopening a database
 * that accounts created.
 *
 * Build: see the Makefile (links -lsodium -lsqlite3 -luv -lcmocka).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "testsql.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "common/log.h"
#include "server/accounts.h"
#include "server/store.h"

typedef struct tctx {
    char dir[64];
    char path[96]; /* dir/chat.db */
    accounts *a;
} tctx;

static void t_open(tctx *t) {
    char err[512];
    int r = accounts_open(&t->a, t->dir, err, sizeof err);
    if (r) fail_msg("accounts_open: %d %s", r, err);
}

static int setup(void **state) {
    tctx *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->dir, sizeof t->dir, "/tmp/chat-accounts-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/chat.db", t->dir);
    log_threshold = LOG_WARN;
    *state = t;
    return 0;
}

static int teardown(void **state) {
    tctx *t = *state;
    accounts_close(t->a);
    rm_dir(t->dir);
    free(t);
    return 0;
}


#define PW(s) (s), strlen(s)

static void test_add_verify(void **state) {
    tctx *t = *state;
    t_open(t);
    assert_int_equal(accounts_exists(t->a, 42), 0);
    assert_int_equal(accounts_add(t->a, 42, PW("secret")), ACCOUNTS_OK);
    assert_int_equal(accounts_exists(t->a, 42), 1);
    assert_int_equal(accounts_verify(t->a, 42, PW("secret")), ACCOUNTS_OK);
    assert_int_equal(accounts_verify(t->a, 42, PW("secreT")), ACCOUNTS_EBADPW);
    assert_int_equal(accounts_verify(t->a, 42, PW("secret ")),
                     ACCOUNTS_EBADPW);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM accounts WHERE "
                             "id=42 AND hash LIKE '$argon2id$%' AND "
                             "hash NOT LIKE '%secret%' AND created > 0"), 1);
}

static void test_passwd(void **state) {
    tctx *t = *state;
    t_open(t);
    assert_int_equal(accounts_add(t->a, 7, PW("old")), ACCOUNTS_OK);
    assert_int_equal(accounts_passwd(t->a, 7, PW("new")), ACCOUNTS_OK);
    assert_int_equal(accounts_verify(t->a, 7, PW("new")), ACCOUNTS_OK);
    assert_int_equal(accounts_verify(t->a, 7, PW("old")), ACCOUNTS_EBADPW);
}

static void test_del_and_list_order(void **state) {
    tctx *t = *state;
    t_open(t);
    uint32_t add[] = {300, 2, 4294967295u, 17};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(accounts_add(t->a, add[i], PW("pw")), ACCOUNTS_OK);
    uint32_t *ids;
    size_t n;
    assert_int_equal(accounts_list(t->a, &ids, &n), ACCOUNTS_OK);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 17);
    assert_int_equal(ids[2], 300);
    assert_int_equal(ids[3], 4294967295u);
    free(ids);
    assert_int_equal(accounts_del(t->a, 17), ACCOUNTS_OK);
    assert_int_equal(accounts_verify(t->a, 17, PW("pw")), ACCOUNTS_ENOENT);
    assert_int_equal(accounts_list(t->a, &ids, &n), ACCOUNTS_OK);
    assert_int_equal(n, 3);
    free(ids);
    for (size_t i = 0; i < 4; i++) accounts_del(t->a, add[i]);
    assert_int_equal(accounts_list(t->a, &ids, &n), ACCOUNTS_OK);
    assert_int_equal(n, 0);
    assert_null(ids);
}

static void test_duplicate_and_unknown(void **state) {
    tctx *t = *state;
    t_open(t);
    assert_int_equal(accounts_add(t->a, 5, PW("one")), ACCOUNTS_OK);
    assert_int_equal(accounts_add(t->a, 5, PW("two")), ACCOUNTS_EEXIST);
    assert_int_equal(accounts_verify(t->a, 5, PW("one")), ACCOUNTS_OK);
    assert_int_equal(accounts_passwd(t->a, 6, PW("x")), ACCOUNTS_ENOENT);
    assert_int_equal(accounts_del(t->a, 6), ACCOUNTS_ENOENT);
    assert_int_equal(accounts_verify(t->a, 6, PW("x")), ACCOUNTS_ENOENT);
    assert_int_equal(accounts_add(t->a, 0, PW("x")), ACCOUNTS_EINVAL);
    assert_int_equal(accounts_add(t->a, 8, "", 0), ACCOUNTS_EINVAL);
    assert_int_equal(accounts_exists(t->a, 6), 0);
    assert_non_null(accounts_strerror(ACCOUNTS_ENOENT));
}

/* A database of schema version 1 (messages only) gets the accounts table
 * and keeps its messages; the store then opens it. */
static void test_version1_upgraded(void **state) {
    tctx *t = *state;
    sql_exec(t->path, "PRAGMA journal_mode=WAL;"
             "CREATE TABLE messages(id INTEGER PRIMARY KEY,"
             " receiver INTEGER NOT NULL, sender INTEGER NOT NULL,"
             " type INTEGER NOT NULL, ts INTEGER NOT NULL, body BLOB NOT NULL);"
             "CREATE INDEX messages_by_receiver ON messages(receiver, id);"
             "INSERT INTO messages VALUES(9, 1, 2, 0, 0, x'41');"
             "PRAGMA user_version=1;");
    t_open(t);
    assert_int_equal(accounts_add(t->a, 1, PW("pw")), ACCOUNTS_OK);
    accounts_close(t->a);
    t->a = NULL;
    assert_int_equal(sql_int(t->path, "PRAGMA user_version"),
                     STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM messages"), 1);

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    store_config cfg = {.dir = t->dir, .fsync_full = 1};
    store_callbacks cb = {0};
    store *st;
    char err[512];
    int r = store_open(&st, &loop, &cfg, &cb, err, sizeof err);
    if (r) fail_msg("store_open: %d %s", r, err);
    assert_true(store_next_id(st) > 10); /* (above the clock's floor) */
    store_stop(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_free(st);
    assert_int_equal(uv_loop_close(&loop), 0);
    t_open(t);
    assert_int_equal(accounts_verify(t->a, 1, PW("pw")), ACCOUNTS_OK);
}

/* A newer schema is refused and left alone. */
static void test_newer_refused(void **state) {
    tctx *t = *state;
    sql_exec(t->path, "CREATE TABLE messages(x); PRAGMA user_version=99;");
    char err[512];
    assert_int_equal(accounts_open(&t->a, t->dir, err, sizeof err),
                     ACCOUNTS_EDB);
    assert_null(t->a);
    assert_non_null(strstr(err, "99"));
    assert_int_equal(sql_int(t->path, "PRAGMA user_version"), 99);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_and_list_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_unknown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_version1_upgraded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_newer_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
