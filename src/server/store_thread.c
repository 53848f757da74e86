/*
 * store_thread.c -- the offline store's own thread (see store_int.h): it
 * takes every batch queued, runs their puts and deletes as one write
 * transaction (group commit), then their fetches (and the signals' reads:
 * store_sig.c), and hands the results back to the loop; between batches
 * it purges expired messages and retries deletes that failed. It owns the
 * SQLite connection once store_open has returned.
 */
#include "server/store_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* -- results ------------------------------------------------------------- */

/* Store thread: append b..tail to outq and wake the loop (unless it has
 * stopped listening: then store_free frees them). */
static void push_results(store_sqlite *s, batch *b) {
    if (!b) return;
    batch *tail = b;
    while (tail->next) tail = tail->next;
    uv_mutex_lock(&s->mu);
    if (s->outq_tail) s->outq_tail->next = b;
    else s->outq = b;
    s->outq_tail = tail;
    assert(store__check_queues(s));
    /* (void): on a handle that is not closing (quit is set before it
     * closes, under mu) libuv only sets a flag and writes its eventfd. */
    if (!s->quit) (void)uv_async_send(&s->async);
    uv_mutex_unlock(&s->mu);
}

/* Store thread: record the counters the last transaction committed, on b
 * (or on a new batch pushed at once when b is NULL). */
static void publish_ctrs(store_sqlite *s, batch *b) {
    if (s->ntouched == 0 && s->ndchg == 0 && s->ngchg == 0) return;
    batch *own = NULL;
    if (!b && !(b = own = calloc(1, sizeof *own))) goto nomem;
    if (store__dev_publish(s, b) || store__group_publish(s, b)) goto nomem;
    if (RESERVE(b->upd, b->cupd, b->nupd + s->ntouched)) goto nomem;
    for (size_t i = 0; i < s->ntouched; i++) {
        ctr *c = s->touched[i];
        b->upd[b->nupd++] = (ctr_upd){c->receiver, c->count, c->bytes};
    }
    s->ntouched = 0;
    push_results(s, own);
    return;
nomem:
    store__batch_free(own);
    s->ntouched = 0;
    s->ngchg = 0;
    log_error("store_oom_counts",
              "store: out of memory: store_count(), the device counts or "
              "the loop's groups may lag behind");
}

/* -- the write transaction ---------------------------------------------- */

/* Step a statement that returns no rows; SQLITE_OK or the error. */
static int exec_stmt(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    (void)sqlite3_reset(st); /* repeats the step's error, already in rc */
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* End the open transaction, if any. A ROLLBACK that fails (it writes
 * nothing in WAL mode, so it should not) leaves the connection inside the
 * transaction: logged once, and tried again before the next BEGIN. */
static void rollback(store_sqlite *s) {
    if (sqlite3_get_autocommit(s->db)) return;
    int rc = exec_stmt(s->st_rollback);
    int failed = rc != SQLITE_OK && !sqlite3_get_autocommit(s->db);
    if (failed && !s->rollback_failed)
        log_error("store_rollback_failed",
                  "store: %s: ROLLBACK failed (%s); trying again before the "
                  "next transaction", s->path, store__why(s, rc));
    s->rollback_failed = failed;
}

/* BEGIN, after a ROLLBACK that failed is retried. */
static int begin(store_sqlite *s) {
    if (s->rollback_failed) rollback(s);
    return exec_stmt(s->st_begin);
}

static int over_quota(const store_sqlite *s, const ctr *c, uint32_t len) {
    return (s->cfg.max_messages && c->count + 1 > s->cfg.max_messages) ||
           (s->cfg.max_bytes && c->bytes + len > s->cfg.max_bytes);
}

/* Bind put p's nine values (the columns of st_insert) at parameters
 * base + 1 .. base + 9 of st. The body is bound in place (STATIC): the
 * batch does not move while the statement runs. */
static int bind_put(sqlite3_stmt *st, int base, const batch *b,
                    const put_req *p) {
    static const uint8_t empty[1];
    int rc = sqlite3_bind_int64(st, base + 1, (sqlite3_int64)p->id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, base + 2, p->receiver);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, base + 3, p->sender);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, base + 4, p->type);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, base + 5, p->ts);
    /* a NULL pointer would bind SQL NULL: an empty body needs a non-NULL */
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, base + 6, p->len ? b->in + p->off : empty,
                               (int)p->len, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, base + 7, p->sdev);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, base + 8, p->own);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, base + 9, p->grp);
    return rc;
}

