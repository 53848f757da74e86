/* testutil.h -- helpers shared by the unit tests. */
#ifndef CHAT_TESTS_TESTUTIL_H
#define CHAT_TESTS_TESTUTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Deterministic PRNG (xorshift32): the same seed gives the same run. */
static inline uint32_t rng_next(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Heap copy of src[0..n) of exactly n bytes (1 if n == 0), so that
 * AddressSanitizer reports a read past n; abort() when out of memory. */
static inline uint8_t *copy_exact(const void *src, size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    if (!p) abort();
    if (n) memcpy(p, src, n);
    return p;
}

/* Remove a flat temporary directory and the files in it. */
static inline void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

#endif
