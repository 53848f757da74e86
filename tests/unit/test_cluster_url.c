/*
 * test_cluster_url.c -- unit tests for src/server/cluster_url.{h,c}: the
 * value of --cluster.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "server/cluster_url.h"

static cluster_url u;
static char err[320];

static void test_one_address(void **state) {
    (void)state;
    assert_int_equal(cluster_url_parse("redis://127.0.0.1:6379", &u, err,
                                       sizeof err), 0);
    assert_int_equal(u.tls, 0);
    assert_string_equal(u.user, "");
    assert_int_equal(u.n, 1);
    assert_string_equal(u.host[0], "127.0.0.1");
    assert_int_equal(u.port[0], 6379);
}

static void test_user_tls_several(void **state) {
    (void)state;
    assert_int_equal(cluster_url_parse(
        "rediss://chat@redis-a.example:6380,[::1]:7000,10.0.0.5:1", &u, err,
        sizeof err), 0);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.user, "chat");
    assert_int_equal(u.n, 3);
    assert_string_equal(u.host[0], "redis-a.example");
    assert_int_equal(u.port[0], 6380);
    assert_string_equal(u.host[1], "::1");
    assert_int_equal(u.port[1], 7000);
    assert_string_equal(u.host[2], "10.0.0.5");
    assert_int_equal(u.port[2], 1);
}

static void test_errors(void **state) {
    (void)state;
    static const struct { const char *in, *says; } bad[] = {
        {"127.0.0.1:6379", "must start with redis://"},
        {"http://h:1", "must start with redis://"},
        {"redis://", "no HOST:PORT"},
        {"redis://h", "the port is missing"},
        {"redis://h:", "the port is missing"},
        {"redis://h:0", "1-65535"},
        {"redis://h:65536", "1-65535"},
        {"redis://h:12x", "1-65535"},
        {"redis://:6379", "the host is missing"},
        {"redis://::1:6379", "in brackets"},
        {"redis://[::1:6379", "closing ]"},
        {"redis://[::1]", "the port is missing"},
        {"redis://u:pw@h:1", "no password in the URL"},
        {"redis://@h:1", "user before @ is empty"},
        {"redis://h:1,", "empty address after the last comma"},
        {"redis://h:1,,h:2", "empty address between commas"},
        {"redis://h:1/0", "no path"},
        {"redis://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9", "more than 8"},
        {"redis://h h:1", "not a host"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (cluster_url_parse(bad[i].in, &u, err, sizeof err) != -1)
            fail_msg("accepted: %s", bad[i].in);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: said '%s', wanted '%s'", bad[i].in, err,
                     bad[i].says);
    }
    /* eight is the most */
    assert_int_equal(cluster_url_parse("redis://a:1,b:2,c:3,d:4,e:5,f:6,g:7,"
                                       "h:8", &u, err, sizeof err), 0);
    assert_int_equal(u.n, 8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_address),
        cmocka_unit_test(test_user_tls_several),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
