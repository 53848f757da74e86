/*
 * store_int.h -- what the files of the SQLite store share: the backend of
 * store.h (the interface; store_backend.h its operations table, store.c
 * the dispatchers) that store_open opens. Nothing outside the SQLite
 * backend's files (src/server/store_*.c but store.c) includes this.
 *
 * What it is for: the loop must never wait for a disk. It appends requests
 * to a batch in memory; once per loop iteration store_flush() hands the
 * batch to the store thread, which runs every batch queued since its last
 * transaction as ONE write transaction (one fsync for all of them), then the
 * fetches, and sends the results back through a uv_async_t.
 *
 * The files, one concern each:
 *
 *     store_loop.c    the loop side: the operations table
 *                     (store__sqlite_ops: store_sqlite_put/del/fetch/
 *                     flush...), batches, completions (on_async)
 *     store_thread.c  the store thread: write transactions, fetches, purges,
 *                     retried deletes
 *     store_sqlite.c  the database: the data directory's lock, open,
 *                     file checks, schema migrations, prepared statements,
 *                     close (store_open, store__close)
 *     store_dev.c     devices and their cursors, the deletions a cursor
 *                     allows, forgotten devices, client ids
 *     store_sig.c     signals: read marks, contacts (and their cache), the
 *                     answers to store_marks and store_presence
 *     store_ctr.c     per-receiver counters, growable arrays, batch memory
 *     store_check.c   the invariants below, asserted (debug builds only)
 *
 * The database is <dir>/chat.db in WAL mode:
 *
 *     messages(id INTEGER PRIMARY KEY, receiver, sender, type, ts, body,
 *              sdev, own)
 *     messages_by_receiver ON messages(receiver, id)
 *     messages_own ON messages(sender, id) WHERE own = 1
 *     devices(user, dev, name, conv, cursor, seen) PRIMARY KEY(user, dev)
 *     dedup(id INTEGER PRIMARY KEY, user, dev, cid, ts, msg)
 *     dedup_by_device ON dedup(user, dev, id)
 *     meta(key PRIMARY KEY, value): 'ids' = the ids the loop may have
 *         given (store_ids_reserve)
 *     reads(user, kind, peer, upto, ts) PRIMARY KEY(user, kind, peer):
 *         user's read mark of a conversation (kind 1: with user peer;
 *         2: of group peer), the highest given (version 4)
 *     contacts(a, b) PRIMARY KEY(a, b), a < b: the two exchanged a
 *         message (version 4)
 *
 * where ts is the unix time in ms when the loop accepted the message (ids
 * and ts grow together), sdev the device that sent it, own = 1 when its
 * author had other CONV devices (own copies: docs/PROTOCOL.md), and a
 * device's cursor the last message id of its user's log it has.
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
 *  (4) The FILLING batch: nkind == nput + nfetch + ndev + ngrp + nmreq +
 *      npres (the requests that complete, in `kinds` order); the put
 *      bodies lie end to end in `in` in put order, so nin is the sum of
 *      their lengths; every put, marks and presence request is
 *      STATUS_PENDING; nothing of the results is set; gen == 0.
 *  (5) At most SPARE_MAX spare batches, each empty (every count 0, gen 0).
 *  (6) s->pending is the sum of the body lengths of the puts queued or in
 *      flight (not yet completed): at least cur's nin, and equal to it once
 *      every flushed batch was delivered (gen_done == gen_flushed).
 *  (7) A DONE batch: every put has its final status; fetch f's rows are
 *      rows[row0, row0 + nrows), in increasing id order, each above
 *      after_id (a history page: decreasing, each below it), at most max(max_rows, 1) of them, each body inside `out`;
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
 * (15) Devices (store thread): a device is `dirty` exactly when it is
 *      listed, once, in s->dirty; outside a transaction s->dirty is empty
 *      unless the last one failed (then retried: next_retry). A device's
 *      `saved` is its row's cursor (UINT64_MAX before its row exists) and
 *      saved <= cursor. A user has at most DEVICES_MAX devices, each
 *      number once, and device 0 is the one named "".
 * (16) Signals in a batch: a presence request's users are
 *      pusers[user0, user0 + n), n <= STORE_PRESENCE_MAX, and its results
 *      pallow[] and pseen[] at the same indexes (reserved with the users on
 *      the loop, so the thread never allocates for them). In a DONE batch
 *      every marks and presence request has its final status; marks m's
 *      entries are marks[mark0, mark0 + nmarks), nmarks <= STORE_MARKS_MAX;
 *      a failed one has none.
 * (17) The pair cache (store thread): each slot is 0 or a pair a < b (both
 *      non-zero, packed a << 32 | b) in the set store__pair_set names, at
 *      most once, whose contacts row is committed or written by the
 *      running transaction. A transaction that rolls back empties the
 *      cache.
 *
 * Costs: a put is a memcpy on the loop thread and one INSERT (two b-tree
 * inserts) on the store thread, plus, for a 1:1 message whose pair the
 * pair cache lacks, an INSERT OR IGNORE into contacts; a transaction is
 * one fsync of the WAL (with fsync_full). Memory: the pending batches, up
 * to 64 MiB of SQLite page cache, ~70 bytes per receiver in each counter
 * table, the 32 KiB pair cache. store_open scans the table once
 * (O(rows)); a purge costs O(rows expired).
 *
 * Names: functions shared between these files are store__*; the rest are
 * static, the operations (store_loop.c) named store_sqlite_<op>.
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

#include <assert.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/u32map.h"
#include "server/store_backend.h"

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

enum { KIND_PUT = 0, KIND_FETCH = 1, KIND_DEV = 2, KIND_GROUP = 3,
       KIND_HIST = 4 /* (a fetch: only in failq) */, KIND_MARKS = 5,
       KIND_PRES = 6 };

