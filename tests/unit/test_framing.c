/*
 * test_framing.c -- unit tests for src/server/framing_raw.{h,c}, the layer
 * that finds chat frames in a byte stream, against a model session (the
 * sink below).
 *
 * Covers: the same frames whatever the split of the stream (at once, in
 * every chunk size up to 40, byte by byte); each header seen once and
 * before its body; refused bodies skipped as they arrive, without being
 * kept (a 1 MiB refused body costs no memory); large bodies read straight
 * into the layer's block (framing_raw_target) and handed up with that
 * block, which a sink keeping references lends away (its bytes stay
 * intact while the next frames arrive); a header announcing 16 MiB followed
 * by a trickle holds one read's worth, not 16 MiB; pause (a login) and
 * resume; stop; and the layer's invariants after every step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "server/framing_raw.h"
#include "testutil.h"

#define SCRATCH 65536u
#define MAXF 64

/* The model session. */
typedef struct sink_state {
    int headers, frames;
    uint32_t sender[MAXF];
    uint8_t type[MAXF];
    uint32_t len[MAXF];
    uint32_t sum[MAXF];        /* of the body bytes */
    blk *blk[MAXF];            /* references kept (keep_refs) */
    int at_start[MAXF];        /* the frame begins its block (read into
                                  place from its first byte) */
    int keep_refs;             /* take a reference to large frames' blocks */
    uint8_t skip_type, stop_type, pause_type;
    uint32_t max_frame;
} sink_state;

static uint32_t sum(const uint8_t *p, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) s = s * 31 + p[i];
    return s;
}

static int on_header(void *ctx, const frame_c2s *h) {
    sink_state *s = ctx;
    s->headers++;
    if (h->type == s->stop_type || h->len > s->max_frame) return FRAMING_STOP;
    if (h->type == s->skip_type) return FRAMING_SKIP;
    return FRAMING_BODY;
}

static int on_frame(void *ctx, const frame_c2s *f, blk *b) {
    sink_state *s = ctx;
    assert_true(s->frames < MAXF);
    int i = s->frames++;
    s->sender[i] = f->sender;
    s->type[i] = f->type;
    s->len[i] = f->len;
    s->sum[i] = sum(f->body, f->len);
    if (b) assert_true(f->body >= b->data && f->body + f->len <= b->data + b->cap);
    s->at_start[i] = b && f->body == b->data + FRAME_C2S_HDR;
    if (s->keep_refs && b) {
        blk_ref(b);
        s->blk[i] = b;
    }
    return f->type == s->pause_type ? FRAMING_PAUSE : FRAMING_NEXT;
}

static const framing_sink sink = {on_header, on_frame};

static void init(framing_raw *fr, blkpool *pool, sink_state *s) {
    memset(s, 0, sizeof *s);
    s->skip_type = 0x7f;
    s->stop_type = 0x7e;
    s->pause_type = 0x80;
    s->max_frame = 16u << 20;
    blkpool_init(pool);
    framing_raw_init(fr, pool, s->max_frame, &sink, s);
}

static void done(framing_raw *fr, blkpool *pool, sink_state *s) {
    for (int i = 0; i < s->frames; i++) blk_unref(s->blk[i]);
    framing_raw_free(fr);
    (void)blkpool_free(pool);
}

/* Append a c2s frame with a deterministic body; returns its length. */
static size_t put(uint8_t *out, uint32_t sender, uint8_t type, uint32_t len,
                  uint32_t seed) {
    frame_put_c2s_hdr(out, sender, 9, type, len);
    for (uint32_t i = 0; i < len; i++) out[FRAME_C2S_HDR + i] = (uint8_t)(seed + i * 13);
    return FRAME_C2S_HDR + len;
}

/* Feed p[0..n) the way the connection does: each read goes where
 * framing_raw_target says (the block), else into a scratch buffer; a read
 * is at most `chunk` bytes. */
static void feed(framing_raw *fr, const uint8_t *p, size_t n, size_t chunk) {
    static uint8_t scratch[SCRATCH];
    while (n) {
        uint8_t *dst = scratch;
        size_t cap = sizeof scratch;
        int t = framing_raw_target(fr, sizeof scratch, &dst, &cap);
        assert_true(t >= 0);
        size_t k = n < chunk ? n : chunk;
        if (k > cap) k = cap;
        memcpy(dst, p, k);
        assert_int_equal(framing_raw_input(fr, dst, k), 0);
        assert_true(framing_raw_check(fr));
        p += k;
        n -= k;
    }
}

/* A stream of 12 frames of sizes 0..300, one refused (its body skipped). */
static size_t stream(uint8_t *out) {
    size_t n = 0;
    for (uint32_t i = 0; i < 12; i++)
        n += put(out + n, 100 + i, i == 5 ? 0x7f : FRAME_TEXT, (i * 37) % 301, i);
    return n;
}

