/*
 * floor -- the smallest relay for the chat protocol, written only for the
 * benchmark: it shows what this machine allows, so the table can compare
 * chat-server with a ceiling rather than with nothing.
 *
 * What it does: reads client -> server frames (sender u32, receiver u32,
 * type u8, len u32, body; big-endian, docs/PROTOCOL.md), binds a connection
 * to the sender of its first frame, and forwards every data frame (types
 * 1-4) to the connection bound to its receiver as a server -> client frame
 * (sender u32, type u8, len u32, body); receiver == sender is an echo.
 * A HELLO is answered with a WELCOME (so a client that binds the way
 * libchat does is served); other control frames and unknown types are
 * skipped; frames for an unknown receiver are dropped. No store, no
 * acknowledgements, no limits beyond memory, no logging per frame.
 *
 * How it is fast: one thread, level-triggered epoll; each readable
 * connection gets one read per loop iteration into a shared 256 KiB buffer
 * (into its own buffer only while a frame is split across reads);
 * forwarded frames are appended to the receiver's output buffer and every
 * touched connection is written once, after all events of the iteration
 * were handled (one write per connection per iteration). EPOLLOUT is armed
 * only while a write was short. Idle connections hold no buffer at all.
 *
 * Large frames (a body of 64 KiB or more) are never held whole: a
 * connection that sends one gets a buffer of its own (4 MiB + 64 KiB, kept),
 * reads go there, and the body is passed on in pieces of up to that size (a
 * 1 MiB frame in one piece, its header rewritten in place), each written
 * straight from that buffer with one write when the receiver has nothing
 * queued (only what the kernel did not take is copied). So a 16 MiB body
 * goes out in four pieces, the receiver gets its first bytes before the
 * last ones arrived, and memory stays bounded. (Pieces of 1 MiB cost more:
 * the smaller reads woke the sender more often.) While the body streams, the
 * receiver is locked to its sender:
 * a frame from anyone else for that receiver waits (its sender is paused,
 * the bytes kept) until the body is complete, so frames never interleave;
 * and the sender is paused while the receiver has more than 8 MiB queued.
 *
 * TLS (--tls-cert F --tls-key F): the same relay over OpenSSL SSL objects
 * on the same non-blocking descriptors (TLS 1.2 and later); reads and writes
 * go through SSL_read/SSL_write, with read-ahead so that one read system
 * call brings many records. The plaintext path does not change.
 *
 * Usage: floor [--bind ADDR] [--port P] [--tls-cert F --tls-key F]
 * (port 0: any; prints "listening on ADDR:PORT" on stderr)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define C2S_HDR 13u
#define S2C_HDR 9u
#define RBUF_SIZE (256u * 1024u)
#define KEEP_OUT 1024u /* output buffers up to this size are freed when drained */
#define BIG_FRAME (64u * 1024u) /* bodies from this size on are cut through */
#define SBUF_SIZE ((4u << 20) + (64u << 10)) /* a large body is passed on in pieces
                                               of up to this size */
#define STREAM_MAX (8u << 20) /* a streaming sender pauses past this much queued */
#define TLS_READ_AHEAD (128u * 1024u)

enum pause { RUNNING, PAUSE_FULL /* its receiver's queue is full */,
             PAUSE_LOCKED /* its receiver is locked by another stream */ };

typedef struct fconn fconn;
struct fconn {
    int fd;
    SSL *ssl;        /* NULL: plaintext */
    int bound, dead, dirty, again, on_again;
    int rerun;       /* resumed: handle the kept input before reading more */
    uint32_t events; /* the epoll interest set */
    enum pause paused;
    uint32_t id;
    uint8_t *in;  /* unprocessed bytes: a frame split across reads, or what
                     waits while paused; else NULL */
    size_t inlen, incap;
    uint8_t *out; /* bytes for this client; written from outoff */
    size_t outlen, outoff, outcap;
    /* cut-through: this connection is sending a large body to fwd */
    fconn *fwd;        /* NULL while streaming: the receiver is gone, discard */
    uint64_t fwd_left; /* body bytes still to come; > 0 while streaming */
    uint8_t *sbuf;     /* SBUF_SIZE: where a connection that sent a large body
                          reads (kept once allocated); the piece being
                          collected is sbuf[soff..slen) */
    size_t soff, slen;
    fconn *locked_by;  /* as a receiver: the sender streaming into it */
    fconn *waiters;    /* senders paused until this receiver is unlocked */
    fconn *waiting_on, *next_wait;
    fconn *next_dirty, *next_dead, *next_again;
};

