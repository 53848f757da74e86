/*
 * fuzz_conn.c -- libFuzzer target for a connection's whole input path:
 * bytes in -> frames decoded, bound, routed, stored or refused, through the
 * real server code (every src/server file but main.c, linked as is), over real TCP sockets.
 *
 * LLVMFuzzerInitialize starts one server in this process, on 127.0.0.1 port
 * 0, with the default configuration (config_defaults) except: a data
 * directory made with mkdtemp, --fsync normal, and a short offline TTL so the
 * store of a long run stays small. Nothing runs in the background: the
 * harness drives the server's libuv loop itself (uv_run UV_RUN_NOWAIT, then
 * poll(2) on the loop's backend descriptor and the client sockets), so each
 * input runs to completion before the next.
 *
 * One input:
 *   byte 0    selector: bit 0: prefix the stream with a valid first frame;
 *             bit 1: that frame is a data frame (article client) rather than
 *             HELLO; bit 2: HELLO asks for ACKS; bit 3: write the first 256
 *             bytes in chunks of (byte0 >> 4) + 1 bytes, one loop run
 *             apart (frames split across reads).
 *   byte 1..  the byte stream client B sends.
 * Client A binds as FUZZ_USER_A (the receiver frames in the seed corpus
 * are addressed to) with HELLO and waits for WELCOME; client B connects,
 * writes the stream, shuts down its write side; the loop runs until the
 * server closes B, or until nothing happened for FUZZ_IDLE_MS, or
 * FUZZ_PUMP_MS at most. Everything A and B receive must be well-formed
 * server -> client frames (decoded with the codec): data frames with a
 * non-zero sender (MSG frames too, with a well-formed prefix, and only to
 * a client that sent control frames), control frames from sender 0 with
 * valid bodies, and no
 * control frame at all to a client whose stream holds none (PROTOCOL.md:
 * the article's client only ever gets data frames). Both sockets are then
 * closed with SO_LINGER 0 (a reset: no TIME_WAIT), and the loop runs until
 * the server has freed every connection.
 *
 * Every FUZZ_CHECK_EVERY inputs (and once at start-up) a fresh pair of
 * clients must still route one frame end to end. Any failed expectation is
 * a __builtin_trap(): libFuzzer reports it as a crash with the input.
 *
 * Uses only server.h, store.h and config.h (and log_threshold to keep the
 * server quiet; FUZZ_CONN_LOG=debug|info|warn shows its log).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "proto/frame.h"
#include "proto/signal.h"
#include "server/config.h"
#include "server/server.h"
#include "server/store.h"

#define FUZZ_USER_A 2u              /* the receiver: seeds send to it */
#define FUZZ_USER_B 1u              /* B's id when the harness binds it */
#define FUZZ_LIVE_TX 0xFFFFFF01u    /* liveness check pair */
#define FUZZ_LIVE_RX 0xFFFFFF02u
#define FUZZ_CHECK_EVERY 64u        /* inputs between liveness checks */
#define FUZZ_IDLE_MS 1000           /* no event for this long: give up */
#define FUZZ_POLL_MS 5              /* one idle poll */
#define FUZZ_PUMP_MS 5000           /* one pump, at most */
#define FUZZ_TTL_MS 10000           /* offline messages expire (disk bound) */
#define FUZZ_CHUNKED 256u           /* bytes written in small chunks */
#define FUZZ_MAX_CONNS 256u         /* connections not freed: a leak */

#define FUZZ_CHECK(cond, ...)                                                \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_conn: %s:%d: check failed: %s: ",          \
                    __FILE__, __LINE__, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            __builtin_trap();                                                \
        }                                                                    \
    } while (0)

/* The server under test: one loop, its store, its configuration. */
static uv_loop_t *g_loop;
static server g_srv;
static config g_cfg;
static store *g_store;
static store_callbacks g_cb;
static int g_port;
static char g_dir[512];
static uint64_t g_inputs, g_closed, g_idle, g_live_checks;

