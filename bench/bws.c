/* bws.c -- see bws.h. */
#include "bws.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

/* RFC 6455 1.3: appended to the key before hashing. */
static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* --- the opening handshake */

int bws_keys(const uint8_t nonce[16], char *key, char *accept) {
    (void)EVP_EncodeBlock((unsigned char *)key, nonce, 16); /* 24 chars and a NUL */
    char cat[BWS_KEY_LEN + sizeof GUID];
    memcpy(cat, key, BWS_KEY_LEN);
    memcpy(cat + BWS_KEY_LEN, GUID, sizeof GUID - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (!EVP_Digest(cat, BWS_KEY_LEN + sizeof GUID - 1, md, &ml, EVP_sha1(), NULL) || ml != 20)
        return -1;
    (void)EVP_EncodeBlock((unsigned char *)accept, md, 20); /* 28 chars and a NUL */
    return 0;
}

size_t bws_request(char out[BWS_REQ_MAX], const char *host, const char *path,
                   const char *proto, const char *key) {
    int n = snprintf(out, BWS_REQ_MAX,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     path, host, key, proto ? "Sec-WebSocket-Protocol: " : "",
                     proto ? proto : "", proto ? "\r\n" : "");
    return n > 0 && (size_t)n < BWS_REQ_MAX ? (size_t)n : 0;
}

/* s[0..n) equals the NUL-terminated w, ignoring ASCII case. */
static int ieq(const uint8_t *s, size_t n, const char *w) {
    return strlen(w) == n && !strncasecmp((const char *)s, w, n);
}

/* Some comma-separated token of s[0..n) is w (ignoring case). */
static int has_token(const uint8_t *s, size_t n, const char *w) {
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != ',') e++;
        size_t a = i, b = e;
        while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
        if (ieq(s + a, b - a, w)) return 1;
        i = e + 1;
    }
    return 0;
}

long bws_response(const uint8_t *d, size_t n, const char *accept, const char *proto,
                  char *err, size_t errlen) {
    size_t lim = n < BWS_RESP_MAX ? n : BWS_RESP_MAX;
    const uint8_t *end = memmem(d, lim, "\r\n\r\n", 4);
    if (!end) {
        if (n < BWS_RESP_MAX) return 0;
        snprintf(err, errlen, "the server's answer to the WebSocket upgrade has no end "
                              "within %u bytes", BWS_RESP_MAX);
        return -1;
    }
    size_t head = (size_t)(end - d) + 4;
    const uint8_t *eol = memmem(d, head, "\r\n", 2); /* found: head ends with CRLF CRLF */
    size_t sl = (size_t)(eol - d);
    if (sl < 12 || memcmp(d, "HTTP/1.1 101", 12) || (sl > 12 && d[12] != ' ')) {
        snprintf(err, errlen, "the server refused the WebSocket upgrade: %.*s",
                 (int)(sl < 120 ? sl : 120), (const char *)d);
        return -1;
    }
    int upgrade = 0, connection = 0, accepted = 0, got_proto = 0;
    size_t i = sl + 2;
    while (i + 2 < head) { /* one header line per turn, up to the empty one */
        const uint8_t *le = memmem(d + i, head - i, "\r\n", 2);
        size_t ll = (size_t)(le - (d + i));
        const uint8_t *colon = memchr(d + i, ':', ll);
        if (!colon) {
            snprintf(err, errlen, "the server's answer to the WebSocket upgrade has a "
                                  "header line without a colon");
            return -1;
        }
        size_t nl = (size_t)(colon - (d + i)), vs = nl + 1, ve = ll;
        const uint8_t *l = d + i;
        while (vs < ve && (l[vs] == ' ' || l[vs] == '\t')) vs++;
        while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t')) ve--;
        const uint8_t *v = l + vs;
        size_t vl = ve - vs;
        if (ieq(l, nl, "Upgrade")) {
            upgrade = ieq(v, vl, "websocket");
        } else if (ieq(l, nl, "Connection")) {
            connection = has_token(v, vl, "upgrade");
        } else if (ieq(l, nl, "Sec-WebSocket-Accept")) {
            accepted = vl == BWS_ACCEPT_LEN && !memcmp(v, accept, BWS_ACCEPT_LEN);
            if (!accepted) {
                snprintf(err, errlen, "the server's Sec-WebSocket-Accept '%.*s' is not the "
                                      "one for our key (%s)", (int)(vl < 40 ? vl : 40),
                         (const char *)v, accept);
                return -1;
            }
        } else if (ieq(l, nl, "Sec-WebSocket-Protocol")) {
            if (!proto || !ieq(v, vl, proto)) {
                snprintf(err, errlen, "the server chose the WebSocket subprotocol '%.*s', "
                                      "which was not offered (%s)", (int)(vl < 40 ? vl : 40),
                         (const char *)v, proto ? proto : "none");
                return -1;
            }
            got_proto = 1;
        } else if (ieq(l, nl, "Sec-WebSocket-Extensions") && vl) {
            snprintf(err, errlen, "the server chose a WebSocket extension, none was offered");
            return -1;
        }
        i += ll + 2;
    }
    const char *missing = !upgrade      ? "Upgrade: websocket"
                          : !connection ? "Connection: Upgrade"
                          : !accepted   ? "Sec-WebSocket-Accept"
                          : proto && !got_proto ? "Sec-WebSocket-Protocol (the subprotocol offered)"
                                               : NULL;
    if (missing) {
        snprintf(err, errlen, "the server's answer to the WebSocket upgrade lacks %s", missing);
        return -1;
    }
    return (long)head;
}

