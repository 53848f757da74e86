/*
 * server.c -- the loop-level pieces: listener, the once-per-iteration
 * flush, delivery (router, then store), signals and the graceful stop.
 */
#include "server.h"

#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "common/log.h"
#include "conn.h"
#include "proto/frame.h"

/* Accept failures (EMFILE under a connection flood) are logged at most
 * once a second, with a count of those not logged. */
static void accept_failed(server *s, int err) {
    unsigned long long quiet;
    if (!log_limit_pass(&s->accept_log, uv_now(s->loop), &quiet)) return;
    if (quiet)
        log_warn("accept failed: %s (and %llu more not logged)",
                 uv_strerror(err), quiet);
    else
        log_warn("accept failed: %s", uv_strerror(err));
}

static void on_connection(uv_stream_t *l, int status) {
    server *s = l->data;
    if (status < 0) {
        accept_failed(s, status);
        return;
    }
    int r = conn_accept(s, l, l == (uv_stream_t *)&s->tls_listener);
    if (r) accept_failed(s, r);
}

/* Store work in flight past --store-max-pending: stop reading from every
 * client until half of it is done (bounded memory; the disk sets the pace). */
static void check_backpressure(server *s) {
    size_t pending = store_pending_bytes(s->store);
    if (!s->paused && pending > s->cfg->store_max_pending) {
        s->paused = 1;
        log_warn("store is behind (%zu bytes in flight): pausing reads",
                 pending);
        for (conn *c = s->conns; c; c = c->next) conn_pause(c);
    } else if (s->paused && pending <= s->cfg->store_max_pending / 2) {
        s->paused = 0;
        log_info("%s", "store caught up: reading again");
        for (conn *c = s->conns; c; c = c->next) conn_resume(c);
        /* (conn_resume leaves throttled and LOGIN connections stopped.) */
    }
}

/* Runs after the poll phase: every connection that got output during this
 * iteration is written once, with everything it got; then the store gets
 * this iteration's puts, deletes and fetches as one batch. */
static void flush_all(server *s) {
    while (s->flush_head) {
        conn *c = s->flush_head;
        s->flush_head = c->flush_next;
        c->flush_next = NULL;
        c->flush_queued = 0;
        conn_flush(c);
    }
}

static void on_check(uv_check_t *h) {
    server *s = h->data;
    flush_all(s);
    store_flush(s->store);
    check_backpressure(s);
}

void server_queue_flush(server *s, conn *c) {
    if (c->flush_queued) return;
    c->flush_queued = 1;
    c->flush_next = s->flush_head;
    s->flush_head = c;
}

#define CONN_OF(n) ((conn *)((char *)(n) - offsetof(conn, node)))
#define PUT_UNNAMED ((uint64_t)1 << 63)

int server_deliver(server *s, conn *src, uint64_t seq, uint32_t to,
                   uint32_t from, uint8_t type, const uint8_t *body,
                   uint32_t len) {
    int named = src && src->acks;
    router_node *head = router_first(&s->router, to);
    /* Fast path, the common case: one LIVE device that does not
     * acknowledge, a sender that does not either, room in its queue. */
    if (head && !head->next && !named) {
        conn *c = CONN_OF(head);
        if (!c->sync && !c->acks &&
            c->out[0].len + c->out[1].len + FRAME_S2C_HDR + len <=
                s->cfg->max_outbuf) {
            if (conn_send_data(c, from, type, body, len, 0) == 0)
                s->stats.frames_routed++;
            return 0;
        }
    }
    int live = 0, ack_live = 0, sync = 0, closed = 0;
    for (router_node *n = head, *next; n; n = next) {
        next = n->next; /* conn_has_room may close n */
        conn *c = CONN_OF(n);
        if (!c->sync && !conn_has_room(c, len)) conn_spill(c);
        if (c->state != CONN_BOUND) {
            closed = 1;
            continue;
        }
        if (c->sync) {
            sync = 1;
            continue;
        }
        live++;
        ack_live |= c->acks;
    }
    uint64_t id = 0;
    if (named || live == 0 || ack_live || sync) {
        id = s->next_id++;
        /* Quota applies to frames held for a receiver that cannot take
         * them now; a durable copy of a live delivery is not held. */
        /* The put names its sender so a refusal reaches it; the top bit
         * of seq says whether the sender counts it (acknowledgements). */
        if (store_put(s->store, id, to, from, type, body, len, live == 0,
                      src, named ? seq : seq | PUT_UNNAMED))
            return STORE_ENOMEM;
        if (src) src->refs++;
        if (named) src->puts_pending++;
        if (live == 0) s->stats.frames_stored++;
    }
    if (closed) head = router_first(&s->router, to);
    for (router_node *n = head, *next; n; n = next) {
        next = n->next;
        conn *c = CONN_OF(n);
        if (c->sync) {
            conn_stored(c, from, type, body, len, id);
        } else if (conn_send_data(c, from, type, body, len, id) == 0) {
            s->stats.frames_routed++;
        }
    }
    return named ? 1 : 0;
}

