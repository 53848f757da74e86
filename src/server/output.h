/*
 * output.h -- a session's output: frames into the connection's output
 * queue (outq.h), and the write path down the stack: the queue -> TLS (when
 * the connection has it) -> the transport, once per loop iteration per
 * connection (the hub's flush list), with at most one write in flight.
 *
 * Failures: an append that cannot allocate, or a write that fails in
 * output_room, sets c->fail and the call returns -1 / 0; the frame is not
 * queued and the connection is closed at its next flush (io_flush), so
 * callers in the middle of a delivery need not close it themselves.
 */
#ifndef CHAT_SERVER_OUTPUT_H
#define CHAT_SERVER_OUTPUT_H

#include <stdint.h>

#include "server/conn.h"

/* Queue a data frame for the peer, from `from`, with its store id (0:
 * none); its body is copied, or referenced when it lies in block b (NULL:
 * copy). The caller checked output_room (fetched pages and tails excepted).
 * Counts it (seq_out, cursor) and, for a peer that acknowledges, remembers
 * (seq_out, id) until its ACK. 0, or -1 (see Failures above). */
static inline int output_data(conn *c, uint32_t from, uint8_t type,
                              const uint8_t *body, uint32_t len, blk *b,
                              uint64_t id);
int output_data_slow(conn *c, uint32_t from, uint8_t type, const uint8_t *body,
                     uint32_t len, blk *b, uint64_t id);

/* A message as it is delivered: to a CONV peer as a MSG frame (with its
 * id, `to`, time, and OWN when the peer's user is its author), to others
 * as a bare data frame. */
typedef struct msgref {
    uint64_t id;          /* its server id */
    int64_t ts;           /* accepted at, unix ms */
    uint32_t from, to;
    uint8_t type;         /* 1-4 */
    uint32_t len;
    const uint8_t *body;
    blk *b;               /* the block body lies in, or NULL */
    uint32_t grp;         /* its group (then `to` is unused), 0: none */
    uint8_t held;         /* stored, with a client id: a connection gets it
                             only once committed (sync.h: HELD) */
} msgref;

/* Queue message m for the peer; `stored`: the store holds it (the peer's
 * acknowledgement or write then moves its device's cursor). As
 * output_data otherwise. A peer without CONV must not be given a message
 * of its own user to someone else (the caller's rule). */
int output_msg(conn *c, const msgref *m, int stored);

/* How far c's device got: the least that c and its device's other
 * connections in this process have (a message one of them has not got
 * yet must stay stored for it; one whose device is being looked up has
 * nothing yet). O(connections of its user). */
uint64_t output_device_has(const conn *c);

/* Tell the store how far the peer's device got, when that moved. */
void output_report(conn *c);

/* The peer's own group messages (conn.own_upto) are its device's once it
 * has everything before them: LIVE, nothing queued, in flight or
 * unacknowledged. Then `confirmed` passes them (else a group's floor, and
 * so every member's copy, would wait for a message to come to it). */
void output_own(conn *c);

/* Control frames may pass --max-outbuf by this much (the last ERROR
 * before a close, the WELCOME after a full queue of stored frames). */
#define OUTPUT_CONTROL_SLACK ((size_t)64 << 10)

/* Queue a control frame (small: it may pass --max-outbuf by
 * OUTPUT_CONTROL_SLACK; past that the peer does not read its answers, and
 * the connection is closed at the flush, with a log line). */
void output_control(conn *c, uint8_t type, const uint8_t *body, uint32_t len);
/* The same with a sender in the header (TYPING: the typist). */
void output_control_from(conn *c, uint32_t from, uint8_t type,
                         const uint8_t *body, uint32_t len);

/* A signal caused by another user (a live receipt, TYPING, a presence
 * change): dropped, not queued, while c's queue is at --max-outbuf (a peer
 * that does not read is not closed for what others do; it can QUERY or
 * SUBSCRIBE again). 1 when queued. */
int output_signal(conn *c, uint32_t from, uint8_t type, const uint8_t *body,
                  uint32_t len);

/* ERROR code/ref/reason, to a peer that speaks control frames only (the
 * article's client never gets one). */
void output_error(conn *c, unsigned code, uint64_t ref, const char *reason);

/* The peer's data frames up to `upto` are handled: an opted-in peer gets
 * one ACK at the flush. */
void output_ack(conn *c, uint64_t upto);

/* POSTED (SIGNALS connections only; else nothing): the POST with client
 * id cid is message id. */
void output_posted(conn *c, uint64_t cid, uint64_t id);

/* The bytes queued for the peer that the kernel has not taken: the buffer
 * taking appends, and what is left of the write in flight (its frames
 * already taken are the peer's, not a backlog). This is what --max-outbuf
 * bounds; the buffer of the write in flight is held until the write ends,
 * so memory is at most twice the bound. */
static inline size_t output_queued(const conn *c) {
    return outq_cur((outq *)&c->out)->total +
           (transport_writing(&c->io) ? transport_unsent(&c->io) : 0);
}

/* 1 when a data frame of len body bytes fits under --max-outbuf (writing
 * out what is queued first when no write is in flight: a burst within one
 * iteration is not a slow reader), else 0. */
int output_room(conn *c, uint32_t len);

/* Write the queued output (no-op while a write is in flight). Returns 1
 * when nothing is left queued or in flight, 0 when something is, or a
 * negative libuv/TLS error: the connection must be closed. */
int output_flush(conn *c);

/* The write in flight finished well: release the buffer it carried (for
 * a peer without acknowledgements, its device has its messages now). */
void output_written(conn *c);

/* Free empty buffers (cron). Returns the bytes freed. */
size_t output_shrink(conn *c);

/* The common case inline (it runs once per routed frame): no store id. */
static inline int output_data(conn *c, uint32_t from, uint8_t type,
                              const uint8_t *body, uint32_t len, blk *b,
                              uint64_t id) {
    if (id || c->fail || outq_frame(&c->out, from, type, body, len, b, 0))
        return output_data_slow(c, from, type, body, len, b, id);
    c->seq_out++;
    conn_queue_flush(c);
    return 0;
}

#endif
