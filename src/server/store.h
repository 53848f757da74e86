/*
 * store.h -- the message store, as the event loop sees it.
 *
 * The store keeps messages that some device has not yet got, and, with
 * --history-ttl, every message for that long (docs/PROTOCOL.md, "Devices
 * and conversations"). Each message is stored once, whoever it is for. A
 * user's devices are rows too: each has a cursor, the id of the last
 * message of the user's log it has; store_cursor moves it, and a message
 * is deleted once every device that must get it has moved past it (and its
 * history time passed), never on the loop's word about one message.
 *
 * A user's log: the messages sent to it, and (for its CONV devices) the
 * messages it sent from its other devices ("own" copies).
 *
 * Model: asynchronous and batched. On the loop thread, store_put, fetch,
 * device and cursor append requests to a pending batch (bodies are copied
 * into it); store_flush() hands the batch to the backend, once per loop
 * iteration. Reads (fetches, device lookups, marks and presence checks)
 * see every write submitted before them. Results come back on the loop
 * thread through the callbacks, in submission order. The SQLite backend:
 * its store thread takes every batch queued, runs them as ONE transaction
 * (group commit): puts in order, new devices, cursors and the deletions
 * they allow, read marks and contacts, COMMIT; then the reads.
 *
 * Message ids are chosen by the loop (store_next_id() at open, then +1 per
 * message), so a frame can carry its id before it is committed. Ids
 * increase in the order frames were accepted, across all users (one
 * counter, so an id names a message everywhere and a user's log and each
 * conversation in it are in id order; docs/ARCHITECTURE.md says why). A
 * backend may instead give the ids itself, in put_done: store_ids_local.
 *
 * An interface, with backends: a store is opened by a backend's
 * constructor, which fills its operations table (store_backend.h, for the
 * backends only); every function declared after store_open dispatches to
 * it (store.c: an assert and a call), with the contract written here for
 * every backend. Backends: SQLite, opened by store_open (src/server/
 * store_*.c, described in store_int.h: WAL mode under the data directory,
 * on its own thread); docs/CLUSTER.md 6.1 plans Redis (--cluster).
 * store_global_init and store_lock_dir are the SQLite backend's, called
 * directly. Threads: every function here is called on the loop thread,
 * except where said. The SQLite store logs the events of its own thread
 * (failures once per streak, purges): see store_int.h.
 */
#ifndef CHAT_SERVER_STORE_H
#define CHAT_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/groups.h"
#include "server/metrics.h"

/* Status codes (0 or negative). */
enum {
    STORE_OK = 0,
    STORE_EQUOTA = -1,  /* the receiver's quota (messages or bytes) is full */
    STORE_ENOMEM = -2,
    STORE_EIO = -3,     /* the database could not be written (I/O error) */
    STORE_EFULL = -4,   /* the disk is full */
    STORE_ECORRUPT = -5, /* the database file is damaged or not a database */
    STORE_EBUSY = -6,   /* another process holds the data directory's lock */
    STORE_EWEAK = -7,   /* the cluster's Redis persists more weakly than an
                           acknowledgement needs (docs/CLUSTER.md 4.2):
                           sends that ask for one are refused */
    STORE_EREPLICAS = -8, /* stored on the cluster's Redis primary, but
                             fewer replicas than --cluster-wait had it in
                             time: not acknowledged (docs/CLUSTER.md 4.4) */
    /* group operations refused (store_group) */
    STORE_GNOGROUP = -10,   /* no such group */
    STORE_GNOTMEMBER = -11, /* the actor is not a member */
    STORE_GNOTADMIN = -12,  /* the actor is not an admin */
    STORE_GFULL = -13       /* past --max-group-members */
};

/* The database schema this release writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 5

/* "quota full", "disk full", ... */
const char *store_strerror(int status);

typedef struct store_config {
    const char *dir;        /* data directory; the database is dir/chat.db */
    int fsync_full;         /* 1: PRAGMA synchronous=FULL; 0: NORMAL */
    uint64_t max_messages;  /* per receiver, for puts with quota set; 0: none */
    uint64_t max_bytes;     /* per receiver (body bytes); 0: none */
    uint64_t ttl_ms;        /* older messages are purged, never fetched; 0: keep */
    uint64_t device_ttl_ms; /* devices not seen for this are forgotten; 0: never */
    uint64_t history_ttl_ms;/* messages are kept at least this long; 0: not */
    uint64_t dedup_ms;      /* client ids are remembered this long */
} store_config;

