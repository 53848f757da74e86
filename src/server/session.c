/* session.c -- see session.h. */
#include "server/session.h"

#include "common/log.h"
#include "proto/frame.h"
#include "proto/signal.h"
#include "server/cidset.h"
#include "server/close.h"
#include "server/deliver.h"
#include "server/groupops.h"
#include "server/history.h"
#include "server/presence.h"
#include "server/receipts.h"
#include "server/login.h"
#include "server/output.h"
#include "server/ratelimit.h"
#include "server/sync.h"

/* Refuse a frame without closing: log once per kind (event names the
 * kind), ERROR to a peer that speaks control frames; a data frame
 * (ref != 0) counts as handled. */
static void refuse_once(conn *c, unsigned flag, const char *event,
                        unsigned code, uint64_t ref, const char *reason) {
    c->hub->stats.refused++;
    if (!(c->logged & flag)) {
        c->logged |= (uint16_t)flag;
        CLOG(c, LOG_WARN, event,
             "refused frame: %s (logged once per connection)", reason);
    }
    output_error(c, code, ref, reason);
    if (ref && !c->puts_pending) output_ack(c, ref);
}

/* Refuse and close. */
static int refuse_close(conn *c, unsigned code, const char *reason) {
    c->hub->stats.refused++;
    close_finish(c, code, reason);
    return FRAMING_STOP;
}

/* A header that is not a plain data frame of a bound connection: the
 * first frame, control frames, refusals. */
