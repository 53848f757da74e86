/*
 * test_store.c -- unit tests for the SQLite offline store
 * (src/server/store.h, store_*.c), with the disk-full VFS shim of
 * tests/support/faultvfs.c.
 *
 * Each test gets a fresh temporary directory and its own uv loop; the
 * completions arrive through that loop, which we turn with UV_RUN_ONCE
 * (a 5 ms repeating timer guarantees each turn returns) until the expected
 * callbacks came or an iteration bound is hit, so a bug fails, never hangs.
 *
 * Covers: put/fetch round trip with exact bodies (incl. empty ones and
 * receiver 0), after_id, max_rows / max_bytes paging and `more`, deletes
 * (unknown ids ignored), counts, pending bytes, submission order of mixed
 * puts and fetches, several flushes in one group commit, message and byte
 * quotas (quota=0 bypasses them), reopen (next id, counters, bodies), 10,000
 * puts in one flush, TTL (fetch filter and purge), a file that is not a
 * database, a damaged database, a newer schema, another program's database
 * (all refused and left unchanged), an empty file migrated, a missing
 * directory, disk-full injection with recovery and retried deletes, a
 * failed transaction (duplicate id) rolled back with its counters, an
 * oversized body refused, completions dropped after store_stop while
 * the work is still committed, and a fetch that cannot be queued (out of
 * memory) answered STORE_ENOMEM on the next loop turn, never inside
 * store_fetch, in submission order; the dispatchers of the optional
 * properties (store_shared, store_ids_local) on fake tables.
 *
 * Allocation failures: this binary is linked with
 * -Wl,--wrap=realloc,--wrap=calloc (Makefile), so the store's realloc and
 * calloc calls go through __wrap_realloc / __wrap_calloc below, which fail
 * while fail_allocs is set on the calling thread (the loop's; the store
 * thread never sees a failure).
 *
 * Build: see the Makefile (links -lsqlite3 -lpthread -luv -lcmocka).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testsql.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "common/log.h"
#include "server/store.h"
#include "server/store_int.h" /* STORE_PUT_ROWS */
#include "../support/faultvfs.h"
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

#define MAX_PUTS 20000
#define MAX_FETCHES 512
#define WAIT_ITERS 4000 /* loop turns of at most ~5 ms: a 20 s bound */

/* ------------------------------------------------------------------ */
/* Fixture: a directory, a loop, a store and what the callbacks saw    */
/* ------------------------------------------------------------------ */

typedef struct put_rec {
    void *token;
    uint64_t seq, id;
    int status;
} put_rec;

typedef struct row_copy {
    uint64_t id;
    uint32_t sender, len;
    uint8_t type;
    uint8_t *body;
} row_copy;

typedef struct fetch_rec {
    void *token;
    size_t n;
    int more, status;
    row_copy *rows;
} fetch_rec;

typedef struct tctx {
    char dir[64];
    char path[96]; /* dir/chat.db */
    uv_loop_t loop;
    uv_timer_t tick;
    store *st;
    store_config cfg;
    put_rec *puts;
    size_t nputs;
    fetch_rec *fetches;
    size_t nfetches;
    char *events; /* 'P' / 'F' per callback, in arrival order */
    size_t nevents;
} tctx;

static uint8_t body_byte(uint64_t id, uint32_t j) {
    return (uint8_t)(id * 131u + j * 7u + 3u + (j >> 5));
}

static void on_put(void *ctx, void *token, uint64_t seq, uint64_t id,
                   uint64_t cid, int status) {
    (void)cid;
    tctx *t = ctx;
    assert_true(t->nputs < MAX_PUTS);
    t->puts[t->nputs++] = (put_rec){token, seq, id, status};
    t->events[t->nevents++] = 'P';
}

static void on_fetch(void *ctx, void *token, const store_row *rows, size_t n,
                     int more, int status) {
    tctx *t = ctx;
    assert_true(t->nfetches < MAX_FETCHES);
    fetch_rec *f = &t->fetches[t->nfetches++];
    *f = (fetch_rec){token, n, more, status, NULL};
    f->rows = calloc(n ? n : 1, sizeof *f->rows);
    assert_non_null(f->rows);
    for (size_t i = 0; i < n; i++) {
        row_copy *r = &f->rows[i];
        *r = (row_copy){rows[i].id, rows[i].sender, rows[i].len, rows[i].type,
                        malloc(rows[i].len ? rows[i].len : 1)};
        assert_non_null(r->body);
        if (rows[i].len) memcpy(r->body, rows[i].body, rows[i].len);
    }
    t->events[t->nevents++] = 'F';
}

/* The last device looked up (tests ask one at a time). */
typedef struct dev_rec {
    int n, status;
    uint32_t dev;
    uint64_t cursor;
    size_t ncid;
    uint64_t cids[8];
    uint64_t cid_ids[8];
} dev_rec;
static dev_rec last_dev;

