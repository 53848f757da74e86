/*
 * test_config.c -- unit tests for chat-server's settings and flags
 * (src/server/config.{h,c}).
 *
 * Covers: defaults; every flag, in "--flag value" and "--flag=value" form,
 * and unique-prefix abbreviations; config_parse_size (plain numbers, K/M/G in
 * either case, the optional "B" / "iB" after a suffix, UINT64_MAX, overflow,
 * and the malformed inputs it must reject); --port range and digits-only
 * check; --bind / --data-dir length limits; --max-frame up to 512M;
 * --max-outbuf floor (max-frame + 64K) both as an error and as an automatic
 * raise when --max-outbuf is not given; --offline-* flags; --log-level;
 * unknown options, missing values, ambiguous abbreviations and stray
 * positional arguments (all CONFIG_ERROR with the offending word in `err`);
 * --help / --version; a truncated error buffer; config_parse called many
 * times in one process (it resets getopt's optind itself); config_usage.
 *
 * argv strings live in an append-only static arena that is never reused or
 * freed, like a real argv: glibc's getopt keeps a pointer into the last
 * argv string it scanned across calls.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/config.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static char arena[1 << 17];
static size_t arena_used;

static char *arena_dup(const char *s) {
    size_t n = strlen(s) + 1;
    if (arena_used + n > sizeof arena) fail_msg("argv arena exhausted");
    char *p = arena + arena_used;
    memcpy(p, s, n);
    arena_used += n;
    return p;
}

static char err[256];

/* config_defaults, then config_parse of "chat-server" followed by the
 * NULL-terminated arguments. */
static int parse(config *c, ...) {
    char *argv[32];
    int argc = 0;
    argv[argc++] = arena_dup("chat-server");
    va_list ap;
    va_start(ap, c);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        if (argc >= 31) fail_msg("too many arguments");
        argv[argc++] = arena_dup(a);
    }
    va_end(ap);
    argv[argc] = NULL;
    config_defaults(c);
    memset(err, 0, sizeof err);
    return config_parse(c, argc, argv, err, sizeof err);
}

/* Expect CONFIG_ERROR with `word` in the message. */
#define EXPECT_ERROR(word, ...)                                               \
    do {                                                                      \
        config c_;                                                            \
        int r_ = parse(&c_, __VA_ARGS__, (const char *)NULL);                 \
        if (r_ != CONFIG_ERROR)                                               \
            fail_msg("expected CONFIG_ERROR, got %d (%s)", r_, err);          \
        if (!strstr(err, (word)))                                             \
            fail_msg("error '%s' does not mention '%s'", err, (word));        \
    } while (0)

#define EXPECT_OK(cfg, ...)                                                   \
    do {                                                                      \
        int r_ = parse((cfg), __VA_ARGS__, (const char *)NULL);               \
        if (r_ != CONFIG_OK) fail_msg("expected CONFIG_OK, got %d (%s)", r_, err); \
    } while (0)

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void check_defaults(const config *c) {
    assert_string_equal(c->bind, "127.0.0.1");
    assert_int_equal(c->port, 8888);
    assert_int_equal(c->echo, 0);
    assert_string_equal(c->data_dir, "./chat-data");
    assert_int_equal(c->max_frame, 16u * 1024 * 1024);
    assert_int_equal(c->max_outbuf, (size_t)64 * 1024 * 1024 + 65536);
    assert_int_equal(c->offline_max_messages, 100000);
    assert_int_equal(c->offline_max_bytes, (uint64_t)256 * 1024 * 1024);
    assert_int_equal(c->log_level, LOG_INFO);
    assert_int_equal(c->auth, 0);
    assert_int_equal(c->insecure_open, 0);
    assert_int_equal(c->login_timeout_ms, 10000);
    assert_int_equal(c->max_connections, 100000);
    assert_int_equal(c->max_conns_per_ip, 256);
    assert_int_equal(c->rate_msgs, 20000);
    assert_int_equal(c->rate_bytes, (uint64_t)64 << 20);
    assert_int_equal(c->tls_port, -1);
    assert_string_equal(c->tls_cert, "");
}

