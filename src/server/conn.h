/*
 * conn.h -- one client connection: a stack of layers and the state machine
 * that says what it may do.
 *
 * The stack, bottom up (each its own module):
 *   transport    the socket's bytes (transport.c, libuv)
 *   tls          optional: ciphertext <-> plaintext (tls.c, the sans-I/O
 *                engine; fed and drained by io.c and output.c)
 *   http         optional: an HTTP/1.1 connection of the HTTP listener
 *                (httpd.c: requests, responses, the WebSocket upgrade)
 *   websocket    after an upgrade: WebSocket messages <-> chat frames
 *                (framing_ws.c), over the framing below
 *   framing      bytes <-> chat frames (framing_raw.c)
 *   session      what the frames mean: session.c (decode, dispatch), login.c,
 *                sync.c (SYNC/LIVE, the store), deliver.c (routing policy),
 *                output.c (the output queue and the write path), close.c
 *                (closing, hand-off of unsent frames)
 * io.c assembles the stack and takes libuv's callbacks; sweep.c runs the
 * timers over the hub's lists; the server (server.c) owns the
 * connections, the connections see only the hub (hub.h).
 *
 * States (c->state), changed only by conn_to(), which asserts the edge:
 *
 *   NEW --HELLO with --auth on or CONV (login_hello)--> LOGIN
 *   NEW|LOGIN --bound, routing (login_bind)--> SYNC
 *   NEW|LOGIN --bound, --echo (login_bind)--> ECHO
 *   LOGIN --wrong password (login.c: auth_done)--> DENIED
 *   SYNC --fetch asked (sync_fetch)--> FETCHING
 *   FETCHING --page back, more to fetch (sync_fetch_done)--> SYNC
 *   FETCHING --page back, nothing further (sync_fetch_done)--> LIVE
 *   FETCHING --page back, nothing further, a message of the tail waits
 *         for its commit (sync_fetch_done)--> HELD
 *   LIVE --a message for it waits for its commit (sync_hold)--> HELD
 *   HELD --every held message committed and queued (sync_committed)--> LIVE
 *   LIVE|HELD --output would pass --max-outbuf, or (HELD) the held
 *         messages would (sync_spill)--> SYNC
 *   NEW|LOGIN|DENIED|SYNC|FETCHING|LIVE|HELD|ECHO --refusal that closes, EOF,
 *         timeout, rate limit, stop (close_finish)--> CLOSING
 *   CLOSING --output flushed, FIN sent (close.c)--> SHUTDOWN
 *   any but CLOSED --write error, linger over, EOF after FIN, out of
 *         memory, second stop signal (close_abort)--> CLOSED
 *   CLOSED --handles closed, nothing names it (conn_unref)--> freed
 *
 * NEW: no frame yet; on the hub's pending list (--login-timeout). LOGIN:
 * its HELLO's password is being checked off the loop, and (CONV) then its
 * device looked up in the store; not reading; what followed the HELLO
 * waits unparsed in the framing layer. DENIED: wrong
 * password; answered ERROR AUTH CONN_AUTH_FAIL_MS after the HELLO, then
 * CLOSING. SYNC, FETCHING, LIVE, ECHO ("bound"): bound to `user`, in the
 * router, frames are processed. SYNC: the store may hold frames for the
 * user that this connection has not been sent; new frames for the user go
 * to the store and are fetched in id order, a page at a time, as the
 * output drains (FETCHING while a page is asked for; frames stored
 * meanwhile are kept in `tail`, up to --max-outbuf). LIVE: caught up,
 * frames are appended directly. HELD: LIVE, but a message for it that
 * carries a client id is not committed yet: it, and every message after
 * it, wait in `tail` until its put completes (sync_committed), so that a
 * message is never delivered before it is durable (a resend after a crash
 * would deliver it twice: docs/PROTOCOL.md, "Effectively once"), and the
 * peer still gets its messages in id order (its device's cursor says "has
 * everything up to here"). Every message to a HELD connection is stored.
 * ECHO (--echo): frames come back. CLOSING:
 * out of the router; input read and discarded (so the peer gets our last
 * frames, not a reset); output flushed; closed after CONN_LINGER_MS at the
 * latest. SHUTDOWN: FIN sent; closed at the peer's EOF or the linger
 * timeout. CLOSED: handles closing.
 *
 * Invariants (conn_check, after every callback in debug, sanitizer and
 * fuzz builds; compiled out with NDEBUG):
 *  (1) state == NEW  <=>  on hub->pending.
 *  (2) bound  <=>  in the router (node.user != 0), and then node.user ==
 *      user != 0.
 *  (3) state == FETCHING => fetch_out; fetch_out => refs > 0.
 *  (4) refs >= puts_pending + fetch_out.
 *  (5) on hub->idle => bound, ctl and --idle-timeout on.
 *  (6) reading => state in NEW, bound, CLOSING or SHUTDOWN, not throttled,
 *      and (not hub->paused, or CLOSING/SHUTDOWN); on hub->throttled =>
 *      not reading.
 *  (7) no write in flight => out's other buffer is empty.
 *  (8) tail non-empty => FETCHING or HELD (or closing: dropped with the
 *      connection), and it is a whole number of entries (CONN_TAIL_HDR);
 *      tail_at <= tail.len, at an entry; HELD => tail_at < tail.len and
 *      the entry at tail_at waits for its commit (CONN_TAIL_HELD, id above
 *      hub.committed: hub.heldq names c with that id, holding a
 *      reference); else tail_at == 0.
 *  (9) ackq holds at most --max-unacked entries; acks == 0 => ackq empty;
 *      its seqs increase and are <= seq_out.
 * (10) ack_out <= seq_in; puts_pending == 0 unless acks.
 * (11) CLOSED => on no hub list but conns; the socket is closing or closed;
 *      resume => on hub->flush.
 * (12) state >= CLOSING => not on pending or idle, not in the router.
 * (13) the output queue's and the framing layer's own invariants hold
 *      (outq_check, framing_raw_check).
 * (14) kind == CONN_HTTP => state is NEW, CLOSING, SHUTDOWN or CLOSED and
 *      the output queue is in OUTQ_HTTP mode; else hin is empty;
 *      kind == CONN_WS <=> ws != NULL, and then the queue is in OUTQ_WS
 *      mode; kind == CONN_CHAT => OUTQ_FRAMES mode.
 * (15) a device lookup in flight (devstate ASKED) holds a reference, and a
 *      CONV connection waits for it in LOGIN; FETCHING => its device is
 *      known (READY); reported <= confirmed (the store is told no more
 *      than the peer has); client ids only with CONV, and never on an
 *      HTTP connection.
 *
 * Memory (all owned by the connection, freed with it): the struct; the
 * framing layer's block (a partial frame, at most --max-frame + 13 bytes,
 * grown as its bytes arrive); the output queue (what the kernel has not
 * taken bounded by --max-outbuf for data frames, plus at most one fetched
 * page, one tail and small control frames, plus the buffer of the write in
 * flight; large bodies referenced, not copied); `tail` (at most
 * --max-outbuf); `ackq` (at most --max-unacked entries); `wire` (TLS
 * ciphertext of one flush). The server's cron frees empty buffers once a
 * second, so an idle connection holds its struct only.
 */
