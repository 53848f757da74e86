/*
 * reload.h -- SIGHUP: the settings read again and applied live.
 *
 * On SIGHUP the settings are made anew as at the start (defaults, then the
 * --config file, then the command line) and compared with the running
 * ones, setting by setting (config_settings): a changed SET_LIVE setting
 * takes its new value (the modules read the running config at each use:
 * rates at the next read of each connection, limits at the next accept or
 * request, quotas at the next batch of the store, the log level at once),
 * and each change is logged; a changed setting that cannot change while
 * the server runs is logged and keeps its value. With TLS, the certificate
 * and key (and client CAs) are read again even when their paths did not
 * change (a renewed certificate usually keeps its name): connections
 * accepted afterwards get the new identity, open ones keep theirs. A file
 * that does not parse, or a TLS identity that does not load, changes
 * nothing (respectively the TLS settings) and is logged; the server keeps
 * running on what it had.
 *
 * Loop thread only. The signal handle is unreferenced: it does not keep
 * the loop alive, so the server's stop is unchanged; reload_close it after
 * uv_run returns.
 */
#ifndef CHAT_SERVER_RELOAD_H
#define CHAT_SERVER_RELOAD_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "store.h"
#include "tls.h"

typedef struct reloader {
    uv_signal_t sig;
    config *cfg;      /* the running settings (borrowed; the server reads
                         them through its const pointer) */
    int argc;         /* the command line, read again (borrowed) */
    char **argv;
    tls_server *tls;  /* NULL without a TLS listener (borrowed) */
    store *st;        /* for the quotas (borrowed) */
    uint64_t done;    /* reloads that applied (the log says which) */
    int open;         /* sig is initialised and not yet closed */
} reloader;

/* Start listening for SIGHUP; r's borrowed fields set by the caller. 0 or a
 * libuv error (reload_close still closes what was opened). */
int reload_start(reloader *r, uv_loop_t *loop);

/* One reload, as on SIGHUP. */
void reload_run(reloader *r);

/* Close the signal handle (idempotent); its close completes in the next
 * turn of the loop. */
void reload_close(reloader *r);

#endif
