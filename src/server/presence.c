/* presence.c -- see presence.h. */
#include "server/presence.h"

#include <stdlib.h>

#include "common/log.h"
#include "proto/signal.h"
#include "server/close.h"
#include "server/groupops.h"
#include "server/output.h"

#define CONN_OF(n) DLIST_ENTRY(n, conn, node)

/* A SUBSCRIBE waiting for the store. */
typedef struct preq {
    conn *c;      /* one reference held */
    int again;    /* asked by presence_resync, not by the client */
    uint32_t num; /* a client's: c->pres_req when asked; the psubs it
                     added carry it (psub.req) until confirmed */
} preq;

static void refuse(conn *c, const char *what, const char *why) {
    CLOG(c, LOG_WARN, "signal_malformed",
         "refused: malformed %s; closing", what);
    c->hub->stats.refused++;
    close_finish(c, FRAME_ERR_PROTO, why);
}

static void state(conn *c, uint32_t user, int online, int64_t last_seen,
                  int own) {
    frame_presence p = {user, online ? FRAME_PRES_ONLINE : FRAME_PRES_OFFLINE,
                        online || last_seen < 0 ? 0 : (uint64_t)last_seen};
    uint8_t body[FRAME_PRESENCE_SIZE];
    frame_put_presence(body, &p);
    if (own) /* (an answer to its own SUBSCRIBE) */
        output_control(c, FRAME_PRESENCE, body, sizeof body);
    else
        (void)output_signal(c, 0, FRAME_PRESENCE, body, sizeof body);
}

/* Link s at the head of its user's watchers. 0, or -1 (out of memory). */
static int watch(hub *h, psub *s) {
    psub *head = u32map_get(&h->watchers, s->user);
    if (u32map_put(&h->watchers, s->user, s)) return -1;
    s->prev = NULL;
    s->next = head;
    if (head) head->prev = s;
    s->live = 1;
    return 0;
}

static void unwatch(hub *h, psub *s) {
    if (!s->live) return;
    if (s->next) s->next->prev = s->prev;
    if (s->prev) {
        s->prev->next = s->next;
    } else if (s->next) {
        (void)u32map_put(&h->watchers, s->user, s->next); /* (a present key:
                                                             cannot fail) */
    } else {
        (void)u32map_del(&h->watchers, s->user); /* (the value: s) */
    }
    s->live = 0;
}

/* Remove c's subscription at index i (order is not kept). */
static void drop(conn *c, uint32_t i) {
    psub *s = c->subs[i];
    unwatch(c->hub, s);
    free(s);
    c->subs[i] = c->subs[--c->nsubs];
}

static long find(const conn *c, uint32_t user) {
    for (uint32_t i = 0; i < c->nsubs; i++)
        if (c->subs[i]->user == user) return (long)i;
    return -1;
}

/* A new subscription, unconfirmed, of the SUBSCRIBE numbered req. */
static int add(conn *c, uint32_t user, uint32_t req) {
    if (c->nsubs == c->capsubs) {
        uint32_t cap = c->capsubs ? c->capsubs * 2 : 8;
        psub **p = realloc(c->subs, cap * sizeof *p);
        if (!p) return -1;
        c->subs = p;
        c->capsubs = cap;
    }
    psub *s = malloc(sizeof *s);
    if (!s) return -1;
    *s = (psub){NULL, NULL, c, user, req, 0};
    c->subs[c->nsubs++] = s;
    return 0;
}

/* Ask the store about users[0..n) for c (presence_done answers). 0, or -1
 * (out of memory: nothing asked). */
static int ask_store(conn *c, const uint32_t *users, size_t n, int again) {
    preq *t = malloc(sizeof *t);
    if (!t) return -1;
    *t = (preq){c, again, again ? 0 : c->pres_req};
    conn_ref(c); /* dropped in presence_done */
    store_presence(c->hub->store, c->user, users, n, c->hub->auth != NULL, t);
    return 0;
}

void presence_request(conn *c, const frame_c2s *f) {
    uint8_t op;
    uint16_t n;
    if (frame_parse_presence_req(f->body, f->len, &op, &n)) {
        refuse(c, "PRESENCE", "malformed PRESENCE: op 1 or 2, 1 to 256 user "
               "ids, none 0");
        return;
    }
    hub *h = c->hub;
    const uint8_t *ids = f->body + FRAME_PRESENCE_PRE;
    uint32_t users[FRAME_PRESENCE_USERS_MAX];
    size_t ask = 0;
    uint32_t req = ++c->pres_req; /* (wraps: 2^32 requests apart never
                                      overlap in flight) */
    for (uint16_t i = 0; i < n; i++) {
        uint32_t u = frame_rd32(ids + (size_t)4 * i);
        long at = find(c, u);
        if (op == FRAME_PRES_UNSUBSCRIBE) {
            if (at >= 0) drop(c, (uint32_t)at);
            continue;
        }
        if (at >= 0) {
            /* Subscribed already: its state again, once the store answers
             * (a client that lost signals SUBSCRIBEs again); one still
             * being subscribed gets it with that answer. */
            if (c->subs[at]->live) users[ask++] = u;
            continue;
        }
        if (c->nsubs >= h->cfg->max_subscriptions) {
            char why[FRAME_REASON_MAX];
            snprintf(why, sizeof why, "presence of user %u not subscribed: "
                     "%u subscriptions at most (--max-subscriptions)",
                     (unsigned)u, (unsigned)h->cfg->max_subscriptions);
            output_error(c, FRAME_ERR_DENIED, u, why);
            continue;
        }
        if (add(c, u, req)) {
            CLOG(c, LOG_ERROR, "conn_oom",
                 "out of memory subscribing; closing");
            close_abort(c);
            return;
        }
        users[ask++] = u;
    }
    if (ask && ask_store(c, users, ask, 0)) {
        CLOG(c, LOG_ERROR, "conn_oom", "out of memory subscribing; closing");
        close_abort(c);
    }
}

