/*
 * rblock.c -- a blocking Redis session over rconn (rblock.h).
 *
 * States: CONNECTING (rblock_open runs the loop until rconn says READY or
 * its first failure) -> OPEN (commands: each runs the loop until its
 * completion ran) -> rblock_close (rconn_close, the loop runs until the
 * connection's `closed` callback, then the loop is closed and b freed).
 * A failure while OPEN leaves b usable only for rblock_close: every later
 * command fails at once with the reason.
 *
 * Invariants (asserted): rconn's callbacks never run inside the rconn_*
 * call that caused them (rconn.h), so each wait loop is entered with its
 * condition false and leaves with it true; the loop never runs out of
 * work while a condition is false (rconn holds a handle until it answered).
 */
#include "server/rblock.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

struct rblock {
    uv_loop_t loop;
    rconn *c;
    int ready;            /* rconn said on_ready */
    int down;             /* rconn said on_down: b is unusable */
    int closed;           /* rconn's closed callback ran */
    char why[RCONN_REASON_MAX + 64];
};

typedef struct wait_cmd {
    rblock *b;
    int done, status;
    void (*take)(void *ud, const redisReply *reply);
    void *ud;
} wait_cmd;

static void on_ready(void *ud) {
    rblock *b = ud;
    b->ready = 1;
}

static void on_down(void *ud, const char *reason) {
    rblock *b = ud;
    b->down = 1;
    snprintf(b->why, sizeof b->why, "%s", reason);
}

static void on_closed(void *ud) {
    rblock *b = ud;
    b->closed = 1;
}

/* Run the loop until *flag or *flag2 is set. 0, or -1 when the loop ran
 * out of work first (a bug: rconn keeps a handle while it owes an answer). */
static int run_until(rblock *b, const int *flag, const int *flag2) {
    while (!*flag && !*flag2)
        if (uv_run(&b->loop, UV_RUN_ONCE) == 0 && !*flag && !*flag2)
            return -1;
    return 0;
}

/* Close the loop after everything on it closed. */
static void loop_finish(rblock *b) {
    /* (every handle is rconn's and closed before `closed` ran; uv_walk is
     * not needed) */
    int r = uv_loop_close(&b->loop);
    assert(r == 0);
    (void)r;
}

void rblock_close(rblock *b) {
    if (!b) return;
    if (b->c) {
        rconn_close(b->c, on_closed, b);
        static const int never = 0;
        /* (void): rconn's handles keep the loop running until closed */
        (void)run_until(b, &b->closed, &never);
        b->c = NULL;
    }
    loop_finish(b);
    free(b);
}

int rblock_open(rblock **out, const rconn_options *o, char *err,
                size_t errlen) {
    *out = NULL;
    rblock *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (uv_loop_init(&b->loop)) {
        free(b);
        snprintf(err, errlen, "cannot create an event loop");
        return -1;
    }
    rconn_options opt = *o;
    opt.require_master = 1;
    opt.on_ready = on_ready;
    opt.on_down = on_down;
    opt.on_push = NULL;
    opt.ud = b;
    int r = rconn_new(&b->c, &b->loop, &opt, err, errlen);
    if (r == 0) r = rconn_start(b->c);
    if (r) {
        if (r != RCONN_EINVAL && r != RCONN_ETLSCONF)
            snprintf(err, errlen, "redis: %s", rconn_strerror(r));
        if (b->c) rconn_close(b->c, on_closed, b);
        else b->closed = 1;
        static const int never = 0;
        (void)run_until(b, &b->closed, &never); /* (as in rblock_close) */
        b->c = NULL;
        loop_finish(b);
        free(b);
        return -1;
    }
    if (run_until(b, &b->ready, &b->down) || !b->ready) {
        snprintf(err, errlen, "cannot reach Redis: %s",
                 b->down ? b->why : "no answer");
        rblock_close(b);
        return -1;
    }
    *out = b;
    return 0;
}

static void on_reply(void *ud, const redisReply *reply, int status) {
    wait_cmd *w = ud;
    w->done = 1;
    w->status = status;
    if (status == RCONN_OK) w->take(w->ud, reply);
}

int rblock_command(rblock *b, int argc, const char **argv,
                   const size_t *lens,
                   void (*take)(void *ud, const redisReply *reply), void *ud,
                   char *err, size_t errlen) {
    if (b->down) {
        snprintf(err, errlen, "redis: %s", b->why);
        return -1;
    }
    wait_cmd w = {b, 0, 0, take, ud};
    int r = rconn_command(b->c, argc, argv, lens, on_reply, &w);
    if (r) {
        snprintf(err, errlen, "redis %s: %s", rconn_peer(b->c),
                 rconn_strerror(r));
        return -1;
    }
    assert(!w.done); /* (never inside rconn_command) */
    static const int never = 0;
    if (run_until(b, &w.done, &never) || !w.done) {
        /* (rconn owes the completion: cannot happen) */
        snprintf(err, errlen, "redis %s: no answer", rconn_peer(b->c));
        b->down = 1;
        snprintf(b->why, sizeof b->why, "no answer");
        return -1;
    }
    if (w.status != RCONN_OK) {
        const char *why = rconn_last_error(b->c);
        snprintf(err, errlen, "redis %s: %s", rconn_peer(b->c),
                 *why ? why : rconn_strerror(w.status));
        b->down = 1;
        snprintf(b->why, sizeof b->why, "%s", err);
        return -1;
    }
    return 0;
}

const char *rblock_peer(const rblock *b) {
    return b->c ? rconn_peer(b->c) : "";
}
