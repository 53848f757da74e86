/*
 * store_redis.h -- the cluster store: a backend of store.h that keeps
 * everything in Redis (docs/CLUSTER.md, issue 15), on the loop thread.
 *
 * Each store handle is a node of the cluster: it takes a node id (INCR
 * chat:nodes), heartbeats (heartbeat.lua, every heartbeat_ms), registers
 * the users it holds (store_online: online.lua), and receives the stored
 * messages for them on its feed (a second Redis connection subscribed to
 * chat:node:<N> and chat:groups), handed to the loop by the `live`
 * callback in Redis's order, which is id order. Every store.h operation is
 * one script (src/server/redis/NAME.lua, contracts in docs/CLUSTER.md 2.7)
 * or a plain command on the command connection; completions come from the
 * replies, in submission order (one connection, FIFO), never inside the
 * store_* call that queued the request. The message ids are Redis's
 * (put_done's id): store_ids_local() is 0.
 *
 * What differs from the SQLite store (store.h's contract otherwise):
 *  - put_done's status may be STORE_EWEAK with a real id: the message WAS
 *    stored and handed off like STORE_OK, but Redis's persistence is weaker
 *    than an acknowledgement needs (below): the loop must not send an ACK
 *    or POSTED for it (ERROR STORE instead, to a sender that asked), and
 *    may treat it as stored otherwise (a durable copy of a live delivery,
 *    a held message). A resend with the same client id is deduplicated and
 *    answered STORE_EWEAK with the first id again while the check fails.
 *    put_done with STORE_EIO: Redis was unreachable or answered an error
 *    (the message may have been stored: a put whose reply was lost).
 *  - a group put (receiver 0) may complete STORE_GNOGROUP or
 *    STORE_GNOTMEMBER (gput.lua checks the sender's membership).
 *  - store_stop says goodbye first: every held user unregistered
 *    (online.lua), HDEL chat:alive N; the connections close when that is
 *    answered, or after STORE_REDIS_STOP_MS.
 *  - store_count is 0 (the counts live in Redis, u:{U} qn/qb; not worth a
 *    round trip for a log line); store_stats' messages and bytes stay 0,
 *    txns counts completed puts, txn_us their round trips, health is
 *    STORE_EIO while the command connection is down.
 *  - store_devices answers from the node's cache for the users it holds
 *    (store_online(user, 1)), kept by device_done, the feed's count
 *    events and a re-read after every feed gap; for any other user, or
 *    before its first count is known, it answers all = conv =
 *    STORE_REDIS_DEVICES_UNKNOWN (see there). Call store_online(user, 1)
 *    before store_device for its first connection: a count that changes
 *    between the two is not published to this node.
 *  - store_online(user, 1) routes user's messages here before any request
 *    queued after it on THIS node's first connection runs; a put on
 *    another node, or on another of this node's connections (conns > 1),
 *    may still run before it (that is what the fetch after it is for).
 *  - store_marks of a group lists the members from the node's copy of the
 *    groups (store_groups), which the chat:groups events keep.
 *  - it keeps the accounts (store_accounts() is 1): store_account is
 *    HGET u:{U} pw (store_redis_acct.c), written by `chat-server user
 *    --cluster` (accounts_redis.h).
 *  - with wait_replicas > 0 (docs/CLUSTER.md 4.4): after the puts sent in
 *    a loop iteration the node sends WAIT wait_replicas wait_ms (one per
 *    batch, from a check handle), and holds each put's completion until
 *    the first WAIT sent after that put answered. Fewer replicas (or the
 *    WAIT failed): the puts that stored complete STORE_EREPLICAS with
 *    their id (stored on the primary, handed off, not to be acknowledged;
 *    a resend with the same client id is deduplicated and acknowledged by
 *    a later WAIT that is satisfied). Completions keep the order of the
 *    other requests except that a held put completes after the requests
 *    between it and its WAIT. With several connections (conns), a WAIT
 *    goes on every connection that carried puts since its last one, and
 *    only a WAIT on a put's own connection vouches for it (WAIT counts
 *    the calling client's writes); held puts complete in their order.
 *  - conns > 1 (docs/CLUSTER.md 6.1): puts (put.lua, gput.lua) go on
 *    connection sender % conns, so one sender's puts keep their order in
 *    Redis; every other request on the first connection. Completions
 *    keep submission order across connections. The node's health (and
 *    the cluster_redis_down/back lines) is the first connection's; a put
 *    routed to another connection that is down fails with STORE_EIO
 *    until it is back (one cluster_redis_pool_down line per streak).
 *  - memory: a put's body is held twice until its reply: its arguments
 *    (kept for one retry after NOSCRIPT) and the connection's encoded copy
 *    (until written). store_pending_bytes counts it once.
 *
 * Persistence (docs/CLUSTER.md 4.2): at open, at every reconnect of the
 * command connection and every persist_check_ms, CONFIG GET appendonly,
 * appendfsync and maxmemory-policy. Acknowledgements are allowed
 * (store_redis_acks() 1) with appendonly yes, appendfsync always and
 * maxmemory-policy noeviction; with anything weaker they are not, and
 * every put that stores completes STORE_EWEAK. When CONFIG is refused
 * (renamed, an ACL), trust_persistence decides. One log line per change
 * (events cluster_persistence_weak, cluster_persistence_ok,
 * cluster_persistence_unchecked).
 *
 * Threads: everything on the loop thread.
 */
#ifndef CHAT_SERVER_STORE_REDIS_H
#define CHAT_SERVER_STORE_REDIS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/rconn.h"
#include "server/store.h"

