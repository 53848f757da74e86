/*
 * interactive.c -- `chat-client --id ID [--to ID] ...`: interactive, full
 * duplex. One poll(2) loop watches the terminal and libchat's socket; the
 * input line is edited with libedit's readline-compatible callback interface,
 * so messages that arrive while the user types are printed above the input
 * line, which is then redrawn with its prompt and half-typed text.
 *
 * This file: the loop, libedit, the prompt, the commands, the messages
 * shown and the connection's callbacks. The signals (ticks, typing, read
 * marks) are in ia_signals.c, the groups shown in ia_groups.c; what they
 * share is in interactive_int.h.
 */
#include "cli/interactive.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <editline/readline.h>

#include "chat.h"
#include "cli/cli.h"
#include "cli/interactive_int.h"
#include "cli/media.h"

static const char interactive_usage[] =
    "usage: chat-client --id ID [--to ID] [--save-dir DIR]\n"
    "                   [--host HOST[:PORT]]... [--port PORT]\n"
    "                   [--device NAME]\n"
    "                   " CLI_TLS_USAGE "\n"
    "\n"
    "Chat interactively as user ID: type a line to send it to the current receiver\n"
    "(a user, or a group: /group G); messages arrive while you type, shown as\n"
    "\"[HH:MM] SENDER: text\", or \"[HH:MM] SENDER @ NAME(G): text\" in group G.\n"
    "Pictures, voice and video are saved to DIR/TYPE-fromSENDER-NNNN.EXT (see\n"
    "listen --help). What you send from your other devices (--device, on a server\n"
    "that grants CONV) shows as \"[HH:MM] me -> RECEIVER: text\" (\"me @ NAME(G)\" in\n"
    "a group). Changes in your groups show as one line each, e.g. \"[HH:MM] 1 added\n"
    "7 to friends(3)\". Groups need a server that grants CONV.\n"
    "On a server that grants SIGNALS: \"[HH:MM] 3 is typing\" shows when someone\n"
    "starts typing to you (\"3 is typing @ NAME(G)\" in a group), others are told\n"
    "when you type (at most every 3 s while your line has text, and that you\n"
    "stopped when you send it, empty it or pause for 5 s), the messages shown\n"
    "are marked read for their senders, and a line follows each message you\n"
    "sent when it is delivered (\"[HH:MM] ✓ delivered to 2: text\") and read\n"
    "(\"[HH:MM] ✓✓ read by 2: text\"; in a group, by its first member to do so).\n"
    "Ticks are exact: the server tells you the id each message you send gets\n"
    "(POSTED), and a receipt ticks the messages whose id is at or below its\n"
    "mark, never one sent after them. The last 64 messages sent are followed.\n"
    "\n"
    "  --id ID          your user id (1-4294967295), required\n"
    "  --to ID          the first receiver (change it with /to)\n"
    "  --save-dir DIR   where received media files go (default .)\n"
    CLI_HOST_HELP
    CLI_TLS_HELP
    "  --help           show this help\n"
    "\n"
    "Commands (type /help in the session):\n";

static const char commands_help[] =
    "  /to ID                          send the next lines to user ID\n"
    "  /group G                        send the next lines to group G\n"
    "  /groups                         list your groups\n"
    "  /send FILE [picture|voice|video]  send a file (type from its extension\n"
    "                                  when omitted)\n"
    "  /help                           show this help\n"
    "  /quit                           leave (Ctrl-D too)\n"
    "  //text                          send a line that starts with /\n";

#define PROGRESS_MIN (UINT64_C(1024) * 1024) /* files larger than this get a progress line */
#define QUIT_FLUSH_MS 5000u          /* how long /quit waits for queued messages */
#define INTERACTIVE_MAX_RECV (1024u * 1024u * 1024u)

static ia_job *g_job; /* for the libedit line handler, which takes no userdata */

/* Writes to the terminal are not checked (here and below): a terminal that
 * fails them has nowhere better to hear about it, and a closed one ends
 * the session through stdin (POLLHUP). */
void ia_show(FILE *f, const char *fmt, ...) {
    va_list ap;
    int editing = g_job && g_job->editing && !g_job->in_handler;
    if (editing || (g_job && g_job->bar_shown)) {
        (void)fflush(stdout);
        fputs("\r\033[K", stdout);
        (void)fflush(stdout);
    }
    if (g_job) g_job->bar_shown = 0;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    (void)fflush(f);
    if (editing) {
        rl_on_new_line();
        rl_forced_update_display();
    }
}

