#include "config.h"

#include "server/store.h"

#include <errno.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void config_defaults(config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->bind, sizeof c->bind, "%s", CONFIG_DEFAULT_BIND);
    c->port = CONFIG_DEFAULT_PORT;
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

void config_usage(FILE *out) {
    fprintf(out,
"Usage: chat-server [OPTIONS]\n"
"       chat-server user add|passwd|del ID | user list   (accounts; see\n"
"                               `chat-server user --help`)\n"
"A chat server for the article's binary frame protocol (docs/PROTOCOL.md).\n"
"\n"
"  --bind ADDR                  address to listen on (default %s)\n"
"  --port N                     TCP port, 0 for any free port (default %d)\n"
"  --echo                       send every frame back to its sender instead\n"
"                               of routing it (the article's server)\n"
"  --data-dir DIR               where the store keeps its files (default %s)\n"
"  --max-frame BYTES            largest frame body accepted (default %u = 16M)\n"
"  --max-outbuf BYTES           per-connection output queue bound; frames for\n"
"                               a receiver past it wait in the store until it\n"
"                               catches up; at least max-frame + 64K (default\n"
"                               4 x max-frame + 64K, at least 64 MiB + 64 KiB\n"
"                               = %zu: four frames of the largest size)\n"
"  --max-unacked N              frames sent to a receiver that acknowledges\n"
"                               and not yet acknowledged; stored frames wait\n"
"                               for its ACKs past it, and a live receiver\n"
"                               that would pass it is a slow consumer:\n"
"                               ERROR SLOW and closed, its frames kept in\n"
"                               the store (default %u)\n"
"  --offline-max-messages N     stored messages per receiver, 0 = no limit\n"
"                               (default %u)\n"
"  --offline-max-bytes BYTES    stored bytes per receiver, 0 = no limit\n"
"                               (default %llu = 256M)\n"
"  --offline-ttl DURATION       stored messages expire after this, 0 = never\n"
"                               (default 7d; units ms, s, m, h, d)\n"
"  --device-ttl DURATION        a device not seen for this is forgotten: it\n"
"                               no longer holds messages back (default 30d;\n"
"                               0 = never)\n"
"  --history-ttl DURATION       keep every message at least this long, even\n"
"                               once every device has it (default 0: kept\n"
"                               only until then)\n"
"  --dedup-window DURATION      how long a device's client message ids are\n"
"                               remembered to drop resends (default 24h;\n"
"                               at least 1s)\n"
"  --max-group-members N        members of a group at most, 1 to 4096\n"
"                               (default 1024)\n"
"  --receipt-group-max N        live receipts only in groups of at most N\n"
"                               members (default 100; larger groups: on\n"
"                               QUERY; 0: none live)\n"
"  --max-subscriptions N        presence subscriptions per connection at\n"
"                               most, 0 to 65535 (default 1024)\n"
"  --fsync full|normal          full: every acknowledged message is on disk\n"
"                               (survives power loss); normal: survives a\n"
"                               crash of the server, a power loss may lose\n"
"                               the last moments (default full)\n"
"  --store-max-pending BYTES    message bytes on their way to the disk before\n"
"                               the server stops reading from clients\n"
"                               (default %zu = 64M)\n"
"  --log-level LEVEL            error, warn, info or debug (default info)\n"
"\n"
"Security (docs/OPERATIONS.md):\n"
"  --auth on|off                on: every connection logs in first (HELLO\n"
"                               with its account's password); off: anyone\n"
"                               may claim any id, so only loopback peers are\n"
"                               accepted (default off)\n"
"  --insecure-open              with --auth off, accept non-loopback peers\n"
"                               and non-loopback --bind anyway\n"
"  --login-timeout DURATION     a new connection must send its first frame\n"
"                               (with --auth on: its HELLO) within this\n"
"                               (default 10s)\n"
"  --idle-timeout DURATION      a client that speaks control frames and sends\n"
"                               nothing for half of this gets a PING, and is\n"
"                               closed when this passes without a byte; others\n"
"                               get TCP keepalive probes from half of it;\n"
"                               0 = never (default 5m)\n"
"  --max-connections N          connections at once, 0 = no limit; more are\n"
"                               refused with ERROR BUSY (default %u)\n"
"  --max-conns-per-ip N         connections from one non-loopback address,\n"
"                               0 = no limit (default %u)\n"
"  --rate-msgs N                data frames per second per connection, 0 = no\n"
"                               limit; over it reading pauses (ERROR RATE),\n"
"                               over it for --rate-grace closes (default %u)\n"
"  --rate-bytes BYTES           bytes per second per connection, likewise\n"
"                               (default %llu = 64M)\n"
"  --rate-grace DURATION        how long a connection may stay over a rate\n"
"                               before it is closed (default 10s)\n"
"  --tls-port N                 also listen for TLS (1.2+) on this port of\n"
"                               --bind (default: no TLS listener)\n"
"  --tls-cert FILE              PEM certificate chain for --tls-port\n"
"  --tls-key FILE               PEM private key for --tls-cert\n"
"  --tls-ca FILE                PEM CA certificates: TLS clients must present\n"
"                               a certificate signed by one of them\n"
"  --http-port N                also listen for HTTP on this port of --bind:\n"
"                               the web client at /, WebSocket at /ws,\n"
"                               /metrics, /healthz; 0 = off (the default, so\n"
"                               that servers on one host never collide),\n"
"                               auto = any free port (logged)\n"
"  --https-port N               the same over TLS (needs --tls-cert and\n"
"                               --tls-key); 0 = off, auto = any free port\n"
"  --http-allow-origin LIST     browser pages allowed to open /ws: origins\n"
"                               separated by commas (https://chat.example.com)\n"
"                               or *; default: the page's own host only\n"
"  --help                       show this help and exit\n"
"  --version                    show the version and exit\n"
"\n"
"BYTES accepts a K, M or G suffix (powers of 1024).\n",
            CONFIG_DEFAULT_BIND, CONFIG_DEFAULT_PORT, CONFIG_DEFAULT_DATA_DIR,
            CONFIG_DEFAULT_MAX_FRAME, CONFIG_DEFAULT_MAX_OUTBUF + 65536,
            CONFIG_DEFAULT_MAX_UNACKED, CONFIG_DEFAULT_OFFLINE_MAX_MESSAGES,
            (unsigned long long)CONFIG_DEFAULT_OFFLINE_MAX_BYTES,
            CONFIG_DEFAULT_STORE_MAX_PENDING, CONFIG_DEFAULT_MAX_CONNECTIONS,
            CONFIG_DEFAULT_MAX_CONNS_PER_IP, CONFIG_DEFAULT_RATE_MSGS,
            (unsigned long long)CONFIG_DEFAULT_RATE_BYTES);
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

enum {
    OPT_BIND = 256, OPT_PORT, OPT_ECHO, OPT_DATA_DIR, OPT_MAX_FRAME,
    OPT_MAX_OUTBUF, OPT_OFF_MSGS, OPT_OFF_BYTES, OPT_LOG_LEVEL, OPT_HELP,
    OPT_VERSION, OPT_OFF_TTL, OPT_FSYNC, OPT_STORE_PENDING, OPT_AUTH,
    OPT_INSECURE_OPEN, OPT_LOGIN_TIMEOUT, OPT_MAX_CONNS, OPT_MAX_CONNS_IP,
    OPT_RATE_MSGS, OPT_RATE_BYTES, OPT_TLS_PORT, OPT_TLS_CERT, OPT_TLS_KEY,
    OPT_TLS_CA, OPT_RATE_GRACE, OPT_IDLE_TIMEOUT, OPT_MAX_UNACKED,
    OPT_HTTP_PORT, OPT_HTTPS_PORT, OPT_HTTP_ORIGIN, OPT_DEVICE_TTL,
    OPT_HISTORY_TTL, OPT_DEDUP, OPT_MAX_GROUP, OPT_RCPT_GROUP, OPT_MAX_SUBS
};

static const struct option options[] = {
    {"bind", required_argument, NULL, OPT_BIND},
    {"port", required_argument, NULL, OPT_PORT},
    {"echo", no_argument, NULL, OPT_ECHO},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
    {"max-outbuf", required_argument, NULL, OPT_MAX_OUTBUF},
    {"offline-max-messages", required_argument, NULL, OPT_OFF_MSGS},
    {"offline-max-bytes", required_argument, NULL, OPT_OFF_BYTES},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"offline-ttl", required_argument, NULL, OPT_OFF_TTL},
    {"fsync", required_argument, NULL, OPT_FSYNC},
    {"store-max-pending", required_argument, NULL, OPT_STORE_PENDING},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"insecure-open", no_argument, NULL, OPT_INSECURE_OPEN},
    {"login-timeout", required_argument, NULL, OPT_LOGIN_TIMEOUT},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
    {"max-conns-per-ip", required_argument, NULL, OPT_MAX_CONNS_IP},
    {"rate-msgs", required_argument, NULL, OPT_RATE_MSGS},
    {"rate-bytes", required_argument, NULL, OPT_RATE_BYTES},
    {"tls-port", required_argument, NULL, OPT_TLS_PORT},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"rate-grace", required_argument, NULL, OPT_RATE_GRACE},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"max-unacked", required_argument, NULL, OPT_MAX_UNACKED},
    {"http-port", required_argument, NULL, OPT_HTTP_PORT},
    {"https-port", required_argument, NULL, OPT_HTTPS_PORT},
    {"http-allow-origin", required_argument, NULL, OPT_HTTP_ORIGIN},
    {"device-ttl", required_argument, NULL, OPT_DEVICE_TTL},
    {"history-ttl", required_argument, NULL, OPT_HISTORY_TTL},
    {"dedup-window", required_argument, NULL, OPT_DEDUP},
    {"max-group-members", required_argument, NULL, OPT_MAX_GROUP},
    {"receipt-group-max", required_argument, NULL, OPT_RCPT_GROUP},
    {"max-subscriptions", required_argument, NULL, OPT_MAX_SUBS},
    {NULL, 0, NULL, 0},
};

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return CONFIG_ERROR; } while (0)

