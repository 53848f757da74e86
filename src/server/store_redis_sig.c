/*
 * store_redis_sig.c -- the cluster store's signals (store_redis_int.h):
 * the marks of a conversation and presence checks (read-only scripts, with
 * completions), a user's registration on this node (online.lua), and the
 * relay of control frames to a user's other nodes (relay.lua).
 */
#include "server/store_redis_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* -- marks, presence ----------------------------------------------------------- */

void sr_marks(store *st, uint32_t user, uint32_t peer, uint32_t group,
                     void *token) {
    store_redis *s = sr_of(st);
    if (!sr_active(s)) return;
    const chatgroup *g = group ? groups_get(&s->grp, group) : NULL;
    if (group && (!g || groups_member(g, user) < 0)) { /* not a member */
        sr_fail(s, SR_MARKS, token, STORE_OK);
        return;
    }
    size_t n = group ? g->n : 2;
    if (n > STORE_MARKS_MAX) n = STORE_MARKS_MAX;
    if (n == 0) { /* (a member makes it 1 at least: never) */
        sr_fail(s, SR_MARKS, token, STORE_OK);
        return;
    }
    unsigned chunks = (unsigned)((n + 255) / 256);
    assert(chunks >= 1 && chunks <= STORE_MARKS_MAX / 256);
    sr_macc *acc = calloc(1, sizeof *acc);
    store_mark *m = calloc(n, sizeof *m);
    sr_req *rs[STORE_MARKS_MAX / 256];
    unsigned made = 0;
    while (acc && m && made < chunks &&
           (rs[made] = sr_new(s, SR_MARKS, REDIS_SCRIPT_MARKS,
                              (int)(2 * (made + 1 < chunks
                                             ? 256 : n - (size_t)256 * made)))))
        made++;
    if (!acc || !m || made < chunks) {
        for (unsigned i = 0; i < made; i++) sr_discard(s, rs[i]);
        free(m);
        free(acc);
        sr_fail(s, SR_MARKS, token, STORE_ENOMEM);
        return;
    }
    *acc = (sr_macc){.m = m, .n = n, .left = chunks, .status = STORE_OK};
    char field[16];
    if (group) (void)snprintf(field, sizeof field, "g%" PRIu32, group);
    for (size_t i = 0; i < n; i++)
        m[i].user = group ? g->m[i].user : i == 0 ? peer : user;
    for (unsigned c = 0; c < chunks; c++) {
        sr_req *r = rs[c];
        size_t first = 256 * (size_t)c, k = c + 1 < chunks ? 256 : n - first;
        r->token = token;
        r->u.marks.acc = acc;
        r->u.marks.first = (uint32_t)first;
        r->u.marks.n = (uint32_t)k;
        for (size_t i = 0; i < k; i++) {
            sr_argk(r, "u:{", m[first + i].user, "}");
            sr_argk(r, "u:{", m[first + i].user, "}:rd");
        }
        for (size_t i = 0; i < k; i++) {
            if (!group)
                sr_argk(r, "u", i + first == 0 ? user : peer, "");
            else
                sr_args(r, field);
        }
        sr_submit(s, r);
    }
    SR_CHECK(s);
}

/* {d1, r1, t1, ...} for one chunk; the last one completes. */
int sr_h_marks(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    sr_macc *acc = r->u.marks.acc;
    if (!acc) { /* answered here (not a member) or out of memory */
        if (sr_active(s) && s->cb.marks_done)
            s->cb.marks_done(s->cb.ctx, r->token, NULL, 0, st);
        return SR_DONE;
    }
    r->u.marks.acc = NULL;
    size_t k = r->u.marks.n;
    if (st == STORE_OK &&
        (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 * k))
        st = STORE_EIO;
    if (st != STORE_OK) {
        if (acc->status == STORE_OK) acc->status = st;
    } else {
        for (size_t i = 0; i < k; i++) {
            store_mark *m = &acc->m[r->u.marks.first + i];
            m->delivered = (uint64_t)sr_int(rep, 3 * i);
            m->read = (uint64_t)sr_int(rep, 3 * i + 1);
            m->read_ts = (int64_t)sr_int(rep, 3 * i + 2);
        }
    }
    assert(acc->left > 0);
    if (--acc->left == 0) {
        int ok = acc->status == STORE_OK;
        if (sr_active(s) && s->cb.marks_done)
            s->cb.marks_done(s->cb.ctx, r->token, ok ? acc->m : NULL,
                             ok ? acc->n : 0, acc->status);
        free(acc->m);
        free(acc);
    }
    return SR_DONE;
}

void sr_presence(store *st, uint32_t user, const uint32_t *users,
                        size_t n, int check, void *token) {
    store_redis *s = sr_of(st);
    if (n > STORE_PRESENCE_MAX) n = STORE_PRESENCE_MAX; /* (store.h) */
    if (!sr_active(s)) return;
    sr_req *r = sr_new(s, SR_PRESENCE, REDIS_SCRIPT_PRESENCE, 2 + 2 * (int)n);
    uint32_t *copy = n ? malloc(n * sizeof *copy) : NULL;
    if (!r || (n && !copy)) {
        if (r) sr_discard(s, r);
        free(copy);
        sr_fail(s, SR_PRESENCE, token, STORE_ENOMEM);
        return;
    }
    if (n) memcpy(copy, users, n * sizeof *copy);
    r->token = token;
    r->u.pres.users = copy;
    r->u.pres.n = (uint32_t)n;
    sr_argk(r, "u:{", user, "}:ct");
    sr_argk(r, "u:{", user, "}:g");
    for (size_t i = 0; i < n; i++) {
        sr_argk(r, "u:{", users[i], "}");
        sr_argk(r, "u:{", users[i], "}:g");
    }
    sr_argu(r, user);
    sr_argu(r, check != 0);
    for (size_t i = 0; i < n; i++) sr_argu(r, users[i]);
    sr_submit(s, r);
    SR_CHECK(s);
}

