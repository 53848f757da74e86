/*
 * json.c -- JSON string escaping with UTF-8 validation (see json.h).
 */
#include "cli/json.h"

size_t cli_utf8_seq(const unsigned char *s, size_t n, size_t *skip) {
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
    *skip = i; /* the lead byte and the valid continuation bytes before the fault */
    return 0;
}

int cli_json_string(FILE *f, const void *data, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = data;
    if (putc('"', f) == EOF) return -1;
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        if (b < 0x80) {
            const char *esc = NULL;
            char u[7];
            switch (b) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            default:
                if (b < 0x20) {
                    u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                    u[4] = hex[b >> 4]; u[5] = hex[b & 15]; u[6] = 0;
                    esc = u;
                }
            }
            if (esc ? fputs(esc, f) == EOF : putc(b, f) == EOF) return -1;
            i++;
            continue;
        }
        size_t skip = 1, n = cli_utf8_seq(s + i, len - i, &skip);
        if (n) {
            if (fwrite(s + i, 1, n, f) != n) return -1;
            i += n;
        } else {
            if (fputs("\\ufffd", f) == EOF) return -1;
            i += skip;
        }
    }
    return putc('"', f) == EOF ? -1 : 0;
}