static void test_any_split(void **state) {
    (void)state;
    uint8_t buf[8192];
    size_t n = stream(buf);
    for (size_t chunk = 1; chunk <= 40; chunk++) {
        framing_raw fr;
        blkpool pool;
        sink_state s;
        init(&fr, &pool, &s);
        feed(&fr, buf, n, chunk == 40 ? n : chunk);
        assert_int_equal(s.headers, 12);
        assert_int_equal(s.frames, 11);
        for (int i = 0, k = 0; i < 12; i++) {
            if (i == 5) continue;
            uint32_t len = ((uint32_t)i * 37) % 301;
            uint8_t want[FRAME_C2S_HDR + 301];
            put(want, 100 + (uint32_t)i, FRAME_TEXT, len, (uint32_t)i);
            assert_int_equal(s.sender[k], 100 + i);
            assert_int_equal(s.len[k], len);
            assert_int_equal(s.sum[k], sum(want + FRAME_C2S_HDR, len));
            k++;
        }
        assert_false(framing_raw_partial(&fr));
        done(&fr, &pool, &s);
    }
}

static void test_large_body_read_into_place(void **state) {
    (void)state;
    uint32_t big = 1u << 20;
    size_t n = 2 * (FRAME_C2S_HDR + big) + 2 * (FRAME_C2S_HDR + 5);
    uint8_t *buf = malloc(n);
    size_t off = put(buf, 1, FRAME_PICTURE, big, 1);
    off += put(buf + off, 1, FRAME_TEXT, 5, 2);
    off += put(buf + off, 1, FRAME_VIDEO, big, 3);
    off += put(buf + off, 1, FRAME_TEXT, 5, 4);
    assert_int_equal(off, n);
    framing_raw fr;
    blkpool pool;
    sink_state s;
    init(&fr, &pool, &s);
    s.keep_refs = 1;
    feed(&fr, buf, n, SCRATCH);
    assert_int_equal(s.frames, 4);
    assert_int_equal(s.len[0], big);
    assert_int_equal(s.len[2], big);
    /* Both large bodies came in blocks, lent to the model: two blocks. */
    assert_non_null(s.blk[0]);
    assert_non_null(s.blk[2]);
    assert_ptr_not_equal(s.blk[0], s.blk[2]);
    /* After the first large frame the peer is in large mode: the next one
     * was read into its block from its first byte (nothing copied). */
    assert_true(fr.big >= FRAMING_RAW_BIG);
    assert_true(s.at_start[2]);
    /* The lent blocks still hold their frames. */
    assert_int_equal(sum(buf + FRAME_C2S_HDR, big), s.sum[0]);
    assert_int_equal(sum(s.blk[0]->data + FRAME_C2S_HDR, big), s.sum[0]);
    size_t third = 2 * FRAME_C2S_HDR + big + 5;
    assert_int_equal(sum(s.blk[2]->data + FRAME_C2S_HDR, big),
                     sum(buf + third + FRAME_C2S_HDR, big));
    /* Their receivers done, the blocks go back to the pool (or stay with
     * the layer, which reads on into the room they have), and the next
     * large frame needs no new memory. */
    blk_unref(s.blk[0]);
    blk_unref(s.blk[2]);
    s.blk[0] = s.blk[2] = NULL;
    size_t idle = pool.bytes;
    blk *before = fr.in;
    feed(&fr, buf, FRAME_C2S_HDR + big, SCRATCH);
    assert_int_equal(s.frames, 5);
    assert_int_equal(s.sum[4], s.sum[0]);
    assert_true(fr.in == before || pool.bytes < idle);
    done(&fr, &pool, &s);
    free(buf);
}

static void test_refused_body_not_kept(void **state) {
    (void)state;
    uint32_t big = 1u << 20;
    uint8_t *buf = malloc(FRAME_C2S_HDR + big + FRAME_C2S_HDR + 3);
    size_t n = put(buf, 1, 0x7f, big, 1);
    n += put(buf + n, 1, FRAME_TEXT, 3, 2);
    framing_raw fr;
    blkpool pool;
    sink_state s;
    init(&fr, &pool, &s);
    feed(&fr, buf, n, 1000);
    assert_int_equal(s.headers, 2);
    assert_int_equal(s.frames, 1);
    assert_int_equal(s.len[0], 3);
    assert_true(fr.in == NULL || fr.in->cap <= 4096);
    done(&fr, &pool, &s);
    free(buf);
}

static void test_trickle_holds_what_arrived(void **state) {
    (void)state;
    uint8_t hdr[FRAME_C2S_HDR + 100];
    frame_put_c2s_hdr(hdr, 1, 2, FRAME_TEXT, 16u << 20);
    memset(hdr + FRAME_C2S_HDR, 'x', 100);
    framing_raw fr;
    blkpool pool;
    sink_state s;
    init(&fr, &pool, &s);
    feed(&fr, hdr, sizeof hdr, 1);
    assert_int_equal(s.headers, 1);
    assert_int_equal(s.frames, 0);
    assert_true(framing_raw_partial(&fr));
    /* A read's worth (the scratch size) to read into, grown at most
     * twofold: not 16 MiB. */
    assert_true(fr.in->cap <= 4 * SCRATCH);
    done(&fr, &pool, &s);
}

