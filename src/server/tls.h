/*
 * tls.h -- the server's TLS engine: OpenSSL without I/O.
 *
 * The connection keeps doing all socket I/O (libuv reads, the once-per-
 * iteration batched write); this module only turns ciphertext into
 * plaintext and back:
 *
 *   socket bytes --tls_conn_feed--> [in] --SSL--> tls_conn_read --> app
 *   app --tls_conn_write--> SSL --> [out] --tls_conn_take(_buf)--> socket
 *
 * No function here does I/O, blocks, logs or touches global state; each
 * reports to its caller. One tls_server (an SSL_CTX) is made at start-up;
 * one tls_conn (an SSL) per accepted connection, used from one thread.
 *
 * Codes (negative, named by tls_code_name):
 *   TLS_CLOSED  the peer sent close_notify: no more plaintext will come
 *   TLS_FATAL   handshake or record error (tls_conn_reason says which); the
 *               connection is unusable: send what tls_conn_pending holds
 *               (an alert, when OpenSSL made one), then close the socket
 *   TLS_AGAIN   tls_conn_write before the handshake completed: keep the
 *               plaintext and write it once tls_conn_handshake_done()
 *   TLS_ENOMEM  out of memory
 *
 * Errors: every entry point clears the thread's OpenSSL error queue before
 * it calls OpenSSL, and after a failure reads the reason into the tls_conn
 * and clears the queue again, so one connection's error never shows up in
 * another's.
 *
 * Threads: a tls_server may be shared by several loop threads (OpenSSL 3
 * locks what it shares); a tls_conn is used by one thread at a time.
 *
 * Memory (test_memory in tests/unit/test_tls.c counts OpenSSL's allocations;
 * OpenSSL 3.0, TLS 1.3, X25519, AES-GCM, P-256 certificates):
 *   a new tls_conn                          ~8.6 KiB (the SSL object: 7.4)
 *   idle after its handshake                ~13.9 KiB (+ session, two AEAD
 *   (after tls_conn_shrink)                 contexts, transcript hash, keys)
 *   idle after 1 MiB each way               the same: nothing is kept
 *   idle with a verified client certificate ~21.7 KiB (the certificate is
 *                                           kept in the session)
 * OpenSSL's record buffers (~32 KiB in all) stay while the connection is
 * busy, as a plaintext connection's buffers do (SSL_MODE_RELEASE_BUFFERS,
 * which freed and reallocated them on every read and write, cost about
 * 2.5 % of the server's CPU on 64-byte messages, perf); tls_conn_shrink
 * frees them (SSL_free_buffers) when they hold nothing and the connection
 * neither read nor wrote since the previous tls_conn_shrink. This module's `in`
 * buffer is freed whenever it is empty; `out` trades places with the caller's buffer
 * in tls_conn_take_buf (no allocation per flush) and is freed by
 * tls_conn_shrink too, which the server's cron calls once a second, so
 * traffic costs memory only while it is in flight or for a second after:
 *  - in: ciphertext fed and not yet pulled by OpenSSL. OpenSSL pulls all of
 *    it when tls_conn_read is called until it returns <= 0 (then its record
 *    buffer holds at most one partial record, <= 16 KiB + 256), so a caller
 *    that does that after every feed keeps it at 0 between reads. Bytes fed
 *    after TLS_FATAL or TLS_CLOSED are dropped.
 *  - out: ciphertext not yet taken: about the plaintext written since the
 *    last take plus 22-29 bytes per 16 KiB record, plus handshake flights
 *    (a few KiB, more with a long certificate chain) and alerts.
 * Neither has a limit of its own: both are bounded by what the caller feeds
 * and writes between two calls that drain them. During the handshake
 * OpenSSL also buffers one handshake message at a time (a ClientHello:
 * <= 16 KiB; a client certificate chain: <= 100 KiB, OpenSSL's
 * max_cert_list default).
 */
#ifndef CHAT_SERVER_TLS_H
#define CHAT_SERVER_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum { TLS_CLOSED = -1, TLS_FATAL = -2, TLS_AGAIN = -3, TLS_ENOMEM = -4 };

/* A static name for a code above ("closed", "fatal", ...; "ok" for 0). */
const char *tls_code_name(int code);

/* ---- the server context -------------------------------------------------- */

typedef struct tls_server tls_server;

/* Load the server's identity and policy once at start-up. O(size of the
 * files); the process-wide cost is one SSL_CTX (a few KiB plus the
 * certificates).
 *
 * cert_file: PEM, the server certificate first, then its chain (optional).
 * key_file: PEM private key, unencrypted (an encrypted key is refused rather
 *   than prompting on a terminal).
 * ca_file: NULL, or PEM CAs: then every client must present a certificate
 *   signed by one of them (SSL_VERIFY_PEER | FAIL_IF_NO_PEER_CERT); their
 *   names are sent to clients as the acceptable issuers.
 *
 * Policy: TLS 1.2 minimum; TLS 1.2 suites ECDHE with AES-GCM or ChaCha20
 * only (forward secrecy, AEAD), server preference; no compression; no
 * renegotiation; stateless session tickets only (no server-side session
 * cache: memory does not grow with the number of clients ever seen).
 *
 * Returns the context, or NULL with one sentence naming the flag and file
 * in err (e.g. "cannot read --tls-key /x/k.pem: No such file or directory",
 * "--tls-key /x/k.pem does not match the certificate in --tls-cert /x/c.pem").
 * Free with tls_server_free after every tls_conn made from it. */
