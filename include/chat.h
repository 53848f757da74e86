/*
 * chat.h -- libchat, the client library of chat-server (docs/PROTOCOL.md).
 *
 * One chat_client is one logical session with one server at a time: a
 * non-blocking TCP socket, a bounded queue of outgoing data frames, the
 * acknowledgement bookkeeping and the reconnect timer; with a list of
 * servers (chat_set_servers) it moves to the next one when one fails, and
 * resends there what was not acknowledged. It fits any event loop:
 *
 *     watch chat_fd(c) for reading, and for writing while chat_want_write(c);
 *     wake up after chat_next_timeout_ms(c) at the latest;
 *     then call chat_process(c, readable, writable).
 *
 * chat_run_once() does exactly that with poll(2) for simple programs.
 *
 * Conventions:
 * - Every function returning int returns 0 (CHAT_OK) or a value >= 0 on
 *   success and a negative CHAT_E* code on failure; chat_strerror() names it.
 * - No global state: clients are independent; one client must not be used
 *   from two threads at once (no internal locking).
 * - The library never logs, prints, exits or raises signals (writes use
 *   MSG_NOSIGNAL, so a closed peer cannot SIGPIPE the process).
 * - Callbacks run only inside chat_process()/chat_run_once() (never inside
 *   chat_send*, chat_group_*, chat_history, the signal calls (chat_read,
 *   chat_receipts_query, chat_typing, chat_presence_*), chat_connect or
 *   chat_disconnect). From a callback you may call chat_send*,
 *   chat_group_*, chat_history, the signal calls, chat_disconnect,
 *   chat_connect, chat_set_servers and the accessors; you must NOT call
 *   chat_free.
 * - Sequence numbers ("seq") are per client, 1-based, assigned by chat_send*
 *   in call order and never reused, across reconnects.
 * - TLS (OpenSSL, TLS 1.2 or newer) is on when chat_options.tls is set. The
 *   server's certificate chain and its name (or IP address) are always
 *   verified; there is no way to turn that off. A failed verification is
 *   CHAT_ETLSVERIFY and is never retried automatically (see on_disconnected);
 *   chat_tls_error() says why. Plaintext and TLS clients behave the same
 *   otherwise: same states (plus CHAT_ST_HANDSHAKE), same queue, same resend
 *   after a reconnect (a new TLS session each time).
 * - Devices and conversations (CONV, docs/PROTOCOL.md): unless options.conv
 *   is 0, HELLO asks for CONV with options.device. When WELCOME grants it
 *   (chat_conv_granted), every message goes out as a POST carrying a client
 *   id (cid): a random 64-bit base drawn by chat_new plus the message's
 *   seq, so the resend of a message after a reconnect carries the cid its
 *   first attempt did, and a server that already accepted it (the ACK was
 *   lost) acknowledges it without delivering it twice. Messages come in as
 *   MSG frames with the server's id, the receiver and the time, including
 *   this user's own messages sent from its other devices (chat_msg.own).
 *   Without CONV (an older server, an echo server, control or conv 0) bare
 *   data frames go both ways, as in the article: a resend after a lost ACK
 *   may then be delivered twice.
 * - Duplicates: the client remembers the highest server id it handed to
 *   the application (on_msg or on_message), across reconnects, until
 *   chat_free. A MSG whose id is not above it is dropped without any
 *   callback and acknowledged like any other: a server redelivers what it
 *   did not see acknowledged (a lost ACK, a lost connection, a crash), and
 *   such a message must not show twice. A server sends a user's messages
 *   in increasing id order, so nothing new is dropped. Bare data frames
 *   have no id and are never dropped. A message counts as handed over once
 *   its callback ran, even if the callback then disconnects to leave it
 *   unacknowledged: this client will not show it again. A new chat_client
 *   (a new process) starts from nothing: the server's per-device cursor is
 *   what spares it the old messages.
 * - Groups and history (CONV): chat_send_group* posts to a group through
 *   the message queue; chat_group_* and chat_history are requests answered
 *   through on_group and on_history (see "Groups and history" below).
 * - Receipts, typing and presence (SIGNALS, with CONV): options.signals asks
 *   for them; chat_signals_granted says whether the server agreed. Then
 *   chat_read, chat_receipts_query, chat_typing and chat_presence_* write
 *   signal frames, and on_receipt, on_typing and on_presence report the
 *   server's (see "Receipts, typing and presence" below). on_posted tells
 *   the server id each message sent got, so that a program can tell which
 *   of its messages a receipt covers.
 */
#ifndef CHAT_H
#define CHAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes (negative). */
enum chat_error {
    CHAT_OK = 0,
    CHAT_EINVAL = -1,     /* invalid argument or option */
    CHAT_ENOMEM = -2,     /* out of memory */
    CHAT_EFULL = -3,      /* outgoing queue full: retry once frames are acked */
    CHAT_ETOOBIG = -4,    /* body larger than the server's max_frame */
    CHAT_ENOENT = -5,     /* file does not exist */
    CHAT_EIO = -6,        /* file could not be opened or read */
    CHAT_ERESOLVE = -7,   /* host name could not be resolved */
    CHAT_ECONNECT = -8,   /* TCP connection failed (refused, unreachable) */
    CHAT_ECLOSED = -9,    /* the server closed the connection */
    CHAT_ENOTCONN = -10,  /* not connected and no reconnect scheduled */
    CHAT_EPROTO = -11,    /* the server broke the protocol (or refused ours) */
    CHAT_EAUTH = -12,     /* login refused (ERROR AUTH or NOLOGIN) */
    CHAT_ESTATE = -13,    /* call not valid in the current state */
    CHAT_ESYS = -14,      /* other operating-system error (socket, poll) */
    CHAT_ENOTSUP = -15,   /* the connection does not have the feature: the
                             server did not grant SIGNALS (or
                             options.signals is 0) */
    CHAT_ETLSCONF = -16,  /* TLS set-up: CA, certificate or key file unusable
                             (chat_new; the sentence comes from chat_new_ex) */
    CHAT_ETLS = -17,      /* TLS handshake or record failure (not a TLS server,
                             no common protocol, client certificate refused,
                             handshake timed out, bad record); chat_tls_error() */
    CHAT_ETLSVERIFY = -18, /* the server's certificate failed verification
                             (untrusted chain, expired, wrong name or address);
                             chat_tls_error() gives the reason */
    CHAT_EREFUSED = -19   /* the server refused a request (group operation,
                             history): its reason comes with the answer */
};
#define CHAT_ERROR_MIN CHAT_EREFUSED /* lowest code, for iteration */

