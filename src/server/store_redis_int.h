/*
 * store_redis_int.h -- the cluster store's insides (store_redis.h), shared
 * by its files, nothing else includes it:
 *
 *   store_redis.c       the node: open, the lifecycle (phases below), the
 *                       command connection's hooks, scripts, node id,
 *                       stop, free, the invariants
 *   store_redis_node.c  its periodic work: persistence check, heartbeat,
 *                       presence registration, resync, janitor
 *   store_redis_q.c     requests: building a command, sending it, the
 *                       ordered list of requests and their completion in
 *                       submission order (parking replies that come early),
 *                       NOSCRIPT reload-and-retry, deferred failures
 *   store_redis_ops.c   the store.h operations and their replies
 *   store_redis_feed.c  the feed connection (live messages, device counts,
 *                       group snapshots), the node's copy of the groups and
 *                       its device-count cache
 *   store_redis_acct.c  the accounts: store_account (a password hash read
 *                       for a login, --auth on)
 *   store_redis_wait.c  --cluster-wait: WAIT after the puts, their
 *                       completions held until it answered
 *   store_redis_pool.c  the put connections beyond the first (conns > 1):
 *                       made, their hooks, closed, routed to
 *
 * Phases of a node (sr_to() asserts the edge):
 *
 *   OPENING --everything of store_redis_open ready--> RUNNING
 *   OPENING --deadline, refused, bad scripts--> CLOSING (open fails)
 *   RUNNING --store_stop--> STOPPING (goodbye: HDEL chat:alive, users
 *       unregistered; callbacks to the loop no longer run)
 *   STOPPING --goodbye answered, or STORE_REDIS_STOP_MS--> CLOSING
 *   CLOSING --every connection and every handle closed--> CLOSED
 *       (store_free may run; open frees it itself)
 */
#ifndef CHAT_SERVER_STORE_REDIS_INT_H
#define CHAT_SERVER_STORE_REDIS_INT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "common/log.h"
#include "common/u32map.h"
#include "server/groups.h"
#include "server/rconn.h"
#include "server/redis_scripts.h"
#include "server/store_backend.h"
#include "server/store_redis.h"

enum sr_phase {
    SR_OPENING = 0,
    SR_RUNNING,
    SR_STOPPING,
    SR_CLOSING,
    SR_CLOSED,
    SR_NPHASES
};

/* Redis's persistence as last checked (store_redis.h). */
enum sr_persist {
    SR_P_UNKNOWN = 0, /* not checked yet (open waits for it) */
    SR_P_OK,          /* acknowledgements allowed */
    SR_P_WEAK,        /* weaker than needed, or unchecked and not trusted */
};

/* What a request is (its reply's handler: sr_handlers[kind]). */
enum sr_kind {
    /* the loop's, with a completion */
    SR_PUT = 0, SR_FETCH, SR_DEVICE, SR_HISTORY, SR_GROUP, SR_MARKS,
    SR_PRESENCE, SR_ACCOUNT,
    /* the loop's, without */
    SR_DEL, SR_CURSOR, SR_READ_MARK, SR_CONTACT, SR_ONLINE, SR_RELAY,
    /* the node's own */
    SR_CONFIG, SR_LOAD, SR_NODE_ID, SR_HEARTBEAT, SR_GROUPS_ALL,
    SR_GROUP_HASH, SR_GROUP_MEMBERS, SR_DEVCOUNT, SR_JANITOR_LOCK,
    SR_JANITOR, SR_GOODBYE, SR_WAIT,
    SR_NKINDS
};

/* A request's state in the ordered list. */
enum {
    SR_SENT = 1, /* its reply is awaited from rconn */
    SR_READY,    /* its outcome is known (parked reply, or status): it
                    completes when it reaches the head */
    SR_HANDLING  /* the head, while its handler runs: the loop's callbacks
                    it calls may queue requests and check the invariants */
};

struct store_redis;