/* store_devices for a user whose counts this node does not know: more
 * devices than any user can have (64), so that deliver.c's test "every
 * device of the receiver is LIVE here" (rr.devs < all) fails and the
 * message is stored (docs/CLUSTER.md 3.3: "a node that has no count for a
 * user stores"); and as many CONV devices, so that a sender whose device
 * is not known yet has its own copy stored too (a copy too many costs
 * memory until its cursors pass it; one too few would lose it for the
 * author's other devices). */
#define STORE_REDIS_DEVICES_UNKNOWN UINT_MAX

/* Defaults (a field left 0 takes its default). */
#define STORE_REDIS_OPEN_TIMEOUT_MS 10000u  /* store_redis_open gives up */
#define STORE_REDIS_HEARTBEAT_MS 1000u      /* heartbeat.lua period */
#define STORE_REDIS_ALIVE_TTL_MS 5000u      /* chat:alive expiry */
#define STORE_REDIS_PERSIST_CHECK_MS 60000u /* CONFIG GET again */
#define STORE_REDIS_JANITOR_MS 1000u        /* a janitor slice */
#define STORE_REDIS_STOP_MS 1000u           /* store_stop's goodbye, at most */
#define STORE_REDIS_DEDUP_MS 86400000u      /* when dedup_ms is 0 */
#define STORE_REDIS_WAIT_MS 1000u           /* when wait_ms is 0 */
#define STORE_REDIS_CONNS_MAX 16u          /* command connections */
#define STORE_REDIS_WAIT_MS_MAX 3000u       /* WAIT blocks the command
                                               connection: the heartbeat
                                               (alive_ttl_ms) must pass */

typedef struct store_redis_config {
    /* The Redis primary (rconn_options' fields of the same names; the
     * strings are copied by store_redis_open). */
    rconn_addr addrs[RCONN_MAX_ADDRS]; /* candidates, in order */
    unsigned naddrs;                   /* 1..RCONN_MAX_ADDRS */
    const char *user;                  /* ACL user; NULL: AUTH password */
    const char *password;              /* NULL: no AUTH */
    int tls;
    const char *tls_ca_file, *tls_cert_file, *tls_key_file;
    const char *tls_server_name;
    unsigned connect_timeout_ms;       /* per address (rconn's default) */
    unsigned command_timeout_ms;       /* the oldest reply awaited: past
                                          it the connection is dead and
                                          every request in flight fails
                                          with STORE_EIO (rconn's: 5 s) */
    unsigned open_timeout_ms;          /* store_redis_open's deadline */
    /* store_config's fields that apply (same meaning). */
    uint64_t max_messages, max_bytes;
    uint64_t ttl_ms, device_ttl_ms, history_ttl_ms;
    uint64_t dedup_ms;                 /* 0: STORE_REDIS_DEDUP_MS */
    int contacts;                      /* --auth on: puts note contacts,
                                          store_contact writes them */
    /* The node. */
    unsigned heartbeat_ms;             /* heartbeat period */
    unsigned alive_ttl_ms;             /* expiry each heartbeat sets */
    unsigned persist_check_ms;         /* persistence check period */
    unsigned janitor_ms;               /* janitor slice period */
    int no_janitor;                    /* 1: this node never runs it */
    int trust_persistence;             /* CONFIG refused: 1 grants
                                          acknowledgements anyway */
    unsigned wait_replicas;            /* > 0: a put completes only after
                                          a WAIT wait_replicas wait_ms
                                          sent after it answered (below) */
    unsigned wait_ms;                  /* 1..STORE_REDIS_WAIT_MS_MAX */
    unsigned conns;                    /* command connections, 0 or 1..
                                          STORE_REDIS_CONNS_MAX (0: 1):
                                          puts go on connection sender %
                                          conns, everything else on the
                                          first (below) */
} store_redis_config;

/* Open a node on loop: make the two connections and RUN THE LOOP itself
 * (uv_run, UV_RUN_ONCE, with a deadline timer of open_timeout_ms) until it
 * is connected (command and feed connections), the persistence checked,
 * the scripts loaded (SCRIPT LOAD of each; the SHA1 Redis answers must be
 * the one built in), the node id taken, the first heartbeat answered, the
 * feed subscribed and the groups loaded. Call it before the loop serves
 * clients: handles of the caller's already on the loop may run meanwhile.
 * Returns 0 with *out set, or a STORE_E* code (STORE_EIO: unreachable,
 * refused, wrong password, Redis older than 7.0...; STORE_ENOMEM) with a
 * sentence in err naming the address and what to do; then nothing is left
 * on the loop. cb is copied; its live and resync are required. The caller
 * frees *out with store_free after store_stop and uv_run. */
int store_redis_open(store **out, uv_loop_t *loop,
                     const store_redis_config *cfg, const store_callbacks *cb,
                     char *err, size_t errlen);

/* 1 when Redis's persistence allows acknowledgements now (above): WELCOME
 * may grant ACKS. s must be a store_redis_open store. O(1). */
int store_redis_acks(const store *s);

/* 1 while the feed is subscribed: live messages flow (0: they may be
 * missed until it is back; then resync). For /healthz and tests. O(1). */
int store_redis_feed_up(const store *s);

/* This node's id (chat:nodes), for logs and tests. */
uint32_t store_redis_node(const store *s);

/* Assert the invariants listed at the top of store_redis.c; 1 (for
 * assert()). Called after every callback in builds without NDEBUG. */
int store_redis_check(const store *s);

#endif
