/*
 * btls.h -- chat-bench's TLS client: an OpenSSL session that does no I/O.
 *
 * Ciphertext from the server is lent to the session (btls_input) and
 * plaintext read out of it (btls_read); plaintext written to it (btls_write)
 * becomes ciphertext in the session's output buffer, which the caller sends
 * itself (btls_out, btls_out_consume). So a connection can encrypt all it
 * has to say in one loop iteration and send it with one system call, and
 * read everything the kernel has with one.
 *
 * The client offers TLS 1.3 only, with the one cipher suite and the one key
 * exchange group given to btls_ctx_new, and verifies the server's
 * certificate against a CA file and the host (an IP address or a name).
 * Errors are returned, never logged: a function that fails writes one
 * sentence into the caller's err buffer.
 */
#ifndef CHAT_BENCH_BTLS_H
#define CHAT_BENCH_BTLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct btls_ctx btls_ctx;
typedef struct btls btls;

/* A client context: trusts the PEM certificates in ca_file, offers only
 * `suite` (e.g. "TLS_AES_128_GCM_SHA256") and the group `group` (e.g.
 * "X25519"). NULL on failure (err says why). Freed with btls_ctx_free. */
btls_ctx *btls_ctx_new(const char *ca_file, const char *suite, const char *group,
                       char *err, size_t errlen);
void btls_ctx_free(btls_ctx *x);

/* A session for one connection to `host` (checked against the server's
 * certificate: an IPv4/IPv6 address or a DNS name). NULL when out of memory. */
btls *btls_new(btls_ctx *x, const char *host);
void btls_free(btls *t);

/* Lend the session n bytes of ciphertext from the server; they are read
 * by the next btls_handshake / btls_read calls, which copy what they keep.
 * Whatever was lent before and not read is forgotten. */
void btls_input(btls *t, const uint8_t *p, size_t n);
/* Lent bytes not read yet (0 after a btls_read that returned 0). */
size_t btls_input_left(const btls *t);

/* Advance the handshake: 1 done, 0 needs more input (its next flight may be
 * in the output buffer), -1 failed (err: e.g. the certificate's problem). */
int btls_handshake(btls *t, char *err, size_t errlen);

/* Decrypt into out[0..cap): the bytes (> 0), 0 when it needs more input,
 * -1 on an error or when the server closed the session (err says which). */
long btls_read(btls *t, uint8_t *out, size_t cap, char *err, size_t errlen);

/* Encrypt n bytes (records of up to 16 KiB) into the output buffer.
 * 0, or -1 (err). */
int btls_write(btls *t, const uint8_t *p, size_t n, char *err, size_t errlen);

/* Ciphertext waiting to be sent: *n bytes at the returned pointer (valid
 * until the next call on t); btls_out_consume(t, k) after k were sent. */
const uint8_t *btls_out(const btls *t, size_t *n);
void btls_out_consume(btls *t, size_t k);

/* What was negotiated, as "TLSv1.3/TLS_AES_128_GCM_SHA256/X25519"
 * (no spaces), into buf. */
void btls_describe(const btls *t, char *buf, size_t len);

#endif
