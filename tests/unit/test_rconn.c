/*
 * test_rconn.c -- src/server/rconn.[ch] (one Redis connection on the loop)
 * against a real redis-server (tests/support/redisfix.[ch]).
 *
 * Every wait runs the loop until a condition holds or a deadline timer
 * fires (WAIT_FOR, tests/support/looputil.h); nothing sleeps. Every
 * callback asserts that it does not run inside an rconn_* call (the in_call
 * flag, set around each call), and after every test the connection is
 * closed and the loop must close too (no handle left behind).
 *
 * Covers: plain commands; 10,000 pipelined commands in one write, replies
 * in order; a wrong and a right password; an ACL user; TLS with a good CA,
 * a wrong CA and a wrong server name (refused with the reason); nothing
 * listening (on_down once per streak with the reason, commands failing
 * later, RCONN_WAIT ones after the command timeout); a frozen server
 * (SIGSTOP: the command deadline fails everything in flight, an idle
 * connection notices through its keepalive, and after SIGCONT both come
 * back with on_ready again); SIGKILL and restart (a waiting command goes
 * out after on_ready's setup, the data survived); a replica listed first
 * with the role check (the master is chosen); pub/sub (confirmations and
 * messages to on_push, PING in subscribed mode, leaving it); the queue
 * limit; close with commands queued and in flight; options refused; the
 * state table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/looputil.h"
#include "../support/redisfix.h"
#include "server/rconn.h"

/* ---- the in-call check ----------------------------------------------- */

static int in_call; /* an rconn_* call of the test is running */
#define CALL(x) (in_call = 1, (x), in_call = 0)

/* The owner of one connection: its hooks' counts. */
typedef struct owner {
    rconn *c;
    int ready, down, pushes, closed;
    char reason[RCONN_REASON_MAX];
    char push[8][64]; /* the last pushes: kind and payload */
    void (*setup)(struct owner *); /* in on_ready */
    int setup_done;
} owner;

static void on_ready(void *ud) {
    owner *o = ud;
    assert_false(in_call);
    o->ready++;
    if (o->setup) o->setup(o);
}

static void on_down(void *ud, const char *reason) {
    owner *o = ud;
    assert_false(in_call);
    o->down++;
    (void)snprintf(o->reason, sizeof o->reason, "%s", reason);
}

static void on_push(void *ud, const redisReply *r) {
    owner *o = ud;
    assert_false(in_call);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    const redisReply *last = r->element[r->elements - 1];
    (void)snprintf(o->push[o->pushes % 8], sizeof o->push[0], "%s %s",
                   r->element[0]->str,
                   last->type == REDIS_REPLY_STRING ? last->str : "#");
    o->pushes++;
}

static void on_closed(void *ud) {
    owner *o = ud;
    assert_false(in_call);
    o->closed++;
}

/* One command's outcome. */
typedef struct res {
    int done, status, type;
    long long integer;
    size_t elements;
    char str[128];
} res;

static void on_res(void *ud, const redisReply *r, int status) {
    res *x = ud;
    assert_false(in_call);
    x->done++;
    x->status = status;
    if (!r) return;
    x->type = r->type;
    x->integer = r->integer;
    x->elements = r->elements;
    if (r->str) (void)snprintf(x->str, sizeof x->str, "%.*s", (int)r->len,
                               r->str);
}

/* Queue argv (NULL-terminated) with cb on_res into x. */
static int cmd_flags(rconn *c, unsigned flags, res *x, const char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    int r;
    CALL(r = rconn_command_ex(c, flags, argc, argv, NULL, on_res, x));
    return r;
}
#define CMD(c, x, ...) cmd_flags((c), 0, (x), (const char *[]){__VA_ARGS__, NULL})
#define CMDW(c, x, ...) \
    cmd_flags((c), RCONN_WAIT, (x), (const char *[]){__VA_ARGS__, NULL})

