/*
 * config.h -- chat-server's settings: one table (config_settings) of every
 * setting -- name, kind, default, range, whether a reload may change it, one
 * line of help -- from which the option parser, the config file reader,
 * --help, --check-config, the manual pages and the table of
 * docs/OPERATIONS.md are all made (config_doc.c, settings_doc.c), so none of
 * them can name a setting the others do not know.
 *
 * config_parse() fills a config from the defaults, then the file of
 * --config (config_file.c), then argv (flags on the command line win). It
 * never exits and never prints: it returns CONFIG_OK, CONFIG_HELP /
 * CONFIG_VERSION / CONFIG_CHECK (the caller prints config_usage(), the
 * version or config_print() and exits 0), or CONFIG_ERROR with a one-line
 * message in `err` naming the flag, or the file and line, and what is wrong
 * (the caller exits 2).
 */
#ifndef CHAT_SERVER_CONFIG_H
#define CHAT_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_BIND "127.0.0.1"
#define CONFIG_DEFAULT_PORT 8888
#define CONFIG_DEFAULT_DATA_DIR "./chat-data"
#define CONFIG_DEFAULT_MAX_FRAME (16u << 20)            /* 16 MiB */
/* --max-outbuf when not given: room for four frames of the largest size
 * (several senders' pictures to one receiver at once, none spilled to the
 * store while its socket drains) plus 64 KiB of small ones, at least this
 * many bytes plus 64 KiB: 64 MiB + 64 KiB with the default --max-frame. */
#define CONFIG_DEFAULT_MAX_OUTBUF ((size_t)64 << 20)    /* 64 MiB */
#define CONFIG_OUTBUF_FRAMES 4u
#define CONFIG_DEFAULT_OFFLINE_MAX_MESSAGES 100000u
#define CONFIG_DEFAULT_OFFLINE_MAX_BYTES ((uint64_t)256 << 20) /* 256 MiB */
#define CONFIG_MAX_FRAME_LIMIT (1u << 29)  /* 512 MiB: SQLite rows hold < 1e9 bytes */
#define CONFIG_DEFAULT_OFFLINE_TTL_MS ((uint64_t)7 * 24 * 3600 * 1000) /* 7 d */
#define CONFIG_DEFAULT_STORE_MAX_PENDING ((size_t)64 << 20) /* 64 MiB */
#define CONFIG_DEFAULT_LOGIN_TIMEOUT_MS 10000u  /* first frame / login */
#define CONFIG_DEFAULT_MAX_CONNECTIONS 100000u
#define CONFIG_DEFAULT_MAX_CONNS_PER_IP 256u    /* non-loopback peers */
#define CONFIG_DEFAULT_RATE_MSGS 20000u         /* data frames/s per conn */
#define CONFIG_DEFAULT_RATE_BYTES ((uint64_t)64 << 20) /* bytes/s per conn */
#define CONFIG_DEFAULT_RATE_GRACE_MS 10000u     /* over the rate: closed */
#define CONFIG_DEFAULT_IDLE_TIMEOUT_MS 300000u  /* 5 min */
#define CONFIG_DEFAULT_MAX_UNACKED 65536u       /* frames sent, not ACKed */
#define CONFIG_DEFAULT_DEVICE_TTL_MS ((uint64_t)30 * 24 * 3600 * 1000) /* 30 d */
#define CONFIG_DEFAULT_HISTORY_TTL_MS 0u       /* no history kept */
#define CONFIG_DEFAULT_DEDUP_MS ((uint64_t)24 * 3600 * 1000) /* 24 h */
#define CONFIG_DEFAULT_CLUSTER_WAIT_MS 1000u /* --cluster-wait-timeout */
#define CONFIG_DEFAULT_MAX_GROUP_MEMBERS 1024u
#define CONFIG_MAX_GROUP_MEMBERS_LIMIT 4096u /* a MEMBERS answer: 20 KiB */
#define CONFIG_DEFAULT_RECEIPT_GROUP_MAX 100u
#define CONFIG_DEFAULT_MAX_SUBSCRIPTIONS 1024u
#define CONFIG_MAX_SUBSCRIPTIONS_LIMIT 65535u
#define CONFIG_INCLUDE_DEPTH 8  /* include nesting at most (a loop ends) */
#define CONFIG_LINE_MAX 4096    /* bytes of one line of a config file */

