/* bconn.c -- see bconn.h. */
#include "bconn.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#define RBUF_SIZE (64u << 10)   /* one read, plaintext */
#define CBUF_SIZE (256u << 10)  /* one read, ciphertext */
#define IOV_BATCH 256           /* iovecs per writev */
#define TLS_CHUNK (512u << 10)  /* plaintext encrypted before a send */
#define SKIP_MIN 4096u          /* bodies left over this are discarded in the kernel */
#define HEAD_READ 1024u         /* after a large message, read only this much: the
                                   next head and stamp; its body is then discarded */
#define READS_PER_EVENT 4       /* syscalls per readable event, at most */
#define PIPE_SIZE (1u << 20)    /* a connection's splice pipe (fs.pipe-max-size) */

uint64_t bconn_clock(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(bconn *c, const char *why) {
    if (c->state == BC_CLOSED) return;
    c->state = BC_CLOSED;
    (void)uv_poll_stop(&c->poll); /* always 0 for a poll handle */
    c->env->ops->on_fail(c, why);
}

static void fail_errno(bconn *c, const char *what, int e) {
    char m[160];
    snprintf(m, sizeof m, "%s: %s", what, strerror(e));
    fail(c, m);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void watch(bconn *c, int events) {
    if (c->events == events || c->state == BC_CLOSED) return;
    int r = uv_poll_start(&c->poll, events, on_poll);
    if (r) {
        char m[128];
        snprintf(m, sizeof m, "uv_poll_start: %s", uv_strerror(r));
        fail(c, m);
        return;
    }
    c->events = events;
}

void bconn_want_flush(bconn *c) {
    if (c->dirty) return;
    c->dirty = 1;
    c->next_dirty = c->env->dirty;
    c->env->dirty = c;
}

/* --- units (WebSocket: one masked binary message each) */

/* A fresh mask key: OpenSSL's random bytes, drawn BCONN_WS_KEYS at a time
 * (RFC 6455 5.3: from a strong source of entropy). 0 or -1. */
static int next_key(bconn_env *env, uint32_t *key) {
    if (!env->ws_nkeys) {
        if (RAND_bytes((unsigned char *)env->ws_keys, (int)sizeof env->ws_keys) != 1) return -1;
        env->ws_nkeys = BCONN_WS_KEYS;
    }
    *key = env->ws_keys[--env->ws_nkeys];
    return 0;
}

int bconn_unit(bconn *c, uint64_t len) {
    assert(c->ws_unit_left == 0); /* the previous unit was given whole */
    if (!c->ws) return 0;
    uint8_t h[BWS_HDR_MAX];
    uint32_t key;
    if (next_key(c->env, &key)) return -1;
    size_t hl = bws_frame_head(h, BWS_BINARY, len, key);
    if (outq_put(&c->q, h, hl)) return -1;
    c->ws_key = key;
    c->ws_off = 0;
    c->ws_unit_left = len;
    return 0;
}

/* len bytes of the unit, from src, masked into dst (which may be src). */
static void mask_given(bconn *c, uint8_t *dst, const uint8_t *src, size_t len) {
    assert(len <= c->ws_unit_left);
    bws_mask(dst, src, len, c->ws_key, c->ws_off);
    c->ws_off += len;
    c->ws_unit_left -= len;
}

uint8_t *bconn_reserve(bconn *c, size_t len) { return outq_reserve(&c->q, len); }

void bconn_commit(bconn *c, size_t len) {
    if (c->ws) { /* the reserved bytes: where outq_reserve put them */
        uint8_t *p = c->q.stage + c->q.slen;
        mask_given(c, p, p, len);
    }
    outq_commit(&c->q, len);
}

int bconn_put(bconn *c, const void *p, size_t len) {
    if (!c->ws) return outq_put(&c->q, p, len);
    uint8_t *d = outq_reserve(&c->q, len);
    if (!d) return -1;
    mask_given(c, d, p, len); /* copied and masked in one pass */
    outq_commit(&c->q, len);
    return 0;
}

int bconn_ref(bconn *c, const void *p, size_t len) {
    return c->ws ? bconn_put(c, p, len) : outq_ref(&c->q, p, len);
}

/* --- writing */

/* Plaintext: one writev of everything queued (several only past
 * IOV_BATCH segments). With env->splice_min, a payload of that size or more
 * is not copied into the socket: its pages are lent to a pipe (vmsplice)
 * and moved from there into the socket (splice), which on Linux attaches
 * them to the TCP segments; the receiver's read makes the only copy. The
 * payload never changes, so lending its pages is safe. 1 when all was
 * written, 0 when the socket is full (or the connection failed). */
static int write_plain(bconn *c) {
    struct iovec iov[IOV_BATCH];
    size_t big = c->env->splice_min;
    for (;;) {
        if (c->piped) { /* the pipe's bytes come first */
            ssize_t n = splice(c->pipe[0], NULL, c->fd, NULL, c->piped,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            c->env->syscalls++;
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return 0;
                fail_errno(c, "splice to the socket", errno);
                return 0;
            }
            c->piped -= (size_t)n;
            continue;
        }
        if (!c->q.bytes) return 1;
        size_t len;
        const uint8_t *p = big ? outq_big(&c->q, big, &len) : NULL;
        if (p) {
            if (c->pipe[0] < 0) {
                if (pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK)) {
                    fail_errno(c, "pipe", errno);
                    return 0;
                }
                /* a smaller pipe only means more splices */
                (void)fcntl(c->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
            }
            struct iovec v = {(void *)p, len};
            ssize_t n = vmsplice(c->pipe[1], &v, 1, SPLICE_F_NONBLOCK);
            c->env->syscalls++;
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                fail_errno(c, "vmsplice", n < 0 ? errno : EIO);
                return 0;
            }
            outq_consume(&c->q, (size_t)n);
            c->piped = (size_t)n;
            continue;
        }
        int k = outq_iov(&c->q, iov, IOV_BATCH, big);
        size_t want = 0;
        for (int i = 0; i < k; i++) want += iov[i].iov_len;
        ssize_t n = writev(c->fd, iov, k);
        c->env->syscalls++;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            fail_errno(c, "write", errno);
            return 0;
        }
        outq_consume(&c->q, (size_t)n);
        if ((size_t)n < want) return 0;
    }
}

