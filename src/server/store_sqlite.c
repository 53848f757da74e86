/*
 * store_sqlite.c -- the SQLite store's database (see store_int.h): its
 * constructor store_open (the handle, with the operations table of
 * store_loop.c), which takes the data directory's lock (<dir>/chat.lock),
 * opens <dir>/chat.db, checks that it is ours, migrates its schema,
 * prepares the statements the store thread runs and starts that thread;
 * and the reverse (store__close: store_free).
 *
 * Its schema version is PRAGMA user_version; migrations[] below upgrades an
 * older file one step per transaction. A file that is damaged, is not a
 * database, belongs to something else or to a newer version is refused and
 * never modified.
 */
#include "server/store_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* -- small helpers ------------------------------------------------------- */

static int64_t clock_ms(clockid_t id) {
    struct timespec ts = {0, 0};
    (void)clock_gettime(id, &ts); /* both clocks below always exist on Linux */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
int64_t store__wall_ms(void) { return clock_ms(CLOCK_REALTIME); }
int64_t store__mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static int is_corrupt(int rc) {
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* What went wrong, for a log line: SQLITE_NOMEM may be ours (a counter or
 * a result array), so it does not come from sqlite3_errmsg. */
const char *store__why(const store_sqlite *s, int rc) {
    return rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db);
}

/* The STORE_* status for a failed transaction's SQLite code. */
int store__status_of(int rc) {
    switch (rc & 0xff) {
    case SQLITE_FULL: return STORE_EFULL;
    case SQLITE_NOMEM: return STORE_ENOMEM;
    default: return STORE_EIO;
    }
}

int store_global_init(void) {
    int rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return rc == SQLITE_OK ? 0 : rc;
}

/* -- the data directory's lock ------------------------------------------- */

/* flock rather than an fcntl lock: an fcntl lock belongs to the process
 * and is lost when any descriptor of that file in the process closes,
 * while flock belongs to this open file description only. A file of its
 * own rather than chat.db: SQLite's locking on chat.db is fcntl byte
 * ranges, and a restore renames chat.db (a lock on it would go with the
 * old file). */
int store_lock_dir(const char *dir, char *err, size_t errlen) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/chat.lock", dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(err, errlen, "%s: the data directory's path is too long",
                 dir);
        return STORE_EIO;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open the lock file (%s). Check "
                 "that the data directory exists and that this user may "
                 "write to it.", path, strerror(errno));
        return STORE_EIO;
    }
    int r;
    while ((r = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {}
    if (r == 0) return fd;
    int e = errno;
    (void)close(fd); /* only opened: closing it loses nothing */
    if (e == EWOULDBLOCK) {
        snprintf(err, errlen, "another chat-server uses %s (it holds the "
                 "lock %s). Stop it first, or give this one another "
                 "--data-dir.", dir, path);
        return STORE_EBUSY;
    }
    snprintf(err, errlen, "%s: cannot lock the data directory (%s). Use a "
             "local file system.", path, strerror(e));
    return STORE_EIO;
}

/* -- opening ----------------------------------------------------------- */

/* Fill err for a failed SQLite call rc while doing `what`; return the
 * STORE_* code. */
static int db_error(store_sqlite *s, int rc, const char *what, char *err,
                    size_t errlen) {
    const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    if (is_corrupt(rc)) {
        snprintf(err, errlen, "%s: the database is damaged or is not a "
                 "chat-server database (%s). Move it aside (or restore a "
                 "backup) and start again; the server never overwrites it.",
                 s->path, msg);
        return STORE_ECORRUPT;
    }
    if ((rc & 0xff) == SQLITE_FULL) {
        snprintf(err, errlen, "%s: the disk is full while %s (%s). Free "
                 "some space and start again.", s->path, what, msg);
        return STORE_EFULL;
    }
    snprintf(err, errlen, "%s: cannot %s (%s). Check that the data "
             "directory exists and that this user may write to it.",
             s->path, what, msg);
    return (rc & 0xff) == SQLITE_NOMEM ? STORE_ENOMEM : STORE_EIO;
}

/* Run sql returning one integer row into *out (0 when NULL). */
static int query_int(sqlite3 *db, const char *sql, int64_t *out) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    return rc;
}

