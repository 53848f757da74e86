/*
 * test_log.c -- unit tests for the log line (src/common/log.{h,c}).
 *
 * Every JSON line here goes through a small strict validator (below) that
 * accepts only what RFC 8259 allows for the one shape log lines have (one
 * object of string and integer members, then '\n'): raw bytes in strings
 * must be well-formed UTF-8 and never below 0x20, escapes must be the JSON
 * ones. It decodes the members, so the tests compare what a JSON reader
 * gets back with what was logged.
 *
 * Covers: the exact text and JSON lines for a plain message (keys in their
 * order; "peer" and "user" only when given; user 0 has no "user" key but
 * "user=0" in text); quotes, backslashes, every control byte; invalid
 * UTF-8 (a lone continuation byte, 0xFF, overlong forms, a surrogate, past
 * U+10FFFF, a sequence cut short) replaced by U+FFFD, one for each maximal
 * invalid subpart, while valid 2-, 3- and 4-byte characters pass; text lines keep one '\n'; a
 * message that escapes past LOG_LINE_MAX is cut between escapes with the
 * marker and still parses; log_emit itself: one write per line into a pipe,
 * a message past LOG_MSG_MAX cut at a character boundary with the marker,
 * levels above the threshold not written, errno kept; log_format_parse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* ------------------------------------------------------------------ */
/* A strict reader for one log line                                    */
/* ------------------------------------------------------------------ */

#define JMAX 8
typedef struct jline {
    int n;
    char key[JMAX][16];
    char str[JMAX][LOG_LINE_MAX]; /* decoded string value, UTF-8 */
    int is_num[JMAX];
    long long num[JMAX];
} jline;

/* Well-formed UTF-8 character at p (n bytes left): its length, 0 if not.
 * Checked another way than src/common/utf8.h, on purpose: decode the code
 * point, then require the shortest form, no surrogate, at most U+10FFFF. */
