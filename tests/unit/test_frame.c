/*
 * test_frame.c -- unit tests for the wire codec (src/proto/frame.{h,c}).
 *
 * Covers: byte-exact c2s/s2c header layouts (big-endian), decoding at every
 * split point, many frames in one buffer, 0-length bodies, max_body edges
 * (incl. 0 and UINT32_MAX / 4 GiB lengths), frame_*_total, the control
 * bodies (HELLO, WELCOME, ACK, ERROR incl. UTF-8-safe reason truncation),
 * the type/error classification helpers, and byte-by-byte stream feeding.
 * The CONV bodies (HELLO with a device, MSG, POST): test_frame_conv.c.
 *
 * Inputs handed to the decoders are copied into heap buffers of exactly the
 * announced size so that AddressSanitizer catches any read past `n`.
 *
 * Build: gcc -std=c11 -Isrc tests/unit/test_frame.c src/proto/frame.c -lcmocka
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Deterministic, varied body byte for frame `i`, offset `j`. */
static uint8_t body_byte(unsigned i, unsigned j) {
    return (uint8_t)(i * 31u + j * 7u + 0x5Au + (j >> 3));
}

/* Parameters of the i-th frame in the multi-frame / stream tests. */
static uint32_t mf_len(unsigned i) {
    if (i % 10 == 0) return 0;              /* regular 0-length bodies */
    return (uint32_t)((i * 37u) % 301u);    /* 0..300, varied */
}
static uint32_t mf_sender(unsigned i) { return 0x10000000u + i * 0x01010101u; }
static uint32_t mf_receiver(unsigned i) { return 0xFFFFFFFFu - i * 977u; }
static uint8_t mf_type(unsigned i) { return (uint8_t)(1u + i % 4u); }

/* Append a c2s frame i to out at *off. */
static void put_c2s_frame(uint8_t *out, size_t *off, unsigned i) {
    uint32_t len = mf_len(i);
    *off += frame_put_c2s_hdr(out + *off, mf_sender(i), mf_receiver(i),
                              mf_type(i), len);
    for (uint32_t j = 0; j < len; j++) out[(*off)++] = body_byte(i, j);
}

/* Append an s2c frame i to out at *off. */
static void put_s2c_frame(uint8_t *out, size_t *off, unsigned i) {
    uint32_t len = mf_len(i);
    *off += frame_put_s2c_hdr(out + *off, mf_sender(i), mf_type(i), len);
    for (uint32_t j = 0; j < len; j++) out[(*off)++] = body_byte(i, j);
}

static void check_body(const uint8_t *body, uint32_t len, unsigned i) {
    for (uint32_t j = 0; j < len; j++) assert_int_equal(body[j], body_byte(i, j));
}

/* ------------------------------------------------------------------ */
/* 1. Byte-exact header layouts                                        */
/* ------------------------------------------------------------------ */

static void test_c2s_header_layout(void **state) {
    (void)state;
    /* struct.pack("!IIBI", 10000000, 10000001, 1, 5):
     * 10000000 = 0x00989680, 10000001 = 0x00989681 */
    static const uint8_t want[13] = {
        0x00, 0x98, 0x96, 0x80,  0x00, 0x98, 0x96, 0x81,  0x01,
        0x00, 0x00, 0x00, 0x05
    };
    uint8_t out[FRAME_C2S_HDR + 1];
    memset(out, 0xEE, sizeof out);
    assert_int_equal(frame_put_c2s_hdr(out, 10000000u, 10000001u, 1, 5), 13);
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(out[13], 0xEE); /* nothing written past the header */

    /* Every position distinct: catches swapped fields or little-endian. */
    static const uint8_t want2[13] = {
        0x01, 0x02, 0x03, 0x04,  0x05, 0x06, 0x07, 0x08,  0x09,
        0x0A, 0x0B, 0x0C, 0x0D
    };
    assert_int_equal(frame_put_c2s_hdr(out, 0x01020304u, 0x05060708u, 0x09,
                                       0x0A0B0C0Du), FRAME_C2S_HDR);
    assert_memory_equal(out, want2, sizeof want2);

    /* Extremes. */
    static const uint8_t want3[13] = {
        0xFF, 0xFF, 0xFF, 0xFF,  0x00, 0x00, 0x00, 0x00,  0xFF,
        0xFF, 0xFF, 0xFF, 0xFF
    };
    frame_put_c2s_hdr(out, UINT32_MAX, 0, 0xFF, UINT32_MAX);
    assert_memory_equal(out, want3, sizeof want3);
}

static void test_s2c_header_layout(void **state) {
    (void)state;
    /* struct.pack("!IBI", 10000000, 1, 5) */
    static const uint8_t want[9] = {
        0x00, 0x98, 0x96, 0x80,  0x01,  0x00, 0x00, 0x00, 0x05
    };
    uint8_t out[FRAME_S2C_HDR + 1];
    memset(out, 0xEE, sizeof out);
    assert_int_equal(frame_put_s2c_hdr(out, 10000000u, 1, 5), 9);
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(out[9], 0xEE);

    static const uint8_t want2[9] = {
        0x01, 0x02, 0x03, 0x04,  0x05,  0x06, 0x07, 0x08, 0x09
    };
    assert_int_equal(frame_put_s2c_hdr(out, 0x01020304u, 0x05, 0x06070809u),
                     FRAME_S2C_HDR);
    assert_memory_equal(out, want2, sizeof want2);
}

