/*
 * frame.h -- the wire codec shared by chat-server and libchat.
 *
 * Pure functions over the caller's buffers: no I/O, no allocation, no
 * global state. Decoders follow the picohttpparser convention: they return
 * the number of bytes a complete frame occupies (> 0), FRAME_PARTIAL when
 * more bytes are needed, or another negative FRAME_E* code when the input
 * can never become a valid frame. Decoded bodies point into the caller's
 * buffer and are valid as long as that buffer is.
 *
 * Byte layouts (all integers big-endian), from the article:
 *
 *   client -> server (13-byte header, then `len` body bytes)
 *     0      4        8     9       13
 *     sender receiver type  len     body...
 *
 *   server -> client (9-byte header, then `len` body bytes)
 *     0      4     5       9
 *     sender type  len     body...
 *
 * Types 1-4 carry user data (text, picture, voice, video). Control frames
 * added by this project use codes >= 0x80 (docs/PROTOCOL.md); a client that
 * never sends one is never sent one.
 */
#ifndef CHAT_PROTO_FRAME_H
#define CHAT_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FRAME_C2S_HDR 13u  /* client -> server header size */
#define FRAME_S2C_HDR 9u   /* server -> client header size */

/* Largest body the protocol can express (the length field is a u32). */
#define FRAME_LEN_MAX UINT32_MAX

/* Frame types. */
enum frame_type {
    FRAME_TEXT    = 1,   /* UTF-8 text */
    FRAME_PICTURE = 2,
    FRAME_VOICE   = 3,
    FRAME_VIDEO   = 4,

    FRAME_HELLO   = 0x80, /* c->s: announce control frames, bind, log in */
    FRAME_WELCOME = 0x81, /* s->c: answer to HELLO */
    FRAME_ACK     = 0x82, /* both ways: cumulative acknowledgement */
    FRAME_ERROR   = 0x83, /* s->c: numeric code and a reason */
    FRAME_PING    = 0x84, /* both ways: keepalive probe */
    FRAME_PONG    = 0x85, /* both ways: answer to PING, echoes its body */
    FRAME_MSG     = 0x86, /* s->c (CONV): a message with its server id */
    FRAME_POST    = 0x87, /* c->s (CONV): a message with a client id */
    FRAME_GROUP   = 0x88, /* c->s (CONV): a group operation */
    FRAME_GROUPS  = 0x89, /* s->c (CONV): its answer, or a group event */
    FRAME_HISTORY = 0x8A, /* c->s (CONV): a page of a conversation's past */
    FRAME_HISTORY_PAGE = 0x8B, /* s->c (CONV): that page */
    FRAME_RECEIPT = 0x8C, /* both (SIGNALS): delivered/read marks */
    FRAME_TYPING  = 0x8D, /* both (SIGNALS): typing, passed through */
    FRAME_PRESENCE = 0x8E, /* both (SIGNALS): subscribe / a user's state */
    FRAME_POSTED  = 0x8F  /* s->c (SIGNALS): a POST's server id */
};

/* Decoder results (negative). */
enum {
    FRAME_PARTIAL = -1,  /* need more bytes; nothing is wrong yet */
    FRAME_ETOOBIG = -2   /* the header announces a body over the limit */
};

/* Error codes carried in an ERROR frame (u16 on the wire). */
enum frame_err {
    FRAME_ERR_TOOBIG    = 1,  /* frame over --max-frame; connection closed */
    FRAME_ERR_BADTYPE   = 2,  /* unknown frame type; frame skipped */
    FRAME_ERR_SPOOF     = 3,  /* sender differs from the bound user id */
    FRAME_ERR_PROTO     = 4,  /* malformed control frame */
    FRAME_ERR_AUTH      = 5,  /* wrong id or password */
    FRAME_ERR_NOLOGIN   = 6,  /* login required first */
    FRAME_ERR_QUOTA     = 7,  /* receiver's offline quota is full */
    FRAME_ERR_STORE     = 8,  /* the store failed (disk full, I/O) */
    FRAME_ERR_RATE      = 9,  /* rate limit exceeded */
    FRAME_ERR_BUSY      = 10, /* server full */
    FRAME_ERR_SHUTDOWN  = 11, /* server is shutting down */
    FRAME_ERR_BADRCPT   = 12, /* receiver id is invalid (0) */
    FRAME_ERR_SLOW      = 13, /* output queue over its bound; closed */
    FRAME_ERR_GROUP     = 14, /* a group operation or post refused */
    FRAME_ERR_DENIED    = 15, /* a presence subscription refused */
    FRAME_ERR_CODES           /* (how many codes, 0 unused) */
};

