/*
 * server.c -- the loop-level pieces: listeners and admission, the
 * once-per-iteration flush and store batch, back-pressure, the store's
 * completions, signals and the graceful stop. Connections are io.c's and
 * the modules above conn.h; this file only owns them.
 */
#include "server/server.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/close.h"
#include "server/conn.h"
#include "server/deliver.h"
#include "server/io.h"
#include "server/groupops.h"
#include "server/history.h"
#include "server/httpd.h"
#include "server/presence.h"
#include "server/receipts.h"
#include "server/login.h"
#include "server/stats.h"
#include "server/sync.h"

#define SERVER_OF(h) DLIST_ENTRY(h, server, hub)

static void finish_stop(server *s);

/* ---- admission ----------------------------------------------------------- */

/* Accept failures (EMFILE under a connection flood) are logged at most
 * once a second, with a count of those not logged. */
static void accept_failed(server *s, int err) {
    unsigned long long quiet;
    if (!log_limit_pass(&s->accept_log, uv_now(s->loop), &quiet)) return;
    if (quiet)
        log_warn("accept_failed",
                 "accept failed: %s (and %llu more not logged)",
                 uv_strerror(err), quiet);
    else
        log_warn("accept_failed", "accept failed: %s", uv_strerror(err));
}

/* Refuse c: one log line a second for all refusals (a flood must not
 * flood the log), ERROR code why, close. */
static void refuse(server *s, conn *c, unsigned code, const char *why) {
    s->hub.stats.refused_conns++;
    unsigned long long quiet;
    if (log_limit_pass(&s->refuse_log, uv_now(s->loop), &quiet)) {
        if (quiet)
            log_peer(LOG_WARN, "conn_refused", conn_peer(c),
                     "connection refused: %s (and %llu more refusals "
                     "not logged)", why, quiet);
        else
            log_peer(LOG_WARN, "conn_refused", conn_peer(c),
                     "connection refused: %s", why);
    }
    io_refuse(c, code, why);
}

/* Protected mode, --max-connections, --max-conns-per-ip. 1 when c may
 * stay, else 0 (refused and closing). */
static int admit(server *s, conn *c) {
    const config *cfg = s->cfg;
    char why[160];
    if (!cfg->auth && !cfg->insecure_open && !c->local) {
        refuse(s, c, FRAME_ERR_AUTH, "protected mode: without --auth on this "
               "server accepts only loopback clients (see --auth and "
               "--insecure-open)");
        return 0;
    }
    uint64_t max = cfg->max_connections;
    int by_fds = s->conn_cap && (!max || s->conn_cap < max);
    if (by_fds) max = s->conn_cap;
    if (max && server_nconns(s) > max) {
        snprintf(why, sizeof why, "server full: %llu connections (%s)",
                 (unsigned long long)max,
                 by_fds ? "open file limit" : "--max-connections");
        refuse(s, c, FRAME_ERR_BUSY, why);
        return 0;
    }
    if (!c->local && cfg->max_conns_per_ip) {
        uint32_t k = netaddr_key(&c->peer);
        uintptr_t n = (uintptr_t)u32map_get(&s->per_ip, k);
        if (n >= cfg->max_conns_per_ip) {
            snprintf(why, sizeof why, "too many connections from this "
                     "address: %llu (--max-conns-per-ip)",
                     (unsigned long long)cfg->max_conns_per_ip);
            refuse(s, c, FRAME_ERR_BUSY, why);
            return 0;
        }
        /* Uncounted when the map cannot grow: the limit is then lenient
         * for this one, rather than the connection refused. */
        if (u32map_put(&s->per_ip, k, (void *)(n + 1)) == 0) c->ipkey = k;
    }
    return 1;
}

static void on_connection(uv_stream_t *l, int status) {
    server *s = l->data;
    if (status < 0) {
        accept_failed(s, status);
        return;
    }
    const listener *li = (const listener *)l;
    int err = 0;
    conn *c = io_accept(&s->hub, l, li->tls ? s->tls : NULL, li->http, &err);
    if (!c) {
        accept_failed(s, err);
        return;
    }
    if (admit(s, c)) io_start(c);
    conn_unref(c);
}

/* ---- the hub's calls up ----------------------------------------------- */

static void hub_arm(hub *h, int which) { sweep_arm(&SERVER_OF(h)->sweep, which); }

