/*
 * store_loop.c -- the SQLite store as the loop thread runs it (see
 * store_int.h): its operations table (store__sqlite_ops, at the end: the
 * store.h functions store.c dispatches to, named store_sqlite_<op>),
 * requests appended to the FILLING batch, flush handing it to the store
 * thread, and the completions of the results it sends back, in submission
 * order.
 */
#include "server/store_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* -- batches ------------------------------------------------------------- */

/* Loop thread: keep b for reuse (emptied) or free it. */
static void batch_recycle(store_sqlite *s, batch *b) {
    if (s->nspare >= SPARE_MAX || b->cin > SPARE_BYTES ||
        b->cout > SPARE_BYTES) {
        store__batch_free(b);
        return;
    }
    b->nput = b->nfetch = b->ndel = b->nkind = b->nin = 0;
    b->nrow = b->nout = b->nupd = 0;
    b->ndev = b->ncur = b->ncid = b->ndupd = 0;
    b->ngrp = b->nguser = b->ngsnap = b->ngmem = 0;
    b->nread = b->ncontact = b->nmreq = b->nmark = b->npres = b->npuser = 0;
    b->ids_upto = 0;
    b->gen = 0;
    b->txn = 0;
    b->next = s->spare;
    s->spare = b;
    s->nspare++;
}

/* Loop thread: the FILLING batch, or NULL when out of memory. */
static batch *cur_batch(store_sqlite *s) {
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

/* -- requests ------------------------------------------------------------ */

static uint64_t store_sqlite_next_id(const store *st) {
    return store__sqlite_c(st)->next_id;
}

static uint64_t store_sqlite_count(const store *st, uint32_t receiver) {
    const ctr *c = store__ctr_find(&store__sqlite_c(st)->seen, receiver);
    return c ? c->count : 0;
}

static size_t store_sqlite_pending_bytes(const store *st) {
    return store__sqlite_c(st)->pending;
}

static const store_stats *store_sqlite_stats_of(const store *st) {
    return &store__sqlite_c(st)->stats;
}

static const groups *store_sqlite_groups(const store *st) {
    return &store__sqlite_c(st)->lgroups;
}

static void store_sqlite_devices(const store *st, uint32_t user,
                                 unsigned *all, unsigned *conv) {
    store__dev_counts(store__sqlite_c(st), user, all, conv);
}

static int put_add(store_sqlite *s, const store_msg *m, int quota, void *token,
                   uint64_t seq) {
    if (s->stopped || m->len > s->max_body) return STORE_EIO; /* never fits */
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->puts, b->cput, b->nput + 1) ||
        RESERVE(b->kinds, b->ckind, b->nkind + 1) ||
        RESERVE(b->in, b->cin, b->nin + m->len))
        return STORE_ENOMEM;
    if (m->len) memcpy(b->in + b->nin, m->body, m->len);
    b->puts[b->nput++] = (put_req){
        .id = m->id, .seq = seq, .cid = m->cid, .ts = m->ts, .token = token,
        .off = b->nin, .len = m->len, .receiver = m->receiver,
        .sender = m->sender, .sdev = m->sdev, .type = m->type,
        .grp = m->grp,
        .quota = quota != 0, .own = m->own != 0, .again = m->again != 0,
        .status = STATUS_PENDING,
    };
    b->kinds[b->nkind++] = KIND_PUT;
    b->nin += m->len;
    s->pending += m->len;
    if (m->id >= s->next_id) s->next_id = m->id + 1;
    return STORE_OK;
}

static int store_sqlite_put(store *st, const store_msg *m, int quota,
                            void *token, uint64_t seq) {
    store_sqlite *s = store__sqlite(st);
    int r = put_add(s, m, quota, token, seq);
    assert(store__check_loop(s));
    return r;
}