static void test_defaults(void **state) {
    (void)state;
    config c;
    memset(&c, 0xA5, sizeof c);
    config_defaults(&c);
    check_defaults(&c);
    /* No arguments: the defaults stand. */
    assert_int_equal(parse(&c, (const char *)NULL), CONFIG_OK);
    check_defaults(&c);
    /* A lone "--" ends the options and is not a stray argument. */
    assert_int_equal(parse(&c, "--", (const char *)NULL), CONFIG_OK);
    check_defaults(&c);
}

static void test_all_flags(void **state) {
    (void)state;
    config c;
    EXPECT_OK(&c, "--bind", "0.0.0.0", "--insecure-open", "--port", "9000",
              "--echo",
              "--data-dir", "/var/lib/chat", "--max-frame", "1M",
              "--max-outbuf", "2M", "--offline-max-messages", "5",
              "--offline-max-bytes", "64K", "--log-level", "debug");
    assert_string_equal(c.bind, "0.0.0.0");
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.echo, 1);
    assert_string_equal(c.data_dir, "/var/lib/chat");
    assert_int_equal(c.max_frame, 1u << 20);
    assert_int_equal(c.max_outbuf, (size_t)2 << 20);
    assert_int_equal(c.offline_max_messages, 5);
    assert_int_equal(c.offline_max_bytes, 65536);
    assert_int_equal(c.log_level, LOG_DEBUG);

    /* "--flag=value" form. */
    EXPECT_OK(&c, "--bind=::1", "--port=0", "--data-dir=d", "--max-frame=100",
              "--max-outbuf=70000", "--offline-max-messages=0",
              "--offline-max-bytes=0", "--log-level=error");
    assert_string_equal(c.bind, "::1");
    assert_int_equal(c.port, 0);
    assert_int_equal(c.echo, 0);
    assert_string_equal(c.data_dir, "d");
    assert_int_equal(c.max_frame, 100);
    assert_int_equal(c.max_outbuf, 70000);
    assert_int_equal(c.offline_max_messages, 0);
    assert_int_equal(c.offline_max_bytes, 0);
    assert_int_equal(c.log_level, LOG_ERROR);

    /* Each flag alone changes only its own field. */
    EXPECT_OK(&c, "--echo");
    assert_int_equal(c.echo, 1);
    c.echo = 0;
    check_defaults(&c);
    EXPECT_OK(&c, "--port", "1");
    assert_int_equal(c.port, 1);
    c.port = 8888;
    check_defaults(&c);
    EXPECT_OK(&c, "--offline-max-messages", "7");
    assert_int_equal(c.offline_max_messages, 7);
    c.offline_max_messages = 100000;
    check_defaults(&c);

    /* The last occurrence wins. */
    EXPECT_OK(&c, "--port", "1", "--port", "2");
    assert_int_equal(c.port, 2);

    /* Unique prefixes are accepted (getopt_long). */
    EXPECT_OK(&c, "--po", "7", "--ec", "--data", "x");
    assert_int_equal(c.port, 7);
    assert_int_equal(c.echo, 1);
    assert_string_equal(c.data_dir, "x");
}

