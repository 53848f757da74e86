/* groupops.c -- see groupops.h. */
#include "server/groupops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/close.h"
#include "server/output.h"

/* The ops (GROUP's first byte) and the events (GROUPS op 8). */
enum { OP_CREATE = 1, OP_RENAME, OP_ADD, OP_REMOVE, OP_LEAVE, OP_LIST,
       OP_MEMBERS, OP_EVENT };
enum { EV_CREATED = 1, EV_RENAMED, EV_ADDED, EV_REMOVED, EV_LEFT };

/* An LIST answer stops before this many bytes (it must fit what a control
 * frame may add to a full output queue, OUTPUT_CONTROL_SLACK). */
#define LIST_MAX ((size_t)60 * 1024)

/* A request waiting for the store. */
typedef struct gop {
    conn *c;                 /* one reference held */
    uint32_t actor, req, group;
    uint64_t joined;         /* what the request said (ADD) */
    uint8_t op, namelen;
    char name[GROUPS_NAME_MAX];
    uint16_t n;
    uint32_t users[];        /* n of them */
} gop;

void groupops_reason(int status, uint32_t group, const config *cfg,
                     char *out, size_t n) {
    switch (status) {
    case STORE_GNOGROUP: snprintf(out, n, "no group %u", (unsigned)group); break;
    case STORE_GNOTMEMBER:
        snprintf(out, n, "not a member of group %u", (unsigned)group);
        break;
    case STORE_GNOTADMIN:
        snprintf(out, n, "only the admins of group %u may do this",
                 (unsigned)group);
        break;
    case STORE_GFULL:
        snprintf(out, n, "a group has at most %u members "
                 "(--max-group-members)", (unsigned)cfg->max_group_members);
        break;
    default:
        snprintf(out, n, "group operation not done: %s",
                 store_strerror(status));
        break;
    }
}

static int malformed(conn *c, const char *why) {
    CLOG(c, LOG_WARN, "group_malformed",
         "refused: malformed GROUP (%s); closing", why);
    c->hub->stats.refused++;
    close_finish(c, FRAME_ERR_PROTO, "malformed GROUP");
    return -1;
}

/* The GROUPS prefix (op, req, group) into w. */
static void put_pre(uint8_t *w, uint8_t op, uint32_t req, uint32_t group) {
    w[0] = op;
    frame_wr32(w + 1, req);
    frame_wr32(w + 5, group);
}

static void answer(conn *c, uint8_t op, uint32_t req, uint32_t group,
                   const uint8_t *rest, size_t n) {
    uint8_t body[FRAME_GROUP_PRE + 256];
    if (n > sizeof body - FRAME_GROUP_PRE) return; /* (callers: small) */
    put_pre(body, op, req, group);
    if (n) memcpy(body + FRAME_GROUP_PRE, rest, n);
    output_control(c, FRAME_GROUPS, body, (uint32_t)(FRAME_GROUP_PRE + n));
}

static void refuse(conn *c, uint32_t req, uint32_t group, int status) {
    char why[FRAME_REASON_MAX];
    groupops_reason(status, group, c->hub->cfg, why, sizeof why);
    output_error(c, FRAME_ERR_GROUP, req, why);
}

/* LIST: the sender's groups, from the loop's copy. */
static void list(conn *c, uint32_t req) {
    const groups *gs = store_groups(c->hub->store);
    const ugroups *u = groups_of(gs, c->user);
    buf *o = &c->hub->scratch;
    o->len = 0;
    size_t need = FRAME_GROUP_PRE + 2 + (u ? u->n : 0) * (9u + GROUPS_NAME_MAX);
    if (buf_reserve(o, need, SIZE_MAX / 2)) {
        CLOG(c, LOG_ERROR, "conn_oom", "out of memory answering LIST; closing");
        close_abort(c);
        return;
    }
    uint8_t *w = o->data;
    put_pre(w, OP_LIST, req, 0);
    size_t at = FRAME_GROUP_PRE + 2;
    uint16_t count = 0;
    for (uint32_t i = 0; u && i < u->n && at < LIST_MAX; i++) {
        const chatgroup *g = groups_get(gs, u->ids[i]);
        long me = g ? groups_member(g, c->user) : -1;
        if (me < 0) continue;
        frame_wr32(w + at, g->id);
        w[at + 4] = g->m[me].admin;
        w[at + 5] = (uint8_t)(g->n >> 8);
        w[at + 6] = (uint8_t)g->n;
        w[at + 7] = g->namelen;
        memcpy(w + at + 8, g->name, g->namelen);
        at += 8u + g->namelen;
        count++;
    }
    w[FRAME_GROUP_PRE] = (uint8_t)(count >> 8);
    w[FRAME_GROUP_PRE + 1] = (uint8_t)count;
    output_control(c, FRAME_GROUPS, w, (uint32_t)at);
}