static void del_add(store_sqlite *s, uint64_t id) {
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->dels, b->cdel, b->ndel + 1)) {
        log_error("store_oom_delete_lost",
                  "store: out of memory: the delete of message %" PRIu64
                  " is lost (it stays stored and may be delivered again)", id);
        return;
    }
    b->dels[b->ndel++] = id;
}

/* user: the row is found by its id alone (store.h). */
static void store_sqlite_del(store *st, uint32_t user, uint64_t id) {
    store_sqlite *s = store__sqlite(st);
    (void)user;
    del_add(s, id);
    assert(store__check_loop(s));
}

static void fail_fetch(store_sqlite *s, void *token, uint8_t kind);
static void flush(store_sqlite *s);

static void store_sqlite_group(store *st, const store_group_op *op,
                               void *token) {
    store_sqlite *s = store__sqlite(st);
    assert(op->namelen <= GROUPS_NAME_MAX);
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->grps, b->cgrp, b->ngrp + 1) ||
        RESERVE(b->kinds, b->ckind, b->nkind + 1) ||
        RESERVE(b->gusers, b->cguser, b->nguser + op->nusers)) {
        fail_fetch(s, token, KIND_GROUP);
        return;
    }
    grp_req *r = &b->grps[b->ngrp++];
    *r = (grp_req){.token = token, .joined = op->joined, .was = op->was,
                   .group = op->group,
                   .actor = op->actor, .max_members = op->max_members,
                   .op = op->op, .namelen = (uint8_t)op->namelen,
                   .user0 = b->nguser, .nusers = op->nusers,
                   .status = STATUS_PENDING};
    if (op->namelen) memcpy(r->name, op->name, op->namelen);
    if (op->nusers)
        memcpy(b->gusers + b->nguser, op->users, op->nusers * sizeof *op->users);
    b->nguser += op->nusers;
    b->kinds[b->nkind++] = KIND_GROUP;
    assert(store__check_loop(s));
}

/* -- signals ------------------------------------------------------------- */

static void store_sqlite_read_mark(store *st, uint32_t user, uint32_t peer,
                                   uint32_t group, uint64_t upto, int64_t ts) {
    store_sqlite *s = store__sqlite(st);
    if (s->stopped || !user || (!peer && !group)) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->reads, b->cread, b->nread + 1)) {
        log_error("store_oom_read_mark",
                  "store: out of memory: a read mark of user %" PRIu32
                  " is lost", user);
        return;
    }
    /* (13): ids are below 2^63, and a mark above every id means as much */
    if (upto > INT64_MAX) upto = INT64_MAX;
    b->reads[b->nread++] = (read_req){upto, ts, user, group ? group : peer,
                                      (uint8_t)(group ? 2 : 1)};
    assert(store__check_loop(s));
}

static void store_sqlite_contact(store *st, uint32_t a, uint32_t b) {
    store_sqlite *s = store__sqlite(st);
    if (s->stopped || !a || !b || a == b) return;
    batch *bt = cur_batch(s);
    if (!bt || RESERVE(bt->contacts, bt->ccontact, bt->ncontact + 1)) {
        log_error("store_oom_contact",
                  "store: out of memory: the contact of users %" PRIu32
                  " and %" PRIu32 " is not noted", a, b);
        return;
    }
    uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
    bt->contacts[bt->ncontact++] = (uint64_t)lo << 32 | hi;
    assert(store__check_loop(s));
}

static void store_sqlite_marks(store *st, uint32_t user, uint32_t peer,
                               uint32_t group, void *token) {
    store_sqlite *s = store__sqlite(st);
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->mreqs, b->cmreq, b->nmreq + 1) ||
        RESERVE(b->kinds, b->ckind, b->nkind + 1)) {
        fail_fetch(s, token, KIND_MARKS);
        return;
    }
    b->mreqs[b->nmreq++] = (mark_req){.token = token, .user = user,
                                      .peer = group ? 0 : peer,
                                      .group = group,
                                      .status = STATUS_PENDING};
    b->kinds[b->nkind++] = KIND_MARKS;
    assert(store__check_loop(s));
}