/* Decoding hand-written bytes (independent of the encoder). */
static void test_decode_handwritten(void **state) {
    (void)state;
    static const uint8_t c2s[13 + 5] = {
        0x00, 0x98, 0x96, 0x80,  0x00, 0x98, 0x96, 0x81,  0x01,
        0x00, 0x00, 0x00, 0x05,  'h', 'e', 'l', 'l', 'o'
    };
    uint8_t *b = copy_exact(c2s, sizeof c2s);
    frame_c2s f = {0};
    assert_int_equal(frame_decode_c2s(b, sizeof c2s, 1024, &f), 18);
    assert_int_equal(f.sender, 10000000u);
    assert_int_equal(f.receiver, 10000001u);
    assert_int_equal(f.type, FRAME_TEXT);
    assert_int_equal(f.len, 5);
    assert_ptr_equal(f.body, b + 13);
    assert_memory_equal(f.body, "hello", 5);
    free(b);

    static const uint8_t s2c[9 + 3] = {
        0x81, 0x82, 0x83, 0x84,  0x04,  0x00, 0x00, 0x00, 0x03,  1, 2, 3
    };
    b = copy_exact(s2c, sizeof s2c);
    frame_s2c g;
    assert_int_equal(frame_decode_s2c(b, sizeof s2c, 1024, &g), 12);
    assert_int_equal(g.sender, 0x81828384u);
    assert_int_equal(g.type, FRAME_VIDEO);
    assert_int_equal(g.len, 3);
    assert_ptr_equal(g.body, b + 9);
    free(b);
}

/* Round trip through the big-endian helpers. */
static void test_be_helpers(void **state) {
    (void)state;
    uint8_t b[8];
    frame_wr32(b, 0xDEADBEEFu);
    assert_int_equal(b[0], 0xDE);
    assert_int_equal(b[3], 0xEF);
    assert_int_equal(frame_rd32(b), 0xDEADBEEFu);
    frame_wr64(b, 0x8001020304050607ull);
    static const uint8_t want[8] = { 0x80, 1, 2, 3, 4, 5, 6, 7 };
    assert_memory_equal(b, want, 8);
    assert_true(frame_rd64(b) == 0x8001020304050607ull);
}

/* ------------------------------------------------------------------ */
/* 2. Every split point                                                */
/* ------------------------------------------------------------------ */

#define SPLIT_BODY 37u

static void test_c2s_every_split(void **state) {
    (void)state;
    uint8_t frame[FRAME_C2S_HDR + SPLIT_BODY];
    size_t total = frame_put_c2s_hdr(frame, 0xA1B2C3D4u, 0x00000102u,
                                     FRAME_PICTURE, SPLIT_BODY);
    for (unsigned j = 0; j < SPLIT_BODY; j++) frame[total++] = body_byte(3, j);
    assert_int_equal(total, sizeof frame);

    for (size_t k = 0; k < total; k++) {
        uint8_t *b = copy_exact(frame, k);
        frame_c2s f = {0};
        long r = frame_decode_c2s(b, k, 1u << 20, &f);
        if (r != FRAME_PARTIAL) fail_msg("prefix %zu: got %ld", k, r);
        free(b);
    }
    uint8_t *b = copy_exact(frame, total);
    frame_c2s f = {0};
    assert_int_equal(frame_decode_c2s(b, total, 1u << 20, &f), (long)total);
    assert_int_equal(f.sender, 0xA1B2C3D4u);
    assert_int_equal(f.receiver, 0x102u);
    assert_int_equal(f.type, FRAME_PICTURE);
    assert_int_equal(f.len, SPLIT_BODY);
    assert_ptr_equal(f.body, b + FRAME_C2S_HDR);
    check_body(f.body, f.len, 3);
    /* Extra trailing bytes do not change the result. */
    free(b);
    uint8_t more[sizeof frame + 5];
    memcpy(more, frame, sizeof frame);
    memset(more + sizeof frame, 0x77, 5);
    assert_int_equal(frame_decode_c2s(more, sizeof more, 1u << 20, &f),
                     (long)total);
}

static void test_s2c_every_split(void **state) {
    (void)state;
    uint8_t frame[FRAME_S2C_HDR + SPLIT_BODY];
    size_t total = frame_put_s2c_hdr(frame, 0x7F000001u, FRAME_VOICE,
                                     SPLIT_BODY);
    for (unsigned j = 0; j < SPLIT_BODY; j++) frame[total++] = body_byte(9, j);
    assert_int_equal(total, sizeof frame);

    for (size_t k = 0; k < total; k++) {
        uint8_t *b = copy_exact(frame, k);
        frame_s2c f;
        long r = frame_decode_s2c(b, k, 1u << 20, &f);
        if (r != FRAME_PARTIAL) fail_msg("prefix %zu: got %ld", k, r);
        free(b);
    }
    uint8_t *b = copy_exact(frame, total);
    frame_s2c f;
    assert_int_equal(frame_decode_s2c(b, total, 1u << 20, &f), (long)total);
    assert_int_equal(f.sender, 0x7F000001u);
    assert_int_equal(f.type, FRAME_VOICE);
    assert_int_equal(f.len, SPLIT_BODY);
    assert_ptr_equal(f.body, b + FRAME_S2C_HDR);
    check_body(f.body, f.len, 9);
    free(b);
}

/* ------------------------------------------------------------------ */
/* 3. Many frames in one buffer                                        */
/* ------------------------------------------------------------------ */

#define NFRAMES 100u
#define MF_BUFSZ (NFRAMES * (FRAME_C2S_HDR + 301u) + 64u)

