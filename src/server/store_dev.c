/*
 * store_dev.c -- devices and their cursors, and the deletions they allow
 * (see store_int.h and docs/PROTOCOL.md, "Devices and conversations").
 *
 * The store thread keeps every device in memory (s->devusers: user -> its
 * devices), loaded at open; the devices table is written from it. A
 * device's cursor moves in memory when the loop reports it (store_cursor)
 * and reaches its row in the next write transaction, together with the
 * deletion of the messages that no device needs any more: the rows of the
 * user's log between the cursor committed before and the new one, each
 * checked against every device that must get it. The last device to pass
 * a message therefore deletes it; a message kept for --history-ttl is
 * deleted later by the aged pass (store_thread.c), and one held by a
 * device that is forgotten (--device-ttl) by the forget pass below.
 *
 * Costs: O(devices of the user) per message checked; a cursor that passes
 * k messages reads k rows through an index. Memory: about 64 bytes per
 * device.
 */
#include "server/store_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Devices kept per user: a new one past this replaces the least recently
 * seen (a client that names a new device on every connection cannot grow
 * the table without bound). */
#define DEVICES_MAX 64u

/* -- the table in memory -------------------------------------------------- */

devuser *store__dev_user(const store_sqlite *s, uint32_t user) {
    return user ? u32map_get(&s->devusers, user) : NULL;
}

static devuser *user_get(store_sqlite *s, uint32_t user) {
    devuser *u = store__dev_user(s, user);
    if (u || !user) return u;
    if (!(u = calloc(1, sizeof *u))) return NULL;
    u->user = user;
    if (u32map_put(&s->devusers, user, u)) {
        free(u);
        return NULL;
    }
    return u;
}

static devrec *dev_find(const devuser *u, uint32_t dev) {
    for (uint32_t i = 0; u && i < u->n; i++)
        if (u->v[i].dev == dev) return &u->v[i];
    return NULL;
}

static devrec *dev_named(const devuser *u, const char *name, size_t n) {
    for (uint32_t i = 0; u && i < u->n; i++)
        if (u->v[i].namelen == n && memcmp(u->v[i].name, name, n) == 0)
            return &u->v[i];
    return NULL;
}

int store__dev_active(const store_sqlite *s, const devrec *d, int64_t now) {
    return !s->cfg.device_ttl_ms || d->conns > 0 ||
           d->seen >= now - (int64_t)s->cfg.device_ttl_ms;
}
#define active store__dev_active

/* Append d (by value) to u. 0 or -1 (out of memory). */
static int dev_push(devuser *u, const devrec *d) {
    if (u->n == u->cap) {
        uint32_t cap = u->cap ? u->cap * 2 : 1; /* (most users: one) */
        devrec *v = realloc(u->v, cap * sizeof *v);
        if (!v) return -1;
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n++] = *d;
    return 0;
}

/* Record that u's device counts changed, for the loop's copy. */
static int counts_changed(store_sqlite *s, const devuser *u) {
    dev_upd d = {u->user, 0, 0};
    for (uint32_t i = 0; i < u->n; i++) {
        d.all++;
        d.conv += u->v[i].conv;
    }
    for (size_t i = 0; i < s->ndchg; i++)
        if (s->dchg[i].user == u->user) {
            s->dchg[i] = d;
            return 0;
        }
    if (RESERVE(s->dchg, s->cdchg, s->ndchg + 1)) return -1;
    s->dchg[s->ndchg++] = d;
    return 0;
}

static int mark_dirty(store_sqlite *s, uint32_t user, devrec *d) {
    if (d->dirty) return 0;
    if (RESERVE(s->dirty, s->cdirty, s->ndirty + 1)) return -1;
    s->dirty[s->ndirty++] = (devkey){user, d->dev};
    d->dirty = 1;
    return 0;
}

void store__dev_free(store_sqlite *s) {
    for (size_t i = 0; i <= s->devusers.mask && s->devusers.slots; i++) {
        devuser *u = s->devusers.slots[i].val;
        if (!s->devusers.slots[i].key || !u) continue;
        free(u->v);
        free(u);
    }
    u32map_free(&s->devusers);
    u32map_free(&s->devseen);
    free(s->dirty);
    free(s->dchg);
}