typedef struct config {
    char bind[64];
    int port;               /* 0: any free port */
    int echo;
    char data_dir[1024];
    uint32_t max_frame;     /* largest body accepted */
    size_t max_outbuf;      /* per-connection output queue bound */
    uint64_t max_unacked;   /* frames sent to an opted-in receiver and not
                               yet acknowledged, per connection (>= 1) */
    uint64_t offline_max_messages; /* per receiver */
    uint64_t offline_max_bytes;    /* per receiver */
    uint64_t offline_ttl_ms;       /* 0: keep forever */
    uint64_t device_ttl_ms;        /* a device not seen for this is
                                      forgotten; 0: never */
    uint64_t history_ttl_ms;       /* messages kept at least this; 0: no */
    uint64_t dedup_ms;             /* client ids remembered (>= 1 s) */
    uint32_t max_group_members;    /* 1..CONFIG_MAX_GROUP_MEMBERS_LIMIT */
    uint32_t receipt_group_max;    /* live receipts in groups of at most
                                      this many members (0: none) */
    uint32_t max_subscriptions;    /* presence, per connection, 0..65535 */
    int fsync_full;                /* 1: synchronous=FULL, 0: NORMAL */
    size_t store_max_pending;      /* store work in flight before reads pause */
    int log_level;
    int log_format;                /* 0 text, 1 json (log.h) */
    /* Security (docs/OPERATIONS.md, "Security"). */
    int auth;                      /* --auth on: HELLO with a password first */
    int insecure_open;             /* auth off, yet accept any peer */
    uint64_t login_timeout_ms;     /* NEW connection: first frame / login */
    uint64_t idle_timeout_ms;      /* silent this long: closed; 0: never */
    uint64_t max_connections;      /* 0: no limit */
    uint64_t max_conns_per_ip;     /* non-loopback peers; 0: no limit */
    uint64_t rate_msgs;            /* data frames/s per connection; 0: off */
    uint64_t rate_bytes;           /* bytes/s per connection; 0: off */
    uint64_t rate_grace_ms;        /* over a rate this long: closed */
    int tls_port;                  /* -1: no TLS listener; 0: any free port */
    int http_port;                 /* -1: no HTTP listener (--http-port 0,
                                      the default); 0: any free port
                                      (--http-port auto) */
    int https_port;                /* likewise, HTTP over TLS */
    int metrics_port;              /* likewise, /metrics and /healthz only;
                                      with --workers, worker K's is this
                                      + K - 1 (workers_metrics_port) */
    char http_allow_origin[1024];  /* WebSocket Origins allowed: a comma-
                                      separated list of origins, or "*";
                                      "" (default): the request's own host */
    char tls_cert[1024], tls_key[1024], tls_ca[1024]; /* "" when unset */
    char config_file[1024];        /* --config; "" when none */
    /* The cluster (docs/CLUSTER.md; "" when unset: the SQLite store). */
    char cluster[1024];            /* redis://[USER@]HOST:PORT[,...] or
                                      rediss:// (cluster_url.h) */
    char cluster_password_file[1024];
    char cluster_tls_ca[1024], cluster_tls_cert[1024], cluster_tls_key[1024];
    char cluster_tls_name[256];
    int cluster_trust_persistence; /* CONFIG GET refused: grant ACKS */
    uint32_t cluster_wait;         /* WAIT for this many replicas before
                                      acknowledging (0: off; 0..16) */
    uint64_t cluster_wait_ms;      /* WAIT's timeout (10 ms .. 3 s) */
    uint32_t cluster_connections;  /* command connections to Redis, the
                                      puts spread over them (1..16) */
    int workers;                   /* --workers: processes sharing the
                                      ports (workers.h); 0: one per CPU */
    int worker;                    /* set by the supervisor in each worker
                                      (1..N), 0 in a single process: its
                                      listeners use SO_REUSEPORT */
    unsigned char origin[64];      /* per setting: ORIGIN_* (where its
                                      value came from) */
} config;

enum { CONFIG_OK = 0, CONFIG_HELP = 1, CONFIG_VERSION = 2, CONFIG_ERROR = 3,
       CONFIG_CHECK = 4 };

