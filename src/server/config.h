/*
 * config.h -- chat-server's settings and their command-line flags.
 *
 * config_parse() fills a config from argv with getopt_long. It never exits
 * and never prints: it returns CONFIG_OK, CONFIG_HELP / CONFIG_VERSION (the
 * caller prints config_usage() or the version and exits 0), or CONFIG_ERROR
 * with a one-line message naming the flag in `err` (the caller exits 2).
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
#define CONFIG_DEFAULT_MAX_OUTBUF ((size_t)64 << 20)    /* 64 MiB */
#define CONFIG_DEFAULT_OFFLINE_MAX_MESSAGES 100000u
#define CONFIG_DEFAULT_OFFLINE_MAX_BYTES ((uint64_t)256 << 20) /* 256 MiB */
#define CONFIG_MAX_FRAME_LIMIT (1u << 29)  /* 512 MiB: SQLite rows hold < 1e9 bytes */
#define CONFIG_DEFAULT_OFFLINE_TTL_MS ((uint64_t)7 * 24 * 3600 * 1000) /* 7 d */
#define CONFIG_DEFAULT_STORE_MAX_PENDING ((size_t)64 << 20) /* 64 MiB */

typedef struct config {
    char bind[64];
    int port;               /* 0: any free port */
    int echo;
    char data_dir[1024];
    uint32_t max_frame;     /* largest body accepted */
    size_t max_outbuf;      /* per-connection output queue bound */
    uint64_t offline_max_messages; /* per receiver */
    uint64_t offline_max_bytes;    /* per receiver */
    uint64_t offline_ttl_ms;       /* 0: keep forever */
    int fsync_full;                /* 1: synchronous=FULL, 0: NORMAL */
    size_t store_max_pending;      /* store work in flight before reads pause */
    int log_level;
} config;

enum { CONFIG_OK = 0, CONFIG_HELP = 1, CONFIG_VERSION = 2, CONFIG_ERROR = 3 };

void config_defaults(config *c);
int config_parse(config *c, int argc, char **argv, char *err, size_t errlen);
void config_usage(FILE *out);

/* Parse "123", "64K", "16M", "1G" (binary multiples) into *out. 0 or -1. */
int config_parse_size(const char *s, uint64_t *out);

/* Parse a duration "500ms", "30s", "15m", "12h", "7d" (a bare number is
 * seconds) into milliseconds. 0 or -1. */
int config_parse_duration(const char *s, uint64_t *ms);

#endif
