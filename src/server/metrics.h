/*
 * metrics.h -- the server's metrics in the Prometheus text exposition format
 * 0.0.4: histograms cheap enough for the hot path, and a writer that renders
 * counters, gauges and histograms into a bounded buffer at scrape time.
 * Pure: no I/O, no logging, no global state. Process metrics (/proc/self)
 * are procstat.h's.
 *
 * Naming (https://prometheus.io/docs/practices/naming/), checked with assert
 * where it can be:
 *   - every metric of ours starts with chat_ (process_* are the standard
 *     process metrics, the same in every exporter);
 *   - names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 *     (not starting with __, never "le", which histograms own);
 *   - base units in the name and the value: _seconds, _bytes; a latency is
 *     observed in microseconds and exposed in seconds (metrics_hist_render
 *     converts);
 *   - a counter's name ends in _total (asserted); a counter only goes up and
 *     starts at 0 with the process;
 *   - never a user id, peer address or other unbounded value as a label
 *     value: every label set is a short, fixed list (transport="tcp", ...),
 *     or Prometheus' memory grows with our users.
 *
 * Threads: a metrics_hist (like a plain uint64_t counter) has one writer
 * thread and is read by the same thread when rendered (the loop thread
 * observes and serves /metrics): no lock, no atomic. A metric of another
 * thread (the store thread) is copied to the loop under that thread's own
 * hand-off, never read while being written.
 */
#ifndef CHAT_SERVER_METRICS_H
#define CHAT_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The Content-Type of a /metrics answer. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A suggested limit for one exposition (the `limit` of metrics_out_init):
 * ours is a few KiB; 1 MiB leaves room for many label sets. */
#define METRICS_EXPOSITION_MAX (1u << 20)

/* ---- Histograms ------------------------------------------------------- */

/* The kinds of histogram, each with a fixed table of upper bounds (inclusive,
 * "le"), chosen at compile time; values are integers in the kind's base unit.
 *   METRICS_LATENCY_US  microseconds, exposed in seconds; 17 bounds from
 *                       50 us to 10 s in 1-2.5-5 steps (50 us, 100 us,
 *                       250 us, 500 us, 1 ms, ... 5 s, 10 s)
 *   METRICS_COUNT       items (frames per batch, per read ...); 9 bounds,
 *                       1, 4, 16, ... 65536 (x4)
 *   METRICS_BYTES       bytes; 10 bounds, 64 B, 256 B, ... 16 MiB (x4)
 * A value above the last bound is counted in +Inf only. */
typedef enum metrics_kind {
    METRICS_LATENCY_US = 0,
    METRICS_COUNT,
    METRICS_BYTES,
    METRICS_KINDS /* how many */
} metrics_kind;

/* The most finite bounds any kind has (METRICS_LATENCY_US). */
#define METRICS_HIST_BOUNDS 17

/* One histogram: 168 bytes, no pointer, no allocation; zeroed by
 * metrics_hist_init (or by a zeroed struct: kind 0 is METRICS_LATENCY_US).
 * Embed it where it is observed (the server struct, a per-kind array).
 * Invariant: count == the sum of counts[] (metrics_hist_check). sum and
 * count wrap modulo 2^64 (584,000 years of microseconds). */
typedef struct metrics_hist {
    uint64_t counts[METRICS_HIST_BOUNDS + 1]; /* per bucket, NOT cumulative:
                                                 counts[i] holds the values
                                                 in (bound[i-1], bound[i]];
                                                 counts[nbounds] is +Inf */
    uint64_t sum;   /* of the values observed, in the base unit */
    uint64_t count; /* values observed */
    metrics_kind kind;
} metrics_hist;

/* An empty histogram of that kind. */
void metrics_hist_init(metrics_hist *h, metrics_kind kind);

/* Count value v (in the kind's base unit). O(log bounds): a binary search
 * over at most 17 integers, three additions; no allocation, no system call,
 * no lock, no floating point. */
void metrics_hist_observe(metrics_hist *h, uint64_t v);

/* Count value v `times` times (a batch of events that share a figure). */
void metrics_hist_observe_n(metrics_hist *h, uint64_t v, uint64_t times);

/* The kind's bounds (ascending) and their number; and how many decimal
 * places the base unit is below the exposed unit (6 for microseconds ->
 * seconds, 0 otherwise). */
const uint64_t *metrics_bounds(metrics_kind kind, unsigned *n);
unsigned metrics_decimals(metrics_kind kind);

/* Assert the invariant above; 1 (for assert(metrics_hist_check(h))). */
int metrics_hist_check(const metrics_hist *h);

/* ---- The exposition writer -------------------------------------------- */

/* Families per exposition whose names are remembered for the "# TYPE once
 * per family" check (debug builds; past this many, unchecked). */
#define METRICS_OUT_FAMILIES 64

/* A writer appending one exposition to the caller's buf, never past limit
 * bytes. Errors are sticky (like ferror): after the first failure every
 * call does nothing, and metrics_out_status says what failed; so a renderer
 * makes all its calls and checks once. The writer borrows b (the caller owns
 * and frees it) and the family names (string literals: kept until the
 * render ends). Lives on the stack for one scrape. */
typedef struct metrics_out {
    buf *b;
    size_t limit;
    int err; /* 0, BUF_ENOMEM or BUF_ELIMIT */
    /* The debug checks: the current family, the families seen. */
    const char *family;
    int type; /* of family */
    unsigned nseen;
    const char *seen[METRICS_OUT_FAMILIES];
} metrics_out;

typedef enum metrics_type {
    METRICS_COUNTER = 0,
    METRICS_GAUGE,
    METRICS_HISTOGRAM
} metrics_type;

/* Labels: NULL (none), or an array of name, value, name, value, ..., NULL.
 * Values are any UTF-8 text, escaped here (\\, \", \n); the names follow the
 * rules above. E.g. (const char *[]){"transport", "tcp", NULL}. */

/* Start appending to b (its content is kept; limit: METRICS_EXPOSITION_MAX
 * or the caller's). */
void metrics_out_init(metrics_out *o, buf *b, size_t limit);

/* 0 when everything so far was written, else the first error (BUF_ENOMEM,
 * BUF_ELIMIT; the buffer then ends with a partial exposition). */
int metrics_out_status(const metrics_out *o);

/* The "# HELP" and "# TYPE" lines of a family, once per family and before
 * its samples (help: one sentence; escaped here). */
void metrics_family(metrics_out *o, const char *name, metrics_type type,
                    const char *help);

/* One sample of the current family (name == the family's), an integer
 * (printed exactly). */
void metrics_u64(metrics_out *o, const char *name, const char *const *labels,
                 uint64_t v);

/* One sample as a float: the shortest form that reads back the same double
 * (at most 17 digits), NaN, +Inf, -Inf. */
void metrics_f64(metrics_out *o, const char *name, const char *const *labels,
                 double v);

/* One sample given in a smaller integer unit: v / 10^decimals printed
 * exactly (decimals <= 9), e.g. 1500 with 3 decimals is "1.5". */
void metrics_fixed(metrics_out *o, const char *name, const char *const *labels,
                   uint64_t v, unsigned decimals);

/* One histogram of the current family (a METRICS_HISTOGRAM): name_bucket
 * with le="..." (cumulative, the bounds in the exposed unit, then +Inf),
 * name_sum and name_count, each with labels. */
void metrics_hist_render(metrics_out *o, const char *name,
                         const char *const *labels, const metrics_hist *h);

/* 1 when s is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), else 0. */
int metrics_name_ok(const char *s);

#endif
