/* blk.c -- see blk.h. */
#include "blk.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

void blkpool_init(blkpool *p) {
    p->idle = NULL;
    p->nidle = p->bytes = 0;
    p->hits = 0;
    p->epoch = 0;
}

size_t blkpool_trim(blkpool *p) {
    size_t freed = 0;
    for (blk **pp = &p->idle; *pp;) {
        blk *b = *pp;
        if (b->epoch < p->epoch) {
            *pp = b->next;
            p->nidle--;
            p->bytes -= b->cap;
            freed += b->cap;
            free(b);
        } else {
            pp = &b->next;
        }
    }
    p->epoch++;
    return freed;
}

size_t blkpool_free(blkpool *p) {
    size_t freed = p->bytes;
    while (p->idle) {
        blk *b = p->idle;
        p->idle = b->next;
        free(b);
    }
    p->nidle = p->bytes = 0;
    return freed;
}

blk *blk_pooled(blkpool *p, size_t need, size_t most) {
    blk **best = NULL;
    for (blk **pp = &p->idle; *pp; pp = &(*pp)->next) {
        size_t cap = (*pp)->cap;
        if (cap >= need && cap <= most && (!best || cap < (*best)->cap))
            best = pp;
    }
    if (!best) return NULL;
    blk *b = *best;
    *best = b->next;
    p->nidle--;
    p->bytes -= b->cap;
    p->hits++;
    b->refs = 1;
    b->next = NULL;
    return b;
}

blk *blk_new(blkpool *p, size_t cap) {
    blk *b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->cap = cap;
    b->pool = p;
    b->refs = 1;
    b->next = NULL;
    return b;
}

void blk_unref(blk *b) {
    if (!b) return;
    assert(b->refs > 0);
    if (--b->refs) return;
    blkpool *p = b->pool;
    if (!p || p->nidle >= BLKPOOL_MAX_BLOCKS ||
        b->cap > BLKPOOL_MAX_BYTES - p->bytes) {
        free(b);
        return;
    }
    b->next = p->idle;
    b->epoch = p->epoch;
    p->idle = b;
    p->nidle++;
    p->bytes += b->cap;
}

blk *blk_resize(blk *b, size_t cap) {
    assert(b->refs == 1);
    blk *n = realloc(b, sizeof *b + cap);
    if (!n) return NULL;
    n->cap = cap;
    return n;
}
