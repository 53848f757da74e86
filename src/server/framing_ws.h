/*
 * framing_ws.h -- the WebSocket framing (RFC 6455): chat frames carried one
 * per binary WebSocket message, for browsers (docs/PROTOCOL.md, "WebSocket").
 *
 * The layer between a connection's bytes (TCP, or TLS plaintext) and the
 * article's framing (framing_raw.h), for connections that came in through
 * the HTTP listener and upgraded at GET /ws. wslay (libwslay, sans-I/O)
 * parses the client's frames: it requires them masked, unmasks them,
 * reassembles fragmented messages up to --max-frame + 13 bytes, answers
 * pings, and answers a close with a close. Each whole binary message must
 * be exactly one client -> server chat frame (its 13-byte header's length
 * matches the message); it is handed to the connection's framing_raw,
 * which hands it to the session as for TCP (so a login pause, header
 * checks and body refusals work the same). The server's frames go out
 * through the output queue in WebSocket mode (outq_set_ws: one binary
 * frame per chat frame, written by outq_frame, never by wslay); wslay's
 * own frames (pong, close) are appended whole with outq_raw.
 *
 * Closing codes sent (then the connection closes): 1003 for a text
 * message, 1009 for a message over the bound (wslay), 1002 for a protocol
 * error (unmasked frame, bad opcode, reserved bits: wslay) or a message that
 * is not exactly one chat frame, the peer's own code echoed for its close
 * (wslay), and framing_ws_close's for the server's reasons.
 *
 * Memory: the wslay context (a few hundred bytes) plus the message being
 * reassembled (at most --max-frame + 13 bytes, freed when handed up) and
 * its queued control frames (pongs: at most one per ping read, sent at the
 * flush of the same read). Loop thread only. Nothing here logs: the reason
 * for a close is returned (framing_ws_why) for the connection's log line.
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
 * receives the chat frames) and out (its output queue, put in WebSocket
 * mode here: it must be empty). NULL when out of memory. */
framing_ws *framing_ws_new(framing_raw *raw, outq *out, uint32_t max_frame);

/* n bytes arrived at p (valid during the call only). Messages are handed
 * up as they complete; control frames are answered into the output queue.
 * 0, FRAMING_WS_CLOSE (stop: close the connection after flushing) or
 * FRAMING_ENOMEM. */
int framing_ws_input(framing_ws *w, const uint8_t *p, size_t n);

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
