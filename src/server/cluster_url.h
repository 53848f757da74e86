/*
 * cluster_url.h -- the value of --cluster: where the cluster's Redis is.
 *
 *     redis://[USER@]HOST:PORT[,HOST:PORT...]     rediss:// for TLS
 *
 * HOST is a name, an IPv4 address or an IPv6 address in brackets
 * ([::1]:6379); PORT 1-65535 (required: a cluster names its Redis
 * exactly). Several addresses are candidates for the primary, tried in
 * that order (Redis behind Sentinel, or a standby). USER is an ACL user
 * (AUTH USER password; the password comes from --cluster-password-file,
 * never from the URL, which ps would show). Pure: no I/O, no allocation.
 */
#ifndef CHAT_SERVER_CLUSTER_URL_H
#define CHAT_SERVER_CLUSTER_URL_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_URL_MAX_ADDRS 8   /* = RCONN_MAX_ADDRS */
#define CLUSTER_URL_HOST_MAX 255  /* bytes of a host (= RCONN_HOST_MAX) */
#define CLUSTER_URL_USER_MAX 128  /* bytes of an ACL user name */

typedef struct cluster_url {
    int tls;                                   /* rediss:// */
    char user[CLUSTER_URL_USER_MAX + 1];       /* "" when none */
    unsigned n;                                /* 1..CLUSTER_URL_MAX_ADDRS */
    char host[CLUSTER_URL_MAX_ADDRS][CLUSTER_URL_HOST_MAX + 1];
    uint16_t port[CLUSTER_URL_MAX_ADDRS];
} cluster_url;

/* Parse text into *u. 0, or -1 with a sentence in err saying what is wrong
 * ("--cluster: ..." is the caller's prefix). */
int cluster_url_parse(const char *text, cluster_url *u, char *err,
                      size_t errlen);

#endif
