/* login.c -- see login.h. */
#include "server/login.h"

#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/accounts.h"
#include "server/cidset.h"
#include "server/close.h"
#include "server/output.h"
#include "server/presence.h"
#include "server/sync.h"

/* Look c's device up in the store (login_device_done answers). */
static void ask_device(conn *c) {
    c->devstate = CONN_DEV_ASKED;
    conn_ref(c); /* dropped in login_device_done */
    store_device(c->hub->store, c->user, c->devname, c->devnamelen, c->conv,
                 c);
}

int login_bind(conn *c, uint32_t user) {
    hub *h = c->hub;
    if (user == 0) {
        CLOG(c, LOG_WARN, "login_reserved_user",
             "refused: user id 0 is reserved; closing");
        h->stats.refused++;
        close_finish(c, FRAME_ERR_PROTO, "user id 0 is reserved");
        return -1;
    }
    if (router_add(h->router, &c->node, user)) {
        CLOG(c, LOG_ERROR, "conn_oom", "out of memory binding; closing");
        close_abort(c);
        return -1;
    }
    c->user = user;
    if (c->sig) h->nsig++; /* (conn_unroute: --) */
    if (!c->node.next) { /* its first one */
        /* (before its device lookup and fetch are queued: a store shared
         * by several nodes routes the user's messages here from then on) */
        store_online(h->store, user, 1);
        if (!h->shared) /* (else the store tells: presence_event) */
            presence_changed(h, user, 1);
    }
    conn_to(c, h->cfg->echo ? CONN_ECHO : CONN_SYNC);
    if (c->state == CONN_SYNC && c->devstate == CONN_DEV_NONE)
        ask_device(c); /* the default device: SYNC fetches once it is known */
    return 0;
}

/* WELCOME, then the stored frames (SYNC). */
static void welcome(conn *c) {
    uint8_t flags = (uint8_t)((c->acks ? FRAME_FLAG_ACKS : 0) |
                              (c->conv ? FRAME_FLAG_CONV : 0) |
                              (c->sig ? FRAME_FLAG_SIGNALS : 0));
    frame_welcome w = {FRAME_VERSION, flags, c->user,
                       c->hub->cfg->max_frame};
    uint8_t body[FRAME_WELCOME_SIZE];
    frame_put_welcome(body, &w);
    output_control(c, FRAME_WELCOME, body, sizeof body);
    conn_idle_add(c);
    sync_start(c);
}

static void on_denied(uv_timer_t *t) {
    conn *c = t->data;
    conn_ref(c);
    close_finish(c, FRAME_ERR_AUTH, "wrong user id or password");
    conn_unref(c);
}

/* The password check finished (auth_done_fn): LOGIN -> bound or DENIED. */
static void auth_done(void *token, int result) {
    conn *c = token;
    hub *h = c->hub;
    if (c->state != CONN_LOGIN) { /* closed meanwhile */
        conn_unref(c);
        return;
    }
    if (result == ACCOUNTS_OK) {
        h->stats.logins++;
        CLOG(c, LOG_INFO, "logged_in", "logged in");
        if (c->conv) {
            ask_device(c); /* still LOGIN: bound once the device is known */
        } else if (login_bind(c, c->user) == 0) {
            welcome(c);
            conn_queue_resume(c); /* what followed the HELLO, then reading */
        }
    } else if (result == AUTH_ESTORE) {
        h->stats.login_failures++;
        CLOG(c, LOG_WARN, "login_store_unreachable",
             "login failed: the store cannot read the account now (the "
             "cluster's Redis is unreachable or failing); closing");
        close_finish(c, FRAME_ERR_STORE, "the server cannot read your "
                     "account now (its store is unreachable); try again "
                     "later");
    } else if (result != ACCOUNTS_EBADPW && result != ACCOUNTS_ENOENT) {
        h->stats.login_failures++;
        CLOG(c, LOG_ERROR, "login_check_failed",
             "login failed: cannot check the password (%s); "
             "closing", accounts_strerror(result));
        close_finish(c, FRAME_ERR_BUSY, "cannot check passwords now; try "
                     "again later");
    } else {
        h->stats.login_failures++;
        CLOG(c, LOG_WARN, "login_failed",
             "login failed: %s; answering after %d ms, then "
             "closing", result == ACCOUNTS_EBADPW ? "wrong password"
                                                  : "no such account",
             CONN_AUTH_FAIL_MS);
        /* Every failure is answered CONN_AUTH_FAIL_MS after its HELLO: the
         * same for unknown ids, and slow for guessing. */
        uint64_t now = uv_now(h->loop), due = c->t_accept + CONN_AUTH_FAIL_MS;
        conn_to(c, CONN_DENIED);
        int r = conn_timer(c, on_denied, due > now ? due - now : 0);
        if (r) {
            CLOG(c, LOG_ERROR, "timer_failed",
                 "cannot start a timer: %s; closing",
                 uv_strerror(r));
            close_abort(c);
        }
    }
    conn_unref(c);
}

