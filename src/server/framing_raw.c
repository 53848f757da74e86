/* framing_raw.c -- see framing_raw.h. */
#include "server/framing_raw.h"

#include <assert.h>
#include <string.h>

/* First capacity of a block for a partial frame: small for a trickled
 * header (thousands of slow peers cost little), else a page. */
#define IN_FIRST_SMALL 64u
#define IN_FIRST 4096u

void framing_raw_init(framing_raw *fr, blkpool *pool, uint32_t max_frame,
                      const framing_sink *sink, void *ctx) {
    memset(fr, 0, sizeof *fr);
    fr->pool = pool;
    fr->max_frame = max_frame;
    fr->sink = sink;
    fr->ctx = ctx;
}

/* Make `in` hold at least `need` bytes (its first inlen kept). `total`: the
 * size of the frame being gathered (0: unknown, or a paused backlog). A
 * pooled block big enough for the whole frame is taken when there is one
 * (no new memory); otherwise the block grows geometrically, never past the
 * frame's size. 0 or FRAMING_ENOMEM. */
static int reserve(framing_raw *fr, size_t need, size_t total) {
    if (fr->in && fr->in->cap >= need) return 0;
    size_t whole = total > need ? total : need;
    blk *b = blk_pooled(fr->pool, whole, whole > SIZE_MAX / 4 ? SIZE_MAX
                                                              : 4 * whole);
    if (!b) {
        size_t cap = fr->in ? fr->in->cap * 2
                            : need <= IN_FIRST_SMALL ? IN_FIRST_SMALL : IN_FIRST;
        if (total && cap > total) cap = total;
        if (cap < need) cap = need;
        if (fr->in) {
            blk *n = blk_resize(fr->in, cap);
            if (!n) return FRAMING_ENOMEM;
            fr->in = n;
            return 0;
        }
        b = blk_new(fr->pool, cap);
        if (!b) return FRAMING_ENOMEM;
    }
    if (fr->in) {
        if (fr->inlen) memcpy(b->data, fr->in->data, fr->inlen);
        blk_unref(fr->in);
    }
    fr->in = b;
    return 0;
}

/* Hand every complete frame of p[0..n) to the sink (b: the block p lies
 * in, or NULL for the caller's scratch). fr->checked says whether the first
 * header was accepted already, and on return whether the header of the
 * partial frame left at the end was. Returns the bytes consumed; *stop is
 * set when the session stopped. */
static size_t parse(framing_raw *fr, const uint8_t *p, size_t n, blk *b,
                    int *stop) {
    size_t off = 0;
    int checked = fr->checked;
    *stop = 0;
    while (off < n && !fr->paused) {
        if (fr->skip) { /* a refused body: dropped as it arrives */
            size_t k = n - off < fr->skip ? n - off : fr->skip;
            off += k;
            fr->skip -= (uint32_t)k;
            continue;
        }
        frame_c2s f;
        long r = frame_decode_c2s(p + off, n - off, UINT32_MAX, &f);
        if (n - off < FRAME_C2S_HDR) break; /* a partial header */
        if (!checked) {
            int v = fr->sink->header(fr->ctx, &f);
            if (v == FRAMING_STOP) {
                *stop = 1;
                return off;
            }
            if (v == FRAMING_SKIP) {
                off += FRAME_C2S_HDR;
                fr->skip = f.len;
                continue;
            }
            checked = 1;
        }
        if (r == FRAME_PARTIAL) break; /* the body is awaited */
        checked = 0;
        off += (size_t)r;
        int v = fr->sink->frame(fr->ctx, &f, b);
        if (v == FRAMING_STOP) {
            *stop = 1;
            return off;
        }
        if (v == FRAMING_PAUSE) fr->paused = 1;
    }
    fr->checked = (uint8_t)checked;
    return off;
}

/* Keep p[0..n) (a partial frame, or the paused rest) in an empty `in`. */
static int keep(framing_raw *fr, const uint8_t *p, size_t n) {
    assert(fr->inlen == 0);
    if (n == 0) return 0;
    size_t total = fr->paused ? 0 : (size_t)frame_c2s_total(p, n);
    int r = reserve(fr, n, total);
    if (r) return r;
    memcpy(fr->in->data, p, n);
    fr->inlen = n;
    return 0;
}

/* Parse what `in` holds; keep the rest (moved to the front, or to a new
 * block when the session kept references to this one). */
