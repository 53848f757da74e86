/*
 * json.c -- JSON string escaping with UTF-8 validation (see json.h).
 */
#include "cli/json.h"

#include "common/jsonesc.h"

int cli_json_string(FILE *f, const void *data, size_t len) {
    const unsigned char *s = data;
    if (putc('"', f) == EOF) return -1;
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        if (b < 0x80) {
            char u[7];
            const char *esc = json_esc_ascii(b, u);
            if (esc ? fputs(esc, f) == EOF : putc(b, f) == EOF) return -1;
            i++;
            continue;
        }
        size_t skip = 1, n = utf8_seq(s + i, len - i, &skip);
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
