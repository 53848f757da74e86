/*
 * history.h -- a CONV connection's HISTORY requests: a page of a
 * conversation's past, newest first (docs/PROTOCOL.md, "History").
 *
 * The store reads the page (store_history); the answer, a HISTORY_PAGE
 * frame, follows its completion (history_done), never inside the request.
 * A page is not acknowledged and moves no cursor. Without --history-ttl the
 * answer is an empty page (nothing is kept to read).
 */
#ifndef CHAT_SERVER_HISTORY_H
#define CHAT_SERVER_HISTORY_H

#include "server/conn.h"

/* Payload bytes of a page at most (beyond its first message). */
#define HISTORY_PAGE_BYTES (256u * 1024)

/* A HISTORY frame from c (CONV, bound; FRAME_HISTORY_SIZE bytes). A
 * malformed one closes c with ERROR PROTO. */
void history_request(conn *c, const frame_c2s *f);

/* The store read the page (store_callbacks.history_done). */
void history_done(void *token, const store_row *rows, size_t n, int more,
                  int status);

#endif
