/*
 * store_sqlite.c -- the offline store (store.h) on SQLite, on its own
 * thread, with group commit.
 *
 * What it is for: the loop must never wait for a disk. It appends requests
 * to a batch in memory; once per loop iteration store_flush() hands the
 * batch to the store thread, which runs every batch queued since its last
 * transaction as ONE write transaction (one fsync for all of them), then the
 * fetches, and sends the results back through a uv_async_t.
 *
 * The database is <dir>/chat.db in WAL mode:
 *
 *     messages(id INTEGER PRIMARY KEY, receiver, sender, type, ts, body)
 *     messages_by_receiver ON messages(receiver, id)
 *
 * where ts is the unix time in ms of the transaction that stored the row.
 *
 * Its schema version is PRAGMA user_version; migrations[] below upgrades an
 * older file one step per transaction. A file that is damaged, is not a
 * database, belongs to something else or to a newer version is refused and
 * never modified.
 *
 * A batch goes through these states (the function that moves it):
 *
 *     FILLING  s->cur, loop thread           store_put/del/fetch
 *        | store_flush
 *     QUEUED   s->inq, under s->mu
 *        | store_thread takes every queued batch at once
 *     RUNNING  store thread                  txn_run, fetch_all
 *        | push_results + uv_async_send
 *     DONE     s->outq, under s->mu
 *        | on_async: callbacks in submission order
 *     SPARE    s->spare, loop thread (capacity kept) or freed
 *
 * Invariants:
 *  - A batch belongs to exactly one place above; only its owner touches it.
 *    s->mu guards inq, outq and quit, nothing else.
 *  - The sqlite3 handle and the statements are used by the loop thread in
 *    store_open only, then by the store thread only (NOMUTEX connection).
 *  - s->ctrs (store thread) holds, per receiver, the count and body bytes of
 *    its committed messages, plus this transaction's tentative changes;
 *    ctr.save_* holds the committed values of every counter touched by the
 *    running transaction, restored when it rolls back.
 *  - s->seen (loop thread) is a copy of the committed counters, updated
 *    from the result batches (ctr_upd) before their callbacks run.
 *  - A delete whose transaction failed sits in s->retry until a transaction
 *    succeeds; a put whose transaction failed is reported, never retried.
 *  - s->pending is the sum of body lengths of puts not yet delivered.
 *  - ids are below 2^63 (SQLite integers are signed).
 *
 * Costs: a put is a memcpy on the loop thread and one INSERT (two b-tree
 * inserts) on the store thread; a transaction is one fsync of the WAL (with
 * fsync_full). Memory: the pending batches, up to 64 MiB of SQLite page
 * cache, ~70 bytes per receiver in each counter table. store_open scans the
 * table once (O(rows)); a purge costs O(rows expired).
 */
#include "server/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/u32map.h"
#include "server/store_faultvfs.h"

#define PURGE_CHUNK 10000      /* rows per purge transaction */
#define PURGE_MAX_MS 60000     /* purge at least this often when ttl > 0 */
#define PURGE_MIN_MS 100       /* ... and not more often than this */
#define RETRY_MS 1000          /* failed deletes wait at most this long */
#define SPARE_MAX 4            /* batches kept for reuse */
#define SPARE_BYTES (4u << 20) /* ... if their arenas are not larger */
#define BUSY_MS 5000           /* another process holds the lock */
#define CTR_CHUNK 256          /* counters allocated together */
#define STATUS_PENDING 1       /* put_req.status before the thread sets it */

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

typedef struct ctr_upd { /* a committed counter, for the loop's copy */
    uint32_t receiver;
    uint64_t count, bytes;
} ctr_upd;

/* Requests of one loop iteration, then their results. Every array grows by
 * doubling and keeps its capacity when the batch is reused, so a busy
 * server does not allocate per request. */
typedef struct batch {
    struct batch *next;               /* in inq / outq / spare */
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

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* inq got a batch, or quit was set */
    batch *inq, *inq_tail, *outq, *outq_tail;
    int quit;

    /* store thread */
    pthread_t thread;
    ctr_table ctrs;
    ctr **touched;   size_t ntouched, ctouched;
    uint32_t epoch;
    uint64_t *retry; size_t nretry, cretry;
    int64_t next_retry, next_purge;   /* monotonic ms */
    int purge_more;                   /* the last purge chunk was full */
    uint64_t purged;                  /* rows removed by this purge pass */
    unsigned fails;                   /* failed transactions in a row */
};

/* -- small helpers ----------------------------------------------------- */

/* Grow array p (elements of size, capacity *cap) to hold need elements:
 * doubling, so n appends cost O(n). Returns the new array, or NULL (p and
 * *cap unchanged) when out of memory. */
static void *arr_grow(void *p, size_t *cap, size_t need, size_t size) {
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size) return NULL;
        n *= 2;
    }
    void *q = realloc(p, n * size);
    if (q) *cap = n;
    return q;
}

/* Make room for need elements in arr (capacity field cap): 0 or -1. */
#define RESERVE(arr, cap, need)                                            \
    ((need) <= (cap) ? 0                                                   \
                     : reserve_((void *)&(arr), &(cap), (need), sizeof *(arr)))

