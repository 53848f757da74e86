/*
 * rconn_int.h -- what rconn's files share (not for rconn's users: they
 * see rconn.h only).
 *
 *   rconn.c      the state machine, its invariants, the public calls,
 *                commands and their completions, timers, close
 *   rconn_net.c  one connection's socket: resolving, connecting, TLS
 *                (the shared engine, src/common/tlsc.h, driven from libuv),
 *                reading into the reply parser, writing
 *   rconn_reply.c replies: the FIFO, pub/sub pushes, AUTH and ROLE
 *   rconn_new.c  options checked and copied, the struct made and freed
 *
 * Internal names start with rconn__.
 */
#ifndef CHAT_SERVER_RCONN_INT_H
#define CHAT_SERVER_RCONN_INT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "common/buf.h"
#include "common/tlsc.h"
#include "server/rconn.h"
#include "server/transport.h"

/* The invariants after every callback (compiled out with NDEBUG). */
#define RCONN_CHECK(c) assert(rconn_check(c))

/* rconn_cmd.flags beyond the public RCONN_WAIT. */
#define RCMD_INTERNAL 0x80u /* ours (AUTH, ROLE, PING): not charged, cb is
                               called with ud == the rconn, never failed */

/* rconn_cmd.kind: the pub/sub commands whose answers are pushes. */
enum {
    RCMD_PLAIN = 0,
    RCMD_SUB,    /* SUBSCRIBE */
    RCMD_PSUB,   /* PSUBSCRIBE */
    RCMD_SSUB,   /* SSUBSCRIBE */
    RCMD_UNSUB,  /* UNSUBSCRIBE */
    RCMD_PUNSUB, /* PUNSUBSCRIBE */
    RCMD_SUNSUB  /* SUNSUBSCRIBE */
};

/* One command, from rconn_command to its completion. */
typedef struct rconn_cmd {
    struct rconn_cmd *next;
    rconn_cb cb;
    void *ud;
    uint64_t t_ms;      /* loop time queued; once written, loop time written */
    uint64_t t_hr;      /* uv_hrtime of the write (round trips) */
    uint32_t len;       /* encoded bytes (in rconn.out while queued) */
    uint32_t nargs;     /* arguments after the name (pub/sub kinds) */
    uint32_t confirms;  /* confirmations received (pub/sub kinds) */
    uint8_t flags;      /* RCONN_WAIT, RCMD_INTERNAL */
    uint8_t kind;       /* RCMD_* */
    int8_t status;      /* on the done list: its completion status */
} rconn_cmd;

/* A FIFO of commands. */
typedef struct rconn_cmdq {
    rconn_cmd *head, *tail;
    size_t n;
} rconn_cmdq;

/* One TCP connection (one address tried, or the live one). Owned by the
 * rconn until rconn__net_stop detaches it; then freed by its close
 * callback (the rconn counts it in nsocks until then). */
typedef struct rconn_sock {
    transport io;       /* first: the transport is the sock */
    rconn *c;
    uv_connect_t creq;
    tlsc *tls;          /* NULL: plain TCP */
    buf wq;             /* bytes for the next write */
    buf wbuf;           /* the bytes of the write in flight */
    uint8_t connected;  /* the TCP connect completed */
    uint8_t writing;    /* a write request is in flight */
} rconn_sock;

/* A name being resolved (uv_getaddrinfo); detached (c->res != it) when the
 * attempt moved on, then freed by its callback. */
typedef struct rconn_res {
    uv_getaddrinfo_t req;
    rconn *c;
} rconn_res;

struct rconn {
    uv_loop_t *loop;
    rconn_state state;
    rconn_options o;          /* copied; strings point to ours below */
    char hosts[RCONN_MAX_ADDRS][RCONN_HOST_MAX + 1];
    char *user, *password, *tls_ca, *tls_cert, *tls_key, *tls_name;
    tlsc_ctx *tls_ctx;        /* o.tls: made by rconn_new */

    uv_timer_t timer;         /* backoff, connect deadline, command
                                 deadline, keepalive, RCONN_WAIT expiry */
    uv_prepare_t prep;        /* the once-per-iteration flush */
    uv_idle_t idle;           /* deferred completions and failures */
    unsigned nhandles;        /* of those three, not yet closed */
    unsigned nsocks;          /* rconn_sock not yet freed */
    unsigned nres;            /* rconn_res whose callback has not run */
    uint8_t handles_closing;
    uint8_t in_ready;         /* inside on_ready (held may be non-empty) */
    uint8_t streak;           /* failing since the last on_down */

    rconn_sock *sock;              /* the current connection, or NULL */
    rconn_res *res;                /* the current resolution, or NULL */
    struct addrinfo *ai;      /* resolved addresses of the attempt (owned) */
    struct addrinfo *ai_next; /* the next one to try */
    unsigned addr_i;          /* o.addrs index of the attempt */
    unsigned hello_left;      /* HELLO: internal replies still expected */

