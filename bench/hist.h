/*
 * hist.h -- latency histogram for chat-bench, log-linear in nanoseconds.
 *
 * A value under 64 ns has a bucket of its own; a larger one keeps its top 6
 * bits (bucket [p][v >> p], v >> p in 32..63), so a percentile read back is
 * the lower bound of a bucket within ~3% of the values it holds. Values are
 * taken in ns, as the clock gives them, so that adding one is a few
 * instructions (no division) on chat-bench's per-message path: O(1),
 * inline. A percentile is O(buckets) = O(2560). No allocation: a hist is a
 * plain struct (20 KiB), zero-initialised.
 */
#ifndef CHAT_BENCH_HIST_H
#define CHAT_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_POW 40 /* up to 2^45 ns, 9.7 hours */

typedef struct hist {
    uint64_t b[HIST_POW][HIST_SUB];
    uint64_t n;
} hist;

/* Count one value (ns). */
static inline void hist_add(hist *h, uint64_t ns) {
    int p = 0;
    uint64_t sub = ns;
    if (ns >= HIST_SUB) {
        p = 63 - __builtin_clzll(ns) - 5;
        sub = ns >> p;
    }
    if (p >= HIST_POW) {
        p = HIST_POW - 1;
        sub = HIST_SUB - 1;
    }
    h->b[p][sub]++;
    h->n++;
}

/* The q-quantile (0 <= q < 1) in ns; 0 when empty. */
double hist_pct(const hist *h, double q);

#endif
