/* Unit tests for backup.h's pure parts (the command line, the name a
 * replaced database is kept under) and for the data directory's lock
 * (store_lock_dir, and store_open refusing a locked directory). The copy
 * itself is tested end to end, under load, in
 * tests/integration/test_backup.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "server/backup.h"
#include "server/config.h"
#include "server/store.h"
#include "testutil.h"

#define ARGV(...) \
    (char *[]){__VA_ARGS__}, (int)(sizeof (char *[]){__VA_ARGS__} / sizeof(char *))

/* Parse argv (argv[0] the command) with force_ok; returns the status. */
static int parse(char **argv, int argc, int force_ok, backup_args *a,
                 char *err) {
    err[0] = '\0';
    return backup_parse_args(argc, argv, force_ok, a, err, 256);
}

static void test_args_accepted(void **state) {
    (void)state;
    backup_args a;
    char err[256];
    assert_int_equal(parse(ARGV("backup", "f.db"), 1, &a, err), 0);
    assert_string_equal(a.dir, CONFIG_DEFAULT_DATA_DIR);
    assert_string_equal(a.file, "f.db");
    assert_false(a.force || a.help);

    assert_int_equal(parse(ARGV("backup", "--data-dir", "d", "--force", "f"),
                           1, &a, err), 0);
    assert_string_equal(a.dir, "d");
    assert_string_equal(a.file, "f");
    assert_true(a.force);

    assert_int_equal(parse(ARGV("restore", "f", "--data-dir=/x/y"), 0, &a,
                           err), 0);
    assert_string_equal(a.dir, "/x/y");
    assert_string_equal(a.file, "f");

    /* after "--" a name that starts with '-' is the file; "-" is one too */
    assert_int_equal(parse(ARGV("backup", "--", "--force"), 1, &a, err), 0);
    assert_string_equal(a.file, "--force");
    assert_false(a.force);
    assert_int_equal(parse(ARGV("backup", "-"), 1, &a, err), 0);
    assert_string_equal(a.file, "-");

    /* --help wins over anything after it, errors included */
    assert_int_equal(parse(ARGV("restore", "--help", "--bogus"), 0, &a, err),
                     0);
    assert_true(a.help);
    assert_int_equal(parse(ARGV("restore", "-h"), 0, &a, err), 0);
    assert_true(a.help);
}

static void test_args_refused(void **state) {
    (void)state;
    backup_args a;
    char err[256];
    struct {
        char *argv[5];
        int argc, force_ok;
        const char *says;
    } bad[] = {
        {{"backup"}, 1, 1, "FILE"},
        {{"backup", "--data-dir"}, 2, 1, "--data-dir needs"},
        {{"backup", "--data-dir", "", "f"}, 4, 1, "--data-dir is empty"},
        {{"backup", "--data-dir="}, 2, 1, "FILE"},
        {{"backup", ""}, 2, 1, "FILE"},
        {{"backup", "a", "b"}, 3, 1, "one FILE only"},
        {{"backup", "--bogus", "f"}, 3, 1, "unknown option --bogus"},
        {{"restore", "--force", "f"}, 3, 0, "unknown option --force"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(bad[i].argv, bad[i].argc, bad[i].force_ok, &a,
                               err), -1);
        if (!strstr(err, bad[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err,
                     bad[i].says);
    }
}

static void test_aside_name(void **state) {
    (void)state;
    char out[128];
    assert_int_equal(backup_aside_name(out, sizeof out, "d/chat.db", 0, 0), 0);
    assert_string_equal(out, "d/chat.db.before-restore-19700101T000000Z");
    /* 2026-12-02 01:48:11 UTC, a second restore in that second */
    assert_int_equal(backup_aside_name(out, sizeof out, "chat.db",
                                       1796176091, 2), 0);
    assert_string_equal(out, "chat.db.before-restore-20261202T014811Z-2");
    /* exactly fits, one byte short */
    size_t n = strlen("x.before-restore-19700101T000000Z") + 1;
    assert_int_equal(backup_aside_name(out, n, "x", 0, 0), 0);
    assert_int_equal(backup_aside_name(out, n - 1, "x", 0, 0), -1);
    assert_string_equal(out, "");
}

/* -- the lock ------------------------------------------------------------- */

static int setup_dir(void **state) {
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/test_backup.XXXXXX");
    if (!mkdtemp(dir)) return -1;
    *state = dir;
    return 0;
}

static int teardown_dir(void **state) {
    rm_dir(*state);
    return 0;
}

static void test_lock_is_exclusive_and_let_go_on_close(void **state) {
    const char *dir = *state;
    char err[512], path[128];
    int fd = store_lock_dir(dir, err, sizeof err);
    assert_true(fd >= 0);
    snprintf(path, sizeof path, "%s/chat.lock", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

    /* a second lock, even by this process, is refused with a sentence */
    assert_int_equal(store_lock_dir(dir, err, sizeof err), STORE_EBUSY);
    assert_non_null(strstr(err, "another chat-server uses"));
    assert_non_null(strstr(err, dir));

    close(fd);
    fd = store_lock_dir(dir, err, sizeof err);
    assert_true(fd >= 0);
    close(fd);
}

static void test_lock_of_a_missing_dir_is_an_error(void **state) {
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/missing", (const char *)*state);
    assert_int_equal(store_lock_dir(dir, err, sizeof err), STORE_EIO);
    assert_non_null(strstr(err, "missing/chat.lock"));
}

/* store_open holds the lock while open: a second store, or a restore's
 * lock, on the same directory is refused, and closing lets it go. */
static void test_store_open_holds_the_lock(void **state) {
    const char *dir = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    store_config cfg = {.dir = dir, .fsync_full = 1};
    store_callbacks cb = {0};
    store *st = NULL, *st2 = NULL;
    char err[512];
    int r = store_open(&st, &loop, &cfg, &cb, err, sizeof err);
    if (r) fail_msg("store_open: %d %s", r, err);
    assert_int_equal(store_open(&st2, &loop, &cfg, &cb, err, sizeof err),
                     STORE_EBUSY);
    assert_null(st2);
    assert_non_null(strstr(err, "another chat-server uses"));
    assert_int_equal(store_lock_dir(dir, err, sizeof err), STORE_EBUSY);
    store_stop(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_free(st);
    assert_int_equal(uv_loop_close(&loop), 0);
    int fd = store_lock_dir(dir, err, sizeof err);
    assert_true(fd >= 0);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_accepted),
        cmocka_unit_test(test_args_refused),
        cmocka_unit_test(test_aside_name),
        cmocka_unit_test_setup_teardown(
            test_lock_is_exclusive_and_let_go_on_close, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(test_lock_of_a_missing_dir_is_an_error,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_store_open_holds_the_lock,
                                        setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
