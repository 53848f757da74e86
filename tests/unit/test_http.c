/*
 * test_http.c -- unit tests for the HTTP/1.1 request parser
 * (src/proto/http.{h,c}).
 *
 * Covers: the fields of a parsed request (method, target split into path
 * and query, version, headers with OWS trimmed); every prefix of every
 * input (a complete request's proper prefixes are PARTIAL, an error is
 * never taken back by more bytes); pipelined requests; each error class
 * (400, 414, 431, 505) and the bounds (HTTP_MAX_METHOD, HTTP_MAX_TARGET,
 * HTTP_MAX_HEADERS) at and one past the limit; line endings; the Host
 * rule; http_full_status; the helpers (header lookup, token lists,
 * Content-Length, reason phrases, error names); random valid requests and
 * random byte changes to them.
 *
 * Every input handed to the parser is an exactly sized heap copy, so that
 * AddressSanitizer (make SANITIZE=1 unit) reports a read past `len`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/http.h"
#include "testutil.h"

/* ---- Helpers ---- */

/* The exact copy the last parse_full() parsed; the request's pointers point
 * into it until the next parse_full() or the end of the test. */
static uint8_t *g_copy;

static int free_copy(void **state) {
    (void)state;
    free(g_copy);
    g_copy = NULL;
    return 0;
}

static uint8_t *dup_exact(const void *p, size_t n) {
    uint8_t *d = malloc(n ? n : 1);
    assert_non_null(d);
    if (n) memcpy(d, p, n);
    return d;
}

/* The result of parsing an exact copy of p[0..n). */
static int result_at(const void *p, size_t n, http_request *req) {
    uint8_t *c = dup_exact(p, n);
    int r = http_parse_request(c, n, req);
    free(c);
    return r;
}

/* Parse every prefix of p[0..n) from its own exact copy and check the
 * contract: the results are PARTIAL up to some length, then one final
 * result for every longer prefix (for a complete request of r bytes:
 * PARTIAL below r, r from r on); line_complete never goes back to 0.
 * Then parse the whole into *req (from g_copy) and return the result. */
static int parse_full(const void *p, size_t n, http_request *req) {
    int settled = HTTP_PARTIAL;
    int line = 0;
    for (size_t k = 0; k <= n; k++) {
        http_request q;
        int r = result_at(p, k, &q);
        if (settled != HTTP_PARTIAL) {
            assert_int_equal(r, settled);
        } else if (r != HTTP_PARTIAL) {
            if (r > 0) assert_int_equal(r, (int)k);
            settled = r;
        }
        if (r == HTTP_PARTIAL || r > 0) {
            assert_true(q.line_complete >= line);
            line = q.line_complete;
        }
    }
    free(g_copy);
    g_copy = dup_exact(p, n);
    int r = http_parse_request(g_copy, n, req);
    assert_int_equal(r, settled);
    return r;
}

static int parse_str(const char *s, http_request *req) {
    return parse_full(s, strlen(s), req);
}

/* The result of parsing s (every prefix checked too). */
static int result_of(const char *s) {
    http_request req;
    return parse_str(s, &req);
}

/* Each of the NUL-terminated inputs parses to `want`. */
static void assert_results(const char *const *inputs, size_t n, int want) {
    for (size_t i = 0; i < n; i++) {
        int r = result_of(inputs[i]);
        if (r != want) fail_msg("input %zu: %d, want %d", i, r, want);
    }
}
#define ASSERT_RESULTS(arr, want)                                            \
    assert_results((arr), sizeof(arr) / sizeof((arr)[0]), (want))

static void assert_span(const uint8_t *p, size_t n, const char *want) {
    assert_int_equal(n, strlen(want));
    if (n) assert_memory_equal(p, want, n);
}

/* The span [p, p+n) lies inside g_copy[0..len). */
static void assert_inside(const uint8_t *p, size_t n, size_t len) {
    assert_non_null(p);
    assert_true(p >= g_copy && p + n <= g_copy + len);
}

/* ---- Parsed fields ---- */