static void store_sqlite_presence(store *st, uint32_t user,
                                  const uint32_t *users, size_t n, int check,
                                  void *token) {
    store_sqlite *s = store__sqlite(st);
    if (n > STORE_PRESENCE_MAX) n = STORE_PRESENCE_MAX; /* (store.h) */
    if (s->stopped) return;
    batch *b = cur_batch(s);
    /* the results' room too (16): the thread then needs no memory */
    if (!b || RESERVE(b->preqs, b->cpres, b->npres + 1) ||
        RESERVE(b->kinds, b->ckind, b->nkind + 1) ||
        RESERVE(b->pusers, b->cpuser, b->npuser + n) ||
        RESERVE(b->pallow, b->cpallow, b->npuser + n) ||
        RESERVE(b->pseen, b->cpseen, b->npuser + n)) {
        fail_fetch(s, token, KIND_PRES);
        return;
    }
    b->preqs[b->npres++] = (pres_req){.token = token, .user = user,
                                      .check = check != 0,
                                      .user0 = b->npuser, .n = n,
                                      .status = STATUS_PENDING};
    if (n) memcpy(b->pusers + b->npuser, users, n * sizeof *users);
    b->npuser += n;
    b->kinds[b->nkind++] = KIND_PRES;
    assert(store__check_loop(s));
}

static void store_sqlite_ids_reserve(store *st, uint64_t upto) {
    store_sqlite *s = store__sqlite(st);
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b) {
        log_error("store_oom_ids",
                  "store: out of memory: message ids up to %" PRIu64 " are "
                  "not reserved yet", upto);
        return;
    }
    if (upto > b->ids_upto) b->ids_upto = upto;
}

static void store_sqlite_cursor(store *st, uint32_t user, uint32_t dev,
                                uint64_t cursor, int closed) {
    store_sqlite *s = store__sqlite(st);
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->curs, b->ccur, b->ncur + 1)) {
        log_error("store_oom_cursor",
                  "store: out of memory: a cursor of user %" PRIu32 " is not "
                  "saved (its messages may be delivered again)", user);
        return;
    }
    b->curs[b->ncur++] = (cur_req){cursor, user, dev, (uint8_t)(closed != 0)};
    assert(store__check_loop(s));
}

/* Queue the STORE_ENOMEM completion of a fetch that could not be queued.
 * What was submitted before it is flushed first, so the failure is
 * delivered after those completions and before any later one: on_async
 * delivers it once the batch numbered s->gen_flushed was delivered (at
 * once on its next run if that one was already), never inside
 * store_fetch. FAILQ_MIN entries exist from store_open; past that the
 * queue grows, and when even that fails the process aborts (see store.h). */
static void fail_fetch(store_sqlite *s, void *token, uint8_t kind) {
    flush(s);
    if (s->failq0 == s->nfailq) s->failq0 = s->nfailq = 0;
    if (s->nfailq == s->cfailq && s->failq0 > 0) {
        s->nfailq -= s->failq0;
        memmove(s->failq, s->failq + s->failq0, s->nfailq * sizeof *s->failq);
        s->failq0 = 0;
    }
    if (RESERVE(s->failq, s->cfailq, s->nfailq + 1)) {
        log_error("store_oom_abort",
                  "store: out of memory with %zu failed fetches waiting to "
                  "be answered; aborting (nothing acknowledged is lost)",
                  s->nfailq);
        abort();
    }
    s->failq[s->nfailq++] = (fetch_fail){token, s->gen_flushed, kind};
    /* (void): on an open handle libuv only sets a flag and writes its
     * eventfd; the loop thread may send to itself */
    (void)uv_async_send(&s->async);
}

