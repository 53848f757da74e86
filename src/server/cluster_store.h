/*
 * cluster_store.h -- the cluster store from the settings: --cluster and
 * its --cluster-* companions made into a store_redis_config (the URL
 * parsed, the password read from its file), then store_redis_open.
 *
 * Called by main before the loop serves clients (store_redis_open runs the
 * loop until the node is ready or its deadline passed). Threads: main.
 */
#ifndef CHAT_SERVER_CLUSTER_STORE_H
#define CHAT_SERVER_CLUSTER_STORE_H

#include <stddef.h>
#include <uv.h>

#include "server/config.h"
#include "server/store.h"

/* Longest password read from --cluster-password-file (Redis's own limit
 * is far higher; a longer first line is refused, never cut). */
#define CLUSTER_PASSWORD_MAX 512

/* Open the cluster store of cfg (cfg->cluster set) on loop. 0 with *out
 * set, or a STORE_E* code with a sentence in err (an unreadable password
 * file, Redis unreachable, wrong password, ...). */
int cluster_store_open(store **out, uv_loop_t *loop, const config *cfg,
                       const store_callbacks *cb, char *err, size_t errlen);

/* Read the password: the first line of path, without its line end. 0, or
 * -1 with a sentence in err (missing, unreadable, empty, too long). */
int cluster_read_password(const char *path, char *out, size_t cap,
                          char *err, size_t errlen);

#endif
