/*
 * server.c -- the loop-level pieces: listener, the once-per-iteration
 * flush, delivery (router, then store), signals and the graceful stop.
 */
#include "server.h"

#include <string.h>

#include "common/log.h"
#include "conn.h"
#include "proto/frame.h"

static void on_connection(uv_stream_t *l, int status) {
    server *s = l->data;
    if (status < 0) {
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    int r = conn_accept(s, l);
    if (r) log_warn("accept failed: %s", uv_strerror(r));
}

/* Runs after the poll phase: every connection that got output during this
 * iteration is written once, with everything it got. */
static void on_check(uv_check_t *h) {
    server *s = h->data;
    while (s->flush_head) {
        conn *c = s->flush_head;
        s->flush_head = c->flush_next;
        c->flush_next = NULL;
        c->flush_queued = 0;
        conn_flush(c);
    }
}

void server_queue_flush(server *s, conn *c) {
    if (c->flush_queued) return;
    c->flush_queued = 1;
    c->flush_next = s->flush_head;
    s->flush_head = c;
}

int server_deliver(server *s, uint32_t to, uint32_t from, uint8_t type,
                   const uint8_t *body, uint32_t len) {
    router_node *n = router_first(&s->router, to);
    if (n && store_count(s->store, to) == 0) {
        while (n) {
            router_node *next = n->next; /* n may be closed by the send */
            conn *c = (conn *)((char *)n - offsetof(conn, node));
            if (conn_send_data(c, from, type, body, len) == 0)
                s->stats.frames_routed++;
            n = next;
        }
        /* Every device of `to` was too slow and got closed: keep it. */
        if (router_first(&s->router, to)) return 0;
    }
    store_msg m = {to, from, type, len, body};
    int e = store_put(s->store, &m);
    if (e) return e;
    s->stats.frames_stored++;
    /* Older frames wait in the store for a live receiver: let it pull. */
    for (n = router_first(&s->router, to); n; n = n->next) {
        conn *c = (conn *)((char *)n - offsetof(conn, node));
        c->backlog = 1;
        if (!c->writing) conn_pull_store(c);
    }
    return 0;
}

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

int server_init(server *s, uv_loop_t *loop, const config *cfg, store *st) {
    memset(s, 0, offsetof(server, rbuf));
    s->loop = loop;
    s->cfg = cfg;
    s->store = st;
    router_init(&s->router);
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

int server_listen(server *s, int *port) {
    struct sockaddr_storage ss;
    int r = uv_ip4_addr(s->cfg->bind, s->cfg->port, (struct sockaddr_in *)&ss);
    if (r) r = uv_ip6_addr(s->cfg->bind, s->cfg->port,
                           (struct sockaddr_in6 *)&ss);
    if (r) return r;
    if ((r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0))) return r;
    if ((r = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection)))
        return r;
    int len = sizeof ss;
    if ((r = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len)))
        return r;
    *port = ntohs(ss.ss_family == AF_INET6
                      ? ((struct sockaddr_in6 *)&ss)->sin6_port
                      : ((struct sockaddr_in *)&ss)->sin_port);
    s->listening = 1;
    return 0;
}

void server_stop(server *s) {
    if (!s->stopping) {
        s->stopping = 1;
        if (!uv_is_closing((uv_handle_t *)&s->listener))
            uv_close((uv_handle_t *)&s->listener, NULL);
        for (conn *c = s->conns, *next; c; c = next) {
            next = c->next;
            conn_finish(c, FRAME_ERR_SHUTDOWN, "server shutting down");
        }
    }
    if (s->nconns) return;
    /* The last connection is gone: close the loop's own handles. */
    if (!uv_is_closing((uv_handle_t *)&s->flusher)) {
        uv_close((uv_handle_t *)&s->flusher, NULL);
        uv_close((uv_handle_t *)&s->sigint, NULL);
        uv_close((uv_handle_t *)&s->sigterm, NULL);
    }
}

void server_free(server *s) { router_free(&s->router); }
