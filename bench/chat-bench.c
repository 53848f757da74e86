/*
 * chat-bench -- load generator for chat-server and the relays it is compared
 * with (Redis pub/sub, NATS, MQTT brokers, the floor), one event loop
 * (libuv). The scenario loop, the clock and the histogram are the same for
 * every protocol; only the framing differs (wire.h).
 *
 * Scenarios (U users, each keeping D messages in flight; S-byte payloads
 * whose first 8 bytes carry the send time in ns and the next 4 the sender's
 * index; user i's inbox is "u<i>", chat user id i):
 *   echo     each user publishes to its own inbox; done when it comes back.
 *   pair     user i sends to user i^1 (both ways); done when the peer got it.
 *   fanin    users 2..U send to user 1; done when user 1 got it.
 *   offline  chat only: U senders that opted in to acknowledgements send to
 *            absent receivers; done when the server acknowledged it.
 *   idle     U connections subscribe (chat: bind with HELLO, as libchat
 *            does) and stay idle; reports the server's resident memory
 *            before and after, per connection.
 * No message is sent before every user's subscription is confirmed; the
 * measured phase starts after a warm-up.
 *
 * Reports, on one line of key=value pairs: delivered messages per second,
 * MB/s (payload bytes, 10^6), latency p50/p99/p99.9 in µs, the server's RSS
 * (--server-pid), the CPU the server and chat-bench used during the
 * measurement (100 = one core busy; a load generator near 100 is the limit,
 * not the server), the messages delivered per CPU-second of the server, and
 * counters that show the run was sound: sent, received,
 * misrouted (a message at the wrong user), unheard (Redis: published to a
 * channel nobody listened to).
 *
 * Writes are batched like a server's: messages are appended to a
 * connection's output buffer and written once per loop iteration (uv_check),
 * with at most one write in flight per connection. The clock is read once per
 * read callback (clock_gettime was a fifth of the profile when read per
 * message): arrivals are stamped with the time of their read, and messages
 * sent in answer with that same time.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "hist.h"
#include "wire.h"

enum scenario { SC_ECHO, SC_PAIR, SC_FANIN, SC_OFFLINE, SC_IDLE };
static const char *sc_names[] = {"echo", "pair", "fanin", "offline", "idle"};

#define BUF_LIMIT (SIZE_MAX / 2)
#define PER_SOURCE 20000 /* connections per source address (ports 32768-60999) */

typedef struct opts {
    const char *host;
    int port;
    wire_proto proto;
    enum scenario sc;
    int users;
    int depth;
    uint32_t size;
    double seconds;
    double warmup;
    int server_pid;
    int sources; /* 0: automatic */
    int window;  /* users connecting at once */
} opts;

typedef struct user user;
typedef struct bench bench;
typedef struct conn conn;

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    user *u;
    int pub; /* Redis: the publishing connection */
    int writing, flush_queued;
    buf in, out, wout;
    conn *next_flush;
};

struct user {
    bench *b;
    uint32_t idx, id, to; /* to: index of the receiver */
    conn sub, pubc;       /* pubc only when the protocol splits pub/sub */
    conn *tx;             /* where this user publishes */
    int sub_ready, pub_ready, ready, sends;
    int inflight;
    uint64_t sent, acked;
    uint64_t *stamp; /* offline: send time per sequence number, ring of depth */
    uint8_t head[WIRE_HEAD_MAX]; /* every message of this user has the same head */
    size_t hl;
};

struct bench {
    opts o;
    uv_loop_t *loop;
    user *u;
    uv_check_t check;
    uv_timer_t timer;
    conn *flush_head;
    int next_user, nready, nsources;
    unsigned long nconn;
    int measuring, done;
    uint64_t t0, t_start, delivered, bytes;
    uint64_t now; /* the clock, read once per read callback (it is not free) */
    uint64_t sent, received, misrouted, unheard;
    long rss_before;
    double cpu_srv0, cpu_self0; /* CPU seconds at the start of the measurement */
    struct sockaddr_in addr;
    hist h;
    uint8_t *payload;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int r) {
    fprintf(stderr, "chat-bench: %s%s%s\n", what, r ? ": " : "", r ? uv_strerror(r) : "");
    exit(1);
}

