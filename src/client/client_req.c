/*
 * client_req.c -- libchat's requests: group operations (GROUP frames) and
 * history (HISTORY frames), the table of the requests that wait for an
 * answer, and the answers (GROUPS, HISTORY pages, an ERROR whose ref names
 * a request) decoded for on_group and on_history. The public contract is
 * in include/chat.h ("Groups and history").
 *
 * A request lives in c->reqs from the call that writes its frame to the
 * connection's control output until its answer, its refusal or the end of
 * the connection; it is never sent twice. Invariants:
 * - Every entry is a request written on the current connection (lost()
 *   and chat_disconnect empty the table through chat__reqs_end), so an
 *   answer naming no entry is a server's error (CHAT_EPROTO).
 * - Numbers are CHAT__REQ_BASE + a 31-bit counter, distinct among the
 *   entries: an ERROR about a message (GROUP: not a member; QUOTA, STORE)
 *   names that message's number on the connection (counted from 1), so a
 *   ref of 2^31 or more that names an entry is that request's refusal,
 *   whatever its code (GROUP today; a server may refuse for other
 *   reasons).
 * - An entry leaves the table before its callback runs, so the callback may
 *   make new requests (or disconnect).
 * Decoded answers (LIST, MEMBERS, EVENT users, history pages) go into one
 * scratch buffer of the client, reused and grown as needed (it is bounded
 * by the largest frame accepted, options.max_recv).
 */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "common/buf.h"
#include "proto/frame.h"

_Static_assert((int)CHAT_GROUP_CREATE == (int)FRAME_GOP_CREATE &&
                   (int)CHAT_GROUP_MEMBERS == (int)FRAME_GOP_MEMBERS &&
                   (int)CHAT_GROUP_EVENT == (int)FRAME_GOP_EVENT &&
                   (int)CHAT_GROUP_LEFT == (int)FRAME_GEV_LEFT &&
                   CHAT_GROUP_NAME_MAX == FRAME_GROUP_NAME_MAX,
               "chat.h group values must match the codec");
_Static_assert(FRAME_C2S_HDR + FRAME_GROUP_PRE + 1 + CHAT_GROUP_NAME_MAX + 2 +
                       4 * CHAT_GROUP_USERS_MAX <= CHAT__OUT_LIMIT,
               "the largest GROUP frame must fit the control output");

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

static long req_find(const chat_client *c, uint32_t req) {
    for (unsigned i = 0; i < c->n_reqs; i++)
        if (c->reqs[i].req == req) return (long)i;
    return -1;
}

/* Remove entry i (order does not matter: O(1)). */
static chat__req req_take(chat_client *c, long i) {
    chat__req r = c->reqs[i];
    c->reqs[i] = c->reqs[--c->n_reqs];
    return r;
}

/* Can a request be made now? 0, CHAT_ESTATE or CHAT_EFULL. */
static int req_check(const chat_client *c) {
    if (c->state != CHAT_ST_READY || !c->conv_granted) return CHAT_ESTATE;
    if (c->n_reqs >= CHAT_REQUESTS_MAX) return CHAT_EFULL;
    return 0;
}

/* A number no waiting request has (there are at most CHAT_REQUESTS_MAX of
 * 2^31). */
static uint32_t req_number(chat_client *c) {
    for (;;) {
        uint32_t r = CHAT__REQ_BASE | (c->next_req++ & ~CHAT__REQ_BASE);
        if (req_find(c, r) < 0) return r;
    }
}

/* Room for a request's body of len bytes in the control output: 0 with
 * *body, CHAT_EFULL or CHAT_ENOMEM. */
static int req_frame(chat_client *c, uint8_t type, size_t len, uint8_t **body) {
    int r = chat__control_frame(c, type, (uint32_t)len, body);
    if (r == BUF_ELIMIT) return CHAT_EFULL;
    return r ? CHAT_ENOMEM : 0;
}

static void req_add(chat_client *c, uint32_t req, uint8_t op, uint32_t group,
                    uint32_t *req_out) {
    c->reqs[c->n_reqs++] = (chat__req){req, group, op};
    if (req_out) *req_out = req;
}

