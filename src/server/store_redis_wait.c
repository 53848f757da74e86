/*
 * store_redis_wait.c -- --cluster-wait (store_redis.h, docs/CLUSTER.md
 * 4.4): a put is acknowledged only once WAIT N MS, sent after it on the
 * same connection, answered that N replicas have it.
 *
 * How: every put appended to the request list takes the number of the next
 * WAIT (wgen = the WAITs sent so far) and makes one owed; a check handle
 * (after the loop's I/O, so after the puts that the clients' frames of this
 * iteration made) sends the owed WAIT unless one is in flight. When a put's
 * reply is handled, its outcome is held (not completed); when WAIT number k
 * is handled, the held outcomes with wgen < k complete: as they were if the
 * WAIT counted N replicas, with STORE_EREPLICAS for those that stored if
 * not. A NOSCRIPT resend takes a new wgen, so a WAIT sent before the resend
 * never vouches for it.
 *
 * One WAIT in flight at most: WAIT blocks its connection until it is
 * satisfied or MS passes, and every command behind it waits; with WAITs
 * pipelined one per iteration, a replica that is down would cost MS per
 * iteration and the backlog would grow without end. One at a time, the
 * puts made while it waits share the next one (group commit, as the SQLite
 * thread's transactions), and a heartbeat waits at most about MS
 * (STORE_REDIS_WAIT_MS_MAX keeps that under the alive TTL).
 *
 * Invariants (sr_wait_check, part (12) of store_redis.c's):
 *  - wait off => nothing held, owed or in flight;
 *  - in flight <=> wait_seq > wait_done (the WAITs sent and handled);
 *  - each held outcome has wgen >= wait_done (older ones were completed)
 *    and a WAIT coming for it: wgen < wait_seq (sent) or one owed;
 *  - owed and none in flight => the check handle is on (it sends it).
 */
#include "server/store_redis_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int sr_waiting(const store_redis *s) { return s->cfg.wait_replicas > 0; }

void sr_wait_note(store_redis *s, sr_req *r) {
    assert(r->kind == SR_PUT);
    if (!sr_waiting(s)) return;
    r->u.put.wgen = s->wait_seq;
    s->wait_owed = 1;
    if (!s->wait_inflight && !s->handles_closing) {
        int rc = uv_check_start(&s->wchk, sr_on_wait_check);
        assert(rc == 0); /* fails only on a closing handle */
        (void)rc;
    }
}

int sr_wait_hold(store_redis *s, const sr_req *r, uint64_t id, int st) {
    if (!sr_waiting(s)) return 0;
    if (s->nheld == s->cheld) {
        size_t c = s->cheld ? s->cheld * 2 : 64;
        sr_held *h = realloc(s->held, c * sizeof *h);
        if (!h) return 0; /* (completes now, unvouched: see sr_h_put) */
        s->held = h;
        s->cheld = c;
    }
    s->held[s->nheld++] = (sr_held){.token = r->token, .seq = r->u.put.seq,
                                    .id = id, .cid = r->u.put.cid,
                                    .status = st, .wgen = r->u.put.wgen};
    return 1;
}

void sr_on_wait_check(uv_check_t *h) {
    store_redis *s = h->data;
    /* (void): uv_check_stop cannot fail (returns 0) */
    (void)uv_check_stop(h);
    if (!s->wait_owed || s->wait_inflight || s->phase > SR_STOPPING) return;
    sr_req *r = sr_new(s, SR_WAIT, -1, 0);
    uint64_t k = ++s->wait_seq;
    s->wait_owed = 0;
    s->wait_inflight = 1;
    if (!r) { /* (a failed WAIT, in its turn: its puts are not vouched for) */
        sr_fail(s, SR_WAIT, NULL, STORE_ENOMEM)->u.wait.k = k;
        SR_CHECK(s);
        return;
    }
    r->u.wait.k = k;
    sr_args(r, "WAIT");
    sr_argu(r, s->cfg.wait_replicas);
    sr_argu(r, s->cfg.wait_ms);
    sr_submit(s, r);
    SR_CHECK(s);
}

static void log_short(store_redis *s, const redisReply *rep, int st,
                      size_t refused) {
    unsigned long long quiet;
    if (!log_limit_pass(&s->wait_limit, uv_now(s->loop), &quiet)) return;
    char got[48];
    if (st == STORE_OK && rep && rep->type == REDIS_REPLY_INTEGER)
        (void)snprintf(got, sizeof got, "%lld replicas", rep->integer);
    else
        (void)snprintf(got, sizeof got, "no answer (%s)", store_strerror(st));
    log_warn("cluster_wait_short",
             "cluster: WAIT %u %u got %s: %zu send(s) refused with ERROR "
             "STORE; they are stored on the primary, and a resend with the "
             "same client id is acknowledged once %u replica(s) have it "
             "(%llu more not logged in the last second)",
             s->cfg.wait_replicas, s->cfg.wait_ms, got, refused,
             s->cfg.wait_replicas, quiet);
}

int sr_h_wait(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    uint64_t k = r->u.wait.k;
    assert(s->wait_inflight && k == s->wait_seq && k == s->wait_done + 1);
    s->wait_inflight = 0;
    s->wait_done = k;
    int ok = (st == STORE_OK && rep && rep->type == REDIS_REPLY_INTEGER &&
             rep->integer >= (long long)s->cfg.wait_replicas);
    /* Mark the outcomes this WAIT vouches for (or not) first, complete
     * them in the order they were held, then drop them: the loop's
     * callbacks may check the invariants (marked ones are skipped) and
     * queue puts (appended to the request list: never held here). */
    size_t refused = 0;
    for (size_t i = 0; i < s->nheld; i++) {
        sr_held *h = &s->held[i];
        if (h->wgen >= k) continue;
        h->done = 1;
        if (!ok && h->status == STORE_OK) {
            h->status = STORE_EREPLICAS;
            refused++;
        }
    }
    s->stats.waits++;
    if (!ok) {
        s->stats.waits_short++;
        log_short(s, rep, st, refused);
    }
    size_t n = s->nheld;
    for (size_t i = 0; i < n; i++) {
        const sr_held *h = &s->held[i];
        if (h->done && sr_active(s) && s->cb.put_done)
            s->cb.put_done(s->cb.ctx, h->token, h->seq, h->id, h->cid,
                           h->status);
    }
    assert(s->nheld == n); /* (holding happens in sr_h_put only) */
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!s->held[i].done) s->held[w++] = s->held[i];
    s->nheld = w;
    if (s->wait_owed && !s->handles_closing) {
        int rc = uv_check_start(&s->wchk, sr_on_wait_check);
        assert(rc == 0); /* fails only on a closing handle */
        (void)rc;
    }
    return SR_DONE;
}

void sr_wait_free(store_redis *s) {
    free(s->held);
    s->held = NULL;
    s->nheld = s->cheld = 0;
}

int sr_wait_check(const store_redis *s) {
    if (!sr_waiting(s))
        assert(!s->nheld && !s->wait_owed && !s->wait_inflight);
    assert(s->wait_inflight == (s->wait_seq > s->wait_done));
    assert(s->wait_seq - s->wait_done <= 1);
    for (size_t i = 0; i < s->nheld; i++) {
        if (s->held[i].done) continue; /* (being completed: sr_h_wait) */
        assert(s->held[i].wgen >= s->wait_done);
        assert(s->held[i].wgen < s->wait_seq || s->wait_owed);
    }
    assert(!(s->wait_owed && !s->wait_inflight) || s->handles_closing ||
           s->phase > SR_STOPPING ||
           uv_is_active((const uv_handle_t *)&s->wchk));
    return 1;
}
