/*
 * store_redis_ops.c -- the cluster store's operations (store.h's contract,
 * store_redis.h's differences): each builds its script call as
 * docs/CLUSTER.md 2.7 says (KEYS, then ARGV) and submits it; each reply's
 * handler turns it into the store.h completion. The operations table is at
 * the end.
 *
 * Integers bound for a script are clamped to what it accepts (ids, times
 * and limits below 2^53: Lua numbers are doubles), so a caller's extreme
 * value is never a CHATARG error.
 */
#include "server/store_redis_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID UINT64_C(9007199254740991) /* 2^53 - 1 */

static uint64_t c53(uint64_t v) { return v > MAX_ID ? MAX_ID : v; }
static uint64_t c53s(int64_t v) { return v < 0 ? 0 : c53((uint64_t)v); }

/* -- put ---------------------------------------------------------------------- */

static int sr_put(store *st, const store_msg *m, int quota, void *token,
                  uint64_t seq) {
    store_redis *s = sr_of(st);
    if (!sr_active(s)) return STORE_EIO;
    uint32_t A = m->sender, B = m->receiver;
    uint64_t again = m->again ? c53(m->id) : 0;
    uint64_t again_ts = m->again ? c53s(m->ts) : 0;
    sr_req *r;
    if (B == 0) { /* a group message: gput.lua */
        if (!(r = sr_new(s, SR_PUT, REDIS_SCRIPT_GPUT, 6))) return STORE_ENOMEM;
        sr_argk(r, "g:{", m->grp, "}:m");
        sr_argk(r, "g:{", m->grp, "}:log");
        sr_argk2(r, "u:{", A, "}:cid:", m->sdev, "");
        sr_args(r, "chat:ids");
        sr_args(r, "chat:alive");
        sr_args(r, "chat:gdirty");
        sr_argu(r, A);
        sr_argu(r, m->grp);
        sr_argu(r, m->sdev);
        sr_argu(r, m->type);
        sr_argu(r, m->cid);
        sr_arg(r, m->body, m->len);
        sr_argu(r, s->cfg.dedup_ms);
        sr_argu(r, again);
        sr_argu(r, again_ts);
    } else { /* put.lua */
        if (!(r = sr_new(s, SR_PUT, REDIS_SCRIPT_PUT, 11))) return STORE_ENOMEM;
        uint32_t lo = A < B ? A : B, hi = A < B ? B : A;
        sr_argk(r, "u:{", B, "}:log");
        sr_argk(r, "u:{", B, "}");
        sr_argk(r, "u:{", A, "}:log");
        sr_argk2(r, "u:{", A, "}:cid:", m->sdev, "");
        sr_argk(r, "u:{", B, "}:on");
        sr_argk(r, "u:{", A, "}:on");
        sr_args(r, "chat:ids");
        sr_args(r, "chat:alive");
        sr_argk(r, "u:{", A, "}:ct");
        sr_argk(r, "u:{", B, "}:ct");
        sr_argk2(r, "cv:{", lo, "}:{", hi, "}");
        sr_argu(r, A);
        sr_argu(r, B);
        sr_argu(r, m->sdev);
        sr_argu(r, m->type);
        sr_argu(r, m->cid);
        sr_arg(r, m->body, m->len);
        sr_argu(r, quota != 0);
        sr_argu(r, c53(s->max_messages));
        sr_argu(r, c53(s->max_bytes));
        sr_argu(r, m->own != 0);
        sr_argu(r, s->cfg.dedup_ms);
        sr_argu(r, s->cfg.contacts != 0);
        sr_argu(r, s->cfg.history_ttl_ms != 0);
        sr_argu(r, m->grp);
        sr_argu(r, again);
        sr_argu(r, again_ts);
    }
    if (r->oom) {
        sr_discard(s, r);
        return STORE_ENOMEM;
    }
    r->token = token;
    r->conn = sr_put_conn(s, A); /* (one sender, one connection: order) */
    r->u.put.seq = seq;
    r->u.put.cid = m->cid;
    r->u.put.len = m->len;
    s->pending += m->len;
    sr_submit(s, r);
    SR_CHECK(s);
    return STORE_OK;
}

/* {status, id, how}: 0 stored (how 0), a known client id (1) or again and
 * there (2); -1 quota; -10, -11 a group put refused. */
