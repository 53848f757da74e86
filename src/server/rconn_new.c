/*
 * rconn_new.c -- making an rconn (rconn.h): the options checked (a sentence
 * for each refusal), their defaults filled in, their strings copied (the
 * password wiped when freed), the TLS context loaded, the three handles
 * initialised; and freeing the memory at the end (rconn.c decides when).
 */
#include "server/rconn_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static int copy_str(char **dst, const char *src) {
    if (!src) return 0;
    *dst = strdup(src);
    return *dst ? 0 : RCONN_ENOMEM;
}

__attribute__((format(printf, 3, 4)))
static int bad(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(err, errlen, fmt, ap); /* truncation is the bound */
        va_end(ap);
    }
    return RCONN_EINVAL;
}

/* The options' numbers with their defaults; a sentence when one is bad. */
static int check_options(const rconn_options *o, char *err, size_t errlen) {
    if (o->naddrs < 1 || o->naddrs > RCONN_MAX_ADDRS)
        return bad(err, errlen, "redis: between 1 and %d addresses, not %u",
                   RCONN_MAX_ADDRS, o->naddrs);
    for (unsigned i = 0; i < o->naddrs; i++) {
        const rconn_addr *a = &o->addrs[i];
        if (!a->host || !a->host[0] || strlen(a->host) > RCONN_HOST_MAX)
            return bad(err, errlen, "redis: address %u: a host of 1 to %d "
                       "bytes is needed", i + 1, RCONN_HOST_MAX);
        if (a->port == 0)
            return bad(err, errlen, "redis: address %u (%s): port 0", i + 1,
                       a->host);
    }
    if (o->user && !o->password)
        return bad(err, errlen, "redis: an ACL user (%s) needs a password",
                   o->user);
    if (!o->tls_cert_file != !o->tls_key_file)
        return bad(err, errlen, "redis: a TLS client certificate needs its "
                   "key: give both files or neither");
    if (!o->tls && (o->tls_ca_file || o->tls_cert_file || o->tls_server_name))
        return bad(err, errlen, "redis: TLS files given without tls");
    if (o->max_queue_bytes > (1u << 30))
        return bad(err, errlen, "redis: max_queue_bytes over 1 GiB");
    return 0;
}

int rconn_new(rconn **out, uv_loop_t *loop, const rconn_options *o,
              char *err, size_t errlen) {
    *out = NULL;
    if (err && errlen) err[0] = 0;
    int rc = check_options(o, err, errlen);
    if (rc) return rc;
    rconn *c = calloc(1, sizeof *c);
    if (!c) return RCONN_ENOMEM;
    c->loop = loop;
    c->o = *o;
    rconn_options *co = &c->o;
#define DEFAULT(f, v) if (!co->f) co->f = (v)
    DEFAULT(connect_timeout_ms, RCONN_CONNECT_TIMEOUT_MS);
    DEFAULT(command_timeout_ms, RCONN_COMMAND_TIMEOUT_MS);
    DEFAULT(wait_timeout_ms, co->command_timeout_ms);
    DEFAULT(backoff_min_ms, RCONN_BACKOFF_MIN_MS);
    DEFAULT(backoff_max_ms, RCONN_BACKOFF_MAX_MS);
    DEFAULT(max_queue_bytes, RCONN_MAX_QUEUE_BYTES);
    DEFAULT(max_reply_bytes, RCONN_MAX_REPLY_BYTES);
#undef DEFAULT
    if (co->backoff_max_ms < co->backoff_min_ms)
        co->backoff_max_ms = co->backoff_min_ms;
    for (unsigned i = 0; i < o->naddrs; i++) {
        memcpy(c->hosts[i], o->addrs[i].host, strlen(o->addrs[i].host) + 1);
        co->addrs[i].host = c->hosts[i];
    }
    rc = RCONN_ENOMEM;
    if (copy_str(&c->user, o->user) || copy_str(&c->password, o->password) ||
        copy_str(&c->tls_ca, o->tls_ca_file) ||
        copy_str(&c->tls_cert, o->tls_cert_file) ||
        copy_str(&c->tls_key, o->tls_key_file) ||
        copy_str(&c->tls_name, o->tls_server_name))
        goto fail;
    co->user = c->user;
    co->password = c->password;
    co->tls_ca_file = c->tls_ca;
    co->tls_cert_file = c->tls_cert;
    co->tls_key_file = c->tls_key;
    co->tls_server_name = c->tls_name;
    if (!(c->rbuf = malloc(RCONN_READ_CHUNK)) ||
        !(c->reader = redisReaderCreate()))
        goto fail;
    if (o->tls) {
        tlsc_options to = {.ca_file = c->tls_ca, .cert_file = c->tls_cert,
                           .key_file = c->tls_key, .server_name = c->tls_name,
                           /* links are mostly idle between commands */
                           .release_buffers = 1};
        char why[RCONN_REASON_MAX];
        int t = tlsc_ctx_new(&c->tls_ctx, &to, why, sizeof why);
        if (t == TLSC_ENOMEM) goto fail;
        if (t) {
            rc = RCONN_ETLSCONF;
            /* (void): bad() returns RCONN_EINVAL; this failure is rc */
            (void)bad(err, errlen, "redis: TLS: %s", why);
            goto fail;
        }
    }
    metrics_hist_init(&c->stats.rtt, METRICS_LATENCY_US);
    c->backoff = co->backoff_min_ms;
    c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ull;
    if (!c->rng) c->rng = 1;
    /* (void): on Unix these three only fill in the handle and return 0
     * (libuv src/timer.c, src/unix/loop-watcher.c) */
    (void)uv_timer_init(loop, &c->timer);
    (void)uv_prepare_init(loop, &c->prep);
    (void)uv_idle_init(loop, &c->idle);
    c->timer.data = c->prep.data = c->idle.data = c;
    c->nhandles = 3;
    c->state = RCONN_IDLE;
    *out = c;
    return 0;
fail:
    rconn__free(c);
    return rc;
}

void rconn__free(rconn *c) {
    tlsc_ctx_free(c->tls_ctx);
    if (c->reader) redisReaderFree(c->reader);
    free(c->rbuf);
    buf_free(&c->out);
    buf_free(&c->held_out);
    if (c->password) OPENSSL_cleanse(c->password, strlen(c->password));
    free(c->user);
    free(c->password);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_name);
    free(c);
}