static void test_parse_size(void **state) {
    (void)state;
    static const struct { const char *s; uint64_t v; } ok[] = {
        {"0", 0},
        {"1", 1},
        {"123", 123},
        {"007", 7},
        {"0K", 0},
        {"64K", 65536},
        {"64k", 65536},
        {"16M", 16u << 20},
        {"16m", 16u << 20},
        {"1G", 1u << 30},
        {"1g", 1u << 30},
        {"4G", (uint64_t)4 << 30},
        {"16MiB", 16u << 20},
        {"1KiB", 1024},
        {"1KB", 1024},
        {"2MB", 2u << 20},
        {"3GB", (uint64_t)3 << 30},
        {"18446744073709551615", UINT64_MAX},
        {"18014398509481983K", UINT64_MAX - 1023},   /* (2^54 - 1) K */
        {"17592186044415M", UINT64_MAX - ((1u << 20) - 1)}, /* (2^44 - 1) M */
        {"17179869183G", UINT64_MAX - ((1u << 30) - 1)}, /* (2^34 - 1) G */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 0xDEADBEEF;
        if (config_parse_size(ok[i].s, &v) != 0) fail_msg("'%s' rejected", ok[i].s);
        if (v != ok[i].v)
            fail_msg("'%s' -> %llu, expected %llu", ok[i].s, (unsigned long long)v,
                     (unsigned long long)ok[i].v);
    }
    static const char *const bad[] = {
        "", "-1", "-0", "+1", "abc", "12X", "K", "M", "1.5K", "1 K", "1K ",
        "12b", "1B", "1iB", "1KK", "1KBB", "1KiBx", "1kib", "1T", "0x10",
        " 12", " -1", "\t5", "1Ki", "1Mi",  /* blanks, signs, half suffixes */
        "99999999999999999999",      /* > UINT64_MAX: ERANGE */
        "18446744073709551616",      /* UINT64_MAX + 1 */
        "18446744073709551615G",     /* shift overflow */
        "18014398509481984K",        /* 2^54 K = 2^64 */
        "17179869184G",              /* 2^34 G = 2^64 */
        "17592186044416M",           /* 2^44 M = 2^64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 0;
        if (config_parse_size(bad[i], &v) != -1) fail_msg("'%s' accepted", bad[i]);
    }
    uint64_t v = 0;
    assert_int_equal(config_parse_size(NULL, &v), -1);
}

static void test_port(void **state) {
    (void)state;
    config c;
    EXPECT_OK(&c, "--port", "0");
    assert_int_equal(c.port, 0);
    EXPECT_OK(&c, "--port", "65535");
    assert_int_equal(c.port, 65535);
    EXPECT_OK(&c, "--port", "08");
    assert_int_equal(c.port, 8);

    EXPECT_ERROR("--port", "--port", "65536");
    EXPECT_ERROR("--port", "--port", "abc");
    EXPECT_ERROR("--port", "--port", "-1");
    EXPECT_ERROR("--port", "--port", "");
    EXPECT_ERROR("--port", "--port", "+80");
    EXPECT_ERROR("--port", "--port", " 80");
    EXPECT_ERROR("--port", "--port", "1K");         /* a size, not a port */
    EXPECT_ERROR("--port", "--port", "80x");
    EXPECT_ERROR("--port", "--port", "99999999999999999999");
    EXPECT_ERROR("--port", "--port=65536");
    /* The offending value is quoted too. */
    EXPECT_ERROR("'65536'", "--port", "65536");
}

/* --metrics-port: off by default, 0 off, auto any free port (not with
 * --workers: worker K's is the port + K - 1, which a scraper must know),
 * a port of its own. */
static void test_metrics_port(void **state) {
    (void)state;
    config c;
    EXPECT_OK(&c, "--port", "9000");
    assert_int_equal(c.metrics_port, -1);
    EXPECT_OK(&c, "--metrics-port", "0");
    assert_int_equal(c.metrics_port, -1);
    EXPECT_OK(&c, "--metrics-port", "auto");
    assert_int_equal(c.metrics_port, 0);
    EXPECT_OK(&c, "--metrics-port", "9100", "--cluster",
              "redis://127.0.0.1:6379", "--workers", "4");
    assert_int_equal(c.metrics_port, 9100);
    assert_int_equal(c.workers, 4);
    EXPECT_ERROR("--metrics-port: auto is not for --workers",
                 "--metrics-port", "auto", "--cluster",
                 "redis://127.0.0.1:6379", "--workers", "2");
    EXPECT_ERROR("--metrics-port: 9000 is also --port", "--port", "9000",
                 "--metrics-port", "9000");
    EXPECT_ERROR("--metrics-port: 8080 is also --http-port", "--http-port",
                 "8080", "--metrics-port", "8080");
    EXPECT_ERROR("'65536'", "--metrics-port", "65536");
}

/* Protected mode: --auth off refuses a non-loopback --bind unless
 * --insecure-open; loopback literals of both families pass. */
static void test_protected_mode(void **state) {
    (void)state;
    config c;
    static const char *const local[] = {"127.0.0.1", "127.9.0.1", "::1",
                                        "::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        EXPECT_OK(&c, "--bind", local[i]);
        assert_int_equal(config_is_loopback(local[i]), 1);
    }
    static const char *const open[] = {"0.0.0.0", "::", "10.0.0.1",
                                       "::ffff:10.0.0.1", "128.0.0.1"};
    for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
        assert_int_equal(config_is_loopback(open[i]), 0);
        EXPECT_ERROR("--auth on", "--bind", open[i]);
        EXPECT_ERROR("--insecure-open", "--bind", open[i], "--auth", "off");
        EXPECT_OK(&c, "--bind", open[i], "--auth", "on");
        assert_int_equal(c.auth, 1);
        EXPECT_OK(&c, "--bind", open[i], "--insecure-open");
        assert_int_equal(c.insecure_open, 1);
    }
    assert_int_equal(config_is_loopback("localhost"), 0); /* literals only */
    EXPECT_ERROR("'maybe'", "--auth", "maybe");
}

