/*
 * store_redis.c -- the cluster store's node (store_redis.h; its files:
 * store_redis_int.h): store_redis_open, the phases, the command
 * connection's hooks, the scripts, the node id, stop and free, and the
 * invariants (the periodic work is store_redis_node.c's).
 *
 * Invariants (store_redis_check, after every callback unless NDEBUG):
 *  (1) phase < SR_NPHASES; before STOPPING the command connection and
 *      the feed exist, in STOPPING the command connection (the feed
 *      closes first); CLOSED => neither does, and every handle is closed.
 *  (2) the requests: nreq is the list's length and tail its last.
 *  (3) each request has a known kind and is SENT or READY, or HANDLING
 *      for the head while its handler runs (the callbacks to the loop it
 *      calls may check these); only a READY one holds a parked reply;
 *      one on a connection other than 0 is a put, a WAIT or a NOSCRIPT's
 *      SCRIPT LOAD (store_redis_pool.c).
 *  (4) pending == the body bytes of the puts in the list.
 *  (5) the head is READY => the idle handle is on (it completes it).
 *  (6) cmd_up => the command connection is READY; feed_up => the feed is.
 *  (7) OPENING or RUNNING: stats.health is STORE_EIO exactly when the
 *      command connection is not up.
 *  (8) RUNNING or STOPPING => the open finished: node != 0, every script
 *      loaded, persistence checked.
 *  (9) the node's copy of the groups is consistent (groups_check) and each
 *      group in it has a live version entry; gloads_left > 0 =>
 *      groups_loading.
 * (10) no user is both held (users) and waiting to be unregistered
 *      (unreg); a held user's known counts have conv <= all.
 * (11) config_left <= 3; hb_inflight, jan_inflight are 0 or 1;
 *      reg_pending >= 0.
 * (12) --cluster-wait: store_redis_wait.c lists its part.
 * (13) the put pool (store_redis_pool.c): 1 <= nconns <= 16; before
 *      CLOSING every pool connection exists, CLOSED => none does; a pool
 *      connection up => READY; pool_down counts those not up; a
 *      cluster_redis_pool_down line logged => one is down.
 */
#include "server/store_redis_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -- phases ----------------------------------------------------------------- */

#define BIT(p) (1u << (p))
static const unsigned edges[SR_NPHASES] = {
    [SR_OPENING] = BIT(SR_RUNNING) | BIT(SR_CLOSING),
    [SR_RUNNING] = BIT(SR_STOPPING),
    [SR_STOPPING] = BIT(SR_CLOSING),
    [SR_CLOSING] = BIT(SR_CLOSED),
    [SR_CLOSED] = 0,
};

int sr_edge(int from, int to) {
    return from >= 0 && from < SR_NPHASES && to >= 0 && to < SR_NPHASES &&
           (edges[from] & BIT(to)) != 0;
}

void sr_to(store_redis *s, int phase) {
    assert(sr_edge(s->phase, phase));
    s->phase = (uint8_t)phase;
}

int sr_active(const store_redis *s) { return s->phase == SR_RUNNING; }

static uint64_t now_ms(const store_redis *s) { return uv_now(s->loop); }

/* -- open's failure ------------------------------------------------------- */

void sr_open_fail(store_redis *s, const char *fmt, ...) {
    if (s->phase != SR_OPENING || s->open_failed) return;
    s->open_failed = 1;
    if (!s->open_err || !s->open_errlen) return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(s->open_err, s->open_errlen, fmt, ap);
    va_end(ap);
}

/* -- scripts, node id ------------------------------------------------------ */

static void load_scripts(store_redis *s) {
    for (int i = 0; i < REDIS_SCRIPT_COUNT; i++) {
        sr_req *r = sr_new(s, SR_LOAD, -1, 0);
        if (!r) {
            sr_open_fail(s, "out of memory loading the cluster's scripts");
            return;
        }
        sr_args(r, "SCRIPT");
        sr_args(r, "LOAD");
        sr_arg(r, redis_scripts[i].text, redis_scripts[i].len);
        r->u.config.which = i;
        sr_submit(s, r);
    }
}