/* Schema migrations: migrations[i] takes user_version i to i + 1. Append
 * new ones; never edit a released one. */
static const char *const migrations[] = {
    /* 1: messages and the index that serves fetches by receiver */
    "CREATE TABLE messages(id INTEGER PRIMARY KEY,"
    " receiver INTEGER NOT NULL, sender INTEGER NOT NULL,"
    " type INTEGER NOT NULL, ts INTEGER NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX messages_by_receiver ON messages(receiver, id);",
    /* 2: accounts (server/accounts.c): Argon2id hash strings */
    "CREATE TABLE accounts(id INTEGER PRIMARY KEY, hash TEXT NOT NULL,"
    " created INTEGER NOT NULL);",
    /* 3: devices and their cursors, own copies, client ids (store_dev.c).
     * The messages stored by version 2 keep their rows: sdev 0, own 0,
     * so they go to their receivers' devices, whose first starts at 0. */
    "ALTER TABLE messages ADD COLUMN sdev INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN own INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_own ON messages(sender, id) WHERE own = 1;"
    "CREATE TABLE devices(user INTEGER NOT NULL, dev INTEGER NOT NULL,"
    " name TEXT NOT NULL, conv INTEGER NOT NULL, cursor INTEGER NOT NULL,"
    " seen INTEGER NOT NULL, PRIMARY KEY(user, dev)) WITHOUT ROWID;"
    "CREATE TABLE dedup(id INTEGER PRIMARY KEY, user INTEGER NOT NULL,"
    " dev INTEGER NOT NULL, cid INTEGER NOT NULL, ts INTEGER NOT NULL);"
    "CREATE INDEX dedup_by_device ON dedup(user, dev, id);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    /* groups (store_group.c): a group message is one row, receiver 0 */
    "ALTER TABLE messages ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_grp ON messages(grp, id)"
    " WHERE grp != 0 AND receiver = 0;"
    "CREATE TABLE groups(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE members(grp INTEGER NOT NULL, user INTEGER NOT NULL,"
    " admin INTEGER NOT NULL, joined INTEGER NOT NULL, ord INTEGER NOT NULL,"
    " PRIMARY KEY(grp, user)) WITHOUT ROWID;"
    "CREATE INDEX members_by_user ON members(user, grp);",
    /* 4: signals (store_sig.c): read marks, and the contacts that allow
     * presence. Only new tables: every row of version 3 stays. IF NOT
     * EXISTS: a version-3 file that has them already (made by a
     * development build of this step) upgrades too. */
    "CREATE TABLE IF NOT EXISTS reads(user INTEGER NOT NULL,"
    " kind INTEGER NOT NULL, peer INTEGER NOT NULL, upto INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, PRIMARY KEY(user, kind, peer)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS contacts(a INTEGER NOT NULL,"
    " b INTEGER NOT NULL, PRIMARY KEY(a, b)) WITHOUT ROWID;",
    /* 5: the server id of the message a client id named (POSTED answers a
     * resend with it); 0 for the client ids version 4 kept */
    "ALTER TABLE dedup ADD COLUMN msg INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int64_t)(sizeof migrations / sizeof *migrations))
_Static_assert(sizeof migrations / sizeof *migrations == STORE_SCHEMA_VERSION,
               "store.h names the version the migrations reach");

/* Refuse, without writing, a file of a newer version or of another
 * program. Reading user_version is the first read of the file, so this is
 * also where a file that is not a database is found. */
static int check_file(store_sqlite *s, int64_t *version, char *err,
                      size_t errlen) {
    int rc = query_int(s->db, "PRAGMA user_version", version);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "read the database", err, errlen);
    if (*version > SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: the database has schema version %" PRId64
                 " but this chat-server knows versions up to %" PRId64 " (it "
                 "was written by a newer release). Run that release, or move "
                 "the file aside; it was not modified.", s->path, *version,
                 SCHEMA_VERSION);
        return STORE_ECORRUPT;
    }
    int64_t objects = 0;
    if (*version == 0) {
        rc = query_int(s->db, "SELECT count(*) FROM sqlite_schema", &objects);
        if (rc != SQLITE_OK)
            return db_error(s, rc, "read the database", err, errlen);
    }
    if (objects > 0) {
        snprintf(err, errlen, "%s: the database is damaged or is not a "
                 "chat-server database (it holds %" PRId64 " tables or "
                 "indexes but no chat-server schema version). Move it aside "
                 "and start again; the server never overwrites it.",
                 s->path, objects);
        return STORE_ECORRUPT;
    }
    return STORE_OK;
}

