/*
 * store_redis_wait.c -- --cluster-wait (store_redis.h, docs/CLUSTER.md
 * 4.4): a put is acknowledged only once WAIT N MS, sent after it on the
 * same connection, answered that N replicas have it.
 *
 * How: every put appended to the request list takes the number of the next
 * WAIT on its connection (wgen = the WAITs sent there so far) and makes one
 * owed there; a check handle (after the loop's I/O, so after the puts that
 * the clients' frames of this iteration made) sends the owed WAIT of each
 * connection that has none in flight. When a put's reply is handled, its
 * outcome is held (not completed); when WAIT number k of connection c is
 * handled, the held outcomes of c with wgen < k are vouched for: as they
 * were if the WAIT counted N replicas, with STORE_EREPLICAS for those that
 * stored if not. WAIT counts only the writes of the client that sends it,
 * so only a WAIT on the put's own connection vouches for it (the put pool,
 * store_redis_pool.c). Vouched outcomes complete as a prefix of the held
 * ones: held in submission order, they complete in it too. A NOSCRIPT
 * resend takes a new wgen, so a WAIT sent before the resend never vouches
 * for it.
 *
 * One WAIT in flight per connection at most: WAIT blocks its connection
 * until it is satisfied or MS passes, and every command behind it waits;
 * with WAITs pipelined one per iteration, a replica that is down would
 * cost MS per iteration and the backlog would grow without end. One at a
 * time, the puts made while it waits share the next one (group commit, as
 * the SQLite thread's transactions), and a heartbeat waits at most about
 * MS (STORE_REDIS_WAIT_MS_MAX keeps that under the alive TTL).
 *
 * Invariants (sr_wait_check, part (12) of store_redis.c's), per connection
 * c (its wait_* fields, sr_conn_st):
 *  - wait off => nothing held, owed or in flight;
 *  - in flight <=> wait_seq > wait_done (the WAITs sent and handled), and
 *    at most one;
 *  - each held outcome of c not vouched for has wgen >= wait_done (older
 *    ones were vouched for) and a WAIT coming for it: wgen < wait_seq
 *    (sent) or one owed; a vouched one has wgen < wait_done;
 *  - the first held outcome not being completed is not vouched for (the
 *    vouched prefix completes at once);
 *  - owed and none in flight => the check handle is on (it sends it).
 */
#include "server/store_redis_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int sr_waiting(const store_redis *s) { return s->cfg.wait_replicas > 0; }

static void check_start(store_redis *s) {
    if (s->handles_closing) return;
    int rc = uv_check_start(&s->wchk, sr_on_wait_check);
    assert(rc == 0); /* fails only on a closing handle */
    (void)rc;
}

void sr_wait_note(store_redis *s, sr_req *r) {
    assert(r->kind == SR_PUT);
    if (!sr_waiting(s)) return;
    sr_conn_st *pc = &s->conns[r->conn];
    r->u.put.wgen = pc->wait_seq;
    pc->wait_owed = 1;
    if (!pc->wait_inflight) check_start(s);
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
                                    .status = st, .wgen = r->u.put.wgen,
                                    .conn = r->conn};
    return 1;
}

/* WAIT on connection c (owed, none in flight there). */
static void send_wait(store_redis *s, sr_conn_st *pc) {
    sr_req *r = sr_new(s, SR_WAIT, -1, 0);
    uint64_t k = ++pc->wait_seq;
    pc->wait_owed = 0;
    pc->wait_inflight = 1;
    if (!r) { /* (a failed WAIT, in its turn: its puts are not vouched for) */
        r = sr_fail(s, SR_WAIT, NULL, STORE_ENOMEM);
        r->u.wait.k = k;
        r->conn = pc->idx;
        return;
    }
    r->u.wait.k = k;
    r->conn = pc->idx;
    sr_args(r, "WAIT");
    sr_argu(r, s->cfg.wait_replicas);
    sr_argu(r, s->cfg.wait_ms);
    sr_submit(s, r);
}

void sr_on_wait_check(uv_check_t *h) {
    store_redis *s = h->data;
    /* (void): uv_check_stop cannot fail (returns 0) */
    (void)uv_check_stop(h);
    if (s->phase > SR_STOPPING) return;
    for (unsigned i = 0; i < s->nconns; i++) {
        sr_conn_st *pc = &s->conns[i];
        if (pc->wait_owed && !pc->wait_inflight) send_wait(s, pc);
    }
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
    sr_conn_st *pc = &s->conns[r->conn];
    assert(pc->wait_inflight && k == pc->wait_seq && k == pc->wait_done + 1);
    pc->wait_inflight = 0;
    pc->wait_done = k;
    int ok = (st == STORE_OK && rep && rep->type == REDIS_REPLY_INTEGER &&
             rep->integer >= (long long)s->cfg.wait_replicas);
    /* Vouch for this connection's outcomes that this WAIT covers (or
     * not), then mark the vouched prefix, complete it in the order it was
     * held, then drop it: the loop's callbacks may check the invariants
     * (marked ones are skipped) and queue puts (appended to the request
     * list: never held here). */
    size_t refused = 0;
    for (size_t i = 0; i < s->nheld; i++) {
        sr_held *h = &s->held[i];
        if (h->conn != r->conn || h->vouched || h->wgen >= k) continue;
        h->vouched = 1;
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
    size_t n = 0;
    while (n < s->nheld && s->held[n].vouched) s->held[n++].done = 1;
    for (size_t i = 0; i < n; i++) {
        const sr_held *h = &s->held[i];
        if (sr_active(s) && s->cb.put_done)
            s->cb.put_done(s->cb.ctx, h->token, h->seq, h->id, h->cid,
                           h->status);
    }
    /* (holding happens in sr_h_put only: nothing was added meanwhile) */
    if (n) memmove(s->held, s->held + n, (s->nheld - n) * sizeof *s->held);
    s->nheld -= n;
    if (pc->wait_owed) check_start(s);
    return SR_DONE;
}

void sr_wait_free(store_redis *s) {
    free(s->held);
    s->held = NULL;
    s->nheld = s->cheld = 0;
}

int sr_wait_check(const store_redis *s) {
    int owed_idle = 0;
    for (unsigned c = 0; c < s->nconns; c++) {
        const sr_conn_st *pc = &s->conns[c];
        if (!sr_waiting(s))
            assert(!pc->wait_owed && !pc->wait_inflight);
        assert(pc->wait_inflight == (pc->wait_seq > pc->wait_done));
        assert(pc->wait_seq - pc->wait_done <= 1);
        if (pc->wait_owed && !pc->wait_inflight) owed_idle = 1;
    }
    if (!sr_waiting(s)) assert(!s->nheld);
    int first = 1;
    for (size_t i = 0; i < s->nheld; i++) {
        const sr_held *h = &s->held[i];
        if (h->done) continue; /* (being completed: sr_h_wait) */
        assert(h->conn < s->nconns);
        const sr_conn_st *pc = &s->conns[h->conn];
        if (first) assert(!h->vouched);
        first = 0;
        if (h->vouched) {
            assert(h->wgen < pc->wait_done);
            continue;
        }
        assert(h->wgen >= pc->wait_done);
        assert(h->wgen < pc->wait_seq || pc->wait_owed);
        (void)pc;
    }
    assert(!owed_idle || s->handles_closing || s->phase > SR_STOPPING ||
           uv_is_active((const uv_handle_t *)&s->wchk));
    (void)owed_idle;
    (void)first;
    return 1;
}