/* Tell the application that request r ended without an answer: err
 * CHAT_EREFUSED with the server's code and reason, or a lost connection.
 * Without the callback for its kind, a refusal goes to on_error. */
static void req_report(chat_client *c, const chat__req *r, int err, int code,
                       const char *reason, uint32_t reason_len) {
    if (r->op == CHAT__REQ_HISTORY && c->cb.on_history) {
        chat_history_page p = {.req = r->req, .err = err, .code = code,
                               .reason = reason, .reason_len = reason_len};
        c->cb.on_history(c, &p, c->ud);
    } else if (r->op != CHAT__REQ_HISTORY && c->cb.on_group) {
        chat_group_event e = {.op = r->op, .req = r->req, .group = r->group,
                              .err = err, .code = code, .reason = reason,
                              .reason_len = reason_len, .name = ""};
        c->cb.on_group(c, &e, c->ud);
    } else if (err == CHAT_EREFUSED && c->cb.on_error) {
        c->cb.on_error(c, code, 0, reason, reason_len, c->ud);
    }
}

int chat__req_refused(chat_client *c, const frame_error *e) {
    if (e->ref < CHAT__REQ_BASE || e->ref > UINT32_MAX) return 0;
    long i = req_find(c, (uint32_t)e->ref);
    if (i < 0) return 0;
    chat__req r = req_take(c, i);
    req_report(c, &r, CHAT_EREFUSED, e->code, (const char *)e->reason,
               e->reason_len);
    return 1;
}

void chat__reqs_end(chat_client *c, int err) {
    chat__req gone[CHAT_REQUESTS_MAX];
    unsigned n = c->n_reqs;
    memcpy(gone, c->reqs, n * sizeof gone[0]);
    c->n_reqs = 0; /* first: a callback may start a new connection */
    for (unsigned i = 0; err < 0 && i < n; i++)
        req_report(c, &gone[i], err, 0, "", 0);
}

/* At least n bytes of scratch (NULL: out of memory). */
static void *scratch(chat_client *c, size_t n) {
    if (n <= c->scratch_cap) return c->scratch;
    void *p = realloc(c->scratch, n);
    if (!p) return NULL;
    c->scratch = p;
    c->scratch_cap = n;
    return p;
}

/* ------------------------------------------------------------------ */
/* Group requests                                                      */
/* ------------------------------------------------------------------ */

/* Check a name (NUL-terminated, 1-64 bytes): its length, or -1. */
static int name_len(const char *name) {
    if (!name) return -1;
    size_t n = strnlen(name, CHAT_GROUP_NAME_MAX + 1);
    return n >= 1 && n <= CHAT_GROUP_NAME_MAX ? (int)n : -1;
}

/* Check users[0..n): at most CHAT_GROUP_USERS_MAX, at least `min`, no 0. */
static int users_ok(const uint32_t *users, size_t n, size_t min) {
    if (n < min || n > CHAT_GROUP_USERS_MAX || (n && !users)) return 0;
    for (size_t i = 0; i < n; i++)
        if (users[i] == 0) return 0;
    return 1;
}

/* Write a GROUP request (arguments checked) and record it. */
static int group_request(chat_client *c, uint8_t op, uint32_t group,
                         const char *name, size_t nlen, const uint32_t *users,
                         size_t n, uint32_t *req_out) {
    int rc = req_check(c);
    if (rc) return rc;
    uint8_t *body;
    rc = req_frame(c, FRAME_GROUP, frame_group_size(op, nlen, n), &body);
    if (rc) return rc;
    uint32_t req = req_number(c);
    frame_put_group(body, op, req, group, (const uint8_t *)name, (uint8_t)nlen,
                    users, (uint16_t)n);
    req_add(c, req, op, group, req_out);
    return 0;
}

int chat_group_create(chat_client *c, const char *name, const uint32_t *members,
                      size_t n, uint32_t *req_out) {
    int nl = name_len(name);
    if (!c || nl < 0 || !users_ok(members, n, 0)) return CHAT_EINVAL;
    return group_request(c, FRAME_GOP_CREATE, 0, name, (size_t)nl, members, n,
                         req_out);
}