/* Send the session's ciphertext: 1 when all of it went, 0 otherwise. */
static int send_cipher(bconn *c) {
    size_t n;
    const uint8_t *p = btls_out(c->tls, &n);
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        c->env->syscalls++;
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            fail_errno(c, "write", errno);
            return 0;
        }
        btls_out_consume(c->tls, (size_t)w);
        p = btls_out(c->tls, &n);
    }
    return 1;
}

/* TLS: encrypt what is queued (at most TLS_CHUNK at a time, so that the
 * ciphertext buffer stays bounded) and send it. */
static int write_tls(bconn *c) {
    struct iovec iov[IOV_BATCH];
    char err[256];
    for (;;) {
        if (!send_cipher(c)) return 0;
        if (!c->q.bytes || (c->state != BC_OPEN && c->state != BC_UPGRADE)) return 1;
        int k = outq_iov(&c->q, iov, IOV_BATCH, 0);
        size_t done = 0;
        for (int i = 0; i < k && done < TLS_CHUNK; i++) {
            size_t take = iov[i].iov_len;
            if (take > TLS_CHUNK - done) take = TLS_CHUNK - done;
            if (btls_write(c->tls, iov[i].iov_base, take, err, sizeof err)) {
                fail(c, err);
                return 0;
            }
            done += take;
        }
        outq_consume(&c->q, done);
    }
}

static void flush(bconn *c) {
    if (c->state != BC_OPEN && c->state != BC_HANDSHAKE && c->state != BC_UPGRADE) return;
    int all = c->tls ? write_tls(c) : write_plain(c);
    if (c->state == BC_CLOSED) return;
    watch(c, UV_READABLE | (all ? 0 : UV_WRITABLE));
}