static void test_security_flags(void **state) {
    (void)state;
    config c;
    EXPECT_OK(&c, "--login-timeout", "500ms", "--max-connections", "7",
              "--max-conns-per-ip", "0", "--rate-msgs", "10", "--rate-bytes",
              "1K", "--tls-port", "0", "--tls-cert", "c.pem", "--tls-key",
              "k.pem", "--tls-ca", "ca.pem");
    assert_int_equal(c.login_timeout_ms, 500);
    assert_int_equal(c.max_connections, 7);
    assert_int_equal(c.max_conns_per_ip, 0);
    assert_int_equal(c.rate_msgs, 10);
    assert_int_equal(c.rate_bytes, 1024);
    assert_int_equal(c.tls_port, 0);
    assert_string_equal(c.tls_cert, "c.pem");
    assert_string_equal(c.tls_key, "k.pem");
    assert_string_equal(c.tls_ca, "ca.pem");
    EXPECT_ERROR("--login-timeout", "--login-timeout", "0");
    EXPECT_ERROR("--max-connections", "--max-connections", "5K");
    EXPECT_ERROR("--rate-msgs", "--rate-msgs", "-1");
    EXPECT_ERROR("--tls-port", "--tls-port", "65536");
    EXPECT_ERROR("--tls-cert and --tls-key", "--tls-port", "8443");
    EXPECT_ERROR("--tls-cert and --tls-key", "--tls-port", "8443",
                 "--tls-cert", "c.pem");
    EXPECT_ERROR("--tls-key: needs --tls-port", "--tls-key", "k.pem");
    EXPECT_ERROR("--tls-ca: needs --tls-port", "--tls-ca", "ca.pem");
    EXPECT_ERROR("port of its own", "--port", "9000", "--tls-port", "9000",
                 "--tls-cert", "c", "--tls-key", "k");
}

static void test_bind_and_data_dir(void **state) {
    (void)state;
    config c;
    char s63[64], s64[65];
    memset(s63, 'a', 63);
    s63[63] = '\0';
    memset(s64, 'b', 64);
    s64[64] = '\0';
    EXPECT_OK(&c, "--bind", s63, "--auth", "on");
    assert_string_equal(c.bind, s63);
    EXPECT_ERROR("--bind", "--bind", s64);
    EXPECT_ERROR("--bind", "--bind", "");

    char *d1023 = malloc(1024), *d1024 = malloc(1025);
    assert_non_null(d1023);
    assert_non_null(d1024);
    memset(d1023, 'd', 1023);
    d1023[1023] = '\0';
    memset(d1024, 'e', 1024);
    d1024[1024] = '\0';
    EXPECT_OK(&c, "--data-dir", d1023);
    assert_string_equal(c.data_dir, d1023);
    EXPECT_ERROR("--data-dir", "--data-dir", d1024);
    EXPECT_ERROR("--data-dir", "--data-dir", "");
    free(d1023);
    free(d1024);
}