/* Protocol version announced in HELLO/WELCOME. */
#define FRAME_VERSION 1

/* HELLO / WELCOME flag bits. */
#define FRAME_FLAG_ACKS 0x01u  /* opt in to acknowledgements */
#define FRAME_FLAG_CONV 0x02u  /* devices: a device name in HELLO, MSG/POST */
#define FRAME_FLAG_SIGNALS 0x04u /* (with CONV) receipts, typing, presence */

/* Longest reason text the server puts in an ERROR frame. */
#define FRAME_REASON_MAX 200u
/* Longest PING/PONG body. */
#define FRAME_PING_MAX 64u

/* A decoded client -> server frame. `body` points into the input. */
typedef struct frame_c2s {
    uint32_t sender;
    uint32_t receiver;
    uint8_t type;
    uint32_t len;
    const uint8_t *body;
} frame_c2s;

/* A decoded server -> client frame. `body` points into the input. */
typedef struct frame_s2c {
    uint32_t sender;
    uint8_t type;
    uint32_t len;
    const uint8_t *body;
} frame_s2c;

/* Decode one client -> server frame at the start of buf[0..n).
 * Returns the frame's total size (header + body) when complete, filling *f;
 * FRAME_PARTIAL when more bytes are needed; FRAME_ETOOBIG as soon as the
 * header is complete and announces a body over max_body (the header fields
 * are still filled in, body NULL). O(1). */
static inline long frame_decode_c2s(const uint8_t *p, size_t n,
                                    uint32_t max_body, frame_c2s *f);

/* Same for server -> client frames. */
long frame_decode_s2c(const uint8_t *buf, size_t n, uint32_t max_body,
                      frame_s2c *f);

/* Total bytes (header + body) of the c2s frame starting at buf, once at
 * least its header is present; 0 while the header is incomplete. Used to
 * size an input buffer without decoding. */
uint64_t frame_c2s_total(const uint8_t *buf, size_t n);
uint64_t frame_s2c_total(const uint8_t *buf, size_t n);

/* Write a header into out (13 / 9 bytes). The body follows, written by the
 * caller. Returns the header size. */
size_t frame_put_c2s_hdr(uint8_t out[FRAME_C2S_HDR], uint32_t sender,
                         uint32_t receiver, uint8_t type, uint32_t len);
static inline size_t frame_put_s2c_hdr(uint8_t out[FRAME_S2C_HDR],
                                       uint32_t sender, uint8_t type,
                                       uint32_t len);

/* 1 if type is a data type (1-4), else 0. */
static inline int frame_is_data(uint8_t type) {
    return type >= FRAME_TEXT && type <= FRAME_VIDEO;
}
/* 1 if type is a control type this version knows (HELLO .. HISTORY_PAGE),
 * else 0.
 * MSG and POST carry messages but are control types: only a connection
 * whose WELCOME granted CONV sends or receives them. */
static inline int frame_is_control(uint8_t type) {
    return type >= FRAME_HELLO && type <= FRAME_HISTORY_PAGE;
}
/* "text", "picture", "voice", "video", or NULL for other types. */
const char *frame_type_name(uint8_t type);
/* A short English name for an ERROR code, "unknown error" otherwise. */
const char *frame_err_name(unsigned code);

/* Control frame bodies. Encoders return the body size written to out
 * (which must hold at least that many bytes, see the *_SIZE macros);
 * decoders return 0 or FRAME_ETOOBIG/-3 on a malformed body. */
#define FRAME_EBADBODY (-3)

/* HELLO body: version u8, flags u8, then, with FRAME_FLAG_CONV in flags, a
 * device name (length u8, 0-FRAME_DEVICE_MAX bytes of [A-Za-z0-9._-]; 0 =
 * the default device), then an optional password (the rest of the body).
 *
 *   without CONV: 0 version | 1 flags | 2 password...
 *   with CONV:    0 version | 1 flags | 2 n | 3 device (n bytes) | 3+n password...
 */