/* A connection to 127.0.0.1:port with the owner's hooks. */
static rconn *open_conn(uv_loop_t *loop, owner *o, rconn_options *opt,
                        int port) {
    memset(o, 0, sizeof *o);
    if (opt->naddrs == 0) {
        opt->addrs[0].host = "127.0.0.1";
        opt->addrs[0].port = (uint16_t)port;
        opt->naddrs = 1;
    }
    opt->on_ready = on_ready;
    opt->on_down = on_down;
    opt->on_push = on_push;
    opt->ud = o;
    char err[256];
    int r = rconn_new(&o->c, loop, opt, err, sizeof err);
    if (r) fail_msg("rconn_new: %s (%s)", rconn_strerror(r), err);
    CALL(r = rconn_start(o->c));
    assert_int_equal(r, 0);
    return o->c;
}

static void close_conn(uv_loop_t *loop, owner *o) {
    CALL(rconn_close(o->c, on_closed, o));
    WAIT_FOR(loop, o->closed == 1, 5000);
}

/* Per test: a loop and a server directory. */
typedef struct fx {
    uv_loop_t loop;
    redisfix f;
} fx;

static int setup(void **state) {
    fx *x = calloc(1, sizeof *x);
    if (!x || uv_loop_init(&x->loop) || redisfix_init(&x->f)) return -1;
    *state = x;
    return 0;
}

static int teardown(void **state) {
    fx *x = *state;
    (void)uv_run(&x->loop, UV_RUN_NOWAIT);
    int r = uv_loop_close(&x->loop); /* UV_EBUSY: a handle was left */
    redisfix_cleanup(&x->f);
    free(x);
    return r == 0 ? 0 : -1;
}

static void start(fx *x, const redisfix_opts *o) {
    if (redisfix_start(&x->f, o)) fail_msg("%s", x->f.err);
}

/* ---- tests ------------------------------------------------------------ */

static void test_plain_and_pipeline(void **state) {
    fx *x = *state;
    start(x, NULL);
    owner o;
    rconn_options opt = {0};
    rconn *c = open_conn(&x->loop, &o, &opt, x->f.port);
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    assert_int_equal(rconn_get_state(c), RCONN_READY);
    res a = {0}, b = {0};
    assert_int_equal(CMD(c, &a, "SET", "k", "v"), 0);
    assert_int_equal(CMD(c, &b, "GET", "k"), 0);
    assert_int_equal(a.done + b.done, 0);
    WAIT_FOR(&x->loop, b.done == 1, 5000);
    assert_int_equal(a.status, RCONN_OK);
    assert_string_equal(a.str, "OK");
    assert_int_equal(b.type, REDIS_REPLY_STRING);
    assert_string_equal(b.str, "v");
    /* An error reply is a reply. */
    res e = {0};
    assert_int_equal(CMD(c, &e, "NOSUCHCOMMAND"), 0);
    WAIT_FOR(&x->loop, e.done == 1, 5000);
    assert_int_equal(e.status, RCONN_OK);
    assert_int_equal(e.type, REDIS_REPLY_ERROR);

    /* 10,000 commands queued in one iteration: one write, FIFO replies. */
    enum { N = 10000 };
    res *r = calloc(N, sizeof *r);
    assert_non_null(r);
    uint64_t writes = rconn_stats_get(c)->writes;
    for (int i = 0; i < N; i++) {
        char v[16];
        (void)snprintf(v, sizeof v, "%d", i);
        assert_int_equal(CMD(c, &r[i], "ECHO", v), 0);
    }
    assert_true(rconn_queued_bytes(c) > N * RCONN_CMD_OVERHEAD);
    WAIT_FOR(&x->loop, r[N - 1].done == 1, 10000);
    assert_int_equal(rconn_stats_get(c)->writes - writes, 1);
    for (int i = 0; i < N; i++) {
        char v[16];
        (void)snprintf(v, sizeof v, "%d", i);
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].status, RCONN_OK);
        assert_string_equal(r[i].str, v);
    }
    free(r);
    const rconn_stats *st = rconn_stats_get(c);
    assert_int_equal(st->commands, N + 3);
    assert_int_equal(st->replies, N + 3);
    assert_int_equal(st->failed, 0);
    assert_int_equal(st->connects, 1);
    assert_int_equal(st->rtt.count, N + 3);
    assert_int_equal(rconn_queued_bytes(c), 0);
    assert_true(rconn_check(c));
    close_conn(&x->loop, &o);
    assert_int_equal(o.down, 0);
}