static void on_check(uv_check_t *h) {
    bconn_env *env = h->data;
    while (env->dirty) {
        bconn *c = env->dirty;
        env->dirty = c->next_dirty;
        c->dirty = 0;
        if (!(c->events & UV_WRITABLE)) flush(c); /* else: the poll callback will */
    }
}

/* --- reading */

static int keep_pending(bconn *c, const uint8_t *p, size_t n) {
    if (n > c->pcap) {
        uint8_t *q = realloc(c->pend, n);
        if (!q) {
            fail(c, "out of memory");
            return -1;
        }
        c->pend = q;
        c->pcap = (uint32_t)n;
    }
    if (n) memmove(c->pend, p, n);
    c->plen = (uint32_t)n;
    return 0;
}

static void msg_done(bconn *c) {
    c->env->ops->on_msg(c, c->stamp, c->msg_len);
}

/* Decode d[0..n) (the kept head first, then new bytes); keep what is left
 * of an unfinished head. -1 when the connection failed. */
static int process(bconn *c, const uint8_t *d, size_t n) {
    bconn_env *env = c->env;
    size_t off = 0;
    while (off < n && c->state != BC_CLOSED) {
        if (c->left) { /* inside a message: the stamp, then skip */
            size_t avail = n - off;
            uint64_t sl = c->msg_len < BCONN_STAMP ? c->msg_len : BCONN_STAMP;
            if (c->stamp_have < sl) {
                size_t k = sl - c->stamp_have;
                if (k > avail) k = avail;
                memcpy(c->stamp + c->stamp_have, d + off, k);
                c->stamp_have = (uint8_t)(c->stamp_have + k);
                off += k;
                c->left -= k;
                avail -= k;
            }
            size_t k = c->left < avail ? (size_t)c->left : avail;
            off += k;
            c->left -= k;
            if (!c->left) msg_done(c);
            continue;
        }
        wire_ev ev;
        long r = wire_decode(env->proto, d + off, n - off, &ev);
        if (r == 0) break;
        if (r < 0) {
            char m[96];
            snprintf(m, sizeof m, "the server's bytes are not %s", wire_proto_name(env->proto));
            fail(c, m);
            return -1;
        }
        off += (size_t)r;
        if (ev.kind == WEV_MSG) {
            c->left = ev.follow;
            c->msg_len = ev.len;
            c->stamp_have = 0;
            if (!c->left) msg_done(c);
        } else {
            env->ops->on_event(c, &ev);
        }
    }
    if (c->state == BC_CLOSED) return -1;
    if (n - off >= BCONN_PEND_MAX) {
        fail(c, "a unit from the server is larger than chat-bench accepts (64 KiB)");
        return -1;
    }
    return keep_pending(c, d + off, n - off);
}

/* --- WebSocket */

/* Send the upgrade request (plaintext, or over the finished handshake). */
static void start_upgrade(bconn *c) {
    bconn_env *env = c->env;
    uint8_t nonce[16];
    char key[BWS_KEY_LEN + 1], req[BWS_REQ_MAX];
    if (RAND_bytes(nonce, sizeof nonce) != 1 || bws_keys(nonce, key, c->ws_accept)) {
        fail(c, "OpenSSL gave no random bytes or SHA-1 for the WebSocket key");
        return;
    }
    size_t n = bws_request(req, env->ws_host, env->ws_path, env->ws_proto, key);
    assert(n > 0); /* bconn_env_ws checked that it fits */
    if (outq_put(&c->q, req, n)) {
        fail(c, "out of memory");
        return;
    }
    c->state = BC_UPGRADE;
    flush(c);
}

static int answer_ping(bconn *c) {
    uint8_t p[BWS_HDR_MAX + BWS_CTL_MAX];
    uint32_t key;
    assert(c->ws_unit_left == 0); /* units are given whole, never around a read */
    if (next_key(c->env, &key)) {
        fail(c, "OpenSSL gave no random bytes for a mask key");
        return -1;
    }
    size_t n = bws_pong(c->ws, p, key);
    if (outq_put(&c->q, p, n)) {
        fail(c, "out of memory");
        return -1;
    }
    bconn_want_flush(c);
    return 0;
}