tls_server *tls_server_new(const char *cert_file, const char *key_file,
                           const char *ca_file, char *err, size_t errlen);
void tls_server_free(tls_server *s);

/* Load the identity (and client CAs) again, e.g. a renewed certificate:
 * connections accepted from now on get it, open ones keep theirs. 0, or -1
 * with err and s unchanged (a bad new file keeps the old identity). */
int tls_server_reload(tls_server *s, const char *cert_file,
                      const char *key_file, const char *ca_file, char *err,
                      size_t errlen);

/* ---- one connection ------------------------------------------------------- */

typedef struct tls_conn tls_conn;

/* A server-side TLS session waiting for a ClientHello. NULL: out of memory.
 * `s` must outlive it. Free with tls_conn_free (no I/O: to say goodbye,
 * tls_conn_shutdown and send tls_conn_pending first). */
tls_conn *tls_conn_new(tls_server *s);
void tls_conn_free(tls_conn *t);

/* Ciphertext from the socket. Always takes all n bytes (copied: p may be
 * reused as soon as this returns, e.g. as the plaintext buffer of
 * tls_conn_read). O(n). Returns 0, or TLS_ENOMEM (nothing was taken; the
 * connection should be closed). */
int tls_conn_feed(tls_conn *t, const uint8_t *p, size_t n);

/* Ciphertext from the socket, lent instead of copied: OpenSSL reads it in
 * place (after what `in` holds) during the tls_conn_read calls that
 * follow, and tls_conn_settle then copies what it did not read (at most a
 * partial record) into `in`. p must stay valid and unchanged until
 * tls_conn_settle, so the plaintext must go elsewhere. One copy of every
 * byte fewer than tls_conn_feed. */
void tls_conn_lend(tls_conn *t, const uint8_t *p, size_t n);

/* End a lend: keep what was not read. 0, or TLS_ENOMEM (the connection
 * should be closed). */
int tls_conn_settle(tls_conn *t);

/* Plaintext for the application: drives the handshake, then decrypts. Call
 * it after each feed until it returns <= 0 (a record larger than cap is
 * handed out over several calls). Returns:
 *   > 0         bytes written into p (at most cap)
 *   0           nothing more until more ciphertext is fed (the handshake
 *               may have progressed: check tls_conn_pending, and
 *               tls_conn_handshake_done for plaintext held back)
 *   TLS_CLOSED  the peer sent close_notify (again on every later call)
 *   TLS_FATAL   see tls_conn_reason (again on every later call)
 * O(bytes fed): decryption, and one copy out of the record buffer. */
long tls_conn_read(tls_conn *t, uint8_t *p, size_t cap);

/* Plaintext from the application, encrypted whole into the outgoing
 * ciphertext (records of up to 16 KiB). The caller keeps p; nothing is
 * buffered here. O(n).
 * Returns 0, TLS_AGAIN (handshake not complete: nothing written, the
 * caller keeps the bytes and retries once tls_conn_handshake_done; the
 * server speaks only after its client has, so this is rare), or TLS_FATAL
 * (after an error or tls_conn_shutdown, or out of memory). */
int tls_conn_write(tls_conn *t, const uint8_t *p, size_t n);

/* Ciphertext waiting for the socket: handshake flights, alerts, records,
 * close_notify. O(1). */
size_t tls_conn_pending(const tls_conn *t);

/* Move up to cap pending bytes into dst. Returns the bytes moved. O(bytes);
 * the internal buffer is freed once empty. */
size_t tls_conn_take(tls_conn *t, uint8_t *dst, size_t cap);

/* Move every pending byte to the end of dst (whose capacity may grow to
 * `limit`, as buf_append). When dst is empty the two buffers are swapped
 * (O(1), no copy: dst is then ready for uv_write, and the engine writes its
 * next records into dst's old memory, so a busy connection allocates
 * nothing per flush), else O(n). Returns 0, or BUF_ELIMIT / BUF_ENOMEM with
 * nothing moved. */
int tls_conn_take_buf(tls_conn *t, buf *dst, size_t limit);

/* Free the outgoing buffer when it holds nothing (a swap may have left the
 * caller's old buffer there), and OpenSSL's record buffers when they hold
 * no partial record and tls_conn_read / tls_conn_write were not called
 * since the previous tls_conn_shrink: for the once-a-second cron. Returns the bytes
 * freed (OpenSSL's counted as 2 x 18 KiB, their usual size). */
size_t tls_conn_shrink(tls_conn *t);

/* 1 once the handshake completed (application data may flow), else 0. */
int tls_conn_handshake_done(const tls_conn *t);

/* Queue close_notify (once; nothing before the handshake completed or
 * after an error). Send tls_conn_pending, then shut the socket down. Later
 * writes return TLS_FATAL. */
void tls_conn_shutdown(tls_conn *t);

/* Why the connection failed, for a log line ("http request on TLS port",
 * "wrong version number", "unsupported protocol", "peer did not return a
 * certificate", "client certificate not trusted: unable to get local issuer
 * certificate", "tlsv1 alert unknown ca" (the client refused ours), ...),
 * or "" before any error. Valid until tls_conn_free. */
const char *tls_conn_reason(const tls_conn *t);

/* After the handshake on a server with a ca_file: the verified client
 * certificate's subject CN, control characters replaced by '?', else NULL.
 * Valid until tls_conn_free. */
const char *tls_conn_peer_cn(const tls_conn *t);

/* The negotiated protocol ("TLSv1.3", "TLSv1.2") for a log line, static. */
const char *tls_conn_version(const tls_conn *t);

#endif