static void fetch_add(store_sqlite *s, const fetch_req *f) {
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->fetch, b->cfetch, b->nfetch + 1) ||
        RESERVE(b->kinds, b->ckind, b->nkind + 1)) {
        fail_fetch(s, f->token, f->hist ? KIND_HIST : KIND_FETCH);
        return;
    }
    b->fetch[b->nfetch++] = *f;
    b->kinds[b->nkind++] = KIND_FETCH;
}

static void store_sqlite_fetch(store *st, uint32_t user, uint32_t dev,
                               int conv, uint64_t after_id, uint32_t max_rows,
                               uint32_t max_bytes, void *token) {
    store_sqlite *s = store__sqlite(st);
    fetch_req f = {
        .after_id = after_id, .token = token, .receiver = user, .dev = dev,
        .conv = conv != 0, .max_rows = max_rows, .max_bytes = max_bytes,
    };
    fetch_add(s, &f);
    assert(store__check_loop(s));
}

static void store_sqlite_history(store *st, uint32_t user, uint32_t peer,
                                 uint32_t group, uint64_t min_id,
                                 uint64_t before, uint32_t max_rows,
                                 uint32_t max_bytes, void *token) {
    store_sqlite *s = store__sqlite(st);
    fetch_req f = {
        .after_id = before, .min_id = min_id, .token = token,
        .receiver = user, .max_rows = max_rows, .max_bytes = max_bytes,
        .peer = peer, .group = group, .hist = 1,
    };
    fetch_add(s, &f);
    assert(store__check_loop(s));
}

static void store_sqlite_device(store *st, uint32_t user, const char *name,
                                size_t namelen, int conv, void *token) {
    store_sqlite *s = store__sqlite(st);
    assert(namelen <= STORE_DEVICE_MAX);
    if (s->stopped) return;
    batch *b = cur_batch(s);
    if (!b || RESERVE(b->devs, b->cdev, b->ndev + 1) ||
        RESERVE(b->kinds, b->ckind, b->nkind + 1)) {
        fail_fetch(s, token, KIND_DEV);
        return;
    }
    dev_req *r = &b->devs[b->ndev++];
    *r = (dev_req){.token = token, .user = user, .conv = conv != 0,
                   .namelen = (uint8_t)namelen, .status = STATUS_PENDING};
    memcpy(r->name, name, namelen);
    b->kinds[b->nkind++] = KIND_DEV;
    assert(store__check_loop(s));
}

static void store_sqlite_set_quota(store *st, uint64_t max_messages,
                                   uint64_t max_bytes) {
    store_sqlite *s = store__sqlite(st);
    uv_mutex_lock(&s->mu);
    s->quota_msgs = max_messages;
    s->quota_bytes = max_bytes;
    s->quota_new = 1; /* taken with the next batch, before its puts */
    uv_mutex_unlock(&s->mu);
}

/* Hand the FILLING batch to the store thread (store_flush). */
static void flush(store_sqlite *s) {
    batch *b = s->cur;
    if (!b || (b->nkind == 0 && b->ndel == 0 && b->ncur == 0 &&
               b->nread == 0 && b->ncontact == 0 && !b->ids_upto))
        return;
    assert(store__check_filled(b));
    s->cur = NULL;
    b->gen = ++s->gen_flushed;
    uv_mutex_lock(&s->mu);
    if (s->inq_tail) s->inq_tail->next = b;
    else s->inq = b;
    s->inq_tail = b;
    assert(store__check_queues(s));
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
    assert(store__check_loop(s));
}

/* Apply b's counters, then its callbacks in submission order (none once
 * stopped: a callback may stop the store). */
