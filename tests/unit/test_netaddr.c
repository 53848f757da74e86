/*
 * test_netaddr.c -- unit tests for src/server/netaddr.{h,c}: addresses from
 * sockaddrs, their log form, loopback, and the per-address count key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "server/netaddr.h"

static netaddr v4(const char *ip, uint16_t port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    netaddr n;
    netaddr_from_sockaddr(&n, (struct sockaddr *)&a);
    return n;
}

static netaddr v6(const char *ip, uint16_t port) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    netaddr n;
    netaddr_from_sockaddr(&n, (struct sockaddr *)&a);
    return n;
}

static void test_format(void **state) {
    (void)state;
    char s[NETADDR_STRLEN];
    netaddr a = v4("192.0.2.7", 51234);
    assert_string_equal(netaddr_format(&a, s), "192.0.2.7:51234");
    a = v6("2001:db8::1", 443);
    assert_string_equal(netaddr_format(&a, s), "2001:db8::1:443");
    a = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    assert_string_equal(netaddr_format(&a, s),
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535");
    struct sockaddr un = {.sa_family = AF_UNIX};
    netaddr_from_sockaddr(&a, &un);
    assert_string_equal(netaddr_format(&a, s), "?:0");
}

static void test_loopback(void **state) {
    (void)state;
    netaddr a = v4("127.0.0.1", 1);
    assert_true(netaddr_is_loopback(&a));
    a = v4("127.255.0.9", 1);
    assert_true(netaddr_is_loopback(&a));
    a = v4("128.0.0.1", 1);
    assert_false(netaddr_is_loopback(&a));
    a = v4("10.0.0.1", 1);
    assert_false(netaddr_is_loopback(&a));
    a = v6("::1", 1);
    assert_true(netaddr_is_loopback(&a));
    a = v6("::ffff:127.0.0.5", 1);
    assert_true(netaddr_is_loopback(&a));
    a = v6("::ffff:10.0.0.5", 1);
    assert_false(netaddr_is_loopback(&a));
    a = v6("::2", 1);
    assert_false(netaddr_is_loopback(&a));
    netaddr zero;
    memset(&zero, 0, sizeof zero); /* unknown peer: not loopback */
    assert_false(netaddr_is_loopback(&zero));
}

static void test_key(void **state) {
    (void)state;
    netaddr a = v4("10.1.2.3", 1), b = v4("10.1.2.3", 2), c = v4("10.1.2.4", 1);
    assert_int_equal(netaddr_key(&a), 0x0a010203u);
    assert_int_equal(netaddr_key(&a), netaddr_key(&b)); /* the port aside */
    assert_int_not_equal(netaddr_key(&a), netaddr_key(&c));
    netaddr m = v6("::ffff:10.1.2.3", 9); /* IPv4-mapped: the IPv4 key */
    assert_int_equal(netaddr_key(&m), netaddr_key(&a));
    netaddr p = v6("2001:db8:1:2::1", 1), q = v6("2001:db8:1:2:ffff::9", 1),
            r = v6("2001:db8:1:3::1", 1);
    assert_int_equal(netaddr_key(&p), netaddr_key(&q)); /* one /64 */
    assert_int_not_equal(netaddr_key(&p), netaddr_key(&r));
    netaddr z = v4("0.0.0.0", 1); /* never the map's empty key */
    assert_int_not_equal(netaddr_key(&z), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
