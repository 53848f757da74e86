/*
 * framing_raw.h -- the article's framing: client -> server frames back to
 * back on the byte stream (docs/PROTOCOL.md), found and handed to the
 * session (framing.h) as they complete.
 *
 * Where bytes land (framing_raw_target): a read lands in the caller's
 * scratch buffer (the loop's shared 64 KiB read buffer), where complete
 * frames are handed up in place, without a copy. Only a frame split across
 * reads is kept, in the connection's block `in`; while a large body is
 * awaited (the rest is at least the scratch size), the next read goes
 * straight into the block, toward the end of that frame only, so a 16 MiB
 * picture is read into place and never copied on the way in. Once a peer
 * sent a frame of FRAMING_RAW_BIG bytes or more it is in large mode (`big`,
 * until a quiet second: framing_raw_shrink): every read goes into the
 * block, a new frame from its first byte, so no part of a large frame is
 * copied, not even the start that would have landed in the scratch buffer.
 * The session may keep references to that block (the receivers' output
 * queues do), in which case it is lent: the receivers read their parts
 * until written, this layer reads on after them while the block has room,
 * then takes another block, from the pool, copying over at most one
 * partial frame.
 *
 * Invariants (framing_raw_check, in debug builds):
 *  (1) not paused: in[off..inlen) is a proper prefix of one frame; paused:
 *      in[off..inlen) is the unparsed rest of the input (< 64 KiB plus a
 *      partial frame);
 *  (2) in[0..off) may be referenced by receivers (the block is lent: refs
 *      > 1); in[off..cap) is this layer's alone; off <= inlen <= cap;
 *  (3) inlen - off <= max_frame + 13, or paused;
 *  (4) skip > 0 => nothing held (a refused body is dropped, never kept).
 *
 * Memory: `in` grows at most twofold per read and never past the frame's
 * size (a header announcing 16 MiB and a trickle of bytes costs what has
 * arrived, not 16 MiB), and comes from the pool (blk.h) when one of the
 * right size is idle. framing_raw_shrink frees it when empty.
 */
#ifndef CHAT_SERVER_FRAMING_RAW_H
#define CHAT_SERVER_FRAMING_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "common/blk.h"
#include "server/framing.h"

/* Frames of at least this size (header included) put a connection in
 * large mode (see above): the size of the loop's read buffer. */
#define FRAMING_RAW_BIG ((size_t)64 * 1024)

typedef struct framing_raw {
    blk *in;            /* the block being filled (maybe lent, see (2)) */
    size_t off;         /* start of the bytes not yet handed up: a partial
                           frame, or (paused) the unparsed rest */
    size_t inlen;       /* end of the bytes read */
    uint32_t skip;      /* body bytes of a refused frame still to drop */
    uint32_t max_frame; /* largest body accepted (bigger: the session refuses
                           at the header, and the body is skipped or the
                           connection closed) */
    uint32_t big;       /* large mode: the size of the last large frame, 0
                           when not */
    uint8_t checked;    /* the header of the frame in `in` was accepted */
    uint8_t paused;     /* the session paused: the rest waits in `in` */
    uint8_t stopped;    /* the session stopped: input is ignored */
    blkpool *pool;
    const framing_sink *sink;
    void *ctx;
} framing_raw;

void framing_raw_init(framing_raw *fr, blkpool *pool, uint32_t max_frame,
                      const framing_sink *sink, void *ctx);

/* Where the next bytes should go: (*p, *len) inside this layer's block (a
 * large body is awaited) and 1, or 0 when the caller's scratch buffer is
 * the place. FRAMING_ENOMEM when the block cannot grow. */
int framing_raw_target(framing_raw *fr, size_t scratch_len, uint8_t **p,
                       size_t *len);

/* n bytes arrived at p: in the caller's scratch buffer (valid during the
 * call only), or where framing_raw_target pointed. Frames are handed to the
 * sink as they complete. 0, or FRAMING_ENOMEM (the connection must close). */
int framing_raw_input(framing_raw *fr, const uint8_t *p, size_t n);

/* The session resumed after a FRAMING_PAUSE: parse what was kept. 0 or
 * FRAMING_ENOMEM. */
int framing_raw_resume(framing_raw *fr);

/* The session stopped: forget every byte held and ignore what follows
 * (the block is kept unless the session holds references to it). */
void framing_raw_drop(framing_raw *fr);

/* 1 when part of a frame is held (a peer that closes now closes in the
 * middle of a frame). */
static inline int framing_raw_partial(const framing_raw *fr) {
    return fr->inlen > fr->off || fr->skip > 0;
}

/* Free the block when it holds nothing, and leave large mode (the cron:
 * a quiet connection). Returns the bytes freed. */
size_t framing_raw_shrink(framing_raw *fr);

void framing_raw_free(framing_raw *fr);

/* Assert the invariants above; 1 (for assert(framing_raw_check(fr))). */
int framing_raw_check(const framing_raw *fr);

#endif
