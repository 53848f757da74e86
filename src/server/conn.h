/*
 * conn.h -- one client connection: its state machine and its buffers.
 *
 * States and the functions that move between them:
 *
 *   NEW --first data frame or HELLO (conn_bind)--> BOUND
 *   NEW|BOUND --refusal that closes, EOF, server stop (conn_finish)--> CLOSING
 *   any --write error, slow receiver, linger timeout (conn_abort)--> CLOSED
 *   CLOSING --output flushed, shutdown done, EOF (conn_abort)--> CLOSED
 *   CLOSED --libuv close callbacks--> freed
 *
 * NEW: no frame yet; not in the router. BOUND: bound to `user`, in the
 * router, frames are processed. CLOSING: out of the router; input is read
 * and discarded (so the peer gets our last frames instead of a reset), the
 * output is flushed, then the write side is shut down; closed at EOF or
 * after CONN_LINGER_MS. CLOSED: uv_close() called, waiting for callbacks.
 *
 * Buffers (all owned by the connection, freed with it):
 *  - in: a partial frame that straddled a read, at most max_frame + 13
 *    bytes, grown as its bytes arrive (at most doubling per read), freed
 *    when empty. Complete frames in a read are decoded in place in the
 *    server's shared read buffer and never copied into `in`.
 *  - out[2]: server -> client frames. out[outi] takes appends; the other
 *    is owned by the in-flight uv_write while `writing`. Their sum is kept
 *    under cfg->max_outbuf; a receiver that would pass it is closed (ERROR
 *    SLOW) and its unsent frames handed to the store.
 */
#ifndef CHAT_SERVER_CONN_H
#define CHAT_SERVER_CONN_H

#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "router.h"

struct server;

#define CONN_LINGER_MS 2000   /* how long a closing connection may flush */
#define CONN_PULL_BYTES (256u * 1024) /* stored bytes queued per pull */

typedef enum conn_state {
    CONN_NEW,
    CONN_BOUND,
    CONN_CLOSING,
    CONN_CLOSED
} conn_state;

/* Events logged at most once per connection. */
enum {
    CONN_LOGGED_SPOOF = 1u << 0,
    CONN_LOGGED_BADTYPE = 1u << 1,
    CONN_LOGGED_BADRCPT = 1u << 2,
    CONN_LOGGED_STORE = 1u << 3,
    CONN_LOGGED_HELLO = 1u << 4
};

typedef struct conn_linger conn_linger;

typedef struct conn {
    uv_tcp_t tcp;            /* handle; tcp.data == this */
    struct server *srv;
    conn_state state;
    router_node node;        /* in srv->router while BOUND */
    uint32_t user;           /* bound user id, 0 before */
    uint8_t ctl;             /* the peer has sent a control frame */
    uint8_t writing;         /* a uv_write owns out[outi ^ 1] */
    uint8_t flush_queued;    /* on srv->flush_head */
    uint8_t outi;            /* index of the buffer taking appends */
    uint8_t backlog;         /* the store may hold frames for this user */
    uint8_t eof;             /* the peer closed its write side */
    uint8_t wfailed;         /* the in-flight write failed: all unsent */
    uint8_t handles;         /* libuv handles still to close before free */
    uint16_t logged;         /* CONN_LOGGED_* */
    uint32_t skip;           /* body bytes of a refused frame to discard */
    uint64_t seq_in;         /* data frames received (1-based refs) */
    buf in;
    buf out[2];
    uv_write_t wreq;
    conn_linger *linger;     /* allocated once CLOSING */
    struct conn *flush_next;
    struct conn *prev, *next;/* srv->conns */
    char peer[64];           /* "ip:port" */
} conn;

/* Accept a pending connection on the listener. 0 or a libuv error. */
int conn_accept(struct server *s, uv_stream_t *listener);

/* Write out[outi] (once per loop iteration, from the server's flusher). */
void conn_flush(conn *c);

/* Append a data frame (9-byte header + body) for the peer. Returns 0, or -1
 * when the connection passed its output bound and was closed (its unsent
 * frames went to the store; this frame did not). */
int conn_send_data(conn *c, uint32_t from, uint8_t type, const uint8_t *body,
                   uint32_t len);

/* Queue stored frames for this connection's user, up to CONN_PULL_BYTES. */
void conn_pull_store(conn *c);

/* Close gracefully: an ERROR (code, reason) first to a peer that speaks
 * control frames (code 0: none), then flush, shut down, close. */
void conn_finish(conn *c, unsigned code, const char *reason);

/* Close now; unsent data frames go to the store. */
void conn_abort(conn *c);

#endif