static int drain(framing_raw *fr) {
    blk *b = fr->in;
    int stop;
    size_t used = parse(fr, b->data, fr->inlen, b, &stop);
    if (stop) {
        framing_raw_drop(fr);
        return 0;
    }
    size_t rest = fr->inlen - used;
    if (b->refs > 1) { /* lent: the receivers read it until written */
        fr->in = NULL;
        fr->inlen = 0;
        int r = keep(fr, b->data + used, rest);
        blk_unref(b);
        return r;
    }
    if (used && rest) memmove(b->data, b->data + used, rest);
    fr->inlen = rest;
    return 0;
}

int framing_raw_target(framing_raw *fr, size_t scratch_len, uint8_t **p,
                       size_t *len) {
    if (fr->paused || fr->stopped || fr->skip || fr->inlen < FRAME_C2S_HDR)
        return 0;
    size_t total = (size_t)frame_c2s_total(fr->in->data, fr->inlen);
    size_t rest = total - fr->inlen;
    if (rest < scratch_len) return 0;
    if (fr->in->cap == fr->inlen) {
        /* Grow at most twofold per read: what a peer makes us hold is what
         * it has sent, whatever its header announced. */
        size_t step = fr->inlen > scratch_len ? fr->inlen : scratch_len;
        size_t need = step > rest ? total : fr->inlen + step;
        int r = reserve(fr, need, total);
        if (r) return r;
    }
    size_t room = fr->in->cap - fr->inlen;
    *p = fr->in->data + fr->inlen;
    *len = room < rest ? room : rest;
    return 1;
}

int framing_raw_input(framing_raw *fr, const uint8_t *p, size_t n) {
    if (fr->stopped) return 0;
    if (fr->in && p == fr->in->data + fr->inlen) { /* read into place */
        assert(fr->inlen + n <= fr->in->cap);
        fr->inlen += n;
        size_t total = (size_t)frame_c2s_total(fr->in->data, fr->inlen);
        return total && fr->inlen >= total ? drain(fr) : 0;
    }
    /* First complete the partial frame held in `in` with what it lacks:
     * its header (looked at before any body byte is kept), then its body. */
    while (n && fr->inlen && !fr->paused && !fr->stopped) {
        size_t total = (size_t)frame_c2s_total(fr->in->data, fr->inlen);
        size_t need = total ? total - fr->inlen : FRAME_C2S_HDR - fr->inlen;
        size_t k = need < n ? need : n;
        int r = reserve(fr, fr->inlen + k, total);
        if (r) return r;
        memcpy(fr->in->data + fr->inlen, p, k);
        fr->inlen += k;
        p += k;
        n -= k;
        if (k == need && (r = drain(fr))) return r;
    }
    if (n == 0 || fr->stopped) return 0;
    if (fr->paused) { /* kept unparsed, behind what `in` holds already */
        int r = reserve(fr, fr->inlen + n, 0);
        if (r) return r;
        memcpy(fr->in->data + fr->inlen, p, n);
        fr->inlen += n;
        return 0;
    }
    int stop;
    size_t used = parse(fr, p, n, NULL, &stop);
    if (stop) {
        framing_raw_drop(fr);
        return 0;
    }
    return keep(fr, p + used, n - used);
}

int framing_raw_resume(framing_raw *fr) {
    if (!fr->paused) return 0;
    fr->paused = 0;
    fr->checked = 0;
    return fr->inlen ? drain(fr) : 0;
}

void framing_raw_drop(framing_raw *fr) {
    fr->inlen = 0;
    fr->skip = 0;
    fr->checked = 0;
    fr->paused = 0;
    fr->stopped = 1;
    if (fr->in && fr->in->refs > 1) { /* lent: the receivers keep it */
        blk_unref(fr->in);
        fr->in = NULL;
    }
}

size_t framing_raw_shrink(framing_raw *fr) {
    if (!fr->in || fr->inlen) return 0;
    size_t freed = fr->in->cap;
    blk_unref(fr->in); /* back to the pool, or freed */
    fr->in = NULL;
    return freed;
}

void framing_raw_free(framing_raw *fr) {
    blk_unref(fr->in);
    fr->in = NULL;
    fr->inlen = 0;
}

int framing_raw_check(const framing_raw *fr) {
#ifndef NDEBUG
    if (fr->in) {
        assert(fr->in->refs == 1);                                   /* (2) */
        assert(fr->inlen <= fr->in->cap);
    } else {
        assert(fr->inlen == 0);
    }
    if (!fr->paused) {                                               /* (1) */
        uint64_t total = fr->inlen ? frame_c2s_total(fr->in->data, fr->inlen)
                                   : 0;
        assert(total == 0 || total > fr->inlen);
        assert(fr->inlen <= (size_t)fr->max_frame + FRAME_C2S_HDR); /* (3) */
    }
    assert(fr->skip == 0 || fr->inlen == 0);                         /* (4) */
#else
    (void)fr;
#endif
    return 1;
}
