/*
 * rconn.h -- one asynchronous Redis connection on a libuv loop (the cluster
 * store's, docs/CLUSTER.md sections 5 and 6).
 *
 * libuv TCP, an optional TLS client (the engine libchat uses too, OpenSSL
 * over memory BIOs: src/common/tlsc.c), hiredis only as a library: its
 * redisReader parses replies (commands are encoded here, rconn.c).
 * Not hiredis' async context (CLUSTER.md section 5: no TLS, no timeouts, a
 * refused connect is dropped).
 *
 * What it does: connects to the first of up to RCONN_MAX_ADDRS candidate
 * addresses that accepts (TCP, then TLS, then `AUTH [user] password`, then,
 * with require_master, `ROLE` must say "master"), pipelines commands (one
 * write per loop iteration for everything queued in it), hands replies back
 * in FIFO order, delivers pub/sub pushes apart, fails everything pending
 * when the connection breaks, and reconnects with a jittered backoff.
 *
 * States (rconn_state(), changed only by one function in rconn.c that
 * asserts the edge is in its table):
 *
 *   IDLE --rconn_start--> DOWN (timer at 0 ms: the first attempt never
 *        starts inside rconn_start)
 *   DOWN --backoff timer--> CONNECTING (a round over the addresses begins
 *        at the first address)
 *   CONNECTING --TCP connected, tls on--> TLS
 *   CONNECTING|TLS --connected (and handshake done): AUTH, ROLE or, when
 *        neither is asked for, PING sent--> HELLO
 *   HELLO --every answer fine--> READY (on_ready)
 *   CONNECTING|TLS|HELLO --this address failed (refused, deadline, TLS
 *        verify, wrong password, not master), more addresses in the
 *        round--> CONNECTING (the next address)
 *   CONNECTING|TLS|HELLO --the round's last address failed--> DOWN
 *        (backoff; on_down at the first failure of a streak)
 *   READY --error, EOF, protocol error, command deadline--> DOWN
 *        (on_down; every command in flight fails; backoff)
 *   any but CLOSING|CLOSED --rconn_close--> CLOSING
 *   CLOSING --every completion ran, every handle closed--> CLOSED
 *        (`closed` callback, then the memory is freed by rconn itself)
 *
 * "HELLO" waits for the replies to AUTH and ROLE (pipelined in one write),
 * or to a PING when neither is asked for: READY always means that Redis
 * answered on this connection (a frozen server accepts TCP connections in
 * its backlog, and a server that wants a password answers PING with
 * NOAUTH, a reason on_down reports). It is not Redis' HELLO command (RESP2
 * only here). The connect deadline (connect_timeout_ms) covers one
 * address's CONNECTING + TLS + HELLO.
 *
 * Callbacks. Everything runs on the loop thread, from libuv callbacks, never
 * inside the rconn_* call that caused it:
 *   - a command's completion cb(ud, reply, status):
 *       status RCONN_OK: `reply` is Redis' answer (which may itself be an
 *         error reply: reply->type == REDIS_REPLY_ERROR); valid only during
 *         the callback (freed after it returns: copy what you keep);
 *       status < 0 (reply NULL): RCONN_EDOWN (sent, the connection failed
 *         before the reply: it may or may not have executed),
 *         RCONN_EUNSENT (never written: it did not execute; safe to retry),
 *         RCONN_ECLOSED (rconn_close: executed or not). rconn_last_error
 *         says why (during the callback: the latest failure).
 *     Successful replies complete from the read callback; failures from a
 *     uv_idle callback (the next loop iteration at the latest).
 *   - on_ready(ud): the connection is READY (after each successful
 *     (re)connect, after AUTH and the role check). Commands queued inside
 *     on_ready go out BEFORE every command that waited for READY
 *     (RCONN_WAIT) and in the same write: the owner's setup (SCRIPT LOAD,
 *     CONFIG GET, SUBSCRIBE) comes first. Subscriptions do not survive a
 *     reconnect: subscribe again here.
 *   - on_down(ud, reason): once per failure streak, when it begins: READY
 *     (or the first start) -> failing. Not again for each failed round of
 *     the same streak; the next on_ready ends the streak. `reason` names
 *     the address and the cause ("127.0.0.1:6379: connection refused");
 *     valid during the callback.
 *   - on_push(ud, reply): pub/sub (RESP2): in subscribed mode the arrays
 *     "message", "pmessage", "smessage" and the confirmations
 *     "subscribe", "psubscribe", "unsubscribe", "punsubscribe" (and their
 *     s- forms) come here, not to a command's cb; valid during the call.
 *     A SUBSCRIBE/PSUBSCRIBE/UNSUBSCRIBE/PUNSUBSCRIBE command's own cb runs
 *     after the confirmation of its last channel (that confirmation as
 *     `reply`), or with its error reply. Subscribed mode begins when the
 *     first such command is answered and ends when the subscription count
 *     Redis reports drops to 0.
 *   Every callback may call any rconn_* function, rconn_close included.
 *
 * Flushing: rconn_command only appends; a uv_prepare handle writes all
 * commands queued in a loop iteration in ONE write just before the loop
 * polls (so commands queued from timers, I/O, idle and check callbacks all
 * share it). At most one write is in flight; what is queued meanwhile goes
 * in the next. rconn_flush writes at once (a caller that queued from its
 * own uv_prepare callback, which may run after ours, calls it).
 *
 * Not READY: a command queued while the state is not READY completes with
 * RCONN_EUNSENT on the next iteration (fail fast: what the store wants for
 * puts), unless queued with RCONN_WAIT: then it waits (in order) until
 * READY, or until it has waited wait_timeout_ms (then RCONN_EUNSENT).
 * When READY breaks, queued commands not yet written fail with
 * RCONN_EUNSENT, except RCONN_WAIT ones, which keep waiting.
 *
 * Deadlines: the command deadline fires when the OLDEST command in flight
 * has waited longer than command_timeout_ms for its reply; the connection
 * is then considered dead (READY -> DOWN, every command in flight fails
 * with RCONN_EDOWN). Blocking commands (BLPOP, WAIT) must therefore use
 * timeouts well under it. With keepalive_ms, an idle READY connection sends
 * an internal PING after that long without traffic, so a frozen Redis is
 * noticed on an idle (e.g. subscribed) connection too.
 *
 * Limits: every command is charged its encoded length + RCONN_CMD_OVERHEAD
 * bytes from rconn_command until its completion has run, and the charge of
 * all commands never passes max_queue_bytes (rconn_command refuses with
 * RCONN_ELIMIT, queuing nothing). A reply is parsed incrementally; more
 * than max_reply_bytes of one reply buffered unparsed is a protocol error
 * (the connection goes DOWN).
 *
 * Memory: rconn owns its struct, copies of the options' strings (the
 * password wiped when freed), the queued commands' bytes, one read buffer
 * (RCONN_READ_CHUNK), the hiredis reader, the TLS context (one SSL_CTX)
 * and, per connection, an SSL object and its buffers. Nothing is logged;
 * everything is reported to the owner.
 */
