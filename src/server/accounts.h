/*
 * accounts.h -- user accounts in the server's database (<dir>/chat.db):
 *
 *     accounts(id INTEGER PRIMARY KEY, hash TEXT NOT NULL, created INTEGER)
 *
 * where hash is libsodium's crypto_pwhash_str (Argon2id, OPSLIMIT and
 * MEMLIMIT _INTERACTIVE) and created the unix time in seconds. The table
 * is migration 2 of store_sqlite.c; accounts_open runs the store's
 * migrations when the file is older, so both always agree on the schema.
 *
 * Pure functions: nothing is printed or logged; every function returns 0
 * or a negative ACCOUNTS_E* code (accounts_strerror names it). Safe to use
 * while a server runs on the same file (WAL, busy timeout of 5 s). One
 * accounts handle is one SQLite connection: use it from one thread at a
 * time (auth.c lends each of its handles to one pool thread at a time).
 * Passwords are (pointer, length) and are never copied by this module
 * except into libsodium.
 */
#ifndef CHAT_SERVER_ACCOUNTS_H
#define CHAT_SERVER_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>

enum {
    ACCOUNTS_OK = 0,
    ACCOUNTS_EEXIST = -1,   /* the id is already an account */
    ACCOUNTS_ENOENT = -2,   /* no such account */
    ACCOUNTS_EBADPW = -3,   /* accounts_verify: wrong password */
    ACCOUNTS_EDB = -4,      /* the database failed (err says why) */
    ACCOUNTS_ENOMEM = -5,   /* out of memory (also: Argon2id memory) */
    ACCOUNTS_EINVAL = -6,   /* id 0, or an empty password */
    ACCOUNTS_ECRYPTO = -7   /* sodium_init failed */
};

#define ACCOUNTS_MAX_PASSWORD 1024 /* bytes */

/* "no such account", ... */
const char *accounts_strerror(int code);

typedef struct accounts accounts;

/* Open dir/chat.db (created when missing; the directory must exist), bring
 * its schema up to date, and call sodium_init(). On failure returns a code
 * with one sentence in err naming the file; *out is NULL. The caller owns
 * *out and frees it with accounts_close. */
int accounts_open(accounts **out, const char *dir, char *err, size_t errlen);
void accounts_close(accounts *a);

/* 1 if the account exists, 0 if not, or a negative code. */
int accounts_exists(accounts *a, uint32_t id);

/* Create account id with this password (hashed with Argon2id: ~0.1 s and
 * 64 MiB). ACCOUNTS_EEXIST when it exists. */
int accounts_add(accounts *a, uint32_t id, const char *pw, size_t len);

/* Replace the password of id. ACCOUNTS_ENOENT when it does not exist. */
int accounts_passwd(accounts *a, uint32_t id, const char *pw, size_t len);

/* Delete id. ACCOUNTS_ENOENT when it does not exist. */
int accounts_del(accounts *a, uint32_t id);

/* 0 when pw is id's password, ACCOUNTS_EBADPW when not, ACCOUNTS_ENOENT. */
int accounts_verify(accounts *a, uint32_t id, const char *pw, size_t len);

/* The two halves of accounts_verify, for a caller that compares against
 * another hash when the account is missing (auth.c: a dummy, so unknown
 * ids take as long): accounts_hash copies id's stored hash (a
 * NUL-terminated string) into out (an indexed read, which may wait up to
 * the busy timeout); accounts_check (pure, thread-safe, ~0.1 s and 64 MiB
 * of memory) returns ACCOUNTS_OK or ACCOUNTS_EBADPW. */
#define ACCOUNTS_HASH_MAX 128 /* >= crypto_pwhash_STRBYTES */
int accounts_hash(accounts *a, uint32_t id, char out[ACCOUNTS_HASH_MAX]);
int accounts_check(const char *hash, const char *pw, size_t len);

/* The hash accounts_add stores for pw (libsodium's crypto_pwhash_str:
 * Argon2id, OPSLIMIT and MEMLIMIT _INTERACTIVE, a random salt), a
 * NUL-terminated string, for a caller that keeps accounts elsewhere (the
 * cluster's Redis: accounts_redis.h). Pure, thread-safe, ~0.1 s and 64 MiB.
 * ACCOUNTS_OK, ACCOUNTS_EINVAL (empty) or ACCOUNTS_ENOMEM. */
int accounts_make_hash(const char *pw, size_t len,
                       char out[ACCOUNTS_HASH_MAX]);

/* Every id, ascending, in *ids (malloc'd, the caller frees it; NULL when
 * *n is 0). O(accounts). */
int accounts_list(accounts *a, uint32_t **ids, size_t *n);

/* The last database error message, for logs ("" when none). */
const char *accounts_errmsg(const accounts *a);

#endif
