/*
 * store_redis_feed.c -- the cluster store's feed (store_redis_int.h): the
 * second connection, subscribed to chat:node:<N> (this node's messages and
 * device counts), chat:groups (group snapshots) and chat:presence (a
 * user's first or last connection in the cluster), decoded and handed to
 * the loop; the node's copy of the groups (loaded at open and after every
 * feed gap, kept by the snapshots); the device-count cache of the users
 * this node holds.
 *
 * Feed messages (docs/CLUSTER.md 2.7), big-endian:
 *   \1 user u32, entry     a stored message for user's log -> live(user)
 *   \2 user u32, all u16, conv u16   user's device counts -> devices
 *   \3 group u32, entry    a group message -> live(0)
 *   \4 user u32, sender u32, type u8, body   a control frame -> relay
 * and on chat:groups a group's snapshot: version u64, group u32, namelen
 * u8, name, count u16, per member user u32, flags u8 (bit 0 admin),
 * joined u64; a deleted group has namelen 0 and count 0; on
 * chat:presence state u8 (1 online), user u32, ts i64 -> presence_event.
 *
 * Versions: a snapshot (or a loaded group) replaces the copy of its group
 * only when its version is higher; it is the whole group, so a version gap
 * costs nothing (no reload of that group is needed: the newer snapshot is
 * the group). What a gap in the FEED may have hidden (a group created or
 * deleted meanwhile) is found by the reload that follows every
 * resubscription: SMEMBERS chat:groups:all, then each group (HGETALL g:{G},
 * ZRANGE g:{G}:m WITHSCORES); groups the reload did not see and no
 * snapshot brought meanwhile are dropped at its end. A group deleted while
 * a reload runs keeps a tombstone (sr_gver.dead) until it ends, so that a
 * load read before the deletion cannot bring it back.
 */
#include "server/store_redis_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t be64(const uint8_t *p) {
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

int sr_entry(const char *p, size_t n, store_row *row) {
    const uint8_t *u = (const uint8_t *)p;
    if (n < SR_ENTRY_HDR || n - SR_ENTRY_HDR > UINT32_MAX) return -1;
    row->id = be64(u);
    row->sender = be32(u + 8);
    row->receiver = be32(u + 12);
    row->grp = be32(u + 16);
    row->type = u[20];
    row->sdev = be32(u + 21);
    row->ts = (int64_t)be64(u + 25);
    row->body = u + SR_ENTRY_HDR;
    row->len = (uint32_t)(n - SR_ENTRY_HDR);
    return 0;
}

/* -- the node's copy of the groups ------------------------------------------ */

/* Put group id at version v into the copy: members m[0..n) in join order,
 * or deleted (n 0 and namelen 0). Older or equal versions change nothing
 * (but count as seen by the reload that runs). */
static void group_put(store_redis *s, uint32_t id, uint64_t v,
                      const char *name, size_t namelen, const gmember *m,
                      size_t n) {
    sr_gver *gv = u32map_get(&s->gver, id);
    if (gv && v <= gv->v) {
        if (!gv->dead) gv->gen = s->gen;
        return;
    }
    chatgroup *g = groups_get(&s->grp, id);
    if (g) groups_drop(&s->grp, g);
    if (n == 0 && !s->groups_loading) { /* deleted: forgotten */
        free(u32map_del(&s->gver, id));
        return;
    }
    if (!gv) {
        if (!(gv = calloc(1, sizeof *gv)) || u32map_put(&s->gver, id, gv)) {
            free(gv);
            goto nomem;
        }
    }
    gv->v = v;
    gv->gen = s->gen;
    gv->dead = n == 0;
    if (n == 0) return; /* (a tombstone until the reload ends) */
    if (namelen > GROUPS_NAME_MAX) namelen = GROUPS_NAME_MAX;
    if (groups_create(&s->grp, id, name, namelen)) goto nomem;
    g = groups_get(&s->grp, id);
    for (size_t i = 0; i < n; i++)
        if (groups_add(&s->grp, g, m[i].user, m[i].admin, m[i].joined))
            goto nomem;
    return;
nomem: /* the copy misses (part of) a group until it changes again */
    log_error("store_oom_group_copy",
              "store: out of memory: the node's copy of group %" PRIu32
              " is incomplete until it changes again", id);
}