static void test_c2s_many_frames(void **state) {
    (void)state;
    uint8_t *buf = malloc(MF_BUFSZ);
    assert_non_null(buf);
    size_t end = 0;
    unsigned zero = 0;
    for (unsigned i = 0; i < NFRAMES; i++) {
        put_c2s_frame(buf, &end, i);
        zero += mf_len(i) == 0;
    }
    assert_true(zero >= 10);
    size_t complete_end = end;
    /* A trailing partial frame: full header, 4 of 20 body bytes. */
    end += frame_put_c2s_hdr(buf + end, 42, 43, FRAME_TEXT, 20);
    memset(buf + end, 'x', 4);
    end += 4;

    uint8_t *b = copy_exact(buf, end);
    size_t off = 0;
    for (unsigned i = 0; i < NFRAMES; i++) {
        frame_c2s f = {0};
        long r = frame_decode_c2s(b + off, end - off, 1000, &f);
        assert_int_equal(r, (long)(FRAME_C2S_HDR + mf_len(i)));
        assert_int_equal(f.sender, mf_sender(i));
        assert_int_equal(f.receiver, mf_receiver(i));
        assert_int_equal(f.type, mf_type(i));
        assert_int_equal(f.len, mf_len(i));
        assert_ptr_equal(f.body, b + off + FRAME_C2S_HDR);
        check_body(f.body, f.len, i);
        assert_int_equal(frame_c2s_total(b + off, end - off), (uint64_t)r);
        off += (size_t)r;
    }
    assert_int_equal(off, complete_end);
    frame_c2s f = {0};
    assert_int_equal(frame_decode_c2s(b + off, end - off, 1000, &f),
                     FRAME_PARTIAL);
    /* Header-only partial also stays partial, and so does 5 header bytes. */
    assert_int_equal(frame_decode_c2s(b + off, FRAME_C2S_HDR, 1000, &f),
                     FRAME_PARTIAL);
    assert_int_equal(frame_decode_c2s(b + off, 5, 1000, &f), FRAME_PARTIAL);
    free(b);
    free(buf);
}

static void test_s2c_many_frames(void **state) {
    (void)state;
    uint8_t *buf = malloc(MF_BUFSZ);
    assert_non_null(buf);
    size_t end = 0;
    for (unsigned i = 0; i < NFRAMES; i++) put_s2c_frame(buf, &end, i);
    size_t complete_end = end;
    /* Trailing partial: 6 of 9 header bytes. */
    frame_put_s2c_hdr(buf + end, 1, FRAME_TEXT, 0);
    end += 6;

    uint8_t *b = copy_exact(buf, end);
    size_t off = 0;
    for (unsigned i = 0; i < NFRAMES; i++) {
        frame_s2c f;
        long r = frame_decode_s2c(b + off, end - off, 1000, &f);
        assert_int_equal(r, (long)(FRAME_S2C_HDR + mf_len(i)));
        assert_int_equal(f.sender, mf_sender(i));
        assert_int_equal(f.type, mf_type(i));
        assert_int_equal(f.len, mf_len(i));
        assert_ptr_equal(f.body, b + off + FRAME_S2C_HDR);
        check_body(f.body, f.len, i);
        assert_int_equal(frame_s2c_total(b + off, end - off), (uint64_t)r);
        off += (size_t)r;
    }
    assert_int_equal(off, complete_end);
    frame_s2c f;
    assert_int_equal(frame_decode_s2c(b + off, end - off, 1000, &f),
                     FRAME_PARTIAL);
    free(b);
    free(buf);
}

/* ------------------------------------------------------------------ */
/* 4. 0-length bodies                                                  */
/* ------------------------------------------------------------------ */

static void test_zero_length_body(void **state) {
    (void)state;
    uint8_t h[FRAME_C2S_HDR];
    frame_put_c2s_hdr(h, 7, 8, FRAME_TEXT, 0);
    for (size_t k = 0; k < FRAME_C2S_HDR; k++) {
        frame_c2s f = {0};
        assert_int_equal(frame_decode_c2s(h, k, 100, &f), FRAME_PARTIAL);
    }
    uint8_t *b = copy_exact(h, sizeof h);
    frame_c2s f = {0};
    assert_int_equal(frame_decode_c2s(b, sizeof h, 100, &f), 13);
    assert_int_equal(f.sender, 7);
    assert_int_equal(f.receiver, 8);
    assert_int_equal(f.type, FRAME_TEXT);
    assert_int_equal(f.len, 0);
    assert_ptr_equal(f.body, b + 13);
    free(b);

    uint8_t s[FRAME_S2C_HDR];
    frame_put_s2c_hdr(s, 9, FRAME_VIDEO, 0);
    for (size_t k = 0; k < FRAME_S2C_HDR; k++) {
        frame_s2c g;
        assert_int_equal(frame_decode_s2c(s, k, 100, &g), FRAME_PARTIAL);
    }
    b = copy_exact(s, sizeof s);
    frame_s2c g;
    assert_int_equal(frame_decode_s2c(b, sizeof s, 100, &g), 9);
    assert_int_equal(g.sender, 9);
    assert_int_equal(g.type, FRAME_VIDEO);
    assert_int_equal(g.len, 0);
    assert_ptr_equal(g.body, b + 9);
    free(b);
}

/* ------------------------------------------------------------------ */
/* 5. max_body edges                                                   */
/* ------------------------------------------------------------------ */

#define MAXB 100u

