/*
 * store_redis_node.c -- the cluster store's periodic work on the command
 * connection (store_redis_int.h): the persistence check (docs/CLUSTER.md
 * 4.2), the heartbeat and the registration of the users this node holds
 * (6.5), the resync they may call for, and the janitor (2.6).
 */
#include "server/store_redis_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -- the persistence check (docs/CLUSTER.md 4.2) ---------------------------- */

static const char *const config_names[3] = {"appendonly", "appendfsync",
                                            "maxmemory-policy"};

void sr_persist_check(store_redis *s) {
    if (s->config_left) return; /* one in flight */
    s->config_bad = 0;
    s->cfg_aof[0] = s->cfg_fsync[0] = s->cfg_evict[0] = '\0';
    for (int i = 0; i < 3; i++) {
        sr_req *r = sr_new(s, SR_CONFIG, -1, 0);
        if (!r) continue; /* (the next check, or the next reconnect) */
        sr_args(r, "CONFIG");
        sr_args(r, "GET");
        sr_args(r, config_names[i]);
        r->u.config.which = i;
        s->config_left++;
        sr_submit(s, r);
    }
}

static void persist_log(store_redis *s, int state, int unchecked) {
    const char *peer = s->cmd ? rconn_peer(s->cmd) : "?";
    if (unchecked) {
        log_warn("cluster_persistence_unchecked",
                 "cluster: redis %s refused CONFIG GET, so its persistence "
                 "cannot be checked: acknowledgements are %s (%s)",
                 peer, state == SR_P_OK ? "granted" : "refused",
                 state == SR_P_OK
                     ? "--cluster-trust-persistence"
                     : "allow +config|get for this user, or give "
                       "--cluster-trust-persistence once you checked "
                       "appendonly yes and appendfsync always");
    } else if (state == SR_P_WEAK) {
        log_warn("cluster_persistence_weak",
                 "cluster: redis %s has %s: acknowledgements are refused; "
                 "set \"appendonly yes\", \"appendfsync always\" and "
                 "\"maxmemory-policy noeviction\" in redis.conf (or CONFIG "
                 "SET them, then CONFIG REWRITE)", peer, s->persist_why);
    } else {
        log_info("cluster_persistence_ok",
                 "cluster: redis %s has appendonly yes, appendfsync always "
                 "and maxmemory-policy noeviction: acknowledgements granted",
                 peer);
    }
}

static void persist_decide(store_redis *s) {
    int unchecked = s->config_bad == 2, state;
    if (s->config_bad == 1) return; /* a reply was lost: the next check */
    if (unchecked) {
        state = s->cfg.trust_persistence ? SR_P_OK : SR_P_WEAK;
        (void)snprintf(s->persist_why, sizeof s->persist_why,
                       "an unchecked persistence");
    } else {
        int aof = strcmp(s->cfg_aof, "yes") == 0;
        int fsync = strcmp(s->cfg_fsync, "always") == 0;
        int evict = strcmp(s->cfg_evict, "noeviction") == 0;
        state = aof && fsync && evict ? SR_P_OK : SR_P_WEAK;
        (void)snprintf(s->persist_why, sizeof s->persist_why,
                       "appendonly=%s appendfsync=%s maxmemory-policy=%s",
                       s->cfg_aof, s->cfg_fsync, s->cfg_evict);
    }
    s->persist = state;
    int logged = state + (unchecked ? 10 : 0);
    if (logged != s->persist_logged) {
        s->persist_logged = logged;
        persist_log(s, state, unchecked);
    }
}

int sr_h_config(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    assert(s->config_left > 0);
    s->config_left--;
    if (st != STORE_OK || rep->type != REDIS_REPLY_ARRAY ||
        rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        /* refused (an error reply, an empty answer: CONFIG renamed or not
         * allowed) or lost (no reply) */
        int refused = rep != NULL || (st == STORE_OK);
        if (refused) s->config_bad = 2;
        else if (s->config_bad == 0) s->config_bad = 1;
    } else {
        char *dst = r->u.config.which == 0   ? s->cfg_aof
                    : r->u.config.which == 1 ? s->cfg_fsync
                                             : s->cfg_evict;
        size_t cap = r->u.config.which == 2 ? sizeof s->cfg_evict
                                            : sizeof s->cfg_aof;
        (void)snprintf(dst, cap, "%.*s", (int)rep->element[1]->len,
                       rep->element[1]->str);
    }
    if (s->config_left == 0) persist_decide(s);
    return SR_DONE;
}

