/*
 * main.c -- chat-client: dispatch to a subcommand (send.c, listen.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/interactive.h"

static const char usage[] =
    "usage: chat-client send --id ID --to ID (--text TEXT | --file FILE [--type TYPE]) [...]\n"
    "       chat-client listen --id ID [--count N] [--save-dir DIR] [...]\n"
    "       chat-client SUBCOMMAND --help\n"
    "       chat-client --version\n"
    "\n"
    "Command-line client of chat-server for scripts: `send` delivers one message and\n"
    "exits 0 once the server acknowledged it; `listen` prints received messages as\n"
    "JSON lines. Both take --host (default " CLI_DEFAULT_HOST "), --port (default 8888),\n"
    "--no-acks (the article's protocol) and --timeout SECONDS (default 10).\n"
    "Every mode takes --device NAME: which of the user's devices this is (each gets\n"
    "every message once, and the user's own messages from its other devices).\n"
    "TLS, in every mode: --tls [--ca FILE] [--server-name NAME] [--cert FILE --key FILE]\n"
    "(the server's certificate and name are always verified; see SUBCOMMAND --help).\n"
    "Interactive mode: chat-client --id ID [--to ID] [...] (see chat-client --id 1 --help).\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        fputs("chat-client: a subcommand is required: send or listen\n", stderr);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "send") == 0) return cli_send_main(argc - 1, argv + 1);
    if (strcmp(sub, "listen") == 0) return cli_listen_main(argc - 1, argv + 1);
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(sub, "--version") == 0) {
        printf("chat-client %s\n", CHAT_VERSION);
        return CLI_EXIT_OK;
    }
    if (sub[0] == '-') return cli_interactive_main(argc, argv);
    fprintf(stderr, "chat-client: unknown subcommand '%s': use send or listen "
            "(see chat-client --help)\n", sub);
    return CLI_EXIT_USAGE;
}
