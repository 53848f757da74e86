/*
 * request.c -- one request and its answer, for `group` and `history` (see
 * request.h).
 */
#include "cli/request.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chat.h"

void cli_req_fail(cli_req *r, const char *what, int rc) {
    if (r->failed) return;
    r->failed = 1;
    if (rc == CHAT_ESTATE)
        cli_err("the server at %s does not support %s (it did not grant CONV: "
                "an older or an --echo server)", cli_where(&r->cc), r->what);
    else if (rc == CHAT_ENOTSUP)
        cli_err("the server at %s does not support %s (it did not grant "
                "SIGNALS: an older server)", cli_where(&r->cc), r->what);
    else
        cli_err("cannot %s: %s", what, chat_strerror(rc));
}

void cli_req_refused(cli_req *r, int err, const char *reason, uint32_t reason_len) {
    if (r->failed || r->done) return;
    r->failed = 1;
    if (err == CHAT_EREFUSED)
        cli_err("%.*s", reason_len > 200 ? 200 : (int)reason_len, reason);
    else if (err == CHAT_ECLOSED)
        cli_err("the server at %s closed the connection before answering",
                cli_where(&r->cc));
    else
        cli_conn_err(&r->cc, err);
}

static void on_connected(chat_client *c, void *ud) {
    cli_req *r = ud;
    r->connected = 1;
    if (r->done || r->failed) return;
    if (!chat_conv_granted(c)) {
        cli_req_fail(r, NULL, CHAT_ESTATE);
        return;
    }
    int rc = r->start(c, r);
    if (rc < 0) cli_req_fail(r, "send the request", rc);
}

/* An ERROR that names no request of ours: an older server that does not
 * know the frame (BADTYPE) will never answer; others are reported. */
static void on_error(chat_client *c, int code, uint64_t seq, const char *reason,
                     uint32_t reason_len, void *ud) {
    (void)c; (void)seq;
    cli_req *r = ud;
    if (r->done || r->failed) return;
    int rl = reason_len > 200 ? 200 : (int)reason_len;
    r->failed = 1;
    if (code == CHAT_SERR_BADTYPE)
        cli_err("the server at %s does not support %s (%.*s)", cli_where(&r->cc), r->what, rl, reason);
    else if (code == CHAT_SERR_GROUP) /* the reason says it: "not a member of group 3" */
        cli_err("%.*s", rl, reason);
    else
        cli_err("the server reported an error: %.*s (%s)", rl, reason,
                chat_server_strerror(code));
}

static void on_disconnected(chat_client *c, int err, void *ud) {
    cli_req *r = ud;
    if (r->done || r->failed) return;
    /* Several servers: before a session was ready libchat tries the next
     * one (reconnect 0 still fails over). A request lost with its session
     * is not sent again: that is the end. */
    if (cli_retrying(&r->cc, c, r->connected)) return;
    r->failed = 1;
    if (err == CHAT_ECLOSED && r->connected)
        cli_err("the server at %s closed the connection before answering",
                cli_where(&r->cc));
    else
        cli_conn_err(&r->cc, err);
}

int cli_req_run(cli_req *r, chat_options *co) {
    co->reconnect = 0;
    co->cb.on_connected = on_connected;
    co->cb.on_error = on_error;
    co->cb.on_disconnected = on_disconnected;
    co->userdata = r;
    chat_client *c = cli_open(&r->cc, co);
    if (!c) return CLI_EXIT_FAIL;
    uint64_t deadline = cli_mono_ms() + (uint64_t)r->cc.timeout * 1000u;
    while (!r->done && !r->failed) {
        uint64_t now = cli_mono_ms();
        if (now >= deadline) {
            cli_err("timed out after %u s waiting for the server at %s to %s",
                    r->cc.timeout, cli_where(&r->cc),
                    r->connected ? "answer" : "accept the connection");
            r->failed = 1;
            break;
        }
        int rc = chat_run_once(c, (int)(deadline - now));
        if (rc == CHAT_ENOTCONN && !r->done && !r->failed) {
            cli_conn_err(&r->cc, CHAT_ENOTCONN);
            r->failed = 1;
        } else if (rc == CHAT_ESYS) {
            cli_err("waiting for the server failed: %s", strerror(errno));
            r->failed = 1;
        }
    }
    chat_free(c);
    return r->done && !r->failed ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