/* Bring the schema from version v to SCHEMA_VERSION, one transaction per
 * step (a crash leaves a whole version). */
static int migrate(store_sqlite *s, int64_t v, char *err, size_t errlen) {
    for (; v < SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%" PRId64, v + 1);
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(s->db, bump, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            int code = db_error(s, rc, "upgrade the database schema", err,
                                errlen);
            /* (void): the first error is the one reported; a connection
             * left in the transaction is closed next, which rolls back */
            if (!sqlite3_get_autocommit(s->db))
                (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return code;
        }
        log_info("store_schema_upgraded",
                 "store: %s: schema upgraded to version %" PRId64, s->path,
                 v + 1);
    }
    return STORE_OK;
}

/* PRAGMA journal_mode=WAL, checking that it took. */
static int set_wal(store_sqlite *s, char *err, size_t errlen) {
    char mode[16] = "";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st,
                                NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *m = sqlite3_column_text(st, 0);
        snprintf(mode, sizeof mode, "%s", m ? (const char *)m : "");
        rc = SQLITE_OK;
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_OK)
        return db_error(s, rc, "switch the database to WAL mode", err, errlen);
    if (strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "%s: cannot switch the database to WAL mode "
                 "(journal mode is %s). Use a local file system.", s->path,
                 mode);
        return STORE_EIO;
    }
    return STORE_OK;
}

/* Open the file, check it (read only), then WAL, pragmas, migrations. */
static int db_open(store_sqlite *s, char *err, size_t errlen) {
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
                             SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "open the database", err, errlen);
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        snprintf(err, errlen, "%s: the database is read-only for this user. "
                 "Fix its permissions (and the directory's) and start again.",
                 s->path);
        return STORE_EIO;
    }
    if ((rc = sqlite3_busy_timeout(s->db, BUSY_MS)) != SQLITE_OK)
        return db_error(s, rc, "configure the database", err, errlen);
    /* A row holds at most SQLITE_LIMIT_LENGTH bytes (10^9 in Debian's
     * build); keep 128 for the other columns and the record header. */
    int limit = sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1);
    s->max_body = limit > 128 ? (uint32_t)(limit - 128) : 0;
    int64_t version;
    if ((rc = check_file(s, &version, err, errlen))) return rc;
    if ((rc = set_wal(s, err, errlen))) return rc;
    /* Up to 64 MiB of page cache keeps the receiver index in memory. A
     * transaction dirties about one index page per receiver it touches, and
     * the same pages come back in every transaction: checkpointing every
     * 16384 pages (64 MiB of WAL) rather than SQLite's 1000 writes each to
     * the database file less often (1.0 GB -> 0.67 GB written per million
     * puts to 1000 receivers). The WAL is cut back to 64 MiB afterwards. */
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas, "PRAGMA synchronous=%s;"
             "PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384;"
             "PRAGMA journal_size_limit=67108864;",
             s->cfg.fsync_full ? "FULL" : "NORMAL");
    rc = sqlite3_exec(s->db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "configure the database", err, errlen);
    return migrate(s, version, err, errlen);
}

