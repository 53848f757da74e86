/*
 * test_outq.c -- unit tests for src/server/outq.{h,c} (a connection's
 * output queue) and src/common/blk.{h,c} (the blocks it references).
 *
 * Covers: small frames copied, large bodies in a block referenced (the
 * iovec list then reads as the same byte stream a copy would have given,
 * and the block's reference count follows the queue), the swap of the two
 * buffers, outq_walk's frames, store ids and "sent" boundaries, reset and
 * shrink, and the pool's reuse and aging of blocks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

/* gcc 12 at -O1 (the sanitizer build) warns (array bounds, over-read)
 * about the inline fast path of outq_frame when it is handed a large body
 * in a block, though that path is taken only for bodies it copies into a
 * buffer with room (both checked first): false positives. */
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#include "server/outq.h"

/* A pooled block within 4x of need, else a new one (as the framing layer
 * takes them). */
static blk *get(blkpool *p, size_t need) {
    blk *b = blk_pooled(p, need, 4 * need);
    return b ? b : blk_new(p, need);
}

/* The logical bytes of buffer o, by its iovec list. */
static size_t flatten(outq *q, const outbuf *o, uint8_t *out, size_t cap) {
    uv_buf_t *iov;
    unsigned n;
    assert_int_equal(outq_iov(q, o, &iov, &n), 0);
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        assert_true(len + iov[i].len <= cap);
        memcpy(out + len, iov[i].base, iov[i].len);
        len += iov[i].len;
    }
    return len;
}

/* The s2c frame (from, type, body[0..len)) as a copy would queue it. */
static size_t s2c(uint8_t *out, uint32_t from, uint8_t type,
                  const uint8_t *body, uint32_t len) {
    frame_put_s2c_hdr(out, from, type, len);
    memcpy(out + FRAME_S2C_HDR, body, len);
    return FRAME_S2C_HDR + len;
}

static void test_small_frames_copied(void **state) {
    (void)state;
    outq q = {0};
    blkpool pool;
    blkpool_init(&pool);
    blk *b = get(&pool, 100);
    memcpy(b->data, "hello", 5);
    /* A small body in a block is copied all the same. */
    assert_int_equal(outq_frame(&q, 7, FRAME_TEXT, b->data, 5, b, 0), 0);
    assert_int_equal(outq_frame(&q, 0, FRAME_ACK, (const uint8_t *)"12345678",
                                8, NULL, 0), 0);
    assert_int_equal(b->refs, 1);
    assert_int_equal(outq_total(&q), 2 * FRAME_S2C_HDR + 13);
    uint8_t got[64], want[64];
    size_t wl = s2c(want, 7, FRAME_TEXT, (const uint8_t *)"hello", 5);
    wl += s2c(want + wl, 0, FRAME_ACK, (const uint8_t *)"12345678", 8);
    assert_int_equal(flatten(&q, outq_cur(&q), got, sizeof got), wl);
    assert_memory_equal(got, want, wl);
    assert_true(outq_check(&q));
    blk_unref(b);
    outq_free(&q);
    (void)blkpool_free(&pool);
}

