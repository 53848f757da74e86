/*
 * store_sig.c -- signals in the store (see store_int.h and
 * docs/PROTOCOL.md, "Receipts, typing and presence"): read marks, the
 * contacts that allow presence, and the answers to store_marks and
 * store_presence.
 *
 * Writes: read marks and contacts ride in the batch's write transaction.
 * A read mark is an upsert that keeps the highest mark of each user and
 * conversation (table `reads`); a statement that fails costs that mark
 * only, as store.h promises, unless SQLite ended the whole transaction with
 * it. A contact is a pair a < b (table `contacts`), noted by
 * store_contact and by every stored 1:1 message.
 *
 * The put path: every 1:1 put would otherwise run an INSERT OR IGNORE into
 * contacts, about a quarter of what the put itself costs (callgrind:
 * ~3,500 instructions against ~14,600). A cache of the pairs written skips
 * it for a pair seen recently: PAIR_SLOTS slots in sets of PAIR_WAYS, one
 * cache line each, least recently used out. A hit is a hash and up to four
 * compares; a miss runs the INSERT (a no-op when the row exists) and takes
 * a slot. Four ways rather than direct-mapped: with 1,000 pairs in use,
 * one slot per hash made 26-47% of the puts miss (pairs colliding evict
 * each other on every put; measured and simulated), four ways about 1%.
 * The cache is tentative within a transaction: one that rolls back
 * empties it (store__sig_rollback), so a cached pair always has its row
 * (invariant 17).
 *
 * Reads run after the transaction committed (so they see the marks,
 * contacts, cursors and group changes submitted before them) from the
 * store thread's memory -- device cursors and last-seen times
 * (store_dev.c), the groups' authority copy (store_group.c) -- plus one
 * primary-key lookup per read mark and per contact not in the cache.
 * Costs: marks O(entries) lookups (at most STORE_MARKS_MAX); presence
 * O(users x (devices + groups of the two)) plus at most one lookup per
 * user asked.
 */
#include "server/store_int.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "common/log.h"

/* -- statements ------------------------------------------------------------ */

int store__sig_prepare(store_sqlite *s) {
    static const char *const sql[] = {
        /* the highest mark wins; its time comes with it. Default conflict
         * handling (ABORT), not OR ROLLBACK: a failed mark must not take
         * the transaction's other work with it */
        "INSERT INTO reads(user, kind, peer, upto, ts)"
        " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(user, kind, peer)"
        " DO UPDATE SET upto = excluded.upto, ts = excluded.ts"
        " WHERE excluded.upto > reads.upto",
        /* (a point lookup of the primary key) */
        "SELECT upto, ts FROM reads"
        " WHERE user = ?1 AND kind = ?2"
        " AND peer = ?3",
        /* OR IGNORE: the row may exist (the cache forgets pairs); any
         * other error fails the transaction, as the put's own would */
        "INSERT OR IGNORE INTO contacts(a, b) VALUES(?1, ?2)",
        "SELECT 1 FROM contacts WHERE a = ?1 AND b = ?2",
    };
    sqlite3_stmt **st[] = SIG_STATEMENTS(s);
    _Static_assert(sizeof sql / sizeof *sql == sizeof st / sizeof *st,
                   "one SQL text per statement");
    for (size_t i = 0; i < sizeof st / sizeof *st; i++) {
        int rc = sqlite3_prepare_v3(s->db, sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, st[i], NULL);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

/* -- contacts and the pair cache ---------------------------------------- */

/* The pair a, b (either order, both non-zero, a != b) packed a < b. */
static uint64_t pair_of(uint32_t a, uint32_t b) {
    return a < b ? (uint64_t)a << 32 | b : (uint64_t)b << 32 | a;
}

/* 1 when the cache has p; it becomes the most recently used of its set
 * (least recently used last: a set keeps the pairs in use even when more
 * than PAIR_WAYS map onto it now and then). */
static int pair_cached(store_sqlite *s, uint64_t p) {
    uint64_t *w = s->pairs + store__pair_set(p);
    if (w[0] == p) return 1; /* (the common case: no write) */
    for (size_t i = 1; i < PAIR_WAYS; i++)
        if (w[i] == p) {
            memmove(w + 1, w, i * sizeof *w);
            w[0] = p;
            return 1;
        }
    return 0;
}

/* Cache p (not there) first in its set; the least recently used goes. */
static void pair_cache(store_sqlite *s, uint64_t p) {
    uint64_t *w = s->pairs + store__pair_set(p);
    memmove(w + 1, w, (PAIR_WAYS - 1) * sizeof *w);
    w[0] = p;
}

/* INSERT OR IGNORE the pair, then cache it. */
static int pair_write(store_sqlite *s, uint64_t p) {
    if (pair_cached(s, p)) return SQLITE_OK; /* written: nothing to do */
    sqlite3_stmt *st = s->st_contact_put;
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)(p >> 32));
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)(p & 0xFFFFFFFFu));
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_DONE) return rc;
    pair_cache(s, p); /* (tentative until COMMIT: see store__sig_rollback) */
    return SQLITE_OK;
}

