/*
 * http.c -- see http.h. The request parser is one left-to-right scan with
 * a cursor `p` over buf[0..len): each step either consumes bytes, returns
 * HTTP_PARTIAL because p reached len, or returns an error decided by the
 * bytes before p. Nothing here allocates, performs I/O or reads the locale.
 *
 * Invariants (asserted): p <= len at every return; a byte count returned
 * is > 0 and <= len; nheaders <= HTTP_MAX_HEADERS; every span stored lies
 * inside buf[0..p).
 */
#include "http.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

/* tchar (RFC 9110 §5.6.2): the bytes of a token. */
static int is_tchar(uint8_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return 1;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
        return 1;
    default:
        return 0;
    }
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int is_hex(uint8_t c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_ows(uint8_t c) { return c == ' ' || c == '\t'; }

/* A byte of a field value other than OWS: VCHAR or obs-text. */
static int is_field_vchar(uint8_t c) { return c > 0x20 && c != 0x7F; }

static uint8_t ascii_lower(uint8_t c) {
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* 1 if p[0..n) equals the NUL-terminated s ASCII-case-insensitively. */
static int span_ieq(const uint8_t *p, size_t n, const char *s) {
    size_t i = 0;
    for (; i < n; i++) {
        if (s[i] == '\0' || ascii_lower(p[i]) != ascii_lower((uint8_t)s[i]))
            return 0;
    }
    return s[i] == '\0';
}

/* The cursor of one parse. */
typedef struct scan {
    const uint8_t *buf;
    size_t len;
    size_t p;
} scan;

/* Expect CRLF at s->p: 0 when consumed, HTTP_PARTIAL when the input ends
 * first, HTTP_EBADREQ on anything else (bare LF, bare CR, other bytes). */
static int eat_crlf(scan *s) {
    if (s->p == s->len) return HTTP_PARTIAL;
    if (s->buf[s->p] != '\r') return HTTP_EBADREQ;
    if (s->p + 1 == s->len) return HTTP_PARTIAL;
    if (s->buf[s->p + 1] != '\n') return HTTP_EBADREQ;
    s->p += 2;
    return 0;
}

/* method SP: a token of 1..HTTP_MAX_METHOD bytes, then one space. */
static int parse_method(scan *s, http_request *req) {
    size_t start = s->p;
    while (s->p < s->len && is_tchar(s->buf[s->p])) {
        s->p++;
        if (s->p - start > HTTP_MAX_METHOD) return HTTP_EBADREQ;
    }
    if (s->p == s->len) return HTTP_PARTIAL;
    if (s->buf[s->p] != ' ' || s->p == start) return HTTP_EBADREQ;
    req->method = s->buf + start;
    req->method_len = s->p - start;
    s->p++;
    return 0;
}

/* request-target SP (see http.h for the bytes accepted), split into path
 * and query. */
static int parse_target(scan *s, http_request *req) {
    size_t start = s->p;
    if (s->p == s->len) return HTTP_PARTIAL;
    if (s->buf[s->p] == '*') {
        /* asterisk-form: OPTIONS * HTTP/1.1 (RFC 9112 §3.2.4) only. */
        s->p++;
        if (s->p == s->len) return HTTP_PARTIAL;
        if (s->buf[s->p] != ' ' || req->method_len != 7 ||
            memcmp(req->method, "OPTIONS", 7) != 0)
            return HTTP_EBADREQ;
    } else {
        if (s->buf[s->p] != '/') return HTTP_EBADREQ;
        unsigned pct = 0; /* hex digits still owed to a '%' */
        for (;;) {
            if (s->p == s->len) return HTTP_PARTIAL;
            uint8_t c = s->buf[s->p];
            if (pct) {
                if (!is_hex(c)) return HTTP_EBADREQ;
                pct--;
            } else if (c == ' ') {
                break;
            } else if (c < 0x21 || c > 0x7E || c == '#') {
                return HTTP_EBADREQ;
            } else if (c == '%') {
                pct = 2;
            } else if (c == '?' && !req->query) {
                req->query = s->buf + s->p + 1;
            }
            s->p++;
            if (s->p - start > HTTP_MAX_TARGET) return HTTP_ETARGET;
        }
    }
    req->target = s->buf + start;
    req->target_len = s->p - start;
    if (req->query) {
        req->path_len = (size_t)(req->query - 1 - req->target);
        req->query_len = req->target_len - req->path_len - 1;
    } else {
        req->path_len = req->target_len;
    }
    req->path = req->target;
    s->p++; /* the SP */
    return 0;
}

/* HTTP-version CRLF. Syntax first (400), then the version (505). */
static int parse_version(scan *s, http_request *req) {
    static const char tmpl[] = "HTTP/#.#"; /* '#': a digit */
    size_t start = s->p;
    for (size_t i = 0; i < sizeof tmpl - 1; i++, s->p++) {
        if (s->p == s->len) return HTTP_PARTIAL;
        uint8_t c = s->buf[s->p];
        if (tmpl[i] == '#' ? !is_digit(c) : c != (uint8_t)tmpl[i])
            return HTTP_EBADREQ;
    }
    int r = eat_crlf(s);
    if (r) return r;
    uint8_t major = s->buf[start + 5], minor = s->buf[start + 7];
    if (major != '1' || (minor != '0' && minor != '1')) return HTTP_EVERSION;
    req->minor_version = minor - '0';
    return 0;
}

/* One field line at s->p (its first byte is there and is neither CR nor
 * OWS): name ":" OWS value OWS CRLF, stored in *h. */
static int parse_field(scan *s, http_header *h) {
    size_t name = s->p;
    while (s->p < s->len && is_tchar(s->buf[s->p])) s->p++;
    if (s->p == s->len) return HTTP_PARTIAL;
    /* Not a colon: whitespace before it (RFC 9112 §5.1), a control byte,
     * a bare LF, or an empty name. */
    if (s->buf[s->p] != ':' || s->p == name) return HTTP_EBADREQ;
    h->name = s->buf + name;
    h->name_len = s->p - name;
    s->p++;
    while (s->p < s->len && is_ows(s->buf[s->p])) s->p++;
    size_t value = s->p, end = s->p; /* end: past the last non-OWS byte */
    for (;;) {
        if (s->p == s->len) return HTTP_PARTIAL;
        uint8_t c = s->buf[s->p];
        if (c == '\r') break;
        if (!is_ows(c) && !is_field_vchar(c)) return HTTP_EBADREQ;
        s->p++;
        if (!is_ows(c)) end = s->p;
    }
    h->value = s->buf + value;
    h->value_len = end - value;
    return eat_crlf(s);
}

/* The field lines and the empty line that ends them; the Host rule. */
static int parse_fields(scan *s, http_request *req) {
    size_t hosts = 0;
    for (;;) {
        if (s->p == s->len) return HTTP_PARTIAL;
        uint8_t c = s->buf[s->p];
        if (c == '\r') break;
        /* obs-fold, or whitespace between the start line and the first
         * field: both rejected (RFC 9112 §5.2, §2.2). */
        if (is_ows(c)) return HTTP_EBADREQ;
        if (req->nheaders == HTTP_MAX_HEADERS) return HTTP_ETOOMANY;
        http_header *h = &req->headers[req->nheaders];
        int r = parse_field(s, h);
        if (r) return r;
        req->nheaders++;
        if (span_ieq(h->name, h->name_len, "host")) hosts++;
    }
    int r = eat_crlf(s);
    if (r) return r;
    if (hosts > 1 || (hosts == 0 && req->minor_version == 1))
        return HTTP_EBADREQ;
    return 0;
}

static int parse(scan *s, http_request *req) {
    /* One empty line before the request line is ignored (RFC 9112 §2.2). */
    if (s->len > 0 && s->buf[0] == '\r') {
        int r = eat_crlf(s);
        if (r) return r;
    }
    int r = parse_method(s, req);
    if (!r) r = parse_target(s, req);
    if (!r) r = parse_version(s, req);
    if (r) return r;
    req->line_complete = 1;
    return parse_fields(s, req);
}

int http_parse_request(const uint8_t *buf, size_t len, http_request *req) {
    scan s = {buf, len > INT_MAX ? (size_t)INT_MAX : len, 0};
    req->method = req->target = req->path = req->query = NULL;
    req->method_len = req->target_len = req->path_len = req->query_len = 0;
    req->minor_version = 0;
    req->line_complete = 0;
    req->nheaders = 0;
    int r = parse(&s, req);
    assert(s.p <= s.len && req->nheaders <= HTTP_MAX_HEADERS);
    if (r) {
        assert(r < 0);
        return r;
    }
    assert(s.p > 0 && req->line_complete);
    return (int)s.p;
}

int http_error_status(int result) {
    switch (result) {
    case HTTP_EBADREQ: return 400;
    case HTTP_ETOOMANY: return 431;
    case HTTP_EVERSION: return 505;
    case HTTP_ETARGET: return 414;
    default: return 500;
    }
}

const char *http_strerror(int result) {
    switch (result) {
    case HTTP_PARTIAL: return "incomplete request";
    case HTTP_EBADREQ: return "malformed request";
    case HTTP_ETOOMANY: return "too many header fields";
    case HTTP_EVERSION: return "unsupported HTTP version";
    case HTTP_ETARGET: return "request target too long";
    default: return result > 0 ? "complete request" : "unknown result";
    }
}

int http_full_status(const http_request *req) {
    return req->line_complete ? 431 : 414;
}

const http_header *http_header_find(const http_request *req, const char *name) {
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        if (span_ieq(h->name, h->name_len, name)) return h;
    }
    return NULL;
}

size_t http_header_count(const http_request *req, const char *name) {
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        n += (size_t)span_ieq(h->name, h->name_len, name);
    }
    return n;
}

int http_header_has_token(const uint8_t *value, size_t len, const char *token) {
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && value[i] != ',') i++;
        size_t end = i;
        while (start < end && is_ows(value[start])) start++;
        while (end > start && is_ows(value[end - 1])) end--;
        if (end > start && span_ieq(value + start, end - start, token))
            return 1;
        i++; /* past the comma */
    }
    return 0;
}

/* A Content-Length value: 1*DIGIT within uint64_t. */
static int parse_u64(const uint8_t *p, size_t n, uint64_t *out) {
    uint64_t v = 0;
    if (n == 0) return HTTP_EBADREQ;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i])) return HTTP_EBADREQ;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return HTTP_EBADREQ;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int http_parse_content_length(const http_request *req, uint64_t *out) {
    int found = 0;
    uint64_t first = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        if (!span_ieq(h->name, h->name_len, "content-length")) continue;
        uint64_t v;
        if (parse_u64(h->value, h->value_len, &v)) return HTTP_EBADREQ;
        if (found && v != first) return HTTP_EBADREQ;
        first = v;
        found = 1;
    }
    *out = first;
    return found;
}

const char *http_status_reason(int code) {
    switch (code) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}
