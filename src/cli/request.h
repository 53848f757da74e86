/*
 * request.h -- what `chat-client group` and `chat-client history` share:
 * connect, make a request once the session is ready (CONV known), wait for
 * its answer, and say in one sentence why it failed.
 *
 * Sequence: cli_req_run connects -> on_connected: CONV granted? then
 * start() makes the request (libchat answers through on_group or
 * on_history, which the caller sets and which end the job with
 * cli_req_done or cli_req_refused) -> loop until done, failed or
 * --timeout.
 */
#ifndef CLI_REQUEST_H
#define CLI_REQUEST_H

#include <stdint.h>

#include "chat.h"
#include "cli/cli.h"

typedef struct cli_req cli_req;
struct cli_req {
    cli_conn cc;
    const char *what;   /* "groups" or "history": for "does not support" */
    /* Called once the session is ready with CONV: make the request. 0, or
     * the CHAT_E* code of the call that failed (the job then fails). */
    int (*start)(chat_client *c, cli_req *r);
    int connected;      /* on_connected seen */
    int done, failed;   /* outcome; failed: the sentence was printed */
};

/* The flags `group` and `history` take besides their own: put
 * CLI_REQ_LONGOPTS in the getopt_long table and give every option to
 * cli_conn_flag. */
#define CLI_REQ_LONGOPTS                                                      \
    {"id", required_argument, NULL, 'i'},                                     \
    {"host", required_argument, NULL, 'H'},                                   \
    {"port", required_argument, NULL, 'p'},                                   \
    {"timeout", required_argument, NULL, 'T'},                                \
    {"help", no_argument, NULL, 'h'},                                         \
    CLI_TLS_LONGOPTS
#define CLI_REQ_USAGE "[--host HOST[:PORT]]... [--port PORT] [--timeout SECONDS] [--device NAME]"
#define CLI_REQ_HELP                                                          \
    "  --id ID          your user id (1-4294967295), required\n"             \
    CLI_HOST_HELP                                                             \
    "  --timeout SECONDS  give up after this long (default 10)\n"             \
    CLI_TLS_HELP                                                              \
    "  --help           show this help\n"

/* The job failed because call `what` returned rc (CHAT_E*): print the
 * sentence, mark it failed. */
void cli_req_fail(cli_req *r, const char *what, int rc);

/* The server refused the request (on_group / on_history with err < 0):
 * print its reason as the sentence ("chat-client: not a member of group
 * 3"), or why the answer never came; mark the job failed. */
void cli_req_refused(cli_req *r, int err, const char *reason, uint32_t reason_len);

/* Connect with co (its on_connected, on_error and on_disconnected are set
 * here; userdata must point at r, the caller's on_group / on_history are
 * kept), run until the job is done or failed, or --timeout passed. Returns
 * the exit code. */
int cli_req_run(cli_req *r, chat_options *co);

#endif
