/*
 * group.c -- `chat-client group ACTION`: create, rename, add, remove,
 * leave, list, members (docs/PROTOCOL.md "Groups"). One request (create:
 * then MEMBERS, to print who is in the new group), its answer on stdout as
 * JSON, a refusal as the server's reason on stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "cli/json.h"
#include "cli/request.h"

static const char group_usage[] =
    "usage: chat-client group create --id ID --name NAME [--member ID]... [...]\n"
    "       chat-client group rename --id ID --group G --name NAME [...]\n"
    "       chat-client group add --id ID --group G --member ID [--member ID]... [...]\n"
    "       chat-client group remove --id ID --group G --member ID [--member ID]... [...]\n"
    "       chat-client group leave --id ID --group G [...]\n"
    "       chat-client group list --id ID [...]\n"
    "       chat-client group members --id ID --group G [...]\n"
    "   [...]: " CLI_REQ_USAGE "\n"
    "          " CLI_TLS_USAGE "\n"
    "\n"
    "Groups of users (on a server that grants CONV). create makes a group with you\n"
    "as its admin and the --member users as members, and prints it:\n"
    "  {\"group\": 3, \"name\": \"friends\", \"members\": [1, 2, 5]}\n"
    "list prints your groups, members a group's members, one JSON object a line:\n"
    "  {\"group\": 3, \"name\": \"friends\", \"admin\": true, \"members\": 3}\n"
    "  {\"user\": 1, \"admin\": true}\n"
    "rename, add and remove are for the group's admins, members for its members;\n"
    "they and leave print nothing. Send to a group with send --group G; listen\n"
    "shows its messages with \"group\": G.\n"
    "\n"
    "  --name NAME      the group's name, 1-64 bytes of UTF-8\n"
    "  --group G        the group's id (create and list print it)\n"
    "  --member ID      a user, once per user (at most 4096)\n"
    CLI_REQ_HELP
    "\n"
    "Exit status: 0 done, 1 failed or refused (one sentence on stderr, e.g.\n"
    "\"chat-client: not a member of group 3\"), 2 bad usage.\n";

typedef struct group_job {
    cli_req r;          /* first: libchat's userdata points at it */
    int op;             /* chat_group_op */
    uint32_t group;
    const char *name;
    uint32_t *members;
    size_t n;
} group_job;

/* Print the answer; 0 or -1 (stdout failed). */
static int print_answer(const group_job *j, const chat_group_event *e) {
    int w = 0;
    if (e->op == CHAT_GROUP_MEMBERS && j->op == CHAT_GROUP_CREATE) {
        w |= printf("{\"group\": %" PRIu32 ", \"name\": ", e->group) < 0;
        w |= cli_json_string(stdout, j->name, strlen(j->name)) < 0;
        w |= fputs(", \"members\": [", stdout) == EOF;
        for (size_t i = 0; i < e->n_members; i++)
            w |= printf("%s%" PRIu32, i ? ", " : "", e->members[i].user) < 0;
        w |= fputs("]}\n", stdout) == EOF;
    } else if (e->op == CHAT_GROUP_MEMBERS) {
        for (size_t i = 0; i < e->n_members; i++)
            w |= printf("{\"user\": %" PRIu32 ", \"admin\": %s}\n", e->members[i].user,
                        e->members[i].admin ? "true" : "false") < 0;
    } else if (e->op == CHAT_GROUP_LIST) {
        for (size_t i = 0; i < e->n_groups; i++) {
            const chat_group_info *g = &e->groups[i];
            w |= printf("{\"group\": %" PRIu32 ", \"name\": ", g->id) < 0;
            w |= cli_json_string(stdout, g->name, g->name_len) < 0;
            w |= printf(", \"admin\": %s, \"members\": %" PRIu32 "}\n",
                        g->admin ? "true" : "false", g->members) < 0;
        }
    }
    return w || fflush(stdout) == EOF ? -1 : 0;
}

static void on_group(chat_client *c, const chat_group_event *e, void *ud) {
    group_job *j = ud;
    if (e->op == CHAT_GROUP_EVENT || j->r.done || j->r.failed) return;
    if (e->err) {
        cli_req_refused(&j->r, e->err, e->reason, e->reason_len);
        return;
    }
    if (e->op == CHAT_GROUP_CREATE) { /* then who is in it */
        int rc = chat_group_members(c, e->group, NULL);
        if (rc < 0) cli_req_fail(&j->r, "ask for the new group's members", rc);
        return;
    }
    if (print_answer(j, e) < 0) {
        cli_err("cannot write to standard output: %s", strerror(errno));
        j->r.failed = 1;
        return;
    }
    j->r.done = 1;
}

