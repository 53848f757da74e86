#include "router.h"

#include <stddef.h>

void router_init(router *r) {
    u32map_init(&r->users);
    r->nodes = 0;
}

void router_free(router *r) { u32map_free(&r->users); }

int router_add(router *r, router_node *n, uint32_t user) {
    router_node *head = u32map_get(&r->users, user);
    if (u32map_put(&r->users, user, n)) return -1;
    n->prev = NULL;
    n->next = head;
    if (head) head->prev = n;
    n->user = user;
    r->nodes++;
    return 0;
}

void router_del(router *r, router_node *n) {
    if (n->user == 0) return;
    if (n->prev) {
        n->prev->next = n->next;
    } else if (n->next) {
        /* (void): the key exists, so this replaces its value: no
         * allocation, cannot fail */
        (void)u32map_put(&r->users, n->user, n->next);
    } else {
        u32map_del(&r->users, n->user);
    }
    if (n->next) n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->user = 0;
    r->nodes--;
}

router_node *router_first(const router *r, uint32_t user) {
    return u32map_get(&r->users, user);
}
