/*
 * client_int.h -- libchat's internals shared by its files: the client's
 * struct (its states, queue and invariants are described in client.c) and
 * the few functions one file calls in another. Not installed; the functions
 * here are hidden from programs that link libchat.
 */
#ifndef CHAT_CLIENT_INT_H
#define CHAT_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "client/tls.h"
#include "common/buf.h"
#include "proto/frame.h"

#define CHAT__PASSWORD_MAX 1024u
#define CHAT__READ_CHUNK 65536u
#define CHAT__READS_PER_CALL 16
#define CHAT__IOV 64
#define CHAT__OUT_LIMIT 65536u /* control frames only: HELLO, ACK, PONG */
#define CHAT__TLS_CHUNK 16384u /* plaintext per TLS record */
#define CHAT__CONNECT_TIMEOUT 10000u
/* A history page may pass max_recv by this much: the server fills a page
 * while it holds under 256 KiB of payload (so its last message may be one
 * of max_recv bytes), plus the page's prefix and up to FRAME_HISTORY_MAX
 * entry headers. Bigger than a MSG's prefix. */
#define CHAT__PAGE_SLACK (FRAME_PAGE_PRE + FRAME_HISTORY_MAX * FRAME_PAGE_ENTRY + \
                          256u * 1024)

/* Room before a queued message's body: a POST's 13-byte header and 10-byte
 * prefix. A bare data frame uses the last 13 bytes of it (see msg_format in
 * client_send.c), so switching a message between the two never moves its
 * body. */
#define CHAT__MSG_PRE (FRAME_C2S_HDR + FRAME_POST_PRE)

/* A request (GROUP or HISTORY) waiting for its answer on this connection. */
#define CHAT__REQ_HISTORY 0xFFu /* `op` of a HISTORY request */
#define CHAT__REQ_BASE 0x80000000u /* request numbers: 2^31 .. 2^32-1 */
typedef struct chat__req {
    uint32_t req;   /* its number, echoed in the answer or ERROR ref */
    uint32_t group; /* the group it names (0: none, CREATE, LIST) */
    uint8_t op;     /* chat_group_op 1-7, or CHAT__REQ_HISTORY */
} chat__req;

typedef struct chat__msg {
    struct chat__msg *next;
    uint64_t seq;      /* user-visible sequence number */
    uint64_t conn_seq; /* 1-based number on this connection once written */
    uint32_t len;      /* body length */
    uint32_t to;       /* receiver */
    uint8_t type;      /* 1-4 */
    uint8_t flags;     /* POST flags: FRAME_MSG_GROUP (`to` is a group) */
    uint8_t off;       /* where the frame starts in `frame`: 0 (POST) or
                          FRAME_POST_PRE (bare data frame) */
    uint8_t frame[];   /* CHAT__MSG_PRE bytes of room, then the body */
} chat__msg;

/* The bytes of m on the wire, and their count. */
static inline const uint8_t *chat__msg_wire(const chat__msg *m) {
    return m->frame + m->off;
}
static inline size_t chat__msg_wire_len(const chat__msg *m) {
    return CHAT__MSG_PRE - m->off + (size_t)m->len;
}

/* One server of the list (chat_set_servers; servers.c). */
typedef struct chat__server {
    char *host;    /* owned copy, 1-CHAT_HOST_MAX bytes */
    uint16_t port; /* != 0 */
} chat__server;

struct chat_client {
    /* copied options */
    uint32_t user;
    uint8_t *password;
    uint32_t password_len;
    char device[FRAME_DEVICE_MAX + 1]; /* "" = the default device */
    uint8_t device_len;
    int control, want_acks, want_conv, want_signals, auto_reconnect;
    uint32_t bo_min, bo_max, max_frame_opt, max_recv;
    size_t max_q_bytes;
    uint32_t max_q_frames;
    chat_callbacks cb;
    void *ud;
    uint64_t (*clock_ms)(void *);
    uint32_t connect_timeout;  /* ms, 0 = none */
    ctls_ctx *tls_ctx;         /* NULL = plaintext */

    /* connection */
    int state;
    int fd;
    unsigned gen;
    buf in;
    buf out;
    int acks_granted;
    int conv_granted;          /* queued messages go out as POST, MSG come in */
    int signals_granted;       /* RECEIPT, TYPING, PRESENCE both ways */
    uint32_t server_max_frame; /* from the last WELCOME; 0 = none yet */
    uint64_t sent_count;       /* data frames fully written on this connection */
    uint64_t recv_count;       /* data frames received on this connection */
    uint64_t recv_acked;       /* the count of our last ACK */
    unsigned fails;            /* attempts failed or sessions lost in a row
                                  since the last ready session (or chat_connect
                                  from IDLE); fails / n_servers whole rounds */
    uint64_t deadline;         /* BACKOFF: when to reconnect */
    int last_errno;            /* errno behind the last ECONNECT / ESYS */
    int held;                  /* chat_hold: hand over no more frames */
    uint64_t conn_deadline;    /* CONNECTING/HANDSHAKE/HELLO: give up then;
                                  0 = none */
    ctls_conn *tls;            /* this connection's TLS session, or NULL */
    size_t tls_fl_out;         /* bytes of `out` encrypted, not yet sent */
    size_t tls_fl_data;        /* bytes of queued frames encrypted, not yet sent */
    int tls_more;              /* the last TLS read stopped at the read cap */
    char tls_err[256];         /* why the last CHAT_ETLS/ETLSVERIFY */