int sr_h_load(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    const redis_script *sc = &redis_scripts[r->u.config.which];
    if (st != STORE_OK) {
        if (rep) {
            log_error("cluster_script_refused",
                      "cluster: redis %s refused the script %s: %.*s "
                      "(Redis 7.0 or later is needed)",
                      rconn_peer(s->cmd), sc->name, (int)rep->len, rep->str);
            sr_open_fail(s, "redis at %s refused the script %s: %.*s; the "
                         "cluster needs Redis 7.0 or later",
                         rconn_peer(s->cmd), sc->name, (int)rep->len,
                         rep->str);
        }
        return SR_DONE; /* lost: loaded again at the reconnect */
    }
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40 ||
        memcmp(rep->str, sc->sha1, 40) != 0) {
        log_error("cluster_script_refused",
                  "cluster: redis %s gave the script %s another SHA1 than "
                  "the one built in (%.*s, not %s): its calls will fail",
                  rconn_peer(s->cmd), sc->name,
                  (int)(rep->str ? rep->len : 0), rep->str ? rep->str : "",
                  sc->sha1);
        sr_open_fail(s, "redis at %s gave the script %s another SHA1 than "
                     "the one built in: a build problem", rconn_peer(s->cmd),
                     sc->name);
        return SR_DONE;
    }
    if (s->phase == SR_OPENING && s->scripts_ok < REDIS_SCRIPT_COUNT)
        s->scripts_ok++;
    return SR_DONE;
}

int sr_h_node_id(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    (void)r;
    if (st != STORE_OK || rep->type != REDIS_REPLY_INTEGER ||
        rep->integer <= 0 || rep->integer > UINT32_MAX) {
        if (st == STORE_OK)
            sr_open_fail(s, "redis at %s answered INCR chat:nodes with "
                         "something else than a node number",
                         rconn_peer(s->cmd));
        return SR_DONE; /* (lost: asked again at the reconnect) */
    }
    s->node = (uint32_t)rep->integer;
    s->stats.node = s->node; /* (for /metrics: chat_worker_info) */
    sr_heartbeat_send(s);
    int rc = uv_timer_start(&s->hb, sr_on_hb, s->cfg.heartbeat_ms,
                            s->cfg.heartbeat_ms);
    assert(rc == 0); /* an initialised, open timer */
    (void)rc;
    if (!s->feed_started) {
        s->feed_started = 1;
        rc = rconn_start(s->feed);
        assert(rc == 0); /* IDLE until now */
    }
    return SR_DONE;
}

/* -- the command connection ------------------------------------------------- */

void sr_cmd_on_ready(void *ud) {
    store_redis *s = ud;
    if (s->phase != SR_OPENING && s->phase != SR_RUNNING) return;
    s->cmd_up = 1;
    s->stats.health = STORE_OK;
    if (s->cmd_down_ms && s->phase == SR_RUNNING)
        log_info("cluster_redis_back",
                 "cluster: redis %s is back after %.1f s",
                 rconn_peer(s->cmd),
                 (double)(now_ms(s) - s->cmd_down_ms) / 1000.0);
    s->cmd_down_ms = 0;
    /* First on the connection (rconn.h: on_ready's commands go before the
     * ones that waited): the check, the scripts, then the node. */
    sr_persist_check(s);
    if (s->phase == SR_OPENING) s->scripts_ok = 0; /* (this connection's) */
    load_scripts(s);
    if (!s->node) {
        sr_req *r = sr_new(s, SR_NODE_ID, -1, 0);
        if (r) {
            sr_args(r, "INCR");
            sr_args(r, "chat:nodes");
            sr_submit(s, r);
        }
    } else {
        /* heartbeat first: a registration of a node taken for dead is
         * undone by the next script that reads u:{U}:on (live_nodes) */
        sr_heartbeat_send(s);
        if (sr_active(s)) sr_register_all(s);
    }
    if (s->groups_stale && s->feed_up && !s->groups_loading)
        sr_groups_reload(s);
    SR_CHECK(s);
}