static void on_device(void *ctx, void *token, const store_device_info *d,
                      int status) {
    (void)ctx;
    (void)token;
    last_dev.n++;
    last_dev.status = status;
    if (!d) return;
    last_dev.dev = d->dev;
    last_dev.cursor = d->cursor;
    last_dev.ncid = d->ncid;
    for (size_t i = 0; i < d->ncid && i < 8; i++) {
        last_dev.cids[i] = d->cids[i];
        last_dev.cid_ids[i] = d->cid_ids[i];
    }
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The last group operation answered. */
static struct { int n, status; uint32_t group; } last_grp;

static void on_group(void *ctx, void *token, uint32_t group, int status) {
    (void)ctx;
    (void)token;
    last_grp.n++;
    last_grp.status = status;
    last_grp.group = group;
}

static const store_callbacks callbacks = {NULL, on_put, on_fetch, on_device,
                                          NULL, on_fetch, on_group, NULL,
                                          NULL, NULL, NULL, NULL, NULL, NULL}; /* (test_store_sig.c) */

static int setup(void **state) {
    tctx *t = calloc(1, sizeof *t);
    assert_non_null(t);
    strcpy(t->dir, "/tmp/test_store.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/chat.db", t->dir);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->puts = calloc(MAX_PUTS, sizeof *t->puts);
    t->fetches = calloc(MAX_FETCHES, sizeof *t->fetches);
    t->events = calloc(MAX_PUTS + MAX_FETCHES, 1);
    assert_true(t->puts && t->fetches && t->events);
    t->cfg = (store_config){.dir = t->dir, .dedup_ms = 60000};
    *state = t;
    return 0;
}

static void forget_results(tctx *t) {
    for (size_t i = 0; i < t->nfetches; i++) {
        for (size_t j = 0; j < t->fetches[i].n; j++)
            free(t->fetches[i].rows[j].body);
        free(t->fetches[i].rows);
    }
    t->nputs = t->nfetches = t->nevents = 0;
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
    if (faultvfs_register(NULL) != SQLITE_OK) return -1; /* never full */
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    forget_results(t);
    free(t->puts);
    free(t->fetches);
    free(t->events);
    rm_dir(t->dir);
    free(t);
    return 0;
}

static void tick_cb(uv_timer_t *h) { (void)h; }

/* store_open with t->cfg; returns its status (the store is kept on 0). */
static int t_try_open(tctx *t, char *err, size_t errlen) {
    store_callbacks cb = callbacks;
    cb.ctx = t;
    int r = store_open(&t->st, &t->loop, &t->cfg, &cb, err, errlen);
    if (r == 0) {
        uv_timer_init(&t->loop, &t->tick);
        uv_timer_start(&t->tick, tick_cb, 5, 5);
    } else {
        assert_null(t->st);
    }
    return r;
}

static void t_open(tctx *t) {
    char err[512];
    int r = t_try_open(t, err, sizeof err);
    if (r) fail_msg("store_open: %d %s", r, err);
}

static void wait_puts(tctx *t, size_t n) {
    for (int i = 0; t->nputs < n && i < WAIT_ITERS; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(t->nputs, n);
}

static void wait_fetches(tctx *t, size_t n) {
    for (int i = 0; t->nfetches < n && i < WAIT_ITERS; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(t->nfetches, n);
}

/* Queue a put of message id with a deterministic body of len bytes. */
static void put(tctx *t, uint64_t id, uint32_t receiver, uint32_t len,
                int quota) {
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    for (uint32_t j = 0; j < len; j++) b[j] = body_byte(id, j);
    store_msg m = {.id = id, .receiver = receiver,
                   .sender = (uint32_t)(1000 + id),
                   .type = (uint8_t)(1 + id % 4), .ts = now_ms(),
                   .body = b, .len = len};
    assert_int_equal(store_put(t->st, &m, quota,
                               (void *)(uintptr_t)(0x1000 + id), id * 10),
                     STORE_OK);
    free(b);
}

/* Flush, then wait for every put flushed so far and one more fetch. */
static fetch_rec *fetch_now(tctx *t, uint32_t receiver, uint64_t after,
                            uint32_t max_rows, uint32_t max_bytes,
                            size_t puts_expected) {
    store_fetch(t->st, receiver, 0, 0, after, max_rows, max_bytes, t);
    size_t want = t->nfetches + 1;
    store_flush(t->st);
    wait_fetches(t, want);
    wait_puts(t, puts_expected);
    fetch_rec *f = &t->fetches[want - 1];
    assert_ptr_equal(f->token, t);
    assert_int_equal(f->status, STORE_OK);
    return f;
}

/* Row r is message id, as put() made it. */
static void check_row(const row_copy *r, uint64_t id, uint32_t len) {
    assert_int_equal(r->id, id);
    assert_int_equal(r->sender, 1000 + id);
    assert_int_equal(r->type, 1 + id % 4);
    assert_int_equal(r->len, len);
    for (uint32_t j = 0; j < len; j++) assert_int_equal(r->body[j], body_byte(id, j));
}

static void check_put(const put_rec *p, uint64_t id, int status) {
    assert_int_equal(p->id, id);
    assert_int_equal(p->seq, id * 10);
    assert_ptr_equal(p->token, (void *)(uintptr_t)(0x1000 + id));
    assert_int_equal(p->status, status);
}

/* The whole file, malloc'd; *n its size. */
static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}


static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------------ */
/* 1. Round trip, after_id, paging, deletes, counts, order            */
/* ------------------------------------------------------------------ */

/* The smallest next id a store opened now may give: the clock's. */
static uint64_t id_floor(void) {
    return (uint64_t)(now_ms() - STORE_ID_EPOCH_MS) * 1000;
}

static void test_put_fetch_roundtrip(void **state) {
    tctx *t = *state;
    uint64_t floor = id_floor();
    t_open(t);
    uint64_t next = store_next_id(t->st);
    assert_true(next > floor && next < floor + 10 * 1000 * 1000);
    static const uint32_t lens[6] = {0, 1, 50, 300, 4000, 17};
    static const uint32_t rcv[6] = {7, 9, 7, 0, 7, 9};
    size_t bytes = 0;
    for (uint64_t id = 1; id <= 6; id++) {
        put(t, id, rcv[id - 1], lens[id - 1], 1);
        bytes += lens[id - 1];
    }
    assert_int_equal(store_next_id(t->st), next); /* (smaller ids given) */
    assert_int_equal(store_pending_bytes(t->st), bytes);
    fetch_rec *f = fetch_now(t, 7, 0, 100, 1 << 20, 6);
    assert_string_equal(t->events, "PPPPPPF");
    for (uint64_t id = 1; id <= 6; id++)
        check_put(&t->puts[id - 1], id, STORE_OK);
    assert_int_equal(store_pending_bytes(t->st), 0);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->more, 0);
    check_row(&f->rows[0], 1, 0);
    check_row(&f->rows[1], 3, 50);
    check_row(&f->rows[2], 5, 4000);
    f = fetch_now(t, 0, 0, 100, 1 << 20, 6); /* receiver 0 is a receiver */
    assert_int_equal(f->n, 1);
    check_row(&f->rows[0], 4, 300);
    assert_int_equal(store_count(t->st, 7), 3);
    assert_int_equal(store_count(t->st, 9), 2);
    assert_int_equal(store_count(t->st, 0), 1);
    assert_int_equal(store_count(t->st, 12345), 0);
}

static void test_fetch_after_id(void **state) {
    tctx *t = *state;
    t_open(t);
    for (uint64_t id = 1; id <= 10; id++) put(t, id, 5, 20, 0);
    fetch_rec *f = fetch_now(t, 5, 3, 100, 1 << 20, 10);
    assert_int_equal(f->n, 7);
    for (size_t i = 0; i < 7; i++) check_row(&f->rows[i], 4 + i, 20);
    assert_int_equal(f->more, 0);
    f = fetch_now(t, 5, 10, 100, 1 << 20, 10);
    assert_int_equal(f->n, 0);
    assert_int_equal(f->more, 0);
    f = fetch_now(t, 6, 0, 100, 1 << 20, 10);
    assert_int_equal(f->n, 0);
}

static void test_paging_rows_and_bytes(void **state) {
    tctx *t = *state;
    t_open(t);
    for (uint64_t id = 1; id <= 10; id++) put(t, id, 5, 100, 0);
    /* max_rows 3: pages of 3, 3, 3, 1 */
    uint64_t after = 0, next = 1;
    int pages = 0, more = 1;
    while (more) {
        fetch_rec *f = fetch_now(t, 5, after, 3, 1 << 20, 10);
        assert_true(f->n >= 1 && f->n <= 3);
        for (size_t i = 0; i < f->n; i++) check_row(&f->rows[i], next++, 100);
        after = f->rows[f->n - 1].id;
        more = f->more;
        pages++;
        assert_true(pages <= 4);
    }
    assert_int_equal(pages, 4);
    assert_int_equal(next, 11);
    /* exactly max_rows left: no more */
    fetch_rec *f = fetch_now(t, 5, 0, 10, 1 << 20, 10);
    assert_int_equal(f->n, 10);
    assert_int_equal(f->more, 0);
    /* bytes: rows are added until 250 is reached: 100, 200, 300 */
    f = fetch_now(t, 5, 0, 100, 250, 10);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->more, 1);
    /* reaching max_bytes exactly on the last row: no more */
    f = fetch_now(t, 5, 0, 100, 1000, 10);
    assert_int_equal(f->n, 10);
    assert_int_equal(f->more, 0);
    /* at least one row, even when it is larger than max_bytes */
    f = fetch_now(t, 5, 0, 100, 0, 10);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->more, 1);
    check_row(&f->rows[0], 1, 100);
    f = fetch_now(t, 5, 9, 100, 10, 10);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->more, 0);
    check_row(&f->rows[0], 10, 100);
}