/* Data frame types (the wire values). */
enum chat_type {
    CHAT_TEXT = 1,    /* UTF-8 text */
    CHAT_PICTURE = 2, /* bytes of an image file */
    CHAT_VOICE = 3,   /* bytes of an audio file */
    CHAT_VIDEO = 4    /* bytes of a video file */
};

/* Codes of ERROR frames sent by the server (docs/PROTOCOL.md). */
enum chat_server_error {
    CHAT_SERR_TOOBIG = 1, CHAT_SERR_BADTYPE = 2, CHAT_SERR_SPOOF = 3,
    CHAT_SERR_PROTO = 4, CHAT_SERR_AUTH = 5, CHAT_SERR_NOLOGIN = 6,
    CHAT_SERR_QUOTA = 7, CHAT_SERR_STORE = 8, CHAT_SERR_RATE = 9,
    CHAT_SERR_BUSY = 10, CHAT_SERR_SHUTDOWN = 11, CHAT_SERR_BADRCPT = 12,
    CHAT_SERR_SLOW = 13, CHAT_SERR_GROUP = 14,
    CHAT_SERR_DENIED = 15 /* a presence subscription refused; on_error's
                             `seq` is then the user id refused */
};

/* Connection states, see chat_state(). */
enum chat_state {
    CHAT_ST_IDLE = 0,       /* no connection, none scheduled */
    CHAT_ST_CONNECTING = 1, /* TCP connect in progress */
    CHAT_ST_HELLO = 2,      /* HELLO sent, waiting for WELCOME */
    CHAT_ST_READY = 3,      /* data frames flow */
    CHAT_ST_BACKOFF = 4,    /* disconnected, reconnect timer running */
    CHAT_ST_HANDSHAKE = 5   /* TCP connected, TLS handshake in progress */
};

typedef struct chat_client chat_client;

/* A received message, as on_msg sees it. The struct and its body are owned
 * by the library and valid only during the callback: copy what you keep. */
typedef struct chat_msg {
    uint64_t id;       /* the server's id (a MSG: CONV granted); 0 for a bare
                          data frame, which has none */
    uint32_t sender;   /* the author's user id (this user when own) */
    uint32_t to;       /* the receiver's user id: this user, or for an own
                          message whom this user wrote to; for a group
                          message the group's id (== group) */
    int type;          /* 1-4 (chat_type) */
    int own;           /* 1: written by this user on another device (only
                          with CONV); else 0 */
    uint64_t time_ms;  /* when the server accepted it, unix milliseconds;
                          0 for a bare data frame */
    const void *body;  /* len bytes, not NUL-terminated */
    uint32_t len;
    uint32_t group;    /* a group message (MSG with the GROUP flag): the
                          group's id, also in `to`; 0 for a message between
                          two users and for a bare data frame (a client
                          without CONV cannot tell a group message from one
                          sent to it alone) */
} chat_msg;

/* ------------------------------------------------------------------ */
/* Groups and history (CONV only; docs/PROTOCOL.md "Groups", "History") */
/* ------------------------------------------------------------------ */

/* Group operations (chat_group_*) and what on_group reports. */
enum chat_group_op {
    CHAT_GROUP_CREATE = 1, CHAT_GROUP_RENAME = 2, CHAT_GROUP_ADD = 3,
    CHAT_GROUP_REMOVE = 4, CHAT_GROUP_LEAVE = 5, CHAT_GROUP_LIST = 6,
    CHAT_GROUP_MEMBERS = 7,
    CHAT_GROUP_EVENT = 8 /* not a request: a change the server reports */
};

/* What a CHAT_GROUP_EVENT says happened. */
enum chat_group_what {
    CHAT_GROUP_CREATED = 1, CHAT_GROUP_RENAMED = 2, CHAT_GROUP_ADDED = 3,
    CHAT_GROUP_REMOVED = 4, CHAT_GROUP_LEFT = 5
};

#define CHAT_GROUP_NAME_MAX 64u    /* bytes of a group's name (1-64) */
#define CHAT_GROUP_USERS_MAX 4096u /* users in one create/add/remove call */
#define CHAT_HISTORY_LIMIT_MAX 200u /* messages in one history page */
#define CHAT_REQUESTS_MAX 64u      /* requests waiting for answers at once */

/* One of this user's groups, in a LIST answer. */
typedef struct chat_group_info {
    uint32_t id;
    int admin;          /* 1: this user is one of its admins */
    uint32_t members;   /* how many members it has */
    uint32_t name_len;  /* bytes of name, 0-64 */
    char name[CHAT_GROUP_NAME_MAX + 1]; /* UTF-8 as the server has it,
                                           NUL-terminated */
} chat_group_info;

/* A member of a group, in a MEMBERS answer. */
typedef struct chat_group_member {
    uint32_t user;
    int admin;          /* 1: one of the group's admins */
} chat_group_member;

/* What on_group receives: the outcome of a request of this client (op 1-7,
 * req its number), or a change in a group this user is in, was in or was
 * just added to (op CHAT_GROUP_EVENT, req 0). The struct and everything it
 * points to are owned by the library and valid only during the callback. */
