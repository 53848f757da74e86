/*
 * store_mem.c -- the memory backend of store.h.
 *
 * Each receiver with stored messages has a queue: a singly linked list of
 * messages, each one malloc'd block (header + body), appended at the tail
 * and taken from the head. Receivers are found through a u32map. Nothing
 * survives the process: the server says so when it starts.
 *
 * Invariants: a queue in the map is never empty (it is removed with its last
 * message); q->bytes is the sum of its messages' body lengths.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "common/u32map.h"

typedef struct mem_msg {
    struct mem_msg *next;
    uint32_t sender;
    uint8_t type;
    uint32_t len;
    uint8_t body[];
} mem_msg;

typedef struct mem_queue {
    mem_msg *head, *tail;
    uint64_t count;
    uint64_t bytes;
} mem_queue;

typedef struct mem_store {
    store base;
    store_limits lim;
    u32map queues; /* receiver -> mem_queue* */
} mem_store;

static int mem_put(store *s, const store_msg *m) {
    mem_store *ms = (mem_store *)s;
    mem_queue *q = u32map_get(&ms->queues, m->receiver);
    if (q) {
        if (ms->lim.max_messages && q->count >= ms->lim.max_messages)
            return STORE_EQUOTA;
        if (ms->lim.max_bytes && q->bytes + m->len > ms->lim.max_bytes)
            return STORE_EQUOTA;
    } else if (ms->lim.max_bytes && m->len > ms->lim.max_bytes) {
        return STORE_EQUOTA;
    }
    mem_msg *e = malloc(sizeof *e + m->len);
    if (!e) return STORE_ENOMEM;
    e->next = NULL;
    e->sender = m->sender;
    e->type = m->type;
    e->len = m->len;
    if (m->len) memcpy(e->body, m->body, m->len);
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q || u32map_put(&ms->queues, m->receiver, q)) {
            free(q);
            free(e);
            return STORE_ENOMEM;
        }
    }
    if (q->tail) q->tail->next = e;
    else q->head = e;
    q->tail = e;
    q->count++;
    q->bytes += m->len;
    return 0;
}

static size_t mem_take(store *s, uint32_t receiver, size_t max,
                       store_visit_fn fn, void *arg) {
    mem_store *ms = (mem_store *)s;
    mem_queue *q = u32map_get(&ms->queues, receiver);
    size_t n = 0;
    while (q && q->head && n < max) {
        mem_msg *e = q->head;
        store_msg m = {receiver, e->sender, e->type, e->len, e->body};
        if (fn(arg, &m)) break;
        q->head = e->next;
        if (!q->head) q->tail = NULL;
        q->count--;
        q->bytes -= e->len;
        free(e);
        n++;
    }
    if (q && !q->head) {
        u32map_del(&ms->queues, receiver);
        free(q);
    }
    return n;
}

static uint64_t mem_count(store *s, uint32_t receiver) {
    mem_queue *q = u32map_get(&((mem_store *)s)->queues, receiver);
    return q ? q->count : 0;
}

static void mem_close(store *s) {
    mem_store *ms = (mem_store *)s;
    for (size_t i = 0; ms->queues.slots && i <= ms->queues.mask; i++) {
        mem_queue *q = ms->queues.slots[i].val;
        if (!ms->queues.slots[i].key) continue;
        for (mem_msg *e = q->head, *next; e; e = next) {
            next = e->next;
            free(e);
        }
        free(q);
    }
    u32map_free(&ms->queues);
    free(ms);
}

static const struct store_ops mem_ops = {mem_put, mem_take, mem_count,
                                         mem_close};

store *store_mem_open(const store_limits *lim) {
    mem_store *ms = calloc(1, sizeof *ms);
    if (!ms) return NULL;
    ms->base.ops = &mem_ops;
    ms->base.name = "memory";
    ms->base.durable = 0;
    ms->lim = *lim;
    u32map_init(&ms->queues);
    return &ms->base;
}

const char *store_strerror(int err) {
    switch (err) {
    case 0: return "ok";
    case STORE_EQUOTA: return "receiver's offline quota is full";
    case STORE_ENOMEM: return "out of memory";
    case STORE_EIO: return "store I/O error";
    default: return "unknown store error";
    }
}
