/*
 * test_store_redis.c -- the cluster store (src/server/store_redis*.c)
 * against a real redis-server (tests/support/redisfix.[ch]).
 *
 * Every wait runs the loop until a condition holds or a deadline timer
 * fires (WAIT_FOR, tests/support/looputil.h); nothing sleeps. Every
 * callback asserts that it does not run inside a store_* call (in_call, set
 * around each call). After every test each store is stopped, the loop runs
 * until it is empty and the loop must close (no handle left behind).
 *
 * Covers: open (node ids, groups loaded), devices (create, look up, the
 * cursor of a new device), puts 1:1 with and without a client id, dedup
 * (the first id), quota, increasing ids; live for an online user (and not
 * for one that is not); fetch in id order with bodies; cursors deleting
 * what every device passed; two nodes on one Redis (live on the node that
 * holds the receiver only; a group created on one reaching both copies and
 * a group message both nodes); read marks, marks, presence, history; a
 * frozen Redis (SIGSTOP: puts fail with STORE_EIO, never OK; SIGCONT:
 * back, resync); a killed and restarted Redis (resync, users registered
 * again, puts work); SCRIPT FLUSH (NOSCRIPT: reload and retry, in order);
 * weak persistence (appendfsync everysec: puts STORE_EWEAK, a log line);
 * a wrong password and nothing listening (open fails with a sentence);
 * the argument helpers (sr_argu, sr_argk, sr_argk2) against the printf
 * formats they replace; four command connections (conns 4): many senders'
 * puts complete in submission order, each sender's in order at the
 * receiver, and a pool connection killed (CLIENT KILL, during a CLIENT
 * PAUSE WRITE that holds the puts in flight) fails only the puts it
 * carried, logs one line and comes back; Redis killed: no pool line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/looputil.h"
#include "../support/redisfix.h"
#include "server/store_redis.h"
#include "server/store_redis_int.h" /* sr_arg*: the argument helpers */

/* ---- the in-call check ----------------------------------------------- */

static int in_call; /* a store_* call of the test is running */
#define CALL(x) (in_call = 1, (x), in_call = 0)

/* ---- a node: one store and what its callbacks saw --------------------- */

#define MAXREC 64

typedef struct putrec {
    uint64_t seq, id, cid;
    int status;
} putrec;

typedef struct liverec {
    uint32_t user, grp, sender;
    uint64_t id;
    char body[32];
} liverec;

typedef struct node {
    store *s;
    putrec puts[MAXREC];
    int nputs;
    liverec live[MAXREC];
    int nlive;
    int resyncs;
    /* the last fetch or history */
    int fetches, fstatus, fmore;
    size_t nrows;
    uint64_t ids[MAXREC];
    char bodies[MAXREC][32];
    /* the last device */
    int devs, dstatus;
    store_device_info dinfo;
    uint64_t dcids[8], dcid_ids[8];
    /* the last group operation, marks, presence */
    int groups, gstatus;
    uint32_t group;
    int nmarks, mstatus;
    store_mark marks[8];
    size_t mn;
    int npres, pstatus;
    uint8_t allowed[8];
    int64_t seen[8];
    int online_given;   /* presence_done's online was not NULL */
    uint8_t online[8];
    size_t pn;
    int ndevcb;
    uint32_t devcb_user;
    unsigned devcb_all, devcb_conv;
} node;

static void cb_put(void *ctx, void *token, uint64_t seq, uint64_t id,
                   uint64_t cid, int status) {
    node *n = ctx;
    (void)token;
    assert_false(in_call);
    assert_true(n->nputs < MAXREC);
    n->puts[n->nputs++] = (putrec){seq, id, cid, status};
}

static void copy_rows(node *n, const store_row *rows, size_t k) {
    n->nrows = k;
    for (size_t i = 0; i < k && i < MAXREC; i++) {
        n->ids[i] = rows[i].id;
        (void)snprintf(n->bodies[i], sizeof n->bodies[i], "%.*s",
                       (int)rows[i].len, (const char *)rows[i].body);
    }
}

static void cb_fetch(void *ctx, void *token, const store_row *rows, size_t k,
                     int more, int status) {
    node *n = ctx;
    (void)token;
    assert_false(in_call);
    n->fetches++;
    n->fstatus = status;
    n->fmore = more;
    copy_rows(n, rows, k);
}

static void cb_device(void *ctx, void *token, const store_device_info *d,
                      int status) {
    node *n = ctx;
    (void)token;
    assert_false(in_call);
    n->devs++;
    n->dstatus = status;
    if (!d) return;
    n->dinfo = *d;
    for (size_t i = 0; i < d->ncid && i < 8; i++) {
        n->dcids[i] = d->cids[i];
        n->dcid_ids[i] = d->cid_ids[i];
    }
}

static void cb_devices(void *ctx, uint32_t user, unsigned all,
                       unsigned conv) {
    node *n = ctx;
    assert_false(in_call);
    n->ndevcb++;
    n->devcb_user = user;
    n->devcb_all = all;
    n->devcb_conv = conv;
}

static void cb_group(void *ctx, void *token, uint32_t group, int status) {
    node *n = ctx;
    (void)token;
    assert_false(in_call);
    n->groups++;
    n->gstatus = status;
    n->group = group;
}

static void cb_marks(void *ctx, void *token, const store_mark *m, size_t k,
                     int status) {
    node *n = ctx;
    (void)token;
    assert_false(in_call);
    n->nmarks++;
    n->mstatus = status;
    n->mn = k;
    for (size_t i = 0; i < k && i < 8; i++) n->marks[i] = m[i];
}

static void cb_presence(void *ctx, void *token, const uint32_t *users,
                        const uint8_t *allowed, const int64_t *seen,
                        const uint8_t *online, size_t k, int status) {
    node *n = ctx;
    (void)token;
    (void)users;
    assert_false(in_call);
    n->npres++;
    n->pstatus = status;
    n->pn = k;
    for (size_t i = 0; i < k && i < 8; i++) {
        n->allowed[i] = allowed[i];
        n->seen[i] = seen[i];
        n->online[i] = online ? online[i] : 0xff;
    }
    n->online_given = online != NULL;
}

