#include "config.h"

#include "server/cluster_url.h"
#include "server/store.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

void config_defaults(config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->bind, sizeof c->bind, "%s", CONFIG_DEFAULT_BIND);
    c->port = CONFIG_DEFAULT_PORT;
    c->workers = 1;
    snprintf(c->data_dir, sizeof c->data_dir, "%s", CONFIG_DEFAULT_DATA_DIR);
    c->max_frame = CONFIG_DEFAULT_MAX_FRAME;
    c->max_outbuf = CONFIG_DEFAULT_MAX_OUTBUF + 65536; /* (see config_parse) */
    c->max_unacked = CONFIG_DEFAULT_MAX_UNACKED;
    c->offline_max_messages = CONFIG_DEFAULT_OFFLINE_MAX_MESSAGES;
    c->offline_max_bytes = CONFIG_DEFAULT_OFFLINE_MAX_BYTES;
    c->offline_ttl_ms = CONFIG_DEFAULT_OFFLINE_TTL_MS;
    c->device_ttl_ms = CONFIG_DEFAULT_DEVICE_TTL_MS;
    c->history_ttl_ms = CONFIG_DEFAULT_HISTORY_TTL_MS;
    c->dedup_ms = CONFIG_DEFAULT_DEDUP_MS;
    c->cluster_wait_ms = CONFIG_DEFAULT_CLUSTER_WAIT_MS;
    c->cluster_connections = 1;
    c->max_group_members = CONFIG_DEFAULT_MAX_GROUP_MEMBERS;
    c->receipt_group_max = CONFIG_DEFAULT_RECEIPT_GROUP_MAX;
    c->max_subscriptions = CONFIG_DEFAULT_MAX_SUBSCRIPTIONS;
    c->fsync_full = 1;
    c->store_max_pending = CONFIG_DEFAULT_STORE_MAX_PENDING;
    c->log_level = LOG_INFO;
    c->login_timeout_ms = CONFIG_DEFAULT_LOGIN_TIMEOUT_MS;
    c->idle_timeout_ms = CONFIG_DEFAULT_IDLE_TIMEOUT_MS;
    c->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
    c->max_conns_per_ip = CONFIG_DEFAULT_MAX_CONNS_PER_IP;
    c->rate_msgs = CONFIG_DEFAULT_RATE_MSGS;
    c->rate_bytes = CONFIG_DEFAULT_RATE_BYTES;
    c->rate_grace_ms = CONFIG_DEFAULT_RATE_GRACE_MS;
    c->tls_port = -1;
    c->http_port = -1;
    c->https_port = -1;
    c->metrics_port = -1;
}

int config_is_loopback(const char *addr) {
    unsigned char a[16];
    if (inet_pton(AF_INET, addr, a) == 1) return a[0] == 127;
    if (inet_pton(AF_INET6, addr, a) != 1) return 0;
    static const unsigned char one[16] = {[15] = 1};
    static const unsigned char v4mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (memcmp(a, one, 16) == 0) return 1;
    return memcmp(a, v4mapped, 12) == 0 && a[12] == 127;
}

int config_parse_size(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1; /* no sign, no blanks */
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -1;
    }
    if (shift && strcmp(end, "iB") == 0) end += 2;      /* 16MiB */
    else if (shift && strcmp(end, "B") == 0) end += 1;  /* 16MB, binary too */
    if (*end) return -1;
    if (shift && v > (UINT64_MAX >> shift)) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int config_parse_duration(const char *s, uint64_t *ms) {
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    uint64_t mul;
    if (strcmp(end, "ms") == 0) mul = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0) mul = 1000;
    else if (strcmp(end, "m") == 0) mul = UINT64_C(60) * 1000;
    else if (strcmp(end, "h") == 0) mul = UINT64_C(3600) * 1000;
    else if (strcmp(end, "d") == 0) mul = UINT64_C(24) * 3600 * 1000;
    else return -1;
    if (v > UINT64_MAX / mul) return -1;
    *ms = (uint64_t)v * mul;
    return 0;
}

/* ---- the table --------------------------------------------------------- */

#define FIELD(f) offsetof(config, f), sizeof(((config *)0)->f)
#define NOFIELD 0, 0
#define U32 UINT32_MAX

static const char *const onoff[] = {"off", "on", NULL};
static const char *const fsyncs[] = {"normal", "full", NULL};
static const char *const formats[] = {"text", "json", NULL};

