/*
 * hub.h -- what a connection sees of the server that owns it.
 *
 * The server owns its connections; connections see this, never the
 * server's struct: the loop, the settings, the services a session uses
 * (router, store, logins), the loop's scratch read buffer and block pool,
 * the counters they bump, and the lists the server's timers and its
 * once-per-iteration flusher walk. Four calls go up, through `ops`: a list
 * that a timer sweeps got a member (so the timer must run), a connection is
 * about to be freed (so the server can drop what it counts about it, and
 * finish a stop), and an HTTP connection asks for /metrics or /healthz.
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
#include "common/buf.h"
#include "common/list.h"
#include "common/log.h"
#include "common/u32map.h"
#include "server/auth.h"
#include "proto/frame.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/store.h"

struct conn;

/* Counters by data frame type (1-4: text, picture, voice, video). */
#define HUB_TYPES 4

typedef struct hub_stats {
    uint64_t accepted;
    uint64_t frames_in;     /* data frames received and accepted */
    uint64_t frames_routed; /* data frames queued to a live connection */
    uint64_t frames_stored; /* data frames held in the store for later */
    uint64_t refused;       /* frames refused (any reason) */
    uint64_t signals;       /* receipts, TYPING and PRESENCE frames sent
                               because of another user */
    uint64_t signals_dropped; /* ... dropped: their receiver's queue full */
    uint64_t refused_conns; /* connections refused at accept */
    uint64_t deduplicated;  /* POSTs dropped as resends (their cid) */
    uint64_t logins, login_failures;
    uint64_t writes;        /* write system calls started */
    uint64_t http_requests; /* HTTP requests answered (any status) */
    uint64_t ws_upgrades;   /* HTTP connections that became WebSocket */
    uint64_t in_type[HUB_TYPES];     /* data frames received, by type */
    uint64_t live_type[HUB_TYPES];   /* delivered live, by type */
    uint64_t stored_type[HUB_TYPES]; /* delivered from the store, by type */
    uint64_t errors[FRAME_ERR_CODES]; /* ERRORs sent, by code */
    uint64_t rate_limited;  /* times a connection went over a rate */
    uint64_t spilled;       /* times a LIVE receiver fell behind (SYNC) */
    uint64_t bytes_in;      /* bytes read from sockets */
    uint64_t bytes_out;     /* bytes handed to sockets */
    metrics_hist delivery;  /* live frames: from the read of the first
                               frame of a write to that write, in us (each
                               frame of the write counted with it) */
} hub_stats;

/* The swept lists (hub_ops.arm). */
enum { HUB_PENDING, HUB_IDLE, HUB_THROTTLED };

typedef struct hub hub;

