/*
 * store_backend.h -- what a store backend implements: the operations table
 * behind store.h. Included by the backends (the SQLite one through
 * store_int.h) and by store.c, which dispatches; never by the store's
 * callers, which see store.h only.
 *
 * A backend's handle is its own struct whose FIRST member is a `store`
 * (below), so that a pointer to the one is a pointer to the other (C11
 * 6.7.2.1p15): its constructor fills `ops` with its table and hands the
 * callers &handle->base; each operation converts back. Today's backends:
 *
 *     store_open        SQLite, on its own thread (store_int.h,
 *                       src/server/store_*.c): store__sqlite_ops
 *
 * and docs/CLUSTER.md section 6.1 plans the second (Redis, on the loop
 * thread, chosen at start by --cluster).
 *
 * The contract of each operation is that of the store.h function of the
 * same name (its first argument is the store it was called on, never
 * NULL); store.c calls it and does nothing else, so a backend keeps every
 * promise store.h makes: completions on the loop thread, never inside the
 * call, in submission order; exactly once unless stopped first; failures
 * as STORE_E* statuses.
 *
 * Required: every operation but those marked OPTIONAL. store.c asserts
 * that an operation it calls is there; a table's ops are never changed
 * after its constructor returned.
 *
 * Cost: per store.h call, one direct call (store.c is a file of its own)
 * and one indirect jump: 2 instructions in the dispatcher, about 7 per
 * stored message (docs/ARCHITECTURE.md, "The store: an interface and its
 * backends", measured with callgrind).
 */
#ifndef CHAT_SERVER_STORE_BACKEND_H
#define CHAT_SERVER_STORE_BACKEND_H

#include "server/store.h"

/* The start of every backend's handle. */
struct store {
    const store_ops *ops; /* first: the dispatchers read only this */
};

struct store_ops {
    int (*put)(store *s, const store_msg *m, int quota, void *token,
               uint64_t seq);
    void (*del)(store *s, uint32_t user, uint64_t id);
    void (*fetch)(store *s, uint32_t user, uint32_t dev, int conv,
                  uint64_t after_id, uint32_t max_rows, uint32_t max_bytes,
                  void *token);
    void (*device)(store *s, uint32_t user, const char *name, size_t namelen,
                   int conv, void *token);
    void (*cursor)(store *s, uint32_t user, uint32_t dev, uint64_t cursor,
                   int closed);
    void (*history)(store *s, uint32_t user, uint32_t peer, uint32_t group,
                    uint64_t min_id, uint64_t before, uint32_t max_rows,
                    uint32_t max_bytes, void *token);
    void (*group)(store *s, const store_group_op *op, void *token);
    void (*read_mark)(store *s, uint32_t user, uint32_t peer, uint32_t group,
                      uint64_t upto, int64_t ts);
    void (*marks)(store *s, uint32_t user, uint32_t peer, uint32_t group,
                  void *token);
    void (*contact)(store *s, uint32_t a, uint32_t b);
    void (*presence)(store *s, uint32_t user, const uint32_t *users,
                     size_t n, int check, void *token);
    const groups *(*groups)(const store *s);
    void (*devices)(const store *s, uint32_t user, unsigned *all,
                    unsigned *conv);
    void (*flush)(store *s);
    void (*set_quota)(store *s, uint64_t max_messages, uint64_t max_bytes);
    size_t (*pending_bytes)(const store *s);
    const store_stats *(*stats_of)(const store *s);
    uint64_t (*count)(const store *s, uint32_t receiver);
    /* OPTIONAL, both or neither: NULL when the backend gives each stored
     * message its id itself (put_done's id; the Redis store's counter,
     * docs/CLUSTER.md 2.2). Then store_ids_local() is 0, store_next_id()
     * is 0 and store_ids_reserve() does nothing. */
    uint64_t (*next_id)(const store *s);
    void (*ids_reserve)(store *s, uint64_t upto);
    /* OPTIONAL: NULL when acknowledgements are always kept (store_acks()
     * is then 1). */
    int (*acks)(const store *s);
    /* 1 when several processes share the store (the Redis store: the
     * nodes of a cluster), 0 when this process is its only user (SQLite):
     * store_shared(). A shared backend must have `online` (it hands each
     * process the messages of the users it holds, on the `live`
     * callback). */
    int shared;
    /* OPTIONAL: NULL when every message goes through this process (the
     * SQLite store): store_online() then does nothing. */
    void (*online)(store *s, uint32_t user, int on);
    /* OPTIONAL: NULL when no other process shares the store. */
    void (*relay)(store *s, uint32_t user, uint32_t sender, uint8_t type,
                  const uint8_t *body, size_t len);
    /* OPTIONAL: NULL when the backend does not keep the accounts (the
     * SQLite store: accounts.h reads chat.db itself); store_accounts() is
     * then 0, and store_account must not be called. */
    void (*account)(store *s, uint32_t user, void *token);
    void (*stop)(store *s);
    /* After uv_run() returned: everything of the handle is freed. */
    void (*free)(store *s);
};

#endif