/* -- the loop's copy ---------------------------------------------------------- */

/* A user's counts as a map value: never NULL (bit 0 set). */
static void *dev_pack(unsigned all, unsigned conv) {
    return (void *)(((uintptr_t)all << 17) | ((uintptr_t)conv << 1) | 1u);
}

void store__dev_counts(const store_sqlite *s, uint32_t user, unsigned *all,
                       unsigned *conv) {
    uintptr_t v = (uintptr_t)u32map_get(&s->devseen, user);
    *all = (unsigned)(v >> 17);
    *conv = (unsigned)((v >> 1) & 0xFFFFu);
}

void store__dev_seen_upd(store_sqlite *s, const dev_upd *d) {
    if (d->all == 0) {
        (void)u32map_del(&s->devseen, d->user); /* (absent is fine) */
        return;
    }
    if (u32map_put(&s->devseen, d->user, dev_pack(d->all, d->conv)))
        /* The loop then counts no device for this user: every message to
         * it is stored, which is safe, only slower. */
        log_error("store_oom_device_count",
                  "store: out of memory: the devices of user %" PRIu32
                  " are not counted", d->user);
}

/* -- open ----------------------------------------------------------------- */

int store__dev_load(store_sqlite *s) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT user, dev, name, conv, "
                                "cursor, seen FROM devices", -1, &st, NULL);
    uint32_t max = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        devrec d = {0};
        uint32_t user = (uint32_t)sqlite3_column_int64(st, 0);
        d.dev = (uint32_t)sqlite3_column_int64(st, 1);
        int n = sqlite3_column_bytes(st, 2);
        const unsigned char *name = sqlite3_column_text(st, 2);
        d.namelen = (uint8_t)(n > (int)STORE_DEVICE_MAX ? (int)STORE_DEVICE_MAX
                                                        : n);
        if (name) memcpy(d.name, name, d.namelen);
        d.conv = sqlite3_column_int(st, 3) != 0;
        d.cursor = d.saved = (uint64_t)sqlite3_column_int64(st, 4);
        d.seen = sqlite3_column_int64(st, 5);
        devuser *u = user_get(s, user);
        if (!u || dev_push(u, &d)) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (d.dev > max) max = d.dev;
        rc = SQLITE_OK;
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_DONE && rc != SQLITE_OK) return rc;
    s->next_dev = max + 1;
    for (size_t i = 0; s->devusers.slots && i <= s->devusers.mask; i++) {
        devuser *u = s->devusers.slots[i].val;
        if (!s->devusers.slots[i].key || !u) continue;
        dev_upd d = {u->user, 0, 0};
        for (uint32_t k = 0; k < u->n; k++) {
            d.all++;
            d.conv += u->v[k].conv;
        }
        if (u32map_put(&s->devseen, u->user, dev_pack(d.all, d.conv)))
            return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

/* -- deletions ------------------------------------------------------------ */

/* 1 when no device needs message (id, receiver, sender, sdev, own, ts)
 * any more and its history time is over. */
static int deletable(const store_sqlite *s, uint64_t id, uint32_t receiver,
                     uint32_t sender, uint32_t sdev, int own, int64_t ts,
                     int64_t now) {
    if (s->cfg.history_ttl_ms && now - ts < (int64_t)s->cfg.history_ttl_ms)
        return 0;
    const devuser *r = store__dev_user(s, receiver);
    int any = 0;
    for (uint32_t i = 0; r && i < r->n; i++) {
        if (!active(s, &r->v[i], now)) continue;
        if (r->v[i].cursor < id) return 0;
        any = 1;
    }
    if (!any) return 0; /* the receiver has no device: offline, kept */
    if (!own || sender == receiver) return 1;
    const devuser *u = store__dev_user(s, sender);
    for (uint32_t i = 0; u && i < u->n; i++) {
        const devrec *d = &u->v[i];
        if (d->conv && d->dev != sdev && active(s, d, now) && d->cursor < id)
            return 0;
    }
    return 1;
}

/* Delete the ids collected in s->scratch. */
static int delete_collected(store_sqlite *s) {
    int rc = store__del_ids(s, s->scratch, s->nscratch);
    s->nscratch = 0;
    return rc;
}

static int collect(store_sqlite *s, uint64_t id) {
    if (RESERVE(s->scratch, s->cscratch, s->nscratch + 1)) return SQLITE_NOMEM;
    s->scratch[s->nscratch++] = id;
    return SQLITE_OK;
}

static int bind3(sqlite3_stmt *st, uint32_t user, uint64_t lo, uint64_t hi) {
    int rc = sqlite3_bind_int64(st, 1, user);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, lo > INT64_MAX ? INT64_MAX
                                                      : (int64_t)lo);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, hi > INT64_MAX ? INT64_MAX
                                                      : (int64_t)hi);
    return rc;
}

