/*
 * close.h -- closing a connection.
 *
 * Gracefully (close_finish): a last ERROR to a peer that speaks control
 * frames, input read and discarded, the output flushed (TLS: then
 * close_notify), the write side shut down (FIN), closed at the peer's EOF
 * or after CONN_LINGER_MS, whichever comes first. At once (close_abort):
 * the socket is closed now; the frames it was not sent and that have no
 * stored copy are handed to the store for the user (unless another device
 * of the user is live: it got them itself), so nothing is lost that the
 * server still held.
 *
 * Either may be called from any callback; neither frees the connection
 * (conn_unref does, once nothing names it).
 */
#ifndef CHAT_SERVER_CLOSE_H
#define CHAT_SERVER_CLOSE_H

#include "server/conn.h"

/* NEW..ECHO -> CLOSING, with ERROR code/reason first (code 0: none). */
void close_finish(conn *c, unsigned code, const char *reason);

/* any -> CLOSED, handing unsent frames to the store. */
void close_abort(conn *c);

/* CLOSING: the output is empty: close_notify (TLS), then FIN (SHUTDOWN). */
void close_drained(conn *c);

/* The FIN was sent (status 0) or could not be (status < 0). */
void close_shut_done(conn *c, int status);

/* The peer shut its side down (EOF) while CLOSING or SHUTDOWN. */
void close_eof(conn *c);

/* A request that asks for an answer (what: "PINGs", "HTTP requests")
 * came while more than --max-outbuf bytes of answers wait unread: log it
 * and close at once (answers never read would cost memory without bound);
 * 1. Else 0: answer it. */
int close_if_unread(conn *c, const char *what);

#endif