int sr_h_put(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    assert(s->pending >= r->u.put.len);
    s->pending -= r->u.put.len;
    r->u.put.len = 0;
    uint64_t id = 0;
    if (st == STORE_OK) {
        int ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3;
        long long code = ok ? sr_int(rep, 0) : 1, v = sr_int(rep, 1);
        if (code == 0 && v > 0) {
            id = (uint64_t)v;
            st = s->persist == SR_P_OK ? STORE_OK : STORE_EWEAK;
        } else if (code == STORE_EQUOTA || code == STORE_GNOGROUP ||
                   code == STORE_GNOTMEMBER) {
            st = (int)code;
        } else { /* (a malformed reply) */
            st = STORE_EIO;
        }
    }
    s->stats.txns++;
    if (st == STORE_EIO || st == STORE_ENOMEM) s->stats.txn_failures++;
    metrics_hist_observe(&s->stats.txn_us, uv_hrtime() / 1000 - r->t_us);
    metrics_hist_observe(&s->stats.txn_writes, 1);
    if (sr_wait_hold(s, r, id, st)) return SR_DONE;
    if (sr_waiting(s) && st == STORE_OK) st = STORE_EREPLICAS; /* (no
                                     memory to hold it: never vouched) */
    if (sr_active(s) && s->cb.put_done)
        s->cb.put_done(s->cb.ctx, r->token, r->u.put.seq, id, r->u.put.cid,
                       st);
    return SR_DONE;
}

/* -- del, cursor, read marks, contacts: no completion ----------------------- */

int sr_h_quiet(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    (void)s;
    (void)r;
    (void)rep;
    (void)st; /* (an error reply was logged; a lost one is as a failed
                 transaction's: SQLite retries a delete, Redis's janitor
                 and the next cursor do the same work) */
    return SR_DONE;
}

static void sr_del(store *st, uint32_t user, uint64_t id) {
    store_redis *s = sr_of(st);
    if (!sr_active(s) || !user) return; /* (a group's log: the janitor) */
    sr_req *r = sr_new(s, SR_DEL, REDIS_SCRIPT_DEL, 2);
    if (!r) {
        log_error("store_oom_delete_lost",
                  "store: out of memory: the delete of message %" PRIu64
                  " is lost (it stays stored and may be delivered again)", id);
        return;
    }
    sr_argk(r, "u:{", user, "}:log");
    sr_argk(r, "u:{", user, "}");
    sr_argu(r, user);
    sr_argu(r, c53(id));
    sr_submit(s, r);
    SR_CHECK(s);
}

static void cursor_send(store_redis *s, uint32_t user, uint32_t dev,
                        uint64_t cursor, int closed) {
    sr_req *r = sr_new(s, SR_CURSOR, REDIS_SCRIPT_CURSOR, 4);
    if (!r) {
        log_error("store_oom_cursor",
                  "store: out of memory: a cursor of user %" PRIu32 " is not "
                  "saved (its messages may be delivered again)", user);
        return;
    }
    sr_argk(r, "u:{", user, "}");
    sr_argk(r, "u:{", user, "}:log");
    sr_argk(r, "u:{", user, "}:g");
    sr_args(r, "chat:gdirty");
    sr_argu(r, user);
    sr_argu(r, dev);
    sr_argu(r, c53(cursor));
    sr_argu(r, closed != 0);
    sr_argu(r, s->cfg.device_ttl_ms);
    r->u.cursor.user = user;
    r->u.cursor.dev = dev;
    r->u.cursor.cursor = cursor;
    sr_submit(s, r);
}

static void sr_cursor(store *st, uint32_t user, uint32_t dev,
                      uint64_t cursor, int closed) {
    store_redis *s = sr_of(st);
    if (!sr_active(s)) return;
    cursor_send(s, user, dev, cursor, closed);
    SR_CHECK(s);
}

/* {known, removed, more}: more 1 -> again (as a new request at the tail:
 * nothing waits for it). */
int sr_h_cursor(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    if (st == STORE_OK && sr_int(rep, 2) == 1 && sr_active(s))
        cursor_send(s, r->u.cursor.user, r->u.cursor.dev,
                    r->u.cursor.cursor, 0);
    return SR_DONE;
}

static void sr_read_mark(store *st, uint32_t user, uint32_t peer,
                         uint32_t group, uint64_t upto, int64_t ts) {
    store_redis *s = sr_of(st);
    if (!sr_active(s) || !user || (!peer && !group)) return;
    sr_req *r = sr_new(s, SR_READ_MARK, REDIS_SCRIPT_READ_MARK, 1);
    if (!r) {
        log_error("store_oom_read_mark",
                  "store: out of memory: a read mark of user %" PRIu32
                  " is lost", user);
        return;
    }
    sr_argk(r, "u:{", user, "}:rd");
    sr_argu(r, group ? 0 : peer);
    sr_argu(r, group);
    sr_argu(r, c53(upto));
    sr_argu(r, c53s(ts));
    sr_submit(s, r);
    SR_CHECK(s);
}