static void out_append(conn *c, const void *p, size_t n) {
    if (buf_append(&c->out, p, n, BUF_LIMIT)) die("out of memory", 0);
}

static void queue_flush(conn *c) {
    if (c->flush_queued) return;
    c->flush_queued = 1;
    bench *b = c->u->b;
    c->next_flush = b->flush_head;
    b->flush_head = c;
}

static void on_write(uv_write_t *req, int status) {
    conn *c = req->data;
    if (status) {
        if (c->u->b->done) return;
        die("write", status);
    }
    c->writing = 0;
    c->wout.len = 0;
    if (c->u->b->o.sc == SC_IDLE) buf_free(&c->wout);
    if (c->out.len) queue_flush(c);
}

/* One write per connection per loop iteration: what accumulated in `out`
 * becomes `wout` and goes to the kernel. */
static void flush_conn(conn *c) {
    if (c->writing || c->out.len == 0) return;
    buf t = c->wout;
    c->wout = c->out;
    c->out = t;
    uv_buf_t ub = uv_buf_init((char *)c->wout.data, (unsigned)c->wout.len);
    int r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
    if (r) die("write", r);
    c->writing = 1;
}

static void on_check(uv_check_t *h) {
    bench *b = h->data;
    while (b->flush_head) {
        conn *c = b->flush_head;
        b->flush_head = c->next_flush;
        c->flush_queued = 0;
        flush_conn(c);
    }
}

static void send_one(user *u) {
    bench *b = u->b;
    uint8_t tail[WIRE_TAIL_MAX];
    uint64_t t = b->now;
    memcpy(b->payload, &t, 8);
    memcpy(b->payload + 8, &u->idx, 4);
    if (!u->hl) u->hl = wire_msg_head(b->o.proto, u->head, u->id, b->u[u->to].id, b->o.size);
    size_t hl = u->hl;
    const uint8_t *head = u->head;
    size_t tl = wire_msg_tail(b->o.proto, tail);
    conn *c = u->tx;
    if (buf_reserve(&c->out, hl + b->o.size + tl, BUF_LIMIT)) die("out of memory", 0);
    memcpy(c->out.data + c->out.len, head, hl);
    memcpy(c->out.data + c->out.len + hl, b->payload, b->o.size);
    memcpy(c->out.data + c->out.len + hl + b->o.size, tail, tl);
    c->out.len += hl + b->o.size + tl;
    if (u->stamp) u->stamp[u->sent % (uint64_t)b->o.depth] = t;
    u->sent++;
    u->inflight++;
    b->sent++;
    queue_flush(c);
}

static void done_one(bench *b, uint64_t sent_at, size_t len) {
    b->received++;
    if (!b->measuring) return;
    uint64_t t = b->now;
    hist_add(&b->h, sent_at < t ? (t - sent_at) / 1000 : 0);
    b->delivered++;
    b->bytes += len;
}

static long rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