int sr_group_snapshot(store_redis *s, const uint8_t *p, size_t n) {
    if (n < 15) return -1;
    uint64_t v = be64(p);
    uint32_t id = be32(p + 8);
    size_t namelen = p[12];
    if (!id || namelen > GROUPS_NAME_MAX || n < 15 + namelen) return -1;
    const uint8_t *q = p + 13 + namelen;
    size_t count = (size_t)q[0] << 8 | q[1];
    q += 2;
    if ((size_t)(p + n - q) != count * 13) return -1;
    gmember *m = count ? malloc(count * sizeof *m) : NULL;
    if (count && !m) {
        log_error("store_oom_group_copy",
                  "store: out of memory: the node's copy of group %" PRIu32
                  " is stale until it changes again", id);
        return 0;
    }
    for (size_t i = 0; i < count; i++, q += 13)
        m[i] = (gmember){.user = be32(q), .admin = q[4] & 1,
                         .joined = be64(q + 5)};
    group_put(s, id, v, (const char *)p + 13, namelen, m, count);
    free(m);
    return 0;
}

/* The end of a reload: what it did not see goes (when it saw everything),
 * tombstones go. */
static void reload_end(store_redis *s, int complete) {
    uint32_t *drop = s->gver.count ? malloc(s->gver.count * sizeof *drop)
                                   : NULL;
    size_t n = 0;
    for (size_t i = 0; drop && i <= s->gver.mask; i++) {
        uint32_t id = s->gver.slots[i].key;
        const sr_gver *gv = s->gver.slots[i].val;
        if (id && (gv->dead || (complete && gv->gen != s->gen)))
            drop[n++] = id;
    }
    for (size_t i = 0; i < n; i++) {
        chatgroup *g = groups_get(&s->grp, drop[i]);
        if (g) groups_drop(&s->grp, g);
        free(u32map_del(&s->gver, drop[i]));
    }
    if (s->gver.count && !drop) complete = 0; /* (out of memory: again) */
    free(drop);
    s->groups_loading = 0;
    if (complete) {
        s->groups_loaded = 1;
        s->groups_stale = 0;
    } else {
        s->groups_stale = 1; /* the heartbeat's tick tries again */
    }
    sr_maybe_resync(s);
}

void sr_groups_reload(store_redis *s) {
    if (s->groups_loading) return;
    sr_req *r = sr_new(s, SR_GROUPS_ALL, -1, 0);
    if (!r) {
        s->groups_stale = 1;
        return;
    }
    sr_args(r, "SMEMBERS");
    sr_args(r, "chat:groups:all");
    s->groups_loading = 1;
    s->groups_stale = 0;
    s->gen++;
    s->gloads_left = 0;
    r->u.groups.gen = s->gen;
    sr_submit(s, r);
}

int sr_h_groups_all(store_redis *s, sr_req *r, const redisReply *rep,
                    int st) {
    (void)r;
    if (st != STORE_OK || rep->type != REDIS_REPLY_ARRAY) {
        reload_end(s, 0);
        return SR_DONE;
    }
    int failed = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        char *end = NULL;
        unsigned long id = e->type == REDIS_REPLY_STRING
                               ? strtoul(e->str, &end, 10) : 0;
        if (!id || id > UINT32_MAX || (end && *end)) continue;
        sr_gload *gl = calloc(1, sizeof *gl);
        sr_req *h = gl ? sr_new(s, SR_GROUP_HASH, -1, 0) : NULL;
        sr_req *m = h ? sr_new(s, SR_GROUP_MEMBERS, -1, 0) : NULL;
        if (!m) {
            free(gl);
            if (h) sr_submit_ready(s, h, STORE_ENOMEM); /* (recycled) */
            failed = 1;
            break;
        }
        gl->id = (uint32_t)id;
        h->u.gload.gl = gl;
        sr_args(h, "HGETALL");
        sr_argk(h, "g:{", id, "}");
        m->u.gload.gl = gl;
        sr_args(m, "ZRANGE");
        sr_argk(m, "g:{", id, "}:m");
        sr_args(m, "0");
        sr_args(m, "-1");
        sr_args(m, "WITHSCORES");
        s->gloads_left++;
        sr_submit(s, h);
        sr_submit(s, m);
    }
    if (failed) s->groups_stale = 1; /* the loads queued still run; the
                                        reload ends incomplete (no sweep) */
    if (s->gloads_left == 0) reload_end(s, !s->groups_stale);
    return SR_DONE;
}

