/*
 * interactive.c -- `chat-client --id ID [--to ID] ...`: interactive, full
 * duplex. One poll(2) loop watches the terminal and libchat's socket; the
 * input line is edited with libedit's readline-compatible callback interface,
 * so messages that arrive while the user types are printed above the input
 * line, which is then redrawn with its prompt and half-typed text.
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
#include "cli/media.h"

static const char interactive_usage[] =
    "usage: chat-client --id ID [--to ID] [--save-dir DIR] [--host HOST] [--port PORT]\n"
    "                   [--device NAME]\n"
    "                   " CLI_TLS_USAGE "\n"
    "\n"
    "Chat interactively as user ID: type a line to send it to the current receiver;\n"
    "messages arrive while you type, shown as \"[HH:MM] SENDER: text\". Pictures,\n"
    "voice and video are saved to DIR/TYPE-fromSENDER-NNNN.EXT (see listen --help).\n"
    "What you send from your other devices (--device, on a server that grants\n"
    "CONV) shows as \"[HH:MM] me -> RECEIVER: text\".\n"
    "\n"
    "  --id ID          your user id (1-4294967295), required\n"
    "  --to ID          the first receiver (change it with /to)\n"
    "  --save-dir DIR   where received media files go (default .)\n"
    "  --host HOST      server address (default " CLI_DEFAULT_HOST ")\n"
    "  --port PORT      server port (default 8888)\n"
    CLI_TLS_HELP
    "  --help           show this help\n"
    "\n"
    "Commands (type /help in the session):\n";

static const char commands_help[] =
    "  /to ID                          send the next lines to user ID\n"
    "  /send FILE [picture|voice|video]  send a file (type from its extension\n"
    "                                  when omitted)\n"
    "  /help                           show this help\n"
    "  /quit                           leave (Ctrl-D too)\n"
    "  //text                          send a line that starts with /\n";

#define PROGRESS_MIN (UINT64_C(1024) * 1024) /* files larger than this get a progress line */
#define QUIT_FLUSH_MS 5000u          /* how long /quit waits for queued messages */
#define INTERACTIVE_MAX_RECV (1024u * 1024u * 1024u)

typedef struct ia_job {
    cli_conn cc;
    const char *save_dir;
    uint32_t to;            /* current receiver, 0 = none */
    chat_client *c;
    int editing;            /* the libedit callback handler is installed */
    int ever_connected;
    int line_done;          /* the line handler ran during this read */
    int in_handler;         /* inside on_line: the cursor is on a fresh line */
    int quit, failed;
    char prompt[32];
    uint64_t progress_seq;  /* seq of a large file being sent, 0 = none */
    uint64_t progress_total;/* its size on the wire (header + body) */
    char progress_name[256];
    int bar_shown;          /* a progress bar is on the input line */
    int bar_pct;            /* the percentage it shows */
    uint64_t bar_ms;        /* when it was drawn */
} ia_job;

static ia_job *g_job; /* for the libedit line handler, which takes no userdata */

/* Print one line on `f` above the input line without garbling it: clear the
 * line being edited, print, then let libedit redraw prompt and text. */
static void show(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes to the terminal are not checked (here and below): a terminal that
 * fails them has nowhere better to hear about it, and a closed one ends
 * the session through stdin (POLLHUP). */
static void show(FILE *f, const char *fmt, ...) {
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

static void hhmm(char out[6]) {
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm)) {
        strcpy(out, "--:--");
        return;
    }
    if (strftime(out, 6, "%H:%M", &tm) == 0) strcpy(out, "--:--");
}

static void set_prompt(ia_job *j) {
    if (j->to) snprintf(j->prompt, sizeof j->prompt, "to %" PRIu32 "> ", j->to);
    else snprintf(j->prompt, sizeof j->prompt, "> ");
    if (j->editing) rl_set_prompt(j->prompt);
}

/* -- libchat callbacks ------------------------------------------------------ */

static void on_connected(chat_client *c, void *ud) {
    (void)c;
    ia_job *j = ud;
    if (!j->ever_connected)
        show(stdout, "connected to %s:%u as user %" PRIu32 " (type /help for commands)",
             j->cc.host, j->cc.port, j->cc.id);
    else show(stdout, "reconnected to %s:%u", j->cc.host, j->cc.port);
    j->ever_connected = 1;
}

