/*
 * procstat.c -- the standard process metrics from /proc (procstat.h).
 * Formats: proc(5): /proc/[pid]/stat (fields 14 utime, 15 stime, 22
 * starttime in clock ticks, 23 vsize in bytes, 24 rss in pages),
 * /proc/[pid]/limits ("Max open files  <soft>  <hard>  files"), /proc/stat
 * ("btime <seconds since the epoch>").
 */
#include "procstat.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The size of the read buffers: /proc/self/stat is under 1 KiB, limits
 * about 1.4 KiB, and a line of /proc/stat longer than this (intr) is
 * skipped in pieces. */
#define PROCSTAT_BUF 4096

/* "<proc>/<rel>" into out (PATH_MAX-free: 512 bytes). 0 or -ENAMETOOLONG. */
static int path_of(char out[512], const char *proc, const char *rel) {
    int n = snprintf(out, 512, "%s/%s", proc, rel);
    return n < 0 || n >= 512 ? -ENAMETOOLONG : 0;
}

/* The start of the file (at most cap - 1 bytes), NUL-terminated. Returns
 * the length or a negative errno. */
static long read_file(const char *proc, const char *rel, char *out,
                      size_t cap) {
    char path[512];
    int r = path_of(path, proc, rel);
    if (r) return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = read(fd, out + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            (void)close(fd); /* read-only: nothing to lose */
            return -e;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    (void)close(fd); /* read-only: nothing to lose */
    out[len] = '\0';
    return (long)len;
}

/* A decimal number after optional spaces at *p; *p moves past it. 0, or
 * -EINVAL (no digit, overflow). */
static int parse_u64(const char **p, uint64_t *out) {
    const char *s = *p;
    while (*s == ' ' || *s == '\t') s++;
    if (*s < '0' || *s > '9') return -EINVAL;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    *p = s;
    return 0;
}

/* Skip one space-separated field at *p. */
static void skip_field(const char **p) {
    const char *s = *p;
    while (*s == ' ') s++;
    while (*s && *s != ' ' && *s != '\n') s++;
    *p = s;
}

static long clock_ticks(void) {
    long t = sysconf(_SC_CLK_TCK);
    return t > 0 ? t : -1;
}

/* utime, stime, starttime (ticks), vsize, rss (pages) from self/stat. The
 * command name (field 2) is in parentheses and may hold spaces and ')':
 * the fields that follow start after the last ')'. */
static int read_stat(const char *proc, procstat *ps, uint64_t *starttime) {
    char text[PROCSTAT_BUF];
    long n = read_file(proc, "self/stat", text, sizeof text);
    if (n < 0) return (int)n;
    const char *p = strrchr(text, ')');
    if (!p) return -EINVAL;
    p++;
    /* Fields 3 (state) to 13 go by; then 14 utime, 15 stime. */
    for (int f = 3; f <= 13; f++) skip_field(&p);
    uint64_t utime, stime, vsize, rss;
    if (parse_u64(&p, &utime) || parse_u64(&p, &stime)) return -EINVAL;
    for (int f = 16; f <= 21; f++) skip_field(&p);
    if (parse_u64(&p, starttime) || parse_u64(&p, &vsize) ||
        parse_u64(&p, &rss))
        return -EINVAL;
    long ticks = clock_ticks(), page = sysconf(_SC_PAGESIZE);
    if (ticks > 0) {
        ps->cpu_seconds = (double)(utime + stime) / (double)ticks;
        ps->have |= PROCSTAT_CPU;
    }
    ps->vsize_bytes = vsize;
    ps->have |= PROCSTAT_VSIZE;
    if (page > 0) {
        ps->rss_bytes = rss * (uint64_t)page;
        ps->have |= PROCSTAT_RSS;
    }
    return ticks > 0 && page > 0 ? 0 : -EINVAL;
}

/* btime (seconds since the epoch) from <proc>/stat, read line by line: a
 * piece of a long line is a line's start only after a newline. */
static int read_btime(const char *proc, uint64_t *btime) {
    char path[512], line[256];
    int r = path_of(path, proc, "stat");
    if (r) return r;
    FILE *f = fopen(path, "re");
    if (!f) return -errno;
    int at_start = 1;
    r = -EINVAL;
    while (fgets(line, sizeof line, f)) {
        const char *p = line + 5;
        if (at_start && !strncmp(line, "btime", 5) && (*p == ' ') &&
            parse_u64(&p, btime) == 0) {
            r = 0;
            break;
        }
        at_start = strchr(line, '\n') != NULL;
    }
    (void)fclose(f); /* read-only: nothing to lose */
    return r;
}

/* The soft limit of "Max open files" in self/limits. */
static int read_max_fds(const char *proc, uint64_t *max) {
    char text[PROCSTAT_BUF];
    long n = read_file(proc, "self/limits", text, sizeof text);
    if (n < 0) return (int)n;
    static const char key[] = "\nMax open files";
    const char *p = strstr(text, key);
    if (!p) return -EINVAL;
    p += sizeof key - 1;
    return parse_u64(&p, max); /* "unlimited": -EINVAL, left out */
}

/* The entries of self/fd, less the one of the directory being read. */
static int count_fds(const char *proc, uint64_t *count) {
    char path[512];
    int r = path_of(path, proc, "self/fd");
    if (r) return r;
    DIR *d = opendir(path);
    if (!d) return -errno;
    int own = dirfd(d);
    uint64_t n = 0;
    const struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        uint64_t fd;
        if (s[0] == '.') continue;
        if (parse_u64(&s, &fd) == 0 && *s == '\0' && own >= 0 &&
            fd == (uint64_t)own)
            continue;
        n++;
    }
    r = errno ? -errno : 0;
    (void)closedir(d); /* read-only: nothing to lose */
    if (r) return r;
    *count = n;
    return 0;
}