static int ep;
static SSL_CTX *tls_ctx;
static fconn *dirty_head, *dead_head, *again_head;
static uint8_t rbuf[RBUF_SIZE];

static void fatal(const char *what) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

/* --- user id -> connection: open addressing, linear probing, power-of-2
 * capacity kept at most half full; removal by backward shift. O(1). */
static struct { uint32_t key; fconn *c; } *map;
static size_t map_cap, map_len;

static size_t map_slot(uint32_t key) { return (key * 2654435761u) & (map_cap - 1); }

static fconn *map_get(uint32_t key) {
    if (!map_cap) return NULL;
    for (size_t i = map_slot(key);; i = (i + 1) & (map_cap - 1)) {
        if (!map[i].c) return NULL;
        if (map[i].key == key) return map[i].c;
    }
}

static void map_put(uint32_t key, fconn *c);

static void map_grow(void) {
    size_t old = map_cap;
    __typeof__(map) om = map;
    map_cap = old ? old * 2 : 1024;
    map = calloc(map_cap, sizeof *map);
    if (!map) fatal("calloc");
    map_len = 0;
    for (size_t i = 0; i < old; i++)
        if (om[i].c) map_put(om[i].key, om[i].c);
    free(om);
}

/* The newest connection of a user wins. */
static void map_put(uint32_t key, fconn *c) {
    if ((map_len + 1) * 2 > map_cap) map_grow();
    size_t i = map_slot(key);
    while (map[i].c && map[i].key != key) i = (i + 1) & (map_cap - 1);
    if (!map[i].c) map_len++;
    map[i].key = key;
    map[i].c = c;
}

static void map_del(uint32_t key, fconn *c) {
    if (!map_cap) return;
    size_t i = map_slot(key);
    while (map[i].c && map[i].key != key) i = (i + 1) & (map_cap - 1);
    if (map[i].c != c) return; /* absent, or a newer connection */
    map[i].c = NULL;
    map_len--;
    for (size_t j = (i + 1) & (map_cap - 1); map[j].c; j = (j + 1) & (map_cap - 1)) {
        size_t h = map_slot(map[j].key);
        /* move j into the hole i when its home slot is not in (i, j] */
        if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
            map[i] = map[j];
            map[j].c = NULL;
            i = j;
        }
    }
}

/* --- bytes in and out: plaintext or TLS */

/* Read up to n bytes: > 0 bytes, 0 nothing now (EAGAIN), -1 closed or
 * failed. TLS: as many records as fit; what OpenSSL keeps beyond them puts
 * the connection on the again list (epoll cannot see it). */
static ssize_t conn_recv(fconn *c, uint8_t *buf, size_t n) {
    if (!c->ssl) {
        ssize_t r = read(c->fd, buf, n);
        if (r > 0) return r;
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
        return -1;
    }
    size_t got = 0;
    while (got < n) {
        size_t k = 0;
        if (SSL_read_ex(c->ssl, buf + got, n - got, &k)) {
            got += k;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ) break;
        if (e == SSL_ERROR_WANT_WRITE) { /* a handshake flight is stuck: retry later */
            c->again = 1;
            break;
        }
        return got ? (ssize_t)got : -1; /* report the bytes first, the end next time */
    }
    if (got == n && SSL_has_pending(c->ssl)) c->again = 1;
    return (ssize_t)got;
}

/* Write iov[0..k): bytes taken (0: would block), -1 failed. */
static ssize_t conn_sendv(fconn *c, struct iovec *iov, int k) {
    if (!c->ssl) {
        ssize_t w = writev(c->fd, iov, k);
        if (w >= 0) return w;
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    /* partial writes and moving buffers are on: SSL_write returns after
     * each record, so loop; a record that did not fit is offered again
     * from wherever the caller keeps the rest */
    size_t done = 0;
    for (int i = 0; i < k; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            size_t w = 0;
            if (!SSL_write_ex(c->ssl, p, left, &w)) {
                int e = SSL_get_error(c->ssl, 0);
                ERR_clear_error();
                /* WANT_READ: TLS 1.3 does not renegotiate; treat it as full */
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return (ssize_t)done;
                return -1;
            }
            done += w;
            p += w;
            left -= w;
        }
    }
    return (ssize_t)done;
}

/* --- connections */