#ifndef CHAT_SERVER_RCONN_H
#define CHAT_SERVER_RCONN_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "server/metrics.h"

#define RCONN_MAX_ADDRS 8
#define RCONN_HOST_MAX 255             /* bytes of a host name or address */
#define RCONN_CMD_OVERHEAD 64u         /* bytes charged per command */
#define RCONN_READ_CHUNK ((size_t)64 * 1024) /* bytes read per read callback */
#define RCONN_REASON_MAX 256           /* bytes of rconn_last_error */

/* Defaults (an option left 0 takes its default). */
#define RCONN_CONNECT_TIMEOUT_MS 2000u
#define RCONN_COMMAND_TIMEOUT_MS 5000u
#define RCONN_BACKOFF_MIN_MS 100u
#define RCONN_BACKOFF_MAX_MS 2000u
#define RCONN_MAX_QUEUE_BYTES (64u << 20)
#define RCONN_MAX_REPLY_BYTES (512u << 20)

/* Codes: 0 or negative; rconn_strerror names them. */
enum {
    RCONN_OK = 0,
    RCONN_EINVAL = -1,   /* a bad argument or option (err says which) */
    RCONN_ENOMEM = -2,   /* out of memory */
    RCONN_ELIMIT = -3,   /* max_queue_bytes reached: nothing queued */
    RCONN_EDOWN = -4,    /* completion: sent, the connection failed before
                            its reply (it may have executed) */
    RCONN_EUNSENT = -5,  /* completion: never written (not READY, or the
                            connection failed before the write): it did
                            not execute */
    RCONN_ECLOSED = -6,  /* completion: rconn_close; or a call after it */
    RCONN_ETLSCONF = -7, /* rconn_new: a TLS file is unusable (err says) */
    RCONN_ESTATE = -8    /* rconn_start when not IDLE */
};

