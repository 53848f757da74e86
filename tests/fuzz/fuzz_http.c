/*
 * fuzz_http.c -- libFuzzer target for the HTTP/1.1 request parser
 * (src/proto/http.c).
 *
 * The input is a byte stream from a client: requests are parsed one after
 * the other (pipelining) while each is complete. For each parse the target
 * checks the contract of http.h:
 *   - the result is HTTP_PARTIAL, an HTTP_E* code or a count in (0, len];
 *   - deterministic: a second copy at another address gives the same result
 *     and the same fields at the same offsets;
 *   - prefixes: every proper prefix of a complete request is PARTIAL, and
 *     for any input the prefixes are PARTIAL up to some length and the
 *     whole's result from there on (every prefix up to 32 bytes, then
 *     16 cut next to a delimiter, the last 4, the two either side of the
 *     end of a request and 8 spread over the rest, in increasing order:
 *     about 60 parses, not one per byte, which keeps about 4,000
 *     executions a second on 2 KiB inputs);
 *     line_complete never goes back to 0;
 *   - a complete request: every pointer inside the bytes consumed, the
 *     bounds (HTTP_MAX_METHOD, HTTP_MAX_TARGET, HTTP_MAX_HEADERS) kept,
 *     path + '?' + query == target, every '%' escapes two hex digits,
 *     names are tokens, values trimmed and
 *     free of control bytes but HTAB, the Host rule, CRLF CRLF at the end;
 *     http_header_find/count agree with the list; Content-Length agrees
 *     with a reference parse;
 *   - http_header_has_token agrees with a reference on the whole input.
 *
 * Every buffer handed to the parser is an exactly sized heap copy, so a
 * read one byte past its end is an AddressSanitizer report. A broken
 * contract stops the run with FUZZ_CHECK.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/http.h"

#define FUZZ_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_http: check failed at %s:%d: %s\n",        \
                    __FILE__, __LINE__, #cond);                              \
            __builtin_trap();                                                \
        }                                                                    \
    } while (0)

/* Prefixes below this length are all parsed; above it, a sample: those
 * cut just before or after a delimiter (at most MAX_EDGES), 8 spread over
 * the rest, the last 4. */
#define ALL_PREFIXES 32u
#define MAX_EDGES 16u
#define DELIMS "\r\n :%?,"

static uint8_t *dup_exact(const uint8_t *p, size_t n) {
    uint8_t *d = malloc(n ? n : 1);
    if (!d) abort();
    if (n) memcpy(d, p, n);
    return d;
}

static int is_result(int r, size_t len) {
    return r == HTTP_PARTIAL || r == HTTP_EBADREQ || r == HTTP_ETOOMANY ||
           r == HTTP_EVERSION || r == HTTP_ETARGET || (r > 0 && (size_t)r <= len);
}

static int tchar(uint8_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int ows(uint8_t c) { return c == ' ' || c == '\t'; }

static int is_delim(uint8_t c) { return c && strchr(DELIMS, c); }

/* [p, p+n) inside [base, base+len). */
static int inside(const uint8_t *p, size_t n, const uint8_t *base, size_t len) {
    return p && p >= base && n <= len && (size_t)(p - base) <= len - n;
}

/* Offset of p from base, or -1 for NULL (fields compared across copies). */
static long off(const uint8_t *p, const uint8_t *base) {
    return p ? (long)(p - base) : -1;
}

/* The same result and fields, at the same offsets from each buffer. */
static void check_same(int r1, const http_request *a, const uint8_t *ba,
                       int r2, const http_request *b, const uint8_t *bb) {
    FUZZ_CHECK(r1 == r2);
    FUZZ_CHECK(a->line_complete == b->line_complete);
    if (!a->line_complete) return;
    FUZZ_CHECK(off(a->method, ba) == off(b->method, bb) &&
               a->method_len == b->method_len);
    FUZZ_CHECK(off(a->target, ba) == off(b->target, bb) &&
               a->target_len == b->target_len);
    FUZZ_CHECK(off(a->path, ba) == off(b->path, bb) && a->path_len == b->path_len);
    FUZZ_CHECK(off(a->query, ba) == off(b->query, bb) &&
               a->query_len == b->query_len);
    FUZZ_CHECK(a->minor_version == b->minor_version);
    if (r1 <= 0) return;
    FUZZ_CHECK(a->nheaders == b->nheaders);
    for (size_t i = 0; i < a->nheaders; i++) {
        const http_header *x = &a->headers[i], *y = &b->headers[i];
        FUZZ_CHECK(off(x->name, ba) == off(y->name, bb) && x->name_len == y->name_len);
        FUZZ_CHECK(off(x->value, ba) == off(y->value, bb) &&
                   x->value_len == y->value_len);
    }
}

/* Reference Content-Length: 0 none, 1 found (*out), -1 invalid. */
static int ref_content_length(const http_request *req, uint64_t *out) {
    int found = 0;
    *out = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        if (h->name_len != 14 || strncasecmp((const char *)h->name,
                                             "content-length", 14) != 0)
            continue;
        if (h->value_len == 0) return -1;
        uint64_t v = 0;
        for (size_t j = 0; j < h->value_len; j++) {
            uint8_t c = h->value[j];
            if (c < '0' || c > '9') return -1;
            if (__builtin_mul_overflow(v, 10u, &v) ||
                __builtin_add_overflow(v, (uint64_t)(c - '0'), &v))
                return -1;
        }
        if (found && v != *out) return -1;
        *out = v;
        found = 1;
    }
    return found;
}