static void sr_contact(store *st, uint32_t a, uint32_t b) {
    store_redis *s = sr_of(st);
    /* contacts matter to presence checks, which --auth on makes */
    if (!sr_active(s) || !s->cfg.contacts || !a || !b || a == b) return;
    for (int i = 0; i < 2; i++) {
        uint32_t x = i ? b : a, y = i ? a : b;
        sr_req *r = sr_new(s, SR_CONTACT, -1, 0);
        if (!r) {
            log_error("store_oom_contact",
                      "store: out of memory: the contact of users %" PRIu32
                      " and %" PRIu32 " is not noted", a, b);
            return;
        }
        sr_args(r, "SADD");
        sr_argk(r, "u:{", x, "}:ct");
        sr_argu(r, y);
        sr_submit(s, r);
    }
    SR_CHECK(s);
}

/* -- fetch, history --------------------------------------------------------- */

static void fetch_args(store_redis *s, sr_req *r) {
    uint32_t u = r->u.fetch.user;
    sr_argk(r, "u:{", u, "}:log");
    sr_argk(r, "u:{", u, "}:g");
    sr_argu(r, u);
    sr_argu(r, r->u.fetch.dev);
    sr_argu(r, r->u.fetch.conv);
    sr_argu(r, c53(r->u.fetch.after));
    sr_argu(r, r->u.fetch.rows);
    sr_argu(r, r->u.fetch.bytes);
    sr_argu(r, s->cfg.ttl_ms);
}

static void sr_fetch(store *st, uint32_t user, uint32_t dev, int conv,
                     uint64_t after_id, uint32_t max_rows, uint32_t max_bytes,
                     void *token) {
    store_redis *s = sr_of(st);
    if (!sr_active(s)) return;
    sr_req *r = sr_new(s, SR_FETCH, REDIS_SCRIPT_FETCH, 2);
    if (!r) {
        sr_fail(s, SR_FETCH, token, STORE_ENOMEM);
        return;
    }
    r->token = token;
    r->u.fetch.user = user;
    r->u.fetch.dev = dev;
    r->u.fetch.conv = conv != 0;
    r->u.fetch.after = after_id;
    r->u.fetch.rows = max_rows;
    r->u.fetch.bytes = max_bytes;
    fetch_args(s, r);
    sr_submit(s, r);
    SR_CHECK(s);
}

/* rep's elements [from..) as rows into s->rows: their count, or -1 (a
 * malformed entry), -2 (out of memory). */
static long rows_of(store_redis *s, const redisReply *rep, size_t from) {
    size_t n = rep->elements - from;
    if (n > s->crows) {
        store_row *x = realloc(s->rows, n * sizeof *x);
        if (!x) return -2;
        s->rows = x;
        s->crows = n;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = rep->element[from + i];
        if (e->type != REDIS_REPLY_STRING ||
            sr_entry(e->str, e->len, &s->rows[i]))
            return -1;
    }
    return (long)n;
}

/* {more, next, entry...}; more 1 with no entry: the scan stopped on its
 * budget, go on after next (in place: the completion keeps its turn). */
int sr_h_fetch(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    long n = 0;
    int more = 0;
    if (st == STORE_OK) {
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2) {
            st = STORE_EIO;
        } else {
            more = sr_int(rep, 0) != 0;
            uint64_t next = (uint64_t)sr_int(rep, 1);
            n = rows_of(s, rep, 2);
            if (n < 0) {
                st = n == -2 ? STORE_ENOMEM : STORE_EIO;
                n = 0;
            } else if (more && n == 0 && sr_active(s)) {
                if (next <= r->u.fetch.after) {
                    st = STORE_EIO; /* (no progress: a broken reply) */
                } else {
                    r->u.fetch.after = next;
                    sr_reset_args(r, 2);
                    fetch_args(s, r);
                    return sr_resend(s, r);
                }
            }
        }
    }
    if (st != STORE_OK) n = 0, more = 0;
    if (sr_active(s) && s->cb.fetch_done)
        s->cb.fetch_done(s->cb.ctx, r->token, n ? s->rows : NULL, (size_t)n,
                         more, st);
    return SR_DONE;
}