int sr_h_group_hash(store_redis *s, sr_req *r, const redisReply *rep,
                    int st) {
    (void)s;
    sr_gload *gl = r->u.gload.gl;
    if (!gl) return SR_DONE; /* (the ENOMEM path of sr_h_groups_all) */
    gl->status = st;
    if (st != STORE_OK || rep->type != REDIS_REPLY_ARRAY) {
        if (st == STORE_OK) gl->status = STORE_EIO;
        return SR_DONE;
    }
    gl->exists = rep->elements > 0;
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *k = rep->element[i], *v = rep->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (k->len == 4 && memcmp(k->str, "name", 4) == 0) {
            gl->namelen = (uint8_t)(v->len > GROUPS_NAME_MAX ? GROUPS_NAME_MAX
                                                             : v->len);
            memcpy(gl->name, v->str, gl->namelen);
        } else if (k->len == 1 && k->str[0] == 'v') {
            gl->v = strtoull(v->str, NULL, 10);
        }
    }
    if (gl->exists && !(gl->hash = sr_reply_copy(rep)))
        gl->status = STORE_ENOMEM;
    return SR_DONE;
}

/* A member of a loading group, with its join order. */
typedef struct lmember {
    gmember m;
    uint64_t ord;
} lmember;

static int by_ord(const void *a, const void *b) {
    uint64_t x = ((const lmember *)a)->ord, y = ((const lmember *)b)->ord;
    return x < y ? -1 : x > y;
}

/* Field "<c>:<user>" of the hash: 1 with its value in *val. O(fields). */
static void hash_scan(const redisReply *h, lmember *ms, size_t n) {
    /* users are few per group (<= --max-group-members): index them by a
     * sorted copy would cost more code than this O(fields x log) pass */
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || k->len < 3 || k->str[1] != ':' ||
            (k->str[0] != 'a' && k->str[0] != 'o'))
            continue;
        uint32_t u = (uint32_t)strtoul(k->str + 2, NULL, 10);
        size_t lo = 0, hi = n; /* ms sorted by user */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ms[mid].m.user < u) lo = mid + 1;
            else hi = mid;
        }
        if (lo == n || ms[lo].m.user != u) continue;
        if (k->str[0] == 'a') ms[lo].m.admin = 1;
        else if (v->type == REDIS_REPLY_STRING)
            ms[lo].ord = strtoull(v->str, NULL, 10);
    }
}

static int by_user(const void *a, const void *b) {
    uint32_t x = ((const lmember *)a)->m.user,
             y = ((const lmember *)b)->m.user;
    return x < y ? -1 : x > y;
}

int sr_h_group_members(store_redis *s, sr_req *r, const redisReply *rep,
                       int st) {
    sr_gload *gl = r->u.gload.gl;
    r->u.gload.gl = NULL;
    if (!gl) return SR_DONE;
    int ok = gl->status == STORE_OK && st == STORE_OK &&
             rep->type == REDIS_REPLY_ARRAY;
    size_t n = ok ? rep->elements / 2 : 0;
    lmember *ms = n ? calloc(n, sizeof *ms) : NULL;
    if (n && !ms) ok = 0;
    if (ok && gl->exists && n) {
        for (size_t i = 0; i < n; i++) {
            const redisReply *u = rep->element[2 * i],
                             *sc = rep->element[2 * i + 1];
            ms[i].m.user = u->type == REDIS_REPLY_STRING
                               ? (uint32_t)strtoul(u->str, NULL, 10) : 0;
            ms[i].m.joined = sc->type == REDIS_REPLY_STRING
                                 ? (uint64_t)strtod(sc->str, NULL) : 0;
        }
        qsort(ms, n, sizeof *ms, by_user);
        hash_scan(gl->hash, ms, n);
        qsort(ms, n, sizeof *ms, by_ord);
        gmember *m = malloc(n * sizeof *m);
        if (m) {
            for (size_t i = 0; i < n; i++) m[i] = ms[i].m;
            group_put(s, gl->id, gl->v, gl->name, gl->namelen, m, n);
            free(m);
        } else {
            ok = 0;
        }
    }
    free(ms);
    sr_reply_free(gl->hash);
    free(gl);
    if (!ok) s->groups_stale = 1;
    assert(s->gloads_left > 0);
    if (--s->gloads_left == 0) reload_end(s, !s->groups_stale);
    return SR_DONE;
}

void sr_groups_free(store_redis *s) {
    for (size_t i = 0; s->gver.slots && i <= s->gver.mask; i++)
        if (s->gver.slots[i].key) free(s->gver.slots[i].val);
    u32map_free(&s->gver);
}