/* The index of a conversation's history: one more entry per message, so
 * it exists only while --history-ttl is set (made at the first start with
 * it, O(rows) once; dropped at the first start without it). */
static int conv_index(store_sqlite *s, char *err, size_t errlen) {
    const char *sql = s->cfg.history_ttl_ms
        ? "CREATE INDEX IF NOT EXISTS messages_conv ON messages("
          "min(sender, receiver), max(sender, receiver), id)"
          " WHERE receiver != 0"
        : "DROP INDEX IF EXISTS messages_conv";
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK
                           : db_error(s, rc, "index the history", err, errlen);
}

/* next_id and the per-receiver counters. O(rows): one scan of the table
 * at open (NOT INDEXED: reading the table in order and sorting by receiver
 * is 3x faster than walking the index, ~0.6 s per million rows here). */
static int load_state(store_sqlite *s, char *err, size_t errlen) {
    int64_t max;
    int rc = query_int(s->db, "SELECT MAX(id) FROM messages", &max);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "read the database", err, errlen);
    int64_t mark = 0;
    rc = query_int(s->db, "SELECT value FROM meta WHERE key = 'ids'", &mark);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "read the database", err, errlen);
    int64_t clock = (store__wall_ms() - STORE_ID_EPOCH_MS) * 1000;
    if (max < mark) max = mark;
    if (max < clock) max = clock;
    s->next_id = (uint64_t)max + 1;
    s->ids_saved = (uint64_t)max;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(s->db, "SELECT receiver, count(*), "
                            "sum(length(body)) FROM messages NOT INDEXED "
                            "GROUP BY receiver", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t r = (uint32_t)sqlite3_column_int64(st, 0);
        ctr *a = store__ctr_get(&s->ctrs, r), *b = store__ctr_get(&s->seen, r);
        if (!a || !b) {
            rc = SQLITE_NOMEM;
            break;
        }
        a->count = b->count = (uint64_t)sqlite3_column_int64(st, 1);
        a->bytes = b->bytes = (uint64_t)sqlite3_column_int64(st, 2);
        s->stats.messages += b->count;
        s->stats.bytes += b->bytes;
        rc = SQLITE_OK;
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return db_error(s, rc, "read the database", err, errlen);
    if ((rc = store__dev_load(s)) != SQLITE_OK)
        return db_error(s, rc, "read the devices", err, errlen);
    if ((rc = store__group_load(s)) != SQLITE_OK)
        return db_error(s, rc, "read the groups", err, errlen);
    return STORE_OK;
}

/* Every statement the thread runs, prepared once. */
#define FETCH_COLS "m.id, m.sender, m.type, m.body, m.receiver, m.ts, m.grp"

/* The INSERT of STORE_PUT_ROWS puts at once (store_thread.c), the same
 * columns and conflict clause as st_insert. */
static int prepare_rows(store_sqlite *s) {
    static const char head[] =
        "INSERT OR ROLLBACK INTO messages(id, receiver, sender, type, ts,"
        " body, sdev, own, grp) VALUES";
    static const char row[] = "(?,?,?,?,?,?,?,?,?)";
    char sql[sizeof head + STORE_PUT_ROWS * sizeof row];
    size_t n = sizeof head - 1;
    memcpy(sql, head, n);
    for (int i = 0; i < STORE_PUT_ROWS; i++) {
        if (i) sql[n++] = ',';
        memcpy(sql + n, row, sizeof row - 1);
        n += sizeof row - 1;
    }
    sql[n] = '\0';
    return sqlite3_prepare_v3(s->db, sql, (int)n, SQLITE_PREPARE_PERSISTENT,
                              &s->st_insert_rows, NULL);
}

