/*
 * chat-bench -- load generator for chat-server (event-driven, libuv).
 *
 * Scenarios (U users, each keeping D messages in flight, S-byte payloads
 * whose first 8 bytes carry the send time in ns):
 *   echo     each user sends to itself on an --echo server; a message is
 *            done when it comes back.
 *   pair     user i sends to user i^1; done when the peer received it.
 *   offline  U opted-in senders send to absent receivers (one per sender);
 *            done when the server acknowledged it (stored durably).
 *
 * Reports delivered messages per second, MB/s, latency p50/p99/p99.9 (from a
 * log-linear histogram, microsecond resolution) and, with --server-pid, the
 * server's resident memory. One line of key=value figures on stdout, so
 * scripts can collect it.
 *
 * Writes are batched like the server's: frames are appended to a
 * connection's buffer and written once per loop iteration.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "common/buf.h"
#include "proto/frame.h"

enum scenario { SC_ECHO, SC_PAIR, SC_OFFLINE };

typedef struct opts {
    const char *host;
    int port;
    enum scenario sc;
    int users;
    int depth;
    uint32_t size;
    double seconds;
    double warmup;
    int server_pid;
} opts;

/* Latency histogram, log-linear: a value under 64 µs has its own bucket;
 * a larger one keeps its top 6 bits (bucket [p][v >> p], v >> p in 32..63),
 * so every bucket is within ~3% of the values it holds. */
#define H_SUB 64
#define H_POW 40
typedef struct hist {
    uint64_t b[H_POW][H_SUB];
    uint64_t n;
} hist;

static void hist_add(hist *h, uint64_t us) {
    int p = 0;
    uint64_t sub = us;
    if (us >= H_SUB) {
        p = 63 - __builtin_clzll(us) - 5;
        sub = us >> p;
    }
    if (p >= H_POW) {
        p = H_POW - 1;
        sub = H_SUB - 1;
    }
    h->b[p][sub]++;
    h->n++;
}

/* Lower bound of a bucket, µs. */
static uint64_t hist_val(int p, int sub) { return (uint64_t)sub << p; }

static double hist_pct(const hist *h, double q) {
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
    for (int p = 0; p < H_POW; p++)
        for (int s = 0; s < H_SUB; s++) {
            seen += h->b[p][s];
            if (seen > want) return (double)hist_val(p, s);
        }
    return 0;
}

typedef struct user user;
typedef struct bench bench;

struct user {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    bench *b;
    uint32_t id, to;
    int ready;       /* WELCOME seen */
    int inflight;
    int writing;
    uint64_t sent;   /* data frames sent */
    uint64_t acked;  /* server ACK count (offline) */
    uint64_t *stamp; /* send time per seq (offline), ring of depth */
    buf in, out, wout;
    user *next_flush;
    int flush_queued;
};

struct bench {
    opts o;
    uv_loop_t *loop;
    user *u;
    uv_check_t check;
    uv_timer_t timer;
    user *flush_head;
    int connected;
    int measuring, done;
    uint64_t t0, delivered, bytes;
    hist h;
    uint8_t *payload;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int r) {
    fprintf(stderr, "chat-bench: %s: %s\n", what, r ? uv_strerror(r) : "");
    exit(1);
}

static void queue_flush(user *u) {
    if (u->flush_queued) return;
    u->flush_queued = 1;
    u->next_flush = u->b->flush_head;
    u->b->flush_head = u;
}

static void send_one(user *u) {
    bench *b = u->b;
    uint8_t hdr[FRAME_C2S_HDR];
    uint64_t t = now_ns();
    frame_wr64(b->payload, t);
    frame_put_c2s_hdr(hdr, u->id, u->to, FRAME_TEXT, b->o.size);
    if (buf_append(&u->out, hdr, sizeof hdr, SIZE_MAX / 2) ||
        buf_append(&u->out, b->payload, b->o.size, SIZE_MAX / 2))
        die("out of memory", 0);
    if (u->stamp) u->stamp[u->sent % (uint64_t)b->o.depth] = t;
    u->sent++;
    u->inflight++;
    queue_flush(u);
}

static void on_write(uv_write_t *req, int status) {
    user *u = req->data;
    if (status) die("write", status);
    u->writing = 0;
    u->wout.len = 0;
    if (u->out.len) queue_flush(u);
}