typedef enum rconn_state {
    RCONN_IDLE = 0,
    RCONN_DOWN,
    RCONN_CONNECTING,
    RCONN_TLS,
    RCONN_HELLO,
    RCONN_READY,
    RCONN_CLOSING,
    RCONN_CLOSED,
    RCONN_NSTATES
} rconn_state;

/* Per-command flags (rconn_command_ex). */
#define RCONN_WAIT 1u /* not READY: wait for READY instead of failing fast */

typedef struct rconn rconn;

/* A command's completion (see "Callbacks" above). */
typedef void (*rconn_cb)(void *ud, const redisReply *reply, int status);

typedef struct rconn_addr {
    const char *host; /* a numeric IPv4/IPv6 address (no brackets) or a
                         name (resolved with uv_getaddrinfo at each
                         attempt; every address it gives is tried) */
    uint16_t port;
} rconn_addr;

/* Options, copied by rconn_new (strings included: the caller's may go).
 * Zero means the default for every number. */
typedef struct rconn_options {
    rconn_addr addrs[RCONN_MAX_ADDRS]; /* candidates, in order of preference */
    unsigned naddrs;                   /* 1..RCONN_MAX_ADDRS */
    const char *user;     /* ACL user (AUTH user password); NULL: AUTH password */
    const char *password; /* NULL: no AUTH */
    int tls;              /* 1: TLS (certificate chain and host name always
                             verified) */
    const char *tls_ca_file;     /* trusted CAs; NULL: the system's */
    const char *tls_cert_file;   /* client certificate (with its key) or NULL */
    const char *tls_key_file;
    const char *tls_server_name; /* the name the certificate must carry;
                                    NULL: each address's host */
    int require_master;          /* 1: after AUTH, ROLE must say "master",
                                    else the next address is tried */
    unsigned connect_timeout_ms; /* per address: TCP + TLS + AUTH + ROLE */
    unsigned command_timeout_ms; /* the oldest command in flight */
    unsigned wait_timeout_ms;    /* an RCONN_WAIT command not READY;
                                    0: command_timeout_ms */
    unsigned backoff_min_ms;     /* first wait after a failed round, doubled
                                    per failed round up to backoff_max_ms,
                                    each wait drawn in [w/2, w] */
    unsigned backoff_max_ms;
    unsigned keepalive_ms;       /* 0: none; else PING after this long idle */
    size_t max_queue_bytes;      /* see "Limits" */
    size_t max_reply_bytes;
    void (*on_ready)(void *ud);
    void (*on_down)(void *ud, const char *reason);
    void (*on_push)(void *ud, const redisReply *reply); /* NULL: dropped */
    void *ud;                    /* for the three hooks above */
} rconn_options;