static void test_c2s_max_body_edges(void **state) {
    (void)state;
    uint8_t buf[FRAME_C2S_HDR + MAXB];
    frame_c2s f = {0};

    /* len == max_body: accepted. */
    frame_put_c2s_hdr(buf, 11, 12, FRAME_VOICE, MAXB);
    for (unsigned j = 0; j < MAXB; j++) buf[FRAME_C2S_HDR + j] = body_byte(1, j);
    assert_int_equal(frame_decode_c2s(buf, FRAME_C2S_HDR, MAXB, &f),
                     FRAME_PARTIAL);
    assert_int_equal(frame_decode_c2s(buf, FRAME_C2S_HDR + MAXB - 1, MAXB, &f),
                     FRAME_PARTIAL);
    assert_int_equal(frame_decode_c2s(buf, sizeof buf, MAXB, &f),
                     (long)sizeof buf);
    assert_int_equal(f.len, MAXB);
    assert_ptr_equal(f.body, buf + FRAME_C2S_HDR);
    check_body(f.body, f.len, 1);

    /* len == max_body + 1: ETOOBIG with only the header present. */
    frame_put_c2s_hdr(buf, 0x01020304u, 0x05060708u, FRAME_TEXT, MAXB + 1);
    uint8_t *b = copy_exact(buf, FRAME_C2S_HDR);
    memset(&f, 0xAB, sizeof f);
    assert_int_equal(frame_decode_c2s(b, FRAME_C2S_HDR, MAXB, &f),
                     FRAME_ETOOBIG);
    assert_int_equal(f.sender, 0x01020304u);
    assert_int_equal(f.receiver, 0x05060708u);
    assert_int_equal(f.type, FRAME_TEXT);
    assert_int_equal(f.len, MAXB + 1);
    assert_null(f.body);
    /* One header byte short: still only PARTIAL. */
    assert_int_equal(frame_decode_c2s(b, FRAME_C2S_HDR - 1, MAXB, &f),
                     FRAME_PARTIAL);
    free(b);

    /* max_body = 0. */
    frame_put_c2s_hdr(buf, 1, 2, FRAME_TEXT, 0);
    assert_int_equal(frame_decode_c2s(buf, FRAME_C2S_HDR, 0, &f), 13);
    assert_int_equal(f.len, 0);
    frame_put_c2s_hdr(buf, 1, 2, FRAME_TEXT, 1);
    assert_int_equal(frame_decode_c2s(buf, FRAME_C2S_HDR, 0, &f),
                     FRAME_ETOOBIG);
    assert_int_equal(f.len, 1);
    assert_null(f.body);
    assert_int_equal(frame_decode_c2s(buf, FRAME_C2S_HDR + 1, 0, &f),
                     FRAME_ETOOBIG);
}

static void test_s2c_max_body_edges(void **state) {
    (void)state;
    uint8_t buf[FRAME_S2C_HDR + MAXB];
    frame_s2c f;

    frame_put_s2c_hdr(buf, 21, FRAME_PICTURE, MAXB);
    for (unsigned j = 0; j < MAXB; j++) buf[FRAME_S2C_HDR + j] = body_byte(2, j);
    assert_int_equal(frame_decode_s2c(buf, FRAME_S2C_HDR, MAXB, &f),
                     FRAME_PARTIAL);
    assert_int_equal(frame_decode_s2c(buf, FRAME_S2C_HDR + MAXB - 1, MAXB, &f),
                     FRAME_PARTIAL);
    assert_int_equal(frame_decode_s2c(buf, sizeof buf, MAXB, &f),
                     (long)sizeof buf);
    assert_int_equal(f.len, MAXB);
    assert_ptr_equal(f.body, buf + FRAME_S2C_HDR);
    check_body(f.body, f.len, 2);

    frame_put_s2c_hdr(buf, 0xCAFEBABEu, FRAME_VIDEO, MAXB + 1);
    uint8_t *b = copy_exact(buf, FRAME_S2C_HDR);
    memset(&f, 0xAB, sizeof f);
    assert_int_equal(frame_decode_s2c(b, FRAME_S2C_HDR, MAXB, &f),
                     FRAME_ETOOBIG);
    assert_int_equal(f.sender, 0xCAFEBABEu);
    assert_int_equal(f.type, FRAME_VIDEO);
    assert_int_equal(f.len, MAXB + 1);
    assert_null(f.body);
    assert_int_equal(frame_decode_s2c(b, FRAME_S2C_HDR - 1, MAXB, &f),
                     FRAME_PARTIAL);
    free(b);

    frame_put_s2c_hdr(buf, 1, FRAME_TEXT, 0);
    assert_int_equal(frame_decode_s2c(buf, FRAME_S2C_HDR, 0, &f), 9);
    frame_put_s2c_hdr(buf, 1, FRAME_TEXT, 1);
    assert_int_equal(frame_decode_s2c(buf, FRAME_S2C_HDR, 0, &f),
                     FRAME_ETOOBIG);
    assert_int_equal(f.len, 1);
}

/* ------------------------------------------------------------------ */
/* 6. 4 GiB lengths                                                    */
/* ------------------------------------------------------------------ */

