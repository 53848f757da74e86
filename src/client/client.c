/*
 * client.c -- libchat's session: socket, outgoing queue, acknowledgements,
 * reconnect. The public contract is in include/chat.h; the wire format comes
 * from src/proto/frame.h (the server's codec, not a copy).
 *
 * States and the functions that move between them:
 *
 *   IDLE --chat_connect/start_connect--> CONNECTING
 *   CONNECTING --check_connect, TLS--> HANDSHAKE (new SSL session)
 *   CONNECTING --check_connect/session_start, control=1--> HELLO (HELLO
 *                queued in `out`)
 *   CONNECTING --check_connect/session_start, control=0--> READY
 *   HANDSHAKE --tls_step, handshake done--> HELLO or READY (session_start)
 *   CONNECTING, HANDSHAKE, HELLO --check_conn_timeout--> lost()
 *   HELLO --handle_welcome--> READY
 *   any connected --lost()--> BACKOFF (reconnect=1, or a failover to the
 *                next server before the session was ready) or IDLE
 *   BACKOFF --chat_process when the deadline passed--> CONNECTING
 *   any --chat_disconnect--> IDLE
 *
 * Which server an attempt goes to, and the delay before it, are servers.c's
 * (round robin; the backoff only after a whole round failed).
 *
 * The outgoing queue is one singly linked list of messages, oldest first:
 *
 *   head ... (written, waiting for ACK) ... stage ... (not fully written) ... tail
 *
 * Invariants:
 * - Every queued message counts in q_frames/q_bytes; the bounds apply to the
 *   whole list (unsent + unacknowledged).
 * - Messages before `stage` have been fully written on this connection and
 *   carry conn_seq = their 1-based number on it; `stage` and later have
 *   conn_seq 0. stage_off bytes of `stage` have been written.
 * - Without ACKS granted, a message leaves the list once fully written, so
 *   head == stage.
 * - Seqs increase along the list, so "every seq below head->seq is handled"
 *   and chat_acked() needs no counter.
 * - A message's frame (chat__msg_format) is a POST with its cid when the
 *   connection's WELCOME granted CONV, else a bare data frame. Nothing is
 *   written before WELCOME, and handle_welcome formats the whole queue, so
 *   every message written on a connection has the form that connection
 *   speaks.
 * - msg_id_max only grows, across reconnects: a MSG with an id at or below
 *   it is counted for the ACK and dropped (a redelivery).
 * - `out` only ever holds whole control frames and is written only at a
 *   data-frame boundary (stage_off == 0), so frames never interleave.
 * - `gen` changes whenever the connection is closed; code that runs a
 *   callback re-checks it before touching connection state again.
 * - With TLS, bytes of `out` and of the queue count as written only once
 *   their ciphertext is in the kernel: tls_fl_out/tls_fl_data bytes (one
 *   record at most) have been encrypted but not fully sent yet, and nothing
 *   more is encrypted until they are. So the accounting above (stage,
 *   conn_seq, "handled once written" without ACKS) means the same thing
 *   over TLS as over plain TCP.
 */
#include "chat.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/client_int.h"
#include "client/tls.h"
#include "common/buf.h"
#include "proto/frame.h"

_Static_assert((int)CHAT_TEXT == (int)FRAME_TEXT &&
                   (int)CHAT_VIDEO == (int)FRAME_VIDEO,
               "chat.h types must match the codec");