void ia_hhmm(char out[6]) {
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm)) {
        strcpy(out, "--:--");
        return;
    }
    if (strftime(out, 6, "%H:%M", &tm) == 0) strcpy(out, "--:--");
}

/* Copy n bytes of untrusted text into out (cap bytes, NUL-terminated),
 * control characters (escape sequences would drive the terminal) as '?';
 * tabs and newlines too unless keep_space. UTF-8 is kept as it is. */
void ia_sanitize(char *out, size_t cap, const void *text, size_t n, int keep_space) {
    const unsigned char *b = text;
    size_t i = 0;
    for (; i < n && i + 1 < cap; i++)
        out[i] = (char)((b[i] < 0x20 && !(keep_space && (b[i] == '\t' || b[i] == '\n'))) ||
                                b[i] == 0x7f
                            ? '?' : b[i]);
    out[i] = '\0';
}

void ia_set_prompt(ia_job *j) {
    char label[96], was[sizeof j->prompt];
    memcpy(was, j->prompt, sizeof was);
    if (j->to && j->to_group)
        snprintf(j->prompt, sizeof j->prompt, "to %s> ",
                 ia_group_label(j, j->to, label, sizeof label));
    else if (j->to) snprintf(j->prompt, sizeof j->prompt, "to %" PRIu32 "> ", j->to);
    else snprintf(j->prompt, sizeof j->prompt, "> ");
    if (!j->editing) return;
    rl_set_prompt(j->prompt);
    /* Drawn at once when it changed outside the line handler (a group's
     * name that came after "/group G" was shown; the handler's own change
     * is drawn when it reinstalls). */
    if (!j->in_handler && strcmp(was, j->prompt) != 0) {
        (void)fflush(stdout);
        fputs("\r\033[K", stdout);
        (void)fflush(stdout);
        rl_on_new_line();
        rl_forced_update_display();
    }
}

/* -- libchat callbacks ------------------------------------------------------ */

static void on_connected(chat_client *c, void *ud) {
    ia_job *j = ud;
    /* The names of this user's groups, for display (not shown). (void): a
     * server without CONV has no groups; the prompt shows "group G". */
    if (chat_conv_granted(c)) (void)chat_group_list(c, &j->quiet_list);
    if (!j->ever_connected)
        ia_show(stdout, "connected to %s as user %" PRIu32 " (type /help for commands)",
                cli_where(&j->cc), j->cc.id);
    else ia_show(stdout, "reconnected to %s", cli_where(&j->cc));
    j->ever_connected = 1;
}

/* A message: "[HH:MM] SENDER: text", or for one this user sent from another
 * device "[HH:MM] me -> RECEIVER: text", in a group "[HH:MM] SENDER @
 * NAME(G): text" ("me @ NAME(G)"); media saved, their path shown. */
static void on_msg(chat_client *c, const chat_msg *m, void *ud) {
    (void)c;
    ia_job *j = ud;
    uint32_t sender = m->sender, len = m->len;
    int type = m->type;
    const void *body = m->body;
    char t[6], who[128], label[96];
    ia_hhmm(t);
    if (m->group && m->own)
        snprintf(who, sizeof who, "me @ %s", ia_group_label(j, m->group, label, sizeof label));
    else if (m->group)
        snprintf(who, sizeof who, "%" PRIu32 " @ %s", sender,
                 ia_group_label(j, m->group, label, sizeof label));
    else if (m->own) snprintf(who, sizeof who, "me -> %" PRIu32, m->to);
    else snprintf(who, sizeof who, "%" PRIu32, sender);
    if (type == CHAT_TEXT) {
        char *s = malloc((size_t)len + 1);
        if (!s) {
            ia_show(stderr, "chat-client: out of memory showing a message of %" PRIu32
                    " bytes from user %" PRIu32, len, sender);
            return;
        }
        ia_sanitize(s, (size_t)len + 1, body, len, 1);
        ia_show(stdout, "[%s] %s: %s", t, who, s);
        free(s);
        ia_shown(j, m);
        return;
    }
    const char *tn = cli_type_name(type);
    char path[PATH_MAX];
    if (cli_media_save(j->save_dir, tn, sender, body, len, path, sizeof path) < 0) {
        ia_show(stderr, "chat-client: a %s of %" PRIu32 " bytes from user %" PRIu32
                " is lost: it could not be saved in %s: %s", tn, len, sender, j->save_dir,
                strerror(errno));
        return;
    }
    if (m->group)
        ia_show(stdout, "[%s] %s sent a %s: %s (%" PRIu32 " bytes)", t, who, tn, path, len);
    else if (m->own)
        ia_show(stdout, "[%s] me sent a %s to %" PRIu32 ": %s (%" PRIu32 " bytes)", t, tn,
                m->to, path, len);
    else
        ia_show(stdout, "[%s] %" PRIu32 " sent a %s: %s (%" PRIu32 " bytes)", t, sender, tn,
                path, len);
    ia_shown(j, m);
}