static void test_huge_length(void **state) {
    (void)state;
    const uint32_t max16m = 16u * 1024u * 1024u;
    uint8_t h[FRAME_C2S_HDR];
    frame_put_c2s_hdr(h, 5, 6, FRAME_VIDEO, 0xFFFFFFFFu);
    uint8_t *b = copy_exact(h, sizeof h);
    frame_c2s f = {0};
    assert_int_equal(frame_decode_c2s(b, sizeof h, max16m, &f), FRAME_ETOOBIG);
    assert_int_equal(f.len, 0xFFFFFFFFu);
    assert_null(f.body);
    assert_int_equal(frame_decode_c2s(b, sizeof h, UINT32_MAX, &f),
                     FRAME_PARTIAL);
    assert_int_equal(f.len, 0xFFFFFFFFu);
    assert_true(frame_c2s_total(b, sizeof h) == 13ull + 0xFFFFFFFFull);
    assert_true(frame_c2s_total(b, sizeof h) == 0x10000000Cull);
    free(b);

    /* max_body+1 wrap: len 0 with max_body UINT32_MAX is fine. */
    frame_put_c2s_hdr(h, 5, 6, FRAME_VIDEO, 0);
    assert_int_equal(frame_decode_c2s(h, sizeof h, UINT32_MAX, &f), 13);

    uint8_t s[FRAME_S2C_HDR];
    frame_put_s2c_hdr(s, 5, FRAME_VIDEO, 0xFFFFFFFFu);
    b = copy_exact(s, sizeof s);
    frame_s2c g;
    assert_int_equal(frame_decode_s2c(b, sizeof s, max16m, &g), FRAME_ETOOBIG);
    assert_int_equal(g.len, 0xFFFFFFFFu);
    assert_int_equal(frame_decode_s2c(b, sizeof s, UINT32_MAX, &g),
                     FRAME_PARTIAL);
    assert_true(frame_s2c_total(b, sizeof s) == 9ull + 0xFFFFFFFFull);
    free(b);

    /* 16 MiB exactly vs. one above. */
    frame_put_c2s_hdr(h, 5, 6, FRAME_VIDEO, max16m);
    assert_int_equal(frame_decode_c2s(h, sizeof h, max16m, &f), FRAME_PARTIAL);
    frame_put_c2s_hdr(h, 5, 6, FRAME_VIDEO, max16m + 1);
    assert_int_equal(frame_decode_c2s(h, sizeof h, max16m, &f), FRAME_ETOOBIG);
}

/* ------------------------------------------------------------------ */
/* 7. frame_*_total                                                    */
/* ------------------------------------------------------------------ */

static void test_total_incomplete_header(void **state) {
    (void)state;
    uint8_t h[FRAME_C2S_HDR];
    frame_put_c2s_hdr(h, 1, 2, FRAME_TEXT, 0x00010203u);
    for (size_t k = 0; k < FRAME_C2S_HDR; k++) {
        uint8_t *b = copy_exact(h, k);
        assert_true(frame_c2s_total(b, k) == 0);
        free(b);
    }
    uint8_t *b = copy_exact(h, sizeof h);
    assert_true(frame_c2s_total(b, sizeof h) == 13ull + 0x00010203ull);
    free(b);

    uint8_t s[FRAME_S2C_HDR];
    frame_put_s2c_hdr(s, 1, FRAME_TEXT, 0x00010203u);
    for (size_t k = 0; k < FRAME_S2C_HDR; k++) {
        b = copy_exact(s, k);
        assert_true(frame_s2c_total(b, k) == 0);
        free(b);
    }
    b = copy_exact(s, sizeof s);
    assert_true(frame_s2c_total(b, sizeof s) == 9ull + 0x00010203ull);
    free(b);

    /* 0-length body: total is just the header. */
    frame_put_s2c_hdr(s, 1, FRAME_TEXT, 0);
    assert_true(frame_s2c_total(s, sizeof s) == 9);
    frame_put_c2s_hdr(h, 1, 2, FRAME_TEXT, 0);
    assert_true(frame_c2s_total(h, sizeof h) == 13);
}

/* ------------------------------------------------------------------ */
/* 8. Control bodies                                                   */
/* ------------------------------------------------------------------ */

static void test_hello(void **state) {
    (void)state;
    uint8_t out[64];
    frame_hello h;

    /* With password. */
    static const uint8_t pw[] = { 's', '3', 'c', 'r', 'e', 't', 0xE4, 0xB8,
                                  0xAD };
    static const uint8_t want[] = { 0x01, 0x01, 's', '3', 'c', 'r', 'e', 't',
                                    0xE4, 0xB8, 0xAD };
    size_t n = frame_put_hello(out, FRAME_VERSION, FRAME_FLAG_ACKS,
                               (const uint8_t *)"ignored", 7, pw, sizeof pw);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    uint8_t *b = copy_exact(out, n);
    assert_int_equal(frame_parse_hello(b, (uint32_t)n, &h), 0);
    assert_int_equal(h.version, FRAME_VERSION);
    assert_int_equal(h.flags, FRAME_FLAG_ACKS);
    assert_int_equal(h.device_len, 0); /* no CONV: no name written or read */
    assert_int_equal(h.password_len, sizeof pw);
    assert_ptr_equal(h.password, b + 2);
    assert_memory_equal(h.password, pw, sizeof pw);
    free(b);

    /* Without password. */
    memset(out, 0xEE, sizeof out);
    n = frame_put_hello(out, 7, 0xA5 & ~FRAME_FLAG_CONV, NULL, 0, NULL, 0);
    assert_int_equal(n, FRAME_HELLO_MIN);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[1], 0xA5 & ~FRAME_FLAG_CONV);
    assert_int_equal(out[2], 0xEE);
    b = copy_exact(out, n);
    memset(&h, 0xAB, sizeof h);
    assert_int_equal(frame_parse_hello(b, (uint32_t)n, &h), 0);
    assert_int_equal(h.version, 7);
    assert_int_equal(h.flags, 0xA5 & ~FRAME_FLAG_CONV);
    assert_int_equal(h.device_len, 0);
    assert_null(h.device);
    assert_int_equal(h.password_len, 0);
    assert_null(h.password);
    free(b);

    /* Too short. */
    static const uint8_t one[1] = { 1 };
    assert_int_equal(frame_parse_hello(one, 1, &h), FRAME_EBADBODY);
    assert_int_equal(frame_parse_hello(one, 0, &h), FRAME_EBADBODY);
}