/* One client socket of the harness. */
typedef struct client {
    const char *name;
    int fd;
    int eof;              /* the server closed its side (FIN or reset) */
    int ctl_ok;           /* control frames may be sent to it */
    int welcomed;         /* a WELCOME arrived */
    /* received bytes not yet decoded (at most one partial frame) */
    uint8_t *in;
    size_t len, cap;
    uint64_t frames;
    /* the liveness check: a data frame with this sender and body */
    uint32_t want_sender;
    const uint8_t *want;
    size_t want_len;
    int got_want;
    /* what is left to send; chunked below `chunk_until` bytes sent */
    const uint8_t *out;
    size_t out_len, sent, chunk, chunk_until;
    int shut_after;       /* shutdown(SHUT_WR) once out is sent */
    int shut;
} client;

static void client_die(client *c, const char *what) {
    fprintf(stderr, "fuzz_conn: client %s: %s: %s\n", c->name, what,
            strerror(errno));
    __builtin_trap();
}

/* Decode every complete frame in c->in and check it (see the top). */
static void client_decode(client *c) {
    size_t off = 0;
    for (;;) {
        frame_s2c f;
        long r = frame_decode_s2c(c->in + off, c->len - off, g_cfg.max_frame,
                                  &f);
        FUZZ_CHECK(r != FRAME_ETOOBIG, "client %s: frame of %u bytes, over "
                   "max_frame", c->name, (unsigned)f.len);
        if (r == FRAME_PARTIAL) break;
        FUZZ_CHECK(r > 0, "client %s: decoder result %ld", c->name, r);
        c->frames++;
        if (f.type == FRAME_MSG) { /* a message to a CONV client */
            FUZZ_CHECK(c->ctl_ok, "client %s: MSG sent to a client that "
                       "never sent a control frame", c->name);
            FUZZ_CHECK(f.len >= FRAME_MSG_PRE && frame_is_data(f.body[8]) &&
                       (f.body[9] & ~(FRAME_MSG_OWN | FRAME_MSG_GROUP)) == 0,
                       "client %s: malformed MSG of %u bytes", c->name,
                       (unsigned)f.len);
            f.type = f.body[8];
            f.body += FRAME_MSG_PRE;
            f.len -= FRAME_MSG_PRE;
        }
        if (frame_is_data(f.type)) {
            FUZZ_CHECK(f.sender != 0, "client %s: data frame from user 0",
                       c->name);
            if (c->want && f.sender == c->want_sender &&
                f.len == c->want_len && memcmp(f.body, c->want, f.len) == 0)
                c->got_want = 1;
        } else {
            FUZZ_CHECK(c->ctl_ok, "client %s: control frame 0x%02x sent to "
                       "a client that never sent one", c->name, f.type);
            FUZZ_CHECK((f.sender == 0) == (f.type != FRAME_TYPING),
                       "client %s: control frame 0x%02x from user %u "
                       "(only TYPING names one)", c->name, f.type,
                       (unsigned)f.sender);
            switch (f.type) {
            case FRAME_WELCOME: {
                frame_welcome w;
                FUZZ_CHECK(frame_parse_welcome(f.body, f.len, &w) == 0,
                           "client %s: WELCOME of %u bytes", c->name,
                           (unsigned)f.len);
                FUZZ_CHECK(w.version == FRAME_VERSION && w.user != 0,
                           "client %s: WELCOME version %u user %u", c->name,
                           w.version, (unsigned)w.user);
                c->welcomed = 1;
                break;
            }
            case FRAME_ERROR: {
                frame_error e;
                FUZZ_CHECK(frame_parse_error(f.body, f.len, &e) == 0 &&
                           e.reason_len <= FRAME_REASON_MAX,
                           "client %s: ERROR body of %u bytes", c->name,
                           (unsigned)f.len);
                FUZZ_CHECK(e.code != 0, "client %s: ERROR code 0", c->name);
                break;
            }
            case FRAME_ACK:
                FUZZ_CHECK(f.len == FRAME_ACK_SIZE, "client %s: ACK of %u "
                           "bytes", c->name, (unsigned)f.len);
                break;
            case FRAME_PING:
            case FRAME_PONG:
                FUZZ_CHECK(f.len <= FRAME_PING_MAX, "client %s: PING/PONG of "
                           "%u bytes", c->name, (unsigned)f.len);
                break;
            case FRAME_GROUPS:
                FUZZ_CHECK(f.len >= FRAME_GROUP_PRE && f.body[0] >= 1 &&
                           f.body[0] <= 8, "client %s: GROUPS of %u bytes, "
                           "op %u", c->name, (unsigned)f.len,
                           f.len ? f.body[0] : 0);
                break;
            case FRAME_HISTORY_PAGE: { /* whole entries, as many as said */
                FUZZ_CHECK(f.len >= FRAME_PAGE_PRE, "client %s: HISTORY page "
                           "of %u bytes", c->name, (unsigned)f.len);
                size_t at = FRAME_PAGE_PRE, n = 0;
                size_t count = (size_t)(f.body[5] << 8 | f.body[6]);
                while (at + FRAME_PAGE_ENTRY <= f.len) {
                    at += FRAME_PAGE_ENTRY + frame_rd32(f.body + at + 26);
                    n++;
                }
                FUZZ_CHECK(at == f.len && n == count, "client %s: HISTORY "
                           "page of %zu entries in %u bytes, said %zu",
                           c->name, n, (unsigned)f.len, count);
                break;
            }
            case FRAME_RECEIPT: {
                frame_receipt rc;
                FUZZ_CHECK(frame_parse_receipt(f.body, f.len, &rc) == 0,
                           "client %s: RECEIPT of %u bytes", c->name,
                           (unsigned)f.len);
                FUZZ_CHECK(rc.what != FRAME_RCPT_QUERY, "client %s: a QUERY "
                           "from the server", c->name);
                break;
            }
            case FRAME_TYPING: {
                frame_typing t;
                FUZZ_CHECK(frame_parse_typing(f.body, f.len, &t) == 0,
                           "client %s: TYPING of %u bytes", c->name,
                           (unsigned)f.len);
                break;
            }
            case FRAME_POSTED: {
                uint64_t cid, id;
                FUZZ_CHECK(frame_parse_posted(f.body, f.len, &cid, &id) == 0 &&
                           id != 0, "client %s: POSTED of %u bytes", c->name,
                           (unsigned)f.len);
                break;
            }
            case FRAME_PRESENCE: {
                frame_presence p;
                FUZZ_CHECK(frame_parse_presence(f.body, f.len, &p) == 0,
                           "client %s: PRESENCE of %u bytes", c->name,
                           (unsigned)f.len);
                break;
            }
            default:
                FUZZ_CHECK(0, "client %s: frame type 0x%02x from the server",
                           c->name, f.type);
            }
        }
        off += (size_t)r;
    }
    if (off) {
        memmove(c->in, c->in + off, c->len - off);
        c->len -= off;
    }
}

