/*
 * deliver.h -- the routing policy: where a data frame goes.
 *
 * The rule (docs/ARCHITECTURE.md): LIVE connections of the receiver get it
 * now, and the author's CONV connections of its other devices get an own
 * copy (a LIVE one without room spills to SYNC first; a LIVE one that
 * acknowledges and has --max-unacked frames unacknowledged is a slow
 * consumer: ERROR SLOW and closed, its frames stay stored). It is also put
 * in the store unless every device of the receiver (as the store counts
 * them) is LIVE here without acknowledging, the sender does not want an
 * acknowledgement, the author has no other CONV device and --history-ttl
 * is off. SYNC connections are told it was stored.
 *
 * A user may have several devices and connections; the router says which
 * are in this process, the store which devices exist. Nothing here
 * assumes that all of them are here: a device that is not LIVE here gets
 * the message from the store.
 */
#ifndef CHAT_SERVER_DELIVER_H
#define CHAT_SERVER_DELIVER_H

#include <stdint.h>

#include "server/conn.h"
#include "server/groups.h"
#include "server/output.h"

/* Deliver data frame f (for a POST: its payload, as a frame of its kind),
 * the seq-th data frame of src (the sender; b: the block its body lies in,
 * or NULL; cid: the client's id of it, 0 for none). Returns 1 when a put
 * naming src is in flight (src hears in sync_put_done), 0 when the frame
 * is handled already, or STORE_ENOMEM (nothing delivered). */
int deliver(conn *src, uint64_t seq, const frame_c2s *f, blk *b,
            uint64_t cid);

/* A message held until its put commits: a POST with a client id from a
 * sender that wants acknowledgements is delivered to no one before it is
 * stored (else a crash between the two would let the sender's resend
 * deliver it again: the store would not know its client id), and the
 * sender's later messages wait behind it (per-sender order). Owned by its
 * sender's connection (conn.held), freed once delivered or refused. The
 * body is a copy, or a reference to the block it lies in. */
typedef struct held {
    struct held *next;
    uint64_t seq;          /* its put's */
    msgref m;
    uint8_t group;         /* 1: m.grp is a group to post to */
    uint8_t others;        /* own copies go to the author's other devices */
    uint8_t body[];        /* m.body, when not in a block */
} held;

/* The put of src's oldest held message (its seq) completed with status:
 * deliver it now (STORE_OK) or drop it. */
void deliver_held(conn *src, uint64_t seq, int status);

/* Drop src's held messages (its connection is freed: their puts were
 * completed or dropped with the store). */
void deliver_held_free(conn *src);

/* Deliver f (a POST's payload) to group g, of which src's user is a
 * member: every connection of every member (own copies to the author's
 * other CONV devices), stored once (receiver 0) unless every member's
 * devices are LIVE here without acknowledging, the sender does not want
 * an acknowledgement, the author has no other CONV device and
 * --history-ttl is off. Returns as deliver(). O(members). */
int deliver_group(conn *src, uint64_t seq, const frame_c2s *f, blk *b,
                  uint64_t cid, const chatgroup *g);

#endif
