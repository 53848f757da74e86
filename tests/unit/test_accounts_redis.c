/*
 * test_accounts_redis.c -- the cluster's accounts against a real
 * redis-server (tests/support/redisfix.[ch]): the tool's side
 * (accounts_redis.c on rblock.c, what `chat-server user --cluster` runs)
 * and the node's (store_account of the cluster store, store_redis_acct.c).
 *
 * Covers: add, exists, add twice (EEXIST, the first hash kept), passwd
 * (the new password verifies, the old one not; an unknown id ENOENT), del
 * (pw and the chat:accounts member gone, the user's other fields kept;
 * again: ENOENT), list ascending over more ids than one SSCAN batch, a
 * member that is not an id refused with a sentence; a password and an ACL
 * user (AUTH), TLS (rediss://) with its CA, the wrong CA refused; nothing
 * listening: open fails with a sentence naming the address. The node:
 * store_account answers the hash the tool wrote, nil for a user without
 * one, never inside the call, and STORE_EIO at once while Redis is down.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "../support/looputil.h"
#include "../support/redisfix.h"
#include "server/accounts.h"
#include "server/accounts_redis.h"
#include "server/config.h"
#include "server/store_redis.h"

typedef struct fx {
    redisfix f;
    config cfg;
    redisContext *raw;   /* the test's own (blocking hiredis, plain TCP) */
} fx;

static int setup(void **state) {
    fx *x = calloc(1, sizeof *x);
    if (!x || redisfix_init(&x->f)) return -1;
    config_defaults(&x->cfg);
    *state = x;
    return 0;
}

static int teardown(void **state) {
    fx *x = *state;
    if (x->raw) redisFree(x->raw);
    redisfix_cleanup(&x->f);
    free(x);
    return 0;
}

static void start(fx *x, const redisfix_opts *o) {
    if (redisfix_start(&x->f, o)) fail_msg("%s", x->f.err);
    snprintf(x->cfg.cluster, sizeof x->cfg.cluster, "%s://127.0.0.1:%d",
             o && o->tls_cert ? "rediss" : "redis", x->f.port);
}

static redisContext *raw(fx *x) {
    if (!x->raw) {
        x->raw = redisConnect("127.0.0.1", x->f.port);
        if (!x->raw || x->raw->err) fail_msg("hiredis: cannot connect");
    }
    return x->raw;
}

/* A command on the raw connection; its reply (the caller frees it). */
static redisReply *tcmd(fx *x, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(raw(x), fmt, ap);
    va_end(ap);
    if (!r) fail_msg("hiredis: no reply");
    return r;
}

static accounts_redis *open_ok(fx *x) {
    accounts_redis *a;
    char err[512];
    int r = accounts_redis_open(&a, &x->cfg, err, sizeof err);
    if (r) fail_msg("accounts_redis_open: %d %s", r, err);
    return a;
}