static void on_acked(chat_client *c, uint64_t seq, void *ud) {
    (void)c;
    ia_job *j = ud;
    if (j->progress_seq && seq >= j->progress_seq) {
        ia_show(stderr, "sent %s", j->progress_name);
        j->progress_seq = 0;
    }
}

static void on_error(chat_client *c, int code, uint64_t seq, const char *reason,
                     uint32_t reason_len, void *ud) {
    (void)c;
    ia_job *j = ud;
    if (j->progress_seq && seq == j->progress_seq) j->progress_seq = 0;
    /* A refused message is never delivered: no tick for it (its POSTED id,
     * if one came, names no message). (A DENIED's `seq` is a user id.) */
    ia_sent *e = seq && code != CHAT_SERR_DENIED ? ia_sent_find(j, seq) : NULL;
    if (e) e->seq = 0;
    if (code == CHAT_SERR_GROUP) /* the reason says it all: "not a member of group 3" */
        ia_show(stderr, "chat-client: the server refused %s: %.*s",
                seq ? "a message" : "a request", reason_len > 200 ? 200 : (int)reason_len,
                reason);
    else
        ia_show(stderr, "chat-client: the server refused %s: %.*s (%s)",
                seq ? "a message" : "the session", reason_len > 200 ? 200 : (int)reason_len,
                reason, chat_server_strerror(code));
}

static void on_disconnected(chat_client *c, int err, void *ud) {
    ia_job *j = ud;
    if (j->quit) return;
    if (!cli_retrying(&j->cc, c, j->ever_connected)) {
        if (j->editing) {
            fputs("\r\033[K", stdout);
            (void)fflush(stdout);
        }
        cli_conn_err(&j->cc, err);
        j->failed = 1;
        j->quit = 1;
        return;
    }
    if (!j->ever_connected) return; /* the next server of the first round */
    ia_show(stderr, "chat-client: lost the connection to %s (%s); reconnecting",
            cli_where(&j->cc), chat_strerror(err));
}

/* -- commands --------------------------------------------------------------- */

static void send_err(ia_job *j, const char *what, int err) {
    switch (err) {
    case CHAT_ENOENT: ia_show(stderr, "chat-client: %s: no such file", what); break;
    case CHAT_EIO:
        ia_show(stderr, "chat-client: cannot read %s (not a readable regular file)", what);
        break;
    case CHAT_ETOOBIG:
        ia_show(stderr, "chat-client: %s is too large: the server takes at most %" PRIu32
                " bytes", what, chat_max_frame(j->c));
        break;
    case CHAT_EFULL:
        ia_show(stderr, "chat-client: too many messages are waiting to be delivered: "
                "try again in a moment");
        break;
    case CHAT_ESTATE: /* (a group message on a session without CONV) */
        ia_show(stderr, "chat-client: the server does not support groups (it did not "
                "grant CONV): choose a user with /to ID");
        break;
    default: ia_show(stderr, "chat-client: cannot send %s: %s", what, chat_strerror(err));
    }
}

static char *next_word(char **p) {
    char *s = *p;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) {
        *p = s;
        return NULL;
    }
    char *w = s;
    while (*s && *s != ' ' && *s != '\t') s++;
    if (*s) *s++ = '\0';
    *p = s;
    return w;
}

