/*
 * tlsc.h -- the TLS client engine: OpenSSL in client mode between two
 * memory BIOs, with no socket, no event loop and no logging. The caller
 * moves the bytes:
 *
 *   socket --tlsc_feed--> [rbio] --SSL--> tlsc_read --> plaintext
 *   plaintext --tlsc_write--> SSL --> [wbio] --tlsc_take--> socket
 *
 * Its two users drive it differently: libchat (src/client/tls.c) with
 * recv/send on its own non-blocking socket, the server's Redis connection
 * (src/server/rconn_net.c) from libuv callbacks. Everything that does not
 * depend on the driving is here, once.
 *
 * Verification is always on: the certificate chain against the CA file (or
 * the system's CAs) and the name: the context's server name when set, else
 * the host of the session (a DNS name: also sent as SNI; an IP literal:
 * matched against the certificate's IP addresses). TLS 1.2 minimum.
 *
 * Sentences: `err` (any call that takes one; NULL or 0 bytes accepted) gets
 * an English phrase without a final period, meant to follow "TLS: ", e.g.
 * "certificate verify failed: unable to get local issuer certificate",
 * "handshake failed: wrong version number", "cannot load the CA file /x:
 * No such file or directory". libchat hands them to its programs
 * (chat_tls_error, chat_new's msg), so their wording is part of its API.
 *
 * OpenSSL's per-thread error queue is cleared before and after every call
 * that may fill it, so no stale error leaks into another session or into
 * the caller's own use of OpenSSL.
 *
 * Memory: a context holds one SSL_CTX (the CAs, the client certificate);
 * a session its SSL and the BIOs' contents: ciphertext fed and not yet
 * decrypted, and ciphertext made and not yet taken. Both users take after
 * every call that may make some and read after every feed, so neither grows
 * past a record or so plus handshake bytes.
 *
 * Names: tlsc_ ("TLS client"): libchat exports only chat_* (libchat.map,
 * the objcopy step of libchat.a), so these stay internal to it.
 */
#ifndef CHAT_COMMON_TLSC_H
#define CHAT_COMMON_TLSC_H

#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"

enum {
    TLSC_ENOMEM = -1,  /* out of memory */
    TLSC_EINVAL = -2,  /* tlsc_ctx_new: a certificate without its key, or
                          the reverse */
    TLSC_ECONF = -3,   /* tlsc_ctx_new: a file or setting is unusable */
    TLSC_EVERIFY = -4, /* the server's certificate chain or name failed
                          verification: the session is unusable */
    TLSC_EFATAL = -5,  /* any other protocol failure (a bad record, an
                          alert): the session is unusable */
    TLSC_ECLOSED = -6, /* tlsc_read: the server sent close_notify */
};

typedef struct tlsc_ctx tlsc_ctx;
typedef struct tlsc tlsc;

typedef struct tlsc_options {
    const char *ca_file;     /* PEM CAs; NULL: the system's default paths */
    const char *cert_file;   /* PEM client certificate (chain), or NULL */
    const char *key_file;    /* its key: both or neither */
    const char *server_name; /* the name every server's certificate must
                                carry; NULL or "": each session's host */
    int release_buffers;     /* 1: free a session's record buffers while it
                                is idle (SSL_MODE_RELEASE_BUFFERS), for
                                servers that hold many mostly idle ones */
} tlsc_options;

/* Build a context from `o` (its strings copied, its files read now).
 * Returns 0 with *out set (free with tlsc_ctx_free; NULL accepted),
 * TLSC_EINVAL, TLSC_ECONF (err names the file and the cause) or
 * TLSC_ENOMEM. On success err is emptied. */
int tlsc_ctx_new(tlsc_ctx **out, const tlsc_options *o, char *err,
                 size_t errlen);
void tlsc_ctx_free(tlsc_ctx *x);

/* A session for one connection to `host` (x must outlive it). 0 with *out
 * set, TLSC_EFATAL (err: the name cannot be set) or TLSC_ENOMEM. Free with
 * tlsc_free (NULL accepted). */
int tlsc_new(tlsc **out, tlsc_ctx *x, const char *host, char *err,
             size_t errlen);
void tlsc_free(tlsc *t);

/* Ciphertext from the socket (copied). 0 or TLSC_ENOMEM. */
int tlsc_feed(tlsc *t, const void *p, size_t n);

/* Advance the handshake with what was fed: 1 done, 0 more bytes are needed
 * (take what it made and send it first), TLSC_EVERIFY or TLSC_EFATAL (err
 * says why; take and send what it made: the alert that explains it). */
int tlsc_handshake(tlsc *t, char *err, size_t errlen);

/* Decrypt up to cap bytes into dst: > 0 bytes, 0 nothing until more is
 * fed, TLSC_ECLOSED, TLSC_EVERIFY or TLSC_EFATAL. Reading may make records
 * to send (a TLS 1.3 key update): take after it. */
ssize_t tlsc_read(tlsc *t, void *dst, size_t cap, char *err, size_t errlen);

/* Encrypt n plaintext bytes (after the handshake) into records waiting to
 * be taken. 0 or TLSC_EFATAL (out of memory included: err says). */
int tlsc_write(tlsc *t, const void *p, size_t n, char *err, size_t errlen);

/* Append every waiting ciphertext byte to out (capacity at most limit).
 * 0, or BUF_ENOMEM / BUF_ELIMIT with nothing lost (take again later). */
int tlsc_take(tlsc *t, buf *out, size_t limit);

/* 1 when decrypted bytes wait inside the session (after the handshake): a
 * read now returns them without a feed. A partial record never counts.
 * O(1). */
int tlsc_pending(const tlsc *t);

/* Queue close_notify (the server's is not awaited): 1 queued (take and
 * send it), 0 not (no completed handshake, or after a failure). */
int tlsc_close_notify(tlsc *t);

#endif