static __attribute__((noinline)) int header_slow(conn *c, const frame_c2s *h) {
    const config *cfg = c->hub->cfg;
    char why[160];
    if (!conn_parsing(c)) return FRAMING_STOP;
    /* a POST is a data frame for a CONV connection, unknown to others */
    int post = h->type == FRAME_POST && c->conv;
    int data = frame_is_data(h->type) || post, verdict = FRAMING_SKIP;
    if (h->len > cfg->max_frame + (post ? FRAME_POST_PRE : 0)) {
        if (data) c->seq_in++;
        CLOG(c, LOG_WARN, "frame_too_large",
             "refused: frame too large (%u bytes, limit %u); "
             "closing", (unsigned)h->len, (unsigned)cfg->max_frame);
        snprintf(why, sizeof why, "frame too large: %u bytes, limit %u",
                 (unsigned)h->len, (unsigned)cfg->max_frame);
        return refuse_close(c, FRAME_ERR_TOOBIG, why);
    }
    if (c->hub->auth && c->state == CONN_NEW && h->type != FRAME_HELLO) {
        if (data) c->seq_in++;
        CLOG(c, LOG_WARN, "frame_before_login",
             "refused: frame type %u before login; closing",
             (unsigned)h->type);
        c->ctl = 1; /* a server with logins speaks control frames */
        return refuse_close(c, FRAME_ERR_NOLOGIN, "log in first: this server "
                            "requires HELLO with your password (--auth on)");
    }
    if (h->type == FRAME_HELLO && c->state != CONN_NEW) {
        c->ctl = 1;
        refuse_once(c, CONN_LOGGED_HELLO, "hello_repeated", FRAME_ERR_PROTO, 0,
                    "HELLO must be the first frame; ignored");
    } else if (c->user && h->sender != c->user) {
        if (data) c->seq_in++;
        snprintf(why, sizeof why,
                 "spoofed sender: frame claims sender %u, connection is user %u",
                 (unsigned)h->sender, (unsigned)c->user);
        refuse_once(c, CONN_LOGGED_SPOOF, "frame_spoofed", FRAME_ERR_SPOOF,
                    data ? c->seq_in : 0, why);
    } else if (post && h->len < FRAME_POST_PRE) {
        c->seq_in++;
        CLOG(c, LOG_WARN, "post_malformed",
             "refused: malformed POST (%u bytes); closing",
             (unsigned)h->len);
        return refuse_close(c, FRAME_ERR_PROTO, "malformed POST");
    } else if (data) {
        if (cfg->echo || h->receiver != 0) return FRAMING_BODY;
        c->seq_in++;
        refuse_once(c, CONN_LOGGED_BADRCPT, "frame_bad_receiver",
                    FRAME_ERR_BADRCPT, c->seq_in,
                    "invalid receiver: user id 0");
    } else if (h->type == FRAME_HELLO) {
        c->ctl = 1;
        if (h->len >= FRAME_HELLO_MIN && h->len <= CONN_HELLO_MAX)
            return FRAMING_BODY;
        CLOG(c, LOG_WARN, "hello_malformed",
             "refused: malformed HELLO (%u bytes); closing",
             (unsigned)h->len);
        return refuse_close(c, FRAME_ERR_PROTO, "malformed HELLO");
    } else if (h->type == FRAME_HISTORY && c->conv) {
        if (h->len == FRAME_HISTORY_SIZE) return FRAMING_BODY;
        CLOG(c, LOG_WARN, "history_malformed",
             "refused: malformed HISTORY (%u bytes); closing",
             (unsigned)h->len);
        return refuse_close(c, FRAME_ERR_PROTO, "malformed HISTORY");
    } else if ((h->type == FRAME_RECEIPT || h->type == FRAME_TYPING ||
                h->type == FRAME_PRESENCE) && c->sig) {
        uint32_t want = h->type == FRAME_RECEIPT ? FRAME_RECEIPT_SIZE
                        : h->type == FRAME_TYPING ? FRAME_TYPING_SIZE
                        : 0;
        if (want ? h->len == want
                 : h->len >= FRAME_PRESENCE_PRE + 4 &&
                       h->len <= FRAME_PRESENCE_PRE +
                                     4 * FRAME_PRESENCE_USERS_MAX)
            return FRAMING_BODY;
        CLOG(c, LOG_WARN, "signal_malformed",
             "refused: malformed signal frame 0x%02x (%u bytes); "
             "closing", h->type, (unsigned)h->len);
        return refuse_close(c, FRAME_ERR_PROTO, "malformed signal frame: "
                            "RECEIPT 26 bytes, TYPING 6, PRESENCE 3 + 4 per "
                            "user (1 to 256)");
    } else if (h->type == FRAME_GROUP && c->conv) {
        if (h->len >= FRAME_GROUP_PRE &&
            h->len <= GROUPOPS_BODY_MAX)
            return FRAMING_BODY;
        CLOG(c, LOG_WARN, "group_malformed",
             "refused: malformed GROUP (%u bytes); closing",
             (unsigned)h->len);
        return refuse_close(c, FRAME_ERR_PROTO, "malformed GROUP");
    } else if (h->type == FRAME_PING || h->type == FRAME_PONG ||
               h->type == FRAME_ACK) {
        c->ctl = 1;
        if (h->type == FRAME_ACK ? h->len == FRAME_ACK_SIZE
                                 : h->len <= FRAME_PING_MAX)
            return FRAMING_BODY;
        CLOG(c, LOG_WARN, "control_malformed",
             "refused: malformed control frame 0x%02x (%u "
             "bytes); closing", h->type, (unsigned)h->len);
        return refuse_close(c, FRAME_ERR_PROTO, "malformed control frame");
    } else {
        snprintf(why, sizeof why, "unknown frame type %u", (unsigned)h->type);
        refuse_once(c, CONN_LOGGED_BADTYPE, "frame_unknown_type",
                    FRAME_ERR_BADTYPE, 0, why);
    }
    c->frames_seen++; /* a skipped frame costs its rate all the same */
    return conn_parsing(c) ? verdict : FRAMING_STOP;
}

/* A complete header, before its body is awaited. */
static int on_header(void *ctx, const frame_c2s *h) {
    conn *c = ctx;
    const config *cfg = c->hub->cfg;
    /* The common case first: a data frame of a bound connection, from its
     * user, to someone, within the limit. */
    if (frame_is_data(h->type) && conn_bound(c) && h->sender == c->user &&
        h->len <= cfg->max_frame && (h->receiver || cfg->echo))
        return FRAMING_BODY;
    return header_slow(c, h);
}

/* deliver() could not take data frame f (the connection's seq_in-th). */
static __attribute__((noinline)) void not_routed(conn *c, const frame_c2s *f,
                                                 uint64_t cid, int r) {
    char why[160];
    snprintf(why, sizeof why, "message to %u not accepted: %s",
             (unsigned)f->receiver, store_strerror(r));
    if (cid) cidset_del(c->cids, cid);
    refuse_once(c, CONN_LOGGED_STORE, "message_not_stored", FRAME_ERR_STORE,
                c->seq_in, why);
}

/* Route data frame f, the connection's seq_in-th (counted already). */
static inline void route(conn *c, const frame_c2s *f, blk *b, uint64_t cid) {
    int r = deliver(c, c->seq_in, f, b, cid);
    if (r < 0) not_routed(c, f, cid, r);
    else if (r == 0 && !c->puts_pending) output_ack(c, c->seq_in);
}

