/*
 * test_store_sig.c -- unit tests for the store's signals (store.h,
 * "Signals"; src/server/store_sig.c): read marks, store_marks,
 * contacts and store_presence, and the schema step that added them.
 *
 * As test_store.c: a fresh temporary directory and uv loop per test, the
 * loop turned with UV_RUN_ONCE (a 5 ms repeating timer makes each turn
 * return) until the expected completions came or an iteration bound is
 * hit, so a bug fails, never hangs. No sleeps: every wait is for a
 * completion.
 *
 * Covers: a read mark keeps the highest value (and its time), lower ones
 * change nothing, over a restart too; the marks of a 1:1 conversation
 * (peer's then user's own: delivered = the highest cursor of the user's
 * devices, read = its mark) and of a group (one per member in the
 * member order; none for a non-member or an unknown group); contacts made
 * by a stored 1:1 put (not by a put refused by quota, nor by a group
 * message) and by store_contact allow presence with check, a stranger is
 * not allowed, everyone is without check, and the contacts outlive a
 * restart (the pair cache starts empty); last_seen after a connection
 * closed; completions in submission order; a failed transaction fails the
 * marks and presence asked with it (n = 0) and loses its contacts, and the
 * store goes on; a request that cannot be queued (out of memory) completes
 * with STORE_ENOMEM on the next turn; a version-3 database is upgraded to
 * version 4 with its rows kept.
 *
 * Allocation failures: linked with -Wl,--wrap=realloc,--wrap=calloc
 * (Makefile), as test_store.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testsql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>
#include <uv.h>

#include "common/log.h"
#include "server/store.h"
#include "testutil.h"

void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t k, size_t n);
static _Thread_local int fail_allocs;

void *__wrap_realloc(void *p, size_t n) {
    return fail_allocs ? NULL : __real_realloc(p, n);
}
void *__wrap_calloc(size_t k, size_t n) {
    return fail_allocs ? NULL : __real_calloc(k, n);
}

#define WAIT_ITERS 4000 /* loop turns of at most ~5 ms: a 20 s bound */
#define MAX_MARKS 8

/* ------------------------------------------------------------------ */
/* Fixture                                                              */
/* ------------------------------------------------------------------ */

typedef struct tctx {
    char dir[64];
    char path[96]; /* dir/chat.db */
    uv_loop_t loop;
    uv_timer_t tick;
    store *st;
    store_config cfg;
    /* what the callbacks saw */
    int nput, ndev, ngrp, nmarks, npres;
    int put_status, dev_status, grp_status;
    uint32_t dev, group;
    int marks_status;
    size_t marks_n;
    store_mark marks[MAX_MARKS];
    int pres_status;
    size_t pres_n;
    uint32_t pres_users[STORE_PRESENCE_MAX];
    uint8_t allowed[STORE_PRESENCE_MAX];
    int64_t seen[STORE_PRESENCE_MAX];
    char events[64]; /* P put, M marks, Q presence, in arrival order */
    size_t nevents;
} tctx;

static void event(tctx *t, char c) {
    if (t->nevents + 1 < sizeof t->events) t->events[t->nevents++] = c;
}

static void on_put(void *ctx, void *token, uint64_t seq, uint64_t id,
                   uint64_t cid, int status) {
    (void)token, (void)seq, (void)id, (void)cid;
    tctx *t = ctx;
    t->nput++;
    t->put_status = status;
    event(t, 'P');
}

static void on_device(void *ctx, void *token, const store_device_info *d,
                      int status) {
    (void)token;
    tctx *t = ctx;
    t->ndev++;
    t->dev_status = status;
    t->dev = d ? d->dev : UINT32_MAX;
}

static void on_group(void *ctx, void *token, uint32_t group, int status) {
    (void)token;
    tctx *t = ctx;
    t->ngrp++;
    t->grp_status = status;
    t->group = group;
}

static void on_marks(void *ctx, void *token, const store_mark *marks,
                     size_t n, int status) {
    tctx *t = ctx;
    assert_ptr_equal(token, t);
    assert_true(n <= MAX_MARKS);
    assert_true(status == STORE_OK || n == 0);
    t->nmarks++;
    t->marks_status = status;
    t->marks_n = n;
    if (n) memcpy(t->marks, marks, n * sizeof *marks);
    event(t, 'M');
}