static void hub_freed(hub *h, conn *c) {
    server *s = SERVER_OF(h);
    presence_conn_free(c);
    if (c->ipkey) {
        uintptr_t n = (uintptr_t)u32map_get(&s->per_ip, c->ipkey);
        if (n <= 1) (void)u32map_del(&s->per_ip, c->ipkey); /* (its value) */
        else (void)u32map_put(&s->per_ip, c->ipkey, (void *)(n - 1));
        /* (a replace never allocates, so it cannot fail) */
    }
    if (s->stopping && server_nconns(s) == 0) finish_stop(s);
}

static void hub_offline(hub *h, uint32_t user) {
    store_online(h->store, user, 0);
    /* (a store shared by several processes tells every one, this one
     * too, when the user's last connection anywhere left:
     * presence_event) */
    if (!h->shared) presence_changed(h, user, 0);
}

static void hub_confirmed(hub *h, conn *c) {
    (void)h; /* (c knows its hub) */
    receipts_confirmed(c);
}

static int hub_metrics(hub *h, buf *out) {
    return stats_metrics(h, out);
}

static int hub_health(hub *h, char *why, size_t n) {
    return stats_health(h, why, n);
}

static const hub_ops server_hub_ops = {hub_arm, hub_freed, hub_offline,
                                       hub_confirmed, hub_metrics,
                                       hub_health};

/* ---- once per iteration --------------------------------------------- */

/* Every connection's reading follows hub.paused (conn_reading). */
static void reading_all(server *s) {
    dlink *k, *next;
    for (k = dlist_first(&s->hub.conns); k; k = next) {
        next = dlist_next(&s->hub.conns, k);
        conn *c = DLIST_ENTRY(k, conn, all);
        int r = conn_reading(c);
        if (r) {
            conn_ref(c);
            CLOG(c, LOG_ERROR, "conn_reading_failed",
                 "cannot change reading: %s; closing",
                 uv_strerror(r));
            close_abort(c);
            conn_unref(c);
        }
    }
}

/* Store work in flight past --store-max-pending: stop reading from every
 * client until half of it is done (bounded memory; the disk sets the pace). */
static void check_backpressure(server *s) {
    size_t pending = store_pending_bytes(s->hub.store);
    if (!s->hub.paused && pending > s->cfg->store_max_pending) {
        s->hub.paused = 1;
        log_warn("store_behind",
                 "store is behind (%zu bytes in flight): pausing reads",
                 pending);
        reading_all(s);
    } else if (s->hub.paused && pending <= s->cfg->store_max_pending / 2) {
        s->hub.paused = 0;
        log_info("store_caught_up", "store caught up: reading again");
        reading_all(s); /* (throttled and LOGIN connections stay stopped) */
    }
}

/* After the poll phase: kept input parsed, every touched connection
 * written once, then this iteration's store requests as one batch. */
static void on_check(uv_check_t *hd) {
    server *s = hd->data;
    io_flush_all(&s->hub);
    store_flush(s->hub.store);
    check_backpressure(s);
}

/* ---- the store's completions ---------------------------------------- */

static void store_put_done(void *ctx, void *token, uint64_t seq, uint64_t id,
                           uint64_t cid, int status) {
    server *s = ctx;
    if (token) {
        /* (first: an ACK to the sender never overtakes its message's
         * delivery to the HELD receivers) */
        if (s->hub.ids_local) sync_committed(&s->hub, id, status);
        sync_put_done(token, seq & ~SYNC_PUT_UNNAMED,
                      !(seq & SYNC_PUT_UNNAMED), id, cid, status);
    } else if (status) {
        /* Frames handed back from a closed connection: no one to tell. */
        s->handoff_refused++;
        unsigned long long quiet;
        if (log_limit_pass(&s->handoff_log, uv_now(s->loop), &quiet))
            log_warn("store_handoff_refused",
                     "store refused %llu undelivered frame(s) handed back at "
                     "close so far: %s",
                     (unsigned long long)s->handoff_refused,
                     store_strerror(status));
    }
    check_backpressure(s);
}

static void store_fetch_done(void *ctx, void *token, const store_row *rows,
                             size_t n, int more, int status) {
    (void)ctx; /* (the token is the connection) */
    sync_fetch_done(token, rows, n, more, status);
}

static void store_device_done(void *ctx, void *token,
                              const store_device_info *d, int status) {
    (void)ctx; /* (the token is the connection) */
    login_device_done(token, d, status);
}

/* A user's devices changed: its connections here learn the counts. */
static void store_devices_changed(void *ctx, uint32_t user, unsigned all,
                                  unsigned conv) {
    server *s = ctx;
    for (router_node *n = router_first(&s->router, user); n; n = n->next)
        login_devices(DLIST_ENTRY(n, conn, node), all, conv);
}

