/*
 * bws.h -- chat-bench's WebSocket client (RFC 6455): the opening handshake
 * and the framing, as pure functions over the caller's buffers (no I/O, no
 * allocation; OpenSSL only for SHA-1 and base64). bconn.c puts it between
 * the bytes (TCP, or TLS) and the protocol's decoder (wire.h): the chat
 * protocol (one chat frame per binary message), NATS and MQTT over their
 * servers' WebSocket listeners.
 *
 * Written here rather than taken from wslay (which the server also left,
 * src/server/framing_ws.h): wslay's client hands every payload byte
 * through its callbacks and masks it a byte at a time, while chat-bench
 * must cost less per message than the servers it measures. Here a client
 * frame is a header (bws_frame_head) and a payload masked word-at-a-time
 * (bws_mask, copying and masking in one pass); the server's frames are
 * stripped in place (bws_unframe) so that the protocol decoder reads a
 * plain byte stream, and the body of a large message can still be
 * discarded in the kernel (bws_data_left, bws_data_skipped).
 *
 * Fragmented messages are reassembled by concatenation: every protocol
 * spoken over it is a byte stream with its own framing (a chat frame
 * carries its length), so message boundaries need not be kept. Control
 * frames may come between fragments: a ping is kept to be answered
 * (bws_pong; when several arrive before the answer, the most recent one is
 * answered, as RFC 6455 5.5.3 allows), a close ends the stream.
 */
#ifndef CHAT_BENCH_BWS_H
#define CHAT_BENCH_BWS_H

#include <stddef.h>
#include <stdint.h>

#define BWS_KEY_LEN 24u          /* Sec-WebSocket-Key: base64 of 16 bytes */
#define BWS_ACCEPT_LEN 28u       /* Sec-WebSocket-Accept: base64 of a SHA-1 */
#define BWS_REQ_MAX 512u         /* the upgrade request; host, path and
                                    subprotocol longer than fits are refused */
#define BWS_RESP_MAX (16u << 10) /* the server's response head must fit */
#define BWS_HDR_MAX 14u          /* a client frame's header: 2 + 8 + 4 (mask) */
#define BWS_CTL_MAX 125u         /* a control frame's payload */
#define BWS_REASON_MAX 123u      /* a close frame's reason */

enum bws_op {
    BWS_CONT = 0x0,
    BWS_TEXT = 0x1,
    BWS_BINARY = 0x2,
    BWS_CLOSE = 0x8,
    BWS_PING = 0x9,
    BWS_PONG = 0xA
};

/* --- the opening handshake */

/* The request's key from 16 random bytes (key[BWS_KEY_LEN + 1]) and the
 * Sec-WebSocket-Accept the server must answer with (accept[BWS_ACCEPT_LEN
 * + 1]), both NUL-terminated. 0, or -1 when OpenSSL's SHA-1 failed. */
int bws_keys(const uint8_t nonce[16], char *key, char *accept);

/* The GET request upgrading to a WebSocket at `path` on `host` (the Host
 * header: "127.0.0.1:8888"), offering subprotocol `proto` (NULL: none)
 * and no extension. Its length (< BWS_REQ_MAX), or 0 when it would not fit. */
size_t bws_request(char out[BWS_REQ_MAX], const char *host, const char *path,
                   const char *proto, const char *key);

/* Check the server's response at d[0..n): the length of its head (through
 * the empty line; the frames follow) when it is "101" with Upgrade:
 * websocket, Connection: Upgrade, the expected Sec-WebSocket-Accept, the
 * subprotocol offered (or none when none was) and no extension; 0 while
 * the head is incomplete (and n < BWS_RESP_MAX); -1 otherwise, with one
 * sentence in err (the status line when it is not 101). */
long bws_response(const uint8_t *d, size_t n, const char *accept, const char *proto,
                  char *err, size_t errlen);

/* --- client -> server frames */

/* The header of a final frame with opcode `op` and a payload of len bytes,
 * masked with `key` (the mask's 4 bytes as they are in memory): 6, 8 or 14
 * bytes (payload up to 125, up to 65535, longer). */
size_t bws_frame_head(uint8_t out[BWS_HDR_MAX], enum bws_op op, uint64_t len, uint32_t key);

/* dst[i] = src[i] ^ mask byte (off + i) % 4, for i < n: masks (or unmasks)
 * bytes that start `off` bytes into a frame's payload. dst == src masks in
 * place; otherwise the two must not overlap. Eight bytes at a time. */
void bws_mask(uint8_t *dst, const uint8_t *src, size_t n, uint32_t key, uint64_t off);

/* --- server -> client frames */

/* The receiving state of one connection; zero it before the first frame.
 * Invariants: hlen < the header's full size while a header is incomplete
 * (left == 0 then); `left` counts the current frame's payload still to come
 * (data or control); clen <= BWS_CTL_MAX. */
typedef struct bws_rx {
    uint64_t left;      /* payload bytes of the current frame still to come */
    uint8_t op;         /* the current frame's opcode */
    uint8_t fin;        /* the current frame ends its message */
    uint8_t frag;       /* a fragmented data message is open: continuations come */
    uint8_t hlen;       /* bytes of an incomplete header in hdr */
    uint8_t hdr[BWS_HDR_MAX];
    uint8_t clen;       /* the current control frame's payload so far */
    uint8_t ctl[BWS_CTL_MAX];
    uint8_t ping_due;   /* a ping is to be answered (bws_pong) */
    uint8_t ping_len;
    uint8_t ping[BWS_CTL_MAX];
    uint8_t closed;     /* the server sent a close frame; nothing follows */
    uint16_t close_code; /* its status code, 1005 when it had none */
    char reason[BWS_REASON_MAX + 1]; /* its reason, NUL-terminated */
    const char *err;    /* why bws_unframe returned -1 */
} bws_rx;

/* Strip the framing from the server's bytes d[0..n), in place: the payload
 * bytes of data frames (text, binary and their continuations) are moved to
 * d[0..r) in order and r returned; control frames are taken out (a ping
 * sets ping_due, a close sets `closed` and ends the call: what follows it
 * is not looked at). -1 when the bytes break RFC 6455 for a client (a
 * masked frame, reserved bits or opcodes, a control frame fragmented or
 * over 125 bytes, a continuation without a message or a message inside
 * another, a length over 2^63): rx->err says which. O(n). */
long bws_unframe(bws_rx *rx, uint8_t *d, size_t n);

/* Data payload bytes that come next in the stream before any framing:
 * a reader may discard up to that many without looking at them, then
 * calls bws_data_skipped with the count. */
uint64_t bws_data_left(const bws_rx *rx);
void bws_data_skipped(bws_rx *rx, uint64_t k);

/* The pong answering rx's due ping, masked with key, into out; clears
 * ping_due. Its length (6 + the ping's payload). */
size_t bws_pong(bws_rx *rx, uint8_t out[BWS_HDR_MAX + BWS_CTL_MAX], uint32_t key);

#endif