void sr_cmd_on_down(void *ud, const char *reason) {
    store_redis *s = ud;
    if (s->phase != SR_OPENING && s->phase != SR_RUNNING) return;
    s->cmd_up = 0;
    s->stats.health = STORE_EIO;
    s->cmd_down_ms = now_ms(s);
    if (s->phase == SR_OPENING) {
        /* settings that cannot get better by waiting: said at once */
        if (strstr(reason, "AUTH refused") || strstr(reason, "NOAUTH"))
            sr_open_fail(s, "redis refused to let this node in: %s; check "
                         "the password (and the user) given for the "
                         "cluster", reason);
        else if (strstr(reason, "certificate verify failed") ||
                 strstr(reason, "cannot verify the TLS name"))
            sr_open_fail(s, "redis's TLS certificate is not trusted: %s; "
                         "check --cluster-tls-ca (and --cluster-tls-name "
                         "when the certificate names another host)", reason);
        SR_CHECK(s);
        return;
    }
    log_warn("cluster_redis_down",
             "cluster: redis unreachable: %s; refusing sends until it is "
             "back", reason);
    SR_CHECK(s);
}

/* -- closing -------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
    store_redis *s = h->data;
    assert(s->nhandles > 0);
    if (--s->nhandles == 0) sr_to(s, SR_CLOSED);
}

static void close_handles(store_redis *s) {
    s->handles_closing = 1;
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
    uv_close((uv_handle_t *)&s->hb, on_handle_closed);
    uv_close((uv_handle_t *)&s->jan, on_handle_closed);
    uv_close((uv_handle_t *)&s->pers, on_handle_closed);
    uv_close((uv_handle_t *)&s->stop_t, on_handle_closed);
    uv_close((uv_handle_t *)&s->wchk, on_handle_closed);
    uv_close((uv_handle_t *)&s->pool_t, on_handle_closed);
}

void sr_conns_maybe_closed(store_redis *s) {
    if (!s->cmd && !s->feed && sr_pool_closed(s) && !s->handles_closing)
        close_handles(s);
}

static void cmd_closed(void *ud) {
    store_redis *s = ud;
    s->cmd = NULL;
    sr_conns_maybe_closed(s);
    SR_CHECK(s);
}

static void feed_closed(void *ud) {
    store_redis *s = ud;
    s->feed = NULL;
    sr_conns_maybe_closed(s);
    SR_CHECK(s);
}

/* -> CLOSING: every connection closed (their requests fail, ECLOSED, and
 * complete without the loop), then the handles. */
static void close_all(store_redis *s) {
    sr_to(s, SR_CLOSING);
    s->cmd_up = 0;
    s->feed_up = 0;
    /* (void): uv_timer_stop cannot fail (returns 0) */
    (void)uv_timer_stop(&s->hb);
    (void)uv_timer_stop(&s->jan);
    (void)uv_timer_stop(&s->pers);
    (void)uv_timer_stop(&s->stop_t);
    (void)uv_timer_stop(&s->pool_t);
    if (s->cmd) rconn_close(s->cmd, cmd_closed, s);
    if (s->feed) rconn_close(s->feed, feed_closed, s);
    sr_pool_close(s);
    sr_conns_maybe_closed(s);
}

static void on_stop_t(uv_timer_t *t) {
    store_redis *s = t->data;
    if (s->phase == SR_OPENING) {
        const char *why = s->cmd ? rconn_last_error(s->cmd) : "";
        if (!s->cmd_up)
            sr_open_fail(s, "cannot reach redis at %s within %u ms%s%s; "
                         "start redis-server there or fix the cluster's "
                         "address", s->cmd ? rconn_peer(s->cmd) : "?",
                         s->cfg.open_timeout_ms, *why ? ": " : "", why);
        else
            sr_open_fail(s, "redis at %s did not finish the node's setup "
                         "within %u ms (%s)", rconn_peer(s->cmd),
                         s->cfg.open_timeout_ms,
                         !s->feed_up ? "the feed connection is not "
                                       "subscribed"
                         : !s->groups_loaded ? "the groups are not loaded"
                         : s->pool_down ? "a put connection is not up"
                                             : "no answer to the setup");
    } else if (s->phase == SR_STOPPING) {
        close_all(s);
    }
    SR_CHECK(s);
}

int sr_h_goodbye(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    (void)r;
    (void)rep;
    (void)st;
    if (s->phase == SR_STOPPING) close_all(s);
    return SR_DONE;
}

/* -- the operations table's lifecycle ------------------------------------- */