static void set_events(fconn *c, uint32_t events) {
    if (c->events == events || c->dead) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev)) fatal("epoll_ctl");
    c->events = events;
}

static void mark_dirty(fconn *c) {
    if (c->dirty) return;
    c->dirty = 1;
    c->next_dirty = dirty_head;
    dirty_head = c;
}

static void mark_again(fconn *c) {
    if (c->on_again) return;
    c->on_again = 1;
    c->next_again = again_head;
    again_head = c;
}

static void resume(fconn *c) {
    if (c->paused == RUNNING || c->dead) return;
    c->paused = RUNNING;
    c->rerun = 1;
    set_events(c, (c->events | EPOLLIN));
    mark_again(c); /* its kept bytes are handled at the end of the iteration */
}

/* The receiver d is no longer locked: let the senders waiting for it go. */
static void unlock(fconn *d) {
    d->locked_by = NULL;
    while (d->waiters) {
        fconn *w = d->waiters;
        d->waiters = w->next_wait;
        w->next_wait = NULL;
        w->waiting_on = NULL;
        resume(w);
    }
}

static void conn_kill(fconn *c) {
    if (c->dead) return;
    c->dead = 1;
    if (c->bound) map_del(c->id, c);
    if (c->waiting_on) { /* leave the queue of the receiver it waits for */
        fconn **p = &c->waiting_on->waiters;
        while (*p != c) p = &(*p)->next_wait;
        *p = c->next_wait;
    }
    if (c->fwd_left && c->fwd) { /* a half-sent body: that stream is broken */
        fconn *d = c->fwd;
        c->fwd = NULL;
        unlock(d);
        conn_kill(d);
    }
    if (c->locked_by) c->locked_by->fwd = NULL; /* the sender discards the rest */
    unlock(c);
    SSL_free(c->ssl); /* no close_notify: the peer is gone or misbehaved */
    c->ssl = NULL;
    (void)close(c->fd); /* also leaves the epoll set; nothing to flush */
    c->next_dead = dead_head;
    dead_head = c;
}

static void out_reserve(fconn *c, size_t extra) {
    if (c->outlen + extra <= c->outcap) return;
    if (c->outoff) { /* slide the unwritten tail to the front first */
        memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
        c->outlen -= c->outoff;
        c->outoff = 0;
        if (c->outlen + extra <= c->outcap) return;
    }
    size_t cap = c->outcap ? c->outcap : 512;
    while (cap < c->outlen + extra) cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (!p) fatal("realloc");
    c->out = p;
    c->outcap = cap;
}

static void out_put(fconn *d, const uint8_t *p, size_t n) {
    out_reserve(d, n);
    memcpy(d->out + d->outlen, p, n);
    d->outlen += n;
    mark_dirty(d);
}

/* Give d the header h (hl bytes, may be 0) and body bytes b: straight from
 * the caller's buffer when d has nothing queued (no copy), else (and for
 * what the kernel did not take) appended to d's queue. */
static void deliver(fconn *d, const uint8_t *h, size_t hl, const uint8_t *b, size_t bl) {
    size_t done = 0;
    if (d->outoff == d->outlen) { /* nothing queued: no copy */
        struct iovec iov[2] = {{(void *)h, hl}, {(void *)b, bl}};
        ssize_t n = hl ? conn_sendv(d, iov, 2) : conn_sendv(d, iov + 1, 1);
        if (n < 0) {
            conn_kill(d);
            return;
        }
        done = (size_t)n;
        if (done == hl + bl) return;
    }
    if (done < hl) {
        out_put(d, h + done, hl - done);
        out_put(d, b, bl);
    } else {
        out_put(d, b + (done - hl), bl - (done - hl));
    }
}

/* Wait until d's stream is over: pause c and queue it on d. */
static void wait_for(fconn *c, fconn *d) {
    c->paused = PAUSE_LOCKED;
    c->waiting_on = d;
    c->next_wait = d->waiters;
    d->waiters = c;
    set_events(c, c->events & ~(uint32_t)EPOLLIN);
}

/* A streaming sender c pauses while its receiver has too much queued. */
static void check_full(fconn *c) {
    fconn *d = c->fwd;
    if (d && !d->dead && d->outlen - d->outoff > STREAM_MAX && c->paused == RUNNING) {
        c->paused = PAUSE_FULL;
        set_events(c, c->events & ~(uint32_t)EPOLLIN);
    }
}

