/* framing_ws.c -- see framing_ws.h. */
#include "server/framing_ws.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "proto/frame.h"

struct framing_ws {
    wslay_event_context_ptr ev;
    framing_raw *raw;     /* borrowed: the connection's */
    outq *out;            /* borrowed: the connection's */
    const uint8_t *in;    /* the bytes of the current framing_ws_input */
    size_t inlen;         /* ... not yet taken by wslay */
    const char *why;      /* the reason of the last close, for the log */
    uint8_t nomem;        /* a callback ran out of memory */
    uint8_t stop;         /* a close was queued or received */
};

/* wslay pulls the input from the bytes of the current call. */
static ssize_t on_recv(wslay_event_context_ptr ev, uint8_t *to, size_t len,
                       int flags, void *ud) {
    (void)flags;
    framing_ws *w = ud;
    if (w->inlen == 0) {
        wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < w->inlen ? len : w->inlen;
    memcpy(to, w->in, n);
    w->in += n;
    w->inlen -= n;
    return (ssize_t)n;
}

/* wslay's frames (pong, close) go into the output queue, whole. */
static ssize_t on_send(wslay_event_context_ptr ev, const uint8_t *data,
                       size_t len, int flags, void *ud) {
    (void)flags;
    framing_ws *w = ud;
    if (outq_raw(w->out, data, len)) {
        w->nomem = 1;
        wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void stop(framing_ws *w, uint16_t code, const char *why) {
    w->why = why;
    w->stop = 1;
    if (!wslay_event_get_close_sent(w->ev) &&
        wslay_event_queue_close(w->ev, code, (const uint8_t *)why,
                                strlen(why)) == WSLAY_ERR_NOMEM)
        w->nomem = 1;
    wslay_event_shutdown_read(w->ev);
}

static void on_msg(wslay_event_context_ptr ev,
                   const struct wslay_event_on_msg_recv_arg *a, void *ud) {
    (void)ev;
    framing_ws *w = ud;
    if (w->stop) return; /* (the rest of a read after a close) */
    switch (a->opcode) {
    case WSLAY_BINARY_FRAME:
        break;
    case WSLAY_TEXT_FRAME:
        stop(w, WS_UNSUPPORTED, "text message: chat frames travel in binary "
             "messages");
        return;
    case WSLAY_CONNECTION_CLOSE:
        w->why = "close from peer";
        w->stop = 1; /* (wslay queued the answering close) */
        return;
    default:
        return; /* ping (wslay queued the pong), pong */
    }
    if (a->msg_length < FRAME_C2S_HDR ||
        a->msg_length - FRAME_C2S_HDR != frame_rd32(a->msg + 9)) {
        stop(w, WS_PROTOCOL_ERROR, "a binary message must carry exactly one "
             "chat frame");
        return;
    }
    if (framing_raw_input(w->raw, a->msg, a->msg_length)) w->nomem = 1;
}

framing_ws *framing_ws_new(framing_raw *raw, outq *out, uint32_t max_frame) {
    static const struct wslay_event_callbacks cb = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .on_msg_recv_callback = on_msg,
    };
    framing_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    if (wslay_event_context_server_init(&w->ev, &cb, w)) {
        free(w);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(w->ev, (uint64_t)max_frame +
                                                          FRAME_C2S_HDR);
    w->raw = raw;
    w->out = out;
    outq_set_mode(out, OUTQ_WS);
    return w;
}

/* Push what wslay queued (pongs, a close) into the output queue. */
static void send_queued(framing_ws *w) {
    if (wslay_event_want_write(w->ev) && wslay_event_send(w->ev) &&
        !w->nomem)
        w->nomem = 1; /* (its only other failure: our callback's) */
}

int framing_ws_input(framing_ws *w, const uint8_t *p, size_t n) {
    if (w->stop) return FRAMING_WS_CLOSE;
    w->in = p;
    w->inlen = n;
    int r = wslay_event_recv(w->ev);
    w->in = NULL;
    w->inlen = 0;
    if (r == WSLAY_ERR_NOMEM) w->nomem = 1;
    int gave_up = !wslay_event_get_read_enabled(w->ev) && !w->stop;
    send_queued(w);
    if (gave_up) {
        /* wslay gave up reading: a protocol error or a message over the
         * bound, with its close (now sent) saying which. */
        w->stop = 1;
        w->why = wslay_event_get_status_code_sent(w->ev) == WS_TOO_BIG
                     ? "message over --max-frame"
                     : "WebSocket protocol error";
    }
    if (w->nomem) return FRAMING_ENOMEM;
    return w->stop ? FRAMING_WS_CLOSE : 0;
}

int framing_ws_close(framing_ws *w, uint16_t code, const char *reason) {
    if (wslay_event_get_close_sent(w->ev)) return 0;
    size_t n = reason ? strlen(reason) : 0;
    if (n > 123) n = 123; /* a control frame's payload is at most 125 */
    w->stop = 1;
    if (!w->why) w->why = reason ? reason : "closed by the server";
    if (wslay_event_queue_close(w->ev, code, (const uint8_t *)reason, n))
        return -1;
    wslay_event_shutdown_read(w->ev);
    send_queued(w);
    return w->nomem ? -1 : 0;
}

int framing_ws_close_sent(const framing_ws *w) {
    return wslay_event_get_close_sent(w->ev);
}

uint16_t framing_ws_code_received(const framing_ws *w) {
    return wslay_event_get_close_received(w->ev)
               ? wslay_event_get_status_code_received(w->ev)
               : 0; /* (wslay says 1006 then) */
}

const char *framing_ws_why(const framing_ws *w) {
    return w->why ? w->why : "";
}

void framing_ws_free(framing_ws *w) {
    if (!w) return;
    wslay_event_context_free(w->ev);
    free(w);
}