/* Read what is there; 1 when anything happened. */
static int client_read(client *c) {
    int progress = 0;
    while (!c->eof) {
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap ? c->cap * 2 : 131072;
            uint8_t *p = realloc(c->in, cap);
            if (!p) abort();
            c->in = p;
            c->cap = cap;
        }
        ssize_t n = read(c->fd, c->in + c->len, c->cap - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            progress = 1;
            client_decode(c);
            continue;
        }
        if (n == 0 || errno == ECONNRESET || errno == EPIPE) {
            c->eof = 1;
            return 1;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return progress;
        if (errno == EINTR) continue;
        client_die(c, "read");
    }
    return progress;
}

/* Write what the socket takes (one chunk below chunk_until); 1 when
 * anything happened. A server that closed us ends the writing. */
static int client_write(client *c) {
    int progress = 0;
    while (c->sent < c->out_len && !c->eof) {
        size_t n = c->out_len - c->sent;
        int chunked = c->chunk && c->sent < c->chunk_until;
        if (chunked && n > c->chunk) n = c->chunk;
        ssize_t w = send(c->fd, c->out + c->sent, n, MSG_NOSIGNAL);
        if (w > 0) {
            c->sent += (size_t)w;
            progress = 1;
            if (chunked) return 1; /* let the server read it alone */
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return progress;
        if (errno == EINTR) continue;
        if (errno == EPIPE || errno == ECONNRESET) {
            c->sent = c->out_len; /* the server closed: nothing more to say */
            break;
        }
        client_die(c, "send");
    }
    if (c->sent == c->out_len && c->shut_after && !c->shut) {
        c->shut = 1;
        if (shutdown(c->fd, SHUT_WR) && errno != ENOTCONN)
            client_die(c, "shutdown");
        progress = 1;
    }
    return progress;
}

static void client_open(client *c, const char *name) {
    memset(c, 0, sizeof *c);
    c->name = name;
    if (g_srv.stopping) {
        fprintf(stderr, "fuzz_conn: the server was told to stop (SIGINT or "
                "SIGTERM): ending the run\n");
        exit(0);
    }
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) client_die(c, "socket");
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Blocking: the kernel completes it against the listen backlog; the
     * server accepts when its loop runs next. */
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa)) {
        /* Interrupted (libFuzzer's SIGALRM): the connection goes on in the
         * background; wait for it and take its result. */
        if (errno != EINTR) client_die(c, "connect");
        struct pollfd pf = {c->fd, POLLOUT, 0};
        int r, err = 0;
        socklen_t el = sizeof err;
        do r = poll(&pf, 1, FUZZ_PUMP_MS);
        while (r < 0 && errno == EINTR);
        if (r <= 0) client_die(c, "connect (waiting)");
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
            if (err) errno = err;
            client_die(c, "connect");
        }
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK))
        client_die(c, "fcntl");
}

