/*
 * signal.h -- the bodies of the signal frames (docs/PROTOCOL.md
 * "Receipts, typing and presence"): RECEIPT, TYPING and PRESENCE, sent
 * only on a connection whose WELCOME granted FRAME_FLAG_SIGNALS. Pure, as
 * frame.h: no I/O, no allocation; shared by chat-server and libchat.
 */
#ifndef CHAT_PROTO_SIGNAL_H
#define CHAT_PROTO_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

/* RECEIPT, FRAME_RECEIPT_SIZE bytes, both directions:
 *   0 what u8 | 1 flags u8 (FRAME_MSG_GROUP) | 2 conv u32 | 6 by u32 |
 *   10 upto u64 | 18 time_ms u64
 * "user `by` has (DELIVERED: received on a device; READ: shown) every
 * message of conversation `conv` up to id `upto`". A client sends READ and
 * QUERY (by 0, time 0); the server sends DELIVERED, READ and, closing the
 * answer to a QUERY, END. */
#define FRAME_RECEIPT_SIZE 26u
enum frame_receipt_what {
    FRAME_RCPT_DELIVERED = 1,
    FRAME_RCPT_READ = 2,
    FRAME_RCPT_QUERY = 3, /* c->s: the marks of `conv`, now */
    FRAME_RCPT_END = 4    /* s->c: the last frame of a QUERY's answer */
};
typedef struct frame_receipt {
    uint8_t what, flags;
    uint32_t conv, by;
    uint64_t upto;
    uint64_t time_ms;
} frame_receipt;
/* 0, or FRAME_EBADBODY: another size, `what` outside 1-4, flags other than
 * 0 or FRAME_MSG_GROUP, conv 0. O(1). */
int frame_parse_receipt(const uint8_t *body, uint32_t len, frame_receipt *r);
/* Returns FRAME_RECEIPT_SIZE. O(1). */
size_t frame_put_receipt(uint8_t out[FRAME_RECEIPT_SIZE],
                         const frame_receipt *r);

/* TYPING, FRAME_TYPING_SIZE bytes, both directions:
 *   0 flags u8 (FRAME_MSG_GROUP) | 1 to u32 | 5 state u8 (0 stopped,
 *   1 typing)
 * The typist is the header's sender; `to` the user written to, or the
 * group. */
#define FRAME_TYPING_SIZE 6u
typedef struct frame_typing {
    uint8_t flags;
    uint32_t to;
    uint8_t state;
} frame_typing;
/* 0, or FRAME_EBADBODY: another size, flags other than 0 or
 * FRAME_MSG_GROUP, to 0, state over 1. O(1). */
int frame_parse_typing(const uint8_t *body, uint32_t len, frame_typing *t);
size_t frame_put_typing(uint8_t out[FRAME_TYPING_SIZE], const frame_typing *t);

/* POSTED, server -> client, FRAME_POSTED_SIZE bytes:
 *   0 cid u64 (non-zero) | 8 id u64
 * "the POST with client id `cid` is message `id`". */
#define FRAME_POSTED_SIZE 16u
/* 0, or FRAME_EBADBODY: another size, cid 0. O(1). */
int frame_parse_posted(const uint8_t *body, uint32_t len, uint64_t *cid,
                       uint64_t *id);
size_t frame_put_posted(uint8_t out[FRAME_POSTED_SIZE], uint64_t cid,
                        uint64_t id);

/* PRESENCE, client -> server: 0 op u8 (1 SUBSCRIBE, 2 UNSUBSCRIBE) |
 * 1 count u16 (1 to FRAME_PRESENCE_USERS_MAX) | 3 count user ids u32. */
enum frame_presence_op { FRAME_PRES_SUBSCRIBE = 1, FRAME_PRES_UNSUBSCRIBE = 2 };
#define FRAME_PRESENCE_PRE 3u
#define FRAME_PRESENCE_USERS_MAX 256u
/* 0 with *op, *count, or FRAME_EBADBODY (an unknown op, count 0 or over
 * the maximum, a length other than 3 + 4 * count, a user id 0). O(count).
 * The ids are frame_rd32(body + 3 + 4 * i). */
int frame_parse_presence_req(const uint8_t *body, uint32_t len, uint8_t *op,
                             uint16_t *count);
/* Write the fixed part (the caller writes the ids after it). Returns
 * FRAME_PRESENCE_PRE. */
size_t frame_put_presence_req(uint8_t out[FRAME_PRESENCE_PRE], uint8_t op,
                              uint16_t count);

/* PRESENCE, server -> client, FRAME_PRESENCE_SIZE bytes:
 *   0 user u32 | 4 state u8 (0 offline, 1 online) | 5 last_seen u64 (unix
 *   ms of its last connection's end; 0 when not known) */
#define FRAME_PRESENCE_SIZE 13u
enum frame_presence_state { FRAME_PRES_OFFLINE = 0, FRAME_PRES_ONLINE = 1 };
typedef struct frame_presence {
    uint32_t user;
    uint8_t state;
    uint64_t last_seen_ms;
} frame_presence;
/* 0, or FRAME_EBADBODY: another size, user 0, state over 1. O(1). */
int frame_parse_presence(const uint8_t *body, uint32_t len, frame_presence *p);
size_t frame_put_presence(uint8_t out[FRAME_PRESENCE_SIZE],
                          const frame_presence *p);

#endif
