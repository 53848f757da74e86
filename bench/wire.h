/*
 * wire.h -- the framing chat-bench speaks to each server: the chat protocol
 * (docs/PROTOCOL.md), Redis pub/sub (RESP2), NATS (text protocol) and MQTT
 * 3.1.1 at QoS 0. The scenario loop in chat-bench.c is the same for all; only
 * these functions differ.
 *
 * Pure functions over the caller's buffers: no I/O, no allocation. Encoders
 * write into `out` and return the bytes written; decoders look at the start
 * of the server's bytes and return the bytes consumed (> 0, filling *ev), 0
 * while the unit is incomplete, or -1 when the bytes are not the protocol.
 * A message is decoded as its head only ("head parsed, N bytes follow"), so
 * that a reader never needs a message's body in memory (chat-bench skips
 * it after its first 12 bytes); every other unit is small and decoded whole.
 *
 * User i's inbox is channel / subject / topic "u<i>" (chat: user id i).
 * A message is published to the receiver's inbox; an echo is a publish to
 * one's own inbox.
 *
 * Redis: a RESP2 connection that has subscribed can only (P|S)SUBSCRIBE,
 * UNSUBSCRIBE, PING and QUIT, so each user has two connections: one that
 * SUBSCRIBEs to its inbox (WIRE_SUB) and one that PUBLISHes (WIRE_PUB).
 * The other protocols publish and receive on one connection.
 */
#ifndef CHAT_BENCH_WIRE_H
#define CHAT_BENCH_WIRE_H

#include <stddef.h>
#include <stdint.h>

typedef enum wire_proto { WIRE_CHAT, WIRE_REDIS, WIRE_NATS, WIRE_MQTT } wire_proto;

/* "chat", "redis", "nats", "mqtt" -> 0 and *p; -1 for anything else. */
int wire_proto_parse(const char *s, wire_proto *p);
const char *wire_proto_name(wire_proto p);

/* 1 when the protocol needs a second connection per user to publish. */
int wire_split_pubsub(wire_proto p);

enum wire_ev_kind {
    WEV_NONE,    /* consumed, nothing to do (INFO, +OK, CONNACK 0, ...) */
    WEV_MSG,     /* a message's head: len payload bytes, then `follow`
                    bytes in all (payload and trailer) come after it */
    WEV_READY,   /* the subscription (chat: the binding) is confirmed;
                    chat: count = what WELCOME granted, WIRE_ACKS and
                    WIRE_CONV (0 for the bind's echo) */
    WEV_ACK,     /* chat: server ACK, count */
    WEV_PUBLISHED, /* redis: PUBLISH reply, count = receivers reached */
    WEV_PING,    /* answer with wire_pong(body, len) */
    WEV_ERROR,   /* body/len: the server's words */
    WEV_GROUPS   /* chat: a GROUPS frame, body/len (wire_parse_groups) */
};

typedef struct wire_ev {
    enum wire_ev_kind kind;
    const uint8_t *body; /* points into the decoded bytes; NULL for WEV_MSG */
    size_t len;          /* body length (WEV_MSG: the payload's) */
    uint64_t follow;     /* WEV_MSG: bytes after the head that belong to the
                            message (payload + trailer); else 0 */
    uint64_t count;
} wire_ev;

/* Hello flags. */
#define WIRE_SUB  1u /* subscribe to the inbox (chat: bind to the id) */
#define WIRE_ACKS 2u /* chat only: HELLO asking for acknowledgements */
#define WIRE_HELLO 4u /* chat: bind with HELLO (as libchat does), not a data frame */
#define WIRE_CONV 8u  /* chat: HELLO with CONV as device WIRE_DEVICE (MSG, POST,
                         groups); a HELLO even without WIRE_HELLO */
#define WIRE_DEVICE "bench"

/* Largest hello / message head / tail / pong. */
#define WIRE_HELLO_MAX 256u
#define WIRE_HEAD_MAX 64u
#define WIRE_TAIL_MAX 2u
#define WIRE_PONG_MAX 96u

/* What a connection of user `id` sends right after connecting.
 * chat: with WIRE_ACKS, WIRE_HELLO or WIRE_CONV a HELLO (confirmed by
 *       WELCOME; with WIRE_CONV the body names the device), else a
 *       0-length text to itself, which binds the connection (confirmed by
 *       its echo);
 * redis: WIRE_SUB: SUBSCRIBE u<id>; otherwise nothing (0 bytes);
 * nats: CONNECT {"verbose":false,"pedantic":false}, SUB u<id> (with
 *       WIRE_SUB), PING (confirmed by PONG: the server handled the SUB);
 * mqtt: CONNECT (clean session, keepalive 0, client id "b<id>"), SUBSCRIBE
 *       u<id> QoS 0 (confirmed by SUBACK). */