/* Close with a reset (SO_LINGER 0): no TIME_WAIT left behind. */
static void client_close(client *c) {
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c->fd);
    free(c->in);
    c->fd = -1;
    c->in = NULL;
}

static void client_send(client *c, const uint8_t *p, size_t n, int shut) {
    c->out = p;
    c->out_len = n;
    c->sent = 0;
    c->shut_after = shut;
}

typedef int (*pump_done)(client **cl, size_t n);

/* Run the server's loop and the clients until done() says so (1), or no
 * event for FUZZ_IDLE_MS, or FUZZ_PUMP_MS in all (0). */
static int pump(client **cl, size_t ncl, pump_done done) {
    uint64_t start = uv_hrtime();
    int idle_ms = 0;
    for (;;) {
        uv_run(g_loop, UV_RUN_NOWAIT);
        int progress = 0;
        for (size_t i = 0; i < ncl; i++) {
            progress |= client_write(cl[i]);
            progress |= client_read(cl[i]);
        }
        if (done(cl, ncl)) return 1;
        if ((uv_hrtime() - start) / 1000000 > FUZZ_PUMP_MS) return 0;
        if (progress) {
            idle_ms = 0;
            continue;
        }
        struct pollfd pf[8];
        size_t np = 0;
        pf[np++] = (struct pollfd){uv_backend_fd(g_loop), POLLIN, 0};
        for (size_t i = 0; i < ncl && np < 8; i++) {
            if (cl[i]->eof) continue;
            short ev = POLLIN;
            if (cl[i]->sent < cl[i]->out_len) ev |= POLLOUT;
            pf[np++] = (struct pollfd){cl[i]->fd, ev, 0};
        }
        int timeout = uv_backend_timeout(g_loop);
        if (timeout < 0 || timeout > FUZZ_POLL_MS) timeout = FUZZ_POLL_MS;
        int r = poll(pf, np, timeout);
        if (r < 0 && errno != EINTR) {
            perror("fuzz_conn: poll");
            __builtin_trap();
        }
        if (r > 0)
            idle_ms = 0;
        else if ((idle_ms += timeout ? timeout : 1) >= FUZZ_IDLE_MS)
            return 0;
    }
}

static int done_first_welcomed(client **cl, size_t n) {
    (void)n;
    return cl[0]->welcomed || cl[0]->eof;
}
static int done_all_welcomed(client **cl, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!cl[i]->welcomed && !cl[i]->eof) return 0;
    return 1;
}
static int done_last_closed(client **cl, size_t n) { return cl[n - 1]->eof; }
static int done_first_got_want(client **cl, size_t n) {
    (void)n;
    return cl[0]->got_want || cl[0]->eof;
}
static int done_no_conns(client **cl, size_t n) {
    (void)cl;
    (void)n;
    return server_nconns(&g_srv) == 0;
}