_Static_assert((int)CHAT_SERR_TOOBIG == (int)FRAME_ERR_TOOBIG &&
                   (int)CHAT_SERR_AUTH == (int)FRAME_ERR_AUTH &&
                   (int)CHAT_SERR_SLOW == (int)FRAME_ERR_SLOW,
               "chat.h server errors must match the codec");

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static uint64_t now_ms(const chat_client *c) {
    if (c->clock_ms) return c->clock_ms(c->ud);
    struct timespec ts = {0, 0};
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* always exists on Linux */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int chat__control_frame(chat_client *c, uint8_t type, uint32_t len,
                        uint8_t **body) {
    int r = buf_reserve(&c->out, FRAME_C2S_HDR + (size_t)len, CHAT__OUT_LIMIT);
    if (r) return r;
    uint8_t *p = c->out.data + c->out.len;
    frame_put_c2s_hdr(p, c->user, 0, type, len);
    c->out.len += FRAME_C2S_HDR + (size_t)len;
    *body = p + FRAME_C2S_HDR;
    return 0;
}

/* Append a whole control frame to `out`. Returns 0 or a BUF_E* code (the
 * frame is then not queued; callers treat control frames as best effort or
 * retry them later). */
static int put_control(chat_client *c, uint8_t type, const uint8_t *body,
                       uint32_t len) {
    uint8_t *p;
    int r = chat__control_frame(c, type, len, &p);
    if (r == 0 && len) memcpy(p, body, len);
    return r;
}

void chat__msg_remove(chat_client *c, chat__msg *m) {
    chat__msg **pp = &c->head, *prev = NULL;
    while (*pp && *pp != m) { prev = *pp; pp = &(*pp)->next; }
    if (!*pp) return;
    *pp = m->next;
    if (c->tail == m) c->tail = prev;
    if (c->stage == m) { c->stage = m->next; c->stage_off = 0; }
    c->q_frames--;
    c->q_bytes -= m->len;
    free(m);
}

static chat__msg *msg_by_conn_seq(chat_client *c, uint64_t conn_seq) {
    for (chat__msg *m = c->head; m && m != c->stage; m = m->next)
        if (m->conn_seq == conn_seq) return m;
    return NULL;
}

/* Close the socket and forget everything tied to the connection; queued
 * frames stay and will be resent from the head. O(queued frames). */
static void close_conn(chat_client *c) {
    ctls_conn_free(c->tls);
    c->tls = NULL;
    c->tls_fl_out = c->tls_fl_data = 0;
    c->tls_more = 0;
    c->conn_deadline = 0;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->gen++;
    c->in.len = 0;
    c->out.len = 0;
    c->acks_granted = c->conv_granted = c->signals_granted = 0;
    c->sent_count = c->recv_count = c->recv_acked = 0;
    for (chat__msg *m = c->head; m; m = m->next) m->conn_seq = 0;
    c->stage = c->head;
    c->stage_off = 0;
}

/* After chat__server_failed: the next attempt, now (the next server of a
 * round) or after the backoff (a whole round failed). */
static void schedule_reconnect(chat_client *c) {
    c->state = CHAT_ST_BACKOFF;
    c->deadline = now_ms(c) + chat__retry_delay(c);
}

/* The connection is gone (err < 0): reset, schedule, tell the user: first
 * the requests that will get no answer, then on_disconnected. Without
 * options.reconnect, an attempt that never got its session ready still
 * fails over to the next server until each failed once (chat.h). */
static void lost(chat_client *c, int err) {
    int was_ready = c->state == CHAT_ST_READY;
    close_conn(c);
    chat__server_failed(c);
    int retry = c->auto_reconnect || (!was_ready && c->fails < c->n_servers);
    if (retry && err != CHAT_EAUTH && err != CHAT_EPROTO && err != CHAT_ETLSVERIFY)
        schedule_reconnect(c);
    else
        c->state = CHAT_ST_IDLE;
    chat__reqs_end(c, err);
    if (c->cb.on_disconnected) c->cb.on_disconnected(c, err, c->ud);
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */
/* ------------------------------------------------------------------ */

void chat_options_init(chat_options *o) {
    memset(o, 0, sizeof *o);
    o->control = 1;
    o->acks = 1;
    o->conv = 1;
    o->backoff_min_ms = 100;
    o->backoff_max_ms = 5000;
    o->max_frame = 16u << 20;
    o->max_recv = 16u << 20;
    o->max_queue_bytes = (size_t)64 << 20;
    o->max_queue_frames = 4096;
    o->connect_timeout_ms = CHAT__CONNECT_TIMEOUT;
}

chat_client *chat_new(const chat_options *o, int *err) {
    return chat_new_ex(o, err, NULL, 0);
}

/* The base of the client ids of this client's messages: random, so that
 * two clients of one device (two runs of a program) never share a cid, in
 * 1..2^63, so that base + seq is never 0 and never wraps. 0 or -1 (errno). */
static int random_cid_base(uint64_t *out) {
    uint64_t r;
    ssize_t n;
    do n = getrandom(&r, sizeof r, 0); /* 8 bytes: never short, but EINTR */
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof r) return -1;
    *out = (r >> 1) + 1;
    return 0;
}

/* 1 when o->device is NULL, or a valid name (frame_device_valid). */
static int device_ok(const char *d) {
    return !d || frame_device_valid((const uint8_t *)d, strnlen(d, FRAME_DEVICE_MAX + 1));
}

chat_client *chat_new_ex(const chat_options *o, int *err, char *msg,
                         size_t msg_len) {
    int e = CHAT_EINVAL;
    chat_client *c = NULL;
    if (msg && msg_len) msg[0] = 0;
    if (!o || !o->host || !o->host[0] || o->port == 0 || o->user == 0 ||
        o->backoff_min_ms > o->backoff_max_ms || o->max_queue_frames == 0 ||
        (o->password && strlen(o->password) > CHAT__PASSWORD_MAX)) {
        if (msg && msg_len)
            snprintf(msg, msg_len, "invalid options: host, port and user are required, "
                     "the password is at most %u bytes, backoff_min_ms <= "
                     "backoff_max_ms", CHAT__PASSWORD_MAX);
        goto fail;
    }
    if (!device_ok(o->device)) {
        if (msg && msg_len)
            snprintf(msg, msg_len, "invalid device name: at most %u characters "
                     "from A-Z a-z 0-9 . _ -", FRAME_DEVICE_MAX);
        goto fail;
    }
    e = CHAT_ENOMEM;
    c = calloc(1, sizeof *c);
    if (!c) goto fail;
    if (random_cid_base(&c->cid_base)) {
        e = CHAT_ESYS;
        if (msg && msg_len)
            snprintf(msg, msg_len, "cannot draw random bytes (getrandom): %s",
                     strerror(errno));
        goto fail;
    }
    if (o->device) {
        c->device_len = (uint8_t)strlen(o->device); /* <= 32: checked above */
        memcpy(c->device, o->device, c->device_len);
    }
    c->fd = -1;
    if (chat__servers_init(c, o->host, o->port)) goto fail;
    if (o->password) {
        c->password_len = (uint32_t)strlen(o->password);
        c->password = malloc(c->password_len + 1u);
        if (!c->password) goto fail;
        memcpy(c->password, o->password, c->password_len + 1u);
    }
    c->user = o->user;
    c->control = o->control != 0;
    c->want_acks = o->acks != 0;
    c->want_conv = o->conv != 0;
    c->want_signals = o->conv != 0 && o->signals != 0;
    c->auto_reconnect = o->reconnect != 0;
    c->bo_min = o->backoff_min_ms;
    c->bo_max = o->backoff_max_ms;
    c->max_frame_opt = o->max_frame;
    c->max_recv = o->max_recv;
    c->max_q_bytes = o->max_queue_bytes;
    c->max_q_frames = o->max_queue_frames;
    c->cb = o->cb;
    c->ud = o->userdata;
    c->clock_ms = o->clock_ms;
    c->connect_timeout = o->connect_timeout_ms;
    c->state = CHAT_ST_IDLE;
    if (o->tls) {
        e = ctls_ctx_new(&c->tls_ctx, o->tls, msg, msg_len);
        if (e) goto fail;
    }
    if (err) *err = CHAT_OK;
    return c;
fail:
    if (c) { chat__servers_free(c); free(c->password); free(c); }
    if (e == CHAT_ENOMEM && msg && msg_len && !msg[0]) snprintf(msg, msg_len, "out of memory");
    if (err) *err = e;
    return NULL;
}

/* HELLO or READY: the byte stream is up (TCP, and TLS when on). */
static int conn_up(const chat_client *c) {
    return c->fd >= 0 && (c->state == CHAT_ST_HELLO || c->state == CHAT_ST_READY);
}

void chat_free(chat_client *c) {
    if (!c) return;
    if (c->tls && conn_up(c)) ctls_shutdown(c->tls, c->fd);
    ctls_conn_free(c->tls);
    ctls_ctx_free(c->tls_ctx);
    if (c->fd >= 0) close(c->fd);
    chat__msg *m = c->head;
    while (m) { chat__msg *n = m->next; free(m); m = n; }
    free(c->scratch);
    buf_free(&c->in);
    buf_free(&c->out);
    chat__servers_free(c);
    free(c->password);
    free(c);
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */
/* ------------------------------------------------------------------ */

/* Resolve the next server (chat__server_next) and start a non-blocking
 * connect. Even an immediate success leaves the state CONNECTING so that
 * callbacks only run in chat_process. */
static int start_connect(chat_client *c) {
    const chat__server *sv = chat__server_next(c);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)sv->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    c->tls_err[0] = 0;
    if (getaddrinfo(sv->host, port, &hints, &res) != 0 || !res)
        return CHAT_ERESOLVE;
    int rc = CHAT_ECONNECT;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) { rc = CHAT_ESYS; c->last_errno = errno; continue; }
        int one = 1;
        /* (void): without TCP_NODELAY small frames may wait up to 40 ms
         * (Nagle), which costs latency, never correctness */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            c->fd = fd;
            c->state = CHAT_ST_CONNECTING;
            c->conn_deadline = c->connect_timeout ? now_ms(c) + c->connect_timeout : 0;
            rc = CHAT_OK;
            break;
        }
        rc = CHAT_ECONNECT;
        c->last_errno = errno;
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