    uint64_t due;             /* DOWN: end of the backoff; CONNECTING, TLS,
                                 HELLO: the connect deadline (loop ms) */
    uint64_t timer_due;       /* when the timer fires; 0: stopped */
    uint64_t last_io;         /* loop ms of the latest read or write */
    uint64_t read_hr;         /* uv_hrtime of the read being parsed */
    unsigned backoff;         /* the next backoff's upper bound (ms) */
    uint64_t rng;             /* xorshift64 state for the jitter */

    redisReader *reader;      /* replies of the current connection */
    char *rbuf;               /* RCONN_READ_CHUNK bytes: where reads land */
    buf out;                  /* encoded bytes of `queued`, in order */
    rconn_cmdq queued;             /* accepted, not yet written */
    rconn_cmdq sent;               /* written, waiting for their replies */
    rconn_cmdq done;               /* failed, completion deferred (idle) */
    rconn_cmdq held;               /* during on_ready: the RCONN_WAIT backlog */
    buf held_out;             /* its bytes */
    size_t charged;           /* see rconn.h, "Limits" */
    long long nchan, npat, nssub; /* subscriptions Redis reported */

    rconn_sock *pend_sock;         /* a failed write of rconn_flush on this */
    int pend_err;             /* sock, to report from the idle callback */

    void (*closed)(void *ud);
    void *closed_ud;
    rconn_stats stats;
    char reason[RCONN_REASON_MAX];
    char peer[RCONN_HOST_MAX + 16];
};

/* ---- rconn.c ---- */

/* The one function that changes c->state (asserts the edge). */
void rconn__to(rconn *c, rconn_state to);

/* The current attempt or connection failed: the reason is "peer: "
 * followed by fmt. CONNECTING/TLS/HELLO: the next address or DOWN; READY:
 * DOWN, everything in flight fails. Ignored in other states. */
void rconn__fail(rconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write "peer: " and fmt's sentence into c->reason. */
void rconn__say(rconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Start the prepare handle: queued bytes go out before the loop polls. */
void rconn__wake(rconn *c);


/* CLOSING with every handle, sock and resolution gone: CLOSED, free,
 * then the owner's `closed`. */
void rconn__maybe_free(rconn *c);

/* The link is up (TCP, and TLS when on): send AUTH/ROLE or become READY. */
void rconn__link_up(rconn *c);

/* HELLO's replies are all in: READY, on_ready, the held commands. */
void rconn__ready(rconn *c);

/* Complete cmd (taken off its list by the caller) and free it. */
void rconn__complete(rconn *c, rconn_cmd *cmd, const redisReply *r, int status);

/* Queue primitives. */
/* A command in RESP: its size, then its bytes written at p (that many). */
size_t rconn__resp_size(int argc, const char **argv, const size_t *lens);
void rconn__resp_write(char *p, int argc, const char **argv,
                       const size_t *lens);
void rconn__push(rconn_cmdq *q, rconn_cmd *cmd);
rconn_cmd *rconn__pop(rconn_cmdq *q);

/* ---- rconn_new.c ---- */

/* Free c's memory (rconn_new's failure path, and at the end of CLOSING). */
void rconn__free(rconn *c);

/* ---- rconn_net.c ---- */

/* Start connecting to o.addrs[c->addr_i] (resolving a name). 0, or -1 with
 * c->reason set (nothing started). */
int rconn__net_start(rconn *c);

/* Drop the current connection or resolution (their callbacks come later
 * and find them detached). */
void rconn__net_stop(rconn *c);

/* Hand b's bytes (plaintext) to the current connection, emptying b, and
 * write them when no write is in flight. 0 or a libuv / RCONN_* error. */
int rconn__net_put(rconn *c, buf *b);

/* 1 when the current connection has a write in flight. */
int rconn__net_busy(const rconn *c);

/* The transport callbacks' table. */
extern const transport_ops rconn__sock_ops;

/* ---- rconn_reply.c ---- */

/* Parse every complete reply the reader holds and dispatch each: to the
 * head of `sent`, or to on_push. Stops when s stops being current. */
void rconn__replies(rconn *c, rconn_sock *s);

/* Send an internal PING (keepalive), READY with nothing in flight. */
void rconn__ping(rconn *c);

/* The pub/sub kind of a command name (RCMD_PLAIN for the rest). */
uint8_t rconn__kind(const char *name, size_t len);

/* Encode argv and push an internal command onto `sent` with its bytes
 * appended to b. 0 or RCONN_ENOMEM. */
int rconn__internal(rconn *c, buf *b, int argc, const char **argv,
                    const size_t *argvlen, rconn_cb cb);

#endif