/* Order: as --help, the manual and docs/OPERATIONS.md show them. */
const setting config_settings[] = {
    {"bind", "ADDR", "Listening", "address to listen on; with --auth off "
     "only a loopback address, unless --insecure-open", NULL,
     SET_STRING, 0, FIELD(bind), 0, 0, NULL},
    {"port", "N", NULL, "TCP port of the article's binary protocol; 0: any "
     "free port (logged)", NULL, SET_PORT, 0, FIELD(port), 0, 65535, NULL},
    {"echo", NULL, NULL, "send every frame back to its sender instead of "
     "routing it (the article's server)", NULL, SET_FLAG, 0, FIELD(echo),
     0, 1, NULL},
    {"tls-port", "N", NULL, "also listen for TLS (1.2 and later) on this "
     "port of --bind; needs --tls-cert and --tls-key; 0: any free port",
     "none", SET_OPT_PORT, 0, FIELD(tls_port), 0, 65535, NULL},
    {"http-port", "N", NULL, "also listen for HTTP on this port of --bind: "
     "the web client at /, WebSocket at /ws, /metrics, /healthz; 0: off (so "
     "that servers on one host never collide), auto: any free port (logged)",
     NULL, SET_HTTP_PORT, 0, FIELD(http_port), 0, 65535, NULL},
    {"https-port", "N", NULL, "the same over TLS (needs --tls-cert and "
     "--tls-key); 0: off, auto: any free port", NULL, SET_HTTP_PORT, 0,
     FIELD(https_port), 0, 65535, NULL},
    {"metrics-port", "N", NULL, "also listen for plain HTTP on this port of "
     "--bind serving only /metrics and /healthz (a Prometheus target); with "
     "--workers N, worker K listens on this port + K - 1, one target each; "
     "0: off, auto: any free port (logged; not with --workers)", NULL,
     SET_HTTP_PORT, 0, FIELD(metrics_port), 0, 65535, NULL},

    {"data-dir", "DIR", "Store", "where the store keeps its files (chat.db; "
     "created if missing)", NULL, SET_PATH, 0, FIELD(data_dir), 0, 0, NULL},
    {"fsync", "full|normal", NULL, "full: every acknowledged message is on "
     "disk and survives a power loss; normal: it survives a crash of the "
     "server, a power loss may lose the last moments", NULL, SET_CHOICE, 0,
     FIELD(fsync_full), 0, 1, fsyncs},
    {"store-max-pending", "BYTES", NULL, "message bytes on their way to the "
     "disk before the server stops reading from clients", NULL, SET_SIZE, 0,
     FIELD(store_max_pending), 65536, SIZE_MAX / 2, NULL},
    {"offline-max-messages", "N", NULL, "stored messages per receiver; 0: "
     "no limit", NULL, SET_COUNT, SET_LIVE, FIELD(offline_max_messages), 0,
     UINT64_MAX, NULL},
    {"offline-max-bytes", "BYTES", NULL, "stored bytes per receiver; 0: no "
     "limit", NULL, SET_SIZE, SET_LIVE, FIELD(offline_max_bytes), 0,
     UINT64_MAX, NULL},
    {"offline-ttl", "DURATION", NULL, "stored messages expire after this; "
     "0: never", NULL, SET_DURATION, 0, FIELD(offline_ttl_ms), 0, UINT64_MAX,
     NULL},
    {"device-ttl", "DURATION", NULL, "a device not seen for this is "
     "forgotten: it no longer holds messages back; 0: never", NULL,
     SET_DURATION, 0, FIELD(device_ttl_ms), 0, UINT64_MAX, NULL},
    {"history-ttl", "DURATION", NULL, "keep every message at least this "
     "long, even once every device has it (history); 0: only until then",
     NULL, SET_DURATION, 0, FIELD(history_ttl_ms), 0, UINT64_MAX, NULL},
    {"dedup-window", "DURATION", NULL, "how long a device's client message "
     "ids are remembered to drop resends; at least 1s", NULL, SET_DURATION,
     0, FIELD(dedup_ms), 1000, UINT64_MAX, NULL},

    {"max-frame", "BYTES", "Frames and queues", "largest frame body "
     "accepted, up to 512M", NULL, SET_SIZE, 0, FIELD(max_frame), 0,
     CONFIG_MAX_FRAME_LIMIT, NULL},
    {"max-outbuf", "BYTES", NULL, "per-connection output queue bound: frames "
     "for a receiver past it wait in the store until it catches up; at least "
     "max-frame + 64K", "4 x max-frame + 64K, at least 64M + 64K (67174400)",
     SET_SIZE, 0, FIELD(max_outbuf), 0, SIZE_MAX / 2, NULL},
    {"max-unacked", "N", NULL, "frames sent to a receiver that acknowledges "
     "and not yet acknowledged: stored frames wait for its ACKs past it, a "
     "live receiver that would pass it gets ERROR SLOW and is closed (its "
     "frames stay stored)", NULL, SET_COUNT, 0, FIELD(max_unacked), 1,
     (uint64_t)1 << 32, NULL},

    {"max-group-members", "N", "Conversations", "members of a group at most "
     "(1 to 4096)", NULL, SET_COUNT, SET_LIVE, FIELD(max_group_members), 1,
     CONFIG_MAX_GROUP_MEMBERS_LIMIT, NULL},
    {"receipt-group-max", "N", NULL, "live receipts only in groups of at "
     "most this many members (larger groups: on QUERY); 0: none live", NULL,
     SET_COUNT, SET_LIVE, FIELD(receipt_group_max), 0,
     CONFIG_MAX_GROUP_MEMBERS_LIMIT, NULL},
    {"max-subscriptions", "N", NULL, "presence subscriptions per connection "
     "at most (0 to 65535)", NULL, SET_COUNT, SET_LIVE,
     FIELD(max_subscriptions), 0, CONFIG_MAX_SUBSCRIPTIONS_LIMIT, NULL},

    {"auth", "on|off", "Security and limits", "on: every connection logs in "
     "first (HELLO with its account's password; accounts: chat-server user "
     "add ID); off: anyone may claim any id, so only loopback peers are "
     "accepted", NULL, SET_CHOICE, 0, FIELD(auth), 0, 1, onoff},
    {"insecure-open", NULL, NULL, "with --auth off, accept non-loopback peers "
     "and a non-loopback --bind anyway", NULL, SET_FLAG, 0,
     FIELD(insecure_open), 0, 1, NULL},
    {"login-timeout", "DURATION", NULL, "a new connection must send its "
     "first frame (with --auth on: its HELLO) within this", NULL,
     SET_DURATION, 0, FIELD(login_timeout_ms), 1, UINT64_MAX, NULL},
    {"idle-timeout", "DURATION", NULL, "a client that speaks control frames "
     "and sends nothing for half of this gets a PING and is closed when this "
     "passes without a byte; others get TCP keepalive probes from half of "
     "it; 0: never", NULL, SET_DURATION, 0, FIELD(idle_timeout_ms), 0,
     UINT64_MAX, NULL},
    {"max-connections", "N", NULL, "connections at once; more are refused "
     "with ERROR BUSY; 0: no limit", NULL, SET_COUNT, SET_LIVE,
     FIELD(max_connections), 0, UINT64_MAX, NULL},
    {"max-conns-per-ip", "N", NULL, "connections from one non-loopback "
     "address; 0: no limit", NULL, SET_COUNT, SET_LIVE,
     FIELD(max_conns_per_ip), 0, UINT64_MAX, NULL},
    {"rate-msgs", "N", NULL, "data frames per second per connection: over "
     "it reading pauses (ERROR RATE), over it for --rate-grace the "
     "connection is closed; 0: no limit", NULL, SET_COUNT, SET_LIVE,
     FIELD(rate_msgs), 0, UINT64_MAX, NULL},
    {"rate-bytes", "BYTES", NULL, "bytes per second per connection, "
     "likewise; 0: no limit", NULL, SET_SIZE, SET_LIVE, FIELD(rate_bytes), 0,
     (uint64_t)1 << 40, NULL},
    {"rate-grace", "DURATION", NULL, "how long a connection may stay over a "
     "rate before it is closed", NULL, SET_DURATION, SET_LIVE,
     FIELD(rate_grace_ms), 0, UINT64_MAX, NULL},

    {"tls-cert", "FILE", "TLS", "PEM certificate chain for --tls-port and "
     "--https-port; a reload reads it again: new connections get the new "
     "one, open ones keep theirs", "none", SET_PATH, SET_LIVE,
     FIELD(tls_cert), 0, 0, NULL},
    {"tls-key", "FILE", NULL, "PEM private key of --tls-cert", "none",
     SET_PATH, SET_LIVE, FIELD(tls_key), 0, 0, NULL},
    {"tls-ca", "FILE", NULL, "PEM CA certificates: TLS clients must present "
     "a certificate signed by one of them", "none (no client certificates "
     "asked)", SET_PATH, SET_LIVE, FIELD(tls_ca), 0, 0, NULL},

    {"http-allow-origin", "LIST", "HTTP", "browser pages allowed to open "
     "/ws: origins separated by commas (https://chat.example.com), or *",
     "the page's own host only", SET_STRING, SET_LIVE,
     FIELD(http_allow_origin), 0, 0, NULL},

    {"cluster", "URL", "Cluster", "keep accounts, messages, devices, "
     "groups and presence in Redis, so that several chat-server nodes serve "
     "one service (docs/CLUSTER.md; accounts: chat-server user --cluster URL "
     "add ID): redis://[USER@]HOST:PORT, or rediss:// for TLS; several "
     "HOST:PORT separated by commas are candidates for the primary, tried "
     "in order; --data-dir is then not used for messages or accounts",
     "none (the embedded SQLite store in --data-dir)", SET_STRING, 0,
     FIELD(cluster), 0, 0, NULL},
    {"cluster-password-file", "FILE", NULL, "the Redis password (AUTH; "
     "with USER@ in --cluster, that ACL user's): the first line of FILE, "
     "never on a command line where ps shows it", "none (no AUTH)",
     SET_PATH, 0, FIELD(cluster_password_file), 0, 0, NULL},
    {"cluster-tls-ca", "FILE", NULL, "rediss://: PEM CA certificates that "
     "sign Redis's certificate (its chain and name are always verified)",
     "the system's", SET_PATH, 0, FIELD(cluster_tls_ca), 0, 0, NULL},
    {"cluster-tls-cert", "FILE", NULL, "rediss://: a PEM client certificate "
     "for Redis's tls-auth-clients (with --cluster-tls-key)", "none",
     SET_PATH, 0, FIELD(cluster_tls_cert), 0, 0, NULL},
    {"cluster-tls-key", "FILE", NULL, "rediss://: the PEM key of "
     "--cluster-tls-cert", "none", SET_PATH, 0, FIELD(cluster_tls_key), 0,
     0, NULL},
    {"cluster-tls-name", "NAME", NULL, "rediss://: the name Redis's "
     "certificate must carry", "each HOST of --cluster", SET_STRING, 0,
     FIELD(cluster_tls_name), 0, 0, NULL},

    {"cluster-trust-persistence", NULL, NULL, "grant acknowledgements when "
     "Redis refuses CONFIG GET (a renamed command, an ACL), so that the node "
     "cannot check appendonly yes and appendfsync always itself: you vouch "
     "for them", NULL, SET_FLAG, 0, FIELD(cluster_trust_persistence), 0, 1,
     NULL},
    {"cluster-wait", "N", NULL, "acknowledge a send only once N Redis "
     "replicas have it as well as the primary (WAIT N, one per batch of "
     "sends); fewer within --cluster-wait-timeout: ERROR STORE, the message "
     "stays stored on the primary and a resend with the same client id is "
     "acknowledged once they caught up (docs/CLUSTER.md 4.4)",
     "0 (the primary's appendfsync always only)", SET_COUNT, 0,
     FIELD(cluster_wait), 0, 16, NULL},
    {"cluster-wait-timeout", "DURATION", NULL, "how long --cluster-wait "
     "waits for the replicas; the node's other Redis commands wait behind "
     "it, so at most 3s (a node's heartbeat must get through)", NULL,
     SET_DURATION, 0, FIELD(cluster_wait_ms), 10, 3000, NULL},
    {"cluster-connections", "N", NULL, "command connections from this node "
     "to Redis: the sends of sender S go on connection S % N (one sender's "
     "stay in order), everything else on the first; more let one fsync of "
     "Redis's appendfsync always cover more sends (docs/CLUSTER.md 6.1)",
     NULL, SET_COUNT, 0, FIELD(cluster_connections), 1, 16, NULL},
    {"workers", "N|auto", NULL, "run N processes of the server on this host, "
     "sharing its ports (SO_REUSEPORT: the kernel spreads new connections), "
     "each a node of the cluster; auto: one per CPU this process may use; "
     "needs --cluster (one SQLite store has one writer)", NULL, SET_WORKERS,
     0, FIELD(workers), 1, 256, NULL},

    {"log-level", "LEVEL", "Logging", "error, warn, info or debug (nothing "
     "per frame is logged above debug)", NULL, SET_LEVEL, SET_LIVE,
     FIELD(log_level), 0, 3, NULL},
    {"log-format", "text|json", NULL, "text: one line per event; json: one "
     "JSON object per line (time, level, event, peer, user, msg); both to "
     "stderr, which systemd's journal keeps", NULL, SET_CHOICE, SET_LIVE,
     FIELD(log_format), 0, 1, formats},

    {"config", "FILE", "Command line only", "read settings from FILE first "
     "(one `name value` per line, see chat-server.conf(5)); flags given "
     "here win; a reload (SIGHUP) reads it again", "none", SET_PATH, SET_CLI,
     FIELD(config_file), 0, 0, NULL},
    {"check-config", NULL, NULL, "check the settings of --config and the "
     "flags, print the effective ones (secrets masked) and exit: 0 when "
     "they are valid, 2 with the file, line and what is wrong when not",
     NULL, SET_FLAG, SET_CLI, NOFIELD, 0, 1, NULL},
    {"help", NULL, NULL, "show this help and exit", NULL, SET_FLAG, SET_CLI,
     NOFIELD, 0, 1, NULL},
    {"version", NULL, NULL, "show the version and exit", NULL, SET_FLAG,
     SET_CLI, NOFIELD, 0, 1, NULL},
};
const size_t config_nsettings = sizeof config_settings / sizeof *config_settings;
_Static_assert(sizeof config_settings / sizeof *config_settings <=
                   sizeof ((config *)0)->origin,
               "config.origin has a byte per setting");