/* The quota check of put p: STORE_EQUOTA, or its receiver's counters
 * charged now, before its row is written, so that the next put to the same
 * receiver in this transaction sees it (a failed transaction rolls the
 * counters back: store__ctrs_rollback). *write: the row is to be written.
 * SQLITE_OK or SQLITE_NOMEM. */
static int put_charge(store_sqlite *s, put_req *p, int *write) {
    *write = 0;
    ctr *c = store__ctr_get(&s->ctrs, p->receiver);
    if (!c || store__ctr_touch(s, c)) return SQLITE_NOMEM;
    if (p->quota && over_quota(s, c, p->len)) {
        p->status = STORE_EQUOTA;
        return SQLITE_OK;
    }
    c->count++;
    c->bytes += p->len;
    *write = 1;
    return SQLITE_OK;
}

/* What follows the row of put p: its client id, its status, and (a 1:1
 * message) its two contacts (store_sig.c; a pair in its cache costs
 * nothing more). */
static int put_done(store_sqlite *s, put_req *p) {
    int rc = SQLITE_OK;
    if (p->cid) {
        sqlite3_stmt *st = s->st_dedup_ins;
        rc = sqlite3_bind_int64(st, 1, p->sender);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, p->sdev);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)p->cid);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 4, p->ts);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)p->id);
        if (rc == SQLITE_OK) rc = exec_stmt(st);
    }
    if (rc != SQLITE_OK) return rc;
    p->status = STORE_OK;
    return p->grp == 0 ? store__sig_pair(s, p->sender, p->receiver)
                       : SQLITE_OK;
}

/* Puts whose rows are yet to be written, in order; at most
 * STORE_PUT_ROWS. */
typedef struct put_run {
    put_req *p[STORE_PUT_ROWS];
    const batch *b[STORE_PUT_ROWS];
    size_t n;
} put_run;

/* Write the rows of r: one INSERT of STORE_PUT_ROWS rows when it is full,
 * else one row at a time (the end of a transaction). */
static int run_flush(store_sqlite *s, put_run *r) {
    int rc = SQLITE_OK;
    if (r->n == STORE_PUT_ROWS) {
        sqlite3_stmt *st = s->st_insert_rows;
        for (size_t i = 0; i < r->n && rc == SQLITE_OK; i++)
            rc = bind_put(st, (int)(9 * i), r->b[i], r->p[i]);
        if (rc == SQLITE_OK) rc = exec_stmt(st);
    } else {
        for (size_t i = 0; i < r->n && rc == SQLITE_OK; i++) {
            rc = bind_put(s->st_insert, 0, r->b[i], r->p[i]);
            if (rc == SQLITE_OK) rc = exec_stmt(s->st_insert);
        }
    }
    for (size_t i = 0; i < r->n && rc == SQLITE_OK; i++)
        rc = put_done(s, r->p[i]);
    r->n = 0;
    return rc;
}

/* A resent put (again: the message may be stored already, INSERT OR
 * IGNORE) alone: whether its row was new decides the rest. */
static int put_again(store_sqlite *s, const batch *b, put_req *p) {
    int write, rc = put_charge(s, p, &write);
    if (rc != SQLITE_OK || !write) return rc;
    rc = bind_put(s->st_insert_again, 0, b, p);
    if (rc == SQLITE_OK) rc = exec_stmt(s->st_insert_again);
    if (rc != SQLITE_OK) return rc;
    if (sqlite3_changes(s->db) == 0) { /* there already: not charged */
        ctr *c = store__ctr_get(&s->ctrs, p->receiver);
        if (!c) return SQLITE_NOMEM;
        c->count--;
        c->bytes -= p->len;
        p->status = STORE_OK;
        return SQLITE_OK;
    }
    return put_done(s, p);
}

/* Every put of list, in order: quota, row, client id, contacts. */
static int puts_run(store_sqlite *s, batch *list) {
    static put_run run; /* the store thread's alone */
    int rc = SQLITE_OK;
    run.n = 0;
    for (batch *b = list; b && rc == SQLITE_OK; b = b->next)
        for (size_t i = 0; i < b->nput && rc == SQLITE_OK; i++) {
            put_req *p = &b->puts[i];
            int write;
            if (p->again) {
                rc = run_flush(s, &run);
                if (rc == SQLITE_OK) rc = put_again(s, b, p);
                continue;
            }
            rc = put_charge(s, p, &write);
            if (rc != SQLITE_OK || !write) continue;
            run.p[run.n] = p;
            run.b[run.n] = b;
            if (++run.n == STORE_PUT_ROWS) rc = run_flush(s, &run);
        }
    if (rc == SQLITE_OK) rc = run_flush(s, &run);
    run.n = 0;
    return rc;
}

