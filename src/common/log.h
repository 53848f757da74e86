/*
 * log.h -- one-line, levelled, timestamped log to stderr for the server and
 * the tools. Libraries (src/proto, src/client) never log: they return errors.
 *
 * Line format: "2026-11-24T20:45:00.123Z INFO message". Not thread-safe
 * beyond what stdio gives (each line is one fprintf, so lines from several
 * threads do not interleave within a line).
 */
#ifndef CHAT_COMMON_LOG_H
#define CHAT_COMMON_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Messages above this level are dropped. Default LOG_INFO. */
extern int log_threshold;

/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  do { if (log_enabled(LOG_WARN))  log_msg(LOG_WARN, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_enabled(LOG_INFO))  log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
