/*
 * auth.h -- password checks for logins, off the loop thread.
 *
 * auth_check queues the check; the account's hash is read, then a libuv
 * thread-pool thread runs the Argon2id comparison, then the answer comes
 * back on the loop thread. Where the hash comes from depends on the store
 * (store_accounts()):
 *  - the SQLite store (auth_open): dir/chat.db, read on the pool thread
 *    (accounts_hash: one indexed SQLite read, which WAL lets run beside
 *    the store's writer, but which may wait up to the 5 s busy timeout
 *    while another process holds a lock);
 *  - a store that keeps the accounts (auth_open_store: the cluster's
 *    Redis, u:{U} field pw): store_account on the loop thread, a round
 *    trip, and the server hands its answer (account_done) to
 *    auth_store_done; then the comparison on the pool as above. A store
 *    that cannot answer (Redis down) makes the check AUTH_ESTORE at once,
 *    without a comparison.
 * Each comparison takes about 0.1 s of a core and 64 MiB of memory
 * (libsodium's _INTERACTIVE limits, chosen when the password was set), so:
 *  - at most AUTH_MAX_RUNNING run at once (a check holds its slot from the
 *    hash read to the answer): 64 MiB each, and a login storm cannot take
 *    every core from routing;
 *  - at most AUTH_MAX_QUEUED more wait (each holds about 1.3 KiB, its
 *    password wiped when done); past that auth_check answers AUTH_EBUSY.
 * So logins are throttled to roughly AUTH_MAX_RUNNING / 0.1 s per second.
 *
 * SQLite from pool threads: auth_open opens one accounts connection per
 * running slot (max_running of them). A running check holds one slot and
 * its connection; no two threads ever use the same connection, and no
 * mutex is needed.
 *
 * An unknown id is compared against a dummy hash made at open, so it
 * costs what a wrong password costs and timing does not tell them apart.
 *
 * Threads: every function and callback runs on the loop thread; only the
 * SQLite hash read and the comparison run on the pool. Nothing here logs.
 */
#ifndef CHAT_SERVER_AUTH_H
#define CHAT_SERVER_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/store.h"

#define AUTH_MAX_RUNNING 2
#define AUTH_MAX_QUEUED 1024

enum {
    AUTH_EBUSY = -100, /* auth_check: too many logins waiting */
    AUTH_ESTORE = -101 /* a result: the store could not read the account
                          (the cluster's Redis unreachable or failing) */
};

typedef struct auth auth;

/* result: ACCOUNTS_OK, ACCOUNTS_EBADPW (wrong password), ACCOUNTS_ENOENT
 * (no such account), ACCOUNTS_EDB (the database failed, or the stored hash
 * is malformed), ACCOUNTS_ENOMEM, or AUTH_ESTORE (auth_open_store only). */
typedef void (*auth_done_fn)(void *token, int result);

/* Open the accounts of dir/chat.db for checking, with at most max_running
 * checks at once (one database connection each) and max_queued waiting
 * (the server passes AUTH_MAX_RUNNING and AUTH_MAX_QUEUED). 0, or an
 * ACCOUNTS_* code with one sentence in err. The caller frees *out with
 * auth_close. */
int auth_open(auth **out, uv_loop_t *loop, const char *dir,
              size_t max_running, size_t max_queued, char *err,
              size_t errlen);

/* The same for a store that keeps the accounts (store_accounts(st) is
 * 1): no database is opened; every check asks st (store_account, with
 * the check as its token), and the server passes each account_done
 * completion of st to auth_store_done. st must outlive every check. 0, or
 * ACCOUNTS_ENOMEM / ACCOUNTS_ECRYPTO with one sentence in err. */
int auth_open_store(auth **out, uv_loop_t *loop, store *st,
                    size_t max_running, size_t max_queued, char *err,
                    size_t errlen);

/* store_callbacks.account_done of an auth_open_store check (token: the
 * check's, as given to store_account; hash, len, status: as store.h says
 * there). Loop thread, from the store's completion; the check goes on to
 * the comparison, or is answered (AUTH_ESTORE, ACCOUNTS_ENOMEM,
 * ACCOUNTS_EDB for a hash too long to be one). */
void auth_store_done(void *token, const char *hash, size_t len, int status);

/* Check pw (len <= ACCOUNTS_MAX_PASSWORD bytes, copied) for id; done(token,
 * result) is called later on the loop thread (never inside this call),
 * exactly once, unless this returns non-zero: AUTH_EBUSY or
 * ACCOUNTS_ENOMEM (then never called). A check the thread pool refuses is
 * answered ACCOUNTS_ENOMEM on a later loop turn, by a timer that exists
 * only until it has fired and closed. */
int auth_check(auth *a, uint32_t id, const uint8_t *pw, size_t len,
               auth_done_fn done, void *token);

/* Checks running, and waiting. */
size_t auth_running(const auth *a);
size_t auth_queued(const auth *a);

/* Free it. Call only once no check is in flight and no answer is due
 * (after uv_run returned). */
void auth_close(auth *a);

#endif
