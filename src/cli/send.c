/*
 * send.c -- `chat-client send`: deliver one message and exit 0 only once
 * the server acknowledged it (or, with --no-acks, once it was written).
 *
 * Sequence: check the arguments and the file (before any I/O, so a typo is
 * reported even when no server runs) -> connect -> on_connected (WELCOME
 * known, so the server's max_frame applies) queue the message -> on_acked
 * covering its seq: success; on_error naming its seq, on_disconnected or the
 * deadline: failure with one sentence. With several --host, a failed or lost
 * server is not the end: libchat goes on to the next one and resends the
 * message there (its client id spares a duplicate), within --timeout.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"

static const char send_usage[] =
    "usage: chat-client send --id ID (--to ID | --group G) (--text TEXT | --file FILE [--type TYPE])\n"
    "                        [--host HOST[:PORT]]... [--port PORT] [--no-acks] [--timeout SECONDS]\n"
    "                        [--device NAME]\n"
    "                        " CLI_TLS_USAGE "\n"
    "\n"
    "Send one message and exit 0 once the server acknowledged it.\n"
    "\n"
    "  --id ID          your user id (1-4294967295), required\n"
    "  --to ID          the receiver's user id\n"
    "  --group G        send to group G instead (its members; needs a server that\n"
    "                   grants CONV, and you must be a member)\n"
    "  --text TEXT      send TEXT (UTF-8) as a text message\n"
    "  --file FILE      send the bytes of FILE as a picture, voice or video message\n"
    "  --type TYPE      picture, voice or video; default: from FILE's extension\n"
    "                   (picture: png jpg jpeg gif webp bmp heic svg; voice: mp3 wav\n"
    "                   ogg oga opus m4a aac flac; video: mp4 webm mkv mov avi m4v)\n"
    CLI_HOST_HELP
    "  --no-acks        speak the article's protocol: no HELLO, no acknowledgements;\n"
    "                   success means the message was written to the socket\n"
    "  --timeout SECONDS  give up after this long (default 10); with several\n"
    "                     --host, one attempt waits at most its share of it\n"
    CLI_TLS_HELP
    "  --help           show this help\n"
    "\n"
    "Exit status: 0 sent, 1 failed (one sentence on stderr says why), 2 bad usage.\n";

typedef struct send_job {
    cli_conn cc;
    uint32_t to;      /* the user, or with `group` the group */
    int group;        /* --group */
    const char *text, *file;
    int type;
    uint64_t seq;     /* our frame's seq once queued, else 0 */
    int connected;    /* on_connected seen */
    int done, failed; /* outcome; failed: the sentence was printed */
    char srv_reason[256]; /* last ERROR without a ref, for the final sentence */
} send_job;

/* Queue the message once the session is ready (the WELCOME's max_frame is
 * known then). Failures are final: print the sentence. */
static void on_connected(chat_client *c, void *ud) {
    send_job *j = ud;
    j->connected = 1;
    if (j->seq || j->failed) return; /* queued once; libchat resends it if needed */
    int rc;
    if (j->group)
        rc = j->text ? chat_send_group_text(c, j->to, j->text, &j->seq)
                     : chat_send_group_file(c, j->to, j->type, j->file, &j->seq);
    else
        rc = j->text ? chat_send_text(c, j->to, j->text, &j->seq)
                     : chat_send_file(c, j->to, j->type, j->file, &j->seq);
    if (rc == 0) return;
    j->failed = 1;
    const char *what = j->text ? "the text" : j->file; /* exactly one is set */
    switch (rc) {
    case CHAT_ETOOBIG: {
        struct stat st;
        unsigned long long size = j->text ? (unsigned long long)strlen(j->text)
                                : stat(j->file, &st) == 0 ? (unsigned long long)st.st_size : 0;
        cli_err("%s is too large: %llu bytes, the server at %s accepts at most %" PRIu32
                " bytes per message", what, size, cli_where(&j->cc), chat_max_frame(c));
        break;
    }
    case CHAT_ENOENT:
        cli_err("cannot read %s: %s", j->file, strerror(ENOENT));
        break;
    case CHAT_EIO:
        cli_err("cannot read %s: %s", j->file, chat_strerror(rc));
        break;
    case CHAT_ESTATE: /* (only --group: a session without CONV) */
        cli_err("the server at %s does not support groups (it did not grant CONV: "
                "an older or an --echo server)", cli_where(&j->cc));
        break;
    default:
        cli_err("cannot send %s: %s", what, chat_strerror(rc));
    }
}

static void on_acked(chat_client *c, uint64_t seq, void *ud) {
    (void)c;
    send_job *j = ud;
    if (j->seq && seq >= j->seq && !j->failed) j->done = 1;
}

static void on_error(chat_client *c, int code, uint64_t seq, const char *reason,
                     uint32_t reason_len, void *ud) {
    (void)c;
    send_job *j = ud;
    int rl = reason_len > 200 ? 200 : (int)reason_len;
    if (seq != 0 && seq == j->seq && !j->done && !j->failed) {
        j->failed = 1;
        if (code == CHAT_SERR_TOOBIG)
            cli_err("the message is too large for the server at %s (at most %" PRIu32
                    " bytes per message)", cli_where(&j->cc), chat_max_frame(c));
        else if (code == CHAT_SERR_GROUP) /* the reason says it all */
            cli_err("the server refused the message: %.*s", rl, reason);
        else
            cli_err("the server refused the message: %.*s (%s)", rl, reason,
                    chat_server_strerror(code));
    } else if (seq == 0) {
        snprintf(j->srv_reason, sizeof j->srv_reason, "%.*s (%s)", rl, reason,
                 chat_server_strerror(code));
    }
}

