/*
 * frame.c -- see frame.h. Every function is O(1) except frame_put_error
 * (O(reason length)), the HELLO ones (O(device name + password)),
 * frame_put_group (O(name + users)), frame_parse_group_list (O(groups)) and
 * frame_parse_page (O(entries)).
 * Nothing here allocates or performs I/O.
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
    case FRAME_ERR_DENIED: return "presence subscription refused";
    default: return "unknown error";
    }
}

int frame_device_valid(const uint8_t *name, size_t n) {
    if (n > FRAME_DEVICE_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = name[i];
        if (!((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
              (b >= '0' && b <= '9') || b == '.' || b == '_' || b == '-'))
            return 0;
    }
    return 1;
}

int frame_parse_hello(const uint8_t *body, uint32_t len, frame_hello *h) {
    if (len < FRAME_HELLO_MIN) return FRAME_EBADBODY;
    uint32_t off = FRAME_HELLO_MIN;
    h->version = body[0];
    h->flags = body[1];
    h->device = NULL;
    h->device_len = 0;
    if (h->flags & FRAME_FLAG_CONV) {
        if (len < FRAME_HELLO_CONV_MIN) return FRAME_EBADBODY;
        uint8_t n = body[2];
        /* (len - 3 cannot underflow: checked above) */
        if (n > FRAME_DEVICE_MAX || n > len - FRAME_HELLO_CONV_MIN ||
            !frame_device_valid(body + FRAME_HELLO_CONV_MIN, n))
            return FRAME_EBADBODY;
        h->device_len = n;
        h->device = n ? body + FRAME_HELLO_CONV_MIN : NULL;
        off = FRAME_HELLO_CONV_MIN + n;
    }
    h->password_len = len - off;
    h->password = h->password_len ? body + off : NULL;
    return 0;
}