static int reserve_(void *arrp, size_t *cap, size_t need, size_t size) {
    void *old;
    memcpy(&old, arrp, sizeof old); /* arrp points to some T *; no aliasing */
    void *q = arr_grow(old, cap, need, size);
    if (!q) return -1;
    memcpy(arrp, &q, sizeof q);
    return 0;
}

static int64_t clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int64_t wall_ms(void) { return clock_ms(CLOCK_REALTIME); }
static int64_t mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static int is_corrupt(int rc) {
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* What went wrong, for a log line: SQLITE_NOMEM may be ours (a counter or
 * a result array), so it does not come from sqlite3_errmsg. */
static const char *why(const store *s, int rc) {
    return rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db);
}

/* The STORE_* status for a failed transaction's SQLite code. */
static int status_of(int rc) {
    switch (rc & 0xff) {
    case SQLITE_FULL: return STORE_EFULL;
    case SQLITE_NOMEM: return STORE_ENOMEM;
    default: return STORE_EIO;
    }
}

const char *store_strerror(int status) {
    switch (status) {
    case STORE_OK: return "ok";
    case STORE_EQUOTA: return "the receiver's offline quota is full";
    case STORE_ENOMEM: return "out of memory";
    case STORE_EIO: return "the message database could not be written";
    case STORE_EFULL: return "the disk is full";
    case STORE_ECORRUPT: return "the message database is damaged";
    default: return "unknown store error";
    }
}

/* -- counters ---------------------------------------------------------- */

static void ctr_init(ctr_table *t) {
    u32map_init(&t->map);
    t->zero = NULL;
    t->chunks = NULL;
}

static void ctr_free(ctr_table *t) {
    u32map_free(&t->map);
    while (t->chunks) {
        ctr_chunk *c = t->chunks;
        t->chunks = c->next;
        free(c);
    }
    t->zero = NULL;
}

static ctr *ctr_find(const ctr_table *t, uint32_t receiver) {
    return receiver ? u32map_get(&t->map, receiver) : t->zero;
}

/* The counters of receiver, created at zero. NULL when out of memory. */
static ctr *ctr_get(ctr_table *t, uint32_t receiver) {
    ctr *c = ctr_find(t, receiver);
    if (c) return c;
    if (!t->chunks || t->chunks->used == CTR_CHUNK) {
        ctr_chunk *k = malloc(sizeof *k);
        if (!k) return NULL;
        k->used = 0;
        k->next = t->chunks;
        t->chunks = k;
    }
    c = &t->chunks->items[t->chunks->used];
    memset(c, 0, sizeof *c);
    c->receiver = receiver;
    if (receiver == 0) t->zero = c;
    else if (u32map_put(&t->map, receiver, c)) return NULL;
    t->chunks->used++;
    return c;
}

/* Save c's committed values the first time this transaction changes it. */
static int touch(store *s, ctr *c) {
    if (c->epoch == s->epoch) return 0;
    if (RESERVE(s->touched, s->ctouched, s->ntouched + 1)) return -1;
    c->epoch = s->epoch;
    c->save_count = c->count;
    c->save_bytes = c->bytes;
    s->touched[s->ntouched++] = c;
    return 0;
}

/* Start a transaction's bookkeeping (epoch 0 is never current). */
static void txn_begin_ctrs(store *s) {
    if (++s->epoch == 0) s->epoch = 1;
    s->ntouched = 0;
}

static void ctrs_rollback(store *s) {
    for (size_t i = 0; i < s->ntouched; i++) {
        s->touched[i]->count = s->touched[i]->save_count;
        s->touched[i]->bytes = s->touched[i]->save_bytes;
    }
    s->ntouched = 0;
}

/* A row of receiver with len body bytes is gone. SQLITE_NOMEM or OK. */
static int ctrs_removed(store *s, uint32_t receiver, uint64_t len) {
    ctr *c = ctr_get(&s->ctrs, receiver);
    if (!c || touch(s, c)) return SQLITE_NOMEM;
    if (c->count) c->count--;
    c->bytes = c->bytes > len ? c->bytes - len : 0;
    return SQLITE_OK;
}

/* -- batches ----------------------------------------------------------- */

static void batch_free(batch *b) {
    if (!b) return;
    free(b->puts);
    free(b->fetch);
    free(b->dels);
    free(b->kinds);
    free(b->in);
    free(b->rows);
    free(b->roff);
    free(b->out);
    free(b->upd);
    free(b);
}

static void batch_free_list(batch *b) {
    while (b) {
        batch *next = b->next;
        batch_free(b);
        b = next;
    }
}

/* Loop thread: keep b for reuse (emptied) or free it. */
static void batch_recycle(store *s, batch *b) {
    if (s->nspare >= SPARE_MAX || b->cin > SPARE_BYTES ||
        b->cout > SPARE_BYTES) {
        batch_free(b);
        return;
    }
    b->nput = b->nfetch = b->ndel = b->nkind = b->nin = 0;
    b->nrow = b->nout = b->nupd = 0;
    b->next = s->spare;
    s->spare = b;
    s->nspare++;
}

