#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

int log_threshold = LOG_INFO;

static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return LOG_WARN;
    return -1;
}

const char *log_level_name(int level) {
    return level >= 0 && level < 4 ? names[level] : "?";
}

void log_msg(int level, const char *fmt, ...) {
    if (level > log_threshold) return;
    char line[1024];
    struct timeval tv = {0, 0};
    struct tm tm;
    (void)gettimeofday(&tv, NULL); /* cannot fail with a valid pointer */
    size_t n = gmtime_r(&tv.tv_sec, &tm)
                   ? strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm)
                   : 0;
    if (n == 0) { /* a clock past year 2^31: keep the line's shape */
        memcpy(line, "0000-00-00T00:00:00", 19);
        n = 19;
    }
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03dZ %s ",
                          (int)(tv.tv_usec / 1000), log_level_name(level));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2) n = sizeof line - 2; /* truncated */
    line[n++] = '\n';
    /* (void): a line that stderr refuses has nowhere else to go */
    (void)fwrite(line, 1, n, stderr);
}