/* The marks of one store_marks, filled by its chunks (at most 256 users
 * each, marks.lua's bound); the last chunk completes it. */
typedef struct sr_macc {
    store_mark *m;   /* n entries (owned) */
    size_t n;
    unsigned left;   /* chunks not completed yet */
    int status;      /* the first failure, or STORE_OK */
} sr_macc;

/* One group being loaded: HGETALL g:{G} (fills it), then ZRANGE g:{G}:m
 * (completes it: the two requests are consecutive in the ordered list). */
typedef struct sr_gload {
    uint32_t id;
    int status;          /* the HGETALL's */
    int exists;          /* the hash had fields */
    uint64_t v;
    uint8_t namelen;
    char name[GROUPS_NAME_MAX];
    redisReply *hash;    /* the HGETALL reply, copied (admins, orders) */
} sr_gload;

typedef struct sr_req {
    struct sr_req *next;          /* the ordered list, or the spares */
    struct store_redis *s;
    uint8_t kind;                 /* enum sr_kind */
    uint8_t state;                /* SR_SENT, SR_READY, SR_HANDLING */
    uint8_t retried;              /* NOSCRIPT: reloaded and resent once */
    uint8_t reserve;              /* of the reserve (sr_fail): goes back */
    uint8_t conn;                 /* sent on sr_conn(s, conn): 0, or a
                                     put's (or its NOSCRIPT load's, or a
                                     WAIT's) pool connection */
    int16_t script;               /* REDIS_SCRIPT_*, -1: a plain command */
    int status;                   /* SR_READY without parked: the outcome
                                     (STORE_E*, or STORE_OK: answered here) */
    redisReply *parked;           /* a reply that came before its turn */
    void *token;                  /* the loop's */
    uint64_t t_us;                /* first sent at (uv_hrtime / 1000) */
    union {
        struct { uint64_t seq, cid, wgen; uint32_t len; } put; /* wgen:
                                     the WAIT that vouches for it is the
                                     first numbered above (wait.c) */
        struct { uint64_t k; } wait;  /* its number, 1, 2, ... */
        struct { uint64_t after; uint32_t user, dev, rows, bytes;
                 uint8_t conv; } fetch;
        struct { uint32_t user; uint8_t on, reg; } user; /* DEVICE,
                                     ONLINE (reg: of sr_register_all),
                                     DEVCOUNT */
        struct { uint64_t cursor; uint32_t user, dev; } cursor;
        struct { sr_macc *acc; uint32_t first, n; } marks;
        struct { uint32_t *users; uint32_t n; } pres; /* users owned */
        struct { sr_gload *gl; } gload;
        struct { int which; } config;                 /* 0..2, or LOAD's
                                                         script */
        struct { uint32_t gen; } groups;              /* GROUPS_ALL */
    } u;
    /* The command, kept until the reply for a retry: argc arguments,
     * lens[i] bytes each, one after the other in buf. */
    char *buf;
    size_t nbuf, cbuf;
    size_t *lens;
    int argc, clens;
    int oom;                      /* an argument could not be added */
} sr_req;

/* A user this node holds (store_online), with its device counts. */
typedef struct sr_user {
    uint16_t all, conv;           /* valid when known */
    uint8_t known;
} sr_user;

/* A group's version in the node's copy; `dead`: deleted while a reload
 * runs (a tombstone: a load that read it before is then dropped). */
typedef struct sr_gver {
    uint64_t v;
    uint32_t gen;                 /* the reload that last saw it */
    uint8_t dead;
} sr_gver;

/* A put's completion held until its WAIT answered (store_redis_wait.c). */
typedef struct sr_held {
    void *token;
    uint64_t seq, id, cid;
    uint64_t wgen;                /* the put's (sr_req.u.put.wgen) */
    int status;                   /* the put's outcome */
    uint8_t conn;                 /* the put's connection */
    uint8_t vouched;              /* its WAIT answered (status final):
                                     completes once those before it did */
    uint8_t done;                 /* being completed (sr_h_wait) */
} sr_held;

