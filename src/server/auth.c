/*
 * auth.c -- password checks on libuv's thread pool (see auth.h).
 *
 * A check is a request (auth_req, malloc'd by auth_check) that is
 *
 *     WAITING   on a->head..tail (FIFO): every slot is busy
 *        | pump: a slot came free
 *        |   (a store that keeps the accounts: READING, holding the slot,
 *        |    while store_account runs; auth_store_done ends it: on to
 *        |    RUNNING, or answered when the store failed)
 *     RUNNING   on the pool, holding a slot (SQLite: an accounts
 *               connection): work_cb reads the hash (SQLite) and runs
 *               Argon2id there
 *        | after_cb (loop thread)
 *     answered  done(token, result), then freed
 *
 * or, when uv_queue_work refuses it, FAILED on a->failed until the defer
 * timer answers it ACCOUNTS_ENOMEM on a later loop turn.
 *
 * Invariants (auth_invariants asserts them after every entry point and
 * callback, in builds without NDEBUG):
 *  (1) running + nidle == max_running: each check READING or RUNNING
 *      holds one slot; with SQLite, a->acc[nidle..max_running) lent out,
 *      which no other thread uses; reading <= running, and reading is 0
 *      without a store.
 *  (2) queued is the length of the waiting list; checks wait only while no
 *      slot is free (queued > 0 => nidle == 0); queued <= max_queued.
 *  (3) a->failed is not empty only while the defer timer is started or
 *      closing (defer_state != DEFER_IDLE); the timer handle exists only
 *      then, so nothing of ours is left on the loop when it ends.
 *  (4) done() runs on the loop thread, from after_cb, auth_store_done or
 *      the defer timer, never inside auth_check.
 *  (5) exactly one of a->acc (SQLite) and a->st (a store) is set.
 */
#include "server/auth.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "server/accounts.h"

enum { DEFER_IDLE, DEFER_ARMED, DEFER_CLOSING };

typedef struct auth_req {
    uv_work_t work;          /* work.data == this */
    auth *a;
    accounts *acc;           /* SQLite: the slot's connection, while running */
    auth_done_fn done;
    void *token;
    uint32_t id;
    int result;              /* set by work_cb, or ACCOUNTS_ENOMEM */
    int found;               /* a store's answer: ACCOUNTS_OK (hash holds
                                it) or ACCOUNTS_ENOENT */
    int reading;             /* READING: store_account in flight */
    size_t len;
    struct auth_req *next;   /* waiting or failed list */
    char hash[ACCOUNTS_HASH_MAX]; /* the account's hash, NUL-terminated */
    char pw[ACCOUNTS_MAX_PASSWORD];
} auth_req;

struct auth {
    uv_loop_t *loop;
    accounts **acc;          /* SQLite: max_running connections; [0, nidle)
                                free; NULL with a store */
    store *st;               /* a store that keeps the accounts, or NULL */
    size_t nidle;
    size_t running, queued, max_running, max_queued;
    size_t reading;          /* of the running: READING */
    auth_req *head, *tail;   /* waiting, FIFO */
    auth_req *failed, *failed_tail; /* refused by uv_queue_work */
    uv_timer_t defer;        /* answers the failed ones (see (3)) */
    int defer_state;
    char dummy[ACCOUNTS_HASH_MAX];
};

#ifndef NDEBUG
static int auth_invariants(const auth *a) {
    assert(a->running + a->nidle == a->max_running); /* (1) */
    assert(a->reading <= a->running && (a->st || a->reading == 0));
    assert(!a->acc != !a->st); /* (5) */
    size_t n = 0; /* (2) */
    for (const auth_req *q = a->head; q; q = q->next) n++;
    assert(n == a->queued && (a->head == NULL) == (a->tail == NULL));
    assert(a->queued == 0 || a->nidle == 0);
    assert(a->queued <= a->max_queued);
    assert(!a->failed || a->defer_state != DEFER_IDLE); /* (3) */
    assert((a->failed == NULL) == (a->failed_tail == NULL));
    return 1;
}
#endif

/* Close the connections of acc[0..n) (SQLite), then free everything. */
static void destroy(auth *a, size_t n) {
    for (size_t i = 0; a->acc && i < n; i++) accounts_close(a->acc[i]);
    free(a->acc);
    sodium_memzero(a->dummy, sizeof a->dummy);
    free(a);
}

/* What both opens share, once a->acc or a->st is set: the dummy hash (of a
 * random password, for ids without an account) and the counts. */