/* CPU seconds (user + system, all threads) a process has used; -1 if unknown. */
static double cpu_secs(int pid) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *p = ok ? strrchr(line, ')') : NULL; /* the name may hold spaces */
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_self(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void report_idle(uv_timer_t *t) {
    bench *b = t->data;
    long after = b->o.server_pid ? rss_kib(b->o.server_pid) : -1;
    double per = after >= 0 && b->rss_before >= 0
                     ? (double)(after - b->rss_before) * 1024.0 / b->o.users : -1;
    printf("proto=%s scenario=idle conns=%d sources=%d connect_s=%.2f "
           "rss_before_kib=%ld rss_after_kib=%ld rss_per_conn_b=%.0f\n",
           wire_proto_name(b->o.proto), b->o.users, b->nsources,
           (double)(b->t0 - b->t_start) / 1e9, b->rss_before, after, per);
    fflush(stdout);
    b->done = 1;
    exit(0);
}

static void on_timer(uv_timer_t *t) {
    bench *b = t->data;
    if (!b->measuring) {
        b->measuring = 1;
        b->t0 = now_ns();
        b->cpu_srv0 = b->o.server_pid ? cpu_secs(b->o.server_pid) : -1;
        b->cpu_self0 = cpu_self();
        uv_timer_start(t, on_timer, (uint64_t)(b->o.seconds * 1000), 0);
        return;
    }
    double secs = (double)(now_ns() - b->t0) / 1e9;
    double srv = b->o.server_pid ? cpu_secs(b->o.server_pid) : -1;
    double srv_pct = srv >= 0 && b->cpu_srv0 >= 0 ? 100 * (srv - b->cpu_srv0) / secs : -1;
    /* messages per CPU-second of the server: its efficiency, which other
     * processes on the machine disturb less than they disturb msgs/s */
    double per_cpu = srv_pct > 0 ? (double)b->delivered / (srv - b->cpu_srv0) : -1;
    double self_pct = 100 * (cpu_self() - b->cpu_self0) / secs;
    b->done = 1;
    printf("proto=%s scenario=%s users=%d depth=%d size=%u seconds=%.2f msgs=%llu "
           "msgs_per_s=%.0f mb_per_s=%.2f p50_us=%.0f p99_us=%.0f p999_us=%.0f "
           "server_rss_kib=%ld server_cpu_pct=%.0f bench_cpu_pct=%.0f msgs_per_server_cpu_s=%.0f "
           "sent=%llu received=%llu misrouted=%llu unheard=%llu\n",
           wire_proto_name(b->o.proto), sc_names[b->o.sc], b->o.users, b->o.depth,
           b->o.size, secs, (unsigned long long)b->delivered,
           (double)b->delivered / secs, (double)b->bytes / secs / 1e6,
           hist_pct(&b->h, 0.50), hist_pct(&b->h, 0.99), hist_pct(&b->h, 0.999),
           b->o.server_pid ? rss_kib(b->o.server_pid) : -1L, srv_pct, self_pct, per_cpu,
           (unsigned long long)b->sent, (unsigned long long)b->received,
           (unsigned long long)b->misrouted, (unsigned long long)b->unheard);
    if (b->delivered == 0) fprintf(stderr, "chat-bench: nothing was delivered\n");
    fflush(stdout);
    exit(0); /* the servers see the connections close */
}

/* Every user is subscribed: start the load (or the idle measurement). */
static void all_ready(bench *b) {
    b->t0 = b->now = now_ns();
    if (b->o.sc == SC_IDLE) { /* let the server settle, then read its RSS */
        /* Idle means settled: servers free per-connection scratch memory
         * on timers (chat-server: every second), so measure after 2.5 s. */
        uv_timer_start(&b->timer, report_idle, 2500, 0);
        return;
    }
    for (int i = 0; i < b->o.users; i++)
        if (b->u[i].sends)
            for (int k = 0; k < b->o.depth; k++) send_one(&b->u[i]);
    uv_timer_start(&b->timer, on_timer, (uint64_t)(b->o.warmup * 1000), 0);
}

static void user_connect(user *u);

static void user_check_ready(user *u) {
    bench *b = u->b;
    int need_pub = wire_split_pubsub(b->o.proto) && b->o.sc != SC_IDLE;
    if (u->ready || !u->sub_ready || (need_pub && !u->pub_ready)) return;
    u->ready = 1;
    b->nready++;
    if (b->next_user < b->o.users) user_connect(&b->u[b->next_user++]);
    if (b->nready == b->o.users) all_ready(b);
}

static void on_message(conn *c, const uint8_t *body, size_t len) {
    user *u = c->u;
    bench *b = u->b;
    if (len < 12) return;
    uint64_t t;
    uint32_t sidx;
    memcpy(&t, body, 8);
    memcpy(&sidx, body + 8, 4);
    if (sidx >= (uint32_t)b->o.users) {
        b->misrouted++;
        return;
    }
    user *s = &b->u[sidx];
    if (s->to != u->idx) b->misrouted++;
    done_one(b, t, len);
    s->inflight--;
    if (!b->done) send_one(s);
}

static void on_event(conn *c, const wire_ev *ev) {
    user *u = c->u;
    bench *b = u->b;
    switch (ev->kind) {
    case WEV_MSG:
        on_message(c, ev->body, ev->len);
        break;
    case WEV_READY:
        if (c->pub) break;
        u->sub_ready = 1;
        user_check_ready(u);
        break;
    case WEV_ACK: /* offline: the server has stored them */
        while (u->acked < ev->count && u->acked < u->sent) {
            done_one(b, u->stamp[u->acked % (uint64_t)b->o.depth], b->o.size);
            u->acked++;
            u->inflight--;
            if (!b->done) send_one(u);
        }
        break;
    case WEV_PUBLISHED:
        if (ev->count == 0) b->unheard++;
        break;
    case WEV_PING: {
        uint8_t p[WIRE_PONG_MAX];
        size_t n = wire_pong(b->o.proto, p, u->id, ev->body, ev->len);
        if (n) {
            out_append(c, p, n);
            queue_flush(c);
        }
        break;
    }
    case WEV_ERROR:
        fprintf(stderr, "chat-bench: %s server error (user %u): %.*s\n",
                wire_proto_name(b->o.proto), u->id, (int)ev->len, (const char *)ev->body);
        exit(1);
    case WEV_NONE:
        break;
    }
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *out) {
    conn *c = h->data;
    size_t want = 65536;
    uint32_t s = c->u->b->o.size;
    (void)sz;
    if (s + 4096u > want && s <= (8u << 20)) want = s + 4096u;
    if (buf_reserve(&c->in, want, BUF_LIMIT)) die("out of memory", 0);
    *out = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *ub) {
    conn *c = st->data;
    bench *b = c->u->b;
    (void)ub;
    if (n == 0) return;
    if (n < 0) {
        if (b->done) return;
        fprintf(stderr, "chat-bench: user %u: the %s server closed the connection (%s)\n",
                c->u->id, wire_proto_name(b->o.proto), n == UV_EOF ? "EOF" : uv_strerror((int)n));
        exit(1);
    }
    c->in.len += (size_t)n;
    b->now = now_ns();
    size_t off = 0;
    wire_ev ev;
    long r;
    while ((r = wire_decode(b->o.proto, c->in.data + off, c->in.len - off, &ev)) > 0) {
        off += (size_t)r;
        on_event(c, &ev);
    }
    if (r < 0) {
        fprintf(stderr, "chat-bench: user %u: the server's bytes are not %s\n", c->u->id,
                wire_proto_name(b->o.proto));
        exit(1);
    }
    buf_consume(&c->in, off);
    if (c->in.len == 0 && b->o.sc == SC_IDLE) buf_free(&c->in);
}

static void on_connect(uv_connect_t *req, int status) {
    conn *c = req->data;
    user *u = c->u;
    bench *b = u->b;
    if (status) {
        fprintf(stderr, "chat-bench: connect %s:%d (connection %lu): %s\n", b->o.host,
                b->o.port, b->nconn, uv_strerror(status));
        exit(1);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    uint8_t hello[WIRE_HELLO_MAX];
    unsigned flags = c->pub ? 0 : WIRE_SUB | (b->o.sc == SC_OFFLINE ? WIRE_ACKS : 0) |
                                  (b->o.sc == SC_IDLE ? WIRE_HELLO : 0);
    size_t n = wire_hello(b->o.proto, hello, u->id, flags);
    if (n) {
        out_append(c, hello, n);
        queue_flush(c);
    }
    if (c->pub) {
        u->pub_ready = 1;
        user_check_ready(u);
    }
}

/* Open one connection, from source address 127.0.0.(2 + k % sources) when
 * there are several (each address has its own ephemeral ports). */
static void conn_open(bench *b, conn *c) {
    uv_tcp_init(b->loop, &c->tcp);
    c->tcp.data = c->creq.data = c->wreq.data = c;
    if (b->nsources > 1) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket", uv_translate_sys_error(errno));
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(b->nconn % (unsigned long)b->nsources));
        if (bind(fd, (struct sockaddr *)&src, sizeof src))
            die("bind to a 127.0.0.x source address", uv_translate_sys_error(errno));
        int r = uv_tcp_open(&c->tcp, fd);
        if (r) die("uv_tcp_open", r);
    }
    b->nconn++;
    int r = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&b->addr, on_connect);
    if (r) die("connect", r);
}

