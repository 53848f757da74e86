/*
 * conn.h -- one client connection: its state machine and its buffers.
 *
 * States and the functions that move between them:
 *
 *   NEW --first data frame or HELLO (bind_user)--> BOUND
 *   NEW --HELLO with a password, --auth on (auth_check)--> LOGIN
 *   LOGIN --password right (conn_auth_done, bind_user)--> BOUND
 *   NEW|LOGIN|BOUND --refusal that closes, EOF, login timeout or failure,
 *         rate limit, server stop (conn_finish)--> CLOSING
 *   any --write error, echo receiver not reading, linger timeout
 *         (conn_abort)--> CLOSED
 *   CLOSING --output flushed, shutdown done, EOF (conn_abort)--> CLOSED
 *   CLOSED --libuv close callbacks and no store request in flight
 *         (conn_release)--> freed
 *
 * NEW: no frame yet; not in the router; on the server's pending list
 * (closed at --login-timeout). LOGIN: its HELLO's password is being
 * checked off the loop; reading is stopped and whatever followed the HELLO
 * in the same read (at most SERVER_READ_BUF bytes) waits unparsed in `in`;
 * off the pending list (the check's time is not the client's, and the
 * check queue is bounded); a wrong password answers ERROR AUTH
 * CONN_AUTH_FAIL_MS after the HELLO arrived, then closes. BOUND: bound to `user`, in the
 * router, frames are processed. CLOSING: out of the router; input is read
 * and discarded (so the peer gets our last frames instead of a reset), the
 * output is flushed, then the write side is shut down; closed at EOF or
 * after CONN_LINGER_MS. CLOSED: uv_close() called, waiting for callbacks.
 *
 * A BOUND connection (routing mode) is also LIVE or SYNC:
 *   SYNC (sync = 1): the store may hold frames for this user that this
 *     connection has not been sent. New frames for the user go to the store;
 *     the connection fetches them in id order, a page at a time, as its
 *     output drains (conn_fetch). Every connection starts SYNC when it binds
 *     (stored messages come first), and a LIVE one becomes SYNC when its
 *     output would pass --max-outbuf (spill: the sender is never blocked).
 *   LIVE (sync = 0): a fetch came back with nothing further; the frames
 *     stored for the user while it was in flight (the tail, kept in memory
 *     up to --max-outbuf) are appended after its rows, and from then on
 *     frames are appended directly. A tail that overflowed means fetching
 *     again instead, so a flood cannot keep a receiver SYNC for ever: it
 *     only has to be absorbed within one fetch round trip.
 *
 * Delivery bookkeeping: a data frame queued to the peer may carry a store
 * id (0 when it has no stored copy). ids[i] holds (offset, id) for each
 * frame in out[i] that has one; frames without cost nothing. Without acknowledgements, a stored frame is deleted once the
 * kernel accepted the whole buffer it is in; with them (acks = 1), once the
 * peer acknowledged it (ackq maps the peer's count to ids).
 *
 * Buffers (all owned by the connection, freed with it):
 *  - in: a partial frame that straddled a read, at most max_frame + 13
 *    bytes, grown as its bytes arrive (at most doubling per read), freed
 *    when empty. Complete frames in a read are decoded in place in the
 *    server's shared read buffer and never copied into `in`.
 *  - out[2]: server -> client frames. out[outi] takes appends; the other
 *    is owned by the in-flight uv_write while `writing`. Their sum stays
 *    under cfg->max_outbuf, plus at most one fetched page, one tail and
 *    small control frames.
 *  - tail: see SYNC above; at most cfg->max_outbuf, freed when large.
 */
#ifndef CHAT_SERVER_CONN_H
#define CHAT_SERVER_CONN_H

#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/vec.h"
#include "router.h"
#include "tls.h"

struct server;

#define CONN_LINGER_MS 2000   /* how long a closing connection may flush */
#define CONN_PULL_BYTES (256u * 1024) /* stored bytes fetched per page */
#define CONN_PULL_ROWS 1024u          /* stored rows fetched per page */
#define CONN_AUTH_FAIL_MS 1000        /* a failed login is answered after */

typedef enum conn_state {
    CONN_NEW,
    CONN_LOGIN,
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
    CONN_LOGGED_HELLO = 1u << 4,
    CONN_LOGGED_SPILL = 1u << 5,
    CONN_LOGGED_FETCH = 1u << 6,
    CONN_LOGGED_RATE = 1u << 7
};

typedef struct conn_linger conn_linger;