static void test_delete(void **state) {
    tctx *t = *state;
    t_open(t);
    for (uint64_t id = 1; id <= 5; id++) put(t, id, 3, 10, 0);
    fetch_now(t, 3, 0, 100, 1 << 20, 5);
    assert_int_equal(store_count(t->st, 3), 5);
    store_del(t->st, 3, 2);
    store_del(t->st, 3, 999999); /* unknown: ignored */
    store_del(t->st, 3, 4);
    store_del(t->st, 3, 4);   /* twice: the second is unknown */
    fetch_rec *f = fetch_now(t, 3, 0, 100, 1 << 20, 5);
    assert_int_equal(f->n, 3);
    check_row(&f->rows[0], 1, 10);
    check_row(&f->rows[1], 3, 10);
    check_row(&f->rows[2], 5, 10);
    assert_int_equal(store_count(t->st, 3), 3);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM messages"), 3);
}

/* Puts and fetches come back in the order they were submitted; the
 * fetches of a batch run after its transaction, so they see all its puts. */
static void test_submission_order(void **state) {
    tctx *t = *state;
    t_open(t);
    put(t, 1, 8, 5, 0);
    store_fetch(t->st, 8, 0, 0, 0, 10, 1000, t);
    put(t, 2, 8, 5, 0);
    store_fetch(t->st, 8, 0, 0, 1, 10, 1000, t);
    put(t, 3, 8, 5, 0);
    store_flush(t->st);
    /* several flushes before the thread runs: one or more transactions,
     * callbacks still in order */
    for (uint64_t id = 4; id <= 30; id++) {
        put(t, id, 8, 5, 0);
        if (id % 5 == 0) store_flush(t->st);
    }
    store_flush(t->st);
    wait_puts(t, 30);
    wait_fetches(t, 2);
    assert_memory_equal(t->events, "PFPFP", 5);
    for (uint64_t id = 1; id <= 30; id++) check_put(&t->puts[id - 1], id, 0);
    /* each fetch sees at least the puts before it (more if later batches
     * joined the same transaction), in id order */
    assert_true(t->fetches[0].n >= 3);
    assert_true(t->fetches[1].n >= 2);
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < t->fetches[k].n; i++)
            check_row(&t->fetches[k].rows[i], k + 1 + i, 5);
    assert_int_equal(store_count(t->st, 8), 30);
}

/* ------------------------------------------------------------------ */
/* 2. Quotas                                                           */
/* ------------------------------------------------------------------ */

static void test_quota_messages(void **state) {
    tctx *t = *state;
    t->cfg.max_messages = 3;
    t_open(t);
    for (uint64_t id = 1; id <= 5; id++) put(t, id, 4, 10, 1);
    put(t, 6, 4, 10, 0); /* a durable copy: no quota */
    put(t, 7, 5, 10, 1); /* another receiver */
    fetch_rec *f = fetch_now(t, 4, 0, 100, 1 << 20, 7);
    static const int want[7] = {0, 0, 0, STORE_EQUOTA, STORE_EQUOTA, 0, 0};
    for (uint64_t id = 1; id <= 7; id++)
        check_put(&t->puts[id - 1], id, want[id - 1]);
    assert_int_equal(f->n, 4);
    assert_int_equal(f->rows[3].id, 6);
    assert_int_equal(store_count(t->st, 4), 4);
    assert_int_equal(store_count(t->st, 5), 1);
    /* still full after one delete (4 -> 3); room after two */
    store_del(t->st, 4, 1);
    put(t, 8, 4, 10, 1);
    store_flush(t->st);
    wait_puts(t, 8);
    check_put(&t->puts[7], 8, STORE_EQUOTA);
    store_del(t->st, 4, 2); /* committed before the next put is queued:
                             * within one transaction, puts run before
                             * deletes */
    fetch_now(t, 4, 0, 1, 1, 8);
    assert_int_equal(store_count(t->st, 4), 2);
    put(t, 9, 4, 10, 1);
    f = fetch_now(t, 4, 0, 100, 1 << 20, 9);
    check_put(&t->puts[8], 9, STORE_OK);
    assert_int_equal(f->n, 3);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM messages WHERE "
                             "id IN (4, 5, 8)"), 0);
}

/* Puts written STORE_PUT_ROWS to an INSERT: the quota still counts each
 * put in order, within one transaction and across the statements. */