/* Keep the first failure. */
static void note(int *first, int r) {
    if (r && !*first) *first = r;
}

int procstat_read(procstat *ps, const char *proc) {
    memset(ps, 0, sizeof *ps);
    int first = 0;
    uint64_t starttime = 0, btime = 0;
    int r = read_stat(proc, ps, &starttime);
    note(&first, r);
    long ticks = clock_ticks();
    if (r == 0 && ticks > 0) { /* read_stat checked ticks too */
        r = read_btime(proc, &btime);
        note(&first, r);
        if (r == 0) {
            ps->start_time = (double)btime + (double)starttime / (double)ticks;
            ps->have |= PROCSTAT_START;
        }
    }
    r = count_fds(proc, &ps->open_fds);
    note(&first, r);
    if (r == 0) ps->have |= PROCSTAT_FDS;
    r = read_max_fds(proc, &ps->max_fds);
    note(&first, r);
    if (r == 0) ps->have |= PROCSTAT_MAXFDS;
    assert(first != 0 || ps->have == PROCSTAT_ALL);
    return first;
}

void procstat_render(metrics_out *o, const procstat *ps) {
    static const struct {
        unsigned bit;
        const char *name;
        metrics_type type;
        const char *help;
    } fam[] = {{PROCSTAT_CPU, "process_cpu_seconds_total", METRICS_COUNTER,
                "CPU time used by the process (user and system), in seconds."},
               {PROCSTAT_RSS, "process_resident_memory_bytes", METRICS_GAUGE,
                "Resident set size of the process, in bytes."},
               {PROCSTAT_VSIZE, "process_virtual_memory_bytes", METRICS_GAUGE,
                "Virtual memory size of the process, in bytes."},
               {PROCSTAT_FDS, "process_open_fds", METRICS_GAUGE,
                "File descriptors the process has open."},
               {PROCSTAT_MAXFDS, "process_max_fds", METRICS_GAUGE,
                "Most file descriptors the process may open (soft limit)."},
               {PROCSTAT_START, "process_start_time_seconds", METRICS_GAUGE,
                "When the process started, in seconds since the Unix epoch."}};
    /* The integers as doubles: exact below 2^53 (8 PiB), printed as
     * integers by metrics_f64. */
    const double v[] = {ps->cpu_seconds,         (double)ps->rss_bytes,
                        (double)ps->vsize_bytes, (double)ps->open_fds,
                        (double)ps->max_fds,     ps->start_time};
    _Static_assert(sizeof v / sizeof v[0] == sizeof fam / sizeof fam[0],
                   "one value per family");
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        if (!(ps->have & fam[i].bit)) continue;
        metrics_family(o, fam[i].name, fam[i].type, fam[i].help);
        metrics_f64(o, fam[i].name, NULL, v[i]);
    }
}