int store__sig_pair(store_sqlite *s, uint32_t a, uint32_t b) {
    if (!a || !b || a == b) return SQLITE_OK;
    return pair_write(s, pair_of(a, b));
}

/* 1 when the contacts row of pair p exists: the cache, else the table. */
static int pair_known(store_sqlite *s, uint64_t p, int *rc) {
    if (pair_cached(s, p)) return 1;
    sqlite3_stmt *st = s->st_contact_get;
    *rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)(p >> 32));
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)(p & 0xFFFFFFFFu));
    int found = 0;
    if (*rc == SQLITE_OK) {
        *rc = sqlite3_step(st);
        found = *rc == SQLITE_ROW;
        if (*rc == SQLITE_ROW || *rc == SQLITE_DONE) *rc = SQLITE_OK;
    }
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    /* a row read is committed: cache it, a later put of the pair then
     * costs nothing either */
    if (found) pair_cache(s, p);
    return found;
}

/* -- read marks ------------------------------------------------------------ */

/* Upsert one read mark. SQLITE_OK also when it failed but the transaction
 * goes on (logged once per streak); else the error that ended it. */
static int mark_write(store_sqlite *s, const read_req *r) {
    sqlite3_stmt *st = s->st_read_put;
    int rc = sqlite3_bind_int64(st, 1, r->user);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, r->kind);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, r->peer);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)r->upto); /* < 2^63 */
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 5, r->ts);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    if (rc == SQLITE_DONE) {
        if (s->mark_fails) {
            log_info("store_marks_recovered",
                     "store: %s: read marks are written again after %u "
                     "lost", s->path, s->mark_fails);
            s->mark_fails = 0;
        }
        return SQLITE_OK;
    }
    if (sqlite3_get_autocommit(s->db)) return rc; /* the transaction is over */
    if (s->mark_fails++ == 0)
        log_error("store_read_mark_lost",
                  "store: %s: a read mark of user %" PRIu32 " is lost (%s); "
                  "logged once until marks are written again", s->path,
                  r->user, store__why(s, rc));
    return SQLITE_OK;
}

int store__sig_write(store_sqlite *s, batch *list) {
    for (batch *b = list; b; b = b->next) {
        for (size_t i = 0; i < b->nread; i++) {
            int rc = mark_write(s, &b->reads[i]);
            if (rc != SQLITE_OK) return rc;
        }
        for (size_t i = 0; i < b->ncontact; i++) {
            int rc = pair_write(s, b->contacts[i]);
            if (rc != SQLITE_OK) return rc;
        }
    }
    return SQLITE_OK;
}

void store__sig_rollback(store_sqlite *s, batch *list, int status) {
    /* the pairs this transaction wrote are gone with it; which slots they
     * took is not kept, so the cache starts again (32 KiB: rare enough) */
    memset(s->pairs, 0, sizeof s->pairs);
    for (batch *b = list; b; b = b->next) {
        for (size_t i = 0; i < b->nmreq; i++) b->mreqs[i].status = status;
        for (size_t i = 0; i < b->npres; i++) b->preqs[i].status = status;
    }
}

/* -- answers ----------------------------------------------------------------- */

/* user's mark of conversation (kind, peer) into m (zero when none). */
static int mark_read(store_sqlite *s, uint32_t user, int kind, uint32_t peer,
                     store_mark *m) {
    sqlite3_stmt *st = s->st_read_get;
    int rc = sqlite3_bind_int64(st, 1, user);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, kind);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, peer);
    m->read = 0;
    m->read_ts = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        m->read = (uint64_t)sqlite3_column_int64(st, 0);
        m->read_ts = sqlite3_column_int64(st, 1);
    }
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The highest cursor of user's devices (all the store knows: the mark
 * says what some device has), and the latest time one was seen. */