/* Pass the collected piece sbuf[soff..slen) on to the receiver. */
static void piece_out(fconn *c) {
    size_t from = c->soff, k = c->slen - c->soff;
    c->soff = c->slen = 0;
    deliver(c->fwd, NULL, 0, c->sbuf + from, k);
    if (c->fwd_left) check_full(c); /* the last piece: nothing to pause */
}

static void stream_end(fconn *c) {
    fconn *d = c->fwd;
    c->fwd = NULL;
    if (d) unlock(d);
}

/* The frames in p[0..n) from c; returns the bytes consumed. Stops at a
 * frame that is not complete (a large data frame's body starts streaming
 * instead, consuming everything) and at a frame whose receiver is locked
 * by another sender (c then waits). */
static size_t relay_all(fconn *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    while (n - off >= C2S_HDR && !c->dead && c->paused == RUNNING) {
        const uint8_t *f = p + off;
        uint32_t sender = rd32(f), receiver = rd32(f + 4), len = rd32(f + 9);
        uint8_t type = f[8];
        if (!c->bound) {
            c->bound = 1;
            c->id = sender;
            map_put(sender, c);
        }
        int data = type >= 1 && type <= 4;
        fconn *d = type == 0x80 || (data && receiver == sender) ? c
                   : data ? map_get(receiver) : NULL;
        if (d && d->dead) d = NULL;
        if (d && d->locked_by && d->locked_by != c) {
            wait_for(c, d);
            break;
        }
        size_t avail = n - off - C2S_HDR;
        if (avail < len) {
            if (!data || len < BIG_FRAME) break; /* wait for the rest */
            /* a large body: collect it in pieces from here on */
            c->fwd = d;
            c->fwd_left = len - avail;
            if (d) {
                uint8_t *h;
                if (c->sbuf && f >= c->sbuf && f < c->sbuf + SBUF_SIZE) {
                    /* read into sbuf: the 9-byte header goes over the end of
                     * the 13-byte one, in place, and the body follows it */
                    h = c->sbuf + (f - c->sbuf) + 4;
                    c->slen = (size_t)(f - c->sbuf) + C2S_HDR + avail;
                } else {
                    if (!c->sbuf && !(c->sbuf = malloc(SBUF_SIZE))) fatal("malloc");
                    h = c->sbuf;
                    memcpy(c->sbuf + S2C_HDR, f + C2S_HDR, avail);
                    c->slen = S2C_HDR + avail;
                }
                wr32(h, sender);
                h[4] = type;
                wr32(h + 5, len);
                c->soff = (size_t)(h - c->sbuf);
                if (c->soff && c->soff + S2C_HDR + len > SBUF_SIZE && S2C_HDR + len <= SBUF_SIZE) {
                    /* it fits in one piece from the front: one write, not two */
                    memmove(c->sbuf, c->sbuf + c->soff, c->slen - c->soff);
                    c->slen -= c->soff;
                    c->soff = 0;
                }
                d->locked_by = c;
                if (c->slen == SBUF_SIZE) piece_out(c); /* the buffer is full */
            }
            return n;
        }
        off += C2S_HDR + (size_t)len;
        if (!d) continue;
        if (type == 0x80) { /* HELLO: WELCOME version 1, no flags */
            uint8_t w[S2C_HDR + 10] = {0, 0, 0, 0, 0x81, 0, 0, 0, 10, 1, 0};
            wr32(w + S2C_HDR + 2, sender);
            wr32(w + S2C_HDR + 6, 16u << 20);
            out_put(d, w, sizeof w);
            continue;
        }
        if (!data) continue;
        uint8_t h[S2C_HDR];
        wr32(h, sender);
        h[4] = type;
        wr32(h + 5, len);
        if (len >= BIG_FRAME) {
            deliver(d, h, S2C_HDR, f + C2S_HDR, len);
        } else {
            out_reserve(d, S2C_HDR + (size_t)len);
            memcpy(d->out + d->outlen, h, S2C_HDR);
            memcpy(d->out + d->outlen + S2C_HDR, f + C2S_HDR, len);
            d->outlen += S2C_HDR + (size_t)len;
            mark_dirty(d);
        }
    }
    return off;
}

static void in_reserve(fconn *c, size_t want) {
    if (want <= c->incap) return;
    uint8_t *p = realloc(c->in, want);
    if (!p) fatal("realloc");
    c->in = p;
    c->incap = want;
}