/* An immediate failure moves on to the next server inside the call (no
 * callback: nothing to report yet), until the round is complete. */
int chat_connect(chat_client *c) {
    if (!c) return CHAT_EINVAL;
    if (c->state != CHAT_ST_IDLE && c->state != CHAT_ST_BACKOFF) return CHAT_ESTATE;
    if (c->state == CHAT_ST_IDLE) c->fails = 0; /* a new start: a new round */
    int rc;
    for (;;) {
        rc = start_connect(c);
        if (rc == 0) return 0;
        chat__server_failed(c);
        if (c->fails % c->n_servers == 0) break; /* every server failed */
    }
    if (c->auto_reconnect) schedule_reconnect(c);
    else c->state = CHAT_ST_IDLE;
    return rc;
}

int chat_disconnect(chat_client *c) {
    if (!c) return CHAT_EINVAL;
    if (c->tls && conn_up(c)) ctls_shutdown(c->tls, c->fd);
    close_conn(c);
    c->state = CHAT_ST_IDLE;
    chat__reqs_end(c, 0); /* forgotten: no callback here */
    return CHAT_OK;
}

int chat_reconnect(chat_client *c) {
    if (!c) return CHAT_EINVAL;
    (void)chat_disconnect(c); /* cannot fail for a non-NULL client */
    return chat_connect(c); /* from IDLE: resets the failure count */
}

