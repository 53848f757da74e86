/*
 * main.c -- chat-server: flags, process limits, the data directory, the
 * store (SQLite, on its own thread), then one event loop until SIGINT or
 * SIGTERM.
 *
 * `chat-server user ...` is account administration instead (admin.h);
 * `backup` and `restore` copy the store's database (backup.h).
 *
 * Exit status: 0 after a clean stop, 1 when it cannot start (the reason is
 * logged), 2 for a bad command line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "admin.h"
#include "backup.h"
#include "config.h"
#include "reload.h"
#include "server.h"
#include "cluster_store.h"
#include "store.h"
#include "workers.h"

#ifndef CHAT_VERSION
#define CHAT_VERSION "0.1.0"
#endif

/* Raise the soft RLIMIT_NOFILE to the hard limit: each connection is a
 * descriptor. Logs what it got. */
/* Descriptors the server needs besides one per connection: the store's
 * database, WAL and journal, the listeners, libuv's own, stdio. */
#define FD_RESERVE 64

/* Raise RLIMIT_NOFILE to what --max-connections needs (up to the hard
 * limit); say so when the system caps it below that. */
static uint64_t raise_nofile(const config *cfg) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return 0;
    rlim_t need = cfg->max_connections
                      ? (rlim_t)cfg->max_connections + FD_RESERVE
                      : rl.rlim_max;
    rlim_t want = need < rl.rlim_max ? need : rl.rlim_max;
    rlim_t was = rl.rlim_cur;
    if (was < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            log_info("nofile_raised",
                     "open file limit raised from %llu to %llu",
                     (unsigned long long)was, (unsigned long long)want);
        else
            rl.rlim_cur = was;
    }
    if (rl.rlim_cur < need)
        log_warn("nofile_capped",
                 "open file limit is %llu (the system caps it): at most "
                 "about %llu connections, below --max-connections %llu; "
                 "past it new connections wait in the listen queue or fail",
                 (unsigned long long)rl.rlim_cur,
                 (unsigned long long)(rl.rlim_cur > FD_RESERVE
                                          ? rl.rlim_cur - FD_RESERVE : 0),
                 (unsigned long long)cfg->max_connections);
    if (rl.rlim_cur == RLIM_INFINITY) return 0;
    return rl.rlim_cur > FD_RESERVE ? (uint64_t)(rl.rlim_cur - FD_RESERVE) : 1;
}

/* mkdir -p for the data directory. 0 or -1 with errno. */
static int make_dirs(const char *path) {
    char tmp[1024];
    int len = snprintf(tmp, sizeof tmp, "%s", path);
    if (len < 0 || (size_t)len >= sizeof tmp) {
        errno = ENAMETOOLONG; /* never create a truncated path */
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) && errno != EEXIST) return -1;
    struct stat st;
    if (stat(tmp, &st)) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* --check-config: the settings parsed; the TLS files load too. Prints the
 * effective settings; 0, or 2 with a sentence. */