static void cb_live(void *ctx, uint32_t user, const store_row *row) {
    node *n = ctx;
    assert_false(in_call);
    assert_true(n->nlive < MAXREC);
    liverec *l = &n->live[n->nlive++];
    l->user = user;
    l->grp = row->grp;
    l->sender = row->sender;
    l->id = row->id;
    (void)snprintf(l->body, sizeof l->body, "%.*s", (int)row->len,
                   (const char *)row->body);
}

static void cb_resync(void *ctx) {
    node *n = ctx;
    assert_false(in_call);
    n->resyncs++;
}

/* Per test: a loop, a server directory, two nodes. */
typedef struct fx {
    uv_loop_t loop;
    redisfix f;
    node a, b;
    rconn *raw;       /* the test's own connection (raw_cmd) */
    int raw_closed;
} fx;

static int setup(void **state) {
    fx *x = calloc(1, sizeof *x);
    if (!x || uv_loop_init(&x->loop) || redisfix_init(&x->f)) return -1;
    *state = x;
    return 0;
}

static void stop_node(node *n) {
    if (!n->s) return;
    CALL(store_stop(n->s));
}

static void on_raw_closed(void *ud) { ((fx *)ud)->raw_closed = 1; }

static int teardown(void **state) {
    fx *x = *state;
    if (x->raw) rconn_close(x->raw, on_raw_closed, x);
    stop_node(&x->a);
    stop_node(&x->b);
    (void)uv_run(&x->loop, UV_RUN_DEFAULT); /* (ends: every handle closed) */
    store_free(x->a.s);
    store_free(x->b.s);
    int r = uv_loop_close(&x->loop); /* UV_EBUSY: a handle was left */
    redisfix_cleanup(&x->f);
    free(x);
    return r == 0 ? 0 : -1;
}

static void start(fx *x, const redisfix_opts *o) {
    if (redisfix_start(&x->f, o)) fail_msg("%s", x->f.err);
}

static store_redis_config config(const fx *x) {
    store_redis_config c = {0};
    c.addrs[0].host = "127.0.0.1";
    c.addrs[0].port = (uint16_t)x->f.port;
    c.naddrs = 1;
    c.open_timeout_ms = 5000;
    c.command_timeout_ms = 1000;
    c.connect_timeout_ms = 500;
    c.history_ttl_ms = 86400000;
    c.contacts = 1;
    c.no_janitor = 1;
    return c;
}

static int open_node(fx *x, node *n, const store_redis_config *c, char *err,
                     size_t errlen) {
    memset(n, 0, sizeof *n);
    store_callbacks cb = {
        .ctx = n, .put_done = cb_put, .fetch_done = cb_fetch,
        .device_done = cb_device, .devices = cb_devices,
        .history_done = cb_fetch, .group_done = cb_group,
        .marks_done = cb_marks, .presence_done = cb_presence,
        .live = cb_live, .resync = cb_resync};
    return store_redis_open(&n->s, &x->loop, c, &cb, err, errlen);
}

static void open_ok(fx *x, node *n) {
    store_redis_config c = config(x);
    char err[512];
    int r = open_node(x, n, &c, err, sizeof err);
    if (r) fail_msg("store_redis_open: %s (%s)", store_strerror(r), err);
    assert_non_null(n->s);
    assert_int_equal(store_ids_local(n->s), 0);
    assert_int_equal(store_shared(n->s), 1);
}

/* Put a 1:1 message; returns its put_done record once it came. */
static putrec put(fx *x, node *n, uint32_t from, uint32_t to, uint64_t cid,
                  const char *body, int quota) {
    store_msg m = {.receiver = to, .sender = from, .sdev = 0, .type = 1,
                   .cid = cid, .body = (const uint8_t *)body,
                   .len = (uint32_t)strlen(body)};
    int before = n->nputs, r;
    CALL(r = store_put(n->s, &m, quota, NULL, (uint64_t)before + 1));
    assert_int_equal(r, 0);
    WAIT_FOR(&x->loop, n->nputs == before + 1, 5000);
    assert_int_equal(n->puts[before].seq, (uint64_t)before + 1);
    return n->puts[before];
}

static void device(fx *x, node *n, uint32_t user, const char *name,
                   int conv) {
    int before = n->devs;
    CALL(store_device(n->s, user, name, strlen(name), conv, NULL));
    WAIT_FOR(&x->loop, n->devs == before + 1, 5000);
    assert_int_equal(n->dstatus, STORE_OK);
}

static void fetch(fx *x, node *n, uint32_t user, uint32_t dev,
                  uint64_t after) {
    int before = n->fetches;
    CALL(store_fetch(n->s, user, dev, 0, after, 100, 1u << 20, NULL));
    WAIT_FOR(&x->loop, n->fetches == before + 1, 5000);
    assert_int_equal(n->fstatus, STORE_OK);
}

/* The live records of n for user with body b. */
static int live_count(const node *n, uint32_t user, const char *b) {
    int k = 0;
    for (int i = 0; i < n->nlive; i++)
        if (n->live[i].user == user && strcmp(n->live[i].body, b) == 0) k++;
    return k;
}

/* ---- tests ------------------------------------------------------------ */

