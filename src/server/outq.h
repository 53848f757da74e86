/*
 * outq.h -- one connection's output: server -> client frames waiting for
 * the socket.
 *
 * Two buffers: b[cur] takes appends during a loop iteration; the other is
 * owned by the write in flight (if any) and is reset when the kernel took
 * all of it. A buffer is a byte string (frame headers, small bodies,
 * control frames) plus, for large bodies that arrived in a block (blk.h),
 * references to those bodies instead of copies: reference k says "the
 * refs[k].len bytes at refs[k].p come logically at byte offset refs[k].at".
 * A write hands the kernel the bytes and the referenced bodies in order,
 * as one iovec list (outq_iov), so a 16 MiB picture goes from the sender's
 * block to the receiver's socket without being copied.
 *
 * Frames with a stored copy are listed in `ids` with the byte offset of
 * their header, so the connection can delete them (or wait for the peer's
 * ACK) once written, and outq_walk can hand unsent ones back to the store.
 *
 * Invariants (outq_check, in debug builds):
 *  (1) total == bytes.len + the sum of refs[].len, for each buffer;
 *  (2) refs[] are in increasing `at`, each at <= bytes.len, each holding
 *      one reference to its block, its bytes inside the block;
 *  (3) ids[] offsets increase and are < bytes.len (each is a header);
 *  (4) each buffer is its `opaque` leading bytes (HTTP: a response),
 *      then a whole number of records (a referenced body sits right after
 *      its header, and a MSG frame's after its FRAME_MSG_PRE bytes): s2c
 *      frames (OUTQ_FRAMES, the article's framing); or
 *      (OUTQ_WS) WebSocket frames (RFC 6455 5.2, unmasked): a binary frame
 *      carrying exactly one s2c frame, or a control frame (close, ping,
 *      pong) appended whole by outq_raw. In OUTQ_HTTP mode every byte is
 *      opaque (opaque == bytes.len, no refs, no ids).
 *
 * Memory: buffers and arrays grow geometrically and keep their capacity
 * between writes (no allocation per frame once warm); outq_shrink frees
 * what is empty (the server's once-a-second cron). Bounds are the caller's
 * (it checks outq_total against --max-outbuf before appending data).
 * Nothing here logs or does I/O.
 */
#ifndef CHAT_SERVER_OUTQ_H
#define CHAT_SERVER_OUTQ_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "common/blk.h"
#include "common/buf.h"
#include "common/vec.h"
#include "proto/frame.h"

/* Bodies of at least this many bytes that sit in a block are referenced,
 * not copied (below it a copy is cheaper than an iovec entry). */
#define OUTQ_REF_MIN (16u * 1024)

typedef struct outref {
    size_t at;          /* logical position: before bytes.data[at] */
    blk *b;             /* one reference held */
    const uint8_t *p;   /* inside b->data */
    size_t len;
} outref;

enum { OUTQ_FRAMES, OUTQ_WS, OUTQ_HTTP }; /* outbuf.mode (4) */

typedef struct outbuf {
    uint8_t mode;       /* OUTQ_* (4) */
    size_t opaque;      /* leading bytes that are no records (4) */
    buf bytes;
    size_t total;       /* logical length: bytes.len + sum of refs[].len */
    outref *refs;
    uint32_t nrefs, caprefs;
    seqidq ids;         /* (header offset in bytes, store id) */
    uint64_t max_id;    /* the highest message id of its MSG frames and
                           stored frames (set by the caller, output.c) */
} outbuf;

typedef struct outq {
    outbuf b[2];
    uint8_t cur;        /* the buffer taking appends */
    uv_buf_t *iov;      /* scratch for outq_iov */
    size_t capiov;
} outq;

/* Append a frame to b[cur]: its 9-byte header, then the body, copied, or
 * referenced when it lies in block `b` (non-NULL) and len >=
 * OUTQ_REF_MIN. `id`: its store id, 0 for none. `type` is never FRAME_MSG
 * (outq_msg writes those, and the queue reads their prefix back: 4).
 * Returns 0, or -1 when out of memory (nothing appended). O(1) amortised plus the copy; inline for
 * the common case (a small frame without an id into a buffer with room),
 * which runs once per routed frame. */