/* A complete request of r bytes at buf: the structure http.h promises. */
static void check_complete(const uint8_t *buf, int r, const http_request *req) {
    size_t n = (size_t)r;
    FUZZ_CHECK(req->line_complete == 1);
    FUZZ_CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    FUZZ_CHECK(inside(req->method, req->method_len, buf, n));
    FUZZ_CHECK(req->method_len >= 1 && req->method_len <= HTTP_MAX_METHOD);
    for (size_t i = 0; i < req->method_len; i++) FUZZ_CHECK(tchar(req->method[i]));
    FUZZ_CHECK(inside(req->target, req->target_len, buf, n));
    FUZZ_CHECK(req->target_len >= 1 && req->target_len <= HTTP_MAX_TARGET);
    FUZZ_CHECK(req->target[0] == '/' ||
               (req->target_len == 1 && req->target[0] == '*' &&
                req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0));
    FUZZ_CHECK(req->path == req->target);
    FUZZ_CHECK(memchr(req->path, '?', req->path_len) == NULL);
    if (req->query) {
        FUZZ_CHECK(inside(req->query, req->query_len, buf, n));
        FUZZ_CHECK(req->path_len + 1 + req->query_len == req->target_len);
        FUZZ_CHECK(req->query == req->target + req->path_len + 1);
        FUZZ_CHECK(req->target[req->path_len] == '?');
    } else {
        FUZZ_CHECK(req->path_len == req->target_len && req->query_len == 0);
    }
    for (size_t i = 0; i < req->target_len; i++) {
        uint8_t c = req->target[i];
        FUZZ_CHECK(c > 0x20 && c < 0x7F && c != '#');
        if (c == '%') {
            FUZZ_CHECK(i + 2 < req->target_len && isxdigit(req->target[i + 1]) &&
                       isxdigit(req->target[i + 2]));
        }
    }
    FUZZ_CHECK(req->minor_version == 0 || req->minor_version == 1);
    FUZZ_CHECK(req->nheaders <= HTTP_MAX_HEADERS);
    size_t hosts = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        FUZZ_CHECK(inside(h->name, h->name_len, buf, n) && h->name_len > 0);
        FUZZ_CHECK(inside(h->value, h->value_len, buf, n));
        FUZZ_CHECK(h->value > h->name + h->name_len);
        for (size_t j = 0; j < h->name_len; j++) FUZZ_CHECK(tchar(h->name[j]));
        FUZZ_CHECK(h->name[h->name_len] == ':');
        for (size_t j = 0; j < h->value_len; j++) {
            uint8_t c = h->value[j];
            FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7F));
        }
        if (h->value_len) {
            FUZZ_CHECK(!ows(h->value[0]) && !ows(h->value[h->value_len - 1]));
        }
        /* The value ends at the line's CRLF, OWS apart. */
        const uint8_t *e = h->value + h->value_len;
        while (ows(*e)) e++;
        FUZZ_CHECK(e[0] == '\r' && e[1] == '\n');
        /* Lookup: the first header of that name is this one or earlier. */
        char name[64];
        if (h->name_len < sizeof name) {
            memcpy(name, h->name, h->name_len);
            name[h->name_len] = '\0';
            const http_header *f = http_header_find(req, name);
            FUZZ_CHECK(f != NULL && f <= h && f->name_len == h->name_len);
            FUZZ_CHECK(strncasecmp((const char *)f->name, name, h->name_len) == 0);
            FUZZ_CHECK(http_header_count(req, name) >= 1);
            if (strcasecmp(name, "host") == 0) hosts++;
        }
    }
    FUZZ_CHECK(hosts <= 1 && (req->minor_version == 0 || hosts == 1));
    FUZZ_CHECK(http_header_count(req, "host") == hosts);

    uint64_t cl = 7, ref = 0;
    int c = http_parse_content_length(req, &cl);
    int rc = ref_content_length(req, &ref);
    FUZZ_CHECK(rc < 0 ? c == HTTP_EBADREQ : (c == rc && cl == ref));
}