static void test_quota_across_multi_row_inserts(void **state) {
    tctx *t = *state;
    t->cfg.max_messages = 40;
    t_open(t);
    enum { N = 3 * STORE_PUT_ROWS + 7 };
    for (uint64_t id = 1; id <= N; id++)
        put(t, id, id % 3 ? 4 : 5, (uint32_t)(id % 5), 1);
    fetch_rec *f = fetch_now(t, 4, 0, 1000, 1 << 20, N);
    unsigned to4 = 0, to5 = 0;
    for (uint64_t id = 1; id <= N; id++) {
        unsigned *k = id % 3 ? &to4 : &to5;
        check_put(&t->puts[id - 1], id, ++*k > 40 ? STORE_EQUOTA : STORE_OK);
    }
    assert_int_equal(f->n, 40);
    for (size_t i = 0; i < f->n; i++)
        check_row(&f->rows[i], f->rows[i].id, (uint32_t)(f->rows[i].id % 5));
    assert_int_equal(store_count(t->st, 4), 40);
    assert_int_equal(store_count(t->st, 5), to5 > 40 ? 40 : to5);
}

static void test_quota_bytes(void **state) {
    tctx *t = *state;
    t->cfg.max_bytes = 250;
    t_open(t);
    put(t, 1, 4, 100, 1);
    put(t, 2, 4, 100, 1);
    put(t, 3, 4, 100, 1); /* 300 > 250 */
    put(t, 4, 4, 50, 1);  /* 250: fits exactly */
    put(t, 5, 4, 1, 1);
    put(t, 6, 4, 100, 0);
    fetch_rec *f = fetch_now(t, 4, 0, 100, 1 << 20, 6);
    static const int want[6] = {0, 0, STORE_EQUOTA, 0, STORE_EQUOTA, 0};
    for (uint64_t id = 1; id <= 6; id++)
        check_put(&t->puts[id - 1], id, want[id - 1]);
    assert_int_equal(f->n, 4);
    check_row(&f->rows[2], 4, 50);
    check_row(&f->rows[3], 6, 100);
    assert_int_equal(store_count(t->st, 4), 4);
}

/* ------------------------------------------------------------------ */
/* 3. Durability, volume                                               */
/* ------------------------------------------------------------------ */

static void test_reopen(void **state) {
    tctx *t = *state;
    t->cfg.fsync_full = 1;
    t_open(t);
    for (uint64_t id = 1; id <= 20; id++) put(t, id, (uint32_t)(1 + id % 3), (uint32_t)(id * 13), 0);
    store_del(t->st, 3, 20); /* (receivers: 1 + id % 3) */
    store_del(t->st, 1, 3);
    fetch_now(t, 1, 0, 1, 1, 20);
    uint64_t c1 = store_count(t->st, 1), c2 = store_count(t->st, 2);
    assert_int_equal(c1 + c2 + store_count(t->st, 3), 18);
    t_close(t);
    forget_results(t);

    t_open(t);
    assert_true(store_next_id(t->st) > id_floor() - 10 * 1000 * 1000);
    assert_int_equal(store_count(t->st, 1), c1);
    assert_int_equal(store_count(t->st, 2), c2);
    size_t seen = 0;
    for (uint32_t r = 1; r <= 3; r++) {
        fetch_rec *f = fetch_now(t, r, 0, 100, 1 << 20, 0);
        for (size_t i = 0; i < f->n; i++) {
            uint64_t id = f->rows[i].id;
            assert_true(id != 3 && id != 20 && 1 + id % 3 == r);
            check_row(&f->rows[i], id, (uint32_t)(id * 13));
            seen++;
        }
    }
    assert_int_equal(seen, 18);
    put(t, 20, 1, 5, 0);
    fetch_now(t, 1, 0, 1, 1, 1);
    check_put(&t->puts[0], 20, STORE_OK);
}

static void test_bulk_10000_one_flush(void **state) {
    tctx *t = *state;
    t_open(t);
    enum { N = 10000, R = 37 };
    for (uint64_t id = 1; id <= N; id++) put(t, id, (uint32_t)(1 + id % R), (uint32_t)(id % 97), 0);
    store_flush(t->st);
    wait_puts(t, N);
    for (uint64_t id = 1; id <= N; id++) check_put(&t->puts[id - 1], id, 0);
    uint64_t total = 0;
    for (uint32_t r = 1; r <= R; r++) total += store_count(t->st, r);
    assert_int_equal(total, N);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM messages"), N);
    /* one receiver, paged: ascending ids, exact bodies */
    uint64_t after = 0, rows = 0;
    for (int page = 0; page < 100; page++) {
        fetch_rec *f = fetch_now(t, 5, after, 64, 1 << 20, N);
        for (size_t i = 0; i < f->n; i++) {
            uint64_t id = f->rows[i].id;
            assert_true(id > after && 1 + id % R == 5);
            check_row(&f->rows[i], id, (uint32_t)(id % 97));
            after = id;
            rows++;
        }
        if (!f->more) break;
    }
    assert_int_equal(rows, store_count(t->st, 5));
}

/* ------------------------------------------------------------------ */
/* 4. TTL                                                              */
/* ------------------------------------------------------------------ */

static void test_ttl_purge(void **state) {
    tctx *t = *state;
    t->cfg.ttl_ms = 200;
    t_open(t);
    for (uint64_t id = 1; id <= 5; id++) put(t, id, 6, 10, 0);
    fetch_rec *f = fetch_now(t, 6, 0, 100, 1 << 20, 5);
    assert_int_equal(f->n, 5); /* fresh */
    assert_int_equal(store_count(t->st, 6), 5);
    int i;
    for (i = 0; store_count(t->st, 6) != 0 && i < WAIT_ITERS; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(store_count(t->st, 6), 0);
    f = fetch_now(t, 6, 0, 100, 1 << 20, 5);
    assert_int_equal(f->n, 0);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM messages"), 0);
}

/* A message older than the TTL is never fetched, purged or not. The purge
 * removes the expired rows before the oldest live one (ts grows with id);
 * an expired row after a live one (the clock stepped back) waits. */
static void test_ttl_fetch_filter(void **state) {
    tctx *t = *state;
    t_open(t);
    for (uint64_t id = 1; id <= 4; id++) put(t, id, 6, 10, 0);
    fetch_now(t, 6, 0, 1, 1, 4);
    t_close(t);
    forget_results(t);
    sql_exec(t->path, "UPDATE messages SET ts = ts - 7200000 WHERE id IN (1, 3)");
    t->cfg.ttl_ms = 3600000;
    t_open(t);
    fetch_rec *f = fetch_now(t, 6, 0, 100, 1 << 20, 0);
    assert_int_equal(f->n, 2);
    check_row(&f->rows[0], 2, 10);
    check_row(&f->rows[1], 4, 10);
    int i; /* the purge at start-up removes 1 */
    for (i = 0; store_count(t->st, 6) != 3 && i < WAIT_ITERS; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(store_count(t->st, 6), 3);
    f = fetch_now(t, 6, 0, 100, 1 << 20, 0);
    assert_int_equal(f->n, 2);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM messages WHERE "
                             "id IN (2, 3, 4)"), 3);
}