static void test_password(void **state) {
    fx *x = *state;
    const char *args[] = {"--requirepass", "s3cret", NULL};
    redisfix_opts ro = {.args = args, .password = "s3cret"};
    start(x, &ro);
    owner o;
    rconn_options opt = {.password = "wrong", .backoff_min_ms = 50};
    open_conn(&x->loop, &o, &opt, x->f.port);
    WAIT_FOR(&x->loop, o.down == 1, 5000);
    assert_non_null(strstr(o.reason, "AUTH refused"));
    assert_non_null(strstr(o.reason, "WRONGPASS"));
    assert_int_equal(o.ready, 0);
    close_conn(&x->loop, &o);

    rconn_options ok = {.password = "s3cret"};
    rconn *c = open_conn(&x->loop, &o, &ok, x->f.port);
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    res p = {0};
    assert_int_equal(CMD(c, &p, "PING"), 0);
    WAIT_FOR(&x->loop, p.done == 1, 5000);
    assert_string_equal(p.str, "PONG");
    close_conn(&x->loop, &o);
}

static void test_acl_user(void **state) {
    fx *x = *state;
    const char *args[] = {"--user", "alice", "on", ">alicepw", "~*", "&*",
                          "+@all", NULL};
    start(x, &(redisfix_opts){.args = args});
    owner o;
    rconn_options bad = {.user = "alice", .password = "nope"};
    open_conn(&x->loop, &o, &bad, x->f.port);
    WAIT_FOR(&x->loop, o.down == 1, 5000);
    assert_non_null(strstr(o.reason, "WRONGPASS"));
    close_conn(&x->loop, &o);

    rconn_options good = {.user = "alice", .password = "alicepw"};
    rconn *c = open_conn(&x->loop, &o, &good, x->f.port);
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    res w = {0};
    assert_int_equal(CMD(c, &w, "ACL", "WHOAMI"), 0);
    WAIT_FOR(&x->loop, w.done == 1, 5000);
    assert_string_equal(w.str, "alice");
    close_conn(&x->loop, &o);
}

