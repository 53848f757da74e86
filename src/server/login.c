/* login.c -- see login.h. */
#include "server/login.h"

#include "common/log.h"
#include "proto/frame.h"
#include "server/accounts.h"
#include "server/close.h"
#include "server/output.h"
#include "server/sync.h"

int login_bind(conn *c, uint32_t user) {
    hub *h = c->hub;
    if (user == 0) {
        CLOG(c, LOG_WARN, "%s", "refused: user id 0 is reserved; closing");
        h->stats.refused++;
        close_finish(c, FRAME_ERR_PROTO, "user id 0 is reserved");
        return -1;
    }
    if (router_add(h->router, &c->node, user)) {
        CLOG(c, LOG_ERROR, "%s", "out of memory binding; closing");
        close_abort(c);
        return -1;
    }
    c->user = user;
    conn_to(c, h->cfg->echo ? CONN_ECHO : CONN_SYNC);
    return 0;
}

/* WELCOME, then the stored frames (SYNC). */
static void welcome(conn *c) {
    frame_welcome w = {FRAME_VERSION, (uint8_t)(c->acks ? FRAME_FLAG_ACKS : 0),
                       c->user, c->hub->cfg->max_frame};
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
        if (login_bind(c, c->user) == 0) {
            h->stats.logins++;
            CLOG(c, LOG_INFO, "%s", "logged in");
            welcome(c);
            conn_queue_resume(c); /* what followed the HELLO, then reading */
        }
    } else if (result != ACCOUNTS_EBADPW && result != ACCOUNTS_ENOENT) {
        h->stats.login_failures++;
        CLOG(c, LOG_ERROR, "login failed: cannot check the password (%s); "
             "closing", accounts_strerror(result));
        close_finish(c, FRAME_ERR_BUSY, "cannot check passwords now; try "
                     "again later");
    } else {
        h->stats.login_failures++;
        CLOG(c, LOG_WARN, "login failed: %s; answering after %d ms, then "
             "closing", result == ACCOUNTS_EBADPW ? "wrong password"
                                                  : "no such account",
             CONN_AUTH_FAIL_MS);
        /* Every failure is answered CONN_AUTH_FAIL_MS after its HELLO: the
         * same for unknown ids, and slow for guessing. */
        uint64_t now = uv_now(h->loop), due = c->t_accept + CONN_AUTH_FAIL_MS;
        conn_to(c, CONN_DENIED);
        int r = conn_timer(c, on_denied, due > now ? due - now : 0);
        if (r) {
            CLOG(c, LOG_ERROR, "cannot start a timer: %s; closing",
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
        CLOG(c, LOG_WARN, "refused: HELLO %s; closing",
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
        CLOG(c, LOG_WARN, "refused: too many logins in progress (%s); "
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
        CLOG(c, LOG_ERROR, "cannot stop reading: %s; closing", uv_strerror(r));
        close_abort(c);
    }
}

void login_hello(conn *c, const frame_c2s *f) {
    frame_hello h;
    if (frame_parse_hello(f->body, f->len, &h) || h.version != FRAME_VERSION) {
        CLOG(c, LOG_WARN, "refused: HELLO version %u unsupported; closing",
             f->len ? f->body[0] : 0);
        c->hub->stats.refused++;
        close_finish(c, FRAME_ERR_PROTO,
                     "unsupported protocol version (this server speaks 1)");
        return;
    }
    c->acks = (h.flags & FRAME_FLAG_ACKS) != 0;
    if (c->hub->auth) {
        start(c, f->sender, &h);
        return;
    }
    if (login_bind(c, f->sender) == 0) welcome(c);
}