typedef struct hub_ops {
    /* List `which` (HUB_*) got a member: its timer must be running. */
    void (*arm)(hub *h, int which);
    /* c is about to be freed: its handles are closed, nothing names it. */
    void (*freed)(hub *h, struct conn *c);
    /* user's last connection left the router (conn_unroute). */
    void (*offline)(hub *h, uint32_t user);
    /* c->confirmed passed some of its track notes (conn_confirmed). */
    void (*confirmed)(hub *h, struct conn *c);
    /* GET /metrics: append the Prometheus text exposition to out. 0, or -1
     * when out of memory. */
    int (*metrics)(hub *h, buf *out);
    /* GET /healthz: 1 when the loop turns and the store takes writes, else
     * 0 with the reason (one line, no quotes) in why[0..n). */
    int (*health)(hub *h, char *why, size_t n);
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
    buf scratch;            /* a response being built (/metrics), valid
                               until the next one; freed by the cron */
    hub_stats stats;
    dlist conns;            /* every connection not yet freed */
    dlist pending;          /* NEW, oldest first (--login-timeout) */
    dlist idle;             /* bound control-frame speakers, quietest first
                               (--idle-timeout: PING, then close) */
    dlist throttled;        /* over a rate limit, not reading */
    struct heldq {          /* (id, connection) for each held message in a
                               connection's tail, in id order: popped by
                               that id's commit (sync.c); a reference on
                               the connection each; bounded by the puts in
                               flight times their receivers' connections */
        struct heldwait {
            uint64_t id;
            struct conn *c;
        } *v;
        uint32_t head, n, cap;
    } heldq;
    dlist flush;            /* output queued during this iteration, or
                               (conn.resume) logged in: the input kept
                               during the login check to parse first */
    int paused;             /* reads stopped: the store is behind */
    uint64_t t_read_us;     /* uv_hrtime() / 1000 at the read callback
                               running (for stats.delivery) */
    uint64_t next_id;       /* the next message id (hub_msg_id) */
    int ids_local;          /* store_ids_local(): 1, the loop gives ids
                               (hub_msg_id); 0 (the cluster), the store
                               does, in put_done */
    int shared;             /* store_shared(): 1 (the cluster), stored
                               messages reach connections only through
                               the store's `live` callback (deliver_live),
                               and presence changes come from it too
                               (presence_event), this process's included;
                               0, the loop routes and tells them itself */
    uint64_t committed;     /* the last message id whose put completed
                               (puts complete in id order: sync.h) */
    int64_t wall0;          /* unix ms when uv_hrtime() / 1000 read mono0_us */
    uint64_t mono0_us;
    int64_t now_ms;         /* the wall clock at t_read_us (hub_clock) */
    uint64_t id_reserved;   /* ids below it are reserved in the store */
    uint32_t nsig;          /* bound SIGNALS connections (receipts.h) */
    u32map watchers;        /* watched user -> first psub (presence.h) */
    const hub_ops *ops;
};

/* Message ids: a counter, from store_next_id() (so never below an id
 * given before a restart, stored or not: the store keeps a reservation
 * HUB_ID_RESERVE ahead of the counter, written with its transactions), +1
 * per message. A client may drop an id it has seen. Small numbers on
 * purpose: SQLite stores integers in 1 to 9 bytes by size, and ids are the
 * key of every row and index entry (time-based ids of 2^56 cost 12% of the
 * store's throughput). */
#define HUB_ID_RESERVE ((uint64_t)1 << 20)

/* A read happened at t_us (uv_hrtime() / 1000): the clock of the
 * messages it brings (once per read, not per message). */
static inline void hub_clock(hub *h, uint64_t t_us) {
    h->t_read_us = t_us;
    h->now_ms = h->wall0 + ((int64_t)t_us - (int64_t)h->mono0_us) / 1000;
}

/* The wall clock at the last read (unix ms; monotonic from the start, not
 * stepped by clock changes): when a message read now was accepted. */
static inline int64_t hub_now_ms(const hub *h) { return h->now_ms; }

static inline uint64_t hub_msg_id(hub *h) {
    if (!h->ids_local) return 0; /* (the store gives ids: put_done) */
    if (h->next_id + HUB_ID_RESERVE / 2 >= h->id_reserved) {
        h->id_reserved = h->next_id + HUB_ID_RESERVE;
        store_ids_reserve(h->store, h->id_reserved);
    }
    return h->next_id++;
}

/* The last id given (messages accepted after now get higher ones), or 0
 * when the store gives ids (it knows the last itself: a group change
 * with joined 0 asks it). */
static inline uint64_t hub_last_id(const hub *h) {
    return h->ids_local ? h->next_id - 1 : 0;
}

/* Empty lists, zero counters, an empty pool; the pointers are the
 * caller's to fill. */
static inline void hub_init(hub *h) {
    *h = (hub){0};
    dlist_init(&h->conns);
    u32map_init(&h->watchers);
    dlist_init(&h->pending);
    dlist_init(&h->idle);
    dlist_init(&h->throttled);
    dlist_init(&h->flush);
    blkpool_init(&h->pool);
    metrics_hist_init(&h->stats.delivery, METRICS_LATENCY_US);
}

#endif
