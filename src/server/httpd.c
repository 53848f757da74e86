/* httpd.c -- see httpd.h. */
#include "server/httpd.h"

#include <assert.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "proto/http.h"
#include "server/close.h"
#include "server/output.h"
#include "server/web_assets.h"

/* RFC 6455 1.3: appended to the client's key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#define SECURITY_HEADERS                                                     \
    "X-Content-Type-Options: nosniff\r\n"                                    \
    "Referrer-Policy: no-referrer\r\n"                                       \
    "Cache-Control: no-cache\r\n"

/* The web client's pages: same-origin scripts, styles, sockets; pictures
 * and media from Blob URLs of received frames. */
#define CSP                                                                  \
    "Content-Security-Policy: default-src 'self'; img-src 'self' blob: "     \
    "data:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "      \
    "connect-src 'self'; frame-ancestors 'none'\r\n"

typedef struct response {
    int status;
    const char *type;    /* Content-Type; NULL: none (no body) */
    const uint8_t *body;
    size_t len;
    const char *extra;   /* more header lines, each ending in CRLF */
    int close;           /* Connection: close, then close */
    int head;            /* HEAD: the headers only */
} response;

/* Queue r; 0 or -1 (out of memory). */
static int respond(conn *c, const response *r) {
    char h[1024];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.1 %d %s\r\nServer: chat-server/" CHAT_VERSION
                     "\r\n%s%s%s%s%sContent-Length: %zu\r\n%s\r\n",
                     r->status, http_status_reason(r->status),
                     r->type ? "Content-Type: " : "", r->type ? r->type : "",
                     r->type ? "\r\n" : "", SECURITY_HEADERS,
                     r->extra ? r->extra : "", r->len,
                     r->close ? "Connection: close\r\n" : "");
    assert(n > 0 && (size_t)n < sizeof h); /* (the extras are ours, short) */
    if (outq_raw(&c->out, (const uint8_t *)h, (size_t)n)) return -1;
    if (!r->head && r->len && outq_raw(&c->out, r->body, r->len)) return -1;
    conn_queue_flush(c);
    return 0;
}

/* A short text response, then close. */
static int fail(conn *c, int status, const char *why, const char *extra) {
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status,
                     http_status_reason(status), why);
    CLOG(c, LOG_INFO, "http_refused", "HTTP %d: %s", status, why);
    response r = {status, "text/plain; charset=utf-8", (const uint8_t *)body,
                  n > 0 ? (size_t)n : 0, extra, 1, 0};
    if (respond(c, &r)) return -1;
    close_finish(c, 0, NULL);
    return 0;
}

