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
    "  --host HOST      server address (default " CLI_DEFAULT_HOST ")\n"
    "  --port PORT      server port (default 8888)\n"
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

#define IA_GROUPS 256 /* group names remembered for display */
#define IA_SENT 64    /* messages sent followed for their receipts */
#define IA_READS 16   /* conversations with a READ waiting to be sent */
#define IA_TYPISTS 16 /* people shown typing */
#define TYPING_EVERY_MS 3000u /* resend "typing" while the line has text */
#define TYPING_PAUSE_MS 5000u /* no key for this long: "stopped" */
#define TYPING_SHOWN_MS 6000u /* a typing state older than this is stopped */

/* A message sent, followed until it is read. Its server id comes in a
 * POSTED frame (on_posted), before the ACK that covers the message and
 * before any receipt about it. */
typedef struct ia_sent {
    uint64_t seq;        /* 0: a free slot */
    uint64_t id;         /* its server id; 0 until POSTED came */
    uint32_t to;         /* the user, or the group */
    int group;
    int delivered, read; /* ticks shown */
    char text[48];       /* its start, for the tick's line */
} ia_sent;

/* The highest message shown per conversation, to mark read. */
typedef struct ia_read {
    uint32_t conv;
    int group;
    uint64_t upto;
} ia_read;

typedef struct ia_typist {
    uint32_t from, group; /* group 0: typing to this user */
    uint64_t at;          /* when "is typing" was shown (mono ms); 0 = stopped */
} ia_typist;

typedef struct ia_group {
    uint32_t id;
    char name[CHAT_GROUP_NAME_MAX + 1]; /* control characters shown as '?' */
} ia_group;