static void test_simple_get(void **state) {
    (void)state;
    const char *s = "GET /index.html HTTP/1.1\r\n"
                    "Host: example.com\r\n"
                    "User-Agent: test/1.0\r\n"
                    "\r\n";
    http_request req;
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_span(req.method, req.method_len, "GET");
    assert_span(req.target, req.target_len, "/index.html");
    assert_span(req.path, req.path_len, "/index.html");
    assert_null(req.query);
    assert_int_equal(req.query_len, 0);
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.line_complete, 1);
    assert_int_equal(req.nheaders, 2);
    assert_span(req.headers[0].name, req.headers[0].name_len, "Host");
    assert_span(req.headers[0].value, req.headers[0].value_len, "example.com");
    assert_span(req.headers[1].name, req.headers[1].name_len, "User-Agent");
    assert_span(req.headers[1].value, req.headers[1].value_len, "test/1.0");
    /* Pointers into the caller's buffer, not copies. */
    assert_ptr_equal(req.method, g_copy);
    assert_ptr_equal(req.target, g_copy + 4);
}

static void test_websocket_upgrade(void **state) {
    (void)state;
    const char *s = "GET /ws HTTP/1.1\r\n"
                    "Host: localhost:8080\r\n"
                    "Connection: keep-alive, Upgrade\r\n"
                    "Upgrade: websocket\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "\r\n";
    http_request req;
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_span(req.path, req.path_len, "/ws");
    const http_header *c = http_header_find(&req, "connection");
    const http_header *u = http_header_find(&req, "UPGRADE");
    assert_non_null(c);
    assert_non_null(u);
    assert_true(http_header_has_token(c->value, c->value_len, "upgrade"));
    assert_true(http_header_has_token(u->value, u->value_len, "websocket"));
    assert_int_equal(http_header_count(&req, "sec-websocket-key"), 1);
    const http_header *k = http_header_find(&req, "Sec-WebSocket-Key");
    assert_non_null(k);
    assert_span(k->value, k->value_len, "dGhlIHNhbXBsZSBub25jZQ==");
}