static void test_tls(void **state) {
    fx *x = *state;
    redisfix_tls t;
    if (redisfix_certs(&x->f, &t)) fail_msg("%s", x->f.err);
    start(x, &(redisfix_opts){.tls_cert = t.cert, .tls_key = t.key,
                              .tls_ca = t.ca});
    owner o;
    rconn_options good = {.tls = 1, .tls_ca_file = t.ca};
    rconn *c = open_conn(&x->loop, &o, &good, x->f.port);
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    res p = {0}, s = {0};
    assert_int_equal(CMD(c, &s, "SET", "t", "over tls"), 0);
    assert_int_equal(CMD(c, &p, "GET", "t"), 0);
    WAIT_FOR(&x->loop, p.done == 1, 5000);
    assert_string_equal(p.str, "over tls");
    close_conn(&x->loop, &o);

    /* By name: localhost is in the certificate too. */
    rconn_options byname = {.tls = 1, .tls_ca_file = t.ca, .naddrs = 1};
    byname.addrs[0].host = "localhost";
    byname.addrs[0].port = (uint16_t)x->f.port;
    open_conn(&x->loop, &o, &byname, 0);
    WAIT_FOR(&x->loop, o.ready == 1 || o.down == 1, 5000);
    assert_int_equal(o.ready, 1);
    close_conn(&x->loop, &o);

    rconn_options wrongca = {.tls = 1, .tls_ca_file = t.other};
    open_conn(&x->loop, &o, &wrongca, x->f.port);
    WAIT_FOR(&x->loop, o.down == 1, 5000);
    assert_non_null(strstr(o.reason, "certificate verify failed"));
    assert_int_equal(o.ready, 0);
    close_conn(&x->loop, &o);

    rconn_options wrongname = {.tls = 1, .tls_ca_file = t.ca,
                               .tls_server_name = "redis.example"};
    open_conn(&x->loop, &o, &wrongname, x->f.port);
    WAIT_FOR(&x->loop, o.down == 1, 5000);
    assert_non_null(strstr(o.reason, "certificate verify failed"));
    assert_non_null(strstr(o.reason, "hostname mismatch"));
    close_conn(&x->loop, &o);

    /* A missing CA file is refused at rconn_new, with the file named. */
    rconn_options missing = {.tls = 1, .tls_ca_file = "/nonexistent/t.ca.pem",
                             .naddrs = 1};
    missing.addrs[0].host = "127.0.0.1";
    missing.addrs[0].port = 1;
    rconn *bad = NULL;
    char err[256];
    assert_int_equal(rconn_new(&bad, &x->loop, &missing, err, sizeof err),
                     RCONN_ETLSCONF);
    assert_null(bad);
    assert_non_null(strstr(err, "/nonexistent/t.ca.pem"));
}

static void test_refused(void **state) {
    fx *x = *state;
    /* A port nobody listens on: the fixture's way to pick one, no server. */
    assert_int_equal(redisfix_start(&x->f, NULL), 0);
    int port = x->f.port;
    assert_int_equal(redisfix_kill(&x->f), 0);
    owner o;
    rconn_options opt = {.backoff_min_ms = 20, .backoff_max_ms = 40,
                         .command_timeout_ms = 300};
    rconn *c = open_conn(&x->loop, &o, &opt, port);
    res fast = {0}, waiting = {0};
    assert_int_equal(CMD(c, &fast, "PING"), 0);   /* not READY: fails */
    assert_int_equal(CMDW(c, &waiting, "PING"), 0); /* waits, then fails */
    assert_int_equal(fast.done, 0);
    WAIT_FOR(&x->loop, fast.done == 1, 2000);
    assert_int_equal(fast.status, RCONN_EUNSENT);
    WAIT_FOR(&x->loop, o.down == 1, 5000);
    assert_non_null(strstr(o.reason, "refused"));
    assert_string_equal(rconn_last_error(c), o.reason);
    /* More rounds fail: still one on_down for the streak. */
    WAIT_FOR(&x->loop, rconn_stats_get(c)->attempts_failed >= 4, 5000);
    assert_int_equal(o.down, 1);
    WAIT_FOR(&x->loop, waiting.done == 1, 2000);
    assert_int_equal(waiting.status, RCONN_EUNSENT);
    assert_int_equal(rconn_stats_get(c)->failed, 2);
    assert_int_equal(rconn_queued_bytes(c), 0);
    close_conn(&x->loop, &o);
}