/* The pair cache (store_sig.c): PAIR_SLOTS slots of 8 bytes (32 KiB) in
 * sets of PAIR_WAYS (one 64-byte cache line each), so that the put of a
 * 1:1 message runs no INSERT into contacts for a pair written since the
 * cache last lost it. */
#define PAIR_SET_BITS 10
#define PAIR_WAYS 4u
#define PAIR_SLOTS (PAIR_WAYS << PAIR_SET_BITS)

/* -- types ------------------------------------------------------------- */

typedef struct store_sqlite store_sqlite; /* the handle, below */

typedef struct put_req {
    uint64_t id, seq, cid;
    int64_t ts;
    void *token;
    size_t off;   /* body = batch.in + off */
    uint32_t len, receiver, sender, sdev;
    uint32_t grp;
    uint8_t type, quota, own, again;
    int status;   /* STATUS_PENDING, then a STORE_* code from the thread */
} put_req;

typedef struct fetch_req {
    uint64_t after_id;       /* a history page: the id to stay below */
    uint64_t min_id;         /* a group's history: above it */
    void *token;
    uint32_t receiver, dev, max_rows, max_bytes;
    uint32_t peer, group;    /* a history page: with whom, or which group */
    uint8_t conv;
    uint8_t hist;            /* 0: a device's fetch; 1: a history page */
    size_t row0, nrows; /* result: batch.rows[row0 .. row0 + nrows) */
    int more, status;
} fetch_req;

/* store_device. The thread creates the device in the write transaction
 * and reads its client ids after it. */
typedef struct dev_req {
    void *token;
    uint32_t user;
    uint8_t conv, namelen;
    char name[STORE_DEVICE_MAX + 1];
    /* results */
    uint32_t dev;
    uint64_t cursor;
    size_t cid0, ncid;  /* batch.cids[cid0 .. cid0 + ncid) */
    int status;
} dev_req;

/* store_group. users: batch.gusers[user0 .. user0 + nusers). */
typedef struct grp_req {
    void *token;
    uint64_t joined, was;
    uint32_t group, actor, max_members;
    uint8_t op, namelen;
    char name[GROUPS_NAME_MAX];
    size_t user0, nusers;
    int status;   /* STATUS_PENDING, then STORE_OK or a refusal/failure */
} grp_req;

/* A group as the loop's copy must now have it (n == 0 and namelen == 0:
 * gone); members: batch.gmem[mem0 .. mem0 + n). */
typedef struct grp_snap {
    uint32_t id, n;
    uint8_t namelen;
    char name[GROUPS_NAME_MAX];
    size_t mem0;
} grp_snap;