/* ------------------------------------------------------------------ */
/* 5. Files that are refused, and files that are upgraded              */
/* ------------------------------------------------------------------ */

/* store_open must fail with want, name the file, and leave it as it was. */
static void expect_refused(tctx *t, int want, const char *words) {
    size_t n0, n1;
    uint8_t *before = read_file(t->path, &n0);
    char err[512];
    assert_int_equal(t_try_open(t, err, sizeof err), want);
    assert_non_null(strstr(err, t->path));
    assert_non_null(strstr(err, words));
    uint8_t *after = read_file(t->path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

static void test_not_a_database(void **state) {
    tctx *t = *state;
    uint8_t junk[8192];
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)rng_next(&seed);
    write_file(t->path, junk, sizeof junk);
    expect_refused(t, STORE_ECORRUPT, "is not a chat-server database");
    expect_refused(t, STORE_ECORRUPT, "Move it aside");
}

static void test_damaged_database(void **state) {
    tctx *t = *state;
    t_open(t);
    for (uint64_t id = 1; id <= 2000; id++) put(t, id, (uint32_t)(id % 50), 200, 0);
    store_flush(t->st);
    wait_puts(t, 2000);
    t_close(t);
    /* keep page 1 (header, schema), scribble over every other page */
    size_t n;
    uint8_t *p = read_file(t->path, &n);
    assert_true(n > 3 * 4096);
    uint32_t seed = 99;
    for (size_t i = 4096; i < n; i++) p[i] = (uint8_t)rng_next(&seed);
    write_file(t->path, p, n);
    free(p);
    expect_refused(t, STORE_ECORRUPT, "damaged");
}

static void test_newer_schema_refused(void **state) {
    tctx *t = *state;
    sql_exec(t->path, "PRAGMA journal_mode=WAL; CREATE TABLE messages(x);"
                      "PRAGMA user_version=99;");
    expect_refused(t, STORE_ECORRUPT, "schema version 99");
    assert_int_equal(sql_int(t->path, "PRAGMA user_version"), 99);
}

static void test_foreign_database_refused(void **state) {
    tctx *t = *state;
    sql_exec(t->path, "CREATE TABLE accounts(name TEXT);");
    expect_refused(t, STORE_ECORRUPT, "not a chat-server database");
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM sqlite_schema"), 1);
    assert_int_equal(sql_int(t->path, "PRAGMA user_version"), 0);
}

static void test_empty_file_migrated(void **state) {
    tctx *t = *state;
    write_file(t->path, (const uint8_t *)"", 0);
    t_open(t);
    put(t, 1, 2, 33, 0);
    fetch_rec *f = fetch_now(t, 2, 0, 10, 1000, 1);
    assert_int_equal(f->n, 1);
    check_row(&f->rows[0], 1, 33);
    t_close(t);
    assert_int_equal(sql_int(t->path, "PRAGMA user_version"),
                     STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM sqlite_schema "
                             "WHERE name IN ('messages', "
                             "'messages_by_receiver', 'messages_own', "
                             "'devices', 'dedup', 'dedup_by_device', "
                             "'reads', 'contacts')"), 8);
    assert_int_equal(sql_int(t->path, "SELECT count(*) FROM messages"), 1);
    /* WAL mode is stored in the file header (bytes 18, 19 = 2) */
    size_t n;
    uint8_t *p = read_file(t->path, &n);
    assert_true(n >= 100);
    assert_int_equal(p[18], 2);
    assert_int_equal(p[19], 2);
    free(p);
}

static void test_missing_directory(void **state) {
    tctx *t = *state;
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/no/such/dir", t->dir);
    t->cfg.dir = dir;
    assert_int_equal(t_try_open(t, err, sizeof err), STORE_EIO);
    assert_non_null(strstr(err, dir));
    assert_false(exists(dir));
}

/* ------------------------------------------------------------------ */
/* 6. Disk full, stop                                                  */
/* ------------------------------------------------------------------ */

static void test_disk_full_and_recovery(void **state) {
    tctx *t = *state;
    char flag[128];
    snprintf(flag, sizeof flag, "%s/full", t->dir);
    assert_int_equal(faultvfs_register(flag), SQLITE_OK);
    t_open(t);
    put(t, 1, 2, 100, 0);
    put(t, 2, 2, 100, 0);
    fetch_now(t, 2, 0, 1, 1, 2);
    check_put(&t->puts[0], 1, STORE_OK);

    write_file(flag, (const uint8_t *)"x", 1); /* the disk is full */
    store_del(t->st, 2, 1);
    put(t, 3, 2, 100, 0);
    put(t, 4, 2, 100, 1);
    fetch_rec *f = fetch_now(t, 2, 0, 100, 1 << 20, 4);
    check_put(&t->puts[2], 3, STORE_EFULL);
    check_put(&t->puts[3], 4, STORE_EFULL);
    assert_int_equal(f->n, 2); /* reads work; the delete was rolled back */
    check_row(&f->rows[0], 1, 100);
    check_row(&f->rows[1], 2, 100);
    assert_int_equal(store_count(t->st, 2), 2);

    assert_int_equal(unlink(flag), 0); /* space again */
    put(t, 5, 2, 100, 0);
    f = fetch_now(t, 2, 0, 100, 1 << 20, 5);
    check_put(&t->puts[4], 5, STORE_OK);
    assert_int_equal(f->n, 2); /* the delete of 1 was retried */
    check_row(&f->rows[0], 2, 100);
    check_row(&f->rows[1], 5, 100);
    assert_int_equal(store_count(t->st, 2), 2);
    t_close(t);
    forget_results(t);

    assert_int_equal(faultvfs_register(NULL), SQLITE_OK);
    t_open(t);
    f = fetch_now(t, 2, 0, 100, 1 << 20, 0);
    assert_int_equal(f->n, 2);
    check_row(&f->rows[0], 2, 100);
    check_row(&f->rows[1], 5, 100);
}

/* Ids above the clock's, stored or only reserved, are never given again
 * after a restart. */
