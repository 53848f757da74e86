/* bgroup.c -- see bgroup.h. */
#include "bgroup.h"

#include <assert.h>
#include <stdlib.h>

int bgroup_init(bgroup *g, uint32_t receivers, uint32_t depth, int acks) {
    assert(receivers > 0 && depth > 0);
    *g = (bgroup){.receivers = receivers, .depth = depth, .acks = acks};
    g->left = calloc(depth, sizeof *g->left);
    return g->left ? 0 : -1;
}

void bgroup_free(bgroup *g) {
    free(g->left);
    g->left = NULL;
}

uint32_t bgroup_room(const bgroup *g) {
    uint64_t done = g->acks && g->acked < g->complete ? g->acked : g->complete;
    return g->depth - (uint32_t)(g->sent - done);
}

void bgroup_posted(bgroup *g) {
    assert(bgroup_room(g) > 0);
    g->left[g->sent % g->depth] = g->receivers;
    g->sent++;
}

int bgroup_delivered(bgroup *g, uint64_t n) {
    if (n >= g->sent || n < g->complete) return -1;
    uint32_t *l = &g->left[n % g->depth];
    assert(*l > 0); /* n is in flight, so it still lacks someone */
    if (--*l) return 0;
    /* complete; every receiver had n - 1 before n, so n - 1 was too */
    assert(n == g->complete);
    g->complete = n + 1;
    return 1;
}

int bgroup_acked(bgroup *g, uint64_t count) {
    if (count < g->acked || count > g->sent) return -1;
    g->acked = count;
    return 0;
}

uint64_t bgroup_due(const bgroup *g) {
    uint64_t due = 0;
    for (uint64_t n = g->complete; n < g->sent; n++) due += g->left[n % g->depth];
    return due;
}
