/*
 * http.h -- an HTTP/1.1 request parser (request line and header section)
 * for the server's HTTP listener: the web client's files at GET /, the
 * WebSocket upgrade at GET /ws, GET /metrics, GET /healthz.
 *
 * Written here rather than taken from a library: libhttp-parser
 * (nodejs/http-parser) is archived upstream and unmaintained; the contract
 * is picohttpparser's (a design idea; the code is ours).
 *
 * Pure functions over the caller's buffer: no I/O, no allocation, no global
 * state, no locale. http_parse_request() looks at buf[0..len) from the
 * start every time it is called (it keeps no state between calls): the
 * caller appends what it reads and calls again. Every pointer it stores in
 * the http_request points into buf and is valid as long as buf is (and its
 * bytes are not moved). Cost: O(len), each byte looked at once.
 *
 * Grammar (RFC 9112 §2-§5, RFC 9110 §5), strict where RFC 9112 asks a
 * recipient to reject, with these decisions:
 *   - Line ends are CRLF only. A bare LF is rejected (RFC 9112 §2.2 lets a
 *     recipient accept it; we do not, so that no proxy in front of us can
 *     split a request differently from us). A bare CR is rejected.
 *   - One empty line (CRLF) before the request line is skipped (RFC 9112
 *     §2.2 SHOULD) and counted in the bytes consumed; a second one is 400.
 *   - request-line = method SP request-target SP HTTP-version CRLF, single
 *     spaces. method is a token of at most HTTP_MAX_METHOD bytes.
 *   - request-target: origin-form ("/" then path and optional "?query") or
 *     asterisk-form ("*", with method OPTIONS only). absolute-form
 *     ("http://host/...") and authority-form ("host:port", CONNECT) are
 *     rejected with 400: we are no proxy, and clients send absolute-form
 *     only to proxies (RFC 9112 §3.2.2 asks servers to accept it; we do
 *     not). Its bytes: any visible ASCII (0x21-0x7E) but '#' (a fragment is
 *     never sent), and every '%' followed by two hex digits. That is wider
 *     than RFC 3986's set on purpose: browsers send '|', '^', '[', ']',
 *     '{', '}' unencoded (WHATWG URL's percent-encode sets).
 *   - HTTP-version: "HTTP/1.0" or "HTTP/1.1" (case-sensitive). Any other
 *     "HTTP/<digit>.<digit>" is HTTP_EVERSION (505); anything else is 400.
 *   - field-line = field-name ":" OWS field-value OWS CRLF. field-name is a
 *     non-empty token; whitespace between it and the colon is rejected
 *     (RFC 9112 §5.1), so is a line starting with SP or HTAB (obs-fold, or
 *     whitespace before the first field: RFC 9112 §5.2, §2.2). field-value:
 *     visible ASCII, obs-text (0x80-0xFF), SP and HTAB; every other control
 *     byte (NUL, DEL, bare CR or LF) is rejected. OWS is trimmed from both
 *     ends of the value, never from inside.
 *   - Host (RFC 9112 §3.2): an HTTP/1.1 request without one, or any request
 *     with more than one, is 400. Its value is not checked here.
 *   - Nothing about the body: Content-Length (http_parse_content_length)
 *     and Transfer-Encoding are the caller's to check and refuse.
 *
 * Errors are decided as early as the bytes allow, scanning left to right:
 * a prefix of the input returns HTTP_PARTIAL or the same result as the
 * whole (a complete request's every proper prefix returns HTTP_PARTIAL).
 */
#ifndef CHAT_PROTO_HTTP_H
#define CHAT_PROTO_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Most header field lines in one request; one more is HTTP_ETOOMANY (431),
 * returned as soon as the first byte of that line arrives. Browsers send
 * about 15 (a WebSocket upgrade from Chromium: 13). */
#define HTTP_MAX_HEADERS 32u

/* Longest request-target, in bytes; one more is HTTP_ETARGET (414),
 * returned as soon as that byte arrives, before the line is complete. Our
 * targets are a few bytes ("/ws"); 2 KiB keeps the request line well below
 * an 8 KiB input buffer, so the parser, not the buffer, decides 414. */
#define HTTP_MAX_TARGET 2048u

/* Longest method (a token), in bytes; one more is 400. The longest
 * registered method is 17 bytes. */
#define HTTP_MAX_METHOD 24u

/* Results of http_parse_request() other than a byte count (negative). */
enum {
    HTTP_PARTIAL  = -1, /* need more bytes; nothing is wrong yet */
    HTTP_EBADREQ  = -2, /* malformed request: 400 Bad Request */
    HTTP_ETOOMANY = -3, /* over HTTP_MAX_HEADERS fields: 431 */
    HTTP_EVERSION = -4, /* not HTTP/1.0 or 1.1: 505 */
    HTTP_ETARGET  = -5  /* target over HTTP_MAX_TARGET: 414 */
};

