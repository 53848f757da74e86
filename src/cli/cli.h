/*
 * cli.h -- what chat-client's subcommands share: the connection flags, their
 * parsing, and the one-sentence messages for failures.
 *
 * Exit codes of every subcommand: 0 success, 1 failure (the sentence on
 * stderr says what happened), 2 bad usage.
 */
#ifndef CLI_H
#define CLI_H

#include <getopt.h>
#include <stdint.h>

#include "chat.h"
#include "cli/addr.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#define CLI_DEFAULT_HOST "127.0.0.1"
#define CLI_DEFAULT_PORT 8888
#define CLI_DEFAULT_TIMEOUT 10

/* Flags every subcommand takes. */
typedef struct cli_conn {
    const char *host_args[CHAT_SERVERS_MAX]; /* the --host values, in order */
    unsigned n_host_args;
    cli_addr servers[CHAT_SERVERS_MAX]; /* parsed by cli_conn_check; one
                                           (CLI_DEFAULT_HOST) without --host */
    unsigned n_servers;
    uint16_t port;     /* --port, default CLI_DEFAULT_PORT: the port of a
                          --host without one */
    uint32_t id;       /* --id, required, != 0 */
    int no_acks;       /* --no-acks: control frames off (article's protocol) */
    unsigned timeout;  /* --timeout seconds, default CLI_DEFAULT_TIMEOUT;
                          also bounds the TCP connect + TLS handshake */
    int tls;           /* --tls */
    chat_tls_options tls_opts; /* --ca, --server-name, --cert, --key */
    const char *device;        /* --device, NULL = the default device */
    const char *password_file; /* --password-file */
    char password[1025];       /* its first line, or $CHAT_PASSWORD; "" none */
    const struct chat_client *client; /* set once created: lets failure
                                         sentences name the OS or TLS error */
} cli_conn;

void cli_conn_init(cli_conn *cc);

/* The TLS, password and device flags, the same for every subcommand: put
 * CLI_TLS_LONGOPTS in the getopt_long table, give every option code to
 * cli_conn_flag first, and call cli_conn_check once parsing is done. */
enum { CLI_OPT_TLS = 0x100, CLI_OPT_CA, CLI_OPT_CERT, CLI_OPT_KEY, CLI_OPT_SERVER_NAME,
       CLI_OPT_PASSWORD_FILE, CLI_OPT_DEVICE };
#define CLI_TLS_LONGOPTS                                                      \
    {"device", required_argument, NULL, CLI_OPT_DEVICE},                      \
    {"password-file", required_argument, NULL, CLI_OPT_PASSWORD_FILE},        \
    {"tls", no_argument, NULL, CLI_OPT_TLS},                                  \
    {"ca", required_argument, NULL, CLI_OPT_CA},                              \
    {"cert", required_argument, NULL, CLI_OPT_CERT},                          \
    {"key", required_argument, NULL, CLI_OPT_KEY},                            \
    {"server-name", required_argument, NULL, CLI_OPT_SERVER_NAME}
#define CLI_TLS_USAGE "[--password-file FILE] [--tls [--ca FILE] [--server-name NAME] [--cert FILE --key FILE]]"
#define CLI_TLS_HELP                                                               \
    "  --device NAME    this device's name, 1-32 characters from A-Z a-z 0-9 . _ -\n" \
    "                   (default: the user's default device). Each device of a\n"    \
    "                   user gets every message once, and the messages the user\n"   \
    "                   sends from its other devices (marked own). Needs a server\n" \
    "                   that grants CONV; others ignore it\n"                        \
    "  --password-file FILE  log in with the password on FILE's first line\n"       \
    "                   (default: $CHAT_PASSWORD, if set), for servers run\n"       \
    "                   with --auth on\n"                                             \
    "  --tls            connect with TLS (1.2 or newer) to the server's TLS port;\n"  \
    "                   its certificate and name are always verified\n"              \
    "  --ca FILE        PEM file of the CA(s) to trust (default: the system's CAs)\n" \
    "  --server-name NAME  name or address the certificate must carry, sent as\n"    \
    "                   SNI (default: --host)\n"                                       \
    "  --cert FILE      PEM client certificate, for servers that require one\n"      \
    "  --key FILE       PEM private key of --cert (unencrypted)\n"

