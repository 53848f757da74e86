/*
 * log.h -- one-line, levelled, timestamped log to stderr for the server and
 * the tools (under systemd, stderr goes to the journal). Libraries
 * (src/proto, src/client) never log: they return errors.
 *
 * Every line names its event: a short, stable snake_case name of what
 * happened ("listening", "conn_refused", "store_txn_failed"), one name per
 * meaning, listed with its level and fields in docs/OPERATIONS.md
 * ("Log events"). Scripts match the event, people read the sentence.
 *
 * Two formats (log_format; it and log_threshold are set at the start and
 * by a reload (SIGHUP) on the loop thread, and read by every thread, hence
 * atomic; a line written during a reload may use the old value):
 *   text: "2026-11-24T20:45:00.123Z INFO peer=1.2.3.4:5 user=7: message"
 *         (the "peer=... user=...: " part only on connection lines; the
 *         event is not printed, the sentence says it)
 *   json: {"time":"2026-11-24T20:45:00.123Z","level":"info",
 *          "event":"logged_in","peer":"1.2.3.4:5","user":7,"msg":"logged in"}
 *         keys always in this order; "peer" on connection lines, "user" when
 *         the connection is bound to one; every line is valid JSON (control
 *         bytes escaped, invalid UTF-8 replaced by U+FFFD).
 *
 * Each line is built in a bounded buffer and written with one write(2) of
 * at most LOG_LINE_MAX (<= PIPE_BUF) bytes, so lines of the loop thread and
 * the store thread never interleave, even into a pipe. A message longer than
 * LOG_MSG_MAX, or a line past LOG_LINE_MAX once escaped, is cut at a
 * character boundary and ends in LOG_TRUNCATED; the line stays whole.
 *
 * Cost: the level macros test log_threshold before evaluating their
 * arguments, so a disabled level costs one compare. Nothing is logged per
 * frame at info or above: a frame's log lines are debug, or once per
 * connection ("logged once per connection"), once per failure streak, or
 * rate limited (log_limit); keep it so (docs/OPERATIONS.md;
 * tests/integration/test_logs.py counts the lines of a run of frames). The
 * exception is an out-of-memory error that loses one message's delete,
 * cursor or mark (store_oom_*): rare, and each names what it lost.
 */
#ifndef CHAT_COMMON_LOG_H
#define CHAT_COMMON_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format_id { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

/* Longest message (the formatted sentence) and longest line, in bytes. */
#define LOG_MSG_MAX 1024
#define LOG_LINE_MAX 4096
#define LOG_TRUNCATED " [truncated]"

/* Messages above this level are dropped. Default LOG_INFO. */
extern _Atomic int log_threshold;
/* LOG_FORMAT_TEXT (default) or LOG_FORMAT_JSON. */
extern _Atomic int log_format;

/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);
/* Parse "text" or "json"; -1 when unknown. */
int log_format_parse(const char *s);

/* user for lines that are not about a connection's user at all (no
 * "user=" in text); 0 is a connection not bound yet (text "user=0", no
 * "user" key in JSON). */
#define LOG_NO_USER (-1LL)

/* One log line: event (a literal), peer ("ip:port" or NULL), user (a user
 * id, 0 or LOG_NO_USER), then the sentence. Checks the level itself, but
 * the macros below check it first so that arguments are not evaluated. */
void log_emit(int level, const char *event, const char *peer, long long user,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* One line, as log_emit writes it, into buf (cap >= 256 bytes; at most
 * LOG_LINE_MAX are used), ending in '\n'; returns its length. time_ms is
 * milliseconds since the epoch. Pure, for the unit tests. */
size_t log_format_line(char *buf, size_t cap, int format, long long time_ms,
                       int level, const char *event, const char *peer,
                       long long user, const char *msg);

/* At most one line a second for one kind of event (a flood of refusals
 * must not flood the log): log_limit_pass says whether to log now, and
 * *quiet how many were not logged since the last line. Zero-initialise. */
typedef struct log_limit {
    unsigned long long last_ms; /* 0: never logged */
    unsigned long long quiet;
} log_limit;

static inline int log_limit_pass(log_limit *l, unsigned long long now_ms,
                                 unsigned long long *quiet) {
    if (l->last_ms && now_ms - l->last_ms < 1000) {
        l->quiet++;
        return 0;
    }
    *quiet = l->quiet;
    l->quiet = 0;
    l->last_ms = now_ms ? now_ms : 1;
    return 1;
}

#define log_enabled(l) ((l) <= log_threshold)
/* log_<level>("event", fmt, ...): a line not about one connection. The
 * level is evaluated twice: give it no side effects. */
#define log_at(level, event, ...)                                             \
    do {                                                                      \
        if (log_enabled(level))                                               \
            log_emit(level, event, NULL, LOG_NO_USER, __VA_ARGS__);           \
    } while (0)
#define log_error(event, ...) log_at(LOG_ERROR, event, __VA_ARGS__)
#define log_warn(event, ...)  log_at(LOG_WARN, event, __VA_ARGS__)
#define log_info(event, ...)  log_at(LOG_INFO, event, __VA_ARGS__)
#define log_debug(event, ...) log_at(LOG_DEBUG, event, __VA_ARGS__)
/* A line about a peer that has no connection state yet (refused at
 * accept). Connections log with CLOG (server/conn.h): peer and user. */
#define log_peer(level, event, peer, ...)                                     \
    do {                                                                      \
        if (log_enabled(level))                                               \
            log_emit(level, event, peer, LOG_NO_USER, __VA_ARGS__);           \
    } while (0)

#endif
