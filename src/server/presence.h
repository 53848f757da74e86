/*
 * presence.h -- who is online, and who is typing (docs/PROTOCOL.md,
 * "Receipts, typing and presence"): the PRESENCE and TYPING frames of
 * SIGNALS connections.
 *
 * A user is online while the router holds one of its connections. A
 * SIGNALS connection subscribes to users (PRESENCE SUBSCRIBE); the hub
 * keeps, per watched user, a list of subscriptions (hub.watchers: user ->
 * first psub), and each connection the array of its own (conn.subs), so
 * that both a change of a user and the end of a connection cost O(their
 * subscriptions). A subscription is confirmed by the store (store_presence:
 * the user's last-seen time and, with --auth on, whether the subscriber
 * shares a conversation with it), and answered after that completion.
 *
 * Limits: --max-subscriptions per connection (at most 65,535); a
 * subscription is one psub (40 bytes) and one pointer.
 *
 * TYPING is passed through to the SIGNALS connections of its receiver (or
 * of the group's members), never stored.
 */
#ifndef CHAT_SERVER_PRESENCE_H
#define CHAT_SERVER_PRESENCE_H

#include "server/conn.h"

/* One connection's subscription to one user. */
typedef struct psub {
    struct psub *prev, *next; /* the watched user's list */
    conn *c;
    uint32_t user;
    uint32_t req;             /* while !live: the SUBSCRIBE asking the store
                                 about it (numbered by conn.pres_req) */
    uint8_t live;             /* 0 while the store confirms it */
} psub;

/* A PRESENCE or TYPING frame from a SIGNALS connection. A malformed one
 * closes c with ERROR PROTO. */
void presence_request(conn *c, const frame_c2s *f);
void presence_typing(conn *c, const frame_c2s *f);

/* user got its first connection in the router (online = 1), or lost its
 * last one (online = 0): tell its watchers. */
static inline void presence_changed(hub *h, uint32_t user, int online) {
    void presence_changed_slow(hub *, uint32_t, int);
    if (h->watchers.count) presence_changed_slow(h, user, online);
}

/* The store's feed had a gap (the cluster lost Redis): changes published
 * meanwhile were missed, so every confirmed subscription is asked again and
 * its connection told the user's state as it is now (even if unchanged),
 * as if it had SUBSCRIBEd again. */
void presence_resync(hub *h);

/* c ends: drop its subscriptions. */
void presence_conn_free(conn *c);

/* The store answered a SUBSCRIBE (store_callbacks.presence_done); online
 * NULL: this process's router says who is online. */
void presence_done(void *token, const uint32_t *users, const uint8_t *allowed,
                   const int64_t *last_seen, const uint8_t *online, size_t n,
                   int status);

#endif
