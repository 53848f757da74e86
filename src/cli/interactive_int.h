/*
 * interactive_int.h -- what the files of chat-client's interactive mode
 * share (interactive.h is its entry point): the session's struct and the
 * few functions one file calls in another. Nothing outside
 * src/cli/interactive.c and src/cli/ia_*.c includes this.
 *
 * The files, one concern each:
 *
 *     interactive.c  the poll(2) loop, libedit, the prompt, the commands,
 *                    the messages shown, the connection's callbacks
 *     ia_signals.c   signals: ticks on the messages sent (by their POSTED
 *                    ids), "X is typing", TYPING while a line is typed,
 *                    READ of what is shown
 *     ia_groups.c    groups shown: their names and labels ("NAME(G)"), a
 *                    line per group event, the answer to /groups
 */
#ifndef CLI_INTERACTIVE_INT_H
#define CLI_INTERACTIVE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chat.h"
#include "cli/cli.h"

#define IA_GROUPS 256 /* group names remembered for display */
#define IA_SENT 64    /* messages sent followed for their receipts */
#define IA_READS 16   /* conversations with a READ waiting to be sent */
#define IA_TYPISTS 16 /* people shown typing */
#define TYPING_EVERY_MS 3000u /* resend "typing" while the line has text */
#define TYPING_PAUSE_MS 5000u /* no key for this long: "stopped" */
#define TYPING_SHOWN_MS 6000u /* a typing state older than this is stopped */

/* A message sent, followed until it is read. Its server id comes in a
 * POSTED frame (ia_on_posted), before the ACK that covers the message and
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

/* -- interactive.c: the terminal -------------------------------------------- */

/* Print one line on `f` above the input line without garbling it: clear the
 * line being edited, print, then let libedit redraw prompt and text. */
void ia_show(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The local time as "HH:MM" ("--:--" when it cannot be had). */
void ia_hhmm(char out[6]);
/* Copy n bytes of untrusted text into out (cap bytes, NUL-terminated),
 * control characters as '?'; tabs and newlines too unless keep_space. */
void ia_sanitize(char *out, size_t cap, const void *text, size_t n, int keep_space);
/* Make the prompt for the current receiver ("to 2> ", "to NAME(G)> "),
 * drawn at once when it changed outside the line handler. */
void ia_set_prompt(ia_job *j);

/* -- ia_signals.c: receipts, typing, read marks ----------------------------- */

/* A message was shown: mark it read after this chat_process; its sender is
 * no longer typing there. */
void ia_shown(ia_job *j, const chat_msg *m);
/* Send the READs of what was shown (after each chat_process). */
void ia_flush_reads(ia_job *j);
/* A message this client sent (seq, to the current receiver; `what` its
 * text or file name), followed for its receipts. */
void ia_sent_add(ia_job *j, uint64_t seq, const char *what);
/* The message sent with seq, NULL when it is not followed. */
ia_sent *ia_sent_find(ia_job *j, uint64_t seq);
/* Tell the receiver this user types, or stopped (after each poll);
 * `typed`: the terminal had input this round. */
void ia_typing_tick(ia_job *j, int typed);
/* libchat's on_posted, on_receipt and on_typing (userdata: the ia_job). */
void ia_on_posted(chat_client *c, uint64_t seq, uint64_t id, void *ud);
void ia_on_receipt(chat_client *c, int what, int flags, uint32_t conv, uint32_t by,
                   uint64_t upto, uint64_t time_ms, void *ud);
void ia_on_typing(chat_client *c, uint32_t from, int flags, uint32_t to, int state,
                  void *ud);

/* -- ia_groups.c: groups shown ---------------------------------------------- */

/* "NAME(G)" into out, or "group G" when the name is not known; returns out. */
const char *ia_group_label(ia_job *j, uint32_t id, char *out, size_t cap);
/* libchat's on_group: answers to this session's group requests (LIST fills
 * the names), and group events (userdata: the ia_job). */
void ia_on_group(chat_client *c, const chat_group_event *e, void *ud);

#endif
