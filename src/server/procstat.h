/*
 * procstat.h -- the standard process metrics of Prometheus' client
 * libraries, read from /proc at scrape time (the only system calls of the
 * metrics: open, read, getdents, close; none on the hot path):
 *
 *   process_cpu_seconds_total       counter  user + system CPU time
 *   process_resident_memory_bytes   gauge    resident set size
 *   process_virtual_memory_bytes    gauge    virtual memory size
 *   process_open_fds                gauge    open file descriptors
 *   process_max_fds                 gauge    the soft RLIMIT_NOFILE
 *   process_start_time_seconds      gauge    start, seconds since the epoch
 *
 * Sources: <proc>/self/stat (utime, stime, starttime, vsize, rss: proc(5)),
 * <proc>/self/fd, <proc>/self/limits, and btime of <proc>/stat, where
 * <proc> is "/proc" in the server and a directory of fake files in tests.
 * A metric that cannot be read (missing file, unexpected content) is left
 * out; nothing here logs, keeps memory past the call (opendir's and
 * fopen's are freed before it returns) or crashes on odd input.
 */
#ifndef CHAT_SERVER_PROCSTAT_H
#define CHAT_SERVER_PROCSTAT_H

#include <stdint.h>

#include "metrics.h"

/* Bits of procstat.have: which metrics were read. */
enum {
    PROCSTAT_CPU = 1 << 0,
    PROCSTAT_RSS = 1 << 1,
    PROCSTAT_VSIZE = 1 << 2,
    PROCSTAT_FDS = 1 << 3,
    PROCSTAT_MAXFDS = 1 << 4,
    PROCSTAT_START = 1 << 5,
    PROCSTAT_ALL = (1 << 6) - 1
};

typedef struct procstat {
    unsigned have; /* PROCSTAT_* bits: the fields below that are valid */
    double cpu_seconds;
    uint64_t rss_bytes;
    uint64_t vsize_bytes;
    uint64_t open_fds; /* not counting the one used to count them */
    uint64_t max_fds;
    double start_time; /* seconds since the epoch */
} procstat;

/* Fill ps from the files under proc ("/proc"). Returns 0 when every metric
 * was read, else a negative errno of the first failure (-ENOENT, -EACCES
 * ...; -EINVAL for content that does not parse), ps->have saying which
 * were read. The files are read into a 4 KiB stack buffer (the lines
 * wanted are within their first 4 KiB, /proc/stat streamed line by line). */
int procstat_read(procstat *ps, const char *proc);

/* The families and samples of the metrics in ps->have into o (the others
 * left out). */
void procstat_render(metrics_out *o, const procstat *ps);

#endif
