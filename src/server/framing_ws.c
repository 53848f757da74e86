/* framing_ws.c -- see framing_ws.h. */
#include "server/framing_ws.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

/* Opcodes (RFC 6455 5.2). */
enum {
    OP_CONT = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xA
};

#define CTL_MAX 125u /* a control frame's payload, at most (5.5) */
#define HDR_MAX 14u  /* 2 + 8 (64-bit length) + 4 (mask key) */

struct framing_ws {
    framing_raw *raw;        /* borrowed: the connection's */
    outq *out;               /* borrowed: the connection's */
    uint64_t max_msg;        /* --max-frame + 13 */
    size_t max_out;          /* --max-outbuf: pings past it are refused */
    /* the frame being read: its header, then its payload */
    uint8_t hdr[HDR_MAX];
    uint8_t hlen;            /* header bytes so far */
    uint8_t hneed;           /* the header's size once known (2 before) */
    uint8_t opcode;
    uint8_t fin;
    uint8_t key[4];
    uint64_t left;           /* payload bytes still to come (after the
                                header is whole) */
    uint64_t poff;           /* payload bytes read (the mask's phase) */
    /* the binary message being read, maybe in fragments */
    uint8_t in_msg;
    uint64_t msg_off;        /* its payload bytes so far */
    uint64_t msg_need;       /* 13 + its chat frame's len, once known */
    uint8_t chdr[FRAME_C2S_HDR]; /* its first 13 bytes */
    /* a control frame's payload */
    uint8_t ctl[CTL_MAX];
    uint8_t ctl_len;
    /* the end */
    uint8_t stop;            /* a close was sent or received */
    uint8_t close_sent;
    uint8_t nomem;
    uint16_t code_in;        /* the peer's close code (0: none) */
    const char *why;         /* the reason of the stop, for the log */
};

framing_ws *framing_ws_new(framing_raw *raw, outq *out, uint32_t max_frame,
                           size_t max_out) {
    framing_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->raw = raw;
    w->out = out;
    w->max_msg = (uint64_t)max_frame + FRAME_C2S_HDR;
    w->max_out = max_out;
    w->hneed = 2;
    outq_set_mode(out, OUTQ_WS);
    return w;
}

void framing_ws_free(framing_ws *w) { free(w); }

/* Append one of our frames (FIN set, unmasked) to the output queue. */
static void put_frame(framing_ws *w, uint8_t opcode, const uint8_t *p,
                      size_t n) {
    assert(n <= CTL_MAX);
    uint8_t f[2 + CTL_MAX];
    f[0] = (uint8_t)(0x80 | opcode);
    f[1] = (uint8_t)n;
    if (n) memcpy(f + 2, p, n);
    if (outq_raw(w->out, f, 2 + n)) w->nomem = 1;
}

/* Send a close with code and reason (cut to fit a control frame), unless
 * one went already; nothing follows it. */
static void send_close(framing_ws *w, uint16_t code, const char *reason) {
    if (w->close_sent) return;
    uint8_t p[CTL_MAX];
    size_t n = reason ? strlen(reason) : 0;
    if (n > CTL_MAX - 2) n = CTL_MAX - 2;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (n) memcpy(p + 2, reason, n);
    put_frame(w, OP_CLOSE, p, 2 + n);
    w->close_sent = 1;
}

/* The peer broke the protocol (or a bound): close with code, stop. */
static void fail(framing_ws *w, uint16_t code, const char *why) {
    send_close(w, code, why);
    w->why = why;
    w->stop = 1;
}

/* XOR p[0..n) with the mask key, from payload offset `phase`: eight
 * bytes at a time (memcpy: any alignment; compilers make this a vector
 * loop), then the tail. */
static void unmask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t phase) {
    uint8_t k[8];
    for (unsigned i = 0; i < 8; i++) k[i] = key[(phase + i) & 3];
    uint64_t kk;
    memcpy(&kk, k, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= kk;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] ^= k[i & 7];
}

/* Payload bytes of the binary message (unmasked): checked to be one chat
 * frame, handed to the article's framing. */
static void data(framing_ws *w, const uint8_t *p, size_t n) {
    if (w->msg_off < FRAME_C2S_HDR) {
        size_t k = FRAME_C2S_HDR - (size_t)w->msg_off;
        if (k > n) k = n;
        memcpy(w->chdr + w->msg_off, p, k);
        if (w->msg_off + k == FRAME_C2S_HDR)
            w->msg_need = FRAME_C2S_HDR + (uint64_t)frame_rd32(w->chdr + 9);
    }
    if (w->msg_need > w->max_msg) {
        fail(w, WS_TOO_BIG, "message over --max-frame");
        return;
    }
    if (w->msg_need && w->msg_off + n > w->msg_need) {
        fail(w, WS_PROTOCOL_ERROR, "a binary message must carry exactly one "
             "chat frame");
        return;
    }
    w->msg_off += n;
    if (framing_raw_input(w->raw, p, n)) w->nomem = 1;
}