static void test_ids_after_restart(void **state) {
    tctx *t = *state;
    t_open(t);
    assert_int_equal(store_ids_local(t->st), 1); /* SQLite: the loop's */
    uint64_t big = store_next_id(t->st) + 5000000000ull;
    put(t, big, 2, 10, 0);
    assert_int_equal(store_next_id(t->st), big + 1);
    fetch_now(t, 2, 0, 10, 1000, 1);
    t_close(t);
    t_open(t);
    assert_int_equal(store_next_id(t->st), big + 1);
    store_ids_reserve(t->st, big + 777);
    store_ids_reserve(t->st, big + 700); /* lower: changes nothing */
    fetch_now(t, 2, 0, 10, 1000, 1);     /* (after the transaction) */
    t_close(t);
    t_open(t);
    assert_int_equal(store_next_id(t->st), big + 778);
}

/* A transaction that fails (here: a duplicate id, a bug of the caller)
 * fails every put in it, restores the counters and the store goes on. */
static void test_failed_transaction_recovers(void **state) {
    tctx *t = *state;
    t->cfg.max_messages = 2;
    t_open(t);
    put(t, 1, 2, 10, 1);
    fetch_now(t, 2, 0, 1, 1, 1);
    check_put(&t->puts[0], 1, STORE_OK);
    put(t, 2, 2, 10, 1);  /* would fit the quota */
    put(t, 3, 2, 10, 1);  /* quota full: refused whatever happens */
    store_msg dup = {.id = 1, .receiver = 2, .sender = 1001, .type = 2,
                     .ts = now_ms(), .body = (const uint8_t *)"dup", .len = 3};
    assert_int_equal(store_put(t->st, &dup, 0, (void *)(uintptr_t)0x1001, 10),
                     STORE_OK);
    fetch_rec *f = fetch_now(t, 2, 0, 100, 1000, 4);
    check_put(&t->puts[1], 2, STORE_EIO);
    check_put(&t->puts[2], 3, STORE_EQUOTA);
    check_put(&t->puts[3], 1, STORE_EIO);
    assert_int_equal(f->n, 1);
    check_row(&f->rows[0], 1, 10);
    assert_int_equal(store_count(t->st, 2), 1);
    put(t, 4, 2, 10, 1); /* the counters were restored: 1 + 1 <= 2 */
    f = fetch_now(t, 2, 0, 100, 1000, 5);
    check_put(&t->puts[4], 4, STORE_OK);
    assert_int_equal(f->n, 2);
    assert_int_equal(store_count(t->st, 2), 2);
    /* a body no row can hold is refused at once, nothing queued */
    uint8_t small[8] = {0};
    store_msg big = {.id = 5, .receiver = 2, .sender = 1, .type = 1,
                     .body = small, .len = 1000000000u};
    assert_int_equal(store_put(t->st, &big, 0, NULL, 0), STORE_EIO);
    assert_int_equal(store_pending_bytes(t->st), 0);
}

/* After store_stop no callback runs, but everything queued is committed. */
static void test_stop_drops_callbacks_keeps_work(void **state) {
    tctx *t = *state;
    t_open(t);
    for (uint64_t id = 1; id <= 3; id++) put(t, id, 2, 10, 0);
    store_fetch(t->st, 2, 0, 0, 0, 10, 1000, t);
    t_close(t); /* stop flushes */
    assert_int_equal(t->nputs, 0);
    assert_int_equal(t->nfetches, 0);
    t_open(t);
    assert_int_equal(store_count(t->st, 2), 3);
}

/* A fetch that cannot be queued: its completion (STORE_ENOMEM) comes on
 * the next loop turn, not inside store_fetch. */
static void test_fetch_oom_completes_on_next_turn(void **state) {
    tctx *t = *state;
    t_open(t);
    fail_allocs = 1; /* no batch can be made */
    store_fetch(t->st, 2, 0, 0, 0, 10, 1000, t);
    fail_allocs = 0;
    assert_int_equal(t->nfetches, 0);
    uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(t->nfetches, 1);
    assert_ptr_equal(t->fetches[0].token, t);
    assert_int_equal(t->fetches[0].status, STORE_ENOMEM);
    assert_int_equal(t->fetches[0].n, 0);
    assert_int_equal(t->fetches[0].more, 0);
    /* the store goes on */
    put(t, 1, 2, 10, 0);
    fetch_rec *f = fetch_now(t, 2, 0, 10, 1000, 1);
    assert_int_equal(f->n, 1);
}

/* ... and after the completions of what was submitted before it, before
 * those of what came after. */
static void test_fetch_oom_in_submission_order(void **state) {
    tctx *t = *state;
    t_open(t);
    put(t, 1, 2, 10, 0);
    fail_allocs = 1; /* the batch cannot take a fetch */
    store_fetch(t->st, 2, 0, 0, 0, 10, 1000, (void *)(uintptr_t)1);
    fail_allocs = 0;
    assert_int_equal(t->nfetches, 0);
    put(t, 2, 2, 10, 0);
    store_fetch(t->st, 2, 0, 0, 0, 10, 1000, t);
    store_flush(t->st);
    wait_fetches(t, 2);
    wait_puts(t, 2);
    assert_memory_equal(t->events, "PFPF", 4);
    check_put(&t->puts[0], 1, STORE_OK);
    check_put(&t->puts[1], 2, STORE_OK);
    assert_ptr_equal(t->fetches[0].token, (void *)(uintptr_t)1);
    assert_int_equal(t->fetches[0].status, STORE_ENOMEM);
    assert_int_equal(t->fetches[0].n, 0);
    assert_ptr_equal(t->fetches[1].token, t);
    assert_int_equal(t->fetches[1].status, STORE_OK);
    assert_int_equal(t->fetches[1].n, 2);
}

