/* redisfix.c -- see redisfix.h. */
#include "redisfix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

__attribute__((format(printf, 2, 3)))
static int fail(redisfix *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(f->err, sizeof f->err, fmt, ap);
    va_end(ap);
    return -1;
}

const char *redisfix_path(const redisfix *f, const char *name, char *out,
                          size_t cap) {
    (void)snprintf(out, cap, "%s/%s", f->dir, name);
    return out;
}

int redisfix_certs(redisfix *f, redisfix_tls *t) {
    (void)redisfix_path(f, "ca.pem", t->ca, sizeof t->ca);
    (void)redisfix_path(f, "other.pem", t->other, sizeof t->other);
    (void)redisfix_path(f, "srv.pem", t->cert, sizeof t->cert);
    (void)redisfix_path(f, "srv.key", t->key, sizeof t->key);
    char cmd[2048];
    (void)snprintf(cmd, sizeof cmd,
        "cd '%s' && E='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes' && "
        "openssl req -x509 $E -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca && "
        "openssl req -x509 $E -keyout other.key -out other.pem -days 2 -subj /CN=other-ca && "
        "openssl req $E -keyout srv.key -out srv.csr -subj /CN=localhost && "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out srv.pem -days 2 -extfile ext.cnf", f->dir);
    char full[2200];
    (void)snprintf(full, sizeof full, "(%s) >/dev/null 2>&1", cmd);
    if (system(full) != 0) return fail(f, "openssl(1) could not make certificates");
    return 0;
}

int redisfix_init(redisfix *f) {
    memset(f, 0, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    (void)snprintf(f->dir, sizeof f->dir, "%s/redisfix-XXXXXX",
                   tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return fail(f, "mkdtemp %s: %s", f->dir, strerror(errno));
    return 0;
}

/* A port the kernel just gave on 127.0.0.1 (free a moment ago). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static long long now_ms(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* redis-server's path: found before fork, so the child only execs. */
static int find_server(char *out, size_t cap) {
    const char *path = getenv("PATH");
    char dirs[4096];
    (void)snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        (void)snprintf(out, cap, "%s/redis-server", d);
        if (access(out, X_OK) == 0) return 0;
    }
    return -1;
}

static int spawn(redisfix *f, off_t *log_at) {
    char exe[512], portarg[16], logf[256];
    if (find_server(exe, sizeof exe))
        return fail(f, "redis-server not found in PATH (Debian package "
                    "redis-server: scripts/deps.sh test)");
    redisfix_path(f, "redis.log", logf, sizeof logf);
    struct stat st;
    *log_at = stat(logf, &st) == 0 ? st.st_size : 0;
    (void)snprintf(portarg, sizeof portarg, "%d", f->port);
    const char *argv[64];
    int n = 0;
    argv[n++] = exe;
    if (f->o.tls_cert) {
        argv[n++] = "--port";
        argv[n++] = "0";
        argv[n++] = "--tls-port";
        argv[n++] = portarg;
        argv[n++] = "--tls-cert-file";
        argv[n++] = f->o.tls_cert;
        argv[n++] = "--tls-key-file";
        argv[n++] = f->o.tls_key;
        argv[n++] = "--tls-ca-cert-file";
        argv[n++] = f->o.tls_ca;
        argv[n++] = "--tls-auth-clients";
        argv[n++] = "no";
    } else {
        argv[n++] = "--port";
        argv[n++] = portarg;
    }
    const char *fixed[] = {"--bind", "127.0.0.1", "--dir", f->dir, "--save",
                           "", "--appendonly", "yes", "--appendfsync",
                           "always", "--logfile", logf};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = fixed[i];
    for (int i = 0; f->args[i]; i++) argv[n++] = f->args[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return fail(f, "fork: %s", strerror(errno));
    if (pid == 0) { /* only async-signal-safe calls until exec */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            (void)dup2(null, 0);
            (void)dup2(null, 1);
            (void)dup2(null, 2);
        }
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    f->pid = pid;
    f->stopped = 0;
    return 0;
}

/* The log, from offset at, names "Address already in use". */
static int log_says_in_use(const redisfix *f, off_t at) {
    char logf[256], text[8192];
    FILE *fp = fopen(redisfix_path(f, "redis.log", logf, sizeof logf), "r");
    if (!fp) return 0;
    int found = 0;
    if (fseeko(fp, at, SEEK_SET) == 0) {
        size_t n;
        while (!found && (n = fread(text, 1, sizeof text - 1, fp)) > 0) {
            text[n] = 0;
            found = strstr(text, "Address already in use") != NULL;
        }
    }
    (void)fclose(fp);
    return found;
}

/* One PING over TCP (and TLS when the server speaks it): 1 PONG, 0 not
 * (yet). Blocking, with 500 ms socket timeouts. */
static int ping_once(const redisfix *f) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct timeval tv = {0, 500000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)f->port);
    int ok = 0;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char req[512], got[512];
    size_t len = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) goto out;
    int n = 0;
    if (f->o.password && f->o.user)
        n = snprintf(req, sizeof req, "AUTH %s %s\r\n", f->o.user,
                     f->o.password);
    else if (f->o.password)
        n = snprintf(req, sizeof req, "AUTH %s\r\n", f->o.password);
    n += snprintf(req + n, sizeof req - (size_t)n, "PING\r\n");
    if (f->o.tls_cert) {
        ctx = SSL_CTX_new(TLS_client_method());
        ssl = ctx ? SSL_new(ctx) : NULL; /* readiness only: not verified */
        if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1 ||
            SSL_write(ssl, req, n) != n)
            goto out;
    } else if (write(fd, req, (size_t)n) != n) {
        goto out;
    }
    while (len < sizeof got - 1) {
        ssize_t r = ssl ? SSL_read(ssl, got + len, (int)(sizeof got - 1 - len))
                        : read(fd, got + len, sizeof got - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        got[len] = 0;
        if (strstr(got, "+PONG")) {
            ok = 1;
            break;
        }
        if (strstr(got, "-LOADING") || strstr(got, "-ERR") ||
            strstr(got, "-NOAUTH") || strstr(got, "-WRONGPASS"))
            break;
    }
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    close(fd);
    return ok;
}

