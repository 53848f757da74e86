/*
 * bgroup.h -- chat-bench's account of one group's messages in flight
 * (scenario group): how many of its online members still lack each of the
 * messages the author keeps in flight, and when the author may post more.
 *
 * Every member gets the author's messages in the order they were posted
 * (one server, one connection per member), so the n-th message a member
 * gets is message n; chat-bench checks that with the sequence number in
 * each payload's stamp before it calls bgroup_delivered. Hence message n is
 * complete (at every online member) no later than message n + 1, and the
 * complete messages are always a prefix: one counter per message in flight,
 * in a ring of `depth`, is the whole account. O(1) per delivery, no
 * per-member state here (each member counts its own arrivals).
 *
 * With acks, a message also stays in flight until the server acknowledged
 * it (the author asked for acknowledgements: the server stores what it
 * acknowledges), so that at most `depth` are unacknowledged, as a client
 * with a window of unacknowledged messages would keep them.
 *
 * Invariants: complete <= sent, acked <= sent, sent - min(complete, acked)
 * <= depth; left[n % depth] is the deliveries message n still needs, for
 * complete <= n < sent.
 */
#ifndef CHAT_BENCH_BGROUP_H
#define CHAT_BENCH_BGROUP_H

#include <stdint.h>

typedef struct bgroup {
    uint32_t id;        /* the server's group id; 0 until it is created */
    uint32_t receivers; /* online members that get each message (> 0) */
    uint32_t depth;     /* messages in flight, at most (> 0) */
    int acks;           /* 1: in flight until acknowledged as well */
    uint64_t sent;      /* messages posted */
    uint64_t complete;  /* messages every receiver has (0..complete-1) */
    uint64_t acked;     /* messages the server acknowledged (acks) */
    uint32_t *left;     /* ring of depth: deliveries still due; owned */
} bgroup;

/* Set g up for `receivers` online members and `depth` messages in flight.
 * 0, or -1 when out of memory (g then owns nothing). */
int bgroup_init(bgroup *g, uint32_t receivers, uint32_t depth, int acks);
void bgroup_free(bgroup *g);

/* How many messages may be posted now (depth minus those in flight). */
uint32_t bgroup_room(const bgroup *g);

/* Message g->sent was posted; only when bgroup_room(g) > 0. */
void bgroup_posted(bgroup *g);

/* A receiver got message n (its n-th, counted from 0). 1 when that made
 * message n complete, 0 when others still lack it, -1 when message n was
 * never posted or is complete already (a message too many: the caller
 * counts it, nothing changes). */
int bgroup_delivered(bgroup *g, uint64_t n);

/* The server acknowledged `count` of the author's messages in all. 0, or
 * -1 when count is below an earlier one or above what was posted (nothing
 * changes then). */
int bgroup_acked(bgroup *g, uint64_t count);

/* Deliveries the messages in flight still need. O(depth). */
uint64_t bgroup_due(const bgroup *g);

#endif