static int input(bconn *c, uint8_t *d, size_t pl, size_t n);

/* UPGRADE: d[0..n) is the start of the server's answer: once its head is
 * whole and right, the connection is open and the frames follow. */
static int upgrade(bconn *c, uint8_t *d, size_t n) {
    char err[256];
    long h = bws_response(d, n, c->ws_accept, c->env->ws_proto, err, sizeof err);
    if (h < 0) {
        fail(c, err);
        return -1;
    }
    if (h == 0) return keep_pending(c, d, n); /* < BWS_RESP_MAX < BCONN_PEND_MAX */
    c->ws = calloc(1, sizeof *c->ws);
    if (!c->ws) {
        fail(c, "out of memory");
        return -1;
    }
    c->plen = 0;
    c->state = BC_OPEN;
    c->env->ops->on_open(c);
    if (c->state == BC_CLOSED) return -1;
    return input(c, d + h, 0, n - (size_t)h);
}

/* d[0..pl) is the kept head of a unit, d[pl..pl + n) new bytes from the
 * transport: the upgrade's answer, or WebSocket frames (stripped in place),
 * or the protocol itself. -1 when the connection failed. */
static int input(bconn *c, uint8_t *d, size_t pl, size_t n) {
    if (c->state == BC_UPGRADE) return upgrade(c, d, pl + n);
    if (!c->ws) return process(c, d, pl + n);
    char m[256];
    long k = bws_unframe(c->ws, d + pl, n);
    if (k < 0) {
        snprintf(m, sizeof m, "WebSocket: %s", c->ws->err);
        fail(c, m);
        return -1;
    }
    if (c->ws->ping_due && answer_ping(c)) return -1;
    if (process(c, d, pl + (size_t)k)) return -1;
    if (c->ws->closed) {
        snprintf(m, sizeof m, "the server closed the WebSocket (code %u%s%s)",
                 c->ws->close_code, c->ws->reason[0] ? ": " : "", c->ws->reason);
        fail(c, m);
        return -1;
    }
    return 0;
}

/* Start the TLS handshake (its first flight goes out at once). */
static void start_tls(bconn *c) {
    c->tls = btls_new(c->env->tls, c->env->tls_host);
    if (!c->tls) {
        fail(c, "out of memory (TLS session)");
        return;
    }
    c->state = BC_HANDSHAKE;
    char err[256];
    if (btls_handshake(c->tls, err, sizeof err) < 0) {
        fail(c, err);
        return;
    }
    flush(c);
}

/* The handshake advanced with the lent input: 1 when it is done. */
static int continue_tls(bconn *c) {
    char err[256];
    int r = btls_handshake(c->tls, err, sizeof err);
    if (r < 0) {
        fail(c, err);
        return 0;
    }
    if (r == 0) {
        flush(c);
        return 0;
    }
    if (!c->env->tls_desc[0]) btls_describe(c->tls, c->env->tls_desc, sizeof c->env->tls_desc);
    if (c->env->ws_path) {
        start_upgrade(c);
        return c->state != BC_CLOSED;
    }
    c->state = BC_OPEN;
    c->env->ops->on_open(c);
    flush(c);
    return 1;
}

/* TLS: one read of ciphertext, then decrypt all of it. */
static void read_tls(bconn *c) {
    bconn_env *env = c->env;
    ssize_t n = read(c->fd, env->cbuf, CBUF_SIZE);
    env->syscalls++;
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n == 0) fail(c, "the server closed the connection (EOF)");
        else fail_errno(c, "read", errno);
        return;
    }
    env->now = bconn_clock();
    btls_input(c->tls, env->cbuf, (size_t)n);
    if (c->state == BC_HANDSHAKE && !continue_tls(c)) return;
    char err[256];
    for (;;) {
        size_t pl = c->plen;
        if (pl) memcpy(env->rbuf, c->pend, pl);
        long k = btls_read(c->tls, env->rbuf + pl, RBUF_SIZE - pl, err, sizeof err);
        if (k < 0) {
            fail(c, err);
            return;
        }
        if (k == 0) break;
        if (input(c, env->rbuf, pl, (size_t)k)) return;
    }
    /* a session ticket or key update may have queued an answer */
    size_t out;
    (void)btls_out(c->tls, &out);
    if (out) bconn_want_flush(c);
}