/* The byte stream is up (TCP connected, TLS handshake done): start the
 * session. 0 or CHAT_ENOMEM. */
static int session_start(chat_client *c) {
    if (c->control) { /* conn_deadline runs on until WELCOME */
        uint8_t body[FRAME_HELLO_CONV_MIN + FRAME_DEVICE_MAX + CHAT__PASSWORD_MAX];
        uint8_t flags = (uint8_t)((c->want_acks ? FRAME_FLAG_ACKS : 0) |
                                  (c->want_conv ? FRAME_FLAG_CONV : 0) |
                                  (c->want_signals ? FRAME_FLAG_SIGNALS : 0));
        size_t n = frame_put_hello(body, FRAME_VERSION, flags,
                                   (const uint8_t *)c->device, c->device_len,
                                   c->password, c->password_len);
        if (put_control(c, FRAME_HELLO, body, (uint32_t)n)) return CHAT_ENOMEM;
        c->state = CHAT_ST_HELLO;
    } else {
        c->state = CHAT_ST_READY;
        c->conn_deadline = 0;
        c->fails = 0;
        if (c->cb.on_connected) c->cb.on_connected(c, c->ud);
    }
    return 0;
}

/* HANDSHAKE: advance the TLS handshake. 0 = not yet or done, < 0 failed. */
static int tls_step(chat_client *c) {
    int r = ctls_handshake(c->tls, c->fd, c->tls_err, sizeof c->tls_err);
    if (r <= 0) return r;
    return session_start(c);
}

