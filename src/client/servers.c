/*
 * servers.c -- libchat's server list: which server the next connection
 * attempt goes to, and how long to wait before it (include/chat.h,
 * "Several servers").
 *
 * Invariants:
 * - 1 <= n_servers <= CHAT_SERVERS_MAX; servers[0..n_servers) each hold an
 *   owned host copy and a port != 0; cur < n_servers.
 * - `advance` is set exactly when the last attempt on `cur` failed or its
 *   session was lost; the next attempt (chat__server_next) clears it and
 *   moves on, so a failure moves the rotation by one and a user's
 *   chat_disconnect / chat_connect stays on the same server.
 * - `fails` counts failures in a row since the last ready session; a
 *   whole round ends at every multiple of n_servers, and only there does a
 *   backoff delay apply. With one server every failure ends a round, which
 *   is the backoff schedule libchat had before the list.
 */
#include "chat.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

int chat__servers_init(chat_client *c, const char *host, uint16_t port) {
    c->servers[0].host = strdup(host);
    if (!c->servers[0].host) return CHAT_ENOMEM;
    c->servers[0].port = port;
    c->n_servers = 1;
    c->cur = 0;
    c->advance = 0;
    c->default_port = port;
    return 0;
}

void chat__servers_free(chat_client *c) {
    for (unsigned i = 0; i < c->n_servers; i++) free(c->servers[i].host);
    c->n_servers = 0;
}

int chat_set_servers(chat_client *c, const char *const *hosts,
                     const uint16_t *ports, size_t n) {
    if (!c || !hosts || n == 0 || n > CHAT_SERVERS_MAX) return CHAT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!hosts[i] || !hosts[i][0] || strnlen(hosts[i], CHAT_HOST_MAX + 1) > CHAT_HOST_MAX)
            return CHAT_EINVAL;
    if (c->state != CHAT_ST_IDLE) return CHAT_ESTATE;
    /* Copy everything first, so that a failed allocation leaves the old
     * list in place (all or nothing). */
    chat__server fresh[CHAT_SERVERS_MAX];
    for (size_t i = 0; i < n; i++) {
        fresh[i].host = strdup(hosts[i]);
        if (!fresh[i].host) {
            while (i > 0) free(fresh[--i].host);
            return CHAT_ENOMEM;
        }
        fresh[i].port = ports && ports[i] ? ports[i] : c->default_port;
    }
    chat__servers_free(c);
    memcpy(c->servers, fresh, n * sizeof fresh[0]);
    c->n_servers = (unsigned)n;
    c->cur = 0;
    c->advance = 0;
    c->fails = 0;
    return CHAT_OK;
}

const chat__server *chat__server_next(chat_client *c) {
    assert(c->n_servers >= 1 && c->cur < c->n_servers);
    if (c->advance) {
        c->cur = (c->cur + 1) % c->n_servers;
        c->advance = 0;
    }
    return &c->servers[c->cur];
}

void chat__server_failed(chat_client *c) {
    if (c->fails < UINT_MAX) c->fails++; /* saturates: the backoff is capped long before */
    c->advance = 1;
}

uint32_t chat__retry_delay(const chat_client *c) {
    assert(c->n_servers >= 1);
    if (c->fails % c->n_servers != 0) return 0; /* inside a round: fail over now */
    unsigned rounds = c->fails / c->n_servers;  /* >= 1: called after a failure */
    return chat_backoff_ms(rounds ? rounds - 1 : 0, c->bo_min, c->bo_max);
}

int chat_server_index(const chat_client *c) { return c ? (int)c->cur : CHAT_EINVAL; }

unsigned chat_failures(const chat_client *c) { return c ? c->fails : 0; }