static void store_put_done(void *ctx, void *token, uint64_t seq, uint64_t id,
                           int status) {
    server *s = ctx;
    (void)id;
    if (token) {
        conn_put_done(token, seq & ~PUT_UNNAMED, !(seq & PUT_UNNAMED), status);
    } else if (status) {
        /* Frames handed back from a closed connection: no one to tell.
         * One line for the first refusal, then one per 1000. */
        if (s->handoff_refused++ % 1000 == 0)
            log_warn("store refused %llu undelivered frame(s) handed back at "
                     "close so far: %s",
                     (unsigned long long)s->handoff_refused,
                     store_strerror(status));
    }
    check_backpressure(s);
}

static void store_fetch_done(void *ctx, void *token, const store_row *rows,
                             size_t n, int more, int status) {
    (void)ctx;
    conn_fetch_done(token, rows, n, more, status);
}

const store_callbacks server_store_callbacks = {NULL, store_put_done,
                                                store_fetch_done};

static void on_signal(uv_signal_t *h, int signum) {
    server *s = h->data;
    if (s->stopping) {
        log_warn("%s again: closing every connection now",
                 signum == SIGINT ? "SIGINT" : "SIGTERM");
        for (conn *c = s->conns; c; c = c->next) conn_abort(c);
        return;
    }
    log_info("%s: shutting down (%llu connections)",
             signum == SIGINT ? "SIGINT" : "SIGTERM",
             (unsigned long long)s->nconns);
    server_stop(s);
}

/* Timers run before the loop polls, and the flusher after: what a timer
 * queued (a PING, an ERROR) is written now, not when the poll next wakes. */
static void on_login_timer(uv_timer_t *t) {
    server *s = t->data;
    uint64_t next = conn_sweep_pending(s);
    if (next) uv_timer_start(t, on_login_timer, next, 0);
    flush_all(s);
}

static void on_rate_timer(uv_timer_t *t) {
    server *s = t->data;
    uint64_t next = conn_sweep_throttled(s);
    if (next) uv_timer_start(t, on_rate_timer, next, 0);
    flush_all(s);
}

void server_arm_login_timer(server *s) {
    if (!uv_is_active((uv_handle_t *)&s->login_timer) &&
        !uv_is_closing((uv_handle_t *)&s->login_timer))
        uv_timer_start(&s->login_timer, on_login_timer,
                       s->cfg->login_timeout_ms, 0);
}

void server_arm_rate_timer(server *s) {
    if (!uv_is_active((uv_handle_t *)&s->rate_timer) &&
        !uv_is_closing((uv_handle_t *)&s->rate_timer))
        uv_timer_start(&s->rate_timer, on_rate_timer, 50, 0);
}

static void on_idle_timer(uv_timer_t *t) {
    server *s = t->data;
    uint64_t next = conn_sweep_idle(s);
    if (next) uv_timer_start(t, on_idle_timer, next, 0);
    flush_all(s);
}

void server_arm_idle_timer(server *s) {
    uint64_t every = s->cfg->idle_timeout_ms / 4;
    if (!uv_is_active((uv_handle_t *)&s->idle_timer) &&
        !uv_is_closing((uv_handle_t *)&s->idle_timer))
        uv_timer_start(&s->idle_timer, on_idle_timer,
                       every < 100 ? 100 : every, 0);
}

/* Every second, O(connections): idle connections give back their empty
 * buffers (busy ones reallocate theirs at most once a second). */