static int open_finish(auth *a, uv_loop_t *loop, size_t max_running,
                       size_t max_queued, char *err, size_t errlen) {
    unsigned char rnd[32];
    randombytes_buf(rnd, sizeof rnd);
    if (crypto_pwhash_str(a->dummy, (const char *)rnd, sizeof rnd,
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
        snprintf(err, errlen, "out of memory for Argon2id");
        return ACCOUNTS_ENOMEM;
    }
    a->loop = loop;
    a->nidle = a->max_running = max_running;
    a->max_queued = max_queued;
    assert(auth_invariants(a));
    return 0;
}

int auth_open(auth **out, uv_loop_t *loop, const char *dir,
              size_t max_running, size_t max_queued, char *err,
              size_t errlen) {
    *out = NULL;
    if (max_running == 0) max_running = 1;
    auth *a = calloc(1, sizeof *a);
    if (!a || !(a->acc = calloc(max_running, sizeof *a->acc))) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return ACCOUNTS_ENOMEM;
    }
    /* One connection per slot: the first brings the schema up to date
     * (and calls sodium_init). */
    for (size_t i = 0; i < max_running; i++) {
        int r = accounts_open(&a->acc[i], dir, err, errlen);
        if (r) {
            destroy(a, i);
            return r;
        }
    }
    int r = open_finish(a, loop, max_running, max_queued, err, errlen);
    if (r) {
        destroy(a, max_running);
        return r;
    }
    *out = a;
    return 0;
}

int auth_open_store(auth **out, uv_loop_t *loop, store *st,
                    size_t max_running, size_t max_queued, char *err,
                    size_t errlen) {
    *out = NULL;
    assert(st && store_accounts(st));
    if (max_running == 0) max_running = 1;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot be initialised");
        return ACCOUNTS_ECRYPTO;
    }
    auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return ACCOUNTS_ENOMEM;
    }
    a->st = st;
    int r = open_finish(a, loop, max_running, max_queued, err, errlen);
    if (r) {
        destroy(a, 0);
        return r;
    }
    *out = a;
    return 0;
}

/* Pool thread: the hash read (SQLite; a store's was read before) and the
 * comparison. An id without a hash (ENOENT, or EDB when the read failed)
 * is compared against the dummy, only to take as long. Touches q, q->acc
 * (this slot's alone) and a->dummy (read-only after open). */
static void work_cb(uv_work_t *w) {
    auth_req *q = w->data;
    int found = q->acc ? accounts_hash(q->acc, q->id, q->hash) : q->found;
    int r = accounts_check(found == ACCOUNTS_OK ? q->hash : q->a->dummy,
                           q->pw, q->len);
    q->result = found == ACCOUNTS_OK ? r : found;
}

/* Wipe and free q, then tell its caller. */
static void answer(auth_req *q, int result) {
    auth_done_fn done = q->done;
    void *token = q->token;
    sodium_memzero(q->pw, sizeof q->pw);
    sodium_memzero(q->hash, sizeof q->hash);
    free(q);
    done(token, result);
}

/* A slot for q (one is free), and back. */
static void slot_take(auth *a, auth_req *q) {
    assert(a->nidle > 0);
    a->nidle--;
    q->acc = a->acc ? a->acc[a->nidle] : NULL;
    a->running++;
}

static void slot_give(auth *a, auth_req *q) {
    assert(a->running > 0);
    a->running--;
    if (a->acc) a->acc[a->nidle] = q->acc;
    a->nidle++;
    q->acc = NULL;
}

static void on_defer(uv_timer_t *t);

/* Start the defer timer unless it runs or is closing (on_defer_closed
 * starts it again then). */
static void defer_arm(auth *a) {
    if (a->defer_state != DEFER_IDLE) return;
    int r = uv_timer_init(a->loop, &a->defer);
    if (r == 0) r = uv_timer_start(&a->defer, on_defer, 0, 0);
    /* Neither can fail: libuv's uv_timer_init always returns 0, and
     * uv_timer_start refuses only a NULL callback or a closing handle
     * (DEFER_IDLE: this one is closed, initialised afresh above). */
    assert(r == 0);
    (void)r;
    a->defer.data = a;
    a->defer_state = DEFER_ARMED;
}

/* q could not be queued: answer it ACCOUNTS_ENOMEM on a later turn. */
static void defer_fail(auth *a, auth_req *q) {
    q->next = NULL;
    if (a->failed_tail) a->failed_tail->next = q;
    else a->failed = q;
    a->failed_tail = q;
    defer_arm(a);
}

static void on_defer_closed(uv_handle_t *h) {
    auth *a = h->data;
    a->defer_state = DEFER_IDLE;
    if (a->failed) defer_arm(a); /* failed again while it closed */
    assert(auth_invariants(a));
}