static void on_presence(void *ctx, void *token, const uint32_t *users,
                        const uint8_t *allowed, const int64_t *last_seen,
                        const uint8_t *online, size_t n, int status) {
    tctx *t = ctx;
    assert_null(online); /* (one process: its router knows) */
    assert_ptr_equal(token, t);
    assert_true(n <= STORE_PRESENCE_MAX);
    assert_true(status == STORE_OK || n == 0);
    t->npres++;
    t->pres_status = status;
    t->pres_n = n;
    if (n) {
        memcpy(t->pres_users, users, n * sizeof *users);
        memcpy(t->allowed, allowed, n);
        memcpy(t->seen, last_seen, n * sizeof *last_seen);
    }
    event(t, 'Q');
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state) {
    tctx *t = calloc(1, sizeof *t);
    assert_non_null(t);
    strcpy(t->dir, "/tmp/test_store_sig.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/chat.db", t->dir);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->cfg = (store_config){.dir = t->dir, .dedup_ms = 60000};
    *state = t;
    return 0;
}

static void tick_cb(uv_timer_t *h) { (void)h; }

static void t_open(tctx *t) {
    store_callbacks cb = {t, on_put, NULL, on_device, NULL, NULL, on_group,
                          on_marks, on_presence, NULL, NULL, NULL, NULL, NULL};
    char err[512];
    int r = store_open(&t->st, &t->loop, &t->cfg, &cb, err, sizeof err);
    if (r) fail_msg("store_open: %d %s", r, err);
    uv_timer_init(&t->loop, &t->tick);
    uv_timer_start(&t->tick, tick_cb, 5, 5);
}

static void t_close(tctx *t) {
    if (!t->st) return;
    store_stop(t->st);
    uv_close((uv_handle_t *)&t->tick, NULL);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    store_free(t->st);
    t->st = NULL;
}

