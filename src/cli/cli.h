/*
 * cli.h -- what chat-client's subcommands share: the connection flags, their
 * parsing, and the one-sentence messages for failures.
 *
 * Exit codes of every subcommand: 0 success, 1 failure (the sentence on
 * stderr says what happened), 2 bad usage.
 */
#ifndef CLI_H
#define CLI_H

#include <stdint.h>

#include "chat.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#define CLI_DEFAULT_HOST "127.0.0.1"
#define CLI_DEFAULT_PORT 8888
#define CLI_DEFAULT_TIMEOUT 10

/* Flags every subcommand takes. */
typedef struct cli_conn {
    const char *host;  /* --host, default CLI_DEFAULT_HOST */
    uint16_t port;     /* --port, default CLI_DEFAULT_PORT */
    uint32_t id;       /* --id, required, != 0 */
    int no_acks;       /* --no-acks: control frames off (article's protocol) */
    unsigned timeout;  /* --timeout seconds, default CLI_DEFAULT_TIMEOUT */
    const struct chat_client *client; /* set once created: lets failure
                                         sentences name the OS error */
} cli_conn;

void cli_conn_init(cli_conn *cc);

/* Print "chat-client: <fmt>" and a newline on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "chat-client: <cmd>: <fmt>", a hint to --help, return
 * CLI_EXIT_USAGE. */
int cli_usage_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse a user id (1..2^32-1) from `s` for flag `flag`. 0 or -1 (printed). */
int cli_parse_id(const char *cmd, const char *flag, const char *s, uint32_t *out);
int cli_parse_port(const char *cmd, const char *s, uint16_t *out);
int cli_parse_uint(const char *cmd, const char *flag, const char *s,
                   unsigned long max, unsigned long *out);

/* The sentence for a connection failure `err` (CHAT_E*) with cc's address. */
void cli_conn_err(const cli_conn *cc, int err);

/* chat_options for cc: host, port, user, control frames unless --no-acks,
 * acknowledgements asked for. The caller adds callbacks and the rest. */
void cli_options(const cli_conn *cc, chat_options *co);

/* chat_new, then chat_connect. On failure prints one sentence and returns
 * NULL (nothing to free). Sets cc->client, so later sentences can name the
 * operating-system error. */
chat_client *cli_open(cli_conn *cc, const chat_options *co);

/* 0 when dir (the value of flag) is a directory; otherwise prints the usage
 * sentence and returns CLI_EXIT_USAGE. */
int cli_check_dir(const char *cmd, const char *flag, const char *dir);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t cli_mono_ms(void);

/* Name of a chat_type ("text", "picture", ...), NULL if not 1-4. */
const char *cli_type_name(int type);
/* chat_type from a name ("picture", "voice", "video", "text"), or -1. */
int cli_type_from_name(const char *name);

int cli_send_main(int argc, char **argv);
int cli_listen_main(int argc, char **argv);

#endif
