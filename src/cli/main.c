/*
 * main.c -- chat-client: dispatch to a subcommand (send.c, listen.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/interactive.h"

static const char usage[] =
    "usage: chat-client send --id ID (--to ID | --group G) (--text TEXT | --file FILE [--type TYPE]) [...]\n"
    "       chat-client listen --id ID [--count N] [--save-dir DIR] [...]\n"
    "       chat-client group (create|rename|add|remove|leave|list|members) --id ID [...]\n"
    "       chat-client history --id ID (--with ID | --group G) [--before ID] [--limit N] [...]\n"
    "       chat-client read --id ID (--with ID | --group G) --upto MSGID [...]\n"
    "       chat-client receipts --id ID (--with ID | --group G) [...]\n"
    "       chat-client typing --id ID (--with ID | --group G) [--stop] [...]\n"
    "       chat-client SUBCOMMAND --help\n"
    "       chat-client --version\n"
    "\n"
    "Command-line client of chat-server for scripts: `send` delivers one message and\n"
    "exits 0 once the server acknowledged it; `listen` prints received messages as\n"
    "JSON lines; `group` manages groups of users and `history` prints a page of a\n"
    "conversation's past (both need a server that grants CONV); `read` marks a\n"
    "conversation read, `receipts` prints its delivered and read marks, `typing`\n"
    "says you are typing, and `listen --signals` (or --presence ID) also prints\n"
    "receipts, typing and presence (these need a server that grants SIGNALS).\n"
    "All take --host (default " CLI_DEFAULT_HOST "), --port (default 8888) and\n"
    "--timeout SECONDS (default 10); send and listen also --no-acks (the\n"
    "article's protocol).\n"
    "Every mode takes --device NAME: which of the user's devices this is (each gets\n"
    "every message once, and the user's own messages from its other devices).\n"
    "TLS, in every mode: --tls [--ca FILE] [--server-name NAME] [--cert FILE --key FILE]\n"
    "(the server's certificate and name are always verified; see SUBCOMMAND --help).\n"
    "Interactive mode: chat-client --id ID [--to ID] [...] (see chat-client --id 1 --help).\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        fputs("chat-client: a subcommand is required: send, listen, group, history, "
              "read, receipts or typing\n", stderr);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "send") == 0) return cli_send_main(argc - 1, argv + 1);
    if (strcmp(sub, "listen") == 0) return cli_listen_main(argc - 1, argv + 1);
    if (strcmp(sub, "group") == 0) return cli_group_main(argc - 1, argv + 1);
    if (strcmp(sub, "history") == 0) return cli_history_main(argc - 1, argv + 1);
    if (strcmp(sub, "read") == 0) return cli_read_main(argc - 1, argv + 1);
    if (strcmp(sub, "receipts") == 0) return cli_receipts_main(argc - 1, argv + 1);
    if (strcmp(sub, "typing") == 0) return cli_typing_main(argc - 1, argv + 1);
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(sub, "--version") == 0) {
        printf("chat-client %s\n", CHAT_VERSION);
        return CLI_EXIT_OK;
    }
    if (sub[0] == '-') return cli_interactive_main(argc, argv);
    fprintf(stderr, "chat-client: unknown subcommand '%s': use send, listen, group, "
            "history, read, receipts or typing (see chat-client --help)\n", sub);
    return CLI_EXIT_USAGE;
}
