/*
 * blk.h -- reference-counted byte blocks, and a pool that keeps a few.
 *
 * A large frame is read into a block; the connections it is delivered to
 * take references to the block instead of copying the body, and the
 * reader lends the block away (it takes a fresh one for its next large
 * frame). The last reference returns the block to its pool, which keeps up
 * to BLKPOOL_MAX_BYTES of idle blocks for the next large frames (so a
 * stream of 1 MiB pictures neither copies nor faults in fresh pages) until
 * blkpool_trim gives them back.
 *
 * Ownership: blk_pooled and blk_new return a block with one reference,
 * owned by the caller; blk_ref adds one; blk_unref drops one. Only a block
 * with a single reference may be resized (blk_resize) or written to.
 * Single-threaded (the loop thread). Nothing here logs.
 */
#ifndef CHAT_COMMON_BLK_H
#define CHAT_COMMON_BLK_H

#include <stddef.h>
#include <stdint.h>

#define BLKPOOL_MAX_BYTES ((size_t)64 << 20) /* idle blocks kept at most */
#define BLKPOOL_MAX_BLOCKS 8u

typedef struct blkpool blkpool;

typedef struct blk {
    uint32_t refs;
    size_t cap;          /* bytes in data[] */
    blkpool *pool;       /* where the last unref returns it (NULL: freed) */
    struct blk *next;    /* in the pool's idle list */
    uint64_t epoch;      /* the pool's epoch when it became idle */
    uint8_t data[];
} blk;

struct blkpool {
    blk *idle;           /* idle blocks, most recently returned first */
    size_t nidle, bytes; /* their count and capacity in all */
    uint64_t hits;       /* blocks served from the pool */
    uint64_t epoch;      /* blkpool_trim calls so far */
};

void blkpool_init(blkpool *p);

/* Free the idle blocks that were idle already at the previous call (so a
 * steady stream keeps its blocks, and a pause of two periods frees them);
 * returns the bytes freed. O(idle blocks). */
size_t blkpool_trim(blkpool *p);

/* Free every idle block; returns the bytes freed. */
size_t blkpool_free(blkpool *p);

/* An idle block of the pool with at least `need` bytes and at most
 * `most` (the smallest such), now with one reference; NULL when there is
 * none. O(idle blocks). */
blk *blk_pooled(blkpool *p, size_t need, size_t most);

/* A new block of exactly `cap` bytes with one reference, returned to p at
 * its last unref. NULL when out of memory. */
blk *blk_new(blkpool *p, size_t cap);

static inline void blk_ref(blk *b) { b->refs++; }

/* Drop a reference; the last one returns the block to its pool (or frees
 * it when the pool is full). NULL is ignored. */
void blk_unref(blk *b);

/* Resize a block that has one reference to `cap` bytes (contents kept up
 * to the smaller size). Returns the block (maybe moved), or NULL when out
 * of memory (the old block is untouched). */
blk *blk_resize(blk *b, size_t cap);

#endif