/* A whole control frame (its payload in ctl). */
static void control(framing_ws *w) {
    if (w->opcode == OP_PING) {
        if (outq_total(w->out) > w->max_out)
            fail(w, WS_POLICY, "pings while the pongs pile up unread "
                 "(--max-outbuf)");
        else if (!w->close_sent)
            put_frame(w, OP_PONG, w->ctl, w->ctl_len);
        return;
    }
    if (w->opcode == OP_PONG) return;
    /* A close (7.1.5): no body, or a code (and a reason we do not read). */
    uint16_t code = 0;
    if (w->ctl_len == 1) {
        fail(w, WS_PROTOCOL_ERROR, "close frame with a 1-byte body");
        return;
    }
    if (w->ctl_len >= 2) {
        code = (uint16_t)(w->ctl[0] << 8 | w->ctl[1]);
        int ok = (code >= 1000 && code <= 1003) ||
                 (code >= 1007 && code <= 1011) ||
                 (code >= 3000 && code <= 4999);
        if (!ok) {
            fail(w, WS_PROTOCOL_ERROR, "close code not allowed on the wire");
            return;
        }
    }
    w->code_in = code ? code : 1005; /* 1005: none given (7.4.1) */
    send_close(w, code ? code : WS_NORMAL, NULL); /* (its code echoed) */
    w->why = "close from peer";
    w->stop = 1;
}

/* The frame's payload is all here. */
static void frame_end(framing_ws *w) {
    if (w->opcode & 0x8) {
        control(w);
    } else if (w->fin) {
        if (w->msg_off != w->msg_need || w->msg_need == 0) {
            fail(w, WS_PROTOCOL_ERROR, "a binary message must carry exactly "
                 "one chat frame");
            return;
        }
        w->in_msg = 0;
        w->msg_off = w->msg_need = 0;
    }
    w->hlen = 0;
    w->hneed = 2;
}

/* The header is whole: check it (5.2), start the payload. */
static void frame_start(framing_ws *w) {
    const uint8_t *h = w->hdr;
    uint8_t len7 = h[1] & 0x7F;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        if (len < 126) {
            fail(w, WS_PROTOCOL_ERROR, "length not in its shortest form");
            return;
        }
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
        if (len < 65536 || len >> 63) {
            fail(w, WS_PROTOCOL_ERROR, "length not in its shortest form");
            return;
        }
    }
    memcpy(w->key, h + w->hneed - 4, 4);
    w->left = len;
    w->poff = 0;
    if (w->opcode & 0x8) {
        w->ctl_len = 0; /* (len <= 125: checked with the first bytes) */
    } else if (w->opcode == OP_TEXT) {
        fail(w, WS_UNSUPPORTED, "text message: chat frames travel in binary "
             "messages");
        return;
    } else {
        if (w->opcode == OP_BINARY) {
            if (w->in_msg) {
                fail(w, WS_PROTOCOL_ERROR, "a new message inside a "
                     "fragmented one");
                return;
            }
            w->in_msg = 1;
        } else if (!w->in_msg) {
            fail(w, WS_PROTOCOL_ERROR, "continuation frame outside a "
                 "message");
            return;
        }
        if (w->msg_off + len > w->max_msg) {
            fail(w, WS_TOO_BIG, "message over --max-frame");
            return;
        }
    }
    if (len == 0) frame_end(w);
}

/* The first two header bytes are in: the header's size, and the checks
 * that need nothing more. */
static void header_size(framing_ws *w) {
    uint8_t b0 = w->hdr[0], b1 = w->hdr[1];
    w->fin = b0 >> 7;
    w->opcode = b0 & 0x0F;
    if (b0 & 0x70) {
        fail(w, WS_PROTOCOL_ERROR, "reserved bits set (no extension was "
             "agreed)");
        return;
    }
    if (w->opcode > OP_BINARY && w->opcode != OP_CLOSE &&
        w->opcode != OP_PING && w->opcode != OP_PONG) {
        fail(w, WS_PROTOCOL_ERROR, "unknown opcode");
        return;
    }
    if (!(b1 & 0x80)) {
        fail(w, WS_PROTOCOL_ERROR, "unmasked frame from a client");
        return;
    }
    uint8_t len7 = b1 & 0x7F;
    if ((w->opcode & 0x8) && (!w->fin || len7 > CTL_MAX)) {
        fail(w, WS_PROTOCOL_ERROR, "fragmented or long control frame");
        return;
    }
    w->hneed = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
}

int framing_ws_input(framing_ws *w, uint8_t *p, size_t n) {
    while (n && !w->stop && !w->nomem) {
        if (w->hlen < w->hneed) { /* the header */
            size_t k = (size_t)(w->hneed - w->hlen);
            if (k > n) k = n;
            memcpy(w->hdr + w->hlen, p, k);
            w->hlen = (uint8_t)(w->hlen + k);
            p += k;
            n -= k;
            if (w->hlen == 2 && w->hneed == 2) {
                header_size(w);
                continue;
            }
            if (w->hlen == w->hneed) frame_start(w);
            continue;
        }
        size_t k = w->left < n ? (size_t)w->left : n; /* the payload */
        unmask(p, k, w->key, w->poff);
        if (w->opcode & 0x8) {
            memcpy(w->ctl + w->ctl_len, p, k);
            w->ctl_len = (uint8_t)(w->ctl_len + k);
        } else {
            data(w, p, k);
        }
        w->left -= k;
        w->poff += k;
        p += k;
        n -= k;
        if (w->left == 0 && !w->stop) frame_end(w);
    }
    if (w->nomem) return FRAMING_ENOMEM;
    return w->stop ? FRAMING_WS_CLOSE : 0;
}

int framing_ws_close(framing_ws *w, uint16_t code, const char *reason) {
    if (w->close_sent) return 0;
    send_close(w, code, reason);
    w->stop = 1;
    if (!w->why) w->why = reason ? reason : "closed by the server";
    return w->nomem ? -1 : 0;
}

int framing_ws_close_sent(const framing_ws *w) { return w->close_sent; }

uint16_t framing_ws_code_received(const framing_ws *w) { return w->code_in; }

const char *framing_ws_why(const framing_ws *w) {
    return w->why ? w->why : "";
}
