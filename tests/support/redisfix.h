/*
 * redisfix.h -- a real redis-server for a test (docs/CLUSTER.md 6.6).
 * Linked into test binaries only.
 *
 *   redisfix f;
 *   redisfix_init(&f);                      a fresh temporary directory
 *   ... write certificates into f.dir ...
 *   redisfix_start(&f, &opts);              a free loopback port, the server
 *                                           up (PING answers PONG)
 *   redisfix_stop / _cont / _kill / _restart
 *   redisfix_cleanup(&f);                   kill it, remove the directory
 *
 * The server runs as a child process, in the foreground, with
 * `--port P --bind 127.0.0.1 --dir DIR --save "" --appendonly yes
 * --appendfsync always --logfile DIR/redis.log` and the caller's extra
 * arguments; its stdin, stdout and stderr are /dev/null (never a pipe the
 * test could block on), and it dies with the test process (PDEATHSIG). With
 * TLS it is `--port 0 --tls-port P` with the given files and
 * `--tls-auth-clients no`.
 *
 * The port: bind 127.0.0.1:0, read it, close; when the log then says the
 * address is in use (another process took it in between), another port,
 * at most REDISFIX_TRIES times. Ready: PING (after AUTH when a password is
 * given) answers +PONG within REDISFIX_WAIT_MS (a restarted server answers
 * -LOADING first), checked every 10 ms: a condition, not a fixed sleep.
 *
 * Every function returns 0 or -1 with a sentence in f->err. Not thread-safe;
 * blocking (it is a test fixture).
 */
#ifndef CHAT_TESTS_REDISFIX_H
#define CHAT_TESTS_REDISFIX_H

#include <sys/types.h>

#define REDISFIX_TRIES 5
#define REDISFIX_WAIT_MS 10000
#define REDISFIX_MAX_ARGS 24

typedef struct redisfix_opts {
    const char *const *args; /* extra redis-server arguments, NULL-ended */
    const char *tls_cert;    /* set: TLS only, with tls_key and tls_ca */
    const char *tls_key;
    const char *tls_ca;
    const char *user;        /* AUTH for the readiness PING (user optional) */
    const char *password;
} redisfix_opts;

typedef struct redisfix {
    char dir[128];  /* the temporary directory (data, log, the test's files) */
    int port;       /* the TCP (or TLS) port, 0 before the first start */
    pid_t pid;      /* the server, 0 when not running */
    int stopped;    /* SIGSTOPped */
    redisfix_opts o;
    char *args[REDISFIX_MAX_ARGS + 1]; /* copies of o.args */
    char err[512];
} redisfix;

/* A new temporary directory; nothing started. */
int redisfix_init(redisfix *f);

/* Start the server on a free port (o is copied; NULL: plain, no extras). */
int redisfix_start(redisfix *f, const redisfix_opts *o);

/* SIGSTOP / SIGCONT: a frozen server keeps its sockets open. */
int redisfix_stop(redisfix *f);
int redisfix_cont(redisfix *f);

/* SIGKILL and reap it. */
int redisfix_kill(redisfix *f);

/* Start it again on the same port, directory and arguments (after
 * redisfix_kill); -1 ("port P was taken meanwhile") rather than another
 * port, since clients name this one. */
int redisfix_restart(redisfix *f);

/* Kill the server (if running) and remove the directory. */
void redisfix_cleanup(redisfix *f);

/* The TLS files of redisfix_certs, as paths. */
typedef struct redisfix_tls {
    char ca[256];    /* the CA that signed the server's certificate */
    char other[256]; /* a CA that signed nothing of the server's */
    char cert[256], key[256]; /* the server's, for 127.0.0.1, localhost */
} redisfix_tls;

/* Write TLS files into f->dir with openssl(1): a CA (ca.pem), a server
 * certificate for 127.0.0.1 and localhost signed by it (srv.pem, srv.key),
 * and a second CA that signed nothing of the server's (other.pem); their
 * paths into t. */
int redisfix_certs(redisfix *f, redisfix_tls *t);

/* A path inside f->dir into out (cap bytes). Returns out. */
const char *redisfix_path(const redisfix *f, const char *name, char *out,
                          size_t cap);

#endif
