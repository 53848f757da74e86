/*
 * store_int.h -- what the files of the offline store share (store.h is the
 * public interface). Nothing outside src/server/store_*.c includes this.
 *
 * What it is for: the loop must never wait for a disk. It appends requests
 * to a batch in memory; once per loop iteration store_flush() hands the
 * batch to the store thread, which runs every batch queued since its last
 * transaction as ONE write transaction (one fsync for all of them), then the
 * fetches, and sends the results back through a uv_async_t.
 *
 * The files, one concern each:
 *
 *     store_loop.c    the loop side: store_put/del/fetch/flush, batches,
 *                     completions (on_async)
 *     store_thread.c  the store thread: write transactions, fetches, purges,
 *                     retried deletes
 *     store_sqlite.c  the database: open, file checks, schema migrations,
 *                     prepared statements, close (store_open, store_free)
 *     store_ctr.c     per-receiver counters, growable arrays, batch memory
 *     store_check.c   the invariants below, asserted (debug builds only)
 *
 * The database is <dir>/chat.db in WAL mode:
 *
 *     messages(id INTEGER PRIMARY KEY, receiver, sender, type, ts, body)
 *     messages_by_receiver ON messages(receiver, id)
 *
 * where ts is the unix time in ms of the transaction that stored the row.
 *
 * A batch goes through these states (the function that moves it):
 *
 *     FILLING  s->cur, loop thread           store_put/del/fetch
 *        | store_flush
 *     QUEUED   s->inq, under s->mu
 *        | store__thread_main takes every queued batch at once
 *     RUNNING  store thread                  txn_run, fetch_all
 *        | push_results + uv_async_send
 *     DONE     s->outq, under s->mu
 *        | store__on_async: callbacks in submission order
 *     SPARE    s->spare, loop thread (capacity kept) or freed
 *
 * Invariants, numbered as the checks cite them. store__check_loop (on the
 * loop thread), store__check_thread (on the store thread), and the batch
 * checks assert them; they run in every build without NDEBUG (debug,
 * sanitizer, fuzz) at the end of each entry point that changes the store
 * and after every callback, and compile to nothing in the release build.
 *
 *  (1) A batch is in exactly one place of the drawing above, and only that
 *      place's owner touches it: s->cur and s->spare (loop), s->inq and
 *      s->outq (under s->mu), the store thread's work list, the list
 *      store__on_async took (loop).
 *  (2) s->mu guards inq, outq and quit and nothing else, and is never held
 *      across an SQLite call or a callback. A queue is empty exactly when
 *      its tail is NULL, and its tail's next is NULL.
 *  (3) The sqlite3 handle and the statements belong to store_open's thread
 *      until the store thread starts, then to the store thread only (a
 *      NOMUTEX connection). Between two jobs of that thread no statement is
 *      busy (each was reset) and no transaction is open, unless a ROLLBACK
 *      failed (s->rollback_failed: retried before the next BEGIN).
 *  (4) The FILLING batch: nkind == nput + nfetch; the put bodies lie end to
 *      end in `in` in put order, so nin is the sum of their lengths; every
 *      put is STATUS_PENDING; nothing of the results is set; gen == 0.
 *  (5) At most SPARE_MAX spare batches, each empty (every count 0, gen 0).
 *  (6) s->pending is the sum of the body lengths of the puts queued or in
 *      flight (not yet completed): at least cur's nin, and equal to it once
 *      every flushed batch was delivered (gen_done == gen_flushed).
 *  (7) A DONE batch: every put has its final status; fetch f's rows are
 *      rows[row0, row0 + nrows), in increasing id order, each above
 *      after_id, at most max(max_rows, 1) of them, each body inside `out`;
 *      a failed fetch has no rows and more == 0.
 *  (8) Batches complete in the order they were flushed: the loop's come
 *      back numbered gen_done + 1, gen_done + 2, ...; a batch the thread
 *      made itself (gen 0) carries counters only.
 *  (9) Completions run on the loop thread in submission order and never
 *      inside the call that queued them. A fetch that could not be queued
 *      waits in failq with the number of the last batch flushed before it,
 *      and is delivered once that batch was (gen <= gen_done); failq's gens
 *      never decrease and never pass gen_flushed.
 * (10) s->ctrs (store thread) holds, per receiver, the count and body bytes
 *      of its committed messages plus the running transaction's tentative
 *      changes; each counter that transaction changed is listed once in
 *      s->touched (epoch == s->epoch) with its committed values in save_*,
 *      restored if it rolls back. Outside a transaction touched is empty.
 * (11) s->seen (loop thread) is a copy of the committed counters, updated
 *      from the DONE batches (ctr_upd) before their callbacks run.
 * (12) A delete whose transaction failed sits in s->retry until a
 *      transaction commits (next try at s->next_retry); a put whose
 *      transaction failed is reported, never retried.
 * (13) ids are below 2^63 (SQLite integers are signed).
 * (14) Once stopped (store_stop) nothing is queued and no callback runs:
 *      s->cur is NULL.
 *
 * Costs: a put is a memcpy on the loop thread and one INSERT (two b-tree
 * inserts) on the store thread; a transaction is one fsync of the WAL (with
 * fsync_full). Memory: the pending batches, up to 64 MiB of SQLite page
 * cache, ~70 bytes per receiver in each counter table. store_open scans the
 * table once (O(rows)); a purge costs O(rows expired).
 *
 * Names: functions shared between these files are store__*; the rest are
 * static.
 *
 * Logging: unlike the other library-style modules, the store logs (through
 * common/log.h, one line per event) the events no caller waits for, on the
 * thread where they happen: failed write transactions and purges (once per
 * failure streak, then "succeed again"), failed fetches (likewise), purge
 * passes, a failed ROLLBACK, memory shortages that lose a delete or delay
 * store_count, schema upgrades at open, a failed close. Everything a caller
 * can act on also comes back to it as a status code. docs/ARCHITECTURE.md
 * ("Error convention") says why.
 */