static int teardown(void **state) {
    tctx *t = *state;
    fail_allocs = 0; /* a failed test may have left it set */
    t_close(t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    rm_dir(t->dir);
    free(t);
    return 0;
}

/* Turn the loop until *counter reaches want (flushing first). */
static void wait_for(tctx *t, const int *counter, int want) {
    store_flush(t->st);
    for (int i = 0; *counter < want && i < WAIT_ITERS; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(*counter, want);
}

/* user's device `name`: its number. */
static uint32_t device(tctx *t, uint32_t user, const char *name) {
    store_device(t->st, user, name, strlen(name), 1, t);
    wait_for(t, &t->ndev, t->ndev + 1);
    assert_int_equal(t->dev_status, STORE_OK);
    return t->dev;
}

/* The marks of (peer or group) as user sees them; their status. */
static int marks(tctx *t, uint32_t user, uint32_t peer, uint32_t group) {
    store_marks(t->st, user, peer, group, t);
    wait_for(t, &t->nmarks, t->nmarks + 1);
    return t->marks_status;
}

static int presence(tctx *t, uint32_t user, const uint32_t *users, size_t n,
                    int check) {
    store_presence(t->st, user, users, n, check, t);
    wait_for(t, &t->npres, t->npres + 1);
    if (t->pres_status == STORE_OK) {
        assert_int_equal(t->pres_n, n);
        assert_memory_equal(t->pres_users, users, n * sizeof *users);
    }
    return t->pres_status;
}

static void check_mark(const store_mark *m, uint32_t user, uint64_t delivered,
                       uint64_t read, int64_t read_ts) {
    assert_int_equal(m->user, user);
    assert_int_equal(m->delivered, delivered);
    assert_int_equal(m->read, read);
    assert_int_equal(m->read_ts, read_ts);
}

/* Queue a 1:1 (or group: grp) message id from sender to receiver. */
static void put_msg(tctx *t, uint64_t id, uint32_t sender, uint32_t receiver,
                    uint32_t grp, int quota) {
    store_msg m = {.id = id, .receiver = receiver, .sender = sender,
                   .type = 1, .ts = now_ms(), .body = (const uint8_t *)"hi",
                   .len = 2, .grp = grp};
    assert_int_equal(store_put(t->st, &m, quota, t, id), STORE_OK);
}

/* Make a group of actor and users; its id. */
static uint32_t make_group(tctx *t, uint32_t actor, const uint32_t *users,
                           size_t n) {
    store_group_op o = {.op = STORE_G_CREATE, .actor = actor, .name = "g",
                        .namelen = 1, .users = users, .nusers = n,
                        .joined = 0, .max_members = 16};
    store_group(t->st, &o, t);
    wait_for(t, &t->ngrp, t->ngrp + 1);
    assert_int_equal(t->grp_status, STORE_OK);
    return t->group;
}

/* ------------------------------------------------------------------ */
/* Read marks and store_marks                                           */
/* ------------------------------------------------------------------ */

/* The highest mark wins, with its time; a lower one changes nothing, in
 * the same batch or a later one, and over a restart. */
static void test_read_marks_keep_max(void **state) {
    tctx *t = *state;
    t_open(t);
    store_read_mark(t->st, 1, 2, 0, 50, 1000);
    store_read_mark(t->st, 1, 2, 0, 40, 2000); /* lower, same batch */
    assert_int_equal(marks(t, 2, 1, 0), STORE_OK);
    assert_int_equal(t->marks_n, 2);
    check_mark(&t->marks[0], 1, 0, 50, 1000); /* the peer's (1's) */
    check_mark(&t->marks[1], 2, 0, 0, 0);     /* 2 has read nothing */
    store_read_mark(t->st, 1, 2, 0, 49, 3000); /* lower, later batch */
    assert_int_equal(marks(t, 2, 1, 0), STORE_OK);
    check_mark(&t->marks[0], 1, 0, 50, 1000);
    store_read_mark(t->st, 1, 2, 0, 60, 4000);
    store_read_mark(t->st, 2, 1, 0, 7, 5000);
    store_read_mark(t->st, 1, 0, 9, 70, 6000); /* a group's: apart */
    store_read_mark(t->st, 1, 0, 0, 80, 7000); /* no conversation: ignored */
    assert_int_equal(marks(t, 1, 2, 0), STORE_OK); /* as 1 sees it */
    check_mark(&t->marks[0], 2, 0, 7, 5000);
    check_mark(&t->marks[1], 1, 0, 60, 4000);
    t_close(t);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM reads"), 3);
    assert_int_equal(sql_int(t->path, "SELECT upto FROM reads WHERE user = 1"
                             " AND kind = 2 AND peer = 9"), 70);
    t_open(t);
    store_read_mark(t->st, 1, 2, 0, 55, 8000);
    assert_int_equal(marks(t, 2, 1, 0), STORE_OK);
    check_mark(&t->marks[0], 1, 0, 60, 4000);
}

/* 1:1: delivered is the highest cursor over the user's devices. */
static void test_marks_one_to_one(void **state) {
    tctx *t = *state;
    t_open(t);
    uint32_t a = device(t, 1, "phone"), b = device(t, 1, "laptop"),
             c = device(t, 2, "");
    store_cursor(t->st, 1, a, 10, 0);
    store_cursor(t->st, 1, b, 30, 0);
    store_cursor(t->st, 2, c, 20, 0);
    store_read_mark(t->st, 2, 1, 0, 18, 111);
    assert_int_equal(marks(t, 1, 2, 0), STORE_OK);
    assert_int_equal(t->marks_n, 2);
    check_mark(&t->marks[0], 2, 20, 18, 111);
    check_mark(&t->marks[1], 1, 30, 0, 0);
    store_cursor(t->st, 1, a, 35, 0); /* the phone passes the laptop */
    store_cursor(t->st, 2, c, 15, 0); /* lower: changes nothing */
    assert_int_equal(marks(t, 2, 1, 0), STORE_OK);
    check_mark(&t->marks[0], 1, 35, 0, 0);
    check_mark(&t->marks[1], 2, 20, 18, 111);
    assert_int_equal(marks(t, 1, 3, 0), STORE_OK); /* a user never seen */
    check_mark(&t->marks[0], 3, 0, 0, 0);
}

/* A group: one entry per member in the member order; a non-member, or an
 * unknown group, gets none (status OK). */
static void test_marks_group(void **state) {
    tctx *t = *state;
    t_open(t);
    const uint32_t others[] = {3, 2};
    uint32_t g = make_group(t, 1, others, 2); /* members 1, 3, 2 */
    uint32_t d1 = device(t, 1, ""), d2 = device(t, 2, ""),
             d2b = device(t, 2, "tab"), d3 = device(t, 3, "");
    store_cursor(t->st, 1, d1, 5, 0);
    store_cursor(t->st, 2, d2, 7, 0);
    store_cursor(t->st, 2, d2b, 9, 0);
    store_cursor(t->st, 3, d3, 4, 0);
    store_read_mark(t->st, 3, 0, g, 4, 333);
    store_read_mark(t->st, 2, 0, g, 6, 222);
    store_read_mark(t->st, 2, 1, 0, 99, 1); /* a 1:1 mark: not the group's */
    assert_int_equal(marks(t, 2, 0, g), STORE_OK);
    assert_int_equal(t->marks_n, 3);
    check_mark(&t->marks[0], 1, 5, 0, 0);
    check_mark(&t->marks[1], 3, 4, 4, 333);
    check_mark(&t->marks[2], 2, 9, 6, 222);
    t->marks_n = 99;
    assert_int_equal(marks(t, 9, 0, g), STORE_OK); /* not a member */
    assert_int_equal(t->marks_n, 0);
    t->marks_n = 99;
    assert_int_equal(marks(t, 1, 0, g + 1), STORE_OK); /* no such group */
    assert_int_equal(t->marks_n, 0);
    store_group_op leave = {.op = STORE_G_LEAVE, .group = g, .actor = 3,
                            .max_members = 16};
    store_group(t->st, &leave, t);
    assert_int_equal(marks(t, 1, 0, g), STORE_OK); /* after it, in order */
    assert_int_equal(t->marks_n, 2);
    check_mark(&t->marks[0], 1, 5, 0, 0);
    check_mark(&t->marks[1], 2, 9, 6, 222);
}

/* ------------------------------------------------------------------ */
/* Contacts and presence                                                */
/* ------------------------------------------------------------------ */

/* Who may see whom: the user itself, a contact (a stored 1:1 message
 * either way, or store_contact), a member of a common group; not a
 * stranger, nor the sender of a message refused by quota, nor the author
 * of a group message to a group it left. Without check, everyone. */
static void test_presence_allowed(void **state) {
    tctx *t = *state;
    t->cfg.max_messages = 1;
    t_open(t);
    put_msg(t, 1, 1, 2, 0, 1);  /* 1 -> 2 stored */
    put_msg(t, 2, 9, 2, 0, 1);  /* 9 -> 2 refused: 2's quota is full */
    store_contact(t->st, 4, 3); /* delivered live, noted */
    store_contact(t->st, 5, 5); /* ignored */
    wait_for(t, &t->nput, 2);
    assert_int_equal(t->put_status, STORE_EQUOTA);
    const uint32_t u1[] = {1, 2, 3, 7, 9};
    assert_int_equal(presence(t, 1, u1, 5, 1), STORE_OK);
    assert_memory_equal(t->allowed, ((uint8_t[]){1, 1, 0, 0, 0}), 5);
    const uint32_t u2[] = {1};
    assert_int_equal(presence(t, 2, u2, 1, 1), STORE_OK); /* both ways */
    assert_int_equal(t->allowed[0], 1);
    const uint32_t u3[] = {4};
    assert_int_equal(presence(t, 3, u3, 1, 1), STORE_OK);
    assert_int_equal(t->allowed[0], 1);
    const uint32_t u9[] = {2};
    assert_int_equal(presence(t, 9, u9, 1, 1), STORE_OK); /* refused put */
    assert_int_equal(t->allowed[0], 0);
    /* a group: its members see each other, then not once one left */
    const uint32_t six[] = {6};
    uint32_t g = make_group(t, 5, six, 1);
    const uint32_t u5[] = {6, 7};
    assert_int_equal(presence(t, 5, u5, 2, 1), STORE_OK);
    assert_memory_equal(t->allowed, ((uint8_t[]){1, 0}), 2);
    put_msg(t, 3, 6, 0, g, 0); /* a group message: no contact */
    store_group_op leave = {.op = STORE_G_LEAVE, .group = g, .actor = 6,
                            .max_members = 16};
    store_group(t->st, &leave, t);
    assert_int_equal(presence(t, 5, u5, 2, 1), STORE_OK);
    assert_memory_equal(t->allowed, ((uint8_t[]){0, 0}), 2);
    assert_int_equal(presence(t, 5, u5, 2, 0), STORE_OK); /* no check */
    assert_memory_equal(t->allowed, ((uint8_t[]){1, 1}), 2);
    assert_int_equal(presence(t, 5, u5, 0, 1), STORE_OK); /* nobody */
    assert_int_equal(t->pres_n, 0);
    /* the contacts are rows: a restart (an empty cache) keeps them */
    t_close(t);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM contacts"), 2);
    t_open(t);
    assert_int_equal(presence(t, 2, u2, 1, 1), STORE_OK);
    assert_int_equal(t->allowed[0], 1);
    assert_int_equal(presence(t, 3, u3, 1, 1), STORE_OK);
    assert_int_equal(t->allowed[0], 1);
    assert_int_equal(presence(t, 9, u9, 1, 1), STORE_OK);
    assert_int_equal(t->allowed[0], 0);
}

/* Many puts of one pair write one row; many pairs (more than the cache
 * holds) one row each. */
static void test_contacts_many_puts(void **state) {
    tctx *t = *state;
    t_open(t);
    uint64_t id = 1;
    for (int i = 0; i < 100; i++) put_msg(t, id++, 1, 2, 0, 0);
    for (uint32_t u = 0; u < 6000; u++) put_msg(t, id++, 10 + u, 20000, 0, 0);
    for (uint32_t u = 0; u < 6000; u++) put_msg(t, id++, 20000, 10 + u, 0, 0);
    put_msg(t, id++, 7, 7, 0, 0); /* to oneself: no contact */
    wait_for(t, &t->nput, (int)id - 1);
    assert_int_equal(t->put_status, STORE_OK);
    const uint32_t u[] = {10, 6009, 6010, 7};
    assert_int_equal(presence(t, 20000, u, 4, 1), STORE_OK);
    assert_memory_equal(t->allowed, ((uint8_t[]){1, 1, 0, 0}), 4);
    t_close(t);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM contacts"), 6001);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM contacts"
                             " WHERE a >= b"), 0);
}

