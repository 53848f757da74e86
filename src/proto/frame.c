/*
 * frame.c -- see frame.h. Every function is O(1) except frame_put_error
 * (O(reason length)). Nothing here allocates or performs I/O.
 */
#include "frame.h"

#include <string.h>

long frame_decode_s2c(const uint8_t *buf, size_t n, uint32_t max_body,
                      frame_s2c *f) {
    if (n < FRAME_S2C_HDR) return FRAME_PARTIAL;
    f->sender = frame_rd32(buf);
    f->type = buf[4];
    f->len = frame_rd32(buf + 5);
    f->body = NULL;
    if (f->len > max_body) return FRAME_ETOOBIG;
    if (n - FRAME_S2C_HDR < f->len) return FRAME_PARTIAL;
    f->body = buf + FRAME_S2C_HDR;
    return (long)(FRAME_S2C_HDR + (size_t)f->len);
}

uint64_t frame_c2s_total(const uint8_t *buf, size_t n) {
    if (n < FRAME_C2S_HDR) return 0;
    return FRAME_C2S_HDR + (uint64_t)frame_rd32(buf + 9);
}

uint64_t frame_s2c_total(const uint8_t *buf, size_t n) {
    if (n < FRAME_S2C_HDR) return 0;
    return FRAME_S2C_HDR + (uint64_t)frame_rd32(buf + 5);
}

size_t frame_put_c2s_hdr(uint8_t out[FRAME_C2S_HDR], uint32_t sender,
                         uint32_t receiver, uint8_t type, uint32_t len) {
    frame_wr32(out, sender);
    frame_wr32(out + 4, receiver);
    out[8] = type;
    frame_wr32(out + 9, len);
    return FRAME_C2S_HDR;
}

const char *frame_type_name(uint8_t type) {
    switch (type) {
    case FRAME_TEXT: return "text";
    case FRAME_PICTURE: return "picture";
    case FRAME_VOICE: return "voice";
    case FRAME_VIDEO: return "video";
    default: return NULL;
    }
}

const char *frame_err_name(unsigned code) {
    switch (code) {
    case FRAME_ERR_TOOBIG: return "frame too large";
    case FRAME_ERR_BADTYPE: return "unknown frame type";
    case FRAME_ERR_SPOOF: return "sender does not match the connection's user";
    case FRAME_ERR_PROTO: return "malformed control frame";
    case FRAME_ERR_AUTH: return "authentication failed";
    case FRAME_ERR_NOLOGIN: return "login required";
    case FRAME_ERR_QUOTA: return "receiver's offline quota is full";
    case FRAME_ERR_STORE: return "message store failure";
    case FRAME_ERR_RATE: return "rate limit exceeded";
    case FRAME_ERR_BUSY: return "server busy";
    case FRAME_ERR_SHUTDOWN: return "server shutting down";
    case FRAME_ERR_BADRCPT: return "invalid receiver";
    case FRAME_ERR_SLOW: return "output queue full";
    case FRAME_ERR_GROUP: return "group operation refused";
    default: return "unknown error";
    }
}

static int device_char(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int frame_parse_hello(const uint8_t *body, uint32_t len, frame_hello *h) {
    if (len < FRAME_HELLO_MIN) return FRAME_EBADBODY;
    h->version = body[0];
    h->flags = body[1];
    uint32_t at = FRAME_HELLO_MIN;
    h->device = NULL;
    h->device_len = 0;
    if (h->flags & FRAME_FLAG_CONV) {
        if (len < at + 1 || body[at] > FRAME_DEVICE_MAX ||
            body[at] > len - at - 1)
            return FRAME_EBADBODY;
        h->device_len = body[at];
        for (uint32_t i = 0; i < h->device_len; i++)
            if (!device_char(body[at + 1 + i])) return FRAME_EBADBODY;
        h->device = h->device_len ? body + at + 1 : NULL;
        at += 1 + h->device_len;
    }
    h->password_len = len - at;
    h->password = h->password_len ? body + at : NULL;
    return 0;
}

size_t frame_put_hello(uint8_t *out, uint8_t version, uint8_t flags,
                       const uint8_t *password, uint32_t password_len) {
    out[0] = version;
    out[1] = flags;
    if (password_len) memcpy(out + FRAME_HELLO_MIN, password, password_len);
    return FRAME_HELLO_MIN + (size_t)password_len;
}

int frame_parse_welcome(const uint8_t *body, uint32_t len, frame_welcome *w) {
    if (len != FRAME_WELCOME_SIZE) return FRAME_EBADBODY;
    w->version = body[0];
    w->flags = body[1];
    w->user = frame_rd32(body + 2);
    w->max_frame = frame_rd32(body + 6);
    return 0;
}

size_t frame_put_welcome(uint8_t out[FRAME_WELCOME_SIZE],
                         const frame_welcome *w) {
    out[0] = w->version;
    out[1] = w->flags;
    frame_wr32(out + 2, w->user);
    frame_wr32(out + 6, w->max_frame);
    return FRAME_WELCOME_SIZE;
}

int frame_parse_ack(const uint8_t *body, uint32_t len, uint64_t *count) {
    if (len != FRAME_ACK_SIZE) return FRAME_EBADBODY;
    *count = frame_rd64(body);
    return 0;
}

size_t frame_put_ack(uint8_t out[FRAME_ACK_SIZE], uint64_t count) {
    frame_wr64(out, count);
    return FRAME_ACK_SIZE;
}

int frame_parse_error(const uint8_t *body, uint32_t len, frame_error *e) {
    if (len < FRAME_ERROR_FIXED) return FRAME_EBADBODY;
    e->code = (uint16_t)(body[0] << 8 | body[1]);
    e->ref = frame_rd64(body + 2);
    e->reason_len = len - FRAME_ERROR_FIXED;
    e->reason = body + FRAME_ERROR_FIXED;
    return 0;
}

size_t frame_put_error(uint8_t out[FRAME_ERROR_MAX], uint16_t code,
                       uint64_t ref, const char *reason) {
    size_t n = reason ? strlen(reason) : 0;
    if (n > FRAME_REASON_MAX) {
        n = FRAME_REASON_MAX;
        /* Do not cut a UTF-8 sequence: back up over continuation bytes. */
        while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80) n--;
    }
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    frame_wr64(out + 2, ref);
    if (n) memcpy(out + FRAME_ERROR_FIXED, reason, n);
    return FRAME_ERROR_FIXED + n;
}
