/*
 * listen.c -- `chat-client listen`: print one JSON object per line for every
 * message received, save media bodies to files.
 *
 * libchat reconnects with its backoff after a lost connection; listen gives
 * up (exit 1) when no connection could be re-established within --timeout
 * seconds, or at once when the first connection fails or the server refuses
 * the login. With --count N it exits 0 once N messages were printed and the
 * acknowledgement covering them was written, so they are not redelivered.
 * After the Nth message it calls chat_hold(): messages that came in the same
 * read are neither printed nor acknowledged, and the server keeps them for
 * the next run (no duplicates, no losses).
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chat.h"
#include "cli/json.h"
#include "cli/media.h"

static const char listen_usage[] =
    "usage: chat-client listen --id ID [--count N] [--save-dir DIR]\n"
    "                          [--signals] [--presence ID]...\n"
    "                          [--host HOST[:PORT]]... [--port PORT] [--no-acks] [--timeout SECONDS]\n"
    "                          [--device NAME]\n"
    "                          " CLI_TLS_USAGE "\n"
    "\n"
    "Receive messages for user ID and print one JSON object per line (flushed per line):\n"
    "  {\"from\": 1, \"type\": \"text\", \"text\": \"...\"}\n"
    "  {\"from\": 1, \"type\": \"video\", \"file\": \"DIR/video-from1-0001.mp4\", \"bytes\": 123}\n"
    "From a server that grants CONV (devices), each object also has \"to\" (the\n"
    "receiver) and \"id\" (the server's id of the message), and a message user ID\n"
    "sent from another of its devices has \"own\": true (\"from\" is then ID):\n"
    "  {\"from\": 2, \"to\": 9, \"id\": 17, \"own\": true, \"type\": \"text\", \"text\": \"...\"}\n"
    "A message to a group has \"group\": G (and \"to\": G):\n"
    "  {\"from\": 5, \"to\": 3, \"group\": 3, \"id\": 18, \"type\": \"text\", \"text\": \"...\"}\n"
    "A message the server delivers again (its acknowledgement was lost) is not\n"
    "printed twice.\n"
    "Text is UTF-8 with JSON escapes; invalid UTF-8 becomes \\ufffd. A picture, voice\n"
    "or video body is saved to DIR/TYPE-fromSENDER-NNNN.EXT: NNNN counts up from 0001\n"
    "to the first free name (no file is overwritten); EXT comes from the body's first\n"
    "bytes (png jpg gif webp bmp mp3 wav ogg flac mp4 webm), else bin.\n"
    "With --signals (or --presence), on a server that grants SIGNALS, receipts,\n"
    "typing and presence come as their own objects, one a line, among the messages:\n"
    "  {\"receipt\": \"delivered\", \"conv\": 2, \"group\": false, \"by\": 2, \"upto\": 17, \"time\": 1700000000123}\n"
    "  {\"typing\": true, \"from\": 3, \"to\": 1, \"group\": false}\n"
    "  {\"presence\": \"online\", \"user\": 3, \"last_seen\": 0}\n"
    "A receipt is a mark: user \"by\" has received (\"delivered\") or shown (\"read\")\n"
    "every message of the conversation up to id \"upto\" (\"conv\": the other user, or\n"
    "the group with \"group\": true; \"by\" is ID when another of your devices read\n"
    "them); \"time\" is when it moved (unix ms). Typing: \"to\" is ID, or the group;\n"
    "\"typing\": false when they stopped (treat true as stopped after about 6 s).\n"
    "Presence, for the --presence users: at once, then at each change;\n"
    "\"last_seen\": unix ms when an offline user's last connection ended (0: not\n"
    "known). --count counts messages only.\n"
    "With several --host, a line names the server each session is on, when it\n"
    "starts (the first, and each after a reconnect or a switch to another server):\n"
    "  {\"server\": \"127.0.0.1:8001\", \"event\": \"connected\"}\n"
    "\"chat-client: listening as ID\" goes to stderr once the session is ready.\n"
    "\n"
    "  --id ID          your user id (1-4294967295), required\n"
    "  --count N        exit 0 after N messages, once they are acknowledged\n"
    "                   (default 0: run until interrupted)\n"
    "  --save-dir DIR   where media files go (default .)\n"
    "  --signals        also print receipts, typing and presence (needs a server\n"
    "                   that grants SIGNALS)\n"
    "  --presence ID    print user ID's presence (implies --signals); once per\n"
    "                   user, at most 4096; subscribed again after a reconnect\n"
    CLI_HOST_HELP
    "  --no-acks        speak the article's protocol: no HELLO, no acknowledgements\n"
    "                   (the server then binds the connection on its first frame:\n"
    "                   with --no-acks nothing is received until one is sent)\n"
    "  --timeout SECONDS  after a lost connection, give up when no reconnection\n"
    "                   succeeded within this long (default 10); also bounds\n"
    "                   each connection attempt (TCP connect, TLS handshake and\n"
    "                   the server's answer to the login; with several --host,\n"
    "                   each attempt gets its share of it, at least 1 s)\n"
    CLI_TLS_HELP
    "  --help           show this help\n"
    "\n"
    "Exit status: 0 after --count messages, 1 on failure (one sentence on stderr),\n"
    "2 bad usage.\n";

#define LISTEN_MAX_RECV (1024u * 1024u * 1024u) /* the server's max_frame bounds it */