static void test_welcome(void **state) {
    (void)state;
    uint8_t out[FRAME_WELCOME_SIZE + 1];
    memset(out, 0xEE, sizeof out);
    frame_welcome w = { .version = 1, .flags = FRAME_FLAG_ACKS,
                        .user = 0x01020304u, .max_frame = 16u << 20 };
    static const uint8_t want[10] = { 0x01, 0x01, 0x01, 0x02, 0x03, 0x04,
                                      0x01, 0x00, 0x00, 0x00 };
    assert_int_equal(frame_put_welcome(out, &w), FRAME_WELCOME_SIZE);
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(out[10], 0xEE);

    uint8_t *b = copy_exact(out, FRAME_WELCOME_SIZE);
    frame_welcome r;
    memset(&r, 0, sizeof r);
    assert_int_equal(frame_parse_welcome(b, FRAME_WELCOME_SIZE, &r), 0);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.flags, FRAME_FLAG_ACKS);
    assert_int_equal(r.user, 0x01020304u);
    assert_int_equal(r.max_frame, 16u << 20);

    assert_int_equal(frame_parse_welcome(b, FRAME_WELCOME_SIZE - 1, &r),
                     FRAME_EBADBODY);
    assert_int_equal(frame_parse_welcome(b, 0, &r), FRAME_EBADBODY);
    free(b);
    uint8_t big[FRAME_WELCOME_SIZE + 1] = { 0 };
    assert_int_equal(frame_parse_welcome(big, sizeof big, &r), FRAME_EBADBODY);

    /* Extremes round-trip. */
    w = (frame_welcome){ 0xFF, 0xFF, UINT32_MAX, UINT32_MAX };
    frame_put_welcome(out, &w);
    assert_int_equal(frame_parse_welcome(out, FRAME_WELCOME_SIZE, &r), 0);
    assert_int_equal(r.user, UINT32_MAX);
    assert_int_equal(r.max_frame, UINT32_MAX);
}

static void test_ack(void **state) {
    (void)state;
    uint8_t out[FRAME_ACK_SIZE + 1];
    memset(out, 0xEE, sizeof out);
    static const uint8_t want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    assert_int_equal(frame_put_ack(out, 0x0102030405060708ull), FRAME_ACK_SIZE);
    assert_memory_equal(out, want, 8);
    assert_int_equal(out[8], 0xEE);

    uint64_t c = 0;
    uint8_t *b = copy_exact(out, FRAME_ACK_SIZE);
    assert_int_equal(frame_parse_ack(b, FRAME_ACK_SIZE, &c), 0);
    assert_true(c == 0x0102030405060708ull);
    assert_int_equal(frame_parse_ack(b, FRAME_ACK_SIZE - 1, &c),
                     FRAME_EBADBODY);
    assert_int_equal(frame_parse_ack(b, 0, &c), FRAME_EBADBODY);
    free(b);
    uint8_t nine[9] = { 0 };
    assert_int_equal(frame_parse_ack(nine, 9, &c), FRAME_EBADBODY);

    static const uint64_t vals[] = { 0, 1, 0xFFull, 0x100000000ull,
                                     0x8000000000000000ull, UINT64_MAX };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        frame_put_ack(out, vals[i]);
        assert_int_equal(frame_parse_ack(out, FRAME_ACK_SIZE, &c), 0);
        assert_true(c == vals[i]);
    }
    frame_put_ack(out, 0x8000000000000000ull);
    assert_int_equal(out[0], 0x80);
    assert_int_equal(out[7], 0x00);
}

static void test_error_roundtrip(void **state) {
    (void)state;
    uint8_t *out = malloc(FRAME_ERROR_MAX);
    assert_non_null(out);
    frame_error e;

    size_t n = frame_put_error(out, FRAME_ERR_QUOTA, 0x1122334455667788ull,
                               "quota full");
    assert_int_equal(n, FRAME_ERROR_FIXED + 10);
    static const uint8_t want[20] = {
        0x00, 0x07,  0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
        'q', 'u', 'o', 't', 'a', ' ', 'f', 'u', 'l', 'l'
    };
    assert_memory_equal(out, want, sizeof want);
    uint8_t *b = copy_exact(out, n);
    assert_int_equal(frame_parse_error(b, (uint32_t)n, &e), 0);
    assert_int_equal(e.code, FRAME_ERR_QUOTA);
    assert_true(e.ref == 0x1122334455667788ull);
    assert_int_equal(e.reason_len, 10);
    assert_ptr_equal(e.reason, b + FRAME_ERROR_FIXED);
    assert_memory_equal(e.reason, "quota full", 10);
    free(b);

    /* High byte of the u16 code, empty and NULL reasons. */
    n = frame_put_error(out, 0xABCD, 0, "");
    assert_int_equal(n, FRAME_ERROR_FIXED);
    assert_int_equal(out[0], 0xAB);
    assert_int_equal(out[1], 0xCD);
    b = copy_exact(out, n);
    assert_int_equal(frame_parse_error(b, (uint32_t)n, &e), 0);
    assert_int_equal(e.code, 0xABCD);
    assert_true(e.ref == 0);
    assert_int_equal(e.reason_len, 0);
    free(b);
    assert_int_equal(frame_put_error(out, 1, UINT64_MAX, NULL),
                     FRAME_ERROR_FIXED);
    assert_int_equal(frame_parse_error(out, FRAME_ERROR_FIXED, &e), 0);
    assert_true(e.ref == UINT64_MAX);

    /* len < 10 rejected. */
    for (uint32_t len = 0; len < FRAME_ERROR_FIXED; len++)
        assert_int_equal(frame_parse_error(out, len, &e), FRAME_EBADBODY);
    free(out);
}