static int start(chat_client *c, cli_req *r) {
    group_job *j = (group_job *)r;
    switch (j->op) {
    case CHAT_GROUP_CREATE: return chat_group_create(c, j->name, j->members, j->n, NULL);
    case CHAT_GROUP_RENAME: return chat_group_rename(c, j->group, j->name, NULL);
    case CHAT_GROUP_ADD: return chat_group_add(c, j->group, j->members, j->n, NULL);
    case CHAT_GROUP_REMOVE: return chat_group_remove(c, j->group, j->members, j->n, NULL);
    case CHAT_GROUP_LEAVE: return chat_group_leave(c, j->group, NULL);
    case CHAT_GROUP_LIST: return chat_group_list(c, NULL);
    default: return chat_group_members(c, j->group, NULL);
    }
}

static const char *const actions[] = {
    [CHAT_GROUP_CREATE] = "create", [CHAT_GROUP_RENAME] = "rename",
    [CHAT_GROUP_ADD] = "add", [CHAT_GROUP_REMOVE] = "remove",
    [CHAT_GROUP_LEAVE] = "leave", [CHAT_GROUP_LIST] = "list",
    [CHAT_GROUP_MEMBERS] = "members"};

/* Which flags an action needs (N name, G group, M members) and allows. */
static int check_args(const char *cmd, const group_job *j, int has_group) {
    int op = j->op;
    int need_name = op == CHAT_GROUP_CREATE || op == CHAT_GROUP_RENAME;
    int need_group = op != CHAT_GROUP_CREATE && op != CHAT_GROUP_LIST;
    int need_members = op == CHAT_GROUP_ADD || op == CHAT_GROUP_REMOVE;
    int may_members = need_members || op == CHAT_GROUP_CREATE;
    if (!j->r.cc.id) return cli_usage_err(cmd, "--id is required");
    if (need_name && !j->name) return cli_usage_err(cmd, "--name is required");
    if (!need_name && j->name) return cli_usage_err(cmd, "--name goes with create and rename");
    if (need_group && !has_group) return cli_usage_err(cmd, "--group is required");
    if (!need_group && has_group)
        return cli_usage_err(cmd, "--group does not go with %s", actions[op]);
    if (need_members && !j->n) return cli_usage_err(cmd, "give at least one --member");
    if (!may_members && j->n)
        return cli_usage_err(cmd, "--member goes with create, add and remove");
    if (j->name && (!j->name[0] || strlen(j->name) > CHAT_GROUP_NAME_MAX))
        return cli_usage_err(cmd, "--name wants 1 to 64 bytes, not %zu", strlen(j->name));
    return 0;
}

int cli_group_main(int argc, char **argv) {
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'N'}, {"group", required_argument, NULL, 'g'},
        {"member", required_argument, NULL, 'm'}, CLI_REQ_LONGOPTS, {NULL, 0, NULL, 0}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(group_usage, argc < 2 ? stderr : stdout);
        if (argc < 2) cli_err("group: an action is required: create, rename, add, "
                              "remove, leave, list or members");
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    group_job j;
    memset(&j, 0, sizeof j);
    for (int op = CHAT_GROUP_CREATE; op <= CHAT_GROUP_MEMBERS; op++)
        if (strcmp(argv[1], actions[op]) == 0) j.op = op;
    if (!j.op)
        return cli_usage_err("group", "unknown action '%s': use create, rename, add, "
                             "remove, leave, list or members", argv[1]);
    char cmd[32];
    snprintf(cmd, sizeof cmd, "group %s", actions[j.op]);
    cli_conn_init(&j.r.cc);
    j.r.what = "groups";
    j.r.start = start;
    static uint32_t members[CHAT_GROUP_USERS_MAX];
    j.members = members;
    int has_group = 0, o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc - 1, argv + 1, ":", opts, NULL)) != -1) {
        int k = cli_conn_flag(cmd, &j.r.cc, o, optarg);
        if (k < 0) return CLI_EXIT_USAGE;
        if (k) continue;
        switch (o) {
        case 'N': j.name = optarg; break;
        case 'g':
            if (cli_parse_id(cmd, "--group", optarg, &j.group)) return CLI_EXIT_USAGE;
            has_group = 1;
            break;
        case 'm':
            if (j.n == CHAT_GROUP_USERS_MAX)
                return cli_usage_err(cmd, "at most %u --member", CHAT_GROUP_USERS_MAX);
            if (cli_parse_id(cmd, "--member", optarg, &members[j.n])) return CLI_EXIT_USAGE;
            j.n++;
            break;
        case 'h': fputs(group_usage, stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_err(cmd, "%s needs a value", argv[optind]);
        default: return cli_usage_err(cmd, "unknown option '%s'", argv[optind]);
        }
    }
    if (optind < argc - 1) return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (check_args(cmd, &j, has_group)) return CLI_EXIT_USAGE;
    if (cli_conn_check(cmd, &j.r.cc)) return CLI_EXIT_USAGE;
    chat_options co;
    cli_options(&j.r.cc, &co);
    co.cb.on_group = on_group;
    return cli_req_run(&j.r, &co);
}