/* One stored message handed to fetch_done. `body` belongs to the store and
 * is valid during the callback only. */
typedef struct store_row {
    uint64_t id;
    uint32_t sender;
    uint32_t receiver;    /* 0 for a group message */
    uint32_t grp;         /* its group, 0: none */
    uint8_t type;
    uint32_t len;
    int64_t ts;           /* accepted at, unix ms */
    const uint8_t *body;
    uint32_t sdev;        /* the device that sent it (0: not known; the
                             SQLite store fills it for live rows only) */
} store_row;

/* What store_device learned of a device (valid during the callback). */
typedef struct store_device_info {
    uint32_t dev;          /* its number: 0 for the default device (name
                              ""), else unique in this store, never reused */
    uint64_t cursor;       /* the last message id it has */
    const uint64_t *cids;  /* client ids it sent within the dedup window, */
    const int64_t *cid_ts; /* ... and when (unix ms), oldest first */
    const uint64_t *cid_ids; /* ... and the ids of their messages (0: not
                              known, kept by an older version) */
    size_t ncid;           /* at most STORE_DEDUP_MAX */
    unsigned all, conv;    /* the user's devices now (store_devices) */
} store_device_info;

/* Client ids remembered per device (docs/PROTOCOL.md, POST). */
#define STORE_DEDUP_MAX 4096u
/* Longest device name (docs/PROTOCOL.md, HELLO). */
#define STORE_DEVICE_MAX 32u

struct store_mark; /* below */

/* Completions, called on the loop thread in submission order, each from
 * the store's wake-up handle: never inside the store_* call that queued
 * the request. */
typedef struct store_callbacks {
    void *ctx;
    /* A put was committed (status STORE_OK) or not (STORE_EQUOTA: refused,
     * nothing stored; STORE_EIO / STORE_EFULL: the transaction failed and was
     * rolled back). token and seq are the caller's, returned as given, and
     * cid is the message's. */
    void (*put_done)(void *ctx, void *token, uint64_t seq, uint64_t id,
                     uint64_t cid, int status);
    /* A fetch ran: rows[0..n) in id order, all with id > after_id and not
     * expired. more = 1 when the receiver has further messages after the
     * last row. status != STORE_OK: n = 0. */
    void (*fetch_done)(void *ctx, void *token, const store_row *rows,
                       size_t n, int more, int status);
    /* A device was looked up or created (store_device). status !=
     * STORE_OK: d is NULL. */
    void (*device_done)(void *ctx, void *token, const store_device_info *d,
                        int status);
    /* user's devices changed (one was added, forgotten or changed its
     * CONV flag): now store_devices says all and conv. Called before the
     * other completions of the same batch. May be NULL. */
    void (*devices)(void *ctx, uint32_t user, unsigned all, unsigned conv);
    /* A history page (store_history): rows newest first (ids decreasing),
     * more = 1 when older ones remain. As fetch_done otherwise. */
    void (*history_done)(void *ctx, void *token, const store_row *rows,
                         size_t n, int more, int status);
    /* A group operation ran (store_group): status STORE_OK (the loop's
     * copy, store_groups, shows it already: group is the group, the new
     * one's for CREATE), a STORE_G* refusal, or a STORE_E* failure (nothing
     * changed). */
    void (*group_done)(void *ctx, void *token, uint32_t group, int status);
    /* The marks of a conversation (store_marks): marks[0..n), see
     * store_mark; status != STORE_OK: n = 0. */
    void (*marks_done)(void *ctx, void *token, const struct store_mark *marks,
                       size_t n, int status);
    /* A presence check (store_presence): for each users[i] asked, in
     * order, allowed[i] (1: may be seen), last_seen[i] (unix ms of the
     * end of its device's last connection, the latest over its devices; 0:
     * none known) and online[i] (1: some process of a store shared by
     * several holds a connection of it; online NULL: this process alone
     * knows, its router says). status != STORE_OK: n = 0. */
    void (*presence_done)(void *ctx, void *token, const uint32_t *users,
                          const uint8_t *allowed, const int64_t *last_seen,
                          const uint8_t *online, size_t n, int status);
    /* -- Backends shared by several processes (store_shared() == 1: the
     * cluster store, docs/CLUSTER.md 3.3). May be NULL for the others. --
     *
     * A stored message for `user`, a user this process holds (store_online),
     * arrived on this process's feed: for each user, in id order, after
     * every message a fetch issued before store_online(user, 1) completed
     * could miss. user is the receiver, or the author for an own copy
     * (row->sender == user: its devices but row->sdev take it), or 0 for a
     * group message (row->grp: every member this process holds). row and
     * its body belong to the store, valid during the callback only. */
    void (*live)(void *ctx, uint32_t user, const store_row *row);
    /* The feed was interrupted (its connection to the store broke and came
     * back): messages may have been missed, so every connection that took
     * them live must fetch from its device's cursor again. */
    void (*resync)(void *ctx);
    /* user's first connection anywhere in the cluster opened (online 1),
     * or its last one closed or its node died (0), at ts (unix ms): this
     * process's own users' changes come this way too. May be NULL. */
    void (*presence_event)(void *ctx, uint32_t user, int online, int64_t ts);
    /* Another process relayed a control frame (store_relay) for user's
     * connections here: type and body[0..len) as given there (valid during
     * the callback), from sender. May be NULL. */
    void (*relay)(void *ctx, uint32_t user, uint32_t sender, uint8_t type,
                  const uint8_t *body, size_t len);
    /* -- Backends that keep the accounts (store_accounts() == 1: the
     * cluster store, docs/CLUSTER.md 2.3). May be NULL for the others. --
     *
     * An account was read (store_account): status STORE_OK with
     * hash[0..len) the user's password hash (libsodium's crypto_pwhash_str
     * text, not NUL-terminated; it belongs to the store, valid during the
     * callback only), or hash NULL and len 0 when the user has no account;
     * any other status (STORE_EIO: the store is unreachable or failed;
     * STORE_ENOMEM): hash NULL, nothing is known. */
    void (*account_done)(void *ctx, void *token, const char *hash,
                         size_t len, int status);
} store_callbacks;

