/*
 * client_signal.c -- libchat's signals (docs/PROTOCOL.md "Receipts, typing
 * and presence"): RECEIPT, TYPING and PRESENCE frames written to the
 * control output, and the server's decoded for on_receipt, on_typing,
 * on_presence and, for POSTED (the server id of a message this client
 * posted), on_posted. The public contract is in include/chat.h. The bodies
 * come from src/proto/signal.c, the codec the server uses.
 *
 * Signal frames are not data frames: no seq, no acknowledgement, no
 * resend. They are written only on a connection whose WELCOME granted
 * SIGNALS (signals_granted implies conv_granted), and a server that sends
 * one (POSTED included) on another connection breaks the protocol.
 */
#include "chat.h"

#include <string.h>

#include "client/client_int.h"
#include "common/buf.h"
#include "proto/frame.h"
#include "proto/signal.h"

_Static_assert((int)CHAT_RECEIPT_DELIVERED == (int)FRAME_RCPT_DELIVERED &&
                   (int)CHAT_RECEIPT_READ == (int)FRAME_RCPT_READ &&
                   (int)CHAT_RECEIPT_END == (int)FRAME_RCPT_END &&
                   CHAT_SIGNAL_GROUP == FRAME_MSG_GROUP &&
                   (int)CHAT_PRESENCE_ONLINE == (int)FRAME_PRES_ONLINE &&
                   (int)CHAT_PRESENCE_OFFLINE == (int)FRAME_PRES_OFFLINE &&
                   CHAT_PRESENCE_FRAME_USERS == FRAME_PRESENCE_USERS_MAX &&
                   (int)CHAT_SERR_DENIED == (int)FRAME_ERR_DENIED,
               "chat.h signal values must match the codec");
/* The largest subscription, all its frames at once, fits the control
 * output with room to spare (ACKs, PONGs). */
#define PRES_FRAME_MAX (FRAME_C2S_HDR + FRAME_PRESENCE_PRE + 4u * FRAME_PRESENCE_USERS_MAX)
_Static_assert((CHAT_PRESENCE_USERS_MAX / CHAT_PRESENCE_FRAME_USERS) * PRES_FRAME_MAX <=
                   CHAT__OUT_LIMIT / 2,
               "a whole subscription must fit the control output");

/* Can a signal frame be written now? 0, CHAT_ESTATE or CHAT_ENOTSUP. */
static int sig_check(const chat_client *c) {
    if (c->state != CHAT_ST_READY) return CHAT_ESTATE;
    if (!c->signals_granted) return CHAT_ENOTSUP;
    return 0;
}

/* Room for a frame of `type` with a body of len bytes: 0 with *body,
 * CHAT_EFULL or CHAT_ENOMEM. */
static int sig_frame(chat_client *c, uint8_t type, uint32_t len, uint8_t **body) {
    int r = chat__control_frame(c, type, len, body);
    if (r == BUF_ELIMIT) return CHAT_EFULL;
    return r ? CHAT_ENOMEM : 0;
}

static int put_receipt(chat_client *c, uint8_t what, uint32_t conv, int group,
                       uint64_t upto) {
    if (!c || conv == 0 || (group != 0 && group != 1)) return CHAT_EINVAL;
    int rc = sig_check(c);
    if (rc) return rc;
    uint8_t *body;
    rc = sig_frame(c, FRAME_RECEIPT, FRAME_RECEIPT_SIZE, &body);
    if (rc) return rc;
    frame_receipt r = {what, group ? FRAME_MSG_GROUP : 0, conv, 0, upto, 0};
    frame_put_receipt(body, &r);
    return 0;
}

int chat_read(chat_client *c, uint32_t conv, int group, uint64_t upto) {
    if (upto == 0) return CHAT_EINVAL;
    return put_receipt(c, FRAME_RCPT_READ, conv, group, upto);
}

int chat_receipts_query(chat_client *c, uint32_t conv, int group) {
    return put_receipt(c, FRAME_RCPT_QUERY, conv, group, 0);
}