static void test_large_bodies_referenced(void **state) {
    (void)state;
    outq q = {0};
    blkpool pool;
    blkpool_init(&pool);
    size_t big = 3 * OUTQ_REF_MIN;
    blk *b = get(&pool, big + 13);
    for (size_t i = 0; i < big; i++) b->data[13 + i] = (uint8_t)(i * 7);
    const uint8_t *body = b->data + 13;
    assert_int_equal(outq_frame(&q, 1, FRAME_TEXT, (const uint8_t *)"a", 1,
                                NULL, 11), 0);
    assert_int_equal(outq_frame(&q, 2, FRAME_PICTURE, body, (uint32_t)big, b,
                                12), 0);
    assert_int_equal(outq_frame(&q, 3, FRAME_VIDEO, body, (uint32_t)big, b, 0),
                     0);
    assert_int_equal(outq_frame(&q, 4, FRAME_TEXT, (const uint8_t *)"z", 1,
                                NULL, 14), 0);
    assert_int_equal(b->refs, 3); /* ours and two references */
    outbuf *o = outq_cur(&q);
    assert_int_equal(o->nrefs, 2);
    /* Only the headers and the small bodies were copied. */
    assert_int_equal(o->bytes.len, 4 * FRAME_S2C_HDR + 2);
    size_t total = 4 * FRAME_S2C_HDR + 2 + 2 * big;
    assert_int_equal(o->total, total);
    uint8_t *want = malloc(total), *got = malloc(total);
    size_t wl = s2c(want, 1, FRAME_TEXT, (const uint8_t *)"a", 1);
    wl += s2c(want + wl, 2, FRAME_PICTURE, body, (uint32_t)big);
    wl += s2c(want + wl, 3, FRAME_VIDEO, body, (uint32_t)big);
    wl += s2c(want + wl, 4, FRAME_TEXT, (const uint8_t *)"z", 1);
    assert_int_equal(wl, total);
    assert_int_equal(flatten(&q, o, got, total), total);
    assert_memory_equal(got, want, total);
    assert_true(outq_check(&q));
    /* Written: the references go, the memory stays. */
    outq_swap(&q);
    assert_int_equal(outq_other(&q)->total, total);
    outq_reset(outq_other(&q));
    assert_int_equal(b->refs, 1);
    assert_int_equal(outq_total(&q), 0);
    assert_true(outq_check(&q));
    assert_true(outq_shrink(&q) > 0);
    blk_unref(b);
    free(want);
    free(got);
    outq_free(&q);
    (void)blkpool_free(&pool);
}

typedef struct seen {
    uint32_t from[8];
    uint64_t id[8];
    int sent[8];
    uint32_t len[8];
    uint8_t first[8];
    uint8_t pre0[8];   /* the first byte of a MSG prefix, 0 without */
    int n;
} seen;

static void on_frame(void *ctx, const frame_s2c *f, const uint8_t *pre,
                     uint64_t id, int sent) {
    seen *s = ctx;
    assert_true(s->n < 8);
    s->pre0[s->n] = pre ? pre[0] : 0;
    s->from[s->n] = f->sender;
    s->id[s->n] = id;
    s->sent[s->n] = sent;
    s->len[s->n] = f->len;
    s->first[s->n] = f->len ? f->body[0] : 0;
    s->n++;
}

static void test_walk(void **state) {
    (void)state;
    outq q = {0};
    blkpool pool;
    blkpool_init(&pool);
    uint32_t big = OUTQ_REF_MIN;
    blk *b = get(&pool, big);
    memset(b->data, 0xab, big);
    assert_int_equal(outq_frame(&q, 1, FRAME_TEXT, (const uint8_t *)"x", 1,
                                NULL, 0), 0);
    assert_int_equal(outq_frame(&q, 2, FRAME_VOICE, b->data, big, b, 22), 0);
    assert_int_equal(outq_frame(&q, 3, FRAME_TEXT, (const uint8_t *)"y", 1,
                                NULL, 33), 0);
    /* The first frame and half of the second were sent. */
    seen s = {0};
    outq_walk(outq_cur(&q), FRAME_S2C_HDR + 1 + 100, on_frame, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.from[0], 1);
    assert_int_equal(s.id[0], 0);
    assert_true(s.sent[0]);
    assert_int_equal(s.from[1], 2);
    assert_int_equal(s.id[1], 22);
    assert_false(s.sent[1]);
    assert_int_equal(s.len[1], big);
    assert_int_equal(s.first[1], 0xab);
    assert_int_equal(s.id[2], 33);
    assert_int_equal(s.first[2], 'y');
    memset(&s, 0, sizeof s);
    outq_walk(outq_cur(&q), outq_cur(&q)->total, on_frame, &s);
    assert_true(s.sent[0] && s.sent[1] && s.sent[2]);
    outq_free(&q);
    assert_int_equal(b->refs, 1);
    blk_unref(b);
    (void)blkpool_free(&pool);
}

/* A MSG frame: header, prefix, then the payload (referenced when large);
 * the walk gives the payload and the prefix apart, the wire bytes the
 * whole frame. */