/* The timer fired: close it (it exists only while needed, see (3)) and
 * answer every check that failed before now. */
static void on_defer(uv_timer_t *t) {
    auth *a = t->data;
    a->defer_state = DEFER_CLOSING;
    uv_close((uv_handle_t *)&a->defer, on_defer_closed);
    auth_req *list = a->failed;
    a->failed = a->failed_tail = NULL;
    while (list) {
        auth_req *q = list;
        list = q->next;
        answer(q, q->result);
        assert(auth_invariants(a));
    }
}

static void after_cb(uv_work_t *w, int status);

/* q holds a slot: to the pool. */
static void run(auth *a, auth_req *q) {
    int r = uv_queue_work(a->loop, &q->work, work_cb, after_cb);
    if (r == 0) return;
    /* libuv refuses only a NULL work_cb; whatever the cause, the slot is
     * free again and the check is answered later (never here: this may run
     * inside auth_check). */
    slot_give(a, q);
    q->result = ACCOUNTS_ENOMEM;
    defer_fail(a, q);
}

/* Start waiting checks while a slot is free, in arrival order: to the pool
 * (SQLite), or the store's read first (its answer never comes inside
 * store_account, so never inside auth_check). */
static void pump(auth *a) {
    while (a->head && a->nidle > 0) {
        auth_req *q = a->head;
        a->head = q->next;
        if (!a->head) a->tail = NULL;
        a->queued--;
        slot_take(a, q);
        if (a->st) {
            q->reading = 1;
            a->reading++;
            store_account(a->st, q->id, q);
        } else {
            run(a, q);
        }
    }
}

void auth_store_done(void *token, const char *hash, size_t len, int status) {
    auth_req *q = token;
    auth *a = q->a;
    assert(a->st && q->reading && a->reading > 0);
    q->reading = 0;
    a->reading--;
    int fail = status == STORE_OK ? 0
             : status == STORE_ENOMEM ? ACCOUNTS_ENOMEM : AUTH_ESTORE;
    if (!fail && hash && len >= sizeof q->hash) fail = ACCOUNTS_EDB;
    if (fail) {
        slot_give(a, q);
        pump(a); /* the next waiting check takes the free slot */
        answer(q, fail);
        assert(auth_invariants(a));
        return;
    }
    q->found = hash ? ACCOUNTS_OK : ACCOUNTS_ENOENT;
    if (hash) memcpy(q->hash, hash, len);
    q->hash[hash ? len : 0] = '\0';
    run(a, q);
    assert(auth_invariants(a));
}

static void after_cb(uv_work_t *w, int status) {
    auth_req *q = w->data;
    auth *a = q->a;
    slot_give(a, q);
    pump(a); /* the next waiting check takes the free slot */
    answer(q, status ? ACCOUNTS_ENOMEM : q->result);
    assert(auth_invariants(a));
}

int auth_check(auth *a, uint32_t id, const uint8_t *pw, size_t len,
               auth_done_fn done, void *token) {
    if (a->nidle == 0 && a->queued >= a->max_queued) return AUTH_EBUSY;
    if (len > ACCOUNTS_MAX_PASSWORD) len = ACCOUNTS_MAX_PASSWORD;
    auth_req *q = malloc(sizeof *q);
    if (!q) return ACCOUNTS_ENOMEM;
    q->work.data = q;
    q->a = a;
    q->acc = NULL;
    q->done = done;
    q->token = token;
    q->id = id;
    q->result = ACCOUNTS_ENOMEM;
    q->found = ACCOUNTS_ENOENT;
    q->reading = 0;
    q->next = NULL;
    q->len = len;
    memcpy(q->pw, pw, len);
    if (a->tail) a->tail->next = q;
    else a->head = q;
    a->tail = q;
    a->queued++;
    pump(a);
    assert(auth_invariants(a));
    return 0;
}

size_t auth_running(const auth *a) { return a->running; }
size_t auth_queued(const auth *a) { return a->queued; }

static void free_list(auth_req *q) {
    while (q) {
        auth_req *next = q->next;
        sodium_memzero(q->pw, sizeof q->pw);
        sodium_memzero(q->hash, sizeof q->hash);
        free(q);
        q = next;
    }
}

void auth_close(auth *a) {
    if (!a) return;
    /* After uv_run returned: nothing runs (no store read either: the
     * server stops its store only once every connection, each holding its
     * check, is gone) and the defer timer is closed. */
    assert(a->running == 0 && a->defer_state == DEFER_IDLE);
    free_list(a->head);   /* only if the loop stopped with checks waiting */
    free_list(a->failed); /* ... or failed, unanswered */
    destroy(a, a->max_running);
}