/* Loop thread: the FILLING batch, or NULL when out of memory. */
static batch *cur_batch(store *s) {
    if (s->cur) return s->cur;
    if (s->spare) {
        s->cur = s->spare;
        s->spare = s->cur->next;
        s->nspare--;
    } else {
        s->cur = calloc(1, sizeof *s->cur);
    }
    if (s->cur) s->cur->next = NULL;
    return s->cur;
}

/* Store thread: append b..tail to outq and wake the loop (unless it has
 * stopped listening: then store_free frees them). */
static void push_results(store *s, batch *b) {
    if (!b) return;
    batch *tail = b;
    while (tail->next) tail = tail->next;
    pthread_mutex_lock(&s->mu);
    if (s->outq_tail) s->outq_tail->next = b;
    else s->outq = b;
    s->outq_tail = tail;
    if (!s->quit) uv_async_send(&s->async);
    pthread_mutex_unlock(&s->mu);
}

/* Store thread: record the counters the last transaction committed, on b
 * (or on a new batch pushed at once when b is NULL). */
static void publish_ctrs(store *s, batch *b) {
    if (s->ntouched == 0) return;
    batch *own = NULL;
    if (!b && !(b = own = calloc(1, sizeof *own))) goto nomem;
    if (RESERVE(b->upd, b->cupd, b->nupd + s->ntouched)) goto nomem;
    for (size_t i = 0; i < s->ntouched; i++) {
        ctr *c = s->touched[i];
        b->upd[b->nupd++] = (ctr_upd){c->receiver, c->count, c->bytes};
    }
    s->ntouched = 0;
    push_results(s, own);
    return;
nomem:
    batch_free(own);
    s->ntouched = 0;
    log_error("store: out of memory: store_count() may lag behind");
}

/* -- opening ----------------------------------------------------------- */

/* Fill err for a failed SQLite call rc while doing `what`; return the
 * STORE_* code. */
static int db_error(store *s, int rc, const char *what, char *err,
                    size_t errlen) {
    const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    if (is_corrupt(rc)) {
        snprintf(err, errlen, "%s: the database is damaged or is not a "
                 "chat-server database (%s). Move it aside (or restore a "
                 "backup) and start again; the server never overwrites it.",
                 s->path, msg);
        return STORE_ECORRUPT;
    }
    if ((rc & 0xff) == SQLITE_FULL) {
        snprintf(err, errlen, "%s: the disk is full while %s (%s). Free "
                 "some space and start again.", s->path, what, msg);
        return STORE_EFULL;
    }
    snprintf(err, errlen, "%s: cannot %s (%s). Check that the data "
             "directory exists and that this user may write to it.",
             s->path, what, msg);
    return (rc & 0xff) == SQLITE_NOMEM ? STORE_ENOMEM : STORE_EIO;
}

/* Run sql returning one integer row into *out (0 when NULL). */
static int query_int(sqlite3 *db, const char *sql, int64_t *out) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    sqlite3_finalize(st);
    return rc;
}

/* Schema migrations: migrations[i] takes user_version i to i + 1. Append
 * new ones; never edit a released one. */
static const char *const migrations[] = {
    /* 1: messages and the index that serves fetches by receiver */
    "CREATE TABLE messages(id INTEGER PRIMARY KEY,"
    " receiver INTEGER NOT NULL, sender INTEGER NOT NULL,"
    " type INTEGER NOT NULL, ts INTEGER NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX messages_by_receiver ON messages(receiver, id);",
    /* 2: accounts (server/accounts.c): Argon2id hash strings */
    "CREATE TABLE accounts(id INTEGER PRIMARY KEY, hash TEXT NOT NULL,"
    " created INTEGER NOT NULL);",
};
#define SCHEMA_VERSION ((int64_t)(sizeof migrations / sizeof *migrations))

/* Refuse, without writing, a file of a newer version or of another
 * program. Reading user_version is the first read of the file, so this is
 * also where a file that is not a database is found. */
static int check_file(store *s, int64_t *version, char *err, size_t errlen) {
    int rc = query_int(s->db, "PRAGMA user_version", version);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "read the database", err, errlen);
    if (*version > SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: the database has schema version %" PRId64
                 " but this chat-server knows versions up to %" PRId64 " (it "
                 "was written by a newer release). Run that release, or move "
                 "the file aside; it was not modified.", s->path, *version,
                 SCHEMA_VERSION);
        return STORE_ECORRUPT;
    }
    int64_t objects = 0;
    if (*version == 0) {
        rc = query_int(s->db, "SELECT count(*) FROM sqlite_schema", &objects);
        if (rc != SQLITE_OK)
            return db_error(s, rc, "read the database", err, errlen);
    }
    if (objects > 0) {
        snprintf(err, errlen, "%s: the database is damaged or is not a "
                 "chat-server database (it holds %" PRId64 " tables or "
                 "indexes but no chat-server schema version). Move it aside "
                 "and start again; the server never overwrites it.",
                 s->path, objects);
        return STORE_ECORRUPT;
    }
    return STORE_OK;
}

/* Bring the schema from version v to SCHEMA_VERSION, one transaction per
 * step (a crash leaves a whole version). */
static int migrate(store *s, int64_t v, char *err, size_t errlen) {
    for (; v < SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%" PRId64, v + 1);
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(s->db, bump, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            int code = db_error(s, rc, "upgrade the database schema", err,
                                errlen);
            if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return code;
        }
        log_info("store: %s: schema upgraded to version %" PRId64, s->path,
                 v + 1);
    }
    return STORE_OK;
}

