/*
 * server.h -- one chat-server event loop: its listeners, its connections
 * (through the hub they see), its timers, signals and the graceful stop.
 *
 * Threads: everything here runs on the loop thread.
 *
 * Lifecycle: server_init() -> server_listen() -> uv_run() -> server_free().
 * SIGINT/SIGTERM call server_stop(): the listeners close, every connection
 * is closed gracefully (ERROR SHUTDOWN to those that speak control frames,
 * its output flushed for up to CONN_LINGER_MS, what is left handed to the
 * store), the store finishes its queued work, and uv_run() returns once
 * every handle is closed.
 *
 * Once per loop iteration (a uv_check handle, after the poll phase): the
 * input kept during logins is parsed, every connection that got output is
 * written once, the iteration's store requests go to the store thread as
 * one batch, and reads pause while the store is behind (more than
 * --store-max-pending bytes in flight) and resume when it caught up.
 */
#ifndef CHAT_SERVER_SERVER_H
#define CHAT_SERVER_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "common/log.h"
#include "common/u32map.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/hub.h"
#include "server/router.h"
#include "server/store.h"
#include "server/sweep.h"
#include "server/tls.h"

/* Size of the read buffer shared by every connection of the loop. */
#define SERVER_READ_BUF (64u * 1024)

/* The listeners (server.listeners[]). */
enum { LISTEN_CHAT, LISTEN_TLS, LISTEN_HTTP, LISTEN_HTTPS, LISTEN_METRICS,
       LISTEN_N };

typedef struct listener {
    uv_tcp_t tcp;           /* (first: a handle maps back to its listener) */
    uint8_t on;             /* initialised: closed by server_stop */
    uint8_t tls;            /* what its connections speak */
    uint8_t http;           /* 0, or what it serves: HTTPD_SITE,
                               HTTPD_METRICS (httpd.h) */
} listener;

typedef struct server {
    uv_loop_t *loop;
    const config *cfg;
    hub hub;                /* what connections see */
    router router;
    sweep sweep;
    listener listeners[LISTEN_N]; /* --port, --tls-port, --http-port,
                                     --https-port, --metrics-port */
    tls_server *tls;        /* borrowed (server_set_tls); NULL: no TLS */
    uv_check_t flusher;
    uv_signal_t sigint, sigterm;
    int stopping;           /* server_stop() was called */
    u32map per_ip;          /* non-loopback address key -> connections
                               (a pointer-sized count) */
    uint64_t conn_cap;      /* connections the open-file limit allows (0: no
                               cap); main sets it */
    log_limit refuse_log;   /* connections refused at accept */
    log_limit accept_log;   /* accept failures */
    log_limit handoff_log;  /* frames handed back at close that the store
                               refused */
    uint64_t handoff_refused; /* how many, so far */
    uint8_t rbuf[SERVER_READ_BUF];
    uint8_t pbuf[SERVER_READ_BUF]; /* TLS plaintext (hub.pbuf) */
} server;

/* Set up the loop handles; the store is borrowed. 0 or a libuv error. */
int server_init(server *s, uv_loop_t *loop, const config *cfg, store *st);

/* Require logins (--auth on), checked by a (borrowed, not freed). */
void server_set_auth(server *s, auth *a);

/* Serve TLS with t (borrowed, not freed) on cfg->tls_port. */
void server_set_tls(server *s, tls_server *t);

/* Bind and listen on cfg->bind:want for listener `which` (LISTEN_*; the
 * TLS ones need server_set_tls first). On success *port is the port
 * actually bound (useful with port 0). 0 or a libuv error. */
int server_listen(server *s, int which, int want, int *port);

/* Connections not yet freed. */
static inline uint64_t server_nconns(const server *s) { return s->hub.conns.n; }

/* The counters. */
static inline const hub_stats *server_stats(const server *s) {
    return &s->hub.stats;
}

/* Begin a graceful stop (idempotent; a second signal closes everything
 * now). */
void server_stop(server *s);

/* Release what server_init allocated; call after uv_run() returned. */
void server_free(server *s);

/* The store callbacks (store_open needs them; ctx = the server). */
extern const store_callbacks server_store_callbacks;

#endif
