/*
 * store_ctr.c -- the offline store's memory: growable arrays, batches and
 * the per-receiver counters (see store_int.h).
 *
 * The counters are kept twice: s->ctrs on the store thread (committed plus
 * the running transaction's tentative changes, with the committed values
 * saved in ctr.save_* the first time a transaction touches one) and
 * s->seen on the loop thread (a copy of the committed values, for
 * store_count). Both are receiver -> ctr maps whose ctrs live in chunks of
 * CTR_CHUNK and are never freed before the store.
 */
#include "server/store_int.h"

#include <stdlib.h>
#include <string.h>

/* -- arrays -------------------------------------------------------------- */

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

int store__reserve(void *arrp, size_t *cap, size_t need, size_t size) {
    void *old;
    memcpy(&old, arrp, sizeof old); /* arrp points to some T *; no aliasing */
    void *q = arr_grow(old, cap, need, size);
    if (!q) return -1;
    memcpy(arrp, &q, sizeof q);
    return 0;
}

/* -- batches ------------------------------------------------------------- */

void store__batch_free(batch *b) {
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
    free(b->devs);
    free(b->curs);
    free(b->cids);
    free(b->cidts);
    free(b->cidmsg);
    free(b->dupd);
    free(b->grps);
    free(b->gusers);
    free(b->gsnap);
    free(b->gmem);
    free(b->reads);
    free(b->contacts);
    free(b->mreqs);
    free(b->marks);
    free(b->preqs);
    free(b->pusers);
    free(b->pallow);
    free(b->pseen);
    free(b);
}

void store__batch_free_list(batch *b) {
    while (b) {
        batch *next = b->next;
        store__batch_free(b);
        b = next;
    }
}

/* -- counters ------------------------------------------------------------ */

void store__ctr_init(ctr_table *t) {
    u32map_init(&t->map);
    t->zero = NULL;
    t->chunks = NULL;
}

void store__ctr_free(ctr_table *t) {
    u32map_free(&t->map);
    while (t->chunks) {
        ctr_chunk *c = t->chunks;
        t->chunks = c->next;
        free(c);
    }
    t->zero = NULL;
}

ctr *store__ctr_find(const ctr_table *t, uint32_t receiver) {
    return receiver ? u32map_get(&t->map, receiver) : t->zero;
}

ctr *store__ctr_get(ctr_table *t, uint32_t receiver) {
    ctr *c = store__ctr_find(t, receiver);
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

int store__ctr_touch(store_sqlite *s, ctr *c) {
    if (c->epoch == s->epoch) return 0;
    if (RESERVE(s->touched, s->ctouched, s->ntouched + 1)) return -1;
    c->epoch = s->epoch;
    c->save_count = c->count;
    c->save_bytes = c->bytes;
    s->touched[s->ntouched++] = c;
    return 0;
}

void store__ctrs_begin(store_sqlite *s) {
    if (++s->epoch == 0) s->epoch = 1;
    s->ntouched = 0;
}

void store__ctrs_rollback(store_sqlite *s) {
    for (size_t i = 0; i < s->ntouched; i++) {
        s->touched[i]->count = s->touched[i]->save_count;
        s->touched[i]->bytes = s->touched[i]->save_bytes;
    }
    s->ntouched = 0;
}

int store__ctrs_removed(store_sqlite *s, uint32_t receiver, uint64_t len) {
    ctr *c = store__ctr_get(&s->ctrs, receiver);
    if (!c || store__ctr_touch(s, c)) return SQLITE_NOMEM;
    if (c->count) c->count--;
    c->bytes = c->bytes > len ? c->bytes - len : 0;
    return SQLITE_OK;
}
