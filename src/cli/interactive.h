/*
 * interactive.h -- `chat-client --id ID ...`: the interactive, full-duplex
 * mode (line editing with libedit, messages shown as they arrive).
 */
#ifndef CLI_INTERACTIVE_H
#define CLI_INTERACTIVE_H

/* argv[0] is the program name, the flags follow. Returns an exit code
 * (CLI_EXIT_*). */
int cli_interactive_main(int argc, char **argv);

#endif