static void user_connect(user *u) {
    bench *b = u->b;
    conn_open(b, &u->sub);
    if (wire_split_pubsub(b->o.proto) && b->o.sc != SC_IDLE) conn_open(b, &u->pubc);
}

/* Raise the soft descriptor limit to the hard one; 0 if `need` fit. */
static int raise_nofile(unsigned long need, unsigned long *have) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    *have = (unsigned long)rl.rlim_cur;
    return need <= *have ? 0 : -1;
}

static void usage(FILE *f) {
    fprintf(f,
"Usage: chat-bench [--proto chat|redis|nats|mqtt] [--host H] [--port P]\n"
"                  [--scenario echo|pair|fanin|offline|idle] [--users U]\n"
"                  [--depth D] [--size S] [--seconds T] [--warmup W]\n"
"                  [--server-pid PID] [--sources K] [--window N]\n"
"Defaults: chat, 127.0.0.1:8888, pair, 50 users, depth 1, 64 bytes, 5 s\n"
"after a 1 s warm-up; --sources: 127.0.0.2.. source addresses, automatic\n"
"(one per %d connections) on loopback; --window 256 users connecting at\n"
"once. idle: U connections, prints the server's RSS per connection.\n"
"Prints one line of key=value figures.\n", PER_SOURCE);
}

