/*
 * fuzz_ws.c -- libFuzzer target for the WebSocket layer (framing_ws.c)
 * over the article's framing (framing_raw.c), as a connection of the
 * HTTP listener has them after its upgrade, without sockets: the input is
 * the byte stream a client sends after the handshake.
 *
 * One input:
 *   byte 0    chunking: the stream is fed in pieces of (byte0 & 0x3F) + 1
 *             bytes (0x40 set: one piece); 0x80 set: a HELLO pauses the
 *             framing (a login being checked) until the end of that piece.
 *   byte 1    --max-frame: 16 << (byte1 & 7) bytes.
 *   byte 2..  the stream (each piece copied to a buffer of its own size,
 *             which the layer unmasks in place: ASan sees any overrun).
 * Every frame handed up is echoed into the output queue (as --echo does),
 * so the server's WebSocket headers are written around copied bodies.
 *
 * Checked (a __builtin_trap() is reported as a crash with the input):
 * framing_raw's and the queue's invariants after every piece; each frame
 * handed up is whole (13 + len bytes, len <= --max-frame); nothing is handed
 * up once framing_ws_input said FRAMING_WS_CLOSE, and every later call says
 * it again; the output parses as the server's frames: unmasked, FIN set,
 * binary ones each exactly one s2c frame, control ones at most 125 bytes,
 * a close (at most one, last) empty or with a code the server sends.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/blk.h"
#include "proto/frame.h"
#include "server/framing_raw.h"
#include "server/framing_ws.h"
#include "server/outq.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_ws: %s:%d: check failed: %s\n", __FILE__, \
                    __LINE__, #cond);                                        \
            __builtin_trap();                                                \
        }                                                                    \
    } while (0)

typedef struct harness {
    framing_raw raw;
    outq out;
    uint32_t max_frame;
    int closed;      /* FRAMING_WS_CLOSE was returned */
    int pause_hello; /* HELLO pauses the framing */
    size_t frames;
} harness;

static int on_header(void *ctx, const frame_c2s *h) {
    harness *t = ctx;
    CHECK(!t->closed);
    if (h->len > t->max_frame) return FRAMING_STOP; /* (TOOBIG closes) */
    return h->type == 0x7F ? FRAMING_SKIP : FRAMING_BODY;
}

static int on_frame(void *ctx, const frame_c2s *f, blk *b) {
    harness *t = ctx;
    CHECK(!t->closed);
    CHECK(f->len <= t->max_frame);
    t->frames++;
    /* (echoed as it came, but a MSG frame only comes from outq_msg) */
    uint8_t type = f->type == FRAME_MSG ? FRAME_TEXT : f->type;
    if (outq_frame(&t->out, f->sender, type, f->body, f->len, b, 0))
        return FRAMING_STOP; /* (out of memory) */
    return t->pause_hello && f->type == FRAME_HELLO ? FRAMING_PAUSE
                                                    : FRAMING_NEXT;
}

static const framing_sink sink = {on_header, on_frame};

/* The server's output, after the opaque 101 response: its frames. */
static void check_output(const outbuf *o) {
    const uint8_t *p = o->bytes.data;
    size_t n = o->bytes.len, off = o->opaque, r = 0;
    int closed = 0;
    while (off < n) {
        CHECK(!closed);
        CHECK(off + 2 <= n);
        uint8_t b0 = p[off], b1 = p[off + 1];
        CHECK(b0 & 0x80);          /* FIN */
        CHECK(!(b0 & 0x70));       /* no reserved bits */
        CHECK(!(b1 & 0x80));       /* unmasked */
        uint64_t len = b1 & 0x7F;
        size_t h = 2;
        if (len == 126) {
            CHECK(off + 4 <= n);
            len = (uint64_t)p[off + 2] << 8 | p[off + 3];
            h = 4;
        } else if (len == 127) {
            CHECK(off + 10 <= n);
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | p[off + 2 + i];
            h = 10;
        }
        uint8_t op = b0 & 0x0F;
        if (op == 0x2) {
            CHECK(off + h + FRAME_S2C_HDR <= n);
            uint32_t flen = frame_rd32(p + off + h + 5);
            CHECK(len == FRAME_S2C_HDR + (uint64_t)flen);
            size_t at = off + h + FRAME_S2C_HDR;
            if (r < o->nrefs && o->refs[r].at == at) {
                CHECK(o->refs[r].len == flen);
                r++;
                off = at;
            } else {
                off = at + flen;
            }
            continue;
        }
        CHECK(op == 0x8 || op == 0x9 || op == 0xA);
        CHECK(len <= 125);
        CHECK(off + h + len <= n);
        if (op == 0x8 && len) { /* (an empty close answers one) */
            CHECK(len >= 2);
            unsigned code = (unsigned)p[off + h] << 8 | p[off + h + 1];
            CHECK((code >= 1000 && code <= 1003) ||
                  (code >= 1007 && code <= 1011) || (code >= 3000 &&
                                                     code <= 4999));
        }
        closed |= op == 0x8;
        off += h + (size_t)len;
    }
    CHECK(off == n && r == o->nrefs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    harness t;
    memset(&t, 0, sizeof t);
    t.max_frame = 16u << (data[1] & 7);
    t.pause_hello = (data[0] & 0x80) != 0;
    size_t piece = data[0] & 0x40 ? size : (size_t)(data[0] & 0x3F) + 1;
    blkpool pool;
    blkpool_init(&pool);
    framing_raw_init(&t.raw, &pool, t.max_frame, &sink, &t);
    outq_set_mode(&t.out, OUTQ_HTTP);
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
    CHECK(outq_raw(&t.out, (const uint8_t *)resp, sizeof resp - 1) == 0);
    framing_ws *w = framing_ws_new(&t.raw, &t.out, t.max_frame, 4096);
    CHECK(w);
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    while (n) {
        size_t k = n < piece ? n : piece;
        size_t before = t.frames;
        uint8_t *copy = malloc(k);
        CHECK(copy);
        memcpy(copy, p, k);
        int r = framing_ws_input(w, copy, k);
        free(copy);
        CHECK(r == 0 || r == FRAMING_WS_CLOSE || r == FRAMING_ENOMEM);
        if (t.closed) CHECK(r == FRAMING_WS_CLOSE && t.frames == before);
        if (r == FRAMING_WS_CLOSE) t.closed = 1;
        if (r == FRAMING_ENOMEM) break;
        CHECK(framing_raw_check(&t.raw));
        CHECK(outq_check(&t.out));
        if (t.raw.paused && !t.closed && framing_raw_resume(&t.raw)) break;
        /* (closed: the server does not resume a closing connection) */
        p += k;
        n -= k;
    }
    if (!t.closed) CHECK(framing_ws_close(w, WS_GOING_AWAY, "bye") == 0);
    CHECK(framing_ws_close_sent(w));
    CHECK(outq_check(&t.out));
    check_output(outq_cur(&t.out));
    framing_ws_free(w);
    framing_raw_free(&t.raw);
    outq_free(&t.out);
    (void)blkpool_free(&pool); /* (the byte count is not needed) */
    return 0;
}