/* The kinds of value a setting holds (how its text is read and shown). */
enum setting_kind {
    SET_FLAG,      /* int 0/1; a bare flag, or on|off|yes|no|true|false */
    SET_STRING,    /* char[]: non-empty, shorter than the array */
    SET_PATH,      /* likewise, a file or directory */
    SET_PORT,      /* int 0..65535 (0: any free port) */
    SET_OPT_PORT,  /* int -1 (no listener, the default) or 0..65535 */
    SET_HTTP_PORT, /* int: "0" -> -1 (off), "auto" -> 0, or 1..65535 */
    SET_WORKERS,   /* int: "auto" -> 0 (one per CPU), or min..max */
    SET_COUNT,     /* unsigned, digits only, min..max */
    SET_SIZE,      /* unsigned bytes with K/M/G, min..max */
    SET_DURATION,  /* milliseconds from 500ms/30s/15m/12h/7d, min..max */
    SET_CHOICE,    /* int: the index of one of `choices` */
    SET_LEVEL      /* int: a log level (log_level_parse) */
};

/* setting.flags */
enum {
    SET_LIVE = 1,   /* a reload (SIGHUP) applies a new value */
    SET_SECRET = 2, /* masked by --check-config */
    SET_CLI = 4     /* command line only (no field, not in a file) */
};

/* Where a setting's value came from (config.origin). */
enum { ORIGIN_DEFAULT = 0, ORIGIN_FILE = 1, ORIGIN_ARGV = 2 };

typedef struct setting {
    const char *name;     /* the long flag without "--", and the file key */
    const char *arg;      /* the value's placeholder in help: N, BYTES... */
    const char *section;  /* a heading, on the first setting of a group */
    const char *help;     /* one line: what it does, and what 0 means */
    const char *def_text; /* the default as shown, when it is not simply
                             the value config_defaults sets (NULL) */
    unsigned char kind, flags;
    unsigned short off, width; /* the field in struct config */
    uint64_t min, max;         /* COUNT, SIZE, DURATION: inclusive */
    const char *const *choices;/* CHOICE: NULL-terminated */
} setting;

extern const setting config_settings[];
extern const size_t config_nsettings;

void config_defaults(config *c);
int config_parse(config *c, int argc, char **argv, char *err, size_t errlen);

/* The setting called name (exact), or NULL. */
const setting *config_find(const char *name);

/* Set s from text (as given in a file or after --name=), marking its origin.
 * 0, or -1 with "'text' is not ..." in err (the caller names the setting
 * and where it came from). */
int config_set(config *c, const setting *s, const char *text, int origin,
               char *err, size_t errlen);

/* The checks across settings, after every value is in (e.g. --tls-port
 * needs --tls-cert). CONFIG_OK or CONFIG_ERROR with err. */
int config_finish(config *c, char *err, size_t errlen);

/* s's value in c as config_set reads it back ("16M", "7d", "auto"); "" for
 * an unset path or optional port. */
void config_value(const config *c, const setting *s, char *out, size_t cap);

/* Apply the settings of a config file (config_file.c): "name value" per
 * line, '#' comments, "include FILE" (relative to the including file's
 * directory, CONFIG_INCLUDE_DEPTH deep at most). CONFIG_OK, or
 * CONFIG_ERROR with "FILE:LINE: what is wrong" (or "FILE: ..." when it
 * cannot be read). */
int config_file_apply(config *c, const char *path, char *err, size_t errlen);

/* The data-dir of the config file at path (the default when it sets
 * none), for `chat-server user|backup|restore --config FILE`: a static
 * copy, valid until the next call; NULL with "FILE:LINE: ..." in err. */
const char *config_file_data_dir(const char *path, char *err, size_t errlen);

/* config_doc.c: the texts made from the table. */
void config_usage(FILE *out);            /* --help */
void config_print(const config *c, FILE *out); /* --check-config */
/* what: "man-flags", "man-conf", "markdown" or "conf"; for "conf", set[]
 * are NAME=VALUE pairs printed uncommented. 0, or -1 for an unknown what
 * or a bad pair (a sentence on stderr). */
int config_doc(const char *what, int nset, char **set, FILE *out);

/* 1 when addr is an IPv4 or IPv6 loopback literal (127.0.0.0/8, ::1,
 * ::ffff:127.0.0.0/104), else 0. */
int config_is_loopback(const char *addr);

/* Parse "123", "64K", "16M", "1G" (binary multiples) into *out. 0 or -1. */
int config_parse_size(const char *s, uint64_t *out);

/* Parse a duration "500ms", "30s", "15m", "12h", "7d" (a bare number is
 * seconds) into milliseconds. 0 or -1. */
int config_parse_duration(const char *s, uint64_t *ms);

/* The store's settings among c's (c->data_dir must outlive the result;
 * the type is store.h's). */
struct store_config;
struct store_config config_store(const config *c);

#endif