/* --- client -> server frames */

size_t bws_frame_head(uint8_t out[BWS_HDR_MAX], enum bws_op op, uint64_t len, uint32_t key) {
    size_t n = 2;
    out[0] = (uint8_t)(0x80u | (unsigned)op);
    if (len < 126) {
        out[1] = (uint8_t)(0x80u | len);
    } else if (len <= 0xffff) {
        out[1] = 0x80u | 126u;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 0x80u | 127u;
        for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    memcpy(out + n, &key, 4);
    return n + 4;
}

/* The mask as 8 bytes starting at phase off % 4, in memory order. */
static uint64_t mask_word(uint32_t key, uint64_t off) {
    unsigned sh = (unsigned)(off & 3) * 8;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t r = sh ? key >> sh | key << (32 - sh) : key;
#else
    uint32_t r = sh ? key << sh | key >> (32 - sh) : key;
#endif
    return (uint64_t)r << 32 | r;
}

void bws_mask(uint8_t *dst, const uint8_t *src, size_t n, uint32_t key, uint64_t off) {
    uint64_t w = mask_word(key, off); /* the phase repeats every 4 bytes */
    size_t i = 0;
    for (; i + 32 <= n; i += 32) { /* four words a turn: the compiler pairs them (SSE2) */
        uint64_t a0, a1, a2, a3;
        memcpy(&a0, src + i, 8);
        memcpy(&a1, src + i + 8, 8);
        memcpy(&a2, src + i + 16, 8);
        memcpy(&a3, src + i + 24, 8);
        a0 ^= w;
        a1 ^= w;
        a2 ^= w;
        a3 ^= w;
        memcpy(dst + i, &a0, 8);
        memcpy(dst + i + 8, &a1, 8);
        memcpy(dst + i + 16, &a2, 8);
        memcpy(dst + i + 24, &a3, 8);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t a;
        memcpy(&a, src + i, 8);
        a ^= w;
        memcpy(dst + i, &a, 8);
    }
    if (i + 4 <= n) { /* both halves of w are the same 4 bytes */
        uint32_t a, h = (uint32_t)w;
        memcpy(&a, src + i, 4);
        a ^= h;
        memcpy(dst + i, &a, 4);
        i += 4;
    }
    uint8_t p[8];
    memcpy(p, &w, 8);
    for (; i < n; i++) dst[i] = src[i] ^ p[i & 3];
}

/* --- server -> client frames */

static long bad(bws_rx *rx, const char *why) {
    rx->err = why;
    return -1;
}

/* A header's full size, from its first two bytes. */
static size_t head_size(const uint8_t *h) {
    unsigned l = h[1] & 0x7fu;
    return 2u + (l == 126 ? 2u : l == 127 ? 8u : 0u) + (h[1] & 0x80u ? 4u : 0u);
}

/* A whole header at h: check it and start its frame. 0 or -1. */
static long start_frame(bws_rx *rx, const uint8_t *h) {
    if (h[1] & 0x80u) return bad(rx, "the server masked a frame (RFC 6455 5.1: it must not)");
    if (h[0] & 0x70u) return bad(rx, "a frame with reserved bits set (no extension was negotiated)");
    uint8_t op = h[0] & 0x0fu, fin = h[0] >> 7;
    uint64_t len = h[1] & 0x7fu;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
        if (len >> 63) return bad(rx, "a frame length over 2^63");
    }
    switch (op) {
    case BWS_CONT:
        if (!rx->frag) return bad(rx, "a continuation frame outside a fragmented message");
        rx->frag = !fin;
        break;
    case BWS_TEXT:
    case BWS_BINARY:
        if (rx->frag) return bad(rx, "a new message inside a fragmented one");
        rx->frag = !fin;
        break;
    case BWS_CLOSE:
    case BWS_PING:
    case BWS_PONG:
        if (!fin) return bad(rx, "a fragmented control frame");
        if (len > BWS_CTL_MAX) return bad(rx, "a control frame over 125 bytes");
        break;
    default:
        return bad(rx, "a frame with a reserved opcode");
    }
    rx->op = op;
    rx->fin = fin;
    rx->left = len;
    rx->clen = 0;
    return 0;
}