/* Plaintext: discard the rest of a large body in the kernel, or read. */
static void read_plain(bconn *c) {
    bconn_env *env = c->env;
    for (int i = 0; i < READS_PER_EVENT && c->state != BC_CLOSED; i++) {
        uint64_t sl = c->msg_len < BCONN_STAMP ? c->msg_len : BCONN_STAMP;
        /* what may be discarded unread: the rest of the body, as far as its
         * WebSocket frame goes */
        uint64_t skip = c->ws && bws_data_left(c->ws) < c->left ? bws_data_left(c->ws) : c->left;
        ssize_t n;
        if (skip >= SKIP_MIN && c->stamp_have >= sl && c->plen == 0) {
            size_t want = skip > (1u << 30) ? (1u << 30) : (size_t)skip;
            n = recv(c->fd, NULL, want, MSG_TRUNC | MSG_DONTWAIT);
            env->syscalls++;
            if (n > 0) {
                env->now = bconn_clock();
                c->left -= (uint64_t)n;
                if (c->ws) bws_data_skipped(c->ws, (uint64_t)n);
                if (!c->left) msg_done(c);
                if ((size_t)n < want) return; /* the socket is empty */
                continue;
            }
        } else {
            /* after a large message expect another: read its head only, so
             * that its body is discarded, not copied (21 % less CPU per
             * message at 64 KiB) */
            size_t pl = c->plen, want = c->msg_len >= SKIP_MIN ? HEAD_READ : RBUF_SIZE - pl;
            if (pl) memcpy(env->rbuf, c->pend, pl);
            n = read(c->fd, env->rbuf + pl, want);
            env->syscalls++;
            if (n > 0) {
                env->now = bconn_clock();
                if (input(c, env->rbuf, pl, (size_t)n)) return;
                if ((size_t)n < want) return; /* the socket is empty */
                continue;
            }
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n == 0) fail(c, "the server closed the connection (EOF)");
        else fail_errno(c, "read", errno);
        return;
    }
}

/* NATS over TLS: the INFO line comes in plaintext, then the handshake. */
static void read_info(bconn *c) {
    bconn_env *env = c->env;
    size_t pl = c->plen;
    if (pl) memcpy(env->rbuf, c->pend, pl);
    ssize_t n = read(c->fd, env->rbuf + pl, RBUF_SIZE - pl);
    env->syscalls++;
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n == 0) fail(c, "the server closed the connection (EOF)");
        else fail_errno(c, "read", errno);
        return;
    }
    wire_ev ev;
    long r = wire_decode(env->proto, env->rbuf, pl + (size_t)n, &ev);
    if (r < 0 || (r > 0 && (size_t)r != pl + (size_t)n)) {
        fail(c, "the server's first line is not a NATS INFO line alone");
        return;
    }
    if (r == 0) {
        (void)keep_pending(c, env->rbuf, pl + (size_t)n); /* fails the connection itself */
        return;
    }
    c->plen = 0;
    start_tls(c);
}

/* --- connecting */

static void connected(bconn *c) {
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el)) err = errno;
    if (err) {
        fail_errno(c, "connect", err);
        return;
    }
    int one = 1;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) {
        fail_errno(c, "setsockopt TCP_NODELAY", errno);
        return;
    }
    const char *cc = c->env->congestion;
    if (cc && setsockopt(c->fd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc))) {
        fail_errno(c, "setsockopt TCP_CONGESTION (--congestion)", errno);
        return;
    }
    watch(c, UV_READABLE);
    if (!c->env->tls && c->env->ws_path) {
        start_upgrade(c);
    } else if (!c->env->tls) {
        c->state = BC_OPEN;
        c->env->ops->on_open(c);
        flush(c);
    } else if (c->env->proto == WIRE_NATS && !c->env->ws_path) {
        c->state = BC_INFO;
    } else {
        start_tls(c);
    }
}

