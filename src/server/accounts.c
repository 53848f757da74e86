/*
 * accounts.c -- user accounts in chat.db (accounts.h).
 *
 * The schema belongs to store_sqlite.c (migration 2 creates the table).
 * When the file is missing or older than STORE_SCHEMA_VERSION (the
 * store's schema, which has the accounts table since version 2), accounts_open
 * opens the store once on a private loop, which creates or upgrades it
 * (and refuses a damaged, foreign or newer file without touching it), then
 * closes it. That costs one scan of the messages table, only on the first
 * use of an older file.
 *
 * Invariants: a row's hash is a crypto_pwhash_str string; ids are 1..2^32-1.
 */
#include "server/accounts.h"

#include <assert.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "server/store.h"

#define BUSY_MS 5000

struct accounts {
    sqlite3 *db;
    char *path;
};

const char *accounts_strerror(int code) {
    switch (code) {
    case ACCOUNTS_OK: return "ok";
    case ACCOUNTS_EEXIST: return "the account already exists";
    case ACCOUNTS_ENOENT: return "no such account";
    case ACCOUNTS_EBADPW: return "wrong password";
    case ACCOUNTS_EDB: return "database error";
    case ACCOUNTS_ENOMEM: return "out of memory";
    case ACCOUNTS_EINVAL: return "invalid id or empty password";
    case ACCOUNTS_ECRYPTO: return "libsodium cannot be initialised";
    default: return "unknown error";
    }
}

const char *accounts_errmsg(const accounts *a) {
    return a && a->db ? sqlite3_errmsg(a->db) : "";
}

static int user_version(sqlite3 *db, long long *v) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    return rc;
}

/* Create or upgrade the file through the store's own migrations. */
static int migrate_via_store(const char *dir, char *err, size_t errlen) {
    uv_loop_t loop;
    if (uv_loop_init(&loop)) {
        snprintf(err, errlen, "cannot create an event loop");
        return ACCOUNTS_ENOMEM;
    }
    store_config cfg = {.dir = dir, .fsync_full = 1};
    store_callbacks cb = {0};
    store *st = NULL;
    int rc = store_open(&st, &loop, &cfg, &cb, err, errlen);
    if (rc == STORE_OK) {
        store_stop(st);
        (void)uv_run(&loop, UV_RUN_DEFAULT); /* returns once all is closed */
        store_free(st);
    }
    /* The store's only handle is closed (store_stop, then uv_run), and a
     * failed store_open leaves none: closing the loop cannot be busy. */
    int lc = uv_loop_close(&loop);
    assert(lc == 0);
    (void)lc;
    if (rc == STORE_ENOMEM) return ACCOUNTS_ENOMEM;
    return rc == STORE_OK ? ACCOUNTS_OK : ACCOUNTS_EDB;
}

static int db_connect(accounts *a, long long *version, char *err,
                      size_t errlen) {
    int rc = sqlite3_open_v2(a->path, &a->db, SQLITE_OPEN_READWRITE |
                             SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(a->db, BUSY_MS);
    if (rc == SQLITE_OK) rc = user_version(a->db, version);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open the database: %s", a->path,
                 a->db ? sqlite3_errmsg(a->db) : sqlite3_errstr(rc));
        return rc == SQLITE_NOMEM ? ACCOUNTS_ENOMEM : ACCOUNTS_EDB;
    }
    return ACCOUNTS_OK;
}

int accounts_open(accounts **out, const char *dir, char *err, size_t errlen) {
    *out = NULL;
    if (errlen) err[0] = '\0';
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot be initialised");
        return ACCOUNTS_ECRYPTO;
    }
    accounts *a = calloc(1, sizeof *a);
    size_t n = strlen(dir);
    if (!a || !(a->path = malloc(n + sizeof "/chat.db"))) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return ACCOUNTS_ENOMEM;
    }
    memcpy(a->path, dir, n);
    memcpy(a->path + n, "/chat.db", sizeof "/chat.db");
    long long v = 0;
    int rc = db_connect(a, &v, err, errlen);
    if (rc == ACCOUNTS_OK && v < STORE_SCHEMA_VERSION) {
        /* (void): user_version finalized its statement, so the close
         * cannot be busy */
        (void)sqlite3_close(a->db);
        a->db = NULL;
        rc = migrate_via_store(dir, err, errlen);
        if (rc == ACCOUNTS_OK) rc = db_connect(a, &v, err, errlen);
    }
    if (rc == ACCOUNTS_OK && v != STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: the database has schema version %lld but "
                 "this chat-server knows version %d; it was not modified",
                 a->path, v, STORE_SCHEMA_VERSION);
        rc = ACCOUNTS_EDB;
    }
    if (rc != ACCOUNTS_OK) {
        accounts_close(a);
        return rc;
    }
    *out = a;
    return ACCOUNTS_OK;
}

void accounts_close(accounts *a) {
    if (!a) return;
    /* (void): every function here finalizes its statement before it
     * returns, so the close cannot be busy (NULL is a no-op) */
    (void)sqlite3_close(a->db);
    free(a->path);
    free(a);
}