static void cmd_send(ia_job *j, char *args) {
    char *file = next_word(&args);
    char *tname = next_word(&args);
    if (!file) {
        ia_show(stderr, "chat-client: /send needs a file: /send FILE [picture|voice|video]");
        return;
    }
    if (next_word(&args)) {
        ia_show(stderr, "chat-client: /send takes a file and an optional type, nothing more "
                "(file names with spaces are not supported)");
        return;
    }
    if (!j->to) {
        ia_show(stderr, "chat-client: no receiver yet: choose one with /to ID or /group G");
        return;
    }
    int type;
    if (tname) {
        type = cli_type_from_name(tname);
        if (type < CHAT_PICTURE) {
            ia_show(stderr, "chat-client: unknown type '%s': use picture, voice or video", tname);
            return;
        }
    } else {
        type = chat_type_from_path(file);
        if (type < 0) {
            ia_show(stderr, "chat-client: cannot tell the type of %s from its name: add "
                    "picture, voice or video after it", file);
            return;
        }
    }
    uint64_t seq = 0;
    int err = j->to_group ? chat_send_group_file(j->c, j->to, type, file, &seq)
                          : chat_send_file(j->c, j->to, type, file, &seq);
    if (err < 0) {
        send_err(j, file, err);
        return;
    }
    ia_sent_add(j, seq, file);
    struct stat st;
    if (stat(file, &st) == 0 && st.st_size > (off_t)PROGRESS_MIN) {
        snprintf(j->progress_name, sizeof j->progress_name, "%s", file);
        j->progress_seq = seq;
        /* + the c2s header, and a POST's prefix with CONV */
        j->progress_total = (uint64_t)st.st_size + 13 + (chat_conv_granted(j->c) ? 10 : 0);
        ia_show(stderr, "sending %s (%.1f MiB)...", file, (double)st.st_size / (1024.0 * 1024.0));
    }
}

/* A transfer over PROGRESS_MIN (a file we send, or a frame arriving) shows
 * "[#########.........]  45% sending NAME" on stderr in place of the input
 * line, redrawn when the percentage moves, at most every 100 ms; the next
 * ia_show() (e.g. "sent NAME", or the saved file) clears it and brings the
 * input line back. */
static void progress_tick(ia_job *j) {
    uint64_t have = 0, total = 0;
    const char *what = NULL, *name = "";
    if (j->progress_seq) {
        size_t unsent = chat_unsent_bytes(j->c);
        total = j->progress_total;
        have = unsent >= total ? 0 : total - unsent;
        what = "sending";
        name = j->progress_name;
    } else if (chat_receiving(j->c, &have, &total) && total > PROGRESS_MIN) {
        what = "receiving";
    }
    if (!what || total == 0) return;
    int pct = (int)(have * 100 / total);
    uint64_t now = cli_mono_ms();
    if (j->bar_shown && (pct == j->bar_pct || now - j->bar_ms < 100)) return;
    enum { W = 30 };
    int fill = pct * W / 100;
    fprintf(stderr, "\r\033[K[%.*s%.*s] %3d%% %s %s",
            fill, "##############################",
            W - fill, "..............................", pct, what, name);
    (void)fflush(stderr);
    j->bar_shown = 1;
    j->bar_pct = pct;
    j->bar_ms = now;
}

