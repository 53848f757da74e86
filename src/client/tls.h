/*
 * tls.h -- libchat's TLS layer (internal; OpenSSL behind it).
 *
 * A chat__tls_ctx is made once per client by chat_new (trusted CAs, client
 * certificate, the name to verify); a chat__tls_conn is one TLS session on
 * one TCP connection, made for each connection attempt. The session talks
 * to memory BIOs, never to the socket: this module moves ciphertext between
 * them and the non-blocking socket itself, with recv/send(MSG_NOSIGNAL), so
 * that no write can raise SIGPIPE and every byte waiting to go out is
 * visible (chat__tls_want_write) to the caller's event loop.
 *
 * Invariants:
 * - The write BIO is emptied into `out` after every OpenSSL call, so
 *   "ciphertext waiting" == out.len > 0.
 * - The caller only hands over more plaintext (chat__tls_write) when `out`
 *   is empty, which bounds `out` to about one record plus handshake bytes.
 * - Certificate and name verification are always on.
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

typedef struct chat__tls_ctx chat__tls_ctx;
typedef struct chat__tls_conn chat__tls_conn;

/* Build the context from `o`: TLS 1.2 minimum, peer verification, the CA
 * file (or the system default paths), the client certificate and key. The
 * name verified is o->server_name, else `host`. Returns 0 with *out set
 * (owned by the caller, freed with chat__tls_ctx_free), CHAT_EINVAL
 * (cert_file without key_file or the reverse), CHAT_ETLSCONF (a file is
 * unusable; `msg` says which and why) or CHAT_ENOMEM. */
int chat__tls_ctx_new(chat__tls_ctx **out, const chat_tls_options *o,
                      const char *host, char *msg, size_t msg_len);
void chat__tls_ctx_free(chat__tls_ctx *x);

/* A new client session for one connection. 0, CHAT_ENOMEM or CHAT_ETLS
 * (err says why). Freed with chat__tls_conn_free (NULL accepted). */
int chat__tls_conn_new(chat__tls_ctx *x, chat__tls_conn **out, char *err,
                       size_t err_len);
void chat__tls_conn_free(chat__tls_conn *t);

/* Advance the handshake on socket fd without blocking: 1 done, 0 in
 * progress (wait for the socket), CHAT_ETLSVERIFY (err: "certificate verify
 * failed: <reason>"), CHAT_ETLS (err says why) or CHAT_ENOMEM. */
int chat__tls_handshake(chat__tls_conn *t, int fd, char *err, size_t err_len);

/* Encrypt n bytes (n <= 16384, one record) into the outgoing ciphertext.
 * Only after the handshake and while chat__tls_want_write() is 0. Returns 0,
 * CHAT_ETLS or CHAT_ENOMEM. Nothing reaches the socket until
 * chat__tls_send_out. */
int chat__tls_write(chat__tls_conn *t, const void *p, size_t n, char *err,
                    size_t err_len);

/* Send waiting ciphertext: 1 all sent, 0 the socket is full, CHAT_ECLOSED
 * (errno set). */
int chat__tls_send_out(chat__tls_conn *t, int fd);

/* Decrypt up to cap bytes into dst, reading ciphertext from fd as needed.
 * Returns the count (> 0), 0 when nothing more can be read now, or
 * CHAT_ECLOSED (end of stream, close_notify, socket error), CHAT_ETLS (bad
 * record or an alert; err says why), CHAT_ENOMEM. */
ssize_t chat__tls_read(chat__tls_conn *t, int fd, void *dst, size_t cap,
                       char *err, size_t err_len);

/* 1 when ciphertext waits for the socket. O(1). */
int chat__tls_want_write(const chat__tls_conn *t);

/* 1 when decrypted data waits to be read (poll will not report it). Whole
 * undecrypted records may also wait in the read BIO after a read stopped
 * early; the caller tracks that (it knows why it stopped). A partial
 * record never counts: waiting for the socket is right then. O(1). */
int chat__tls_pending(const chat__tls_conn *t);

/* Best effort orderly close: queue close_notify and try once to send the
 * rest of the ciphertext without blocking. Only after a completed
 * handshake and without a fatal error. */
void chat__tls_shutdown(chat__tls_conn *t, int fd);

#endif