int store__del_ids(store_sqlite *s, const uint64_t *ids, size_t n) {
    sqlite3_stmt *st = s->st_delete;
    for (size_t i = 0; i < n; i++) {
        int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)ids[i]);
        if (rc != SQLITE_OK) return rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            rc = store__ctrs_removed(s, (uint32_t)sqlite3_column_int64(st, 0),
                                     (uint64_t)sqlite3_column_int64(st, 1));
            if (rc != SQLITE_OK) break;
        }
        (void)sqlite3_reset(st); /* repeats the step's error, in rc */
        if (rc != SQLITE_DONE) return rc;
    }
    return SQLITE_OK;
}

/* Append n ids to the retry list. */
static void retry_add(store_sqlite *s, const uint64_t *ids, size_t n) {
    if (n == 0) return;
    if (RESERVE(s->retry, s->cretry, s->nretry + n)) {
        log_error("store_oom_delete_lost",
                  "store: out of memory: %zu deletes are lost (those "
                  "messages stay stored and may be delivered again)", n);
        return;
    }
    memcpy(s->retry + s->nretry, ids, n * sizeof *ids);
    s->nretry += n;
}

/* A transaction that wrote something committed: end a failure streak. */
static void writes_ok(store_sqlite *s) {
    if (!s->fails) return;
    log_info("store_writes_recovered",
             "store: %s: writes succeed again after %u failed transactions",
             s->path, s->fails);
    s->fails = 0;
}

/* The transaction failed with rc: roll back, report, keep the deletes. */
static void txn_fail(store_sqlite *s, batch *list, int rc) {
    char msg[200]; /* before ROLLBACK replaces it */
    snprintf(msg, sizeof msg, "%s", store__why(s, rc));
    rollback(s);
    store__ctrs_rollback(s);
    int status = store__status_of(rc);
    size_t refused = 0;
    for (batch *b = list; b; b = b->next) {
        for (size_t i = 0; i < b->nput; i++)
            if (b->puts[i].status != STORE_EQUOTA) {
                b->puts[i].status = status;
                refused++;
            }
        for (size_t i = 0; i < b->ngrp; i++)
            if (b->grps[i].status == STORE_OK ||
                b->grps[i].status == STATUS_PENDING)
                b->grps[i].status = status;
        retry_add(s, b->dels, b->ndel);
    }
    store__sig_rollback(s, list, status);
    /* (void): it logs; the copy is then what the file holds, or empty */
    (void)store__group_rollback(s);
    s->next_retry = store__mono_ms() + RETRY_MS;
    if (s->fails++ == 0)
        log_error("store_txn_failed",
                  "store: %s: a write transaction failed (%s): %zu messages "
                  "refused, %zu deletes kept for the next transaction; "
                  "logged once until writes succeed again", s->path, msg,
                  refused, s->nretry);
}

/* Devices registered and cursors moved by list, then every device to
 * write (and the deletions its cursor allows). */
static int devices_run(store_sqlite *s, batch *list, int64_t now) {
    for (batch *b = list; b; b = b->next)
        for (size_t i = 0; i < b->ngrp; i++) {
            int rc = store__group_run(s, b, &b->grps[i], now);
            if (rc != SQLITE_OK) return rc;
        }
    for (batch *b = list; b; b = b->next) {
        for (size_t i = 0; i < b->ndev; i++) {
            int rc = store__dev_register(s, &b->devs[i], now);
            b->devs[i].status = rc == SQLITE_OK ? STORE_OK
                                                : store__status_of(rc);
            if (rc != SQLITE_OK) return rc;
        }
        for (size_t i = 0; i < b->ncur; i++)
            store__dev_cursor(s, &b->curs[i], now);
    }
    int rc = store__dev_write(s, now);
    return rc == SQLITE_OK ? store__group_floors(s, now) : rc;
}

/* One write transaction for every put, device, cursor and delete of list
 * (may be NULL: the retried deletes and device writes only). Puts get
 * their status. */
/* The highest id mark of list above the committed one, or 0. */
static uint64_t ids_mark(const store_sqlite *s, const batch *list) {
    uint64_t m = 0;
    for (const batch *b = list; b; b = b->next)
        if (b->ids_upto > m) m = b->ids_upto;
    return m > s->ids_saved ? m : 0;
}