/* The VFS to open with: "chatfault" when CHAT_FAULT_DISKFULL is set (tests
 * only), else NULL (the default). -1 when it cannot be set up. */
static int pick_vfs(const char **vfs, char *err, size_t errlen) {
    const char *flag = getenv("CHAT_FAULT_DISKFULL");
    *vfs = NULL;
    if (!flag) return 0;
    if (store_faultvfs_register(flag) != SQLITE_OK) {
        snprintf(err, errlen, "cannot set up disk-full injection "
                 "(CHAT_FAULT_DISKFULL=%s)", flag);
        return -1;
    }
    *vfs = STORE_FAULTVFS_NAME;
    log_warn("store: fault injection is on: the disk is full while %s exists "
             "(CHAT_FAULT_DISKFULL; tests only)", flag);
    return 0;
}

/* PRAGMA journal_mode=WAL, checking that it took. */
static int set_wal(store *s, char *err, size_t errlen) {
    char mode[16] = "";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st,
                                NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *m = sqlite3_column_text(st, 0);
        snprintf(mode, sizeof mode, "%s", m ? (const char *)m : "");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "switch the database to WAL mode", err, errlen);
    if (strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "%s: cannot switch the database to WAL mode "
                 "(journal mode is %s). Use a local file system.", s->path,
                 mode);
        return STORE_EIO;
    }
    return STORE_OK;
}

/* Open the file, check it (read only), then WAL, pragmas, migrations. */
static int db_open(store *s, char *err, size_t errlen) {
    const char *vfs;
    if (pick_vfs(&vfs, err, errlen)) return STORE_EIO;
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
                             SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "open the database", err, errlen);
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        snprintf(err, errlen, "%s: the database is read-only for this user. "
                 "Fix its permissions (and the directory's) and start again.",
                 s->path);
        return STORE_EIO;
    }
    sqlite3_busy_timeout(s->db, BUSY_MS);
    /* A row holds at most SQLITE_LIMIT_LENGTH bytes (10^9 in Debian's
     * build); keep 128 for the other columns and the record header. */
    int limit = sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1);
    s->max_body = limit > 128 ? (uint32_t)(limit - 128) : 0;
    int64_t version;
    if ((rc = check_file(s, &version, err, errlen))) return rc;
    if ((rc = set_wal(s, err, errlen))) return rc;
    /* Up to 64 MiB of page cache keeps the receiver index in memory. A
     * transaction dirties about one index page per receiver it touches, and
     * the same pages come back in every transaction: checkpointing every
     * 16384 pages (64 MiB of WAL) rather than SQLite's 1000 writes each to
     * the database file less often (1.0 GB -> 0.67 GB written per million
     * puts to 1000 receivers). The WAL is cut back to 64 MiB afterwards. */
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas, "PRAGMA synchronous=%s;"
             "PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384;"
             "PRAGMA journal_size_limit=67108864;",
             s->cfg.fsync_full ? "FULL" : "NORMAL");
    rc = sqlite3_exec(s->db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "configure the database", err, errlen);
    return migrate(s, version, err, errlen);
}

/* next_id and the per-receiver counters. O(rows): one scan of the table
 * at open (NOT INDEXED: reading the table in order and sorting by receiver
 * is 3x faster than walking the index, ~0.6 s per million rows here). */