#ifndef CHAT_SERVER_CONN_H
#define CHAT_SERVER_CONN_H

#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/vec.h"
#include "server/framing_raw.h"
#include "server/framing_ws.h"
#include "server/hub.h"
#include "server/netaddr.h"
#include "server/outq.h"
#include "server/ratelimit.h"
#include "server/router.h"
#include "server/tls.h"
#include "server/transport.h"

#define CONN_LINGER_MS 2000            /* how long a closing connection may flush */
#define CONN_PULL_BYTES (256u * 1024)  /* stored bytes fetched per page */
#define CONN_PULL_ROWS 1024u           /* stored rows fetched per page */
#define CONN_AUTH_FAIL_MS 1000         /* a failed login is answered after */
#define CONN_HELLO_MAX (FRAME_HELLO_MIN + 1 + FRAME_DEVICE_MAX + 1024u)
                               /* version, flags, device, password */
/* An entry of conn.tail: id u64, ts u64, from u32, to u32, grp u32, type
 * u8 (| CONN_TAIL_HELD), len u32 (last), then the body. */
#define CONN_TAIL_HDR 33u
/* In an entry's type: it carries a client id and is delivered only once
 * committed (msgref.held). */
#define CONN_TAIL_HELD 0x80u

typedef enum conn_state {
    CONN_NEW,
    CONN_LOGIN,
    CONN_DENIED,
    CONN_SYNC,
    CONN_FETCHING,
    CONN_LIVE,
    CONN_HELD,
    CONN_ECHO,
    CONN_CLOSING,
    CONN_SHUTDOWN,
    CONN_CLOSED,
    CONN_NSTATES
} conn_state;