/* MEMBERS: a group's members, to its members. */
static void members(conn *c, uint32_t req, uint32_t group) {
    const chatgroup *g = groups_get(store_groups(c->hub->store), group);
    if (!g || groups_member(g, c->user) < 0) {
        refuse(c, req, group, g ? STORE_GNOTMEMBER : STORE_GNOGROUP);
        return;
    }
    buf *o = &c->hub->scratch;
    o->len = 0;
    if (buf_reserve(o, FRAME_GROUP_PRE + 2 + 5u * g->n, SIZE_MAX / 2)) {
        CLOG(c, LOG_ERROR, "conn_oom",
             "out of memory answering MEMBERS; closing");
        close_abort(c);
        return;
    }
    uint8_t *w = o->data;
    put_pre(w, OP_MEMBERS, req, group);
    w[FRAME_GROUP_PRE] = (uint8_t)(g->n >> 8);
    w[FRAME_GROUP_PRE + 1] = (uint8_t)g->n;
    size_t at = FRAME_GROUP_PRE + 2;
    for (uint32_t i = 0; i < g->n; i++, at += 5) {
        frame_wr32(w + at, g->m[i].user);
        w[at + 4] = g->m[i].admin;
    }
    output_control(c, FRAME_GROUPS, w, (uint32_t)at);
}

void groupops_request(conn *c, const frame_c2s *f) {
    const uint8_t *p = f->body, *end = f->body + f->len;
    if (f->len < FRAME_GROUP_PRE) {
        (void)malformed(c, "shorter than its prefix");
        return;
    }
    uint8_t op = p[0];
    uint32_t req = frame_rd32(p + 1), group = frame_rd32(p + 5);
    p += FRAME_GROUP_PRE;
    const uint8_t *name = NULL;
    uint8_t namelen = 0;
    uint16_t n = 0;
    const uint8_t *ids = NULL;
    int badname = 0; /* a name, but not of 1 to 64 bytes: refused */
    if (op == OP_CREATE || op == OP_RENAME) {
        if (p >= end || p[0] > end - p - 1) {
            (void)malformed(c, "its name's length passes the body");
            return;
        }
        badname = p[0] == 0 || p[0] > GROUPS_NAME_MAX;
        namelen = badname ? 0 : p[0];
        name = p + 1;
        p += 1 + p[0];
    }
    if (op == OP_CREATE || op == OP_ADD || op == OP_REMOVE) {
        if (end - p < 2 ||
            (size_t)(end - p - 2) != (size_t)4 * ((p[0] << 8) | p[1])) {
            (void)malformed(c, "the user count does not match the body");
            return;
        }
        n = (uint16_t)((p[0] << 8) | p[1]);
        ids = p + 2;
        p = end;
    }
    if (op < OP_CREATE || op > OP_MEMBERS || p != end) {
        (void)malformed(c, op < OP_CREATE || op > OP_MEMBERS
                               ? "unknown op" : "bytes after its arguments");
        return;
    }
    if (badname) {
        output_error(c, FRAME_ERR_GROUP, req, "a group's name is 1 to 64 "
                     "bytes of UTF-8");
        return;
    }
    if (op == OP_LIST) {
        list(c, req);
        return;
    }
    if (op == OP_MEMBERS) {
        members(c, req, group);
        return;
    }
    gop *t = malloc(sizeof *t + (size_t)n * sizeof t->users[0]);
    if (!t) {
        CLOG(c, LOG_ERROR, "conn_oom", "out of memory for a group operation; "
             "closing");
        close_abort(c);
        return;
    }
    *t = (gop){.c = c, .actor = c->user, .req = req, .group = group,
               .joined = hub_last_id(c->hub), .op = op, .namelen = namelen,
               .n = n};
    if (namelen) memcpy(t->name, name, namelen);
    for (uint16_t i = 0; i < n; i++)
        t->users[i] = frame_rd32(ids + (size_t)4 * i);
    static const uint8_t store_op[] = {
        [OP_CREATE] = STORE_G_CREATE, [OP_RENAME] = STORE_G_RENAME,
        [OP_ADD] = STORE_G_ADD, [OP_REMOVE] = STORE_G_REMOVE,
        [OP_LEAVE] = STORE_G_LEAVE};
    store_group_op so = {
        .op = store_op[op], .group = group, .actor = c->user,
        .name = t->name, .namelen = namelen, .users = t->users,
        .nusers = n, .joined = t->joined, /* (before the next) */
        .max_members = c->hub->cfg->max_group_members};
    conn_ref(c); /* dropped in groupops_done */
    store_group(c->hub->store, &so, t);
}

