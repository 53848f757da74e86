/*
 * log.c -- the log line: formatted into a bounded buffer, then one write(2)
 * to stderr (log.h says why and what the formats are).
 *
 * Invariants of a line built here: it ends in exactly one '\n' and holds no
 * other byte below 0x20; it is at most LOG_LINE_MAX bytes; in JSON it is one
 * object whose strings hold only valid UTF-8 and escapes, whatever bytes the
 * message had, and a cut never falls inside an escape or a character.
 */
#include "log.h"
#include "jsonesc.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* one write(2) of a whole line is atomic on a pipe only up to PIPE_BUF */
_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a log line must fit PIPE_BUF");
_Static_assert(LOG_MSG_MAX < LOG_LINE_MAX, "a message must fit a line");

_Atomic int log_threshold = LOG_INFO;
_Atomic int log_format = LOG_FORMAT_TEXT;

static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const json_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return LOG_WARN;
    return -1;
}

const char *log_level_name(int level) {
    return level >= 0 && level < 4 ? names[level] : "?";
}

int log_format_parse(const char *s) {
    if (strcasecmp(s, "text") == 0) return LOG_FORMAT_TEXT;
    if (strcasecmp(s, "json") == 0) return LOG_FORMAT_JSON;
    return -1;
}

/* The line being built: never more than lim bytes are written, and lim
 * leaves room for what closes the line (log_format_line). */
typedef struct out {
    char *b;
    size_t n, lim;
    int cut; /* something did not fit */
} out;

static void put(out *o, const char *s, size_t n) {
    if (o->cut || n > o->lim - o->n) {
        o->cut = 1; /* all or nothing: never half an escape */
        return;
    }
    memcpy(o->b + o->n, s, n);
    o->n += n;
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* s as the inside of a JSON string (json: src/common/jsonesc.h) or as text
 * with control bytes and DEL shown as \xHH (text: a newline in a message
 * must not forge a line). One character or escape at a time, so a cut
 * falls between two of them. */
static void put_str(out *o, const char *str, int json) {
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    char esc[8];
    for (size_t i = 0; i < n && !o->cut;) {
        unsigned char c = s[i];
        const char *e = NULL;
        if (json && c < 0x80) {
            e = json_esc_ascii(c, esc);
        } else if (!json && (c < 0x20 || c == 0x7F)) {
            /* (void): 4 characters into 8 bytes, cannot be cut */
            (void)snprintf(esc, sizeof esc, "\\x%02x", (unsigned)c);
            e = esc;
        }
        if (e) {
            puts_(o, e);
            i++;
        } else if (c < 0x80 || !json) {
            put(o, (const char *)s + i, 1);
            i++;
        } else {
            size_t skip = 1, len = utf8_seq(s + i, n - i, &skip);
            if (len) {
                put(o, (const char *)s + i, len);
                i += len;
            } else { /* a maximal invalid subpart: one replacement */
                puts_(o, "\\ufffd");
                i += skip;
            }
        }
    }
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" into t (at least 32 bytes). */
static void format_time(char *t, size_t cap, long long ms) {
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    size_t n = gmtime_r(&sec, &tm) ? strftime(t, cap, "%Y-%m-%dT%H:%M:%S", &tm)
                                   : 0;
    if (n == 0) { /* a clock past year 2^31: keep the line's shape */
        memcpy(t, "0000-00-00T00:00:00", 20);
        n = 19;
    }
    /* (void): 6 characters after at most 19, into 32 bytes */
    (void)snprintf(t + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

size_t log_format_line(char *buf, size_t cap, int format, long long time_ms,
                       int level, const char *event, const char *peer,
                       long long user, const char *msg) {
    int json = format == LOG_FORMAT_JSON;
    const char *close = json ? "\"}\n" : "\n";
    size_t tail = strlen(LOG_TRUNCATED) + strlen(close);
    if (cap > LOG_LINE_MAX) cap = LOG_LINE_MAX;
    out o = {buf, 0, cap - tail, 0};
    char t[32], num[32];
    format_time(t, sizeof t, time_ms);
    if (level < 0 || level > 3) level = LOG_ERROR;
    if (json) {
        puts_(&o, "{\"time\":\"");
        puts_(&o, t);
        puts_(&o, "\",\"level\":\"");
        puts_(&o, json_names[level]);
        puts_(&o, "\",\"event\":\"");
        put_str(&o, event ? event : "", 1);
        puts_(&o, "\"");
        if (peer) {
            puts_(&o, ",\"peer\":\"");
            put_str(&o, peer, 1);
            puts_(&o, "\"");
        }
        if (user > 0) {
            /* (void): a long long fits 32 bytes */
            (void)snprintf(num, sizeof num, ",\"user\":%lld", user);
            puts_(&o, num);
        }
        puts_(&o, ",\"msg\":\"");
    } else {
        puts_(&o, t);
        puts_(&o, " ");
        puts_(&o, names[level]);
        puts_(&o, " ");
        if (peer) {
            puts_(&o, "peer=");
            put_str(&o, peer, 0);
            if (user >= 0) {
                (void)snprintf(num, sizeof num, " user=%lld", user); /* fits */
                puts_(&o, num);
            }
            puts_(&o, ": ");
        }
    }
    put_str(&o, msg ? msg : "", json);
    /* the tail was kept free for these two */
    o.lim = cap;
    if (o.cut) {
        o.cut = 0;
        puts_(&o, LOG_TRUNCATED);
    }
    puts_(&o, close);
    return o.n;
}

/* Cut a message that vsnprintf truncated at a character boundary (not in
 * the middle of a UTF-8 sequence) and mark it. */
static void mark_truncated(char *msg, size_t cap) {
    size_t keep = cap - 1 - strlen(LOG_TRUNCATED);
    size_t i = keep;
    /* back over continuation bytes to the lead byte, and drop it too if its
     * sequence does not end before keep */
    while (i > 0 && ((unsigned char)msg[i] & 0xC0) == 0x80) i--;
    if ((unsigned char)msg[i] >= 0xC0) keep = i;
    memcpy(msg + keep, LOG_TRUNCATED, strlen(LOG_TRUNCATED) + 1);
}

void log_emit(int level, const char *event, const char *peer, long long user,
              const char *fmt, ...) {
    if (level > log_threshold) return;
    int saved = errno; /* callers may log between a call and reading errno */
    char msg[LOG_MSG_MAX], line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0) msg[0] = '\0';
    else if ((size_t)m >= sizeof msg) mark_truncated(msg, sizeof msg);
    struct timeval tv = {0, 0};
    (void)gettimeofday(&tv, NULL); /* cannot fail with a valid pointer */
    long long ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    size_t n = log_format_line(line, sizeof line, log_format, ms, level, event,
                               peer, user, msg);
    /* One write: a line of at most PIPE_BUF bytes is atomic on a pipe, and
     * O_APPEND files and the journal's socket take it whole too. A line
     * that stderr refuses has nowhere else to go, so errors are dropped;
     * only an interrupted or partial write is continued. */
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(STDERR_FILENO, line + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    errno = saved;
}
