/*
 * test_cli_addr.c -- chat-client's --host values (src/cli/addr.c): HOST,
 * HOST:PORT, [IPV6]:PORT, bare IPv6, the default port, the labels messages
 * use, and every malformed value refused with its reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cli/addr.h"

static void test_good_values(void **state) {
    (void)state;
    static const struct {
        const char *arg, *host;
        uint16_t port;
        const char *label;
    } cases[] = {
        {"example.org", "example.org", 8888, "example.org:8888"},
        {"example.org:9000", "example.org", 9000, "example.org:9000"},
        {"127.0.0.1:1", "127.0.0.1", 1, "127.0.0.1:1"},
        {"127.0.0.1:65535", "127.0.0.1", 65535, "127.0.0.1:65535"},
        {"[::1]:8001", "::1", 8001, "[::1]:8001"},
        {"[::1]", "::1", 8888, "[::1]:8888"},
        {"::1", "::1", 8888, "[::1]:8888"}, /* bare: no port can be told */
        {"fe80::1:2", "fe80::1:2", 8888, "[fe80::1:2]:8888"},
        {"h:007", "h", 7, "h:7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_addr a;
        char why[128] = "";
        if (cli_addr_parse(cases[i].arg, 8888, &a, why, sizeof why) != 0)
            fail_msg("'%s' refused: %s", cases[i].arg, why);
        assert_string_equal(a.host, cases[i].host);
        assert_int_equal(a.port, cases[i].port);
        assert_string_equal(a.label, cases[i].label);
    }
}

static void test_bad_values(void **state) {
    (void)state;
    char long_host[CHAT_HOST_MAX + 8];
    memset(long_host, 'a', CHAT_HOST_MAX + 1);
    strcpy(long_host + CHAT_HOST_MAX + 1, ":80"); /* a 256-byte host */
    static const struct {
        const char *arg, *why;
    } cases[] = {
        {"", "the host is empty"},
        {":80", "the host is empty"},
        {"[]:80", "the host is empty"},
        {"h:", "the port must be 1-65535, not ''"},
        {"h:0", "the port must be 1-65535, not '0'"},
        {"h:65536", "the port must be 1-65535, not '65536'"},
        {"h:123456", "the port must be 1-65535, not '123456'"},
        {"h:8a", "the port must be 1-65535, not '8a'"},
        {"h:+80", "the port must be 1-65535, not '+80'"},
        {"h: 80", "the port must be 1-65535, not ' 80'"},
        {"[::1]:0", "the port must be 1-65535, not '0'"},
        {"[::1", "'[' without ']'"},
        {"[::1]x", "only ':PORT' may follow ']'"},
        {"[::1]80", "only ':PORT' may follow ']'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_addr a;
        char why[128] = "";
        if (cli_addr_parse(cases[i].arg, 8888, &a, why, sizeof why) != -1)
            fail_msg("'%s' accepted", cases[i].arg);
        assert_string_equal(why, cases[i].why);
    }
    cli_addr a;
    char why[128];
    assert_int_equal(cli_addr_parse(long_host, 8888, &a, why, sizeof why), -1);
    assert_string_equal(why, "the host is over 255 bytes");
    long_host[CHAT_HOST_MAX] = 0; /* 255 bytes: the limit itself */
    assert_int_equal(cli_addr_parse(long_host, 8888, &a, why, sizeof why), 0);
    assert_int_equal(strlen(a.host), CHAT_HOST_MAX);
    assert_int_equal(strlen(a.label), CHAT_HOST_MAX + 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