/* u:{id}'s pw, or "" (static). */
static const char *pw_of(fx *x, uint32_t id) {
    static char out[256];
    redisReply *r = tcmd(x, "HGET u:{%u} pw", id);
    snprintf(out, sizeof out, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

static void test_add_passwd_del(void **state) {
    fx *x = *state;
    start(x, NULL);
    accounts_redis *a = open_ok(x);
    assert_int_equal(accounts_redis_exists(a, 7), 0);
    assert_int_equal(accounts_redis_add(a, 7, "seven", 5), ACCOUNTS_OK);
    assert_int_equal(accounts_redis_exists(a, 7), 1);
    char first[256];
    snprintf(first, sizeof first, "%s", pw_of(x, 7));
    assert_true(strncmp(first, "$argon2id$", 10) == 0);
    assert_int_equal(accounts_check(first, "seven", 5), ACCOUNTS_OK);
    /* add twice: refused, the first hash kept */
    assert_int_equal(accounts_redis_add(a, 7, "other", 5), ACCOUNTS_EEXIST);
    assert_string_equal(pw_of(x, 7), first);
    /* passwd */
    assert_int_equal(accounts_redis_passwd(a, 8, "x", 1), ACCOUNTS_ENOENT);
    assert_int_equal(accounts_redis_exists(a, 8), 0);
    assert_int_equal(accounts_redis_passwd(a, 7, "new one", 7), ACCOUNTS_OK);
    assert_int_equal(accounts_check(pw_of(x, 7), "new one", 7), ACCOUNTS_OK);
    assert_int_equal(accounts_check(pw_of(x, 7), "seven", 5), ACCOUNTS_EBADPW);
    /* del: pw and the member go; the user's other fields stay */
    redisReply *r = tcmd(x, "HSET u:{7} qn 3");
    freeReplyObject(r);
    assert_int_equal(accounts_redis_del(a, 7), ACCOUNTS_OK);
    assert_string_equal(pw_of(x, 7), "");
    r = tcmd(x, "SISMEMBER chat:accounts 7");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = tcmd(x, "HGET u:{7} qn");
    assert_string_equal(r->str, "3");
    freeReplyObject(r);
    assert_int_equal(accounts_redis_del(a, 7), ACCOUNTS_ENOENT);
    assert_int_equal(accounts_redis_add(a, 0, "x", 1), ACCOUNTS_EINVAL);
    assert_int_equal(accounts_redis_add(a, 9, "", 0), ACCOUNTS_EINVAL);
    accounts_redis_close(a);
}

static void test_list(void **state) {
    fx *x = *state;
    start(x, NULL);
    accounts_redis *a = open_ok(x);
    uint32_t *ids;
    size_t n;
    assert_int_equal(accounts_redis_list(a, &ids, &n), ACCOUNTS_OK);
    assert_int_equal(n, 0);
    assert_null(ids);
    assert_int_equal(accounts_redis_add(a, 12, "p", 1), ACCOUNTS_OK);
    assert_int_equal(accounts_redis_add(a, 3, "p", 1), ACCOUNTS_OK);
    assert_int_equal(accounts_redis_add(a, 4294967295u, "p", 1), ACCOUNTS_OK);
    /* more members than one SSCAN batch (1000), as the tool would list
     * them (only the set is read) */
    for (uint32_t i = 1000; i < 3500; i++) {
        redisReply *r = tcmd(x, "SADD chat:accounts %u", i);
        freeReplyObject(r);
    }
    assert_int_equal(accounts_redis_list(a, &ids, &n), ACCOUNTS_OK);
    assert_int_equal(n, 2503);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 12);
    for (size_t i = 2; i < 2502; i++) assert_int_equal(ids[i], 1000 + i - 2);
    assert_int_equal(ids[2502], 4294967295u);
    free(ids);
    /* a member that is not an id: refused, with a sentence */
    redisReply *r = tcmd(x, "SADD chat:accounts 0x7");
    freeReplyObject(r);
    assert_int_equal(accounts_redis_list(a, &ids, &n), ACCOUNTS_EDB);
    assert_null(ids);
    assert_non_null(strstr(accounts_redis_errmsg(a), "not a user id"));
    accounts_redis_close(a);
}

static void test_password_and_acl_user(void **state) {
    fx *x = *state;
    static const char *const args[] = {"--requirepass", "s3cret", NULL};
    start(x, &(redisfix_opts){.args = args, .password = "s3cret"});
    char pwfile[256];
    redisfix_path(&x->f, "pw.txt", pwfile, sizeof pwfile);
    FILE *f = fopen(pwfile, "w");
    assert_non_null(f);
    fputs("wrong\n", f);
    assert_int_equal(fclose(f), 0);
    snprintf(x->cfg.cluster_password_file,
             sizeof x->cfg.cluster_password_file, "%s", pwfile);
    accounts_redis *a;
    char err[512];
    assert_int_equal(accounts_redis_open(&a, &x->cfg, err, sizeof err),
                     ACCOUNTS_EDB);
    assert_null(a);
    assert_non_null(strstr(err, "127.0.0.1"));
    f = fopen(pwfile, "w");
    assert_non_null(f);
    fputs("s3cret\n", f);
    assert_int_equal(fclose(f), 0);
    a = open_ok(x);
    assert_int_equal(accounts_redis_add(a, 5, "five", 4), ACCOUNTS_OK);
    accounts_redis_close(a);
    /* an ACL user */
    redisReply *r = tcmd(x, "AUTH s3cret");
    freeReplyObject(r);
    r = tcmd(x, "ACL SETUSER admin on >adminpw ~* &* +@all");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    f = fopen(pwfile, "w");
    assert_non_null(f);
    fputs("adminpw\n", f);
    assert_int_equal(fclose(f), 0);
    snprintf(x->cfg.cluster, sizeof x->cfg.cluster,
             "redis://admin@127.0.0.1:%d", x->f.port);
    a = open_ok(x);
    assert_int_equal(accounts_redis_exists(a, 5), 1);
    accounts_redis_close(a);
}

static void test_tls(void **state) {
    fx *x = *state;
    redisfix_tls t;
    if (redisfix_certs(&x->f, &t)) fail_msg("%s", x->f.err);
    start(x, &(redisfix_opts){.tls_cert = t.cert, .tls_key = t.key,
                              .tls_ca = t.ca});
    snprintf(x->cfg.cluster_tls_ca, sizeof x->cfg.cluster_tls_ca, "%s",
             t.other);
    accounts_redis *a;
    char err[512];
    assert_int_equal(accounts_redis_open(&a, &x->cfg, err, sizeof err),
                     ACCOUNTS_EDB);
    assert_non_null(strstr(err, "certificate verify failed"));
    snprintf(x->cfg.cluster_tls_ca, sizeof x->cfg.cluster_tls_ca, "%s", t.ca);
    a = open_ok(x);
    assert_int_equal(accounts_redis_add(a, 6, "six", 3), ACCOUNTS_OK);
    uint32_t *ids;
    size_t n;
    assert_int_equal(accounts_redis_list(a, &ids, &n), ACCOUNTS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 6);
    free(ids);
    accounts_redis_close(a);
}

static void test_nothing_listening(void **state) {
    fx *x = *state;
    start(x, NULL);
    int port = x->f.port;
    if (redisfix_kill(&x->f)) fail_msg("%s", x->f.err);
    accounts_redis *a;
    char err[512], want[64];
    assert_int_equal(accounts_redis_open(&a, &x->cfg, err, sizeof err),
                     ACCOUNTS_EDB);
    assert_null(a);
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "refused"));
}