/* A store, whichever its backend (it starts with its operations table,
 * store_backend.h; opaque to callers). */
typedef struct store store;
typedef struct store_ops store_ops;

/* -- The SQLite backend: called directly, not through a store ----------- */

/* Process-wide SQLite settings, before any database is opened (main):
 * no memory statistics (their global mutex is taken on every SQLite
 * allocation: about 5% of the store thread's time at 250,000 puts/s).
 * 0, or an SQLite error code (then the defaults stay; nothing is wrong). */
int store_global_init(void);

/* The data directory's lock: dir/chat.lock (created 0600), taken with
 * flock(LOCK_EX | LOCK_NB). store_open holds it while the store is open,
 * and `chat-server restore` while it replaces the database, so that a
 * second server on the same directory, or a restore under a running
 * server, is refused instead of sharing (or swapping) its files. The
 * kernel lets go when the process ends, a SIGKILL too: a crash never
 * leaves a stale lock. `chat-server backup` and `user` do not take it (they
 * run beside a server). Returns the descriptor (>= 0; close it to let go;
 * close-on-exec), or STORE_EBUSY (another process holds it) or STORE_EIO
 * with a sentence in err naming the directory. */
int store_lock_dir(const char *dir, char *err, size_t errlen);

/* The SQLite backend's constructor: *out is a store whose operations are
 * SQLite's. Take dir's lock (store_lock_dir: STORE_EBUSY when another
 * server uses dir), open (or create) dir/chat.db, run the schema
 * migrations, load the per-receiver counters, start the store thread and
 * register its wake-up handle on loop. Synchronous: call before the loop
 * runs. Returns 0, or a STORE_E* code with a sentence in err naming the
 * file and what to do (a damaged database is never replaced or emptied).
 * The caller frees it with store_free (after store_stop). */
int store_open(store **out, uv_loop_t *loop, const store_config *cfg,
               const store_callbacks *cb, char *err, size_t errlen);

/* -- Every backend (dispatched through the store's operations) ---------- */

/* What the loop knows of the store, for /metrics and /healthz: updated as
 * batches complete (loop thread; reading it costs nothing). */