static void test_devices_and_cursor_rule(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    assert_true(store_redis_node(a->s) > 0);
    assert_int_equal(store_redis_acks(a->s), 1);
    unsigned all, conv;
    store_devices(a->s, 100, &all, &conv); /* not held: "store it" */
    assert_int_equal(all, STORE_REDIS_DEVICES_UNKNOWN);

    CALL(store_online(a->s, 100, 1));
    device(x, a, 100, "", 0);
    assert_int_equal(a->dinfo.dev, 0);
    assert_int_equal(a->dinfo.cursor, 0);
    assert_int_equal(a->dinfo.all, 1);
    store_devices(a->s, 100, &all, &conv);
    assert_int_equal(all, 1);
    assert_int_equal(conv, 0);
    assert_true(a->ndevcb >= 1 && a->devcb_user == 100);

    device(x, a, 100, "phone", 1);
    uint32_t phone = a->dinfo.dev;
    assert_true(phone > 0);
    assert_int_equal(a->dinfo.all, 2);
    assert_int_equal(a->dinfo.conv, 1);
    store_devices(a->s, 100, &all, &conv);
    assert_int_equal(all, 2);
    assert_int_equal(conv, 1);

    putrec p1 = put(x, a, 7, 100, 0, "one", 0);
    putrec p2 = put(x, a, 7, 100, 0, "two", 0);
    assert_int_equal(p1.status, STORE_OK);
    assert_true(p2.id > p1.id);
    CALL(store_cursor(a->s, 100, 0, p2.id, 0));
    CALL(store_cursor(a->s, 100, phone, p1.id, 0));
    /* a new device starts at the least cursor of the active ones */
    device(x, a, 100, "tablet", 0);
    assert_int_equal(a->dinfo.cursor, p1.id);
    assert_int_equal(a->dinfo.all, 3);
    /* a lookup finds the same device, its cursor */
    device(x, a, 100, "phone", 1);
    assert_int_equal(a->dinfo.dev, phone);
    assert_int_equal(a->dinfo.cursor, p1.id);
    device(x, a, 100, "", 0);
    assert_int_equal(a->dinfo.cursor, p2.id);
}

static void test_put_dedup_quota(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    putrec p1 = put(x, a, 1, 2, 0, "hello", 1);
    assert_int_equal(p1.status, STORE_OK);
    assert_true(p1.id > 0);
    putrec p2 = put(x, a, 1, 2, 77, "with cid", 1);
    assert_int_equal(p2.status, STORE_OK);
    assert_int_equal(p2.cid, 77);
    assert_true(p2.id > p1.id);
    putrec p3 = put(x, a, 1, 2, 77, "with cid", 1); /* a resend */
    assert_int_equal(p3.status, STORE_OK);
    assert_int_equal(p3.id, p2.id);
    putrec p4 = put(x, a, 1, 2, 78, "another", 1);
    assert_true(p4.id > p2.id);
    /* ids increase across users */
    putrec p5 = put(x, a, 3, 4, 0, "elsewhere", 1);
    assert_true(p5.id > p4.id);

    CALL(store_set_quota(a->s, 3, 0)); /* user 2 holds 3 now */
    putrec q = put(x, a, 1, 2, 0, "over", 1);
    assert_int_equal(q.status, STORE_EQUOTA);
    assert_int_equal(q.id, 0);
    putrec nq = put(x, a, 1, 2, 0, "durable copy", 0); /* quota 0: stored */
    assert_int_equal(nq.status, STORE_OK);
    CALL(store_set_quota(a->s, 0, 10)); /* bytes: 5 + 8 + 7 + 12 > 10 */
    q = put(x, a, 1, 2, 0, "x", 1);
    assert_int_equal(q.status, STORE_EQUOTA);
    assert_int_equal(store_pending_bytes(a->s), 0);
    assert_int_equal(store_stats_of(a->s)->health, STORE_OK);
    assert_true(store_stats_of(a->s)->txns >= 8);
}

static void test_live_fetch_cursor(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    CALL(store_online(a->s, 200, 1));
    putrec p = put(x, a, 9, 200, 0, "live one", 0);
    WAIT_FOR(&x->loop, live_count(a, 200, "live one") == 1, 5000);
    assert_int_equal(a->live[a->nlive - 1].id, p.id);
    assert_int_equal(a->live[a->nlive - 1].sender, 9);
    /* not online: no live; a later put for 200 comes after it on the feed */
    (void)put(x, a, 9, 201, 0, "held", 0);
    (void)put(x, a, 9, 200, 0, "marker", 0);
    WAIT_FOR(&x->loop, live_count(a, 200, "marker") == 1, 5000);
    assert_int_equal(live_count(a, 201, "held"), 0);
    /* offline again: no more live for it */
    CALL(store_online(a->s, 200, 0));
    CALL(store_online(a->s, 202, 1));
    (void)put(x, a, 9, 200, 0, "gone", 0);
    (void)put(x, a, 9, 202, 0, "marker2", 0);
    WAIT_FOR(&x->loop, live_count(a, 202, "marker2") == 1, 5000);
    assert_int_equal(live_count(a, 200, "gone"), 0);

    /* fetch: user 300's log, in id order, with bodies */
    device(x, a, 300, "", 0);
    device(x, a, 300, "b", 0);
    uint32_t devb = a->dinfo.dev;
    putrec m1 = put(x, a, 5, 300, 0, "m1", 1);
    putrec m2 = put(x, a, 6, 300, 0, "m2", 1);
    putrec m3 = put(x, a, 5, 300, 0, "m3", 1);
    fetch(x, a, 300, 0, 0);
    assert_int_equal(a->nrows, 3);
    assert_int_equal(a->ids[0], m1.id);
    assert_int_equal(a->ids[1], m2.id);
    assert_int_equal(a->ids[2], m3.id);
    assert_string_equal(a->bodies[1], "m2");
    assert_int_equal(a->fmore, 0);
    fetch(x, a, 300, 0, m1.id); /* after a cursor */
    assert_int_equal(a->nrows, 2);
    assert_int_equal(a->ids[0], m2.id);
    /* a page of one: more */
    int before = a->fetches;
    CALL(store_fetch(a->s, 300, 0, 0, 0, 1, 1u << 20, NULL));
    WAIT_FOR(&x->loop, a->fetches == before + 1, 5000);
    assert_int_equal(a->nrows, 1);
    assert_int_equal(a->fmore, 1);
    /* one device passed: kept for the other */
    CALL(store_cursor(a->s, 300, 0, m3.id, 0));
    fetch(x, a, 300, 0, 0);
    assert_int_equal(a->nrows, 3);
    /* every device passed m2: m1 and m2 are gone */
    CALL(store_cursor(a->s, 300, devb, m2.id, 0));
    fetch(x, a, 300, 0, 0);
    assert_int_equal(a->nrows, 1);
    assert_int_equal(a->ids[0], m3.id);
    CALL(store_cursor(a->s, 300, devb, m3.id, 0));
    fetch(x, a, 300, 0, 0);
    assert_int_equal(a->nrows, 0);
    /* a deleted message leaves the log */
    putrec d = put(x, a, 5, 300, 0, "to delete", 1);
    CALL(store_del(a->s, 300, d.id));
    fetch(x, a, 300, 0, m3.id);
    assert_int_equal(a->nrows, 0);
}