/* -- device counts ------------------------------------------------------------- */

void sr_devices_set(store_redis *s, uint32_t user, unsigned all,
                    unsigned conv) {
    sr_user *u = u32map_get(&s->users, user);
    if (!u) return;
    if (all > UINT16_MAX) all = UINT16_MAX;
    if (conv > all) conv = all;
    if (u->known && u->all == all && u->conv == conv) return;
    u->known = 1;
    u->all = (uint16_t)all;
    u->conv = (uint16_t)conv;
    if (sr_active(s) && s->cb.devices)
        s->cb.devices(s->cb.ctx, user, all, conv);
}

void sr_devices_forget(store_redis *s) {
    for (size_t i = 0; s->users.slots && i <= s->users.mask; i++)
        if (s->users.slots[i].key)
            ((sr_user *)s->users.slots[i].val)->known = 0;
}

int sr_devcount_send(store_redis *s, uint32_t user) {
    sr_req *r = sr_new(s, SR_DEVCOUNT, -1, 0);
    if (!r) return -1; /* (stays unknown: its messages are stored) */
    sr_args(r, "HGETALL");
    sr_argk(r, "u:{", user, "}");
    r->u.user.user = user;
    sr_submit(s, r);
    return 0;
}

void sr_devices_refresh(store_redis *s) {
    for (size_t i = 0; s->users.slots && i <= s->users.mask; i++) {
        uint32_t u = s->users.slots[i].key;
        if (u && sr_devcount_send(s, u)) return;
    }
}

/* u:{U}'s fields d:<dev> -> cursor u64, seen i64, flags u8 (bit 0 CONV),
 * ... (lib/devices.lua). */
int sr_h_devcount(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    if (st != STORE_OK || rep->type != REDIS_REPLY_ARRAY) return SR_DONE;
    unsigned all = 0, conv = 0;
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *k = rep->element[i], *v = rep->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || k->len < 2 ||
            memcmp(k->str, "d:", 2) != 0 || v->type != REDIS_REPLY_STRING ||
            v->len < 17)
            continue;
        all++;
        if ((uint8_t)v->str[16] & 1) conv++;
    }
    /* A count read here may be older than a count event the feed (another
     * connection) already applied: a known count is only raised by it (a
     * device forgotten meanwhile costs stored own copies until the next
     * gap resets the counts, never a lost one). */
    sr_user *u = u32map_get(&s->users, r->u.user.user);
    if (u && u->known) {
        if (all < u->all) all = u->all;
        if (conv < u->conv) conv = u->conv;
    }
    sr_devices_set(s, r->u.user.user, all, conv);
    return SR_DONE;
}

/* -- the feed connection -------------------------------------------------------- */

static void on_subscribed(void *ud, const redisReply *rep, int status) {
    store_redis *s = ud;
    s->feed_sub = 0;
    if (s->phase != SR_OPENING && s->phase != SR_RUNNING) return;
    if (status != RCONN_OK || rep->type == REDIS_REPLY_ERROR) {
        SR_CHECK(s); /* (the feed goes down, or stays useless: the next
                        on_ready subscribes again) */
        return;
    }
    s->feed_up = 1;
    if (s->feed_down_ms && s->phase == SR_RUNNING)
        log_info("cluster_feed_back",
                 "cluster: the feed from redis %s is back after %.1f s: "
                 "connections resync", rconn_peer(s->feed),
                 (double)(uv_now(s->loop) - s->feed_down_ms) / 1000.0);
    s->feed_down_ms = 0;
    s->groups_stale = 1;
    if (s->cmd_up) {
        sr_groups_reload(s);
        sr_devices_refresh(s);
    }
    sr_maybe_resync(s);
    SR_CHECK(s);
}

void sr_feed_subscribe(store_redis *s) {
    if (s->feed_sub || s->feed_up) return;
    char chan[32];
    int n = snprintf(chan, sizeof chan, "chat:node:%" PRIu32, s->node);
    const char *argv[4] = {"SUBSCRIBE", chan, "chat:groups",
                           "chat:presence"};
    size_t lens[4] = {9, (size_t)n, 11, 13};
    /* refused (out of memory): the heartbeat's tick tries again */
    if (rconn_command(s->feed, 4, argv, lens, on_subscribed, s) == 0)
        s->feed_sub = 1;
}

