/* testsql.h -- SQL helpers for unit tests that look into a database file
 * directly (set-up and checks). Include after <cmocka.h>. */
#ifndef CHAT_TESTS_TESTSQL_H
#define CHAT_TESTS_TESTSQL_H

#include <sqlite3.h>
#include <stdint.h>

/* Run sql on the database file; fail the test on any error. */
static inline void sql_exec(const char *path, const char *sql) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* The first column of the first row of sql, as an integer. */
static inline int64_t sql_int(const char *path, const char *sql) {
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#endif