static void test_frozen(void **state) {
    fx *x = *state;
    start(x, NULL);
    owner o, idle;
    rconn_options opt = {.command_timeout_ms = 300, .connect_timeout_ms = 300,
                         .backoff_min_ms = 20, .backoff_max_ms = 100};
    rconn *c = open_conn(&x->loop, &o, &opt, x->f.port);
    rconn_options iopt = opt;
    iopt.keepalive_ms = 100; /* an idle connection notices too */
    rconn *ic = open_conn(&x->loop, &idle, &iopt, x->f.port);
    WAIT_FOR(&x->loop, o.ready == 1 && idle.ready == 1, 5000);
    assert_int_equal(redisfix_stop(&x->f), 0);
    res r[5] = {{0}};
    for (int i = 0; i < 5; i++) assert_int_equal(CMD(c, &r[i], "PING"), 0);
    WAIT_FOR(&x->loop, r[4].done == 1, 3000);
    for (int i = 0; i < 5; i++) assert_int_equal(r[i].status, RCONN_EDOWN);
    assert_int_equal(o.down, 1);
    assert_non_null(strstr(o.reason, "command timeout"));
    assert_int_equal(rconn_stats_get(c)->deadlines, 1);
    WAIT_FOR(&x->loop, idle.down == 1, 3000);
    assert_non_null(strstr(idle.reason, "command timeout"));
    /* Attempts meanwhile connect (the kernel accepts) but get no answer. */
    WAIT_FOR(&x->loop, rconn_stats_get(c)->attempts_failed >= 1, 3000);
    assert_int_equal(redisfix_cont(&x->f), 0);
    WAIT_FOR(&x->loop, o.ready == 2 && idle.ready == 2, 5000);
    res p = {0};
    assert_int_equal(CMD(c, &p, "PING"), 0);
    WAIT_FOR(&x->loop, p.done == 1, 3000);
    assert_int_equal(p.status, RCONN_OK);
    assert_int_equal(o.down, 1);
    assert_int_equal(rconn_get_state(ic), RCONN_READY);
    close_conn(&x->loop, &o);
    close_conn(&x->loop, &idle);
}

/* A write stays in flight (a frozen server's socket buffers are full):
 * commands queued behind it are not written; at the deadline the one in
 * flight fails with EDOWN, the unwritten fail-fast one with EUNSENT, the
 * RCONN_WAIT one waits and goes out after the reconnect. */
static void test_frozen_write(void **state) {
    fx *x = *state;
    start(x, NULL);
    owner o;
    rconn_options opt = {.command_timeout_ms = 500, .connect_timeout_ms = 300,
                         .wait_timeout_ms = 5000, .backoff_min_ms = 20,
                         .backoff_max_ms = 100};
    rconn *c = open_conn(&x->loop, &o, &opt, x->f.port);
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    assert_int_equal(redisfix_stop(&x->f), 0);
    size_t big = 32u << 20; /* more than both sockets' buffers take */
    char *v = malloc(big);
    assert_non_null(v);
    memset(v, 'v', big);
    const char *argv[3] = {"SET", "big", v};
    size_t lens[3] = {3, 3, big};
    res set = {0}, fast = {0}, waiting = {0};
    int rc;
    CALL(rc = rconn_command(c, 3, argv, lens, on_res, &set));
    assert_int_equal(rc, 0);
    free(v);
    CALL(rconn_flush(c)); /* written now (the loop would block in poll) */
    assert_int_equal(rconn_stats_get(c)->commands, 1);
    assert_int_equal(CMD(c, &fast, "PING"), 0);
    assert_int_equal(CMDW(c, &waiting, "ECHO", "waited"), 0);
    WAIT_FOR(&x->loop, set.done == 1 && fast.done == 1, 3000);
    assert_int_equal(set.status, RCONN_EDOWN);
    assert_int_equal(fast.status, RCONN_EUNSENT);
    assert_int_equal(rconn_stats_get(c)->commands, 1); /* never written */
    assert_int_equal(waiting.done, 0);
    assert_int_equal(redisfix_cont(&x->f), 0);
    WAIT_FOR(&x->loop, waiting.done == 1, 5000);
    assert_int_equal(waiting.status, RCONN_OK);
    assert_string_equal(waiting.str, "waited");
    close_conn(&x->loop, &o);
}

/* on_ready's setup after a restart: must go before the waiting command. */
static res setup_res;
static void setup_get(owner *o) {
    if (o->ready < 2) return;
    assert_int_equal(CMD(o->c, &setup_res, "SET", "x", "from setup"), 0);
}