typedef struct chat_group_event {
    int op;             /* enum chat_group_op */
    uint32_t req;       /* the request's number (*req_out); 0 for an event */
    uint32_t group;     /* the group (CREATE: the new group's id; a refused
                           or lost request: the group it named, 0 for
                           CREATE and LIST) */
    int err;            /* 0: done. CHAT_EREFUSED: the server refused it
                           (code, reason: e.g. "not a member of group 3").
                           Another CHAT_E*: the connection was lost before
                           the answer came (the operation may or may not
                           have been done; it is not sent again) */
    int code;           /* refused: the server's ERROR code
                           (CHAT_SERR_GROUP, or e.g. CHAT_SERR_STORE);
                           else 0 */
    const char *reason; /* refused: reason_len bytes of UTF-8, not
                           NUL-terminated; else "" */
    uint32_t reason_len;
    /* op CHAT_GROUP_LIST, done: this user's groups */
    const chat_group_info *groups;
    size_t n_groups;
    /* op CHAT_GROUP_MEMBERS, done: the group's members */
    const chat_group_member *members;
    size_t n_members;
    /* op CHAT_GROUP_EVENT: what happened (chat_group_what), who did it,
     * the users it concerned (CREATED: the members the creator listed;
     * ADDED, REMOVED: those users; LEFT: the one who left; RENAMED: none),
     * and the group's name (NUL-terminated; "" when the last member left
     * and the group is gone) */
    int what;
    uint32_t by;
    const uint32_t *users;
    size_t n_users;
    const char *name;
    uint32_t name_len;
} chat_group_event;

/* Conversation kinds of chat_history. */
enum chat_history_kind {
    CHAT_HISTORY_USER = 1, /* the messages between this user and `peer` */
    CHAT_HISTORY_GROUP = 2 /* the messages of group `peer` */
};

/* What on_history receives: a page of the conversation a chat_history
 * request asked for, or why there is none. Owned by the library, valid
 * only during the callback (msgs, their bodies, reason). */
typedef struct chat_history_page {
    uint32_t req;         /* the request's number (*req_out) */
    int err;              /* 0: a page. CHAT_EREFUSED: the server refused
                             it (code, reason; e.g. the history of a group
                             this user is not in). Another CHAT_E*: the
                             connection was lost before the answer */
    int code;             /* refused: the server's ERROR code; else 0 */
    const char *reason;   /* refused: reason_len bytes, not NUL-terminated;
                             else "" */
    uint32_t reason_len;
    const chat_msg *msgs; /* n messages, NEWEST FIRST, as the server sends
                             them: every field set as for on_msg (own: sent
                             by this user, from any device; group) */
    size_t n;
    int more;             /* 1: older messages remain; ask again with
                             before = msgs[n - 1].id */
} chat_history_page;

/* ------------------------------------------------------------------ */
/* Receipts, typing and presence (SIGNALS, with CONV; docs/PROTOCOL.md */
/* "Receipts, typing and presence")                                    */
/* ------------------------------------------------------------------ */

/* What on_receipt reports (the wire values). A mark is cumulative: user
 * `by` has received (DELIVERED) or shown (READ) every message of the
 * conversation up to id `upto`. */
enum chat_receipt_what {
    CHAT_RECEIPT_DELIVERED = 1,
    CHAT_RECEIPT_READ = 2,
    CHAT_RECEIPT_END = 4 /* the end of a chat_receipts_query answer */
};

/* on_receipt's and on_typing's `flags`: the conversation is a group
 * (`conv` / `to` is a group id), else a user. */
#define CHAT_SIGNAL_GROUP 0x02u

/* A user's state in on_presence. */
enum chat_presence_state { CHAT_PRESENCE_OFFLINE = 0, CHAT_PRESENCE_ONLINE = 1 };

#define CHAT_PRESENCE_FRAME_USERS 256u /* ids in one PRESENCE frame */
#define CHAT_PRESENCE_USERS_MAX 4096u  /* ids in one subscribe/unsubscribe
                                          call (16 frames) */