static int prepare_all(store_sqlite *s, char *err, size_t errlen) {
    static const char *const sql[] = {
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        /* OR ROLLBACK: a failed insert fails the whole transaction anyway;
         * with the default (ABORT) SQLite would keep a statement journal,
         * copying every page each INSERT touches first (~10% of a put) */
        "INSERT OR ROLLBACK INTO messages(id, receiver, sender, type, ts,"
        " body, sdev, own, grp) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        "DELETE FROM messages WHERE id = ?1 RETURNING receiver, length(body)",
        /* a device's log after its cursor (?2): what was sent to its user
         * (?1); for a CONV device (?6), what its user sent from its other
         * devices (not ?5); the messages of its user's groups since it
         * joined, but its own (all of them without CONV). Each part walks
         * an index in id order and SQLite merges them. */
        "SELECT " FETCH_COLS " FROM messages m"
        " WHERE m.receiver = ?1 AND m.id > ?2 AND m.ts >= ?3"
        " UNION ALL SELECT " FETCH_COLS " FROM messages m"
        " WHERE ?6 AND m.sender = ?1 AND m.own = 1 AND m.receiver != ?1"
        " AND m.sdev != ?5 AND m.id > ?2 AND m.ts >= ?3"
        " UNION ALL SELECT " FETCH_COLS " FROM members g JOIN messages m"
        " ON m.grp = g.grp AND m.grp != 0 AND m.receiver = 0"
        " AND m.id > max(?2, g.joined)"
        " WHERE g.user = ?1 AND m.ts >= ?3"
        " AND (m.sender != ?1 OR (?6 AND m.sdev != ?5))"
        " ORDER BY 1 LIMIT ?4",
        /* the rows before the oldest live one: see purge_step */
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE id <"
        " coalesce((SELECT id FROM messages WHERE ts >= ?1 ORDER BY id"
        " LIMIT 1), 9223372036854775807) ORDER BY id LIMIT ?2)"
        " RETURNING receiver, length(body)",
        "INSERT OR ROLLBACK INTO dedup(user, dev, cid, ts, msg)"
        " VALUES(?1, ?2, ?3, ?4, ?5)",
        "SELECT cid, ts, msg FROM dedup WHERE user = ?1 AND dev = ?2"
        " AND ts >= ?3 ORDER BY id DESC LIMIT ?4",
        /* ts never decreases with id, as for messages (purge_step) */
        "DELETE FROM dedup WHERE id IN (SELECT id FROM dedup WHERE id <"
        " coalesce((SELECT id FROM dedup WHERE ts >= ?1 ORDER BY id"
        " LIMIT 1), 9223372036854775807) ORDER BY id LIMIT ?2)",
        "INSERT OR REPLACE INTO devices(user, dev, name, conv, cursor, seen)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        "DELETE FROM devices WHERE user = ?1 AND dev = ?2",
        "SELECT id, sender, sdev, own, ts FROM messages"
        " WHERE receiver = ?1 AND id > ?2 AND id <= ?3",
        "SELECT id, receiver, sdev, ts FROM messages"
        " WHERE sender = ?1 AND own = 1 AND receiver != ?1"
        " AND id > ?2 AND id <= ?3",
        "SELECT id, receiver, sender, sdev, own, ts, grp FROM messages"
        " WHERE id > ?1 ORDER BY id LIMIT ?2",
        "INSERT OR IGNORE INTO messages(id, receiver, sender, type, ts,"
        " body, sdev, own, grp) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        "INSERT OR REPLACE INTO meta(key, value) VALUES('ids', ?1)",
        "INSERT OR REPLACE INTO groups(id, name, created) VALUES(?1, ?2, ?3)",
        "DELETE FROM groups WHERE id = ?1",
        /* ord: the join order (the longest-standing member is the next
         * admin), kept across restarts */
        "INSERT OR REPLACE INTO members(grp, user, admin, joined, ord)"
        " VALUES(?1, ?2, ?3, ?4, ?5)",
        "DELETE FROM members WHERE grp = ?1 AND user = ?2",
        "DELETE FROM messages WHERE grp = ?1 AND grp != 0 AND receiver = 0"
        " AND id <= ?2 AND ts < ?3 RETURNING receiver, length(body)",
        /* history: the conversation of ?1 and ?2 (messages_conv, made
         * when --history-ttl is set: see conv_index) */
        "SELECT " FETCH_COLS " FROM messages m"
        " WHERE min(m.sender, m.receiver) = min(?1, ?2)"
        " AND max(m.sender, m.receiver) = max(?1, ?2) AND m.receiver != 0"
        " AND m.grp = 0"
        " AND m.id < ?3 AND m.ts >= ?4 ORDER BY m.id DESC LIMIT ?5",
        "SELECT " FETCH_COLS " FROM messages m"
        " WHERE m.grp = ?1 AND m.grp != 0 AND m.receiver = 0"
        " AND m.id < ?3 AND m.id > ?2 AND m.ts >= ?4"
        " ORDER BY m.id DESC LIMIT ?5",
        "UPDATE members SET admin = 1 WHERE grp = ?1 AND user = ?2",
        "UPDATE members SET joined = ?3 WHERE grp = ?1 AND user = ?2",
    };
    sqlite3_stmt **st[] = STATEMENTS(s);
    _Static_assert(sizeof sql / sizeof *sql == sizeof st / sizeof *st,
                   "one SQL text per statement");
    for (size_t i = 0; i < sizeof st / sizeof *st; i++) {
        int rc = sqlite3_prepare_v3(s->db, sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, st[i], NULL);
        if (rc != SQLITE_OK)
            return db_error(s, rc, "prepare the statements", err, errlen);
    }
    int rc = store__sig_prepare(s);
    if (rc == SQLITE_OK) rc = prepare_rows(s);
    return rc == SQLITE_OK ? STORE_OK
                           : db_error(s, rc, "prepare the statements", err,
                                      errlen);
}

