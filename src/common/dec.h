/*
 * dec.h -- unsigned decimal digits without the printf family, for the hot
 * paths that format numbers per message (the cluster store's arguments,
 * the Redis connection's command encoding): vsnprintf cost about a third
 * of a node's CPU on the stored path (callgrind, docs/BENCHMARKS.md).
 */
#ifndef CHAT_COMMON_DEC_H
#define CHAT_COMMON_DEC_H

#include <stddef.h>
#include <stdint.h>

#define DEC_MAX ((size_t)20) /* digits of UINT64_MAX */

/* The decimal digits of v written backwards to end at `end` (at most
 * DEC_MAX bytes before it): their start. */
static inline char *dec_back(char *end, uint64_t v) {
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* How many digits v has (1..DEC_MAX). */
static inline size_t dec_len(uint64_t v) {
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

#endif