/* Callbacks; any may be NULL. `ud` is chat_options.userdata. */
typedef struct chat_callbacks {
    /* A message arrived (a bare data frame or a MSG) and on_msg is NULL.
     * `body` (len bytes, not NUL-terminated) is owned by the library and
     * valid only until the callback returns: copy it to keep it. `type` is
     * 1-4 (chat_type). An own message from another device comes here too,
     * with this user as `sender`: set on_msg to tell it apart. */
    void (*on_message)(chat_client *c, uint32_t sender, int type,
                       const void *body, uint32_t len, void *ud);
    /* Every frame with seq <= `seq` has now been handled: acknowledged by the
     * server (ACKS granted), fully written to the socket (ACKS not granted or
     * control frames off), or refused and reported through on_error. Called
     * at most once per chat_process call, with increasing values. */
    void (*on_acked)(chat_client *c, uint64_t seq, void *ud);
    /* The server sent an ERROR frame (`code` is a chat_server_error), or the
     * library refused a queued frame locally (code CHAT_SERR_TOOBIG, when it
     * is larger than the max_frame a WELCOME announced; CHAT_SERR_GROUP, a
     * group message on a connection without CONV). An ERROR that refuses a
     * group or history request goes to on_group / on_history instead, when
     * set (with seq 0 here otherwise). `seq` is the refused
     * frame's seq, which the library has dropped from its queue (it will not
     * be resent), or 0 when the error concerns no frame; for
     * CHAT_SERR_DENIED (a refused presence subscription) it is the user id
     * refused, not a seq. `reason` (reason_len
     * bytes, UTF-8, not NUL-terminated) is valid during the callback only. */
    void (*on_error)(chat_client *c, int code, uint64_t seq,
                     const char *reason, uint32_t reason_len, void *ud);
    /* The session is ready: WELCOME received (control frames on) or TCP
     * connected (control frames off). Unacknowledged frames are being
     * resent from here on. */
    void (*on_connected)(chat_client *c, void *ud);
    /* The connection was lost (`err` < 0 says why: CHAT_ECLOSED,
     * CHAT_ECONNECT, CHAT_EPROTO, CHAT_EAUTH, CHAT_ENOMEM, CHAT_ERESOLVE,
     * CHAT_ESYS, CHAT_ETLS, CHAT_ETLSVERIFY). Not called for
     * chat_disconnect(). When options.reconnect is set and err is not
     * CHAT_EAUTH/CHAT_EPROTO/CHAT_ETLSVERIFY, the state is already
     * CHAT_ST_BACKOFF; after those three it is CHAT_ST_IDLE: retrying cannot
     * help until someone acts (a certificate that does not verify may mean
     * an attacker; it is reported, not retried), and the caller may call
     * chat_connect() again. With several servers (chat_set_servers) it is
     * called for each server that fails, the state then says whether
     * another is tried (CHAT_ST_BACKOFF, also without options.reconnect
     * before the first session), and chat_server_index() names the server
     * that failed. */
    void (*on_disconnected)(chat_client *c, int err, void *ud);
    /* A message arrived; when set, on_message is never called: every
     * message comes here, one call each. A MSG fills every field; a bare
     * data frame has id 0, own 0, to = options.user and time_ms 0. `m` and
     * m->body are valid only until the callback returns. Redelivered MSGs
     * are dropped before it (see "Duplicates" above). */
    void (*on_msg)(chat_client *c, const chat_msg *m, void *ud);
    /* The answer to a group request of this client (done, refused, or lost
     * with the connection: e->err), or a group event (e->op
     * CHAT_GROUP_EVENT). Every request gets exactly one call, unless
     * chat_disconnect or chat_free came first. When NULL, refusals go to
     * on_error (seq 0) and the rest is dropped. */
    void (*on_group)(chat_client *c, const chat_group_event *e, void *ud);
    /* The answer to a chat_history request: a page, a refusal or the loss
     * of the connection (p->err); exactly one call per request, unless
     * chat_disconnect or chat_free came first. When NULL, refusals go to
     * on_error (seq 0) and pages are dropped. */
    void (*on_history)(chat_client *c, const chat_history_page *p, void *ud);
    /* SIGNALS: a RECEIPT from the server. `what` is CHAT_RECEIPT_DELIVERED
     * (a device of user `by` has the messages of conversation `conv` up
     * to id `upto`), CHAT_RECEIPT_READ (user `by` has shown them; `by` is
     * this user when another of its devices did) or CHAT_RECEIPT_END (the
     * last call of a chat_receipts_query answer: `conv` and `flags` as
     * asked, by, upto and time 0). `flags`: CHAT_SIGNAL_GROUP when `conv`
     * is a group, else 0 (`conv` is then the other user). `time_ms`: when
     * the mark moved, unix ms, 0 when not known; `upto` 0 in a query's
     * answer: a mark never set. Marks only move forward, but the same one
     * may come more than once (keep the highest). */
    void (*on_receipt)(chat_client *c, int what, int flags, uint32_t conv,
                       uint32_t by, uint64_t upto, uint64_t time_ms, void *ud);
    /* SIGNALS: user `from` is typing (state 1) or stopped (state 0), to
     * this user (`to` is this user, flags 0) or in group `to` (flags
     * CHAT_SIGNAL_GROUP). Not stored by the server: treat a state 1 older
     * than about 6 s as stopped. */
    void (*on_typing)(chat_client *c, uint32_t from, int flags, uint32_t to,
                      int state, void *ud);
    /* SIGNALS: the state of a user this connection subscribed to
     * (chat_presence_subscribe): CHAT_PRESENCE_ONLINE (last_seen_ms 0) or
     * CHAT_PRESENCE_OFFLINE (last_seen_ms: unix ms when its last
     * connection ended, 0 when not known). Once at subscription, then at
     * each change. */
    void (*on_presence)(chat_client *c, uint32_t user, int state,
                        uint64_t last_seen_ms, void *ud);
    /* SIGNALS: the server accepted message `seq` of this client (a
     * chat_send* to a user or a group) as message `id`, its server id: the
     * id other devices see in chat_msg.id and that receipts' `upto` counts
     * (a mark with upto >= id covers it). From a POSTED frame, which the
     * server sends before the ACK that covers the message and before any
     * receipt about it. A resend of a message the server already had
     * (after a lost ACK) gets its original id: the same seq may come more
     * than once, always with the same id. Not called without SIGNALS (the
     * server does not say; nor for bare data frames, which have no id),
     * nor for a POSTED whose cid is not one of this client's (ignored).
     * If the message is then refused (on_error with its seq: STORE,
     * QUOTA), the id names no message. */
    void (*on_posted)(chat_client *c, uint64_t seq, uint64_t id, void *ud);
} chat_callbacks;

/* TLS options (chat_options.tls). chat_new() reads every file and copies
 * every string, so this struct, its strings and the files may go once it
 * returns: the files are not read again on reconnects. */
typedef struct chat_tls_options {
    const char *ca_file;     /* PEM file of the CAs trusted to sign the server's
                                certificate; NULL = the system's default
                                verify paths (e.g. /etc/ssl/certs) */
    const char *server_name; /* name (or IP address) the server's certificate
                                must carry, sent as SNI when it is a name;
                                NULL = the host of each attempt
                                (chat_options.host, or the host of the
                                server list that attempt goes to) */
    const char *cert_file;   /* PEM client certificate (chain) for servers that
                                require one; NULL = none. Needs key_file. */
    const char *key_file;    /* PEM private key of cert_file (unencrypted);
                                both or neither */
} chat_tls_options;

/* Options. Always start from chat_options_init(); chat_new() copies every
 * field (strings included), so the struct and its strings may be freed once
 * chat_new returns. */