#define FRAME_HELLO_MIN 2u      /* version, flags */
#define FRAME_HELLO_CONV_MIN 3u /* version, flags, device length */
#define FRAME_DEVICE_MAX 32u    /* longest device name */
typedef struct frame_hello {
    uint8_t version;
    uint8_t flags;
    const uint8_t *device;   /* CONV: points into the body, not NUL-terminated;
                                NULL when device_len is 0 or without CONV */
    uint8_t device_len;      /* 0 = the default device (always 0 without CONV) */
    const uint8_t *password; /* points into the body; NULL when absent */
    uint32_t password_len;
} frame_hello;
/* 0, or FRAME_EBADBODY: a body under FRAME_HELLO_MIN bytes; with CONV in
 * flags, a body without the length byte, a name over FRAME_DEVICE_MAX
 * bytes, a name longer than what is left of the body, or a byte outside
 * [A-Za-z0-9._-] in it. The version is not checked (the caller's). O(len of
 * the name). */
int frame_parse_hello(const uint8_t *body, uint32_t len, frame_hello *h);
/* Write a HELLO body; returns its size: FRAME_HELLO_MIN + password_len,
 * plus 1 + device_len with CONV in flags (without CONV the device is not
 * written and device/device_len are ignored). The caller checks the name
 * (frame_device_valid) and sizes `out`. O(device_len + password_len). */
size_t frame_put_hello(uint8_t *out, uint8_t version, uint8_t flags,
                       const uint8_t *device, uint8_t device_len,
                       const uint8_t *password, uint32_t password_len);
/* 1 when name[0..n) is a valid device name: n <= FRAME_DEVICE_MAX and every
 * byte in [A-Za-z0-9._-] (n = 0, the default device, is valid); else 0.
 * Pure, O(n). */
int frame_device_valid(const uint8_t *name, size_t n);

/* WELCOME body: version u8, flags u8, user id u32, max frame u32. */
#define FRAME_WELCOME_SIZE 10u
typedef struct frame_welcome {
    uint8_t version;
    uint8_t flags;
    uint32_t user;
    uint32_t max_frame;
} frame_welcome;
int frame_parse_welcome(const uint8_t *body, uint32_t len, frame_welcome *w);
size_t frame_put_welcome(uint8_t out[FRAME_WELCOME_SIZE],
                         const frame_welcome *w);

/* ACK body: a cumulative u64 counter. */
#define FRAME_ACK_SIZE 8u
int frame_parse_ack(const uint8_t *body, uint32_t len, uint64_t *count);
size_t frame_put_ack(uint8_t out[FRAME_ACK_SIZE], uint64_t count);

/* ERROR body: code u16, ref u64 (the sequence number of the data frame it
 * refers to, 0 for none), then a UTF-8 reason of up to FRAME_REASON_MAX. */
#define FRAME_ERROR_FIXED 10u
#define FRAME_ERROR_MAX (FRAME_ERROR_FIXED + FRAME_REASON_MAX)
typedef struct frame_error {
    uint16_t code;
    uint64_t ref;
    const uint8_t *reason; /* not NUL-terminated */
    uint32_t reason_len;
} frame_error;
int frame_parse_error(const uint8_t *body, uint32_t len, frame_error *e);
/* The reason is cut at FRAME_REASON_MAX bytes (on a UTF-8 boundary). */
size_t frame_put_error(uint8_t out[FRAME_ERROR_MAX], uint16_t code,
                       uint64_t ref, const char *reason);

/* MSG body (server -> client, CONV), 22 bytes then the payload:
 *
 *   0 id u64 | 8 kind u8 | 9 flags u8 | 10 to u32 | 14 time_ms u64 | 22 payload...
 *
 * The frame header's `sender` is the author. id: the message's server id;
 * kind: 1-4 (the data types); flags: FRAME_MSG_OWN when the author is the
 * receiving user on another device (other bits are 0 for now; decoders
 * keep them and readers ignore the ones they do not know, so a server may
 * add some); to: the receiver's user id; time_ms: when the server accepted
 * it, unix milliseconds. */
