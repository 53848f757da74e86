/*
 * framing_ws.h -- the WebSocket framing (RFC 6455): chat frames carried one
 * per binary WebSocket message, for browsers (docs/PROTOCOL.md, "WebSocket").
 *
 * The layer between a connection's bytes (TCP, or TLS plaintext) and the
 * article's framing (framing_raw.h), for connections that came in through
 * the HTTP listener and upgraded at GET /ws. A sans-I/O parser of the
 * client's frames (RFC 6455 5.2): each header is checked as its bytes
 * arrive (masked, no reserved bits, known opcode, lengths in their
 * shortest form, control frames whole and at most 125 bytes); payloads are
 * unmasked in place, eight bytes at a time, and the payload bytes of binary
 * messages (fragments joined) flow straight into the connection's
 * framing_raw as one byte stream, so a WebSocket frame costs no copy of its
 * own and a large picture is read into a block its receivers reference, as
 * over TCP; login pauses, header checks and body refusals work the same.
 * Each binary message must be exactly one client -> server chat frame: its
 * first 13 bytes say how long it must be, and a message that goes past
 * that, or ends before it, is refused. The server's frames go out through
 * the output queue in WebSocket mode (outq_set_mode: one binary frame per
 * chat frame, written by outq_frame); this layer's own (pong, close) are
 * appended whole with outq_raw.
 *
 * Not wslay (libwslay), which the design first named: measured with
 * chat-bench --ws, wslay_frame_recv was 33 % of the server's time with
 * small messages and 75 % with 64 KiB ones (it unmasks a byte at a time and
 * copies each message twice, into its 4 KiB read buffer and into a message
 * buffer), which left chat-server behind NATS on WebSocket media
 * (docs/BENCHMARKS.md).
 *
 * Closing codes sent (then the connection closes): 1003 for a text
 * message, 1009 for a message over --max-frame + 13 bytes, 1002 for a
 * protocol error or a message that is not exactly one chat frame, the
 * peer's own code echoed for its close, and framing_ws_close's for the
 * server's reasons.
 *
 * Memory: this struct (240 bytes); nothing is buffered here but a
 * frame header (14 bytes) and a control frame's payload (125); a partial
 * chat frame is framing_raw's (at most --max-frame + 13 bytes). Loop thread
 * only. Nothing here logs: the reason for a close is returned
 * (framing_ws_why) for the connection's log line.
 */
#ifndef CHAT_SERVER_FRAMING_WS_H
#define CHAT_SERVER_FRAMING_WS_H

#include <stddef.h>
#include <stdint.h>

#include "server/framing_raw.h"
#include "server/outq.h"

/* framing_ws_input results (besides 0 and FRAMING_ENOMEM). */
enum { FRAMING_WS_CLOSE = 1 }; /* a close was sent or received: close the
                                  connection once the output is flushed */

/* Close codes (RFC 6455 7.4.1) the server sends. */
enum {
    WS_NORMAL = 1000,
    WS_GOING_AWAY = 1001,
    WS_PROTOCOL_ERROR = 1002,
    WS_UNSUPPORTED = 1003,
    WS_POLICY = 1008,
    WS_TOO_BIG = 1009,
    WS_INTERNAL = 1011
};

typedef struct framing_ws framing_ws;

/* A new WebSocket layer over raw (the connection's article framing, which
 * receives the chat frames) and out (its output queue: a ping that comes
 * while more than max_out bytes wait in it closes with 1008, since a peer
 * that does not read its pongs would make them pile up; put in WebSocket
 * mode here: it must be empty). NULL when out of memory. */
framing_ws *framing_ws_new(framing_raw *raw, outq *out, uint32_t max_frame,
                           size_t max_out);

/* n bytes arrived at p (valid during the call only; unmasked in place).
 * Chat frames are handed up as they complete; control frames are answered
 * into the output queue. 0, FRAMING_WS_CLOSE (stop: close the connection
 * after flushing; every later call says it again) or FRAMING_ENOMEM. */
int framing_ws_input(framing_ws *w, uint8_t *p, size_t n);

/* Queue a close frame with code and reason (at most 123 bytes are sent)
 * unless one was sent already; nothing may be queued after it. 0, or -1
 * when out of memory. */
int framing_ws_close(framing_ws *w, uint16_t code, const char *reason);

/* 1 once a close frame was queued (by either side's doing): data frames
 * must no longer be appended. */
int framing_ws_close_sent(const framing_ws *w);

/* The close code received from the peer (0: none, or none yet). */
uint16_t framing_ws_code_received(const framing_ws *w);

/* Why the last FRAMING_WS_CLOSE happened, for a log line (static text). */
const char *framing_ws_why(const framing_ws *w);

void framing_ws_free(framing_ws *w);

#endif