static void test_max_frame(void **state) {
    (void)state;
    config c;
    EXPECT_OK(&c, "--max-frame", "0");
    assert_int_equal(c.max_frame, 0);
    assert_int_equal(c.max_outbuf, ((size_t)64 << 20) + 65536); /* not lowered */
    EXPECT_OK(&c, "--max-frame", "1M");
    assert_int_equal(c.max_frame, 1u << 20);
    assert_int_equal(c.max_outbuf, ((size_t)64 << 20) + 65536);
    EXPECT_OK(&c, "--max-frame", "512M"); /* room for four of them */
    assert_int_equal(c.max_frame, 1u << 29);
    assert_int_equal(c.max_outbuf, ((size_t)4 << 29) + 65536);
    EXPECT_OK(&c, "--max-frame", "536870912");
    assert_int_equal(c.max_frame, 1u << 29);

    /* Above 512M a stored message would not fit in an SQLite row. */
    EXPECT_ERROR("--max-frame", "--max-frame", "536870913");
    EXPECT_ERROR("--max-frame", "--max-frame", "513M");
    EXPECT_ERROR("--max-frame", "--max-frame", "1G");
    EXPECT_ERROR("--max-frame", "--max-frame", "2G");
    EXPECT_ERROR("--max-frame", "--max-frame", "4G"); /* 2^32: not truncated to 0 */
    EXPECT_ERROR("--max-frame", "--max-frame", "abc");
    EXPECT_ERROR("--max-frame", "--max-frame", "-1");
    EXPECT_ERROR("--max-frame", "--max-frame", "");
}

static void test_max_outbuf(void **state) {
    (void)state;
    config c;
    /* Not given: room for four frames of max-frame, plus 64K, at least
     * 64M + 64K. */
    EXPECT_OK(&c, "--max-frame", "100M");
    assert_int_equal(c.max_frame, 100u << 20);
    assert_int_equal(c.max_outbuf, ((size_t)400 << 20) + 65536);
    EXPECT_OK(&c, "--max-frame", "16M");
    assert_int_equal(c.max_outbuf, ((size_t)64 << 20) + 65536);
    EXPECT_OK(&c, "--max-frame", "16385K");
    assert_int_equal(c.max_outbuf, ((size_t)4 * 16385 << 10) + 65536);
    EXPECT_OK(&c, "--max-frame", "64M");
    assert_int_equal(c.max_outbuf, ((size_t)256 << 20) + 65536);

    /* Given: exactly the floor is OK, one below is an error. */
    EXPECT_OK(&c, "--max-frame", "1M", "--max-outbuf", "1088K");
    assert_int_equal(c.max_outbuf, (1u << 20) + 65536);
    EXPECT_OK(&c, "--max-outbuf", "1088K", "--max-frame", "1M"); /* any order */
    assert_int_equal(c.max_outbuf, (1u << 20) + 65536);
    EXPECT_ERROR("--max-outbuf", "--max-frame", "1M", "--max-outbuf", "1114111");
    EXPECT_ERROR("--max-outbuf", "--max-frame", "1M", "--max-outbuf", "1M");
    EXPECT_ERROR("--max-outbuf", "--max-outbuf", "1M", "--max-frame", "1M");
    /* Against the default max-frame (16M). */
    EXPECT_ERROR("--max-outbuf", "--max-outbuf", "16M");
    EXPECT_OK(&c, "--max-outbuf", "16448K");
    assert_int_equal(c.max_outbuf, (16u << 20) + 65536);
    /* max-frame 0 still needs 64K. */
    EXPECT_OK(&c, "--max-frame", "0", "--max-outbuf", "64K");
    assert_int_equal(c.max_outbuf, 65536);
    EXPECT_ERROR("--max-outbuf", "--max-frame", "0", "--max-outbuf", "65535");
    /* A large one. */
    EXPECT_OK(&c, "--max-outbuf", "8G");
    assert_int_equal(c.max_outbuf, (size_t)8 << 30);

    /* Malformed and absurd values. */
    EXPECT_ERROR("--max-outbuf", "--max-outbuf", "abc");
    EXPECT_ERROR("--max-outbuf", "--max-outbuf", "");
    EXPECT_ERROR("--max-outbuf", "--max-outbuf", "-5");
    EXPECT_ERROR("--max-outbuf", "--max-outbuf", "9223372036854775808"); /* > SIZE_MAX/2 */
    EXPECT_ERROR("--max-outbuf", "--max-outbuf", "18446744073709551615");
    EXPECT_OK(&c, "--max-outbuf", "9223372036854775807");
    assert_int_equal(c.max_outbuf, SIZE_MAX / 2);
}