const setting *config_find(const char *name) {
    for (size_t i = 0; i < config_nsettings; i++)
        if (strcmp(config_settings[i].name, name) == 0)
            return &config_settings[i];
    return NULL;
}

/* ---- one value ----------------------------------------------------------- */

static uint64_t get_uint(const config *c, const setting *s) {
    const char *p = (const char *)c + s->off;
    if (s->width == sizeof(uint64_t)) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void put_uint(config *c, const setting *s, uint64_t v) {
    char *p = (char *)c + s->off;
    if (s->width == sizeof(uint64_t)) {
        memcpy(p, &v, sizeof v);
    } else {
        assert(s->width == sizeof(uint32_t) && v <= U32);
        uint32_t w = (uint32_t)v;
        memcpy(p, &w, sizeof w);
    }
}

/* An int setting's value (a read that needs no writable config). */
static int get_int(const config *c, const setting *s) {
    int v;
    assert(s->width == sizeof v);
    memcpy(&v, (const char *)c + s->off, sizeof v);
    return v;
}

static int *int_field(config *c, const setting *s) {
    assert(s->width == sizeof(int));
    return (int *)(void *)((char *)c + s->off);
}

/* "1K" for 1024: the largest binary suffix that divides v. */
static void show_size(uint64_t v, char *out, size_t cap) {
    static const char sfx[] = "GMK";
    for (int i = 0; i < 3; i++) {
        unsigned shift = (unsigned)(30 - 10 * i);
        if (v && v % ((uint64_t)1 << shift) == 0) {
            snprintf(out, cap, "%llu%c", (unsigned long long)(v >> shift),
                     sfx[i]);
            return;
        }
    }
    snprintf(out, cap, "%llu", (unsigned long long)v);
}

static void show_duration(uint64_t ms, char *out, size_t cap) {
    static const struct { uint64_t ms; const char *unit; } u[] = {
        {UINT64_C(86400000), "d"}, {UINT64_C(3600000), "h"},
        {UINT64_C(60000), "m"}, {UINT64_C(1000), "s"}};
    for (size_t i = 0; i < sizeof u / sizeof *u; i++)
        if (ms && ms % u[i].ms == 0) {
            snprintf(out, cap, "%llu%s", (unsigned long long)(ms / u[i].ms),
                     u[i].unit);
            return;
        }
    snprintf(out, cap, ms ? "%llums" : "%llu", (unsigned long long)ms);
}

void config_value(const config *c, const setting *s, char *out, size_t cap) {
    if (cap) *out = '\0';
    if (s->width == 0) return;
    switch (s->kind) {
    case SET_FLAG: snprintf(out, cap, "%s", get_int(c, s) ? "on" : "off");
        break;
    case SET_STRING: case SET_PATH:
        snprintf(out, cap, "%s", (const char *)c + s->off);
        break;
    case SET_PORT: snprintf(out, cap, "%d", get_int(c, s)); break;
    case SET_OPT_PORT:
        if (get_int(c, s) >= 0) snprintf(out, cap, "%d", get_int(c, s));
        break;
    case SET_HTTP_PORT: {
        int p = get_int(c, s);
        if (p < 0) snprintf(out, cap, "0");
        else if (p == 0) snprintf(out, cap, "auto");
        else snprintf(out, cap, "%d", p);
        break;
    }
    case SET_WORKERS:
        if (get_int(c, s) == 0) snprintf(out, cap, "auto");
        else snprintf(out, cap, "%d", get_int(c, s));
        break;
    case SET_COUNT:
        snprintf(out, cap, "%llu", (unsigned long long)get_uint(c, s));
        break;
    case SET_SIZE: show_size(get_uint(c, s), out, cap); break;
    case SET_DURATION: show_duration(get_uint(c, s), out, cap); break;
    case SET_CHOICE: snprintf(out, cap, "%s", s->choices[get_int(c, s)]);
        break;
    case SET_LEVEL:
        snprintf(out, cap, "%s", log_level_name(get_int(c, s)));
        break;
    default: assert(!"a kind config_value does not know");
    }
}

/* "a count from 1 to 4096", "a size of at least 64K", "a duration": what a
 * value of s must be, for the error. */
static void describe(const setting *s, char *out, size_t cap) {
    char lo[24], hi[24];
    const char *what = s->kind == SET_COUNT ? "a count"
                     : s->kind == SET_SIZE ? "a size (e.g. 64K, 16M)"
                                           : "a duration (e.g. 500ms, 30s, "
                                             "15m, 12h, 7d)";
    if (s->kind == SET_SIZE) {
        show_size(s->min, lo, sizeof lo);
        show_size(s->max, hi, sizeof hi);
    } else if (s->kind == SET_DURATION) {
        show_duration(s->min, lo, sizeof lo);
        show_duration(s->max, hi, sizeof hi);
    } else {
        snprintf(lo, sizeof lo, "%llu", (unsigned long long)s->min);
        snprintf(hi, sizeof hi, "%llu", (unsigned long long)s->max);
    }
    int top = s->max == UINT64_MAX || (s->kind == SET_SIZE &&
                                       s->max == SIZE_MAX / 2);
    if (s->min && !top) snprintf(out, cap, "%s from %s to %s", what, lo, hi);
    else if (s->min) snprintf(out, cap, "%s of at least %s", what, lo);
    else if (!top) snprintf(out, cap, "%s from 0 to %s", what, hi);
    else snprintf(out, cap, "%s", what);
}

/* A count: digits only (no suffix). 0 or -1. */
static int parse_count(const char *s, uint64_t *v) {
    if (strspn(s, "0123456789") != strlen(s)) return -1;
    return config_parse_size(s, v);
}

static int parse_port(const char *t, int *port) {
    uint64_t v;
    if (parse_count(t, &v) || v > 65535) return -1;
    *port = (int)v;
    return 0;
}

static int parse_choice(const char *t, const char *const *choices) {
    for (int i = 0; choices[i]; i++)
        if (strcasecmp(t, choices[i]) == 0) return i;
    return -1;
}

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

int config_set(config *c, const setting *s, const char *t, int origin,
               char *err, size_t errlen) {
    uint64_t v = 0;
    int n;
    char want[160];
    switch (s->kind) {
    case SET_FLAG: /* a bare flag (t NULL) is "on" */
        if (t && (n = parse_choice(t, onoff)) < 0) {
            static const char *const yes[] = {"no", "yes", NULL};
            static const char *const tru[] = {"false", "true", NULL};
            if ((n = parse_choice(t, yes)) < 0 &&
                (n = parse_choice(t, tru)) < 0)
                BAD("'%s' is not on or off", t);
        }
        if (s->width) *int_field(c, s) = t ? n : 1;
        break;
    case SET_STRING: case SET_PATH:
        if (!*t || strlen(t) >= s->width)
            BAD("'%s' is not %s (empty, or %u bytes or more)", t,
                s->kind == SET_PATH ? "a usable path" : "usable",
                (unsigned)s->width);
        memcpy((char *)c + s->off, t, strlen(t) + 1);
        break;
    case SET_PORT: case SET_OPT_PORT:
        if (parse_port(t, int_field(c, s)))
            BAD("'%s' is not a port number (0-65535)", t);
        break;
    case SET_HTTP_PORT:
        if (strcmp(t, "auto") == 0) {
            *int_field(c, s) = 0;
        } else if (parse_port(t, &n)) {
            BAD("'%s' is not a port number (1-65535), 0 (off) or auto", t);
        } else {
            *int_field(c, s) = n ? n : -1;
        }
        break;
    case SET_WORKERS:
        if (strcmp(t, "auto") == 0) {
            *int_field(c, s) = 0;
        } else {
            char *end;
            errno = 0;
            long w = strtol(t, &end, 10);
            if (errno || end == t || *end || w < (long)s->min ||
                w > (long)s->max)
                BAD("'%s' is not a number of workers (%llu-%llu) or auto", t,
                    (unsigned long long)s->min, (unsigned long long)s->max);
            *int_field(c, s) = (int)w;
        }
        break;
    case SET_COUNT: case SET_SIZE: case SET_DURATION:
        n = s->kind == SET_COUNT ? parse_count(t, &v)
          : s->kind == SET_SIZE  ? config_parse_size(t, &v)
                                 : config_parse_duration(t, &v);
        if (n || v < s->min || v > s->max) {
            describe(s, want, sizeof want);
            BAD("'%s' is not %s", t, want);
        }
        put_uint(c, s, v);
        break;
    case SET_CHOICE:
        if ((n = parse_choice(t, s->choices)) < 0) {
            if (s->choices[2]) BAD("'%s' is not one of the choices", t);
            BAD("'%s' is not %s or %s", t, s->choices[0], s->choices[1]);
        }
        *int_field(c, s) = n;
        break;
    case SET_LEVEL:
        if ((n = log_level_parse(t)) < 0)
            BAD("'%s' is not one of error, warn, info, debug", t);
        *int_field(c, s) = n;
        break;
    default: assert(!"a kind config_set does not know");
    }
    c->origin[s - config_settings] = (unsigned char)origin;
    return 0;
}

/* ---- the command line ------------------------------------------------- */

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return CONFIG_ERROR; } while (0)
#define OPT_BASE 256 /* getopt's val of config_settings[i]: OPT_BASE + i */