/* A message: "[HH:MM] SENDER: text", or for one this user sent from another
 * device "[HH:MM] me -> RECEIVER: text"; media saved, their path shown. */
static void on_msg(chat_client *c, const chat_msg *m, void *ud) {
    (void)c;
    ia_job *j = ud;
    uint32_t sender = m->sender, len = m->len;
    int type = m->type;
    const void *body = m->body;
    char t[6], who[32];
    hhmm(t);
    if (m->own) snprintf(who, sizeof who, "me -> %" PRIu32, m->to);
    else snprintf(who, sizeof who, "%" PRIu32, sender);
    if (type == CHAT_TEXT) {
        /* Control characters (escape sequences) would drive the terminal:
         * show them as '?'. Everything else, UTF-8 included, as it is. */
        char *s = malloc((size_t)len + 1);
        if (!s) {
            show(stderr, "chat-client: out of memory showing a message of %" PRIu32
                 " bytes from user %" PRIu32, len, sender);
            return;
        }
        const unsigned char *b = body;
        for (uint32_t i = 0; i < len; i++)
            s[i] = (char)((b[i] < 0x20 && b[i] != '\t' && b[i] != '\n') || b[i] == 0x7f
                              ? '?' : b[i]);
        s[len] = '\0';
        show(stdout, "[%s] %s: %s", t, who, s);
        free(s);
        return;
    }
    const char *tn = cli_type_name(type);
    char path[PATH_MAX];
    if (cli_media_save(j->save_dir, tn, sender, body, len, path, sizeof path) < 0) {
        show(stderr, "chat-client: a %s of %" PRIu32 " bytes from user %" PRIu32
             " is lost: it could not be saved in %s: %s", tn, len, sender, j->save_dir,
             strerror(errno));
        return;
    }
    if (m->own)
        show(stdout, "[%s] me sent a %s to %" PRIu32 ": %s (%" PRIu32 " bytes)", t, tn,
             m->to, path, len);
    else
        show(stdout, "[%s] %" PRIu32 " sent a %s: %s (%" PRIu32 " bytes)", t, sender, tn,
             path, len);
}

static void on_acked(chat_client *c, uint64_t seq, void *ud) {
    (void)c;
    ia_job *j = ud;
    if (j->progress_seq && seq >= j->progress_seq) {
        show(stderr, "sent %s", j->progress_name);
        j->progress_seq = 0;
    }
}

static void on_error(chat_client *c, int code, uint64_t seq, const char *reason,
                     uint32_t reason_len, void *ud) {
    (void)c;
    ia_job *j = ud;
    if (j->progress_seq && seq == j->progress_seq) j->progress_seq = 0;
    show(stderr, "chat-client: the server refused %s: %.*s (%s)",
         seq ? "a message" : "the session", reason_len > 200 ? 200 : (int)reason_len,
         reason, chat_server_strerror(code));
}

static void on_disconnected(chat_client *c, int err, void *ud) {
    ia_job *j = ud;
    if (j->quit) return;
    if (!j->ever_connected || chat_state(c) != CHAT_ST_BACKOFF) {
        if (j->editing) {
            fputs("\r\033[K", stdout);
            (void)fflush(stdout);
        }
        cli_conn_err(&j->cc, err);
        j->failed = 1;
        j->quit = 1;
        return;
    }
    show(stderr, "chat-client: lost the connection to %s:%u (%s); reconnecting",
         j->cc.host, j->cc.port, chat_strerror(err));
}

/* -- commands --------------------------------------------------------------- */