/* Check user's log in (lo, hi] for messages that device d of user was the
 * last to need (d NULL: any device, after one was forgotten), and delete
 * them. */
int store__dev_scan(store_sqlite *s, uint32_t user, const devrec *d,
                    uint64_t lo, uint64_t hi, int64_t now) {
    if (hi <= lo) return SQLITE_OK;
    /* sent to the user: columns id, sender, sdev, own, ts */
    sqlite3_stmt *st = s->st_scan_in;
    int rc = bind3(st, user, lo, hi);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
        if (deletable(s, id, user, (uint32_t)sqlite3_column_int64(st, 1),
                      (uint32_t)sqlite3_column_int64(st, 2),
                      sqlite3_column_int(st, 3),
                      sqlite3_column_int64(st, 4), now))
            rc = collect(s, id);
    }
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_DONE && rc != SQLITE_OK) return rc;
    /* sent by the user, copies for its CONV devices: id, receiver, sdev, ts */
    if (!d || d->conv) {
        st = s->st_scan_own;
        rc = bind3(st, user, lo, hi);
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
            uint32_t sdev = (uint32_t)sqlite3_column_int64(st, 2);
            rc = SQLITE_OK;
            if ((!d || sdev != d->dev) &&
                deletable(s, id, (uint32_t)sqlite3_column_int64(st, 1), user,
                          sdev, 1, sqlite3_column_int64(st, 3), now))
                rc = collect(s, id);
        }
        (void)sqlite3_reset(st); /* repeats the step's error, in rc */
        if (rc != SQLITE_DONE && rc != SQLITE_OK) return rc;
    }
    return delete_collected(s);
}

/* --history-ttl: the rows after s->aged_from whose history time is over
 * (at most chunk of them) are checked once; those every device has go.
 * Those a device still needs go when it passes them (store__dev_scan), as
 * they are old enough by then. A group's rows go by its floor: their
 * groups' floors are checked now (store__group_floors), and again when a
 * member's cursor moves. *n: 1:1 rows deleted. */
int store__dev_aged(store_sqlite *s, int64_t now, unsigned chunk, uint64_t *n) {
    int64_t cut = now - (int64_t)s->cfg.history_ttl_ms;
    sqlite3_stmt *st = s->st_aged;
    uint64_t from = s->aged_from;
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, (int)chunk);
    /* columns: id, receiver, sender, sdev, own, ts, grp */
    int grows = 0; /* (group rows seen) */
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(st, 5);
        rc = SQLITE_OK;
        if (ts >= cut) break; /* (ts grows with id: the rest is younger) */
        uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
        uint32_t grp = (uint32_t)sqlite3_column_int64(st, 6);
        from = id;
        if (grp && sqlite3_column_int64(st, 1) == 0) { /* a group's row */
            rc = store__group_dirty(s, grp);
            grows = 1;
        } else if (deletable(s, id, (uint32_t)sqlite3_column_int64(st, 1),
                      (uint32_t)sqlite3_column_int64(st, 2),
                      (uint32_t)sqlite3_column_int64(st, 3),
                      sqlite3_column_int(st, 4), ts, now))
            rc = collect(s, id);
    }
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_DONE && rc != SQLITE_OK && rc != SQLITE_ROW) {
        s->nscratch = 0;
        return rc;
    }
    *n = s->nscratch;
    rc = delete_collected(s);
    if (rc == SQLITE_OK && grows) rc = store__group_floors(s, now);
    if (rc == SQLITE_OK) s->aged_from = from; /* (kept when rolled back) */
    return rc;
}

