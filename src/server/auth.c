/*
 * auth.c -- password checks on libuv's thread pool (see auth.h).
 */
#include "server/auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "server/accounts.h"

typedef struct auth_req {
    uv_work_t work;          /* work.data == this */
    auth *a;
    auth_done_fn done;
    void *token;
    int result;              /* the hash lookup's, then the check's */
    size_t len;
    struct auth_req *next;   /* waiting queue */
    char hash[ACCOUNTS_HASH_MAX];
    char pw[ACCOUNTS_MAX_PASSWORD];
} auth_req;

struct auth {
    uv_loop_t *loop;
    accounts *acc;
    size_t running, queued, max_running, max_queued;
    auth_req *head, *tail;   /* waiting, FIFO */
    char dummy[ACCOUNTS_HASH_MAX];
};

int auth_open(auth **out, uv_loop_t *loop, const char *dir,
              size_t max_running, size_t max_queued, char *err,
              size_t errlen) {
    *out = NULL;
    auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return ACCOUNTS_ENOMEM;
    }
    int r = accounts_open(&a->acc, dir, err, errlen);
    if (r) {
        free(a);
        return r;
    }
    /* A hash of a random password, for ids without an account. */
    unsigned char rnd[32];
    randombytes_buf(rnd, sizeof rnd);
    if (crypto_pwhash_str(a->dummy, (const char *)rnd, sizeof rnd,
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
        snprintf(err, errlen, "out of memory for Argon2id");
        accounts_close(a->acc);
        free(a);
        return ACCOUNTS_ENOMEM;
    }
    a->loop = loop;
    a->max_running = max_running ? max_running : 1;
    a->max_queued = max_queued;
    *out = a;
    return 0;
}

static void work_cb(uv_work_t *w) {
    auth_req *q = w->data;
    int r = accounts_check(q->hash, q->pw, q->len);
    /* ENOENT or EDB: the dummy was checked only to take as long. */
    if (q->result == ACCOUNTS_OK) q->result = r;
}

static void start(auth *a, auth_req *q);

static void after_cb(uv_work_t *w, int status) {
    auth_req *q = w->data;
    auth *a = q->a;
    a->running--;
    if (a->head) { /* the next waiting check takes the free slot */
        auth_req *n = a->head;
        a->head = n->next;
        if (!a->head) a->tail = NULL;
        a->queued--;
        start(a, n);
    }
    int result = status ? ACCOUNTS_ENOMEM : q->result;
    auth_done_fn done = q->done;
    void *token = q->token;
    sodium_memzero(q->pw, sizeof q->pw);
    free(q);
    done(token, result);
}

static void start(auth *a, auth_req *q) {
    a->running++;
    if (uv_queue_work(a->loop, &q->work, work_cb, after_cb)) {
        /* Cannot happen with a valid loop; answer as out of memory. */
        q->result = ACCOUNTS_ENOMEM;
        after_cb(&q->work, UV_ENOMEM);
    }
}

int auth_check(auth *a, uint32_t id, const uint8_t *pw, size_t len,
               auth_done_fn done, void *token) {
    if (a->running >= a->max_running && a->queued >= a->max_queued)
        return AUTH_EBUSY;
    if (len > ACCOUNTS_MAX_PASSWORD) len = ACCOUNTS_MAX_PASSWORD;
    auth_req *q = malloc(sizeof *q);
    if (!q) return ACCOUNTS_ENOMEM;
    q->work.data = q;
    q->a = a;
    q->done = done;
    q->token = token;
    q->next = NULL;
    q->len = len;
    memcpy(q->pw, pw, len);
    q->result = accounts_hash(a->acc, id, q->hash);
    if (q->result != ACCOUNTS_OK) memcpy(q->hash, a->dummy, sizeof q->hash);
    if (a->running < a->max_running) {
        start(a, q);
    } else {
        if (a->tail) a->tail->next = q;
        else a->head = q;
        a->tail = q;
        a->queued++;
    }
    return 0;
}

size_t auth_running(const auth *a) { return a->running; }
size_t auth_queued(const auth *a) { return a->queued; }

void auth_close(auth *a) {
    if (!a) return;
    while (a->head) { /* only if the loop stopped with checks waiting */
        auth_req *q = a->head;
        a->head = q->next;
        sodium_memzero(q->pw, sizeof q->pw);
        free(q);
    }
    accounts_close(a->acc);
    sodium_memzero(a->dummy, sizeof a->dummy);
    free(a);
}