static int ids_write(store_sqlite *s, uint64_t mark) {
    int rc = sqlite3_bind_int64(s->st_ids, 1, (sqlite3_int64)mark);
    return rc == SQLITE_OK ? exec_stmt(s->st_ids) : rc;
}

static void txn_run(store_sqlite *s, batch *list) {
    uint64_t mark = ids_mark(s, list);
    size_t writes = s->nretry + s->ndirty + (mark != 0);
    for (batch *b = list; b; b = b->next)
        writes += b->nput + b->ndel + b->ndev + b->ncur + b->ngrp +
                  b->nread + b->ncontact;
    if (writes == 0) return;
    store__ctrs_begin(s);
    int64_t now = store__wall_ms();
    uint64_t t0 = uv_hrtime();
    int rc = begin(s);
    if (rc == SQLITE_OK) rc = puts_run(s, list);
    if (rc == SQLITE_OK) rc = devices_run(s, list, now);
    if (rc == SQLITE_OK) rc = store__sig_write(s, list);
    if (rc == SQLITE_OK && mark) rc = ids_write(s, mark);
    if (rc == SQLITE_OK) rc = store__del_ids(s, s->retry, s->nretry);
    for (batch *b = list; b && rc == SQLITE_OK; b = b->next)
        rc = store__del_ids(s, b->dels, b->ndel);
    if (rc == SQLITE_OK) rc = exec_stmt(s->st_commit);
    if (list) { /* the loop's figures (a retry alone has no batch) */
        list->txn = 1;
        list->txn_status = rc == SQLITE_OK ? STORE_OK : store__status_of(rc);
        list->txn_us = (uv_hrtime() - t0) / 1000;
        list->txn_writes = writes;
    }
    if (rc != SQLITE_OK) {
        txn_fail(s, list, rc);
        return;
    }
    store__dev_committed(s);
    assert(store__check_pairs(s));
    if (mark) s->ids_saved = mark;
    writes_ok(s);
    s->nretry = 0;
    publish_ctrs(s, list);
}

/* -- fetches and purges ------------------------------------------------- */

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
        .receiver = (uint32_t)sqlite3_column_int64(st, 4),
        .ts = sqlite3_column_int64(st, 5),
        .grp = (uint32_t)sqlite3_column_int64(st, 6),
    };
    b->roff[b->nrow++] = b->nout;
    b->nout += len;
    return SQLITE_OK;
}

/* Run fetch f into b's rows (cutoff: oldest ts still alive). */
static void fetch_one(store_sqlite *s, batch *b, fetch_req *f, int64_t cutoff) {
    uint32_t max_rows = f->max_rows ? f->max_rows : 1;
    size_t nrow0 = b->nrow, nout0 = b->nout;
    uint64_t bytes = 0;
    sqlite3_stmt *st;
    int rc;
    int64_t after = f->after_id > INT64_MAX ? INT64_MAX : (int64_t)f->after_id;
    if (f->hist) { /* a history page: ?3 below, ?4 since, ?5 rows */
        st = f->group ? s->st_hist_group : s->st_hist_user;
        int64_t since = store__wall_ms() - (int64_t)s->cfg.history_ttl_ms;
        rc = sqlite3_bind_int64(st, 1, f->group ? f->group : f->receiver);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 2, f->group ? (int64_t)f->min_id
                                                    : (int64_t)f->peer);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 3, after ? after : INT64_MAX);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 4, since > cutoff ? since : cutoff);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 5, (int64_t)max_rows + 1);
    } else {
        st = s->st_fetch;
        rc = sqlite3_bind_int64(st, 1, f->receiver);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 5, f->dev);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 6, f->conv);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, after);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, cutoff);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 4, (int64_t)max_rows + 1);
    }
    f->row0 = nrow0;
    f->more = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n = b->nrow - nrow0;
        if (n == max_rows || (n > 0 && bytes >= f->max_bytes)) {
            f->more = 1;
            rc = SQLITE_DONE;
            break;
        }
        if ((rc = add_row(b, st)) != SQLITE_OK) break;
        bytes += b->rows[b->nrow - 1].len;
    }
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    f->status = rc == SQLITE_DONE ? STORE_OK : store__status_of(rc);
    if (f->status != STORE_OK) {
        if (s->fetch_fails++ == 0)
            log_error("store_fetch_failed",
                      "store: %s: a fetch failed (%s); logged once until "
                      "fetches succeed again", s->path, store__why(s, rc));
        b->nrow = nrow0;
        b->nout = nout0;
        f->more = 0;
    } else if (s->fetch_fails) {
        log_info("store_fetches_recovered",
                 "store: %s: fetches succeed again after %u failed", s->path,
                 s->fetch_fails);
        s->fetch_fails = 0;
    }
    f->nrows = b->nrow - nrow0;
}