/* store_cursor */
typedef struct cur_req {
    uint64_t cursor;
    uint32_t user, dev;
    uint8_t closed;    /* a connection of it closed */
} cur_req;

/* store_read_mark: kind 1 (peer: a user) or 2 (peer: a group). */
typedef struct read_req {
    uint64_t upto;
    int64_t ts;
    uint32_t user, peer;
    uint8_t kind;
} read_req;

/* store_marks. Results: batch.marks[mark0 .. mark0 + nmarks). */
typedef struct mark_req {
    void *token;
    uint32_t user, peer, group;
    size_t mark0, nmarks;
    int status;   /* STATUS_PENDING, then a STORE_* code */
} mark_req;

/* store_presence. users: batch.pusers[user0 .. user0 + n); results at the
 * same indexes of batch.pallow and batch.pseen. */
typedef struct pres_req {
    void *token;
    uint32_t user;
    uint8_t check;
    size_t user0, n;
    int status;   /* STATUS_PENDING, then a STORE_* code */
} pres_req;

/* The devices of a user seen within --device-ttl, for the loop's copy. */
typedef struct dev_upd {
    uint32_t user;
    uint16_t all, conv;
} dev_upd;

/* A fetch that could not be queued (out of memory): its STORE_ENOMEM
 * completion waits for every batch flushed before it (gen). */
