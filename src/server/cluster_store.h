/*
 * cluster_store.h -- the cluster store from the settings: --cluster and
 * its --cluster-* companions made into a connection's options (the URL
 * parsed, the password read from its file: cluster_conn_init, also for
 * `chat-server user --cluster`), then a store_redis_config and
 * store_redis_open.
 *
 * Called by main before the loop serves clients (store_redis_open runs the
 * loop until the node is ready or its deadline passed). Threads: main.
 */
#ifndef CHAT_SERVER_CLUSTER_STORE_H
#define CHAT_SERVER_CLUSTER_STORE_H

#include <stddef.h>
#include <uv.h>

#include "server/cluster_url.h"
#include "server/config.h"
#include "server/rconn.h"
#include "server/store.h"

/* Longest password read from --cluster-password-file (Redis's own limit
 * is far higher; a longer first line is refused, never cut). */
#define CLUSTER_PASSWORD_MAX 512

/* Where and how to reach the cluster's Redis, from the settings. */
typedef struct cluster_conn {
    cluster_url url;                       /* --cluster, parsed */
    char password[CLUSTER_PASSWORD_MAX + 2]; /* "" without a password file */
    /* The connection's options (addrs, naddrs, user, password, tls and
     * its files, tls_server_name; the rest 0: rconn's defaults). Its
     * strings point into this struct and into the config: both must
     * outlive its use (rconn_new and store_redis_open copy them). */
    rconn_options o;
} cluster_conn;

/* Fill *cc from cfg (cfg->cluster set): parse the URL, read the password
 * file. 0, or -1 with a sentence in err (a bad URL, an unreadable password
 * file, ...). Wipe it with cluster_conn_wipe once used. */
int cluster_conn_init(cluster_conn *cc, const config *cfg, char *err,
                      size_t errlen);

/* The password wiped (the rest stays). */
void cluster_conn_wipe(cluster_conn *cc);

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