/* Wait for PONG, or the child's exit: 0 up, 1 the port was in use, -1. */
static int wait_up(redisfix *f, off_t log_at) {
    long long end = now_ms() + REDISFIX_WAIT_MS;
    for (;;) {
        int status;
        pid_t w = waitpid(f->pid, &status, WNOHANG);
        if (w == f->pid) {
            f->pid = 0;
            if (log_says_in_use(f, log_at)) return 1;
            return fail(f, "redis-server exited (status %d) before answering "
                        "PING on port %d: see %s/redis.log", status, f->port,
                        f->dir);
        }
        if (ping_once(f)) return 0;
        if (now_ms() > end) {
            (void)redisfix_kill(f);
            return fail(f, "redis-server did not answer PING on port %d "
                        "within %d ms: see %s/redis.log", f->port,
                        REDISFIX_WAIT_MS, f->dir);
        }
        struct timespec ts = {0, 10 * 1000 * 1000}; /* poll interval */
        (void)nanosleep(&ts, NULL);
    }
}

int redisfix_start(redisfix *f, const redisfix_opts *o) {
    static const redisfix_opts none;
    f->o = o ? *o : none;
    int n = 0;
    for (; f->o.args && f->o.args[n]; n++) {
        if (n == REDISFIX_MAX_ARGS)
            return fail(f, "more than %d extra arguments", REDISFIX_MAX_ARGS);
        f->args[n] = strdup(f->o.args[n]);
        if (!f->args[n]) return fail(f, "out of memory");
    }
    f->args[n] = NULL;
    for (int i = 0; i < REDISFIX_TRIES; i++) {
        f->port = free_port();
        if (f->port <= 0) return fail(f, "no free port: %s", strerror(errno));
        off_t at;
        if (spawn(f, &at)) return -1;
        int r = wait_up(f, at);
        if (r <= 0) return r;
    }
    return fail(f, "every port tried (%d) was taken before redis-server "
                "could bind it", REDISFIX_TRIES);
}

int redisfix_restart(redisfix *f) {
    if (f->pid) return fail(f, "redis-server is still running");
    off_t at;
    if (spawn(f, &at)) return -1;
    int r = wait_up(f, at);
    if (r == 1)
        return fail(f, "port %d was taken meanwhile: redis-server cannot "
                    "restart on it", f->port);
    return r;
}

static int signal_it(redisfix *f, int sig) {
    if (!f->pid) return fail(f, "redis-server is not running");
    if (kill(f->pid, sig) != 0) return fail(f, "kill: %s", strerror(errno));
    return 0;
}

int redisfix_stop(redisfix *f) {
    int r = signal_it(f, SIGSTOP);
    if (r == 0) f->stopped = 1;
    return r;
}

int redisfix_cont(redisfix *f) {
    int r = signal_it(f, SIGCONT);
    if (r == 0) f->stopped = 0;
    return r;
}

int redisfix_kill(redisfix *f) {
    if (signal_it(f, SIGKILL)) return -1;
    int status;
    while (waitpid(f->pid, &status, 0) < 0 && errno == EINTR) {}
    f->pid = 0;
    f->stopped = 0;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
    (void)st;
    (void)ftw;
    (void)(flag == FTW_DP ? rmdir(path) : unlink(path));
    return 0;
}

void redisfix_cleanup(redisfix *f) {
    if (f->pid) (void)redisfix_kill(f);
    if (f->dir[0]) (void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < REDISFIX_MAX_ARGS && f->args[i]; i++) {
        free(f->args[i]);
        f->args[i] = NULL;
    }
    f->dir[0] = 0;
}