static int load_state(store *s, char *err, size_t errlen) {
    int64_t max;
    int rc = query_int(s->db, "SELECT MAX(id) FROM messages", &max);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "read the database", err, errlen);
    s->next_id = max >= 1 ? (uint64_t)max + 1 : 1;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(s->db, "SELECT receiver, count(*), "
                            "sum(length(body)) FROM messages NOT INDEXED "
                            "GROUP BY receiver", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t r = (uint32_t)sqlite3_column_int64(st, 0);
        ctr *a = ctr_get(&s->ctrs, r), *b = ctr_get(&s->seen, r);
        if (!a || !b) {
            rc = SQLITE_NOMEM;
            break;
        }
        a->count = b->count = (uint64_t)sqlite3_column_int64(st, 1);
        a->bytes = b->bytes = (uint64_t)sqlite3_column_int64(st, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return db_error(s, rc, "read the database", err, errlen);
    return STORE_OK;
}

/* Every statement the thread runs, prepared once. */
static int prepare_all(store *s, char *err, size_t errlen) {
    static const char *const sql[] = {
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        /* OR ROLLBACK: a failed insert fails the whole transaction anyway;
         * with the default (ABORT) SQLite would keep a statement journal,
         * copying every page each INSERT touches first (~10% of a put) */
        "INSERT OR ROLLBACK INTO messages(id, receiver, sender, type, ts,"
        " body) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        "DELETE FROM messages WHERE id = ?1 RETURNING receiver, length(body)",
        "SELECT id, sender, type, body FROM messages"
        " WHERE receiver = ?1 AND id > ?2 AND ts >= ?3 ORDER BY id LIMIT ?4",
        /* the rows before the oldest live one: see purge_step */
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE id <"
        " coalesce((SELECT id FROM messages WHERE ts >= ?1 ORDER BY id"
        " LIMIT 1), 9223372036854775807) ORDER BY id LIMIT ?2)"
        " RETURNING receiver, length(body)",
    };
    sqlite3_stmt **st[] = {&s->st_begin, &s->st_commit, &s->st_rollback,
                           &s->st_insert, &s->st_delete, &s->st_fetch,
                           &s->st_purge};
    for (size_t i = 0; i < sizeof st / sizeof *st; i++) {
        int rc = sqlite3_prepare_v3(s->db, sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, st[i], NULL);
        if (rc != SQLITE_OK)
            return db_error(s, rc, "prepare the statements", err, errlen);
    }
    return STORE_OK;
}

/* -- store thread: the write transaction -------------------------------- */

/* Step a statement that returns no rows; SQLITE_OK or the error. */
static int exec_stmt(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int over_quota(const store *s, const ctr *c, uint32_t len) {
    return (s->cfg.max_messages && c->count + 1 > s->cfg.max_messages) ||
           (s->cfg.max_bytes && c->bytes + len > s->cfg.max_bytes);
}

/* Quota check and INSERT of one put. The body is bound in place (STATIC):
 * the batch does not move while the statement runs. */
static int put_one(store *s, batch *b, put_req *p, int64_t now) {
    static const uint8_t empty[1];
    ctr *c = ctr_get(&s->ctrs, p->receiver);
    if (!c || touch(s, c)) return SQLITE_NOMEM;
    if (p->quota && over_quota(s, c, p->len)) {
        p->status = STORE_EQUOTA;
        return SQLITE_OK;
    }
    sqlite3_stmt *st = s->st_insert;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)p->id);
    sqlite3_bind_int64(st, 2, p->receiver);
    sqlite3_bind_int64(st, 3, p->sender);
    sqlite3_bind_int(st, 4, p->type);
    sqlite3_bind_int64(st, 5, now);
    /* a NULL pointer would bind SQL NULL: an empty body needs a non-NULL */
    sqlite3_bind_blob(st, 6, p->len ? b->in + p->off : empty, (int)p->len,
                      SQLITE_STATIC);
    int rc = exec_stmt(st);
    if (rc != SQLITE_OK) return rc;
    c->count++;
    c->bytes += p->len;
    p->status = STORE_OK;
    return SQLITE_OK;
}

/* DELETE each id (unknown ids do nothing), keeping the counters. */
static int del_ids(store *s, const uint64_t *ids, size_t n) {
    sqlite3_stmt *st = s->st_delete;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ids[i]);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            rc = ctrs_removed(s, (uint32_t)sqlite3_column_int64(st, 0),
                              (uint64_t)sqlite3_column_int64(st, 1));
            if (rc != SQLITE_OK) break;
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return rc;
    }
    return SQLITE_OK;
}

/* Append n ids to the retry list. */
static void retry_add(store *s, const uint64_t *ids, size_t n) {
    if (n == 0) return;
    if (RESERVE(s->retry, s->cretry, s->nretry + n)) {
        log_error("store: out of memory: %zu deletes are lost (those "
                  "messages stay stored and may be delivered again)", n);
        return;
    }
    memcpy(s->retry + s->nretry, ids, n * sizeof *ids);
    s->nretry += n;
}

/* A transaction that wrote something committed: end a failure streak. */
static void writes_ok(store *s) {
    if (!s->fails) return;
    log_info("store: %s: writes succeed again after %u failed transactions",
             s->path, s->fails);
    s->fails = 0;
}

/* The transaction failed with rc: roll back, report, keep the deletes. */
static void txn_fail(store *s, batch *list, int rc) {
    char msg[200]; /* before ROLLBACK replaces it */
    snprintf(msg, sizeof msg, "%s", why(s, rc));
    if (!sqlite3_get_autocommit(s->db)) exec_stmt(s->st_rollback);
    ctrs_rollback(s);
    int status = status_of(rc);
    size_t refused = 0;
    for (batch *b = list; b; b = b->next) {
        for (size_t i = 0; i < b->nput; i++)
            if (b->puts[i].status != STORE_EQUOTA) {
                b->puts[i].status = status;
                refused++;
            }
        retry_add(s, b->dels, b->ndel);
    }
    s->next_retry = mono_ms() + RETRY_MS;
    if (s->fails++ == 0)
        log_error("store: %s: a write transaction failed (%s): %zu messages "
                  "refused, %zu deletes kept for the next transaction; "
                  "logged once until writes succeed again", s->path, msg,
                  refused, s->nretry);
}

/* One write transaction for every put and delete of list (may be NULL:
 * the retried deletes only). Puts get their status. */
static void txn_run(store *s, batch *list) {
    size_t writes = s->nretry;
    for (batch *b = list; b; b = b->next) writes += b->nput + b->ndel;
    if (writes == 0) return;
    txn_begin_ctrs(s);
    int64_t now = wall_ms();
    int rc = exec_stmt(s->st_begin);
    for (batch *b = list; b && rc == SQLITE_OK; b = b->next)
        for (size_t i = 0; i < b->nput && rc == SQLITE_OK; i++)
            rc = put_one(s, b, &b->puts[i], now);
    if (rc == SQLITE_OK) rc = del_ids(s, s->retry, s->nretry);
    for (batch *b = list; b && rc == SQLITE_OK; b = b->next)
        rc = del_ids(s, b->dels, b->ndel);
    if (rc == SQLITE_OK) rc = exec_stmt(s->st_commit);
    if (rc != SQLITE_OK) {
        txn_fail(s, list, rc);
        return;
    }
    writes_ok(s);
    s->nretry = 0;
    publish_ctrs(s, list);
}