/* After every client is closed: the server must free every connection. */
static void settle(void) {
    if (pump(NULL, 0, done_no_conns)) return;
    FUZZ_CHECK(server_nconns(&g_srv) < FUZZ_MAX_CONNS, "%llu connections still open "
               "after their clients reset them",
               (unsigned long long)server_nconns(&g_srv));
}

static void put_hello(uint8_t *out, uint32_t user, uint8_t flags, size_t *n) {
    uint8_t body[FRAME_HELLO_MIN];
    size_t bl = frame_put_hello(body, FRAME_VERSION, flags, NULL, 0, NULL, 0);
    frame_put_c2s_hdr(out, user, 0, FRAME_HELLO, (uint32_t)bl);
    memcpy(out + FRAME_C2S_HDR, body, bl);
    *n = FRAME_C2S_HDR + bl;
}

/* A fresh pair must route one frame: TX -> RX, body "live <n>". */
static void check_live(void) {
    client rx, tx;
    client *both[2] = {&rx, &tx};
    uint8_t hr[32], ht[32], msg[FRAME_C2S_HDR + 32];
    size_t nr, nt;
    char body[32];
    int bl = snprintf(body, sizeof body, "live %llu",
                      (unsigned long long)++g_live_checks);

    client_open(&rx, "live-rx");
    client_open(&tx, "live-tx");
    rx.ctl_ok = tx.ctl_ok = 1;
    put_hello(hr, FUZZ_LIVE_RX, 0, &nr);
    put_hello(ht, FUZZ_LIVE_TX, 0, &nt);
    client_send(&rx, hr, nr, 0);
    client_send(&tx, ht, nt, 0);
    FUZZ_CHECK(pump(both, 2, done_all_welcomed) && rx.welcomed &&
               tx.welcomed, "liveness check %llu: no WELCOME (rx %d, tx %d) "
               "after %llu inputs", (unsigned long long)g_live_checks,
               rx.welcomed, tx.welcomed, (unsigned long long)g_inputs);
    frame_put_c2s_hdr(msg, FUZZ_LIVE_TX, FUZZ_LIVE_RX, FRAME_TEXT,
                      (uint32_t)bl);
    memcpy(msg + FRAME_C2S_HDR, body, (size_t)bl);
    client_send(&tx, msg, FRAME_C2S_HDR + (size_t)bl, 0);
    rx.want_sender = FUZZ_LIVE_TX;
    rx.want = (const uint8_t *)body;
    rx.want_len = (size_t)bl;
    FUZZ_CHECK(pump(both, 2, done_first_got_want) && rx.got_want,
               "liveness check %llu: the frame was not routed after %llu "
               "inputs", (unsigned long long)g_live_checks,
               (unsigned long long)g_inputs);
    client_close(&rx);
    client_close(&tx);
    settle();
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* At exit (end of -max_total_time or -runs): stop the server gracefully,
 * free everything (LeakSanitizer then checks the server's own cleanup),
 * remove the data directory. Bounded by alarm(). */
static void fuzz_conn_exit(void) {
    alarm(30);
    server_stop(&g_srv);
    uv_run(g_loop, UV_RUN_DEFAULT);
    server_free(&g_srv);
    store_free(g_store);
    uv_loop_close(g_loop);
    free(g_loop);
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    fprintf(stderr, "fuzz_conn: %llu inputs: %llu closed by the server, %llu "
            "ended idle; %llu liveness checks passed\n",
            (unsigned long long)g_inputs, (unsigned long long)g_closed,
            (unsigned long long)g_idle, (unsigned long long)g_live_checks);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    const char *lv = getenv("FUZZ_CONN_LOG");
    log_threshold = lv ? log_level_parse(lv) : LOG_ERROR;
    if (log_threshold < 0) log_threshold = LOG_ERROR;

    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/chat-fuzz-conn-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "fuzz_conn: mkdtemp %s: %s\n", g_dir, strerror(errno));
        exit(1);
    }
    config_defaults(&g_cfg);
    snprintf(g_cfg.bind, sizeof g_cfg.bind, "127.0.0.1");
    g_cfg.port = 0;
    snprintf(g_cfg.data_dir, sizeof g_cfg.data_dir, "%s", g_dir);
    g_cfg.fsync_full = 0;
    g_cfg.offline_ttl_ms = FUZZ_TTL_MS;
    g_cfg.log_level = log_threshold;

    g_loop = malloc(sizeof *g_loop);
    if (!g_loop || uv_loop_init(g_loop)) {
        fprintf(stderr, "fuzz_conn: cannot create a libuv loop\n");
        exit(1);
    }
    g_cb = server_store_callbacks;
    g_cb.ctx = &g_srv;
    store_config scfg = config_store(&g_cfg);
    char err[512];
    if (store_open(&g_store, g_loop, &scfg, &g_cb, err, sizeof err)) {
        fprintf(stderr, "fuzz_conn: store_open: %s\n", err);
        exit(1);
    }
    int r = server_init(&g_srv, g_loop, &g_cfg, g_store);
    if (r == 0) r = server_listen(&g_srv, LISTEN_CHAT, 0, &g_port);
    if (r) {
        fprintf(stderr, "fuzz_conn: cannot start the server: %s\n",
                uv_strerror(r));
        exit(1);
    }
    atexit(fuzz_conn_exit);
    fprintf(stderr, "fuzz_conn: server on 127.0.0.1:%d, data in %s\n", g_port,
            g_dir);
    check_live();
    return 0;
}

