/*
 * store_redis_pool.c -- the cluster store's put connections beyond the
 * first (store_redis_config.conns > 1, docs/CLUSTER.md 6.1).
 *
 * Why: Redis with appendfsync always fsyncs once per event-loop iteration
 * and reads about 16-20 KB of one client's commands per iteration, so one
 * connection caps the puts per fsync (about 40): the stored path is
 * fsync-bound. N connections let one fsync cover up to N times as many.
 *
 * What goes where: a put (put.lua, gput.lua) on connection sender % N, so
 * one sender's puts reach Redis in order (their ids, their delivery);
 * every other request on connection 0 (s->cmd), whose orderings the loop
 * relies on (store_online before the requests queued after it). All of
 * them stay in ONE ordered list (store_redis_q.c): replies from different
 * connections come in any order and are parked until their turn, and
 * failures come from rconn's idle callback, so completions keep
 * submission order and never run inside the call that queued them.
 *
 * A pool connection that is down: the puts routed to it fail (rconn fails
 * them, EUNSENT or EDOWN: STORE_EIO, ERROR STORE to the client, which
 * resends) until it is back, rather than going on connection 0: a resend
 * of a sender's put on another connection could pass one of its earlier
 * puts still in flight. The node's health stays connection 0's (cmd_up):
 * a pool outage is logged once per streak (cluster_redis_pool_down;
 * cluster_redis_pool_back when all are up again), never once per
 * connection, and not at all when connection 0 went down too (Redis
 * itself: cluster_redis_down says it). Which one notices a dead Redis
 * first is chance, so the line waits SR_POOL_LOG_MS (pool_t) and is
 * logged only if connection 0 is still up then. Each one
 * reconnects on its own (rconn's backoff); scripts are Redis-wide, loaded
 * by connection 0 (a NOSCRIPT on a pool connection loads on that one).
 */
#include "server/store_redis_int.h"

#include <string.h>

/* How long the cluster_redis_pool_down line waits for connection 0 to go
 * down too (a dead Redis closes every connection at once; a pool
 * connection reconnects after 50 ms at the earliest). */
#define SR_POOL_LOG_MS 20

rconn *sr_conn(const store_redis *s, unsigned idx) {
    assert(idx < s->nconns);
    return idx ? s->conns[idx].c : s->cmd;
}

static void pool_on_ready(void *ud) {
    sr_conn_st *pc = ud;
    store_redis *s = pc->s;
    if (s->phase != SR_OPENING && s->phase != SR_RUNNING) return;
    if (!pc->up) {
        pc->up = 1;
        assert(s->pool_down > 0);
        s->pool_down--;
    }
    if (!s->pool_down && s->pool_logged) {
        s->pool_logged = 0;
        log_info("cluster_redis_pool_back",
                 "cluster: every put connection to redis %s is back",
                 rconn_peer(pc->c));
    }
    SR_CHECK(s);
}

/* SR_POOL_LOG_MS after a pool connection went down: one line for the
 * streak, unless connection 0 is down too (its line says it all) or every
 * pool connection is back already. */
static void on_pool_t(uv_timer_t *t) {
    store_redis *s = t->data;
    if (s->phase != SR_RUNNING || !s->cmd_up || !s->pool_down ||
        s->pool_logged)
        return;
    unsigned i = 1;
    while (i < s->nconns && s->conns[i].up) i++;
    assert(i < s->nconns); /* (pool_down > 0) */
    s->pool_logged = 1;
    log_warn("cluster_redis_pool_down",
             "cluster: put connection %u of %u lost (%u down): %s; the "
             "sends routed to them fail (ERROR STORE) until they are back",
             i, s->nconns, s->pool_down, rconn_last_error(s->conns[i].c));
    SR_CHECK(s);
}

static void pool_on_down(void *ud, const char *reason) {
    sr_conn_st *pc = ud;
    store_redis *s = pc->s;
    if (s->phase != SR_OPENING && s->phase != SR_RUNNING) return;
    if (pc->up) {
        pc->up = 0;
        s->pool_down++;
    }
    (void)reason; /* (rconn_last_error keeps it for on_pool_t) */
    if (s->phase == SR_RUNNING && !s->pool_logged &&
        !uv_is_active((const uv_handle_t *)&s->pool_t)) {
        int rc = uv_timer_start(&s->pool_t, on_pool_t, SR_POOL_LOG_MS, 0);
        assert(rc == 0); /* an open timer (closed only in CLOSING) */
        (void)rc;
    }
    SR_CHECK(s);
}