/* getopt_long's table, made from config_settings once. */
static const struct option *options(void) {
    static struct option o[sizeof config_settings / sizeof *config_settings + 1];
    if (o[0].name) return o;
    for (size_t i = 0; i < config_nsettings; i++)
        o[i] = (struct option){config_settings[i].name,
                               config_settings[i].kind == SET_FLAG
                                   ? no_argument : required_argument,
                               NULL, OPT_BASE + (int)i};
    return o;
}

/* Apply argv's flags to c. *want: CONFIG_HELP / CONFIG_VERSION at the first
 * of them (what follows is not read), CONFIG_CHECK for --check-config. */
static int apply_argv(config *c, int argc, char **argv, int *want, char *err,
                      size_t errlen) {
    const struct option *o = options();
    char why[256];
    int opt;
    optind = 0; /* 0, not 1: also resets glibc's state inside a cluster */
    opterr = 0; /* we word the errors ourselves */
    while ((opt = getopt_long(argc, argv, ":", o, NULL)) != -1) {
        if (opt >= OPT_BASE) {
            const setting *s = &config_settings[opt - OPT_BASE];
            if (strcmp(s->name, "help") == 0) return *want = CONFIG_HELP;
            if (strcmp(s->name, "version") == 0)
                return *want = CONFIG_VERSION;
            if (strcmp(s->name, "check-config") == 0) *want = CONFIG_CHECK;
            if (config_set(c, s, s->kind == SET_FLAG ? NULL : optarg,
                           ORIGIN_ARGV, why, sizeof why))
                FAIL("--%s: %s", s->name, why);
            continue;
        }
        if (opt == ':') {
            if (optopt >= OPT_BASE)
                FAIL("--%s: needs a value (see --help)",
                     o[optopt - OPT_BASE].name);
            FAIL("-%c: needs a value (see --help)", optopt);
        }
        if (optopt >= OPT_BASE)
            FAIL("--%s: takes no value (see --help)",
                 o[optopt - OPT_BASE].name);
        if (optopt) FAIL("-%c: unknown option (see --help)", optopt);
        FAIL("%s: unknown option (see --help)", argv[optind - 1]);
    }
    if (optind < argc)
        FAIL("%s: unexpected argument (see --help)", argv[optind]);
    return CONFIG_OK;
}