/* A count: digits only (no suffix). 0 or -1. */
static int parse_count(const char *s, uint64_t *v) {
    if (strspn(s, "0123456789") != strlen(s)) return -1;
    return config_parse_size(s, v);
}

static int set_path(char *dst, size_t cap, const char *src) {
    if (!*src || strlen(src) >= cap) return -1;
    snprintf(dst, cap, "%s", src);
    return 0;
}

int config_parse(config *c, int argc, char **argv, char *err, size_t errlen) {
    int outbuf_set = 0, opt;
    uint64_t v;
    optind = 0; /* 0, not 1: also resets glibc's state inside a cluster */
    opterr = 0; /* we word the errors ourselves */
    while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (opt) {
        case OPT_BIND:
            if (!*optarg || strlen(optarg) >= sizeof c->bind)
                FAIL("--bind: '%s' is not an address", optarg);
            snprintf(c->bind, sizeof c->bind, "%s", optarg);
            break;
        case OPT_PORT:
            if (config_parse_size(optarg, &v) || v > 65535 ||
                strspn(optarg, "0123456789") != strlen(optarg))
                FAIL("--port: '%s' is not a port number (0-65535)", optarg);
            c->port = (int)v;
            break;
        case OPT_ECHO: c->echo = 1; break;
        case OPT_DATA_DIR:
            if (!*optarg || strlen(optarg) >= sizeof c->data_dir)
                FAIL("--data-dir: '%s' is not a usable path", optarg);
            snprintf(c->data_dir, sizeof c->data_dir, "%s", optarg);
            break;
        case OPT_MAX_FRAME:
            if (config_parse_size(optarg, &v) || v > CONFIG_MAX_FRAME_LIMIT)
                FAIL("--max-frame: '%s' is not a size from 0 to 512M", optarg);
            c->max_frame = (uint32_t)v;
            break;
        case OPT_MAX_OUTBUF:
            if (config_parse_size(optarg, &v) || v > SIZE_MAX / 2)
                FAIL("--max-outbuf: '%s' is not a size", optarg);
            c->max_outbuf = (size_t)v;
            outbuf_set = 1;
            break;
        case OPT_MAX_UNACKED:
            if (parse_count(optarg, &v) || v == 0 || v > ((uint64_t)1 << 32))
                FAIL("--max-unacked: '%s' is not a count from 1 to 2^32",
                     optarg);
            c->max_unacked = v;
            break;
        case OPT_OFF_MSGS:
            if (config_parse_size(optarg, &v) ||
                strspn(optarg, "0123456789") != strlen(optarg))
                FAIL("--offline-max-messages: '%s' is not a count", optarg);
            c->offline_max_messages = v;
            break;
        case OPT_OFF_BYTES:
            if (config_parse_size(optarg, &v))
                FAIL("--offline-max-bytes: '%s' is not a size", optarg);
            c->offline_max_bytes = v;
            break;
        case OPT_LOG_LEVEL:
            if ((c->log_level = log_level_parse(optarg)) < 0)
                FAIL("--log-level: '%s' is not one of error, warn, info, debug",
                     optarg);
            break;
        case OPT_OFF_TTL:
            if (config_parse_duration(optarg, &c->offline_ttl_ms))
                FAIL("--offline-ttl: '%s' is not a duration (e.g. 7d, 12h, "
                     "30s, 0 for never)", optarg);
            break;
        case OPT_DEVICE_TTL:
            if (config_parse_duration(optarg, &c->device_ttl_ms))
                FAIL("--device-ttl: '%s' is not a duration (e.g. 30d, 12h, "
                     "0 for never)", optarg);
            break;
        case OPT_HISTORY_TTL:
            if (config_parse_duration(optarg, &c->history_ttl_ms))
                FAIL("--history-ttl: '%s' is not a duration (e.g. 30d, 12h, "
                     "0 for none)", optarg);
            break;
        case OPT_DEDUP:
            if (config_parse_duration(optarg, &c->dedup_ms) ||
                c->dedup_ms < 1000)
                FAIL("--dedup-window: '%s' is not a duration of at least 1s "
                     "(e.g. 24h, 10m)", optarg);
            break;
        case OPT_MAX_GROUP:
            if (parse_count(optarg, &v) || v < 1 ||
                v > CONFIG_MAX_GROUP_MEMBERS_LIMIT)
                FAIL("--max-group-members: '%s' is not a number from 1 to "
                     "%u", optarg, CONFIG_MAX_GROUP_MEMBERS_LIMIT);
            c->max_group_members = (uint32_t)v;
            break;
        case OPT_RCPT_GROUP:
            if (parse_count(optarg, &v) ||
                v > CONFIG_MAX_GROUP_MEMBERS_LIMIT)
                FAIL("--receipt-group-max: '%s' is not a number from 0 to "
                     "%u", optarg, CONFIG_MAX_GROUP_MEMBERS_LIMIT);
            c->receipt_group_max = (uint32_t)v;
            break;
        case OPT_MAX_SUBS:
            if (parse_count(optarg, &v) || v > CONFIG_MAX_SUBSCRIPTIONS_LIMIT)
                FAIL("--max-subscriptions: '%s' is not a number from 0 to "
                     "%u", optarg, CONFIG_MAX_SUBSCRIPTIONS_LIMIT);
            c->max_subscriptions = (uint32_t)v;
            break;
        case OPT_FSYNC:
            if (strcmp(optarg, "full") == 0) c->fsync_full = 1;
            else if (strcmp(optarg, "normal") == 0) c->fsync_full = 0;
            else FAIL("--fsync: '%s' is not full or normal", optarg);
            break;
        case OPT_STORE_PENDING:
            if (config_parse_size(optarg, &v) || v < 65536 || v > SIZE_MAX / 2)
                FAIL("--store-max-pending: '%s' is not a size of at least 64K",
                     optarg);
            c->store_max_pending = (size_t)v;
            break;
        case OPT_AUTH:
            if (strcmp(optarg, "on") == 0) c->auth = 1;
            else if (strcmp(optarg, "off") == 0) c->auth = 0;
            else FAIL("--auth: '%s' is not on or off", optarg);
            break;
        case OPT_INSECURE_OPEN: c->insecure_open = 1; break;
        case OPT_LOGIN_TIMEOUT:
            if (config_parse_duration(optarg, &c->login_timeout_ms) ||
                c->login_timeout_ms == 0)
                FAIL("--login-timeout: '%s' is not a duration above 0 (e.g. "
                     "10s, 500ms)", optarg);
            break;
        case OPT_MAX_CONNS:
            if (parse_count(optarg, &c->max_connections))
                FAIL("--max-connections: '%s' is not a count", optarg);
            break;
        case OPT_MAX_CONNS_IP:
            if (parse_count(optarg, &c->max_conns_per_ip))
                FAIL("--max-conns-per-ip: '%s' is not a count", optarg);
            break;
        case OPT_RATE_MSGS:
            if (parse_count(optarg, &c->rate_msgs))
                FAIL("--rate-msgs: '%s' is not a count per second", optarg);
            break;
        case OPT_RATE_BYTES:
            if (config_parse_size(optarg, &c->rate_bytes) ||
                c->rate_bytes > ((uint64_t)1 << 40))
                FAIL("--rate-bytes: '%s' is not a size per second", optarg);
            break;
        case OPT_IDLE_TIMEOUT:
            if (config_parse_duration(optarg, &c->idle_timeout_ms))
                FAIL("--idle-timeout: '%s' is not a duration (e.g. 5m, 0 for "
                     "never)", optarg);
            break;
        case OPT_RATE_GRACE:
            if (config_parse_duration(optarg, &c->rate_grace_ms))
                FAIL("--rate-grace: '%s' is not a duration (e.g. 10s)", optarg);
            break;
        case OPT_TLS_PORT:
            if (parse_count(optarg, &v) || v > 65535)
                FAIL("--tls-port: '%s' is not a port number (0-65535)", optarg);
            c->tls_port = (int)v;
            break;
        case OPT_HTTP_PORT:
        case OPT_HTTPS_PORT: {
            int *port = opt == OPT_HTTP_PORT ? &c->http_port : &c->https_port;
            if (strcmp(optarg, "auto") == 0) {
                *port = 0;
                break;
            }
            if (parse_count(optarg, &v) || v > 65535)
                FAIL("--%s: '%s' is not a port number (1-65535), 0 (off) or "
                     "auto", opt == OPT_HTTP_PORT ? "http-port" : "https-port",
                     optarg);
            *port = v ? (int)v : -1;
            break;
        }
        case OPT_HTTP_ORIGIN:
            if (strlen(optarg) >= sizeof c->http_allow_origin ||
                !*optarg)
                FAIL("--http-allow-origin: '%s' is not a list of origins",
                     optarg);
            strcpy(c->http_allow_origin, optarg);
            break;
        case OPT_TLS_CERT:
            if (set_path(c->tls_cert, sizeof c->tls_cert, optarg))
                FAIL("--tls-cert: '%s' is not a usable path", optarg);
            break;
        case OPT_TLS_KEY:
            if (set_path(c->tls_key, sizeof c->tls_key, optarg))
                FAIL("--tls-key: '%s' is not a usable path", optarg);
            break;
        case OPT_TLS_CA:
            if (set_path(c->tls_ca, sizeof c->tls_ca, optarg))
                FAIL("--tls-ca: '%s' is not a usable path", optarg);
            break;
        case OPT_HELP: return CONFIG_HELP;
        case OPT_VERSION: return CONFIG_VERSION;
        case ':':
            if (optopt >= OPT_BIND)
                FAIL("--%s: needs a value (see --help)",
                     options[optopt - OPT_BIND].name);
            FAIL("-%c: needs a value (see --help)", optopt);
        default:
            if (optopt >= OPT_BIND)
                FAIL("--%s: takes no value (see --help)",
                     options[optopt - OPT_BIND].name);
            if (optopt) FAIL("-%c: unknown option (see --help)", optopt);
            FAIL("%s: unknown option (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        FAIL("%s: unexpected argument (see --help)", argv[optind]);
    size_t floor = (size_t)c->max_frame + 65536;
    if (!outbuf_set) {
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
    if (c->tls_port < 0 && c->https_port < 0 &&
        (*c->tls_cert || *c->tls_key || *c->tls_ca))
        FAIL("--%s: needs --tls-port or --https-port (a port that speaks "
             "TLS)",
             *c->tls_cert ? "tls-cert" : *c->tls_key ? "tls-key" : "tls-ca");
    {
        /* Every listener needs a port of its own (0: any free port). */
        const int ports[] = {c->port, c->tls_port, c->http_port,
                             c->https_port};
        static const char *const names[] = {"port", "tls-port", "http-port",
                                            "https-port"};
        for (int i = 1; i < 4; i++)
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