typedef struct ia_job {
    cli_conn cc;
    const char *save_dir;
    uint32_t to;            /* current receiver, 0 = none */
    int to_group;           /* `to` is a group (/group) */
    ia_group groups[IA_GROUPS]; /* names for "NAME(G)": from LIST and events */
    unsigned n_groups;
    uint32_t quiet_list;    /* the LIST asked at connection: not shown */
    chat_client *c;
    int editing;            /* the libedit callback handler is installed */
    int ever_connected;
    int line_done;          /* the line handler ran during this read */
    int in_handler;         /* inside on_line: the cursor is on a fresh line */
    int quit, failed;
    char prompt[96];
    uint64_t progress_seq;  /* seq of a large file being sent, 0 = none */
    uint64_t progress_total;/* its size on the wire (header + body) */
    char progress_name[256];
    int bar_shown;          /* a progress bar is on the input line */
    int bar_pct;            /* the percentage it shows */
    uint64_t bar_ms;        /* when it was drawn */
    /* signals */
    ia_sent sent[IA_SENT];  /* a ring */
    unsigned sent_next;
    ia_read reads[IA_READS];
    unsigned n_reads;
    ia_typist typists[IA_TYPISTS];
    uint32_t typing_to;     /* "typing" sent to it (0: none, or stopped) */
    int typing_group;
    uint64_t typing_at;     /* when "typing" was last sent (mono ms) */
    uint64_t last_key;      /* when a key last changed the line */
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

/* Copy n bytes of untrusted text into out (cap bytes, NUL-terminated),
 * control characters (escape sequences would drive the terminal) as '?';
 * tabs and newlines too unless keep_space. UTF-8 is kept as it is. */
static void sanitize(char *out, size_t cap, const void *text, size_t n, int keep_space) {
    const unsigned char *b = text;
    size_t i = 0;
    for (; i < n && i + 1 < cap; i++)
        out[i] = (char)((b[i] < 0x20 && !(keep_space && (b[i] == '\t' || b[i] == '\n'))) ||
                                b[i] == 0x7f
                            ? '?' : b[i]);
    out[i] = '\0';
}

static ia_group *group_find(ia_job *j, uint32_t id) {
    for (unsigned i = 0; i < j->n_groups; i++)
        if (j->groups[i].id == id) return &j->groups[i];
    return NULL;
}

/* Remember (or forget: name NULL) a group's name. */
static void group_name(ia_job *j, uint32_t id, const char *name, size_t n) {
    ia_group *g = group_find(j, id);
    if (!name) {
        if (g) *g = j->groups[--j->n_groups];
        return;
    }
    if (!g && j->n_groups < IA_GROUPS) g = &j->groups[j->n_groups++];
    if (g) {
        g->id = id;
        sanitize(g->name, sizeof g->name, name, n, 0);
    }
}

/* "NAME(G)", or "group G" when the name is not known. */
static const char *group_label(ia_job *j, uint32_t id, char *out, size_t cap) {
    const ia_group *g = group_find(j, id);
    if (g && g->name[0]) snprintf(out, cap, "%s(%" PRIu32 ")", g->name, id);
    else snprintf(out, cap, "group %" PRIu32, id);
    return out;
}

static void set_prompt(ia_job *j) {
    char label[96], was[sizeof j->prompt];
    memcpy(was, j->prompt, sizeof was);
    if (j->to && j->to_group)
        snprintf(j->prompt, sizeof j->prompt, "to %s> ",
                 group_label(j, j->to, label, sizeof label));
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
        show(stdout, "connected to %s:%u as user %" PRIu32 " (type /help for commands)",
             j->cc.host, j->cc.port, j->cc.id);
    else show(stdout, "reconnected to %s:%u", j->cc.host, j->cc.port);
    j->ever_connected = 1;
}

/* -- signals: what was shown is read, who is typing ----------------------- */

static ia_typist *typist_find(ia_job *j, uint32_t from, uint32_t group) {
    for (unsigned i = 0; i < IA_TYPISTS; i++)
        if (j->typists[i].at && j->typists[i].from == from && j->typists[i].group == group)
            return &j->typists[i];
    return NULL;
}

/* A message from `from` was shown: remember to mark it read (after this
 * chat_process: one READ per conversation, the highest id), and `from` is
 * no longer typing there. */
static void shown(ia_job *j, const chat_msg *m) {
    ia_typist *t = typist_find(j, m->sender, m->group);
    if (t) t->at = 0;
    if (!m->id || m->own) return;
    uint32_t conv = m->group ? m->group : m->sender;
    int group = m->group != 0;
    for (unsigned i = 0; i < j->n_reads; i++) {
        if (j->reads[i].conv == conv && j->reads[i].group == group) {
            if (m->id > j->reads[i].upto) j->reads[i].upto = m->id;
            return;
        }
    }
    if (j->n_reads == IA_READS) {
        /* full (16 conversations in one batch): the oldest goes now */
        /* (void): READ is a courtesy; a lost one is covered by the next */
        (void)chat_read(j->c, j->reads[0].conv, j->reads[0].group, j->reads[0].upto);
        j->reads[0] = j->reads[--j->n_reads];
    }
    j->reads[j->n_reads++] = (ia_read){conv, group, m->id};
}

/* Send the READs of what was shown (after chat_process). A full control
 * output keeps them for the next round; without SIGNALS they are dropped. */
static void flush_reads(ia_job *j) {
    if (!chat_signals_granted(j->c)) {
        j->n_reads = 0;
        return;
    }
    while (j->n_reads) {
        ia_read *r = &j->reads[j->n_reads - 1];
        int rc = chat_read(j->c, r->conv, r->group, r->upto);
        if (rc == CHAT_EFULL) return; /* again after the next chat_process */
        j->n_reads--;
    }
}

/* A message this client sent, followed for its receipts. */
static void sent_add(ia_job *j, uint64_t seq, const char *what) {
    ia_sent *e = &j->sent[j->sent_next];
    j->sent_next = (j->sent_next + 1) % IA_SENT;
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->to = j->to;
    e->group = j->to_group;
    size_t n = strlen(what);
    if (n > sizeof e->text - 4) {
        n = sizeof e->text - 4;
        while (n > 0 && ((unsigned char)what[n] & 0xC0) == 0x80) n--; /* UTF-8 boundary */
        sanitize(e->text, sizeof e->text, what, n, 0);
        strcat(e->text, "...");
    } else {
        sanitize(e->text, sizeof e->text, what, n, 0);
    }
}

static ia_sent *sent_find(ia_job *j, uint64_t seq) {
    for (unsigned k = 0; k < IA_SENT; k++)
        if (j->sent[k].seq == seq) return &j->sent[k];
    return NULL;
}

/* POSTED: the server id of message `seq` (again, the same, after a resend). */
static void on_posted(chat_client *c, uint64_t seq, uint64_t id, void *ud) {
    (void)c;
    ia_sent *e = sent_find(ud, seq);
    if (e) e->id = id;
}

/* A receipt: tick exactly the messages it covers, those whose server id
 * (from POSTED) is at or below the mark; not only those the server
 * acknowledged: it delivers a message before its commit, and so before its
 * ACK, which a DELIVERED may overtake (POSTED may not: the server sends it
 * before routing the message). A message whose POSTED has not come is not
 * ticked: no fallback. The server sends POSTED before any receipt that
 * can cover the message, so such a message is one the server has not
 * accepted yet, which no mark covers; the old guess (every message sent
 * before the mark came whose id might be at or below it) ticked exactly
 * those early, and is gone. */
static void on_receipt(chat_client *c, int what, int flags, uint32_t conv, uint32_t by,
                       uint64_t upto, uint64_t time_ms, void *ud) {
    (void)time_ms;
    ia_job *j = ud;
    if (what == CHAT_RECEIPT_END) return;
    (void)c;
    int group = (flags & CHAT_SIGNAL_GROUP) != 0;
    if (by != j->cc.id) { /* (by this user: another of its devices read them) */
        char t[6], label[96], where[128] = "";
        hhmm(t);
        if (group)
            snprintf(where, sizeof where, " @ %s", group_label(j, conv, label, sizeof label));
        for (unsigned k = 0; k < IA_SENT; k++) {
            ia_sent *e = &j->sent[(j->sent_next + k) % IA_SENT]; /* oldest first */
            if (!e->seq || !e->id || e->to != conv || e->group != group ||
                upto < e->id || e->read)
                continue;
            if (what == CHAT_RECEIPT_READ) {
                e->read = e->delivered = 1;
                show(stdout, "[%s] ✓✓ read by %" PRIu32 "%s: %s", t, by, where,
                     e->text);
            } else if (!e->delivered) {
                e->delivered = 1;
                show(stdout, "[%s] ✓ delivered to %" PRIu32 "%s: %s", t, by, where,
                     e->text);
            }
        }
    }
}

/* "[HH:MM] 3 is typing" when someone starts (again after a pause). */
static void on_typing(chat_client *c, uint32_t from, int flags, uint32_t to, int state,
                      void *ud) {
    (void)c;
    ia_job *j = ud;
    uint32_t group = (flags & CHAT_SIGNAL_GROUP) ? to : 0;
    if (from == j->cc.id) return;
    uint64_t now = cli_mono_ms();
    ia_typist *t = typist_find(j, from, group);
    if (!state) {
        if (t) t->at = 0;
        return;
    }
    if (t && now - t->at < TYPING_SHOWN_MS) {
        t->at = now; /* still typing: shown already */
        return;
    }
    if (!t) { /* a free slot, or the oldest */
        t = &j->typists[0];
        for (unsigned i = 0; i < IA_TYPISTS && t->at; i++)
            if (!j->typists[i].at || j->typists[i].at < t->at) t = &j->typists[i];
    }
    *t = (ia_typist){from, group, now};
    char tm[6], label[96];
    hhmm(tm);
    if (group)
        show(stdout, "[%s] %" PRIu32 " is typing @ %s", tm, from,
             group_label(j, group, label, sizeof label));
    else
        show(stdout, "[%s] %" PRIu32 " is typing", tm, from);
}

/* Tell the receiver this user types: "typing" at most every
 * TYPING_EVERY_MS while the line has text (not a command), "stopped" when
 * it is sent or emptied, after TYPING_PAUSE_MS without a key, or when the
 * receiver changes. `typed`: the terminal had input this round. */
static void typing_tick(ia_job *j, int typed) {
    uint64_t now = cli_mono_ms();
    /* (after a line, libedit's rl_end still counts the old text until the
     * next key: line_done says the line is gone) */
    int has_text = j->editing && !j->line_done && rl_line_buffer && rl_end > 0 &&
                   rl_line_buffer[0] != '/';
    if (typed && has_text) j->last_key = now;
    int retarget = j->typing_to && (j->typing_to != j->to || j->typing_group != j->to_group);
    if (j->typing_to && (retarget || !has_text || now - j->last_key >= TYPING_PAUSE_MS)) {
        /* (void): a lost "stopped" is covered by the receiver's 6 s rule */
        (void)chat_typing(j->c, j->typing_to, j->typing_group, 0);
        j->typing_to = 0;
    }
    if (!typed || !has_text || !j->to || !chat_signals_granted(j->c)) return;
    if (j->typing_to && now - j->typing_at < TYPING_EVERY_MS) return;
    if (chat_typing(j->c, j->to, j->to_group, 1) == 0) {
        j->typing_to = j->to;
        j->typing_group = j->to_group;
        j->typing_at = now;
    }
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
    hhmm(t);
    if (m->group && m->own)
        snprintf(who, sizeof who, "me @ %s", group_label(j, m->group, label, sizeof label));
    else if (m->group)
        snprintf(who, sizeof who, "%" PRIu32 " @ %s", sender,
                 group_label(j, m->group, label, sizeof label));
    else if (m->own) snprintf(who, sizeof who, "me -> %" PRIu32, m->to);
    else snprintf(who, sizeof who, "%" PRIu32, sender);
    if (type == CHAT_TEXT) {
        char *s = malloc((size_t)len + 1);
        if (!s) {
            show(stderr, "chat-client: out of memory showing a message of %" PRIu32
                 " bytes from user %" PRIu32, len, sender);
            return;
        }
        sanitize(s, (size_t)len + 1, body, len, 1);
        show(stdout, "[%s] %s: %s", t, who, s);
        free(s);
        shown(j, m);
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
    if (m->group)
        show(stdout, "[%s] %s sent a %s: %s (%" PRIu32 " bytes)", t, who, tn, path, len);
    else if (m->own)
        show(stdout, "[%s] me sent a %s to %" PRIu32 ": %s (%" PRIu32 " bytes)", t, tn,
             m->to, path, len);
    else
        show(stdout, "[%s] %" PRIu32 " sent a %s: %s (%" PRIu32 " bytes)", t, sender, tn,
             path, len);
    shown(j, m);
}

/* "1, 2 and 3 more" into out: the first users of a list. */
static void user_list(char *out, size_t cap, const uint32_t *u, size_t n) {
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++) {
        int w = i == 6 && n > 7 ? snprintf(out + at, cap - at, " and %zu more", n - i)
                                : snprintf(out + at, cap - at, "%s%" PRIu32, i ? ", " : "", u[i]);
        if (w < 0) return;
        at += (size_t)w;
        if (i == 6 && n > 7) return;
    }
}

/* A change in a group, as one line: "[HH:MM] 1 added 7, 8 to friends(3)". */
static void show_event(ia_job *j, const chat_group_event *e) {
    char t[6], by[16], users[96], label[96];
    hhmm(t);
    if (e->by == j->cc.id) snprintf(by, sizeof by, "me");
    else snprintf(by, sizeof by, "%" PRIu32, e->by);
    user_list(users, sizeof users, e->users, e->n_users);
    if (e->what != CHAT_GROUP_LEFT || e->name_len) group_name(j, e->group, e->name, e->name_len);
    group_label(j, e->group, label, sizeof label);
    switch (e->what) {
    case CHAT_GROUP_CREATED:
        show(stdout, "[%s] %s created %s%s%s", t, by, label, e->n_users ? " with " : "", users);
        break;
    case CHAT_GROUP_RENAMED: {
        const ia_group *g = group_find(j, e->group);
        show(stdout, "[%s] %s renamed group %" PRIu32 " to %s", t, by, e->group,
             g ? g->name : "?");
        break;
    }
    case CHAT_GROUP_ADDED: show(stdout, "[%s] %s added %s to %s", t, by, users, label); break;
    case CHAT_GROUP_REMOVED:
        show(stdout, "[%s] %s removed %s from %s", t, by, users, label);
        break;
    default: show(stdout, "[%s] %s left %s", t, by, label); break;
    }
    /* This user is out of it: forget the name (the group may be gone). */
    for (size_t i = 0; i < e->n_users; i++)
        if ((e->what == CHAT_GROUP_REMOVED || e->what == CHAT_GROUP_LEFT) &&
            e->users[i] == j->cc.id)
            group_name(j, e->group, NULL, 0);
    set_prompt(j);
}

/* Answers to this session's group requests, and group events. */
static void on_group(chat_client *c, const chat_group_event *e, void *ud) {
    (void)c;
    ia_job *j = ud;
    if (e->op == CHAT_GROUP_EVENT) {
        show_event(j, e);
        return;
    }
    int quiet = e->op == CHAT_GROUP_LIST && e->req == j->quiet_list;
    if (e->err == CHAT_EREFUSED && !quiet)
        show(stderr, "chat-client: %.*s", e->reason_len > 200 ? 200 : (int)e->reason_len,
             e->reason);
    if (e->err) return; /* (lost with the connection: that is reported) */
    if (e->op != CHAT_GROUP_LIST) return;
    j->n_groups = 0;
    for (size_t i = 0; i < e->n_groups; i++)
        group_name(j, e->groups[i].id, e->groups[i].name, e->groups[i].name_len);
    set_prompt(j);
    if (quiet) return;
    if (!e->n_groups) show(stdout, "you are in no group");
    for (size_t i = 0; i < e->n_groups; i++) {
        char label[96];
        show(stdout, "%s: %" PRIu32 " members%s", group_label(j, e->groups[i].id, label,
             sizeof label), e->groups[i].members, e->groups[i].admin ? ", you are an admin" : "");
    }
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
    /* A refused message is never delivered: no tick for it (its POSTED id,
     * if one came, names no message). (A DENIED's `seq` is a user id.) */
    ia_sent *e = seq && code != CHAT_SERR_DENIED ? sent_find(j, seq) : NULL;
    if (e) e->seq = 0;
    if (code == CHAT_SERR_GROUP) /* the reason says it all: "not a member of group 3" */
        show(stderr, "chat-client: the server refused %s: %.*s",
             seq ? "a message" : "a request", reason_len > 200 ? 200 : (int)reason_len,
             reason);
    else
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
    case CHAT_ESTATE: /* (a group message on a session without CONV) */
        show(stderr, "chat-client: the server does not support groups (it did not "
             "grant CONV): choose a user with /to ID");
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
        show(stderr, "chat-client: no receiver yet: choose one with /to ID or /group G");
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
    int err = j->to_group ? chat_send_group_file(j->c, j->to, type, file, &seq)
                          : chat_send_file(j->c, j->to, type, file, &seq);
    if (err < 0) {
        send_err(j, file, err);
        return;
    }
    sent_add(j, seq, file);
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

/* /to ID (group 0) and /group G (group 1): choose the receiver. */
static void cmd_to(ia_job *j, char *args, int group) {
    char *id = next_word(&args);
    char label[96];
    if (!id) {
        if (j->to && j->to_group)
            show(stdout, "sending to %s", group_label(j, j->to, label, sizeof label));
        else if (j->to) show(stdout, "sending to user %" PRIu32, j->to);
        else show(stdout, "no receiver yet: choose one with /to ID or /group G");
        return;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(id, &end, 10);
    if (*end || errno || id[0] == '-' || v == 0 || v > 0xFFFFFFFFul || next_word(&args)) {
        show(stderr, "chat-client: /%s wants one %s id from 1 to 4294967295",
             group ? "group" : "to", group ? "group" : "user");
        return;
    }
    if (group && !chat_conv_granted(j->c)) {
        show(stderr, "chat-client: the server does not support groups (it did not grant "
             "CONV), or the session is not ready yet");
        return;
    }
    j->to = (uint32_t)v;
    j->to_group = group;
    set_prompt(j);
}

static void cmd_groups(ia_job *j) {
    int err = chat_group_list(j->c, NULL);
    if (err == CHAT_ESTATE)
        show(stderr, "chat-client: the server does not support groups (it did not grant "
             "CONV), or the session is not ready yet");
    else if (err < 0)
        show(stderr, "chat-client: cannot list the groups: %s", chat_strerror(err));
}

static void send_text(ia_job *j, const char *text) {
    if (!j->to) {
        show(stderr, "chat-client: no receiver yet: choose one with /to ID or /group G "
             "(or start with --to ID)");
        return;
    }
    uint64_t seq = 0;
    int err = j->to_group ? chat_send_group_text(j->c, j->to, text, &seq)
                          : chat_send_text(j->c, j->to, text, &seq);
    if (err < 0) send_err(j, "the message", err);
    else sent_add(j, seq, text);
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
        else if (strcmp(cmd, "to") == 0) cmd_to(j, p, 0);
        else if (strcmp(cmd, "group") == 0) cmd_to(j, p, 1);
        else if (strcmp(cmd, "groups") == 0) cmd_groups(j);
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
    co.cb.on_group = on_group;
    co.signals = 1; /* receipts, typing: when the server grants them */
    co.cb.on_receipt = on_receipt;
    co.cb.on_typing = on_typing;
    co.cb.on_posted = on_posted;
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
        if (j.typing_to) { /* wake up to say "stopped" after a pause */
            uint64_t now = cli_mono_ms(), end = j.last_key + TYPING_PAUSE_MS;
            int64_t left = end > now ? (int64_t)(end - now) : 0;
            if (t < 0 || left < t) t = left;
        }
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
        if (!j.quit) typing_tick(&j, (p[0].revents & POLLIN) != 0);
        if (!j.quit && (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))) j.quit = 1;
        int readable = n == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR));
        int writable = n == 2 && (p[1].revents & POLLOUT);
        /* (void): a lost connection is handled by on_disconnected */
        (void)chat_process(j.c, readable, writable);
        flush_reads(&j);
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
