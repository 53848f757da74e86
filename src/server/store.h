/*
 * store.h -- the offline message store, as the event loop sees it.
 *
 * The store keeps data frames that are not yet known delivered: frames for
 * receivers that are offline or behind (spilled), and durable copies of
 * frames whose delivery was promised (acknowledged to an opted-in sender, or
 * sent to an opted-in receiver that has not acknowledged them yet). A
 * message is deleted only when the loop says so (store_del).
 *
 * Model: asynchronous and batched. On the loop thread, store_put/del/fetch
 * append requests to a pending batch (bodies are copied into it);
 * store_flush() hands the batch to the store thread, once per loop
 * iteration. The store thread takes every batch queued, runs them as ONE
 * transaction (group commit): puts in order, then deletes, COMMIT; then the
 * fetches, which therefore see every put submitted before them. Results come
 * back on the loop thread through the callbacks, in submission order.
 *
 * Message ids are chosen by the loop (store_next_id() at open, then +1 per
 * put), so a frame can carry its id before it is committed. Ids increase in
 * the order frames were accepted; a receiver's messages are delivered in id
 * order.
 *
 * Backend: src/server/store_*.c, described in store_int.h (SQLite in WAL
 * mode under the data directory, on its own thread). Threads: every
 * function here is called on the loop thread, except where said. The
 * store logs the events of its own thread (failures once per streak,
 * purges): see store_int.h.
 */
#ifndef CHAT_SERVER_STORE_H
#define CHAT_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/metrics.h"

/* Status codes (0 or negative). */
enum {
    STORE_OK = 0,
    STORE_EQUOTA = -1,  /* the receiver's quota (messages or bytes) is full */
    STORE_ENOMEM = -2,
    STORE_EIO = -3,     /* the database could not be written (I/O error) */
    STORE_EFULL = -4,   /* the disk is full */
    STORE_ECORRUPT = -5 /* the database file is damaged or not a database */
};

/* "quota full", "disk full", ... */
const char *store_strerror(int status);

typedef struct store_config {
    const char *dir;        /* data directory; the database is dir/chat.db */
    int fsync_full;         /* 1: PRAGMA synchronous=FULL; 0: NORMAL */
    uint64_t max_messages;  /* per receiver, for puts with quota set; 0: none */
    uint64_t max_bytes;     /* per receiver (body bytes); 0: none */
    uint64_t ttl_ms;        /* older messages are purged, never fetched; 0: keep */
} store_config;

/* One stored message handed to fetch_done. `body` belongs to the store and
 * is valid during the callback only. */
typedef struct store_row {
    uint64_t id;
    uint32_t sender;
    uint8_t type;
    uint32_t len;
    const uint8_t *body;
} store_row;

/* Completions, called on the loop thread in submission order, each from
 * the store's wake-up handle: never inside the store_* call that queued
 * the request. */
typedef struct store_callbacks {
    void *ctx;
    /* A put was committed (status STORE_OK) or not (STORE_EQUOTA: refused,
     * nothing stored; STORE_EIO / STORE_EFULL: the transaction failed and was
     * rolled back). token and seq are the caller's, returned as given. */
    void (*put_done)(void *ctx, void *token, uint64_t seq, uint64_t id,
                     int status);
    /* A fetch ran: rows[0..n) in id order, all with id > after_id and not
     * expired. more = 1 when the receiver has further messages after the
     * last row. status != STORE_OK: n = 0. */
    void (*fetch_done)(void *ctx, void *token, const store_row *rows,
                       size_t n, int more, int status);
} store_callbacks;

typedef struct store store;

/* Open (or create) dir/chat.db, run the schema migrations, load the
 * per-receiver counters, start the store thread and register its wake-up
 * handle on loop. Synchronous: call before the loop runs. Returns 0, or a
 * STORE_E* code with a sentence in err naming the file and what to do (a
 * damaged database is never replaced or emptied). */
int store_open(store **out, uv_loop_t *loop, const store_config *cfg,
               const store_callbacks *cb, char *err, size_t errlen);

/* What the loop knows of the store, for /metrics and /healthz: updated as
 * batches complete (loop thread; reading it costs nothing). */
typedef struct store_stats {
    uint64_t messages, bytes;   /* stored now (committed) */
    uint64_t txns;              /* write transactions completed */
    uint64_t txn_failures;      /* of which rolled back */
    metrics_hist txn_us;        /* their durations, microseconds */
    metrics_hist txn_writes;    /* their puts and deletes */
    int health;                 /* STORE_OK, or the status of the last
                                   write transaction when it failed (until
                                   one succeeds again) */
} store_stats;

const store_stats *store_stats_of(const store *s);

/* The first unused message id (largest stored id + 1, at least 1). */
uint64_t store_next_id(const store *s);

/* Messages / body bytes held for receiver (committed, as of the last
 * completed transaction). For logs and tests; O(1). */
uint64_t store_count(const store *s, uint32_t receiver);

/* Queue a put. `quota` = 1 checks the receiver's limits (the message is
 * held because the receiver cannot take it now); 0 stores it regardless (a
 * durable copy of a frame being delivered live). The body is copied.
 * Returns 0 or STORE_ENOMEM (nothing queued). */
int store_put(store *s, uint64_t id, uint32_t receiver, uint32_t sender,
              uint8_t type, const uint8_t *body, uint32_t len, int quota,
              void *token, uint64_t seq);

/* Queue the deletion of message id (no completion; an unknown id is
 * ignored). A delete that fails with the transaction is retried with the
 * next one. */
void store_del(store *s, uint64_t id);

/* Queue a fetch of receiver's oldest messages with id > after_id: at most
 * max_rows rows and about max_bytes body bytes (at least one row).
 * fetch_done always runs later on the loop, never inside this call, and
 * exactly once unless the store is stopped first. A fetch that cannot be
 * queued (out of memory) completes with STORE_ENOMEM, in submission order
 * like the others. Only when even that failure cannot be recorded (more
 * than 64 of them waiting and no memory to grow the queue) does the
 * process abort. */
void store_fetch(store *s, uint32_t receiver, uint64_t after_id,
                 uint32_t max_rows, uint32_t max_bytes, void *token);

/* Hand the pending batch to the store thread (no-op when empty). */
void store_flush(store *s);

/* Body bytes of puts queued or in flight, not yet completed: the loop stops
 * reading from clients when this passes its bound. */
size_t store_pending_bytes(const store *s);

/* Begin closing on the loop thread: flush, let the thread finish every
 * queued request, and close the wake-up handle (the loop may then end).
 * Completions that arrive later are dropped. */
void store_stop(store *s);

/* After uv_run() returned: join the thread, close the database, free. */
void store_free(store *s);

#endif