/* Counters for metrics (read with rconn_stats; one writer: the loop). */
typedef struct rconn_stats {
    uint64_t commands;      /* owner commands written to a socket */
    uint64_t replies;       /* owner commands completed with RCONN_OK */
    uint64_t failed;        /* owner commands completed with status < 0 */
    uint64_t pushes;        /* pub/sub pushes delivered */
    uint64_t connects;      /* times READY was reached */
    uint64_t attempts_failed; /* addresses that failed an attempt */
    uint64_t downs;         /* READY -> DOWN (connection lost) */
    uint64_t deadlines;     /* of those, by the command deadline */
    uint64_t writes;        /* socket writes (one per batch of commands) */
    uint64_t bytes_out, bytes_in; /* on the socket (ciphertext with TLS) */
    metrics_hist rtt;       /* METRICS_LATENCY_US: write of a batch -> the
                               read that completed each command */
} rconn_stats;

/* Make a connection on loop (state IDLE; nothing happens until
 * rconn_start). Checks the options (addresses, ports, cert without key...)
 * and, with tls, loads the CA and client certificate now. Returns 0 with
 * *out set, RCONN_EINVAL, RCONN_ETLSCONF (err: a sentence naming the
 * option, the file and the cause) or RCONN_ENOMEM. The caller owns *out
 * until rconn_close, which frees it. err may be NULL. */
int rconn_new(rconn **out, uv_loop_t *loop, const rconn_options *o,
              char *err, size_t errlen);

/* IDLE -> DOWN: the first attempt starts on the loop's next timer run.
 * 0 or RCONN_ESTATE. */
int rconn_start(rconn *c);

/* Queue one command: argv[0..argc) with lengths argvlen (binary safe;
 * argvlen NULL: strlen of each). Encoded at once (the caller's argv may
 * go when this returns). cb (NULL: none) runs exactly once, later, with
 * ud. Returns 0 (queued), or, synchronously and with nothing queued and no
 * callback: RCONN_ELIMIT, RCONN_ENOMEM, RCONN_EINVAL (argc < 1),
 * RCONN_ECLOSED (after rconn_close). O(encoded length). */
int rconn_command(rconn *c, int argc, const char **argv,
                  const size_t *argvlen, rconn_cb cb, void *ud);

/* The same with flags (RCONN_WAIT). */
int rconn_command_ex(rconn *c, unsigned flags, int argc, const char **argv,
                     const size_t *argvlen, rconn_cb cb, void *ud);

/* Write what is queued now instead of at the loop's prepare phase (when
 * READY and no write is in flight; else it does nothing). A failed write
 * is reported later, as any failure. */
void rconn_flush(rconn *c);

/* Close: every command queued, waiting or in flight completes later with
 * RCONN_ECLOSED (never inside this call); then the handles close; then
 * rconn frees c and calls closed(ud) (NULL: nothing is called). c must not
 * be used once closed runs (nor, with closed NULL, once the loop ran on).
 * The loop can be closed after that. Idempotent: a second call changes
 * nothing (its `closed` is ignored). */
void rconn_close(rconn *c, void (*closed)(void *ud), void *ud);

rconn_state rconn_get_state(const rconn *c);
const char *rconn_state_name(rconn_state s);

/* 1 when the diagram above has the edge from -> to (for tests). */
int rconn_edge(rconn_state from, rconn_state to);

/* The latest failure, a sentence naming the address ("" before any);
 * owned by c, valid until the next failure. */
const char *rconn_last_error(const rconn *c);

/* "host:port" of the address of the current or latest attempt ("" before
 * any); owned by c. */
const char *rconn_peer(const rconn *c);

/* A static name for a code ("ok", "queue limit reached", ...). */
const char *rconn_strerror(int code);

/* Bytes charged now (see "Limits"): the back-pressure signal. O(1). */
size_t rconn_queued_bytes(const rconn *c);

const rconn_stats *rconn_stats_get(const rconn *c);

/* Assert the invariants listed at the top of rconn.c; returns 1 (for
 * assert(rconn_check(c))). Called after every callback in builds without
 * NDEBUG. O(commands pending). */
int rconn_check(const rconn *c);

#endif