/* Check the reason frame_put_error wrote is a prefix of `reason`. */
static size_t put_error_reason(const char *reason) {
    uint8_t *out = malloc(FRAME_ERROR_MAX);
    assert_non_null(out);
    size_t n = frame_put_error(out, FRAME_ERR_PROTO, 99, reason);
    assert_true(n >= FRAME_ERROR_FIXED && n <= FRAME_ERROR_MAX);
    frame_error e;
    assert_int_equal(frame_parse_error(out, (uint32_t)n, &e), 0);
    assert_int_equal(e.code, FRAME_ERR_PROTO);
    assert_true(e.ref == 99);
    assert_int_equal(e.reason_len, n - FRAME_ERROR_FIXED);
    assert_memory_equal(e.reason, reason, e.reason_len);
    free(out);
    return n - FRAME_ERROR_FIXED;
}

static void test_error_truncation(void **state) {
    (void)state;
    char s[512];

    /* 100 x U+4E2D (E4 B8 AD) = 300 bytes: cut to 198. */
    s[0] = '\0';
    for (int i = 0; i < 100; i++) strcat(s, "\xE4\xB8\xAD");
    size_t r = put_error_reason(s);
    assert_true(r <= FRAME_REASON_MAX);
    assert_int_equal(r % 3, 0);
    assert_int_equal(r, 198);

    /* ASCII: exactly 200 kept, 201+ cut to 200. */
    memset(s, 'a', 250);
    s[250] = '\0';
    assert_int_equal(put_error_reason(s), 200);
    s[201] = '\0';
    assert_int_equal(put_error_reason(s), 200);
    s[200] = '\0';
    assert_int_equal(put_error_reason(s), 200);
    s[199] = '\0';
    assert_int_equal(put_error_reason(s), 199);

    /* 2-byte chars: 150 x U+00E9 = 300 bytes, boundary lands on 200. */
    s[0] = '\0';
    for (int i = 0; i < 150; i++) strcat(s, "\xC3\xA9");
    assert_int_equal(put_error_reason(s), 200);

    /* "a" + 60 x 4-byte U+1F600: chars start at 1, 5, ..., 197, 201. */
    strcpy(s, "a");
    for (int i = 0; i < 60; i++) strcat(s, "\xF0\x9F\x98\x80");
    r = put_error_reason(s);
    assert_int_equal(r, 197);
    assert_int_equal((r - 1) % 4, 0);

    /* "ab" + 3-byte chars: chars start at 2, 5, ..., 197, 200 -> 200. */
    strcpy(s, "ab");
    for (int i = 0; i < 90; i++) strcat(s, "\xE4\xB8\xAD");
    assert_int_equal(put_error_reason(s), 200);
}

/* ------------------------------------------------------------------ */
/* 9. Classification helpers                                           */
/* ------------------------------------------------------------------ */