/* The client ids of each device looked up (after the transaction that
 * created it, so a failure there leaves it known, without its ids). */
static void devices_read(store_sqlite *s, batch *b, int64_t now) {
    for (size_t i = 0; i < b->ndev; i++) {
        dev_req *r = &b->devs[i];
        if (r->status != STORE_OK) continue;
        int rc = store__dev_cids(s, b, r, now);
        if (rc != SQLITE_OK) {
            log_error("store_cids_read_failed",
                      "store: %s: reading the client ids of a device of user "
                      "%" PRIu32 " failed (%s)", s->path, r->user,
                      store__why(s, rc));
            r->status = store__status_of(rc);
        }
    }
}

/* Every fetch of list, in order; then point the rows at their bodies. */
static void fetch_all(store_sqlite *s, batch *list) {
    int64_t now = store__wall_ms();
    int64_t cutoff = s->cfg.ttl_ms ? now - (int64_t)s->cfg.ttl_ms : INT64_MIN;
    for (batch *b = list; b; b = b->next) {
        devices_read(s, b, now);
        store__sig_read(s, b);
        for (size_t i = 0; i < b->nfetch; i++)
            fetch_one(s, b, &b->fetch[i], cutoff);
        for (size_t i = 0; i < b->nrow; i++)
            /* (out is NULL when every row has an empty body.) */
            b->rows[i].body = b->out ? b->out + b->roff[i] : NULL;
    }
}

static int64_t purge_every(const store_sqlite *s) {
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
static void purge_step(store_sqlite *s) {
    int64_t cutoff = store__wall_ms() - (int64_t)s->cfg.ttl_ms;
    uint64_t n = 0;
    store__ctrs_begin(s);
    int rc = begin(s);
    sqlite3_stmt *st = s->st_purge;
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 1, cutoff);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, PURGE_CHUNK);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            n++;
            rc = store__ctrs_removed(s, (uint32_t)sqlite3_column_int64(st, 0),
                                     (uint64_t)sqlite3_column_int64(st, 1));
            if (rc != SQLITE_OK) break;
        }
        (void)sqlite3_reset(st); /* repeats the step's error, in rc */
        if (rc == SQLITE_DONE) rc = exec_stmt(s->st_commit);
    }
    if (rc != SQLITE_OK) {
        if (s->fails++ == 0)
            log_error("store_purge_failed",
                      "store: %s: purging expired messages failed (%s); "
                      "trying again later; logged once until writes succeed "
                      "again", s->path, store__why(s, rc));
        rollback(s);
        store__ctrs_rollback(s);
        n = 0;
    } else {
        if (n) writes_ok(s);
        publish_ctrs(s, NULL);
    }
    s->purged += n;
    s->purge_more = n == PURGE_CHUNK;
    if (s->purge_more) return;
    if (s->purged)
        log_info("store_purged",
                 "store: purged %" PRIu64 " expired messages (older than %"
                 PRIu64 " ms)", s->purged, s->cfg.ttl_ms);
    s->purged = 0;
    s->next_purge = store__mono_ms() + purge_every(s);
}

/* How often the maintenance pass runs: devices, client ids, history. */
static int64_t maint_every(const store_sqlite *s) {
    uint64_t ms = PURGE_MAX_MS;
    const uint64_t t[] = {s->cfg.device_ttl_ms, s->cfg.dedup_ms,
                          s->cfg.history_ttl_ms};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (t[i] && t[i] / 2 < ms) ms = t[i] / 2;
    if (ms < PURGE_MIN_MS) ms = PURGE_MIN_MS;
    return (int64_t)ms;
}

/* One transaction: forget the devices not seen for --device-ttl, drop
 * client ids older than --dedup-window, and check a chunk of messages
 * whose --history-ttl is over (each limited to PURGE_CHUNK rows, and run
 * again at once while a chunk came back full). */