typedef struct chat_options {
    const char *host;        /* server host name or address (required) */
    uint16_t port;           /* server TCP port (required, != 0) */
    uint32_t user;           /* user id to bind to; sender of every frame; != 0 */
    const char *password;    /* HELLO password, NUL-terminated; NULL = none */
    int control;             /* 1 (default): send HELLO, ACK, PONG. 0: the
                                article's protocol: never send a control frame
                                (no login, no acks; a frame counts as handled
                                once written) */
    int acks;                /* 1 (default): ask for ACKS in HELLO */
    int reconnect;           /* 1: reconnect automatically with backoff; 0 (default) */
    uint32_t backoff_min_ms; /* first reconnect delay (default 100) */
    uint32_t backoff_max_ms; /* cap of the doubling delay (default 5000) */
    uint32_t max_frame;      /* largest body to send until a WELCOME says
                                otherwise (default 16 MiB, the server's) */
    uint32_t max_recv;       /* largest message body accepted from the server
                                (a MSG's payload, a data frame's body, each
                                message of a history page); a larger one
                                closes the connection with CHAT_EPROTO
                                (default 16 MiB). A history page as a whole
                                may pass it by about 262 KiB (the server's
                                page bound), which the input buffer allows */
    size_t max_queue_bytes;  /* bound on bodies queued and not yet handled
                                (unsent + unacknowledged), default 64 MiB */
    uint32_t max_queue_frames; /* same bound in frames, default 4096 */
    chat_callbacks cb;       /* copied */
    void *userdata;          /* passed to callbacks and clock_ms; not owned */
    /* Monotonic clock in milliseconds; NULL = CLOCK_MONOTONIC. For tests and
     * for event loops that cache their time. */
    uint64_t (*clock_ms)(void *userdata);
    const chat_tls_options *tls; /* NULL (default): plaintext TCP. Else TLS
                                1.2+ with these options (read by chat_new,
                                not kept) */
    uint32_t connect_timeout_ms; /* bound on one connection attempt's TCP
                                connect plus TLS handshake plus, with
                                control frames, the wait for WELCOME
                                (default 10000; 0 = none). On expiry:
                                CHAT_ECONNECT with chat_last_errno()
                                ETIMEDOUT during the TCP connect or while
                                waiting for WELCOME (a frozen server still
                                completes TCP handshakes), CHAT_ETLS during
                                the TLS handshake */
    int conv;                /* 1 (default): ask for CONV in HELLO (needs
                                control = 1); 0: never (bare data frames
                                only, as before CONV) */
    const char *device;      /* this device's name, sent in HELLO with CONV:
                                at most 32 bytes of A-Z a-z 0-9 . _ -; NULL
                                or "" (default) = the user's default device.
                                Each device has its own cursor on the user's
                                messages; several clients with one name share
                                it */
    int signals;             /* 1: ask for SIGNALS (receipts, typing,
                                presence) in HELLO, which needs CONV (conv 1,
                                control 1); 0 (default): never, and the
                                server sends none of those frames */
} chat_options;

/* Fill `o` with the defaults above (host NULL, port 0, user 0, device
 * NULL). O(1). */
void chat_options_init(chat_options *o);

/* Create a client from `o` (copied). No network I/O; with o->tls, reads
 * the CA, certificate and key files and builds the TLS context here.
 * Returns the client, owned by the caller and released with chat_free(); or
 * NULL with *err (if err is not NULL) set to CHAT_EINVAL (missing
 * host/port/user, password over 1024 bytes, min > max backoff, cert_file
 * without key_file or the reverse, a device name over 32 bytes or with a
 * byte outside A-Z a-z 0-9 . _ -), CHAT_ETLSCONF (a TLS file is missing,
 * unreadable, not PEM, or the key does not match the certificate),
 * CHAT_ESYS (no random bytes for the client ids: getrandom(2) failed) or
 * CHAT_ENOMEM. */
chat_client *chat_new(const chat_options *o, int *err);

/* chat_new, and on failure (when msg is not NULL and msg_len > 0) an
 * English sentence naming the cause in `msg`, owned by the caller, always
 * NUL-terminated and truncated to msg_len bytes, e.g. "cannot load the CA
 * file /x/ca.pem: No such file or directory". On success msg is set to "".
 * O(size of the TLS files). */
chat_client *chat_new_ex(const chat_options *o, int *err, char *msg,
                         size_t msg_len);

/* Close the connection and free everything, including frames still queued
 * (unsent or unacknowledged: they are lost). No callback is called. NULL is
 * accepted. Must not be called from a callback. O(queued frames). */
void chat_free(chat_client *c);

/* Start connecting (state IDLE or BACKOFF; in BACKOFF it connects now).
 * Resolves host with getaddrinfo(3), which may block on a DNS query (use a
 * numeric address to avoid it), then starts a non-blocking connect; the
 * outcome is learned in chat_process(). With several servers
 * (chat_set_servers), a server whose attempt fails at once (not resolved,
 * refused on the spot) is counted and the next one is tried within this
 * call, until an attempt is under way or the round is complete; no
 * callback runs. Returns 0, CHAT_ESTATE when already connected or
 * connecting, CHAT_ERESOLVE, CHAT_ECONNECT (immediate failure: the last
 * server's, with several) or CHAT_ESYS. On failure with options.reconnect
 * set, a retry is scheduled (state BACKOFF). */
int chat_connect(chat_client *c);

/* Close the connection now (state IDLE; no automatic reconnect). Queued and
 * unacknowledged frames are kept and resent by the next chat_connect(), in
 * order. on_disconnected is not called. Returns 0. O(queued frames). */
int chat_disconnect(chat_client *c);

/* chat_disconnect() then chat_connect(), and reset the backoff delay. */
int chat_reconnect(chat_client *c);

/* ------------------------------------------------------------------ */
/* Several servers (failover)                                          */
/* ------------------------------------------------------------------ */

#define CHAT_SERVERS_MAX 16u /* servers in one list */
#define CHAT_HOST_MAX 255u   /* bytes of one host name or address */