static int check_config(const config *cfg) {
    if (*cfg->tls_cert) {
        char terr[512];
        tls_server *t = tls_server_new(cfg->tls_cert, cfg->tls_key,
                                       *cfg->tls_ca ? cfg->tls_ca : NULL,
                                       terr, sizeof terr);
        if (!t) {
            fprintf(stderr, "chat-server: %s\n", terr);
            return 2;
        }
        tls_server_free(t);
    }
    printf("# chat-server %s: the settings are valid\n", CHAT_VERSION);
    if (*cfg->config_file) printf("# from %s and the command line\n",
                                  cfg->config_file);
    config_print(cfg, stdout);
    return fflush(stdout) == 0 ? 0 : 2;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "user") == 0)
        return admin_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "backup") == 0)
        return backup_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "restore") == 0)
        return restore_main(argc - 1, argv + 1);
    config cfg;
    char err[512];
    config_defaults(&cfg);
    switch (config_parse(&cfg, argc, argv, err, sizeof err)) {
    case CONFIG_HELP: config_usage(stdout); return 0;
    case CONFIG_VERSION: printf("chat-server %s\n", CHAT_VERSION); return 0;
    case CONFIG_ERROR: fprintf(stderr, "chat-server: %s\n", err); return 2;
    case CONFIG_CHECK: return check_config(&cfg);
    default: break;
    }
    log_threshold = cfg.log_level;
    log_format = cfg.log_format;
    int wr = workers_run(&cfg); /* (--workers: the supervisor stays there) */
    if (wr >= 0) return wr;
    if (cfg.worker)
        log_info("worker_started", "worker %d: pid %ld (supervisor %ld)",
                 cfg.worker, (long)getpid(), (long)getppid());
    if (store_global_init()) /* (nothing opened SQLite yet: cannot happen) */
        log_warn("sqlite_memstatus",
                 "SQLite keeps its memory statistics (slower store)");
    /* (void): signal() fails only for an invalid signal number */
    (void)signal(SIGPIPE, SIG_IGN);
    uint64_t conn_cap = raise_nofile(&cfg);

    if (make_dirs(cfg.data_dir)) {
        log_error("data_dir_failed",
                  "cannot use data directory %s: %s (choose another with "
                  "--data-dir)", cfg.data_dir, strerror(errno));
        return 1;
    }
    static server srv; /* holds the 64 KiB read buffer: keep off the stack */
    uv_loop_t *loop = uv_default_loop();
    static store_callbacks cb;
    cb = server_store_callbacks;
    cb.ctx = &srv;
    store_config scfg = config_store(&cfg);
    store *st = NULL;
    char serr[512];
    if (*cfg.cluster) {
        if (cluster_store_open(&st, loop, &cfg, &cb, serr, sizeof serr)) {
            log_error("cluster_open_failed", "cannot join the cluster: %s",
                      serr);
            return 1;
        }
    } else if (store_open(&st, loop, &scfg, &cb, serr, sizeof serr)) {
        log_error("store_open_failed", "cannot open the store: %s", serr);
        return 1;
    }
    auth *au = NULL;
    if (cfg.auth) {
        char aerr[512];
        /* (the cluster's store keeps the accounts: Redis, u:{U} pw) */
        int ar = store_accounts(st)
                     ? auth_open_store(&au, loop, st, AUTH_MAX_RUNNING,
                                       AUTH_MAX_QUEUED, aerr, sizeof aerr)
                     : auth_open(&au, loop, cfg.data_dir, AUTH_MAX_RUNNING,
                                 AUTH_MAX_QUEUED, aerr, sizeof aerr);
        if (ar) {
            log_error("accounts_open_failed",
                      "cannot open the accounts: %s", aerr);
            return 1;
        }
    }
    tls_server *tls = NULL;
    if (cfg.tls_port >= 0 || cfg.https_port >= 0) {
        char terr[512];
        tls = tls_server_new(cfg.tls_cert, cfg.tls_key,
                             *cfg.tls_ca ? cfg.tls_ca : NULL, terr, sizeof terr);
        if (!tls) {
            log_error("tls_setup_failed", "cannot set up TLS: %s", terr);
            return 1;
        }
    }
    int r = server_init(&srv, loop, &cfg, st);
    if (au) server_set_auth(&srv, au);
    if (tls) server_set_tls(&srv, tls);
    srv.conn_cap = conn_cap;
    int port = 0;
    if (r == 0) r = server_listen(&srv, LISTEN_CHAT, cfg.port, &port);
    if (r) {
        log_error("listen_failed",
                  "cannot listen on %s:%d: %s", cfg.bind, cfg.port,
                  uv_strerror(r));
        return 1;
    }
    log_info("listening",
             "chat-server %s listening on %s:%d (%s mode, max frame %u bytes, "
             "output queue %zu bytes per connection)", CHAT_VERSION, cfg.bind,
             port, cfg.echo ? "echo" : "routing", (unsigned)cfg.max_frame,
             cfg.max_outbuf);
    if (cfg.tls_port >= 0) {
        int tport = 0;
        if ((r = server_listen(&srv, LISTEN_TLS, cfg.tls_port, &tport))) {
            log_error("listen_failed",
                      "cannot listen for TLS on %s:%d: %s", cfg.bind,
                      cfg.tls_port, uv_strerror(r));
            return 1;
        }
        log_info("tls_listening",
                 "TLS listening on %s:%d (TLS 1.2 and later, certificate %s%s%s)",
                 cfg.bind, tport, cfg.tls_cert,
                 *cfg.tls_ca ? "; client certificates required, from CAs in "
                             : "; no client certificates asked",
                 cfg.tls_ca);
    }
    for (int https = 0; https < 2; https++) {
        int want = https ? cfg.https_port : cfg.http_port, hport = 0;
        if (want < 0) continue;
        r = server_listen(&srv, https ? LISTEN_HTTPS : LISTEN_HTTP, want,
                          &hport);
        if (r) {
            log_error("listen_failed", "cannot listen for %s on %s:%d: %s",
                      https ? "HTTPS" : "HTTP", cfg.bind, want,
                      uv_strerror(r));
            return 1;
        }
        log_info("http_listening",
                 "listening on %s:%d (%s: web client %s://%s:%d/, WebSocket "
                 "/ws, /metrics, /healthz)", cfg.bind, hport,
                 https ? "https" : "http", https ? "https" : "http",
                 cfg.bind, hport);
    }
    int mwant = workers_metrics_port(&cfg), mport = 0;
    if (mwant >= 0) {
        if ((r = server_listen(&srv, LISTEN_METRICS, mwant, &mport))) {
            log_error("listen_failed", "cannot listen for metrics "
                      "(--metrics-port) on %s:%d: %s", cfg.bind, mwant,
                      uv_strerror(r));
            return 1;
        }
        char whose[32] = "";
        if (cfg.worker) snprintf(whose, sizeof whose, "worker %d's ",
                                 cfg.worker);
        log_info("metrics_listening", "%smetrics on %s:%d (plain HTTP: "
                 "/metrics and /healthz only)", whose, cfg.bind, mport);
    }
    if (cfg.auth && *cfg.cluster)
        log_info("auth_on",
                 "logins required (--auth on): accounts in the cluster's "
                 "Redis, `chat-server user --cluster URL add ID` creates "
                 "one");
    else if (cfg.auth)
        log_info("auth_on",
                 "logins required (--auth on): accounts in the store's "
                 "database, `chat-server user add ID` creates one");
    else if (cfg.insecure_open)
        log_warn("insecure_open",
                 "--auth off with --insecure-open: any client that can "
                 "reach the port may read and send as any user");
    else
        log_info("protected_mode",
                 "protected mode: --auth off, so only loopback clients "
                 "are accepted");
    static reloader rl;
    rl = (reloader){.cfg = &cfg, .argc = argc, .argv = argv, .tls = tls,
                    .st = st};
    if ((r = reload_start(&rl, loop)))
        log_warn("reload_unavailable",
                 "cannot listen for SIGHUP (%s): no reloads", uv_strerror(r));
    if (*cfg.cluster) {
        char acks[96] = "after the primary's fsync";
        if (cfg.cluster_wait)
            (void)snprintf(acks, sizeof acks, "after %u replica(s) too, "
                           "within %llu ms", (unsigned)cfg.cluster_wait,
                           (unsigned long long)cfg.cluster_wait_ms);
        log_info("store_opened", "store: the cluster's Redis at %s "
                 "(offline ttl %llu s; acknowledgements %s)", cfg.cluster,
                 (unsigned long long)(cfg.offline_ttl_ms / 1000), acks);
    } else {
        log_info("store_opened",
                 "store: sqlite %s/chat.db (fsync %s, next message id %llu, "
                 "offline ttl %llu s)", cfg.data_dir,
                 cfg.fsync_full ? "full" : "normal",
                 (unsigned long long)store_next_id(st),
                 (unsigned long long)(cfg.offline_ttl_ms / 1000));
    }
    /* (void): non-zero only if uv_stop() ended it with handles still
     * active, and nothing calls uv_stop(); uv_loop_close() below reports
     * any handle left open. */
    (void)uv_run(loop, UV_RUN_DEFAULT);
    if (rl.open) {
        reload_close(&rl);
        /* (void): returns once the close callback ran: nothing else is
         * left to keep the loop alive */
        (void)uv_run(loop, UV_RUN_DEFAULT);
    }
    const hub_stats *st_ = server_stats(&srv);
    log_info("stopped",
             "stopped: %llu connections served, %llu frames in, %llu routed, "
             "%llu stored, %llu refused, %llu writes",
             (unsigned long long)st_->accepted,
             (unsigned long long)st_->frames_in,
             (unsigned long long)st_->frames_routed,
             (unsigned long long)st_->frames_stored,
             (unsigned long long)st_->refused,
             (unsigned long long)st_->writes);
    server_free(&srv);
    auth_close(au);
    tls_server_free(tls);
    store_free(st);
    /* UV_EBUSY: a handle was left open, a bug the stop sequence must not
     * have; say so (the process exits anyway, so nothing leaks). */
    if ((r = uv_loop_close(loop)))
        log_warn("loop_handles_left",
                 "the event loop still had open handles at exit (%s)",
                 uv_strerror(r));
    return 0;
}
