/* sweep.c -- see sweep.h. */
#include "server/sweep.h"

#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "common/log.h"
#include "proto/frame.h"
#include "server/close.h"
#include "server/conn.h"
#include "server/httpd.h"
#include "server/io.h"
#include "server/output.h"
#include "server/session.h"

/* Start t for ms unless it runs already. */
static void arm(uv_timer_t *t, uv_timer_cb cb, uint64_t ms) {
    if (uv_is_active((uv_handle_t *)t) || uv_is_closing((uv_handle_t *)t))
        return;
    int r = uv_timer_start(t, cb, ms, 0);
    if (r) log_error("timer_failed",
                     "cannot start a timer: %s", uv_strerror(r));
}

static void rearm(uv_timer_t *t, uv_timer_cb cb, uint64_t ms) {
    if (ms == 0 || uv_is_closing((uv_handle_t *)t)) return;
    int r = uv_timer_start(t, cb, ms, 0);
    if (r) log_error("timer_failed",
                     "cannot start a timer: %s", uv_strerror(r));
}

/* Close the NEW connections past --login-timeout. Returns the ms until the
 * next one is due, 0 when none is left. */
static uint64_t sweep_pending(hub *h) {
    uint64_t now = uv_now(h->loop), limit = h->cfg->login_timeout_ms;
    char why[128];
    snprintf(why, sizeof why, "%s within %llu ms",
             h->auth ? "not logged in" : "no first frame",
             (unsigned long long)limit);
    char http_why[128];
    snprintf(http_why, sizeof http_why, "no whole HTTP request within %llu ms",
             (unsigned long long)limit);
    unsigned closed = 0;
    dlink *k;
    while ((k = dlist_first(&h->pending))) {
        conn *c = DLIST_ENTRY(k, conn, plink);
        uint64_t due = c->t_accept + limit;
        if (due > now) return due - now;
        if (closed == SWEEP_BATCH) return 1; /* the rest after other work */
        const char *what = c->kind == CONN_HTTP ? http_why : why;
        /* the first at info, the rest of the batch at debug (a flood of
         * silent connections is one info line, then the count) */
        int level = closed++ == 0 ? LOG_INFO : LOG_DEBUG;
        CLOG(c, level, "login_timeout", "%s; closing", what);
        conn_ref(c);
        /* One that never spoke gets no goodbye: just the close. */
        if (c->kind == CONN_HTTP)
            httpd_timeout(c);
        else if (c->ctl || c->kind == CONN_WS)
            close_finish(c, h->auth ? FRAME_ERR_NOLOGIN : FRAME_ERR_PROTO, why);
        else
            close_abort(c);
        conn_unref(c);
    }
    if (closed > 1) log_info("login_timeouts",
                             "closed %u connections: %s", closed, why);
    return 0;
}

static void on_login(uv_timer_t *t) {
    sweep *w = t->data;
    rearm(t, on_login, sweep_pending(w->h));
    io_flush_all(w->h);
}

/* PING those silent for half of --idle-timeout, close those silent for
 * all of it. Returns the ms until the next run, 0 when none is left. */
static uint64_t sweep_idle(hub *h) {
    uint64_t now = uv_now(h->loop), idle = h->cfg->idle_timeout_ms;
    dlink *k, *next;
    for (k = dlist_first(&h->idle); k; k = next) {
        next = dlist_next(&h->idle, k);
        conn *c = DLIST_ENTRY(k, conn, plink);
        if (c->t_rx + idle / 2 > now) break; /* the rest spoke later */
        conn_ref(c);
        if (c->t_rx + idle <= now) {
            CLOG(c, LOG_INFO, "idle_timeout",
                 "silent for %llu ms (no answer to PING); "
                 "closing", (unsigned long long)idle);
            close_finish(c, 0, NULL);
        } else if (!c->pinged) {
            c->pinged = 1;
            output_control(c, FRAME_PING, (const uint8_t *)"keepalive", 9);
        }
        conn_unref(c);
    }
    uint64_t every = idle / 4 < 100 ? 100 : idle / 4;
    return dlist_empty(&h->idle) ? 0 : every;
}

static void on_idle(uv_timer_t *t) {
    sweep *w = t->data;
    rearm(t, on_idle, sweep_idle(w->h));
    io_flush_all(w->h);
}

static void on_rate(uv_timer_t *t) {
    sweep *w = t->data;
    hub *h = w->h;
    dlink *k, *next;
    for (k = dlist_first(&h->throttled); k; k = next) {
        next = dlist_next(&h->throttled, k);
        conn *c = DLIST_ENTRY(k, conn, tlink);
        conn_ref(c);
        session_rate_poll(c);
        conn_unref(c);
    }
    rearm(t, on_rate, dlist_empty(&h->throttled) ? 0 : SWEEP_RATE_MS);
    io_flush_all(h);
}

/* Every second, O(connections): idle connections give back their empty
 * buffers (busy ones reallocate theirs at most once a second). */
static void on_cron(uv_timer_t *t) {
    sweep *w = t->data;
    hub *h = w->h;
    size_t freed = blkpool_trim(&h->pool) + h->scratch.cap;
    buf_free(&h->scratch);
    for (dlink *k = dlist_first(&h->conns); k; k = dlist_next(&h->conns, k))
        freed += io_shrink(DLIST_ENTRY(k, conn, all));
#ifdef __GLIBC__
    /* Give whole free pages back (glibc keeps them otherwise): after a
     * crowd of connections, or a burst of large frames, went quiet. */
    if (freed >= ((size_t)1 << 20)) (void)malloc_trim(0); /* (1: released) */
#endif
}

int sweep_init(sweep *w, hub *h) {
    w->h = h;
    w->open = 0;
    uv_timer_t *ts[4] = {&w->login, &w->idle, &w->rate, &w->cron};
    for (int i = 0; i < 4; i++) {
        int r = uv_timer_init(h->loop, ts[i]);
        if (r) { /* (cannot fail on Linux: it only links the handle) */
            for (int j = 0; j < i; j++) uv_close((uv_handle_t *)ts[j], NULL);
            return r;
        }
        ts[i]->data = w;
    }
    w->open = 1;
    return uv_timer_start(&w->cron, on_cron, 1000, 1000);
}

void sweep_arm(sweep *w, int which) {
    if (!w->open) return;
    uint64_t idle = w->h->cfg->idle_timeout_ms / 4;
    switch (which) {
    case HUB_PENDING: arm(&w->login, on_login, w->h->cfg->login_timeout_ms); break;
    case HUB_IDLE: arm(&w->idle, on_idle, idle < 100 ? 100 : idle); break;
    case HUB_THROTTLED: arm(&w->rate, on_rate, SWEEP_RATE_MS); break;
    default: break;
    }
}

void sweep_close(sweep *w) {
    if (!w->open) return;
    w->open = 0;
    uv_close((uv_handle_t *)&w->login, NULL);
    uv_close((uv_handle_t *)&w->idle, NULL);
    uv_close((uv_handle_t *)&w->rate, NULL);
    uv_close((uv_handle_t *)&w->cron, NULL);
}
