/* bproc.c -- see bproc.h. */
#include "bproc.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

long bproc_rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    (void)fclose(f); /* read-only: nothing to lose */
    return kib;
}

double bproc_cpu_secs(int pid) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *ok = fgets(line, sizeof line, f);
    (void)fclose(f); /* read-only: nothing to lose */
    char *p = ok ? strrchr(line, ')') : NULL; /* the name may hold spaces */
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bproc_cpu_self(double *sys) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return *sys = -1;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + *sys;
}

int bproc_steal(unsigned long long *steal, unsigned long long *total) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    /* cpu user nice system idle iowait irq softirq steal [guest ...]:
     * guest time is counted in user already */
    unsigned long long v[8];
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    (void)fclose(f); /* (read-only) */
    if (n != 8) return -1;
    *total = 0;
    for (int i = 0; i < 8; i++) *total += v[i];
    *steal = v[7];
    return 0;
}

int bproc_raise_nofile(unsigned long need, unsigned long *have) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        /* if refused, the limit read back below is the one that holds */
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        if (getrlimit(RLIMIT_NOFILE, &rl)) return -1;
    }
    *have = (unsigned long)rl.rlim_cur;
    return need <= *have ? 0 : -1;
}