static void test_two_nodes_and_groups(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    open_ok(x, &x->b);
    node *a = &x->a, *b = &x->b;
    assert_true(store_redis_node(a->s) != store_redis_node(b->s));
    CALL(store_online(b->s, 400, 1));
    CALL(store_online(a->s, 401, 1));
    /* registered once a request queued after it on the same node was
     * answered (a put on another node may run before it otherwise) */
    fetch(x, b, 400, 0, 0);
    putrec p = put(x, a, 401, 400, 0, "across", 0);
    assert_int_equal(p.status, STORE_OK);
    WAIT_FOR(&x->loop, live_count(b, 400, "across") == 1, 5000);
    (void)put(x, a, 400, 401, 0, "back", 0);
    WAIT_FOR(&x->loop, live_count(a, 401, "back") == 1, 5000);
    assert_int_equal(live_count(a, 400, "across"), 0);
    assert_int_equal(live_count(b, 401, "back"), 0);

    /* a group created on A: both copies have it */
    uint32_t users[] = {400};
    store_group_op op = {.op = STORE_G_CREATE, .actor = 401, .name = "crew",
                         .namelen = 4, .users = users, .nusers = 1,
                         .joined = 0, .max_members = 1024};
    CALL(store_group(a->s, &op, NULL));
    WAIT_FOR(&x->loop, a->groups == 1, 5000);
    assert_int_equal(a->gstatus, STORE_OK);
    uint32_t g = a->group;
    assert_true(g > 0);
    const chatgroup *ga = groups_get(store_groups(a->s), g);
    assert_non_null(ga); /* before group_done already */
    assert_int_equal(ga->n, 2);
    assert_int_equal(ga->m[0].user, 401);
    assert_true(ga->m[0].admin);
    WAIT_FOR(&x->loop, groups_get(store_groups(b->s), g) != NULL, 5000);
    const chatgroup *gb = groups_get(store_groups(b->s), g);
    assert_int_equal(gb->n, 2);
    assert_memory_equal(gb->name, "crew", 4);
    /* refusals */
    store_group_op bad = {.op = STORE_G_RENAME, .group = g, .actor = 400,
                          .name = "x", .namelen = 1, .max_members = 1024};
    CALL(store_group(b->s, &bad, NULL));
    WAIT_FOR(&x->loop, b->groups == 1, 5000);
    assert_int_equal(b->gstatus, STORE_GNOTADMIN);

    /* a group message reaches every live node */
    store_msg m = {.receiver = 0, .sender = 401, .type = 1, .grp = g,
                   .body = (const uint8_t *)"to all", .len = 6};
    int r;
    CALL(r = store_put(a->s, &m, 0, NULL, 99));
    assert_int_equal(r, 0);
    WAIT_FOR(&x->loop, live_count(a, 0, "to all") == 1 &&
                           live_count(b, 0, "to all") == 1, 5000);
    assert_int_equal(a->live[a->nlive - 1].grp, g);
    /* and a member's fetch has it */
    int before = b->fetches;
    CALL(store_fetch(b->s, 400, 0, 0, p.id, 100, 1u << 20, NULL));
    WAIT_FOR(&x->loop, b->fetches == before + 1, 5000);
    assert_int_equal(b->nrows, 1);
    assert_string_equal(b->bodies[0], "to all");
    /* a non-member's group put is refused */
    m.sender = 999;
    int nb = a->nputs;
    CALL(r = store_put(a->s, &m, 0, NULL, 100));
    WAIT_FOR(&x->loop, a->nputs == nb + 1, 5000);
    assert_int_equal(a->puts[nb].status, STORE_GNOTMEMBER);

    /* LEAVE of the last members deletes it everywhere */
    store_group_op leave = {.op = STORE_G_LEAVE, .group = g, .actor = 400,
                            .max_members = 1024};
    CALL(store_group(b->s, &leave, NULL));
    leave.actor = 401;
    CALL(store_group(b->s, &leave, NULL));
    WAIT_FOR(&x->loop, b->groups == 3, 5000);
    assert_int_equal(b->gstatus, STORE_OK);
    assert_null(groups_get(store_groups(b->s), g));
    WAIT_FOR(&x->loop, groups_get(store_groups(a->s), g) == NULL, 5000);
}

static void test_signals(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    device(x, a, 10, "", 0);
    putrec p1 = put(x, a, 11, 10, 0, "hi", 1);
    putrec p2 = put(x, a, 10, 11, 0, "hello", 1);
    CALL(store_cursor(a->s, 10, 0, p1.id, 0));
    CALL(store_read_mark(a->s, 11, 10, 0, p1.id, 1234));
    CALL(store_read_mark(a->s, 11, 10, 0, 1, 99)); /* lower: kept */
    CALL(store_marks(a->s, 10, 11, 0, NULL));
    WAIT_FOR(&x->loop, a->nmarks == 1, 5000);
    assert_int_equal(a->mstatus, STORE_OK);
    assert_int_equal(a->mn, 2);
    assert_int_equal(a->marks[0].user, 11); /* the peer's, then mine */
    assert_int_equal(a->marks[0].read, p1.id);
    assert_int_equal(a->marks[0].read_ts, 1234);
    assert_int_equal(a->marks[1].user, 10);
    assert_int_equal(a->marks[1].delivered, p1.id);
    /* presence: 11 is a contact of 10 (a put noted it), 12 is not */
    uint32_t who[] = {11, 12, 10};
    CALL(store_presence(a->s, 10, who, 3, 1, NULL));
    WAIT_FOR(&x->loop, a->npres == 1, 5000);
    assert_int_equal(a->pstatus, STORE_OK);
    assert_int_equal(a->pn, 3);
    assert_int_equal(a->allowed[0], 1);
    assert_int_equal(a->allowed[1], 0);
    assert_int_equal(a->allowed[2], 1);
    assert_true(a->seen[2] > 0);
    /* the cluster says who is online: 12 never connected anywhere */
    assert_true(a->online_given);
    assert_int_equal(a->online[1], 0);
    /* history: newest first */
    int before = a->fetches;
    CALL(store_history(a->s, 10, 11, 0, 0, 0, 10, 1u << 20, NULL));
    WAIT_FOR(&x->loop, a->fetches == before + 1, 5000);
    assert_int_equal(a->nrows, 2);
    assert_int_equal(a->ids[0], p2.id);
    assert_int_equal(a->ids[1], p1.id);
    /* a group's marks for a non-member: none */
    CALL(store_marks(a->s, 10, 0, 12345, NULL));
    WAIT_FOR(&x->loop, a->nmarks == 2, 5000);
    assert_int_equal(a->mn, 0);
    assert_int_equal(a->mstatus, STORE_OK);
}

