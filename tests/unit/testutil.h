/* testutil.h -- helpers shared by the unit tests. */
#ifndef CHAT_TESTS_TESTUTIL_H
#define CHAT_TESTS_TESTUTIL_H

#include <stdint.h>

/* Deterministic PRNG (xorshift32): the same seed gives the same run. */
static inline uint32_t rng_next(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

#endif