static void on_cron(uv_timer_t *t) {
    server *s = t->data;
    size_t freed = 0;
    for (conn *c = s->conns; c; c = c->next) freed += conn_shrink(c);
#ifdef __GLIBC__
    /* Give whole free pages back (glibc keeps them otherwise): after a
     * crowd of connections, or a burst of large frames, went quiet. */
    if (freed >= ((size_t)1 << 20)) malloc_trim(0);
#endif
}

void server_set_auth(server *s, auth *a) { s->auth = a; }

void server_set_tls(server *s, tls_server *t) { s->tls = t; }

int server_init(server *s, uv_loop_t *loop, const config *cfg, store *st) {
    memset(s, 0, offsetof(server, rbuf));
    s->loop = loop;
    s->cfg = cfg;
    s->store = st;
    s->next_id = store_next_id(st);
    router_init(&s->router);
    u32map_init(&s->per_ip);
    uv_timer_init(loop, &s->login_timer);
    uv_timer_init(loop, &s->rate_timer);
    uv_timer_init(loop, &s->idle_timer);
    uv_timer_init(loop, &s->cron);
    s->login_timer.data = s->rate_timer.data = s->idle_timer.data = s;
    s->cron.data = s;
    uv_timer_start(&s->cron, on_cron, 1000, 1000);
    int r;
    if ((r = uv_tcp_init(loop, &s->listener))) return r;
    s->listener.data = s;
    uv_check_init(loop, &s->flusher);
    s->flusher.data = s;
    uv_check_start(&s->flusher, on_check);
    uv_signal_init(loop, &s->sigint);
    uv_signal_init(loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    return 0;
}

static int listen_on(server *s, uv_tcp_t *l, int want, int *port) {
    struct sockaddr_storage ss;
    int r = uv_ip4_addr(s->cfg->bind, want, (struct sockaddr_in *)&ss);
    if (r) r = uv_ip6_addr(s->cfg->bind, want, (struct sockaddr_in6 *)&ss);
    if (r) return r;
    if ((r = uv_tcp_bind(l, (struct sockaddr *)&ss, 0))) return r;
    if ((r = uv_listen((uv_stream_t *)l, 1024, on_connection))) return r;
    int len = sizeof ss;
    if ((r = uv_tcp_getsockname(l, (struct sockaddr *)&ss, &len))) return r;
    *port = ntohs(ss.ss_family == AF_INET6
                      ? ((struct sockaddr_in6 *)&ss)->sin6_port
                      : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

int server_listen(server *s, int *port) {
    int r = listen_on(s, &s->listener, s->cfg->port, port);
    if (r == 0) s->listening = 1;
    return r;
}

int server_listen_tls(server *s, int *port) {
    if (!s->tls) return UV_EINVAL;
    int r = uv_tcp_init(s->loop, &s->tls_listener);
    if (r) return r;
    s->tls_listener.data = s;
    s->tls_listening = 1; /* initialised: closed by server_stop */
    return listen_on(s, &s->tls_listener, s->cfg->tls_port, port);
}

void server_stop(server *s) {
    if (!s->stopping) {
        s->stopping = 1;
        if (!uv_is_closing((uv_handle_t *)&s->listener))
            uv_close((uv_handle_t *)&s->listener, NULL);
        if (s->tls_listening &&
            !uv_is_closing((uv_handle_t *)&s->tls_listener))
            uv_close((uv_handle_t *)&s->tls_listener, NULL);
        for (conn *c = s->conns, *next; c; c = next) {
            next = c->next;
            conn_finish(c, FRAME_ERR_SHUTDOWN, "server shutting down");
        }
    }
    if (s->nconns) return;
    /* The last connection is gone: let the store finish its queued work and
     * close the loop's own handles. */
    if (!uv_is_closing((uv_handle_t *)&s->flusher)) {
        store_stop(s->store);
        uv_close((uv_handle_t *)&s->flusher, NULL);
        uv_close((uv_handle_t *)&s->sigint, NULL);
        uv_close((uv_handle_t *)&s->sigterm, NULL);
        uv_close((uv_handle_t *)&s->login_timer, NULL);
        uv_close((uv_handle_t *)&s->rate_timer, NULL);
        uv_close((uv_handle_t *)&s->idle_timer, NULL);
        uv_close((uv_handle_t *)&s->cron, NULL);
    }
}

void server_free(server *s) {
    router_free(&s->router);
    u32map_free(&s->per_ip);
}