/* Keep p[0..n) (not yet handled) as c's input. */
static void keep_in(fconn *c, const uint8_t *p, size_t n) {
    if (c->in == p) {
        c->inlen = n;
        return;
    }
    if (c->in && p >= c->in && p < c->in + c->incap) {
        memmove(c->in, p, n);
        c->inlen = n;
        return;
    }
    in_reserve(c, n > C2S_HDR ? n : C2S_HDR);
    memcpy(c->in, p, n);
    c->inlen = n;
}

/* Handle c's kept input again (after a pause). */
static void rerun(fconn *c) {
    if (!c->inlen || c->paused != RUNNING || c->dead) return;
    size_t used = relay_all(c, c->in, c->inlen);
    keep_in(c, c->in + used, c->inlen - used);
}

/* c is streaming a large body: read up to the end of the piece (or of the
 * body) and pass the piece on once it is complete. */
static void stream_read(fconn *c) {
    uint8_t *buf = c->fwd ? c->sbuf + c->slen : rbuf; /* no receiver: discard */
    size_t room = c->fwd ? SBUF_SIZE - c->slen : RBUF_SIZE;
    size_t want = c->fwd_left < room ? (size_t)c->fwd_left : room;
    ssize_t n = conn_recv(c, buf, want);
    if (n <= 0) {
        if (n < 0) conn_kill(c);
        return;
    }
    c->fwd_left -= (uint64_t)n;
    if (c->fwd) {
        c->slen += (size_t)n;
        if (c->slen == SBUF_SIZE || !c->fwd_left) piece_out(c);
    }
    if (!c->fwd_left) stream_end(c);
}

static void on_readable(fconn *c) {
    if (c->paused != RUNNING) return;
    if (c->rerun) { /* what it kept while paused comes first */
        c->rerun = 0;
        rerun(c);
        if (c->paused != RUNNING || c->dead) return;
    }
    if (c->fwd_left) {
        stream_read(c);
        return;
    }
    if (c->inlen == 0) {
        /* a connection that sent a large body reads into its own buffer, so
         * that the next one is passed on from where it was read */
        uint8_t *buf = c->sbuf ? c->sbuf : rbuf;
        ssize_t n = conn_recv(c, buf, c->sbuf ? SBUF_SIZE : RBUF_SIZE);
        if (n <= 0) {
            if (n < 0) conn_kill(c);
            return;
        }
        size_t used = relay_all(c, buf, (size_t)n);
        if (used < (size_t)n) { /* keep the split frame (or what waits) */
            keep_in(c, buf + used, (size_t)n - used);
        }
        return;
    }
    /* A frame is split: read into c's own buffer (as much as the shared
     * one holds; large bodies never get here, they stream). */
    in_reserve(c, RBUF_SIZE);
    if (c->inlen == c->incap) return; /* cannot happen: kept frames are < 64 KiB */
    ssize_t n = conn_recv(c, c->in + c->inlen, c->incap - c->inlen);
    if (n <= 0) {
        if (n < 0) conn_kill(c);
        return;
    }
    c->inlen += (size_t)n;
    size_t used = relay_all(c, c->in, c->inlen);
    keep_in(c, c->in + used, c->inlen - used);
    if (c->inlen == 0) { /* back to the shared buffer */
        free(c->in);
        c->in = NULL;
        c->incap = 0;
    }
}

static void flush(fconn *c) {
    if (c->dead) return;
    while (c->outoff < c->outlen) {
        struct iovec iov = {c->out + c->outoff, c->outlen - c->outoff};
        ssize_t n = conn_sendv(c, &iov, 1);
        if (n < 0) {
            conn_kill(c);
            return;
        }
        if (n == 0) {
            set_events(c, c->events | EPOLLOUT);
            return;
        }
        c->outoff += (size_t)n;
        if (c->locked_by && c->locked_by->paused == PAUSE_FULL &&
            c->outlen - c->outoff <= STREAM_MAX / 2)
            resume(c->locked_by);
    }
    c->outoff = c->outlen = 0;
    if (c->outcap <= KEEP_OUT) { /* idle connections hold no buffer */
        free(c->out);
        c->out = NULL;
        c->outcap = 0;
    }
    if (c->locked_by && c->locked_by->paused == PAUSE_FULL) resume(c->locked_by);
    set_events(c, c->events & ~(uint32_t)EPOLLOUT);
}