#define FRAME_MSG_PRE 22u
#define FRAME_MSG_OWN 0x01u
#define FRAME_MSG_GROUP 0x02u /* MSG and POST flags: `to` is a group id */
typedef struct frame_msg {
    uint64_t id;
    uint8_t kind, flags;
    uint32_t to;
    uint64_t time_ms;
    const uint8_t *payload; /* points into the body (decoder); not NUL-terminated */
    uint32_t payload_len;
} frame_msg;
/* 0, or FRAME_EBADBODY: under FRAME_MSG_PRE bytes, or a kind outside 1-4.
 * O(1). */
int frame_parse_msg(const uint8_t *body, uint32_t len, frame_msg *m);
/* Write the 22 bytes before the payload (m->payload and m->payload_len are
 * not used: the caller writes the payload after them, and the frame's len
 * is FRAME_MSG_PRE + payload length). Returns FRAME_MSG_PRE. O(1). */
size_t frame_put_msg(uint8_t out[FRAME_MSG_PRE], const frame_msg *m);

/* POST body (client -> server, CONV), 10 bytes then the payload:
 *
 *   0 kind u8 | 1 flags u8 | 2 cid u64 | 10 payload...
 *
 * The frame header's `receiver` is whom to write to. kind: 1-4; flags: 0
 * (every other value is reserved and malformed); cid: the client's id of
 * the message, 0 = none. */
#define FRAME_POST_PRE 10u
#define FRAME_GROUP_PRE 9u  /* GROUP, GROUPS: op u8, req u32, group u32 */
#define FRAME_HISTORY_SIZE 19u /* HISTORY: req, kind, peer, before, limit */
#define FRAME_HISTORY_MAX 200u /* messages per HISTORY page at most */
#define FRAME_PAGE_PRE 7u      /* HISTORY_PAGE: req u32, more u8, count u16 */
#define FRAME_PAGE_ENTRY 30u   /* an entry before its payload */
typedef struct frame_post {
    uint8_t kind, flags;
    uint64_t cid;
    const uint8_t *payload; /* points into the body (decoder); not NUL-terminated */
    uint32_t len;           /* payload length */
} frame_post;
/* 0, or FRAME_EBADBODY: under FRAME_POST_PRE bytes, a kind outside 1-4, or
 * flags other than 0 or FRAME_MSG_GROUP. O(1). */
int frame_parse_post(const uint8_t *body, uint32_t len, frame_post *p);
/* Write the 10 bytes before the payload (p->payload and p->len are not
 * used; the frame's len is FRAME_POST_PRE + payload length). Returns
 * FRAME_POST_PRE. O(1). */
size_t frame_put_post_hdr(uint8_t out[FRAME_POST_PRE], const frame_post *p);

/* Big-endian helpers, exposed for the codec's users. */
/* One unaligned load or store and a byte swap (gcc and clang turn the
 * memcpy into a mov): a byte-at-a-time store was a tenth of the server's
 * instructions per routed frame. */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FRAME_BE32(v) (v)
#else
#define FRAME_BE32(v) __builtin_bswap32(v)
#endif
static inline uint32_t frame_rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return FRAME_BE32(v);
}
static inline void frame_wr32(uint8_t *p, uint32_t v) {
    v = FRAME_BE32(v);
    memcpy(p, &v, 4);
}
static inline uint64_t frame_rd64(const uint8_t *p) {
    return (uint64_t)frame_rd32(p) << 32 | frame_rd32(p + 4);
}
static inline void frame_wr64(uint8_t *p, uint64_t v) {
    frame_wr32(p, (uint32_t)(v >> 32)); frame_wr32(p + 4, (uint32_t)v);
}

/* The two that run once per routed frame, inline (declared above). */
static inline long frame_decode_c2s(const uint8_t *p, size_t n,
                                    uint32_t max_body, frame_c2s *f) {
    if (n < FRAME_C2S_HDR) return FRAME_PARTIAL;
    f->sender = frame_rd32(p);
    f->receiver = frame_rd32(p + 4);
    f->type = p[8];
    f->len = frame_rd32(p + 9);
    f->body = NULL;
    if (f->len > max_body) return FRAME_ETOOBIG;
    if (n - FRAME_C2S_HDR < f->len) return FRAME_PARTIAL;
    f->body = p + FRAME_C2S_HDR;
    return (long)(FRAME_C2S_HDR + (size_t)f->len);
}

static inline size_t frame_put_s2c_hdr(uint8_t out[FRAME_S2C_HDR],
                                       uint32_t sender, uint8_t type,
                                       uint32_t len) {
    frame_wr32(out, sender);
    out[4] = type;
    frame_wr32(out + 5, len);
    return FRAME_S2C_HDR;
}