/* CONNECTING: has the connect finished? 0 = not yet or done, < 0 failed. */
static int check_connect(chat_client *c) {
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    if (poll(&p, 1, 0) <= 0) return 0;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
        c->last_errno = soerr ? soerr : errno;
        return CHAT_ECONNECT;
    }
    if (!c->tls_ctx) return session_start(c);
    int rc = ctls_conn_new(c->tls_ctx, c->servers[c->cur].host, &c->tls, c->tls_err,
                           sizeof c->tls_err);
    if (rc < 0) return rc;
    c->state = CHAT_ST_HANDSHAKE;
    return tls_step(c);
}

/* CONNECTING/HANDSHAKE/HELLO past the connect timeout: the error to
 * report, or 0. HELLO counts: a frozen server's kernel still completes TCP
 * handshakes from its listen queue, and only a missing WELCOME shows it
 * (with several servers, the next one is then tried). */
static int check_conn_timeout(chat_client *c) {
    if ((c->state != CHAT_ST_CONNECTING && c->state != CHAT_ST_HANDSHAKE &&
         c->state != CHAT_ST_HELLO) ||
        !c->conn_deadline || now_ms(c) < c->conn_deadline)
        return 0;
    if (c->state != CHAT_ST_HANDSHAKE) {
        c->last_errno = ETIMEDOUT;
        return CHAT_ECONNECT;
    }
    snprintf(c->tls_err, sizeof c->tls_err, "the handshake did not finish within "
             "%u ms (is it a TLS port?)", (unsigned)c->connect_timeout);
    return CHAT_ETLS;
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */
/* ------------------------------------------------------------------ */

static int handle_welcome(chat_client *c, const frame_s2c *f) {
    frame_welcome w;
    if (frame_parse_welcome(f->body, f->len, &w) != 0) return CHAT_EPROTO;
    if (c->state != CHAT_ST_HELLO) return 0; /* duplicate: ignore */
    c->state = CHAT_ST_READY;
    c->conn_deadline = 0;
    c->acks_granted = c->want_acks && (w.flags & FRAME_FLAG_ACKS);
    c->conv_granted = c->want_conv && (w.flags & FRAME_FLAG_CONV);
    c->signals_granted = c->want_signals && c->conv_granted &&
                         (w.flags & FRAME_FLAG_SIGNALS);
    c->server_max_frame = w.max_frame;
    /* Nothing is written before WELCOME: every queued message is unsent and
     * takes the form this connection speaks (POST or bare). */
    for (chat__msg *m = c->head; m; m = m->next) chat__msg_format(c, m);
    c->fails = 0;
    unsigned gen = c->gen;
    /* Frames queued under a larger limit, and group messages when CONV is
     * not granted, can never be sent: refuse them. */
    static const char big[] = "larger than the server's max_frame";
    static const char nogroup[] = "group messages need a server that grants CONV";
    for (chat__msg *m = c->head, *next; m; m = next) {
        next = m->next;
        int group = (m->flags & FRAME_MSG_GROUP) && !c->conv_granted;
        if (m->len <= w.max_frame && !group) continue;
        uint64_t seq = m->seq;
        chat__msg_remove(c, m);
        if (c->cb.on_error)
            c->cb.on_error(c, group ? CHAT_SERR_GROUP : CHAT_SERR_TOOBIG, seq,
                           group ? nogroup : big,
                           (uint32_t)(group ? sizeof nogroup : sizeof big) - 1, c->ud);
        if (c->gen != gen) return 0;
    }
    if (c->cb.on_connected) c->cb.on_connected(c, c->ud);
    return 0;
}

static int handle_ack(chat_client *c, const frame_s2c *f) {
    uint64_t count;
    if (frame_parse_ack(f->body, f->len, &count) != 0) return CHAT_EPROTO;
    if (!c->acks_granted) return 0;
    if (count > c->sent_count) return CHAT_EPROTO;
    while (c->head && c->head != c->stage && c->head->conn_seq <= count)
        chat__msg_remove(c, c->head);
    return 0;
}

static int handle_error(chat_client *c, const frame_s2c *f) {
    frame_error e;
    if (frame_parse_error(f->body, f->len, &e) != 0) return CHAT_EPROTO;
    /* DENIED names a user id, neither a request nor a message */
    if (e.code != FRAME_ERR_DENIED && chat__req_refused(c, &e)) return 0;
    uint64_t seq = e.code == FRAME_ERR_DENIED ? e.ref : 0;
    if (e.ref && e.code != FRAME_ERR_DENIED) {
        chat__msg *m = msg_by_conn_seq(c, e.ref);
        if (m) { seq = m->seq; chat__msg_remove(c, m); }
    }
    unsigned gen = c->gen;
    if (c->cb.on_error)
        c->cb.on_error(c, e.code, seq, (const char *)e.reason, e.reason_len, c->ud);
    if (c->gen != gen) return 0;
    if (e.code == FRAME_ERR_AUTH || e.code == FRAME_ERR_NOLOGIN) return CHAT_EAUTH;
    if (e.code == FRAME_ERR_PROTO) return CHAT_EPROTO;
    return 0;
}

/* Hand a message to the application: on_msg when set, else on_message. */
static void deliver(chat_client *c, const chat_msg *m) {
    if (c->cb.on_msg)
        c->cb.on_msg(c, m, c->ud);
    else if (c->cb.on_message)
        c->cb.on_message(c, m->sender, m->type, m->body, m->len, c->ud);
}

/* MSG (CONV): counted for our ACK whatever happens next; one whose id is
 * not above the highest handed over is a redelivery, dropped. */
static int handle_msg(chat_client *c, const frame_s2c *f) {
    frame_msg m;
    if (!c->conv_granted || frame_parse_msg(f->body, f->len, &m) != 0 ||
        m.payload_len > c->max_recv)
        return CHAT_EPROTO;
    c->recv_count++;
    if (m.id <= c->msg_id_max) return 0;
    c->msg_id_max = m.id;
    chat_msg cm = {m.id, f->sender, m.to, m.kind, (m.flags & FRAME_MSG_OWN) != 0,
                   m.time_ms, m.payload, m.payload_len,
                   (m.flags & FRAME_MSG_GROUP) ? m.to : 0};
    deliver(c, &cm);
    return 0;
}

static int handle_frame(chat_client *c, const frame_s2c *f) {
    if (frame_is_data(f->type)) {
        if (f->len > c->max_recv) return CHAT_EPROTO;
        c->recv_count++;
        chat_msg cm = {0, f->sender, c->user, f->type, 0, 0, f->body, f->len, 0};
        deliver(c, &cm);
        return 0;
    }
    if (!c->control) return 0; /* the article's server sends none */
    switch (f->type) {
    case FRAME_MSG: return handle_msg(c, f);
    case FRAME_GROUPS: return chat__handle_groups(c, f);
    case FRAME_HISTORY_PAGE: return chat__handle_page(c, f);
    case FRAME_RECEIPT:
    case FRAME_TYPING:
    case FRAME_PRESENCE:
    case FRAME_POSTED: return chat__handle_signal(c, f);
    case FRAME_WELCOME: return handle_welcome(c, f);
    case FRAME_ACK: return handle_ack(c, f);
    case FRAME_ERROR: return handle_error(c, f);
    case FRAME_PING:
        if (f->len > FRAME_PING_MAX) return CHAT_EPROTO;
        /* (void): best effort; with the output full the PONG is skipped
         * and the server's next PING asks again */
        (void)put_control(c, FRAME_PONG, f->body, f->len);
        return 0;
    default: return 0; /* PONG, unknown types: skipped */
    }
}

/* The largest frame body to accept: a MSG of max_recv payload bytes, or a
 * history page whose last message has max_recv (each frame's own limit is
 * checked where it is handled). */
static uint32_t recv_limit(const chat_client *c) {
    return c->max_recv > UINT32_MAX - CHAT__PAGE_SLACK ? UINT32_MAX
                                                       : c->max_recv + CHAT__PAGE_SLACK;
}

/* Decode and handle every complete frame in `in`. */
static int parse_input(chat_client *c) {
    unsigned gen = c->gen;
    size_t off = 0;
    uint32_t limit = recv_limit(c);
    while (!c->held) { /* held: the rest stays buffered, unacknowledged */
        frame_s2c f;
        long n = frame_decode_s2c(c->in.data + off, c->in.len - off, limit, &f);
        if (n == FRAME_PARTIAL) break;
        if (n < 0) return CHAT_EPROTO;
        off += (size_t)n;
        int rc = handle_frame(c, &f);
        if (c->gen != gen) return 0; /* a callback closed the connection */
        if (rc < 0) return rc;
    }
    buf_consume(&c->in, off);
    return 0;
}

/* 1 when a complete frame waits in `in` (after chat_release). */
static int frame_buffered(const chat_client *c) {
    uint64_t total = frame_s2c_total(c->in.data, c->in.len);
    return total && total <= c->in.len;
}

static int do_read(chat_client *c) {
    unsigned gen = c->gen;
    c->tls_more = 0;
    size_t limit = FRAME_S2C_HDR + (size_t)recv_limit(c) + CHAT__READ_CHUNK;
    for (int i = 0; i < CHAT__READS_PER_CALL; i++) {
        if (buf_reserve(&c->in, CHAT__READ_CHUNK, limit)) return CHAT_ENOMEM;
        ssize_t r;
        if (c->tls) {
            /* One record (<= 16 KiB) per call: stop only when nothing is
             * left (OpenSSL then holds at most part of a record), or at
             * the read cap: records may then wait inside OpenSSL, which
             * poll cannot see, so tls_more makes chat_next_timeout_ms 0. */
            r = ctls_read(c->tls, c->fd, c->in.data + c->in.len, CHAT__READ_CHUNK,
                          c->tls_err, sizeof c->tls_err);
            if (r <= 0) return (int)r;
        } else {
            r = recv(c->fd, c->in.data + c->in.len, CHAT__READ_CHUNK, 0);
            if (r == 0) return CHAT_ECLOSED;
            if (r < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
                return CHAT_ECLOSED;
            }
        }
        c->in.len += (size_t)r;
        int rc = parse_input(c);
        if (rc < 0) return rc;
        if (c->gen != gen || c->fd < 0) return 0;
        if (c->held) return 0; /* chat_hold: no more is read */
        if (!c->tls && (size_t)r < CHAT__READ_CHUNK) return 0; /* drained */
    }
    c->tls_more = c->tls != NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

int chat_process(chat_client *c, int readable, int writable) {
    (void)readable; (void)writable; /* hints: reads and writes are tried anyway */
    if (!c) return CHAT_EINVAL;
    int rc = 0;
    if (c->state == CHAT_ST_BACKOFF && now_ms(c) >= c->deadline) {
        rc = start_connect(c);
        if (rc < 0) { lost(c, rc); goto done; }
    }
    if (c->state == CHAT_ST_CONNECTING) {
        rc = check_connect(c);
        if (rc < 0) { lost(c, rc); goto done; }
    } else if (c->state == CHAT_ST_HANDSHAKE) {
        rc = tls_step(c);
        if (rc < 0) { lost(c, rc); goto done; }
    }
    rc = check_conn_timeout(c);
    if (rc < 0) { lost(c, rc); goto done; }
    if (conn_up(c) && !c->held && frame_buffered(c)) { /* held frames, released */
        rc = parse_input(c);
        if (rc < 0) { lost(c, rc); goto done; }
    }
    if (conn_up(c) && !c->held) {
        rc = do_read(c);
        if (rc < 0) { lost(c, rc); goto done; }
    }
    if (c->fd >= 0 && c->acks_granted && c->recv_count > c->recv_acked) {
        uint8_t body[FRAME_ACK_SIZE];
        frame_put_ack(body, c->recv_count);
        if (put_control(c, FRAME_ACK, body, FRAME_ACK_SIZE) == 0)
            c->recv_acked = c->recv_count;
    }
    if (conn_up(c)) {
        rc = chat__flush(c);
        if (rc < 0) { lost(c, rc); goto done; }
    }
done:;
    uint64_t a = chat_acked(c);
    if (a > c->acked_reported) {
        c->acked_reported = a;
        if (c->cb.on_acked) c->cb.on_acked(c, a, c->ud);
    }
    return rc;
}

int chat_run_once(chat_client *c, int timeout_ms) {
    if (!c) return CHAT_EINVAL;
    if (c->state == CHAT_ST_IDLE) return CHAT_ENOTCONN;
    int64_t t = chat_next_timeout_ms(c);
    int to = timeout_ms;
    if (t >= 0 && (to < 0 || t < to)) to = t > 1000000000 ? 1000000000 : (int)t;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (chat_want_write(c)) p.events |= POLLOUT;
    int r = c->fd >= 0 ? poll(&p, 1, to) : poll(NULL, 0, to);
    if (r < 0) return errno == EINTR ? 0 : CHAT_ESYS;
    if (r == 0) p.revents = 0;
    return chat_process(c, (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0,
                        (p.revents & POLLOUT) != 0);
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */
/* ------------------------------------------------------------------ */

int chat_fd(const chat_client *c) { return c ? c->fd : -1; }

int chat_want_write(const chat_client *c) {
    if (!c || c->fd < 0) return 0;
    if (c->state == CHAT_ST_CONNECTING) return 1;
    if (c->tls && ctls_want_write(c->tls)) return 1;
    if (c->state == CHAT_ST_HANDSHAKE) return 0;
    return c->out.len > 0 || (c->state == CHAT_ST_READY && c->stage != NULL);
}

int64_t chat_next_timeout_ms(const chat_client *c) {
    if (!c) return -1;
    if (conn_up(c) && !c->held &&
        (frame_buffered(c) || c->tls_more || (c->tls && ctls_pending(c->tls))))
        return 0;
    uint64_t deadline;
    if (c->state == CHAT_ST_BACKOFF)
        deadline = c->deadline;
    else if ((c->state == CHAT_ST_CONNECTING || c->state == CHAT_ST_HANDSHAKE ||
              c->state == CHAT_ST_HELLO) && c->conn_deadline)
        deadline = c->conn_deadline;
    else
        return -1;
    uint64_t now = now_ms(c);
    return now >= deadline ? 0 : (int64_t)(deadline - now);
}

uint64_t chat_acked(const chat_client *c) {
    if (!c) return 0;
    return c->head ? c->head->seq - 1 : c->last_seq;
}

int chat_state(const chat_client *c) { return c ? c->state : CHAT_ST_IDLE; }
int chat_acks_granted(const chat_client *c) { return c ? c->acks_granted : 0; }
int chat_conv_granted(const chat_client *c) { return c ? c->conv_granted : 0; }
int chat_signals_granted(const chat_client *c) { return c ? c->signals_granted : 0; }

uint32_t chat_max_frame(const chat_client *c) {
    if (!c) return 0;
    return c->server_max_frame ? c->server_max_frame : c->max_frame_opt;
}

uint32_t chat_queued_frames(const chat_client *c) { return c ? c->q_frames : 0; }
size_t chat_queued_bytes(const chat_client *c) { return c ? c->q_bytes : 0; }

int chat_last_errno(const chat_client *c) { return c ? c->last_errno : 0; }

const char *chat_tls_error(const chat_client *c) { return c ? c->tls_err : ""; }

int chat_tls_enabled(const chat_client *c) { return c && c->tls_ctx != NULL; }

int chat_hold(chat_client *c) {
    if (!c) return CHAT_EINVAL;
    c->held = 1;
    return CHAT_OK;
}

int chat_release(chat_client *c) {
    if (!c) return CHAT_EINVAL;
    c->held = 0;
    return CHAT_OK;
}

size_t chat_unsent_bytes(const chat_client *c) {
    if (!c) return 0;
    size_t n = 0;
    for (const chat__msg *m = c->stage; m; m = m->next)
        n += chat__msg_wire_len(m);
    return n >= c->stage_off ? n - c->stage_off : 0;
}

int chat_receiving(const chat_client *c, uint64_t *have, uint64_t *total) {
    if (!c) return 0;
    uint64_t t = frame_s2c_total(c->in.data, c->in.len);
    if (t == 0 || t <= c->in.len) return 0; /* no header yet, or complete */
    if (have) *have = c->in.len;
    if (total) *total = t;
    return 1;
}