static void store_history_done(void *ctx, void *token, const store_row *rows,
                               size_t n, int more, int status) {
    (void)ctx; /* (the token knows its connection) */
    history_done(token, rows, n, more, status);
}

static void store_group_done(void *ctx, void *token, uint32_t group,
                             int status) {
    (void)ctx; /* (the token knows its connection) */
    groupops_done(token, group, status);
}

static void store_marks_done(void *ctx, void *token, const store_mark *marks,
                             size_t n, int status) {
    (void)ctx; /* (the token knows its connection) */
    receipts_marks_done(token, marks, n, status);
}

static void store_presence_event(void *ctx, uint32_t user, int online,
                                 int64_t ts) {
    server *s = ctx;
    (void)ts; /* (watchers are told the loop's time, as for local ones) */
    presence_changed(&s->hub, user, online);
}

static void store_relayed(void *ctx, uint32_t user, uint32_t sender,
                          uint8_t type, const uint8_t *body, size_t len) {
    server *s = ctx;
    deliver_relayed(&s->hub, user, sender, type, body, len);
}

static void store_presence_done(void *ctx, void *token, const uint32_t *users,
                                const uint8_t *allowed,
                                const int64_t *last_seen,
                                const uint8_t *online, size_t n,
                                int status) {
    (void)ctx; /* (the token knows its connection) */
    presence_done(token, users, allowed, last_seen, online, n, status);
}

static void store_live(void *ctx, uint32_t user, const store_row *row) {
    server *s = ctx;
    deliver_live(&s->hub, user, row);
}

static void store_resync(void *ctx) {
    server *s = ctx;
    log_info("store_resync", "the store's feed was interrupted: %zu "
             "connection(s) fetch from their cursors again",
             s->hub.conns.n);
    deliver_resync(&s->hub);
    /* presence changes published meanwhile were missed too: the watchers
     * get the state as it is now (docs/CLUSTER.md 6.5) */
    presence_resync(&s->hub);
}

/* An account read for a login (--auth on with a store that keeps the
 * accounts): the token is the check's (auth.h). */
static void store_account_done(void *ctx, void *token, const char *hash,
                               size_t len, int status) {
    (void)ctx;
    auth_store_done(token, hash, len, status);
}

const store_callbacks server_store_callbacks = {NULL, store_put_done,
                                                store_fetch_done,
                                                store_device_done,
                                                store_devices_changed,
                                                store_history_done,
                                                store_group_done,
                                                store_marks_done,
                                                store_presence_done,
                                                store_live,
                                                store_resync,
                                                store_presence_event,
                                                store_relayed,
                                                store_account_done};

/* ---- signals and the stop ------------------------------------------- */

static void on_signal(uv_signal_t *hd, int signum) {
    server *s = hd->data;
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (!s->stopping) {
        log_info("shutting_down", "%s: shutting down (%llu connections)", name,
                 (unsigned long long)server_nconns(s));
        server_stop(s);
        return;
    }
    log_warn("shutdown_forced", "%s again: closing every connection now", name);
    dlink *k, *next;
    for (k = dlist_first(&s->hub.conns); k; k = next) {
        next = dlist_next(&s->hub.conns, k);
        conn *c = DLIST_ENTRY(k, conn, all);
        conn_ref(c);
        close_abort(c);
        conn_unref(c);
    }
}

/* The last connection is gone: let the store finish its queued work and
 * close the loop's own handles. */