    /* servers (servers.c): the list, and where the next attempt goes */
    chat__server servers[CHAT_SERVERS_MAX];
    unsigned n_servers;        /* 1..CHAT_SERVERS_MAX */
    unsigned cur;              /* index of the server of the connection, of
                                  the attempt in progress or of the last one */
    int advance;               /* the last attempt on `cur` failed or its
                                  session was lost: the next goes to cur + 1 */
    uint16_t default_port;     /* chat_options.port: for ports[i] == 0 */

    /* outgoing queue */
    chat__msg *head, *tail, *stage;
    size_t stage_off;
    uint32_t q_frames;
    size_t q_bytes;
    uint64_t last_seq;       /* last seq handed out */
    uint64_t acked_reported; /* last value given to on_acked */
    uint64_t cid_base;       /* a message's POST cid is cid_base + seq:
                                random, in 1..2^63 (never 0, never wraps) */

    /* receiving */
    uint64_t msg_id_max;     /* highest MSG id handed to the application */

    /* requests (client_req.c): waiting for an answer on this connection */
    chat__req reqs[CHAT_REQUESTS_MAX];
    unsigned n_reqs;
    uint32_t next_req;       /* low 31 bits of the next request number */
    void *scratch;           /* decoded answers (lists, pages), reused; */
    size_t scratch_cap;      /* freed by chat_free */
};

#define CHAT__HIDDEN __attribute__((visibility("hidden")))

/* client.c: append a control frame of `type` with a body of len bytes to
 * `out` and point *body at the room for it (to be filled before the next
 * flush). 0, BUF_ELIMIT (`out` is full) or BUF_ENOMEM. */
CHAT__HIDDEN int chat__control_frame(chat_client *c, uint8_t type, uint32_t len,
                                     uint8_t **body);

/* client.c: unlink message m from the queue (O(its position)) and free
 * it: it was delivered or refused. */
CHAT__HIDDEN void chat__msg_remove(chat_client *c, chat__msg *m);

/* client_send.c: write m's header for the current connection: a POST with
 * its cid when CONV is granted, else a bare data frame. Only for a message
 * not (partly) written on this connection. O(1). */
CHAT__HIDDEN void chat__msg_format(chat_client *c, chat__msg *m);

/* client_send.c: write what the socket takes, `out` (control frames) and
 * the queued frames in order, through TLS when the connection has it. 0,
 * or CHAT_ECLOSED / a TLS error (the connection is lost). */
CHAT__HIDDEN int chat__flush(chat_client *c);

/* servers.c: the list holds options.host:port alone (chat_new). 0 or
 * CHAT_ENOMEM. chat__servers_free frees the copies (any state). */
CHAT__HIDDEN int chat__servers_init(chat_client *c, const char *host, uint16_t port);
CHAT__HIDDEN void chat__servers_free(chat_client *c);

/* servers.c: the server the next attempt goes to: the one after the last
 * when that failed (round robin), else the same. O(1). */
CHAT__HIDDEN const chat__server *chat__server_next(chat_client *c);

/* servers.c: an attempt failed or a session was lost: count it and move
 * the next attempt on to the next server. O(1). */
CHAT__HIDDEN void chat__server_failed(chat_client *c);

/* servers.c: the delay before the next attempt after chat__server_failed:
 * 0 inside a round (a dead server costs one quick failover), the
 * exponential backoff once every server failed in a row (the k-th whole
 * round waits chat_backoff_ms(k - 1)). With one server: the backoff after
 * every failure, as before the list existed. O(1). */
CHAT__HIDDEN uint32_t chat__retry_delay(const chat_client *c);

/* client_req.c: a GROUPS / HISTORY page frame from the server: hand it to
 * on_group / on_history. 0, CHAT_EPROTO (malformed, not CONV, an answer to
 * no request) or CHAT_ENOMEM. */
CHAT__HIDDEN int chat__handle_groups(chat_client *c, const frame_s2c *f);
CHAT__HIDDEN int chat__handle_page(chat_client *c, const frame_s2c *f);

/* client_signal.c: a RECEIPT, TYPING, PRESENCE or POSTED frame from the
 * server: hand it to on_receipt / on_typing / on_presence / on_posted. 0,
 * or CHAT_EPROTO (malformed, not one the server sends, SIGNALS not
 * granted). */
CHAT__HIDDEN int chat__handle_signal(chat_client *c, const frame_s2c *f);

/* client_req.c: is ERROR e the refusal of a waiting request? Then report
 * it (on_group / on_history, or on_error when that is NULL) and return 1;
 * else 0. */
CHAT__HIDDEN int chat__req_refused(chat_client *c, const frame_error *e);

/* client_req.c: the connection is gone. err < 0: report every waiting
 * request lost with err (a lost connection); err 0: forget them silently
 * (chat_disconnect, chat_free). */
CHAT__HIDDEN void chat__reqs_end(chat_client *c, int err);

#endif