typedef struct store_stats {
    uint64_t messages, bytes;   /* stored now (committed) */
    uint64_t txns;              /* write transactions completed */
    uint64_t txn_failures;      /* of which rolled back */
    uint64_t waits, waits_short; /* the cluster's WAITs for replicas
                                   (--cluster-wait), and those that got
                                   fewer than asked (0 otherwise) */
    metrics_hist txn_us;        /* their durations, microseconds */
    metrics_hist txn_writes;    /* their puts and deletes */
    int health;                 /* STORE_OK, or the status of the last
                                   write transaction when it failed (until
                                   one succeeds again) */
    uint32_t node;              /* the cluster's number for this node
                                   (INCR chat:nodes); 0: no cluster, or
                                   not known yet */
} store_stats;

const store_stats *store_stats_of(const store *s);

/* 1 when the loop gives message ids (store_next_id, store_ids_reserve:
 * the SQLite store); 0 when the backend gives each stored message its id
 * in put_done (its table has no next_id and ids_reserve: optional,
 * store_backend.h), and then store_next_id returns 0 and
 * store_ids_reserve does nothing. O(1). */
int store_ids_local(const store *s);

/* The first message id the loop may give: above every id stored or
 * reserved (store_ids_reserve) before, and at least the milliseconds since
 * 2024-01-01 times 1000 at open (so that ids keep growing even over a new,
 * empty database, unless more than a million were given per second on
 * average since the last start; about 2^46 today: 7 bytes in a row). */
uint64_t store_next_id(const store *s);
#define STORE_ID_EPOCH_MS INT64_C(1704067200000) /* 2024-01-01 */

/* The loop may give ids up to `upto` (exclusive) without storing them:
 * written with the next transaction, so that a restart after a crash never
 * gives one of them again. Lower values than before change nothing. */
void store_ids_reserve(store *s, uint64_t upto);

/* Messages / body bytes held for receiver (committed, as of the last
 * completed transaction). For logs and tests; O(1). */
uint64_t store_count(const store *s, uint32_t receiver);

/* A message to put: the body is copied. */
typedef struct store_msg {
    uint64_t id;
    uint32_t receiver, sender;
    uint32_t sdev;        /* the device that sent it (store_device_info.dev) */
    uint8_t type;
    uint8_t own;          /* 1: its sender has other CONV devices, which get
                             it as an own copy (indexed for their fetches) */
    uint64_t cid;         /* the client's id of it, 0: none (remembered for
                             --dedup-window for its sender's device) */
    int64_t ts;           /* accepted at, unix ms */
    const uint8_t *body;
    uint32_t len;
    uint8_t again;        /* handed back at a close: a row with its id may
                             exist already (then this put does nothing) */
    uint32_t grp;         /* a group message: its group (receiver 0: for
                             every member; else a copy for receiver only) */
} store_msg;

/* Queue a put. `quota` = 1 checks the receiver's limits (the message is
 * held because the receiver cannot take it now); 0 stores it regardless (a
 * durable copy of a frame being delivered live). Returns 0 or
 * STORE_ENOMEM (nothing queued). */
int store_put(store *s, const store_msg *m, int quota, void *token,
              uint64_t seq);

/* Queue the deletion of message id whoever still needs it (no
 * completion; an unknown id is ignored). user: the receiver it was put
 * for (store_msg.receiver), whose log holds it (a backend that keeps a log
 * per user finds it there; SQLite finds the row by its id alone and
 * ignores user). A delete that fails with the transaction is retried with
 * the next one. */
void store_del(store *s, uint32_t user, uint64_t id);

/* Queue a fetch of the oldest messages of `user`'s log after after_id, for
 * its device `dev`: those sent to the user, and with `conv` also those the
 * user sent from its other devices. At most max_rows rows and about
 * max_bytes body bytes (at least one row). fetch_done always runs later on
 * the loop, never inside this call, and exactly once unless the store is
 * stopped first. A fetch that cannot be queued (out of memory) completes
 * with STORE_ENOMEM, in submission order like the others. Only when even
 * that failure cannot be recorded (more than 64 of them waiting and no
 * memory to grow the queue) does the process abort. */
void store_fetch(store *s, uint32_t user, uint32_t dev, int conv,
                 uint64_t after_id, uint32_t max_rows, uint32_t max_bytes,
                 void *token);

/* Queue the lookup of user's device `name` (namelen <= STORE_DEVICE_MAX
 * bytes, "" for the default device), creating it when new (its cursor:
 * that of the user's least advanced device seen within --device-ttl, or 0
 * for the user's first), and marking it seen now. conv: it takes own
 * copies. device_done runs later, exactly once unless the store is
 * stopped first (failures, out of memory included, complete with a
 * status, like fetches). */