/* Tell the CONV connections of user about event body[0..n). */
static void tell(hub *h, uint32_t user, const uint8_t *body, size_t n) {
    for (router_node *r = router_first(h->router, user); r; r = r->next) {
        conn *c = DLIST_ENTRY(r, conn, node);
        if (c->conv && conn_open(c))
            output_control(c, FRAME_GROUPS, body, (uint32_t)n);
    }
    /* (the cluster: its connections on other nodes) */
    store_relay(h->store, user, 0, FRAME_GROUPS, body, n);
}

/* The event of a done operation, to the group's members and the users it
 * concerned. */
static void events(hub *h, const gop *t, uint32_t group) {
    static const uint8_t what_of[] = {
        [OP_CREATE] = EV_CREATED, [OP_RENAME] = EV_RENAMED,
        [OP_ADD] = EV_ADDED, [OP_REMOVE] = EV_REMOVED, [OP_LEAVE] = EV_LEFT};
    const chatgroup *g = groups_get(store_groups(h->store), group);
    const uint32_t *users = t->op == OP_LEAVE ? &t->actor : t->users;
    uint16_t n = t->op == OP_LEAVE ? 1 : t->op == OP_RENAME ? 0 : t->n;
    buf *o = &h->scratch;
    o->len = 0;
    if (buf_reserve(o, FRAME_GROUP_PRE + 8u + 4u * n + GROUPS_NAME_MAX,
                    SIZE_MAX / 2)) {
        log_error("group_event_lost",
                  "out of memory: a group event is not sent");
        return;
    }
    uint8_t *w = o->data;
    put_pre(w, OP_EVENT, 0, group);
    size_t at = FRAME_GROUP_PRE;
    w[at] = what_of[t->op];
    frame_wr32(w + at + 1, t->actor);
    w[at + 5] = (uint8_t)(n >> 8);
    w[at + 6] = (uint8_t)n;
    at += 7;
    for (uint16_t i = 0; i < n; i++, at += 4) frame_wr32(w + at, users[i]);
    uint8_t namelen = g ? g->namelen : t->namelen;
    w[at++] = namelen;
    memcpy(w + at, g ? g->name : t->name, namelen);
    at += namelen;
    for (uint32_t i = 0; g && i < g->n; i++) tell(h, g->m[i].user, w, at);
    if (t->op == OP_REMOVE || t->op == OP_LEAVE) /* (no longer members) */
        for (uint16_t i = 0; i < n; i++)
            if (!g || groups_member(g, users[i]) < 0) tell(h, users[i], w, at);
}

void groupops_done(void *token, uint32_t group, int status) {
    gop *t = token;
    if (!t) return; /* a STORE_G_JOINED (nothing waits for it) */
    conn *c = t->c;
    hub *h = c->hub;
    /* (a shared store, the cluster: stored messages reach members only
     * through its feed, in id order, each member's from the `joined` the
     * ADD set there: no message the loop routed meanwhile by its own copy
     * of the group to catch up with) */
    if (status == STORE_OK && t->op == OP_ADD && !h->shared) {
        /* The members added are routed to from now on (the loop's copy has
         * them): their messages start after the last id given, whatever
         * the request said (messages given while it was committed went to
         * the others only; none must reach a device of theirs later). */
        store_group_op so = {.op = STORE_G_JOINED, .group = group,
                             .users = t->users, .nusers = t->n,
                             .joined = hub_last_id(h), .was = t->joined};
        store_group(h->store, &so, NULL);
    }
    if (status == STORE_OK) {
        if (conn_open(c)) answer(c, t->op, t->req, group, NULL, 0);
        events(h, t, group);
        CLOG(c, LOG_DEBUG, "group_op_done",
             "group %u: operation %u done", (unsigned)group,
             (unsigned)t->op);
    } else if (conn_open(c)) {
        refuse(c, t->req, t->group, status);
    }
    free(t);
    conn_unref(c);
}