static void pool_closed(void *ud) {
    sr_conn_st *pc = ud;
    store_redis *s = pc->s;
    pc->c = NULL;
    sr_conns_maybe_closed(s);
    SR_CHECK(s);
}

int sr_make_conn(store_redis *s, rconn **out, int kind, void *ud, char *err,
                 size_t errlen) {
    rconn_options o = {0};
    memcpy(o.addrs, s->cfg.addrs, sizeof o.addrs);
    o.naddrs = s->cfg.naddrs;
    o.user = s->cfg.user;
    o.password = s->cfg.password;
    o.tls = s->cfg.tls;
    o.tls_ca_file = s->cfg.tls_ca_file;
    o.tls_cert_file = s->cfg.tls_cert_file;
    o.tls_key_file = s->cfg.tls_key_file;
    o.tls_server_name = s->cfg.tls_server_name;
    o.require_master = 1;
    o.connect_timeout_ms = s->cfg.connect_timeout_ms;
    o.command_timeout_ms = s->cfg.command_timeout_ms;
    /* the feed is quiet when nothing happens: a frozen Redis must still be
     * noticed there (the command connection has the heartbeat; a quiet
     * pool connection carries no put to lose) */
    o.keepalive_ms = kind == 1 ? s->cfg.heartbeat_ms : 0;
    o.ud = ud;
    if (kind == 1) {
        o.on_ready = sr_feed_on_ready;
        o.on_down = sr_feed_on_down;
        o.on_push = sr_feed_on_push;
    } else if (kind == 2) {
        o.on_ready = pool_on_ready;
        o.on_down = pool_on_down;
    } else {
        o.on_ready = sr_cmd_on_ready;
        o.on_down = sr_cmd_on_down;
    }
    return rconn_new(out, s->loop, &o, err, errlen);
}

int sr_pool_open(store_redis *s, char *err, size_t errlen) {
    for (unsigned i = 1; i < s->nconns; i++) {
        sr_conn_st *pc = &s->conns[i];
        int rc = sr_make_conn(s, &pc->c, 2, pc, err, errlen);
        if (rc == 0) rc = rconn_start(pc->c);
        if (rc) return rc;
    }
    return 0;
}

void sr_pool_close(store_redis *s) {
    for (unsigned i = 1; i < s->nconns; i++) {
        sr_conn_st *pc = &s->conns[i];
        if (pc->up) s->pool_down++;
        pc->up = 0;
        if (pc->c) rconn_close(pc->c, pool_closed, pc);
    }
}

int sr_pool_closed(const store_redis *s) {
    for (unsigned i = 1; i < s->nconns; i++)
        if (s->conns[i].c) return 0;
    return 1;
}

void sr_pool_flush(store_redis *s) {
    for (unsigned i = 0; i < s->nconns; i++) {
        rconn *c = sr_conn(s, i);
        if (c) rconn_flush(c);
    }
}

/* Part (13) of store_redis.c's invariants. */
int sr_pool_check(const store_redis *s) {
    assert(s->nconns >= 1 && s->nconns <= STORE_REDIS_CONNS_MAX);
    unsigned down = 0;
    for (unsigned i = 0; i < s->nconns; i++) {
        const sr_conn_st *pc = &s->conns[i];
        assert(pc->s == s && pc->idx == i);
        if (i == 0) {
            assert(!pc->c && !pc->up);
            continue;
        }
        if (s->phase < SR_CLOSING) assert(pc->c);
        if (s->phase == SR_CLOSED) assert(!pc->c);
        assert(!pc->up || rconn_get_state(pc->c) == RCONN_READY);
        if (!pc->up) down++;
    }
    assert(down == s->pool_down);
    assert(!s->pool_logged || s->pool_down);
    (void)down;
    return 1;
}