/* Give the client a list of servers to use instead of options.host and
 * options.port (server 0 until this is called): hosts[0..n) with
 * ports[0..n). A port of 0, or ports NULL, means options.port. Several
 * servers are for servers that share one store: the nodes of a cluster,
 * or a standby server started on the data directory of one that died.
 * Two independent servers do not share stored messages: a message stored
 * by one is not delivered by the other, and a resend to the other after a
 * lost ACK is not recognised as a duplicate there.
 *
 * Policy: the first attempt goes to hosts[0]. When an attempt fails or a
 * session is lost, the next attempt goes to the next server (round robin,
 * after hosts[n-1] hosts[0] again), at once; the backoff of
 * options.backoff_min_ms / backoff_max_ms applies only once a whole round
 * failed (every server failed in a row: chat_failures() reached a
 * multiple of n), so a dead server costs one quick failover, not a
 * backoff. A session that becomes ready resets the count. The next
 * attempt is still made by chat_process, never inside the call that saw
 * the failure: on_disconnected runs first, with the state
 * CHAT_ST_BACKOFF and chat_next_timeout_ms() 0. Without
 * options.reconnect, an attempt that fails before its session is ready
 * still moves on to the next server, until every server failed once since
 * chat_connect (then the state is CHAT_ST_IDLE); a ready session that is
 * lost is not retried. CHAT_EAUTH, CHAT_EPROTO and CHAT_ETLSVERIFY stop
 * the rotation as they stop the reconnects (CHAT_ST_IDLE): servers of one
 * store answer a login alike, and a certificate that does not verify is
 * reported, never worked around by trying another server.
 *
 * Everything the client has queued and not had acknowledged is resent to
 * whichever server the next session is on, exactly as after a reconnect
 * to one server: messages keep their client ids (CONV), so a server of the
 * same store that already stored one acknowledges it without delivering it
 * twice.
 *
 * Each host is resolved with getaddrinfo(3) when an attempt goes to it
 * (which may block on a DNS query: prefer numeric addresses), never here.
 * TLS: the certificate of each server must carry that server's host name
 * (or address), unless chat_tls_options.server_name was set, which is then
 * verified for every server.
 *
 * The strings are copied: the arrays and strings may go once this
 * returns. All or nothing. Only while CHAT_ST_IDLE (before chat_connect, or
 * after chat_disconnect). Returns 0, CHAT_EINVAL (NULL c or hosts, n 0 or
 * over CHAT_SERVERS_MAX, a host NULL, empty or over CHAT_HOST_MAX bytes),
 * CHAT_ESTATE (not idle) or CHAT_ENOMEM. O(n). */
int chat_set_servers(chat_client *c, const char *const *hosts,
                     const uint16_t *ports, size_t n);

/* The index in the server list (0 with one server) of the server of the
 * current connection or attempt in progress; when there is none, of the
 * last attempt: in on_connected the server the session is on, in
 * on_disconnected the one that failed or was lost. CHAT_EINVAL for NULL.
 * O(1). */
int chat_server_index(const chat_client *c);

/* Connection attempts that failed and sessions lost in a row since the
 * last session became ready (or chat_connect from CHAT_ST_IDLE, or
 * chat_reconnect); 0 for NULL. With n servers, a value >= n means that
 * every server failed at least once: e.g. a program that wants to give up
 * when no server can be reached checks chat_failures(c) >=
 * number of servers in on_disconnected. O(1). */
unsigned chat_failures(const chat_client *c);

/* The socket to watch, or -1 when there is none. Owned by the library: do
 * not close or read it. It changes across reconnects: re-read it after every
 * chat_process call. */
int chat_fd(const chat_client *c);

/* 1 when the socket should be watched for writability (connect pending,
 * bytes waiting, TLS records not yet written), else 0. O(1). */
int chat_want_write(const chat_client *c);

/* Milliseconds until chat_process must be called even without socket
 * events (reconnect timer, connect timeout), 0 when it is due or when
 * received data waits inside the library (released frames, decrypted TLS
 * data the socket will not signal again), -1 when no timer runs. */
int64_t chat_next_timeout_ms(const chat_client *c);

/* Do all the work that can be done without blocking: finish a pending
 * connect or TLS handshake, read what is available (at most 16 reads of up
 * to 64 KiB, over TLS 16 records, to leave the loop to others; call again
 * while data remains: chat_next_timeout_ms says 0 then), run callbacks
 * for every complete frame, answer PINGs, send at most one cumulative ACK
 * for received data frames, write queued frames, run due timers. `readable`
 * and `writable` are hints from the event loop (0 is always safe; writes are
 * attempted whenever something is queued). Returns 0, or the negative code
 * of a connection loss that happened during this call (also given to
 * on_disconnected); the client stays usable either way. */
int chat_process(chat_client *c, int readable, int writable);

/* Blocking helper: poll(2) the socket for up to timeout_ms (-1 = no limit,
 * shortened to the reconnect timer), then chat_process(). Returns what
 * chat_process returns, CHAT_ENOTCONN when idle (nothing to wait for) or
 * CHAT_ESYS when poll fails (EINTR is not an error: returns 0). */
int chat_run_once(chat_client *c, int timeout_ms);

/* Queue a message of `type` (1-4) for user `to` (!= 0). The body is
 * copied (O(len), one allocation); the caller keeps ownership of `body`.
 * Nothing is written here: the message goes out in chat_process, after any
 * queued before it, as a POST with its cid when the connection has CONV,
 * else as a bare data frame (decided per connection: a message queued
 * under one and resent under another takes the new one's form). On
 * success *seq_out (if not NULL) receives its seq. Returns 0, CHAT_EINVAL
 * (bad type, to == 0, body NULL with len > 0), CHAT_ETOOBIG (len over
 * max_frame, or over max_queue_bytes), CHAT_EFULL (queue bound reached:
 * unsent + unacknowledged frames; retry after on_acked) or CHAT_ENOMEM.
 * Queuing while disconnected is allowed. */
int chat_send(chat_client *c, uint32_t to, int type, const void *body,
              uint32_t len, uint64_t *seq_out);

/* chat_send of a NUL-terminated UTF-8 string as CHAT_TEXT. */
int chat_send_text(chat_client *c, uint32_t to, const char *text,
                   uint64_t *seq_out);

/* Read the regular file at `path` whole and queue it as one frame of
 * `type` (pass chat_type_from_path(path) to pick it from the name). The
 * file is read into the queue entry directly (no second copy), and checked
 * against the limit before it is read. Returns like chat_send, plus
 * CHAT_ENOENT (no such file), CHAT_EIO (cannot open or read, not a regular
 * file, or it changed size while read) and CHAT_ETOOBIG (larger than the
 * max_frame, which the server's WELCOME sets). O(file size). */