/* Every confirmed subscription of c asked again, 256 users a request. */
static int ask_again(conn *c) {
    uint32_t users[FRAME_PRESENCE_USERS_MAX];
    size_t n = 0;
    for (uint32_t i = 0; i < c->nsubs; i++) {
        if (!c->subs[i]->live) continue; /* (its first answer is coming) */
        users[n++] = c->subs[i]->user;
        if (n == FRAME_PRESENCE_USERS_MAX) {
            if (ask_store(c, users, n, 1)) return -1;
            n = 0;
        }
    }
    if (n && ask_store(c, users, n, 1)) return -1;
    return 0;
}

void presence_resync(hub *h) {
    for (dlink *k = dlist_first(&h->conns), *next; k; k = next) {
        next = dlist_next(&h->conns, k); /* (close_abort never frees c) */
        conn *c = DLIST_ENTRY(k, conn, all);
        if (c->sig && conn_bound(c) && c->nsubs && ask_again(c)) {
            CLOG(c, LOG_ERROR, "conn_oom",
                 "out of memory subscribing again; closing");
            close_abort(c);
        }
    }
}

void presence_done(void *token, const uint32_t *users, const uint8_t *allowed,
                   const int64_t *last_seen, const uint8_t *online, size_t n,
                   int status) {
    preq *t = token;
    conn *c = t->c;
    int again = t->again;
    uint32_t num = t->num;
    free(t);
    if (!conn_open(c) || !c->sig) {
        conn_unref(c);
        return;
    }
    hub *h = c->hub;
    if (status != STORE_OK && !again) { /* (asked again: nothing to say,
                                          the subscriptions stay) */
        char why[FRAME_REASON_MAX];
        /* (STORE_EIO's own words are about a write; this was a read) */
        snprintf(why, sizeof why, "presence not subscribed: %s",
                 status == STORE_EIO ? "the store could not be read"
                                     : store_strerror(status));
        output_error(c, FRAME_ERR_STORE, 0, why);
        /* The users this SUBSCRIBE added are dropped; those of another
         * one still in flight wait for its own answer, and confirmed ones
         * stay (docs/PROTOCOL.md, PRESENCE). */
        for (uint32_t i = c->nsubs; i-- > 0;)
            if (!c->subs[i]->live && c->subs[i]->req == num) drop(c, i);
    }
    for (size_t i = 0; i < n; i++) {
        long at = find(c, users[i]);
        if (at < 0) continue; /* (unsubscribed since) */
        if (!allowed[i]) { /* (also one subscribed before: no longer) */
            drop(c, (uint32_t)at);
            char why[FRAME_REASON_MAX];
            snprintf(why, sizeof why, "presence of user %u not subscribed: "
                     "you share no conversation with it", (unsigned)users[i]);
            output_error(c, FRAME_ERR_DENIED, users[i], why);
            continue;
        }
        if (!c->subs[at]->live && watch(h, c->subs[at])) {
            CLOG(c, LOG_ERROR, "conn_oom",
                 "out of memory subscribing; closing");
            close_abort(c);
            break;
        }
        state(c, users[i],
              online ? online[i] != 0
                     : router_first(h->router, users[i]) != NULL,
              last_seen[i], !again); /* (asked again: as a change) */
    }
    conn_unref(c);
}

void presence_changed_slow(hub *h, uint32_t user, int online) {
    for (psub *s = u32map_get(&h->watchers, user); s; s = s->next)
        if (conn_bound(s->c))
            state(s->c, user, online, hub_now_ms(h), 0);
}

void presence_conn_free(conn *c) {
    while (c->nsubs) drop(c, c->nsubs - 1);
    free(c->subs);
    c->subs = NULL;
    c->capsubs = 0;
}

void presence_typing(conn *c, const frame_c2s *f) {
    frame_typing t;
    if (frame_parse_typing(f->body, f->len, &t)) {
        refuse(c, "TYPING", "malformed TYPING: flags 0 or GROUP, a receiver, "
               "state 0 or 1");
        return;
    }
    hub *h = c->hub;
    const chatgroup *g = NULL;
    if (t.flags & FRAME_MSG_GROUP) {
        g = groups_get(store_groups(h->store), t.to);
        if (!g || groups_member(g, c->user) < 0) {
            char why[FRAME_REASON_MAX];
            groupops_reason(g ? STORE_GNOTMEMBER : STORE_GNOGROUP, t.to,
                            h->cfg, why, sizeof why);
            output_error(c, FRAME_ERR_GROUP, 0, why);
            return;
        }
    }
    uint32_t n = g ? g->n : 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t to = g ? g->m[i].user : t.to;
        if (to == c->user) continue; /* (not to the typist) */
        for (router_node *r = router_first(h->router, to); r; r = r->next) {
            conn *o = CONN_OF(r);
            if (o->sig && conn_bound(o))
                (void)output_signal(o, c->user, FRAME_TYPING, f->body,
                                    f->len);
        }
        /* (the cluster: its connections on other nodes) */
        store_relay(h->store, to, c->user, FRAME_TYPING, f->body, f->len);
    }
}
