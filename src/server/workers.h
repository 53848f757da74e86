/*
 * workers.h -- --workers N: N processes of the server on one host, sharing
 * its ports (docs/CLUSTER.md 6.3).
 *
 * The process that starts becomes a supervisor: it chooses the ports asked
 * as 0 or auto (a socket bound with SO_REUSEPORT on each, kept bound and
 * never listening for as long as it runs, so that the port stays ours),
 * then forks N workers. Each worker returns from workers_run and starts as
 * a single server would, its listeners opened with SO_REUSEPORT (set on
 * the socket, then uv_tcp_open: libuv 1.44 has no flag for it) on those
 * ports, so the kernel spreads new connections over the workers. Each
 * worker is a node of the cluster (--cluster is required: config.c).
 * With --metrics-port M, worker K (1..N) listens for /metrics alone on
 * M + K - 1 (workers_metrics_port), reserved the same way: one Prometheus
 * target per worker, where the shared HTTP port reaches any of them.
 *
 * The supervisor restarts a worker that died (after 100 ms, doubling to
 * 5 s while they keep dying within 10 s of their start), passes SIGTERM,
 * SIGINT and SIGHUP on to every worker, and exits when all have stopped
 * after a SIGTERM or SIGINT: 0, or 1 when a worker had to be killed (it
 * did not stop within WORKERS_STOP_S). When every worker of the first
 * round fails within a second (Redis unreachable, a port taken), it stops
 * and exits 1: the workers' own log lines say why.
 *
 * Threads: the main thread, before any loop or thread exists (fork).
 */
#ifndef CHAT_SERVER_WORKERS_H
#define CHAT_SERVER_WORKERS_H

#include "server/config.h"

#define WORKERS_MAX 256
#define WORKERS_STOP_S 30  /* after SIGTERM: then SIGKILL */

/* Returns -1 in a worker (and in a single process: --workers 1, or auto on
 * one CPU), which goes on starting with cfg->worker set (1..N, or 0 for a
 * single process) and its ports chosen; or, in the supervisor, the exit
 * status once every worker stopped. */
int workers_run(config *cfg);

/* The port of this process's --metrics-port listener, or -1 for none:
 * --metrics-port itself in a single process (0: any free port), that +
 * K - 1 in worker K (each worker is its own scrape target; the supervisor
 * reserves them all, as it does the shared ports). */
int workers_metrics_port(const config *cfg);

/* The number of workers cfg asks for (auto: the CPUs this process may run
 * on, sched_getaffinity; at least 1, at most WORKERS_MAX). */
int workers_count(const config *cfg);

#endif
