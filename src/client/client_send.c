/*
 * client_send.c -- libchat's sending: messages into the outgoing queue
 * (chat_send*, to a user or to a group) and the queue onto the socket
 * (chat__flush), plain or through TLS. The queue's invariants are at the top
 * of client.c.
 */
#include "chat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client/client_int.h"
#include "client/tls.h"
#include "common/buf.h"
#include "proto/frame.h"

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

/* A message was fully written. */
static void msg_written(chat_client *c) {
    chat__msg *m = c->stage;
    m->conn_seq = ++c->sent_count;
    c->stage = m->next;
    c->stage_off = 0;
    if (!c->acks_granted) chat__msg_remove(c, m); /* m == head: delivered once written */
}

/* `left` more bytes of queued frames (from stage + stage_off on) were
 * written. Returns 1 when they ended inside a frame, else 0. */
static int advance_data(chat_client *c, size_t left) {
    while (left > 0) {
        size_t rem = chat__msg_wire_len(c->stage) - c->stage_off;
        if (left < rem) { c->stage_off += left; return 1; }
        left -= rem;
        msg_written(c);
    }
    return 0;
}

/* TLS: encrypt one record's worth of `out` and queued frames at a time, in
 * the same order plain TCP would write them, and count them written once
 * the socket took the ciphertext. 0, CHAT_ECLOSED, CHAT_ETLS, CHAT_ENOMEM. */
static int tls_flush(chat_client *c) {
    for (;;) {
        int s = ctls_send_out(c->tls, c->fd);
        if (s < 0) return CHAT_ECLOSED;
        if (s == 0) return 0;
        if (c->tls_fl_out || c->tls_fl_data) {
            buf_consume(&c->out, c->tls_fl_out);
            advance_data(c, c->tls_fl_data);
            c->tls_fl_out = c->tls_fl_data = 0;
        }
        uint8_t chunk[CHAT__TLS_CHUNK];
        size_t n = 0, from_out = 0;
        if (c->stage_off == 0 && c->out.len > 0) {
            from_out = c->out.len < sizeof chunk ? c->out.len : sizeof chunk;
            memcpy(chunk, c->out.data, from_out);
            n = from_out;
        }
        /* Frames follow only a complete `out` (or the rest of a frame). */
        if (c->state == CHAT_ST_READY && (c->stage_off > 0 || from_out == c->out.len)) {
            size_t off = c->stage_off;
            for (chat__msg *m = c->stage; m && n < sizeof chunk; m = m->next, off = 0) {
                size_t len = chat__msg_wire_len(m) - off;
                size_t k = len < sizeof chunk - n ? len : sizeof chunk - n;
                memcpy(chunk + n, chat__msg_wire(m) + off, k);
                n += k;
            }
        }
        if (n == 0) return 0;
        int rc = ctls_write(c->tls, chunk, n, c->tls_err, sizeof c->tls_err);
        if (rc < 0) return rc;
        c->tls_fl_out = from_out;
        c->tls_fl_data = n - from_out;
    }
}

int chat__flush(chat_client *c) {
    if (c->tls) return tls_flush(c);
    for (;;) {
        struct iovec iov[CHAT__IOV];
        int n = 0;
        int out_first = c->stage_off == 0 && c->out.len > 0;
        if (out_first) iov[n++] = (struct iovec){c->out.data, c->out.len};
        if (c->state == CHAT_ST_READY) {
            size_t off = c->stage_off;
            for (chat__msg *m = c->stage; m && n < CHAT__IOV; m = m->next, off = 0)
                iov[n++] = (struct iovec){(void *)(chat__msg_wire(m) + off),
                                          chat__msg_wire_len(m) - off};
        }
        if (n == 0) return 0;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return CHAT_ECLOSED;
        }
        size_t left = (size_t)w;
        if (out_first) {
            size_t k = left < c->out.len ? left : c->out.len;
            buf_consume(&c->out, k);
            left -= k;
            if (c->out.len) return 0; /* partial: the socket is full */
        }
        if (advance_data(c, left)) return 0; /* partial: the socket is full */
    }
}

/* The frame m starts with, for the current connection:
 *
 *   POST:  frame[0..13) header (type POST, len 10 + body), frame[13..23)
 *          kind, flags (0, or GROUP), cid; off = 0
 *   bare:  frame[10..23) header (type 1-4, len = body); off = 10
 *
 * then the body at frame[23]. The cid is derived from the seq, so a resend
 * after a reconnect carries the cid the first attempt did. A group message
 * is always a POST: as a bare frame it would reach the user whose id is
 * the group's (handle_welcome refuses it where CONV is not granted). */
void chat__msg_format(chat_client *c, chat__msg *m) {
    if (c->conv_granted || m->flags) {
        frame_post p = {m->type, m->flags, c->cid_base + m->seq, NULL, 0};
        frame_put_c2s_hdr(m->frame, c->user, m->to, FRAME_POST,
                          FRAME_POST_PRE + m->len);
        frame_put_post_hdr(m->frame + FRAME_C2S_HDR, &p);
        m->off = 0;
    } else {
        frame_put_c2s_hdr(m->frame + FRAME_POST_PRE, c->user, m->to, m->type,
                          m->len);
        m->off = FRAME_POST_PRE;
    }
}