static void on_poll(uv_poll_t *h, int status, int events) {
    bconn *c = h->data;
    if (status < 0) { /* libuv says EBADF for any POLLERR: ask the socket */
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err) {
            fail_errno(c, c->state == BC_CONNECTING ? "connect" : "the connection failed", err);
        } else {
            char m[128];
            snprintf(m, sizeof m, "poll: %s", uv_strerror(status));
            fail(c, m);
        }
        return;
    }
    if (c->state == BC_CONNECTING) {
        if (events & (UV_WRITABLE | UV_READABLE)) connected(c);
        return;
    }
    if ((events & UV_WRITABLE) && c->state != BC_CLOSED) flush(c);
    if (!(events & UV_READABLE) || c->state == BC_CLOSED) return;
    switch (c->state) {
    case BC_INFO: read_info(c); break;
    case BC_HANDSHAKE:
    case BC_UPGRADE:
    case BC_OPEN: c->tls ? read_tls(c) : read_plain(c); break;
    default: break;
    }
}

int bconn_open(bconn_env *env, bconn *c, const struct sockaddr_in *addr,
               const struct sockaddr_in *src) {
    c->env = env;
    c->pipe[0] = c->pipe[1] = -1;
    c->piped = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -errno;
    if (src) {
        int one = 1;
        /* the port is picked at connect(), per destination: more than
         * 28,000 connections per source address */
        (void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (const struct sockaddr *)src, sizeof *src)) {
            int e = errno;
            (void)close(c->fd); /* nothing was sent on it */
            return -e;
        }
    }
    if (connect(c->fd, (const struct sockaddr *)addr, sizeof *addr) && errno != EINPROGRESS) {
        int e = errno;
        (void)close(c->fd);
        return -e;
    }
    int r = uv_poll_init_socket(env->loop, &c->poll, c->fd);
    if (r) {
        (void)close(c->fd);
        return r;
    }
    c->poll.data = c;
    r = uv_poll_start(&c->poll, UV_WRITABLE, on_poll);
    if (r) {
        uv_close((uv_handle_t *)&c->poll, NULL); /* closes nothing of the fd's */
        (void)close(c->fd);
        return r;
    }
    c->state = BC_CONNECTING;
    c->events = UV_WRITABLE;
    return 0;
}

int bconn_env_init(bconn_env *env, uv_loop_t *loop, wire_proto proto, const bconn_ops *ops,
                   btls_ctx *tls, const char *tls_host) {
    memset(env, 0, sizeof *env);
    env->loop = loop;
    env->proto = proto;
    env->ops = ops;
    env->tls = tls;
    env->tls_host = tls_host;
    env->rbuf = malloc(RBUF_SIZE);
    env->cbuf = tls ? malloc(CBUF_SIZE) : NULL;
    if (!env->rbuf || (tls && !env->cbuf)) return -ENOMEM;
    int r = uv_check_init(loop, &env->check);
    if (r) return r;
    env->check.data = env;
    return uv_check_start(&env->check, on_check);
}

int bconn_env_ws(bconn_env *env, const char *path, const char *proto, const char *host, int port) {
    char req[BWS_REQ_MAX], key[BWS_KEY_LEN + 1];
    memset(key, 'A', BWS_KEY_LEN);
    key[BWS_KEY_LEN] = 0;
    int n = snprintf(env->ws_host, sizeof env->ws_host, "%s:%d", host, port);
    if (n < 0 || (size_t)n >= sizeof env->ws_host || !bws_request(req, env->ws_host, path, proto, key))
        return -1;
    env->ws_path = path;
    env->ws_proto = proto;
    return next_key(env, &(uint32_t){0}); /* fills the pool: OpenSSL has random bytes */
}
