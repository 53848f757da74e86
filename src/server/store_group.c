/*
 * store_group.c -- groups in the store (see store_int.h and
 * docs/PROTOCOL.md, "Groups").
 *
 * The store thread's copy of the groups (s->groups, groups.h) is the
 * authority: store_group's operations are checked against it and written
 * in the next transaction; each group they changed is then sent, whole,
 * to the loop's copy (s->lgroups) with the batch's results. A transaction
 * that fails reads the groups again from the database, so the copy never
 * says what the file does not.
 *
 * A group message is one row (receiver 0, grp = the group) for every
 * member. It is deleted when every member has it: the group's floor is
 * the least cursor of its members' devices seen within --device-ttl (a
 * member without one holds the group's messages back, as an offline
 * receiver does), and it is computed again, for the groups whose members'
 * cursors moved, in the transaction that moved them. Cost:
 * O(members x devices) per such group and transaction.
 */
#include "server/store_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* -- load, free, read again ----------------------------------------------- */

/* Every group and member from the database into gs (empty). */
static int load_into(store_sqlite *s, groups *gs, uint32_t *max_id,
                     int64_t *max_ord) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT id, name FROM groups", -1,
                                &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t id = (uint32_t)sqlite3_column_int64(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        rc = groups_create(gs, id, name ? name : "", name ? n : 0)
                 ? SQLITE_NOMEM : SQLITE_OK;
        if (id > *max_id) *max_id = id;
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_DONE && rc != SQLITE_OK) return rc;
    rc = sqlite3_prepare_v2(s->db, "SELECT grp, user, admin, joined, ord "
                            "FROM members ORDER BY grp, ord", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        chatgroup *g = groups_get(gs, (uint32_t)sqlite3_column_int64(st, 0));
        rc = SQLITE_OK;
        if (sqlite3_column_int64(st, 4) > *max_ord)
            *max_ord = sqlite3_column_int64(st, 4);
        if (g && groups_add(gs, g, (uint32_t)sqlite3_column_int64(st, 1),
                            sqlite3_column_int(st, 2),
                            (uint64_t)sqlite3_column_int64(st, 3)))
            rc = SQLITE_NOMEM;
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int store__group_load(store_sqlite *s) {
    uint32_t max = 0;
    int64_t ord = 0;
    int rc = load_into(s, &s->groups, &max, &ord);
    if (rc == SQLITE_OK) rc = load_into(s, &s->lgroups, &max, &ord);
    s->next_gid = max + 1;
    s->next_ord = ord + 1;
    assert(groups_check(&s->groups));
    return rc;
}

void store__group_free(store_sqlite *s) {
    groups_free(&s->groups);
    groups_free(&s->lgroups);
    free(s->gdirty);
    free(s->gchg);
}

int store__group_rollback(store_sqlite *s) {
    groups_free(&s->groups);
    groups_init(&s->groups);
    s->ngchg = 0;
    uint32_t max = 0;
    int64_t ord = 0;
    int rc = load_into(s, &s->groups, &max, &ord);
    if (rc != SQLITE_OK)
        log_error("store_groups_reload_failed",
                  "store: %s: cannot read the groups again after a failed "
                  "transaction (%s); group operations may be refused until "
                  "a restart", s->path, store__why(s, rc));
    return rc;
}

/* -- the operations --------------------------------------------------------- */

static int push_id(uint32_t **arr, size_t *n, size_t *cap, uint32_t id) {
    for (size_t i = 0; i < *n; i++)
        if ((*arr)[i] == id) return 0;
    if (RESERVE(*arr, *cap, *n + 1)) return -1;
    (*arr)[(*n)++] = id;
    return 0;
}

void store__group_touch(store_sqlite *s, uint32_t user) {
    const ugroups *u = groups_of(&s->groups, user);
    for (uint32_t i = 0; u && i < u->n; i++)
        if (push_id(&s->gdirty, &s->ngdirty, &s->cgdirty, u->ids[i]))
            log_error("store_oom_group_delete",
                      "store: out of memory: a group's messages are "
                      "deleted later than they could be");
}

int store__group_dirty(store_sqlite *s, uint32_t grp) {
    return push_id(&s->gdirty, &s->ngdirty, &s->cgdirty, grp) ? SQLITE_NOMEM
                                                               : SQLITE_OK;
}

/* Changed: publish it, and its floor may have moved. */
static int changed(store_sqlite *s, uint32_t id) {
    return push_id(&s->gchg, &s->ngchg, &s->cgchg, id) ||
                   push_id(&s->gdirty, &s->ngdirty, &s->cgdirty, id)
               ? SQLITE_NOMEM : SQLITE_OK;
}

/* Run st with ?1 = a and, when it has one, ?2 = b. */
static int exec2(sqlite3_stmt *st, int64_t a, int64_t b) {
    int rc = sqlite3_bind_int64(st, 1, a);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) > 1)
        rc = sqlite3_bind_int64(st, 2, b);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int put_group(store_sqlite *s, const chatgroup *g, int64_t now) {
    sqlite3_stmt *st = s->st_group_put;
    int rc = sqlite3_bind_int64(st, 1, g->id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, g->name, g->namelen, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, now);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A new member's row (next in the join order). */
static int put_member(store_sqlite *s, uint32_t grp, const gmember *m) {
    sqlite3_stmt *st = s->st_member_put;
    int rc = sqlite3_bind_int64(st, 1, grp);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, m->user);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 3, m->admin);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)m->joined);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 5, s->next_ord++);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Delete a group's messages with id <= floor older than cut. */
