/*
 * store.h -- the offline message store, as the server sees it.
 *
 * A store keeps, per receiver, a FIFO of data frames that could not be
 * written to a live connection: the receiver was offline, its output queue
 * overflowed, or the server stopped before sending them. Frames come back
 * out in the order they were put, oldest first.
 *
 * This is an interface: the server only calls store_* below, and a backend
 * fills a struct store_ops. Backends: store_mem.c (memory, not durable).
 *
 * Threading: every call is made on the event-loop thread. The memory backend
 * completes each call before it returns.
 */
#ifndef CHAT_SERVER_STORE_H
#define CHAT_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Errors (negative). */
enum {
    STORE_EQUOTA = -1, /* the receiver's quota (messages or bytes) is full */
    STORE_ENOMEM = -2,
    STORE_EIO = -3     /* the backend failed to write */
};

/* Per-receiver quotas; 0 means unlimited. */
typedef struct store_limits {
    uint64_t max_messages;
    uint64_t max_bytes;
} store_limits;

/* A stored message as handed to a visitor. `body` belongs to the store and
 * is valid only during the visitor call. */
typedef struct store_msg {
    uint32_t receiver;
    uint32_t sender;
    uint8_t type;
    uint32_t len;
    const uint8_t *body;
} store_msg;

/* Visitor for store_take: return 0 to take the message (it is removed from
 * the store) and go on, non-zero to stop before it (it stays, first). */
typedef int (*store_visit_fn)(void *arg, const store_msg *m);

typedef struct store store;

struct store_ops {
    int (*put)(store *s, const store_msg *m);
    size_t (*take)(store *s, uint32_t receiver, size_t max,
                   store_visit_fn fn, void *arg);
    uint64_t (*count)(store *s, uint32_t receiver);
    void (*close)(store *s);
};

struct store {
    const struct store_ops *ops;
    const char *name; /* "memory" */
    int durable;      /* 1 when a put survives a restart */
};

/* Copy m into the store, at the end of its receiver's queue. Returns 0 or a
 * STORE_E* code; on error nothing was stored. */
static inline int store_put(store *s, const store_msg *m) {
    return s->ops->put(s, m);
}

/* Hand up to `max` of receiver's messages, oldest first, to fn, removing
 * each one fn takes. Returns how many were taken. */
static inline size_t store_take(store *s, uint32_t receiver, size_t max,
                                store_visit_fn fn, void *arg) {
    return s->ops->take(s, receiver, max, fn, arg);
}

/* Messages held for receiver. O(1). */
static inline uint64_t store_count(store *s, uint32_t receiver) {
    return s->ops->count(s, receiver);
}

/* Free the store and everything in it (memory) or close it (durable). */
static inline void store_close(store *s) { s->ops->close(s); }

/* Memory backend (store_mem.c). Returns NULL when out of memory. */
store *store_mem_open(const store_limits *lim);

/* "quota full", "out of memory", "I/O error". */
const char *store_strerror(int err);

#endif