static void test_kill_restart(void **state) {
    fx *x = *state;
    start(x, NULL);
    owner o;
    rconn_options opt = {.backoff_min_ms = 20, .backoff_max_ms = 100};
    rconn *c = open_conn(&x->loop, &o, &opt, x->f.port);
    o.setup = setup_get;
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    res s = {0};
    assert_int_equal(CMD(c, &s, "SET", "x", "1"), 0);
    WAIT_FOR(&x->loop, s.done == 1, 5000);
    assert_int_equal(redisfix_kill(&x->f), 0);
    WAIT_FOR(&x->loop, o.down == 1, 5000);
    assert_non_null(strstr(o.reason, "closed the connection"));
    res fast = {0}, waited = {0};
    assert_int_equal(CMD(c, &fast, "GET", "x"), 0);
    assert_int_equal(CMDW(c, &waited, "GET", "x"), 0);
    WAIT_FOR(&x->loop, fast.done == 1, 2000);
    assert_int_equal(fast.status, RCONN_EUNSENT);
    if (redisfix_restart(&x->f)) fail_msg("%s", x->f.err);
    WAIT_FOR(&x->loop, waited.done == 1, 5000);
    assert_int_equal(o.ready, 2);
    assert_int_equal(setup_res.status, RCONN_OK);
    assert_int_equal(waited.status, RCONN_OK);
    assert_string_equal(waited.str, "from setup"); /* setup went first */
    assert_int_equal(rconn_stats_get(c)->downs, 1);
    close_conn(&x->loop, &o);
    memset(&setup_res, 0, sizeof setup_res);
}

static void test_role(void **state) {
    fx *x = *state;
    start(x, NULL);
    redisfix replica;
    assert_int_equal(redisfix_init(&replica), 0);
    char mport[16];
    (void)snprintf(mport, sizeof mport, "%d", x->f.port);
    const char *args[] = {"--replicaof", "127.0.0.1", mport, NULL};
    if (redisfix_start(&replica, &(redisfix_opts){.args = args}))
        fail_msg("%s", replica.err);
    owner o;
    rconn_options opt = {.require_master = 1, .naddrs = 2};
    opt.addrs[0].host = "127.0.0.1";
    opt.addrs[0].port = (uint16_t)replica.port;
    opt.addrs[1].host = "127.0.0.1";
    opt.addrs[1].port = (uint16_t)x->f.port;
    rconn *c = open_conn(&x->loop, &o, &opt, 0);
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    char want[32];
    (void)snprintf(want, sizeof want, "127.0.0.1:%d", x->f.port);
    assert_string_equal(rconn_peer(c), want);
    assert_int_equal(rconn_stats_get(c)->attempts_failed, 1);
    assert_non_null(strstr(rconn_last_error(c), "not the master"));
    assert_non_null(strstr(rconn_last_error(c), "slave"));
    assert_int_equal(o.down, 0);
    close_conn(&x->loop, &o);
    redisfix_cleanup(&replica);
}

static res sub_res, psub_res;
static void subscribe_all(owner *o) {
    assert_int_equal(CMD(o->c, &sub_res, "SUBSCRIBE", "ch", "ch2"), 0);
    assert_int_equal(CMD(o->c, &psub_res, "PSUBSCRIBE", "p*"), 0);
}