static void deliver(store_sqlite *s, batch *b) {
    store_stats *st = &s->stats;
    for (size_t i = 0; i < b->nupd; i++) {
        ctr *c = store__ctr_get(&s->seen, b->upd[i].receiver);
        if (!c) continue; /* store_count lags for this receiver */
        st->messages += b->upd[i].count - c->count; /* (modulo 2^64) */
        st->bytes += b->upd[i].bytes - c->bytes;
        c->count = b->upd[i].count;
        c->bytes = b->upd[i].bytes;
    }
    store__group_apply(s, b);
    for (size_t i = 0; i < b->ndupd; i++) {
        store__dev_seen_upd(s, &b->dupd[i]);
        if (!s->stopped && s->cb.devices)
            s->cb.devices(s->cb.ctx, b->dupd[i].user, b->dupd[i].all,
                          b->dupd[i].conv);
    }
    if (b->txn) {
        st->txns++;
        metrics_hist_observe(&st->txn_us, b->txn_us);
        metrics_hist_observe(&st->txn_writes, b->txn_writes);
        if (b->txn_status) st->txn_failures++;
        st->health = b->txn_status;
    }
    size_t pi = 0, fi = 0, di = 0, gi = 0, mi = 0, ri = 0;
    for (size_t k = 0; k < b->nkind; k++) {
        if (b->kinds[k] == KIND_MARKS) {
            const mark_req *r = &b->mreqs[mi++];
            if (!s->stopped && s->cb.marks_done)
                s->cb.marks_done(s->cb.ctx, r->token,
                                 r->nmarks ? b->marks + r->mark0 : NULL,
                                 r->nmarks, r->status);
            assert(store__check_loop(s));
        } else if (b->kinds[k] == KIND_PRES) {
            const pres_req *r = &b->preqs[ri++];
            size_t n = r->status == STORE_OK ? r->n : 0;
            if (!s->stopped && s->cb.presence_done)
                s->cb.presence_done(s->cb.ctx, r->token,
                                    n ? b->pusers + r->user0 : NULL,
                                    n ? b->pallow + r->user0 : NULL,
                                    n ? b->pseen + r->user0 : NULL,
                                    NULL /* (the router knows) */, n,
                                    r->status);
            assert(store__check_loop(s));
        } else if (b->kinds[k] == KIND_GROUP) {
            const grp_req *r = &b->grps[gi++];
            if (!s->stopped && s->cb.group_done)
                s->cb.group_done(s->cb.ctx, r->token, r->group, r->status);
            assert(store__check_loop(s));
        } else if (b->kinds[k] == KIND_DEV) {
            const dev_req *r = &b->devs[di++];
            store_device_info d = {
                r->dev, r->cursor, r->ncid ? b->cids + r->cid0 : NULL,
                r->ncid ? b->cidts + r->cid0 : NULL,
                r->ncid ? b->cidmsg + r->cid0 : NULL, r->ncid, 0, 0};
            store__dev_counts(s, r->user, &d.all, &d.conv);
            if (!s->stopped && s->cb.device_done)
                s->cb.device_done(s->cb.ctx, r->token,
                                  r->status == STORE_OK ? &d : NULL,
                                  r->status);
            assert(store__check_loop(s));
        } else if (b->kinds[k] == KIND_PUT) {
            const put_req *p = &b->puts[pi++];
            s->pending -= p->len;
            if (!s->stopped && s->cb.put_done)
                s->cb.put_done(s->cb.ctx, p->token, p->seq, p->id, p->cid,
                               p->status);
            assert(store__check_loop(s));
        } else {
            const fetch_req *f = &b->fetch[fi++];
            void (*done)(void *, void *, const store_row *, size_t, int, int) =
                f->hist ? s->cb.history_done : s->cb.fetch_done;
            if (!s->stopped && done)
                done(s->cb.ctx, f->token, f->nrows ? b->rows + f->row0 : NULL,
                     f->nrows, f->more, f->status);
            assert(store__check_loop(s));
        }
    }
}

/* -- completions ---------------------------------------------------------- */

/* The failed fetches whose turn has come (every batch flushed before them
 * delivered), at most *budget of them. */
