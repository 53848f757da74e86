/*
 * admin.h -- `chat-server user ...`: account administration on the data
 * directory (accounts.h), by the same binary, also while a server runs.
 *
 *     chat-server user [--data-dir DIR] add|passwd|del ID
 *     chat-server user [--data-dir DIR] list
 *
 * The password is read from the terminal without echo, or as one line from
 * standard input when it is not a terminal (at most 1024 bytes, not empty).
 */
#ifndef CHAT_SERVER_ADMIN_H
#define CHAT_SERVER_ADMIN_H

/* argv[0] is "user". Returns the exit status: 0 done, 1 failed (one
 * sentence on stderr), 2 bad command line (usage on stderr). */
int admin_main(int argc, char **argv);

#endif
