/*
 * hub.h -- what a connection sees of the server that owns it.
 *
 * The server owns its connections; connections see this, never the
 * server's struct: the loop, the settings, the services a session uses
 * (router, store, logins), the loop's scratch read buffer and block pool,
 * the counters they bump, and the lists the server's timers and its
 * once-per-iteration flusher walk. Two calls go up, through `ops`: a list
 * that a timer sweeps got a member (so the timer must run), and a
 * connection is about to be freed (so the server can drop what it counts
 * about it, and finish a stop).
 *
 * Threads: the loop thread only. Ownership: the server allocates the hub,
 * initialises it (hub_init) and fills the pointers; the services are
 * borrowed (the server's caller opens and closes them).
 */
#ifndef CHAT_SERVER_HUB_H
#define CHAT_SERVER_HUB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/blk.h"
#include "common/list.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/router.h"
#include "server/store.h"

struct conn;

typedef struct hub_stats {
    uint64_t accepted;
    uint64_t frames_in;     /* data frames received and accepted */
    uint64_t frames_routed; /* data frames queued to a live connection */
    uint64_t frames_stored; /* data frames held in the store for later */
    uint64_t refused;       /* frames refused (any reason) */
    uint64_t refused_conns; /* connections refused at accept */
    uint64_t logins, login_failures;
    uint64_t writes;        /* write system calls started */
} hub_stats;

/* The swept lists (hub_ops.arm). */
enum { HUB_PENDING, HUB_IDLE, HUB_THROTTLED };

typedef struct hub hub;

typedef struct hub_ops {
    /* List `which` (HUB_*) got a member: its timer must be running. */
    void (*arm)(hub *h, int which);
    /* c is about to be freed: its handles are closed, nothing names it. */
    void (*freed)(hub *h, struct conn *c);
} hub_ops;

struct hub {
    uv_loop_t *loop;
    const config *cfg;
    router *router;         /* user id -> live connections of this process */
    store *store;
    auth *auth;             /* --auth on; NULL: no logins */
    uint8_t *rbuf;          /* the scratch read buffer (valid during one
                               read callback) */
    size_t rbuf_len;
    uint8_t *pbuf;          /* TLS: the scratch plaintext buffer (rbuf holds
                               the ciphertext OpenSSL reads in place) */
    size_t pbuf_len;
    blkpool pool;           /* blocks for large frames (blk.h) */
    hub_stats stats;
    dlist conns;            /* every connection not yet freed */
    dlist pending;          /* NEW, oldest first (--login-timeout) */
    dlist idle;             /* bound control-frame speakers, quietest first
                               (--idle-timeout: PING, then close) */
    dlist throttled;        /* over a rate limit, not reading */
    dlist flush;            /* output queued during this iteration, or
                               (conn.resume) logged in: the input kept
                               during the login check to parse first */
    int paused;             /* reads stopped: the store is behind */
    uint64_t next_id;       /* the next store message id */
    const hub_ops *ops;
};

/* Empty lists, zero counters, an empty pool; the pointers are the
 * caller's to fill. */
static inline void hub_init(hub *h) {
    *h = (hub){0};
    dlist_init(&h->conns);
    dlist_init(&h->pending);
    dlist_init(&h->idle);
    dlist_init(&h->throttled);
    dlist_init(&h->flush);
    blkpool_init(&h->pool);
}

#endif
