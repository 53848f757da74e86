/*
 * auth.h -- password checks for logins, off the loop thread.
 *
 * auth_check queues the check; a libuv thread-pool thread reads the
 * account's hash (accounts_hash: one indexed SQLite read, which WAL lets
 * run beside the store's writer, but which may wait up to the 5 s busy
 * timeout while another process holds a lock) and runs the Argon2id
 * comparison, then the answer comes back on the loop thread. Each
 * comparison takes about 0.1 s of a core and 64 MiB of memory (libsodium's
 * _INTERACTIVE limits, chosen when the password was set), so:
 *  - at most AUTH_MAX_RUNNING run at once: 64 MiB each, and a login storm
 *    cannot take every core from routing;
 *  - at most AUTH_MAX_QUEUED more wait (each holds about 1.1 KiB, its
 *    password wiped when done); past that auth_check answers AUTH_EBUSY.
 * So logins are throttled to roughly AUTH_MAX_RUNNING / 0.1 s per second.
 *
 * SQLite from pool threads: auth_open opens one accounts connection per
 * running slot (max_running of them). A running check holds one slot and
 * its connection; no two threads ever use the same connection, and no
 * mutex is needed.
 *
 * An unknown id is compared against a dummy hash made at auth_open, so it
 * costs what a wrong password costs and timing does not tell them apart.
 *
 * Threads: every function and callback runs on the loop thread; only the
 * hash read and the comparison run on the pool. Nothing here logs.
 */
#ifndef CHAT_SERVER_AUTH_H
#define CHAT_SERVER_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define AUTH_MAX_RUNNING 2
#define AUTH_MAX_QUEUED 1024

enum { AUTH_EBUSY = -100 }; /* auth_check: too many logins waiting */

typedef struct auth auth;

/* result: ACCOUNTS_OK, ACCOUNTS_EBADPW (wrong password), ACCOUNTS_ENOENT
 * (no such account), ACCOUNTS_EDB or ACCOUNTS_ENOMEM. */
typedef void (*auth_done_fn)(void *token, int result);

/* Open the accounts of dir/chat.db for checking, with at most max_running
 * checks at once (one database connection each) and max_queued waiting
 * (the server passes AUTH_MAX_RUNNING and AUTH_MAX_QUEUED). 0, or an
 * ACCOUNTS_* code with one sentence in err. The caller frees *out with
 * auth_close. */
int auth_open(auth **out, uv_loop_t *loop, const char *dir,
              size_t max_running, size_t max_queued, char *err,
              size_t errlen);

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
