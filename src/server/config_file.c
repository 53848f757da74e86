/*
 * config_file.c -- chat-server's config file (chat-server.conf(5)).
 *
 * One setting per line: its long flag's name, blanks, its value (the rest
 * of the line, trailing blanks dropped; double quotes around it are
 * removed, so a value may end in a blank). A flag without a value (echo)
 * may stand alone or take on/off. Blank lines and lines whose first
 * non-blank is '#' are comments ('#' inside a value is part of it: an
 * origin or a path may hold one). "include FILE" reads FILE there (relative
 * to the including file's directory), at most CONFIG_INCLUDE_DEPTH deep, so
 * a file that includes itself ends with an error, not a crash. A setting
 * given twice keeps its last value, so an include at the end overrides.
 *
 * Every error stops the start: "FILE:LINE: what is wrong", or "FILE:
 * cannot read it: why".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define FAIL(...)                                                              \
    do {                                                                       \
        snprintf(err, errlen, __VA_ARGS__);                                    \
        r = CONFIG_ERROR;                                                      \
        goto out;                                                              \
    } while (0)

static const char blanks[] = " \t\r\n";

/* path relative to the directory of `from` (as written: "a/b.conf" from
 * "/etc/x/c.conf" is "/etc/x/a/b.conf"). 0, or -1 when it does not fit. */
static int resolve(const char *from, const char *path, char *out, size_t cap) {
    const char *slash = strrchr(from, '/');
    int n = path[0] == '/' || !slash
                ? snprintf(out, cap, "%s", path)
                : snprintf(out, cap, "%.*s/%s", (int)(slash - from), from,
                           path);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int apply(config *c, const char *path, int depth, char *err,
                 size_t errlen);

/* One line (NUL-terminated, the newline still on it) of file:no. */
static int line(config *c, const char *path, unsigned no, char *p, int depth,
                char *err, size_t errlen) {
    p += strspn(p, blanks);
    if (*p == '\0' || *p == '#') return CONFIG_OK;
    char *key = p;
    p += strcspn(p, blanks);
    if (*p) *p++ = '\0';
    p += strspn(p, blanks);
    size_t n = strlen(p);
    while (n && strchr(blanks, p[n - 1])) p[--n] = '\0';
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p[n - 1] = '\0';
        p++;
    }
    const char *value = n ? p : NULL;
    if (strcmp(key, "include") == 0) {
        char inc[1024];
        if (!value) {
            snprintf(err, errlen, "%s:%u: include: needs a file", path, no);
            return CONFIG_ERROR;
        }
        if (resolve(path, value, inc, sizeof inc)) {
            snprintf(err, errlen, "%s:%u: include: '%s' is too long a path",
                     path, no, value);
            return CONFIG_ERROR;
        }
        if (depth + 1 >= CONFIG_INCLUDE_DEPTH) {
            snprintf(err, errlen, "%s:%u: include %s: includes nested more "
                     "than %d deep (does a file include itself?)", path, no,
                     value, CONFIG_INCLUDE_DEPTH);
            return CONFIG_ERROR;
        }
        char why[768];
        if (apply(c, inc, depth + 1, why, sizeof why) == CONFIG_OK)
            return CONFIG_OK;
        snprintf(err, errlen, "%s:%u: include: %s", path, no, why);
        return CONFIG_ERROR;
    }
    const setting *s = config_find(key);
    if (!s) {
        snprintf(err, errlen, "%s:%u: '%s' is not a setting (chat-server "
                 "--help lists them)", path, no, key);
        return CONFIG_ERROR;
    }
    if (s->flags & SET_CLI) {
        snprintf(err, errlen, "%s:%u: %s: only on the command line (--%s)",
                 path, no, key, key);
        return CONFIG_ERROR;
    }
    if (!value && s->kind != SET_FLAG) {
        snprintf(err, errlen, "%s:%u: %s: needs a value", path, no, key);
        return CONFIG_ERROR;
    }
    char why[256];
    if (config_set(c, s, value, ORIGIN_FILE, why, sizeof why) == 0)
        return CONFIG_OK;
    snprintf(err, errlen, "%s:%u: %s: %s", path, no, key, why);
    return CONFIG_ERROR;
}

static int apply(config *c, const char *path, int depth, char *err,
                 size_t errlen) {
    static char buf[CONFIG_INCLUDE_DEPTH][CONFIG_LINE_MAX + 2];
    char *text = buf[depth]; /* one line per include level, off the stack */
    int r = CONFIG_ERROR;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read it: %s", path, strerror(errno));
        return CONFIG_ERROR;
    }
    unsigned no = 0;
    while (fgets(text, CONFIG_LINE_MAX + 2, f)) {
        no++;
        size_t n = strlen(text);
        if (n == CONFIG_LINE_MAX + 1 && text[n - 1] != '\n')
            FAIL("%s:%u: longer than %d bytes", path, no, CONFIG_LINE_MAX);
        if ((r = line(c, path, no, text, depth, err, errlen)) != CONFIG_OK)
            goto out;
    }
    if (ferror(f)) FAIL("%s: cannot read it: %s", path, strerror(errno));
    r = CONFIG_OK;
out:
    /* (void): a file only read has nothing to flush; its error would be
     * a read error, which ferror reported */
    (void)fclose(f);
    return r;
}

int config_file_apply(config *c, const char *path, char *err, size_t errlen) {
    return apply(c, path, 0, err, errlen);
}

const char *config_file_data_dir(const char *path, char *err, size_t errlen) {
    static config c; /* ~6 KiB, off the stack; the tools' main thread only */
    config_defaults(&c);
    if (config_file_apply(&c, path, err, errlen) != CONFIG_OK) return NULL;
    return c.data_dir;
}