void sr_on_pers(uv_timer_t *t) {
    store_redis *s = t->data;
    if (sr_active(s) && s->cmd_up) sr_persist_check(s);
    SR_CHECK(s);
}

void sr_on_hb(uv_timer_t *t) {
    store_redis *s = t->data;
    if ((s->phase == SR_RUNNING || s->phase == SR_OPENING) && s->cmd_up) {
        sr_heartbeat_send(s);
        if (s->reg_dirty && sr_active(s)) sr_register_all(s);
        if (s->groups_stale && s->feed_up && !s->groups_loading)
            sr_groups_reload(s);
    }
    if ((s->phase == SR_RUNNING || s->phase == SR_OPENING) && s->feed &&
        rconn_get_state(s->feed) == RCONN_READY)
        sr_feed_subscribe(s);
    SR_CHECK(s);
}

/* -- the heartbeat and the users' registration (docs/CLUSTER.md 6.5) ---- */

void sr_heartbeat_send(store_redis *s) {
    if (s->hb_inflight || !s->node) return;
    sr_req *r = sr_new(s, SR_HEARTBEAT, REDIS_SCRIPT_HEARTBEAT, 1);
    if (!r) return; /* (the next tick) */
    sr_args(r, "chat:alive");
    sr_argu(r, s->node);
    sr_argu(r, s->cfg.alive_ttl_ms);
    s->hb_inflight = 1;
    sr_submit(s, r);
}

int sr_h_heartbeat(store_redis *s, sr_req *r, const redisReply *rep,
                   int st) {
    (void)r;
    s->hb_inflight = 0;
    if (st != STORE_OK || rep->type != REDIS_REPLY_ARRAY ||
        rep->elements != 3)
        return SR_DONE;
    int was_alive = sr_int(rep, 0) != 0;
    if (!s->alive) {
        s->alive = 1; /* the first: nobody registered yet */
        return SR_DONE;
    }
    if (!was_alive && s->phase == SR_RUNNING) {
        /* Every script took this node for dead meanwhile and may have taken
         * it out of its users' u:{U}:on sets: register them again, then
         * every connection fetches what the feed missed. */
        log_warn("cluster_node_expired",
                 "cluster: node %" PRIu32 " was taken for dead by redis %s "
                 "(no heartbeat for %u ms): registering its %zu users again; "
                 "their connections resync", s->node, rconn_peer(s->cmd),
                 s->cfg.alive_ttl_ms, s->users.count);
        s->resync_due = 1;
        if (s->reg_pending == 0) sr_register_all(s);
        else sr_maybe_resync(s);
        /* count changes were not published to it either: read them again,
         * after the registrations (later ones come by the feed) */
        sr_devices_forget(s);
        sr_devices_refresh(s);
    }
    return SR_DONE;
}

void sr_register_all(store_redis *s) {
    s->reg_dirty = 0;
    for (size_t i = 0; s->users.slots && i <= s->users.mask; i++) {
        uint32_t u = s->users.slots[i].key;
        if (!u) continue;
        if (sr_online_send(s, u, 1, 1) == 0) s->reg_pending++;
        /* (else reg_dirty is set: the next tick) */
    }
    uint32_t *drop = NULL;
    size_t n = 0;
    if (s->unreg.count && (drop = malloc(s->unreg.count * sizeof *drop))) {
        for (size_t i = 0; i <= s->unreg.mask; i++)
            if (s->unreg.slots[i].key) drop[n++] = s->unreg.slots[i].key;
        for (size_t i = 0; i < n; i++) {
            (void)u32map_del(&s->unreg, drop[i]); /* (its value is no
                                                      memory of ours) */
            (void)sr_online_send(s, drop[i], 0, 0); /* (a failure puts it
                                                       back in unreg) */
        }
    } else if (s->unreg.count) {
        s->reg_dirty = 1; /* (out of memory: the next tick) */
    }
    free(drop);
    sr_maybe_resync(s);
}

