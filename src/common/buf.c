#include "buf.h"

#include <stdlib.h>
#include <string.h>

int buf_reserve(buf *b, size_t extra, size_t limit) {
    if (extra > limit || b->len > limit - extra) return BUF_ELIMIT;
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    /* A first small need (a trickled header) gets a small buffer. */
    size_t cap = b->cap ? b->cap : need <= 64 ? 64 : 4096;
    while (cap < need) cap = cap > limit / 2 ? limit : cap * 2;
    if (cap > limit) cap = limit;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return BUF_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(buf *b, const void *p, size_t n, size_t limit) {
    int r = buf_reserve(b, n, limit);
    if (r) return r;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void buf_consume(buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void buf_free(buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