/* last_seen: the latest time a device of the user was seen (a connection
 * that closed reports it), 0 for a user without devices. */
static void test_last_seen(void **state) {
    tctx *t = *state;
    t_open(t);
    int64_t before = now_ms();
    uint32_t d = device(t, 1, "phone");
    store_cursor(t->st, 1, d, 0, 1); /* its connection closed */
    const uint32_t u[] = {1, 2};
    assert_int_equal(presence(t, 3, u, 2, 0), STORE_OK);
    assert_true(t->seen[0] > 0);
    assert_true(t->seen[0] >= before && t->seen[0] <= now_ms());
    assert_int_equal(t->seen[1], 0);
    assert_memory_equal(t->allowed, ((uint8_t[]){1, 1}), 2);
    /* kept over a restart (the devices' rows) */
    int64_t seen = t->seen[0];
    t_close(t);
    t_open(t);
    assert_int_equal(presence(t, 3, u, 2, 0), STORE_OK);
    assert_int_equal(t->seen[0], seen);
}

/* ------------------------------------------------------------------ */
/* Order, failures, schema                                              */
/* ------------------------------------------------------------------ */

/* Completions in submission order, never inside the call; a failed
 * transaction (a duplicate id) fails the marks and presence of its batch
 * with n = 0 and loses its contact; the next batch is answered. */