/* ------------------------------------------------------------------ */
/* Groups (CONV): GROUP (client -> server) and GROUPS (server ->       */
/* client) bodies, docs/PROTOCOL.md "Groups". libchat encodes the      */
/* requests and decodes the answers with these; the server has its own */
/* (src/server/groupops.c).                                            */
/* ------------------------------------------------------------------ */

/* Both start with FRAME_GROUP_PRE bytes: op u8 | req u32 | group u32. */
enum frame_group_op {
    FRAME_GOP_CREATE = 1, FRAME_GOP_RENAME = 2, FRAME_GOP_ADD = 3,
    FRAME_GOP_REMOVE = 4, FRAME_GOP_LEAVE = 5, FRAME_GOP_LIST = 6,
    FRAME_GOP_MEMBERS = 7,
    FRAME_GOP_EVENT = 8 /* GROUPS only: a change, not an answer */
};
/* What an EVENT says happened. */
enum frame_group_what {
    FRAME_GEV_CREATED = 1, FRAME_GEV_RENAMED = 2, FRAME_GEV_ADDED = 3,
    FRAME_GEV_REMOVED = 4, FRAME_GEV_LEFT = 5
};
#define FRAME_GROUP_NAME_MAX 64u  /* a group's name: 1-64 bytes (UTF-8) */
#define FRAME_GROUP_ADMIN 0x01u   /* LIST and MEMBERS flags: an admin */
#define FRAME_GROUP_LIST_ENTRY 8u /* a LIST entry before its name */
#define FRAME_GROUP_MEMBER 5u     /* a MEMBERS entry: user u32, flags u8 */
#define FRAME_GROUP_EVENT_MIN 8u  /* what, by, count, name length */

/* Bytes of a GROUP body for `op` with a name of name_len bytes and n
 * users (the arguments an op does not take count 0). */
static inline size_t frame_group_size(uint8_t op, size_t name_len, size_t n) {
    size_t s = FRAME_GROUP_PRE;
    if (op == FRAME_GOP_CREATE || op == FRAME_GOP_RENAME) s += 1 + name_len;
    if (op == FRAME_GOP_CREATE || op == FRAME_GOP_ADD || op == FRAME_GOP_REMOVE)
        s += 2 + 4 * n;
    return s;
}

/* Write a GROUP body into out (frame_group_size(op, name_len, n) bytes):
 * the prefix, then what `op` takes: CREATE the name and the users, RENAME
 * the name, ADD and REMOVE the users, the others nothing (name and users
 * are then ignored). The caller checks the values (op 1-7, a name of 1-64
 * bytes). Returns the size. O(name_len + n). */
size_t frame_put_group(uint8_t *out, uint8_t op, uint32_t req, uint32_t group,
                       const uint8_t *name, uint8_t name_len,
                       const uint32_t *users, uint16_t n);

/* A GROUPS body's prefix and the rest (`args`, into the body). */
typedef struct frame_groups {
    uint8_t op;          /* 1-8 */
    uint32_t req, group;
    const uint8_t *args;
    uint32_t args_len;
} frame_groups;
/* 0, or FRAME_EBADBODY: under FRAME_GROUP_PRE bytes, an op outside 1-8,
 * an answer to CREATE, RENAME, ADD, REMOVE or LEAVE with bytes after the
 * prefix, an EVENT with a req other than 0. The arguments of LIST, MEMBERS
 * and EVENT are checked by their own parsers below. O(1). */
int frame_parse_groups(const uint8_t *body, uint32_t len, frame_groups *g);

/* A LIST answer's entry: a group of the asking user. */
typedef struct frame_group_info {
    uint32_t id;
    uint8_t flags;        /* FRAME_GROUP_ADMIN: the asking user is an admin */
    uint16_t members;     /* how many members it has */
    const uint8_t *name;  /* name_len bytes, into the body */
    uint8_t name_len;     /* 0-64 */
} frame_group_info;
/* Check a LIST answer's args (count u16, then count entries: id u32, flags
 * u8, members u16, name length u8, name), which must end exactly at the
 * last entry and hold names of at most FRAME_GROUP_NAME_MAX bytes. 0 with
 * *count set, or FRAME_EBADBODY. O(count). */
