/*
 * rconn_tls.h -- the TLS client engine of rconn (a connection to Redis):
 * OpenSSL over two memory BIOs, no I/O. rconn moves the bytes:
 *
 *   socket --rconn_tls_feed--> [rbio] --SSL--> rconn_tls_read --> reader
 *   commands --rconn_tls_write--> SSL --> [wbio] --rconn_tls_take--> socket
 *
 * Verification is always on: the certificate chain against the CA file (or
 * the system's CAs) and the name: the context's server name when set, else
 * the host of the attempt (a DNS name: also sent as SNI; an IP literal:
 * matched against the certificate's IP addresses). TLS 1.2 minimum.
 *
 * Codes: 0 / positive as documented per call, or RCONN_TLS_FATAL (the
 * session is unusable; `err` says why, e.g. "certificate verify failed:
 * unable to get local issuer certificate"), RCONN_TLS_CLOSED (the server
 * sent close_notify) or RCONN_TLS_ENOMEM. Every entry point clears the
 * thread's OpenSSL error queue before and after, so no stale error leaks
 * into another connection. Nothing is logged.
 *
 * Memory: a context holds one SSL_CTX (the CAs, the client certificate);
 * a session its SSL (about 9 KiB, record buffers released when idle) and
 * the BIOs' contents: ciphertext fed and not yet decrypted (the caller
 * reads after every feed, so at most one partial record stays) and
 * ciphertext made and not yet taken (the caller takes after every write).
 */
#ifndef CHAT_SERVER_RCONN_TLS_H
#define CHAT_SERVER_RCONN_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"

enum { RCONN_TLS_FATAL = -1, RCONN_TLS_CLOSED = -2, RCONN_TLS_ENOMEM = -3 };

typedef struct rconn_tls_ctx rconn_tls_ctx;
typedef struct rconn_tls rconn_tls;

/* A client context: CA file (NULL: the system's default paths), client
 * certificate and key (both or neither), the name to verify (NULL: each
 * session's host). Returns 0 with *out set (free with rconn_tls_ctx_free),
 * RCONN_TLS_FATAL with a sentence in err naming the file and the cause, or
 * RCONN_TLS_ENOMEM. */
int rconn_tls_ctx_new(rconn_tls_ctx **out, const char *ca_file,
                      const char *cert_file, const char *key_file,
                      const char *server_name, char *err, size_t errlen);
void rconn_tls_ctx_free(rconn_tls_ctx *x);

/* A session for one connection to `host` (x must outlive it). 0 with *out
 * set, RCONN_TLS_FATAL (err: the name cannot be set) or RCONN_TLS_ENOMEM.
 * Free with rconn_tls_free (NULL accepted). */
int rconn_tls_new(rconn_tls **out, rconn_tls_ctx *x, const char *host,
                  char *err, size_t errlen);
void rconn_tls_free(rconn_tls *t);

/* Ciphertext from the socket (copied). 0 or RCONN_TLS_ENOMEM. */
int rconn_tls_feed(rconn_tls *t, const void *p, size_t n);

/* Advance the handshake with what was fed: 1 done, 0 more bytes needed
 * (take what it made and send it), RCONN_TLS_FATAL (err says why). */
int rconn_tls_handshake(rconn_tls *t, char *err, size_t errlen);

/* Decrypt up to cap bytes into dst: > 0 bytes, 0 nothing until more is
 * fed, RCONN_TLS_CLOSED, RCONN_TLS_FATAL. Call after each feed until it
 * returns <= 0. */
ssize_t rconn_tls_read(rconn_tls *t, void *dst, size_t cap, char *err,
                       size_t errlen);

/* Encrypt n plaintext bytes (after the handshake) into records waiting to
 * be taken. 0 or RCONN_TLS_FATAL (out of memory included: err says). */
int rconn_tls_write(rconn_tls *t, const void *p, size_t n, char *err,
                    size_t errlen);

/* Append every waiting ciphertext byte to out (capacity at most limit).
 * 0, or BUF_ENOMEM / BUF_ELIMIT with nothing lost (retry later). */
int rconn_tls_take(rconn_tls *t, buf *out, size_t limit);

/* 1 when ciphertext waits to be taken. O(1). */
int rconn_tls_want_take(const rconn_tls *t);

#endif