static int delete_upto(store_sqlite *s, uint32_t grp, uint64_t floor,
                       int64_t cut) {
    sqlite3_stmt *st = s->st_group_floor;
    int rc = sqlite3_bind_int64(st, 1, grp);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, floor > INT64_MAX ? INT64_MAX
                                                          : (int64_t)floor);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, cut);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        rc = store__ctrs_removed(s, (uint32_t)sqlite3_column_int64(st, 0),
                                 (uint64_t)sqlite3_column_int64(st, 1));
    (void)sqlite3_reset(st); /* repeats the step's error, in rc */
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Remove user from g (it is a member); the group goes with its last. */
static int remove_member(store_sqlite *s, chatgroup *g, uint32_t user) {
    int rc = exec2(s->st_member_del, g->id, user);
    if (rc != SQLITE_OK) return rc;
    uint32_t id = g->id;
    int empty = groups_remove(&s->groups, g, user);
    if ((rc = changed(s, id)) != SQLITE_OK) return rc;
    if (!empty) { /* an admin may have been made: its row says so */
        for (uint32_t i = 0; i < g->n && rc == SQLITE_OK; i++)
            if (g->m[i].admin) rc = exec2(s->st_member_admin, id, g->m[i].user);
        return rc;
    }
    groups_drop(&s->groups, g);
    rc = exec2(s->st_group_del, id, 0 /* (no ?2) */);
    return rc == SQLITE_OK ? delete_upto(s, id, UINT64_MAX, INT64_MAX) : rc;
}

/* Users of r not yet in g (0 and repeats skipped). */
static size_t newcomers(const chatgroup *g, const uint32_t *u, size_t n,
                        uint32_t actor) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!u[i] || u[i] == actor || (g && groups_member(g, u[i]) >= 0))
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = u[j] == u[i];
        k += !seen;
    }
    return k;
}

/* Add each user of u (not 0) to g. */
static int add_all(store_sqlite *s, chatgroup *g, const uint32_t *u, size_t n,
                   uint64_t joined) {
    for (size_t i = 0; i < n; i++) {
        if (!u[i] || groups_member(g, u[i]) >= 0) continue;
        if (groups_add(&s->groups, g, u[i], 0, joined)) return SQLITE_NOMEM;
        int rc = put_member(s, g->id, &g->m[g->n - 1]);
        if (rc != SQLITE_OK) return rc;
    }
    return changed(s, g->id);
}

int store__group_run(store_sqlite *s, batch *b, grp_req *r, int64_t now) {
    /* (gusers is NULL while no request of the batch named a user) */
    const uint32_t *u = r->nusers ? b->gusers + r->user0 : NULL;
    chatgroup *g = groups_get(&s->groups, r->group);
    int rc = SQLITE_OK;
    r->status = STORE_OK;
    if (r->op == STORE_G_CREATE) {
        if (1 + newcomers(NULL, u, r->nusers, r->actor) > r->max_members) {
            r->status = STORE_GFULL;
            return SQLITE_OK;
        }
        uint32_t id = s->next_gid;
        if (id == 0 || groups_create(&s->groups, id, r->name, r->namelen))
            return SQLITE_NOMEM;
        s->next_gid++;
        g = groups_get(&s->groups, id);
        r->group = id;
        if (groups_add(&s->groups, g, r->actor, 1, r->joined))
            return SQLITE_NOMEM;
        rc = put_group(s, g, now);
        if (rc == SQLITE_OK) rc = put_member(s, id, &g->m[0]);
        return rc == SQLITE_OK ? add_all(s, g, u, r->nusers, r->joined) : rc;
    }
    if (r->op == STORE_G_JOINED) { /* (no actor: the loop's own) */
        for (size_t i = 0; g && i < r->nusers && rc == SQLITE_OK; i++) {
            long k = groups_member(g, u[i]);
            if (k < 0 || g->m[k].joined != r->was) continue;
            g->m[k].joined = r->joined;
            sqlite3_stmt *st = s->st_member_joined;
            rc = sqlite3_bind_int64(st, 1, g->id);
            if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, u[i]);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)r->joined);
            if (rc == SQLITE_OK) rc = sqlite3_step(st);
            (void)sqlite3_reset(st); /* repeats the step's error, in rc */
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        return rc == SQLITE_OK && g ? changed(s, g->id) : rc;
    }
    long me = g ? groups_member(g, r->actor) : -1;
    int admin = me >= 0 && g->m[me].admin;
    int self_only = r->op == STORE_G_REMOVE && r->nusers == 1 &&
                    u[0] == r->actor; /* (u set: nusers is 1) */
    if (!g) r->status = STORE_GNOGROUP;
    else if (me < 0) r->status = STORE_GNOTMEMBER;
    else if (!admin && r->op != STORE_G_LEAVE && !self_only)
        r->status = STORE_GNOTADMIN;
    else if (r->op == STORE_G_ADD &&
             g->n + newcomers(g, u, r->nusers, r->actor) > r->max_members)
        r->status = STORE_GFULL;
    if (r->status != STORE_OK) return SQLITE_OK;
    switch (r->op) {
    case STORE_G_RENAME:
        groups_rename(g, r->name, r->namelen);
        rc = put_group(s, g, now);
        return rc == SQLITE_OK ? changed(s, g->id) : rc;
    case STORE_G_ADD:
        return add_all(s, g, u, r->nusers, r->joined);
    case STORE_G_REMOVE:
        for (size_t i = 0; i < r->nusers && rc == SQLITE_OK; i++) {
            g = groups_get(&s->groups, r->group); /* (gone with its last) */
            if (g && groups_member(g, u[i]) >= 0)
                rc = remove_member(s, g, u[i]);
        }
        return rc;
    default: /* STORE_G_LEAVE */
        return remove_member(s, g, r->actor);
    }
}

