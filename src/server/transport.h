/*
 * transport.h -- the bottom layer of a connection: the bytes of one TCP
 * socket (libuv), nothing about what they mean.
 *
 * It reads when asked to (transport_read), into the buffer its owner's
 * alloc callback names, and hands up what it read; it writes a list of
 * buffers, first with uv_try_write (the common case: the kernel takes it
 * all, no request, no callback), then with one uv_write request for the
 * rest, which lives only while that write is in flight; it shuts the write
 * side down and closes. At most one write is in flight; the caller's
 * buffers must stay valid until `written` is called.
 *
 * States (t->state, changed only here):
 *   OPEN --transport_shutdown--> SHUT (FIN queued after the writes)
 *   OPEN|SHUT --transport_close--> CLOSING --libuv close callback--> CLOSED
 * Orthogonal: a write is in flight (t->wreq != NULL) or not; reading is on
 * or off (t->reading).
 *
 * Callbacks (transport_ops), always from libuv callbacks on the loop
 * thread, never inside the transport_* call that started the operation:
 *   alloc(t, buf)        where the next read lands
 *   read(t, n, buf)      n > 0 bytes arrived in buf; n < 0: UV_EOF or an
 *                        error (a UV_ENOBUFS from an empty alloc included)
 *   written(t, status)   the write in flight finished (status < 0: failed;
 *                        transport_close cancels it with UV_ECANCELED)
 *   shut(t, status)      the shutdown finished
 *   closed(t)            the handle is closed: t may be freed
 * Nothing here logs; errors are returned or passed to the callbacks.
 */
#ifndef CHAT_SERVER_TRANSPORT_H
#define CHAT_SERVER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct transport transport;

typedef struct transport_ops {
    void (*alloc)(transport *t, uv_buf_t *buf);
    void (*read)(transport *t, ssize_t n, const uv_buf_t *buf);
    void (*written)(transport *t, int status);
    void (*shut)(transport *t, int status);
    void (*closed)(transport *t);
} transport_ops;

typedef enum transport_state {
    TRANSPORT_OPEN,
    TRANSPORT_SHUT,
    TRANSPORT_CLOSING,
    TRANSPORT_CLOSED
} transport_state;

struct transport {
    uv_tcp_t tcp;               /* tcp.data == this */
    const transport_ops *ops;
    uv_write_t *wreq;           /* the write in flight, or NULL: allocated
                                   only when the kernel would not take all
                                   (an idle connection stays small) */
    uv_shutdown_t *sreq;        /* the shutdown in flight, or NULL */
    transport_state state;
    uint8_t reading;            /* uv_read_start is in effect */
};

/* Initialise the handle on loop (state OPEN, nothing in flight). 0 or a
 * libuv error (then nothing to close). */
int transport_init(transport *t, uv_loop_t *loop, const transport_ops *ops);

/* Accept a pending connection of listener into t. 0 or a libuv error. */
int transport_accept(transport *t, uv_stream_t *listener);

/* Set TCP_NODELAY and, when keepalive_s > 0, TCP keepalive probes. 0 or
 * the first libuv error. */
int transport_tune(transport *t, unsigned keepalive_s);

/* The peer's address into ss (len: its size). 0 or a libuv error. */
int transport_peer(transport *t, struct sockaddr_storage *ss);

/* Start (on = 1) or stop reading. Idempotent. 0 or a libuv error. */
int transport_read(transport *t, int on);

/* Write bufs[0..n) (n >= 1, bytes > 0). Returns 1 when the kernel took it
 * all now (no callback), 0 when the rest is in flight (`written` follows),
 * or a libuv error (nothing in flight). Requires !transport_writing(t).
 * bufs[] itself is not kept; what it points to is, until `written`. */
int transport_write(transport *t, const uv_buf_t *bufs, unsigned n);

static inline int transport_writing(const transport *t) { return t->wreq != NULL; }

/* Write what the kernel takes of b now, nothing later (no request). The
 * bytes written, or a libuv error. */
int transport_try(transport *t, const uv_buf_t *b);

/* Bytes of the write in flight that the kernel has not taken yet. */
static inline size_t transport_unsent(const transport *t) {
    return t->tcp.write_queue_size;
}

/* Shut the write side down once the write in flight is done (FIN). 0 or a
 * libuv error (then no `shut` callback). */
int transport_shutdown(transport *t);

/* Close (idempotent): a write in flight is cancelled, `closed` follows. */
void transport_close(transport *t);

#endif