/* Run sql with up to two integer/text parameters; for statements that
 * return no rows. Sets *changes. */
static int exec_stmt(accounts *a, const char *sql, uint32_t id,
                     const char *text, int64_t num, int *changes) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(a->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return ACCOUNTS_EDB;
    int np = sqlite3_bind_parameter_count(st);
    rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK && np >= 2)
        rc = sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && np >= 3) rc = sqlite3_bind_int64(st, 3, num);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    if (rc == SQLITE_DONE) {
        *changes = sqlite3_changes(a->db);
        return ACCOUNTS_OK;
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return ACCOUNTS_EEXIST;
    return (rc & 0xff) == SQLITE_NOMEM ? ACCOUNTS_ENOMEM : ACCOUNTS_EDB;
}

/* Read id's hash into out. */
static int get_hash(accounts *a, uint32_t id, char out[crypto_pwhash_STRBYTES]) {
    _Static_assert(ACCOUNTS_HASH_MAX >= crypto_pwhash_STRBYTES,
                   "ACCOUNTS_HASH_MAX too small for crypto_pwhash_str");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, "SELECT hash FROM accounts WHERE id=?1",
                           -1, &st, NULL) != SQLITE_OK)
        return ACCOUNTS_EDB;
    int rc = sqlite3_bind_int64(st, 1, id), r;
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 0);
        snprintf(out, crypto_pwhash_STRBYTES, "%s", h ? (const char *)h : "");
        r = ACCOUNTS_OK;
    } else {
        r = rc == SQLITE_DONE ? ACCOUNTS_ENOENT : ACCOUNTS_EDB;
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    return r;
}

int accounts_exists(accounts *a, uint32_t id) {
    char h[crypto_pwhash_STRBYTES];
    int r = get_hash(a, id, h);
    return r == ACCOUNTS_OK ? 1 : r == ACCOUNTS_ENOENT ? 0 : r;
}

static int hash_pw(const char *pw, size_t len, char out[crypto_pwhash_STRBYTES]) {
    if (crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return ACCOUNTS_ENOMEM;
    return ACCOUNTS_OK;
}

int accounts_make_hash(const char *pw, size_t len,
                       char out[ACCOUNTS_HASH_MAX]) {
    if (len == 0) return ACCOUNTS_EINVAL;
    return hash_pw(pw, len, out);
}

int accounts_add(accounts *a, uint32_t id, const char *pw, size_t len) {
    if (id == 0 || len == 0) return ACCOUNTS_EINVAL;
    char h[crypto_pwhash_STRBYTES];
    int r = hash_pw(pw, len, h), changes = 0;
    if (r == ACCOUNTS_OK)
        r = exec_stmt(a, "INSERT INTO accounts(id, hash, created) "
                      "VALUES(?1, ?2, ?3)", id, h, (int64_t)time(NULL),
                      &changes);
    return r;
}

int accounts_passwd(accounts *a, uint32_t id, const char *pw, size_t len) {
    if (id == 0 || len == 0) return ACCOUNTS_EINVAL;
    char h[crypto_pwhash_STRBYTES];
    int r = hash_pw(pw, len, h), changes = 0;
    if (r == ACCOUNTS_OK)
        r = exec_stmt(a, "UPDATE accounts SET hash=?2 WHERE id=?1", id, h, 0,
                      &changes);
    return r == ACCOUNTS_OK && changes == 0 ? ACCOUNTS_ENOENT : r;
}

int accounts_del(accounts *a, uint32_t id) {
    int changes = 0;
    int r = exec_stmt(a, "DELETE FROM accounts WHERE id=?1", id, NULL, 0,
                      &changes);
    return r == ACCOUNTS_OK && changes == 0 ? ACCOUNTS_ENOENT : r;
}

int accounts_hash(accounts *a, uint32_t id, char out[ACCOUNTS_HASH_MAX]) {
    return get_hash(a, id, out);
}

int accounts_check(const char *hash, const char *pw, size_t len) {
    return crypto_pwhash_str_verify(hash, pw, len) == 0 ? ACCOUNTS_OK
                                                        : ACCOUNTS_EBADPW;
}

int accounts_verify(accounts *a, uint32_t id, const char *pw, size_t len) {
    char h[ACCOUNTS_HASH_MAX];
    int r = get_hash(a, id, h);
    if (r != ACCOUNTS_OK) return r;
    return accounts_check(h, pw, len);
}

int accounts_list(accounts *a, uint32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, "SELECT id FROM accounts ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK)
        return ACCOUNTS_EDB;
    size_t cap = 0;
    int rc, r = ACCOUNTS_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            uint32_t *p = realloc(*ids, nc * sizeof *p);
            if (!p) {
                r = ACCOUNTS_ENOMEM;
                break;
            }
            *ids = p;
            cap = nc;
        }
        (*ids)[(*n)++] = (uint32_t)sqlite3_column_int64(st, 0);
    }
    if (r == ACCOUNTS_OK && rc != SQLITE_DONE) r = ACCOUNTS_EDB;
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    if (r != ACCOUNTS_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return r;
}