static size_t utf8_ok(const unsigned char *p, size_t n) {
    static const unsigned long min_of[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len = p[0] < 0x80 ? 1 : (p[0] >> 5) == 6 ? 2 : (p[0] >> 4) == 14 ? 3
               : (p[0] >> 3) == 30 ? 4 : 0;
    if (len == 1) return 1;
    if (len == 0 || n < len) return 0;
    unsigned long cp = p[0] & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (cp < min_of[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A JSON string at *p (its opening quote); decoded into out. 0 or -1. */
static int jstring(const unsigned char **pp, const unsigned char *end,
                   char *out, size_t cap) {
    const unsigned char *p = *pp;
    size_t o = 0;
    if (p >= end || *p != '"') return -1;
    p++;
    for (;;) {
        if (p >= end || o + 4 >= cap) return -1;
        if (*p == '"') break;
        if (*p < 0x20) return -1;
        if (*p == '\\') {
            if (p + 1 >= end) return -1;
            unsigned char e = p[1];
            p += 2;
            switch (e) {
            case '"': out[o++] = '"'; break;
            case '\\': out[o++] = '\\'; break;
            case '/': out[o++] = '/'; break;
            case 'b': out[o++] = '\b'; break;
            case 'f': out[o++] = '\f'; break;
            case 'n': out[o++] = '\n'; break;
            case 'r': out[o++] = '\r'; break;
            case 't': out[o++] = '\t'; break;
            case 'u': {
                if (end - p < 4) return -1;
                unsigned u = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(p[i]);
                    if (h < 0) return -1;
                    u = u * 16 + (unsigned)h;
                }
                p += 4;
                if (u >= 0xD800 && u <= 0xDFFF) return -1; /* never ours */
                if (u < 0x80) {
                    out[o++] = (char)u;
                } else if (u < 0x800) {
                    out[o++] = (char)(0xC0 | (u >> 6));
                    out[o++] = (char)(0x80 | (u & 0x3F));
                } else {
                    out[o++] = (char)(0xE0 | (u >> 12));
                    out[o++] = (char)(0x80 | ((u >> 6) & 0x3F));
                    out[o++] = (char)(0x80 | (u & 0x3F));
                }
                break;
            }
            default: return -1;
            }
            continue;
        }
        size_t len = utf8_ok(p, (size_t)(end - p));
        if (!len) return -1;
        memcpy(out + o, p, len);
        o += len;
        p += len;
    }
    out[o] = '\0';
    *pp = p + 1;
    return 0;
}

/* One line: an object of string or integer members, then exactly "\n". */
static int jparse(const char *line, size_t n, jline *j) {
    const unsigned char *p = (const unsigned char *)line, *end = p + n;
    memset(j, 0, sizeof *j);
    if (n < 3 || end[-1] != '\n') return -1;
    end--; /* the object ends right before the newline */
    if (*p++ != '{') return -1;
    for (;;) {
        if (j->n == JMAX) return -1;
        if (jstring(&p, end, j->key[j->n], sizeof j->key[0])) return -1;
        if (p >= end || *p++ != ':') return -1;
        if (p < end && *p == '"') {
            if (jstring(&p, end, j->str[j->n], sizeof j->str[0])) return -1;
        } else {
            char *e;
            errno = 0;
            long long v = strtoll((const char *)p, &e, 10);
            if (e == (const char *)p || errno || (*p == '0' && e - (const char *)p > 1))
                return -1;
            j->is_num[j->n] = 1;
            j->num[j->n] = v;
            p = (const unsigned char *)e;
        }
        j->n++;
        if (p >= end) return -1;
        if (*p == '}') break;
        if (*p++ != ',') return -1;
    }
    if (p + 1 != end) return -1; /* nothing after the object but '\n' */
    for (const unsigned char *q = (const unsigned char *)line; q < end; q++)
        if (*q == '\n') return -1;
    return 0;
}

static const char *jget(const jline *j, const char *key) {
    for (int i = 0; i < j->n; i++)
        if (!strcmp(j->key[i], key)) return j->str[i];
    return NULL;
}

/* Format as JSON, parse, check the fixed members; returns the decoded msg. */
static const char *json_msg(jline *j, const char *msg) {
    char line[LOG_LINE_MAX + 1];
    size_t n = log_format_line(line, sizeof line, LOG_FORMAT_JSON, 0, LOG_WARN,
                               "ev", "1.2.3.4:5", 7, msg);
    assert_true(n <= LOG_LINE_MAX);
    line[n] = '\0';
    if (jparse(line, n, j)) fail_msg("not valid JSON: %s", line);
    assert_int_equal(j->n, 6);
    assert_string_equal(jget(j, "level"), "warn");
    return jget(j, "msg");
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_plain_lines(void **state) {
    (void)state;
    char line[LOG_LINE_MAX];
    size_t n;
    /* 2026-11-24T20:45:00.123Z */
    long long t = 1795553100123LL;
#define LINE(fmt, lv, ev, peer, user, msg)                                     \
    (n = log_format_line(line, sizeof line, fmt, t, lv, ev, peer, user, msg), \
     line[n] = '\0', line)
    assert_string_equal(LINE(LOG_FORMAT_TEXT, LOG_INFO, "listening", NULL,
                             LOG_NO_USER, "listening on 1.2.3.4:5"),
                        "2026-11-24T20:45:00.123Z INFO listening on 1.2.3.4:5\n");
    assert_string_equal(LINE(LOG_FORMAT_TEXT, LOG_WARN, "x", "1.2.3.4:5", 7,
                             "logged in"),
                        "2026-11-24T20:45:00.123Z WARN peer=1.2.3.4:5 user=7: "
                        "logged in\n");
    assert_string_equal(LINE(LOG_FORMAT_TEXT, LOG_DEBUG, "x", "[::1]:9", 0, "hi"),
                        "2026-11-24T20:45:00.123Z DEBUG peer=[::1]:9 user=0: hi\n");
    assert_string_equal(LINE(LOG_FORMAT_TEXT, LOG_ERROR, "x", "1.2.3.4:5",
                             LOG_NO_USER, "refused"),
                        "2026-11-24T20:45:00.123Z ERROR peer=1.2.3.4:5: refused\n");
    assert_string_equal(LINE(LOG_FORMAT_JSON, LOG_INFO, "listening", NULL,
                             LOG_NO_USER, "listening on 1.2.3.4:5"),
                        "{\"time\":\"2026-11-24T20:45:00.123Z\",\"level\":\"info\","
                        "\"event\":\"listening\",\"msg\":\"listening on 1.2.3.4:5\"}\n");
    assert_string_equal(LINE(LOG_FORMAT_JSON, LOG_WARN, "logged_in", "1.2.3.4:5",
                             4294967295LL, "logged in"),
                        "{\"time\":\"2026-11-24T20:45:00.123Z\",\"level\":\"warn\","
                        "\"event\":\"logged_in\",\"peer\":\"1.2.3.4:5\","
                        "\"user\":4294967295,\"msg\":\"logged in\"}\n");
    /* not bound yet: a peer, no user */
    assert_string_equal(LINE(LOG_FORMAT_JSON, LOG_ERROR, "conn_oom", "1.2.3.4:5",
                             0, "m"),
                        "{\"time\":\"2026-11-24T20:45:00.123Z\",\"level\":\"error\","
                        "\"event\":\"conn_oom\",\"peer\":\"1.2.3.4:5\",\"msg\":\"m\"}\n");
    assert_string_equal(LINE(LOG_FORMAT_JSON, LOG_DEBUG, "e", NULL, LOG_NO_USER, ""),
                        "{\"time\":\"2026-11-24T20:45:00.123Z\",\"level\":\"debug\","
                        "\"event\":\"e\",\"msg\":\"\"}\n");
    /* the epoch, and milliseconds with leading zeros */
    t = 7;
    assert_string_equal(LINE(LOG_FORMAT_TEXT, LOG_INFO, "e", NULL, LOG_NO_USER, "m"),
                        "1970-01-01T00:00:00.007Z INFO m\n");
#undef LINE
}

static void test_json_escapes(void **state) {
    (void)state;
    static jline j;
    assert_string_equal(json_msg(&j, "say \"hi\" \\o/"), "say \"hi\" \\o/");
    assert_string_equal(json_msg(&j, "two\nlines\r\n\ttab"), "two\nlines\r\n\ttab");
    /* every control byte and DEL, each escaped and read back */
    char ctl[40];
    size_t k = 0;
    for (int c = 1; c < 0x20; c++) ctl[k++] = (char)c;
    ctl[k++] = 0x7F;
    ctl[k] = '\0';
    assert_string_equal(json_msg(&j, ctl), ctl);
    char line[LOG_LINE_MAX];
    size_t n = log_format_line(line, sizeof line, LOG_FORMAT_JSON, 0, LOG_INFO,
                               "e", NULL, LOG_NO_USER, "\x01\x1f\x7f");
    line[n] = '\0';
    /* (DEL may stand for itself in JSON, as chat-client writes it) */
    assert_non_null(strstr(line, "\"msg\":\"\\u0001\\u001f\x7f\"}"));
    /* the event and the peer are escaped too */
    n = log_format_line(line, sizeof line, LOG_FORMAT_JSON, 0, LOG_INFO,
                        "a\"b", "p\\\n", 3, "m");
    line[n] = '\0';
    assert_int_equal(jparse(line, n, &j), 0);
    assert_string_equal(jget(&j, "event"), "a\"b");
    assert_string_equal(jget(&j, "peer"), "p\\\n");
}

static void test_json_utf8(void **state) {
    (void)state;
    static jline j;
    /* valid 2-, 3- and 4-byte characters pass as they are */
    assert_string_equal(json_msg(&j, "é € 😀 你好 \xf4\x8f\xbf\xbf"),
                        "é € 😀 你好 \xf4\x8f\xbf\xbf");
    static const struct {
        const char *in, *out;
    } bad[] = {
        {"a\x80z", "a\xef\xbf\xbdz"},                 /* lone continuation */
        {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},     /* never in UTF-8 */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},     /* overlong '/' */
        {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        /* a sequence cut short: one replacement for its good start */
        {"end\xe2\x82", "end\xef\xbf\xbd"},
        {"\xe2\x82x\xf0\x9f\x98", "\xef\xbf\xbdx\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_string_equal(json_msg(&j, bad[i].in), bad[i].out);
}

static void test_text_one_line(void **state) {
    (void)state;
    char line[LOG_LINE_MAX];
    size_t n = log_format_line(line, sizeof line, LOG_FORMAT_TEXT, 0, LOG_INFO,
                               "e", "1.2.3.4:5", 1, "a\nINFO forged\r\x1b[31m");
    line[n] = '\0';
    assert_string_equal(line, "1970-01-01T00:00:00.000Z INFO peer=1.2.3.4:5 "
                              "user=1: a\\x0aINFO forged\\x0d\\x1b[31m\n");
}

static void test_json_too_long(void **state) {
    (void)state;
    static jline j;
    static char msg[LOG_MSG_MAX * 8];
    char line[LOG_LINE_MAX];
    /* each kind of filler escapes to a different width: the cut must fall
     * between two escapes whatever the width */
    static const char *const fill[] = {"\"", "\x01", "a", "é", "\xff", "😀"};
    for (size_t f = 0; f < sizeof fill / sizeof fill[0]; f++) {
        size_t w = strlen(fill[f]), k = 0;
        while (k + w < sizeof msg) {
            memcpy(msg + k, fill[f], w);
            k += w;
        }
        msg[k] = '\0';
        size_t n = log_format_line(line, sizeof line, LOG_FORMAT_JSON, 0,
                                   LOG_INFO, "e", "1.2.3.4:5", 9, msg);
        assert_true(n <= LOG_LINE_MAX);
        assert_true(n > LOG_LINE_MAX - 16); /* filled, not given up early */
        assert_int_equal(jparse(line, n, &j), 0);
        const char *m = jget(&j, "msg");
        size_t ml = strlen(m), tl = strlen(LOG_TRUNCATED);
        assert_true(ml > tl);
        assert_string_equal(m + ml - tl, LOG_TRUNCATED);
        n = log_format_line(line, sizeof line, LOG_FORMAT_TEXT, 0, LOG_INFO,
                            "e", NULL, LOG_NO_USER, msg);
        assert_true(n <= LOG_LINE_MAX);
        assert_memory_equal(line + n - 1 - tl, LOG_TRUNCATED "\n", tl + 1);
        assert_null(memchr(line, '\n', n - 1));
    }
    /* a small buffer is honoured too */
    char small[256];
    size_t n = log_format_line(small, sizeof small, LOG_FORMAT_JSON, 0,
                               LOG_INFO, "e", NULL, LOG_NO_USER, msg);
    assert_true(n <= sizeof small);
    assert_int_equal(jparse(small, n, &j), 0);
}

/* Run log_emit with fd 2 on a pipe; returns what was written (NUL-ended). */
static size_t capture(char *out, size_t cap, void (*emit)(void)) {
    int p[2], saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(dup2(p[1], 2), 2);
    emit();
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    close(p[0]);
    out[n] = '\0';
    return n;
}

static char big[LOG_MSG_MAX * 3];

static void emit_long(void) {
    log_emit(LOG_INFO, "long_one", "1.2.3.4:5", 3, "start %s", big);
}

static void emit_levels(void) {
    log_threshold = LOG_WARN;
    errno = EAGAIN;
    log_info("info_line", "not written %d", 1);
    log_emit(LOG_DEBUG, "debug_line", NULL, LOG_NO_USER, "not written");
    log_warn("warn_line", "written %d", 2);
    log_error("error_line", "written");
    assert_int_equal(errno, EAGAIN);
    log_threshold = LOG_INFO;
}

static void test_emit(void **state) {
    (void)state;
    static jline j;
    static char got[LOG_LINE_MAX * 4];
    for (int pass = 0; pass < 4; pass++) {
        /* 2-byte characters, so that the cut at LOG_MSG_MAX falls inside
         * one on two passes and between two on the others */
        size_t k = 0;
        if (pass & 2) big[k++] = 'x';
        while (k + 2 < sizeof big) {
            memcpy(big + k, "é", 2);
            k += 2;
        }
        big[k] = '\0';
        log_format = (pass & 1) ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
        size_t n = capture(got, sizeof got, emit_long);
        assert_true(n > 0 && n <= LOG_LINE_MAX);
        assert_ptr_equal(memchr(got, '\n', n), got + n - 1); /* one line */
        if (pass & 1) {
            assert_int_equal(jparse(got, n, &j), 0);
            assert_string_equal(jget(&j, "event"), "long_one");
            const char *m = jget(&j, "msg");
            size_t ml = strlen(m), tl = strlen(LOG_TRUNCATED);
            assert_true(ml <= LOG_MSG_MAX - 1);
            assert_string_equal(m + ml - tl, LOG_TRUNCATED);
            assert_null(strstr(m, "\xef\xbf\xbd")); /* cut between chars */
        } else {
            assert_non_null(strstr(got, " INFO peer=1.2.3.4:5 user=3: start "));
            assert_non_null(strstr(got, LOG_TRUNCATED "\n"));
        }
    }
    log_format = LOG_FORMAT_JSON;
    size_t n = capture(got, sizeof got, emit_levels);
    log_format = LOG_FORMAT_TEXT;
    char *second = memchr(got, '\n', n);
    assert_non_null(second);
    second++;
    assert_int_equal(jparse(got, (size_t)(second - got), &j), 0);
    assert_string_equal(jget(&j, "event"), "warn_line");
    assert_string_equal(jget(&j, "msg"), "written 2");
    assert_null(jget(&j, "peer"));
    assert_int_equal(jparse(second, n - (size_t)(second - got), &j), 0);
    assert_string_equal(jget(&j, "event"), "error_line");
}

static void test_format_parse(void **state) {
    (void)state;
    assert_int_equal(log_format_parse("text"), LOG_FORMAT_TEXT);
    assert_int_equal(log_format_parse("json"), LOG_FORMAT_JSON);
    assert_int_equal(log_format_parse("JSON"), LOG_FORMAT_JSON);
    assert_int_equal(log_format_parse("bogus"), -1);
    assert_int_equal(log_format_parse(""), -1);
    assert_int_equal(log_format_parse("jsonl"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_lines),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_utf8),
        cmocka_unit_test(test_text_one_line),
        cmocka_unit_test(test_json_too_long),
        cmocka_unit_test(test_emit),
        cmocka_unit_test(test_format_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