int chat_send_file(chat_client *c, uint32_t to, int type, const char *path,
                   uint64_t *seq_out);

/* chat_send and chat_send_file to a group (a POST with the GROUP flag:
 * needs CONV): the same queue, seqs, acknowledgements, client ids and
 * resend after a reconnect. Every member's devices get it, this user's
 * other devices too (own). `group` != 0. Queuing while disconnected or
 * before WELCOME is allowed; when the connection that would carry it does
 * not grant CONV, the message is refused through on_error (code
 * CHAT_SERR_GROUP, its seq), never sent as a bare frame (which would reach
 * the user whose id equals the group's). A sender that is not a member
 * gets on_error (CHAT_SERR_GROUP, its seq) from the server. Returns like
 * chat_send / chat_send_file, plus CHAT_ESTATE when CONV cannot be had:
 * options.control or options.conv 0, or connected without CONV. O(len). */
int chat_send_group(chat_client *c, uint32_t group, int type, const void *body,
                    uint32_t len, uint64_t *seq_out);
int chat_send_group_text(chat_client *c, uint32_t group, const char *text,
                         uint64_t *seq_out);
int chat_send_group_file(chat_client *c, uint32_t group, int type,
                         const char *path, uint64_t *seq_out);

/* Group requests. Each writes one GROUP frame to the connection's control
 * output (nothing on the socket before chat_process) and returns 0 with
 * its number in *req_out (if not NULL); the outcome comes to on_group
 * later, inside chat_process, never inside the call. Requests are not
 * queued across connections: they need a connection whose WELCOME granted
 * CONV (CHAT_ESTATE otherwise: call them from on_connected or later), and
 * one that is lost before its answer is reported lost (on_group, err <
 * 0), never sent again (a CREATE may have been done). Request numbers are
 * in 2^31..2^32-1, so that an ERROR naming a request (ref = its number;
 * code GROUP, or another such as STORE) is told apart from one naming a
 * refused message (ERROR GROUP for a group message whose sender is not a
 * member, QUOTA, STORE: ref = the message's number on the connection, far
 * below 2^31): the first goes to on_group / on_history, the second to
 * on_error with the message's seq. At most CHAT_REQUESTS_MAX
 * group and history requests wait for answers at once (CHAT_EFULL).
 *
 * create: a group named `name` (NUL-terminated, 1-64 bytes), with this
 *   user as its admin and members[0..n) (n <= CHAT_GROUP_USERS_MAX, ids !=
 *   0; duplicates are ignored by the server) as members. The answer's
 *   group is the new group's id.
 * rename: its admins only. add / remove: users[0..n) (1 <= n <=
 *   CHAT_GROUP_USERS_MAX, ids != 0), admins only (removing oneself is
 *   leaving). leave: members. list: this user's groups (e->groups).
 *   members: a group's members, to its members (e->members).
 * Returns 0, CHAT_EINVAL (NULL c, group 0, a bad name, n out of range,
 * members NULL with n > 0, a user id 0), CHAT_ESTATE (no connection with
 * CONV), CHAT_EFULL (CHAT_REQUESTS_MAX waiting, or the control output
 * full: retry after chat_process) or CHAT_ENOMEM. O(n). */
int chat_group_create(chat_client *c, const char *name, const uint32_t *members,
                      size_t n, uint32_t *req_out);
int chat_group_rename(chat_client *c, uint32_t group, const char *name,
                      uint32_t *req_out);
int chat_group_add(chat_client *c, uint32_t group, const uint32_t *users,
                   size_t n, uint32_t *req_out);
int chat_group_remove(chat_client *c, uint32_t group, const uint32_t *users,
                      size_t n, uint32_t *req_out);
int chat_group_leave(chat_client *c, uint32_t group, uint32_t *req_out);
int chat_group_list(chat_client *c, uint32_t *req_out);
int chat_group_members(chat_client *c, uint32_t group, uint32_t *req_out);

/* Ask for a page of a conversation's past (a HISTORY frame; the server
 * keeps history only when run with --history-ttl, else the page is
 * empty): `kind` CHAT_HISTORY_USER (the messages between this user and
 * user `peer`, both ways, from any device) or CHAT_HISTORY_GROUP (group
 * `peer`'s, since this user joined; members only), only messages with an
 * id below `before` (0: from the newest), at most `limit` (1 to
 * CHAT_HISTORY_LIMIT_MAX) of them. The page comes to on_history; history
 * is not acknowledged, moves no cursor and is not checked against the
 * duplicates filter of on_msg. Same rules as the group requests (CONV
 * connection, request numbers, no resend, CHAT_REQUESTS_MAX). Returns 0,
 * CHAT_EINVAL (bad kind, peer 0, limit out of range), CHAT_ESTATE,
 * CHAT_EFULL or CHAT_ENOMEM. O(1). */
int chat_history(chat_client *c, int kind, uint32_t peer, uint64_t before,
                 uint32_t limit, uint32_t *req_out);