/* Check a send and allocate its message (header and body not written).
 * flags: FRAME_MSG_GROUP for a group message (`to` is the group), else 0. */
static int msg_new(chat_client *c, uint32_t to, int type, uint8_t flags,
                   uint32_t len, chat__msg **out) {
    if (type < CHAT_TEXT || type > CHAT_VIDEO || to == 0) return CHAT_EINVAL;
    /* A group message needs CONV: never with control frames or CONV off,
     * nor on a session that did not get it. */
    if (flags && (!c->control || !c->want_conv ||
                  (c->state == CHAT_ST_READY && !c->conv_granted)))
        return CHAT_ESTATE;
    if (len > chat_max_frame(c) || len > c->max_q_bytes) return CHAT_ETOOBIG;
    if (c->q_frames >= c->max_q_frames || c->q_bytes + len > c->max_q_bytes)
        return CHAT_EFULL;
    chat__msg *m = malloc(sizeof *m + CHAT__MSG_PRE + (size_t)len);
    if (!m) return CHAT_ENOMEM;
    m->next = NULL;
    m->conn_seq = 0;
    m->len = len;
    m->to = to;
    m->type = (uint8_t)type;
    m->flags = flags;
    *out = m;
    return 0;
}

static void msg_commit(chat_client *c, chat__msg *m, uint64_t *seq_out) {
    m->seq = ++c->last_seq;
    chat__msg_format(c, m);
    if (c->tail) c->tail->next = m;
    else c->head = m;
    c->tail = m;
    if (!c->stage) { c->stage = m; c->stage_off = 0; }
    c->q_frames++;
    c->q_bytes += m->len;
    if (seq_out) *seq_out = m->seq;
}

static int send_bytes(chat_client *c, uint32_t to, uint8_t flags, int type,
                      const void *body, uint32_t len, uint64_t *seq_out) {
    if (!c || (!body && len)) return CHAT_EINVAL;
    chat__msg *m;
    int rc = msg_new(c, to, type, flags, len, &m);
    if (rc) return rc;
    if (len) memcpy(m->frame + CHAT__MSG_PRE, body, len);
    msg_commit(c, m, seq_out);
    return 0;
}

static int send_text(chat_client *c, uint32_t to, uint8_t flags,
                     const char *text, uint64_t *seq_out) {
    if (!text) return CHAT_EINVAL;
    size_t n = strlen(text);
    if (n > UINT32_MAX) return CHAT_ETOOBIG;
    return send_bytes(c, to, flags, CHAT_TEXT, text, (uint32_t)n, seq_out);
}

int chat_send(chat_client *c, uint32_t to, int type, const void *body,
              uint32_t len, uint64_t *seq_out) {
    return send_bytes(c, to, 0, type, body, len, seq_out);
}

int chat_send_text(chat_client *c, uint32_t to, const char *text,
                   uint64_t *seq_out) {
    return send_text(c, to, 0, text, seq_out);
}

int chat_send_group(chat_client *c, uint32_t group, int type, const void *body,
                    uint32_t len, uint64_t *seq_out) {
    return send_bytes(c, group, FRAME_MSG_GROUP, type, body, len, seq_out);
}

int chat_send_group_text(chat_client *c, uint32_t group, const char *text,
                         uint64_t *seq_out) {
    return send_text(c, group, FRAME_MSG_GROUP, text, seq_out);
}

/* Read the file at path into a new message (see chat_send_file). */
static int send_file(chat_client *c, uint32_t to, uint8_t flags, int type,
                     const char *path, uint64_t *seq_out) {
    if (!c || !path) return CHAT_EINVAL;
    if (type < CHAT_TEXT || type > CHAT_VIDEO || to == 0) return CHAT_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return (errno == ENOENT || errno == ENOTDIR) ? CHAT_ENOENT : CHAT_EIO;
    struct stat st;
    int rc = CHAT_EIO;
    chat__msg *m = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) goto out;
    if ((uint64_t)st.st_size > chat_max_frame(c)) { rc = CHAT_ETOOBIG; goto out; }
    uint32_t len = (uint32_t)st.st_size;
    rc = msg_new(c, to, type, flags, len, &m);
    if (rc) goto out;
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, m->frame + CHAT__MSG_PRE + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { rc = CHAT_EIO; goto out; } /* error, or it shrank */
        got += (size_t)r;
    }
    uint8_t extra;
    if (read(fd, &extra, 1) != 0) { rc = CHAT_EIO; goto out; } /* it grew */
    msg_commit(c, m, seq_out);
    m = NULL;
    rc = 0;
out:
    free(m);
    close(fd);
    return rc;
}

int chat_send_file(chat_client *c, uint32_t to, int type, const char *path,
                   uint64_t *seq_out) {
    return send_file(c, to, 0, type, path, seq_out);
}

int chat_send_group_file(chat_client *c, uint32_t group, int type,
                         const char *path, uint64_t *seq_out) {
    return send_file(c, group, FRAME_MSG_GROUP, type, path, seq_out);
}