static void test_pause_resume_stop(void **state) {
    (void)state;
    uint8_t buf[512];
    size_t n = put(buf, 1, FRAME_TEXT, 4, 1);
    n += put(buf + n, 1, 0x80, 2, 2);       /* pauses after it */
    n += put(buf + n, 1, FRAME_TEXT, 7, 3);
    n += put(buf + n, 1, FRAME_VOICE, 9, 4);
    size_t split = n - 5;                   /* the last frame split */
    framing_raw fr;
    blkpool pool;
    sink_state s;
    init(&fr, &pool, &s);
    feed(&fr, buf, split, split);
    assert_int_equal(s.frames, 2);          /* paused after the HELLO */
    assert_true(fr.paused);
    uint8_t *dst;
    size_t cap;
    assert_int_equal(framing_raw_target(&fr, SCRATCH, &dst, &cap), 0);
    s.pause_type = 0;
    assert_int_equal(framing_raw_resume(&fr), 0);
    assert_true(framing_raw_check(&fr));
    assert_int_equal(s.frames, 3);
    assert_int_equal(s.len[2], 7);
    feed(&fr, buf + split, n - split, 64);
    assert_int_equal(s.frames, 4);
    assert_int_equal(s.type[3], FRAME_VOICE);
    /* A frame that stops the session: nothing after it is seen. */
    uint8_t more[64];
    size_t m = put(more, 1, 0x7e, 3, 5);
    m += put(more + m, 1, FRAME_TEXT, 3, 6);
    int headers = s.headers;
    feed(&fr, more, m, m);
    assert_int_equal(s.headers, headers + 1);
    assert_int_equal(s.frames, 4);
    assert_true(fr.stopped);
    feed(&fr, more, m, m); /* ignored */
    assert_int_equal(s.headers, headers + 1);
    done(&fr, &pool, &s);
}

/* Blocks lent to receivers are replaced by blocks sized for the frames,
 * not by ever larger ones (a bug doubled the size at every lent frame,
 * until a 1 MiB stream held blocks of 128 MiB). */
static void test_lent_blocks_do_not_grow(void **state) {
    (void)state;
    static const uint32_t sizes[] = {100000, 300000, 2000000};
    uint8_t *buf = malloc(FRAME_C2S_HDR + 2000000);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        framing_raw fr;
        blkpool pool;
        sink_state s;
        init(&fr, &pool, &s);
        size_t n = put(buf, 1, FRAME_VIDEO, sizes[k], (uint32_t)k);
        size_t bound = 4 * n; /* (a pooled block may be up to 4x) */
        for (int i = 0; i < 40; i++) {
            s.keep_refs = 1; /* every block stays lent */
            feed(&fr, buf, n, SCRATCH);
            assert_true(fr.in == NULL || fr.in->cap <= bound);
            if (s.frames == MAXF - 1) { /* let the model drop its refs */
                for (int j = 0; j < s.frames; j++) blk_unref(s.blk[j]);
                memset(&s.blk, 0, sizeof s.blk);
                s.frames = 0;
            }
        }
        done(&fr, &pool, &s);
    }
    free(buf);
}

static void test_random_streams(void **state) {
    (void)state;
    uint32_t seed = 12345;
    uint8_t *buf = malloc(1 << 21);
    for (int round = 0; round < 50; round++) {
        size_t n = 0;
        int frames = 0;
        uint32_t lens[MAXF];
        while (frames < 20) {
            uint32_t r = rng_next(&seed);
            uint32_t len = r % 4 == 0 ? 70000 + r % 100000 : r % 200;
            lens[frames++] = len;
            n += put(buf + n, 1, FRAME_TEXT, len, r);
        }
        framing_raw fr;
        blkpool pool;
        sink_state s;
        init(&fr, &pool, &s);
        s.keep_refs = round % 2;
        feed(&fr, buf, n, 1 + rng_next(&seed) % 90000);
        assert_int_equal(s.frames, 20);
        for (int i = 0; i < 20; i++) assert_int_equal(s.len[i], lens[i]);
        done(&fr, &pool, &s);
    }
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_split),
        cmocka_unit_test(test_large_body_read_into_place),
        cmocka_unit_test(test_refused_body_not_kept),
        cmocka_unit_test(test_trickle_holds_what_arrived),
        cmocka_unit_test(test_pause_resume_stop),
        cmocka_unit_test(test_lent_blocks_do_not_grow),
        cmocka_unit_test(test_random_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
