/*
 * ia_signals.c -- chat-client's interactive mode, its signals (on a server
 * that grants SIGNALS): a line when a message sent is delivered ("✓") and
 * read ("✓✓"), ticked exactly by the server ids POSTED gives; "X is
 * typing" when someone starts typing to this user; TYPING sent while the
 * input line has text, and "stopped"; READ of the messages shown, one per
 * conversation after each chat_process. The loop that calls these is in
 * interactive.c; interactive_int.h has the struct.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <editline/readline.h>

#include "chat.h"
#include "cli/cli.h"
#include "cli/interactive_int.h"

static ia_typist *typist_find(ia_job *j, uint32_t from, uint32_t group) {
    for (unsigned i = 0; i < IA_TYPISTS; i++)
        if (j->typists[i].at && j->typists[i].from == from && j->typists[i].group == group)
            return &j->typists[i];
    return NULL;
}

/* A message from `from` was shown: remember to mark it read (after this
 * chat_process: one READ per conversation, the highest id), and `from` is
 * no longer typing there. */
void ia_shown(ia_job *j, const chat_msg *m) {
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
void ia_flush_reads(ia_job *j) {
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
void ia_sent_add(ia_job *j, uint64_t seq, const char *what) {
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
        ia_sanitize(e->text, sizeof e->text, what, n, 0);
        strcat(e->text, "...");
    } else {
        ia_sanitize(e->text, sizeof e->text, what, n, 0);
    }
}

ia_sent *ia_sent_find(ia_job *j, uint64_t seq) {
    for (unsigned k = 0; k < IA_SENT; k++)
        if (j->sent[k].seq == seq) return &j->sent[k];
    return NULL;
}

/* POSTED: the server id of message `seq` (again, the same, after a resend). */
void ia_on_posted(chat_client *c, uint64_t seq, uint64_t id, void *ud) {
    (void)c;
    ia_sent *e = ia_sent_find(ud, seq);
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
void ia_on_receipt(chat_client *c, int what, int flags, uint32_t conv, uint32_t by,
                   uint64_t upto, uint64_t time_ms, void *ud) {
    (void)time_ms;
    ia_job *j = ud;
    if (what == CHAT_RECEIPT_END) return;
    (void)c;
    int group = (flags & CHAT_SIGNAL_GROUP) != 0;
    if (by != j->cc.id) { /* (by this user: another of its devices read them) */
        char t[6], label[96], where[128] = "";
        ia_hhmm(t);
        if (group)
            snprintf(where, sizeof where, " @ %s", ia_group_label(j, conv, label, sizeof label));
        for (unsigned k = 0; k < IA_SENT; k++) {
            ia_sent *e = &j->sent[(j->sent_next + k) % IA_SENT]; /* oldest first */
            if (!e->seq || !e->id || e->to != conv || e->group != group ||
                upto < e->id || e->read)
                continue;
            if (what == CHAT_RECEIPT_READ) {
                e->read = e->delivered = 1;
                ia_show(stdout, "[%s] ✓✓ read by %" PRIu32 "%s: %s", t, by, where,
                        e->text);
            } else if (!e->delivered) {
                e->delivered = 1;
                ia_show(stdout, "[%s] ✓ delivered to %" PRIu32 "%s: %s", t, by, where,
                        e->text);
            }
        }
    }
}

/* "[HH:MM] 3 is typing" when someone starts (again after a pause). */
void ia_on_typing(chat_client *c, uint32_t from, int flags, uint32_t to, int state,
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
    ia_hhmm(tm);
    if (group)
        ia_show(stdout, "[%s] %" PRIu32 " is typing @ %s", tm, from,
                ia_group_label(j, group, label, sizeof label));
    else
        ia_show(stdout, "[%s] %" PRIu32 " is typing", tm, from);
}

/* Tell the receiver this user types: "typing" at most every
 * TYPING_EVERY_MS while the line has text (not a command), "stopped" when
 * it is sent or emptied, after TYPING_PAUSE_MS without a key, or when the
 * receiver changes. `typed`: the terminal had input this round. */
void ia_typing_tick(ia_job *j, int typed) {
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
