/*
 * io.h -- a connection's stack assembled, and libuv's callbacks for it.
 *
 * io_accept builds a connection (transport, then TLS for the TLS
 * listeners, then HTTP for the HTTP listeners or the raw framing, then the
 * session) on an accepted socket;
 * the server admits it (io_start) or refuses it (io_refuse). From then on
 * bytes go up: transport -> (TLS engine) -> framing -> session, and frames
 * go down: session -> output queue -> (TLS) -> transport, once per loop
 * iteration (io_flush_all, from the server's check handle and after its
 * timers).
 */
#ifndef CHAT_SERVER_IO_H
#define CHAT_SERVER_IO_H

#include <stddef.h>
#include <uv.h>

#include "server/conn.h"
#include "server/tls.h"

/* Accept a pending connection of listener (tls: a TLS engine for it, or
 * NULL; http: what an HTTP listener serves, HTTPD_SITE or HTTPD_METRICS
 * (httpd.h), 0 for the chat listeners). Returns the connection
 * (NEW, its peer known, not reading yet, holding one reference for the
 * caller) or NULL with *err set. */
conn *io_accept(hub *h, uv_stream_t *listener, tls_server *tls, int http,
                int *err);

/* Admitted: start reading. */
void io_start(conn *c);

/* Refused at accept: ERROR code/why (HTTP: 403 or 503 and why) written if
 * the socket takes it now (plaintext only: a TLS client could not read it
 * before a handshake), then closed. */
void io_refuse(conn *c, unsigned code, const char *why);

/* Write c's output now (c was on the flush list), with what follows a
 * write: the next stored page (SYNC), the FIN (CLOSING), or the close (a
 * failed write or append). */
void io_flush(conn *c);

/* Parse the input kept during a login, then read again (c was on the
 * resume list). */
void io_resume(conn *c);

/* Work through the hub's resume and flush lists (once per iteration). */
void io_flush_all(hub *h);

/* Free c's empty buffers (the cron). Returns the bytes freed. */
size_t io_shrink(conn *c);

#endif