/* -- store thread: fetches and purges ----------------------------------- */

/* Append the current row of st to b. SQLITE_OK or SQLITE_NOMEM. */
static int add_row(batch *b, sqlite3_stmt *st) {
    const void *body = sqlite3_column_blob(st, 3);
    size_t len = (size_t)sqlite3_column_bytes(st, 3);
    if (RESERVE(b->rows, b->crow, b->nrow + 1) ||
        RESERVE(b->roff, b->croff, b->nrow + 1) ||
        RESERVE(b->out, b->cout, b->nout + len))
        return SQLITE_NOMEM;
    if (len) memcpy(b->out + b->nout, body, len);
    b->rows[b->nrow] = (store_row){
        .id = (uint64_t)sqlite3_column_int64(st, 0),
        .sender = (uint32_t)sqlite3_column_int64(st, 1),
        .type = (uint8_t)sqlite3_column_int(st, 2),
        .len = (uint32_t)len,
    };
    b->roff[b->nrow++] = b->nout;
    b->nout += len;
    return SQLITE_OK;
}

/* Run fetch f into b's rows (cutoff: oldest ts still alive). */
static void fetch_one(store *s, batch *b, fetch_req *f, int64_t cutoff) {
    uint32_t max_rows = f->max_rows ? f->max_rows : 1;
    size_t nrow0 = b->nrow, nout0 = b->nout;
    uint64_t bytes = 0;
    sqlite3_stmt *st = s->st_fetch;
    sqlite3_bind_int64(st, 1, f->receiver);
    sqlite3_bind_int64(st, 2, f->after_id > INT64_MAX ? INT64_MAX
                                                      : (int64_t)f->after_id);
    sqlite3_bind_int64(st, 3, cutoff);
    sqlite3_bind_int64(st, 4, (int64_t)max_rows + 1);
    f->row0 = nrow0;
    f->more = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n = b->nrow - nrow0;
        if (n == max_rows || (n > 0 && bytes >= f->max_bytes)) {
            f->more = 1;
            rc = SQLITE_DONE;
            break;
        }
        if ((rc = add_row(b, st)) != SQLITE_OK) break;
        bytes += b->rows[b->nrow - 1].len;
    }
    sqlite3_reset(st);
    f->status = rc == SQLITE_DONE ? STORE_OK : status_of(rc);
    if (f->status != STORE_OK) {
        log_error("store: %s: a fetch failed (%s)", s->path, why(s, rc));
        b->nrow = nrow0;
        b->nout = nout0;
        f->more = 0;
    }
    f->nrows = b->nrow - nrow0;
}

/* Every fetch of list, in order; then point the rows at their bodies. */
static void fetch_all(store *s, batch *list) {
    int64_t cutoff = s->cfg.ttl_ms ? wall_ms() - (int64_t)s->cfg.ttl_ms
                                   : INT64_MIN;
    for (batch *b = list; b; b = b->next) {
        for (size_t i = 0; i < b->nfetch; i++)
            fetch_one(s, b, &b->fetch[i], cutoff);
        for (size_t i = 0; i < b->nrow; i++)
            /* (out is NULL when every row has an empty body.) */
            b->rows[i].body = b->out ? b->out + b->roff[i] : NULL;
    }
}

static int64_t purge_every(const store *s) {
    uint64_t ms = s->cfg.ttl_ms / 2;
    if (ms > PURGE_MAX_MS) ms = PURGE_MAX_MS;
    if (ms < PURGE_MIN_MS) ms = PURGE_MIN_MS;
    return (int64_t)ms;
}

/* Delete up to PURGE_CHUNK expired rows in one transaction. A pass goes on
 * (purge_more) while chunks come back full, then logs once.
 *
 * There is no index on ts, and "WHERE ts < cutoff" would scan the whole
 * table every pass. But ts never decreases with id (ids are given in
 * submission order and transactions commit in that order), so the expired
 * rows are the ones before the oldest live row: we find that row by
 * scanning from the smallest id and delete below it, O(rows expired). If
 * the clock stepped back, a few expired rows may sit after a live one;
 * they are never fetched (fetch filters on ts) and go once it expires. */