int sr_h_online(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    (void)rep;
    uint32_t u = r->u.user.user;
    if (r->u.user.reg) {
        assert(s->reg_pending > 0);
        s->reg_pending--;
    }
    if (st != STORE_OK && s->phase == SR_RUNNING) {
        if (r->u.user.on && u32map_get(&s->users, u)) {
            s->reg_dirty = 1;
        } else if (!r->u.user.on && !u32map_get(&s->users, u) &&
                   u32map_put(&s->unreg, u, (void *)1) != 0) {
            log_error("store_oom_unregister",
                      "cluster: out of memory: user %" PRIu32 " stays "
                      "registered on node %" PRIu32 " until it stops", u,
                      s->node);
        }
    }
    if (r->u.user.reg && s->reg_pending == 0) sr_maybe_resync(s);
    return SR_DONE;
}

void sr_maybe_resync(store_redis *s) {
    if (!s->resync_due || !sr_active(s) || !s->feed_up || !s->cmd_up ||
        s->groups_loading || s->reg_pending)
        return;
    s->resync_due = 0;
    s->cb.resync(s->cb.ctx);
}

/* -- the janitor (docs/CLUSTER.md 2.6) -------------------------------------- */

void sr_on_jan(uv_timer_t *t) {
    store_redis *s = t->data;
    if (sr_active(s) && s->cmd_up && !s->jan_inflight) {
        /* SET NX GET (Redis 7.0): nil when we took it, else its holder. The
         * lock is not renewed: when it lapses another node may run a slice
         * too, which is harmless (each slice is one script). */
        sr_req *r = sr_new(s, SR_JANITOR_LOCK, -1, 0);
        if (r) {
            sr_args(r, "SET");
            sr_args(r, "chat:janitor");
            sr_argu(r, s->node);
            sr_args(r, "NX");
            sr_args(r, "GET");
            sr_args(r, "PX");
            sr_args(r, "10000");
            s->jan_inflight = 1;
            sr_submit(s, r);
        }
    }
    SR_CHECK(s);
}

int sr_h_janitor_lock(store_redis *s, sr_req *r, const redisReply *rep,
                      int st) {
    (void)r;
    char me[16];
    int n = snprintf(me, sizeof me, "%" PRIu32, s->node);
    int mine = st == STORE_OK &&
               (rep->type == REDIS_REPLY_NIL ||
                (rep->type == REDIS_REPLY_STRING && rep->len == (size_t)n &&
                 memcmp(rep->str, me, (size_t)n) == 0));
    if (!mine || !sr_active(s)) {
        s->jan_inflight = 0;
        return SR_DONE;
    }
    sr_req *j = sr_new(s, SR_JANITOR, REDIS_SCRIPT_JANITOR, 3);
    if (!j) {
        s->jan_inflight = 0;
        return SR_DONE;
    }
    sr_args(j, "chat:janitor:scan");
    sr_args(j, "chat:alive");
    sr_args(j, "chat:gdirty");
    sr_argu(j, s->cfg.ttl_ms);
    sr_argu(j, s->cfg.history_ttl_ms);
    sr_argu(j, s->cfg.device_ttl_ms);
    sr_args(j, "100");  /* keys SCANned per slice */
    sr_args(j, "16");   /* group floors per slice */
    sr_submit(s, j);
    return SR_DONE;
}

int sr_h_janitor(store_redis *s, sr_req *r, const redisReply *rep, int st) {
    (void)r;
    s->jan_inflight = 0;
    if (st == STORE_OK && rep->type == REDIS_REPLY_ARRAY &&
        rep->elements == 7 && (sr_int(rep, 2) || sr_int(rep, 3)))
        log_debug("cluster_janitor",
                  "cluster: janitor slice: %lld keys, %lld messages purged, "
                  "%lld devices forgotten, %lld dead node entries, %lld "
                  "group entries floored", sr_int(rep, 1), sr_int(rep, 2),
                  sr_int(rep, 3), sr_int(rep, 4), sr_int(rep, 5));
    return SR_DONE;
}
