/*
 * ratelimit.h -- per-connection rate limits: two token buckets (data frames
 * and bytes per second), each holding at most one second of its rate, and
 * the grace period a connection may stay over them.
 *
 * Tokens are counted in thousandths (a frame or a byte is 1000) so that a
 * refill after a few milliseconds is exact. A bucket may go negative (in
 * debt): a read's frames and bytes are charged after they were taken, and
 * the connection stops reading until the debt is paid. A rate of 0 turns
 * that bucket off.
 *
 * Pure: the caller passes the time (ms); no I/O, no allocation.
 */
#ifndef CHAT_SERVER_RATELIMIT_H
#define CHAT_SERVER_RATELIMIT_H

#include <stdint.h>

typedef struct ratelimit_cfg {
    uint64_t msgs;     /* data frames per second; 0: no limit */
    uint64_t bytes;    /* bytes per second; 0: no limit */
    uint64_t grace_ms; /* over a rate this long: the connection is closed */
} ratelimit_cfg;

typedef struct ratelimit {
    int64_t frames, bytes; /* tokens, thousandths; negative = in debt */
    uint64_t t;            /* ms of the last refill */
    uint64_t over_since;   /* ms the current over-rate streak began; 0 when
                              the buckets were full since */
} ratelimit;

/* The verdicts. */
enum {
    RATE_OK = 0,    /* under the limits */
    RATE_OVER_NEW,  /* just went over: stop reading, tell the peer once */
    RATE_OVER,      /* still over (within the grace period): keep waiting */
    RATE_EXPIRED    /* over for grace_ms: close the connection */
};

/* Full buckets at time now. */
void ratelimit_init(ratelimit *r, const ratelimit_cfg *cfg, uint64_t now);

/* 1 when either limit is on. */
static inline int ratelimit_on(const ratelimit_cfg *cfg) {
    return cfg->msgs || cfg->bytes;
}

/* Charge what one read brought (frames, bytes) at time now. O(1). */
int ratelimit_charge(ratelimit *r, const ratelimit_cfg *cfg, uint64_t frames,
                     uint64_t bytes, uint64_t now);

/* Refill to time now and say whether the connection may read again
 * (RATE_OK), must wait (RATE_OVER) or is to be closed (RATE_EXPIRED). */
int ratelimit_poll(ratelimit *r, const ratelimit_cfg *cfg, uint64_t now);

#endif