static void on_disconnected(chat_client *c, int err, void *ud) {
    send_job *j = ud;
    if (j->done || j->failed) return;
    if (cli_retrying(&j->cc, c, j->connected)) {
        /* Several servers: libchat tries the next one and resends the
         * message there if it was not acknowledged. */
        j->srv_reason[0] = '\0';
        return;
    }
    j->failed = 1;
    if (j->srv_reason[0])
        cli_err("the server at %s closed the connection: %s", cli_where(&j->cc),
                j->srv_reason);
    else if (err == CHAT_ECLOSED && j->connected)
        cli_err("the server at %s closed the connection before acknowledging the message",
                cli_where(&j->cc));
    else
        cli_conn_err(&j->cc, err);
}

/* Check FILE before connecting: readable regular file. 0 or -1 (printed). */
static int check_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_err("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!ok) {
        cli_err("cannot read %s: not a regular file", path);
        return -1;
    }
    return 0;
}

int cli_send_main(int argc, char **argv) {
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},      {"to", required_argument, NULL, 'o'},
        {"group", required_argument, NULL, 'g'},
        {"text", required_argument, NULL, 't'},    {"file", required_argument, NULL, 'f'},
        {"type", required_argument, NULL, 'y'},    {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},    {"no-acks", no_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
        CLI_TLS_LONGOPTS,                          {NULL, 0, NULL, 0}};
    const char *cmd = "send", *type_arg = NULL;
    send_job j;
    memset(&j, 0, sizeof j);
    cli_conn_init(&j.cc);
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        int k = cli_conn_flag(cmd, &j.cc, o, optarg);
        if (k < 0) return CLI_EXIT_USAGE;
        if (k) continue;
        switch (o) {
        case 'o':
        case 'g':
            if (j.to) return cli_usage_err(cmd, "give exactly one of --to and --group");
            if (cli_parse_id(cmd, o == 'g' ? "--group" : "--to", optarg, &j.to))
                return CLI_EXIT_USAGE;
            j.group = o == 'g';
            break;
        case 't': j.text = optarg; break;
        case 'f': j.file = optarg; break;
        case 'y': type_arg = optarg; break;
        case 'h': fputs(send_usage, stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_err(cmd, "%s needs a value", argv[optind - 1]);
        default: return cli_usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
    if (!j.cc.id) return cli_usage_err(cmd, "--id is required");
    if (!j.to) return cli_usage_err(cmd, "--to (or --group) is required");
    if (j.group && j.cc.no_acks)
        return cli_usage_err(cmd, "--group needs control frames (not --no-acks)");
    if (cli_conn_check(cmd, &j.cc)) return CLI_EXIT_USAGE;
    if (!j.text == !j.file) return cli_usage_err(cmd, "give exactly one of --text and --file");
    if (j.text) {
        if (type_arg) return cli_usage_err(cmd, "--type goes with --file, not --text");
        j.type = CHAT_TEXT;
    } else if (type_arg) {
        j.type = cli_type_from_name(type_arg);
        if (j.type != CHAT_PICTURE && j.type != CHAT_VOICE && j.type != CHAT_VIDEO)
            return cli_usage_err(cmd, "unknown --type '%s': use picture, voice or video",
                                 type_arg);
    } else {
        j.type = chat_type_from_path(j.file);
        if (j.type < 0)
            return cli_usage_err(cmd, "cannot tell the type of %s from its extension: "
                                 "add --type picture, voice or video", j.file);
    }
    if (j.file && check_file(j.file) < 0) return CLI_EXIT_FAIL;

    chat_options co;
    cli_options(&j.cc, &co);
    /* One server: a lost connection is the end (the sentence says why).
     * Several: libchat fails over, and after a session was lost retries
     * (with its backoff between whole rounds) until --timeout. */
    co.reconnect = j.cc.n_servers > 1;
    co.cb.on_connected = on_connected;
    co.cb.on_acked = on_acked;
    co.cb.on_error = on_error;
    co.cb.on_disconnected = on_disconnected;
    co.userdata = &j;
    chat_client *c = cli_open(&j.cc, &co);
    if (!c) return CLI_EXIT_FAIL;
    uint64_t deadline = cli_mono_ms() + (uint64_t)j.cc.timeout * 1000u;
    while (!j.done && !j.failed) {
        uint64_t now = cli_mono_ms();
        if (now >= deadline) {
            if (!j.connected)
                cli_err("timed out after %u s waiting for the server at %s to accept "
                        "the connection", j.cc.timeout, cli_where(&j.cc));
            else
                cli_err("timed out after %u s waiting for the server at %s to "
                        "acknowledge the message", j.cc.timeout, cli_where(&j.cc));
            j.failed = 1;
            break;
        }
        int rc = chat_run_once(c, (int)(deadline - now));
        if (rc == CHAT_ENOTCONN && !j.done && !j.failed) {
            cli_conn_err(&j.cc, CHAT_ENOTCONN);
            j.failed = 1;
        } else if (rc == CHAT_ESYS) {
            cli_err("waiting for the server failed: %s", strerror(errno));
            j.failed = 1;
        }
    }
    chat_free(c);
    return j.done && !j.failed ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
