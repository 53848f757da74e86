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
 * skipped; frames for an unknown
 * receiver are dropped. No store, no acknowledgements, no limits beyond
 * memory, no logging per frame.
 *
 * How it is fast: one thread, level-triggered epoll; each readable
 * connection gets one read() per loop iteration into a shared 256 KiB
 * buffer (into its own buffer only while a frame is split across reads);
 * forwarded frames are appended to the receiver's output buffer and every
 * touched connection is written once, after all events of the iteration
 * were handled (one write syscall per connection per iteration). EPOLLOUT
 * is armed only while a write was short. Large frames (a body of 64 KiB or
 * more) are not copied: their body is read into the sender's own buffer,
 * exactly up to the frame's end, and written from there with writev() when
 * the receiver has nothing queued (only a short write's rest is copied); a
 * connection that sent one keeps that buffer. Idle connections hold no
 * buffer at all.
 *
 * Usage: floor [--bind ADDR] [--port P]   (port 0: any; prints
 * "listening on ADDR:PORT" on stderr)
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

#define C2S_HDR 13u
#define S2C_HDR 9u
#define RBUF_SIZE (256u * 1024u)
#define KEEP_OUT 1024u /* output buffers up to this size are freed when drained */
#define BIG_FRAME (64u * 1024u) /* bodies from this size on skip the output buffer */

typedef struct fconn fconn;
struct fconn {
    int fd;
    int bound, dead, dirty, want_out;
    uint32_t id;
    uint8_t *in;  /* the start of a frame split across reads, else NULL */
    size_t inlen, incap;
    uint8_t *out; /* bytes for this client; written from outoff */
    size_t outlen, outoff, outcap;
    fconn *next_dirty, *next_dead;
};

static int ep;
static fconn *dirty_head, *dead_head;
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

/* --- connections */
static void conn_kill(fconn *c) {
    if (c->dead) return;
    c->dead = 1;
    if (c->bound) map_del(c->id, c);
    close(c->fd); /* also leaves the epoll set */
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

/* One frame from c: forward a data frame, skip everything else. */
static void relay(fconn *c, const uint8_t *f, uint32_t len) {
    uint32_t sender = rd32(f), receiver = rd32(f + 4);
    uint8_t type = f[8];
    if (!c->bound) {
        c->bound = 1;
        c->id = sender;
        map_put(sender, c);
    }
    if (type == 0x80 && !c->dead) { /* HELLO: WELCOME version 1, no flags */
        uint8_t w[S2C_HDR + 10] = {0, 0, 0, 0, 0x81, 0, 0, 0, 10, 1, 0};
        wr32(w + S2C_HDR + 2, sender);
        wr32(w + S2C_HDR + 6, 16u << 20);
        out_reserve(c, sizeof w);
        memcpy(c->out + c->outlen, w, sizeof w);
        c->outlen += sizeof w;
        if (!c->dirty) {
            c->dirty = 1;
            c->next_dirty = dirty_head;
            dirty_head = c;
        }
        return;
    }
    if (type < 1 || type > 4) return;
    fconn *d = receiver == sender ? c : map_get(receiver);
    if (!d || d->dead) return;
    uint8_t h[S2C_HDR];
    wr32(h, sender);
    h[4] = type;
    wr32(h + 5, len);
    size_t done = 0, total = S2C_HDR + (size_t)len;
    if (len >= BIG_FRAME && d->outoff == d->outlen) { /* nothing queued: no copy */
        struct iovec iov[2] = {{h, S2C_HDR}, {(void *)(f + C2S_HDR), len}};
        ssize_t n = writev(d->fd, iov, 2);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            conn_kill(d);
            return;
        }
        done = n > 0 ? (size_t)n : 0;
        if (done == total) return;
    }
    out_reserve(d, total - done);
    uint8_t *o = d->out + d->outlen;
    if (done < S2C_HDR) {
        memcpy(o, h + done, S2C_HDR - done);
        o += S2C_HDR - done;
        memcpy(o, f + C2S_HDR, len);
    } else {
        memcpy(o, f + C2S_HDR + (done - S2C_HDR), total - done);
    }
    d->outlen += total - done;
    if (!d->dirty) {
        d->dirty = 1;
        d->next_dirty = dirty_head;
        dirty_head = d;
    }
}

/* Relay every complete frame in p[0..n); returns the bytes consumed. */
static size_t relay_all(fconn *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    while (n - off >= C2S_HDR) {
        uint32_t len = rd32(p + off + 9);
        if (n - off - C2S_HDR < len) break;
        relay(c, p + off, len);
        off += C2S_HDR + (size_t)len;
    }
    return off;
}

/* Bytes the split frame at the start of c->in needs in all. */
static size_t in_need(const fconn *c) {
    if (c->inlen < C2S_HDR) return C2S_HDR;
    return C2S_HDR + (size_t)rd32(c->in + 9);
}

static void in_reserve(fconn *c, size_t want) {
    if (want <= c->incap) return;
    uint8_t *p = realloc(c->in, want);
    if (!p) fatal("realloc");
    c->in = p;
    c->incap = want;
}

static void on_readable(fconn *c) {
    if (c->inlen == 0 && c->incap <= RBUF_SIZE) {
        ssize_t n = read(c->fd, rbuf, sizeof rbuf);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            conn_kill(c);
            return;
        }
        size_t used = relay_all(c, rbuf, (size_t)n);
        if (used < (size_t)n) { /* keep the split frame */
            size_t rest = (size_t)n - used;
            in_reserve(c, rest > C2S_HDR ? rest : C2S_HDR);
            memcpy(c->in, rbuf + used, rest);
            c->inlen = rest;
            in_reserve(c, in_need(c) > RBUF_SIZE ? in_need(c) : RBUF_SIZE);
        }
        return;
    }
    /* A frame is split, or this connection sends large frames: read into its
     * own buffer, sized for the whole frame; in a large frame, only up to its
     * end, so that the buffer is empty again after it (no memmove). */
    size_t need = in_need(c);
    in_reserve(c, need > RBUF_SIZE ? need : RBUF_SIZE);
    size_t want = c->incap - c->inlen;
    if (c->inlen >= C2S_HDR && need > RBUF_SIZE) want = need - c->inlen;
    ssize_t n = read(c->fd, c->in + c->inlen, want);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        conn_kill(c);
        return;
    }
    c->inlen += (size_t)n;
    size_t used = relay_all(c, c->in, c->inlen);
    if (used == c->inlen) {
        c->inlen = 0;
        if (c->incap <= RBUF_SIZE) { /* back to the shared buffer */
            free(c->in);
            c->in = NULL;
            c->incap = 0;
        }
    } else if (used) {
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
}