static void test_msg_frames(void **state) {
    (void)state;
    outq q = {0};
    blkpool pool;
    blkpool_init(&pool);
    uint32_t big = OUTQ_REF_MIN;
    blk *b = get(&pool, big);
    memset(b->data, 0xcd, big);
    uint8_t pre[FRAME_MSG_PRE];
    memset(pre, 0x11, sizeof pre);
    assert_int_equal(outq_msg(&q, 7, pre, (const uint8_t *)"hi", 2, NULL, 0),
                     0);
    pre[0] = 0x22;
    assert_int_equal(outq_msg(&q, 8, pre, b->data, big, b, 44), 0);
    assert_true(outq_check(&q));
    outbuf *o = outq_cur(&q);
    assert_int_equal(o->total, 2 * (FRAME_S2C_HDR + FRAME_MSG_PRE) + 2 + big);
    assert_int_equal(o->nrefs, 1);
    const uint8_t *w = o->bytes.data;
    assert_int_equal(w[4], FRAME_MSG);
    assert_int_equal(frame_rd32(w + 5), FRAME_MSG_PRE + 2);
    assert_int_equal(w[FRAME_S2C_HDR], 0x11);
    assert_memory_equal(w + FRAME_S2C_HDR + FRAME_MSG_PRE, "hi", 2);
    seen s = {0};
    outq_walk(o, 0, on_frame, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.pre0[0], 0x11);
    assert_int_equal(s.len[0], 2);
    assert_int_equal(s.first[0], 'h');
    assert_int_equal(s.pre0[1], 0x22);
    assert_int_equal(s.len[1], big);
    assert_int_equal(s.first[1], 0xcd);
    assert_int_equal(s.id[1], 44);
    outq_free(&q);
    blk_unref(b);
    (void)blkpool_free(&pool);
}

static void test_pool(void **state) {
    (void)state;
    blkpool p;
    blkpool_init(&p);
    blk *a = get(&p, 1 << 20);
    blk *b = get(&p, 1 << 20);
    assert_int_equal(p.hits, 0);
    blk_ref(a);
    blk_unref(a);
    assert_int_equal(p.nidle, 0); /* still referenced */
    blk_unref(a);
    blk_unref(b);
    assert_int_equal(p.nidle, 2);
    /* Reused for a need within 4x of its size, not for a tiny one. */
    blk *c = get(&p, 300 * 1024);
    assert_int_equal(p.hits, 1);
    assert_int_equal(c->cap, 1 << 20);
    blk *d = get(&p, 1000);
    assert_int_equal(p.hits, 1);
    assert_int_equal(d->cap, 1000);
    blk_unref(c);
    blk_unref(d);
    /* Aging: the first trim keeps what was returned since; the second
     * frees what stayed idle through a whole period. */
    size_t idle = p.bytes;
    assert_int_equal(blkpool_trim(&p), 0);
    assert_int_equal(p.bytes, idle);
    blk *e = get(&p, 1 << 20); /* used again: young again */
    blk_unref(e);
    assert_true(blkpool_trim(&p) > 0);
    assert_int_equal(p.nidle, 1);
    assert_true(blkpool_trim(&p) > 0);
    assert_int_equal(p.nidle, 0);
    (void)blkpool_free(&p);
}

static void test_pool_bound(void **state) {
    (void)state;
    blkpool p;
    blkpool_init(&p);
    blk *v[BLKPOOL_MAX_BLOCKS + 4];
    for (size_t i = 0; i < BLKPOOL_MAX_BLOCKS + 4; i++) v[i] = get(&p, 64);
    for (size_t i = 0; i < BLKPOOL_MAX_BLOCKS + 4; i++) blk_unref(v[i]);
    assert_int_equal(p.nidle, BLKPOOL_MAX_BLOCKS);
    blk *huge = get(&p, BLKPOOL_MAX_BYTES + 1); /* too big to keep */
    assert_int_equal(blkpool_free(&p), BLKPOOL_MAX_BLOCKS * 64);
    blk_unref(huge);
    assert_int_equal(p.nidle, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_frames_copied),
        cmocka_unit_test(test_large_bodies_referenced),
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_msg_frames),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