static void test_offline_flags(void **state) {
    (void)state;
    config c;
    EXPECT_OK(&c, "--offline-max-messages", "0", "--offline-max-bytes", "0");
    assert_int_equal(c.offline_max_messages, 0);
    assert_int_equal(c.offline_max_bytes, 0);
    EXPECT_OK(&c, "--offline-max-messages", "18446744073709551615",
              "--offline-max-bytes", "1G");
    assert_int_equal(c.offline_max_messages, UINT64_MAX);
    assert_int_equal(c.offline_max_bytes, 1u << 30);
    EXPECT_OK(&c, "--offline-max-bytes", "123");
    assert_int_equal(c.offline_max_bytes, 123);

    /* A count takes no size suffix. */
    EXPECT_ERROR("--offline-max-messages", "--offline-max-messages", "5K");
    EXPECT_ERROR("--offline-max-messages", "--offline-max-messages", "-1");
    EXPECT_ERROR("--offline-max-messages", "--offline-max-messages", "");
    EXPECT_ERROR("--offline-max-messages", "--offline-max-messages", "x");
    EXPECT_ERROR("--offline-max-bytes", "--offline-max-bytes", "x");
    EXPECT_ERROR("--offline-max-bytes", "--offline-max-bytes", "-1");
    EXPECT_ERROR("--offline-max-bytes", "--offline-max-bytes", "");
    EXPECT_ERROR("--offline-max-bytes", "--offline-max-bytes", "99999999999999999999");
}

