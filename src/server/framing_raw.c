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

/* The bytes held and not yet handed up. */
static size_t held(const framing_raw *fr) { return fr->inlen - fr->off; }

/* Make the held bytes start a block of ours with at least `need` bytes of
 * capacity from their start. `total`: the size of the frame being gathered
 * (0: unknown, or a paused backlog). A block of ours alone slides its held
 * bytes to the front and grows geometrically, never past the frame's size
 * (a trickle costs what has arrived); a lent block is left to its
 * receivers and the held bytes are copied to another block. A pooled block
 * big enough for the whole frame is taken when there is one (no new
 * memory). 0 or FRAMING_ENOMEM. */
static int relocate(framing_raw *fr, size_t need, size_t total) {
    size_t part = held(fr);
    blk *in = fr->in;
    if (in && in->refs == 1) {
        if (fr->off) {
            if (part) memmove(in->data, in->data + fr->off, part);
            fr->off = 0;
            fr->inlen = part;
        }
        if (in->cap >= need) return 0;
    }
    size_t whole = total > need ? total : need;
    blk *b = blk_pooled(fr->pool, whole, whole > SIZE_MAX / 4 ? SIZE_MAX
                                                              : 4 * whole);
    if (!b) {
        /* Our own block grows twofold; a new one (none yet, or the old one
         * lent) is sized for what is needed, never from the lent one (that
         * would double block sizes at every frame). */
        size_t cap = in && in->refs == 1 ? in->cap * 2
                     : need <= IN_FIRST_SMALL ? IN_FIRST_SMALL : IN_FIRST;
        if (total && cap > total) cap = total;
        if (cap < need) cap = need;
        if (in && in->refs == 1) {
            blk *n = blk_resize(in, cap);
            if (!n) return FRAMING_ENOMEM;
            fr->in = n;
            return 0;
        }
        b = blk_new(fr->pool, cap);
        if (!b) return FRAMING_ENOMEM;
    }
    if (part) {
        assert(in); /* bytes are held only in a block */
        memcpy(b->data, in->data + fr->off, part);
    }
    blk_unref(in);
    fr->in = b;
    fr->off = 0;
    fr->inlen = part;
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
        if ((size_t)r >= FRAMING_RAW_BIG) fr->big = (uint32_t)r;
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

/* Append p[0..n) to the held bytes (a partial frame, or the paused rest). */
static int keep(framing_raw *fr, const uint8_t *p, size_t n) {
    if (n == 0) return 0;
    size_t part = held(fr);
    size_t total = fr->paused || part + n < FRAME_C2S_HDR
                       ? 0
                       : (size_t)frame_c2s_total(part ? fr->in->data + fr->off
                                                      : p,
                                                 part ? part : n);
    if (!fr->in || fr->in->cap - fr->inlen < n) { /* (a lent block's room
                                                     after inlen is ours) */
        int r = relocate(fr, part + n, total);
        if (r) return r;
    }
    memcpy(fr->in->data + fr->inlen, p, n);
    fr->inlen += n;
    return 0;
}

/* Hand up what the block holds; keep the rest where it is. */
static int drain(framing_raw *fr) {
    blk *b = fr->in;
    assert(b); /* called when bytes are held */
    int stop;
    size_t used = parse(fr, b->data + fr->off, held(fr), b, &stop);
    if (stop) {
        framing_raw_drop(fr);
        return 0;
    }
    fr->off += used;
    if (fr->off == fr->inlen && b->refs == 1) fr->off = fr->inlen = 0;
    return 0;
}

int framing_raw_target(framing_raw *fr, size_t scratch_len, uint8_t **p,
                       size_t *len) {
    if (fr->paused || fr->stopped || fr->skip) return 0;
    size_t part = held(fr);
    size_t total = part >= FRAME_C2S_HDR
                       ? (size_t)frame_c2s_total(fr->in->data + fr->off, part)
                       : 0;
    size_t limit;
    if (fr->big) {
        /* Large mode: this peer sends large frames, so a new frame is read
         * into a block of the last large frame's size from its first byte,
         * then up to its end: its body is never copied, and the block can
         * be lent whole. (Measured: several medium frames to one larger
         * block, fewer reads, was slower, its memory colder in cache.) */
        size_t want = total ? total : fr->big;
        if (!fr->in || fr->in->cap - fr->off < want) {
            int r = relocate(fr, want, total);
            if (r) return r;
        }
        limit = want - part;
    } else {
        if (!total) return 0;
        size_t rest = total - part;
        if (rest < scratch_len) return 0;
        if (fr->in->cap - fr->inlen < (rest < scratch_len ? rest : scratch_len)) {
            /* Grow at most twofold per read: what a peer makes us hold is
             * what it has sent, whatever its header announced. */
            size_t step = part > scratch_len ? part : scratch_len;
            int r = relocate(fr, step > rest ? total : part + step, total);
            if (r) return r;
        }
        limit = rest;
    }
    size_t room = fr->in->cap - fr->inlen;
    *p = fr->in->data + fr->inlen;
    *len = room < limit ? room : limit;
    assert(*len > 0);
    return 1;
}

int framing_raw_input(framing_raw *fr, const uint8_t *p, size_t n) {
    if (fr->stopped) return 0;
    if (fr->in && p == fr->in->data + fr->inlen) { /* read into place */
        assert(fr->inlen + n <= fr->in->cap);
        fr->inlen += n;
        size_t part = held(fr);
        size_t total = (size_t)frame_c2s_total(fr->in->data + fr->off, part);
        /* Parse once a frame is whole, or to look at a header not yet
         * looked at (large mode reads new frames into place too). */
        if ((total && part >= total) || (!fr->checked && part >= FRAME_C2S_HDR))
            return drain(fr);
        return 0;
    }
    /* First complete the partial frame held with what it lacks: its header
     * (looked at before any body byte is kept), then its body. */
    while (n && held(fr) && !fr->paused && !fr->stopped) {
        size_t part = held(fr);
        size_t total = (size_t)frame_c2s_total(fr->in->data + fr->off, part);
        size_t need = total ? total - part : FRAME_C2S_HDR - part;
        size_t k = need < n ? need : n;
        int r = keep(fr, p, k);
        if (r) return r;
        p += k;
        n -= k;
        if (k == need && (r = drain(fr))) return r;
    }
    if (n == 0 || fr->stopped) return 0;
    if (fr->paused) return keep(fr, p, n); /* kept unparsed, behind the rest */
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
    return held(fr) ? drain(fr) : 0;
}

void framing_raw_drop(framing_raw *fr) {
    fr->off = fr->inlen = 0;
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
    if (held(fr)) return 0;
    fr->big = 0; /* quiet for a while: back to the scratch buffer */
    if (!fr->in) return 0;
    size_t freed = fr->in->refs == 1 ? fr->in->cap : 0;
    blk_unref(fr->in); /* back to the pool, or freed; or left to receivers */
    fr->in = NULL;
    fr->off = fr->inlen = 0;
    return freed;
}

void framing_raw_free(framing_raw *fr) {
    blk_unref(fr->in);
    fr->in = NULL;
    fr->off = fr->inlen = 0;
}

int framing_raw_check(const framing_raw *fr) {
#ifndef NDEBUG
    if (fr->in) {                                                    /* (2) */
        assert(fr->off <= fr->inlen && fr->inlen <= fr->in->cap);
        assert(fr->in->refs >= 1);
        assert(fr->in->refs == 1 || !fr->stopped);
    } else {
        assert(fr->off == 0 && fr->inlen == 0);
    }
    size_t part = fr->inlen - fr->off;
    if (!fr->paused) {                                               /* (1) */
        uint64_t total = part ? frame_c2s_total(fr->in->data + fr->off, part)
                              : 0;
        assert(total == 0 || total > part);
        assert(part <= (size_t)fr->max_frame + FRAME_C2S_HDR);      /* (3) */
    }
    assert(fr->skip == 0 || part == 0);                              /* (4) */
#else
    (void)fr;
#endif
    return 1;
}