/* -- open / close -------------------------------------------------------- */

/* Everything store_open may have set up; s may be partly built. */
static void destroy(store_sqlite *s) {
    sqlite3_stmt **st[] = STATEMENTS(s), **sig[] = SIG_STATEMENTS(s);
    /* (void): finalize repeats the statement's last error, which was
     * handled when it ran */
    for (size_t i = 0; i < sizeof st / sizeof *st; i++)
        (void)sqlite3_finalize(*st[i]);
    for (size_t i = 0; i < sizeof sig / sizeof *sig; i++)
        (void)sqlite3_finalize(*sig[i]);
    (void)sqlite3_finalize(s->st_insert_rows);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        log_error("store_close_failed",
                  "store: %s: closing the database failed (%s)", s->path,
                  sqlite3_errmsg(s->db));
    /* (void): the lock goes with the descriptor, after the database (a
     * restore may then move the files); the lock file was never written */
    if (s->lock_fd >= 0) (void)close(s->lock_fd);
    store__batch_free_list(s->inq);
    store__batch_free_list(s->outq);
    store__batch_free_list(s->spare);
    store__batch_free(s->cur);
    store__ctr_free(&s->ctrs);
    store__ctr_free(&s->seen);
    store__dev_free(s);
    store__group_free(s);
    free(s->scratch);
    free(s->touched);
    free(s->retry);
    free(s->failq);
    free(s->path);
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    free(s);
}

/* The mutex and the condition variable (libuv's waits on the monotonic
 * clock). 0 or -1. */
static int sync_init(store_sqlite *s) {
    if (uv_mutex_init(&s->mu)) return -1;
    if (uv_cond_init(&s->cv)) {
        uv_mutex_destroy(&s->mu);
        return -1;
    }
    return 0;
}

