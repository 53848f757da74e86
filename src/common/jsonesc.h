/*
 * jsonesc.h -- the pieces of a JSON string shared by the JSON writers
 * (chat-client's JSON lines, src/cli/json.c, and the server's JSON log,
 * src/common/log.c), so that both escape and replace the same bytes in the
 * same way. Each writer keeps its own output (a stdio stream; a bounded
 * line cut between two characters).
 *
 * Header only: chat-client and the server link different sets of objects,
 * and these are two small pure functions.
 */
#ifndef CHAT_COMMON_JSONESC_H
#define CHAT_COMMON_JSONESC_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s[0] (1-4), or 0 when it
 * is invalid (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF); then *skip receives the length of its maximal invalid subpart
 * (>= 1) to replace with one U+FFFD (Unicode's "substitution of maximal
 * subparts", as Python's errors="replace"). `n` >= 1 bytes are available.
 * Pure, O(1). */
static inline size_t utf8_seq(const unsigned char *s, size_t n, size_t *skip) {
    unsigned char b = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (b == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90;      /* no overlongs */
        else if (b == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else {
        *skip = 1; /* continuation byte or C0, C1, F5-FF: never valid */
        return 0;
    }
    size_t i = 1;
    for (; i < need && i < n; i++) {
        unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
        if (s[i] < min || s[i] > max) break;
    }
    if (i == need) return need;
    *skip = i; /* the lead byte and the good continuation bytes before */
    return 0;
}

/* The escape of ASCII byte b (< 0x80) inside a JSON string: "\\\"",
 * "\\\\", "\\n" and the other short forms, "\\u00XX" for the other
 * control bytes (written into u), or NULL when b stands for itself. Pure. */
static inline const char *json_esc_ascii(unsigned char b, char u[7]) {
    static const char hex[] = "0123456789abcdef";
    switch (b) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\b': return "\\b";
    case '\f': return "\\f";
    default: break;
    }
    if (b >= 0x20) return NULL;
    u[0] = '\\';
    u[1] = 'u';
    u[2] = '0';
    u[3] = '0';
    u[4] = hex[b >> 4];
    u[5] = hex[b & 15];
    u[6] = '\0';
    return u;
}

#endif