void sr_stop(store *st) {
    store_redis *s = sr_of(st);
    if (s->phase != SR_RUNNING) return;
    sr_to(s, SR_STOPPING);
    /* (void): uv_timer_stop cannot fail (returns 0) */
    (void)uv_timer_stop(&s->hb);
    (void)uv_timer_stop(&s->jan);
    (void)uv_timer_stop(&s->pers);
    if (s->feed) rconn_close(s->feed, feed_closed, s);
    s->feed_up = 0;
    if (!s->cmd_up) {
        close_all(s);
        SR_CHECK(s);
        return;
    }
    /* Goodbye, pipelined: out of every user's u:{U}:on (online.lua tells
     * the others they left), then out of chat:alive; its answer closes. */
    for (size_t i = 0; s->users.slots && i <= s->users.mask; i++)
        if (s->users.slots[i].key)
            (void)sr_online_send(s, s->users.slots[i].key, 0, 0); /* (a
                                 node that stopped is dead in 5 s anyway) */
    sr_req *r = sr_new(s, SR_GOODBYE, -1, 0);
    if (!r) {
        close_all(s);
        SR_CHECK(s);
        return;
    }
    sr_args(r, "HDEL");
    sr_args(r, "chat:alive");
    sr_argu(r, s->node);
    sr_submit(s, r);
    rconn_flush(s->cmd);
    int rc = uv_timer_start(&s->stop_t, on_stop_t, STORE_REDIS_STOP_MS, 0);
    assert(rc == 0); /* an open timer */
    (void)rc;
    SR_CHECK(s);
}

static void free_users(u32map *m) {
    for (size_t i = 0; m->slots && i <= m->mask; i++)
        if (m->slots[i].key) free(m->slots[i].val);
    u32map_free(m);
}

static void sr_destroy(store_redis *s) {
    sr_q_free(s);
    sr_wait_free(s);
    free_users(&s->users);
    u32map_free(&s->unreg);
    sr_groups_free(s);
    groups_free(&s->grp);
    free(s->rows);
    free(s->cids);
    free(s->cidids);
    free(s->cidts);
    free(s->pallow);
    free(s->pseen);
    free(s->ponline);
    if (s->strs) {
        memset(s->strs, 0, s->strslen); /* (the password) */
        free(s->strs);
    }
    free(s);
}

void sr_free(store *st) {
    store_redis *s = sr_of(st);
    assert(s->phase == SR_CLOSED); /* store_stop, then uv_run returned */
    sr_destroy(s);
}

/* -- open ----------------------------------------------------------------------- */

/* Copy cfg with its strings into s->strs. 0 or -1 (out of memory). */
static int copy_config(store_redis *s, const store_redis_config *cfg) {
    s->cfg = *cfg;
    const char **strs[RCONN_MAX_ADDRS + 6];
    size_t n = 0, bytes = 0;
    for (unsigned i = 0; i < cfg->naddrs; i++)
        strs[n++] = &s->cfg.addrs[i].host;
    strs[n++] = &s->cfg.user;
    strs[n++] = &s->cfg.password;
    strs[n++] = &s->cfg.tls_ca_file;
    strs[n++] = &s->cfg.tls_cert_file;
    strs[n++] = &s->cfg.tls_key_file;
    strs[n++] = &s->cfg.tls_server_name;
    for (size_t i = 0; i < n; i++)
        if (*strs[i]) bytes += strlen(*strs[i]) + 1;
    if (!bytes) return 0;
    if (!(s->strs = malloc(bytes))) return -1;
    s->strslen = bytes;
    char *p = s->strs;
    for (size_t i = 0; i < n; i++) {
        if (!*strs[i]) continue;
        size_t l = strlen(*strs[i]) + 1;
        memcpy(p, *strs[i], l);
        *strs[i] = p;
        p += l;
    }
    return 0;
}

