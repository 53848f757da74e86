/*
 * server.h -- one chat-server event loop: its listener, its connections,
 * its router and store, and the once-per-iteration flush.
 *
 * Threads: everything here runs on the loop thread.
 *
 * Lifecycle: server_init() -> server_listen() -> uv_run() -> server_free().
 * SIGINT/SIGTERM call server_stop(): the listener closes, every connection is
 * closed gracefully (ERROR SHUTDOWN to those that speak control frames, its
 * output flushed for up to CONN_LINGER_MS, what is left handed to the store),
 * the store finishes its queued work, and uv_run() returns once every handle
 * is closed.
 */
#ifndef CHAT_SERVER_SERVER_H
#define CHAT_SERVER_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "common/log.h"
#include "common/u32map.h"
#include "config.h"
#include "router.h"
#include "store.h"
#include "tls.h"

/* Size of the read buffer shared by every connection of the loop. A read
 * lands here unless its connection holds a partial frame. */
#define SERVER_READ_BUF (64u * 1024)

struct conn;

typedef struct server_stats {
    uint64_t accepted;
    uint64_t frames_in;    /* data frames received and accepted */
    uint64_t frames_routed;/* data frames written to a live connection */
    uint64_t frames_stored;/* data frames handed to the store */
    uint64_t refused;      /* frames refused (any reason) */
    uint64_t writes;       /* write system calls issued (try_write + uv_write) */
    uint64_t refused_conns;/* connections refused at accept */
    uint64_t logins, login_failures;
} server_stats;

typedef struct server {
    uv_loop_t *loop;
    const config *cfg;
    store *store;           /* borrowed: the caller opens and closes it */
    router router;
    uv_tcp_t listener;
    uv_tcp_t tls_listener;  /* --tls-port, when s->tls */
    tls_server *tls;        /* borrowed (server_set_tls); NULL: no TLS */
    int tls_listening;
    uv_check_t flusher;     /* flushes touched connections once per iteration */
    uv_signal_t sigint, sigterm;
    struct conn *flush_head;/* connections with output queued this iteration */
    struct conn *conns;     /* every connection not yet freed */
    uint64_t nconns;
    int stopping;           /* server_stop() was called */
    int listening;
    int paused;             /* reads stopped: too much store work in flight */
    uint64_t next_id;       /* next store message id */
    uint64_t handoff_refused; /* handed-back frames the store refused */
    auth *auth;             /* --auth on: borrowed (server_set_auth) */
    u32map per_ip;          /* non-loopback address key -> connection count
                               (stored as a pointer-sized integer) */
    struct conn *pend_head, *pend_tail; /* NEW and LOGIN, by accept time */
    struct conn *idle_head, *idle_tail; /* BOUND control-frame speakers, by
                                           last byte received */
    uv_timer_t idle_timer;  /* runs while idle_head: PING, then close */
    uv_timer_t cron;        /* every second: conn_shrink on every connection */
    struct conn *thr_head;  /* throttled by the rate limits */
    uv_timer_t login_timer; /* runs while pend_head: --login-timeout */
    uv_timer_t rate_timer;  /* runs while thr_head: refills, resumes */
    uint64_t conn_cap;      /* connections the open-file limit allows (0:
                               no cap); main sets it */
    log_limit refuse_log;   /* connections refused at accept */
    log_limit accept_log;   /* accept failures */
    server_stats stats;
    uint8_t rbuf[SERVER_READ_BUF];
} server;

/* Set up the loop handles; the store is borrowed. 0 or a libuv error. */
int server_init(server *s, uv_loop_t *loop, const config *cfg, store *st);

/* Require logins (--auth on), checked by a (borrowed, not freed). */
void server_set_auth(server *s, auth *a);

/* Serve TLS with t (borrowed, not freed) on cfg->tls_port. */
void server_set_tls(server *s, tls_server *t);

/* Bind and listen on cfg->bind:cfg->tls_port for TLS; *port as below. */
int server_listen_tls(server *s, int *port);

/* Bind and listen on cfg->bind:cfg->port. On success *port is the port
 * actually bound (useful with port 0). 0 or a libuv error. */
int server_listen(server *s, int *port);

/* Begin a graceful stop (idempotent; a second call closes everything now). */
void server_stop(server *s);

/* Release what server_init allocated; call after uv_run() returned. */
void server_free(server *s);

/* Deliver a data frame from connection src (its seq-th data frame) to user
 * `to`. The rule (docs/ARCHITECTURE.md): LIVE connections of `to` get it
 * now; it is also put in the store when the sender wants acknowledgements,
 * when no connection of `to` is LIVE, or when one of them acknowledges what
 * it receives. Returns 1 when a put naming src is in flight (src is told in
 * conn_put_done), 0 when the frame is handled already, or STORE_ENOMEM. */
int server_deliver(server *s, struct conn *src, uint64_t seq, uint32_t to,
                   uint32_t from, uint8_t type, const uint8_t *body,
                   uint32_t len);

/* The store callbacks (store_open needs them). */
extern const store_callbacks server_store_callbacks;

/* (Re)start the login / rate timers after a connection joined their
 * lists. */
void server_arm_login_timer(server *s);
void server_arm_rate_timer(server *s);
void server_arm_idle_timer(server *s);

/* Queue c for the flush at the end of this loop iteration. */
void server_queue_flush(server *s, struct conn *c);

#endif