typedef struct fetch_fail {
    void *token;
    uint64_t gen;
    uint8_t kind;  /* KIND_FETCH, KIND_HIST, KIND_DEV, KIND_GROUP,
                      KIND_MARKS or KIND_PRES */
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
    dev_req *devs;     size_t ndev, cdev;   /* store_device, in order */
    cur_req *curs;     size_t ncur, ccur;   /* store_cursor */
    uint64_t *cids;    size_t ncid, ccid;   /* results of devs */
    int64_t *cidts;    size_t ccidts;       /* (ncid of them) */
    uint64_t *cidmsg;  size_t ccidmsg;      /* (ncid of them) */
    dev_upd *dupd;     size_t ndupd, cdupd; /* device counts committed */
    uint64_t ids_upto;                      /* store_ids_reserve, 0: none */
    grp_req *grps;     size_t ngrp, cgrp;   /* store_group, in order */
    uint32_t *gusers;  size_t nguser, cguser; /* their users */
    grp_snap *gsnap;   size_t ngsnap, cgsnap; /* groups changed (results) */
    gmember *gmem;     size_t ngmem, cgmem; /* their members */
    read_req *reads;   size_t nread, cread; /* store_read_mark */
    uint64_t *contacts; size_t ncontact, ccontact; /* store_contact (a<<32|b) */
    mark_req *mreqs;   size_t nmreq, cmreq; /* store_marks, in order */
    store_mark *marks; size_t nmark, cmark; /* their results */
    pres_req *preqs;   size_t npres, cpres; /* store_presence, in order */
    uint32_t *pusers;  size_t npuser, cpuser; /* their users, */
    uint8_t *pallow;   size_t cpallow;      /* ... results (npuser each) */
    int64_t *pseen;    size_t cpseen;
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

/* One device, on the store thread. */
typedef struct devrec {
    uint64_t cursor;   /* the furthest the loop reported */
    uint64_t saved;    /* ... as committed (the row says so) */
    int64_t seen;      /* unix ms */
    uint32_t dev;
    uint8_t conv;      /* takes own copies */
    uint8_t dirty;     /* cursor or seen differ from the row: in s->dirty */
    uint8_t namelen;
    char name[STORE_DEVICE_MAX + 1];
    uint32_t conns;    /* connections looked it up and did not close */
} devrec;

/* A user's devices (few: an array, searched linearly). */
typedef struct devuser {
    uint32_t user;
    uint32_t n, cap;
    devrec *v;
} devuser;

/* A device to write (by key: the array may move). */
typedef struct devkey {
    uint32_t user, dev;
} devkey;

/* The SQLite store's handle: store_open gives the callers &s->base. */
struct store_sqlite {
    store base;              /* first (store_backend.h): ops =
                                &store__sqlite_ops */
    /* set by store_open, then read-only */
    uv_loop_t *loop;
    store_callbacks cb;
    store_config cfg;        /* cfg.dir is not kept (NULL); the store
                                thread alone writes (store_set_quota) and
                                reads cfg.max_messages and cfg.max_bytes */
    char *path;              /* dir/chat.db, owned */
    int lock_fd;             /* dir/chat.lock, held until destroy (-1) */
    sqlite3 *db;
    sqlite3_stmt *st_begin, *st_commit, *st_rollback, *st_insert,
        *st_delete, *st_fetch, *st_purge, *st_dedup_ins,
        *st_dedup_get, *st_dedup_purge, *st_dev_put, *st_dev_del,
        *st_scan_in, *st_scan_own, *st_aged, *st_insert_again, *st_ids,
        *st_group_put, *st_group_del, *st_member_put, *st_member_del,
        *st_group_floor, *st_hist_user, *st_hist_group, *st_member_admin,
        *st_member_joined;
    sqlite3_stmt *st_read_put, *st_read_get, *st_contact_put,
        *st_contact_get;     /* store_sig.c prepares them */
    sqlite3_stmt *st_insert_rows; /* STORE_PUT_ROWS rows in one INSERT */

    uv_thread_t loop_thread; /* store_open's: the checks compare */

    /* loop thread */
    batch *cur;              /* FILLING, or NULL */
    batch *spare;
    int nspare;
    size_t pending;
    uint64_t next_id;
    uint32_t max_body;       /* longest body a row can hold */
    ctr_table seen;
    u32map devseen;          /* user -> its device counts (dev_pack) */
    groups lgroups;          /* the loop's copy of the groups */
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
    int quota_new;           /* quota_* are for the store thread to take */
    uint64_t quota_msgs, quota_bytes;

    /* store thread */
    uv_thread_t thread;
    ctr_table ctrs;
    u32map devusers;         /* user -> devuser (owned) */
    uint32_t next_dev;       /* the next device number given */
    devkey *dirty;   size_t ndirty, cdirty;  /* devices to write */
    uint64_t aged_from;      /* --history-ttl: ids up to it were checked */
    int64_t next_forget;     /* monotonic ms of the next device/dedup pass */
    dev_upd *dchg;   size_t ndchg, cdchg;    /* counts to publish */
    uint64_t *scratch; size_t nscratch, cscratch; /* ids to delete */
    uint64_t ids_saved;      /* the reserved-ids mark committed */
    groups groups;           /* the groups (the authority) */
    uint32_t next_gid;       /* the next group id given */
    int64_t next_ord;        /* the next members.ord (join order) */
    uint32_t *gdirty; size_t ngdirty, cgdirty; /* groups whose members'
                                cursors moved: their floor is due */
    uint32_t *gchg;  size_t ngchg, cgchg;  /* groups changed, to publish */
    ctr **touched;   size_t ntouched, ctouched;
    uint32_t epoch;
    uint64_t *retry; size_t nretry, cretry;
    int64_t next_retry, next_purge;   /* monotonic ms */
    int purge_more;                   /* the last purge chunk was full */
    uint64_t purged;                  /* rows removed by this purge pass */
    unsigned fails;                   /* failed transactions in a row */
    unsigned fetch_fails;             /* failed fetches in a row */
    int rollback_failed;              /* a ROLLBACK failed: still in a txn */
    unsigned mark_fails;              /* read marks lost in a row */
    uint64_t pairs[PAIR_SLOTS];       /* the pair cache: (17) */
};

/* The SQLite backend's operations (store_loop.c). */
extern const store_ops store__sqlite_ops;

_Static_assert(offsetof(store_sqlite, base) == 0,
               "a store_sqlite is a store (store_backend.h)");

/* The SQLite handle of st, which store_open made (asserted). */
static inline store_sqlite *store__sqlite(store *st) {
    assert(st && st->ops == &store__sqlite_ops);
    return (store_sqlite *)st;
}
static inline const store_sqlite *store__sqlite_c(const store *st) {
    assert(st && st->ops == &store__sqlite_ops);
    return (const store_sqlite *)st;
}

/* Puts stored by one INSERT of that many rows (store_thread.c): the
 * statement's per-execution work (a cursor on the table and on each of its
 * indexes, the partial ones too) is then paid once per 32 rows, not per
 * row. Measured with callgrind on this schema, 200,000 rows of 64 bytes in
 * transactions of 2,000: 15,419 instructions a row one at a time, 10,171
 * at 50 a statement (tests of the idea in the session-7 note of issue 13).
 * 9 parameters a row: 288, far below SQLite's 32,766. */
#define STORE_PUT_ROWS 32

/* Pointers to every prepared statement (store_sqlite.c prepares them in
 * this order). */
#define STATEMENTS(s)                                                       \
    {&(s)->st_begin, &(s)->st_commit, &(s)->st_rollback, &(s)->st_insert,   \
     &(s)->st_delete, &(s)->st_fetch, &(s)->st_purge,                       \
     &(s)->st_dedup_ins, &(s)->st_dedup_get, &(s)->st_dedup_purge,          \
     &(s)->st_dev_put, &(s)->st_dev_del, &(s)->st_scan_in,                  \
     &(s)->st_scan_own, &(s)->st_aged, &(s)->st_insert_again,              \
     &(s)->st_ids, &(s)->st_group_put, &(s)->st_group_del,                 \
     &(s)->st_member_put, &(s)->st_member_del, &(s)->st_group_floor,       \
     &(s)->st_hist_user, &(s)->st_hist_group, &(s)->st_member_admin,       \
     &(s)->st_member_joined}
/* ... and those of store_sig.c (prepared by store__sig_prepare). */
#define SIG_STATEMENTS(s)                                                   \
    {&(s)->st_read_put, &(s)->st_read_get, &(s)->st_contact_put,           \
     &(s)->st_contact_get}

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
int store__ctr_touch(store_sqlite *s, ctr *c);
/* Start a transaction's bookkeeping (epoch 0 is never current). */
void store__ctrs_begin(store_sqlite *s);
/* Restore every counter the failed transaction touched. */
void store__ctrs_rollback(store_sqlite *s);
/* A row of receiver with len body bytes is gone. SQLITE_NOMEM or OK. */
int store__ctrs_removed(store_sqlite *s, uint32_t receiver, uint64_t len);

/* -- store_sqlite.c: the database ---------------------------------------- */

int64_t store__wall_ms(void);
int64_t store__mono_ms(void);
/* What went wrong, for a log line (SQLITE_NOMEM may be ours). */
const char *store__why(const store_sqlite *s, int rc);
/* The STORE_* status for a failed transaction's SQLite code. */
int store__status_of(int rc);
/* store_free: join the thread (stopping the store first if the caller did
 * not), close the database, let go of the lock, free s. */
void store__close(store_sqlite *s);

/* -- store_thread.c ------------------------------------------------------- */

void store__thread_main(void *arg);
/* DELETE each id (unknown ids do nothing), keeping the counters. */
int store__del_ids(store_sqlite *s, const uint64_t *ids, size_t n);

/* -- store_group.c: groups ------------------------------------------------ */

/* At open (before the thread starts): every group, in both copies. */
int store__group_load(store_sqlite *s);
void store__group_free(store_sqlite *s);
/* Store thread, inside the write transaction: run r (its status set). */
int store__group_run(store_sqlite *s, batch *b, grp_req *r, int64_t now);
/* ... delete the messages of the dirty groups that every member has. */
int store__group_floors(store_sqlite *s, int64_t now);
/* Group grp's floor is to be checked at the next store__group_floors (a
 * row of it passed --history-ttl). SQLITE_OK or SQLITE_NOMEM. */
int store__group_dirty(store_sqlite *s, uint32_t grp);
/* user's cursor moved: its groups' floors are due. */
void store__group_touch(store_sqlite *s, uint32_t user);
/* After a commit: the changed groups onto b for the loop's copy; after a
 * rollback: the groups read again from the database. */
int store__group_publish(store_sqlite *s, batch *b);
int store__group_rollback(store_sqlite *s);
/* Loop thread: apply b's snapshots to the loop's copy. */
void store__group_apply(store_sqlite *s, const batch *b);

/* -- store_dev.c: devices, cursors, the deletions they allow --------------- */

devuser *store__dev_user(const store_sqlite *s, uint32_t user);
/* d was seen within --device-ttl (it holds its user's messages back). */
int store__dev_active(const store_sqlite *s, const devrec *d, int64_t now);
/* At open (before the thread starts): every device, and the loop's copy
 * of the counts. SQLITE_OK or an SQLite code. */
int store__dev_load(store_sqlite *s);
void store__dev_free(store_sqlite *s);
/* Loop thread: store_devices, from s->devseen. O(1). */
void store__dev_counts(const store_sqlite *s, uint32_t user, unsigned *all,
                       unsigned *conv);
/* Loop thread: apply one published count to s->devseen. */
void store__dev_seen_upd(store_sqlite *s, const dev_upd *d);
/* Store thread, inside the write transaction: */
int store__dev_register(store_sqlite *s, dev_req *r, int64_t now);
void store__dev_cursor(store_sqlite *s, const cur_req *c, int64_t now);
int store__dev_write(store_sqlite *s, int64_t now);
int store__dev_forget_stale(store_sqlite *s, int64_t now, uint64_t *forgotten);
int store__dev_scan(store_sqlite *s, uint32_t user, const devrec *d,
                    uint64_t lo, uint64_t hi, int64_t now);
int store__dev_aged(store_sqlite *s, int64_t now, unsigned chunk, uint64_t *n);
/* ... after it committed: */
void store__dev_committed(store_sqlite *s);
/* After the transaction: the client ids of r's device into b. */
int store__dev_cids(store_sqlite *s, batch *b, dev_req *r, int64_t now);
/* Move the changed counts onto b. 0 or -1 (out of memory: kept). */
int store__dev_publish(store_sqlite *s, batch *b);

/* -- store_sig.c: signals ------------------------------------------------- */

/* At open, after the other statements: prepare SIG_STATEMENTS. */
int store__sig_prepare(store_sqlite *s);
/* Store thread, inside the write transaction: note the pair of a stored
 * 1:1 message (its sender and receiver), unless the cache has it. */
int store__sig_pair(store_sqlite *s, uint32_t a, uint32_t b);
/* ... the read marks and contacts of list. */
int store__sig_write(store_sqlite *s, batch *list);
/* The transaction failed with status: empty the cache; the marks and
 * presence requests of list fail with it. */
void store__sig_rollback(store_sqlite *s, batch *list, int status);
/* After the transaction: answer b's marks and presence requests. */
void store__sig_read(store_sqlite *s, batch *b);

/* The first slot of pair p's set: the top bits of MurmurHash3's 64-bit
 * finalizer (a multiplication alone maps the pairs of consecutive user
 * ids, an arithmetic progression, onto few sets). */
static inline size_t store__pair_set(uint64_t p) {
    p ^= p >> 33;
    p *= UINT64_C(0xff51afd7ed558ccd);
    p ^= p >> 33;
    p *= UINT64_C(0xc4ceb9fe1a85ec53);
    p ^= p >> 33;
    return (size_t)(p >> (64 - PAIR_SET_BITS)) * PAIR_WAYS;
}

/* -- store_loop.c --------------------------------------------------------- */

void store__on_async(uv_async_t *h);
/* store_stop (store__close calls it when the caller did not). */
void store__stop(store_sqlite *s);

/* -- store_check.c: the invariants above, asserted ------------------------- */

/* Each returns 1 (so it is called as assert(store__check_...(...))) after
 * asserting what it checks; defined only without NDEBUG. */
/* Loop thread, O(spare + failq): (4) on cur's ends, (5), (6), (8), (9),
 * (14), and that it runs on the loop thread. */
int store__check_loop(const store_sqlite *s);
/* Store thread, O(1): (3), (10) between transactions, (12), and that it
 * runs on the store thread. */
int store__check_thread(const store_sqlite *s);
/* Under s->mu: (2). */
int store__check_queues(const store_sqlite *s);
/* A batch being flushed, O(its size): (4) in full. */
int store__check_filled(const batch *b);
/* A batch about to be delivered, O(its size): (7), (8). */
int store__check_done(const store_sqlite *s, const batch *b);
/* One user's devices: (15). */
int store__check_devuser(const devuser *u);
/* Store thread, O(PAIR_SLOTS): the pair cache's shape, (17). */
int store__check_pairs(const store_sqlite *s);

#endif