static void maint_step(store_sqlite *s) {
    int64_t now = store__wall_ms();
    uint64_t forgotten = 0, aged = 0, from = s->aged_from;
    store__ctrs_begin(s);
    int rc = begin(s), full = 0;
    if (rc == SQLITE_OK) rc = store__dev_forget_stale(s, now, &forgotten);
    if (rc == SQLITE_OK) {
        sqlite3_stmt *st = s->st_dedup_purge;
        rc = sqlite3_bind_int64(st, 1, now - (int64_t)s->cfg.dedup_ms);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, PURGE_CHUNK);
        if (rc == SQLITE_OK) rc = exec_stmt(st);
        full = rc == SQLITE_OK && sqlite3_changes(s->db) == PURGE_CHUNK;
    }
    if (rc == SQLITE_OK && s->cfg.history_ttl_ms) {
        rc = store__dev_aged(s, now, PURGE_CHUNK, &aged);
        full |= s->aged_from != from;
    }
    if (rc == SQLITE_OK) rc = exec_stmt(s->st_commit);
    if (rc != SQLITE_OK) {
        if (s->fails++ == 0)
            log_error("store_forget_failed",
                      "store: %s: forgetting old devices and client ids "
                      "failed (%s); trying again later; logged once until "
                      "writes succeed again", s->path, store__why(s, rc));
        rollback(s);
        store__ctrs_rollback(s);
        s->aged_from = from;
        full = 0;
    } else {
        publish_ctrs(s, NULL);
        if (forgotten)
            log_info("store_devices_forgotten",
                     "store: forgot %" PRIu64 " devices not seen for %" PRIu64
                     " ms (--device-ttl)", forgotten, s->cfg.device_ttl_ms);
        if (aged)
            log_info("store_history_aged",
                     "store: deleted %" PRIu64 " messages past --history-ttl "
                     "that every device has", aged);
    }
    s->next_forget = store__mono_ms() + (full ? 0 : maint_every(s));
}

/* -- the thread's loop ---------------------------------------------------- */

/* Monotonic ms of the next timed job, or -1 for none. */
static int64_t next_due(const store_sqlite *s) {
    int64_t t = s->next_forget;
    if (s->cfg.ttl_ms) t = s->purge_more ? 0 : s->next_purge;
    if (s->next_forget < t) t = s->next_forget;
    if ((s->nretry || s->ndirty) && s->next_retry < t) t = s->next_retry;
    return t;
}

/* Under mu: wait for a batch, quit, or the next timed job. */
static void wait_work(store_sqlite *s) {
    while (!s->inq && !s->quit) {
        int64_t due = next_due(s);
        if (due < 0) {
            uv_cond_wait(&s->cv, &s->mu);
            continue;
        }
        int64_t now = store__mono_ms();
        if (due <= now) return;
        /* (void): 0 or UV_ETIMEDOUT, and the loop checks again either way
         * (libuv aborts on any other error) */
        (void)uv_cond_timedwait(&s->cv, &s->mu,
                                (uint64_t)(due - now) * 1000000u);
    }
}

void store__thread_main(void *arg) {
    store_sqlite *s = arg;
    s->next_purge = store__mono_ms(); /* purge what expired while we were down */
    s->next_forget = s->next_purge;
    for (;;) {
        assert(store__check_thread(s));
        uv_mutex_lock(&s->mu);
        wait_work(s);
        assert(store__check_queues(s));
        batch *work = s->inq;
        s->inq = s->inq_tail = NULL;
        int quit = s->quit;
        if (s->quota_new) { /* store_set_quota: from the next put on */
            s->cfg.max_messages = s->quota_msgs;
            s->cfg.max_bytes = s->quota_bytes;
            s->quota_new = 0;
        }
        uv_mutex_unlock(&s->mu);
        if (work) {
            txn_run(s, work);
            assert(store__check_thread(s));
            fetch_all(s, work);
            push_results(s, work);
        } else if (quit) {
            txn_run(s, NULL); /* a last try for failed deletes */
            assert(store__check_thread(s));
            return;
        }
        if (quit) continue; /* finish the queue first, then exit */
        /* timed jobs, also between batches of a busy server */
        int64_t now = store__mono_ms();
        if ((s->nretry || s->ndirty) && now >= s->next_retry) {
            txn_run(s, NULL);
            assert(store__check_thread(s));
        }
        if (s->cfg.ttl_ms && (s->purge_more || now >= s->next_purge))
            purge_step(s);
        if (now >= s->next_forget) {
            maint_step(s);
            assert(store__check_thread(s));
        }
    }
}