static void sr_history(store *st, uint32_t user, uint32_t peer,
                       uint32_t group, uint64_t min_id, uint64_t before,
                       uint32_t max_rows, uint32_t max_bytes, void *token) {
    store_redis *s = sr_of(st);
    if (!sr_active(s)) return;
    sr_req *r = sr_new(s, SR_HISTORY, REDIS_SCRIPT_HISTORY, 1);
    if (!r) {
        sr_fail(s, SR_HISTORY, token, STORE_ENOMEM);
        return;
    }
    r->token = token;
    if (group) {
        sr_argk(r, "g:{", group, "}:log");
    } else {
        uint32_t lo = user < peer ? user : peer, hi = user < peer ? peer : user;
        sr_argk2(r, "cv:{", lo, "}:{", hi, "}");
    }
    sr_argu(r, c53(min_id));
    sr_argu(r, c53(before));
    sr_argu(r, max_rows);
    sr_argu(r, max_bytes);
    sr_argu(r, s->cfg.history_ttl_ms);
    sr_argu(r, s->cfg.ttl_ms);
    sr_submit(s, r);
    SR_CHECK(s);
}

/* {more, entry...} newest first. */
int sr_h_history(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    long n = 0;
    int more = 0;
    if (st == STORE_OK) {
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
            (n = rows_of(s, rep, 1)) < 0)
            st = STORE_EIO;
        else
            more = sr_int(rep, 0) != 0;
    }
    if (st != STORE_OK) n = 0, more = 0;
    if (sr_active(s) && s->cb.history_done)
        s->cb.history_done(s->cb.ctx, r->token, n ? s->rows : NULL,
                           (size_t)n, more, st);
    return SR_DONE;
}

/* -- devices ------------------------------------------------------------------- */

static void sr_device(store *st, uint32_t user, const char *name,
                      size_t namelen, int conv, void *token) {
    store_redis *s = sr_of(st);
    assert(namelen <= STORE_DEVICE_MAX);
    if (!sr_active(s)) return;
    sr_req *r = sr_new(s, SR_DEVICE, REDIS_SCRIPT_DEVICE, 5);
    if (!r) {
        sr_fail(s, SR_DEVICE, token, STORE_ENOMEM);
        return;
    }
    r->token = token;
    r->u.user.user = user;
    sr_argk(r, "u:{", user, "}");
    sr_argk(r, "u:{", user, "}:log");
    sr_argk(r, "u:{", user, "}:on");
    sr_args(r, "chat:devno");
    sr_args(r, "chat:alive");
    sr_argu(r, user);
    sr_arg(r, name, namelen);
    sr_argu(r, conv != 0);
    sr_argu(r, s->cfg.device_ttl_ms);
    sr_argu(r, s->cfg.dedup_ms);
    sr_submit(s, r);
    SR_CHECK(s);
}

static int cids_room(store_redis *s, size_t n) {
    if (n <= s->ccids) return 0;
    uint64_t *a = realloc(s->cids, n * sizeof *a);
    if (a) s->cids = a;
    uint64_t *b = realloc(s->cidids, n * sizeof *b);
    if (b) s->cidids = b;
    int64_t *c = realloc(s->cidts, n * sizeof *c);
    if (c) s->cidts = c;
    if (!a || !b || !c) return -1;
    s->ccids = n;
    return 0;
}

/* {dev, cursor, all, conv, created, cid1, id1, ...}. */
int sr_h_device(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    store_device_info d = {0};
    if (st == STORE_OK) {
        size_t ncid = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 5
                          ? (rep->elements - 5) / 2 : 0;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 5 ||
            (rep->elements - 5) % 2 || ncid > STORE_DEDUP_MAX) {
            st = STORE_EIO;
        } else if (cids_room(s, ncid)) {
            st = STORE_ENOMEM;
        } else {
            d.dev = (uint32_t)sr_int(rep, 0);
            d.cursor = (uint64_t)sr_int(rep, 1);
            d.all = (unsigned)sr_int(rep, 2);
            d.conv = (unsigned)sr_int(rep, 3);
            for (size_t i = 0; i < ncid; i++) {
                const redisReply *c = rep->element[5 + 2 * i];
                uint64_t id = (uint64_t)sr_int(rep, 6 + 2 * i);
                s->cids[i] = c->type == REDIS_REPLY_STRING
                                 ? strtoull(c->str, NULL, 10) : 0;
                s->cidids[i] = id;
                s->cidts[i] = (int64_t)(id / 1000) + STORE_ID_EPOCH_MS;
            }
            d.ncid = ncid;
            d.cids = ncid ? s->cids : NULL;
            d.cid_ts = ncid ? s->cidts : NULL;
            d.cid_ids = ncid ? s->cidids : NULL;
            sr_devices_set(s, r->u.user.user, d.all, d.conv);
        }
    }
    if (sr_active(s) && s->cb.device_done)
        s->cb.device_done(s->cb.ctx, r->token, st == STORE_OK ? &d : NULL,
                          st);
    return SR_DONE;
}