/* {a1, s1, a2, s2, ...}. */
int sr_h_presence(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    size_t n = r->u.pres.n;
    if (st == STORE_OK && (rep->type != REDIS_REPLY_ARRAY ||
                           rep->elements != 3 * n))
        st = STORE_EIO;
    if (st == STORE_OK && n && !s->pallow) {
        s->pallow = malloc(STORE_PRESENCE_MAX * sizeof *s->pallow);
        s->pseen = malloc(STORE_PRESENCE_MAX * sizeof *s->pseen);
        s->ponline = malloc(STORE_PRESENCE_MAX * sizeof *s->ponline);
        if (!s->pallow || !s->pseen || !s->ponline) {
            free(s->pallow);
            free(s->pseen);
            free(s->ponline);
            s->pallow = NULL;
            s->pseen = NULL;
            s->ponline = NULL;
            st = STORE_ENOMEM;
        }
    }
    if (st == STORE_OK) {
        for (size_t i = 0; i < n; i++) {
            s->pallow[i] = sr_int(rep, 3 * i) != 0;
            s->pseen[i] = (int64_t)sr_int(rep, 3 * i + 1);
            s->ponline[i] = sr_int(rep, 3 * i + 2) != 0;
        }
    }
    int ok = st == STORE_OK && n;
    if (sr_active(s) && s->cb.presence_done)
        s->cb.presence_done(s->cb.ctx, r->token,
                            ok ? r->u.pres.users : NULL,
                            ok ? s->pallow : NULL, ok ? s->pseen : NULL,
                            ok ? s->ponline : NULL, st == STORE_OK ? n : 0,
                            st);
    return SR_DONE;
}

/* -- presence registration --------------------------------------------------- */

int sr_online_send(store_redis *s, uint32_t user, int on, int reg) {
    sr_req *r = sr_new(s, SR_ONLINE, REDIS_SCRIPT_ONLINE, 2);
    if (!r) {
        if (on) s->reg_dirty = 1; /* (the next tick registers it) */
        else if (s->phase == SR_RUNNING &&
                 u32map_put(&s->unreg, user, (void *)1))
            log_error("store_oom_unregister",
                      "cluster: out of memory: user %" PRIu32 " stays "
                      "registered on node %" PRIu32 " until it stops", user,
                      s->node);
        return -1;
    }
    sr_argk(r, "u:{", user, "}:on");
    sr_args(r, "chat:alive");
    sr_argu(r, user);
    sr_argu(r, s->node);
    sr_argu(r, on != 0);
    r->u.user.user = user;
    r->u.user.on = on != 0;
    r->u.user.reg = reg != 0;
    sr_submit(s, r);
    return 0;
}

/* On the command connection, so it precedes every fetch queued after it
 * (store.h). The cache entry lives while the user is held. */
void sr_online(store *st, uint32_t user, int on) {
    store_redis *s = sr_of(st);
    if (!sr_active(s) || !user) return;
    int fresh = 0;
    if (on) {
        if (!u32map_get(&s->users, user)) {
            fresh = 1;
            sr_user *u = calloc(1, sizeof *u);
            if (!u || u32map_put(&s->users, user, u)) {
                free(u);
                log_error("store_oom_register",
                          "cluster: out of memory: user %" PRIu32 " is not "
                          "registered on this node: its messages come only "
                          "by fetches", user);
                return;
            }
        }
        (void)u32map_del(&s->unreg, user); /* (its value is no memory) */
    } else {
        free(u32map_del(&s->users, user));
    }
    (void)sr_online_send(s, user, on, 0); /* (a failure is remembered) */
    /* The counts again, after the registration: a device created by
     * another node between this user's device lookup (which a CONV login
     * queues before) and its registration told only the nodes registered
     * then; from now on the feed tells this one. */
    if (fresh) (void)sr_devcount_send(s, user); /* (-1: stays as it is) */
    SR_CHECK(s);
}

/* relay.lua: to user's other nodes (this one told its own). */
void sr_relay(store *st, uint32_t user, uint32_t sender, uint8_t type,
                     const uint8_t *body, size_t len) {
    store_redis *s = sr_of(st);
    if (!sr_active(s) || !user || !s->cmd_up) return; /* (a hint: lost) */
    sr_req *r = sr_new(s, SR_RELAY, REDIS_SCRIPT_RELAY, 2);
    if (!r) return; /* (out of memory: a hint lost, nothing else) */
    sr_argk(r, "u:{", user, "}:on");
    sr_args(r, "chat:alive");
    sr_argu(r, user);
    sr_argu(r, s->node);
    sr_argu(r, sender);
    sr_argu(r, type);
    sr_arg(r, body, len);
    sr_submit(s, r);
    SR_CHECK(s);
}