static void defaults(store_redis_config *c) {
    if (!c->open_timeout_ms) c->open_timeout_ms = STORE_REDIS_OPEN_TIMEOUT_MS;
    if (!c->heartbeat_ms) c->heartbeat_ms = STORE_REDIS_HEARTBEAT_MS;
    if (!c->alive_ttl_ms) c->alive_ttl_ms = STORE_REDIS_ALIVE_TTL_MS;
    if (!c->persist_check_ms) c->persist_check_ms = STORE_REDIS_PERSIST_CHECK_MS;
    if (!c->janitor_ms) c->janitor_ms = STORE_REDIS_JANITOR_MS;
    if (!c->dedup_ms) c->dedup_ms = STORE_REDIS_DEDUP_MS;
    if (!c->wait_ms) c->wait_ms = STORE_REDIS_WAIT_MS;
}

static int open_ready(const store_redis *s) {
    return s->persist != SR_P_UNKNOWN && s->scripts_ok == REDIS_SCRIPT_COUNT &&
           s->node && s->alive && s->feed_up && s->groups_loaded &&
           !s->pool_down;
}

static int init_handles(store_redis *s) {
    uv_handle_t *hs[7] = {(uv_handle_t *)&s->idle, (uv_handle_t *)&s->hb,
                          (uv_handle_t *)&s->jan, (uv_handle_t *)&s->pers,
                          (uv_handle_t *)&s->stop_t, (uv_handle_t *)&s->wchk,
                          (uv_handle_t *)&s->pool_t};
    if (uv_idle_init(s->loop, &s->idle) || uv_timer_init(s->loop, &s->hb) ||
        uv_timer_init(s->loop, &s->jan) || uv_timer_init(s->loop, &s->pers) ||
        uv_timer_init(s->loop, &s->stop_t) ||
        uv_check_init(s->loop, &s->wchk) || uv_timer_init(s->loop, &s->pool_t))
        return -1; /* (never on an initialised loop: they only fill in) */
    for (int i = 0; i < 7; i++) hs[i]->data = s;
    s->nhandles = 7;
    /* the periodic ones never keep the loop alive after store_stop */
    uv_unref((uv_handle_t *)&s->hb);
    uv_unref((uv_handle_t *)&s->jan);
    uv_unref((uv_handle_t *)&s->pers);
    return 0;
}