/* -- registration and cursors (in the write transaction) ------------------ */

/* Forget device index i of u (its row goes, its messages may). */
static int forget(store_sqlite *s, devuser *u, uint32_t i, int64_t now) {
    devrec d = u->v[i];
    sqlite3_stmt *st = s->st_dev_del;
    int rc = sqlite3_bind_int64(st, 1, u->user);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, d.dev);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_DONE) return rc;
    u->v[i] = u->v[--u->n];
    for (size_t k = 0; k < s->ndirty; k++) /* (its pending write goes too) */
        if (s->dirty[k].user == u->user && s->dirty[k].dev == d.dev) {
            s->dirty[k] = s->dirty[--s->ndirty];
            break; /* (a device is listed once) */
        }
    if (counts_changed(s, u)) return SQLITE_NOMEM;
    /* whatever it alone held back may go now */
    return store__dev_scan(s, u->user, NULL, d.cursor, INT64_MAX, now);
}

int store__dev_register(store_sqlite *s, dev_req *r, int64_t now) {
    devuser *u = user_get(s, r->user);
    if (!u) return SQLITE_NOMEM;
    devrec *d = dev_named(u, r->name, r->namelen);
    if (!d) {
        if (u->n >= DEVICES_MAX) {
            uint32_t old = 0;
            for (uint32_t i = 1; i < u->n; i++)
                if (u->v[i].seen < u->v[old].seen) old = i;
            log_info("device_replaced",
                     "store: user %" PRIu32 " has %u devices: forgetting "
                     "the least recently seen one to add another", r->user,
                     DEVICES_MAX);
            int rc = forget(s, u, old, now);
            if (rc != SQLITE_OK) return rc;
        }
        devrec n = {0};
        n.dev = r->namelen ? s->next_dev++ : 0;
        n.namelen = r->namelen;
        memcpy(n.name, r->name, r->namelen);
        /* where the least advanced active device is: what some device of
         * the user still lacks comes to this one too */
        int first = 1;
        for (uint32_t i = 0; i < u->n; i++)
            if (active(s, &u->v[i], now) &&
                (first || u->v[i].cursor < n.cursor)) {
                n.cursor = u->v[i].cursor;
                first = 0;
            }
        n.saved = n.cursor;
        n.conv = r->conv;
        if (dev_push(u, &n)) return SQLITE_NOMEM;
        d = &u->v[u->n - 1];
        d->saved = UINT64_MAX; /* no row yet: written, never scanned */
        if (counts_changed(s, u)) return SQLITE_NOMEM;
    } else if (d->conv != r->conv) {
        d->conv = r->conv;
        if (counts_changed(s, u)) return SQLITE_NOMEM;
    }
    d->seen = now;
    d->conns++;
    r->dev = d->dev;
    r->cursor = d->cursor;
    int rc = mark_dirty(s, r->user, d) ? SQLITE_NOMEM : SQLITE_OK;
    assert(store__check_devuser(u));
    return rc;
}

void store__dev_cursor(store_sqlite *s, const cur_req *c, int64_t now) {
    devrec *d = dev_find(store__dev_user(s, c->user), c->dev);
    if (!d) return; /* forgotten meanwhile */
    if (c->cursor > d->cursor) d->cursor = c->cursor;
    d->seen = now;
    if (c->closed && d->conns) d->conns--;
    assert(store__check_devuser(store__dev_user(s, c->user)));
    if (mark_dirty(s, c->user, d))
        log_error("store_oom_device_cursor",
                  "store: out of memory: the cursor of a device of user %"
                  PRIu32 " is not saved yet", c->user);
}