/* /to ID (group 0) and /group G (group 1): choose the receiver. */
static void cmd_to(ia_job *j, char *args, int group) {
    char *id = next_word(&args);
    char label[96];
    if (!id) {
        if (j->to && j->to_group)
            ia_show(stdout, "sending to %s", ia_group_label(j, j->to, label, sizeof label));
        else if (j->to) ia_show(stdout, "sending to user %" PRIu32, j->to);
        else ia_show(stdout, "no receiver yet: choose one with /to ID or /group G");
        return;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(id, &end, 10);
    if (*end || errno || id[0] == '-' || v == 0 || v > 0xFFFFFFFFul || next_word(&args)) {
        ia_show(stderr, "chat-client: /%s wants one %s id from 1 to 4294967295",
                group ? "group" : "to", group ? "group" : "user");
        return;
    }
    if (group && !chat_conv_granted(j->c)) {
        ia_show(stderr, "chat-client: the server does not support groups (it did not grant "
                "CONV), or the session is not ready yet");
        return;
    }
    j->to = (uint32_t)v;
    j->to_group = group;
    ia_set_prompt(j);
}

static void cmd_groups(ia_job *j) {
    int err = chat_group_list(j->c, NULL);
    if (err == CHAT_ESTATE)
        ia_show(stderr, "chat-client: the server does not support groups (it did not grant "
                "CONV), or the session is not ready yet");
    else if (err < 0)
        ia_show(stderr, "chat-client: cannot list the groups: %s", chat_strerror(err));
}

static void send_text(ia_job *j, const char *text) {
    if (!j->to) {
        ia_show(stderr, "chat-client: no receiver yet: choose one with /to ID or /group G "
                "(or start with --to ID)");
        return;
    }
    uint64_t seq = 0;
    int err = j->to_group ? chat_send_group_text(j->c, j->to, text, &seq)
                          : chat_send_text(j->c, j->to, text, &seq);
    if (err < 0) send_err(j, "the message", err);
    else ia_sent_add(j, seq, text);
}

static void on_line(char *line) {
    ia_job *j = g_job;
    j->line_done = 1;
    if (!line) { /* Ctrl-D */
        j->quit = 1;
        return;
    }
    j->in_handler = 1;
    if (*line) (void)add_history(line); /* (a convenience; the line is sent anyway) */
    if (line[0] == '/' && line[1] != '/') {
        char *p = line + 1;
        char *cmd = next_word(&p);
        if (!cmd) ia_show(stderr, "chat-client: empty command: type /help");
        else if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) j->quit = 1;
        else if (strcmp(cmd, "to") == 0) cmd_to(j, p, 0);
        else if (strcmp(cmd, "group") == 0) cmd_to(j, p, 1);
        else if (strcmp(cmd, "groups") == 0) cmd_groups(j);
        else if (strcmp(cmd, "send") == 0) cmd_send(j, p);
        else if (strcmp(cmd, "help") == 0) ia_show(stdout, "%.*s", (int)strlen(commands_help) - 1,
                                                   commands_help);
        else ia_show(stderr, "chat-client: unknown command /%s: type /help", cmd);
    } else if (*line) {
        send_text(j, line[0] == '/' ? line + 1 : line);
    }
    j->in_handler = 0;
    free(line);
}

/* Ctrl-D: libedit's callback mode swallows end-of-file on an empty line, so
 * bind the key ourselves: leave on an empty line, otherwise do nothing. */
static int on_ctrl_d(int count, int key) {
    (void)count; (void)key;
    if (rl_end == 0 && g_job) g_job->quit = 1;
    return 0;
}

/* -- main ------------------------------------------------------------------- */

/* After /quit: give queued messages a few seconds to reach the server. */
static void flush_queue(ia_job *j) {
    uint64_t deadline = cli_mono_ms() + QUIT_FLUSH_MS;
    while (chat_queued_frames(j->c) > 0 && !j->failed) {
        uint64_t now = cli_mono_ms();
        if (now >= deadline) {
            cli_err("%" PRIu32 " message(s) were not delivered before leaving",
                    chat_queued_frames(j->c));
            return;
        }
        if (chat_run_once(j->c, (int)(deadline - now)) == CHAT_ENOTCONN) return;
    }
}

