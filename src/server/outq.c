/* outq.c -- see outq.h. */
#include "server/outq.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Output buffers are bounded by the caller; this is only a sanity cap. */
#define OUTQ_LIMIT (SIZE_MAX / 4)

static int ref_push(outbuf *o, size_t at, blk *b, const uint8_t *p,
                    size_t len) {
    if (o->nrefs == o->caprefs) {
        if (o->caprefs > UINT32_MAX / 2) return -1;
        uint32_t cap = o->caprefs ? o->caprefs * 2 : 4;
        outref *r = realloc(o->refs, cap * sizeof *r);
        if (!r) return -1;
        o->refs = r;
        o->caprefs = cap;
    }
    blk_ref(b);
    o->refs[o->nrefs++] = (outref){at, b, p, len};
    return 0;
}

int outq_frame_slow(outq *q, uint32_t from, uint8_t type,
                    const uint8_t *body, uint32_t len, blk *b, uint64_t id) {
    outbuf *o = &q->b[q->cur];
    int ref = b && len >= OUTQ_REF_MIN && body >= b->data &&
              (size_t)(body - b->data) + len <= b->cap;
    size_t copy = FRAME_S2C_HDR + (ref ? 0 : (size_t)len);
    size_t at = o->bytes.len;
    if (buf_reserve(&o->bytes, copy, OUTQ_LIMIT)) return -1;
    if (id && seqidq_push(&o->ids, at, id)) return -1;
    if (ref && ref_push(o, at + FRAME_S2C_HDR, b, body, len)) {
        if (id) o->ids.n--;
        return -1;
    }
    uint8_t *w = o->bytes.data + at;
    frame_put_s2c_hdr(w, from, type, len);
    if (!ref && len) memcpy(w + FRAME_S2C_HDR, body, len);
    o->bytes.len += copy;
    o->total += FRAME_S2C_HDR + (size_t)len;
    return 0;
}

void outq_swap(outq *q) {
    assert(q->b[q->cur ^ 1].total == 0);
    q->cur ^= 1;
}

int outq_iov(outq *q, const outbuf *o, uv_buf_t **iov, unsigned *n) {
    size_t need = 2 * o->nrefs + 1;
    if (need > q->capiov) {
        size_t cap = q->capiov ? q->capiov : 8;
        while (cap < need) cap *= 2;
        uv_buf_t *v = realloc(q->iov, cap * sizeof *v);
        if (!v) return -1;
        q->iov = v;
        q->capiov = cap;
    }
    uv_buf_t *v = q->iov;
    unsigned k = 0;
    size_t from = 0;
    for (size_t i = 0; i < o->nrefs; i++) {
        const outref *r = &o->refs[i];
        if (r->at > from)
            v[k++] = uv_buf_init((char *)o->bytes.data + from,
                                 (unsigned)(r->at - from));
        v[k++] = uv_buf_init((char *)r->p, (unsigned)r->len);
        from = r->at;
    }
    if (o->bytes.len > from)
        v[k++] = uv_buf_init((char *)o->bytes.data + from,
                             (unsigned)(o->bytes.len - from));
    *iov = v;
    *n = k;
    return 0;
}

void outq_reset(outbuf *o) {
    for (size_t i = 0; i < o->nrefs; i++) blk_unref(o->refs[i].b);
    o->nrefs = 0;
    o->bytes.len = 0;
    o->total = 0;
    o->ids.head = o->ids.n = 0;
}

void outq_walk(const outbuf *o, size_t sent, outq_frame_fn fn, void *ctx) {
    size_t off = 0, logical = 0, k = o->ids.head, r = 0;
    while (off + FRAME_S2C_HDR <= o->bytes.len) {
        frame_s2c f;
        const uint8_t *h = o->bytes.data + off;
        f.sender = frame_rd32(h);
        f.type = h[4];
        f.len = frame_rd32(h + 5);
        size_t next;
        if (r < o->nrefs && o->refs[r].at == off + FRAME_S2C_HDR) {
            f.body = o->refs[r++].p;
            next = off + FRAME_S2C_HDR;
        } else {
            f.body = h + FRAME_S2C_HDR;
            next = off + FRAME_S2C_HDR + f.len;
        }
        uint64_t id = 0;
        if (k < o->ids.n && o->ids.v[k].seq == off) id = o->ids.v[k++].id;
        logical += FRAME_S2C_HDR + (size_t)f.len;
        fn(ctx, &f, id, logical <= sent);
        off = next;
    }
}

static size_t outbuf_shrink(outbuf *o) {
    if (o->total) return 0;
    size_t freed = o->bytes.cap + o->caprefs * sizeof(outref) +
                   o->ids.cap * sizeof(seqid);
    buf_free(&o->bytes);
    free(o->refs);
    o->refs = NULL;
    o->nrefs = o->caprefs = 0;
    seqidq_free(&o->ids);
    return freed;
}

size_t outq_shrink(outq *q) {
    size_t freed = outbuf_shrink(&q->b[0]) + outbuf_shrink(&q->b[1]);
    freed += q->capiov * sizeof(uv_buf_t);
    free(q->iov);
    q->iov = NULL;
    q->capiov = 0;
    return freed;
}

void outq_free(outq *q) {
    for (int i = 0; i < 2; i++) {
        outq_reset(&q->b[i]);
        (void)outbuf_shrink(&q->b[i]); /* (the byte count is not needed) */
    }
    free(q->iov);
    q->iov = NULL;
    q->capiov = 0;
}

int outq_check(const outq *q) {
#ifndef NDEBUG
    for (int i = 0; i < 2; i++) {
        const outbuf *o = &q->b[i];
        size_t sum = o->bytes.len, prev = 0;
        for (size_t k = 0; k < o->nrefs; k++) {
            const outref *r = &o->refs[k];
            assert(r->at >= prev && r->at <= o->bytes.len);          /* (2) */
            assert(r->b && r->b->refs > 0 && r->p >= r->b->data &&
                   (size_t)(r->p - r->b->data) + r->len <= r->b->cap);
            prev = r->at;
            sum += r->len;
        }
        assert(sum == o->total);                                      /* (1) */
        for (size_t k = o->ids.head; k < o->ids.n; k++) {
            assert(o->ids.v[k].seq < o->bytes.len);                    /* (3) */
            assert(k == o->ids.head || o->ids.v[k].seq > o->ids.v[k - 1].seq);
        }
        size_t off = 0, r = 0;                                        /* (4) */
        while (off < o->bytes.len) {
            assert(off + FRAME_S2C_HDR <= o->bytes.len);
            uint32_t len = frame_rd32(o->bytes.data + off + 5);
            if (r < o->nrefs && o->refs[r].at == off + FRAME_S2C_HDR) {
                assert(o->refs[r].len == len);
                r++;
                off += FRAME_S2C_HDR;
            } else {
                off += FRAME_S2C_HDR + (size_t)len;
            }
        }
        assert(off == o->bytes.len && r == o->nrefs);
    }
#else
    (void)q;
#endif
    return 1;
}