static void set_out_interest(fconn *c, int on) {
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev)) fatal("epoll_ctl");
    c->want_out = on;
}

static void flush(fconn *c) {
    if (c->dead) return;
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { set_out_interest(c, 1); return; }
            conn_kill(c);
            return;
        }
        c->outoff += (size_t)n;
    }
    c->outoff = c->outlen = 0;
    if (c->outcap <= KEEP_OUT) { /* idle connections hold no buffer */
        free(c->out);
        c->out = NULL;
        c->outcap = 0;
    }
    set_out_interest(c, 0);
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
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fconn *c = calloc(1, sizeof *c);
        if (!c) fatal("calloc");
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) fatal("epoll_ctl");
    }
}

int main(int argc, char **argv) {
    const char *bind_addr = "127.0.0.1";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bind") && i + 1 < argc) bind_addr = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: floor [--bind ADDR (127.0.0.1)] [--port P (0: any)]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) fatal("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1) {
        fprintf(stderr, "floor: --bind: '%s' is not an IPv4 address\n", bind_addr);
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&a, sizeof a)) fatal("bind");
    if (listen(lfd, 65535)) fatal("listen");
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    fprintf(stderr, "floor: listening on %s:%d\n", bind_addr, ntohs(a.sin_port));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) fatal("epoll_create1");
    static fconn listener; /* data.ptr == &listener marks the listening socket */
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listener};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev)) fatal("epoll_ctl");
    static struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            fatal("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            fconn *c = evs[i].data.ptr;
            if (c == &listener) { on_accept(lfd); continue; }
            if (c->dead) continue;
            if (evs[i].events & EPOLLOUT) flush(c);
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_readable(c);
        }
        while (dirty_head) { /* one write per touched connection */
            fconn *c = dirty_head;
            dirty_head = c->next_dirty;
            c->dirty = 0;
            flush(c);
        }
        while (dead_head) {
            fconn *c = dead_head;
            dead_head = c->next_dead;
            free(c->in);
            free(c->out);
            free(c);
        }
    }
}
