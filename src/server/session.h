/*
 * session.h -- what a connection's frames mean: the top of the stack.
 *
 * The framing layer (framing.h) hands the session each frame's header
 * before its body is awaited (session_sink.header: refusals happen there,
 * so a refused body is skipped as it arrives, never buffered) and then each
 * whole frame (session_sink.frame), which is dispatched: a data frame is
 * bound to its sender (the first), counted, and delivered (deliver.c) or
 * echoed (--echo); HELLO binds or starts a login (login.c); PING is
 * answered with PONG; ACK releases stored frames (sync.c).
 *
 * After every read the frames and bytes it brought are charged to the
 * connection's rate limits (ratelimit.h): over them, reading pauses (the
 * peer is told once, ERROR RATE); over them for --rate-grace, the
 * connection is closed.
 */
#ifndef CHAT_SERVER_SESSION_H
#define CHAT_SERVER_SESSION_H

#include <stddef.h>

#include "server/conn.h"
#include "server/framing.h"

/* The callbacks a framing layer calls, with ctx = the connection. */
extern const framing_sink session_sink;

/* A read of n bytes was handed to the framing layer: charge it, and join
 * the idle list if the peer speaks control frames. */
void session_after_read(conn *c, size_t n);

/* The rate-limit timer: refill a throttled connection; read again, wait,
 * or close it (over the limit for --rate-grace). */
void session_rate_poll(conn *c);

#endif