int store_redis_open(store **out, uv_loop_t *loop,
                     const store_redis_config *cfg, const store_callbacks *cb,
                     char *err, size_t errlen) {
    *out = NULL;
    if (err && errlen) err[0] = '\0';
    if (cfg && cfg->wait_ms > STORE_REDIS_WAIT_MS_MAX) {
        if (err) (void)snprintf(err, errlen, "the cluster's WAIT timeout "
                                "%u ms is above %u ms (the heartbeat waits "
                                "behind it)", cfg->wait_ms,
                                STORE_REDIS_WAIT_MS_MAX);
        return STORE_EIO;
    }
    if (cfg && cfg->conns > STORE_REDIS_CONNS_MAX) {
        if (err) (void)snprintf(err, errlen, "%u command connections to "
                                "redis: at most %u", cfg->conns,
                                STORE_REDIS_CONNS_MAX);
        return STORE_EIO;
    }
    if (!cfg || cfg->naddrs < 1 || cfg->naddrs > RCONN_MAX_ADDRS || !cb ||
        !cb->live || !cb->resync) {
        if (err) (void)snprintf(err, errlen, "the cluster store needs 1 to "
                                "%d redis addresses and the live and resync "
                                "callbacks", RCONN_MAX_ADDRS);
        return STORE_EIO;
    }
    store_redis *s = calloc(1, sizeof *s);
    if (!s || copy_config(s, cfg)) {
        free(s);
        if (err) (void)snprintf(err, errlen, "out of memory opening the "
                                "cluster store");
        return STORE_ENOMEM;
    }
    s->base.ops = &store__redis_ops;
    s->loop = loop;
    s->cb = *cb;
    defaults(&s->cfg);
    s->max_messages = cfg->max_messages;
    s->max_bytes = cfg->max_bytes;
    s->persist_logged = -1;
    s->nconns = s->cfg.conns ? s->cfg.conns : 1;
    for (unsigned i = 0; i < STORE_REDIS_CONNS_MAX; i++)
        s->conns[i] = (sr_conn_st){.s = s, .idx = (uint8_t)i};
    s->pool_down = s->nconns - 1;
    s->stats.health = STORE_EIO;
    metrics_hist_init(&s->stats.txn_us, METRICS_LATENCY_US);
    metrics_hist_init(&s->stats.txn_writes, METRICS_COUNT);
    u32map_init(&s->users);
    u32map_init(&s->unreg);
    u32map_init(&s->gver);
    groups_init(&s->grp);
    s->open_err = err;
    s->open_errlen = err ? errlen : 0;
    if (sr_reserve_init(s) || init_handles(s)) {
        /* (handles: never fail on an initialised loop; had one of them
         * failed after others were made, they would stay on the loop) */
        sr_destroy(s);
        if (err) (void)snprintf(err, errlen, "out of memory opening the "
                                "cluster store");
        return STORE_ENOMEM;
    }
    int rc = sr_make_conn(s, &s->cmd, 0, s, err, errlen);
    if (rc == 0) rc = sr_make_conn(s, &s->feed, 1, s, err, errlen);
    if (rc == 0) rc = rconn_start(s->cmd);
    if (rc == 0) rc = sr_pool_open(s, err, errlen);
    if (rc == 0) rc = uv_timer_start(&s->stop_t, on_stop_t,
                                     s->cfg.open_timeout_ms, 0);
    if (rc) s->open_failed = 1; /* (err says why: rconn_new's sentence) */
    while (!s->open_failed && !open_ready(s)) (void)uv_run(loop, UV_RUN_ONCE);
    if (s->open_failed) {
        s->open_err = NULL; /* (keep the first sentence) */
        close_all(s);
        while (s->phase != SR_CLOSED) (void)uv_run(loop, UV_RUN_ONCE);
        sr_destroy(s);
        return rc == RCONN_ENOMEM ? STORE_ENOMEM : STORE_EIO;
    }
    s->open_err = NULL;
    /* (void): uv_timer_stop cannot fail (returns 0) */
    (void)uv_timer_stop(&s->stop_t);
    sr_to(s, SR_RUNNING);
    rc = uv_timer_start(&s->pers, sr_on_pers, s->cfg.persist_check_ms,
                        s->cfg.persist_check_ms);
    if (!s->cfg.no_janitor)
        rc |= uv_timer_start(&s->jan, sr_on_jan, s->cfg.janitor_ms,
                             s->cfg.janitor_ms);
    assert(rc == 0); /* open timers */
    (void)rc;
    *out = &s->base;
    SR_CHECK(s);
    return 0;
}

int store_redis_acks(const store *st) {
    return sr_cof(st)->persist == SR_P_OK;
}

uint32_t store_redis_node(const store *st) { return sr_cof(st)->node; }

int store_redis_feed_up(const store *st) { return sr_cof(st)->feed_up; }

/* -- the invariants ---------------------------------------------------------- */

int store_redis_check(const store *st) {
    const store_redis *s = sr_cof(st);
    assert(s->phase < SR_NPHASES);                                     /* (1) */
    if (s->phase < SR_STOPPING) assert(s->cmd && s->feed);
    if (s->phase == SR_STOPPING) assert(s->cmd);
    if (s->phase == SR_CLOSED) assert(!s->cmd && !s->feed && !s->nhandles);
    assert(sr_q_check(s));                                    /* (2)-(5) */
    assert(!s->cmd_up || rconn_get_state(s->cmd) == RCONN_READY);      /* (6) */
    assert(!s->feed_up || rconn_get_state(s->feed) == RCONN_READY);
    if (s->phase <= SR_RUNNING)                                        /* (7) */
        assert((s->stats.health == STORE_EIO) == !s->cmd_up);
    if (s->phase == SR_RUNNING || s->phase == SR_STOPPING)             /* (8) */
        assert(s->node && s->scripts_ok == REDIS_SCRIPT_COUNT &&
               s->persist != SR_P_UNKNOWN);
    assert(sr_feed_check(s));                                  /* (9), (10) */
    assert(s->config_left >= 0 && s->config_left <= 3);               /* (11) */
    assert(s->hb_inflight == 0 || s->hb_inflight == 1);
    assert(s->jan_inflight == 0 || s->jan_inflight == 1);
    assert(s->reg_pending >= 0);
    assert(sr_wait_check(s));                                         /* (12) */
    assert(sr_pool_check(s));                                         /* (13) */
    return 1;
}