/* A command connection: index 0 is the node's own (s->cmd; its rconn
 * pointer here stays NULL), 1..nconns-1 the put pool's. */
typedef struct sr_conn_st {
    struct store_redis *s;
    rconn *c;                     /* pool: NULL once closed */
    uint8_t idx;
    int up;                       /* pool: READY (on_ready .. on_down) */
    /* --cluster-wait on this connection (store_redis_wait.c). */
    uint64_t wait_seq;            /* WAITs sent (the last one's number) */
    uint64_t wait_done;           /* WAITs handled */
    int wait_owed;                /* a put was sent since the last WAIT */
    int wait_inflight;            /* wait_seq > wait_done */
} sr_conn_st;

typedef struct store_redis {
    store base;                   /* first (store_backend.h) */
    uv_loop_t *loop;
    store_callbacks cb;
    store_redis_config cfg;       /* its strings point into strs */
    char *strs;                   /* copies of cfg's strings (owned) */
    size_t strslen;
    uint8_t phase;                /* enum sr_phase */
    rconn *cmd, *feed;            /* NULL once closed */
    unsigned nconns;              /* command connections (cfg.conns) */
    sr_conn_st conns[STORE_REDIS_CONNS_MAX];
    unsigned pool_down;           /* pool connections not up */
    int pool_logged;              /* a cluster_redis_pool_down line was
                                     logged and no _back line since */
    uint32_t node;                /* chat:nodes; 0 until known */

    /* The command connection. */
    int cmd_up;                   /* READY (on_ready .. on_down) */
    uint64_t cmd_down_ms;         /* when it went down (for the log) */
    int persist;                  /* enum sr_persist */
    int persist_logged;           /* the state the last log line named */
    char persist_why[160];        /* what is weak, for the log */
    int config_left;              /* CONFIG GET replies awaited */
    int config_bad;               /* one of them refused */
    char cfg_aof[16], cfg_fsync[16], cfg_evict[32];
    unsigned scripts_ok;          /* SCRIPT LOAD answers that matched */
    int alive;                    /* a heartbeat answered since open */
    int hb_inflight, jan_inflight;
    int reg_pending;              /* re-registrations in flight */
    int reg_dirty;                /* a registration failed: redo all */

    /* The feed. */
    int feed_up;                  /* SUBSCRIBE confirmed, not down since */
    int feed_started;             /* rconn_start done (needs the node) */
    int feed_sub;                 /* its SUBSCRIBE is in flight */
    uint64_t feed_down_ms;
    int resync_due;               /* messages may have been missed */
    int groups_loading;           /* GROUPS_ALL and its loads in flight */
    int groups_stale;             /* a reload is due (feed back, failure) */
    int groups_loaded;            /* one reload completed (open waits) */
    uint32_t gen;                 /* the current reload's number */
    unsigned gloads_left;         /* group loads of it not completed */

    /* Requests on the command connection, in submission order. */
    sr_req *head, *tail;
    size_t nreq;
    sr_req *spare;                /* recycled requests (their buffers) */
    size_t nspare;
    sr_req *reserve;              /* SR_RESERVE requests kept for sr_fail
                                     (a failure recorded without memory) */
    const char **argv;            /* scratch for sending */
    size_t cargv;

    /* Scratch for converting replies (valid during one completion). */
    store_row *rows;
    size_t crows;
    uint64_t *cids, *cidids;
    int64_t *cidts;
    size_t ccids;
    uint8_t *pallow;
    int64_t *pseen;
    uint8_t *ponline;

    /* The node's state for the loop. */
    u32map users;                 /* online users -> sr_user (owned) */
    u32map unreg;                 /* users whose unregistration failed
                                     -> (void *)1 */
    u32map gver;                  /* group -> sr_gver (owned) */
    groups grp;                   /* the node's copy */
    uint64_t max_messages, max_bytes; /* store_set_quota */
    size_t pending;               /* put bodies sent, not answered */
    store_stats stats;
    log_limit err_limit;          /* Redis error replies logged */

    /* --cluster-wait (store_redis_wait.c). */
    sr_held *held;                /* nheld of cheld (owned) */
    size_t nheld, cheld;
    log_limit wait_limit;         /* cluster_wait_short lines */

    /* Handles (all closed by CLOSED). */
    uv_idle_t idle;               /* deferred completions */
    uv_check_t wchk;              /* sends the owed WAIT (after the I/O) */
    uv_timer_t hb, jan, pers;     /* heartbeat, janitor, persistence */
    uv_timer_t stop_t;            /* STOPPING's bound; open's deadline */
    uv_timer_t pool_t;            /* cluster_redis_pool_down, deferred */
    unsigned nhandles;            /* open handles of the seven */
    int handles_closing;          /* uv_close called on them */

    /* store_redis_open's wait. */
    int open_failed;
    char *open_err;
    size_t open_errlen;
} store_redis;