/* The current control frame is whole in rx->ctl: act on it. */
static void end_control(bws_rx *rx) {
    if (rx->op == BWS_PING) {
        memcpy(rx->ping, rx->ctl, rx->clen);
        rx->ping_len = rx->clen;
        rx->ping_due = 1;
    } else if (rx->op == BWS_CLOSE) {
        rx->closed = 1;
        rx->close_code = rx->clen >= 2 ? (uint16_t)(rx->ctl[0] << 8 | rx->ctl[1]) : 1005;
        size_t rl = rx->clen > 2 ? rx->clen - 2u : 0;
        memcpy(rx->reason, rx->ctl + 2, rl);
        rx->reason[rl] = 0;
    } /* a pong answers nothing chat-bench asked: ignored */
}

long bws_unframe(bws_rx *rx, uint8_t *d, size_t n) {
    size_t i = 0, w = 0;
    rx->err = NULL;
    while (i < n && !rx->closed) {
        if (rx->left) { /* inside a frame's payload */
            size_t k = rx->left < n - i ? (size_t)rx->left : n - i;
            if (rx->op < BWS_CLOSE) {
                if (w != i) memmove(d + w, d + i, k);
                w += k;
            } else {
                memcpy(rx->ctl + rx->clen, d + i, k); /* left <= BWS_CTL_MAX - clen */
                rx->clen = (uint8_t)(rx->clen + k);
            }
            i += k;
            rx->left -= k;
            if (!rx->left && rx->op >= BWS_CLOSE) end_control(rx);
            continue;
        }
        const uint8_t *h;
        size_t hs;
        if (!rx->hlen && n - i >= 2 && n - i >= (hs = head_size(d + i))) {
            h = d + i; /* the usual case: the whole header is here */
            i += hs;
        } else { /* collect it across reads */
            while (rx->hlen < 2 && i < n) rx->hdr[rx->hlen++] = d[i++];
            if (rx->hlen < 2) break;
            hs = head_size(rx->hdr);
            while (rx->hlen < hs && i < n) rx->hdr[rx->hlen++] = d[i++];
            if (rx->hlen < hs) break;
            h = rx->hdr;
            rx->hlen = 0;
        }
        if (start_frame(rx, h)) return -1;
        if (!rx->left && rx->op >= BWS_CLOSE) end_control(rx);
    }
    return (long)w;
}

uint64_t bws_data_left(const bws_rx *rx) { return rx->op < BWS_CLOSE ? rx->left : 0; }

void bws_data_skipped(bws_rx *rx, uint64_t k) {
    rx->left -= k < rx->left ? k : rx->left;
}

size_t bws_pong(bws_rx *rx, uint8_t out[BWS_HDR_MAX + BWS_CTL_MAX], uint32_t key) {
    size_t h = bws_frame_head(out, BWS_PONG, rx->ping_len, key);
    bws_mask(out + h, rx->ping, rx->ping_len, key, 0);
    rx->ping_due = 0;
    return h + rx->ping_len;
}