int chat_group_rename(chat_client *c, uint32_t group, const char *name,
                      uint32_t *req_out) {
    int nl = name_len(name);
    if (!c || group == 0 || nl < 0) return CHAT_EINVAL;
    return group_request(c, FRAME_GOP_RENAME, group, name, (size_t)nl, NULL, 0,
                         req_out);
}

int chat_group_add(chat_client *c, uint32_t group, const uint32_t *users,
                   size_t n, uint32_t *req_out) {
    if (!c || group == 0 || !users_ok(users, n, 1)) return CHAT_EINVAL;
    return group_request(c, FRAME_GOP_ADD, group, NULL, 0, users, n, req_out);
}

int chat_group_remove(chat_client *c, uint32_t group, const uint32_t *users,
                      size_t n, uint32_t *req_out) {
    if (!c || group == 0 || !users_ok(users, n, 1)) return CHAT_EINVAL;
    return group_request(c, FRAME_GOP_REMOVE, group, NULL, 0, users, n, req_out);
}

int chat_group_leave(chat_client *c, uint32_t group, uint32_t *req_out) {
    if (!c || group == 0) return CHAT_EINVAL;
    return group_request(c, FRAME_GOP_LEAVE, group, NULL, 0, NULL, 0, req_out);
}

int chat_group_list(chat_client *c, uint32_t *req_out) {
    if (!c) return CHAT_EINVAL;
    return group_request(c, FRAME_GOP_LIST, 0, NULL, 0, NULL, 0, req_out);
}

int chat_group_members(chat_client *c, uint32_t group, uint32_t *req_out) {
    if (!c || group == 0) return CHAT_EINVAL;
    return group_request(c, FRAME_GOP_MEMBERS, group, NULL, 0, NULL, 0, req_out);
}

/* ------------------------------------------------------------------ */
/* GROUPS                                                              */
/* ------------------------------------------------------------------ */

/* LIST: the groups into scratch. 0, CHAT_EPROTO or CHAT_ENOMEM. */
static int decode_list(chat_client *c, const frame_groups *g, chat_group_event *e) {
    uint16_t n;
    if (frame_parse_group_list(g->args, g->args_len, &n)) return CHAT_EPROTO;
    chat_group_info *out = scratch(c, (size_t)n * sizeof *out + 1);
    if (!out) return CHAT_ENOMEM;
    uint32_t off = 2;
    for (uint16_t i = 0; i < n; i++) {
        frame_group_info fi;
        frame_group_list_next(g->args, &off, &fi);
        out[i].id = fi.id;
        out[i].admin = (fi.flags & FRAME_GROUP_ADMIN) != 0;
        out[i].members = fi.members;
        out[i].name_len = fi.name_len;
        memcpy(out[i].name, fi.name, fi.name_len);
        out[i].name[fi.name_len] = '\0';
    }
    e->groups = out;
    e->n_groups = n;
    return 0;
}

/* MEMBERS: the members into scratch. */
static int decode_members(chat_client *c, const frame_groups *g,
                          chat_group_event *e) {
    uint16_t n;
    if (frame_parse_group_members(g->args, g->args_len, &n)) return CHAT_EPROTO;
    chat_group_member *out = scratch(c, (size_t)n * sizeof *out + 1);
    if (!out) return CHAT_ENOMEM;
    for (uint16_t i = 0; i < n; i++) {
        uint8_t flags;
        frame_group_member(g->args, i, &out[i].user, &flags);
        out[i].admin = (flags & FRAME_GROUP_ADMIN) != 0;
    }
    e->members = out;
    e->n_members = n;
    return 0;
}

/* EVENT: the users, then the name (NUL-terminated), into scratch. */
static int decode_event(chat_client *c, const frame_groups *g, chat_group_event *e) {
    frame_group_event fe;
    if (frame_parse_group_event(g->args, g->args_len, &fe)) return CHAT_EPROTO;
    size_t users = (size_t)fe.count * sizeof(uint32_t);
    uint8_t *out = scratch(c, users + CHAT_GROUP_NAME_MAX + 1);
    if (!out) return CHAT_ENOMEM;
    uint32_t *u = (uint32_t *)(void *)out; /* (realloc's memory: aligned) */
    for (uint16_t i = 0; i < fe.count; i++) u[i] = frame_rd32(fe.users + (size_t)4 * i);
    char *name = (char *)out + users;
    memcpy(name, fe.name, fe.name_len);
    name[fe.name_len] = '\0';
    e->what = fe.what;
    e->by = fe.by;
    e->users = u;
    e->n_users = fe.count;
    e->name = name;
    e->name_len = fe.name_len;
    return 0;
}