/* Reference for http_header_has_token: elements split at commas, OWS
 * trimmed, compared whole and case-insensitively. */
static int ref_has_token(const uint8_t *v, size_t len, const char *tok) {
    size_t tl = strlen(tok);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && v[i] != ',') continue;
        size_t a = start, b = i;
        while (a < b && ows(v[a])) a++;
        while (b > a && ows(v[b - 1])) b--;
        if (b - a == tl && tl > 0 && strncasecmp((const char *)v + a, tok, tl) == 0)
            return 1;
        start = i + 1;
    }
    return 0;
}

/* Parse buf[0..len) (an exact copy) and check everything above; returns
 * the result. */
static int check_one(const uint8_t *buf, size_t len) {
    http_request req;
    int r = http_parse_request(buf, len, &req);
    FUZZ_CHECK(is_result(r, len));
    FUZZ_CHECK(req.line_complete == 0 || req.line_complete == 1);
    FUZZ_CHECK(http_strerror(r) != NULL);
    if (r < 0 && r != HTTP_PARTIAL) {
        int st = http_error_status(r);
        FUZZ_CHECK(st == 400 || st == 414 || st == 431 || st == 505);
        FUZZ_CHECK(http_status_reason(st)[0] != '\0');
    }
    if (r == HTTP_PARTIAL) {
        int st = http_full_status(&req);
        FUZZ_CHECK(st == (req.line_complete ? 431 : 414));
    }

    /* Deterministic, and independent of where the bytes are. */
    uint8_t *again = dup_exact(buf, len);
    http_request req2;
    int r2 = http_parse_request(again, len, &req2);
    check_same(r, &req, buf, r2, &req2, again);
    free(again);

    if (r > 0) check_complete(buf, r, &req);

    /* Prefixes, in increasing length: PARTIAL, then the final result. */
    size_t step = len / 8 + 1;
    unsigned edges = 0; /* prefixes cut next to a delimiter */
    int settled = HTTP_PARTIAL;
    int line = 0;
    for (size_t k = 0; k < len; k++) {
        int near_end = k + 4 >= len || (r > 0 && k + 2 >= (size_t)r &&
                                         k <= (size_t)r + 1);
        int edge = edges < MAX_EDGES &&
                   (is_delim(buf[k]) || (k && is_delim(buf[k - 1])));
        if (k >= ALL_PREFIXES && k % step != 0 && !near_end && !edge) continue;
        edges += (unsigned)(k >= ALL_PREFIXES && edge);
        uint8_t *pre = dup_exact(buf, k);
        http_request q;
        int rk = http_parse_request(pre, k, &q);
        free(pre);
        if (r > 0) {
            FUZZ_CHECK(k < (size_t)r ? rk == HTTP_PARTIAL : rk == r);
        } else {
            FUZZ_CHECK(rk == HTTP_PARTIAL || rk == r);
        }
        if (settled != HTTP_PARTIAL) FUZZ_CHECK(rk == settled);
        settled = rk;
        if (rk == HTTP_PARTIAL) {
            FUZZ_CHECK(q.line_complete >= line);
            line = q.line_complete;
        }
    }
    if (r == HTTP_PARTIAL || r > 0) FUZZ_CHECK(req.line_complete >= line);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = dup_exact(data, size);

    /* Pipelined requests, one after the other while each is complete. */
    size_t at = 0;
    for (;;) {
        uint8_t *rest = dup_exact(buf + at, size - at);
        int r = check_one(rest, size - at);
        free(rest);
        if (r <= 0) break;
        at += (size_t)r;
    }

    /* Token lists: the whole input as a value, a token from its last
     * bytes (up to the last comma, trimmed, at most 16 bytes). */
    char tok[17];
    size_t t = 0;
    for (size_t i = size; i > 0 && t < 16; i--) {
        uint8_t c = data[i - 1];
        if (c == ',' || c == '\0') break;
        t++;
    }
    if (t) memcpy(tok, data + size - t, t);
    tok[t] = '\0';
    size_t a = 0, b = t;
    while (a < b && ows((uint8_t)tok[a])) a++;
    while (b > a && ows((uint8_t)tok[b - 1])) b--;
    tok[b] = '\0';
    FUZZ_CHECK(http_header_has_token(buf, size, tok + a) ==
               ref_has_token(buf, size, tok + a));
    FUZZ_CHECK(http_header_has_token(buf, size, "upgrade") ==
               ref_has_token(buf, size, "upgrade"));

    for (size_t i = 0; i + 1 < size && i < 4; i += 2) {
        int code = data[i] << 8 | data[i + 1];
        FUZZ_CHECK(http_status_reason(code) != NULL);
    }
    free(buf);
    return 0;
}