static void on_accept(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            if (errno == EMFILE || errno == ENFILE) {
                fprintf(stderr, "floor: accept: %s (raise ulimit -n)\n", strerror(errno));
                return;
            }
            fatal("accept");
        }
        int one = 1;
        /* without it only latency suffers */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fconn *c = calloc(1, sizeof *c);
        if (!c) fatal("calloc");
        c->fd = fd;
        if (tls_ctx) {
            c->ssl = SSL_new(tls_ctx);
            if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
                fprintf(stderr, "floor: SSL_new: out of memory\n");
                exit(1);
            }
            SSL_set_accept_state(c->ssl); /* the handshake runs inside SSL_read */
        }
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) fatal("epoll_ctl");
    }
}

static SSL_CTX *tls_setup(const char *cert, const char *key) {
    SSL_CTX *x = SSL_CTX_new(TLS_server_method());
    if (!x || !SSL_CTX_set_min_proto_version(x, TLS1_2_VERSION) ||
        SSL_CTX_use_certificate_chain_file(x, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(x, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(x) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        fprintf(stderr, "floor: --tls-cert %s / --tls-key %s: %s\n", cert, key, e);
        exit(2);
    }
    (void)SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | /* returns the new mode */
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(x, 1);
    SSL_CTX_set_default_read_buffer_len(x, TLS_READ_AHEAD);
    return x;
}

int main(int argc, char **argv) {
    const char *bind_addr = "127.0.0.1", *cert = NULL, *key = NULL;
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bind") && i + 1 < argc) bind_addr = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc) cert = argv[++i];
        else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc) key = argv[++i];
        else {
            fprintf(stderr, "usage: floor [--bind ADDR (127.0.0.1)] [--port P (0: any)]\n"
                            "             [--tls-cert FILE --tls-key FILE (TLS instead of TCP)]\n");
            return 2;
        }
    }
    if (!cert != !key) {
        fprintf(stderr, "floor: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (cert) tls_ctx = tls_setup(cert, key);
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) fatal("signal");
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl); /* the old limit still works, lower */
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) fatal("socket");
    int one = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) fatal("setsockopt");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1) {
        fprintf(stderr, "floor: --bind: '%s' is not an IPv4 address\n", bind_addr);
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&a, sizeof a)) fatal("bind");
    if (listen(lfd, 65535)) fatal("listen");
    socklen_t al = sizeof a;
    if (getsockname(lfd, (struct sockaddr *)&a, &al)) fatal("getsockname");
    fprintf(stderr, "floor: listening on %s:%d%s\n", bind_addr, ntohs(a.sin_port),
            tls_ctx ? " (TLS)" : "");
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) fatal("epoll_create1");
    static fconn listener; /* data.ptr == &listener marks the listening socket */
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listener};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev)) fatal("epoll_ctl");
    static struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, again_head ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            fatal("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            fconn *c = evs[i].data.ptr;
            if (c == &listener) { on_accept(lfd); continue; }
            if (c->dead) continue;
            if (evs[i].events & EPOLLOUT) flush(c);
            if (!c->dead && c->paused != RUNNING && (evs[i].events & (EPOLLHUP | EPOLLERR))) {
                conn_kill(c); /* gone while it waited */
                continue;
            }
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                c->again = 0;
                on_readable(c);
                if (c->again) mark_again(c);
            }
        }
        /* resumed senders' kept bytes, and TLS records OpenSSL holds */
        fconn *list = again_head;
        again_head = NULL;
        while (list) {
            fconn *c = list;
            list = c->next_again;
            c->next_again = NULL;
            c->on_again = 0;
            if (c->dead || c->paused != RUNNING) continue;
            c->again = 0;
            /* resumed (its kept bytes), or TLS records OpenSSL read ahead,
             * which epoll cannot see */
            if (c->rerun || (c->ssl && SSL_has_pending(c->ssl))) on_readable(c);
            if (c->again) mark_again(c);
        }
        while (dirty_head) { /* one write per touched connection */
            fconn *c = dirty_head;
            dirty_head = c->next_dirty;
            c->dirty = 0;
            if (!(c->events & EPOLLOUT)) flush(c);
        }
        for (fconn **p = &again_head; *p;) { /* the dead are freed below */
            if ((*p)->dead) *p = (*p)->next_again;
            else p = &(*p)->next_again;
        }
        while (dead_head) {
            fconn *c = dead_head;
            dead_head = c->next_dead;
            free(c->in);
            free(c->out);
            free(c->sbuf);
            free(c);
        }
    }
}