static void on_data(conn *c, const frame_c2s *f, blk *b) {
    hub *h = c->hub;
    if (c->state == CONN_NEW) {
        if (login_bind(c, f->sender)) return;
        sync_start(c);
    }
    c->seq_in++;
    h->stats.frames_in++;
    h->stats.in_type[(f->type - 1) & (HUB_TYPES - 1)]++;
    if (h->cfg->echo) {
        if (!output_room(c, f->len)) {
            /* Echo frames have no other home: a sender that does not read
             * its echoes is closed. */
            CLOG(c, LOG_WARN, "echo_backlog",
                 "output queue over %zu bytes (not reading its "
                 "echoes); closing", h->cfg->max_outbuf);
            close_abort(c);
            return;
        }
        if (output_data(c, f->sender, f->type, f->body, f->len, b, 0) == 0)
            conn_live_sent(c, f->type);
        if (!c->puts_pending) output_ack(c, c->seq_in);
        return;
    }
    route(c, f, b, 0);
}

/* POST (CONV): a data frame with a client id; one the device sent within
 * --dedup-window is acknowledged and dropped. */
static void on_post(conn *c, const frame_c2s *f, blk *b) {
    hub *h = c->hub;
    const uint8_t *p = f->body;
    uint8_t kind = p[0], flags = p[1];
    uint64_t cid = frame_rd64(p + 2);
    c->seq_in++;
    if (!frame_is_data(kind) || (flags & ~FRAME_MSG_GROUP)) {
        CLOG(c, LOG_WARN, "post_malformed",
             "refused: POST of kind %u, flags %u; closing",
             (unsigned)kind, (unsigned)flags);
        (void)refuse_close(c, FRAME_ERR_PROTO, /* (the verdict is ours) */
                           "malformed POST: kind must be 1-4, flags 0 or 2");
        return;
    }
    const chatgroup *g = NULL;
    if (flags & FRAME_MSG_GROUP) {
        g = groups_get(store_groups(h->store), f->receiver);
        if (!g || groups_member(g, c->user) < 0) {
            char why[FRAME_REASON_MAX];
            groupops_reason(g ? STORE_GNOTMEMBER : STORE_GNOGROUP,
                            f->receiver, h->cfg, why, sizeof why);
            refuse_once(c, CONN_LOGGED_GROUP, "group_post_refused",
                        FRAME_ERR_GROUP, c->seq_in, why);
            return;
        }
    }
    int64_t now = hub_now_ms(h);
    if (cid && cidset_has(c->cids, cid, now - (int64_t)h->cfg->dedup_ms)) {
        h->stats.deduplicated++;
        uint64_t id = cidset_id(c->cids, cid);
        if (id) output_posted(c, cid, id);
        if (!c->puts_pending) output_ack(c, c->seq_in);
        return;
    }
    if (cid && cidset_add(&c->cids, cid, now)) {
        CLOG(c, LOG_ERROR, "conn_oom",
             "out of memory keeping a client id; closing");
        close_abort(c);
        return;
    }
    h->stats.frames_in++;
    h->stats.in_type[(kind - 1) & (HUB_TYPES - 1)]++;
    frame_c2s m = {f->sender, f->receiver, kind, f->len - FRAME_POST_PRE,
                   p + FRAME_POST_PRE};
    uint64_t next = h->next_id; /* (delivering gives the message the next
                                   id, and no other: hub_msg_id) */
    if (!g) {
        route(c, &m, b, cid);
    } else {
        int r = deliver_group(c, c->seq_in, &m, b, cid, g);
        if (r < 0) not_routed(c, &m, cid, r);
        else if (r == 0 && !c->puts_pending) output_ack(c, c->seq_in);
    }
    /* (the cluster's store gives the id: POSTED then comes with the put's
     * completion, sync_put_done) */
    if (cid && h->ids_local && h->next_id == next + 1 && conn_open(c) &&
        cidset_has(c->cids, cid, INT64_MIN)) { /* (not refused at once) */
        cidset_set_id(c->cids, cid, next);
        output_posted(c, cid, next);
    }
}

