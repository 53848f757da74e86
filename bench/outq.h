/*
 * outq.h -- a connection's output queue in chat-bench: a gather list, so
 * that a message's constant payload is written from one preallocated buffer
 * and never copied (writev), while what differs per message (the protocol
 * head, the 12-byte stamp, a trailer) is copied into a small stage buffer.
 *
 * The queue is a list of segments in send order; a segment is either bytes
 * of the stage (adjacent stage bytes share one segment, so a run of small
 * messages is one segment) or a span of caller-owned memory that must stay
 * valid and unchanged until it was written (the payload buffer).
 *
 * Invariants: segments [head, n) are pending; seg[head] has `done` bytes
 * already written; `bytes` is the sum of what is pending; stage segments'
 * offsets increase. No I/O here: the caller builds iovecs with outq_iov()
 * and reports what the kernel took with outq_consume(). Memory grows with
 * what is pending (bounded by the messages a connection keeps in flight)
 * and is compacted as it drains.
 */
#ifndef CHAT_BENCH_OUTQ_H
#define CHAT_BENCH_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct outq_seg {
    const uint8_t *ext; /* NULL: stage bytes [off, off + len) */
    size_t off, len;
} outq_seg;

typedef struct outq {
    uint8_t *stage;
    size_t slen, scap;
    outq_seg *seg;
    size_t n, head, cap;
    size_t done;  /* bytes of seg[head] already written */
    size_t bytes; /* pending bytes */
} outq;

/* Room for `len` stage bytes (and the segment that may hold them) at the
 * end of the queue; the caller writes them and then calls outq_commit(q,
 * len) before any other outq_* call. NULL when out of memory. */
uint8_t *outq_reserve(outq *q, size_t len);
void outq_commit(outq *q, size_t len);

/* Copy len bytes into the stage at the end of the queue; 0 or -1 (memory). */
int outq_put(outq *q, const void *p, size_t len);

/* Queue len bytes of caller-owned memory without copying them; they must
 * not change until written. 0 or -1 (memory). */
int outq_ref(outq *q, const void *p, size_t len);

/* Fill at most max iovecs with the pending bytes, in order, stopping
 * before the first external segment with `big` bytes or more left (big 0:
 * never stop); returns the count. The pointers are valid until the next
 * outq_* call that changes the queue. */
int outq_iov(const outq *q, struct iovec *iov, int max, size_t big);

/* The first pending bytes when they are an external segment with at least
 * `big` bytes left: its rest (*len bytes); else NULL. */
const uint8_t *outq_big(const outq *q, size_t big, size_t *len);

/* The first n pending bytes were written. O(segments written). */
void outq_consume(outq *q, size_t n);

/* Release the memory (the queue must be empty to keep using it). */
void outq_free(outq *q);

#endif