static void test_pubsub(void **state) {
    fx *x = *state;
    start(x, NULL);
    owner a, b;
    memset(&sub_res, 0, sizeof sub_res);
    memset(&psub_res, 0, sizeof psub_res);
    rconn_options oa = {0}, ob = {0};
    rconn *ca = open_conn(&x->loop, &a, &oa, x->f.port);
    a.setup = subscribe_all;
    rconn *cb = open_conn(&x->loop, &b, &ob, x->f.port);
    WAIT_FOR(&x->loop, psub_res.done == 1 && b.ready == 1, 5000);
    /* SUBSCRIBE's own reply: the confirmation of its last channel. */
    assert_int_equal(sub_res.status, RCONN_OK);
    assert_int_equal(sub_res.type, REDIS_REPLY_ARRAY);
    assert_int_equal(a.pushes, 3); /* subscribe ch, ch2, psubscribe p* */
    assert_string_equal(a.push[0], "subscribe #");
    res pub = {0}, pub2 = {0};
    assert_int_equal(CMD(cb, &pub, "PUBLISH", "ch", "hello"), 0);
    assert_int_equal(CMD(cb, &pub2, "PUBLISH", "pq", "patterned"), 0);
    WAIT_FOR(&x->loop, a.pushes == 5, 5000);
    assert_int_equal(pub.integer, 1);
    assert_string_equal(a.push[3], "message hello");
    assert_string_equal(a.push[4], "pmessage patterned");
    /* PING in subscribed mode answers an array: it goes to its command. */
    res ping = {0};
    assert_int_equal(CMD(ca, &ping, "PING"), 0);
    WAIT_FOR(&x->loop, ping.done == 1, 5000);
    assert_int_equal(ping.type, REDIS_REPLY_ARRAY);
    assert_int_equal(a.pushes, 5);
    /* Leave: UNSUBSCRIBE (all), PUNSUBSCRIBE (all), then a plain GET. */
    res un = {0}, pun = {0}, get = {0};
    assert_int_equal(CMD(ca, &un, "UNSUBSCRIBE"), 0);
    assert_int_equal(CMD(ca, &pun, "PUNSUBSCRIBE"), 0);
    assert_int_equal(CMD(ca, &get, "ECHO", "plain again"), 0);
    WAIT_FOR(&x->loop, get.done == 1, 5000);
    assert_int_equal(un.done + pun.done, 2);
    assert_int_equal(a.pushes, 8);
    assert_string_equal(get.str, "plain again");
    assert_int_equal(rconn_stats_get(ca)->pushes, 8);
    close_conn(&x->loop, &a);
    close_conn(&x->loop, &b);
}

static void test_queue_limit(void **state) {
    fx *x = *state;
    start(x, NULL);
    owner o;
    rconn_options opt = {.max_queue_bytes = 1000};
    rconn *c = open_conn(&x->loop, &o, &opt, x->f.port);
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    res r[32] = {{0}};
    int accepted = 0, rc = 0;
    while (accepted < 32 && (rc = CMD(c, &r[accepted], "PING")) == 0)
        accepted++;
    assert_int_equal(rc, RCONN_ELIMIT);
    assert_true(accepted > 5 && accepted < 32);
    size_t charged = rconn_queued_bytes(c);
    assert_true(charged <= 1000);
    assert_int_equal(CMD(c, &r[accepted], "PING"), RCONN_ELIMIT);
    assert_int_equal(rconn_queued_bytes(c), charged);
    WAIT_FOR(&x->loop, r[accepted - 1].done == 1, 5000);
    (void)uv_run(&x->loop, UV_RUN_NOWAIT);
    assert_int_equal(r[accepted].done, 0); /* refused: never called */
    assert_int_equal(rconn_queued_bytes(c), 0);
    assert_int_equal(CMD(c, &r[accepted], "PING"), 0); /* room again */
    WAIT_FOR(&x->loop, r[accepted].done == 1, 5000);
    close_conn(&x->loop, &o);
}