static void on_ack(conn *c, const frame_c2s *f) {
    uint64_t n;
    if (!c->acks || frame_parse_ack(f->body, f->len, &n)) return;
    if (n > c->seq_out) {
        CLOG(c, LOG_WARN, "ack_invalid",
             "refused: ACK of %llu frames, only %llu sent; "
             "closing", (unsigned long long)n, (unsigned long long)c->seq_out);
        (void)refuse_close(c, FRAME_ERR_PROTO, /* (the verdict is ours) */
                           "ACK counts more frames than were sent");
        return;
    }
    sync_acked(c, n);
}

/* PING: PONG, unless the peer lets its answers pile up unread past
 * --max-outbuf (then it is closed: it would cost memory without bound). */
static void on_ping(conn *c, const frame_c2s *f) {
    if (!close_if_unread(c, "PINGs"))
        output_control(c, FRAME_PONG, f->body, f->len);
}

/* A whole frame. */
static int on_frame(void *ctx, const frame_c2s *f, blk *b) {
    conn *c = ctx;
    c->frames_seen++;
    switch (f->type) {
    case FRAME_HELLO: login_hello(c, f); break;
    case FRAME_PING: on_ping(c, f); break;
    case FRAME_ACK: on_ack(c, f); break;
    case FRAME_PONG: break; /* answers our PING (the read touched idle) */
    case FRAME_POST: on_post(c, f, b); break;
    case FRAME_GROUP: groupops_request(c, f); break;
    case FRAME_HISTORY: history_request(c, f); break;
    case FRAME_RECEIPT: receipts_request(c, f); break;
    case FRAME_TYPING: presence_typing(c, f); break;
    case FRAME_PRESENCE: presence_request(c, f); break;
    default: on_data(c, f, b); break;
    }
    if (c->state == CONN_LOGIN) return FRAMING_PAUSE;
    return conn_parsing(c) ? FRAMING_NEXT : FRAMING_STOP;
}

const framing_sink session_sink = {on_header, on_frame};

static ratelimit_cfg rate_cfg(const conn *c) {
    const config *cfg = c->hub->cfg;
    return (ratelimit_cfg){cfg->rate_msgs, cfg->rate_bytes, cfg->rate_grace_ms};
}

static void rate_close(conn *c) {
    const config *cfg = c->hub->cfg;
    char why[160];
    snprintf(why, sizeof why, "over the rate limit (%llu frames/s, %llu "
             "bytes/s) for %llu ms; closing",
             (unsigned long long)cfg->rate_msgs,
             (unsigned long long)cfg->rate_bytes,
             (unsigned long long)cfg->rate_grace_ms);
    CLOG(c, LOG_WARN, "rate_limit_closed", "%s", why);
    (void)refuse_close(c, FRAME_ERR_RATE, why); /* (no framing to tell) */
}

void session_after_read(conn *c, size_t n) {
    if (c->ctl && conn_bound(c)) conn_idle_add(c);
    uint32_t frames = c->frames_seen;
    c->frames_seen = 0;
    ratelimit_cfg rc = rate_cfg(c);
    if (!conn_open(c) || !ratelimit_on(&rc)) return;
    int v = ratelimit_charge(&c->rl, &rc, frames, n, uv_now(c->hub->loop));
    if (v == RATE_OK) return;
    if (v == RATE_EXPIRED) {
        rate_close(c);
        return;
    }
    if (v == RATE_OVER_NEW) {
        c->hub->stats.rate_limited++;
        char why[160];
        snprintf(why, sizeof why, "over the rate limit (%llu frames/s, %llu "
                 "bytes/s): reading paused; closed after %llu ms of this",
                 (unsigned long long)rc.msgs, (unsigned long long)rc.bytes,
                 (unsigned long long)rc.grace_ms);
        if (!(c->logged & CONN_LOGGED_RATE)) {
            c->logged |= CONN_LOGGED_RATE;
            CLOG(c, LOG_WARN, "rate_limited",
                 "%s (logged once per connection)", why);
        }
        output_error(c, FRAME_ERR_RATE, 0, why);
    }
    conn_throttle(c);
}

void session_rate_poll(conn *c) {
    ratelimit_cfg rc = rate_cfg(c);
    int v = ratelimit_poll(&c->rl, &rc, uv_now(c->hub->loop));
    if (v == RATE_OVER) return;
    conn_unthrottle(c);
    if (v == RATE_EXPIRED) {
        rate_close(c);
        return;
    }
    int r = conn_reading(c);
    if (r) {
        CLOG(c, LOG_ERROR, "conn_reading_failed",
             "cannot read again: %s; closing", uv_strerror(r));
        close_abort(c);
    }
}