size_t wire_hello(wire_proto p, uint8_t out[WIRE_HELLO_MAX], uint32_t id, unsigned flags);

/* The bytes before a payload of len bytes from user `from` to user `to`,
 * and those after it (redis, nats: CRLF). */
size_t wire_msg_head(wire_proto p, uint8_t out[WIRE_HEAD_MAX], uint32_t from,
                     uint32_t to, uint32_t len);
size_t wire_msg_tail(wire_proto p, uint8_t out[WIRE_TAIL_MAX]);

/* --- chat only: conversations and groups (docs/PROTOCOL.md, "Devices and
 * conversations", "Groups"); only on a connection whose WELCOME granted
 * CONV. */

#define WIRE_POST_HEAD 23u      /* POST: 13-byte header, kind, flags, cid */
#define WIRE_POST_GROUP 0x02u   /* POST flags: `to` is a group */
#define WIRE_GROUP_CREATE 1u    /* GROUP / GROUPS ops used here */
#define WIRE_GROUP_EVENT 8u
#define WIRE_GROUP_NAME_MAX 64u /* bytes of a group's name */
#define WIRE_GROUP_MEMBERS_MAX 65535u /* users one CREATE can list (u16) */

/* The head of a POST of a text of len payload bytes from user `from` to
 * `to` (a user, or with WIRE_POST_GROUP in flags a group), client id cid
 * (0: none): WIRE_POST_HEAD bytes, the payload follows. */
size_t wire_post_head(uint8_t out[WIRE_HEAD_MAX], uint32_t from, uint32_t to,
                      uint8_t flags, uint64_t cid, uint32_t len);

/* Bytes of a GROUP CREATE frame with a name of namelen bytes and count
 * users. */
size_t wire_group_create_size(size_t namelen, uint32_t count);
/* A GROUP CREATE frame from user `from`, request number req, named
 * name (NUL-terminated, 1 to WIRE_GROUP_NAME_MAX bytes) with the users
 * ids[0..count) (count <= WIRE_GROUP_MEMBERS_MAX), into out (at least
 * wire_group_create_size bytes). Returns the bytes written, 0 when the
 * name or the count is out of range. O(count). */
size_t wire_group_create(uint8_t *out, uint32_t from, uint32_t req, const char *name,
                         const uint32_t *ids, uint32_t count);

/* A GROUPS frame's body: what it answers (or EVENT) and the rest, which
 * depends on op (not decoded here). */
typedef struct wire_groups {
    uint8_t op;        /* the request's (1-7), or WIRE_GROUP_EVENT */
    uint32_t req;      /* the request's number, 0 for an event */
    uint32_t group;    /* the group (CREATE: the new one's id) */
    const uint8_t *rest; /* points into the body */
    size_t rest_len;
} wire_groups;
/* Parse a GROUPS body (WEV_GROUPS's body/len): 0, or -1 when it is shorter
 * than its fixed part or op is not 1-8. */
int wire_parse_groups(const uint8_t *body, size_t len, wire_groups *g);

/* chat: a client ACK from user `id`: the first `count` data frames the
 * server sent on this connection arrived. 0 bytes for other protocols. */
#define WIRE_ACK_MAX 21u
size_t wire_ack(wire_proto p, uint8_t out[WIRE_ACK_MAX], uint32_t id, uint64_t count);

/* The answer to a WEV_PING (chat: PONG from user `id` with the same body). */
size_t wire_pong(wire_proto p, uint8_t out[WIRE_PONG_MAX], uint32_t id,
                 const uint8_t *body, size_t len);

/* Decode one unit from the server at the start of d[0..n). For a message
 * (WEV_MSG) the return value counts its head only (chat: the 9-byte header,
 * a MSG's with its 22-byte prefix;
 * redis: up to the payload's "$N\r\n"; nats: the MSG line; mqtt: up to the
 * payload), ev->len is the payload's length and ev->follow the bytes that
 * follow the head up to the end of the message (payload, then CRLF for
 * redis and nats); the caller consumes those. Other units are returned
 * whole; one that is not complete within the first `n` bytes returns 0, so
 * a caller with a bounded buffer treats "0 with a full buffer" as an error.
 * O(head) for a message, O(unit) otherwise. */
long wire_decode(wire_proto p, const uint8_t *d, size_t n, wire_ev *ev);

#endif