static void deliver_failed(store_sqlite *s, size_t *budget) {
    while (*budget && s->failq0 < s->nfailq &&
           s->failq[s->failq0].gen <= s->gen_done) {
        fetch_fail f = s->failq[s->failq0++]; /* the callback may append */
        --*budget;
        if (s->stopped) continue;
        if (f.kind == KIND_DEV && s->cb.device_done)
            s->cb.device_done(s->cb.ctx, f.token, NULL, STORE_ENOMEM);
        else if (f.kind == KIND_HIST && s->cb.history_done)
            s->cb.history_done(s->cb.ctx, f.token, NULL, 0, 0, STORE_ENOMEM);
        else if (f.kind == KIND_GROUP && s->cb.group_done)
            s->cb.group_done(s->cb.ctx, f.token, 0, STORE_ENOMEM);
        else if (f.kind == KIND_MARKS && s->cb.marks_done)
            s->cb.marks_done(s->cb.ctx, f.token, NULL, 0, STORE_ENOMEM);
        else if (f.kind == KIND_PRES && s->cb.presence_done)
            s->cb.presence_done(s->cb.ctx, f.token, NULL, NULL, NULL, NULL, 0,
                                STORE_ENOMEM);
        else if (f.kind == KIND_FETCH && s->cb.fetch_done)
            s->cb.fetch_done(s->cb.ctx, f.token, NULL, 0, 0, STORE_ENOMEM);
        assert(store__check_loop(s));
    }
}

/* Results came back (or a fetch failed): complete them in submission
 * order. Failed fetches queued by the callbacks themselves wait for the
 * next run (their store_fetch sent the handle again), so a caller that
 * fetches again from its completion cannot keep this loop going. */
void store__on_async(uv_async_t *h) {
    store_sqlite *s = h->data;
    uv_mutex_lock(&s->mu);
    assert(store__check_queues(s));
    batch *list = s->outq;
    s->outq = s->outq_tail = NULL;
    uv_mutex_unlock(&s->mu);
    size_t budget = s->nfailq - s->failq0;
    deliver_failed(s, &budget);
    while (list) {
        batch *b = list;
        list = b->next;
        assert(store__check_done(s, b));
        deliver(s, b);
        if (b->gen) s->gen_done = b->gen;
        batch_recycle(s, b);
        deliver_failed(s, &budget);
    }
    assert(store__check_loop(s));
}

void store__stop(store_sqlite *s) {
    if (s->stopped) return;
    flush(s);
    s->stopped = 1;
    uv_mutex_lock(&s->mu);
    s->quit = 1;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
    uv_close((uv_handle_t *)&s->async, NULL);
    assert(store__check_loop(s));
}

/* -- the operations table -------------------------------------------------- */

static void store_sqlite_flush(store *st) { flush(store__sqlite(st)); }
static void store_sqlite_stop(store *st) { store__stop(store__sqlite(st)); }
static void store_sqlite_free(store *st) { store__close(store__sqlite(st)); }

/* store_open sets it; store__sqlite asserts it. Every op, ids included. */
const store_ops store__sqlite_ops = {
    .put = store_sqlite_put,
    .del = store_sqlite_del,
    .fetch = store_sqlite_fetch,
    .device = store_sqlite_device,
    .cursor = store_sqlite_cursor,
    .history = store_sqlite_history,
    .group = store_sqlite_group,
    .read_mark = store_sqlite_read_mark,
    .marks = store_sqlite_marks,
    .contact = store_sqlite_contact,
    .presence = store_sqlite_presence,
    .groups = store_sqlite_groups,
    .devices = store_sqlite_devices,
    .flush = store_sqlite_flush,
    .set_quota = store_sqlite_set_quota,
    .pending_bytes = store_sqlite_pending_bytes,
    .stats_of = store_sqlite_stats_of,
    .count = store_sqlite_count,
    .next_id = store_sqlite_next_id,
    .ids_reserve = store_sqlite_ids_reserve,
    .shared = 0, /* (one server per data directory: its lock) */
    .stop = store_sqlite_stop,
    .free = store_sqlite_free,
};