static inline int outq_frame(outq *q, uint32_t from, uint8_t type,
                             const uint8_t *body, uint32_t len, blk *b,
                             uint64_t id);
int outq_frame_slow(outq *q, uint32_t from, uint8_t type, const uint8_t *body,
                    uint32_t len, blk *b, uint64_t id);

/* The same for a MSG frame (docs/PROTOCOL.md): its 9-byte header, the
 * FRAME_MSG_PRE bytes of `pre` (copied), then the payload, copied or
 * referenced as above. */
int outq_msg(outq *q, uint32_t from, const uint8_t *pre, const uint8_t *body,
             uint32_t len, blk *b, uint64_t id);

/* Change mode (4): OUTQ_HTTP (an empty queue of the article's framing:
 * HTTP responses, appended by outq_raw), then OUTQ_WS (at a WebSocket
 * upgrade: each frame goes out in a binary WebSocket frame of its own,
 * whose header, 2 to 10 bytes, outq_frame writes before the 9-byte one;
 * what is queued stays opaque). */
void outq_set_mode(outq *q, uint8_t mode);

/* The largest WebSocket frame header: what outq_frame adds per frame in
 * WebSocket mode at most. */
#define OUTQ_WS_HDR_MAX 10u

/* Append n bytes to b[cur]: whole WebSocket control frames (OUTQ_WS: the
 * WebSocket layer's close and pong) or an HTTP response (OUTQ_HTTP). 0, or
 * -1 when out of memory (nothing appended). */
int outq_raw(outq *q, const uint8_t *p, size_t n);

/* Logical bytes queued in both buffers. */
static inline size_t outq_total(const outq *q) {
    return q->b[0].total + q->b[1].total;
}

/* The buffer taking appends, and the other one. */
static inline outbuf *outq_cur(outq *q) { return &q->b[q->cur]; }
static inline outbuf *outq_other(outq *q) { return &q->b[q->cur ^ 1]; }

/* b[cur] is handed to a write: appends go to the other buffer (which must
 * be empty). */
void outq_swap(outq *q);

/* The iovec list of buffer o (a member of q), in q's scratch array: *n
 * entries. 0, or -1 when out of memory. O(refs). */
int outq_iov(outq *q, const outbuf *o, uv_buf_t **iov, unsigned *n);

/* The kernel took all of o: drop its block references and empty it
 * (capacity kept). Its ids must have been consumed first. */
void outq_reset(outbuf *o);

/* Call fn for each frame of o in order, with its store id (0: none) and
 * whether it lies entirely within the first `sent` logical bytes. For a
 * MSG frame, f's body and len are its payload and `pre` its FRAME_MSG_PRE
 * leading bytes; NULL for other frames. */
typedef void (*outq_frame_fn)(void *ctx, const frame_s2c *f,
                              const uint8_t *pre, uint64_t id, int sent);
void outq_walk(const outbuf *o, size_t sent, outq_frame_fn fn, void *ctx);

/* Free the memory of empty buffers and the scratch array (not while a
 * write holds the scratch). Returns the bytes freed. */
size_t outq_shrink(outq *q);

/* Drop everything (block references included) and free. */
void outq_free(outq *q);

/* Assert the invariants above; 1 (for assert(outq_check(q))). */
int outq_check(const outq *q);

static inline int outq_frame(outq *q, uint32_t from, uint8_t type,
                             const uint8_t *body, uint32_t len, blk *b,
                             uint64_t id) {
    outbuf *o = &q->b[q->cur];
    size_t need = FRAME_S2C_HDR + (size_t)len;
    assert(type != FRAME_MSG);
    if (id || o->mode || (b && len >= OUTQ_REF_MIN) ||
        need > o->bytes.cap - o->bytes.len)
        return outq_frame_slow(q, from, type, body, len, b, id);
    uint8_t *w = o->bytes.data + o->bytes.len;
    frame_put_s2c_hdr(w, from, type, len);
    if (len) memcpy(w + FRAME_S2C_HDR, body, len);
    o->bytes.len += need;
    o->total += need;
    return 0;
}

#endif