#ifndef CHAT_SERVER_STORE_INT_H
#define CHAT_SERVER_STORE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/u32map.h"
#include "server/store.h"

#define PURGE_CHUNK 10000      /* rows per purge transaction */
#define PURGE_MAX_MS 60000     /* purge at least this often when ttl > 0 */
#define PURGE_MIN_MS 100       /* ... and not more often than this */
#define RETRY_MS 1000          /* failed deletes wait at most this long */
#define SPARE_MAX 4            /* batches kept for reuse */
#define SPARE_BYTES (4u << 20) /* ... if their arenas are not larger */
#define BUSY_MS 5000           /* another process holds the lock */
#define CTR_CHUNK 256          /* counters allocated together */
#define STATUS_PENDING 1       /* put_req.status before the thread sets it */
#define FAILQ_MIN 64           /* failed fetches queued without allocating */

enum { KIND_PUT = 0, KIND_FETCH = 1 };

/* -- types ------------------------------------------------------------- */

typedef struct put_req {
    uint64_t id, seq;
    void *token;
    size_t off;   /* body = batch.in + off */
    uint32_t len, receiver, sender;
    uint8_t type, quota;
    int status;   /* STATUS_PENDING, then a STORE_* code from the thread */
} put_req;

typedef struct fetch_req {
    uint64_t after_id;
    void *token;
    uint32_t receiver, max_rows, max_bytes;
    size_t row0, nrows; /* result: batch.rows[row0 .. row0 + nrows) */
    int more, status;
} fetch_req;

/* A fetch that could not be queued (out of memory): its STORE_ENOMEM
 * completion waits for every batch flushed before it (gen). */
typedef struct fetch_fail {
    void *token;
    uint64_t gen;
} fetch_fail;

typedef struct ctr_upd { /* a committed counter, for the loop's copy */
    uint32_t receiver;
    uint64_t count, bytes;
} ctr_upd;

/* Requests of one loop iteration, then their results. Every array grows by
 * doubling and keeps its capacity when the batch is reused, so a busy
 * server does not allocate per request. */
typedef struct batch {
    struct batch *next;               /* in inq / outq / spare */
    uint64_t gen;                     /* flush number; 0: made by the thread */
    put_req *puts;     size_t nput, cput;
    fetch_req *fetch;  size_t nfetch, cfetch;
    uint64_t *dels;    size_t ndel, cdel;
    uint8_t *kinds;    size_t nkind, ckind; /* puts and fetches, in order */
    uint8_t *in;       size_t nin, cin;     /* put bodies */
    /* results, written by the store thread */
    store_row *rows;   size_t nrow, crow;   /* body set by fetch_all */
    size_t *roff;      size_t croff;        /* row body offset in out */
    uint8_t *out;      size_t nout, cout;   /* fetched bodies */
    ctr_upd *upd;      size_t nupd, cupd;   /* counters committed */
    /* the write transaction that carried this batch (first of its list) */
    uint8_t txn;                            /* 1: the fields below are set */
    int txn_status;                         /* STORE_OK or why it failed */
    uint64_t txn_us;                        /* its duration */
    uint64_t txn_writes;                    /* its puts and deletes */
} batch;

/* One receiver's counters. Allocated in chunks, never freed before the
 * store: about 70 bytes (with its map slot) per receiver ever stored for,
 * in each of the two tables. */
typedef struct ctr {
    uint64_t count, bytes;           /* committed + tentative */
    uint64_t save_count, save_bytes; /* committed, while touched */
    uint32_t receiver;
    uint32_t epoch;                  /* transaction that saved it */
} ctr;

typedef struct ctr_chunk {
    struct ctr_chunk *next;
    size_t used;
    ctr items[CTR_CHUNK];
} ctr_chunk;