/* -- deletions ---------------------------------------------------------------- */

/* The id up to which every member of g has g's messages. */
static uint64_t floor_of(const store_sqlite *s, const chatgroup *g,
                         int64_t now) {
    uint64_t floor = UINT64_MAX;
    for (uint32_t i = 0; i < g->n; i++) {
        const gmember *m = &g->m[i];
        const devuser *u = store__dev_user(s, m->user);
        uint64_t low = UINT64_MAX;
        for (uint32_t k = 0; u && k < u->n; k++)
            if (store__dev_active(s, &u->v[k], now) && u->v[k].cursor < low)
                low = u->v[k].cursor;
        if (low == UINT64_MAX || low < m->joined) low = m->joined; /* (no
                                       device: held back from its joining) */
        if (low < floor) floor = low;
    }
    return floor;
}

int store__group_floors(store_sqlite *s, int64_t now) {
    int64_t cut = s->cfg.history_ttl_ms ? now - (int64_t)s->cfg.history_ttl_ms
                                        : INT64_MAX;
    for (size_t i = 0; i < s->ngdirty; i++) {
        const chatgroup *g = groups_get(&s->groups, s->gdirty[i]);
        if (!g || g->n == 0) continue;
        int rc = delete_upto(s, g->id, floor_of(s, g, now), cut);
        if (rc != SQLITE_OK) return rc; /* (kept dirty: tried again) */
    }
    s->ngdirty = 0;
    return SQLITE_OK;
}

/* -- the loop's copy ------------------------------------------------------------ */

int store__group_publish(store_sqlite *s, batch *b) {
    for (size_t i = 0; i < s->ngchg; i++) {
        const chatgroup *g = groups_get(&s->groups, s->gchg[i]);
        if (RESERVE(b->gsnap, b->cgsnap, b->ngsnap + 1) ||
            (g && RESERVE(b->gmem, b->cgmem, b->ngmem + g->n)))
            return -1;
        grp_snap *sn = &b->gsnap[b->ngsnap++];
        memset(sn, 0, sizeof *sn);
        sn->id = s->gchg[i];
        sn->mem0 = b->ngmem;
        if (!g) continue; /* gone */
        sn->n = g->n;
        sn->namelen = g->namelen;
        memcpy(sn->name, g->name, g->namelen);
        memcpy(b->gmem + b->ngmem, g->m, g->n * sizeof *g->m);
        b->ngmem += g->n;
    }
    s->ngchg = 0;
    return 0;
}

void store__group_apply(store_sqlite *s, const batch *b) {
    for (size_t i = 0; i < b->ngsnap; i++) {
        const grp_snap *sn = &b->gsnap[i];
        chatgroup *g = groups_get(&s->lgroups, sn->id);
        if (g) groups_drop(&s->lgroups, g);
        if (sn->n == 0) continue;
        if (groups_create(&s->lgroups, sn->id, sn->name, sn->namelen))
            goto nomem;
        g = groups_get(&s->lgroups, sn->id);
        for (uint32_t k = 0; k < sn->n; k++) {
            const gmember *m = &b->gmem[sn->mem0 + k];
            if (groups_add(&s->lgroups, g, m->user, m->admin, m->joined))
                goto nomem;
        }
    }
    assert(groups_check(&s->lgroups));
    return;
nomem: /* the loop then misses (part of) a group: it routes less */
    log_error("store_oom_group_copy",
              "store: out of memory: the loop's copy of a group is "
              "incomplete until it changes again");
}

