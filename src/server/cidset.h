/*
 * cidset.h -- the client message ids a device sent recently, for
 * effectively-once sends (docs/PROTOCOL.md, POST).
 *
 * A set of at most CIDSET_MAX (cid, time, id) entries: the message's
 * server id, once known (0 before), for POSTED. Adding to a full set drops
 * the oldest, and an entry older than the window no longer counts. Open
 * addressing over a ring of entries in insertion order; lookups and adds
 * are O(1) on average. Memory: 32 bytes per entry, grown by doubling from
 * 16 entries to CIDSET_MAX (at most 128 KiB); NULL is the empty set,
 * so a connection that sends no client id pays nothing. Pure: no I/O, no
 * logging, no clock (times are the caller's).
 */
#ifndef CHAT_SERVER_CIDSET_H
#define CHAT_SERVER_CIDSET_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

#define CIDSET_MAX STORE_DEDUP_MAX

typedef struct cidset cidset;

/* 1 when cid (non-zero) is in s with a time >= since, else 0. */
int cidset_has(const cidset *s, uint64_t cid, int64_t since);

/* The server id kept with cid (cidset_set_id), 0 when unknown or absent. */
uint64_t cidset_id(const cidset *s, uint64_t cid);

/* Keep id with cid (present: else nothing). O(1) on average. */
void cidset_set_id(cidset *s, uint64_t cid, uint64_t id);

/* Add (cid, t) to *s (created when NULL), dropping the oldest entry of a
 * full set; t must not be below the time of the last entry added (the
 * ring is in time order); a new entry's id is 0, a present one keeps its
 * id. 0, or -1 when out of memory (*s unchanged). */
int cidset_add(cidset **s, uint64_t cid, int64_t t);

/* Forget cid (a message refused after all: a resend must go through).
 * O(1) on average; absent or NULL: nothing. */
void cidset_del(cidset *s, uint64_t cid);

/* Entries held (for tests and memory accounting). */
size_t cidset_count(const cidset *s);

void cidset_free(cidset *s);

#endif