static void test_type_classification(void **state) {
    (void)state;
    static const struct {
        uint8_t type;
        int data, control;
        const char *name;
    } cases[] = {
        { 0x00, 0, 0, NULL },
        { 0x01, 1, 0, "text" },
        { 0x02, 1, 0, "picture" },
        { 0x03, 1, 0, "voice" },
        { 0x04, 1, 0, "video" },
        { 0x05, 0, 0, NULL },
        { 0x7F, 0, 0, NULL },
        { 0x80, 0, 1, NULL },
        { 0x81, 0, 1, NULL },
        { 0x84, 0, 1, NULL },
        { 0x85, 0, 1, NULL },
        { 0x86, 0, 1, NULL },
        { 0x87, 0, 1, NULL },
        { 0x88, 0, 1, NULL },
        { 0x89, 0, 1, NULL },
        { 0x8A, 0, 1, NULL },
        { 0x8B, 0, 1, NULL },
        { 0x8C, 0, 0, NULL },
        { 0xFF, 0, 0, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t t = cases[i].type;
        if (frame_is_data(t) != cases[i].data)
            fail_msg("frame_is_data(0x%02x) = %d", t, frame_is_data(t));
        if (frame_is_control(t) != cases[i].control)
            fail_msg("frame_is_control(0x%02x) = %d", t, frame_is_control(t));
        const char *name = frame_type_name(t);
        if (cases[i].name == NULL)
            assert_null(name);
        else
            assert_string_equal(name, cases[i].name);
    }
    /* Exhaustive: data and control are disjoint and cover 1-4, 0x80-0x8B. */
    int ndata = 0, nctl = 0;
    for (unsigned t = 0; t <= 0xFF; t++) {
        int d = frame_is_data((uint8_t)t), c = frame_is_control((uint8_t)t);
        assert_false(d && c);
        ndata += d;
        nctl += c;
        assert_int_equal(frame_type_name((uint8_t)t) != NULL, d);
    }
    assert_int_equal(ndata, 4);
    assert_int_equal(nctl, 12);
}

static void test_err_names(void **state) {
    (void)state;
    assert_string_equal(frame_err_name(0), "unknown error");
    assert_string_equal(frame_err_name(FRAME_ERR_TOOBIG), "frame too large");
    assert_string_equal(frame_err_name(FRAME_ERR_AUTH),
                        "authentication failed");
    assert_string_equal(frame_err_name(FRAME_ERR_SLOW), "output queue full");
    assert_string_equal(frame_err_name(FRAME_ERR_GROUP),
                        "group operation refused");
    assert_string_equal(frame_err_name(FRAME_ERR_DENIED),
                        "presence subscription refused");
    assert_string_equal(frame_err_name(16), "unknown error");
    assert_string_equal(frame_err_name(0x80), "unknown error");
    assert_string_equal(frame_err_name(0xFFFF), "unknown error");
    assert_string_equal(frame_err_name(0x10001), "unknown error");
    assert_string_equal(frame_err_name(UINT_MAX), "unknown error");
    /* Every defined code has its own, known name. */
    for (unsigned c = FRAME_ERR_TOOBIG; c <= FRAME_ERR_SLOW; c++) {
        const char *n = frame_err_name(c);
        assert_non_null(n);
        assert_string_not_equal(n, "unknown error");
        for (unsigned d = FRAME_ERR_TOOBIG; d < c; d++)
            assert_string_not_equal(n, frame_err_name(d));
    }
}

/* ------------------------------------------------------------------ */
/* 10. Byte-by-byte feeding                                            */
/* ------------------------------------------------------------------ */

#define NSTREAM 20u

static void test_c2s_byte_by_byte(void **state) {
    (void)state;
    size_t cap = NSTREAM * (FRAME_C2S_HDR + 301u);
    uint8_t *stream = malloc(cap);
    uint8_t *rbuf = malloc(cap);
    assert_non_null(stream);
    assert_non_null(rbuf);
    size_t slen = 0;
    for (unsigned i = 0; i < NSTREAM; i++) put_c2s_frame(stream, &slen, i);

    size_t fill = 0;
    unsigned got = 0;
    for (size_t pos = 0; pos < slen; pos++) {
        rbuf[fill++] = stream[pos];
        frame_c2s f = {0};
        long r = frame_decode_c2s(rbuf, fill, 1000, &f);
        if (r == FRAME_PARTIAL) continue;
        assert_true(got < NSTREAM);
        assert_int_equal(r, (long)(FRAME_C2S_HDR + mf_len(got)));
        assert_int_equal((size_t)r, fill); /* completes at the exact byte */
        assert_int_equal(f.sender, mf_sender(got));
        assert_int_equal(f.receiver, mf_receiver(got));
        assert_int_equal(f.type, mf_type(got));
        assert_int_equal(f.len, mf_len(got));
        assert_ptr_equal(f.body, rbuf + FRAME_C2S_HDR);
        check_body(f.body, f.len, got);
        memmove(rbuf, rbuf + r, fill - (size_t)r);
        fill -= (size_t)r;
        got++;
    }
    assert_int_equal(got, NSTREAM);
    assert_int_equal(fill, 0);
    free(rbuf);
    free(stream);
}

static void test_s2c_byte_by_byte(void **state) {
    (void)state;
    size_t cap = NSTREAM * (FRAME_S2C_HDR + 301u);
    uint8_t *stream = malloc(cap);
    uint8_t *rbuf = malloc(cap);
    assert_non_null(stream);
    assert_non_null(rbuf);
    size_t slen = 0;
    for (unsigned i = 0; i < NSTREAM; i++) put_s2c_frame(stream, &slen, i);

    size_t fill = 0;
    unsigned got = 0;
    for (size_t pos = 0; pos < slen; pos++) {
        rbuf[fill++] = stream[pos];
        frame_s2c f;
        long r = frame_decode_s2c(rbuf, fill, 1000, &f);
        if (r == FRAME_PARTIAL) continue;
        assert_true(got < NSTREAM);
        assert_int_equal(r, (long)(FRAME_S2C_HDR + mf_len(got)));
        assert_int_equal((size_t)r, fill);
        assert_int_equal(f.sender, mf_sender(got));
        assert_int_equal(f.type, mf_type(got));
        assert_int_equal(f.len, mf_len(got));
        assert_ptr_equal(f.body, rbuf + FRAME_S2C_HDR);
        check_body(f.body, f.len, got);
        memmove(rbuf, rbuf + r, fill - (size_t)r);
        fill -= (size_t)r;
        got++;
    }
    assert_int_equal(got, NSTREAM);
    assert_int_equal(fill, 0);
    free(rbuf);
    free(stream);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c2s_header_layout),
        cmocka_unit_test(test_s2c_header_layout),
        cmocka_unit_test(test_decode_handwritten),
        cmocka_unit_test(test_be_helpers),
        cmocka_unit_test(test_c2s_every_split),
        cmocka_unit_test(test_s2c_every_split),
        cmocka_unit_test(test_c2s_many_frames),
        cmocka_unit_test(test_s2c_many_frames),
        cmocka_unit_test(test_zero_length_body),
        cmocka_unit_test(test_c2s_max_body_edges),
        cmocka_unit_test(test_s2c_max_body_edges),
        cmocka_unit_test(test_huge_length),
        cmocka_unit_test(test_total_incomplete_header),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_welcome),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_error_roundtrip),
        cmocka_unit_test(test_error_truncation),
        cmocka_unit_test(test_type_classification),
        cmocka_unit_test(test_err_names),
        cmocka_unit_test(test_c2s_byte_by_byte),
        cmocka_unit_test(test_s2c_byte_by_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