/* One header field line. name: a token (not NUL-terminated), as received
 * (compare it case-insensitively); value: OWS trimmed from both ends,
 * possibly empty (value_len 0, value still inside buf). */
typedef struct http_header {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
} http_header;

/* A parsed request. Every pointer points into the caller's buffer.
 *   method/target: as received (case-sensitive).
 *   path: the target up to its first '?' (the whole target when there is
 *         none; "*" for asterisk-form); not percent-decoded.
 *   query: the bytes after that '?' (query_len may be 0), or NULL with
 *         query_len 0 when the target has no '?'.
 *   minor_version: 0 or 1 (HTTP/1.0, HTTP/1.1).
 *   headers[0..nheaders): in the order received, duplicates kept.
 *   line_complete: 1 once the request line was received whole and valid
 *         (method, target, path, query and minor_version are then set),
 *         else 0. Set on every return, HTTP_PARTIAL included: that is how
 *         the caller tells 414 from 431 when its buffer fills (see
 *         http_full_status()).
 * On HTTP_PARTIAL and on errors, every field but line_complete (and those
 * it vouches for) is unspecified. Size: about 1.1 KiB on 64-bit. */
typedef struct http_request {
    const uint8_t *method;
    size_t method_len;
    const uint8_t *target;
    size_t target_len;
    const uint8_t *path;
    size_t path_len;
    const uint8_t *query;
    size_t query_len;
    int minor_version;
    int line_complete;
    size_t nheaders;
    http_header headers[HTTP_MAX_HEADERS];
} http_request;

/* Parse the request line and header section at the start of buf[0..len).
 * Returns the number of bytes they occupy, up to and including the empty
 * line that ends them (> 0; a body or the next pipelined request starts
 * there), filling *req; HTTP_PARTIAL when more bytes are needed; or a
 * negative HTTP_E* code when no more bytes can make it valid (answer with
 * http_error_status() and close). Only buf[0..min(len, INT_MAX)) is
 * looked at, so the count always fits an int. buf may be NULL when len is
 * 0. O(len); no allocation. */
int http_parse_request(const uint8_t *buf, size_t len, http_request *req);

/* The status to answer a negative result of http_parse_request() with:
 * 400, 431, 505 or 414; 500 for any other value (a caller's bug). */
int http_error_status(int result);

/* A short English description of a result (for logs), e.g. "too many
 * header fields"; "unknown result" for other values. Never NULL. */
const char *http_strerror(int result);

/* The status for a request whose caller's input buffer is full while
 * http_parse_request() still returns HTTP_PARTIAL: 431 (Request Header
 * Fields Too Large) when the request line was complete, else 414 (URI Too
 * Long). req is the one that call filled in. */
int http_full_status(const http_request *req);

/* The first header whose name equals `name` (a NUL-terminated token)
 * ASCII-case-insensitively, or NULL. O(nheaders). */
const http_header *http_header_find(const http_request *req, const char *name);

/* How many header lines have that name (ASCII case-insensitive): a field
 * that must appear once (Sec-WebSocket-Key) is checked with this. */
size_t http_header_count(const http_request *req, const char *name);

/* 1 if the comma-separated list value[0..len) has an element equal to
 * `token` (NUL-terminated), ASCII-case-insensitively, else 0. Elements are
 * trimmed of OWS; empty elements are skipped (RFC 9110 §5.6.1); an element
 * is compared whole ("websocket/13" is not "websocket"). For Connection:
 * upgrade, Upgrade: websocket. O(len). */
int http_header_has_token(const uint8_t *value, size_t len, const char *token);

/* The request's Content-Length (RFC 9110 §8.6, RFC 9112 §6.3). Returns 0
 * when there is none (*out = 0), 1 when there is one (*out = the value),
 * HTTP_EBADREQ (400) when a value is empty, is not all digits (no sign,
 * no spaces, no list "5, 5"), exceeds UINT64_MAX, or when the lines
 * disagree (identical duplicates are accepted). Comparing the value with a
 * limit (413) is the caller's. O(nheaders + their values' length). */
int http_parse_content_length(const http_request *req, uint64_t *out);

/* The reason phrase of a status the server sends: 101 200 204 400 403 404
 * 405 408 413 414 426 431 500 503 505. "" for any other code (an empty
 * reason-phrase is valid, RFC 9112 §4). Never NULL. */
const char *http_status_reason(int code);

#endif