/* --auth on: check the HELLO's password off the loop (NEW -> LOGIN). */
static void start(conn *c, uint32_t user, const frame_hello *hello) {
    hub *h = c->hub;
    if (user == 0 || hello->password_len == 0) {
        CLOG(c, LOG_WARN, "login_refused", "refused: HELLO %s; closing",
             user ? "without a password" : "as user 0");
        h->stats.refused++;
        close_finish(c, user ? FRAME_ERR_AUTH : FRAME_ERR_PROTO,
                     user ? "this server requires a password in HELLO"
                          : "user id 0 is reserved");
        return;
    }
    conn_ref(c); /* held by the check until auth_done */
    int r = auth_check(h->auth, user, hello->password, hello->password_len,
                       auth_done, c);
    if (r) {
        conn_unref(c);
        CLOG(c, LOG_WARN, "login_busy",
             "refused: too many logins in progress (%s); "
             "closing", r == AUTH_EBUSY ? "queue full" : "out of memory");
        h->stats.refused++;
        close_finish(c, FRAME_ERR_BUSY, "too many logins in progress; try "
                     "again later");
        return;
    }
    c->user = user;
    conn_to(c, CONN_LOGIN);
    c->t_accept = uv_now(h->loop); /* from now: when the HELLO arrived */ /* off the pending list: the check's time is
                               the server's, not the client's */
    r = conn_reading(c);    /* stops: what follows waits for the verdict */
    if (r) {
        CLOG(c, LOG_ERROR, "conn_reading_failed",
             "cannot stop reading: %s; closing", uv_strerror(r));
        close_abort(c);
    }
}

void login_hello(conn *c, const frame_c2s *f) {
    frame_hello h;
    if (f->len && f->body[0] != FRAME_VERSION) {
        CLOG(c, LOG_WARN, "hello_version_unsupported",
             "refused: HELLO version %u unsupported; closing",
             f->body[0]);
        c->hub->stats.refused++;
        close_finish(c, FRAME_ERR_PROTO,
                     "unsupported protocol version (this server speaks 1)");
        return;
    }
    if (frame_parse_hello(f->body, f->len, &h)) {
        CLOG(c, LOG_WARN, "hello_malformed",
             "refused: malformed HELLO (its device name: "
             "at most 32 bytes of A-Z a-z 0-9 . _ -); closing");
        c->hub->stats.refused++;
        close_finish(c, FRAME_ERR_PROTO, "malformed HELLO: a device name is "
                     "at most 32 bytes of A-Z a-z 0-9 . _ -");
        return;
    }
    /* (not granted while the store could not keep the promise: WELCOME
     * tells the client, store_acks) */
    c->acks = (h.flags & FRAME_FLAG_ACKS) && store_acks(c->hub->store);
    if ((h.flags & FRAME_FLAG_ACKS) && !c->acks)
        CLOG(c, LOG_INFO, "acks_not_granted",
             "ACKS asked for and not granted: the store's persistence is "
             "too weak for an acknowledgement now");
    c->conv = (h.flags & FRAME_FLAG_CONV) && !c->hub->cfg->echo;
    c->sig = c->conv && (h.flags & FRAME_FLAG_SIGNALS);
    c->devnamelen = h.device_len;
    if (h.device_len) memcpy(c->devname, h.device, h.device_len);
    if (c->hub->auth) {
        start(c, f->sender, &h);
        return;
    }
    if (!c->conv) {
        if (login_bind(c, f->sender) == 0) welcome(c);
        return;
    }
    if (f->sender == 0) { /* (login_bind's refusal, before the lookup) */
        (void)login_bind(c, 0);
        return;
    }
    /* CONV: the device first (its client ids must be known before any
     * POST is parsed), waiting in LOGIN like a password check */
    c->user = f->sender;
    conn_to(c, CONN_LOGIN);
    c->t_accept = uv_now(c->hub->loop);
    int r = conn_reading(c); /* stops: what follows waits for the device */
    if (r) {
        CLOG(c, LOG_ERROR, "conn_reading_failed",
             "cannot stop reading: %s; closing", uv_strerror(r));
        close_abort(c);
        return;
    }
    ask_device(c);
}

void login_devices(conn *c, unsigned all, unsigned conv) {
    c->udevs = (uint16_t)(all > UINT16_MAX ? UINT16_MAX : all);
    c->uconv = (uint16_t)(conv > UINT16_MAX ? UINT16_MAX : conv);
}

void login_device_done(conn *c, const store_device_info *d, int status) {
    c->devstate = CONN_DEV_READY;
    if (c->state >= CONN_CLOSING || c->state == CONN_DENIED) {
        if (d) /* closed meanwhile: its device counts it no more */
            store_cursor(c->hub->store, c->user, d->dev, d->cursor, 1);
        conn_unref(c);
        return;
    }
    if (status) {
        CLOG(c, LOG_ERROR, "device_lookup_failed",
             "cannot look up its device: %s; closing",
             store_strerror(status));
        close_finish(c, FRAME_ERR_STORE, "the server cannot look up your "
                     "device now; try again later");
        conn_unref(c);
        return;
    }
    c->dev = d->dev;
    c->cursor = c->confirmed = c->reported = d->cursor;
    login_devices(c, d->all, d->conv);
    int64_t since = hub_now_ms(c->hub) - (int64_t)c->hub->cfg->dedup_ms;
    for (size_t i = 0; c->conv && i < d->ncid; i++) { /* (CONV POSTs) */
        if (d->cid_ts[i] < since) continue;
        if (cidset_add(&c->cids, d->cids[i], d->cid_ts[i])) {
            CLOG(c, LOG_ERROR, "conn_oom",
                 "out of memory loading its client ids; "
                 "closing");
            close_abort(c);
            conn_unref(c);
            return;
        }
        cidset_set_id(c->cids, d->cids[i], d->cid_ids[i]);
    }
    if (c->state == CONN_LOGIN) { /* CONV: now it is bound */
        if (login_bind(c, c->user) == 0) {
            welcome(c);
            conn_queue_resume(c); /* what followed the HELLO, then reading */
        }
    } else {
        sync_start(c);
    }
    conn_unref(c);
}