#define LISTEN_PRESENCE_MAX CHAT_PRESENCE_USERS_MAX

typedef struct listen_job {
    cli_conn cc;
    const char *save_dir;
    int signals;            /* --signals, or --presence */
    uint32_t *presence;     /* the --presence users */
    size_t n_presence;
    unsigned long count;    /* 0 = no limit */
    unsigned long received; /* messages printed */
    int ever_connected, connected;
    uint64_t lost_at;       /* when the connection was lost (monotonic ms), 0 if up */
    int lost_err;
    int done, failed;       /* failed: the sentence was printed */
} listen_job;

/* With several --host: which server each session is on, as a JSON line
 * among the messages (a script sees the switch where it happened in the
 * stream). 0, or -1 after printing the sentence. */
static int print_server(const char *label) {
    if (fputs("{\"server\": ", stdout) == EOF ||
        cli_json_string(stdout, label, strlen(label)) < 0 ||
        fputs(", \"event\": \"connected\"}\n", stdout) == EOF || fflush(stdout) == EOF) {
        cli_err("cannot write to standard output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void on_connected(chat_client *c, void *ud) {
    listen_job *j = ud;
    if (j->signals && !chat_signals_granted(c)) {
        cli_err("the server at %s does not support receipts, typing and presence "
                "(it did not grant SIGNALS: an older or an --echo server)", cli_where(&j->cc));
        j->failed = 1;
        chat_disconnect(c);
        return;
    }
    /* Subscriptions belong to the connection: again after a reconnect. */
    int rc = j->n_presence ? chat_presence_subscribe(c, j->presence, j->n_presence) : 0;
    if (rc < 0) {
        cli_err("cannot subscribe to presence: %s", chat_strerror(rc));
        j->failed = 1;
        chat_disconnect(c);
        return;
    }
    if (j->cc.n_servers > 1 && print_server(cli_where(&j->cc)) < 0) {
        j->failed = 1;
        chat_disconnect(c);
        return;
    }
    if (!j->ever_connected) cli_err("listening as %" PRIu32, j->cc.id);
    else cli_err("reconnected to %s", cli_where(&j->cc));
    j->ever_connected = j->connected = 1;
    j->lost_at = 0;
}

/* "from", and with a server id (CONV) "to", "group" (a group message),
 * "id", "own", and "time" when asked for. */
static int print_head(const chat_msg *m, int with_time) {
    if (printf("{\"from\": %" PRIu32, m->sender) < 0) return -1;
    if (m->id && printf(", \"to\": %" PRIu32, m->to) < 0) return -1;
    if (m->group && printf(", \"group\": %" PRIu32, m->group) < 0) return -1;
    if (m->id && printf(", \"id\": %" PRIu64, m->id) < 0) return -1;
    if (m->own && fputs(", \"own\": true", stdout) == EOF) return -1;
    if (with_time && printf(", \"time\": %" PRIu64, m->time_ms) < 0) return -1;
    return 0;
}

int cli_print_msg(const chat_msg *m, const char *save_dir, int with_time) {
    uint32_t sender = m->sender, len = m->len;
    const char *tn = cli_type_name(m->type);
    int w;
    if (m->type == CHAT_TEXT) {
        w = print_head(m, with_time) < 0 ||
            fputs(", \"type\": \"text\", \"text\": ", stdout) == EOF ||
            cli_json_string(stdout, m->body, len) < 0;
    } else {
        char path[PATH_MAX];
        if (cli_media_save(save_dir, tn, sender, m->body, len, path, sizeof path) < 0) {
            cli_err("cannot save a %s of %" PRIu32 " bytes from user %" PRIu32 " in %s: %s",
                    tn, len, sender, save_dir, strerror(errno));
            return -1;
        }
        w = print_head(m, with_time) < 0 ||
            printf(", \"type\": \"%s\", \"file\": ", tn) < 0 ||
            cli_json_string(stdout, path, strlen(path)) < 0 ||
            printf(", \"bytes\": %" PRIu32, len) < 0;
    }
    if (w || fputs("}\n", stdout) == EOF || fflush(stdout) == EOF) {
        cli_err("cannot write to standard output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void on_msg(chat_client *c, const chat_msg *m, void *ud) {
    listen_job *j = ud;
    if (j->done || j->failed) {
        /* Past --count (or after a failure): do not let libchat acknowledge
         * it; the server keeps it for the next session. */
        chat_disconnect(c);
        return;
    }
    if (cli_print_msg(m, j->save_dir, 0) < 0) {
        j->failed = 1;
        chat_disconnect(c); /* not acknowledged: the server keeps it */
        return;
    }
    j->received++;
    if (j->count && j->received >= j->count) {
        j->done = 1;
        chat_hold(c); /* the rest stays with the server, unacknowledged */
    }
}

static void on_receipt(chat_client *c, int what, int flags, uint32_t conv, uint32_t by,
                       uint64_t upto, uint64_t time_ms, void *ud) {
    listen_job *j = ud;
    if (j->done || j->failed) return;
    if (cli_print_receipt(what, flags, conv, by, upto, time_ms) < 0) {
        j->failed = 1;
        chat_disconnect(c);
    }
}

static void on_typing(chat_client *c, uint32_t from, int flags, uint32_t to, int state,
                      void *ud) {
    listen_job *j = ud;
    if (j->done || j->failed) return;
    if (cli_print_typing(from, flags, to, state) < 0) {
        j->failed = 1;
        chat_disconnect(c);
    }
}

static void on_presence(chat_client *c, uint32_t user, int state, uint64_t last_seen_ms,
                        void *ud) {
    listen_job *j = ud;
    if (j->done || j->failed) return;
    if (cli_print_presence(user, state, last_seen_ms) < 0) {
        j->failed = 1;
        chat_disconnect(c);
    }
}

static void on_error(chat_client *c, int code, uint64_t seq, const char *reason,
                     uint32_t reason_len, void *ud) {
    (void)c; (void)ud;
    if (code == CHAT_SERR_DENIED) { /* seq: the user refused */
        cli_err("the server refused the presence of user %" PRIu64 ": %.*s", seq,
                reason_len > 200 ? 200 : (int)reason_len, reason);
        return;
    }
    cli_err("the server reported an error: %.*s (%s)", reason_len > 200 ? 200 : (int)reason_len,
            reason, chat_server_strerror(code));
}

static void on_disconnected(chat_client *c, int err, void *ud) {
    listen_job *j = ud;
    j->connected = 0;
    if (j->done || j->failed) return;
    if (!cli_retrying(&j->cc, c, j->ever_connected)) {
        /* the first connection (every server failed once), or
         * login/protocol refused */
        cli_conn_err(&j->cc, err);
        j->failed = 1;
        return;
    }
    if (!j->ever_connected) return; /* the next server of the first round */
    if (!j->lost_at) {
        j->lost_at = cli_mono_ms();
        j->lost_err = err;
        cli_err("lost the connection to %s (%s); reconnecting", cli_where(&j->cc),
                chat_strerror(err));
    }
}

int cli_listen_main(int argc, char **argv) {
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},       {"count", required_argument, NULL, 'c'},
        {"save-dir", required_argument, NULL, 'd'}, {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},     {"no-acks", no_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'T'},  {"help", no_argument, NULL, 'h'},
        {"signals", no_argument, NULL, 'S'},        {"presence", required_argument, NULL, 'P'},
        CLI_TLS_LONGOPTS,                           {NULL, 0, NULL, 0}};
    static uint32_t presence[LISTEN_PRESENCE_MAX];
    const char *cmd = "listen";
    listen_job j;
    memset(&j, 0, sizeof j);
    cli_conn_init(&j.cc);
    j.save_dir = ".";
    j.presence = presence;
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        int k = cli_conn_flag(cmd, &j.cc, o, optarg);
        if (k < 0) return CLI_EXIT_USAGE;
        if (k) continue;
        switch (o) {
        case 'c': if (cli_parse_uint(cmd, "--count", optarg, ULONG_MAX, &j.count)) return CLI_EXIT_USAGE; break;
        case 'd': j.save_dir = optarg; break;
        case 'S': j.signals = 1; break;
        case 'P': {
            uint32_t u;
            if (cli_parse_id(cmd, "--presence", optarg, &u)) return CLI_EXIT_USAGE;
            size_t i = 0;
            while (i < j.n_presence && presence[i] != u) i++;
            if (i < j.n_presence) break; /* once is enough */
            if (j.n_presence == LISTEN_PRESENCE_MAX)
                return cli_usage_err(cmd, "at most %u --presence users",
                                     (unsigned)LISTEN_PRESENCE_MAX);
            presence[j.n_presence++] = u;
            j.signals = 1;
            break;
        }
        case 'h': fputs(listen_usage, stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_err(cmd, "%s needs a value", argv[optind - 1]);
        default: return cli_usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
    if (!j.cc.id) return cli_usage_err(cmd, "--id is required");
    if (j.signals && j.cc.no_acks)
        return cli_usage_err(cmd, "--%s needs control frames (not --no-acks)",
                             j.n_presence ? "presence" : "signals");
    if (cli_conn_check(cmd, &j.cc)) return CLI_EXIT_USAGE;
    if (cli_check_dir(cmd, "--save-dir", j.save_dir)) return CLI_EXIT_USAGE;
    /* A closed stdout is then reported by fflush. (void): signal() fails
     * only for an invalid signal number. */
    (void)signal(SIGPIPE, SIG_IGN);

    chat_options co;
    cli_options(&j.cc, &co);
    co.reconnect = 1;
    co.max_recv = LISTEN_MAX_RECV;
    co.cb.on_connected = on_connected;
    co.cb.on_msg = on_msg;
    co.cb.on_error = on_error;
    co.cb.on_disconnected = on_disconnected;
    if (j.signals) {
        co.signals = 1;
        co.cb.on_receipt = on_receipt;
        co.cb.on_typing = on_typing;
        co.cb.on_presence = on_presence;
    }
    co.userdata = &j;
    chat_client *c = cli_open(&j.cc, &co);
    if (!c) return CLI_EXIT_FAIL;
    const uint64_t limit_ms = (uint64_t)j.cc.timeout * 1000u;
    uint64_t flush_deadline = 0;
    for (;;) {
        if (j.failed) break;
        if (j.done) {
            /* Leave once the acknowledgement is written (or nothing is left
             * to write on this connection). */
            if (chat_fd(c) < 0 || !chat_want_write(c)) break;
            if (!flush_deadline) flush_deadline = cli_mono_ms() + limit_ms;
            if (cli_mono_ms() >= flush_deadline) {
                cli_err("timed out after %u s writing the acknowledgement to %s",
                        j.cc.timeout, cli_where(&j.cc));
                j.failed = 1;
                break;
            }
        }
        int timeout = -1;
        if (j.lost_at) {
            uint64_t now = cli_mono_ms();
            if (now - j.lost_at >= limit_ms) {
                cli_err("lost the connection to %s and could not reconnect within %u s: %s",
                        cli_where(&j.cc), j.cc.timeout, chat_strerror(j.lost_err));
                j.failed = 1;
                break;
            }
            timeout = (int)(limit_ms - (now - j.lost_at));
        }
        if (j.done) timeout = 100;
        int rc = chat_run_once(c, timeout);
        if (rc == CHAT_ENOTCONN && !j.done && !j.failed) {
            cli_conn_err(&j.cc, j.lost_err ? j.lost_err : CHAT_ENOTCONN);
            j.failed = 1;
        } else if (rc == CHAT_ESYS) {
            cli_err("waiting for the server failed: %s", strerror(errno));
            j.failed = 1;
        }
    }
    chat_free(c);
    return j.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