static void flush_user(user *u) {
    if (u->writing || u->out.len == 0) return;
    buf t = u->wout;
    u->wout = u->out;
    u->out = t;
    uv_buf_t ub = uv_buf_init((char *)u->wout.data, (unsigned)u->wout.len);
    int r = uv_write(&u->wreq, (uv_stream_t *)&u->tcp, &ub, 1, on_write);
    if (r) die("write", r);
    u->writing = 1;
}

static void on_check(uv_check_t *h) {
    bench *b = h->data;
    while (b->flush_head) {
        user *u = b->flush_head;
        b->flush_head = u->next_flush;
        u->flush_queued = 0;
        flush_user(u);
    }
}

static void done_one(bench *b, uint64_t sent_at, uint32_t len) {
    if (!b->measuring) return;
    uint64_t t = now_ns();
    hist_add(&b->h, sent_at < t ? (t - sent_at) / 1000 : 0);
    b->delivered++;
    b->bytes += len;
}

static void start_sending(user *u) {
    u->ready = 1;
    if (u->b->o.sc == SC_PAIR && (u->id & 1)) return; /* odd ids receive */
    for (int i = 0; i < u->b->o.depth; i++) send_one(u);
}

static void on_frame(user *u, const frame_s2c *f) {
    bench *b = u->b;
    if (f->type == FRAME_WELCOME) {
        start_sending(u);
        return;
    }
    if (f->type == FRAME_ERROR) {
        frame_error e;
        if (frame_parse_error(f->body, f->len, &e) == 0)
            fprintf(stderr, "chat-bench: server error %u: %.*s\n", e.code,
                    (int)e.reason_len, (const char *)e.reason);
        exit(1);
    }
    if (f->type == FRAME_ACK && b->o.sc == SC_OFFLINE) {
        uint64_t n;
        if (frame_parse_ack(f->body, f->len, &n)) return;
        while (u->acked < n) {
            done_one(b, u->stamp[u->acked % (uint64_t)b->o.depth], b->o.size);
            u->acked++;
            u->inflight--;
            if (!b->done) send_one(u);
        }
        return;
    }
    if (!frame_is_data(f->type) || f->len < 8) return;
    done_one(b, frame_rd64(f->body), f->len);
    /* The sender of this frame may send another. */
    user *s = b->o.sc == SC_ECHO ? u : &b->u[f->sender - 1];
    s->inflight--;
    if (!b->done) send_one(s);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *out) {
    user *u = h->data;
    (void)sz;
    if (buf_reserve(&u->in, 65536, SIZE_MAX / 2)) die("out of memory", 0);
    *out = uv_buf_init((char *)u->in.data + u->in.len,
                       (unsigned)(u->in.cap - u->in.len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
    user *u = st->data;
    (void)b;
    if (n < 0) {
        if (u->b->done) return;
        die("connection closed by the server", n == UV_EOF ? 0 : (int)n);
    }
    u->in.len += (size_t)n;
    size_t off = 0;
    frame_s2c f;
    long r;
    while ((r = frame_decode_s2c(u->in.data + off, u->in.len - off,
                                 FRAME_LEN_MAX, &f)) > 0) {
        on_frame(u, &f);
        off += (size_t)r;
    }
    buf_consume(&u->in, off);
}

static void on_connect(uv_connect_t *req, int status) {
    user *u = req->data;
    if (status) die("connect", status);
    uv_tcp_nodelay(&u->tcp, 1);
    uv_read_start((uv_stream_t *)&u->tcp, on_alloc, on_read);
    uint8_t hdr[FRAME_C2S_HDR], body[FRAME_HELLO_MIN];
    uint8_t flags = u->b->o.sc == SC_OFFLINE ? FRAME_FLAG_ACKS : 0;
    frame_put_hello(body, FRAME_VERSION, flags, NULL, 0);
    frame_put_c2s_hdr(hdr, u->id, 0, FRAME_HELLO, sizeof body);
    buf_append(&u->out, hdr, sizeof hdr, SIZE_MAX / 2);
    buf_append(&u->out, body, sizeof body, SIZE_MAX / 2);
    queue_flush(u);
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

static void on_timer(uv_timer_t *t) {
    bench *b = t->data;
    if (!b->measuring) {
        b->measuring = 1;
        b->t0 = now_ns();
        uv_timer_start(t, on_timer, (uint64_t)(b->o.seconds * 1000), 0);
        return;
    }
    double secs = (double)(now_ns() - b->t0) / 1e9;
    b->done = 1;
    const char *names[] = {"echo", "pair", "offline"};
    printf("scenario=%s users=%d depth=%d size=%u seconds=%.2f msgs=%llu "
           "msgs_per_s=%.0f mb_per_s=%.2f p50_us=%.0f p99_us=%.0f "
           "p999_us=%.0f server_rss_kib=%ld\n",
           names[b->o.sc], b->o.users, b->o.depth, b->o.size, secs,
           (unsigned long long)b->delivered, (double)b->delivered / secs,
           (double)b->bytes / secs / 1e6, hist_pct(&b->h, 0.50),
           hist_pct(&b->h, 0.99), hist_pct(&b->h, 0.999),
           b->o.server_pid ? rss_kib(b->o.server_pid) : -1L);
    fflush(stdout);
    exit(0); /* the server sees the connections close */
}

static void usage(FILE *f) {
    fprintf(f,
"Usage: chat-bench [--host H] [--port P] [--scenario echo|pair|offline]\n"
"                  [--users U] [--depth D] [--size S] [--seconds T]\n"
"                  [--warmup W] [--server-pid PID]\n"
"Defaults: 127.0.0.1:8888, pair, 50 users, depth 1, 64 bytes, 5 s after\n"
"a 1 s warm-up. Prints one line of key=value figures.\n");
}

int main(int argc, char **argv) {
    static bench b;
    b.o = (opts){"127.0.0.1", 8888, SC_PAIR, 50, 1, 64, 5.0, 1.0, 0};
    static const struct option lo[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"scenario", 1, 0, 's'},
        {"users", 1, 0, 'u'}, {"depth", 1, 0, 'd'}, {"size", 1, 0, 'z'},
        {"seconds", 1, 0, 't'}, {"warmup", 1, 0, 'w'},
        {"server-pid", 1, 0, 'P'}, {"help", 0, 0, 'H'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'h': b.o.host = optarg; break;
        case 'p': b.o.port = atoi(optarg); break;
        case 's':
            if (!strcmp(optarg, "echo")) b.o.sc = SC_ECHO;
            else if (!strcmp(optarg, "pair")) b.o.sc = SC_PAIR;
            else if (!strcmp(optarg, "offline")) b.o.sc = SC_OFFLINE;
            else { fprintf(stderr, "chat-bench: --scenario: '%s' is not echo, pair or offline\n", optarg); return 2; }
            break;
        case 'u': b.o.users = atoi(optarg); break;
        case 'd': b.o.depth = atoi(optarg); break;
        case 'z': b.o.size = (uint32_t)atol(optarg); break;
        case 't': b.o.seconds = atof(optarg); break;
        case 'w': b.o.warmup = atof(optarg); break;
        case 'P': b.o.server_pid = atoi(optarg); break;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (b.o.users < 1 || b.o.depth < 1 || b.o.size < 8 || b.o.seconds <= 0 ||
        (b.o.sc == SC_PAIR && b.o.users % 2)) {
        fprintf(stderr, "chat-bench: need users >= 1 (even for pair), depth "
                        ">= 1, size >= 8, seconds > 0\n");
        return 2;
    }
    b.loop = uv_default_loop();
    b.payload = calloc(1, b.o.size);
    b.u = calloc((size_t)b.o.users, sizeof *b.u);
    if (!b.payload || !b.u) die("out of memory", 0);
    struct sockaddr_in addr;
    if (uv_ip4_addr(b.o.host, b.o.port, &addr)) die("bad --host", 0);
    for (int i = 0; i < b.o.users; i++) {
        user *u = &b.u[i];
        u->b = &b;
        u->id = (uint32_t)i + 1;
        u->to = b.o.sc == SC_ECHO ? u->id
              : b.o.sc == SC_PAIR ? (uint32_t)(i ^ 1) + 1
                                  : 1000000u + (uint32_t)i; /* absent */
        if (b.o.sc == SC_OFFLINE) {
            u->stamp = calloc((size_t)b.o.depth, sizeof *u->stamp);
            if (!u->stamp) die("out of memory", 0);
        }
        uv_tcp_init(b.loop, &u->tcp);
        u->tcp.data = u->creq.data = u->wreq.data = u;
        int r = uv_tcp_connect(&u->creq, &u->tcp, (struct sockaddr *)&addr,
                               on_connect);
        if (r) die("connect", r);
    }
    uv_check_init(b.loop, &b.check);
    b.check.data = &b;
    uv_check_start(&b.check, on_check);
    uv_timer_init(b.loop, &b.timer);
    b.timer.data = &b;
    uv_timer_start(&b.timer, on_timer, (uint64_t)(b.o.warmup * 1000), 0);
    uv_run(b.loop, UV_RUN_DEFAULT);
    return 0;
}
