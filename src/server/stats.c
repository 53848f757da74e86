/* stats.c -- see stats.h. */
#include "server/stats.h"

#include <stdio.h>

#include "server/conn.h"
#include "server/procstat.h"

int stats_health(hub *h, char *why, size_t n) {
    const store_stats *st = store_stats_of(h->store);
    if (st->health == STORE_OK) return 1;
    snprintf(why, n, "the store cannot write: %s", store_strerror(st->health));
    return 0;
}

/* The transport labels, by kind (CONN_CHAT, CONN_HTTP, CONN_WS), plain
 * then TLS. */
enum { NTRANSPORTS = 2 * CONN_NKINDS };
static const char *const transports[NTRANSPORTS] = {"tcp", "http", "ws",
                                                    "tls", "https", "wss"};

static unsigned transport_index(const conn *c) {
    return c->kind + (c->tls ? CONN_NKINDS : 0u);
}

/* chat_connections{transport, state}: a walk over the connections (the
 * scrape's cost, not the hot path's). */
static void connections(metrics_out *o, hub *h) {
    uint64_t n[NTRANSPORTS][CONN_NSTATES] = {{0}};
    for (dlink *k = dlist_first(&h->conns); k; k = dlist_next(&h->conns, k)) {
        const conn *c = DLIST_ENTRY(k, conn, all);
        n[transport_index(c)][c->state]++;
    }
    metrics_family(o, "chat_connections", METRICS_GAUGE,
                   "Open connections, by transport and state (docs/"
                   "ARCHITECTURE.md: the states of a connection).");
    for (unsigned t = 0; t < NTRANSPORTS; t++)
        for (unsigned s = 0; s < CONN_NSTATES; s++) {
            if (!n[t][s] && s != CONN_LIVE) continue; /* (LIVE: always) */
            char state[16];
            const char *name = conn_state_name((conn_state)s);
            size_t i = 0;
            for (; name[i] && i + 1 < sizeof state; i++)
                state[i] = (char)(name[i] | 0x20); /* lower case */
            state[i] = 0;
            metrics_u64(o, "chat_connections",
                        (const char *[]){"transport", transports[t], "state",
                                         state, NULL},
                        n[t][s]);
        }
}

static void counter(metrics_out *o, const char *name, const char *help,
                    uint64_t v) {
    metrics_family(o, name, METRICS_COUNTER, help);
    metrics_u64(o, name, NULL, v);
}

static void gauge(metrics_out *o, const char *name, const char *help,
                  uint64_t v) {
    metrics_family(o, name, METRICS_GAUGE, help);
    metrics_u64(o, name, NULL, v);
}

/* A counter by data frame type. */
static void by_type(metrics_out *o, const char *name, const uint64_t *v,
                    const char *label, const char *value) {
    for (unsigned t = 0; t < HUB_TYPES; t++)
        metrics_u64(o, name,
                    (const char *[]){"type", frame_type_name((uint8_t)(t + 1)),
                                     label, value, NULL},
                    v[t]);
}

