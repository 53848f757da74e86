/*
 * list.h -- an intrusive doubly linked list with a sentinel.
 *
 * A structure that may sit on a list embeds a `dlink` per list; the list
 * never owns its members. Header-only, every operation O(1). A link that is
 * on no list has next == NULL (zero-initialise it, or dlink_init), so
 * membership is a test, not a flag kept beside it.
 */
#ifndef CHAT_COMMON_LIST_H
#define CHAT_COMMON_LIST_H

#include <assert.h>
#include <stddef.h>

typedef struct dlink {
    struct dlink *prev, *next;
} dlink;

typedef struct dlist {
    dlink s;  /* sentinel: s.next is the head, s.prev the tail */
    size_t n; /* members */
} dlist;

/* The structure of type `type` whose member `field` is at pointer p. */
#define DLIST_ENTRY(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

static inline void dlist_init(dlist *l) {
    l->s.prev = l->s.next = &l->s;
    l->n = 0;
}

static inline void dlink_init(dlink *k) { k->prev = k->next = NULL; }

static inline int dlink_linked(const dlink *k) { return k->next != NULL; }

static inline int dlist_empty(const dlist *l) { return l->s.next == &l->s; }

/* First member, or NULL. */
static inline dlink *dlist_first(const dlist *l) {
    return l->s.next == &l->s ? NULL : l->s.next;
}

/* The member after k, or NULL at the tail. */
static inline dlink *dlist_next(const dlist *l, const dlink *k) {
    return k->next == &l->s ? NULL : k->next;
}

static inline void dlist_push_tail(dlist *l, dlink *k) {
    assert(!dlink_linked(k));
    k->next = &l->s;
    k->prev = l->s.prev;
    l->s.prev->next = k;
    l->s.prev = k;
    l->n++;
}

static inline void dlist_del(dlist *l, dlink *k) {
    assert(dlink_linked(k) && l->n > 0);
    k->prev->next = k->next;
    k->next->prev = k->prev;
    k->prev = k->next = NULL;
    l->n--;
}

/* k (a member) moves to the tail. */
static inline void dlist_move_tail(dlist *l, dlink *k) {
    if (l->s.prev == k) return;
    dlist_del(l, k);
    dlist_push_tail(l, k);
}

#endif