int chat__handle_groups(chat_client *c, const frame_s2c *f) {
    frame_groups g;
    if (!c->conv_granted || frame_parse_groups(f->body, f->len, &g)) return CHAT_EPROTO;
    chat_group_event e = {.op = g.op, .req = g.req, .group = g.group,
                          .reason = "", .name = ""};
    long i = -1;
    if (g.op != FRAME_GOP_EVENT) { /* an answer: to a request of ours */
        i = req_find(c, g.req);
        if (i < 0 || c->reqs[i].op != g.op) return CHAT_EPROTO;
    }
    int rc = 0;
    if (g.op == FRAME_GOP_LIST) rc = decode_list(c, &g, &e);
    else if (g.op == FRAME_GOP_MEMBERS) rc = decode_members(c, &g, &e);
    else if (g.op == FRAME_GOP_EVENT) rc = decode_event(c, &g, &e);
    if (rc) return rc;
    if (i >= 0) (void)req_take(c, i); /* (the answer carries what it said) */
    if (c->cb.on_group) c->cb.on_group(c, &e, c->ud);
    return 0;
}

/* ------------------------------------------------------------------ */
/* History                                                             */
/* ------------------------------------------------------------------ */

_Static_assert((int)CHAT_HISTORY_USER == (int)FRAME_HISTORY_USER &&
                   (int)CHAT_HISTORY_GROUP == (int)FRAME_HISTORY_GROUP &&
                   CHAT_HISTORY_LIMIT_MAX == FRAME_HISTORY_MAX,
               "chat.h history values must match the codec");

int chat_history(chat_client *c, int kind, uint32_t peer, uint64_t before,
                 uint32_t limit, uint32_t *req_out) {
    if (!c || (kind != CHAT_HISTORY_USER && kind != CHAT_HISTORY_GROUP) ||
        peer == 0 || limit == 0 || limit > CHAT_HISTORY_LIMIT_MAX)
        return CHAT_EINVAL;
    int rc = req_check(c);
    if (rc) return rc;
    uint8_t *body;
    rc = req_frame(c, FRAME_HISTORY, FRAME_HISTORY_SIZE, &body);
    if (rc) return rc;
    uint32_t req = req_number(c);
    frame_put_history(body, req, (uint8_t)kind, peer, before, (uint16_t)limit);
    req_add(c, req, CHAT__REQ_HISTORY, kind == CHAT_HISTORY_GROUP ? peer : 0,
            req_out);
    return 0;
}

int chat__handle_page(chat_client *c, const frame_s2c *f) {
    frame_page pg;
    if (!c->conv_granted || frame_parse_page(f->body, f->len, &pg)) return CHAT_EPROTO;
    long i = req_find(c, pg.req);
    if (i < 0 || c->reqs[i].op != CHAT__REQ_HISTORY) return CHAT_EPROTO;
    chat_msg *msgs = scratch(c, (size_t)pg.count * sizeof *msgs + 1);
    if (!msgs) return CHAT_ENOMEM;
    uint32_t off = FRAME_PAGE_PRE;
    for (uint16_t k = 0; k < pg.count; k++) {
        frame_page_entry e;
        frame_page_next(f->body, &off, &e);
        if (e.len > c->max_recv) return CHAT_EPROTO; /* as for a MSG */
        msgs[k] = (chat_msg){e.id, e.sender, e.to, e.kind,
                             (e.flags & FRAME_MSG_OWN) != 0, e.time_ms,
                             e.payload, e.len,
                             (e.flags & FRAME_MSG_GROUP) ? e.to : 0};
    }
    chat__req r = req_take(c, i);
    chat_history_page p = {.req = r.req, .reason = "", .msgs = msgs,
                           .n = pg.count, .more = pg.more};
    if (c->cb.on_history) c->cb.on_history(c, &p, c->ud);
    return 0;
}