typedef struct conn {
    uv_tcp_t tcp;            /* handle; tcp.data == this */
    struct server *srv;
    conn_state state;
    router_node node;        /* in srv->router while BOUND */
    uint32_t user;           /* bound user id, 0 before */
    uint8_t ctl;             /* the peer has sent a control frame */
    uint8_t acks;            /* acknowledgements granted (HELLO flag) */
    uint8_t sync;            /* SYNC (1) or LIVE (0), see above */
    uint8_t sync_dirty;      /* a frame was stored for the user since the
                                last fetch was asked for */
    uint8_t fetching;        /* a store fetch is in flight */
    uint8_t writing;         /* a uv_write owns out[outi ^ 1] */
    uint8_t flush_queued;    /* on srv->flush_head */
    uint8_t outi;            /* index of the buffer taking appends */
    uint8_t eof;             /* the peer closed its write side */
    uint8_t wfailed;         /* the in-flight write failed: all unsent */
    uint8_t ack_dirty;       /* an ACK for ack_out is to be sent */
    uint8_t reading;         /* uv_read_start is in effect */
    uint8_t handles;         /* libuv handles still to close before free */
    uint8_t throttled;       /* on srv's throttled list, reading stopped */
    uint8_t pending;         /* on srv's pending list (NEW) */
    uint8_t idle_listed;     /* on srv's idle list (BOUND, ctl); uses the
                                pending list's links: the two exclude */
    uint8_t pinged;          /* a keepalive PING is unanswered */
    uint8_t tls_inflight;    /* TLS: the write in flight carries the
                                ciphertext of out[outi ^ 1] */
    uint8_t tls_notified;    /* TLS: close_notify queued */
    uint8_t local;           /* the peer is a loopback address */
    uint16_t logged;         /* CONN_LOGGED_* */
    uint32_t skip;           /* body bytes of a refused frame to discard */
    uint32_t refs;           /* store requests in flight naming this conn */
    uint32_t puts_pending;   /* of which puts of this peer's frames */
    uint64_t seq_in;         /* data frames received (1-based refs) */
    uint64_t ack_out;        /* data frames received and handled */
    uint64_t seq_out;        /* data frames queued to the peer */
    uint64_t cursor;         /* highest store id queued to the peer */
    uint64_t t_accept;       /* uv_now at accept (login timeout) */
    uint64_t t_hello;        /* uv_now when a login's HELLO arrived */
    uint64_t t_rx;           /* uv_now of the last byte received */
    uint32_t ipkey;          /* per-address count key in srv->per_ip, 0
                                when not counted (loopback, no limit) */
    uint32_t frames_seen;    /* frames parsed since the last rate charge */
    /* Rate limits: token buckets in thousandths of a frame / byte, each
     * holding at most one second of its rate; negative = in debt. */
    int64_t tok_frames, tok_bytes;
    uint64_t tok_t;          /* uv_now of the last refill */
    uint64_t over_since;     /* uv_now the current over-rate streak began,
                                0 when the buckets were full since */
    buf in;
    buf out[2];
    seqidq ids[2];           /* (byte offset in out[i], store id) of each
                                frame in out[i] that has a stored copy */
    buf tail;                /* SYNC with a fetch in flight: frames stored
                                for the user since it was asked for, as s2c
                                frames, at most cfg->max_outbuf */
    u64vec tail_ids;         /* their store ids */
    uint8_t tail_over;       /* the tail passed its bound: fetch again */
    seqidq ackq;             /* (seq_out, id) awaiting the peer's ACK */
    tls_conn *tls;           /* NULL for plaintext connections */
    buf wire;                /* TLS: ciphertext owned by the in-flight
                                uv_write, or waiting for the socket */
    conn_linger *linger;     /* allocated once CLOSING */
    struct conn *flush_next;
    struct conn *prev, *next;/* srv->conns */
    struct conn *pprev, *pnext; /* srv pending list, oldest first, or
                                   (BOUND) srv idle list, quietest first */
    struct conn *tprev, *tnext; /* srv throttled list */
    uint8_t peer_ip[16];     /* the peer's address (IPv4: first 4 bytes), */
    uint16_t peer_port;      /* kept raw: conn_peer() formats it for logs */
    uint8_t peer_v6;
} conn;

/* "ip:port" of the peer, for log lines: a static buffer, valid until the
 * next call (one per log line; the loop thread only). */
const char *conn_peer(const conn *c);

/* Accept a pending connection on the listener (tls: the TLS listener).
 * 0 or a libuv error. */
int conn_accept(struct server *s, uv_stream_t *listener, int tls);

/* Write out[outi] (once per loop iteration, from the server's flusher),
 * after appending a pending ACK. */
void conn_flush(conn *c);

/* 1 when a data frame of `len` body bytes fits under the output bound
 * (writing out what is queued first if no write is in flight), else 0. */
int conn_has_room(conn *c, uint32_t len);

/* Append a data frame (9-byte header + body) for the peer, with its store
 * id (0: none). The caller checked conn_has_room (fetched pages excepted).
 * Returns 0, or -1 when out of memory (the connection is closed). */
int conn_send_data(conn *c, uint32_t from, uint8_t type, const uint8_t *body,
                   uint32_t len, uint64_t id);

/* LIVE -> SYNC: frames for this user now wait in the store. */
void conn_spill(conn *c);

/* Ask the store for the next page of this user's frames, if SYNC, none is
 * in flight and the output has room. */
void conn_fetch(conn *c);

/* A frame was stored for this SYNC connection's user (id != 0). */
void conn_stored(conn *c, uint32_t from, uint8_t type, const uint8_t *body,
                 uint32_t len, uint64_t id);

/* Store completions for requests naming this connection. `named`: the
 * sender wants acknowledgements and seq is counted in puts_pending. */
void conn_put_done(conn *c, uint64_t seq, int named, int status);
void conn_fetch_done(conn *c, const void *rows, size_t n, int more,
                     int status);

/* The password check of a LOGIN connection finished (auth_done_fn). */
void conn_auth_done(void *conn, int result);

/* The server's timers: close pending connections past --login-timeout;
 * refill throttled connections and resume (or close) them. Each returns
 * the ms until it wants to run again, 0 when it has nothing to watch. */
uint64_t conn_sweep_pending(struct server *s);
uint64_t conn_sweep_throttled(struct server *s);
/* Ping connections silent for half of --idle-timeout, close those silent
 * for all of it. */
uint64_t conn_sweep_idle(struct server *s);

/* Free the buffers that are empty (the server's cron, every second): an
 * idle connection holds only its struct. Returns the bytes freed. */
size_t conn_shrink(conn *c);

/* Stop / resume reading (store back-pressure). */
void conn_pause(conn *c);
void conn_resume(conn *c);

/* Close gracefully: an ERROR (code, reason) first to a peer that speaks
 * control frames (code 0: none), then flush, shut down, close. */
void conn_finish(conn *c, unsigned code, const char *reason);

/* Close now; unsent frames without a stored copy go to the store. */
void conn_abort(conn *c);

#endif