int stats_metrics(hub *h, buf *out) {
    const hub_stats *s = &h->stats;
    const store_stats *st = store_stats_of(h->store);
    metrics_out o;
    metrics_out_init(&o, out, METRICS_EXPOSITION_MAX);

    metrics_family(&o, "chat_build_info", METRICS_GAUGE,
                   "Always 1; the version of this chat-server.");
    metrics_u64(&o, "chat_build_info",
                (const char *[]){"version", CHAT_VERSION, NULL}, 1);
    if (h->cfg->worker) {
        /* --workers: which worker answered (each has its own
         * --metrics-port), and which node of the cluster it is */
        char worker[16], node[16];
        snprintf(worker, sizeof worker, "%d", h->cfg->worker);
        snprintf(node, sizeof node, "%u", (unsigned)st->node);
        metrics_family(&o, "chat_worker_info", METRICS_GAUGE,
                       "Always 1; this worker's number (--workers, 1 to N) "
                       "and its node number in the cluster.");
        metrics_u64(&o, "chat_worker_info",
                    (const char *[]){"worker", worker, "node", node, NULL},
                    1);
    }
    connections(&o, h);
    gauge(&o, "chat_users_online", "Users with at least one bound connection.",
          h->router->users.count);
    counter(&o, "chat_connections_accepted_total",
            "Connections accepted, on every listener.", s->accepted);
    counter(&o, "chat_connections_refused_total",
            "Connections refused at accept (protected mode, limits).",
            s->refused_conns);
    metrics_family(&o, "chat_logins_total", METRICS_COUNTER,
                   "Logins (HELLO with a password, --auth on), by result.");
    metrics_u64(&o, "chat_logins_total",
                (const char *[]){"result", "ok", NULL}, s->logins);
    metrics_u64(&o, "chat_logins_total",
                (const char *[]){"result", "failed", NULL}, s->login_failures);
    metrics_family(&o, "chat_frames_received_total", METRICS_COUNTER,
                   "Data frames received and accepted, by type.");
    by_type(&o, "chat_frames_received_total", s->in_type, NULL, NULL);
    metrics_family(&o, "chat_frames_delivered_total", METRICS_COUNTER,
                   "Data frames queued to a receiver's connection, by type "
                   "and path (live, or from the store).");
    by_type(&o, "chat_frames_delivered_total", s->live_type, "path", "live");
    by_type(&o, "chat_frames_delivered_total", s->stored_type, "path",
            "stored");
    counter(&o, "chat_frames_held_total",
            "Data frames held in the store for a receiver that was not "
            "live.", s->frames_stored);
    counter(&o, "chat_frames_refused_total",
            "Frames refused (any reason; each answered by an ERROR to a "
            "client that speaks control frames, or logged).", s->refused);
    metrics_family(&o, "chat_errors_sent_total", METRICS_COUNTER,
                   "ERROR frames sent, by code (docs/PROTOCOL.md).");
    for (unsigned c = 1; c < FRAME_ERR_CODES; c++) {
        char code[8];
        snprintf(code, sizeof code, "%u", c);
        metrics_u64(&o, "chat_errors_sent_total",
                    (const char *[]){"code", code, NULL}, s->errors[c]);
    }
    counter(&o, "chat_rate_limited_total",
            "Times a connection went over --rate-msgs or --rate-bytes.",
            s->rate_limited);
    counter(&o, "chat_spilled_total",
            "Times a live receiver fell behind and its frames went to the "
            "store.", s->spilled);
    counter(&o, "chat_frames_deduplicated_total",
            "POSTs dropped because their device had sent their client id "
            "within --dedup-window.", s->deduplicated);
    counter(&o, "chat_signals_sent_total",
            "Receipts, TYPING and presence changes sent to connections "
            "because of another user.", s->signals);
    counter(&o, "chat_signals_dropped_total",
            "... dropped instead: their connection's queue was at "
            "--max-outbuf.", s->signals_dropped);
    counter(&o, "chat_received_bytes_total",
            "Bytes read from client sockets (TLS: ciphertext).", s->bytes_in);
    counter(&o, "chat_sent_bytes_total",
            "Bytes handed to client sockets (TLS: ciphertext).", s->bytes_out);
    counter(&o, "chat_writes_total", "Socket writes started.", s->writes);
    counter(&o, "chat_http_requests_total",
            "HTTP requests answered, any status.", s->http_requests);
    counter(&o, "chat_websocket_upgrades_total",
            "HTTP connections upgraded to WebSocket at /ws.", s->ws_upgrades);
    metrics_family(&o, "chat_delivery_latency_seconds", METRICS_HISTOGRAM,
                   "Live data frames: from the read that brought a frame to "
                   "the start of the receiver's write that carries it (the "
                   "first frame of a write times all of it).");
    metrics_hist_render(&o, "chat_delivery_latency_seconds", NULL,
                        &s->delivery);
    gauge(&o, "chat_stored_messages", "Messages in the store now.",
          st->messages);
    gauge(&o, "chat_stored_bytes", "Body bytes of the messages in the store.",
          st->bytes);
    gauge(&o, "chat_store_pending_bytes",
          "Message bytes on their way to the disk (--store-max-pending).",
          store_pending_bytes(h->store));
    gauge(&o, "chat_store_paused",
          "1 while reads are paused because the store is behind.",
          h->paused ? 1 : 0);
    metrics_family(&o, "chat_store_transactions_total", METRICS_COUNTER,
                   "Write transactions of the store, by result.");
    metrics_u64(&o, "chat_store_transactions_total",
                (const char *[]){"result", "ok", NULL},
                st->txns - st->txn_failures);
    metrics_u64(&o, "chat_store_transactions_total",
                (const char *[]){"result", "failed", NULL}, st->txn_failures);
    metrics_family(&o, "chat_store_replica_waits_total", METRICS_COUNTER,
                   "WAITs for Redis replicas (--cluster-wait), by result: "
                   "short refused the sends they covered.");
    metrics_u64(&o, "chat_store_replica_waits_total",
                (const char *[]){"result", "ok", NULL},
                st->waits - st->waits_short);
    metrics_u64(&o, "chat_store_replica_waits_total",
                (const char *[]){"result", "short", NULL}, st->waits_short);
    metrics_family(&o, "chat_store_transaction_seconds", METRICS_HISTOGRAM,
                   "Duration of a write transaction (BEGIN to COMMIT, fsync "
                   "included).");
    metrics_hist_render(&o, "chat_store_transaction_seconds", NULL,
                        &st->txn_us);
    metrics_family(&o, "chat_store_transaction_writes", METRICS_HISTOGRAM,
                   "Puts and deletes per write transaction (the batch).");
    metrics_hist_render(&o, "chat_store_transaction_writes", NULL,
                        &st->txn_writes);
    procstat ps;
    (void)procstat_read(&ps, "/proc"); /* (what it could not read is left
                                          out: ps.have) */
    procstat_render(&o, &ps);
    return metrics_out_status(&o) == BUF_ENOMEM ? -1 : 0;
}
