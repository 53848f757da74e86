/*
 * bconn.h -- chat-bench's connections: the I/O under the scenario loop.
 *
 * A connection is a non-blocking TCP socket watched by a uv_poll handle,
 * optionally with a TLS session (btls.h) and then a WebSocket (bws.h) on
 * top. It is an explicit state machine:
 *
 *   CONNECTING --connected--> [INFO --line--> ] HANDSHAKE --done--> [UPGRADE --101-->] OPEN
 *                  (plaintext) `--------------------------------> [UPGRADE --101-->] OPEN
 *
 * (INFO: NATS sends its INFO line in plaintext before the TLS handshake,
 * but not on its WebSocket listener. UPGRADE: the HTTP request for a
 * WebSocket was sent, its answer is awaited; only with env->ws_path.)
 *
 * Sending: the scenario gives each unit of its protocol (a chat frame, a
 * group of NATS lines or MQTT packets) with bconn_unit() and then its
 * bytes, in order, with bconn_reserve/commit, bconn_put and bconn_ref; they
 * go to c->q (outq.h: small per-message bytes copied, the payload
 * referenced); then bconn_want_flush(). Over a WebSocket a unit is one
 * binary message: bconn_unit writes its header with a fresh mask key, and
 * every byte is masked as it is given (bconn_ref then copies: a masked
 * payload cannot be shared). Once per loop iteration (a uv_check) every
 * connection with output is written with one writev (TLS: everything is
 * encrypted, then one send). A write the kernel takes only partly waits for
 * the socket to be writable; new messages queue behind it, so there is at
 * most one write in flight per connection.
 *
 * Receiving: one read per readable event into a buffer shared by all
 * connections; a streaming decoder (wire_decode) finds each unit's head;
 * of a message only the first 16 payload bytes (the stamp) are kept and the
 * rest is skipped: bytes already read are stepped over, and without TLS the
 * rest of a large body is discarded in the kernel with recv(MSG_TRUNC), not
 * copied. No buffer ever grows to a message's size: a connection keeps at
 * most the unfinished head of a unit (bounded by BCONN_PEND_MAX). Over a
 * WebSocket the frames are stripped first, in place (bws_unframe), and a
 * ping is answered at once; a body is discarded in the kernel as far as
 * both the message and its WebSocket frame go.
 */
#ifndef CHAT_BENCH_BCONN_H
#define CHAT_BENCH_BCONN_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "btls.h"
#include "bws.h"
#include "outq.h"
#include "wire.h"

#define BCONN_STAMP 16u            /* send time ns (8), sender index (4),
                                      the sender's sequence number (4) */
#define BCONN_PEND_MAX (64u << 10) /* a non-message unit (and the answer to
                                      the WebSocket upgrade) must fit in this */
#define BCONN_WS_KEYS 256u         /* mask keys drawn from OpenSSL at a time */

typedef struct bconn bconn;
typedef struct bconn_env bconn_env;

enum bconn_state { BC_CLOSED, BC_CONNECTING, BC_INFO, BC_HANDSHAKE, BC_UPGRADE, BC_OPEN };

/* What the scenario layer is told. Called from the loop, never from inside
 * the bconn_* call that caused it. */
typedef struct bconn_ops {
    void (*on_open)(bconn *c);                         /* ready to speak */
    void (*on_event)(bconn *c, const wire_ev *ev);     /* a non-message unit */
    void (*on_msg)(bconn *c, const uint8_t *stamp, uint64_t len); /* a message's
                                        last byte arrived; stamp: its first
                                        min(len, BCONN_STAMP) payload bytes */
    void (*on_fail)(bconn *c, const char *why);        /* the connection is dead */
} bconn_ops;