/* ---- the node: store_account ------------------------------------------ */

typedef struct acc_seen {
    int n, in_call, status;
    char hash[256];
    int null_hash;
} acc_seen;

static int in_call;

static void cb_account(void *ctx, void *token, const char *hash, size_t len,
                       int status) {
    acc_seen *s = token;
    (void)ctx;
    s->in_call = in_call;
    s->n++;
    s->status = status;
    s->null_hash = hash == NULL;
    snprintf(s->hash, sizeof s->hash, "%.*s", (int)len, hash ? hash : "");
}

static void cb_live(void *ctx, uint32_t user, const store_row *row) {
    (void)ctx;
    (void)user;
    (void)row;
}

static void cb_resync(void *ctx) { (void)ctx; }

static void ask(store *s, uv_loop_t *loop, uint32_t user, acc_seen *seen) {
    memset(seen, 0, sizeof *seen);
    in_call = 1;
    store_account(s, user, seen);
    in_call = 0;
    WAIT_FOR(loop, seen->n > 0, 5000); /* account_done */
    assert_int_equal(seen->n, 1);
    assert_false(seen->in_call);
}

static void test_node_reads_the_hash(void **state) {
    fx *x = *state;
    start(x, NULL);
    accounts_redis *a = open_ok(x);
    assert_int_equal(accounts_redis_add(a, 21, "pw21", 4), ACCOUNTS_OK);
    accounts_redis_close(a);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    store_redis_config c = {0};
    c.addrs[0].host = "127.0.0.1";
    c.addrs[0].port = (uint16_t)x->f.port;
    c.naddrs = 1;
    c.open_timeout_ms = 5000;
    c.command_timeout_ms = 1000;
    c.connect_timeout_ms = 500;
    c.no_janitor = 1;
    store_callbacks cb = {.account_done = cb_account, .live = cb_live,
                          .resync = cb_resync};
    store *s = NULL;
    char err[512];
    if (store_redis_open(&s, &loop, &c, &cb, err, sizeof err))
        fail_msg("store_redis_open: %s", err);
    assert_int_equal(store_accounts(s), 1);
    acc_seen seen;
    ask(s, &loop, 21, &seen);
    assert_int_equal(seen.status, STORE_OK);
    assert_false(seen.null_hash);
    assert_string_equal(seen.hash, pw_of(x, 21));
    assert_int_equal(accounts_check(seen.hash, "pw21", 4), ACCOUNTS_OK);
    ask(s, &loop, 22, &seen); /* no account */
    assert_int_equal(seen.status, STORE_OK);
    assert_true(seen.null_hash);
    /* Redis down: a failure at once, not after a deadline */
    if (redisfix_kill(&x->f)) fail_msg("%s", x->f.err);
    redisFree(x->raw);
    x->raw = NULL;
    ask(s, &loop, 21, &seen); /* (the node may not have noticed yet) */
    assert_int_equal(seen.status, STORE_EIO);
    assert_true(seen.null_hash);
    ask(s, &loop, 21, &seen); /* noticed: refused on the next turn */
    assert_int_equal(seen.status, STORE_EIO);
    store_stop(s);
    (void)uv_run(&loop, UV_RUN_DEFAULT); /* (ends: every handle closed) */
    store_free(s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_passwd_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_and_acl_user, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_listening, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_node_reads_the_hash, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