int config_parse(config *c, int argc, char **argv, char *err, size_t errlen) {
    /* First every flag into a scratch copy: a bad flag is an error even
     * before --help, and --config is known before the file is read. The
     * file's settings then go under the flags', which are applied again. */
    static config scratch; /* ~6 KiB: off the stack (main thread only) */
    scratch = *c;
    int want = CONFIG_OK;
    int r = apply_argv(&scratch, argc, argv, &want, err, errlen);
    if (r != CONFIG_OK || want == CONFIG_HELP || want == CONFIG_VERSION)
        return r != CONFIG_OK ? r : want;
    if (*scratch.config_file &&
        (r = config_file_apply(c, scratch.config_file, err, errlen)))
        return r;
    if ((r = apply_argv(c, argc, argv, &want, err, errlen))) return r;
    if ((r = config_finish(c, err, errlen))) return r;
    return want;
}

int config_finish(config *c, char *err, size_t errlen) {
    size_t floor = (size_t)c->max_frame + 65536;
    if (c->origin[config_find("max-outbuf") - config_settings] ==
        ORIGIN_DEFAULT) {
        size_t four = (size_t)CONFIG_OUTBUF_FRAMES * c->max_frame;
        c->max_outbuf = (four > CONFIG_DEFAULT_MAX_OUTBUF
                             ? four : CONFIG_DEFAULT_MAX_OUTBUF) + 65536;
    }
    if (c->max_outbuf < floor)
        FAIL("--max-outbuf: %zu is below --max-frame + 64K (%zu): a largest "
             "frame could never be queued", c->max_outbuf, floor);
    if (c->tls_port >= 0 && (!*c->tls_cert || !*c->tls_key))
        FAIL("--tls-port: needs --tls-cert and --tls-key");
    if (c->https_port >= 0 && (!*c->tls_cert || !*c->tls_key))
        FAIL("--https-port: needs --tls-cert and --tls-key");
    if (!*c->cluster &&
        (*c->cluster_password_file || *c->cluster_tls_ca ||
         c->cluster_trust_persistence || c->cluster_wait ||
         c->cluster_connections != 1 ||
         *c->cluster_tls_cert || *c->cluster_tls_key || *c->cluster_tls_name))
        FAIL("--%s: needs --cluster",
             *c->cluster_password_file ? "cluster-password-file"
             : *c->cluster_tls_ca      ? "cluster-tls-ca"
             : *c->cluster_tls_cert    ? "cluster-tls-cert"
             : *c->cluster_tls_key     ? "cluster-tls-key"
             : *c->cluster_tls_name    ? "cluster-tls-name"
             : c->cluster_wait         ? "cluster-wait"
             : c->cluster_connections != 1 ? "cluster-connections"
                                       : "cluster-trust-persistence");
    if (*c->cluster) {
        static cluster_url u; /* (~2 KiB: off the stack; main thread) */
        char why[320];
        if (cluster_url_parse(c->cluster, &u, why, sizeof why))
            FAIL("--cluster: %s", why);
        if (!u.tls && (*c->cluster_tls_ca || *c->cluster_tls_cert ||
                       *c->cluster_tls_name))
            FAIL("--cluster-tls-*: need rediss:// in --cluster");
    }
    if (c->workers != 1 && !*c->cluster)
        FAIL("--workers: needs --cluster: each worker is a node that "
             "shares the store and routes through Redis; the SQLite store "
             "has one writer (%s/chat.lock) and no way to reach another "
             "process's connections. Run one process, or start "
             "redis-server and give --cluster redis://127.0.0.1:6379",
             c->data_dir);
    if (c->workers != 1 && c->metrics_port == 0)
        FAIL("--metrics-port: auto is not for --workers: worker K listens "
             "on the port + K - 1, which a scraper must know; give a port "
             "(e.g. 9100: the workers then use 9100, 9101, ...)");
    if (c->workers != 1 && c->echo)
        FAIL("--workers: not with --echo (an echo server has nothing to "
             "share)");
    if (!c->cluster_wait &&
        c->cluster_wait_ms != CONFIG_DEFAULT_CLUSTER_WAIT_MS)
        FAIL("--cluster-wait-timeout: needs --cluster-wait");
    if (!*c->cluster_tls_cert != !*c->cluster_tls_key)
        FAIL("--cluster-tls-cert and --cluster-tls-key go together");
    if (c->tls_port < 0 && c->https_port < 0 &&
        (*c->tls_cert || *c->tls_key || *c->tls_ca))
        FAIL("--%s: needs --tls-port or --https-port (a port that speaks "
             "TLS)",
             *c->tls_cert ? "tls-cert" : *c->tls_key ? "tls-key" : "tls-ca");
    {
        /* Every listener needs a port of its own (0: any free port). */
        const int ports[] = {c->port, c->tls_port, c->http_port,
                             c->https_port, c->metrics_port};
        static const char *const names[] = {"port", "tls-port", "http-port",
                                            "https-port", "metrics-port"};
        for (int i = 1; i < 5; i++)
            for (int j = 0; j < i; j++)
                if (ports[i] > 0 && ports[i] == ports[j])
                    FAIL("--%s: %d is also --%s; each listener needs a port "
                         "of its own", names[i], ports[i], names[j]);
    }
    /* Protected mode: without logins anyone who reaches the port may read
     * and write as anyone, so only this host may reach it. */
    if (!c->auth && !c->insecure_open && !config_is_loopback(c->bind))
        FAIL("--bind %s: refusing to listen on a non-loopback address with "
             "--auth off, since anyone who can reach it could read and send "
             "any user's messages. Use --auth on (accounts: `chat-server "
             "user add ID`), or --insecure-open to accept the risk",
             c->bind);
    return CONFIG_OK;
}

store_config config_store(const config *c) {
    return (store_config){
        .dir = c->data_dir, .fsync_full = c->fsync_full,
        .max_messages = c->offline_max_messages,
        .max_bytes = c->offline_max_bytes, .ttl_ms = c->offline_ttl_ms,
        .device_ttl_ms = c->device_ttl_ms,
        .history_ttl_ms = c->history_ttl_ms, .dedup_ms = c->dedup_ms,
    };
}
