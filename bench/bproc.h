/*
 * bproc.h -- what chat-bench reads of processes: a server's resident
 * memory and CPU time (from /proc, by pid), its own CPU time, and its
 * descriptor limit. Each call opens and reads one small file (or makes one
 * system call); they run a few times per measurement, never per message.
 */
#ifndef CHAT_BENCH_BPROC_H
#define CHAT_BENCH_BPROC_H

/* Resident memory of process pid in KiB (VmRSS); -1 if unknown. */
long bproc_rss_kib(int pid);

/* CPU seconds (user + system, all threads) process pid has used; -1 if
 * unknown. */
double bproc_cpu_secs(int pid);

/* CPU seconds this process has used, all and in the kernel (*sys); -1 if
 * unknown. */
double bproc_cpu_self(double *sys);

/* The machine's CPU time so far (all CPUs, /proc/stat's "cpu" line, in
 * clock ticks): *total, and *steal, the part the hypervisor ran something
 * else on our virtual CPUs. 0, or -1 if unknown. A measurement with much
 * stolen time is noise, whatever it shows. */
int bproc_steal(unsigned long long *steal, unsigned long long *total);

/* Raise the soft descriptor limit to the hard one; 0 if `need` fit, -1
 * otherwise. *have: the limit that holds. */
int bproc_raise_nofile(unsigned long need, unsigned long *have);

#endif