/* Receipts, typing and presence (SIGNALS). Each call writes its frame(s)
 * to the connection's control output (nothing reaches the socket before
 * chat_process) and returns; what the server sends back comes to
 * on_receipt, on_typing, on_presence or on_error, inside chat_process,
 * never inside the call. They need a session whose WELCOME granted
 * SIGNALS: CHAT_ESTATE when no session is ready (call them from
 * on_connected or later), CHAT_ENOTSUP when it is but SIGNALS was not
 * granted (options.signals 0, an older server, no CONV). Nothing is
 * queued across connections: a frame written to a connection that is lost
 * before it went out is not sent again. Other returns: CHAT_EINVAL (NULL c,
 * a bad argument), CHAT_EFULL (the control output is full: retry after
 * chat_process), CHAT_ENOMEM. `group`: 1 when `conv` / `to` is a group id,
 * 0 when it is a user id. A frame about a group this user is not in is
 * refused by the server with on_error (CHAT_SERR_GROUP, seq 0).
 *
 * chat_read: "this user has shown the messages of conversation `conv` up
 *   to id `upto`" (a RECEIPT READ; upto != 0). The server keeps the
 *   highest mark and passes it on to the other user (or the group's
 *   members) and to this user's other devices. O(1).
 * chat_receipts_query: ask for the marks of `conv` now (a RECEIPT QUERY):
 *   the answer comes as on_receipt calls (for a user: that user's
 *   DELIVERED and READ marks, then this user's own READ mark; for a group,
 *   a DELIVERED and a READ per member), then one with CHAT_RECEIPT_END.
 *   O(1).
 * chat_typing: tell `to` (a user or a group) that this user is typing
 *   (typing 1) or stopped (0). Send 1 at most every few seconds while the
 *   user types, and 0 when they stop or send. O(1).
 * chat_presence_subscribe / chat_presence_unsubscribe: users[0..n)
 *   (1 <= n <= CHAT_PRESENCE_USERS_MAX, ids != 0), in PRESENCE frames of at
 *   most CHAT_PRESENCE_FRAME_USERS ids each, all or none written. After a
 *   subscription each user's state comes to on_presence at once, then at
 *   each change. A refused id (a user this one shares no conversation with
 *   on a server with --auth on, or past the server's --max-subscriptions)
 *   comes to on_error: code CHAT_SERR_DENIED with `seq` = that user id.
 *   Subscriptions belong to the connection: after a reconnect, subscribe
 *   again (from on_connected). O(n). */
int chat_read(chat_client *c, uint32_t conv, int group, uint64_t upto);
int chat_receipts_query(chat_client *c, uint32_t conv, int group);
int chat_typing(chat_client *c, uint32_t to, int group, int typing);
int chat_presence_subscribe(chat_client *c, const uint32_t *users, size_t n);
int chat_presence_unsubscribe(chat_client *c, const uint32_t *users, size_t n);

/* Frame type for a file name, from its extension (case-insensitive):
 *   picture: .png .jpg .jpeg .gif .webp .bmp .heic .svg
 *   voice:   .mp3 .wav .ogg .oga .opus .m4a .aac .flac
 *   video:   .mp4 .webm .mkv .mov .avi .m4v
 * Any other name gives CHAT_EINVAL: the protocol has no generic "file" type,
 * and labelling a document a picture would mislead the receiver, so the
 * caller must choose. Pure, O(strlen(path)). */
int chat_type_from_path(const char *path);

/* Reconnect delay before attempt number `attempt` (0 = first retry):
 * min_ms * 2^attempt, capped at max_ms (saturating, no overflow). Pure. */
uint32_t chat_backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms);

/* Seq of the last frame handled (see on_acked); 0 before any. O(1). */
uint64_t chat_acked(const chat_client *c);

/* Progress, for displays. chat_unsent_bytes: bytes of queued data frames
 * not yet written to the socket (the frame being written counts only its
 * rest); O(queued frames). chat_receiving: 1 while a frame is partly
 * received, with *have of its *total bytes (header included), else 0;
 * O(1). */
size_t chat_unsent_bytes(const chat_client *c);
int chat_receiving(const chat_client *c, uint64_t *have, uint64_t *total);

/* Stop handing received frames to the callbacks, e.g. from on_message once
 * a program has all it wants: frames already read stay buffered and are
 * NOT acknowledged (the server keeps them for the next session), no more is
 * read, and the next chat_process still sends the ACK for every frame handed
 * over before. chat_release() resumes: the next chat_process hands over the
 * buffered frames (chat_next_timeout_ms returns 0 while any wait).
 * Holding survives a reconnect.
 * Returns 0, CHAT_EINVAL for NULL. O(1). */
int chat_hold(chat_client *c);
int chat_release(chat_client *c);

/* The operating-system error (an errno value) behind the last CHAT_ECONNECT
 * or CHAT_ESYS, e.g. ECONNREFUSED or ETIMEDOUT; 0 when there was none.
 * For messages: strerror(chat_last_errno(c)). O(1). */
int chat_last_errno(const chat_client *c);

/* Why the last CHAT_ETLS or CHAT_ETLSVERIFY happened, as an English phrase
 * without a final period, meant to follow "TLS: ", e.g. "certificate verify
 * failed: self-signed certificate in certificate chain" (the reason is
 * OpenSSL's X509_verify_cert_error_string of the verify result), "handshake
 * failed: wrong version number", "connection failed: tlsv13 alert
 * certificate required" or "the handshake did not finish within 10000 ms
 * (is it a TLS port?)"; "" when there was none. Owned by the client, valid
 * until chat_free; emptied when a new connection attempt starts. Never NULL
 * (NULL c gives ""). O(1). */
const char *chat_tls_error(const chat_client *c);

/* 1 when the client was created with TLS options, else 0. O(1). */
int chat_tls_enabled(const chat_client *c);

/* Current state (enum chat_state). O(1). */
int chat_state(const chat_client *c);

/* 1 when the current connection's WELCOME granted ACKS, else 0. */
int chat_acks_granted(const chat_client *c);

/* 1 when the current connection's WELCOME granted CONV (messages go out as
 * POST with client ids and come in as MSG with server ids), else 0: not
 * connected, before WELCOME, an older or an echo server, control or conv
 * 0. O(1). */
int chat_conv_granted(const chat_client *c);

/* 1 when the current connection's WELCOME granted SIGNALS (receipts,
 * typing, presence: options.signals asked for them, with CONV), else 0.
 * O(1). */
int chat_signals_granted(const chat_client *c);

/* Largest body chat_send accepts now: the last WELCOME's max_frame, else
 * options.max_frame. */
uint32_t chat_max_frame(const chat_client *c);

/* Frames and body bytes queued (unsent + unacknowledged). O(1). */
uint32_t chat_queued_frames(const chat_client *c);
size_t chat_queued_bytes(const chat_client *c);

/* A static English description of a CHAT_E* code ("unknown error" for
 * other values). Never NULL; do not free. */
const char *chat_strerror(int err);

/* A static English name of a server ERROR code (chat_server_error). */
const char *chat_server_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