extern const store_ops store__redis_ops;

static inline store_redis *sr_of(store *st) {
    assert(st && st->ops == &store__redis_ops);
    return (store_redis *)st;
}
static inline const store_redis *sr_cof(const store *st) {
    assert(st && st->ops == &store__redis_ops);
    return (const store_redis *)st;
}

#ifndef NDEBUG
#define SR_CHECK(s) assert(store_redis_check(&(s)->base))
#else
#define SR_CHECK(s) ((void)0)
#endif

/* -- store_redis.c ------------------------------------------------------- */
int sr_edge(int from, int to);          /* 1: the diagram has it */
void sr_to(store_redis *s, int phase);  /* asserts sr_edge */
int sr_active(const store_redis *s);    /* callbacks to the loop may run */
void sr_open_fail(store_redis *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int sr_h_load(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_node_id(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_goodbye(store_redis *s, sr_req *r, const redisReply *rep, int st);
void sr_stop(store *st);
void sr_free(store *st);
void sr_cmd_on_ready(void *ud);         /* connection 0's rconn hooks */
void sr_cmd_on_down(void *ud, const char *reason);
/* A connection closed: the handles close once every one has. */
void sr_conns_maybe_closed(store_redis *s);

/* -- store_redis_node.c -------------------------------------------------- */
void sr_persist_check(store_redis *s);  /* CONFIG GET x3 (one at a time) */
void sr_heartbeat_send(store_redis *s); /* unless one is in flight */
void sr_register_all(store_redis *s);   /* online.lua for every user */
void sr_maybe_resync(store_redis *s);   /* cb.resync once it may run */
void sr_on_hb(uv_timer_t *t);           /* the timers' callbacks */
void sr_on_jan(uv_timer_t *t);
void sr_on_pers(uv_timer_t *t);
int sr_h_config(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_heartbeat(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_online(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_janitor_lock(store_redis *s, sr_req *r, const redisReply *rep,
                      int st);
int sr_h_janitor(store_redis *s, sr_req *r, const redisReply *rep, int st);

/* -- store_redis_q.c ----------------------------------------------------- */
/* Handlers: st is STORE_OK with rep a reply that is not an error, or a
 * STORE_E* failure (rep: Redis's error reply, or NULL). They return
 * SR_DONE, or SR_AGAIN after resending r (it stays in its place). */
enum { SR_DONE = 0, SR_AGAIN = 1 };
typedef int (*sr_handler)(store_redis *s, sr_req *r, const redisReply *rep,
                          int st);

/* A new request of kind (NULL: out of memory); script >= 0 begins it with
 * EVALSHA (or EVALSHA_RO) sha nkeys. */
sr_req *sr_new(store_redis *s, int kind, int script, int nkeys);
/* Append an argument to r: p[0..n), str, v in decimal, a key: pre, id in
 * decimal, post (sr_argk(r, "u:{", 7, "}:log") is u:{7}:log), or one
 * with two numbers (sr_argk2(r, "cv:{", 3, "}:{", 9, "}") is cv:{3}:{9}).
 * No completion and no result: out of memory (or a key whose fixed parts
 * pass 88 bytes, a bug) sets r->oom, and every later argument is dropped;
 * the caller checks r->oom once, or sr_submit fails r. */
void sr_arg(sr_req *r, const void *p, size_t n);
void sr_args(sr_req *r, const char *str);
void sr_argu(sr_req *r, uint64_t v);
void sr_argk(sr_req *r, const char *pre, uint64_t id, const char *post);
void sr_argk2(sr_req *r, const char *pre, uint64_t a, const char *mid,
              uint64_t b, const char *post);
/* Append r to the ordered list and send it; a refusal (or r->oom) makes it
 * READY with a failure, completed later from the idle handle. */
void sr_submit(store_redis *s, sr_req *r);
/* Resend r as it is (a retry, a continuation): SR_AGAIN, or SR_DONE when
 * it could not be sent (r->status is set then: the handler runs again). */
int sr_resend(store_redis *s, sr_req *r);
/* Rebuild r's arguments from scratch (a continuation with new ones):
 * EVALSHA sha nkeys again for a script. */
void sr_reset_args(sr_req *r, int nkeys);
/* Give back a request never submitted. */
void sr_discard(store_redis *s, sr_req *r);
/* A request of kind that completes with status (a failure, or STORE_OK
 * with nothing), later and in its turn, whatever the memory: it comes from
 * the reserve when allocation fails, and when even that is empty (more
 * than SR_RESERVE such failures waiting) the process aborts, as the SQLite
 * store does (store.h, store_fetch). */
#define SR_RESERVE 64
sr_req *sr_fail(store_redis *s, int kind, void *token, int status);
int sr_reserve_init(store_redis *s);
/* A request of kind that needs no reply handling, or fails at once with
 * status: READY now, completed in order from the idle handle. */
void sr_submit_ready(store_redis *s, sr_req *r, int status);
void sr_on_idle(uv_idle_t *h);
/* Free every request (store_free; CLOSED). */
void sr_q_free(store_redis *s);
int sr_q_check(const store_redis *s);
/* A deep copy of a reply (NULL: out of memory), and its release. */
redisReply *sr_reply_copy(const redisReply *r);
void sr_reply_free(redisReply *r);
/* An integer element of an array reply (0 when not one). */
long long sr_int(const redisReply *rep, size_t i);

/* -- store_redis_ops.c --------------------------------------------------- */
int sr_h_put(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_fetch(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_device(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_history(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_group(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_marks(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_presence(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_quiet(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_cursor(store_redis *s, sr_req *r, const redisReply *rep, int st);
/* The online.lua request for user (op 1 add, 0 remove; reg: one of
 * sr_register_all's), submitted: 0, or -1 when it could not be made (then
 * reg_dirty is set, or the user is put in unreg). */
int sr_online_send(store_redis *s, uint32_t user, int on, int reg);

/* -- store_redis_acct.c -------------------------------------------------- */
void sr_account(store *st, uint32_t user, void *token);
int sr_h_account(store_redis *s, sr_req *r, const redisReply *rep, int st);

/* -- store_redis_wait.c ------------------------------------------------- */
int sr_waiting(const store_redis *s);  /* --cluster-wait is on */
/* A put appended or sent again: the next WAIT vouches for it (one owed). */
void sr_wait_note(store_redis *s, sr_req *r);
/* The put r's outcome: held until its WAIT answered (1), or 0 when it is
 * to complete now (--cluster-wait off; no memory to hold it: then it
 * completes unvouched, with STORE_EREPLICAS if it stored). */
int sr_wait_hold(store_redis *s, const sr_req *r, uint64_t id, int st);
void sr_on_wait_check(uv_check_t *h);
int sr_h_wait(store_redis *s, sr_req *r, const redisReply *rep, int st);
void sr_wait_free(store_redis *s);
int sr_wait_check(const store_redis *s);

/* -- store_redis_pool.c ------------------------------------------------- */
/* A connection to the cluster's Redis with the hooks of kind 0 (the
 * command connection, ud s), 1 (the feed, ud s) or 2 (a pool connection,
 * ud its sr_conn_st). 0 or an rconn code (err says why). */
int sr_make_conn(store_redis *s, rconn **out, int kind, void *ud, char *err,
                 size_t errlen);
/* Make and start the pool connections (conns 1..nconns-1). 0 or an rconn
 * code (err says why). */
int sr_pool_open(store_redis *s, char *err, size_t errlen);
void sr_pool_close(store_redis *s);   /* close_all: rconn_close each */
int sr_pool_closed(const store_redis *s); /* 1: every one is closed */
void sr_pool_flush(store_redis *s);
/* The connection a request goes on (NULL: closed). */
rconn *sr_conn(const store_redis *s, unsigned idx);
/* The connection a put of sender goes on. */
static inline uint8_t sr_put_conn(const store_redis *s, uint32_t sender) {
    return (uint8_t)(sender % s->nconns);
}
int sr_pool_check(const store_redis *s);

/* -- store_redis_feed.c -------------------------------------------------- */
void sr_feed_on_ready(void *ud);
/* SUBSCRIBE chat:node:<N> chat:groups (unless done or in flight). */
void sr_feed_subscribe(store_redis *s);
void sr_feed_on_down(void *ud, const char *reason);
void sr_feed_on_push(void *ud, const redisReply *rep);
/* Reload every group (SMEMBERS chat:groups:all, then each one). */
void sr_groups_reload(store_redis *s);
/* A group snapshot (group.lua's bytes): applied when newer than the copy.
 * 0, or -1 when malformed. */
int sr_group_snapshot(store_redis *s, const uint8_t *p, size_t n);
/* The device counts of user changed (device_done, feed, refresh): cached
 * when user is online here, then cb.devices when they differ. */
void sr_devices_set(store_redis *s, uint32_t user, unsigned all,
                    unsigned conv);
/* HGETALL u:{U} for every online user: their counts after a feed gap. */
/* Ask Redis for user's device counts (HGETALL u:{U}; sr_h_devcount sets
 * them). 0, or -1 out of memory (they stay as they are). */
int sr_devcount_send(store_redis *s, uint32_t user);

/* store_redis_sig.c: the operations of the table that live there. */
void sr_marks(store *st, uint32_t user, uint32_t peer, uint32_t group,
              void *token);
void sr_presence(store *st, uint32_t user, const uint32_t *users, size_t n,
                 int check, void *token);
void sr_online(store *st, uint32_t user, int on);
void sr_relay(store *st, uint32_t user, uint32_t sender, uint8_t type,
              const uint8_t *body, size_t len);
void sr_devices_refresh(store_redis *s);
/* Every cached count unknown (count events may have been missed). */
void sr_devices_forget(store_redis *s);
int sr_h_groups_all(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_group_hash(store_redis *s, sr_req *r, const redisReply *rep, int st);
int sr_h_group_members(store_redis *s, sr_req *r, const redisReply *rep,
                       int st);
int sr_h_devcount(store_redis *s, sr_req *r, const redisReply *rep, int st);
/* Free the copy's version entries (store_free). */
void sr_groups_free(store_redis *s);
int sr_feed_check(const store_redis *s);

/* The entry layout (docs/CLUSTER.md 2.7): id u64, sender u32, receiver
 * u32, group u32, type u8, sdev u32, ts i64, then the body. 0 or -1. */
#define SR_ENTRY_HDR 33u
int sr_entry(const char *p, size_t n, store_row *row);

#endif
