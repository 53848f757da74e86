/*
 * router.h -- which live connections belong to which user, in this process.
 *
 * A connection embeds a router_node; the router keeps, per user id, a
 * doubly linked list of the nodes bound to it (one per device). The router
 * never owns the connections: the caller removes a node before freeing it.
 * All operations are O(1) on average.
 *
 * This is the local half of routing. When receivers may live on another
 * loop or node, a remote router sits behind the same questions ("who is
 * live for user U?").
 */
#ifndef CHAT_SERVER_ROUTER_H
#define CHAT_SERVER_ROUTER_H

#include <stdint.h>

#include "common/u32map.h"

typedef struct router_node {
    struct router_node *prev, *next;
    uint32_t user; /* 0 while not in the router */
} router_node;

typedef struct router {
    u32map users; /* user id -> first router_node */
    uint64_t nodes;
} router;

void router_init(router *r);
/* Frees the table only; nodes still in it are left as they are. */
void router_free(router *r);

/* Add node for user (non-zero). Newest first. Returns 0, -1 on ENOMEM. */
int router_add(router *r, router_node *n, uint32_t user);

/* Remove node; a node not in the router is ignored. */
void router_del(router *r, router_node *n);

/* First node bound to user, or NULL; follow ->next for the others. */
router_node *router_first(const router *r, uint32_t user);

#endif
