/* cidset.c -- see cidset.h. */
#include "server/cidset.h"

#include <assert.h>
#include <stdlib.h>

typedef struct entry {
    uint64_t cid;      /* 0: deleted (cidset_del), its slot gone */
    int64_t t;
    uint64_t id;       /* the message's server id, 0: not known */
} entry;

struct cidset {
    entry *ring;       /* cap entries; [head, head + n) mod cap in use */
    uint32_t *slot;    /* 2 * cap: ring index + 1, 0 = empty */
    uint32_t cap, head, n;
};

static uint32_t hash(uint64_t cid, uint32_t mask) {
    cid ^= cid >> 33;
    cid *= UINT64_C(0xff51afd7ed558ccd);
    cid ^= cid >> 33;
    return (uint32_t)cid & mask;
}

static uint32_t find(const cidset *s, uint64_t cid) {
    uint32_t mask = 2 * s->cap - 1;
    for (uint32_t i = hash(cid, mask);; i = (i + 1) & mask)
        if (!s->slot[i] || s->ring[s->slot[i] - 1].cid == cid) return i;
}

int cidset_has(const cidset *s, uint64_t cid, int64_t since) {
    if (!s || !cid) return 0;
    uint32_t i = find(s, cid);
    return s->slot[i] && s->ring[s->slot[i] - 1].t >= since;
}

uint64_t cidset_id(const cidset *s, uint64_t cid) {
    if (!s || !cid) return 0;
    uint32_t i = find(s, cid);
    return s->slot[i] ? s->ring[s->slot[i] - 1].id : 0;
}

void cidset_set_id(cidset *s, uint64_t cid, uint64_t id) {
    if (!s || !cid) return;
    uint32_t i = find(s, cid);
    if (s->slot[i]) s->ring[s->slot[i] - 1].id = id;
}

/* Remove slot i, shifting back the run after it (no tombstones). */
static void unslot(cidset *s, uint32_t i) {
    uint32_t mask = 2 * s->cap - 1;
    s->slot[i] = 0;
    for (uint32_t j = (i + 1) & mask; s->slot[j]; j = (j + 1) & mask) {
        uint32_t h = hash(s->ring[s->slot[j] - 1].cid, mask);
        /* j's entry may move to the hole at i when its home h is not in
         * the cyclic range (i, j] */
        if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
            s->slot[i] = s->slot[j];
            s->slot[j] = 0;
            i = j;
        }
    }
}

/* A set of cap entries holding s's (NULL: empty), oldest first. */
static cidset *regrow(cidset *s, uint32_t cap) {
    cidset *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ring = malloc(cap * sizeof *t->ring);
    t->slot = calloc(2 * (size_t)cap, sizeof *t->slot);
    if (!t->ring || !t->slot) {
        cidset_free(t);
        return NULL;
    }
    t->cap = cap;
    for (uint32_t k = 0; s && k < s->n; k++) {
        entry e = s->ring[(s->head + k) % s->cap];
        if (!e.cid) continue; /* deleted */
        t->ring[t->n] = e;
        t->slot[find(t, e.cid)] = ++t->n;
    }
    return t;
}

void cidset_del(cidset *s, uint64_t cid) {
    if (!s || !cid) return;
    uint32_t i = find(s, cid);
    if (!s->slot[i]) return;
    s->ring[s->slot[i] - 1].cid = 0; /* its place in the ring stays */
    unslot(s, i);
}

int cidset_add(cidset **sp, uint64_t cid, int64_t t) {
    cidset *s = *sp;
    assert(cid != 0);
    if (!s || (s->n == s->cap && s->cap < CIDSET_MAX)) {
        cidset *g = regrow(s, s ? s->cap * 2 : 16);
        if (!g) return -1;
        cidset_free(s);
        *sp = s = g;
    }
    uint32_t i = find(s, cid);
    if (s->slot[i]) { /* present: renew its time, keep its place */
        s->ring[s->slot[i] - 1].t = t;
        return 0;
    }
    if (s->n == s->cap) { /* full at CIDSET_MAX: the oldest goes */
        if (s->ring[s->head].cid) unslot(s, find(s, s->ring[s->head].cid));
        s->head = (s->head + 1) % s->cap;
        s->n--;
        i = find(s, cid);
    }
    uint32_t at = (s->head + s->n) % s->cap;
    s->ring[at] = (entry){cid, t, 0};
    s->slot[i] = at + 1;
    s->n++;
    return 0;
}

size_t cidset_count(const cidset *s) { return s ? s->n : 0; }

void cidset_free(cidset *s) {
    if (!s) return;
    free(s->ring);
    free(s->slot);
    free(s);
}
