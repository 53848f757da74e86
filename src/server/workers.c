/* workers.c -- see workers.h. */
#include "server/workers.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define HEALTHY_MS 10000   /* a worker up this long resets the backoff */
#define FIRST_FAIL_MS 1000 /* the first round: "failed at start" */

typedef struct worker {
    pid_t pid;          /* 0: not running */
    int64_t started;    /* monotonic ms of its (re)start */
    int64_t restart_at; /* not running: when to start it again (ms) */
    unsigned backoff;   /* its next wait, ms */
} worker;

static int64_t mono_ms(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* (cannot fail on Linux) */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int workers_count(const config *cfg) {
    if (cfg->workers > 0) return cfg->workers;
    cpu_set_t set;
    int n = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n < 1) n = 1;
    return n > WORKERS_MAX ? WORKERS_MAX : n;
}

/* the reserved ports' sockets: the four shared ones, then the workers'
 * metrics ports */
static int held[4 + WORKERS_MAX];
static int nheld;

/* SO_REUSEPORT lets any process of the same user bind a port the workers
 * reserved, a second supervisor too: two groups of chat-server would then
 * split the clients of one port between them, silently. So each reserved
 * address also takes a lock: an abstract unix socket (Linux; per network
 * namespace, gone with the last process holding it, nothing to clean up)
 * named after it, which a second bind refuses with EADDRINUSE. The lock
 * descriptors stay open in the workers too: the lock lives as long as any
 * process of the group serves the port. */
#define LOCK_PREFIX "chat-server-port "
static int locks[4 + WORKERS_MAX];
static int nlocks;

/* Take the lock of bind_addr:port. 0; 1 when another process holds it;
 * -1 with errno. */
static int lock_port(const char *bind_addr, int port) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    /* (sun_path[0] stays 0: the abstract namespace) */
    int k = snprintf(a.sun_path + 1, sizeof a.sun_path - 1,
                     LOCK_PREFIX "%s:%d", bind_addr, port);
    assert(k > 0 && (size_t)k < sizeof a.sun_path - 1); /* (an address) */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&a,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                         (size_t)k))) {
        int e = errno;
        (void)close(fd); /* (never listened: nothing to flush) */
        if (e == EADDRINUSE) return 1;
        errno = e;
        return -1;
    }
    assert(nlocks < (int)(sizeof locks / sizeof locks[0]));
    locks[nlocks++] = fd;
    return 0;
}

/* Bind a SO_REUSEPORT socket to bind:*port and take its lock (lock_port);
 * *port 0 becomes the port the kernel chose. Returns the descriptor (kept
 * bound, never listening), -2 when another chat-server group holds the
 * port, or -1 with errno. */
static int reserve(const char *bind_addr, int *port) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind_addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)*port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, bind_addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)*port);
        len = sizeof *a6;
    } else {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&ss, len) ||
        getsockname(fd, (struct sockaddr *)&ss, &len)) {
        int e = errno;
        (void)close(fd); /* (failed: errno is the cause to report) */
        errno = e;
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
    int l = lock_port(bind_addr, *port);
    if (l) {
        (void)close(fd); /* (bound, never listened) */
        if (l == 1) errno = EADDRINUSE;
        return l == 1 ? -2 : -1;
    }
    return fd;
}

static void close_held(void) {
    for (int i = 0; i < nheld; i++)
        (void)close(held[i]); /* (a bound socket: nothing to flush) */
    nheld = 0;
}

/* Fork worker i: the child returns 1 (go on as worker i), the parent 0;
 * -1 when fork failed. */
static int spawn(worker *w, int i, config *cfg, const sigset_t *old) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close_held();
        /* (restores the mask of before workers_run: cannot fail with a
         * valid set) */
        (void)sigprocmask(SIG_SETMASK, old, NULL);
        cfg->worker = i + 1;
        cfg->workers = 1;
        return 1;
    }
    w->pid = pid;
    w->started = mono_ms();
    return 0;
}

static void signal_all(worker *w, int n, int sig) {
    for (int i = 0; i < n; i++)
        if (w[i].pid > 0)
            (void)kill(w[i].pid, sig); /* (ESRCH: it just died; reaped
                                           by the SIGCHLD that follows) */
}

