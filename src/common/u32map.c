#include "u32map.h"

#include <stdlib.h>

static size_t slot_of(uint32_t key, size_t mask) {
    /* Fibonacci hashing spreads sequential user ids. */
    return (size_t)((key * 2654435769u) >> 7) & mask;
}

void u32map_init(u32map *m) {
    m->slots = NULL;
    m->mask = 0;
    m->count = 0;
}

void u32map_free(u32map *m) {
    free(m->slots);
    u32map_init(m);
}

void *u32map_get(const u32map *m, uint32_t key) {
    if (!m->slots || key == 0) return NULL;
    for (size_t i = slot_of(key, m->mask);; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key) return m->slots[i].val;
        if (m->slots[i].key == 0) return NULL;
    }
}

static int grow(u32map *m) {
    size_t cap = m->slots ? (m->mask + 1) * 2 : 64;
    u32map_slot *s = calloc(cap, sizeof *s);
    if (!s) return -1;
    for (size_t j = 0; m->slots && j <= m->mask; j++) {
        if (m->slots[j].key == 0) continue;
        size_t i = slot_of(m->slots[j].key, cap - 1);
        while (s[i].key) i = (i + 1) & (cap - 1);
        s[i] = m->slots[j];
    }
    free(m->slots);
    m->slots = s;
    m->mask = cap - 1;
    return 0;
}

int u32map_put(u32map *m, uint32_t key, void *val) {
    if (key == 0) return -1;
    size_t i;
    if (m->slots) { /* replacing never allocates */
        for (i = slot_of(key, m->mask); m->slots[i].key; i = (i + 1) & m->mask)
            if (m->slots[i].key == key) {
                m->slots[i].val = val;
                return 0;
            }
    }
    if (!m->slots || (m->count + 1) * 2 > m->mask + 1) {
        if (grow(m)) return -1;
    }
    i = slot_of(key, m->mask);
    while (m->slots[i].key && m->slots[i].key != key) i = (i + 1) & m->mask;
    if (m->slots[i].key == 0) m->count++;
    m->slots[i].key = key;
    m->slots[i].val = val;
    return 0;
}

void *u32map_del(u32map *m, uint32_t key) {
    if (!m->slots || key == 0) return NULL;
    size_t i = slot_of(key, m->mask);
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0) return NULL;
        i = (i + 1) & m->mask;
    }
    void *val = m->slots[i].val;
    /* Backward-shift: pull later members of the probe run into the hole. */
    for (size_t j = (i + 1) & m->mask; m->slots[j].key; j = (j + 1) & m->mask) {
        size_t home = slot_of(m->slots[j].key, m->mask);
        /* Move j into hole i unless its home lies cyclically in (i, j]. */
        int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].val = NULL;
    m->count--;
    return val;
}
