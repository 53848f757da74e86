/*
 * receipts.h -- delivered and read marks (docs/PROTOCOL.md, "Receipts,
 * typing and presence"): the RECEIPT frames of SIGNALS connections.
 *
 * DELIVERED: every connection that is sent a message while some SIGNALS
 * connection exists in this process (hub.nsig > 0) notes (id, author,
 * group) in its `track` queue, in id order; when its `confirmed` passes
 * them (the peer acknowledged them, or its kernel took them), the notes
 * go out as DELIVERED marks to the authors' SIGNALS connections, one per
 * author and conversation. Nothing is stored for it: the store derives a
 * user's delivered mark from its device cursors (store_marks).
 *
 * READ: a client's mark, kept by the store (store_read_mark) and passed on
 * live; QUERY: the store's marks of a conversation (store_marks), answered
 * after its completion, never inside the request.
 *
 * Limits: a connection's track queue holds at most CONN_TRACK_MAX
 * notes (past it, new messages are not tracked: their live DELIVERED is
 * not sent; QUERY still answers the mark). Groups of more than
 * --receipt-group-max members get no live receipts (QUERY only).
 */
#ifndef CHAT_SERVER_RECEIPTS_H
#define CHAT_SERVER_RECEIPTS_H

#include "server/conn.h"

/* c's confirmed passed notes of its track queue (conn_track, called up
 * through hub_ops.confirmed): send the DELIVERED marks they make due. */
void receipts_confirmed(conn *c);

/* A RECEIPT frame from a SIGNALS connection (FRAME_RECEIPT_SIZE bytes). A
 * malformed one closes c with ERROR PROTO. */
void receipts_request(conn *c, const frame_c2s *f);

/* The store answered a QUERY (store_callbacks.marks_done). */
void receipts_marks_done(void *token, const store_mark *marks, size_t n,
                         int status);

#endif