static void test_order_and_failed_transaction(void **state) {
    tctx *t = *state;
    t_open(t);
    const uint32_t u[] = {4};
    put_msg(t, 1, 1, 2, 0, 0);
    store_marks(t->st, 1, 2, 0, t);
    store_presence(t->st, 3, u, 1, 1, t);
    put_msg(t, 2, 1, 2, 0, 0);
    assert_int_equal(t->nevents, 0); /* never inside the calls */
    wait_for(t, &t->npres, 1);
    wait_for(t, &t->nput, 2);
    assert_memory_equal(t->events, "PMQP", 4);
    assert_int_equal(t->marks_status, STORE_OK);
    assert_int_equal(t->allowed[0], 0);

    t->nevents = 0;
    store_contact(t->st, 3, 4);
    store_read_mark(t->st, 1, 2, 0, 5, 5);
    put_msg(t, 1, 1, 2, 0, 0); /* id 1 again: the transaction fails */
    store_marks(t->st, 1, 2, 0, t);
    store_presence(t->st, 3, u, 1, 1, t);
    wait_for(t, &t->npres, 2);
    assert_memory_equal(t->events, "PMQ", 3);
    assert_int_equal(t->put_status, STORE_EIO);
    assert_int_equal(t->marks_status, STORE_EIO);
    assert_int_equal(t->marks_n, 0);
    assert_int_equal(t->pres_status, STORE_EIO);
    assert_int_equal(t->pres_n, 0);

    assert_int_equal(marks(t, 2, 1, 0), STORE_OK); /* the mark was lost */
    check_mark(&t->marks[0], 1, 0, 0, 0);
    assert_int_equal(presence(t, 3, u, 1, 1), STORE_OK); /* so was 3-4 */
    assert_int_equal(t->allowed[0], 0);
    const uint32_t two[] = {2};
    assert_int_equal(presence(t, 1, two, 1, 1), STORE_OK); /* kept: 1-2 */
    assert_int_equal(t->allowed[0], 1);
}