/* Might the server count this stream's sender as one that speaks control
 * frames? Walks the frames as the server sees them (a header is judged as
 * soon as its 13 bytes are in); any frame of a control type, even one the
 * server refuses, counts. */
static int stream_has_control(const uint8_t *p, size_t n) {
    size_t off = 0;
    for (;;) {
        frame_c2s f = {0};
        long r = frame_decode_c2s(p + off, n - off, g_cfg.max_frame, &f);
        /* The server judges a frame by its header, as soon as it is in. */
        if (r == FRAME_ETOOBIG) return frame_is_control(f.type);
        if (r == FRAME_PARTIAL)
            return n - off >= FRAME_C2S_HDR && frame_is_control(f.type);
        if (r <= 0) return 0;
        if (frame_is_control(f.type)) return 1;
        off += (size_t)r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t sel = size ? data[0] : 0;
    const uint8_t *in = size ? data + 1 : data;
    size_t n = size ? size - 1 : 0;
    g_inputs++;

    /* B's stream: an optional valid first frame, then the input. */
    uint8_t *stream = malloc(n + 64);
    if (!stream) abort();
    size_t pre = 0;
    if (sel & 1) {
        if (sel & 2) {
            static const char hi[] = "hi";
            frame_put_c2s_hdr(stream, FUZZ_USER_B, FUZZ_USER_A, FRAME_TEXT, 2);
            memcpy(stream + FRAME_C2S_HDR, hi, 2);
            pre = FRAME_C2S_HDR + 2;
        } else {
            put_hello(stream, FUZZ_USER_B, (sel & 4) ? FRAME_FLAG_ACKS : 0,
                      &pre);
        }
    }
    if (n) memcpy(stream + pre, in, n);
    size_t len = pre + n;

    client a, b;
    client *both[2] = {&a, &b};
    uint8_t ha[32];
    size_t nha;
    client_open(&a, "A");
    client_open(&b, "B");
    a.ctl_ok = 1;
    put_hello(ha, FUZZ_USER_A, 0, &nha);
    client_send(&a, ha, nha, 0);
    /* Only A is pumped until it is welcomed: B is connected but silent. */
    FUZZ_CHECK(pump(both, 1, done_first_welcomed) && a.welcomed,
               "receiver A got no WELCOME (input %llu)",
               (unsigned long long)g_inputs);

    b.ctl_ok = stream_has_control(stream, len);
    client_send(&b, stream, len, 1);
    if (sel & 8) {
        b.chunk = (size_t)(sel >> 4) + 1;
        b.chunk_until = FUZZ_CHUNKED;
    }
    if (pump(both, 2, done_last_closed))
        g_closed++;
    else
        g_idle++;

    client_close(&a);
    client_close(&b);
    free(stream);
    settle();
    if (g_inputs % FUZZ_CHECK_EVERY == 0) check_live();
    return 0;
}
