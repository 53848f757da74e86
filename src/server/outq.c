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

/* A server's WebSocket frame header (FIN, opcode, unmasked length) for a
 * payload of n bytes at w: its size, 2, 4 or 10 bytes. */
static size_t ws_hdr(uint8_t *w, uint8_t opcode, uint64_t n) {
    w[0] = (uint8_t)(0x80 | opcode);
    if (n <= 125) {
        w[1] = (uint8_t)n;
        return 2;
    }
    if (n <= 0xFFFF) {
        w[1] = 126;
        w[2] = (uint8_t)(n >> 8);
        w[3] = (uint8_t)n;
        return 4;
    }
    w[1] = 127;
    for (int i = 0; i < 8; i++) w[2 + i] = (uint8_t)(n >> (56 - 8 * i));
    return 10;
}

/* The WebSocket frame header at p (at least 2 bytes, a whole header of
 * ours): its opcode, payload length and size. */
static size_t ws_hdr_rd(const uint8_t *p, uint8_t *opcode, uint64_t *n) {
    *opcode = p[0] & 0x0F;
    uint8_t l = p[1] & 0x7F;
    if (l < 126) {
        *n = l;
        return 2;
    }
    if (l == 126) {
        *n = (uint64_t)p[2] << 8 | p[3];
        return 4;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[2 + i];
    *n = v;
    return 10;
}

#define WS_BINARY 0x2

/* A frame whose body is `npre` bytes of pre, then len bytes of body. */
static int append(outq *q, uint32_t from, uint8_t type, const uint8_t *pre,
                  size_t npre, const uint8_t *body, uint32_t len, blk *b,
                  uint64_t id) {
    outbuf *o = &q->b[q->cur];
    int ref = b && len >= OUTQ_REF_MIN && body >= b->data &&
              (size_t)(body - b->data) + len <= b->cap;
    uint8_t wh[OUTQ_WS_HDR_MAX];
    assert(o->mode != OUTQ_HTTP);
    uint64_t flen = npre + (uint64_t)len;
    if (flen > UINT32_MAX) return -1;
    size_t wsh = o->mode == OUTQ_WS ? ws_hdr(wh, WS_BINARY, FRAME_S2C_HDR + flen)
                       : 0;
    size_t hdr = wsh + FRAME_S2C_HDR + npre;
    size_t copy = hdr + (ref ? 0 : (size_t)len);
    size_t at = o->bytes.len;
    if (buf_reserve(&o->bytes, copy, OUTQ_LIMIT)) return -1;
    if (id && seqidq_push(&o->ids, at, id)) return -1;
    if (ref && ref_push(o, at + hdr, b, body, len)) {
        if (id) o->ids.n--;
        return -1;
    }
    uint8_t *w = o->bytes.data + at;
    if (wsh) memcpy(w, wh, wsh);
    frame_put_s2c_hdr(w + wsh, from, type, (uint32_t)flen);
    if (npre) memcpy(w + wsh + FRAME_S2C_HDR, pre, npre);
    if (!ref && len) memcpy(w + hdr, body, len);
    o->bytes.len += copy;
    o->total += hdr + (size_t)len;
    return 0;
}

int outq_frame_slow(outq *q, uint32_t from, uint8_t type,
                    const uint8_t *body, uint32_t len, blk *b, uint64_t id) {
    assert(type != FRAME_MSG);
    return append(q, from, type, NULL, 0, body, len, b, id);
}

int outq_msg(outq *q, uint32_t from, const uint8_t *pre, const uint8_t *body,
             uint32_t len, blk *b, uint64_t id) {
    return append(q, from, FRAME_MSG, pre, FRAME_MSG_PRE, body, len, b, id);
}

void outq_set_mode(outq *q, uint8_t mode) {
    for (int i = 0; i < 2; i++) {
        outbuf *o = &q->b[i];
        assert(mode == OUTQ_WS ? o->mode == OUTQ_HTTP
                               : mode == OUTQ_HTTP && o->total == 0);
        o->mode = mode;
    }
}

int outq_raw(outq *q, const uint8_t *p, size_t n) {
    outbuf *o = &q->b[q->cur];
    assert(o->mode != OUTQ_FRAMES);
    if (buf_reserve(&o->bytes, n, OUTQ_LIMIT)) return -1;
    memcpy(o->bytes.data + o->bytes.len, p, n);
    o->bytes.len += n;
    o->total += n;
    if (o->mode == OUTQ_HTTP) o->opaque += n;
    return 0;
}

/* The record at o->bytes.data + off (4): the s2c frame it carries in *f
 * and 1, or 0 for a WebSocket control frame. *hdr: the bytes before the
 * body (for a MSG frame: its payload, f's body and len, after the prefix
 * *pre) in `bytes`; *logical: the record's logical size. */
static int record(const outbuf *o, size_t off, frame_s2c *f,
                  const uint8_t **pre, size_t *hdr, size_t *logical) {
    const uint8_t *p = o->bytes.data + off;
    size_t wsh = 0;
    if (o->mode == OUTQ_WS) {
        uint8_t op;
        uint64_t n;
        wsh = ws_hdr_rd(p, &op, &n);
        if (op != WS_BINARY) {
            *hdr = *logical = wsh + (size_t)n;
            return 0;
        }
        p += wsh;
    }
    f->sender = frame_rd32(p);
    f->type = p[4];
    f->len = frame_rd32(p + 5);
    f->body = p + FRAME_S2C_HDR;
    *hdr = wsh + FRAME_S2C_HDR;
    *logical = *hdr + f->len;
    *pre = NULL;
    if (f->type == FRAME_MSG) { /* (we wrote it: len >= FRAME_MSG_PRE) */
        *pre = f->body;
        f->body += FRAME_MSG_PRE;
        f->len -= FRAME_MSG_PRE;
        *hdr += FRAME_MSG_PRE;
    }
    return 1;
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
    o->opaque = 0;
    o->ids.head = o->ids.n = 0;
    o->max_id = 0;
}

void outq_walk(const outbuf *o, size_t sent, outq_frame_fn fn, void *ctx) {
    size_t off = o->opaque, logical = o->opaque, k = o->ids.head, r = 0;
    while (off < o->bytes.len) {
        frame_s2c f;
        const uint8_t *pre;
        size_t hdr, size, next;
        int data = record(o, off, &f, &pre, &hdr, &size);
        if (data && r < o->nrefs && o->refs[r].at == off + hdr) {
            f.body = o->refs[r++].p;
            next = off + hdr;
        } else {
            next = off + size;
        }
        uint64_t id = 0;
        if (k < o->ids.n && o->ids.v[k].seq == off) id = o->ids.v[k++].id;
        logical += size;
        if (data) fn(ctx, &f, pre, id, logical <= sent);
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
        size_t off = o->opaque, r = 0;                                /* (4) */
        assert(o->opaque <= o->bytes.len);
        assert(o->mode != OUTQ_HTTP ||
               (o->opaque == o->bytes.len && o->nrefs == 0));
        while (off < o->bytes.len) {
            frame_s2c f;
            const uint8_t *pre;
            size_t hdr, size;
            assert(off + (o->mode ? 2 : FRAME_S2C_HDR) <= o->bytes.len);
            int data = record(o, off, &f, &pre, &hdr, &size);
            assert(off + hdr <= o->bytes.len);
            if (data && r < o->nrefs && o->refs[r].at == off + hdr) {
                assert(o->refs[r].len == f.len);
                r++;
                off += hdr;
            } else {
                off += size;
            }
        }
        assert(off == o->bytes.len && r == o->nrefs);
    }
#else
    (void)q;
#endif
    return 1;
}