size_t frame_put_hello(uint8_t *out, uint8_t version, uint8_t flags,
                       const uint8_t *device, uint8_t device_len,
                       const uint8_t *password, uint32_t password_len) {
    size_t off = FRAME_HELLO_MIN;
    out[0] = version;
    out[1] = flags;
    if (flags & FRAME_FLAG_CONV) {
        out[2] = device_len;
        if (device_len) memcpy(out + FRAME_HELLO_CONV_MIN, device, device_len);
        off = FRAME_HELLO_CONV_MIN + (size_t)device_len;
    }
    if (password_len) memcpy(out + off, password, password_len);
    return off + (size_t)password_len;
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

int frame_parse_msg(const uint8_t *body, uint32_t len, frame_msg *m) {
    if (len < FRAME_MSG_PRE || !frame_is_data(body[8])) return FRAME_EBADBODY;
    m->id = frame_rd64(body);
    m->kind = body[8];
    m->flags = body[9];
    m->to = frame_rd32(body + 10);
    m->time_ms = frame_rd64(body + 14);
    m->payload = body + FRAME_MSG_PRE;
    m->payload_len = len - FRAME_MSG_PRE;
    return 0;
}

size_t frame_put_msg(uint8_t out[FRAME_MSG_PRE], const frame_msg *m) {
    frame_wr64(out, m->id);
    out[8] = m->kind;
    out[9] = m->flags;
    frame_wr32(out + 10, m->to);
    frame_wr64(out + 14, m->time_ms);
    return FRAME_MSG_PRE;
}

int frame_parse_post(const uint8_t *body, uint32_t len, frame_post *p) {
    if (len < FRAME_POST_PRE || !frame_is_data(body[0]) ||
        (body[1] & ~FRAME_MSG_GROUP))
        return FRAME_EBADBODY;
    p->kind = body[0];
    p->flags = body[1];
    p->cid = frame_rd64(body + 2);
    p->payload = body + FRAME_POST_PRE;
    p->len = len - FRAME_POST_PRE;
    return 0;
}

size_t frame_put_post_hdr(uint8_t out[FRAME_POST_PRE], const frame_post *p) {
    out[0] = p->kind;
    out[1] = p->flags;
    frame_wr64(out + 2, p->cid);
    return FRAME_POST_PRE;
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

/* ------------------------------------------------------------------ */
/* Groups                                                              */
/* ------------------------------------------------------------------ */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

size_t frame_put_group(uint8_t *out, uint8_t op, uint32_t req, uint32_t group,
                       const uint8_t *name, uint8_t name_len,
                       const uint32_t *users, uint16_t n) {
    size_t at = FRAME_GROUP_PRE;
    out[0] = op;
    frame_wr32(out + 1, req);
    frame_wr32(out + 5, group);
    if (op == FRAME_GOP_CREATE || op == FRAME_GOP_RENAME) {
        out[at++] = name_len;
        if (name_len) memcpy(out + at, name, name_len);
        at += name_len;
    }
    if (op == FRAME_GOP_CREATE || op == FRAME_GOP_ADD || op == FRAME_GOP_REMOVE) {
        wr16(out + at, n);
        at += 2;
        for (uint16_t i = 0; i < n; i++, at += 4) frame_wr32(out + at, users[i]);
    }
    return at;
}

int frame_parse_groups(const uint8_t *body, uint32_t len, frame_groups *g) {
    if (len < FRAME_GROUP_PRE) return FRAME_EBADBODY;
    g->op = body[0];
    g->req = frame_rd32(body + 1);
    g->group = frame_rd32(body + 5);
    g->args = body + FRAME_GROUP_PRE;
    g->args_len = len - FRAME_GROUP_PRE;
    if (g->op < FRAME_GOP_CREATE || g->op > FRAME_GOP_EVENT) return FRAME_EBADBODY;
    if (g->op <= FRAME_GOP_LEAVE && g->args_len != 0) return FRAME_EBADBODY;
    if (g->op == FRAME_GOP_EVENT && g->req != 0) return FRAME_EBADBODY;
    return 0;
}

int frame_parse_group_list(const uint8_t *args, uint32_t len, uint16_t *count) {
    if (len < 2) return FRAME_EBADBODY;
    uint16_t n = rd16(args);
    uint32_t off = 2;
    for (uint16_t i = 0; i < n; i++) {
        if (len - off < FRAME_GROUP_LIST_ENTRY) return FRAME_EBADBODY;
        uint8_t nl = args[off + FRAME_GROUP_LIST_ENTRY - 1];
        if (nl > FRAME_GROUP_NAME_MAX || len - off - FRAME_GROUP_LIST_ENTRY < nl)
            return FRAME_EBADBODY;
        off += FRAME_GROUP_LIST_ENTRY + nl;
    }
    if (off != len) return FRAME_EBADBODY;
    *count = n;
    return 0;
}

void frame_group_list_next(const uint8_t *args, uint32_t *off,
                           frame_group_info *e) {
    const uint8_t *p = args + *off;
    e->id = frame_rd32(p);
    e->flags = p[4];
    e->members = rd16(p + 5);
    e->name_len = p[7];
    e->name = p + FRAME_GROUP_LIST_ENTRY;
    *off += FRAME_GROUP_LIST_ENTRY + e->name_len;
}

int frame_parse_group_members(const uint8_t *args, uint32_t len,
                              uint16_t *count) {
    if (len < 2) return FRAME_EBADBODY;
    uint16_t n = rd16(args);
    if (len - 2 != (uint32_t)FRAME_GROUP_MEMBER * n) return FRAME_EBADBODY;
    *count = n;
    return 0;
}

int frame_parse_group_event(const uint8_t *args, uint32_t len,
                            frame_group_event *e) {
    if (len < FRAME_GROUP_EVENT_MIN) return FRAME_EBADBODY;
    e->what = args[0];
    e->by = frame_rd32(args + 1);
    e->count = rd16(args + 5);
    /* (len - 8 >= 0: checked above; 4 * count fits in 32 bits) */
    uint32_t users = 4u * e->count;
    if (len - FRAME_GROUP_EVENT_MIN < users) return FRAME_EBADBODY;
    e->users = args + 7;
    e->name_len = args[7 + users];
    e->name = args + 8 + users;
    if (e->what < FRAME_GEV_CREATED || e->what > FRAME_GEV_LEFT ||
        e->name_len > FRAME_GROUP_NAME_MAX ||
        len - FRAME_GROUP_EVENT_MIN - users != e->name_len)
        return FRAME_EBADBODY;
    return 0;
}

/* ------------------------------------------------------------------ */
/* History                                                             */
/* ------------------------------------------------------------------ */

size_t frame_put_history(uint8_t out[FRAME_HISTORY_SIZE], uint32_t req,
                         uint8_t kind, uint32_t peer, uint64_t before,
                         uint16_t limit) {
    frame_wr32(out, req);
    out[4] = kind;
    frame_wr32(out + 5, peer);
    frame_wr64(out + 9, before);
    wr16(out + 17, limit);
    return FRAME_HISTORY_SIZE;
}

int frame_parse_page(const uint8_t *body, uint32_t len, frame_page *p) {
    if (len < FRAME_PAGE_PRE || body[4] > 1) return FRAME_EBADBODY;
    p->req = frame_rd32(body);
    p->more = body[4];
    p->count = rd16(body + 5);
    uint32_t off = FRAME_PAGE_PRE;
    for (uint16_t i = 0; i < p->count; i++) {
        if (len - off < FRAME_PAGE_ENTRY || !frame_is_data(body[off + 12]))
            return FRAME_EBADBODY;
        uint32_t n = frame_rd32(body + off + 26);
        if (len - off - FRAME_PAGE_ENTRY < n) return FRAME_EBADBODY;
        off += FRAME_PAGE_ENTRY + n;
    }
    return off == len ? 0 : FRAME_EBADBODY;
}

void frame_page_next(const uint8_t *body, uint32_t *off, frame_page_entry *e) {
    const uint8_t *q = body + *off;
    e->id = frame_rd64(q);
    e->sender = frame_rd32(q + 8);
    e->kind = q[12];
    e->flags = q[13];
    e->to = frame_rd32(q + 14);
    e->time_ms = frame_rd64(q + 18);
    e->len = frame_rd32(q + 26);
    e->payload = q + FRAME_PAGE_ENTRY;
    *off += FRAME_PAGE_ENTRY + e->len;
}
