/*
 * framing.h -- the layer between a connection's bytes (TCP, or TLS
 * plaintext) and its session: it finds the chat frames in the byte stream.
 *
 * A framing module (framing_raw.c: the article's bare frames; next, a
 * WebSocket framing carrying one frame per message) calls two functions of
 * the session for every frame, through a framing_sink:
 *
 *   header(ctx, h)     a frame's 13-byte header is complete, before its body
 *                      is awaited: FRAMING_BODY (wait for the body),
 *                      FRAMING_SKIP (discard its body as it arrives, never
 *                      buffered) or FRAMING_STOP (the session closed: drop
 *                      everything). Called once per frame.
 *   frame(ctx, f, b)   the whole frame is here: f->body points into the
 *                      framing's buffers (b: the block holding it, which the
 *                      session may keep references to; NULL when the frame
 *                      lies in the caller's scratch buffer and must be
 *                      copied if kept). FRAMING_NEXT, FRAMING_PAUSE (stop
 *                      parsing and keep the rest for framing_*_resume: a
 *                      login is being checked), or FRAMING_STOP.
 *
 * The session never sees partial frames or the framing's own bytes.
 */
#ifndef CHAT_SERVER_FRAMING_H
#define CHAT_SERVER_FRAMING_H

#include "common/blk.h"
#include "proto/frame.h"

enum {
    FRAMING_BODY = 0,  /* header: await the body */
    FRAMING_NEXT = 0,  /* frame: go on */
    FRAMING_SKIP = 1,  /* header: discard the body */
    FRAMING_PAUSE = 2, /* frame: keep the rest unparsed */
    FRAMING_STOP = 3   /* either: the session is closing, drop everything */
};

enum { FRAMING_ENOMEM = -1 };

typedef struct framing_sink {
    int (*header)(void *ctx, const frame_c2s *h);
    int (*frame)(void *ctx, const frame_c2s *f, blk *b);
} framing_sink;

#endif