void store_device(store *s, uint32_t user, const char *name, size_t namelen,
                  int conv, void *token);

/* Device dev of user has every message of its log up to `cursor` (a lower
 * value than before changes nothing), and was seen now. Messages no device
 * needs any more are deleted in the same transaction. `closed`: one of its
 * connections (each store_device counts one) closed. A device with a
 * connection is never forgotten (--device-ttl). No completion; an unknown
 * device is ignored. */
void store_cursor(store *s, uint32_t user, uint32_t dev, uint64_t cursor,
                  int closed);

/* Queue a history page (docs/PROTOCOL.md, HISTORY) for user: with peer
 * (group = 0) the messages between the two, or the messages of group
 * (peer = 0) with an id above min_id (when user joined); each below
 * `before` (0: any), accepted within --history-ttl (none without it),
 * newest first, at most max_rows and about max_bytes. history_done
 * answers as fetch_done does. */
void store_history(store *s, uint32_t user, uint32_t peer, uint32_t group,
                   uint64_t min_id, uint64_t before, uint32_t max_rows,
                   uint32_t max_bytes, void *token);

/* A group operation (docs/PROTOCOL.md, GROUP), checked against the
 * store's groups (the authority) and written in the next transaction.
 * group_done answers, exactly once unless the store is stopped first. */
enum { STORE_G_CREATE = 1, STORE_G_RENAME, STORE_G_ADD, STORE_G_REMOVE,
       STORE_G_LEAVE,
       STORE_G_JOINED /* (the loop's) users of the group get messages after
                         `joined`: set when the loop routes to them */ };
typedef struct store_group_op {
    uint8_t op;               /* STORE_G_* */
    uint32_t group;           /* 0 for CREATE */
    uint32_t actor;           /* who asks */
    const char *name;         /* CREATE, RENAME: 1..GROUPS_NAME_MAX bytes */
    size_t namelen;
    const uint32_t *users;    /* CREATE, ADD, REMOVE (copied) */
    size_t nusers;
    uint64_t joined;          /* added members get messages after it */
    uint64_t was;             /* STORE_G_JOINED: only the members whose
                                 joined is this (those the ADD added) */
    uint32_t max_members;     /* --max-group-members */
} store_group_op;
void store_group(store *s, const store_group_op *op, void *token);

/* -- Signals (docs/PROTOCOL.md "Receipts, typing and presence") --------- */

/* user has shown the messages of its conversation with peer (group 0), or
 * of group (peer 0), up to `upto` (at time ts, unix ms): kept as the
 * highest mark given, one row per user and conversation (table `reads`),
 * written in the next transaction. No completion: it is a hint, and a
 * failure costs the mark only (the transaction's other work is not held
 * back by it). */
void store_read_mark(store *s, uint32_t user, uint32_t peer, uint32_t group,
                     uint64_t upto, int64_t ts);

/* One user's marks in a conversation (store_marks). */
typedef struct store_mark {
    uint32_t user;
    uint64_t delivered;   /* the highest cursor of its devices (0: none) */
    uint64_t read;        /* its read mark (0: none) */
    int64_t read_ts;      /* when it was set (0: none) */
} store_mark;

/* The marks of a conversation as user sees it: with peer (group 0): two
 * entries, peer's then user's own; of group (peer 0): one per member, in
 * the group's member order (none when user is not a member; at most
 * STORE_MARKS_MAX). marks_done answers, exactly once unless the store is
 * stopped first (a request that cannot be queued, or whose transaction
 * failed, completes with a STORE_E* status and no marks); its marks belong
 * to the store and are valid during the callback only. Cost on the store
 * thread: one primary-key lookup of `reads` per entry. */
#define STORE_MARKS_MAX 4096u /* the largest --max-group-members */
void store_marks(store *s, uint32_t user, uint32_t peer, uint32_t group,
                 void *token);

/* Note that user a and user b exchanged a message that was delivered
 * without being stored (a stored one is noted by its put): the contacts
 * that store_presence checks. Written in the next transaction (a pair the
 * store thread wrote recently costs no write); no completion; lost if that
 * transaction fails (as the put of a message would be). a == b, or either
 * 0, is ignored. */
void store_contact(store *s, uint32_t a, uint32_t b);