struct bconn_env {
    uv_loop_t *loop;
    wire_proto proto;
    const bconn_ops *ops;
    btls_ctx *tls;         /* NULL: plaintext */
    const char *tls_host;  /* checked against the certificate */
    uv_check_t check;
    bconn *dirty;          /* connections with output to write this iteration */
    size_t splice_min;     /* plaintext payload segments this large are
                              spliced (0: always written with writev) */
    const char *congestion; /* TCP congestion control of these sockets, or NULL */
    const char *ws_path;   /* NULL: no WebSocket; else the path to upgrade at */
    const char *ws_proto;  /* the subprotocol offered, or NULL */
    char ws_host[64];      /* the Host header: "127.0.0.1:8888" */
    uint32_t ws_keys[BCONN_WS_KEYS]; /* unused mask keys: ws_keys[0..ws_nkeys) */
    unsigned ws_nkeys;
    uint64_t now;          /* CLOCK_MONOTONIC ns, read once per read */
    uint64_t syscalls;     /* reads, writes, recv(MSG_TRUNC) made */
    char tls_desc[96];     /* the first session's negotiated parameters */
    uint8_t *rbuf;         /* shared read buffer */
    uint8_t *cbuf;         /* shared ciphertext buffer (TLS) */
};

struct bconn {
    bconn_env *env;
    void *data;            /* the scenario's */
    enum bconn_state state;
    int fd;
    int events;            /* UV_READABLE | UV_WRITABLE being watched */
    int dirty;
    bconn *next_dirty;
    uv_poll_t poll;
    outq q;                /* plaintext waiting to be written */
    int pipe[2];           /* splice: the payload's pages on their way */
    size_t piped;          /* bytes in the pipe, sent before anything else */
    btls *tls;
    uint8_t *pend;         /* the unfinished head of a unit */
    uint32_t plen, pcap;
    uint64_t left;         /* bytes of the current message still to come */
    uint64_t msg_len;      /* its payload length */
    uint8_t stamp[BCONN_STAMP];
    uint8_t stamp_have;
    /* WebSocket: the unit being given (its key, bytes given, bytes to come),
     * the expected Sec-WebSocket-Accept, the receiving side */
    uint32_t ws_key;
    uint64_t ws_off, ws_unit_left;
    char ws_accept[BWS_ACCEPT_LEN + 1];
    bws_rx *ws;            /* NULL until the upgrade is answered; owned */
};

/* Set up env on loop: allocates the shared buffers and starts the per-
 * iteration flush. 0 or a negative errno-style code. */
int bconn_env_init(bconn_env *env, uv_loop_t *loop, wire_proto proto, const bconn_ops *ops,
                   btls_ctx *tls, const char *tls_host);

/* Connect c to addr, from source address src when not NULL. 0, or -errno
 * (the socket could not even be started). */
int bconn_open(bconn_env *env, bconn *c, const struct sockaddr_in *addr,
               const struct sockaddr_in *src);

/* Speak WebSocket on env's connections: upgrade at `path` on host:port
 * (the Host header) offering subprotocol `proto` (NULL: none). 0, or -1
 * when host:port does not fit or OpenSSL has no random bytes. */
int bconn_env_ws(bconn_env *env, const char *path, const char *proto, const char *host, int port);

/* Start a unit of len bytes (see Sending above), given next by the calls
 * below; the previous unit must be complete. 0, or -1 (no memory, or no
 * random bytes for the mask key). */
int bconn_unit(bconn *c, uint64_t len);
/* Room for len bytes of the unit in c->q, then bconn_commit(c, len) once
 * written; NULL when out of memory. (outq_reserve / outq_commit) */
uint8_t *bconn_reserve(bconn *c, size_t len);
void bconn_commit(bconn *c, size_t len);
/* Copy len bytes of the unit. 0 or -1 (memory). */
int bconn_put(bconn *c, const void *p, size_t len);
/* len bytes of the unit in caller-owned memory: without a WebSocket they
 * are referenced (outq_ref: unchanged until written), over one copied and
 * masked. 0 or -1 (memory). */
int bconn_ref(bconn *c, const void *p, size_t len);

/* c->q has new bytes: write them at the end of this loop iteration. */
void bconn_want_flush(bconn *c);

/* CLOCK_MONOTONIC in ns. */
uint64_t bconn_clock(void);

#endif