static int running(const worker *w, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k += w[i].pid > 0;
    return k;
}

static void describe(int status, char *out, size_t cap) {
    if (WIFEXITED(status))
        snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "status %d", status);
}

int workers_metrics_port(const config *cfg) {
    if (cfg->metrics_port < 0) return -1;
    assert(cfg->worker == 0 || cfg->metrics_port > 0); /* (config.c) */
    return cfg->metrics_port + (cfg->worker ? cfg->worker - 1 : 0);
}

static void taken(const char *flag, const char *bind_addr, int port) {
    log_error("workers_port_taken", "--%s: %s:%d is served by another "
              "chat-server with --workers (its processes hold the lock "
              "\"@" LOCK_PREFIX "%s:%d\"); stop it first, or give another "
              "port", flag, bind_addr, port, bind_addr, port);
}

/* --metrics-port M: M .. M+n-1 reserved, one per worker, like the shared
 * ports (so that a taken one stops the start here, naming it, rather than
 * a worker failing over and over). 0, or 1 after the error is logged. */
static int reserve_metrics(const config *cfg, int n) {
    int first = cfg->metrics_port, last = first + n - 1;
    if (first < 0) return 0;
    if (last > 65535) {
        log_error("workers_port_failed", "--metrics-port %d: %d workers "
                  "need the ports %d to %d, past 65535", first, n, first,
                  last);
        return 1;
    }
    /* (the shared ports are known now, auto ones too: none may be among
     * these, or a worker's metrics port would share their connections) */
    const int shared[] = {cfg->port, cfg->tls_port, cfg->http_port,
                          cfg->https_port};
    for (int i = 0; i < 4; i++)
        if (shared[i] >= first && shared[i] <= last) {
            log_error("workers_port_failed", "--metrics-port %d: the "
                      "workers' metrics ports %d to %d include %d, a port "
                      "they share for clients", first, first, last,
                      shared[i]);
            return 1;
        }
    for (int i = 0; i < n; i++) {
        int port = first + i, fd = reserve(cfg->bind, &port);
        if (fd < 0) {
            if (fd == -2)
                taken("metrics-port", cfg->bind, port);
            else
                log_error("workers_port_failed", "--metrics-port: cannot "
                          "bind %s:%d for worker %d's metrics: %s",
                          cfg->bind, first + i, i + 1, strerror(errno));
            return 1;
        }
        held[nheld++] = fd;
    }
    return 0;
}