/* Look user's device `name` up; wait for the answer. */
static dev_rec device(tctx *t, uint32_t user, const char *name, int conv) {
    int before = last_dev.n;
    store_device(t->st, user, name, strlen(name), conv, t);
    store_flush(t->st);
    for (int i = 0; last_dev.n == before && i < WAIT_ITERS; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(last_dev.n, before + 1);
    assert_int_equal(last_dev.status, STORE_OK);
    return last_dev;
}

/* Queue a put of a 2-byte text id from (sender, sdev) to receiver. */
static void put_from(tctx *t, uint64_t id, uint32_t receiver, uint32_t sender,
                     uint32_t sdev, int own, uint64_t cid) {
    store_msg m = {.id = id, .receiver = receiver, .sender = sender,
                   .sdev = sdev, .type = 1, .own = (uint8_t)own, .cid = cid,
                   .ts = now_ms(), .body = (const uint8_t *)"hi", .len = 2};
    assert_int_equal(store_put(t->st, &m, 0, NULL, 1), STORE_OK);
}

/* A message stays until every device of its receiver has it; a new
 * device starts at the least advanced one. */
static void test_device_cursors_delete(void **state) {
    tctx *t = *state;
    t_open(t);
    for (uint64_t id = 1; id <= 3; id++) put(t, id, 2, 10, 0);
    dev_rec a = device(t, 2, "phone", 1);
    assert_int_equal(a.cursor, 0); /* the user's first device: everything */
    assert_true(a.dev != 0);
    dev_rec d = device(t, 2, "", 0);
    assert_int_equal(d.dev, 0);  /* the default device */
    assert_int_equal(device(t, 2, "phone", 1).dev, a.dev); /* the same */
    store_cursor(t->st, 2, a.dev, 3, 0);
    fetch_now(t, 2, 0, 10, 1000, 3); /* (after the transaction) */
    assert_int_equal(store_count(t->st, 2), 3); /* the default lacks them */
    store_cursor(t->st, 2, 0, 2, 0);
    fetch_rec *f = fetch_now(t, 2, 0, 10, 1000, 3);
    assert_int_equal(store_count(t->st, 2), 1);
    assert_int_equal(f->n, 1);
    check_row(&f->rows[0], 3, 10);
    dev_rec b = device(t, 2, "laptop", 1);
    assert_int_equal(b.cursor, 2); /* where the default device is */
    assert_true(b.dev != a.dev && b.dev != 0);
    unsigned all, conv;
    store_devices(t->st, 2, &all, &conv);
    assert_int_equal(all, 3);
    assert_int_equal(conv, 2);
    store_devices(t->st, 99, &all, &conv);
    assert_int_equal(all, 0);
    /* cursors survive a restart; lower ones change nothing */
    store_cursor(t->st, 2, b.dev, 1, 0);
    t_close(t);
    t_open(t);
    assert_int_equal(device(t, 2, "laptop", 1).cursor, 2);
    assert_int_equal(device(t, 2, "phone", 1).cursor, 3);
    store_devices(t->st, 2, &all, &conv);
    assert_int_equal(all, 3);
}

/* Own copies: a CONV device fetches what its user sent from another
 * device; the sending device does not; the message goes once both the
 * receiver's and the author's other devices have it. */
static void test_own_copies(void **state) {
    tctx *t = *state;
    t_open(t);
    dev_rec p = device(t, 5, "phone", 1);
    dev_rec l = device(t, 5, "laptop", 1);
    dev_rec r = device(t, 6, "", 0);
    put_from(t, 10, 6, 5, l.dev, 1, 0);
    store_fetch(t->st, 5, p.dev, 1, 0, 10, 1000, t);
    store_flush(t->st);
    wait_fetches(t, 1);
    assert_int_equal(t->fetches[0].n, 1);
    assert_int_equal(t->fetches[0].rows[0].id, 10);
    store_fetch(t->st, 5, l.dev, 1, 0, 10, 1000, t); /* the author's own */
    store_fetch(t->st, 5, p.dev, 0, 0, 10, 1000, t); /* not CONV */
    store_flush(t->st);
    wait_fetches(t, 3);
    assert_int_equal(t->fetches[1].n, 0);
    assert_int_equal(t->fetches[2].n, 0);
    store_cursor(t->st, 6, r.dev, 10, 0); /* the receiver has it ... */
    fetch_now(t, 6, 0, 10, 1000, 1);
    assert_int_equal(store_count(t->st, 6), 1); /* ... the phone not yet */
    store_cursor(t->st, 5, p.dev, 10, 0);
    fetch_now(t, 6, 0, 10, 1000, 1);
    assert_int_equal(store_count(t->st, 6), 0);
}

/* --history-ttl keeps what every device has; client ids come back with
 * their device, and with the ids of their messages. */
static void test_history_and_cids(void **state) {
    tctx *t = *state;
    t->cfg.history_ttl_ms = 3600000;
    t_open(t);
    dev_rec r = device(t, 6, "", 0);
    dev_rec s = device(t, 5, "pc", 1);
    put_from(t, 10, 6, 5, s.dev, 0, 777);
    store_cursor(t->st, 6, r.dev, 10, 0);
    fetch_now(t, 6, 0, 10, 1000, 1);
    assert_int_equal(store_count(t->st, 6), 1); /* history keeps it */
    dev_rec again = device(t, 5, "pc", 1);
    assert_int_equal(again.ncid, 1);
    assert_int_equal(again.cids[0], 777);
    assert_int_equal(again.cid_ids[0], 10); /* its message's id (POSTED) */
    assert_int_equal(device(t, 5, "other", 1).ncid, 0); /* per device */
}

/* Run one group operation; its status (last_grp.group: the group). */
static int group_op(tctx *t, uint8_t op, uint32_t group, uint32_t actor,
                    const uint32_t *users, size_t n, uint32_t max) {
    int before = last_grp.n;
    store_group_op o = {.op = op, .group = group, .actor = actor,
                        .name = "team", .namelen = 4, .users = users,
                        .nusers = n, .joined = 5, .max_members = max};
    store_group(t->st, &o, t);
    store_flush(t->st);
    for (int i = 0; last_grp.n == before && i < WAIT_ITERS; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(last_grp.n, before + 1);
    return last_grp.status;
}

/* Group operations are checked, committed, seen by the loop's copy, kept
 * over a restart; a group message goes once every member's device has
 * it. */
static void test_groups(void **state) {
    tctx *t = *state;
    t_open(t);
    const uint32_t two[] = {2, 3}, four[] = {4}, many[] = {4, 5, 6};
    assert_int_equal(group_op(t, STORE_G_CREATE, 0, 1, two, 2, 4), STORE_OK);
    uint32_t g = last_grp.group;
    assert_true(g != 0);
    const chatgroup *lg = groups_get(store_groups(t->st), g);
    assert_non_null(lg); /* the loop's copy, before the callback */
    assert_int_equal(lg->n, 3);
    assert_int_equal(lg->m[0].admin, 1);
    assert_int_equal(group_op(t, STORE_G_ADD, g, 2, four, 1, 4),
                     STORE_GNOTADMIN);
    assert_int_equal(group_op(t, STORE_G_ADD, g, 9, four, 1, 4),
                     STORE_GNOTMEMBER);
    assert_int_equal(group_op(t, STORE_G_ADD, g + 1, 1, four, 1, 4),
                     STORE_GNOGROUP);
    assert_int_equal(group_op(t, STORE_G_ADD, g, 1, many, 3, 4), STORE_GFULL);
    assert_int_equal(group_op(t, STORE_G_ADD, g, 1, four, 1, 4), STORE_OK);
    assert_int_equal(group_op(t, STORE_G_LEAVE, g, 3, NULL, 0, 4), STORE_OK);
    assert_int_equal(groups_get(store_groups(t->st), g)->n, 3);
    /* a group message; the members' devices */
    dev_rec d1 = device(t, 1, "", 0), d2 = device(t, 2, "", 0),
            d4 = device(t, 4, "", 0);
    store_msg m = {.id = 10, .sender = 1, .sdev = d1.dev, .type = 1,
                   .ts = now_ms(), .body = (const uint8_t *)"hey", .len = 3,
                   .grp = g};
    assert_int_equal(store_put(t->st, &m, 0, NULL, 1), STORE_OK);
    fetch_rec *f = fetch_now(t, 2, 0, 10, 1000, 1); /* a member's fetch */
    assert_int_equal(f->n, 1);
    assert_int_equal(f->rows[0].id, 10);
    f = fetch_now(t, 3, 0, 10, 1000, 1); /* one who left: nothing */
    assert_int_equal(f->n, 0);
    store_cursor(t->st, 1, d1.dev, 10, 0);
    store_cursor(t->st, 2, d2.dev, 10, 0);
    fetch_now(t, 2, 0, 10, 1000, 1);
    assert_int_equal(store_count(t->st, 0), 1); /* member 4 lacks it */
    store_cursor(t->st, 4, d4.dev, 10, 0);
    fetch_now(t, 2, 0, 10, 1000, 1);
    assert_int_equal(store_count(t->st, 0), 0);
    t_close(t);
    t_open(t);
    lg = groups_get(store_groups(t->st), g);
    assert_non_null(lg);
    assert_int_equal(lg->n, 3);
    assert_int_equal(lg->namelen, 4);
}

/* History pages: a conversation both ways, newest first, below `before`,
 * `more` when older ones remain; a group's since min_id. */
static void test_history_pages(void **state) {
    tctx *t = *state;
    t->cfg.history_ttl_ms = 3600000;
    t_open(t);
    for (uint64_t id = 1; id <= 6; id++) /* 1 -> 2 and 2 -> 1, and 1 -> 3 */
        put_from(t, id, id % 2 ? 2 : 1, id % 2 ? 1 : 2, 0, 0, 0);
    put_from(t, 7, 3, 1, 0, 0, 0);
    store_msg gm = {.id = 8, .sender = 1, .type = 1, .ts = now_ms(),
                    .body = (const uint8_t *)"g", .len = 1, .grp = 5};
    assert_int_equal(store_put(t->st, &gm, 0, NULL, 1), STORE_OK);
    store_history(t->st, 2, 1, 0, 0, 0, 4, 1 << 20, t);
    store_history(t->st, 1, 2, 0, 0, 3, 10, 1 << 20, t);
    store_history(t->st, 9, 0, 5, 7, 0, 10, 1 << 20, t);
    store_history(t->st, 9, 0, 5, 8, 0, 10, 1 << 20, t);
    store_flush(t->st);
    wait_fetches(t, 4);
    fetch_rec *f = &t->fetches[0];
    assert_int_equal(f->n, 4);
    assert_int_equal(f->more, 1);
    for (size_t i = 0; i < 4; i++) assert_int_equal(f->rows[i].id, 6 - i);
    f = &t->fetches[1];
    assert_int_equal(f->n, 2);
    assert_int_equal(f->more, 0);
    assert_int_equal(f->rows[0].id, 2);
    assert_int_equal(f->rows[1].id, 1);
    assert_int_equal(t->fetches[2].n, 1); /* the group's, after 7 */
    assert_int_equal(t->fetches[2].rows[0].id, 8);
    assert_int_equal(t->fetches[3].n, 0); /* ... not after 8 */
}

static void test_strerror(void **state) {
    (void)state;
    const int codes[] = {STORE_OK, STORE_EQUOTA, STORE_ENOMEM, STORE_EIO,
                         STORE_EFULL, STORE_ECORRUPT};
    for (size_t i = 0; i < 6; i++) {
        assert_non_null(store_strerror(codes[i]));
        assert_true(strlen(store_strerror(codes[i])) > 1);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(store_strerror(codes[i]),
                                    store_strerror(codes[j]));
    }
    assert_non_null(store_strerror(-99));
    assert_non_null(strstr(store_strerror(STORE_EFULL), "full"));
    assert_non_null(strstr(store_strerror(STORE_EQUOTA), "quota"));
}

static void fake_online(store *s, uint32_t user, int on) {
    (void)s;
    (void)user;
    (void)on;
}

/* The optional properties' dispatchers read the table alone: store_shared
 * is its `shared` flag, whatever the ids say (store_ids_local); the
 * SQLite store is neither shared nor without ids. */
static void test_dispatch_shared(void **state) {
    tctx *t = *state;
    store_ops one = {0}, many = {.shared = 1, .online = fake_online};
    store a = {&one}, b = {&many};
    assert_int_equal(store_shared(&a), 0);
    assert_int_equal(store_ids_local(&a), 0); /* (no next_id: gives none) */
    assert_int_equal(store_shared(&b), 1);
    assert_int_equal(store_ids_local(&b), 0);
    t_open(t);
    assert_int_equal(store_shared(t->st), 0);
    assert_int_equal(store_ids_local(t->st), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
    log_threshold = LOG_WARN; /* keep the test output short */
    const struct CMUnitTest tests[] = {
        T(test_put_fetch_roundtrip),
        T(test_fetch_after_id),
        T(test_paging_rows_and_bytes),
        T(test_delete),
        T(test_submission_order),
        T(test_quota_messages),
        T(test_quota_across_multi_row_inserts),
        T(test_quota_bytes),
        T(test_reopen),
        T(test_ids_after_restart),
        T(test_bulk_10000_one_flush),
        T(test_ttl_purge),
        T(test_ttl_fetch_filter),
        T(test_not_a_database),
        T(test_damaged_database),
        T(test_newer_schema_refused),
        T(test_foreign_database_refused),
        T(test_empty_file_migrated),
        T(test_missing_directory),
        T(test_disk_full_and_recovery),
        T(test_failed_transaction_recovers),
        T(test_stop_drops_callbacks_keeps_work),
        T(test_fetch_oom_completes_on_next_turn),
        T(test_fetch_oom_in_submission_order),
        T(test_device_cursors_delete),
        T(test_own_copies),
        T(test_history_and_cids),
        T(test_groups),
        T(test_history_pages),
        T(test_strerror),
        T(test_dispatch_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