static void sr_devices(const store *st, uint32_t user, unsigned *all,
                       unsigned *conv) {
    const store_redis *s = sr_cof(st);
    const sr_user *u = u32map_get(&s->users, user);
    if (u && u->known) {
        *all = u->all;
        *conv = u->conv;
    } else {
        *all = *conv = STORE_REDIS_DEVICES_UNKNOWN;
    }
}

/* -- groups --------------------------------------------------------------------- */

static void sr_group(store *st, const store_group_op *op, void *token) {
    store_redis *s = sr_of(st);
    assert(op->namelen <= GROUPS_NAME_MAX);
    if (!sr_active(s)) return;
    sr_req *r = sr_new(s, SR_GROUP, REDIS_SCRIPT_GROUP, 3);
    if (!r) {
        sr_fail(s, SR_GROUP, token, STORE_ENOMEM);
        return;
    }
    r->token = token;
    sr_args(r, "chat:gids");
    sr_args(r, "chat:groups:all");
    sr_args(r, "chat:gdirty");
    sr_argu(r, op->op);
    sr_argu(r, op->op == STORE_G_CREATE ? 0 : op->group);
    sr_argu(r, op->actor);
    sr_arg(r, op->name ? op->name : "", op->name ? op->namelen : 0);
    sr_argu(r, c53(op->joined));
    sr_argu(r, c53(op->was));
    sr_argu(r, op->max_members > 65535 ? 65535 : op->max_members);
    for (size_t i = 0; i < op->nusers; i++) sr_argu(r, op->users[i]);
    sr_submit(s, r);
    SR_CHECK(s);
}

/* {status, group, snapshot}: the copy takes the snapshot before the
 * completion (store.h: "the loop's copy shows it already"). */
int sr_h_group(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    uint32_t group = 0;
    if (st == STORE_OK) {
        int ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
                 rep->element[2]->type == REDIS_REPLY_STRING;
        long long code = ok ? sr_int(rep, 0) : 1;
        if (code == 0 || (code <= STORE_GNOGROUP && code >= STORE_GFULL)) {
            st = (int)code;
            group = (uint32_t)sr_int(rep, 1);
            const redisReply *sn = rep->element[2];
            if (code == 0 && sn->len &&
                sr_group_snapshot(s, (const uint8_t *)sn->str, sn->len))
                st = STORE_EIO;
        } else { /* (a malformed reply) */
            st = STORE_EIO;
        }
    }
    if (sr_active(s) && s->cb.group_done)
        s->cb.group_done(s->cb.ctx, r->token, group, st);
    return SR_DONE;
}

static const groups *sr_groups(const store *st) { return &sr_cof(st)->grp; }

/* -- the rest of the table ----------------------------------------------------- */

static void sr_flush(store *st) {
    sr_pool_flush(sr_of(st));
}

static void sr_set_quota(store *st, uint64_t max_messages,
                         uint64_t max_bytes) {
    store_redis *s = sr_of(st);
    s->max_messages = max_messages;
    s->max_bytes = max_bytes;
}

static size_t sr_pending_bytes(const store *st) {
    return sr_cof(st)->pending;
}

static const store_stats *sr_stats_of(const store *st) {
    return &sr_cof(st)->stats;
}

/* The counts live in Redis (u:{U} qn/qb): not worth a round trip for the
 * logs and tests store_count serves (store_redis.h). */
static uint64_t sr_count(const store *st, uint32_t receiver) {
    (void)st;
    (void)receiver;
    return 0;
}

const store_ops store__redis_ops = {
    .put = sr_put,
    .del = sr_del,
    .fetch = sr_fetch,
    .device = sr_device,
    .cursor = sr_cursor,
    .history = sr_history,
    .group = sr_group,
    .read_mark = sr_read_mark,
    .marks = sr_marks,
    .contact = sr_contact,
    .presence = sr_presence,
    .groups = sr_groups,
    .devices = sr_devices,
    .flush = sr_flush,
    .set_quota = sr_set_quota,
    .pending_bytes = sr_pending_bytes,
    .stats_of = sr_stats_of,
    .count = sr_count,
    .next_id = NULL, /* ids are Redis's: put_done's */
    .ids_reserve = NULL,
    .shared = 1, /* (the nodes of a cluster) */
    .online = sr_online,
    .relay = sr_relay,
    .account = sr_account, /* store_redis_acct.c */
    .acks = store_redis_acks,
    .stop = sr_stop,
    .free = sr_free,
};