/* (void): the thread is ours, joinable, not this one and joined once, so
 * uv_thread_join cannot fail. */
static void join(store_sqlite *s) { (void)uv_thread_join(&s->thread); }

/* The thread first, then the async handle: a failure before the handle
 * exists needs no loop iteration to clean up. mu is held across both, and
 * the thread sends on the handle only under mu, so never before it is
 * initialised. */
static int start(store_sqlite *s, uv_loop_t *loop, char *err, size_t errlen) {
    uv_mutex_lock(&s->mu);
    int r = uv_thread_create(&s->thread, store__thread_main, s);
    if (r) {
        uv_mutex_unlock(&s->mu);
        snprintf(err, errlen, "cannot start the store thread: %s",
                 uv_strerror(r));
        return STORE_ENOMEM;
    }
    s->async.data = s;
    if ((r = uv_async_init(loop, &s->async, store__on_async))) {
        snprintf(err, errlen, "cannot create the store's wake-up handle: %s",
                 uv_strerror(r));
        s->quit = 1; /* the thread exits without touching the handle */
        uv_mutex_unlock(&s->mu);
        join(s);
        return STORE_EIO;
    }
    uv_mutex_unlock(&s->mu);
    return STORE_OK;
}

int store_open(store **out, uv_loop_t *loop, const store_config *cfg,
               const store_callbacks *cb, char *err, size_t errlen) {
    *out = NULL;
    if (errlen) err[0] = '\0';
    store_sqlite *s = calloc(1, sizeof *s);
    size_t n = strlen(cfg->dir);
    if (!s || !(s->path = malloc(n + sizeof "/chat.db")) || sync_init(s)) {
        snprintf(err, errlen, "out of memory opening the store");
        if (s) free(s->path);
        free(s);
        return STORE_ENOMEM;
    }
    s->base.ops = &store__sqlite_ops;
    s->lock_fd = -1;
    memcpy(s->path, cfg->dir, n);
    memcpy(s->path + n, "/chat.db", sizeof "/chat.db");
    s->loop = loop;
    s->loop_thread = uv_thread_self();
    s->cb = *cb;
    s->cfg = *cfg;
    s->cfg.dir = NULL;
    store__ctr_init(&s->ctrs);
    store__ctr_init(&s->seen);
    u32map_init(&s->devusers);
    u32map_init(&s->devseen);
    groups_init(&s->groups);
    groups_init(&s->lgroups);
    metrics_hist_init(&s->stats.txn_us, METRICS_LATENCY_US);
    metrics_hist_init(&s->stats.txn_writes, METRICS_COUNT);
    int rc = STORE_OK;
    if (RESERVE(s->failq, s->cfailq, FAILQ_MIN)) {
        snprintf(err, errlen, "out of memory opening the store");
        rc = STORE_ENOMEM;
    }
    if (rc == STORE_OK) { /* before the file is opened, let alone migrated */
        s->lock_fd = store_lock_dir(cfg->dir, err, errlen);
        if (s->lock_fd < 0) rc = s->lock_fd;
    }
    if (rc == STORE_OK) rc = db_open(s, err, errlen);
    if (rc == STORE_OK) rc = conv_index(s, err, errlen);
    if (rc == STORE_OK) rc = load_state(s, err, errlen);
    if (rc == STORE_OK) rc = prepare_all(s, err, errlen);
    if (rc == STORE_OK) rc = start(s, loop, err, errlen);
    if (rc != STORE_OK) {
        destroy(s);
        return rc;
    }
    *out = &s->base;
    assert(store__check_loop(s));
    return STORE_OK;
}

void store__close(store_sqlite *s) {
    if (!s->stopped) { /* misuse, but do not leave a thread or a handle */
        store__stop(s);
        /* (void): the count of handles still active is not ours to judge */
        (void)uv_run(s->loop, UV_RUN_NOWAIT);
    }
    join(s);
    destroy(s);
}

