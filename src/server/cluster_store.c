/* cluster_store.c -- see cluster_store.h. */
#include "server/cluster_store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/cluster_url.h"
#include "server/store_redis.h"

int cluster_read_password(const char *path, char *out, size_t cap,
                          char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--cluster-password-file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    int ok = fgets(out, (int)cap, f) != NULL;
    int rerr = ferror(f);
    (void)fclose(f); /* (read only: nothing to lose at close) */
    if (rerr) {
        snprintf(err, errlen, "--cluster-password-file %s: cannot read it",
                 path);
        return -1;
    }
    size_t n = ok ? strlen(out) : 0;
    int whole = n > 0 && out[n - 1] == '\n';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = 0;
    if (!whole && n + 1 >= cap) {
        explicit_bzero(out, cap);
        snprintf(err, errlen, "--cluster-password-file %s: the first line "
                 "is longer than %zu bytes", path, cap - 2);
        return -1;
    }
    if (n == 0) {
        snprintf(err, errlen, "--cluster-password-file %s: the first line "
                 "(the password) is empty", path);
        return -1;
    }
    return 0;
}

int cluster_store_open(store **out, uv_loop_t *loop, const config *cfg,
                       const store_callbacks *cb, char *err, size_t errlen) {
    static cluster_url u; /* (~2 KiB: off the stack; main thread) */
    char why[320];
    if (cluster_url_parse(cfg->cluster, &u, why, sizeof why)) {
        /* (config_finish checked it: cannot happen) */
        snprintf(err, errlen, "--cluster: %s", why);
        return STORE_EIO;
    }
    char password[CLUSTER_PASSWORD_MAX + 2];
    int have_pw = *cfg->cluster_password_file != 0;
    if (have_pw && cluster_read_password(cfg->cluster_password_file,
                                         password, sizeof password, err,
                                         errlen))
        return STORE_EIO;
    store_redis_config rc = {0};
    for (unsigned i = 0; i < u.n; i++) {
        rc.addrs[i].host = u.host[i];
        rc.addrs[i].port = u.port[i];
    }
    rc.naddrs = u.n;
    rc.user = *u.user ? u.user : NULL;
    rc.password = have_pw ? password : NULL;
    rc.tls = u.tls;
    rc.tls_ca_file = *cfg->cluster_tls_ca ? cfg->cluster_tls_ca : NULL;
    rc.tls_cert_file = *cfg->cluster_tls_cert ? cfg->cluster_tls_cert : NULL;
    rc.tls_key_file = *cfg->cluster_tls_key ? cfg->cluster_tls_key : NULL;
    rc.tls_server_name = *cfg->cluster_tls_name ? cfg->cluster_tls_name
                                                : NULL;
    rc.max_messages = cfg->offline_max_messages;
    rc.max_bytes = cfg->offline_max_bytes;
    rc.ttl_ms = cfg->offline_ttl_ms;
    rc.device_ttl_ms = cfg->device_ttl_ms;
    rc.history_ttl_ms = cfg->history_ttl_ms;
    rc.dedup_ms = cfg->dedup_ms;
    rc.contacts = cfg->auth;
    rc.trust_persistence = cfg->cluster_trust_persistence;
    int r = store_redis_open(out, loop, &rc, cb, err, errlen);
    explicit_bzero(password, sizeof password); /* (store_redis copied it) */
    return r;
}