/* A request that cannot be queued completes with STORE_ENOMEM on a later
 * loop turn, never inside the call; the store goes on. */
static void test_oom_completes_later(void **state) {
    tctx *t = *state;
    t_open(t);
    const uint32_t u[] = {1, 2};
    fail_allocs = 1; /* no batch can be made */
    store_marks(t->st, 1, 2, 0, t);
    store_presence(t->st, 1, u, 2, 1, t);
    store_read_mark(t->st, 1, 2, 0, 5, 5); /* lost (a hint) */
    store_contact(t->st, 1, 2);            /* lost */
    fail_allocs = 0;
    assert_int_equal(t->nmarks + t->npres, 0);
    for (int i = 0; t->npres < 1 && i < WAIT_ITERS; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_memory_equal(t->events, "MQ", 2);
    assert_int_equal(t->marks_status, STORE_ENOMEM);
    assert_int_equal(t->pres_status, STORE_ENOMEM);
    assert_int_equal(t->pres_n, 0);
    assert_int_equal(marks(t, 1, 2, 0), STORE_OK);
    check_mark(&t->marks[1], 1, 0, 0, 0);
}

/* After store_stop nothing completes. */
static void test_stop_drops_completions(void **state) {
    tctx *t = *state;
    t_open(t);
    const uint32_t u[] = {1};
    store_marks(t->st, 1, 2, 0, t);
    store_presence(t->st, 1, u, 1, 1, t);
    t_close(t);
    assert_int_equal(t->nmarks + t->npres, 0);
}

/* A version-3 database (the schema before signals) opens: it gets the
 * two tables (4) and dedup's msg column (5), keeps its rows, and the
 * signals work on it. */
static void test_migration_from_v3(void **state) {
    tctx *t = *state;
    t_open(t);
    uint32_t d = device(t, 2, "");
    put_msg(t, 1, 1, 2, 0, 0);
    put_msg(t, 2, 3, 2, 0, 0);
    wait_for(t, &t->nput, 2);
    store_cursor(t->st, 2, d, 1, 1);
    t_close(t);
    /* back to what version 3 wrote: no reads, no contacts, no dedup.msg
     * (version 5) */
    sql_exec(t->path, "DROP TABLE reads; DROP TABLE contacts;"
                      "ALTER TABLE dedup DROP COLUMN msg;"
                      "PRAGMA user_version=3;");
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM sqlite_schema"
                             " WHERE name IN ('reads', 'contacts')"), 0);
    int64_t objects = sql_int(t->path, "SELECT count(*) FROM sqlite_schema");
    t_open(t);
    assert_int_equal(store_count(t->st, 2), 1); /* 1 went: d has it */
    store_read_mark(t->st, 2, 3, 0, 2, 22);
    assert_int_equal(marks(t, 3, 2, 0), STORE_OK);
    check_mark(&t->marks[0], 2, 1, 2, 22);
    const uint32_t u[] = {1};
    assert_int_equal(presence(t, 2, u, 1, 1), STORE_OK);
    assert_int_equal(t->allowed[0], 0); /* stored before version 4 */
    t_close(t);
    assert_int_equal(sql_int(t->path, "PRAGMA user_version"),
                     STORE_SCHEMA_VERSION);
    assert_int_equal(STORE_SCHEMA_VERSION, 5);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM"
                             " pragma_table_info('dedup') WHERE name = 'msg'"),
                     1);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM sqlite_schema"),
                     objects + 2);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM messages"), 1);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM devices"), 1);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM reads"), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
    log_threshold = LOG_WARN; /* keep the test output short */
    const struct CMUnitTest tests[] = {
        T(test_read_marks_keep_max),
        T(test_marks_one_to_one),
        T(test_marks_group),
        T(test_presence_allowed),
        T(test_contacts_many_puts),
        T(test_last_seen),
        T(test_order_and_failed_transaction),
        T(test_oom_completes_later),
        T(test_stop_drops_completions),
        T(test_migration_from_v3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