static void test_log_level(void **state) {
    (void)state;
    config c;
    static const struct { const char *s; int level; } ok[] = {
        {"error", LOG_ERROR}, {"warn", LOG_WARN}, {"warning", LOG_WARN},
        {"info", LOG_INFO}, {"debug", LOG_DEBUG}, {"DEBUG", LOG_DEBUG},
        {"Warn", LOG_WARN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        EXPECT_OK(&c, "--log-level", ok[i].s);
        assert_int_equal(c.log_level, ok[i].level);
    }
    EXPECT_ERROR("--log-level", "--log-level", "bogus");
    EXPECT_ERROR("'bogus'", "--log-level", "bogus");
    EXPECT_ERROR("--log-level", "--log-level", "");
    EXPECT_ERROR("--log-level", "--log-level", "3");
    EXPECT_ERROR("--log-level", "--log-level", "debugx");
}

static void test_help_version(void **state) {
    (void)state;
    config c;
    assert_int_equal(parse(&c, "--help", (const char *)NULL), CONFIG_HELP);
    assert_int_equal(parse(&c, "--version", (const char *)NULL), CONFIG_VERSION);
    /* After valid options; and the first of the two wins. */
    assert_int_equal(parse(&c, "--port", "1", "--help", (const char *)NULL), CONFIG_HELP);
    assert_int_equal(parse(&c, "--help", "--version", (const char *)NULL), CONFIG_HELP);
    assert_int_equal(parse(&c, "--version", "--help", (const char *)NULL), CONFIG_VERSION);
    /* Options are handled in order: an error before --help is an error... */
    EXPECT_ERROR("--bogus", "--bogus", "--help");
    EXPECT_ERROR("--port", "--port", "x", "--help");
    /* ...and --help before a bad option wins. */
    assert_int_equal(parse(&c, "--help", "--bogus", (const char *)NULL), CONFIG_HELP);
    assert_int_equal(parse(&c, "--hel", (const char *)NULL), CONFIG_HELP);
    /* The result values are distinct. */
    assert_true(CONFIG_OK != CONFIG_HELP && CONFIG_HELP != CONFIG_VERSION &&
                CONFIG_VERSION != CONFIG_ERROR && CONFIG_OK != CONFIG_ERROR);
}

/* The settings of devices and conversations. */
static void test_device_settings(void **state) {
    (void)state;
    config c;
    assert_int_equal(parse(&c, (const char *)NULL), CONFIG_OK);
    assert_int_equal(c.device_ttl_ms, CONFIG_DEFAULT_DEVICE_TTL_MS);
    assert_int_equal(c.history_ttl_ms, 0);
    assert_int_equal(c.dedup_ms, CONFIG_DEFAULT_DEDUP_MS);
    assert_int_equal(parse(&c, "--device-ttl", "2h", "--history-ttl", "30d",
                           "--dedup-window", "90s", (const char *)NULL),
                     CONFIG_OK);
    assert_int_equal(c.device_ttl_ms, 7200000);
    assert_int_equal(c.history_ttl_ms, (uint64_t)30 * 86400000);
    assert_int_equal(c.dedup_ms, 90000);
    EXPECT_ERROR("--dedup-window", "--dedup-window", "500ms");
    EXPECT_ERROR("--device-ttl", "--device-ttl", "soon");
    EXPECT_ERROR("--history-ttl", "--history-ttl", "-1");
}

static void test_unknown_and_missing(void **state) {
    (void)state;
    EXPECT_ERROR("--bogus", "--bogus");
    EXPECT_ERROR("--bogus", "--port", "1", "--bogus");
    EXPECT_ERROR("--bogus=1", "--bogus=1");
    EXPECT_ERROR("-p", "-p");            /* no short options at all */
    EXPECT_ERROR("-h", "-h");
    EXPECT_ERROR("--max", "--max", "5"); /* ambiguous: max-frame / max-outbuf */
    EXPECT_ERROR("--echo", "--echo=1");  /* takes no value */
    EXPECT_ERROR("unknown", "--bogus");

    /* Every flag that takes a value, given last without one. */
    static const char *const need[] = {
        "--bind", "--port", "--data-dir", "--max-frame", "--max-outbuf",
        "--offline-max-messages", "--offline-max-bytes", "--log-level",
        "--auth", "--login-timeout", "--max-connections", "--max-conns-per-ip",
        "--rate-msgs", "--rate-bytes", "--tls-port", "--tls-cert", "--tls-key",
        "--tls-ca", "--device-ttl", "--history-ttl", "--dedup-window",
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        EXPECT_ERROR(need[i], need[i]);
        EXPECT_ERROR("value", need[i]);
        EXPECT_ERROR(need[i], "--echo", need[i]);
    }
}

static void test_stray_argument(void **state) {
    (void)state;
    EXPECT_ERROR("foo", "foo");
    EXPECT_ERROR("foo", "--port", "1", "foo");
    EXPECT_ERROR("foo", "foo", "--port", "1");    /* permuted by getopt */
    EXPECT_ERROR("bar", "--", "bar");
    EXPECT_ERROR("--echo", "--", "--echo");       /* after --, not an option */
    EXPECT_ERROR("-", "-");
    EXPECT_ERROR("unexpected", "foo");
    config c;
    EXPECT_OK(&c, "--port", "1", "--");
    assert_int_equal(c.port, 1);
}

static void test_error_truncated(void **state) {
    (void)state;
    char *argv[] = {arena_dup("chat-server"), arena_dup("--port"),
                    arena_dup("65536"), NULL};
    config c;
    config_defaults(&c);
    char small[8];
    memset(small, 'Z', sizeof small);
    assert_int_equal(config_parse(&c, 3, argv, small, sizeof small), CONFIG_ERROR);
    assert_int_equal(strlen(small), 7); /* NUL-terminated within errlen */
    assert_memory_equal(small, "--port:", 7);
}

static void test_repeated_calls(void **state) {
    (void)state;
    config c;
    /* Alternate errors, successes and early returns: each call starts from
     * the first argument again. */
    for (int i = 0; i < 50; i++) {
        EXPECT_ERROR("--bogus", "--echo", "--bogus");
        EXPECT_OK(&c, "--port", "4242");
        assert_int_equal(c.port, 4242);
        assert_int_equal(parse(&c, "--help", "--port", "1", (const char *)NULL), CONFIG_HELP);
        EXPECT_OK(&c, "--port", "17", "--echo");
        assert_int_equal(c.port, 17);
        assert_int_equal(c.echo, 1);
        EXPECT_ERROR("--port", "--echo", "--port");
        EXPECT_ERROR("stray", "--echo", "stray");
        EXPECT_OK(&c, "--echo");
        assert_int_equal(c.echo, 1);
        assert_int_equal(c.port, 8888);
    }
}

static void test_usage(void **state) {
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_usage(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(text);
    /* Every setting of the table, with its default. */
    for (size_t i = 0; i < config_nsettings; i++) {
        char flag[64], def[128];
        const setting *st = &config_settings[i];
        snprintf(flag, sizeof flag, "--%s", st->name);
        if (!strstr(text, flag)) fail_msg("usage lacks '%s'", flag);
        if (st->flags & SET_CLI) continue;
        config d;
        config_defaults(&d);
        config_value(&d, st, def, sizeof def);
        if (st->def_text) snprintf(def, sizeof def, "%s", st->def_text);
        char want[160];
        snprintf(want, sizeof want, "(default %s", def);
        /* the help wraps: compare with the blanks squeezed out */
        char *flat = strdup(text), *w = flat;
        for (const char *r = text; *r; r++)
            if (*r != ' ' && *r != '\n') *w++ = *r;
        *w = '\0';
        w = want;
        for (const char *r = want; *r; r++)
            if (*r != ' ') *w++ = *r;
        *w = '\0';
        if (!strstr(flat, want)) fail_msg("usage lacks '%s' of --%s", want, st->name);
        free(flat);
    }
    static const char *const words[] = {"Usage:", "127.0.0.1", "8888",
                                        "./chat-data", "16M", "[reload]"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strstr(text, words[i])) fail_msg("usage lacks '%s'", words[i]);
    free(text);
}

/* Regressions: a short-option cluster must not leave getopt state behind
 * for the next parse, errors name the offending word, and a flag without a
 * value says so. */
static void test_getopt_state_and_wording(void **state) {
    (void)state;
    EXPECT_ERROR("-x", "-xy");
    config c;
    assert_int_equal(parse(&c, "--port", "5", (const char *)NULL), CONFIG_OK);
    assert_int_equal(c.port, 5);
    EXPECT_ERROR("--echo: takes no value", "--echo=1");
    EXPECT_ERROR("--max-frame: needs a value", "--max-frame");
    EXPECT_ERROR("--offline-max-bytes", "--offline-max-bytes", " -1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getopt_state_and_wording),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_flags),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_port),
        cmocka_unit_test(test_metrics_port),
        cmocka_unit_test(test_bind_and_data_dir),
        cmocka_unit_test(test_protected_mode),
        cmocka_unit_test(test_security_flags),
        cmocka_unit_test(test_max_frame),
        cmocka_unit_test(test_max_outbuf),
        cmocka_unit_test(test_offline_flags),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_unknown_and_missing),
        cmocka_unit_test(test_device_settings),
        cmocka_unit_test(test_stray_argument),
        cmocka_unit_test(test_error_truncated),
        cmocka_unit_test(test_repeated_calls),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