static void test_frozen(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    CALL(store_online(a->s, 20, 1));
    (void)put(x, a, 1, 20, 0, "before", 0);
    WAIT_FOR(&x->loop, live_count(a, 20, "before") == 1, 5000);
    if (redisfix_stop(&x->f)) fail_msg("%s", x->f.err);
    store_msg m = {.receiver = 20, .sender = 1, .type = 1, .cid = 5,
                   .body = (const uint8_t *)"frozen", .len = 6};
    int n0 = a->nputs, r;
    for (int i = 0; i < 3; i++) {
        CALL(r = store_put(a->s, &m, 0, NULL, 1000 + (uint64_t)i));
        assert_int_equal(r, 0);
    }
    /* the command deadline (1 s) fails them: never an OK */
    WAIT_FOR(&x->loop, a->nputs == n0 + 3, 4000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a->puts[n0 + i].status, STORE_EIO);
        assert_int_equal(a->puts[n0 + i].seq, 1000 + (uint64_t)i); /* order */
    }
    assert_int_equal(store_stats_of(a->s)->health, STORE_EIO);
    assert_int_equal(store_pending_bytes(a->s), 0);
    /* down: refused at once (later, never inside the call) */
    n0 = a->nputs;
    CALL(r = store_put(a->s, &m, 0, NULL, 2000));
    assert_int_equal(a->nputs, n0);
    WAIT_FOR(&x->loop, a->nputs == n0 + 1, 2000);
    assert_int_equal(a->puts[n0].status, STORE_EIO);

    /* the feed notices too (its keepalive PING gets no answer) */
    WAIT_FOR(&x->loop, !store_redis_feed_up(a->s), 5000);
    assert_int_equal(a->resyncs, 0);
    if (redisfix_cont(&x->f)) fail_msg("%s", x->f.err);
    WAIT_FOR(&x->loop, store_stats_of(a->s)->health == STORE_OK, 5000);
    WAIT_FOR(&x->loop, a->resyncs == 1, 5000);
    assert_true(store_redis_feed_up(a->s));
    /* the resend of the failed put is one message (its cid) */
    putrec p = put(x, a, 1, 20, 5, "frozen", 0);
    assert_int_equal(p.status, STORE_OK);
    fetch(x, a, 20, 0, 0);
    int k = 0; /* (the frozen Redis may have run the sent ones at SIGCONT) */
    for (size_t i = 0; i < a->nrows; i++) k += !strcmp(a->bodies[i], "frozen");
    assert_int_equal(k, 1);
}

static void test_restart(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    CALL(store_online(a->s, 30, 1));
    putrec p1 = put(x, a, 1, 30, 0, "kept", 0);
    if (redisfix_kill(&x->f)) fail_msg("%s", x->f.err);
    putrec lost = put(x, a, 1, 30, 0, "refused", 0); /* refused connects */
    assert_int_equal(lost.status, STORE_EIO);
    if (redisfix_restart(&x->f)) fail_msg("%s", x->f.err);
    WAIT_FOR(&x->loop, a->resyncs == 1, 8000);
    /* registered again (the scripts loaded again): live works */
    putrec p2 = put(x, a, 1, 30, 0, "after", 0);
    assert_int_equal(p2.status, STORE_OK);
    assert_true(p2.id > p1.id); /* the AOF kept chat:ids */
    WAIT_FOR(&x->loop, live_count(a, 30, "after") == 1, 5000);
    fetch(x, a, 30, 0, 0);
    assert_int_equal(a->nrows, 2);
    assert_string_equal(a->bodies[0], "kept");
}

/* One command on the test's own connection (made at the first call):
 * its reply, the integer or the status/string, once it came. */
typedef struct raw {
    int sent, done, status, type;
    long long integer;
    char str[64];
} raw;

static void on_raw(void *ud, const redisReply *r, int status) {
    raw *x = ud;
    x->done = 1;
    x->status = status;
    if (!r) return;
    x->type = r->type;
    x->integer = r->integer;
    if (r->str)
        (void)snprintf(x->str, sizeof x->str, "%.*s", (int)r->len, r->str);
}

static void raw_send(fx *x, raw *res, const char **argv) {
    if (!x->raw) {
        rconn_options o = {.naddrs = 1};
        o.addrs[0].host = "127.0.0.1";
        o.addrs[0].port = (uint16_t)x->f.port;
        assert_int_equal(rconn_new(&x->raw, &x->loop, &o, NULL, 0), 0);
        assert_int_equal(rconn_start(x->raw), 0);
    }
    int argc = 0;
    while (argv[argc]) argc++;
    memset(res, 0, sizeof *res);
    assert_int_equal(rconn_command_ex(x->raw, RCONN_WAIT, argc, argv, NULL,
                                      on_raw, res), 0);
}

static raw raw_cmd(fx *x, const char **argv) {
    raw res;
    raw_send(x, &res, argv);
    WAIT_FOR(&x->loop, res.done, 5000);
    assert_int_equal(res.status, RCONN_OK);
    return res;
}
#define RAW(x, ...) raw_cmd((x), (const char *[]){__VA_ARGS__, NULL})

/* For WAIT_FOR: the command argv (two arguments after the name at most)
 * answered the integer want (asked again at each other answer). */
static int poll_int(fx *x, raw *res, const char *const *argv,
                    long long want) {
    if (res->done) {
        if (res->status == RCONN_OK && res->type == REDIS_REPLY_INTEGER &&
            res->integer == want)
            return 1;
        res->sent = 0;
    }
    if (!res->sent) {
        const char *a[4] = {argv[0], argv[1], argv[2], NULL};
        raw_send(x, res, a);
        res->sent = 1;
    }
    return 0;
}
#define POLL(x, res, want, ...) \
    poll_int((x), (res), (const char *const[]){__VA_ARGS__, NULL}, (want))