/* Events logged at most once per connection. */
enum {
    CONN_LOGGED_SPOOF = 1u << 0,
    CONN_LOGGED_BADTYPE = 1u << 1,
    CONN_LOGGED_BADRCPT = 1u << 2,
    CONN_LOGGED_STORE = 1u << 3,
    CONN_LOGGED_HELLO = 1u << 4,
    CONN_LOGGED_SPILL = 1u << 5,
    CONN_LOGGED_FETCH = 1u << 6,
    CONN_LOGGED_RATE = 1u << 7,
    CONN_LOGGED_GROUP = 1u << 8
};

/* Its device (conn.devstate): not asked yet, asked (store_device in
 * flight: a CONV connection stays LOGIN meanwhile, another does not fetch
 * before it is known), known. */
enum { CONN_DEV_NONE, CONN_DEV_ASKED, CONN_DEV_READY };

/* What a connection speaks (conn.kind). CONN_HTTP stays NEW (on the
 * pending list, --login-timeout between requests) until it upgrades to
 * CONN_WS or closes. */
/* A run of messages of one author (and group, 0: none) queued to a
 * connection, ids first..last (not every id between is the author's). */
typedef struct rnote {
    uint64_t first, last;
    uint32_t author, grp;
} rnote;
typedef struct rnoteq {
    rnote *v;
    uint32_t head, n, cap; /* live notes: v[head..n), ids increasing */
} rnoteq;

typedef enum conn_kind { CONN_CHAT, CONN_HTTP, CONN_WS, CONN_NKINDS } conn_kind;

