/*
 * history.c -- `chat-client history`: one page of a conversation's past
 * (docs/PROTOCOL.md "History"), newest first, as listen's JSON lines with
 * "id" and "time".
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

#define HISTORY_DEFAULT_LIMIT 50
#define HISTORY_MAX_RECV (1024u * 1024u * 1024u) /* a page: ~256 KiB of payload, at least one message */

static const char history_usage[] =
    "usage: chat-client history --id ID (--with ID | --group G) [--before ID] [--limit N]\n"
    "                           [--save-dir DIR] " CLI_REQ_USAGE "\n"
    "                           " CLI_TLS_USAGE "\n"
    "\n"
    "Print a page of a conversation's past, newest first, one JSON object a line:\n"
    "the fields of listen, and the message's \"id\" and \"time\" (unix ms):\n"
    "  {\"from\": 2, \"to\": 1, \"id\": 17, \"time\": 1700000000123, \"type\": \"text\", \"text\": \"...\"}\n"
    "  {\"from\": 1, \"to\": 3, \"group\": 3, \"id\": 16, \"own\": true, \"time\": ..., ...}\n"
    "(\"own\": your own messages, from any of your devices). When older messages\n"
    "remain, a line on stderr says so: \"chat-client: older messages remain: use\n"
    "--before 16\". The server keeps history only when run with --history-ttl;\n"
    "without it the page is empty.\n"
    "\n"
    "  --with ID        the conversation with user ID (both directions)\n"
    "  --group G        the messages of group G (its members only, since you joined)\n"
    "  --before ID      only messages with an id below ID (default: the newest)\n"
    "  --limit N        at most N messages, 1-200 (default 50)\n"
    "  --save-dir DIR   where media files go (default .; see listen --help)\n"
    CLI_REQ_HELP
    "\n"
    "Exit status: 0 (also for an empty page), 1 failed or refused (one sentence on\n"
    "stderr), 2 bad usage.\n";

typedef struct history_job {
    cli_req r;          /* first: libchat's userdata points at it */
    int kind;           /* chat_history_kind */
    uint32_t peer;
    uint64_t before;
    uint32_t limit;
    const char *save_dir;
} history_job;

static void on_history(chat_client *c, const chat_history_page *p, void *ud) {
    (void)c;
    history_job *j = ud;
    if (j->r.done || j->r.failed) return;
    if (p->err) {
        cli_req_refused(&j->r, p->err, p->reason, p->reason_len);
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (cli_print_msg(&p->msgs[i], j->save_dir, 1) < 0) {
            j->r.failed = 1;
            return;
        }
    }
    if (p->more && p->n)
        cli_err("older messages remain: use --before %" PRIu64, p->msgs[p->n - 1].id);
    j->r.done = 1;
}

static int start(chat_client *c, cli_req *r) {
    history_job *j = (history_job *)r;
    return chat_history(c, j->kind, j->peer, j->before, j->limit, NULL);
}

int cli_history_main(int argc, char **argv) {
    static const struct option opts[] = {
        {"with", required_argument, NULL, 'w'}, {"group", required_argument, NULL, 'g'},
        {"before", required_argument, NULL, 'b'}, {"limit", required_argument, NULL, 'l'},
        {"save-dir", required_argument, NULL, 'd'}, CLI_REQ_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *cmd = "history";
    history_job j;
    memset(&j, 0, sizeof j);
    cli_conn_init(&j.r.cc);
    j.r.what = "history";
    j.r.start = start;
    j.limit = HISTORY_DEFAULT_LIMIT;
    j.save_dir = ".";
    uint32_t with = 0, group = 0;
    unsigned long v;
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
        case 'b':
            if (cli_parse_msg_id(cmd, "--before", optarg, &j.before)) return CLI_EXIT_USAGE;
            break;
        case 'l':
            if (cli_parse_uint(cmd, "--limit", optarg, CHAT_HISTORY_LIMIT_MAX, &v))
                return CLI_EXIT_USAGE;
            if (v == 0) return cli_usage_err(cmd, "--limit must be at least 1");
            j.limit = (uint32_t)v;
            break;
        case 'd': j.save_dir = optarg; break;
        case 'h': fputs(history_usage, stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_err(cmd, "%s needs a value", argv[optind - 1]);
        default: return cli_usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
    if (!j.r.cc.id) return cli_usage_err(cmd, "--id is required");
    if (!with == !group) return cli_usage_err(cmd, "give exactly one of --with and --group");
    j.kind = with ? CHAT_HISTORY_USER : CHAT_HISTORY_GROUP;
    j.peer = with ? with : group;
    if (cli_conn_check(cmd, &j.r.cc)) return CLI_EXIT_USAGE;
    if (cli_check_dir(cmd, "--save-dir", j.save_dir)) return CLI_EXIT_USAGE;
    chat_options co;
    cli_options(&j.r.cc, &co);
    co.max_recv = HISTORY_MAX_RECV;
    co.cb.on_history = on_history;
    return cli_req_run(&j.r, &co);
}