int main(int argc, char **argv) {
    static bench b;
    b.o = (opts){"127.0.0.1", 8888, WIRE_CHAT, SC_PAIR, 50, 1, 64, 5.0, 1.0, 0, 0, 256};
    static const struct option lo[] = {
        {"proto", 1, 0, 'r'}, {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'},
        {"scenario", 1, 0, 's'}, {"users", 1, 0, 'u'}, {"depth", 1, 0, 'd'},
        {"size", 1, 0, 'z'}, {"seconds", 1, 0, 't'}, {"warmup", 1, 0, 'w'},
        {"server-pid", 1, 0, 'P'}, {"sources", 1, 0, 'S'}, {"window", 1, 0, 'W'},
        {"help", 0, 0, 'H'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (wire_proto_parse(optarg, &b.o.proto)) {
                fprintf(stderr, "chat-bench: --proto: '%s' is not chat, redis, nats or mqtt\n", optarg);
                return 2;
            }
            break;
        case 'h': b.o.host = optarg; break;
        case 'p': b.o.port = atoi(optarg); break;
        case 's': {
            int k = -1;
            for (int i = 0; i < 5; i++)
                if (!strcmp(optarg, sc_names[i])) k = i;
            if (k < 0) {
                fprintf(stderr, "chat-bench: --scenario: '%s' is not echo, pair, fanin, offline or idle\n", optarg);
                return 2;
            }
            b.o.sc = (enum scenario)k;
            break;
        }
        case 'u': b.o.users = atoi(optarg); break;
        case 'd': b.o.depth = atoi(optarg); break;
        case 'z': b.o.size = (uint32_t)atol(optarg); break;
        case 't': b.o.seconds = atof(optarg); break;
        case 'w': b.o.warmup = atof(optarg); break;
        case 'P': b.o.server_pid = atoi(optarg); break;
        case 'S': b.o.sources = atoi(optarg); break;
        case 'W': b.o.window = atoi(optarg); break;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    opts *o = &b.o;
    if (o->users < 1 || o->depth < 1 || o->size < 12 || o->seconds <= 0 || o->window < 1 ||
        (o->sc == SC_PAIR && o->users % 2) || (o->sc == SC_FANIN && o->users < 2)) {
        fprintf(stderr, "chat-bench: need users >= 1 (even for pair, >= 2 for fanin), "
                        "depth >= 1, size >= 12, seconds > 0, window >= 1\n");
        return 2;
    }
    if (o->sc == SC_OFFLINE && o->proto != WIRE_CHAT) {
        fprintf(stderr, "chat-bench: the offline scenario needs --proto chat\n");
        return 2;
    }
    unsigned long conns = (unsigned long)o->users *
                          (wire_split_pubsub(o->proto) && o->sc != SC_IDLE ? 2u : 1u);
    unsigned long have = 0;
    if (raise_nofile(conns + 64, &have)) {
        fprintf(stderr, "chat-bench: %lu connections need %lu descriptors but the limit "
                        "is %lu (ulimit -Hn); nothing measured\n", conns, conns + 64, have);
        return 3;
    }
    b.nsources = o->sources;
    if (b.nsources <= 0)
        b.nsources = !strncmp(o->host, "127.", 4) && conns > PER_SOURCE
                         ? (int)((conns + PER_SOURCE - 1) / PER_SOURCE) : 1;
    b.loop = uv_default_loop();
    b.payload = calloc(1, o->size);
    b.u = calloc((size_t)o->users, sizeof *b.u);
    if (!b.payload || !b.u) die("out of memory", 0);
    if (uv_ip4_addr(o->host, o->port, &b.addr)) die("--host is not an IPv4 address", 0);
    for (int i = 0; i < o->users; i++) {
        user *u = &b.u[i];
        u->b = &b;
        u->idx = (uint32_t)i;
        u->id = (uint32_t)i + 1;
        u->sub.u = u->pubc.u = u;
        u->pubc.pub = 1;
        u->tx = wire_split_pubsub(o->proto) ? &u->pubc : &u->sub;
        switch (o->sc) {
        case SC_ECHO: u->to = u->idx; u->sends = 1; break;
        case SC_PAIR: u->to = u->idx ^ 1u; u->sends = 1; break;
        case SC_FANIN: u->to = 0; u->sends = i > 0; break;
        case SC_OFFLINE: u->to = u->idx; u->sends = 1; break; /* id replaced below */
        case SC_IDLE: u->to = u->idx; u->sends = 0; break;
        }
        if (o->sc == SC_OFFLINE) {
            u->stamp = calloc((size_t)o->depth, sizeof *u->stamp);
            if (!u->stamp) die("out of memory", 0);
        }
    }
    if (o->sc == SC_OFFLINE) { /* receivers are absent users, never connected */
        user *extra = realloc(b.u, 2 * (size_t)o->users * sizeof *b.u);
        if (!extra) die("out of memory", 0);
        b.u = extra;
        for (int i = 0; i < o->users; i++) {
            user *u = &b.u[i];
            u->sub.u = u->pubc.u = u;
            u->tx = &u->sub;
            u->to = (uint32_t)(o->users + i);
            b.u[o->users + i] = (user){.id = 1000000u + (uint32_t)i};
        }
    }
    b.rss_before = o->server_pid ? rss_kib(o->server_pid) : -1;
    b.t_start = now_ns();
    uv_check_init(b.loop, &b.check);
    b.check.data = &b;
    uv_check_start(&b.check, on_check);
    uv_timer_init(b.loop, &b.timer);
    b.timer.data = &b;
    while (b.next_user < o->users && b.next_user < o->window)
        user_connect(&b.u[b.next_user++]);
    uv_run(b.loop, UV_RUN_DEFAULT);
    return 0;
}