typedef struct conn {
    transport io;            /* the socket (first: io.c maps back to c) */
    hub *hub;
    conn_state state;
    uint8_t kind;            /* conn_kind */
    uint32_t user;           /* bound (or logging-in) user id, 0 before */
    router_node node;        /* in hub->router while bound */
    uint8_t ctl;             /* the peer has sent a control frame: it gets
                                ERRORs and keepalive PINGs */
    uint8_t acks;            /* acknowledgements granted (HELLO flag) */
    uint8_t local;           /* the peer is a loopback address */
    uint8_t eof;             /* the peer shut its write side down */
    uint8_t wfailed;         /* the write in flight failed: all unsent */
    uint8_t ack_dirty;       /* an ACK of ack_out is due at the flush */
    uint8_t pinged;          /* a keepalive PING is unanswered */
    uint8_t tail_over;       /* the tail passed its bound: fetch again */
    uint8_t fetch_out;       /* a store fetch names this connection */
    uint8_t tls_inflight;    /* TLS: the write in flight carries the
                                ciphertext of out's other buffer */
    uint8_t tls_notified;    /* TLS: close_notify queued */
    uint8_t handles;         /* libuv handles not yet closed */
    uint8_t resume;          /* on hub->flush to parse the input kept
                                during a login first */
    uint8_t metrics_only;    /* CONN_HTTP of --metrics-port (httpd.h:
                                HTTPD_METRICS) */
    int fail;                /* an output failure (a libuv error: out of
                                memory, a failed write): closed at the
                                next flush (io_flush) */
    uint16_t logged;         /* CONN_LOGGED_* */
    uint32_t refs;           /* store requests, a login check and running
                                callbacks that name this connection */
    uint32_t puts_pending;   /* of which puts of this peer's frames that
                                it wants acknowledged */
    uint32_t frames_seen;    /* frames parsed since the last rate charge */
    uint32_t ipkey;          /* the server's per-address key, 0: none */
    uint64_t seq_in;         /* data frames received (1-based refs) */
    uint64_t ack_out;        /* data frames received and handled */
    uint64_t seq_out;        /* data frames queued to the peer */
    uint64_t cursor;         /* highest store id queued to the peer (its
                                device's cursor when it bound) */
    uint64_t confirmed;      /* highest message id the peer has: ACKed,
                                or (without ACKS) taken by the kernel */
    uint64_t reported;       /* ... as last told to the store */
    uint64_t own_upto;       /* the last group message it posted that is
                                stored (output_own) */
    uint32_t dev;            /* its device's number (store_device_info) */
    uint8_t conv;            /* CONV granted: MSG frames, POST, own copies */
    uint8_t sig;             /* SIGNALS granted (with CONV): receipts,
                                typing, presence; counted in hub.nsig
                                while bound */
    uint8_t devstate;        /* CONN_DEV_*: the device is looked up */
    uint8_t devnamelen;
    uint16_t udevs, uconv;   /* its user's devices (and CONV ones among
                                them) as the store counted them last:
                                set when its device is known, then by the
                                store's `devices` callback */
    char devname[STORE_DEVICE_MAX]; /* until the lookup */
    struct cidset *cids;     /* CONV: client ids this connection sent or
                                its device did within --dedup-window
                                (cidset.h; NULL until one) */
    uint64_t t_accept;       /* uv_now at accept (NEW: login timeout), then
                                when a login's HELLO arrived (LOGIN) */
    uint64_t t_rx;           /* uv_now of the last byte received */
    uint64_t lat_t0;         /* hub.t_read_us of the first live frame
                                queued since the last write */
    uint64_t lat_n;          /* live frames queued since the last write */
    ratelimit rl;
    framing_raw raw;         /* the framing layer (CONN_CHAT, CONN_WS) */
    buf hin;                 /* CONN_HTTP: the bytes of the request being
                                read (at most HTTPD_HEAD_MAX, httpd.h) */
    framing_ws *ws;          /* CONN_WS: the WebSocket layer */
    tls_conn *tls;           /* NULL for plaintext connections */
    buf wire;                /* TLS: ciphertext of the write in flight or
                                waiting for the socket */
    outq out;
    buf tail;                /* FETCHING: messages stored for the user
                                since the fetch was asked for; HELD: from
                                tail_at, messages waiting behind one that
                                waits for its commit; each as a
                                CONN_TAIL_HDR entry and its body (8) */
    size_t tail_at;          /* HELD: the first entry not yet queued */
    seqidq ackq;             /* (seq_out, id) awaiting the peer's ACK */
    rnoteq track;            /* receipts: runs of one author's messages
                                queued to the peer, awaiting `confirmed`
                                (conn_track) */
    struct psub **subs;      /* presence.h: its subscriptions (SIGNALS),
                                at most --max-subscriptions */
    uint32_t nsubs, capsubs;
    uint32_t pres_req;       /* presence.c: the number of its last SUBSCRIBE
                                asked of the store (psub.req) */
    uint32_t last_contact;   /* the last receiver store_contact was told of
                                (a message delivered without being stored) */
    uv_timer_t *timer;       /* linger, or the failed-login delay */
    dlink all;               /* hub->conns */
    dlink plink;             /* hub->pending (NEW) or hub->idle (bound) */
    dlink tlink;             /* hub->throttled */
    dlink flink;             /* hub->flush */
    netaddr peer;
} conn;

/* "NEW", "LOGIN", ... */
const char *conn_state_name(conn_state s);

/* 1 when from -> to is an edge of the diagram above. */
int conn_edge(conn_state from, conn_state to);

/* The one function that changes c->state: asserts the edge, keeps the
 * pending list in step (1), logs the change at debug level. */
void conn_to(conn *c, conn_state to);

/* Take c out of the router (a no-op when it is not there): hub.nsig and,
 * for the user's last connection, hub_ops.offline. */
void conn_unroute(conn *c);

/* Receipts (receipts.h): the messages queued to c are noted in c->track,
 * a run of one author's messages (in one conversation) per note, while
 * some SIGNALS connection exists (hub.nsig); at most CONN_TRACK_MAX notes
 * (past it a message is not noted: its live DELIVERED is not sent, its
 * mark still moves). */
#define CONN_TRACK_MAX 65536u
void conn_track_slow(conn *c, uint64_t id, uint32_t author, uint32_t grp);
static inline void conn_track(conn *c, uint64_t id, uint32_t author,
                              uint32_t grp) {
    if (c->hub->nsig && id && author != c->user)
        conn_track_slow(c, id, author, grp);
}