int cli_interactive_main(int argc, char **argv) {
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},   {"to", required_argument, NULL, 't'},
        {"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},
        {"save-dir", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'},
        CLI_TLS_LONGOPTS,                           {NULL, 0, NULL, 0}};
    const char *cmd = "interactive";
    ia_job j;
    memset(&j, 0, sizeof j);
    cli_conn_init(&j.cc);
    j.save_dir = ".";
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        int k = cli_conn_flag(cmd, &j.cc, o, optarg);
        if (k < 0) return CLI_EXIT_USAGE;
        if (k) continue;
        switch (o) {
        case 't': if (cli_parse_id(cmd, "--to", optarg, &j.to)) return CLI_EXIT_USAGE; break;
        case 'd': j.save_dir = optarg; break;
        case 'h':
            fputs(interactive_usage, stdout);
            fputs(commands_help, stdout);
            return CLI_EXIT_OK;
        case ':': return cli_usage_err(cmd, "%s needs a value", argv[optind - 1]);
        default: return cli_usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
    if (!j.cc.id) return cli_usage_err(cmd, "--id is required");
    if (cli_conn_check(cmd, &j.cc)) return CLI_EXIT_USAGE;
    if (cli_check_dir(cmd, "--save-dir", j.save_dir)) return CLI_EXIT_USAGE;
    if (!isatty(STDIN_FILENO))
        return cli_usage_err(cmd, "the interactive mode needs a terminal on standard input: "
                             "scripts should use chat-client send and listen");
    (void)signal(SIGPIPE, SIG_IGN); /* fails only for an invalid signal */
    /* libedit decodes the input with the locale: make it UTF-8. (void): an
     * unknown locale in the environment leaves "C", and the next line asks
     * for UTF-8 then. */
    (void)setlocale(LC_ALL, "");
    if (MB_CUR_MAX == 1 && !setlocale(LC_CTYPE, "C.UTF-8"))
        cli_err("warning: no UTF-8 locale (C.UTF-8 is not installed): lines with "
                "non-ASCII characters may not edit correctly");

    chat_options co;
    cli_options(&j.cc, &co);
    co.reconnect = 1;
    co.max_recv = INTERACTIVE_MAX_RECV;
    co.cb.on_connected = on_connected;
    co.cb.on_msg = on_msg;
    co.cb.on_acked = on_acked;
    co.cb.on_error = on_error;
    co.cb.on_disconnected = on_disconnected;
    co.cb.on_group = ia_on_group;
    co.signals = 1; /* receipts, typing: when the server grants them */
    co.cb.on_receipt = ia_on_receipt;
    co.cb.on_typing = ia_on_typing;
    co.cb.on_posted = ia_on_posted;
    co.userdata = &j;
    j.c = cli_open(&j.cc, &co);
    if (!j.c) return CLI_EXIT_FAIL;
    g_job = &j;
    ia_set_prompt(&j);
    rl_callback_handler_install(j.prompt, on_line);
    /* (void): fails only for a key outside 0-255; 4 is Ctrl-D */
    (void)rl_add_defun("chat-eof", on_ctrl_d, 4);
    j.editing = 1;

    while (!j.quit) {
        struct pollfd p[2];
        nfds_t n = 1;
        p[0].fd = STDIN_FILENO;
        p[0].events = POLLIN;
        p[0].revents = 0;
        int fd = chat_fd(j.c);
        if (fd >= 0) {
            p[1].fd = fd;
            p[1].events = POLLIN | (chat_want_write(j.c) ? POLLOUT : 0);
            p[1].revents = 0;
            n = 2;
        }
        int64_t t = chat_next_timeout_ms(j.c);
        if (j.typing_to) { /* wake up to say "stopped" after a pause */
            uint64_t now = cli_mono_ms(), end = j.last_key + TYPING_PAUSE_MS;
            int64_t left = end > now ? (int64_t)(end - now) : 0;
            if (t < 0 || left < t) t = left;
        }
        int timeout = t < 0 ? -1 : t > INT_MAX ? INT_MAX : (int)t;
        int r = poll(p, n, timeout);
        if (r < 0) {
            if (errno == EINTR) continue;
            ia_show(stderr, "chat-client: waiting for input failed: %s", strerror(errno));
            j.failed = 1;
            break;
        }
        if (p[0].revents & POLLIN) {
            j.line_done = 0;
            rl_callback_read_char();
            /* After a line, libedit's callback mode leaves the editor
             * unprepared (old text kept, no prompt until the next key):
             * installing the handler again resets the line and shows the
             * (possibly new) prompt now. */
            if (j.line_done && !j.quit) rl_callback_handler_install(j.prompt, on_line);
        }
        if (!j.quit) ia_typing_tick(&j, (p[0].revents & POLLIN) != 0);
        if (!j.quit && (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))) j.quit = 1;
        int readable = n == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR));
        int writable = n == 2 && (p[1].revents & POLLOUT);
        /* (void): a lost connection is handled by on_disconnected */
        (void)chat_process(j.c, readable, writable);
        ia_flush_reads(&j);
        progress_tick(&j);
    }
    rl_callback_handler_remove();
    j.editing = 0;
    if (!j.failed) {
        fputc('\n', stdout);
        (void)fflush(stdout);
        flush_queue(&j);
    }
    g_job = NULL;
    chat_free(j.c);
    return j.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
