/*
 * tls.h -- libchat's TLS layer (internal; OpenSSL behind it).
 *
 * A ctls_ctx is made once per client by chat_new (trusted CAs, client
 * certificate, the name to verify); a ctls_conn is one TLS session on
 * one TCP connection, made for each connection attempt. The TLS itself is
 * the shared engine (src/common/tlsc.h: OpenSSL over memory BIOs, no I/O);
 * this module drives it from the non-blocking socket, with
 * recv/send(MSG_NOSIGNAL), so that no write can raise SIGPIPE and every
 * byte waiting to go out is visible (ctls_want_write) to the caller's event
 * loop, and maps its codes to CHAT_E* ones.
 *
 * Invariants:
 * - The engine's ciphertext is taken into `out` after every engine call,
 *   so "ciphertext waiting" == out.len > 0.
 * - The caller only hands over more plaintext (ctls_write) when `out`
 *   is empty, which bounds `out` to about one record plus handshake bytes.
 * - Certificate and name verification are always on.
 *
 * Names: ctls_ ("client TLS"), not chat_: the library exports exactly the
 * chat_* symbols (libchat.map, the objcopy step of libchat.a), so internal
 * names must not start with chat_.
 *
 * Error convention: CHAT_E* codes; where a sentence helps, it is written to
 * the caller's `err` buffer (always NUL-terminated). Nothing is logged and
 * OpenSSL's per-thread error queue is cleared before each call that may
 * fill it, so no stale error leaks from or into the caller's own use.
 */
#ifndef CHAT_CLIENT_TLS_H
#define CHAT_CLIENT_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "chat.h"

typedef struct tlsc_ctx ctls_ctx; /* the engine's: libchat adds nothing */
typedef struct ctls_conn ctls_conn;

/* Build the context from `o`: TLS 1.2 minimum, peer verification, the CA
 * file (or the system default paths), the client certificate and key, and
 * o->server_name when set (the name every server's certificate must
 * carry). Returns 0 with *out set
 * (owned by the caller, freed with ctls_ctx_free), CHAT_EINVAL
 * (cert_file without key_file or the reverse), CHAT_ETLSCONF (a file is
 * unusable; `msg` says which and why) or CHAT_ENOMEM. */
int ctls_ctx_new(ctls_ctx **out, const chat_tls_options *o, char *msg,
                 size_t msg_len);
void ctls_ctx_free(ctls_ctx *x);

/* A new client session for one connection to `host` (the server this
 * attempt goes to): the certificate must carry the context's server_name,
 * or else `host` (a name: also sent as SNI; an IP literal: its address).
 * 0, CHAT_ENOMEM or CHAT_ETLS (err says why). Freed with ctls_conn_free
 * (NULL accepted). */
int ctls_conn_new(ctls_ctx *x, const char *host, ctls_conn **out, char *err,
                  size_t err_len);
void ctls_conn_free(ctls_conn *t);

/* Advance the handshake on socket fd without blocking: 1 done, 0 in
 * progress (wait for the socket), CHAT_ETLSVERIFY (err: "certificate verify
 * failed: <reason>"), CHAT_ETLS (err says why) or CHAT_ENOMEM. */
int ctls_handshake(ctls_conn *t, int fd, char *err, size_t err_len);

/* Encrypt n bytes (n <= 16384, one record) into the outgoing ciphertext.
 * Only after the handshake and while ctls_want_write() is 0. Returns 0,
 * CHAT_ETLS or CHAT_ENOMEM. Nothing reaches the socket until
 * ctls_send_out. */
int ctls_write(ctls_conn *t, const void *p, size_t n, char *err,
               size_t err_len);

/* Send waiting ciphertext: 1 all sent, 0 the socket is full, CHAT_ECLOSED
 * (errno set). */
int ctls_send_out(ctls_conn *t, int fd);

/* Decrypt up to cap bytes into dst, reading ciphertext from fd as needed.
 * Returns the count (> 0), 0 when nothing more can be read now, or
 * CHAT_ECLOSED (end of stream, close_notify, socket error), CHAT_ETLS (bad
 * record or an alert; err says why), CHAT_ENOMEM. */
ssize_t ctls_read(ctls_conn *t, int fd, void *dst, size_t cap,
                  char *err, size_t err_len);

/* 1 when ciphertext waits for the socket. O(1). */
int ctls_want_write(const ctls_conn *t);

/* 1 when decrypted data waits to be read (poll will not report it). Whole
 * undecrypted records may also wait in the read BIO after a read stopped
 * early; the caller tracks that (it knows why it stopped). A partial
 * record never counts: waiting for the socket is right then. O(1). */
int ctls_pending(const ctls_conn *t);

/* Best effort orderly close: queue close_notify and try once to send the
 * rest of the ciphertext without blocking. Only after a completed
 * handshake and without a fatal error. */
void ctls_shutdown(ctls_conn *t, int fd);

#endif
