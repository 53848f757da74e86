/* groups.c -- see groups.h. */
#include "server/groups.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void groups_init(groups *gs) {
    u32map_init(&gs->byid);
    u32map_init(&gs->byuser);
}

void groups_free(groups *gs) {
    for (size_t i = 0; gs->byid.slots && i <= gs->byid.mask; i++) {
        chatgroup *g = gs->byid.slots[i].val;
        if (!gs->byid.slots[i].key || !g) continue;
        free(g->m);
        free(g);
    }
    for (size_t i = 0; gs->byuser.slots && i <= gs->byuser.mask; i++) {
        ugroups *u = gs->byuser.slots[i].val;
        if (!gs->byuser.slots[i].key || !u) continue;
        free(u->ids);
        free(u);
    }
    u32map_free(&gs->byid);
    u32map_free(&gs->byuser);
}

chatgroup *groups_get(const groups *gs, uint32_t id) {
    return id ? u32map_get(&gs->byid, id) : NULL;
}

long groups_member(const chatgroup *g, uint32_t user) {
    for (uint32_t i = 0; i < g->n; i++)
        if (g->m[i].user == user) return (long)i;
    return -1;
}

const ugroups *groups_of(const groups *gs, uint32_t user) {
    return user ? u32map_get(&gs->byuser, user) : NULL;
}

void groups_rename(chatgroup *g, const char *name, size_t namelen) {
    if (namelen > GROUPS_NAME_MAX) namelen = GROUPS_NAME_MAX;
    memcpy(g->name, name, namelen);
    g->namelen = (uint8_t)namelen;
}

int groups_create(groups *gs, uint32_t id, const char *name, size_t namelen) {
    assert(id && !groups_get(gs, id));
    chatgroup *g = calloc(1, sizeof *g);
    if (!g) return -1;
    g->id = id;
    groups_rename(g, name, namelen);
    if (u32map_put(&gs->byid, id, g)) {
        free(g);
        return -1;
    }
    return 0;
}

/* Append id to user's list. 0 or -1. */
static int user_link(groups *gs, uint32_t user, uint32_t id) {
    ugroups *u = u32map_get(&gs->byuser, user);
    if (!u) {
        if (!(u = calloc(1, sizeof *u))) return -1;
        if (u32map_put(&gs->byuser, user, u)) {
            free(u);
            return -1;
        }
    }
    if (u->n == u->cap) {
        uint32_t cap = u->cap ? u->cap * 2 : 4;
        uint32_t *ids = realloc(u->ids, cap * sizeof *ids);
        if (!ids) return -1;
        u->ids = ids;
        u->cap = cap;
    }
    u->ids[u->n++] = id;
    return 0;
}

static void user_unlink(groups *gs, uint32_t user, uint32_t id) {
    ugroups *u = u32map_get(&gs->byuser, user);
    if (!u) return;
    for (uint32_t i = 0; i < u->n; i++)
        if (u->ids[i] == id) {
            u->ids[i] = u->ids[--u->n];
            break;
        }
    if (u->n == 0) {
        (void)u32map_del(&gs->byuser, user); /* (it is there) */
        free(u->ids);
        free(u);
    }
}

int groups_add(groups *gs, chatgroup *g, uint32_t user, int admin,
               uint64_t joined) {
    long i = groups_member(g, user);
    if (i >= 0) {
        if (admin) g->m[i].admin = 1;
        return 0;
    }
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 4;
        gmember *m = realloc(g->m, cap * sizeof *m);
        if (!m) return -1;
        g->m = m;
        g->cap = cap;
    }
    if (user_link(gs, user, g->id)) return -1;
    g->m[g->n++] = (gmember){joined, user, (uint8_t)(admin != 0)};
    return 0;
}

int groups_remove(groups *gs, chatgroup *g, uint32_t user) {
    long i = groups_member(g, user);
    if (i < 0) return g->n == 0;
    int was_admin = g->m[i].admin;
    /* keep the join order: the longest-standing member comes first */
    memmove(g->m + i, g->m + i + 1, (g->n - (size_t)i - 1) * sizeof *g->m);
    g->n--;
    user_unlink(gs, user, g->id);
    if (was_admin && g->n) {
        int any = 0;
        for (uint32_t k = 0; k < g->n && !any; k++) any = g->m[k].admin;
        if (!any) g->m[0].admin = 1;
    }
    return g->n == 0;
}

void groups_drop(groups *gs, chatgroup *g) {
    while (g->n) (void)groups_remove(gs, g, g->m[g->n - 1].user);
    (void)u32map_del(&gs->byid, g->id); /* (it is there) */
    free(g->m);
    free(g);
}

int groups_check(const groups *gs) {
#ifndef NDEBUG
    size_t links = 0;
    for (size_t i = 0; gs->byid.slots && i <= gs->byid.mask; i++) {
        const chatgroup *g = gs->byid.slots[i].val;
        if (!gs->byid.slots[i].key || !g) continue;
        assert(g->id == gs->byid.slots[i].key && g->n <= g->cap);
        assert(g->namelen <= GROUPS_NAME_MAX);
        int admins = 0;
        for (uint32_t k = 0; k < g->n; k++) {
            admins += g->m[k].admin;
            assert(groups_member(g, g->m[k].user) == (long)k);
            const ugroups *u = groups_of(gs, g->m[k].user);
            assert(u);
            int found = 0;
            for (uint32_t j = 0; j < u->n; j++) found += u->ids[j] == g->id;
            assert(found == 1);
        }
        assert(g->n == 0 || admins > 0);
        links += g->n;
    }
    size_t back = 0;
    for (size_t i = 0; gs->byuser.slots && i <= gs->byuser.mask; i++) {
        const ugroups *u = gs->byuser.slots[i].val;
        if (!gs->byuser.slots[i].key || !u) continue;
        assert(u->n > 0 && u->n <= u->cap);
        back += u->n;
    }
    assert(links == back);
#else
    (void)gs;
#endif
    return 1;
}
