/*
 * stats.h -- what the server tells about itself over HTTP: /metrics (the
 * Prometheus text exposition format 0.0.4) and /healthz. The hub's calls up
 * (hub_ops.metrics, hub_ops.health) land here. Loop thread only.
 */
#ifndef CHAT_SERVER_STATS_H
#define CHAT_SERVER_STATS_H

#include <stddef.h>

#include "common/buf.h"
#include "server/hub.h"

/* Append every metric family to out. 0, or -1 when out of memory. */
int stats_metrics(hub *h, buf *out);

/* 1 when the server can take messages: the loop turns (it runs this) and
 * the store's last write transaction succeeded; else 0 and why. */
int stats_health(hub *h, char *why, size_t n);

#endif
