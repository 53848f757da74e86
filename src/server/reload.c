#include "reload.h"

#include <signal.h>
#include <string.h>

#include "common/log.h"

static void on_hup(uv_signal_t *h, int signum) {
    (void)signum;
    reload_run(h->data);
}

int reload_start(reloader *r, uv_loop_t *loop) {
    int e = uv_signal_init(loop, &r->sig);
    if (e) return e;
    r->sig.data = r;
    r->open = 1;
    uv_unref((uv_handle_t *)&r->sig);
    return uv_signal_start(&r->sig, on_hup, SIGHUP);
}

void reload_close(reloader *r) {
    if (!r->open) return;
    r->open = 0;
    uv_close((uv_handle_t *)&r->sig, NULL);
}

static int is_tls(const setting *s) {
    return strncmp(s->name, "tls-", 4) == 0 && s->kind == SET_PATH;
}

/* The identity again from next's files; on success, next's TLS paths
 * become the running ones. 0 or -1 (logged). */
static int reload_tls(reloader *r, const config *next) {
    char err[512];
    if (tls_server_reload(r->tls, next->tls_cert, next->tls_key,
                          *next->tls_ca ? next->tls_ca : NULL, err,
                          sizeof err)) {
        log_error("reload_tls_failed", "reload: %s; TLS keeps the certificate it had (%s)", err,
                  r->cfg->tls_cert);
        return -1;
    }
    memcpy(r->cfg->tls_cert, next->tls_cert, sizeof next->tls_cert);
    memcpy(r->cfg->tls_key, next->tls_key, sizeof next->tls_key);
    memcpy(r->cfg->tls_ca, next->tls_ca, sizeof next->tls_ca);
    log_info("reload_tls", "reload: TLS certificate %s loaded: new connections get it, "
             "open ones keep theirs", next->tls_cert);
    return 0;
}

void reload_run(reloader *r) {
    static config next; /* ~6 KiB: off the stack */
    char err[768], was[1100], now[1100];
    config_defaults(&next);
    int rc = config_parse(&next, r->argc, r->argv, err, sizeof err);
    if (rc != CONFIG_OK && rc != CONFIG_CHECK) {
        log_error("reload_failed", "reload: %s; nothing changed", rc == CONFIG_ERROR ? err
                  : "the command line asks for help or the version");
        return;
    }
    config *cur = r->cfg;
    unsigned changed = 0, kept = 0;
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        if ((s->flags & SET_CLI) || is_tls(s)) continue;
        config_value(cur, s, was, sizeof was);
        config_value(&next, s, now, sizeof now);
        if (strcmp(was, now) == 0) continue;
        if (!(s->flags & SET_LIVE)) {
            log_warn("reload_kept", "reload: %s cannot change while the server runs: it "
                     "keeps %s (restart to apply %s)", s->name,
                     *was ? was : "(none)", *now ? now : "(none)");
            kept++;
            continue;
        }
        memcpy((char *)cur + s->off, (const char *)&next + s->off, s->width);
        log_info("reload_changed", "reload: %s %s -> %s", s->name, *was ? was : "(none)",
                 *now ? now : "(none)");
        changed++;
    }
    log_threshold = cur->log_level;
    log_format = cur->log_format;
    store_set_quota(r->st, cur->offline_max_messages, cur->offline_max_bytes);
    if (r->tls) {
        if (reload_tls(r, &next) == 0) changed++;
    } else if (strcmp(cur->tls_cert, next.tls_cert) != 0 ||
               strcmp(cur->tls_key, next.tls_key) != 0 ||
               strcmp(cur->tls_ca, next.tls_ca) != 0) {
        log_warn("reload_kept", "%s", "reload: the TLS files changed but no TLS port was "
                 "open at the start: restart to apply them");
        kept++;
    }
    r->done++;
    log_info("reloaded", "reload %llu: %u settings changed, %u kept until a restart",
             (unsigned long long)r->done, changed, kept);
}
