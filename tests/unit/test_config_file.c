/*
 * test_config_file.c -- unit tests for the config file and the texts made
 * from the settings table (src/server/config_file.c, config_doc.c).
 *
 * Covers: a file's settings; comments, blanks, quotes; a bare flag and
 * on/off; include (relative to the including file, nested, a loop); every
 * error with its file and line (unknown key, bad value, missing value,
 * command-line-only key, missing file, missing include, too long a line);
 * flags on the command line win over the file, in either order; the last
 * value of a key wins; --check-config; each setting's value read back by
 * config_set (a round trip); the example file (settings-doc conf) read
 * back gives the defaults, and with NAME=VALUE pairs, those values; the
 * markdown and man texts name every setting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "server/config.h"

static char dir[64];
static char err[1024];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_config_file.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write dir/name with text; returns the path (static, one at a time). */
static const char *put(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* config_defaults, then config_parse of "chat-server" and the args. */
static int parse(config *c, ...) {
    static char *argv[32];
    static char store[32][512];
    int argc = 0;
    argv[argc++] = "chat-server";
    va_list ap;
    va_start(ap, c);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        snprintf(store[argc], sizeof store[argc], "%s", a);
        argv[argc] = store[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    config_defaults(c);
    memset(err, 0, sizeof err);
    return config_parse(c, argc, argv, err, sizeof err);
}

static int parse_file(config *c, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s", put("c.conf", text));
    return parse(c, "--config", path, (const char *)NULL);
}

/* The error of a file holding text mentions each of the words. */
static void expect_file_error(const char *text, const char *w1,
                              const char *w2) {
    config c;
    int r = parse_file(&c, text);
    if (r != CONFIG_ERROR) fail_msg("expected an error for:\n%s", text);
    if (!strstr(err, w1) || (w2 && !strstr(err, w2)))
        fail_msg("error '%s' lacks '%s' / '%s'", err, w1, w2 ? w2 : "");
}

static void test_file_settings(void **state) {
    (void)state;
    config c;
    assert_int_equal(parse_file(&c,
        "# a comment\n"
        "\n"
        "   port 9000   \n"
        "\tmax-frame\t1M\n"
        "data-dir \"/var/lib/chat server \"\n"
        "echo\n"
        "fsync normal\n"
        "rate-grace 2m\r\n"
        "http-allow-origin https://a.example#frag\n"
        "log-level debug\n"), CONFIG_OK);
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.max_frame, 1u << 20);
    assert_string_equal(c.data_dir, "/var/lib/chat server ");
    assert_int_equal(c.echo, 1);
    assert_int_equal(c.fsync_full, 0);
    assert_int_equal(c.rate_grace_ms, 120000);
    assert_string_equal(c.http_allow_origin, "https://a.example#frag");
    assert_int_equal(c.log_level, LOG_DEBUG);
    /* max-outbuf still follows max-frame when not given */
    assert_int_equal(c.max_outbuf, (size_t)64 * 1024 * 1024 + 65536);
    assert_int_equal(parse_file(&c, "echo off\ninsecure-open yes\n"),
                     CONFIG_OK);
    assert_int_equal(c.echo, 0);
    assert_int_equal(c.insecure_open, 1);
    /* the last value of a key wins */
    assert_int_equal(parse_file(&c, "port 1\nport 2\n"), CONFIG_OK);
    assert_int_equal(c.port, 2);
}

static void test_file_errors(void **state) {
    (void)state;
    expect_file_error("port 1\n\nbogus 3\n", "c.conf:3:", "'bogus' is not a setting");
    expect_file_error("# x\nport 99999\n", "c.conf:2: port:", "'99999' is not a port");
    expect_file_error("max-frame\n", "c.conf:1: max-frame: needs a value", NULL);
    expect_file_error("echo maybe\n", "c.conf:1: echo:", "'maybe' is not on or off");
    expect_file_error("config other.conf\n", "c.conf:1: config: only on the command line", NULL);
    expect_file_error("help\n", "c.conf:1: help: only on the command line", NULL);
    expect_file_error("fsync sometimes\n", "c.conf:1: fsync:", "'sometimes' is not normal or full");
    expect_file_error("dedup-window 10ms\n", "c.conf:1: dedup-window:", "at least 1s");
    expect_file_error("include\n", "c.conf:1: include: needs a file", NULL);
    expect_file_error("include nowhere.conf\n", "c.conf:1: include:", "nowhere.conf: cannot read it");
    /* an include's error names the included file and its line */
    put("bad.conf", "port 1\nrate-msgs -5\n");
    expect_file_error("port 2\ninclude bad.conf\n", "bad.conf:2: rate-msgs:", "c.conf:2: include");
    /* a file that includes itself ends with an error */
    put("loop.conf", "include loop.conf\n");
    expect_file_error("include loop.conf\n", "nested more than", NULL);
    /* a line longer than CONFIG_LINE_MAX */
    char *big = malloc(CONFIG_LINE_MAX + 64);
    assert_non_null(big);
    memset(big, 'x', CONFIG_LINE_MAX + 10);
    memcpy(big, "bind ", 5);
    strcpy(big + CONFIG_LINE_MAX + 10, "\n");
    expect_file_error(big, "c.conf:1: longer than", NULL);
    free(big);
    /* a cross-setting check after the file */
    expect_file_error("tls-port 8443\n", "--tls-port: needs --tls-cert", NULL);
    /* a missing file */
    config c;
    assert_int_equal(parse(&c, "--config", "/nonexistent/x.conf",
                           (const char *)NULL), CONFIG_ERROR);
    assert_non_null(strstr(err, "/nonexistent/x.conf: cannot read it"));
    assert_int_equal(parse(&c, "--config", (const char *)NULL), CONFIG_ERROR);
    assert_non_null(strstr(err, "--config: needs a value"));
}

static void test_include(void **state) {
    (void)state;
    char sub[128];
    snprintf(sub, sizeof sub, "%s/conf.d", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    put("conf.d/limits.conf", "rate-msgs 5\ninclude more.conf\n");
    put("conf.d/more.conf", "rate-bytes 1K\n");
    config c;
    assert_int_equal(parse_file(&c, "rate-msgs 1\ninclude conf.d/limits.conf\n"
                                    "max-connections 3\n"), CONFIG_OK);
    assert_int_equal(c.rate_msgs, 5); /* the include came after */
    assert_int_equal(c.rate_bytes, 1024);
    assert_int_equal(c.max_connections, 3);
}

static void test_flags_win(void **state) {
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", put("p.conf", "port 1\nrate-msgs 7\n"));
    config c;
    assert_int_equal(parse(&c, "--port", "2", "--config", path,
                           (const char *)NULL), CONFIG_OK);
    assert_int_equal(c.port, 2);
    assert_int_equal(c.rate_msgs, 7);
    assert_int_equal(c.origin[config_find("port") - config_settings],
                     ORIGIN_ARGV);
    assert_int_equal(c.origin[config_find("rate-msgs") - config_settings],
                     ORIGIN_FILE);
    assert_int_equal(parse(&c, "--config", path, "--port", "3",
                           (const char *)NULL), CONFIG_OK);
    assert_int_equal(c.port, 3);
    assert_string_equal(c.config_file, path);
    /* a bad flag is reported before the file is read */
    assert_int_equal(parse(&c, "--config", path, "--port", "x",
                           (const char *)NULL), CONFIG_ERROR);
    assert_non_null(strstr(err, "--port"));
    assert_int_equal(parse(&c, "--config", path, "--check-config",
                           (const char *)NULL), CONFIG_CHECK);
    assert_int_equal(c.port, 1);
}

/* Every setting's value, shown by config_value, reads back the same. */
static void test_round_trip(void **state) {
    (void)state;
    config c, d;
    assert_int_equal(parse(&c, "--tls-port", "0", "--tls-cert", "c.pem",
                           "--tls-key", "k.pem", "--http-port", "auto",
                           "--https-port", "8443", "--max-frame", "1000",
                           (const char *)NULL), CONFIG_OK);
    config_defaults(&d);
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        char v[1100], w[1100];
        if (s->flags & SET_CLI) continue;
        config_value(&c, s, v, sizeof v);
        if (!*v) continue; /* an unset path */
        if (config_set(&d, s, v, ORIGIN_FILE, err, sizeof err))
            fail_msg("%s: '%s' does not read back: %s", s->name, v, err);
        config_value(&d, s, w, sizeof w);
        if (strcmp(v, w)) fail_msg("%s: '%s' read back as '%s'", s->name, v, w);
    }
}

/* The text of config_doc(what) (or config_print / config_usage). */
static char *doc(const char *what, int nset, char **set) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(config_doc(what, nset, set, f), 0);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void test_example_file(void **state) {
    (void)state;
    char *text = doc("conf", 0, NULL);
    config c, d;
    assert_int_equal(parse_file(&c, text), CONFIG_OK);
    config_defaults(&d);
    assert_int_equal(config_finish(&d, err, sizeof err), CONFIG_OK);
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        char v[1100], w[1100];
        if (s->flags & SET_CLI) continue;
        config_value(&c, s, v, sizeof v);
        config_value(&d, s, w, sizeof w);
        if (strcmp(v, w)) fail_msg("%s: the example gives '%s'", s->name, v);
        char line[128];
        snprintf(line, sizeof line, "\n#%s ", s->name);
        if (!strstr(text, line)) fail_msg("the example lacks %s", s->name);
    }
    free(text);
    char *set[] = {"data-dir=/var/lib/chat-server", "rate-msgs=5"};
    text = doc("conf", 2, set);
    assert_int_equal(parse_file(&c, text), CONFIG_OK);
    assert_string_equal(c.data_dir, "/var/lib/chat-server");
    assert_int_equal(c.rate_msgs, 5);
    free(text);
    /* a bad pair is refused */
    char *bad[] = {"port=x"};
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_int_equal(config_doc("conf", 1, bad, f), -1);
    assert_int_equal(config_doc("bogus", 0, NULL, f), -1);
    assert_int_equal(fclose(f), 0);
}

