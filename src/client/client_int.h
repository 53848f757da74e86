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

#define CHAT__PASSWORD_MAX 1024u
#define CHAT__READ_CHUNK 65536u
#define CHAT__READS_PER_CALL 16
#define CHAT__IOV 64
#define CHAT__OUT_LIMIT 65536u /* control frames only: HELLO, ACK, PONG */
#define CHAT__TLS_CHUNK 16384u /* plaintext per TLS record */
#define CHAT__CONNECT_TIMEOUT 10000u

typedef struct chat__msg {
    struct chat__msg *next;
    uint64_t seq;      /* user-visible sequence number */
    uint64_t conn_seq; /* 1-based number on this connection once written */
    uint32_t len;      /* body length */
    uint8_t frame[];   /* 13-byte c2s header, then the body */
} chat__msg;

struct chat_client {
    /* copied options */
    char *host;
    uint16_t port;
    uint32_t user;
    uint8_t *password;
    uint32_t password_len;
    int control, want_acks, auto_reconnect;
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
    uint32_t server_max_frame; /* from the last WELCOME; 0 = none yet */
    uint64_t sent_count;       /* data frames fully written on this connection */
    uint64_t recv_count;       /* data frames received on this connection */
    uint64_t recv_acked;       /* the count of our last ACK */
    unsigned attempt;          /* reconnect attempts since the last success */
    uint64_t deadline;         /* BACKOFF: when to reconnect */
    int last_errno;            /* errno behind the last ECONNECT / ESYS */
    int held;                  /* chat_hold: hand over no more frames */
    uint64_t conn_deadline;    /* CONNECTING/HANDSHAKE: give up then; 0 = none */
    ctls_conn *tls;            /* this connection's TLS session, or NULL */
    size_t tls_fl_out;         /* bytes of `out` encrypted, not yet sent */
    size_t tls_fl_data;        /* bytes of queued frames encrypted, not yet sent */
    int tls_more;              /* the last TLS read stopped at the read cap */
    char tls_err[256];         /* why the last CHAT_ETLS/ETLSVERIFY */

    /* outgoing queue */
    chat__msg *head, *tail, *stage;
    size_t stage_off;
    uint32_t q_frames;
    size_t q_bytes;
    uint64_t last_seq;       /* last seq handed out */
    uint64_t acked_reported; /* last value given to on_acked */
};

#define CHAT__HIDDEN __attribute__((visibility("hidden")))

/* client.c: unlink message m from the queue (O(its position)) and free
 * it: it was delivered or refused. */
CHAT__HIDDEN void chat__msg_remove(chat_client *c, chat__msg *m);

/* client_send.c: write what the socket takes, `out` (control frames) and
 * the queued frames in order, through TLS when the connection has it. 0,
 * or CHAT_ECLOSED / a TLS error (the connection is lost). */
CHAT__HIDDEN int chat__flush(chat_client *c);

#endif