static void dev_marks(const store_sqlite *s, uint32_t user, uint64_t *cursor,
                      int64_t *seen) {
    const devuser *u = store__dev_user(s, user);
    *cursor = 0;
    *seen = 0;
    for (uint32_t i = 0; u && i < u->n; i++) {
        if (u->v[i].cursor > *cursor) *cursor = u->v[i].cursor;
        if (u->v[i].seen > *seen) *seen = u->v[i].seen;
    }
}

/* One entry: user's delivered mark and its read mark of (kind, peer). */
static int mark_entry(store_sqlite *s, uint32_t user, int kind, uint32_t peer,
                      store_mark *m) {
    int64_t seen;
    m->user = user;
    dev_marks(s, user, &m->delivered, &seen);
    return mark_read(s, user, kind, peer, m);
}

static int marks_one(store_sqlite *s, batch *b, mark_req *r) {
    r->mark0 = b->nmark;
    r->nmarks = 0;
    if (r->group) {
        const chatgroup *g = groups_get(&s->groups, r->group);
        if (!g || groups_member(g, r->user) < 0) return SQLITE_OK; /* none */
        uint32_t n = g->n < STORE_MARKS_MAX ? g->n : STORE_MARKS_MAX;
        if (RESERVE(b->marks, b->cmark, b->nmark + n)) return SQLITE_NOMEM;
        for (uint32_t i = 0; i < n; i++) {
            int rc = mark_entry(s, g->m[i].user, 2, r->group,
                                &b->marks[b->nmark + i]);
            if (rc != SQLITE_OK) return rc;
        }
        r->nmarks = n;
    } else {
        if (RESERVE(b->marks, b->cmark, b->nmark + 2)) return SQLITE_NOMEM;
        /* the peer's marks of its conversation with user, then user's */
        int rc = mark_entry(s, r->peer, 1, r->user, &b->marks[b->nmark]);
        if (rc == SQLITE_OK)
            rc = mark_entry(s, r->user, 1, r->peer, &b->marks[b->nmark + 1]);
        if (rc != SQLITE_OK) return rc;
        r->nmarks = 2;
    }
    b->nmark += r->nmarks;
    return SQLITE_OK;
}

/* 1 when users a and b are members of a common group (the authority
 * copy): O(groups of a x groups of b), both short lists. */
static int share_group(const store_sqlite *s, uint32_t a, uint32_t b) {
    const ugroups *ga = groups_of(&s->groups, a), *gb = groups_of(&s->groups, b);
    for (uint32_t i = 0; ga && gb && i < ga->n; i++)
        for (uint32_t k = 0; k < gb->n; k++)
            if (ga->ids[i] == gb->ids[k]) return 1;
    return 0;
}

static int presence_one(store_sqlite *s, batch *b, pres_req *r) {
    for (size_t i = r->user0; i < r->user0 + r->n; i++) {
        uint32_t other = b->pusers[i];
        uint64_t cursor;
        dev_marks(s, other, &cursor, &b->pseen[i]);
        int rc = SQLITE_OK;
        b->pallow[i] = !r->check || other == r->user ||
                       share_group(s, r->user, other) ||
                       (other && r->user &&
                        pair_known(s, pair_of(r->user, other), &rc));
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

/* A failed read: log once per streak, as fetches do (fetch_fails). */
static int read_status(store_sqlite *s, int rc) {
    if (rc == SQLITE_OK) {
        if (s->fetch_fails) {
            log_info("store_reads_recovered",
                     "store: %s: reads succeed again after %u failed",
                     s->path, s->fetch_fails);
            s->fetch_fails = 0;
        }
        return STORE_OK;
    }
    if (s->fetch_fails++ == 0)
        log_error("store_read_failed",
                  "store: %s: reading marks or contacts failed (%s); logged "
                  "once until reads succeed again", s->path,
                  store__why(s, rc));
    return store__status_of(rc);
}

void store__sig_read(store_sqlite *s, batch *b) {
    for (size_t i = 0; i < b->nmreq; i++) {
        mark_req *r = &b->mreqs[i];
        if (r->status != STATUS_PENDING) continue; /* its transaction failed */
        size_t nmark0 = b->nmark;
        r->status = read_status(s, marks_one(s, b, r));
        if (r->status != STORE_OK) {
            b->nmark = nmark0;
            r->nmarks = 0;
        }
    }
    for (size_t i = 0; i < b->npres; i++) {
        pres_req *r = &b->preqs[i];
        if (r->status != STATUS_PENDING) continue;
        r->status = read_status(s, presence_one(s, b, r));
    }
}