static void test_noscript(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    raw fl = RAW(x, "SCRIPT", "FLUSH");
    assert_string_equal(fl.str, "OK");
    /* three puts in one write: each NOSCRIPT, reloaded, resent, in order */
    int n0 = a->nputs, r;
    for (int i = 0; i < 3; i++) {
        char body[4] = {'n', 's', (char)('0' + i), '\0'};
        store_msg m = {.receiver = 40, .sender = 1, .type = 1,
                       .body = (const uint8_t *)body, .len = 3};
        CALL(r = store_put(a->s, &m, 0, NULL, 10 + (uint64_t)i));
        assert_int_equal(r, 0);
    }
    WAIT_FOR(&x->loop, a->nputs == n0 + 3, 5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a->puts[n0 + i].status, STORE_OK);
        assert_int_equal(a->puts[n0 + i].seq, 10 + (uint64_t)i);
        if (i) assert_true(a->puts[n0 + i].id > a->puts[n0 + i - 1].id);
    }
}

static void test_node_expired(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    CALL(store_online(a->s, 60, 1));
    device(x, a, 60, "", 1);
    unsigned all, conv;
    store_devices(a->s, 60, &all, &conv);
    assert_int_equal(all, 1);
    /* what scripts do to a node they take for dead */
    char n[16], on[24];
    (void)snprintf(n, sizeof n, "%u", (unsigned)store_redis_node(a->s));
    (void)snprintf(on, sizeof on, "u:{60}:on");
    (void)RAW(x, "HDEL", "chat:alive", n);
    raw rm = RAW(x, "SREM", on, n);
    assert_int_equal(rm.integer, 1);
    /* the next heartbeat says so: registered again, resync, counts read */
    WAIT_FOR(&x->loop, a->resyncs == 1, 5000);
    raw is = RAW(x, "SISMEMBER", on, n);
    assert_int_equal(is.integer, 1);
    putrec p = put(x, a, 1, 60, 0, "back", 0);
    assert_int_equal(p.status, STORE_OK);
    WAIT_FOR(&x->loop, live_count(a, 60, "back") == 1, 5000);
    store_devices(a->s, 60, &all, &conv);
    assert_int_equal(all, 1);
    assert_int_equal(conv, 1);
}

static void test_janitor(void **state) {
    fx *x = *state;
    start(x, NULL);
    store_redis_config c = config(x);
    c.no_janitor = 0;
    c.janitor_ms = 50;
    c.ttl_ms = 300; /* --offline-ttl */
    char err[512];
    int r = open_node(x, &x->a, &c, err, sizeof err);
    if (r) fail_msg("store_redis_open: %s", err);
    putrec p = put(x, &x->a, 1, 70, 0, "expires", 1);
    assert_int_equal(p.status, STORE_OK);
    raw z = RAW(x, "ZCARD", "u:{70}:log");
    assert_int_equal(z.integer, 1);
    raw poll = {0};
    WAIT_FOR(&x->loop, POLL(x, &poll, 0, "ZCARD", "u:{70}:log", NULL), 5000);
    raw qn = RAW(x, "HGET", "u:{70}", "qn");
    assert_int_equal(qn.type, REDIS_REPLY_NIL); /* (its count went too) */
    raw holder = RAW(x, "GET", "chat:janitor");
    char n[16];
    (void)snprintf(n, sizeof n, "%u", (unsigned)store_redis_node(x->a.s));
    assert_string_equal(holder.str, n);
}

static void test_stop_goodbye(void **state) {
    fx *x = *state;
    start(x, NULL);
    open_ok(x, &x->a);
    node *a = &x->a;
    CALL(store_online(a->s, 80, 1));
    fetch(x, a, 80, 0, 0); /* (registered) */
    char n[16];
    (void)snprintf(n, sizeof n, "%u", (unsigned)store_redis_node(a->s));
    raw r = RAW(x, "SISMEMBER", "u:{80}:on", n);
    assert_int_equal(r.integer, 1);
    r = RAW(x, "HEXISTS", "chat:alive", n);
    assert_int_equal(r.integer, 1);
    int n0 = a->nputs;
    store_msg m = {.receiver = 81, .sender = 80, .type = 1,
                   .body = (const uint8_t *)"late", .len = 4};
    int rc;
    CALL(rc = store_put(a->s, &m, 0, NULL, 1));
    assert_int_equal(rc, 0);
    CALL(store_stop(a->s)); /* its completion is dropped */
    CALL(rc = store_put(a->s, &m, 0, NULL, 2));
    assert_int_equal(rc, STORE_EIO); /* stopped: nothing queued */
    raw poll = {0};
    WAIT_FOR(&x->loop, POLL(x, &poll, 0, "HEXISTS", "chat:alive", n), 5000);
    r = RAW(x, "SISMEMBER", "u:{80}:on", n);
    assert_int_equal(r.integer, 0);
    assert_int_equal(a->nputs, n0);
}