static int eq(const uint8_t *p, size_t n, const char *s) {
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

static int eq_nocase(const uint8_t *p, size_t n, const char *s, size_t sn) {
    return n == sn && strncasecmp((const char *)p, s, n) == 0;
}

/* RFC 6455 4.2.1 (5): base64 of exactly 16 bytes: 22 characters and
 * "==". */
static int key_ok(const http_header *k) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvw"
                              "xyz0123456789+/";
    if (k->value_len != 24 || k->value[22] != '=' || k->value[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (!memchr(b64, k->value[i], sizeof b64 - 1)) return 0;
    /* The last character carries 2 bits: its low 4 bits are zero. */
    return strchr("AQgw", k->value[21]) != NULL;
}

/* The Origin is allowed: --http-allow-origin lists it (or is "*"), or,
 * by default, its host[:port] is the request's Host. */
static int origin_ok(const conn *c, const http_request *q,
                     const http_header *o) {
    const char *allow = c->hub->cfg->http_allow_origin;
    if (*allow) {
        if (strcmp(allow, "*") == 0) return 1;
        for (const char *p = allow; *p;) {
            size_t n = strcspn(p, ",");
            const char *e = p + n;
            while (p < e && *p == ' ') p++;
            size_t k = (size_t)(e - p);
            while (k && p[k - 1] == ' ') k--;
            if (eq_nocase(o->value, o->value_len, p, k)) return 1;
            p = *e ? e + 1 : e;
        }
        return 0;
    }
    const http_header *host = http_header_find(q, "host");
    const uint8_t *v = o->value;
    size_t n = o->value_len;
    if (n > 7 && strncasecmp((const char *)v, "http://", 7) == 0) {
        v += 7;
        n -= 7;
    } else if (n > 8 && strncasecmp((const char *)v, "https://", 8) == 0) {
        v += 8;
        n -= 8;
    } else {
        return 0; /* "null", or another scheme */
    }
    return host && eq_nocase(v, n, (const char *)host->value, host->value_len);
}

/* GET /ws: check the handshake (RFC 6455 4.2.1), answer 101 and become a
 * WebSocket connection. Returns 1 upgraded, 0 refused (closing), -1 out of
 * memory. */
static int upgrade(conn *c, const http_request *q) {
    const http_header *up = http_header_find(q, "upgrade");
    const http_header *co = http_header_find(q, "connection");
    if (!up || !http_header_has_token(up->value, up->value_len, "websocket"))
        return fail(c, 426, "/ws takes WebSocket connections only",
                    "Upgrade: websocket\r\n") ? -1 : 0;
    if (q->minor_version < 1)
        return fail(c, 400, "a WebSocket upgrade needs HTTP/1.1", NULL) ? -1
                                                                         : 0;
    if (!co || !http_header_has_token(co->value, co->value_len, "upgrade"))
        return fail(c, 400, "Connection: upgrade missing", NULL) ? -1 : 0;
    const http_header *v = http_header_find(q, "sec-websocket-version");
    if (!v || !eq(v->value, v->value_len, "13") ||
        http_header_count(q, "sec-websocket-version") != 1)
        return fail(c, 426, "Sec-WebSocket-Version must be 13",
                    "Sec-WebSocket-Version: 13\r\n") ? -1 : 0;
    const http_header *k = http_header_find(q, "sec-websocket-key");
    if (!k || http_header_count(q, "sec-websocket-key") != 1 || !key_ok(k))
        return fail(c, 400, "Sec-WebSocket-Key must be the base64 of 16 bytes",
                    NULL) ? -1 : 0;
    const http_header *o = http_header_find(q, "origin");
    if (o && !origin_ok(c, q, o))
        return fail(c, 403, "this Origin may not open /ws "
                    "(--http-allow-origin)", NULL) ? -1 : 0;
    const http_header *p = http_header_find(q, "sec-websocket-protocol");
    if (p && !http_header_has_token(p->value, p->value_len, HTTPD_WS_PROTOCOL))
        return fail(c, 400, "the subprotocol must be " HTTPD_WS_PROTOCOL,
                    NULL) ? -1 : 0;

    uint8_t in[24 + sizeof WS_GUID - 1], md[SHA_DIGEST_LENGTH];
    memcpy(in, k->value, 24);
    memcpy(in + 24, WS_GUID, sizeof WS_GUID - 1);
    SHA1(in, sizeof in, md);
    char accept[32], extra[160];
    (void)EVP_EncodeBlock((unsigned char *)accept, md, sizeof md); /* 28 */
    snprintf(extra, sizeof extra,
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n%s",
             accept, p ? "Sec-WebSocket-Protocol: " HTTPD_WS_PROTOCOL "\r\n"
                       : "");
    char h[512];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.1 101 %s\r\nServer: chat-server/" CHAT_VERSION
                     "\r\n%s\r\n", http_status_reason(101), extra);
    assert(n > 0 && (size_t)n < sizeof h);
    if (outq_raw(&c->out, (const uint8_t *)h, (size_t)n)) return -1;
    if (!(c->ws = framing_ws_new(&c->raw, &c->out,
                                 c->hub->cfg->max_frame + FRAME_POST_PRE,
                                 c->hub->cfg->max_outbuf)))
        return -1;
    c->kind = CONN_WS;
    c->hub->stats.ws_upgrades++;
    conn_pending_renew(c); /* --login-timeout from the upgrade */
    conn_queue_flush(c);
    CLOG(c, LOG_DEBUG, "ws_upgrade", "WebSocket upgrade");
    return 1;
}

/* GET|HEAD of a path other than /ws. 0 or -1. */
static int serve(conn *c, const http_request *q, int head, int keep) {
    response r = {200, NULL, NULL, 0, NULL, !keep, head};
    hub *h = c->hub;
    if (eq(q->path, q->path_len, "/metrics")) {
        buf *m = &h->scratch;
        m->len = 0;
        if (h->ops->metrics(h, m)) return -1;
        r.type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = m->data;
        r.len = m->len;
        return respond(c, &r);
    }
    if (eq(q->path, q->path_len, "/healthz")) {
        char why[160], body[256];
        int ok = h->ops->health(h, why, sizeof why);
        int n = ok ? snprintf(body, sizeof body, "{\"status\":\"ok\"}\n")
                   : snprintf(body, sizeof body,
                              "{\"status\":\"unavailable\",\"reason\":\"%s\"}"
                              "\n", why);
        r.status = ok ? 200 : 503;
        r.type = "application/json";
        r.body = (const uint8_t *)body;
        r.len = n > 0 ? (size_t)n : 0;
        return respond(c, &r);
    }
    const uint8_t *name = q->path + 1;
    size_t nlen = q->path_len - 1;
    if (nlen == 0) {
        name = (const uint8_t *)"index.html";
        nlen = strlen("index.html");
    }
    const web_asset *a = web_asset_find((const char *)name, nlen);
    if (!a) return fail(c, 404, "no such page", NULL);
    r.type = a->type;
    r.body = a->data;
    r.len = a->len;
    r.extra = CSP;
    return respond(c, &r);
}

/* One whole request: answer it. Returns 1 to go on with the next one, 0
 * when c closed or upgraded, -1 out of memory. */
static int handle(conn *c, const http_request *q) {
    if (close_if_unread(c, "HTTP requests")) return 0;
    c->hub->stats.http_requests++;
    uint64_t clen = 0;
    int cl = http_parse_content_length(q, &clen);
    if (cl < 0) return fail(c, 400, "bad Content-Length", NULL) ? -1 : 0;
    if (clen || http_header_find(q, "transfer-encoding"))
        return fail(c, 413, "this server takes no request bodies", NULL) ? -1
                                                                         : 0;
    int get = eq(q->method, q->method_len, "GET");
    int head = eq(q->method, q->method_len, "HEAD");
    const http_header *co = http_header_find(q, "connection");
    int keep = q->minor_version >= 1
                   ? !(co && http_header_has_token(co->value, co->value_len,
                                                   "close"))
                   : co && http_header_has_token(co->value, co->value_len,
                                                 "keep-alive");
    /* (the metrics port: what a scraper asks, nothing a browser could
     * use, so that opening it to a monitoring network opens no more) */
    if (c->metrics_only && !eq(q->path, q->path_len, "/metrics") &&
        !eq(q->path, q->path_len, "/healthz"))
        return fail(c, 404, "this port (--metrics-port) serves /metrics "
                    "and /healthz only", NULL) ? -1 : 0;
    if (eq(q->path, q->path_len, "/ws")) {
        if (!get)
            return fail(c, 405, "/ws takes GET only", "Allow: GET\r\n") ? -1
                                                                        : 0;
        return upgrade(c, q) < 0 ? -1 : 0;
    }
    if (!get && !head)
        return fail(c, 405, "only GET and HEAD are served",
                    "Allow: GET, HEAD\r\n") ? -1 : 0;
    if (serve(c, q, head, keep)) return -1;
    if (!conn_open(c)) return 0;
    if (!keep) {
        close_finish(c, 0, NULL);
        return 0;
    }
    conn_pending_renew(c); /* the next request within --login-timeout */
    return 1;
}

void httpd_start(conn *c, int serves) {
    assert(serves == HTTPD_SITE || serves == HTTPD_METRICS);
    c->kind = CONN_HTTP;
    c->metrics_only = serves == HTTPD_METRICS;
    outq_set_mode(&c->out, OUTQ_HTTP);
}

int httpd_input(conn *c, uint8_t *p, size_t n) {
    assert(c->kind == CONN_HTTP);
    while (n && c->kind == CONN_HTTP && c->state == CONN_NEW) {
        size_t room = HTTPD_HEAD_MAX - c->hin.len, k = n < room ? n : room;
        if (buf_append(&c->hin, p, k, HTTPD_HEAD_MAX)) return FRAMING_ENOMEM;
        p += k;
        n -= k;
        http_request q;
        int r;
        while ((r = http_parse_request(c->hin.data, c->hin.len, &q)) > 0) {
            int go = handle(c, &q);
            if (go < 0) return FRAMING_ENOMEM;
            buf_consume(&c->hin, (size_t)r);
            if (!go) break;
        }
        if (c->kind == CONN_WS) {
            /* What followed the upgrade request is the WebSocket's. */
            buf rest = c->hin;
            c->hin = (buf){0};
            int w = rest.len ? framing_ws_input(c->ws, rest.data, rest.len)
                             : 0;
            buf_free(&rest);
            if (n && w == 0) w = framing_ws_input(c->ws, p, n);
            return w; /* (FRAMING_WS_CLOSE: io.c closes it) */
        }
        if (c->state != CONN_NEW) return 0;
        if (r == HTTP_PARTIAL && c->hin.len == HTTPD_HEAD_MAX) {
            int st = http_full_status(&q);
            return fail(c, st, st == 414 ? "request line too long"
                                         : "header section too large",
                        NULL) ? FRAMING_ENOMEM : 0;
        }
        if (r < 0 && r != HTTP_PARTIAL)
            return fail(c, http_error_status(r), http_strerror(r), NULL)
                       ? FRAMING_ENOMEM : 0;
    }
    if (c->kind == CONN_HTTP && c->hin.len == 0) buf_free(&c->hin);
    return 0;
}

void httpd_timeout(conn *c) {
    if (c->hin.len) {
        (void)fail(c, 408, "no whole request in time", NULL);
        /* (out of memory: the close below still happens) */
        if (conn_open(c)) close_abort(c);
        buf_free(&c->hin);
        return;
    }
    close_abort(c);
}

void httpd_refuse(conn *c, int status, const char *why) {
    char h[512];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; "
                     "charset=utf-8\r\nContent-Length: %zu\r\nConnection: "
                     "close\r\n\r\n%s\n",
                     status, http_status_reason(status), strlen(why) + 1, why);
    if (n > 0 && (size_t)n < sizeof h) {
        uv_buf_t b = uv_buf_init(h, (unsigned)n);
        (void)transport_try(&c->io, &b); /* best effort, as for chat */
    }
}