int frame_parse_group_list(const uint8_t *args, uint32_t len, uint16_t *count);
/* Read the LIST entry at args + *off into *e and move *off past it; start
 * with *off = 2. Only for args that frame_parse_group_list accepted, at
 * most `count` times. O(1). */
void frame_group_list_next(const uint8_t *args, uint32_t *off,
                           frame_group_info *e);

/* Check a MEMBERS answer's args: count u16, then count entries of user u32
 * and flags u8 (FRAME_GROUP_ADMIN), exactly. 0 with *count, or
 * FRAME_EBADBODY. O(1). */
int frame_parse_group_members(const uint8_t *args, uint32_t len,
                              uint16_t *count);
/* Entry i (< count) of checked MEMBERS args. O(1). */
static inline void frame_group_member(const uint8_t *args, uint16_t i,
                                      uint32_t *user, uint8_t *flags) {
    const uint8_t *p = args + 2 + (size_t)FRAME_GROUP_MEMBER * i;
    *user = frame_rd32(p);
    *flags = p[4];
}

/* An EVENT's args: what u8 (1-5), by u32, count u16, count user ids u32,
 * name length u8 (0-64), name; exactly. */
typedef struct frame_group_event {
    uint8_t what;
    uint32_t by;
    uint16_t count;
    const uint8_t *users; /* count big-endian u32 (frame_rd32), into the body */
    const uint8_t *name;  /* name_len bytes, into the body */
    uint8_t name_len;
} frame_group_event;
/* 0, or FRAME_EBADBODY (too short, a count or name past the end, bytes
 * after the name, `what` outside 1-5, a name over 64 bytes). O(1). */
int frame_parse_group_event(const uint8_t *args, uint32_t len,
                            frame_group_event *e);

/* ------------------------------------------------------------------ */
/* History (CONV): HISTORY (client -> server) and HISTORY_PAGE        */
/* (server -> client) bodies, docs/PROTOCOL.md "History". libchat's;  */
/* the server reads and writes them in src/server/history.c.          */
/* ------------------------------------------------------------------ */

/* HISTORY, FRAME_HISTORY_SIZE bytes:
 *   0 req u32 | 4 kind u8 | 5 peer u32 | 9 before u64 | 17 limit u16 */
enum frame_history_kind { FRAME_HISTORY_USER = 1, FRAME_HISTORY_GROUP = 2 };
/* Write a HISTORY body (the caller checks kind 1-2, peer != 0, limit 1 to
 * FRAME_HISTORY_MAX). Returns FRAME_HISTORY_SIZE. O(1). */
size_t frame_put_history(uint8_t out[FRAME_HISTORY_SIZE], uint32_t req,
                         uint8_t kind, uint32_t peer, uint64_t before,
                         uint16_t limit);

/* HISTORY_PAGE: 0 req u32 | 4 more u8 (0 or 1) | 5 count u16 | 7 count
 * entries, newest first, each FRAME_PAGE_ENTRY bytes then its payload:
 *   0 id u64 | 8 sender u32 | 12 kind u8 | 13 flags u8 (FRAME_MSG_OWN,
 *   FRAME_MSG_GROUP) | 14 to u32 | 18 time_ms u64 | 26 len u32 | 30 payload */
typedef struct frame_page {
    uint32_t req;
    uint8_t more;
    uint16_t count;
} frame_page;
typedef struct frame_page_entry {
    uint64_t id;
    uint32_t sender;
    uint8_t kind, flags;
    uint32_t to;
    uint64_t time_ms;
    const uint8_t *payload; /* len bytes, into the body */
    uint32_t len;
} frame_page_entry;
/* Check a whole page: 0 with *p, or FRAME_EBADBODY (under FRAME_PAGE_PRE
 * bytes, `more` other than 0 or 1, an entry or payload past the end, a
 * kind outside 1-4, bytes after the last entry). O(count). */
int frame_parse_page(const uint8_t *body, uint32_t len, frame_page *p);
/* Read the entry at body + *off into *e and move *off past it; start with
 * *off = FRAME_PAGE_PRE. Only for a body frame_parse_page accepted, at
 * most `count` times. O(1). */
void frame_page_next(const uint8_t *body, uint32_t *off, frame_page_entry *e);

#endif
