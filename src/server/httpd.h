/*
 * httpd.h -- the HTTP/1.1 side of a connection of the HTTP listener
 * (--http-port, --https-port over TLS): requests parsed with
 * proto/http.h, answered into the connection's output queue (OUTQ_HTTP
 * mode), and the upgrade of GET /ws to a WebSocket connection
 * (framing_ws.h), which from then on is a chat connection like any other.
 *
 * Routes: GET|HEAD / (the web client's index.html), /NAME (its other files,
 * web_assets.h), /metrics (Prometheus text format 0.0.4, hub_ops.metrics),
 * /healthz (hub_ops.health: 200 or 503 with a one-line JSON body); GET /ws
 * (the upgrade, RFC 6455 4.2). Anything else: 404 (unknown path), 405
 * (method), 400 (malformed, or a bad upgrade), 403 (Origin not allowed),
 * 426 (not a WebSocket request at /ws, or not version 13), 413 (a request
 * with a body: none is taken), 414 / 431 (request line / header section
 * over HTTPD_HEAD_MAX), 505 (not HTTP/1.x). Errors close the connection
 * after the response; successes keep it open (HTTP/1.1 keep-alive, unless
 * the request says Connection: close or is HTTP/1.0 without keep-alive).
 * The --metrics-port listener (HTTPD_METRICS) has /metrics and /healthz
 * only: every other path is 404, /ws included.
 * Pipelined requests are answered in order.
 *
 * A client that sends requests while more than --max-outbuf bytes of
 * answers wait unread is closed (pipelining is answered, not hoarded).
 *
 * Time: a connection must send a whole request within --login-timeout of
 * its accept or of its previous response (it stays NEW, on the hub's
 * pending list, until it upgrades); one that does not is closed (408 when
 * it had sent part of one). Memory: the request being read, at most
 * HTTPD_HEAD_MAX bytes (conn.hin), freed once answered; responses in the
 * output queue (the largest is /metrics or the biggest web file).
 */
#ifndef CHAT_SERVER_HTTPD_H
#define CHAT_SERVER_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "server/conn.h"

/* Longest request line plus header section taken (8 KiB, what nginx and
 * Node.js allow by default in one buffer); longer: 414 or 431. */
#define HTTPD_HEAD_MAX ((size_t)8 << 10)

/* The WebSocket subprotocol of the chat (docs/PROTOCOL.md). */
#define HTTPD_WS_PROTOCOL "chat.v1"

/* What an HTTP listener serves (httpd_start, io_accept). */
enum {
    HTTPD_SITE = 1,    /* --http-port, --https-port: every route above */
    HTTPD_METRICS = 2  /* --metrics-port: GET|HEAD /metrics and /healthz;
                          any other path 404 (no web client, no /ws) */
};

/* Make c, just accepted on an HTTP listener serving `serves` (HTTPD_*),
 * an HTTP connection (nothing is allocated before its first bytes). */
void httpd_start(conn *c, int serves);

/* n bytes arrived at p (valid during the call only): answer the requests
 * they complete. May close c, or upgrade it to CONN_WS (the bytes after
 * the upgrade request go to the WebSocket layer). 0, FRAMING_WS_CLOSE (the
 * WebSocket layer's, for those bytes: close c) or FRAMING_ENOMEM (close
 * c). */
int httpd_input(conn *c, uint8_t *p, size_t n);

/* --login-timeout passed without a whole request: 408 when part of one
 * was sent, then close; a silent connection is just closed. */
void httpd_timeout(conn *c);

/* A response of status with a one-line text body, written at once if the
 * socket takes it (a refused connection at accept: plaintext only). */
void httpd_refuse(conn *c, int status, const char *why);

#endif