/* The help lines of --host and --port, the same for every subcommand. */
#define CLI_HOST_HELP                                                              \
    "  --host HOST[:PORT]  server address (default " CLI_DEFAULT_HOST "); IPv6 in\n"   \
    "                   brackets with a port ([::1]:8888). Repeat it (at most 16)\n" \
    "                   for servers that share one store (a cluster, or a standby\n" \
    "                   on the same data directory): the first is tried first;\n"   \
    "                   when one fails or is lost the next is tried at once, and\n"  \
    "                   what was not acknowledged is sent again there\n"           \
    "  --port PORT      server port for a --host without one (default 8888)\n"

/* The connection flags every subcommand shares, by option code: 'i' --id,
 * 'H' --host (repeatable, at most CHAT_SERVERS_MAX), 'p' --port, 'n' --no-acks, 'T' --timeout, and the device, TLS
 * and password flags. 1 when `opt` was one (recorded in cc), 0 when not, -1
 * after printing a usage sentence for a bad value. */
int cli_conn_flag(const char *cmd, cli_conn *cc, int opt, const char *arg);

/* After parsing: parses the --host values (cli_addr_parse, --port for
 * those without a port), --ca/--cert/--key/--server-name need --tls, --cert
 * and --key go together, --device needs control frames (not --no-acks);
 * reads the password (--password-file, else $CHAT_PASSWORD). 0, or prints
 * the usage sentence and returns CLI_EXIT_USAGE. */
int cli_conn_check(const char *cmd, cli_conn *cc);

/* The server the session is on, or was last tried ("HOST:PORT", for
 * messages): the first before cli_open. Valid as long as cc. O(1). */
const char *cli_where(const cli_conn *cc);

/* In on_disconnected: 1 when libchat tries again and the command should
 * wait for it: a retry is scheduled (state BACKOFF) and either a session
 * was ready before (`ever_connected`) or some server was not tried yet in
 * the first round. 0: give up (print the sentence). O(1). */
int cli_retrying(const cli_conn *cc, const chat_client *c, int ever_connected);

/* Print "chat-client: <fmt>" and a newline on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "chat-client: <cmd>: <fmt>", a hint to --help, return
 * CLI_EXIT_USAGE. */
int cli_usage_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse a user id (1..2^32-1) from `s` for flag `flag`. 0 or -1 (printed). */
int cli_parse_id(const char *cmd, const char *flag, const char *s, uint32_t *out);
/* Parse a server message id (1..2^64-1) from `s` for flag `flag`. 0 or -1
 * (printed). */
int cli_parse_msg_id(const char *cmd, const char *flag, const char *s, uint64_t *out);
int cli_parse_port(const char *cmd, const char *s, uint16_t *out);
int cli_parse_uint(const char *cmd, const char *flag, const char *s,
                   unsigned long max, unsigned long *out);

/* The sentence for a connection failure `err` (CHAT_E*) with cc's address. */
void cli_conn_err(const cli_conn *cc, int err);

/* chat_options for cc: the first server's host and port, user, control frames unless --no-acks,
 * acknowledgements and CONV asked for, the device, TLS options (pointing
 * into cc, which must outlive chat_new), connect timeout. The caller adds
 * callbacks and the rest. */
void cli_options(const cli_conn *cc, chat_options *co);

/* chat_new, chat_set_servers (with several --host), then chat_connect. On
 * failure prints one sentence and returns NULL (nothing to free). Sets
 * cc->client, so later sentences can name the server and the
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

/* listen.c: print m as one JSON line, listen's format (see listen --help;
 * with_time adds "time", unix ms), saving a picture, voice or video body
 * under save_dir. 0, or -1 after printing the sentence (the file could not
 * be saved, or standard output failed). */
int cli_print_msg(const chat_msg *m, const char *save_dir, int with_time);

/* signals.c: one JSON line for a receipt mark (nothing for END), a
 * typing state, a presence state (see listen --help). 0, or -1 after
 * printing the sentence (standard output failed). */
int cli_print_receipt(int what, int flags, uint32_t conv, uint32_t by, uint64_t upto,
                      uint64_t time_ms);
int cli_print_typing(uint32_t from, int flags, uint32_t to, int state);
int cli_print_presence(uint32_t user, int state, uint64_t last_seen_ms);

int cli_send_main(int argc, char **argv);
int cli_listen_main(int argc, char **argv);
int cli_group_main(int argc, char **argv);
int cli_history_main(int argc, char **argv);
int cli_read_main(int argc, char **argv);
int cli_receipts_main(int argc, char **argv);
int cli_typing_main(int argc, char **argv);

#endif