int chat_typing(chat_client *c, uint32_t to, int group, int typing) {
    if (!c || to == 0 || (group != 0 && group != 1) || (typing != 0 && typing != 1))
        return CHAT_EINVAL;
    int rc = sig_check(c);
    if (rc) return rc;
    uint8_t *body;
    rc = sig_frame(c, FRAME_TYPING, FRAME_TYPING_SIZE, &body);
    if (rc) return rc;
    frame_typing t = {group ? FRAME_MSG_GROUP : 0, to, (uint8_t)typing};
    frame_put_typing(body, &t);
    return 0;
}

/* users[0..n) in frames of at most FRAME_PRESENCE_USERS_MAX ids; room for
 * all of them is reserved first, so either every frame is written or
 * none. */
static int presence(chat_client *c, uint8_t op, const uint32_t *users, size_t n) {
    if (!c || !users || n == 0 || n > CHAT_PRESENCE_USERS_MAX) return CHAT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (users[i] == 0) return CHAT_EINVAL;
    int rc = sig_check(c);
    if (rc) return rc;
    size_t frames = (n + FRAME_PRESENCE_USERS_MAX - 1) / FRAME_PRESENCE_USERS_MAX;
    size_t total = frames * (FRAME_C2S_HDR + FRAME_PRESENCE_PRE) + 4 * n;
    int r = buf_reserve(&c->out, total, CHAT__OUT_LIMIT);
    if (r == BUF_ELIMIT) return CHAT_EFULL;
    if (r) return CHAT_ENOMEM;
    for (size_t at = 0; at < n; at += FRAME_PRESENCE_USERS_MAX) {
        size_t k = n - at < FRAME_PRESENCE_USERS_MAX ? n - at : FRAME_PRESENCE_USERS_MAX;
        uint8_t *body;
        rc = sig_frame(c, FRAME_PRESENCE, (uint32_t)(FRAME_PRESENCE_PRE + 4 * k), &body);
        if (rc) return rc; /* (cannot happen: the room is reserved) */
        frame_put_presence_req(body, op, (uint16_t)k);
        for (size_t i = 0; i < k; i++)
            frame_wr32(body + FRAME_PRESENCE_PRE + 4 * i, users[at + i]);
    }
    return 0;
}

int chat_presence_subscribe(chat_client *c, const uint32_t *users, size_t n) {
    return presence(c, FRAME_PRES_SUBSCRIBE, users, n);
}

int chat_presence_unsubscribe(chat_client *c, const uint32_t *users, size_t n) {
    return presence(c, FRAME_PRES_UNSUBSCRIBE, users, n);
}

/* ------------------------------------------------------------------ */
/* From the server                                                     */
/* ------------------------------------------------------------------ */

int chat__handle_signal(chat_client *c, const frame_s2c *f) {
    if (!c->signals_granted) return CHAT_EPROTO;
    if (f->type == FRAME_RECEIPT) {
        frame_receipt r;
        /* QUERY is a client's; END carries no mark */
        if (frame_parse_receipt(f->body, f->len, &r) || r.what == FRAME_RCPT_QUERY)
            return CHAT_EPROTO;
        if (c->cb.on_receipt)
            c->cb.on_receipt(c, r.what, r.flags, r.conv, r.by, r.upto, r.time_ms, c->ud);
        return 0;
    }
    if (f->type == FRAME_TYPING) {
        frame_typing t;
        if (frame_parse_typing(f->body, f->len, &t) || f->sender == 0) return CHAT_EPROTO;
        if (c->cb.on_typing) c->cb.on_typing(c, f->sender, t.flags, t.to, t.state, c->ud);
        return 0;
    }
    if (f->type == FRAME_POSTED) {
        uint64_t cid, id;
        if (frame_parse_posted(f->body, f->len, &cid, &id)) return CHAT_EPROTO;
        /* A message's cid is cid_base + seq (client_send.c); cid_base is in
         * 1..2^63 and seqs stay far below 2^63, so the difference names one
         * of our seqs only when it is in 1..last_seq (a cid below cid_base
         * wraps to a huge value). Any other cid is not ours: ignored. */
        uint64_t seq = cid - c->cid_base;
        if (seq >= 1 && seq <= c->last_seq && c->cb.on_posted)
            c->cb.on_posted(c, seq, id, c->ud);
        return 0;
    }
    frame_presence p;
    if (frame_parse_presence(f->body, f->len, &p)) return CHAT_EPROTO;
    if (c->cb.on_presence) c->cb.on_presence(c, p.user, p.state, p.last_seen_ms, c->ud);
    return 0;
}