/* For users[0..n) (copied; n <= STORE_PRESENCE_MAX, more are not
 * asked): their last-seen times and, when `check`, whether user may see
 * their presence (is that user, shares a group with them, or a message was
 * stored or noted between them: table `contacts`); else every one is
 * allowed. presence_done answers, exactly once unless the store is stopped
 * first, in submission order (as store_marks for failures); its arrays
 * belong to the store and are valid during the callback only. */
#define STORE_PRESENCE_MAX 256u
void store_presence(store *s, uint32_t user, const uint32_t *users, size_t n,
                    int check, void *token);

/* The groups as of the last completed transaction (the loop's copy,
 * updated before the callbacks of each batch run). */
const groups *store_groups(const store *s);

/* The devices of user seen within --device-ttl, as of the last completed
 * transaction: *all of them, *conv of which take own copies. O(1). */
void store_devices(const store *s, uint32_t user, unsigned *all,
                   unsigned *conv);

/* 1 when several processes share the store (the cluster's nodes on one
 * Redis), 0 when this process is its only user (SQLite). A shared store
 * hands each process the stored messages of the users it holds on its
 * feed (the `live` callback, in id order), whichever process stored them,
 * and tells every process, this one too, when a user's first connection
 * anywhere opens or its last one closes (`presence_event`): so the loop
 * routes a message it stored only from the feed, and takes presence
 * changes from the store rather than from its own router. Independent of
 * store_ids_local (who gives the ids), although the cluster store is
 * both. O(1). */
int store_shared(const store *s);

/* A control frame (TYPING, RECEIPT, a GROUPS event) for user's connections
 * in the OTHER processes sharing the store (the cluster's nodes that hold
 * user): their `relay` callback gets it. Not stored: a hint, lost if a
 * node cannot be reached. The SQLite store has no others: nothing
 * (OPTIONAL in the table). No completion. */
void store_relay(store *s, uint32_t user, uint32_t sender, uint8_t type,
                 const uint8_t *body, size_t len);

/* This process holds a connection of user (on = 1: the first one came;
 * 0: the last one left). A backend shared by several processes (the
 * cluster) routes user's stored messages here from now on (the `live`
 * callback), before any fetch queued after this call runs; the SQLite store
 * ignores it (OPTIONAL in the table). No completion. */
void store_online(store *s, uint32_t user, int on);

/* 1 when the store can keep the promise of an acknowledgement now (a
 * message acknowledged survives any process killed): the SQLite store
 * always; the cluster's only while Redis persists every write before it
 * answers (docs/CLUSTER.md 4.2). A HELLO asking for ACKS while it is 0 is
 * not granted them (WELCOME says so). O(1). */
int store_acks(const store *s);

/* -- Accounts (OPTIONAL: a backend that keeps them) -------------------- */

/* 1 when the store keeps the user accounts, so that --auth on reads each
 * password hash through store_account (the cluster store: u:{U} field pw
 * in Redis, docs/CLUSTER.md 2.3); 0 when they live elsewhere (the SQLite
 * store: accounts.h reads dir/chat.db directly, off the loop: auth.h).
 * O(1). */
int store_accounts(const store *s);

/* Queue the read of user's password hash (only when store_accounts() is
 * 1). account_done answers later on the loop thread, never inside this
 * call, in submission order, exactly once unless the store is stopped
 * first (a request that cannot be queued completes with STORE_ENOMEM, and
 * one the store cannot send, Redis down, with STORE_EIO). The cluster
 * store: one HGET, a round trip. */
void store_account(store *s, uint32_t user, void *token);

/* Hand the pending batch to the store thread (no-op when empty). */
void store_flush(store *s);

/* New quotas per receiver (store_config's max_messages and max_bytes; a
 * reload): the puts of every batch flushed from now on are checked against
 * them. Stored messages over a lowered quota stay. */
void store_set_quota(store *s, uint64_t max_messages, uint64_t max_bytes);

/* Body bytes of puts queued or in flight, not yet completed: the loop stops
 * reading from clients when this passes its bound. */
size_t store_pending_bytes(const store *s);

/* Begin closing on the loop thread: flush, let the thread finish every
 * queued request, and close the wake-up handle (the loop may then end).
 * Completions that arrive later are dropped. */
void store_stop(store *s);

/* After uv_run() returned: join the thread, close the database, free
 * (SQLite; every backend: free everything of s). NULL: nothing. */
void store_free(store *s);

#endif
