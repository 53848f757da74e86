/*
 * u32map.h -- a hash map from non-zero uint32_t keys to non-NULL pointers.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones). Lookups, inserts and deletes are O(1) on average; the table
 * doubles at 50% load (an insert that grows it is O(n)) and never shrinks.
 * Key 0 is reserved for empty slots. The map does not own the values.
 */
#ifndef CHAT_COMMON_U32MAP_H
#define CHAT_COMMON_U32MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct u32map_slot {
    uint32_t key;
    void *val;
} u32map_slot;

typedef struct u32map {
    u32map_slot *slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t count;
} u32map;

void u32map_init(u32map *m);
void u32map_free(u32map *m);

/* The value for key, or NULL. */
void *u32map_get(const u32map *m, uint32_t key);

/* Insert or replace. Returns 0, or -1 when out of memory (map unchanged).
 * Replacing the value of a present key never allocates and never fails. */
int u32map_put(u32map *m, uint32_t key, void *val);

/* Remove key; returns its value or NULL when absent. */
void *u32map_del(u32map *m, uint32_t key);

#endif