static void test_docs_name_every_setting(void **state) {
    (void)state;
    char *md = doc("markdown", 0, NULL), *flags = doc("man-flags", 0, NULL),
         *conf = doc("man-conf", 0, NULL);
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        char want[200], roff[128], *w = roff;
        for (const char *r = s->name; *r; r++) {
            if (*r == '-') *w++ = '\\';
            *w++ = *r;
        }
        *w = '\0';
        snprintf(want, sizeof want, "\\-\\-%s", roff);
        if (!strstr(flags, want)) fail_msg("man-flags lacks %s", want);
        if (s->flags & SET_CLI) continue;
        snprintf(want, sizeof want, "| `%s` |", s->name);
        if (!strstr(md, want)) fail_msg("markdown lacks %s", want);
        snprintf(want, sizeof want, "\n.B%s %s", s->arg ? "I" : "", roff);
        if (!strstr(conf, want)) fail_msg("man-conf lacks %s", want);
    }
    free(md);
    free(flags);
    free(conf);
}

static void test_check_config_print(void **state) {
    (void)state;
    config c;
    assert_int_equal(parse(&c, "--rate-msgs", "9", (const char *)NULL), CONFIG_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print(&c, f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "\nrate-msgs              9\n"));
    assert_non_null(strstr(text, "#tls-cert"));
    /* the listing reads back as a config file with the same values */
    config d;
    assert_int_equal(parse_file(&d, text), CONFIG_OK);
    assert_int_equal(d.rate_msgs, 9);
    free(text);
}

int main(void) {
    log_threshold = LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_settings),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_flags_win),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_docs_name_every_setting),
        cmocka_unit_test(test_check_config_print),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