/* c->confirmed moved: the notes it passed go out (hub_ops.confirmed). */
static inline void conn_confirmed(conn *c) {
    if (c->track.n > c->track.head && c->track.v[c->track.head].first <=
                                          c->confirmed)
        c->hub->ops->confirmed(c->hub, c);
}

static inline int conn_bound(const conn *c) {
    return c->state >= CONN_SYNC && c->state <= CONN_ECHO;
}
/* Not yet closing: frames may still be exchanged. */
static inline int conn_open(const conn *c) { return c->state < CONN_CLOSING; }
/* Frames are parsed (NEW or bound; not while a login is checked). */
static inline int conn_parsing(const conn *c) {
    return c->state == CONN_NEW || conn_bound(c);
}
/* LIVE or HELD: caught up with the store; new frames come directly. */
static inline int conn_takes_live(const conn *c) {
    return c->state == CONN_LIVE || c->state == CONN_HELD;
}
/* The SYNC family: the store may hold this connection's frames. */
static inline int conn_syncing(const conn *c) {
    return c->state == CONN_SYNC || c->state == CONN_FETCHING;
}

/* A new connection of hub h with its socket initialised (state NEW, on
 * hub->conns, one handle, one reference held by the caller: drop it with
 * conn_unref). NULL and *err (a libuv error) when that fails. */
conn *conn_new(hub *h, const transport_ops *ops, int *err);

/* References: anything that will call back naming c holds one. The last
 * conn_unref of a CLOSED connection whose handles are closed frees it. In
 * debug builds conn_unref checks the invariants first. */
static inline void conn_ref(conn *c) { c->refs++; }
void conn_unref(conn *c);

/* A libuv handle of c finished closing. */
void conn_handle_closed(conn *c);

/* Start c's timer (allocated on first use) for ms, calling cb. 0 or a
 * libuv error. */
int conn_timer(conn *c, uv_timer_cb cb, uint64_t ms);

/* Read or not, as the state, the rate limit and the store's back-pressure
 * say (6). 0 or a libuv error (the caller closes). */
int conn_reading(conn *c);

/* NEW: the --login-timeout starts again now (an HTTP connection that was
 * answered, or that upgraded to WebSocket). */
void conn_pending_renew(conn *c);

/* The hub's lists. Idempotent. */
void conn_idle_add(conn *c);  /* no-op unless bound, ctl, idle timeout on */
void conn_idle_touch(conn *c);/* bytes arrived: the least idle now */
void conn_throttle(conn *c);  /* onto hub->throttled (not reading) */
void conn_unthrottle(conn *c);
static inline void conn_queue_flush(conn *c); /* write at the end of this
                                                 iteration */
void conn_queue_resume(conn *c); /* parse kept input this iteration (on
                                    hub->flush, before the write) */
void conn_unlist(conn *c);    /* off every list but conns */

/* "ip:port" of the peer for log lines: a static buffer, valid until the
 * next call (one per log line; the loop thread only). */
const char *conn_peer(const conn *c);

/* Assert the invariants above (nothing in release builds). */
void conn_check(const conn *c);

/* A live data frame of `type` (1-4) was queued for c: counted, and timed
 * from this read to c's next write (hub_stats.delivery). */
static inline void conn_live_sent(conn *c, uint8_t type) {
    hub *h = c->hub;
    h->stats.frames_routed++;
    h->stats.live_type[(type - 1) & (HUB_TYPES - 1)]++;
    if (c->lat_n++ == 0) c->lat_t0 = h->t_read_us;
}

static inline void conn_queue_flush(conn *c) {
    if (!dlink_linked(&c->flink) && c->state != CONN_CLOSED)
        dlist_push_tail(&c->hub->flush, &c->flink);
}

/* A log line about connection c: its peer, and its user (the one it is
 * bound to, or during a login the one its HELLO claims; 0: none yet).
 * event: a literal from docs/OPERATIONS.md's table. conn_peer() runs only
 * when the level is on; level and c are evaluated twice (no side effects). */
#define CLOG(c, level, event, ...)                                            \
    do {                                                                      \
        if (log_enabled(level))                                               \
            log_emit(level, event, conn_peer(c), (long long)(c)->user,        \
                     __VA_ARGS__);                                            \
    } while (0)

#endif