/* receiver -> ctr; u32map reserves key 0, so receiver 0 has its slot. */
typedef struct ctr_table {
    u32map map;
    ctr *zero;
    ctr_chunk *chunks;
} ctr_table;

struct store {
    /* set by store_open, then read-only */
    uv_loop_t *loop;
    store_callbacks cb;
    store_config cfg;        /* cfg.dir is not kept (NULL) */
    char *path;              /* dir/chat.db, owned */
    sqlite3 *db;
    sqlite3_stmt *st_begin, *st_commit, *st_rollback, *st_insert,
        *st_delete, *st_fetch, *st_purge;

    uv_thread_t loop_thread; /* store_open's: the checks compare */

    /* loop thread */
    batch *cur;              /* FILLING, or NULL */
    batch *spare;
    int nspare;
    size_t pending;
    uint64_t next_id;
    uint32_t max_body;       /* longest body a row can hold */
    ctr_table seen;
    uv_async_t async;
    int stopped;
    uint64_t gen_flushed;    /* batches flushed so far */
    uint64_t gen_done;       /* gen of the last batch delivered */
    store_stats stats;       /* store_stats_of */
    fetch_fail *failq;       /* failed fetches: [failq0, nfailq) waiting */
    size_t failq0, nfailq, cfailq;

    /* shared, under mu */
    uv_mutex_t mu;
    uv_cond_t cv;            /* inq got a batch, or quit was set */
    batch *inq, *inq_tail, *outq, *outq_tail;
    int quit;

    /* store thread */
    uv_thread_t thread;
    ctr_table ctrs;
    ctr **touched;   size_t ntouched, ctouched;
    uint32_t epoch;
    uint64_t *retry; size_t nretry, cretry;
    int64_t next_retry, next_purge;   /* monotonic ms */
    int purge_more;                   /* the last purge chunk was full */
    uint64_t purged;                  /* rows removed by this purge pass */
    unsigned fails;                   /* failed transactions in a row */
    unsigned fetch_fails;             /* failed fetches in a row */
    int rollback_failed;              /* a ROLLBACK failed: still in a txn */
};

/* -- store_ctr.c: arrays, batches, counters ------------------------------ */

/* Make room for need elements in arr (capacity field cap): 0 or -1 (arr
 * and cap unchanged). Doubling, so n appends cost O(n). */
#define RESERVE(arr, cap, need)                                            \
    ((need) <= (cap) ? 0                                                   \
                     : store__reserve((void *)&(arr), &(cap), (need),      \
                                      sizeof *(arr)))
int store__reserve(void *arrp, size_t *cap, size_t need, size_t size);

void store__batch_free(batch *b);
void store__batch_free_list(batch *b);

void store__ctr_init(ctr_table *t);
void store__ctr_free(ctr_table *t);
ctr *store__ctr_find(const ctr_table *t, uint32_t receiver);
/* The counters of receiver, created at zero. NULL when out of memory. */
ctr *store__ctr_get(ctr_table *t, uint32_t receiver);
/* Save c's committed values the first time this transaction changes it
 * (store thread). 0 or -1 when out of memory. */
int store__ctr_touch(store *s, ctr *c);
/* Start a transaction's bookkeeping (epoch 0 is never current). */
void store__ctrs_begin(store *s);
/* Restore every counter the failed transaction touched. */
void store__ctrs_rollback(store *s);
/* A row of receiver with len body bytes is gone. SQLITE_NOMEM or OK. */
int store__ctrs_removed(store *s, uint32_t receiver, uint64_t len);

/* -- store_sqlite.c: the database ---------------------------------------- */

int64_t store__wall_ms(void);
int64_t store__mono_ms(void);
/* What went wrong, for a log line (SQLITE_NOMEM may be ours). */
const char *store__why(const store *s, int rc);
/* The STORE_* status for a failed transaction's SQLite code. */
int store__status_of(int rc);

/* -- store_thread.c ------------------------------------------------------- */

void store__thread_main(void *arg);

/* -- store_loop.c --------------------------------------------------------- */

void store__on_async(uv_async_t *h);

/* -- store_check.c: the invariants above, asserted ------------------------- */

/* Each returns 1 (so it is called as assert(store__check_...(...))) after
 * asserting what it checks; defined only without NDEBUG. */
/* Loop thread, O(spare + failq): (4) on cur's ends, (5), (6), (8), (9),
 * (14), and that it runs on the loop thread. */
int store__check_loop(const store *s);
/* Store thread, O(1): (3), (10) between transactions, (12), and that it
 * runs on the store thread. */
int store__check_thread(const store *s);
/* Under s->mu: (2). */
int store__check_queues(const store *s);
/* A batch being flushed, O(its size): (4) in full. */
int store__check_filled(const batch *b);
/* A batch about to be delivered, O(its size): (7), (8). */
int store__check_done(const store *s, const batch *b);

#endif
