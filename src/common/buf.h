/*
 * buf.h -- a growable byte buffer with a hard limit.
 *
 * The buffer owns `data` (malloc'd, NULL while empty and unallocated). Growth
 * is geometric (x2) from a first allocation of 64 bytes (when the first need
 * is that small: a trickled frame header) or 4 KiB, never past the caller's
 * limit, so a buffer's capacity is always <= its limit. Appending is amortised O(n);
 * consuming from the front is O(remaining) (memmove).
 */
#ifndef CHAT_COMMON_BUF_H
#define CHAT_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
} buf;

enum { BUF_ENOMEM = -1, BUF_ELIMIT = -2 };

/* Ensure room for `extra` more bytes, growing to at most `limit` bytes of
 * capacity. Returns 0, BUF_ELIMIT when len + extra > limit (buffer
 * unchanged), or BUF_ENOMEM. */
int buf_reserve(buf *b, size_t extra, size_t limit);

/* Append n bytes (buf_reserve, then memcpy). */
int buf_append(buf *b, const void *p, size_t n, size_t limit);

/* Drop the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);

/* Release the memory; the buffer is empty and reusable afterwards. */
void buf_free(buf *b);

#endif
