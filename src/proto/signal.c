/* signal.c -- see signal.h. */
#include "proto/signal.h"

int frame_parse_receipt(const uint8_t *body, uint32_t len, frame_receipt *r) {
    if (len != FRAME_RECEIPT_SIZE) return FRAME_EBADBODY;
    r->what = body[0];
    r->flags = body[1];
    r->conv = frame_rd32(body + 2);
    r->by = frame_rd32(body + 6);
    r->upto = frame_rd64(body + 10);
    r->time_ms = frame_rd64(body + 18);
    if (r->what < FRAME_RCPT_DELIVERED || r->what > FRAME_RCPT_END ||
        (r->flags & ~FRAME_MSG_GROUP) || r->conv == 0)
        return FRAME_EBADBODY;
    return 0;
}

size_t frame_put_receipt(uint8_t out[FRAME_RECEIPT_SIZE],
                         const frame_receipt *r) {
    out[0] = r->what;
    out[1] = r->flags;
    frame_wr32(out + 2, r->conv);
    frame_wr32(out + 6, r->by);
    frame_wr64(out + 10, r->upto);
    frame_wr64(out + 18, r->time_ms);
    return FRAME_RECEIPT_SIZE;
}

int frame_parse_typing(const uint8_t *body, uint32_t len, frame_typing *t) {
    if (len != FRAME_TYPING_SIZE) return FRAME_EBADBODY;
    t->flags = body[0];
    t->to = frame_rd32(body + 1);
    t->state = body[5];
    if ((t->flags & ~FRAME_MSG_GROUP) || t->to == 0 || t->state > 1)
        return FRAME_EBADBODY;
    return 0;
}

size_t frame_put_typing(uint8_t out[FRAME_TYPING_SIZE],
                        const frame_typing *t) {
    out[0] = t->flags;
    frame_wr32(out + 1, t->to);
    out[5] = t->state;
    return FRAME_TYPING_SIZE;
}

int frame_parse_posted(const uint8_t *body, uint32_t len, uint64_t *cid,
                       uint64_t *id) {
    if (len != FRAME_POSTED_SIZE || frame_rd64(body) == 0)
        return FRAME_EBADBODY;
    *cid = frame_rd64(body);
    *id = frame_rd64(body + 8);
    return 0;
}

size_t frame_put_posted(uint8_t out[FRAME_POSTED_SIZE], uint64_t cid,
                        uint64_t id) {
    frame_wr64(out, cid);
    frame_wr64(out + 8, id);
    return FRAME_POSTED_SIZE;
}

int frame_parse_presence_req(const uint8_t *body, uint32_t len, uint8_t *op,
                             uint16_t *count) {
    if (len < FRAME_PRESENCE_PRE) return FRAME_EBADBODY;
    uint16_t n = (uint16_t)(body[1] << 8 | body[2]);
    if ((body[0] != FRAME_PRES_SUBSCRIBE &&
         body[0] != FRAME_PRES_UNSUBSCRIBE) ||
        n == 0 || n > FRAME_PRESENCE_USERS_MAX ||
        len != FRAME_PRESENCE_PRE + 4u * n)
        return FRAME_EBADBODY;
    for (uint16_t i = 0; i < n; i++)
        if (frame_rd32(body + FRAME_PRESENCE_PRE + (size_t)4 * i) == 0)
            return FRAME_EBADBODY;
    *op = body[0];
    *count = n;
    return 0;
}

size_t frame_put_presence_req(uint8_t out[FRAME_PRESENCE_PRE], uint8_t op,
                              uint16_t count) {
    out[0] = op;
    out[1] = (uint8_t)(count >> 8);
    out[2] = (uint8_t)count;
    return FRAME_PRESENCE_PRE;
}

int frame_parse_presence(const uint8_t *body, uint32_t len,
                         frame_presence *p) {
    if (len != FRAME_PRESENCE_SIZE) return FRAME_EBADBODY;
    p->user = frame_rd32(body);
    p->state = body[4];
    p->last_seen_ms = frame_rd64(body + 5);
    if (p->user == 0 || p->state > 1) return FRAME_EBADBODY;
    return 0;
}

size_t frame_put_presence(uint8_t out[FRAME_PRESENCE_SIZE],
                          const frame_presence *p) {
    frame_wr32(out, p->user);
    out[4] = p->state;
    frame_wr64(out + 5, p->last_seen_ms);
    return FRAME_PRESENCE_SIZE;
}
