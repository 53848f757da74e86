/*
 * test_metrics.c -- unit tests for src/server/metrics.{h,c} (histograms, the
 * exposition writer) and src/server/procstat.{h,c} (process metrics from
 * /proc, and from fake /proc trees for the odd cases), and an exposition
 * with every kind checked by promtool (Debian package prometheus): any
 * word from `promtool check metrics` fails the test, a missing promtool
 * too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/metrics.h"
#include "server/procstat.h"

/* The buffer's bytes as a C string (a NUL appended, not counted in len). */
static const char *str(buf *b) {
    assert_int_equal(buf_reserve(b, 1, SIZE_MAX), 0);
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

/* The exposition of one test: begun by start(), compared and freed by
 * expect(). */
static buf out_buf;
static metrics_out out_w;

static metrics_out *start(void) {
    out_buf = (buf){0};
    metrics_out_init(&out_w, &out_buf, METRICS_EXPOSITION_MAX);
    return &out_w;
}

static void expect(const char *text) {
    assert_int_equal(metrics_out_status(&out_w), 0);
    assert_string_equal(str(&out_buf), text);
    buf_free(&out_buf);
}

/* ---- Histograms ------------------------------------------------------- */

static void test_hist_boundaries(void **state) {
    (void)state;
    for (int k = 0; k < METRICS_KINDS; k++) {
        unsigned n;
        const uint64_t *le = metrics_bounds((metrics_kind)k, &n);
        assert_true(n >= 2 && n <= METRICS_HIST_BOUNDS);
        for (unsigned i = 0; i < n; i++) {
            if (i) assert_true(le[i - 1] < le[i]);
            /* A value equal to a bound is in that bound's bucket (le is
             * inclusive); one more is in the next. */
            metrics_hist h;
            metrics_hist_init(&h, (metrics_kind)k);
            metrics_hist_observe(&h, le[i]);
            assert_int_equal(h.counts[i], 1);
            metrics_hist_observe(&h, le[i] + 1);
            assert_int_equal(h.counts[i + 1], 1);
            if (le[i] > 0) {
                metrics_hist_observe(&h, le[i] - 1);
                assert_int_equal(h.counts[i],
                                 i == 0 || le[i - 1] < le[i] - 1 ? 2 : 1);
            }
            assert_true(metrics_hist_check(&h));
        }
    }
    metrics_hist h;
    metrics_hist_init(&h, METRICS_LATENCY_US);
    metrics_hist_observe(&h, 0);
    metrics_hist_observe(&h, 50);
    metrics_hist_observe(&h, 51);
    metrics_hist_observe(&h, 10000000);
    metrics_hist_observe(&h, 10000001);
    metrics_hist_observe(&h, UINT64_MAX);
    assert_int_equal(h.counts[0], 2);
    assert_int_equal(h.counts[1], 1);
    assert_int_equal(h.counts[16], 1);
    assert_int_equal(h.counts[17], 2); /* +Inf */
    assert_int_equal(h.count, 6);
    /* sum wraps: 0 + 50 + 51 + 10000000 + 10000001 + (2^64 - 1) */
    assert_int_equal(h.sum, 20000101u);
    assert_true(metrics_hist_check(&h));
}

static void test_hist_render_cumulative(void **state) {
    (void)state;
    metrics_hist h;
    metrics_hist_init(&h, METRICS_COUNT);
    const uint64_t v[] = {1, 1, 3, 4, 5, 70000};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        metrics_hist_observe(&h, v[i]);
    metrics_out *o = start();
    metrics_family(o, "chat_batch_frames", METRICS_HISTOGRAM,
                   "Frames per batch.");
    metrics_hist_render(o, "chat_batch_frames",
                        (const char *[]){"store", "sqlite", NULL}, &h);
    expect("# HELP chat_batch_frames Frames per batch.\n"
           "# TYPE chat_batch_frames histogram\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"1\"} 2\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"4\"} 4\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"16\"} 5\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"64\"} 5\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"256\"} 5\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"1024\"} 5\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"4096\"} 5\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"16384\"} 5\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"65536\"} 5\n"
           "chat_batch_frames_bucket{store=\"sqlite\",le=\"+Inf\"} 6\n"
           "chat_batch_frames_sum{store=\"sqlite\"} 70014\n"
           "chat_batch_frames_count{store=\"sqlite\"} 6\n");
}

static void test_hist_render_seconds(void **state) {
    (void)state;
    metrics_hist h;
    metrics_hist_init(&h, METRICS_LATENCY_US);
    metrics_hist_observe(&h, 2);
    metrics_hist_observe(&h, 1500);
    metrics_out *o = start();
    metrics_family(o, "chat_x_seconds", METRICS_HISTOGRAM, "X.");
    metrics_hist_render(o, "chat_x_seconds", NULL, &h);
    expect("# HELP chat_x_seconds X.\n"
           "# TYPE chat_x_seconds histogram\n"
           "chat_x_seconds_bucket{le=\"0.00005\"} 1\n"
           "chat_x_seconds_bucket{le=\"0.0001\"} 1\n"
           "chat_x_seconds_bucket{le=\"0.00025\"} 1\n"
           "chat_x_seconds_bucket{le=\"0.0005\"} 1\n"
           "chat_x_seconds_bucket{le=\"0.001\"} 1\n"
           "chat_x_seconds_bucket{le=\"0.0025\"} 2\n"
           "chat_x_seconds_bucket{le=\"0.005\"} 2\n"
           "chat_x_seconds_bucket{le=\"0.01\"} 2\n"
           "chat_x_seconds_bucket{le=\"0.025\"} 2\n"
           "chat_x_seconds_bucket{le=\"0.05\"} 2\n"
           "chat_x_seconds_bucket{le=\"0.1\"} 2\n"
           "chat_x_seconds_bucket{le=\"0.25\"} 2\n"
           "chat_x_seconds_bucket{le=\"0.5\"} 2\n"
           "chat_x_seconds_bucket{le=\"1\"} 2\n"
           "chat_x_seconds_bucket{le=\"2.5\"} 2\n"
           "chat_x_seconds_bucket{le=\"5\"} 2\n"
           "chat_x_seconds_bucket{le=\"10\"} 2\n"
           "chat_x_seconds_bucket{le=\"+Inf\"} 2\n"
           "chat_x_seconds_sum 0.001502\n"
           "chat_x_seconds_count 2\n");
}

/* ---- The writer ------------------------------------------------------- */

static void test_escaping(void **state) {
    (void)state;
    metrics_out *o = start();
    metrics_family(o, "chat_e_total", METRICS_COUNTER,
                   "A \\ \"quoted\"\nhelp.");
    metrics_u64(o, "chat_e_total",
                (const char *[]){"a", "x\\y\"z\nw", "b", "", NULL}, 7);
    metrics_u64(o, "chat_e_total", (const char *[]){NULL}, 8);
    expect("# HELP chat_e_total A \\\\ \"quoted\"\\nhelp.\n"
           "# TYPE chat_e_total counter\n"
           "chat_e_total{a=\"x\\\\y\\\"z\\nw\",b=\"\"} 7\n"
           "chat_e_total 8\n");
}

static void test_numbers(void **state) {
    (void)state;
    metrics_out *o = start();
    metrics_family(o, "chat_n", METRICS_GAUGE, "N.");
    metrics_u64(o, "chat_n", NULL, 0);
    metrics_u64(o, "chat_n", NULL, UINT64_MAX);
    metrics_f64(o, "chat_n", NULL, 3.0);
    metrics_f64(o, "chat_n", NULL, 0.1);
    metrics_f64(o, "chat_n", NULL, -2.5e-300);
    metrics_f64(o, "chat_n", NULL, 1.0 / 3.0);
    metrics_f64(o, "chat_n", NULL, NAN);
    metrics_f64(o, "chat_n", NULL, INFINITY);
    metrics_f64(o, "chat_n", NULL, -INFINITY);
    metrics_fixed(o, "chat_n", NULL, 1500, 3);
    metrics_fixed(o, "chat_n", NULL, 7, 9);
    metrics_fixed(o, "chat_n", NULL, UINT64_MAX, 6);
    metrics_fixed(o, "chat_n", NULL, 42, 0);
    expect("# HELP chat_n N.\n"
           "# TYPE chat_n gauge\n"
           "chat_n 0\n"
           "chat_n 18446744073709551615\n"
           "chat_n 3\n"
           "chat_n 0.1\n"
           "chat_n -2.5e-300\n"
           "chat_n 0.3333333333333333\n"
           "chat_n NaN\n"
           "chat_n +Inf\n"
           "chat_n -Inf\n"
           "chat_n 1.5\n"
           "chat_n 0.000000007\n"
           "chat_n 18446744073709.551615\n"
           "chat_n 42\n");
}

/* A limit reached: the error sticks, nothing more is appended. */
static void test_limit(void **state) {
    (void)state;
    buf b = {0};
    metrics_out o;
    metrics_out_init(&o, &b, 40);
    metrics_family(&o, "chat_l", METRICS_GAUGE, "L.");
    assert_int_equal(metrics_out_status(&o), 0);
    size_t len = b.len;
    metrics_u64(&o, "chat_l", (const char *[]){"k", "a long value", NULL}, 1);
    assert_int_equal(metrics_out_status(&o), BUF_ELIMIT);
    assert_true(b.len <= 40);
    size_t after = b.len;
    metrics_u64(&o, "chat_l", NULL, 1); /* would fit, but the error sticks */
    assert_int_equal(b.len, after);
    assert_true(after >= len);
    buf_free(&b);
}

static void test_names(void **state) {
    (void)state;
    assert_true(metrics_name_ok("chat_frames_total"));
    assert_true(metrics_name_ok("_x:y9"));
    assert_true(metrics_name_ok(":a"));
    assert_false(metrics_name_ok(""));
    assert_false(metrics_name_ok("9a"));
    assert_false(metrics_name_ok("a-b"));
    assert_false(metrics_name_ok("a b"));
    assert_false(metrics_name_ok("a\xc3\xa9"));
}

/* ---- Process metrics -------------------------------------------------- */

static void test_procstat_self(void **state) {
    (void)state;
    procstat ps;
    assert_int_equal(procstat_read(&ps, "/proc"), 0);
    assert_int_equal(ps.have, PROCSTAT_ALL);
    assert_true(ps.cpu_seconds >= 0);
    assert_true(ps.rss_bytes > 0);
    assert_true(ps.vsize_bytes >= ps.rss_bytes);
    assert_true(ps.open_fds >= 3); /* stdin, stdout, stderr */
    assert_true(ps.max_fds >= ps.open_fds);
    /* Started after 2001 and not after now (plus a tick's rounding). */
    assert_true(ps.start_time > 1e9);
    assert_true(ps.start_time <= (double)time(NULL) + 1);
}

static void write_file(const char *dir, const char *rel, const char *text) {
    char p[512];
    assert_true(snprintf(p, sizeof p, "%s/%s", dir, rel) < (int)sizeof p);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void sub(char out[512], const char *dir, const char *rel) {
    assert_true(snprintf(out, 512, "%s/%s", dir, rel) < 512);
}

/* A fake /proc: stat (btime after a long line), self/stat, self/limits,
 * self/fd with 3 entries. */
static void fake_proc(char dir[64], const char *self_stat, const char *limits) {
    strcpy(dir, "/tmp/test_metrics.XXXXXX");
    assert_non_null(mkdtemp(dir));
    char p[512];
    sub(p, dir, "self");
    assert_int_equal(mkdir(p, 0700), 0);
    sub(p, dir, "self/fd");
    assert_int_equal(mkdir(p, 0700), 0);
    write_file(dir, "self/fd/0", "");
    write_file(dir, "self/fd/1", "");
    write_file(dir, "self/fd/2", "");
    /* An intr line longer than the reader's pieces, with "btime 1" at the
     * start of a piece: not a line's start, so not taken. */
    static char stat[4096];
    int n = snprintf(stat, sizeof stat, "cpu  1 2 3\nintr");
    while (n < 11 + 255) stat[n++] = ' '; /* the intr line: 255 bytes */
    n += snprintf(stat + n, sizeof stat - (size_t)n,
                  "btime 1 2 3\nbtime 1700000000\nprocesses 9\n");
    write_file(dir, "stat", stat);
    if (self_stat) write_file(dir, "self/stat", self_stat);
    if (limits) write_file(dir, "self/limits", limits);
}

static void rm_fake_proc(const char *dir) {
    static const char *const files[] = {"self/fd/0", "self/fd/1", "self/fd/2",
                                        "self/fd",   "self/stat", "self/limits",
                                        "self",      "stat",      ""};
    char p[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        sub(p, dir, files[i]);
        (void)remove(p); /* a file the case did not write: ENOENT */
    }
}

/* Fields: pid (comm) state, 4..13, utime stime, 16..21 (21: starttime is
 * 22), vsize rss. A command name with spaces and parentheses. */
static const char good_stat[] =
    "42 (a) (b c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 1 0 "
    "12345 104857600 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0\n";
static const char good_limits[] =
    "Limit                     Soft Limit           Hard Limit           "
    "Units     \n"
    "Max processes             96363                96363                "
    "processes \n"
    "Max open files            20000                1048576              "
    "files     \n";

static void test_procstat_fake(void **state) {
    (void)state;
    char dir[64];
    fake_proc(dir, good_stat, good_limits);
    procstat ps;
    assert_int_equal(procstat_read(&ps, dir), 0);
    assert_int_equal(ps.have, PROCSTAT_ALL);
    double ticks = (double)sysconf(_SC_CLK_TCK);
    assert_true(ps.cpu_seconds == 400.0 / ticks);
    assert_int_equal(ps.rss_bytes, 300 * (uint64_t)sysconf(_SC_PAGESIZE));
    assert_int_equal(ps.vsize_bytes, 104857600);
    assert_int_equal(ps.open_fds, 3);
    assert_int_equal(ps.max_fds, 20000);
    assert_true(ps.start_time == 1700000000.0 + 12345.0 / ticks);
    rm_fake_proc(dir);
}

/* Each odd case leaves out what it spoils, and only that. */
static void test_procstat_odd(void **state) {
    (void)state;
    char dir[64];
    procstat ps;
    /* No limits file: max_fds left out, -ENOENT. */
    fake_proc(dir, good_stat, NULL);
    assert_int_equal(procstat_read(&ps, dir), -ENOENT);
    assert_int_equal(ps.have, PROCSTAT_ALL & ~PROCSTAT_MAXFDS);
    rm_fake_proc(dir);
    /* An unlimited soft limit: not a number. */
    fake_proc(dir, good_stat,
              "Limit  Soft Limit  Hard Limit  Units\n"
              "Max open files  unlimited  unlimited  files\n");
    assert_int_equal(procstat_read(&ps, dir), -EINVAL);
    assert_int_equal(ps.have, PROCSTAT_ALL & ~PROCSTAT_MAXFDS);
    rm_fake_proc(dir);
    /* A stat cut short, one without ')', an empty one, one whose number
     * overflows: what comes from it is left out. */
    static const char *const bad[] = {
        "42 (a) S 1 42 42 0 -1 4194560 100 0 0 0 250",
        "42 a S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 1 0 1 2 3\n",
        "",
        "42 (a) S 1 42 42 0 -1 4194560 100 0 0 0 99999999999999999999 150 0 "
        "0 20 0 1 0 1 2 3\n",
        "42 (a) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 1 0 1 2\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fake_proc(dir, bad[i], good_limits);
        assert_int_equal(procstat_read(&ps, dir), -EINVAL);
        assert_int_equal(ps.have, PROCSTAT_FDS | PROCSTAT_MAXFDS);
        rm_fake_proc(dir);
    }
    /* No such directory at all. */
    assert_int_equal(procstat_read(&ps, "/nonexistent/proc"), -ENOENT);
    assert_int_equal(ps.have, 0);
    /* Rendering what is there only. */
    ps.have = PROCSTAT_FDS;
    ps.open_fds = 5;
    metrics_out *o = start();
    procstat_render(o, &ps);
    expect("# HELP process_open_fds File descriptors the "
           "process has open.\n"
           "# TYPE process_open_fds gauge\n"
           "process_open_fds 5\n");
}

/* ---- promtool --------------------------------------------------------- */

/* `promtool check metrics < path`: its whole output (stdout and stderr)
 * into out; returns its exit status, 127 when the shell did not find it. */
static int promtool(const char *path, char *out, size_t cap) {
    const char *tool = getenv("PROMTOOL");
    char cmd[600];
    assert_true(snprintf(cmd, sizeof cmd, "%s check metrics < '%s' 2>&1",
                         tool ? tool : "promtool", path) < (int)sizeof cmd);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    assert_true(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Write the exposition to a temporary file; promtool's verdict on it. */
static int check_exposition(const char *text, char *out, size_t cap) {
    char path[] = "/tmp/test_metrics.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    int st = promtool(path, out, cap);
    assert_int_equal(unlink(path), 0);
    if (st == 127)
        fail_msg("promtool not found: it is in the Debian package "
                 "prometheus (make deps, or apt-get install -y "
                 "--no-install-recommends prometheus); output: %s",
                 out);
    return st;
}

static void test_promtool(void **state) {
    (void)state;
    char out[4096];
    /* The check can fail: a counter without _total is reported. */
    int st = check_exposition("# HELP foo Foo.\n# TYPE foo counter\nfoo 1\n",
                              out, sizeof out);
    assert_true(st != 0 && out[0] != '\0');

    metrics_out *o = start();
    metrics_family(o, "chat_frames_total", METRICS_COUNTER,
                   "Data frames received, by transport.");
    metrics_u64(o, "chat_frames_total",
                (const char *[]){"transport", "tcp", NULL}, 12);
    metrics_u64(o, "chat_frames_total",
                (const char *[]){"transport", "odd \\ \" \n value", NULL}, 0);
    metrics_family(o, "chat_connections", METRICS_GAUGE, "Open connections.");
    metrics_u64(o, "chat_connections", NULL, 3);
    metrics_family(o, "chat_store_queue_seconds", METRICS_GAUGE,
                   "Age of the oldest queued batch.");
    metrics_fixed(o, "chat_store_queue_seconds", NULL, 1502, 6);
    metrics_family(o, "chat_load_ratio", METRICS_GAUGE, "A float gauge.");
    metrics_f64(o, "chat_load_ratio", NULL, 1.0 / 3.0);
    metrics_hist lat, bytes;
    metrics_hist_init(&lat, METRICS_LATENCY_US);
    metrics_hist_init(&bytes, METRICS_BYTES);
    for (uint64_t v = 1; v < 20000000; v = v * 3 + 1) {
        metrics_hist_observe(&lat, v);
        metrics_hist_observe(&bytes, v);
    }
    metrics_family(o, "chat_delivery_latency_seconds", METRICS_HISTOGRAM,
                   "From a frame read to its receiver's write.");
    metrics_hist_render(o, "chat_delivery_latency_seconds",
                        (const char *[]){"path", "live", NULL}, &lat);
    metrics_hist_render(o, "chat_delivery_latency_seconds",
                        (const char *[]){"path", "stored", NULL}, &lat);
    metrics_family(o, "chat_frame_size_bytes", METRICS_HISTOGRAM,
                   "Size of the frames received.");
    metrics_hist_render(o, "chat_frame_size_bytes", NULL, &bytes);
    procstat ps;
    assert_int_equal(procstat_read(&ps, "/proc"), 0);
    procstat_render(o, &ps);
    assert_int_equal(metrics_out_status(o), 0);

    const char *text = str(&out_buf);
    /* Every process metric is there. */
    static const char *const proc[] = {"\nprocess_cpu_seconds_total ",
                                       "\nprocess_resident_memory_bytes ",
                                       "\nprocess_virtual_memory_bytes ",
                                       "\nprocess_open_fds ",
                                       "\nprocess_max_fds ",
                                       "\nprocess_start_time_seconds "};
    for (size_t i = 0; i < sizeof proc / sizeof proc[0]; i++)
        assert_non_null(strstr(text, proc[i]));
    st = check_exposition(text, out, sizeof out);
    if (st != 0 || out[0] != '\0')
        fail_msg("promtool check metrics: exit %d: %s\non:\n%s", st, out, text);
    buf_free(&out_buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_boundaries),
        cmocka_unit_test(test_hist_render_cumulative),
        cmocka_unit_test(test_hist_render_seconds),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_procstat_self),
        cmocka_unit_test(test_procstat_fake),
        cmocka_unit_test(test_procstat_odd),
        cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
