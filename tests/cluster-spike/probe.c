/*
 * probe.c -- SPIKE, not built by `make`: what Debian's hiredis (0.14.1)
 * offers the cluster store, checked against the installed headers.
 *   cc -o probe probe.c $(pkg-config --cflags --libs hiredis libuv) && ./probe PORT
 * Compile-time: the libuv adapter and the async API are there; TLS
 * (hiredis/hiredis_ssl.h, redisInitiateSSL*), connect options
 * (redisAsyncConnectWithOptions, redisAsyncSetTimeout), custom I/O
 * (redisContextFuncs) and RESP3 (push replies) are not: `./check.sh` tries
 * each and prints what compiles. Run time: an async connect to PORT, AUTH
 * as an ordinary command (Redis 6 ACL form: AUTH user pass), and what a
 * refused connection looks like (the connect callback with an error, on a
 * later loop turn). With Debian's adapter a refused connect is never
 * reported: redisLibuvPoll returns on status < 0 without telling hiredis,
 * libuv has stopped the poll handle, and the context is left connecting for
 * ever (the loop simply runs out of handles). `./probe PORT fixed` installs
 * the one-line fix (on status < 0, let hiredis look at the socket:
 * redisAsyncHandleWrite, which reads SO_ERROR and fails the connect).
 */
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include <stdio.h>
#include <stdlib.h>

static void on_connect(const redisAsyncContext *c, int status) {
    printf("connect to port %d: %s\n", c->c.tcp.port,
           status == REDIS_OK ? "ok" : c->errstr);
}
static void on_disconnect(const redisAsyncContext *c, int status) {
    printf("disconnect (port %d): status %d %s\n", c->c.tcp.port, status,
           status == REDIS_OK ? "" : c->errstr);
}
/* The fix: the adapter's poll callback, errors passed on. The other hooks
 * restart the poll with this callback instead of Debian's. */
static void fixed_poll(uv_poll_t *h, int status, int events) {
    redisLibuvEvents *p = h->data;
    if (status < 0) events = UV_WRITABLE; /* hiredis reads SO_ERROR */
    if (p->context && (events & UV_READABLE)) redisAsyncHandleRead(p->context);
    if (p->context && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}
static void fixed_add_write(void *privdata) {
    redisLibuvEvents *p = privdata;
    p->events |= UV_WRITABLE;
    uv_poll_start(&p->handle, p->events, fixed_poll);
}
static void fixed_add_read(void *privdata) {
    redisLibuvEvents *p = privdata;
    p->events |= UV_READABLE;
    uv_poll_start(&p->handle, p->events, fixed_poll);
}

static void on_auth(redisAsyncContext *c, void *r, void *priv) {
    (void)priv;
    redisReply *rep = r;
    printf("AUTH without a password set: %s\n", rep ? rep->str : c->errstr);
    redisAsyncDisconnect(c);
}

int main(int argc, char **argv) {
    printf("hiredis %d.%d.%d (headers), libuv %s\n", HIREDIS_MAJOR,
           HIREDIS_MINOR, HIREDIS_PATCH, uv_version_string());
    uv_loop_t *loop = uv_default_loop();
    int port = argc > 1 ? atoi(argv[1]) : 6379;
    redisAsyncContext *ok = redisAsyncConnect("127.0.0.1", port);
    redisLibuvAttach(ok, loop);
    redisAsyncSetConnectCallback(ok, on_connect);
    redisAsyncSetDisconnectCallback(ok, on_disconnect);
    redisAsyncCommand(ok, on_auth, NULL, "AUTH %s %s", "default", "secret");
    /* port 1: nothing listens; hiredis reports it through the callbacks */
    redisAsyncContext *bad = redisAsyncConnect("127.0.0.1", 1);
    if (bad->err) printf("connect to port 1 failed at once: %s\n", bad->errstr);
    else {
        redisLibuvAttach(bad, loop);
        if (argc > 2) { /* "fixed" */
            bad->ev.addWrite = fixed_add_write;
            bad->ev.addRead = fixed_add_read;
        }
        redisAsyncSetConnectCallback(bad, on_connect);
        redisAsyncSetDisconnectCallback(bad, on_disconnect);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