static void finish_stop(server *s) {
    if (uv_is_closing((uv_handle_t *)&s->flusher)) return;
    store_stop(s->hub.store);
    uv_close((uv_handle_t *)&s->flusher, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    sweep_close(&s->sweep);
}

void server_stop(server *s) {
    if (!s->stopping) {
        s->stopping = 1;
        for (int i = 0; i < LISTEN_N; i++) {
            uv_handle_t *l = (uv_handle_t *)&s->listeners[i].tcp;
            if (s->listeners[i].on && !uv_is_closing(l)) uv_close(l, NULL);
        }
        dlink *k, *next;
        for (k = dlist_first(&s->hub.conns); k; k = next) {
            next = dlist_next(&s->hub.conns, k);
            conn *c = DLIST_ENTRY(k, conn, all);
            conn_ref(c);
            close_finish(c, FRAME_ERR_SHUTDOWN, "server shutting down");
            conn_unref(c);
        }
        io_flush_all(&s->hub);
    }
    if (server_nconns(s) == 0) finish_stop(s);
}

/* ---- set-up ----------------------------------------------------------- */

void server_set_auth(server *s, auth *a) { s->hub.auth = a; }

void server_set_tls(server *s, tls_server *t) { s->tls = t; }

int server_init(server *s, uv_loop_t *loop, const config *cfg, store *st) {
    memset(s, 0, offsetof(server, rbuf));
    s->loop = loop;
    s->cfg = cfg;
    router_init(&s->router);
    u32map_init(&s->per_ip);
    hub *h = &s->hub;
    hub_init(h);
    h->loop = loop;
    h->cfg = cfg;
    h->router = &s->router;
    h->store = st;
    h->rbuf = s->rbuf;
    h->rbuf_len = sizeof s->rbuf;
    h->pbuf = s->pbuf;
    h->pbuf_len = sizeof s->pbuf;
    h->ids_local = store_ids_local(st);
    h->shared = store_shared(st);
    h->next_id = h->ids_local ? store_next_id(st) : 1;
    struct timespec ts = {0, 0};
    (void)clock_gettime(CLOCK_REALTIME, &ts); /* (always exists on Linux) */
    h->wall0 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    h->mono0_us = uv_hrtime() / 1000;
    hub_clock(h, h->mono0_us);
    h->ops = &server_hub_ops;
    int r;
    if ((r = sweep_init(&s->sweep, h))) return r;
    if ((r = uv_check_init(loop, &s->flusher))) return r;
    s->flusher.data = s;
    if ((r = uv_check_start(&s->flusher, on_check))) return r;
    if ((r = uv_signal_init(loop, &s->sigint))) return r;
    if ((r = uv_signal_init(loop, &s->sigterm))) return r;
    s->sigint.data = s->sigterm.data = s;
    if ((r = uv_signal_start(&s->sigint, on_signal, SIGINT))) return r;
    return uv_signal_start(&s->sigterm, on_signal, SIGTERM);
}

/* A socket with SO_REUSEPORT bound to sa, handed to l (libuv 1.44 has no
 * flag for it). 0 or a libuv error code. */
static int listen_reuseport(uv_tcp_t *l, const struct sockaddr *sa) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0) return uv_translate_sys_error(errno);
    int one = 1;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        bind(fd, sa, len)) {
        int r = uv_translate_sys_error(errno);
        (void)close(fd); /* (a failed socket: nothing to flush) */
        return r;
    }
    int r = uv_tcp_open(l, fd); /* (l owns fd from here, closed with it) */
    if (r) (void)close(fd); /* (uv_tcp_open failed: fd is still ours) */
    return r;
}

int server_listen(server *s, int which, int want, int *port) {
    assert(which >= 0 && which < LISTEN_N && !s->listeners[which].on);
    listener *li = &s->listeners[which];
    li->tls = which == LISTEN_TLS || which == LISTEN_HTTPS;
    li->http = which == LISTEN_METRICS ? HTTPD_METRICS
             : which == LISTEN_HTTP || which == LISTEN_HTTPS ? HTTPD_SITE
                                                             : 0;
    if (li->tls && !s->tls) return UV_EINVAL;
    uv_tcp_t *l = &li->tcp;
    int r = uv_tcp_init(s->loop, l);
    if (r) return r;
    l->data = s;
    li->on = 1; /* initialised: closed by server_stop */
    struct sockaddr_storage ss;
    r = uv_ip4_addr(s->cfg->bind, want, (struct sockaddr_in *)&ss);
    if (r) r = uv_ip6_addr(s->cfg->bind, want, (struct sockaddr_in6 *)&ss);
    if (r) return r;
    if (s->cfg->worker) {
        /* --workers: the supervisor's port, shared (workers.h; the
         * metrics port is this worker's alone, reserved all the same) */
        if ((r = listen_reuseport(l, (struct sockaddr *)&ss))) return r;
    } else if ((r = uv_tcp_bind(l, (struct sockaddr *)&ss, 0))) {
        return r;
    }
    if ((r = uv_listen((uv_stream_t *)l, 1024, on_connection))) return r;
    int len = sizeof ss;
    if ((r = uv_tcp_getsockname(l, (struct sockaddr *)&ss, &len))) return r;
    *port = ntohs(ss.ss_family == AF_INET6
                      ? ((struct sockaddr_in6 *)&ss)->sin6_port
                      : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

void server_free(server *s) {
    router_free(&s->router);
    u32map_free(&s->hub.watchers); /* (empty: every connection is freed) */
    free(s->hub.heldq.v); /* (empty: each entry held a connection) */
    u32map_free(&s->per_ip);
    (void)blkpool_free(&s->hub.pool); /* (the byte count is not needed) */
}