static void send_err(ia_job *j, const char *what, int err) {
    switch (err) {
    case CHAT_ENOENT: show(stderr, "chat-client: %s: no such file", what); break;
    case CHAT_EIO:
        show(stderr, "chat-client: cannot read %s (not a readable regular file)", what);
        break;
    case CHAT_ETOOBIG:
        show(stderr, "chat-client: %s is too large: the server takes at most %" PRIu32
             " bytes", what, chat_max_frame(j->c));
        break;
    case CHAT_EFULL:
        show(stderr, "chat-client: too many messages are waiting to be delivered: "
             "try again in a moment");
        break;
    default: show(stderr, "chat-client: cannot send %s: %s", what, chat_strerror(err));
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
        show(stderr, "chat-client: /send needs a file: /send FILE [picture|voice|video]");
        return;
    }
    if (next_word(&args)) {
        show(stderr, "chat-client: /send takes a file and an optional type, nothing more "
             "(file names with spaces are not supported)");
        return;
    }
    if (!j->to) {
        show(stderr, "chat-client: no receiver yet: choose one with /to ID");
        return;
    }
    int type;
    if (tname) {
        type = cli_type_from_name(tname);
        if (type < CHAT_PICTURE) {
            show(stderr, "chat-client: unknown type '%s': use picture, voice or video", tname);
            return;
        }
    } else {
        type = chat_type_from_path(file);
        if (type < 0) {
            show(stderr, "chat-client: cannot tell the type of %s from its name: add "
                 "picture, voice or video after it", file);
            return;
        }
    }
    uint64_t seq = 0;
    int err = chat_send_file(j->c, j->to, type, file, &seq);
    if (err < 0) {
        send_err(j, file, err);
        return;
    }
    struct stat st;
    if (stat(file, &st) == 0 && st.st_size > (off_t)PROGRESS_MIN) {
        snprintf(j->progress_name, sizeof j->progress_name, "%s", file);
        j->progress_seq = seq;
        /* + the c2s header, and a POST's prefix with CONV */
        j->progress_total = (uint64_t)st.st_size + 13 + (chat_conv_granted(j->c) ? 10 : 0);
        show(stderr, "sending %s (%.1f MiB)...", file, (double)st.st_size / (1024.0 * 1024.0));
    }
}

/* A transfer over PROGRESS_MIN (a file we send, or a frame arriving) shows
 * "[#########.........]  45% sending NAME" on stderr in place of the input
 * line, redrawn when the percentage moves, at most every 100 ms; the next
 * show() (e.g. "sent NAME", or the saved file) clears it and brings the
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

static void cmd_to(ia_job *j, char *args) {
    char *id = next_word(&args);
    if (!id) {
        if (j->to) show(stdout, "sending to user %" PRIu32, j->to);
        else show(stdout, "no receiver yet: choose one with /to ID");
        return;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(id, &end, 10);
    if (*end || errno || id[0] == '-' || v == 0 || v > 0xFFFFFFFFul || next_word(&args)) {
        show(stderr, "chat-client: /to wants one user id from 1 to 4294967295");
        return;
    }
    j->to = (uint32_t)v;
    set_prompt(j);
}

static void send_text(ia_job *j, const char *text) {
    if (!j->to) {
        show(stderr, "chat-client: no receiver yet: choose one with /to ID "
             "(or start with --to ID)");
        return;
    }
    int err = chat_send_text(j->c, j->to, text, NULL);
    if (err < 0) send_err(j, "the message", err);
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
        if (!cmd) show(stderr, "chat-client: empty command: type /help");
        else if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) j->quit = 1;
        else if (strcmp(cmd, "to") == 0) cmd_to(j, p);
        else if (strcmp(cmd, "send") == 0) cmd_send(j, p);
        else if (strcmp(cmd, "help") == 0) show(stdout, "%.*s", (int)strlen(commands_help) - 1,
                                                commands_help);
        else show(stderr, "chat-client: unknown command /%s: type /help", cmd);
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
    if (cli_tls_check(cmd, &j.cc)) return CLI_EXIT_USAGE;
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
    co.userdata = &j;
    j.c = cli_open(&j.cc, &co);
    if (!j.c) return CLI_EXIT_FAIL;
    g_job = &j;
    set_prompt(&j);
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
        int timeout = t < 0 ? -1 : t > INT_MAX ? INT_MAX : (int)t;
        int r = poll(p, n, timeout);
        if (r < 0) {
            if (errno == EINTR) continue;
            show(stderr, "chat-client: waiting for input failed: %s", strerror(errno));
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
        if (!j.quit && (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))) j.quit = 1;
        int readable = n == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR));
        int writable = n == 2 && (p[1].revents & POLLOUT);
        /* (void): a lost connection is handled by on_disconnected */
        (void)chat_process(j.c, readable, writable);
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
