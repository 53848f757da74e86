/*
 * hist.h -- latency histogram for chat-bench, log-linear in microseconds.
 *
 * A value under 64 µs has a bucket of its own; a larger one keeps its top 6
 * bits (bucket [p][v >> p], v >> p in 32..63), so a percentile read back is
 * the lower bound of a bucket within ~3% of the values it holds. Adding is
 * O(1); a percentile is O(buckets) = O(2560). No allocation: a hist is a
 * plain struct (20 KiB), zero-initialised.
 */
#ifndef CHAT_BENCH_HIST_H
#define CHAT_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_POW 40

typedef struct hist {
    uint64_t b[HIST_POW][HIST_SUB];
    uint64_t n;
} hist;

/* Count one value (µs). */
void hist_add(hist *h, uint64_t us);

/* The q-quantile (0 <= q < 1) in µs; 0 when empty. */
double hist_pct(const hist *h, double q);

#endif