static void test_target_forms(void **state) {
    (void)state;
    http_request req;
    assert_true(parse_str("GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
    assert_span(req.target, req.target_len, "/a/b?x=1&y");
    assert_span(req.path, req.path_len, "/a/b");
    assert_span(req.query, req.query_len, "x=1&y");

    /* '?' ending the target: an empty query, not none. */
    assert_true(parse_str("GET /? HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
    assert_span(req.path, req.path_len, "/");
    assert_non_null(req.query);
    assert_int_equal(req.query_len, 0);
    assert_inside(req.query, 0, strlen("GET /? HTTP/1.1\r\nHost: h\r\n\r\n"));

    /* Only the first '?' splits. */
    assert_true(parse_str("GET /p?a?b HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
    assert_span(req.path, req.path_len, "/p");
    assert_span(req.query, req.query_len, "a?b");

    /* Percent-encoding is checked, not decoded. */
    assert_true(parse_str("GET /%41%2f%7E?q=%20 HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
    assert_span(req.path, req.path_len, "/%41%2f%7E");
    assert_span(req.query, req.query_len, "q=%20");

    /* What browsers send unencoded (WHATWG URL) is accepted. */
    assert_true(parse_str("GET /a|b^[c]{d}`e'!$&()*+,;=:@~ HTTP/1.1\r\nHost: h\r\n\r\n",
                          &req) > 0);

    /* asterisk-form, with OPTIONS only. */
    assert_true(parse_str("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
    assert_span(req.target, req.target_len, "*");
    assert_span(req.path, req.path_len, "*");
    assert_null(req.query);

    static const char *const bad[] = {
        "GET * HTTP/1.1\r\nHost: h\r\n\r\n",        /* '*' with OPTIONS only */
        "OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n",
        "OPTIONS */ HTTP/1.1\r\nHost: h\r\n\r\n",
        /* absolute-form and authority-form are refused (http.h). */
        "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        /* Bad target bytes. */
        "GET  HTTP/1.1\r\nHost: h\r\n\r\n",          /* empty target */
        "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",    /* fragment */
        "GET /%4 HTTP/1.1\r\nHost: h\r\n\r\n",        /* short escape */
        "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",       /* not hex */
        "GET /%4g HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /?a=% HTTP/1.1\r\nHost: h\r\n\r\n",      /* in the query too */
        "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",     /* DEL */
        "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",  /* raw UTF-8 */
        "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n",      /* HTAB */
        "GET /a  HTTP/1.1\r\nHost: h\r\n\r\n",        /* two spaces */
        "GET /\r\n\r\n",                              /* HTTP/0.9 */
    };
    ASSERT_RESULTS(bad, HTTP_EBADREQ);
}

static void test_method(void **state) {
    (void)state;
    http_request req;
    /* Any token; case-sensitive, passed on as received. */
    assert_true(parse_str("M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
    assert_span(req.method, req.method_len, "M-SEARCH");
    assert_true(parse_str("get / HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
    assert_span(req.method, req.method_len, "get");

    assert_int_equal(result_of(" / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_EBADREQ);
    assert_int_equal(result_of("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_EBADREQ);
    assert_int_equal(result_of("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_EBADREQ);
    assert_int_equal(result_of("GET\r\n"), HTTP_EBADREQ);

    /* HTTP_MAX_METHOD bytes pass; one more is 400 before any space. */
    char buf[128];
    memset(buf, 'X', HTTP_MAX_METHOD);
    strcpy(buf + HTTP_MAX_METHOD, " / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(parse_str(buf, &req) > 0);
    assert_int_equal(req.method_len, HTTP_MAX_METHOD);
    buf[HTTP_MAX_METHOD] = 'X';
    assert_int_equal(parse_full(buf, HTTP_MAX_METHOD + 1, &req), HTTP_EBADREQ);
}

static void test_version(void **state) {
    (void)state;
    http_request req;
    /* HTTP/1.0 needs no Host. */
    assert_true(parse_str("GET / HTTP/1.0\r\n\r\n", &req) > 0);
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.nheaders, 0);
    assert_true(parse_str("GET / HTTP/1.0\r\nHost: h\r\n\r\n", &req) > 0);
    assert_int_equal(req.minor_version, 0);

    /* Well-formed but unsupported: 505, decided at the end of the line. */
    static const char *const v505[] = {"HTTP/2.0", "HTTP/1.2", "HTTP/1.9",
                                       "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"};
    for (size_t i = 0; i < sizeof v505 / sizeof v505[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "GET / %s\r\nHost: h\r\n\r\n", v505[i]);
        assert_int_equal(result_of(buf), HTTP_EVERSION);
        snprintf(buf, sizeof buf, "GET / %s\r\n", v505[i]);
        assert_int_equal(result_of(buf), HTTP_EVERSION);
        snprintf(buf, sizeof buf, "GET / %s\r", v505[i]);
        assert_int_equal(result_of(buf), HTTP_PARTIAL);
    }
    /* Malformed: 400. */
    static const char *const v400[] = {
        "http/1.1", "HTTP/1.1 ", "HTTP/11.1", "HTTP/1.10", "HTTP/1",
        "HTTP/1.", "HTTP/1.x", "HTTP/a.1", "HTTP 1.1", "HTTP/1,1",
        "HTTPS/1.1", "", "HTTP/+.1",
    };
    for (size_t i = 0; i < sizeof v400 / sizeof v400[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "GET / %s\r\nHost: h\r\n\r\n", v400[i]);
        assert_int_equal(result_of(buf), HTTP_EBADREQ);
    }
    assert_int_equal(result_of("GET / HTTP/2.0x\r\n\r\n"), HTTP_EBADREQ);
}

static void test_line_endings(void **state) {
    (void)state;
    http_request req;
    static const char *const bad[] = {
        /* Bare LF anywhere is 400 (http.h: we do not accept it). */
        "GET / HTTP/1.1\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\n",
        "GET / HTTP/1.0\n\n",
        /* Bare CR. */
        "GET / HTTP/1.1\rHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\rx",
        "GET / HTTP/1.1\r\nHost: h\r\n\r\r",
        /* More than one empty line before the request line, or a bare one. */
        "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    ASSERT_RESULTS(bad, HTTP_EBADREQ);
    /* One empty line before the request line is skipped and counted. */
    const char *s = "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_span(req.method, req.method_len, "GET");
    assert_ptr_equal(req.method, g_copy + 2);
    assert_int_equal(result_of("\r\n"), HTTP_PARTIAL);
    assert_int_equal(result_of(""), HTTP_PARTIAL);
    assert_int_equal(http_parse_request(NULL, 0, &req), HTTP_PARTIAL);
}

static void test_field_syntax(void **state) {
    (void)state;
    http_request req;
    /* OWS trimmed at both ends only; HTAB and obs-text kept inside. */
    const char *s = "GET / HTTP/1.1\r\n"
                    "Host:h\r\n"
                    "X-A: \t a \t b \t \r\n"
                    "X-B:\r\n"
                    "X-C:   \t \r\n"
                    "X-D: caf\xc3\xa9 \x80\xff\r\n"
                    "!#$%&'*+-.^_`|~09azAZ: token name\r\n"
                    "\r\n";
    size_t n = strlen(s);
    assert_int_equal(parse_str(s, &req), (int)n);
    assert_int_equal(req.nheaders, 6);
    assert_span(req.headers[0].value, req.headers[0].value_len, "h");
    assert_span(req.headers[1].value, req.headers[1].value_len, "a \t b");
    assert_int_equal(req.headers[2].value_len, 0);
    assert_inside(req.headers[2].value, 0, n);
    assert_int_equal(req.headers[3].value_len, 0);
    assert_inside(req.headers[3].value, 0, n);
    assert_span(req.headers[4].value, req.headers[4].value_len, "caf\xc3\xa9 \x80\xff");
    assert_span(req.headers[5].name, req.headers[5].name_len, "!#$%&'*+-.^_`|~09azAZ");
    for (size_t i = 0; i < req.nheaders; i++) {
        assert_inside(req.headers[i].name, req.headers[i].name_len, n);
        assert_inside(req.headers[i].value, req.headers[i].value_len, n);
    }

    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",    /* obs-fold */
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n",   /* obs-fold */
        "GET / HTTP/1.1\r\n Host: h\r\n\r\n",   /* space before first field */
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",   /* space before the colon */
        "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",           /* empty name */
        "GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n",       /* not a token */
        "GET / HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n",      /* CTL */
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n",      /* DEL */
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\x1b[0m\r\n\r\n",    /* ESC */
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n",        /* bare LF */
    };
    ASSERT_RESULTS(bad, HTTP_EBADREQ);
    /* Every control byte but HTAB (NUL included), in a value, a name, a
     * target, a method, at the start of a line. */
    for (unsigned c = 0; c < 0x80; c++) {
        if (c >= 0x20 && c != 0x7F) continue;
        char buf[64];
        int m = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a%cb\r\n\r\n", c);
        assert_int_equal(parse_full(buf, (size_t)m, &req), c == '\t' ? m : HTTP_EBADREQ);
        m = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHo%cst: ab\r\n\r\n", c);
        assert_int_equal(parse_full(buf, (size_t)m, &req), HTTP_EBADREQ);
        m = snprintf(buf, sizeof buf, "GET /a%cb HTTP/1.1\r\nHost: ab\r\n\r\n", c);
        assert_int_equal(parse_full(buf, (size_t)m, &req), HTTP_EBADREQ);
        m = snprintf(buf, sizeof buf, "G%cT / HTTP/1.1\r\nHost: ab\r\n\r\n", c);
        assert_int_equal(parse_full(buf, (size_t)m, &req), HTTP_EBADREQ);
        m = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\n%cHost: ab\r\n\r\n", c);
        assert_int_equal(parse_full(buf, (size_t)m, &req), HTTP_EBADREQ);
    }
}

static void test_host_rule(void **state) {
    (void)state;
    http_request req;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nX: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nhOST: a\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        /* Not Host: longer or shorter names. */
        "GET / HTTP/1.1\r\nHosts: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHos: a\r\n\r\n",
    };
    ASSERT_RESULTS(bad, HTTP_EBADREQ);
    assert_true(parse_str("GET / HTTP/1.1\r\nHOST: a\r\nHosts: b\r\n\r\n", &req) > 0);
    /* An empty Host is valid syntax (RFC 9112 §3.2). */
    assert_true(parse_str("GET / HTTP/1.1\r\nHost:\r\n\r\n", &req) > 0);
}

/* ---- Streams ---- */

static void test_pipelined(void **state) {
    (void)state;
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: h\r\nAccept: text/plain\r\n\r\n",
        "HEAD /healthz?full HTTP/1.0\r\n\r\n",
        "\r\nGET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
    };
    static const char *const paths[] = {"/", "/metrics", "/healthz", "/ws"};
    char stream[512] = "";
    for (size_t i = 0; i < 4; i++) strcat(stream, reqs[i]);
    strcat(stream, "GET /next HTTP/1.1\r\nHo"); /* a partial fifth */
    size_t n = strlen(stream);
    uint8_t *buf = dup_exact(stream, n);
    size_t off = 0;
    for (size_t i = 0; i < 4; i++) {
        http_request req;
        int r = http_parse_request(buf + off, n - off, &req);
        assert_int_equal(r, (int)strlen(reqs[i]));
        assert_span(req.path, req.path_len, paths[i]);
        assert_true(req.method >= buf + off && req.method < buf + off + (size_t)r);
        off += (size_t)r;
    }
    http_request req;
    assert_int_equal(http_parse_request(buf + off, n - off, &req), HTTP_PARTIAL);
    assert_int_equal(req.line_complete, 1);
    assert_int_equal(http_full_status(&req), 431);
    free(buf);

    /* A body is not the parser's: the count stops at the empty line. */
    const char *post = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    char with_body[256];
    snprintf(with_body, sizeof with_body, "%shelloGET / HTTP/1.1\r\n", post);
    assert_int_equal(parse_str(with_body, &req), (int)strlen(post));
    uint64_t cl;
    assert_int_equal(http_parse_content_length(&req, &cl), 1);
    assert_int_equal(cl, 5);
}

/* A request with `nfields` header lines (Host first). Returns its length. */
static size_t build_fields(char *out, size_t cap, size_t nfields) {
    size_t n = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 1; i < nfields; i++)
        n += (size_t)snprintf(out + n, cap - n, "X-%zu: %zu\r\n", i, i);
    n += (size_t)snprintf(out + n, cap - n, "\r\n");
    assert_true(n < cap);
    return n;
}

static void test_header_limit(void **state) {
    (void)state;
    char buf[4096];
    http_request req;
    size_t n = build_fields(buf, sizeof buf, HTTP_MAX_HEADERS);
    assert_int_equal(parse_full(buf, n, &req), (int)n);
    assert_int_equal(req.nheaders, HTTP_MAX_HEADERS);
    char last[16];
    snprintf(last, sizeof last, "%u", HTTP_MAX_HEADERS - 1);
    const http_header *h = &req.headers[HTTP_MAX_HEADERS - 1];
    assert_span(h->value, h->value_len, last);

    /* One more: 431, as soon as the first byte of that line is there. */
    n = build_fields(buf, sizeof buf, HTTP_MAX_HEADERS + 1);
    assert_int_equal(parse_full(buf, n, &req), HTTP_ETOOMANY);
    char name[16];
    snprintf(name, sizeof name, "X-%u:", HTTP_MAX_HEADERS);
    char *extra = strstr(buf, name);
    assert_non_null(extra);
    size_t at = (size_t)(extra - buf);
    assert_int_equal(result_at(buf, at, &req), HTTP_PARTIAL);
    assert_int_equal(result_at(buf, at + 1, &req), HTTP_ETOOMANY);
    assert_int_equal(http_error_status(HTTP_ETOOMANY), 431);
}

static void test_target_limit(void **state) {
    (void)state;
    static char buf[HTTP_MAX_TARGET + 64];
    http_request req;
    /* HTTP_MAX_TARGET bytes pass. */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', HTTP_MAX_TARGET - 1);
    strcpy(buf + 4 + HTTP_MAX_TARGET, " HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(parse_str(buf, &req) > 0);
    assert_int_equal(req.target_len, HTTP_MAX_TARGET);

    /* One more is 414 at that byte, before the line ends. */
    buf[4 + HTTP_MAX_TARGET] = 'a';
    buf[5 + HTTP_MAX_TARGET] = '\0';
    assert_int_equal(result_of(buf), HTTP_ETARGET);
    assert_int_equal(http_error_status(HTTP_ETARGET), 414);
    /* A query counts too. */
    buf[100] = '?';
    assert_int_equal(result_of(buf), HTTP_ETARGET);

    /* A caller's buffer that fills before the line ends: 414. */
    buf[200] = '\0';
    assert_int_equal(parse_str(buf, &req), HTTP_PARTIAL);
    assert_int_equal(req.line_complete, 0);
    assert_int_equal(http_full_status(&req), 414);
    /* ... and after it ended: 431. */
    assert_int_equal(parse_str("GET / HTTP/1.1\r\nX-Long: aaaa", &req), HTTP_PARTIAL);
    assert_int_equal(req.line_complete, 1);
    assert_int_equal(http_full_status(&req), 431);
    assert_int_equal(parse_str("GET / HTTP/1.1\r", &req), HTTP_PARTIAL);
    assert_int_equal(http_full_status(&req), 414);
}

/* ---- Helpers of http.h ---- */

static void test_header_find(void **state) {
    (void)state;
    http_request req;
    assert_true(parse_str("GET / HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nAccept: */*\r\n"
                          "x-dup: 2\r\nX-DUP: 3\r\n\r\n", &req) > 0);
    const http_header *h = http_header_find(&req, "x-DuP");
    assert_ptr_equal(h, &req.headers[1]); /* the first one */
    assert_int_equal(http_header_count(&req, "X-Dup"), 3);
    assert_int_equal(http_header_count(&req, "accept"), 1);
    assert_int_equal(http_header_count(&req, "missing"), 0);
    assert_null(http_header_find(&req, "missing"));
    assert_null(http_header_find(&req, "X-Du"));    /* a prefix */
    assert_null(http_header_find(&req, "X-Dupe"));  /* longer */
    assert_null(http_header_find(&req, ""));
    /* '-' and '_' are different bytes, and only letters fold. */
    assert_null(http_header_find(&req, "X_Dup"));
    assert_ptr_equal(http_header_find(&req, "ACCEPT"), &req.headers[2]);
}

static void test_token_list(void **state) {
    (void)state;
    static const struct {
        const char *value;
        const char *token;
        int want;
    } cases[] = {
        {"Upgrade", "upgrade", 1}, {"upgrade", "Upgrade", 1},
        {"keep-alive, Upgrade", "upgrade", 1}, {"Upgrade, keep-alive", "upgrade", 1},
        {"keep-alive,upgrade", "upgrade", 1}, {" \t upgrade \t ", "upgrade", 1},
        {",,, upgrade ,,", "upgrade", 1}, {"keep-alive", "upgrade", 0},
        {"upgrade2", "upgrade", 0}, {"upgrad", "upgrade", 0},
        {"xupgrade", "upgrade", 0}, {"up grade", "upgrade", 0},
        {"upgrade;q=1", "upgrade", 0}, {"websocket/13", "websocket", 0},
        {"WebSocket", "websocket", 1}, {"", "upgrade", 0},
        {",", "upgrade", 0},
        {" , ", "", 0}, /* empty elements are skipped */
        {"a, b, c", "c", 1}, {"a, b, c", "b", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].value);
        uint8_t *v = dup_exact(cases[i].value, n);
        if (http_header_has_token(v, n, cases[i].token) != cases[i].want)
            fail_msg("has_token(\"%s\", \"%s\") != %d", cases[i].value,
                     cases[i].token, cases[i].want);
        free(v);
    }
}

/* Content-Length of a request whose header lines are `fields`. */
static int cl_of(const char *fields, uint64_t *out) {
    char buf[512];
    snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: h\r\n%s\r\n", fields);
    http_request req;
    assert_true(parse_str(buf, &req) > 0);
    *out = 12345;
    return http_parse_content_length(&req, out);
}

/* cl_of(fields) returns want, and the value want_v when found. */
static void expect_cl(const char *fields, int want, uint64_t want_v) {
    uint64_t v;
    assert_int_equal(cl_of(fields, &v), want);
    if (want >= 0) assert_true(v == want_v);
}

static void test_content_length(void **state) {
    (void)state;
    expect_cl("", 0, 0);
    expect_cl("Content-Length: 0\r\n", 1, 0);
    expect_cl("content-length:42\r\n", 1, 42);
    expect_cl("Content-Length: 007\r\n", 1, 7);
    expect_cl("Content-Length:  18446744073709551615 \r\n", 1, UINT64_MAX);
    /* Identical duplicates are one value; different ones are an error. */
    expect_cl("Content-Length: 5\r\nX: y\r\nCONTENT-LENGTH: 5\r\n", 1, 5);
    expect_cl("Content-Length: 5\r\nContent-Length: 6\r\n", HTTP_EBADREQ, 0);
    expect_cl("Content-Length: 5\r\nContent-Length: 05\r\n", 1, 5);

    static const char *const bad[] = {
        "",                      /* empty */
        "18446744073709551616",  /* UINT64_MAX + 1 */
        "99999999999999999999",
        "184467440737095516150",
        "+5", "-5", "5 5", "5,5", "5, 5", "0x10", "5a", "a", "1e3", "٣",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char f[128];
        snprintf(f, sizeof f, "Content-Length: %s\r\n", bad[i]);
        uint64_t v;
        if (cl_of(f, &v) != HTTP_EBADREQ) fail_msg("accepted \"%s\"", bad[i]);
    }
    /* A bad value is an error even after a good one. */
    expect_cl("Content-Length: 5\r\nContent-Length: x\r\n", HTTP_EBADREQ, 0);
    assert_int_equal(http_error_status(HTTP_EBADREQ), 400);
}

static void test_names(void **state) {
    (void)state;
    static const int codes[] = {101, 200, 204, 400, 403, 404, 405, 408,
                                413, 414, 426, 431, 500, 503, 505};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *r = http_status_reason(codes[i]);
        assert_non_null(r);
        assert_true(strlen(r) > 1);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(r, http_status_reason(codes[j]));
    }
    assert_string_equal(http_status_reason(101), "Switching Protocols");
    assert_string_equal(http_status_reason(200), "OK");
    assert_string_equal(http_status_reason(414), "URI Too Long");
    assert_string_equal(http_status_reason(426), "Upgrade Required");
    assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_reason(505), "HTTP Version Not Supported");
    assert_string_equal(http_status_reason(0), "");
    assert_string_equal(http_status_reason(599), "");
    assert_string_equal(http_status_reason(-1), "");

    assert_int_equal(http_error_status(HTTP_EVERSION), 505);
    assert_int_equal(http_error_status(HTTP_PARTIAL), 500);
    assert_int_equal(http_error_status(7), 500);
    static const int results[] = {HTTP_PARTIAL, HTTP_EBADREQ, HTTP_ETOOMANY,
                                  HTTP_EVERSION, HTTP_ETARGET, 10, -99};
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        const char *s = http_strerror(results[i]);
        assert_non_null(s);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, http_strerror(results[j]));
    }
}

/* ---- Random requests ---- */

static const char TCHARS[] = "!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char PCHARS[] = "abcXYZ019-._~!$&'()*+,;=:@/|^[]{}";

static char pick(uint32_t *seed, const char *set, size_t n) {
    return set[rng_next(seed) % n];
}

/* 0 to 2 bytes of OWS at out + *n. */
static void put_ows(uint32_t *seed, char *out, size_t *n) {
    for (size_t j = rng_next(seed) % 3; j > 0; j--) out[(*n)++] = pick(seed, " \t", 2);
}

/* A random valid request into out (returned length); its fields in *want
 * (pointers into out). */
static size_t random_request(uint32_t *seed, char *out, size_t cap,
                             http_request *want) {
    static const char *const methods[] = {"GET", "HEAD", "POST", "OPTIONS", "X-Y"};
    size_t n = 0;
    memset(want, 0, sizeof *want);
    if (rng_next(seed) % 8 == 0) n += (size_t)snprintf(out, cap, "\r\n");
    const char *m = methods[rng_next(seed) % 5];
    want->method = (const uint8_t *)out + n;
    want->method_len = strlen(m);
    n += (size_t)snprintf(out + n, cap - n, "%s ", m);
    want->target = want->path = (const uint8_t *)out + n;
    out[n++] = '/';
    size_t plen = rng_next(seed) % 40;
    for (size_t i = 0; i < plen; i++) out[n++] = pick(seed, PCHARS, sizeof PCHARS - 1);
    want->path_len = (size_t)((const uint8_t *)out + n - want->path);
    if (rng_next(seed) % 2) {
        out[n++] = '?';
        want->query = (const uint8_t *)out + n;
        size_t qlen = rng_next(seed) % 20;
        for (size_t i = 0; i < qlen; i++)
            out[n++] = rng_next(seed) % 5 ? pick(seed, PCHARS, sizeof PCHARS - 1) : '?';
        want->query_len = qlen;
    }
    want->target_len = (size_t)((const uint8_t *)out + n - want->target);
    want->minor_version = (int)(rng_next(seed) % 2);
    n += (size_t)snprintf(out + n, cap - n, " HTTP/1.%d\r\n", want->minor_version);
    size_t nh = rng_next(seed) % (HTTP_MAX_HEADERS + 1);
    if (want->minor_version == 1 && nh == 0) nh = 1;
    for (size_t i = 0; i < nh; i++) {
        http_header *h = &want->headers[i];
        h->name = (const uint8_t *)out + n;
        if (i == 0) {
            n += (size_t)snprintf(out + n, cap - n, "Host");
        } else {
            size_t len = 1 + rng_next(seed) % 12;
            for (size_t j = 0; j < len; j++) out[n++] = pick(seed, TCHARS, sizeof TCHARS - 1);
            if (len == 4 && strncasecmp((const char *)h->name, "host", 4) == 0)
                out[n - 1] = 'x';
        }
        h->name_len = (size_t)((const uint8_t *)out + n - h->name);
        out[n++] = ':';
        put_ows(seed, out, &n);
        h->value = (const uint8_t *)out + n;
        size_t vlen = rng_next(seed) % 30;
        for (size_t j = 0; j < vlen; j++) {
            uint8_t c = (uint8_t)(0x21 + rng_next(seed) % 0xDF);
            if (c == 0x7F) c = 'v';
            if (j > 0 && j + 1 < vlen && rng_next(seed) % 6 == 0) c = (uint8_t)pick(seed, " \t", 2);
            out[n++] = (char)c;
        }
        h->value_len = vlen;
        put_ows(seed, out, &n);
        out[n++] = '\r';
        out[n++] = '\n';
    }
    want->nheaders = nh;
    out[n++] = '\r';
    out[n++] = '\n';
    assert_true(n < cap);
    return n;
}

/* Random valid requests parse to their fields; then a few bytes of some
 * are changed. */
static void test_random(void **state) {
    (void)state;
    uint32_t seed = 0x9E3779B9u;
    static char buf[8192];
    for (int iter = 0; iter < 300; iter++) {
        http_request want, got;
        size_t n = random_request(&seed, buf, sizeof buf, &want);
        /* Every prefix for some, the whole for all. */
        int full = iter % 10 == 0;
        int r = full ? parse_full(buf, n, &got)
                     : http_parse_request((const uint8_t *)buf, n, &got);
        assert_int_equal(r, (int)n);
        /* got points into g_copy or buf, want into buf: compare offsets. */
        const uint8_t *gb = full ? g_copy : (const uint8_t *)buf;
        const uint8_t *wb = (const uint8_t *)buf;
#define SAME_SPAN(g, gl, w, wl)                                              \
    do {                                                                     \
        assert_int_equal((gl), (wl));                                        \
        assert_int_equal((g) - gb, (w) - wb);                                \
    } while (0)
        SAME_SPAN(got.method, got.method_len, want.method, want.method_len);
        SAME_SPAN(got.target, got.target_len, want.target, want.target_len);
        SAME_SPAN(got.path, got.path_len, want.path, want.path_len);
        if (want.query) {
            SAME_SPAN(got.query, got.query_len, want.query, want.query_len);
        } else {
            assert_null(got.query);
            assert_int_equal(got.query_len, 0);
        }
        assert_int_equal(got.minor_version, want.minor_version);
        assert_int_equal(got.nheaders, want.nheaders);
        for (size_t i = 0; i < want.nheaders; i++) {
            const http_header *g = &got.headers[i], *w = &want.headers[i];
            SAME_SPAN(g->name, g->name_len, w->name, w->name_len);
            /* An empty value's position is after all the OWS. */
            if (w->value_len) SAME_SPAN(g->value, g->value_len, w->value, w->value_len);
            else assert_int_equal(g->value_len, 0);
        }
#undef SAME_SPAN
        /* A few bytes changed: any result, but the prefix contract holds
         * (parse_full) and a complete request stays inside the input. */
        if (iter % 2) continue;
        static const uint8_t bytes[] = {'\0', '\r', '\n', ' ', '\t', ':', '?', '%',
                                        '#', 0x7F, 0x80, 0xFF, 'H', '/', ',', 'a'};
        for (int k = 1 + (int)(rng_next(&seed) % 3); k > 0; k--)
            buf[rng_next(&seed) % n] = (char)bytes[rng_next(&seed) % sizeof bytes];
        r = parse_full(buf, n, &got);
        assert_true(r >= HTTP_ETARGET && r != 0 && r <= (int)n);
        for (size_t i = 0; r > 0 && i < got.nheaders; i++) {
            assert_inside(got.headers[i].name, got.headers[i].name_len, (size_t)r);
            assert_inside(got.headers[i].value, got.headers[i].value_len, (size_t)r);
        }
        if (r > 0) assert_inside(got.target, got.target_len, (size_t)r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_simple_get, free_copy),
        cmocka_unit_test_teardown(test_websocket_upgrade, free_copy),
        cmocka_unit_test_teardown(test_target_forms, free_copy),
        cmocka_unit_test_teardown(test_method, free_copy),
        cmocka_unit_test_teardown(test_version, free_copy),
        cmocka_unit_test_teardown(test_line_endings, free_copy),
        cmocka_unit_test_teardown(test_field_syntax, free_copy),
        cmocka_unit_test_teardown(test_host_rule, free_copy),
        cmocka_unit_test_teardown(test_pipelined, free_copy),
        cmocka_unit_test_teardown(test_header_limit, free_copy),
        cmocka_unit_test_teardown(test_target_limit, free_copy),
        cmocka_unit_test_teardown(test_header_find, free_copy),
        cmocka_unit_test_teardown(test_token_list, free_copy),
        cmocka_unit_test_teardown(test_content_length, free_copy),
        cmocka_unit_test_teardown(test_names, free_copy),
        cmocka_unit_test_teardown(test_random, free_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