static void test_close_pending(void **state) {
    fx *x = *state;
    start(x, NULL);
    owner o;
    rconn_options opt = {0};
    rconn *c = open_conn(&x->loop, &o, &opt, x->f.port);
    WAIT_FOR(&x->loop, o.ready == 1, 5000);
    /* In flight: written to a frozen server. */
    assert_int_equal(redisfix_stop(&x->f), 0);
    res r[20] = {{0}};
    for (int i = 0; i < 10; i++) assert_int_equal(CMD(c, &r[i], "PING"), 0);
    CALL(rconn_flush(c));
    assert_int_equal(rconn_stats_get(c)->commands, 10);
    /* Queued: not written yet. */
    for (int i = 10; i < 20; i++) assert_int_equal(CMD(c, &r[i], "PING"), 0);
    CALL(rconn_close(c, on_closed, &o));
    CALL(rconn_close(c, on_closed, &o)); /* idempotent */
    res late = {0};
    assert_int_equal(CMD(c, &late, "PING"), RCONN_ECLOSED);
    for (int i = 0; i < 20; i++) assert_int_equal(r[i].done, 0);
    WAIT_FOR(&x->loop, o.closed == 1, 5000);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].status, RCONN_ECLOSED);
    }
    assert_int_equal(late.done, 0);
    assert_int_equal(redisfix_cont(&x->f), 0);
    /* Never started: closes as well. */
    owner n;
    memset(&n, 0, sizeof n);
    rconn_options nopt = {.naddrs = 1};
    nopt.addrs[0].host = "127.0.0.1";
    nopt.addrs[0].port = 1;
    assert_int_equal(rconn_new(&n.c, &x->loop, &nopt, NULL, 0), 0);
    res w = {0};
    assert_int_equal(CMDW(n.c, &w, "PING"), 0);
    close_conn(&x->loop, &n);
    assert_int_equal(w.status, RCONN_ECLOSED);
}

static void test_options(void **state) {
    fx *x = *state;
    rconn *c = NULL;
    char err[256];
    rconn_options none = {0};
    assert_int_equal(rconn_new(&c, &x->loop, &none, err, sizeof err),
                     RCONN_EINVAL);
    assert_non_null(strstr(err, "addresses"));
    rconn_options noport = {.naddrs = 1};
    noport.addrs[0].host = "127.0.0.1";
    assert_int_equal(rconn_new(&c, &x->loop, &noport, err, sizeof err),
                     RCONN_EINVAL);
    rconn_options user = noport;
    user.addrs[0].port = 6379;
    user.user = "alice";
    assert_int_equal(rconn_new(&c, &x->loop, &user, err, sizeof err),
                     RCONN_EINVAL);
    assert_non_null(strstr(err, "password"));
    rconn_options half = noport;
    half.addrs[0].port = 6379;
    half.tls = 1;
    half.tls_cert_file = "c.pem";
    assert_int_equal(rconn_new(&c, &x->loop, &half, err, sizeof err),
                     RCONN_EINVAL);
    assert_null(c);
    assert_string_equal(rconn_strerror(RCONN_ELIMIT),
                        "queue limit reached (max_queue_bytes)");
}

static void test_edges(void **state) {
    (void)state;
    assert_true(rconn_edge(RCONN_IDLE, RCONN_DOWN));
    assert_true(rconn_edge(RCONN_DOWN, RCONN_CONNECTING));
    assert_true(rconn_edge(RCONN_CONNECTING, RCONN_TLS));
    assert_true(rconn_edge(RCONN_TLS, RCONN_HELLO));
    assert_true(rconn_edge(RCONN_HELLO, RCONN_READY));
    assert_true(rconn_edge(RCONN_HELLO, RCONN_CONNECTING));
    assert_true(rconn_edge(RCONN_READY, RCONN_DOWN));
    assert_true(rconn_edge(RCONN_READY, RCONN_CLOSING));
    assert_true(rconn_edge(RCONN_CLOSING, RCONN_CLOSED));
    assert_false(rconn_edge(RCONN_READY, RCONN_CONNECTING));
    assert_false(rconn_edge(RCONN_DOWN, RCONN_READY));
    assert_false(rconn_edge(RCONN_CLOSED, RCONN_IDLE));
    assert_false(rconn_edge(RCONN_CLOSING, RCONN_DOWN));
    assert_string_equal(rconn_state_name(RCONN_HELLO), "HELLO");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_and_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubsub, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_pending, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