/* Run fn with the process's stderr in a file; the file's text in out. */
static void capture_stderr(int *saved, char *path) {
    (void)snprintf(path, 64, "/tmp/test_store_redis_log.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    *saved = dup(2);
    assert_true(*saved >= 0);
    assert_true(dup2(fd, 2) == 2);
    close(fd);
}

static void restore_stderr(int saved, const char *path, char *out,
                           size_t cap) {
    assert_true(dup2(saved, 2) == 2);
    close(saved);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    (void)fclose(f);
    (void)unlink(path);
}

static void test_weak_persistence(void **state) {
    fx *x = *state;
    const char *args[] = {"--appendfsync", "everysec", NULL};
    redisfix_opts ro = {.args = args};
    start(x, &ro);
    int saved;
    char path[64], text[4096];
    capture_stderr(&saved, path);
    store_redis_config c = config(x);
    char err[512];
    int r = open_node(x, &x->a, &c, err, sizeof err);
    restore_stderr(saved, path, text, sizeof text);
    if (r) fail_msg("store_redis_open: %s", err);
    node *a = &x->a;
    assert_int_equal(store_redis_acks(a->s), 0);
    assert_non_null(strstr(text, "appendfsync=everysec"));
    assert_non_null(strstr(text, "acknowledgements are refused"));
    CALL(store_online(a->s, 50, 1));
    putrec p = put(x, a, 1, 50, 8, "weak", 0);
    assert_int_equal(p.status, STORE_EWEAK); /* stored, not acknowledged */
    assert_true(p.id > 0);
    WAIT_FOR(&x->loop, live_count(a, 50, "weak") == 1, 5000);
    putrec again = put(x, a, 1, 50, 8, "weak", 0);
    assert_int_equal(again.status, STORE_EWEAK);
    assert_int_equal(again.id, p.id);
}

static void test_wrong_password(void **state) {
    fx *x = *state;
    const char *args[] = {"--requirepass", "s3cret", NULL};
    redisfix_opts ro = {.args = args, .password = "s3cret"};
    start(x, &ro);
    store_redis_config c = config(x);
    c.password = "wrong";
    char err[512];
    uint64_t t0 = uv_now(&x->loop);
    int r = open_node(x, &x->a, &c, err, sizeof err);
    assert_int_equal(r, STORE_EIO);
    assert_null(x->a.s);
    print_message("open: %s\n", err);
    assert_non_null(strstr(err, "password"));
    assert_non_null(strstr(err, "WRONGPASS"));
    uv_update_time(&x->loop);
    assert_true(uv_now(&x->loop) - t0 < 4000); /* not the whole deadline */
    c.password = "s3cret"; /* the right one */
    r = open_node(x, &x->b, &c, err, sizeof err);
    if (r) fail_msg("store_redis_open: %s", err);
    assert_int_equal(store_redis_acks(x->b.s), 1);
}

static void test_unreachable(void **state) {
    fx *x = *state;
    start(x, NULL);
    if (redisfix_kill(&x->f)) fail_msg("%s", x->f.err);
    store_redis_config c = config(x);
    c.open_timeout_ms = 600;
    char err[512];
    int r = open_node(x, &x->a, &c, err, sizeof err);
    assert_int_equal(r, STORE_EIO);
    print_message("open: %s\n", err);
    assert_non_null(strstr(err, "cannot reach redis"));
    assert_non_null(strstr(err, "600 ms"));
}

/* ---- the argument helpers (no Redis) ----------------------------------- */

/* Argument i of r is the NUL-terminated want. */
static void arg_is(const sr_req *r, int i, const char *want) {
    assert_true(i < r->argc);
    size_t at = 0;
    for (int k = 0; k < i; k++) at += r->lens[k];
    assert_int_equal(r->lens[i], strlen(want));
    assert_memory_equal(r->buf + at, want, r->lens[i]);
}

/* sr_argu, sr_argk and sr_argk2 write what the printf formats they
 * replace wrote ("%" PRIu64, "u:{%" PRIu32 "}:log"...), edges included;
 * a key too long for the helpers sets oom and drops what follows. */
static void test_args(void **state) {
    (void)state;
    sr_req r = {.script = -1};
    const uint64_t v[] = {0, 1, 9, 10, 99, 100, 4294967295u, 4294967296u,
                          UINT64_C(9007199254740991), UINT64_MAX,
                          UINT64_MAX - 1, UINT64_C(10000000000000000000)};
    size_t nv = sizeof v / sizeof v[0];
    char want[64];
    int argc = 0;
    for (size_t i = 0; i < nv; i++) {
        sr_argu(&r, v[i]);
        (void)snprintf(want, sizeof want, "%" PRIu64, v[i]);
        arg_is(&r, argc++, want);
        sr_argk(&r, "u:{", v[i], "}:log");
        (void)snprintf(want, sizeof want, "u:{%" PRIu64 "}:log", v[i]);
        arg_is(&r, argc++, want);
        sr_argk2(&r, "cv:{", v[i], "}:{", v[nv - 1 - i], "}");
        (void)snprintf(want, sizeof want, "cv:{%" PRIu64 "}:{%" PRIu64 "}",
                       v[i], v[nv - 1 - i]);
        arg_is(&r, argc++, want);
    }
    sr_argk(&r, "u", 42, "");
    arg_is(&r, argc++, "u42");
    sr_argk2(&r, "u:{", 7, "}:cid:", 0, "");
    arg_is(&r, argc++, "u:{7}:cid:0");
    assert_int_equal(r.oom, 0);
    char pre[100];
    memset(pre, 'k', sizeof pre - 1);
    pre[sizeof pre - 1] = '\0';
    sr_argk(&r, pre, 1, ""); /* 99 + 1 + 40 of room: over 128 */
    assert_int_equal(r.oom, 1);
    sr_argu(&r, 5); /* (dropped: the request fails as a whole) */
    assert_int_equal(r.argc, argc);
    free(r.buf);
    free(r.lens);
}

/* ---- the put pool (conns 4) ------------------------------------------ */

typedef struct idrep {
    int done;
    long long id;
} idrep;

static void on_client_id(void *ud, const redisReply *r, int status) {
    idrep *x = ud;
    x->done = 1;
    x->id = status == RCONN_OK && r->type == REDIS_REPLY_INTEGER
                ? r->integer : -1;
}

/* A burst of puts from senders 1..nsend, k each (interleaved), to user 50
 * in one iteration, seq first_seq, first_seq + 1, ...; every completion
 * once they came. Body: "s<sender>-<round>". */
static void pool_burst(fx *x, node *a, int nsend, int k, uint64_t first_seq) {
    int n0 = a->nputs;
    char bodies[64][16];
    int i = 0;
    for (int round = 0; round < k; round++)
        for (int sd = 1; sd <= nsend; sd++, i++) {
            (void)snprintf(bodies[i], sizeof bodies[i], "s%d-%d", sd, round);
            store_msg m = {.receiver = 50, .sender = (uint32_t)sd, .type = 1,
                           .body = (const uint8_t *)bodies[i],
                           .len = (uint32_t)strlen(bodies[i])};
            int r;
            CALL(r = store_put(a->s, &m, 0, NULL, first_seq + (uint64_t)i));
            assert_int_equal(r, 0);
        }
    WAIT_FOR(&x->loop, a->nputs == n0 + i, 5000);
    for (int j = 0; j < i; j++) /* submission order, across connections */
        assert_int_equal(a->puts[n0 + j].seq, first_seq + (uint64_t)j);
}

/* The live bodies of sender sd at user 50 came in rounds 0, 1, ... */
static void live_in_order(const node *a, int sd, int want) {
    char pre[8];
    (void)snprintf(pre, sizeof pre, "s%d-", sd);
    int next = 0;
    uint64_t last = 0;
    for (int i = 0; i < a->nlive; i++) {
        const liverec *l = &a->live[i];
        if (l->user != 50 || strncmp(l->body, pre, strlen(pre)) != 0)
            continue;
        assert_int_equal(atoi(l->body + strlen(pre)), next);
        assert_true(l->id > last);
        last = l->id;
        next++;
    }
    assert_int_equal(next, want);
}

static void test_pool(void **state) {
    fx *x = *state;
    start(x, NULL);
    store_redis_config c = config(x);
    c.conns = 4;
    char err[512];
    node *a = &x->a;
    int rc = open_node(x, a, &c, err, sizeof err);
    if (rc) fail_msg("store_redis_open: %s (%s)", store_strerror(rc), err);
    store_redis *s = (store_redis *)a->s;
    assert_int_equal(s->nconns, 4);
    CALL(store_online(a->s, 50, 1));
    /* (a put on connection 0 answered: the registration ran; a put on
     * another connection may run before it, like another node's) */
    assert_int_equal(put(x, a, 4, 50, 0, "w", 0).status, STORE_OK);

    /* 7 senders x 5: in submission order, all stored, on every connection
     * (7: a sender's seq is not the same modulo 4 in each round) */
    pool_burst(x, a, 7, 5, 2);
    for (int j = 0; j < 36; j++) assert_int_equal(a->puts[j].status, 0);
    for (unsigned i = 1; i < 4; i++)
        assert_true(rconn_stats_get(s->conns[i].c)->replies >= 5);
    WAIT_FOR(&x->loop, a->nlive == 36, 5000);
    for (int sd = 1; sd <= 7; sd++) live_in_order(a, sd, 5);

    /* connection 1 (senders 1 and 5) killed while the puts are held in
     * Redis by a pause: only those fail, in their turn */
    idrep cid = {0};
    assert_int_equal(rconn_command(s->conns[1].c, 2,
                                   (const char *[]){"CLIENT", "ID"}, NULL,
                                   on_client_id, &cid), 0);
    WAIT_FOR(&x->loop, cid.done, 5000);
    assert_true(cid.id > 0);
    char idstr[32];
    (void)snprintf(idstr, sizeof idstr, "%lld", cid.id);
    int saved;
    char path[64], log[8192];
    capture_stderr(&saved, path);
    raw ps = RAW(x, "CLIENT", "PAUSE", "400", "WRITE");
    assert_string_equal(ps.str, "OK");
    a->nlive = 0;
    int n0 = a->nputs;
    char bodies[8][16];
    for (int sd = 1; sd <= 8; sd++) {
        (void)snprintf(bodies[sd - 1], sizeof bodies[0], "k%d", sd);
        store_msg m = {.receiver = 50, .sender = (uint32_t)sd, .type = 1,
                       .body = (const uint8_t *)bodies[sd - 1], .len = 2};
        int r;
        CALL(r = store_put(a->s, &m, 0, NULL, 102 + (uint64_t)sd));
        assert_int_equal(r, 0);
    }
    raw kl = RAW(x, "CLIENT", "KILL", "ID", idstr);
    assert_int_equal(kl.integer, 1);
    WAIT_FOR(&x->loop, a->nputs == n0 + 8, 5000);
    WAIT_FOR(&x->loop, s->conns[1].up, 5000); /* reconnected by itself */
    restore_stderr(saved, path, log, sizeof log);
    for (int sd = 1; sd <= 8; sd++) {
        const putrec *p = &a->puts[n0 + sd - 1];
        assert_int_equal(p->seq, 102 + (uint64_t)sd);
        assert_int_equal(p->status, sd % 4 == 1 ? STORE_EIO : STORE_OK);
    }
    /* one line for the outage, one for the end; the node stayed up */
    const char *l1 = strstr(log, "put connection 1 of 4 lost");
    assert_non_null(l1); /* cluster_redis_pool_down */
    assert_null(strstr(l1 + 1, "put connection 1 of 4 lost"));
    assert_non_null(strstr(log, "every put connection to redis")); /* back */
    assert_null(strstr(log, "unreachable")); /* cluster_redis_down */
    assert_int_equal(store_stats_of(a->s)->health, STORE_OK);
    WAIT_FOR(&x->loop, a->nlive == 6, 5000); /* (the stored ones' live) */

    /* back: sender 1's puts store again, after its earlier ones */
    a->nlive = 0;
    pool_burst(x, a, 7, 2, 200);
    for (int j = 0; j < 14; j++)
        assert_int_equal(a->puts[a->nputs - 14 + j].status, 0);
    WAIT_FOR(&x->loop, a->nlive == 14, 5000);
    for (int sd = 1; sd <= 7; sd++) live_in_order(a, sd, 2);

    /* Redis itself dies: its cluster_redis_down line only, none for the
     * pool (whichever connection notices first) */
    capture_stderr(&saved, path);
    if (redisfix_kill(&x->f)) fail_msg("%s", x->f.err);
    WAIT_FOR(&x->loop, store_stats_of(a->s)->health == STORE_EIO &&
                           s->pool_down == 3, 5000);
    if (redisfix_restart(&x->f)) fail_msg("%s", x->f.err);
    WAIT_FOR(&x->loop, store_stats_of(a->s)->health == STORE_OK &&
                           s->pool_down == 0, 8000);
    restore_stderr(saved, path, log, sizeof log);
    assert_non_null(strstr(log, "unreachable"));
    assert_null(strstr(log, "put connection"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test_setup_teardown(test_devices_and_cursor_rule, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_put_dedup_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_fetch_cursor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_and_groups, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_signals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_janitor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_goodbye, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weak_persistence, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
