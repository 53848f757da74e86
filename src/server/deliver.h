/*
 * deliver.h -- the routing policy: where a data frame goes.
 *
 * The rule (docs/ARCHITECTURE.md): LIVE connections of the receiver get it
 * now (a LIVE one without room spills to SYNC first; a LIVE one that
 * acknowledges and has --max-unacked frames unacknowledged is a slow
 * consumer: ERROR SLOW and closed, its frames stay stored); it is also put
 * in the store when the sender wants acknowledgements, when no connection
 * of the receiver is LIVE, or when a LIVE one acknowledges what it
 * receives. SYNC connections of the receiver are told it was stored.
 *
 * The receiver may have several connections (devices); the router says
 * which are in this process. Nothing here assumes more.
 */
#ifndef CHAT_SERVER_DELIVER_H
#define CHAT_SERVER_DELIVER_H

#include <stdint.h>

#include "server/conn.h"

/* Deliver data frame f, the seq-th data frame of src (the sender; b: the
 * block its body lies in, or NULL). Returns 1 when a put naming src is in
 * flight (src hears in sync_put_done), 0 when the frame is handled
 * already, or STORE_ENOMEM (nothing delivered). */
int deliver(conn *src, uint64_t seq, const frame_c2s *f, blk *b);

#endif
