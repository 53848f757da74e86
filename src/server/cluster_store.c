/* cluster_store.c -- see cluster_store.h. */
#include "server/cluster_store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

int cluster_conn_init(cluster_conn *cc, const config *cfg, char *err,
                      size_t errlen) {
    memset(cc, 0, sizeof *cc);
    char why[320];
    if (cluster_url_parse(cfg->cluster, &cc->url, why, sizeof why)) {
        snprintf(err, errlen, "--cluster: %s", why);
        return -1;
    }
    int have_pw = *cfg->cluster_password_file != 0;
    if (have_pw && cluster_read_password(cfg->cluster_password_file,
                                         cc->password, sizeof cc->password,
                                         err, errlen))
        return -1;
    rconn_options *o = &cc->o;
    for (unsigned i = 0; i < cc->url.n; i++) {
        o->addrs[i].host = cc->url.host[i];
        o->addrs[i].port = cc->url.port[i];
    }
    o->naddrs = cc->url.n;
    o->user = *cc->url.user ? cc->url.user : NULL;
    o->password = have_pw ? cc->password : NULL;
    o->tls = cc->url.tls;
    o->tls_ca_file = *cfg->cluster_tls_ca ? cfg->cluster_tls_ca : NULL;
    o->tls_cert_file = *cfg->cluster_tls_cert ? cfg->cluster_tls_cert : NULL;
    o->tls_key_file = *cfg->cluster_tls_key ? cfg->cluster_tls_key : NULL;
    o->tls_server_name = *cfg->cluster_tls_name ? cfg->cluster_tls_name
                                                : NULL;
    return 0;
}

void cluster_conn_wipe(cluster_conn *cc) {
    explicit_bzero(cc->password, sizeof cc->password);
}

int cluster_store_open(store **out, uv_loop_t *loop, const config *cfg,
                       const store_callbacks *cb, char *err, size_t errlen) {
    static cluster_conn cc; /* (~2.6 KiB: off the stack; main thread) */
    /* (config_finish checked the URL: a failure here is the password
     * file's) */
    if (cluster_conn_init(&cc, cfg, err, errlen)) return STORE_EIO;
    store_redis_config rc = {0};
    for (unsigned i = 0; i < cc.o.naddrs; i++) rc.addrs[i] = cc.o.addrs[i];
    rc.naddrs = cc.o.naddrs;
    rc.user = cc.o.user;
    rc.password = cc.o.password;
    rc.tls = cc.o.tls;
    rc.tls_ca_file = cc.o.tls_ca_file;
    rc.tls_cert_file = cc.o.tls_cert_file;
    rc.tls_key_file = cc.o.tls_key_file;
    rc.tls_server_name = cc.o.tls_server_name;
    rc.max_messages = cfg->offline_max_messages;
    rc.max_bytes = cfg->offline_max_bytes;
    rc.ttl_ms = cfg->offline_ttl_ms;
    rc.device_ttl_ms = cfg->device_ttl_ms;
    rc.history_ttl_ms = cfg->history_ttl_ms;
    rc.dedup_ms = cfg->dedup_ms;
    rc.contacts = cfg->auth;
    rc.trust_persistence = cfg->cluster_trust_persistence;
    rc.wait_replicas = cfg->cluster_wait;
    rc.wait_ms = (unsigned)cfg->cluster_wait_ms; /* (<= 3000: config.c) */
    rc.conns = cfg->cluster_connections;         /* (1..16: config.c) */
    int r = store_redis_open(out, loop, &rc, cb, err, errlen);
    cluster_conn_wipe(&cc); /* (store_redis copied it) */
    return r;
}