int workers_run(config *cfg) {
    int n = workers_count(cfg);
    if (n <= 1) return -1; /* (1, or auto on one CPU: a single process) */
    /* The ports: 0 / auto chosen now, the same for every worker. */
    int *ports[] = {&cfg->port, &cfg->tls_port, &cfg->http_port,
                    &cfg->https_port};
    static const char *const names[] = {"port", "tls-port", "http-port",
                                        "https-port"};
    for (int i = 0; i < 4; i++) {
        if (*ports[i] < 0) continue; /* (not listening) */
        int fd = reserve(cfg->bind, ports[i]);
        if (fd < 0) {
            if (fd == -2)
                taken(names[i], cfg->bind, *ports[i]);
            else
                log_error("workers_port_failed", "--%s: cannot bind %s:%d "
                          "for the workers: %s", names[i], cfg->bind,
                          *ports[i], strerror(errno));
            close_held();
            return 1;
        }
        held[nheld++] = fd;
    }
    if (reserve_metrics(cfg, n)) {
        close_held();
        return 1;
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, &old)) {
        log_error("workers_failed", "cannot block signals: %s",
                  strerror(errno));
        close_held();
        return 1;
    }
    static worker w[WORKERS_MAX];
    for (int i = 0; i < n; i++) {
        w[i] = (worker){0, 0, 0, BACKOFF_MIN_MS};
        int r = spawn(&w[i], i, cfg, &old);
        if (r == 1) return -1; /* (a worker) */
        if (r < 0) {
            log_error("workers_failed", "cannot start worker %d: %s", i + 1,
                      strerror(errno));
            signal_all(w, n, SIGTERM);
            break;
        }
    }
    char metrics[96] = "";
    if (cfg->metrics_port > 0)
        snprintf(metrics, sizeof metrics, "; /metrics of worker 1 to %d on "
                 "ports %d to %d", n, cfg->metrics_port,
                 cfg->metrics_port + n - 1);
    log_info("workers_started",
             "supervisor %ld: %d workers sharing port %d%s (each a node of "
             "the cluster)%s", (long)getpid(), running(w, n), cfg->port,
             cfg->http_port >= 0 ? " and the HTTP ports" : "", metrics);
    int stopping = running(w, n) < n, killed = 0, ever_up = 0;
    int64_t stop_deadline = 0, t0 = mono_ms();
    if (stopping) stop_deadline = t0 + (int64_t)WORKERS_STOP_S * 1000;
    for (;;) {
        int64_t now = mono_ms(), wake = now + 1000;
        /* (re)start the workers whose wait is over */
        for (int i = 0; i < n && !stopping; i++) {
            if (w[i].pid > 0) continue;
            if (w[i].restart_at <= now) {
                int r = spawn(&w[i], i, cfg, &old);
                if (r == 1) return -1;
                if (r < 0) {
                    log_error("worker_restart_failed",
                              "cannot restart worker %d: %s", i + 1,
                              strerror(errno));
                    w[i].restart_at = now + w[i].backoff;
                } else {
                    log_info("worker_restarted", "worker %d restarted "
                             "(pid %ld)", i + 1, (long)w[i].pid);
                }
            }
            if (w[i].pid == 0 && w[i].restart_at < wake)
                wake = w[i].restart_at;
        }
        if (stopping && now >= stop_deadline && running(w, n)) {
            log_warn("workers_killed", "%d worker(s) did not stop within %d "
                     "s: killed", running(w, n), WORKERS_STOP_S);
            signal_all(w, n, SIGKILL);
            killed = 1;
            stop_deadline = now + INT64_C(3600000); /* (reaped below) */
        }
        if (stopping && stop_deadline < wake) wake = stop_deadline;
        int64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = {(time_t)(wait / 1000),
                              (long)(wait % 1000) * 1000000};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                log_info("workers_stopping", "%s: stopping %d worker(s)",
                         sig == SIGTERM ? "SIGTERM" : "SIGINT",
                         running(w, n));
                stopping = 1;
                stop_deadline = mono_ms() + (int64_t)WORKERS_STOP_S * 1000;
            }
            signal_all(w, n, sig);
        } else if (sig == SIGHUP) {
            signal_all(w, n, SIGHUP);
        }
        /* reap (SIGCHLD, or a wake-up: never miss one) */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            int i = 0;
            while (i < n && w[i].pid != pid) i++;
            if (i == n) continue; /* (not ours) */
            now = mono_ms();
            int64_t up = now - w[i].started;
            w[i].pid = 0;
            if (stopping) continue;
            char how[96];
            describe(status, how, sizeof how);
            if (up >= HEALTHY_MS) w[i].backoff = BACKOFF_MIN_MS;
            if (up >= FIRST_FAIL_MS) ever_up = 1;
            if (!ever_up && now - t0 < 2 * (int64_t)FIRST_FAIL_MS &&
                running(w, n) == 0) {
                log_error("workers_failed_at_start",
                          "every worker stopped within a second of its "
                          "start (the last: %s; their log lines say why): "
                          "giving up", how);
                close_held();
                return 1;
            }
            log_warn("worker_exited", "worker %d (pid %ld) ended after %lld "
                     "ms: %s; restarting in %u ms", i + 1, (long)pid,
                     (long long)up, how, w[i].backoff);
            w[i].restart_at = now + w[i].backoff;
            w[i].backoff = w[i].backoff * 2 > BACKOFF_MAX_MS
                               ? BACKOFF_MAX_MS : w[i].backoff * 2;
        }
        if (stopping && running(w, n) == 0) break;
    }
    close_held();
    log_info("workers_stopped", "every worker stopped");
    return killed ? 1 : 0;
}
