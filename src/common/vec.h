/*
 * vec.h -- growable arrays of uint64_t and of (seq, id) pairs.
 *
 * Header-only. The vector owns `v`; growth doubles (amortised O(1) push),
 * clear keeps the capacity, free releases it. Push returns -1 when out of
 * memory or past 2^31 entries (vector unchanged).
 */
#ifndef CHAT_COMMON_VEC_H
#define CHAT_COMMON_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct u64vec {
    uint64_t *v;
    uint32_t n, cap; /* (32 bits: these sit in every connection) */
} u64vec;

static inline int u64vec_push(u64vec *a, uint64_t x) {
    if (a->n == a->cap) {
        if (a->cap > UINT32_MAX / 2) return -1;
        uint32_t cap = a->cap ? a->cap * 2 : 4;
        uint64_t *p = realloc(a->v, cap * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

static inline void u64vec_free(u64vec *a) {
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* A FIFO of (seq, id) pairs: push at the tail, pop from `head`. */
typedef struct seqid {
    uint64_t seq, id;
} seqid;

typedef struct seqidq {
    seqid *v;
    uint32_t head, n, cap; /* live entries are v[head..n) */
} seqidq;

static inline int seqidq_push(seqidq *q, uint64_t seq, uint64_t id) {
    if (q->n == q->cap) {
        if (q->head > q->cap / 2) { /* reclaim the popped front */
            for (uint32_t i = q->head; i < q->n; i++) q->v[i - q->head] = q->v[i];
            q->n -= q->head;
            q->head = 0;
        } else {
            if (q->cap > UINT32_MAX / 2) return -1;
            uint32_t cap = q->cap ? q->cap * 2 : 4;
            seqid *p = realloc(q->v, cap * sizeof *p);
            if (!p) return -1;
            q->v = p;
            q->cap = cap;
        }
    }
    q->v[q->n].seq = seq;
    q->v[q->n].id = id;
    q->n++;
    return 0;
}

static inline void seqidq_free(seqidq *q) {
    free(q->v);
    q->v = NULL;
    q->head = q->n = q->cap = 0;
}

#endif