void sr_feed_on_ready(void *ud) {
    store_redis *s = ud;
    if (s->phase != SR_OPENING && s->phase != SR_RUNNING) return;
    sr_feed_subscribe(s);
    SR_CHECK(s);
}

void sr_feed_on_down(void *ud, const char *reason) {
    store_redis *s = ud;
    if (s->phase != SR_OPENING && s->phase != SR_RUNNING) return;
    s->feed_up = 0;
    sr_devices_forget(s); /* (unseen changes now: stored until refreshed) */
    if (s->phase == SR_RUNNING) {
        s->resync_due = 1;
        s->feed_down_ms = uv_now(s->loop);
        log_warn("cluster_feed_down",
                 "cluster: the feed from redis is down: %s; messages for "
                 "this node's users may be missed until it is back (then "
                 "their connections resync)", reason);
    }
    SR_CHECK(s);
}

void sr_feed_on_push(void *ud, const redisReply *rep) {
    store_redis *s = ud;
    if ((s->phase != SR_OPENING && s->phase != SR_RUNNING) ||
        rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[0]->len != 7 ||
        memcmp(rep->element[0]->str, "message", 7) != 0 ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *ch = rep->element[1], *pl = rep->element[2];
    const uint8_t *p = (const uint8_t *)pl->str;
    size_t n = pl->len;
    int bad = 0;
    if (ch->len == 11 && memcmp(ch->str, "chat:groups", 11) == 0) {
        bad = sr_group_snapshot(s, p, n);
    } else if (ch->len == 13 && memcmp(ch->str, "chat:presence", 13) == 0) {
        /* state u8 (1 online, 0 offline), user u32, ts i64 */
        bad = n != 13 || p[0] > 1;
        if (!bad && sr_active(s) && s->cb.presence_event)
            s->cb.presence_event(s->cb.ctx, be32(p + 1), p[0],
                                 (int64_t)be64(p + 5));
    } else if (n >= 9 && p[0] == 2) {
        sr_devices_set(s, be32(p + 1), (unsigned)p[5] << 8 | p[6],
                       (unsigned)p[7] << 8 | p[8]);
    } else if (n >= 10 && p[0] == 4) { /* user, sender, type, body */
        if (sr_active(s) && s->cb.relay && u32map_get(&s->users, be32(p + 1)))
            s->cb.relay(s->cb.ctx, be32(p + 1), be32(p + 5), p[9], p + 10,
                        n - 10);
    } else if (n >= 5 && (p[0] == 1 || p[0] == 3)) {
        store_row row;
        uint32_t who = be32(p + 1);
        bad = sr_entry(pl->str + 5, n - 5, &row);
        /* While a resync is due (a gap in the feed, or this node taken for
         * dead), a message is not handed on: a connection still LIVE would
         * move its cursor past what the gap hid, and the resync's fetch
         * (queued after this message was committed) brings it anyway. */
        if (!bad && sr_active(s) && !s->resync_due) {
            if (p[0] == 3) s->cb.live(s->cb.ctx, 0, &row);
            else if (u32map_get(&s->users, who))
                s->cb.live(s->cb.ctx, who, &row);
        }
    } else {
        bad = 1;
    }
    if (bad) {
        unsigned long long quiet;
        if (log_limit_pass(&s->err_limit, uv_now(s->loop), &quiet))
            log_warn("cluster_feed_malformed",
                     "cluster: a malformed message of %zu bytes on %.*s was "
                     "dropped (%llu more not logged in the last second)", n,
                     (int)ch->len, ch->str, quiet);
    }
    SR_CHECK(s);
}

/* (9) and (10) of store_redis.c. */
int sr_feed_check(const store_redis *s) {
    assert(groups_check(&s->grp));                                     /* (9) */
    for (size_t i = 0; s->grp.byid.slots && i <= s->grp.byid.mask; i++) {
        uint32_t id = s->grp.byid.slots[i].key;
        if (!id) continue;
        const sr_gver *gv = u32map_get(&s->gver, id);
        assert(gv && !gv->dead);
        (void)gv;
    }
    assert(!s->gloads_left || s->groups_loading);
    for (size_t i = 0; s->users.slots && i <= s->users.mask; i++) { /* (10) */
        uint32_t u = s->users.slots[i].key;
        if (!u) continue;
        const sr_user *x = s->users.slots[i].val;
        assert(!u32map_get(&s->unreg, u));
        assert(!x->known || x->conv <= x->all);
        (void)x;
    }
    return 1;
}
