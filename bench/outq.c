/* outq.c -- see outq.h. */
#include "outq.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Move the pending stage bytes and segments to the front, so that a queue
 * that never drains completely (a socket that stays full) does not grow.
 * O(pending). */
static void compact(outq *q) {
    if (q->head == 0) return;
    size_t base = q->slen; /* the first pending stage byte */
    for (size_t i = q->head; i < q->n; i++)
        if (!q->seg[i].ext) {
            base = q->seg[i].off;
            break;
        }
    memmove(q->seg, q->seg + q->head, (q->n - q->head) * sizeof *q->seg);
    q->n -= q->head;
    q->head = 0;
    if (base) {
        memmove(q->stage, q->stage + base, q->slen - base);
        q->slen -= base;
        for (size_t i = 0; i < q->n; i++)
            if (!q->seg[i].ext) q->seg[i].off -= base;
    }
}

static int grow_seg(outq *q) {
    if (q->n < q->cap) return 0;
    if (q->head > q->n / 2) {
        compact(q);
        if (q->n < q->cap) return 0;
    }
    size_t cap = q->cap ? q->cap * 2 : 16;
    outq_seg *s = realloc(q->seg, cap * sizeof *s);
    if (!s) return -1;
    q->seg = s;
    q->cap = cap;
    return 0;
}

uint8_t *outq_reserve(outq *q, size_t len) {
    if (grow_seg(q)) return NULL; /* the segment outq_commit may add */
    if (q->slen + len <= q->scap) return q->stage + q->slen;
    if (q->head > 0) {
        compact(q);
        if (q->slen + len <= q->scap) return q->stage + q->slen;
    }
    size_t cap = q->scap ? q->scap : 256;
    while (cap < q->slen + len) cap *= 2;
    uint8_t *p = realloc(q->stage, cap);
    if (!p) return NULL;
    q->stage = p;
    q->scap = cap;
    return q->stage + q->slen;
}

void outq_commit(outq *q, size_t len) {
    if (!len) return;
    outq_seg *last = q->n > q->head ? &q->seg[q->n - 1] : NULL;
    if (last && !last->ext && last->off + last->len == q->slen) {
        last->len += len;
    } else {
        assert(q->n < q->cap); /* outq_reserve made room */
        q->seg[q->n++] = (outq_seg){NULL, q->slen, len};
    }
    q->slen += len;
    q->bytes += len;
}

int outq_put(outq *q, const void *p, size_t len) {
    uint8_t *d = outq_reserve(q, len);
    if (!d) return -1;
    memcpy(d, p, len);
    outq_commit(q, len);
    return 0;
}

int outq_ref(outq *q, const void *p, size_t len) {
    if (!len) return 0;
    if (grow_seg(q)) return -1;
    q->seg[q->n++] = (outq_seg){p, 0, len};
    q->bytes += len;
    return 0;
}

int outq_iov(const outq *q, struct iovec *iov, int max, size_t big) {
    int k = 0;
    for (size_t i = q->head; i < q->n && k < max; i++, k++) {
        const outq_seg *s = &q->seg[i];
        const uint8_t *p = s->ext ? s->ext : q->stage + s->off;
        size_t skip = i == q->head ? q->done : 0;
        if (big && s->ext && s->len - skip >= big) break;
        iov[k].iov_base = (void *)(p + skip);
        iov[k].iov_len = s->len - skip;
    }
    return k;
}

const uint8_t *outq_big(const outq *q, size_t big, size_t *len) {
    if (q->head == q->n) return NULL;
    const outq_seg *s = &q->seg[q->head];
    if (!s->ext || s->len - q->done < big) return NULL;
    *len = s->len - q->done;
    return s->ext + q->done;
}

void outq_consume(outq *q, size_t n) {
    assert(n <= q->bytes);
    q->bytes -= n;
    while (n) {
        outq_seg *s = &q->seg[q->head];
        size_t left = s->len - q->done;
        if (n < left) {
            q->done += n;
            return;
        }
        n -= left;
        q->done = 0;
        q->head++;
    }
    if (q->head == q->n) { /* drained: start again at the front */
        q->head = q->n = 0;
        q->slen = 0;
        q->done = 0;
    }
}

void outq_free(outq *q) {
    free(q->stage);
    free(q->seg);
    *q = (outq){0};
}
