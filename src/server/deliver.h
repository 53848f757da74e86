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

/* Deliver data frame f (for a POST: its payload, as a frame of its kind),
 * the seq-th data frame of src (the sender; b: the block its body lies in,
 * or NULL; cid: the client's id of it, 0 for none). Returns 1 when a put
 * naming src is in flight (src hears in sync_put_done), 0 when the frame
 * is handled already, or STORE_ENOMEM (nothing delivered). */
int deliver(conn *src, uint64_t seq, const frame_c2s *f, blk *b,
            uint64_t cid);

/* Deliver f (a POST's payload) to group g, of which src's user is a
 * member: every connection of every member (own copies to the author's
 * other CONV devices), stored once (receiver 0) unless every member's
 * devices are LIVE here without acknowledging, the sender does not want
 * an acknowledgement, the author has no other CONV device and
 * --history-ttl is off. Returns as deliver(). O(members). */
/* A shared store (the cluster, hub.shared): stored message `row` for user (0: a
 * group message, for every member here; the author: an own copy, for its
 * other CONV devices), from the store's feed in id order: queued to each
 * LIVE connection that takes it and has not had it (its fetch may have),
 * kept in the tail of the SYNC ones; a LIVE connection without room
 * spills (its next fetch brings it), one whose acknowledgement window is
 * full is closed with ERROR SLOW, as for a live delivery. */
void deliver_live(hub *h, uint32_t user, const store_row *row);

/* The cluster: a control frame another node relayed (store_relay) for
 * user's connections here: a GROUPS event to its CONV connections, a
 * TYPING or RECEIPT to its SIGNALS ones, as the node that made it tells
 * its own. */
void deliver_relayed(hub *h, uint32_t user, uint32_t sender, uint8_t type,
                     const uint8_t *body, size_t len);

/* The cluster: the store's feed was interrupted: every LIVE and HELD
 * connection goes back to SYNC and fetches from its device's cursor. */
void deliver_resync(hub *h);

int deliver_group(conn *src, uint64_t seq, const frame_c2s *f, blk *b,
                  uint64_t cid, const chatgroup *g);

#endif