static void purge_step(store *s) {
    int64_t cutoff = wall_ms() - (int64_t)s->cfg.ttl_ms;
    uint64_t n = 0;
    txn_begin_ctrs(s);
    int rc = exec_stmt(s->st_begin);
    if (rc == SQLITE_OK) {
        sqlite3_stmt *st = s->st_purge;
        sqlite3_bind_int64(st, 1, cutoff);
        sqlite3_bind_int(st, 2, PURGE_CHUNK);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            n++;
            rc = ctrs_removed(s, (uint32_t)sqlite3_column_int64(st, 0),
                              (uint64_t)sqlite3_column_int64(st, 1));
            if (rc != SQLITE_OK) break;
        }
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) rc = exec_stmt(s->st_commit);
    }
    if (rc != SQLITE_OK) {
        if (s->fails++ == 0)
            log_error("store: %s: purging expired messages failed (%s); "
                      "trying again later; logged once until writes succeed "
                      "again", s->path, why(s, rc));
        if (!sqlite3_get_autocommit(s->db)) exec_stmt(s->st_rollback);
        ctrs_rollback(s);
        n = 0;
    } else {
        if (n) writes_ok(s);
        publish_ctrs(s, NULL);
    }
    s->purged += n;
    s->purge_more = n == PURGE_CHUNK;
    if (s->purge_more) return;
    if (s->purged)
        log_info("store: purged %" PRIu64 " expired messages (older than %"
                 PRIu64 " ms)", s->purged, s->cfg.ttl_ms);
    s->purged = 0;
    s->next_purge = mono_ms() + purge_every(s);
}

/* -- store thread: the loop --------------------------------------------- */

/* Monotonic ms of the next timed job, or -1 for none. */
static int64_t next_due(const store *s) {
    int64_t t = -1;
    if (s->cfg.ttl_ms) t = s->purge_more ? 0 : s->next_purge;
    if (s->nretry && (t < 0 || s->next_retry < t)) t = s->next_retry;
    return t;
}

/* Under mu: wait for a batch, quit, or the next timed job. */
static void wait_work(store *s) {
    while (!s->inq && !s->quit) {
        int64_t due = next_due(s);
        if (due < 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        if (due <= mono_ms()) return;
        struct timespec ts = {(time_t)(due / 1000),
                              (long)(due % 1000) * 1000000};
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
}

static void *store_thread(void *arg) {
    store *s = arg;
    s->next_purge = mono_ms(); /* purge what expired while we were down */
    for (;;) {
        pthread_mutex_lock(&s->mu);
        wait_work(s);
        batch *work = s->inq;
        s->inq = s->inq_tail = NULL;
        int quit = s->quit;
        pthread_mutex_unlock(&s->mu);
        if (work) {
            txn_run(s, work);
            fetch_all(s, work);
            push_results(s, work);
        } else if (quit) {
            txn_run(s, NULL); /* a last try for failed deletes */
            return NULL;
        }
        if (quit) continue; /* finish the queue first, then exit */
        /* timed jobs, also between batches of a busy server */
        int64_t now = mono_ms();
        if (s->nretry && now >= s->next_retry) txn_run(s, NULL);
        if (s->cfg.ttl_ms && (s->purge_more || now >= s->next_purge))
            purge_step(s);
    }
}

/* -- open / close -------------------------------------------------------- */

static void on_async(uv_async_t *h);

/* Everything store_open may have set up; s may be partly built. */
static void destroy(store *s) {
    sqlite3_stmt *st[] = {s->st_begin, s->st_commit, s->st_rollback,
                          s->st_insert, s->st_delete, s->st_fetch,
                          s->st_purge};
    for (size_t i = 0; i < sizeof st / sizeof *st; i++) sqlite3_finalize(st[i]);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        log_error("store: %s: closing the database failed (%s)", s->path,
                  sqlite3_errmsg(s->db));
    batch_free_list(s->inq);
    batch_free_list(s->outq);
    batch_free_list(s->spare);
    batch_free(s->cur);
    ctr_free(&s->ctrs);
    ctr_free(&s->seen);
    free(s->touched);
    free(s->retry);
    free(s->path);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Mutex, condition variable on the monotonic clock. */
static int sync_init(store *s) {
    pthread_condattr_t ca;
    if (pthread_mutex_init(&s->mu, NULL)) return -1;
    if (pthread_condattr_init(&ca)) return -1;
    int r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (r == 0) r = pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    return r ? -1 : 0;
}

/* The thread first, then the async handle: a failure before the handle
 * exists needs no loop iteration to clean up. */
static int start(store *s, uv_loop_t *loop, char *err, size_t errlen) {
    int r = pthread_create(&s->thread, NULL, store_thread, s);
    if (r) {
        snprintf(err, errlen, "cannot start the store thread: %s", strerror(r));
        return STORE_ENOMEM;
    }
    s->async.data = s;
    if ((r = uv_async_init(loop, &s->async, on_async))) {
        snprintf(err, errlen, "cannot create the store's wake-up handle: %s",
                 uv_strerror(r));
        pthread_mutex_lock(&s->mu);
        s->quit = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        return STORE_EIO;
    }
    return STORE_OK;
}

int store_open(store **out, uv_loop_t *loop, const store_config *cfg,
               const store_callbacks *cb, char *err, size_t errlen) {
    *out = NULL;
    if (errlen) err[0] = '\0';
    store *s = calloc(1, sizeof *s);
    size_t n = strlen(cfg->dir);
    if (!s || !(s->path = malloc(n + sizeof "/chat.db")) || sync_init(s)) {
        snprintf(err, errlen, "out of memory opening the store");
        if (s) free(s->path);
        free(s);
        return STORE_ENOMEM;
    }
    memcpy(s->path, cfg->dir, n);
    memcpy(s->path + n, "/chat.db", sizeof "/chat.db");
    s->loop = loop;
    s->cb = *cb;
    s->cfg = *cfg;
    s->cfg.dir = NULL;
    ctr_init(&s->ctrs);
    ctr_init(&s->seen);
    int rc = db_open(s, err, errlen);
    if (rc == STORE_OK) rc = load_state(s, err, errlen);
    if (rc == STORE_OK) rc = prepare_all(s, err, errlen);
    if (rc == STORE_OK) rc = start(s, loop, err, errlen);
    if (rc != STORE_OK) {
        destroy(s);
        return rc;
    }
    *out = s;
    return STORE_OK;
}

void store_stop(store *s) {
    if (s->stopped) return;
    store_flush(s);
    s->stopped = 1;
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    uv_close((uv_handle_t *)&s->async, NULL);
}

void store_free(store *s) {
    if (!s) return;
    if (!s->stopped) { /* misuse, but do not leave a thread or a handle */
        store_stop(s);
        uv_run(s->loop, UV_RUN_NOWAIT);
    }
    pthread_join(s->thread, NULL);
    destroy(s);
}

/* -- loop thread: requests and completions ------------------------------ */

uint64_t store_next_id(const store *s) { return s->next_id; }

uint64_t store_count(const store *s, uint32_t receiver) {
    const ctr *c = ctr_find(&s->seen, receiver);
    return c ? c->count : 0;
}

size_t store_pending_bytes(const store *s) { return s->pending; }

int store_put(store *s, uint64_t id, uint32_t receiver, uint32_t sender,
              uint8_t type, const uint8_t *body, uint32_t len, int quota,
              void *token, uint64_t seq) {
    if (s->stopped || len > s->max_body) return STORE_EIO; /* never fits */
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->puts, b->cput, b->nput + 1) ||
        RESERVE(b->kinds, b->ckind, b->nkind + 1) ||
        RESERVE(b->in, b->cin, b->nin + len))
        return STORE_ENOMEM;
    if (len) memcpy(b->in + b->nin, body, len);
    b->puts[b->nput++] = (put_req){
        .id = id, .seq = seq, .token = token, .off = b->nin, .len = len,
        .receiver = receiver, .sender = sender, .type = type,
        .quota = quota != 0, .status = STATUS_PENDING,
    };
    b->kinds[b->nkind++] = KIND_PUT;
    b->nin += len;
    s->pending += len;
    if (id >= s->next_id) s->next_id = id + 1;
    return STORE_OK;
}

void store_del(store *s, uint64_t id) {
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->dels, b->cdel, b->ndel + 1)) {
        log_error("store: out of memory: the delete of message %" PRIu64
                  " is lost (it stays stored and may be delivered again)", id);
        return;
    }
    b->dels[b->ndel++] = id;
}

