/*
 * signals.c -- chat-client and signals (docs/PROTOCOL.md "Receipts, typing
 * and presence"): the JSON lines of receipts, typing and presence (listen
 * and receipts print them), and the subcommands `read`, `receipts` and
 * `typing`.
 *
 * Each subcommand is one request on a session with SIGNALS (request.h):
 * read and typing write their frame, then a QUERY of the same
 * conversation, whose END says that the server has handled the frame
 * before it (frames are handled in order) and did not refuse it; receipts
 * prints the QUERY's answer.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "cli/request.h"

/* ------------------------------------------------------------------ */
/* JSON lines                                                          */
/* ------------------------------------------------------------------ */

static int line_end(int w) {
    if (w || fflush(stdout) == EOF) {
        cli_err("cannot write to standard output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int cli_print_receipt(int what, int flags, uint32_t conv, uint32_t by, uint64_t upto,
                      uint64_t time_ms) {
    const char *name = what == CHAT_RECEIPT_DELIVERED ? "delivered"
                     : what == CHAT_RECEIPT_READ ? "read" : NULL;
    if (!name) return 0; /* END: not a mark */
    int w = printf("{\"receipt\": \"%s\", \"conv\": %" PRIu32 ", \"group\": %s, \"by\": %"
                   PRIu32 ", \"upto\": %" PRIu64 ", \"time\": %" PRIu64 "}\n",
                   name, conv, (flags & CHAT_SIGNAL_GROUP) ? "true" : "false", by, upto,
                   time_ms) < 0;
    return line_end(w);
}

int cli_print_typing(uint32_t from, int flags, uint32_t to, int state) {
    int w = printf("{\"typing\": %s, \"from\": %" PRIu32 ", \"to\": %" PRIu32
                   ", \"group\": %s}\n", state ? "true" : "false", from, to,
                   (flags & CHAT_SIGNAL_GROUP) ? "true" : "false") < 0;
    return line_end(w);
}

int cli_print_presence(uint32_t user, int state, uint64_t last_seen_ms) {
    int w = printf("{\"presence\": \"%s\", \"user\": %" PRIu32 ", \"last_seen\": %" PRIu64
                   "}\n", state == CHAT_PRESENCE_ONLINE ? "online" : "offline", user,
                   last_seen_ms) < 0;
    return line_end(w);
}

/* ------------------------------------------------------------------ */
/* read, receipts, typing                                              */
/* ------------------------------------------------------------------ */

enum { SIG_READ, SIG_RECEIPTS, SIG_TYPING };
static const char *const sig_cmds[] = {"read", "receipts", "typing"};

static const char read_usage[] =
    "usage: chat-client read --id ID (--with ID | --group G) --upto MSGID\n"
    "                        " CLI_REQ_USAGE "\n"
    "                        " CLI_TLS_USAGE "\n"
    "\n"
    "Mark a conversation read up to message MSGID (a RECEIPT READ, on a server\n"
    "that grants SIGNALS): the server keeps the highest mark, and passes it on to\n"
    "the other user (or the group's members) and to your other devices, whose\n"
    "listen --signals prints it. Prints nothing; exits 0 once the server has\n"
    "handled it.\n"
    "\n"
    "  --with ID        the conversation with user ID\n"
    "  --group G        the conversation of group G (its members only)\n"
    "  --upto MSGID     the id of the last message shown (listen and history print\n"
    "                   ids as \"id\")\n"
    CLI_REQ_HELP
    "\n"
    "Exit status: 0 done, 1 failed or refused (one sentence on stderr), 2 bad usage.\n";

static const char receipts_usage[] =
    "usage: chat-client receipts --id ID (--with ID | --group G)\n"
    "                            " CLI_REQ_USAGE "\n"
    "                            " CLI_TLS_USAGE "\n"
    "\n"
    "Print the delivered and read marks of a conversation as the server keeps\n"
    "them (a RECEIPT QUERY, on a server that grants SIGNALS), one JSON object a\n"
    "line, then exit:\n"
    "  {\"receipt\": \"delivered\", \"conv\": 2, \"group\": false, \"by\": 2, \"upto\": 17, \"time\": 1700000000123}\n"
    "  {\"receipt\": \"read\", \"conv\": 2, \"group\": false, \"by\": 2, \"upto\": 15, \"time\": 1700000000456}\n"
    "A mark says user \"by\" has received (delivered) or shown (read) every message\n"
    "of the conversation up to id \"upto\" (0: none yet); \"time\" is when it moved\n"
    "(unix ms, 0 when not known). With --with ID: ID's delivered and read marks,\n"
    "then your own read mark (\"by\" is your id). With --group G: a delivered and a\n"
    "read mark per member (members only).\n"
    "\n"
    "  --with ID        the conversation with user ID\n"
    "  --group G        the conversation of group G\n"
    CLI_REQ_HELP
    "\n"
    "Exit status: 0 done, 1 failed or refused (one sentence on stderr), 2 bad usage.\n";

static const char typing_usage[] =
    "usage: chat-client typing --id ID (--with ID | --group G) [--stop]\n"
    "                          " CLI_REQ_USAGE "\n"
    "                          " CLI_TLS_USAGE "\n"
    "\n"
    "Tell a user (or a group's members) that you are typing, or with --stop that\n"
    "you stopped (a TYPING frame, on a server that grants SIGNALS). The server\n"
    "passes it on to the connections of the receiver that are there (listen\n"
    "--signals prints {\"typing\": true, \"from\": ID, ...}) and keeps nothing;\n"
    "receivers treat a typing state older than about 6 s as stopped. Prints\n"
    "nothing; exits 0 once the server has handled it.\n"
    "\n"
    "  --with ID        the user you are writing to\n"
    "  --group G        the group you are writing in (members only)\n"
    "  --stop           you stopped typing (default: you are typing)\n"
    CLI_REQ_HELP
    "\n"
    "Exit status: 0 done, 1 failed or refused (one sentence on stderr), 2 bad usage.\n";

typedef struct sig_job {
    cli_req r;       /* first: libchat's userdata points at it */
    int op;          /* SIG_* */
    uint32_t conv;
    int group;
    uint64_t upto;   /* read */
    int stop;        /* typing */
} sig_job;

static void on_receipt(chat_client *c, int what, int flags, uint32_t conv, uint32_t by,
                       uint64_t upto, uint64_t time_ms, void *ud) {
    (void)c;
    sig_job *j = ud;
    if (j->r.done || j->r.failed) return;
    int ours = conv == j->conv && ((flags & CHAT_SIGNAL_GROUP) != 0) == j->group;
    if (what == CHAT_RECEIPT_END) {
        if (ours) j->r.done = 1;
        return;
    }
    /* receipts: every mark until END (a live one of this conversation may
     * come among them, as the server sends it) */
    if (j->op == SIG_RECEIPTS && ours &&
        cli_print_receipt(what, flags, conv, by, upto, time_ms) < 0)
        j->r.failed = 1;
}

static int start(chat_client *c, cli_req *r) {
    sig_job *j = (sig_job *)r;
    if (!chat_signals_granted(c)) return CHAT_ENOTSUP;
    int rc = 0;
    if (j->op == SIG_READ) rc = chat_read(c, j->conv, j->group, j->upto);
    else if (j->op == SIG_TYPING) rc = chat_typing(c, j->conv, j->group, !j->stop);
    if (rc < 0) return rc;
    return chat_receipts_query(c, j->conv, j->group);
}

static int sig_main(int op, int argc, char **argv) {
    static const struct option opts[] = {
        {"with", required_argument, NULL, 'w'}, {"group", required_argument, NULL, 'g'},
        {"upto", required_argument, NULL, 'u'}, {"stop", no_argument, NULL, 's'},
        CLI_REQ_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *cmd = sig_cmds[op];
    const char *usage = op == SIG_READ ? read_usage
                      : op == SIG_RECEIPTS ? receipts_usage : typing_usage;
    sig_job j;
    memset(&j, 0, sizeof j);
    cli_conn_init(&j.r.cc);
    j.r.what = "receipts, typing and presence";
    j.r.start = start;
    j.op = op;
    uint32_t with = 0, group = 0;
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        int k = cli_conn_flag(cmd, &j.r.cc, o, optarg);
        if (k < 0) return CLI_EXIT_USAGE;
        if (k) continue;
        switch (o) {
        case 'w': if (cli_parse_id(cmd, "--with", optarg, &with)) return CLI_EXIT_USAGE; break;
        case 'g': if (cli_parse_id(cmd, "--group", optarg, &group)) return CLI_EXIT_USAGE; break;
        case 'u':
            if (op != SIG_READ) return cli_usage_err(cmd, "--upto goes with read");
            if (cli_parse_msg_id(cmd, "--upto", optarg, &j.upto)) return CLI_EXIT_USAGE;
            break;
        case 's':
            if (op != SIG_TYPING) return cli_usage_err(cmd, "--stop goes with typing");
            j.stop = 1;
            break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_err(cmd, "%s needs a value", argv[optind - 1]);
        default: return cli_usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
    if (!j.r.cc.id) return cli_usage_err(cmd, "--id is required");
    if (!with == !group) return cli_usage_err(cmd, "give exactly one of --with and --group");
    if (op == SIG_READ && !j.upto) return cli_usage_err(cmd, "--upto is required");
    j.conv = with ? with : group;
    j.group = group != 0;
    if (cli_conn_check(cmd, &j.r.cc)) return CLI_EXIT_USAGE;
    chat_options co;
    cli_options(&j.r.cc, &co);
    co.signals = 1;
    co.cb.on_receipt = on_receipt;
    return cli_req_run(&j.r, &co);
}

int cli_read_main(int argc, char **argv) { return sig_main(SIG_READ, argc, argv); }
int cli_receipts_main(int argc, char **argv) { return sig_main(SIG_RECEIPTS, argc, argv); }
int cli_typing_main(int argc, char **argv) { return sig_main(SIG_TYPING, argc, argv); }