/* Write every dirty device and delete what its cursor allows. */
int store__dev_write(store_sqlite *s, int64_t now) {
    for (size_t i = 0; i < s->ndirty; i++) {
        devuser *u = store__dev_user(s, s->dirty[i].user);
        devrec *d = dev_find(u, s->dirty[i].dev);
        assert(d && d->dirty); /* (forget removes its key) */
        sqlite3_stmt *st = s->st_dev_put;
        int rc = sqlite3_bind_int64(st, 1, u->user);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, d->dev);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 3, d->name, d->namelen, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 4, d->conv);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)d->cursor);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 6, d->seen);
        if (rc == SQLITE_OK) rc = sqlite3_step(st);
        (void)sqlite3_reset(st); /* repeats the step's error, in rc */
        if (rc != SQLITE_DONE) return rc;
        if (d->saved != UINT64_MAX && d->cursor > d->saved) {
            store__group_touch(s, u->user);
            if ((rc = store__dev_scan(s, u->user, d, d->saved, d->cursor,
                                      now)))
                return rc;
        }
    }
    return SQLITE_OK;
}

/* The transaction committed: the rows say what memory says. */
void store__dev_committed(store_sqlite *s) {
    for (size_t i = 0; i < s->ndirty; i++) {
        devrec *d = dev_find(store__dev_user(s, s->dirty[i].user),
                             s->dirty[i].dev);
        if (!d) continue;
        d->saved = d->cursor;
        d->dirty = 0;
    }
    s->ndirty = 0;
}

/* Forget every device not seen for --device-ttl (one transaction). */
int store__dev_forget_stale(store_sqlite *s, int64_t now, uint64_t *forgotten) {
    if (!s->cfg.device_ttl_ms) return SQLITE_OK;
    for (size_t i = 0; s->devusers.slots && i <= s->devusers.mask; i++) {
        devuser *u = s->devusers.slots[i].val;
        if (!s->devusers.slots[i].key || !u) continue;
        for (uint32_t k = 0; k < u->n;) {
            if (active(s, &u->v[k], now)) {
                k++;
                continue;
            }
            int rc = forget(s, u, k, now);
            if (rc != SQLITE_OK) return rc;
            ++*forgotten;
        }
    }
    return SQLITE_OK;
}

/* Client ids of device (user, dev) within the window, into r's results. */
int store__dev_cids(store_sqlite *s, batch *b, dev_req *r, int64_t now) {
    sqlite3_stmt *st = s->st_dedup_get;
    int64_t cut = now - (int64_t)s->cfg.dedup_ms;
    int rc = sqlite3_bind_int64(st, 1, r->user);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, r->dev);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, cut);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 4, STORE_DEDUP_MAX);
    r->cid0 = b->ncid;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (RESERVE(b->cids, b->ccid, b->ncid + 1) ||
            RESERVE(b->cidts, b->ccidts, b->ncid + 1) ||
            RESERVE(b->cidmsg, b->ccidmsg, b->ncid + 1)) {
            rc = SQLITE_NOMEM;
            break;
        }
        b->cids[b->ncid] = (uint64_t)sqlite3_column_int64(st, 0);
        b->cidts[b->ncid] = sqlite3_column_int64(st, 1);
        b->cidmsg[b->ncid++] = (uint64_t)sqlite3_column_int64(st, 2);
        rc = SQLITE_OK;
    }
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_DONE) {
        b->ncid = r->cid0;
        return rc;
    }
    r->ncid = b->ncid - r->cid0;
    /* newest first from the index: oldest first for the loop */
    for (size_t i = r->cid0, j = b->ncid; i + 1 < j; i++, j--) {
        uint64_t c = b->cids[i], m = b->cidmsg[i];
        int64_t t = b->cidts[i];
        b->cids[i] = b->cids[j - 1];
        b->cidts[i] = b->cidts[j - 1];
        b->cidmsg[i] = b->cidmsg[j - 1];
        b->cids[j - 1] = c;
        b->cidts[j - 1] = t;
        b->cidmsg[j - 1] = m;
    }
    return SQLITE_OK;
}

/* The counts changed since the last call, onto b (or a batch of its own
 * pushed by the caller when b is NULL): see publish_ctrs. */
int store__dev_publish(store_sqlite *s, batch *b) {
    if (s->ndchg == 0) return 0;
    if (RESERVE(b->dupd, b->cdupd, b->ndupd + s->ndchg)) return -1;
    memcpy(b->dupd + b->ndupd, s->dchg, s->ndchg * sizeof *s->dchg);
    b->ndupd += s->ndchg;
    s->ndchg = 0;
    return 0;
}