void store_fetch(store *s, uint32_t receiver, uint64_t after_id,
                 uint32_t max_rows, uint32_t max_bytes, void *token) {
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->fetch, b->cfetch, b->nfetch + 1) ||
        RESERVE(b->kinds, b->ckind, b->nkind + 1)) {
        /* the only completion that does not wait for the store thread */
        if (s->cb.fetch_done)
            s->cb.fetch_done(s->cb.ctx, token, NULL, 0, 0, STORE_ENOMEM);
        return;
    }
    b->fetch[b->nfetch++] = (fetch_req){
        .after_id = after_id, .token = token, .receiver = receiver,
        .max_rows = max_rows, .max_bytes = max_bytes,
    };
    b->kinds[b->nkind++] = KIND_FETCH;
}

void store_flush(store *s) {
    batch *b = s->cur;
    if (!b || (b->nkind == 0 && b->ndel == 0)) return;
    s->cur = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->inq_tail) s->inq_tail->next = b;
    else s->inq = b;
    s->inq_tail = b;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Apply b's counters, then its callbacks in submission order (none once
 * stopped: a callback may stop the store). */
static void deliver(store *s, batch *b) {
    for (size_t i = 0; i < b->nupd; i++) {
        ctr *c = ctr_get(&s->seen, b->upd[i].receiver);
        if (!c) continue; /* store_count lags for this receiver */
        c->count = b->upd[i].count;
        c->bytes = b->upd[i].bytes;
    }
    size_t pi = 0, fi = 0;
    for (size_t k = 0; k < b->nkind; k++) {
        if (b->kinds[k] == KIND_PUT) {
            const put_req *p = &b->puts[pi++];
            s->pending -= p->len;
            if (!s->stopped && s->cb.put_done)
                s->cb.put_done(s->cb.ctx, p->token, p->seq, p->id, p->status);
        } else {
            const fetch_req *f = &b->fetch[fi++];
            if (!s->stopped && s->cb.fetch_done)
                s->cb.fetch_done(s->cb.ctx, f->token,
                                 f->nrows ? b->rows + f->row0 : NULL,
                                 f->nrows, f->more, f->status);
        }
    }
}

static void on_async(uv_async_t *h) {
    store *s = h->data;
    pthread_mutex_lock(&s->mu);
    batch *list = s->outq;
    s->outq = s->outq_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list) {
        batch *b = list;
        list = b->next;
        deliver(s, b);
        batch_recycle(s, b);
    }
}
