/*
 * backup.c -- `chat-server backup` and `chat-server restore` (backup.h).
 *
 * Both make their copy the same way (copy_db): SQLite's online backup API
 * from a read-only connection into a temporary file, then, on the copy:
 * journal mode DELETE (one self-contained file: no -wal or -shm beside
 * it), PRAGMA quick_check, the schema version and the message count, and
 * an fsync. backup then gives the copy its name (FILE); restore sets the
 * database it replaces aside and renames the copy to DIR/chat.db.
 *
 * Why restore copies into DIR/chat.db.restore-tmp and renames, rather than
 * running the backup API into DIR/chat.db itself: a rename is atomic, so
 * DIR/chat.db is at every instant the old database or the whole copy; the
 * backup API into a live WAL database would need the same page size on
 * both sides, write every page twice (WAL, then checkpoint), and could not
 * replace a database too damaged to open, which is when one restores.
 * The rename is safe because nothing of the old database's -wal, -shm or
 * -journal is left beside the new file (set_aside): SQLite would apply a
 * stale WAL or hot journal to whatever file then has the name.
 */
#include "server/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "server/store.h"

#define PATH_BUF 4096
#define BUSY_WAIT_MS 5000 /* per SQLite call; the server's commits take ms */
#define BUSY_TRIES 50     /* backup steps retried past that, 100 ms apart */

/* The files SQLite keeps beside a database; -wal and -journal hold data
 * (a WAL's commits not yet checkpointed, a hot journal's pages), -shm
 * only an index rebuilt from the WAL. */
static const char *const sides[] = {"-wal", "-journal", "-shm"};
#define NSIDES (sizeof sides / sizeof *sides)

/* What a copy holds, for the summary line. */
typedef struct copy_info {
    int64_t version, messages;
} copy_info;

/* -- the command line --------------------------------------------------- */

int backup_parse_args(int argc, char **argv, int force_ok, backup_args *a,
                      char *err, size_t errlen) {
    *a = (backup_args){.dir = CONFIG_DEFAULT_DATA_DIR};
    int operands = 0; /* after "--", everything is FILE */
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int opt = !operands && s[0] == '-' && s[1] != '\0';
        if (opt && (!strcmp(s, "--help") || !strcmp(s, "-h"))) {
            a->help = 1;
            return 0;
        } else if (opt && !strcmp(s, "--")) {
            operands = 1;
        } else if (opt && !strcmp(s, "--data-dir")) {
            if (++i == argc) {
                snprintf(err, errlen, "--data-dir needs a directory");
                return -1;
            }
            a->dir = argv[i];
            a->dir_set = 1;
        } else if (opt && !strncmp(s, "--data-dir=", 11)) {
            a->dir = s + 11;
            a->dir_set = 1;
        } else if (opt && !strcmp(s, "--config")) {
            if (++i == argc) {
                snprintf(err, errlen, "--config needs a file");
                return -1;
            }
            a->config = argv[i];
        } else if (opt && !strncmp(s, "--config=", 9)) {
            a->config = s + 9;
        } else if (opt && force_ok && !strcmp(s, "--force")) {
            a->force = 1;
        } else if (opt) {
            snprintf(err, errlen, "unknown option %s", s);
            return -1;
        } else if (!a->file) {
            a->file = s;
        } else {
            snprintf(err, errlen, "one FILE only, not \"%s\" and \"%s\"",
                     a->file, s);
            return -1;
        }
    }
    if (!a->file || !*a->file) {
        snprintf(err, errlen, "name the backup FILE");
        return -1;
    }
    if (!*a->dir) {
        snprintf(err, errlen, "--data-dir is empty");
        return -1;
    }
    return 0;
}

int backup_aside_name(char *out, size_t n, const char *db, time_t t,
                      unsigned seq) {
    struct tm tm;
    char stamp[32];
    int r = -1;
    if (gmtime_r(&t, &tm) &&
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) > 0)
        r = seq ? snprintf(out, n, "%s.before-restore-%s-%u", db, stamp, seq)
                : snprintf(out, n, "%s.before-restore-%s", db, stamp);
    if (r < 0 || (size_t)r >= n) {
        if (n) out[0] = '\0';
        return -1;
    }
    return 0;
}

static void usage(FILE *out, int restore) {
    if (restore)
        fprintf(out,
"Usage: chat-server restore [--data-dir DIR | --config CONF] FILE\n"
"Put the copy FILE (made by `chat-server backup`) in place as DIR/chat.db\n"
"(default DIR %s; created if missing). FILE is checked first (a\n"
"chat-server database of schema version 1 to %d, PRAGMA quick_check ok);\n"
"the database it replaces is kept as DIR/chat.db.before-restore-<UTC time>.\n"
"Refused while a server runs on DIR: stop it first. The next start\n"
"upgrades an older schema.\n", CONFIG_DEFAULT_DATA_DIR, STORE_SCHEMA_VERSION);
    else
        fprintf(out,
"Usage: chat-server backup [--data-dir DIR | --config CONF] [--force] FILE\n"
"Copy DIR/chat.db (default DIR %s) to FILE, consistently, while a server\n"
"runs on DIR and takes messages: every message acknowledged before the\n"
"backup began is in the copy. The copy is checked (PRAGMA quick_check) and\n"
"synced before it gets its name; FILE.tmp is used meanwhile.\n"
"  --force   replace FILE if it exists (refused otherwise)\n"
"With --config, DIR is the data-dir of the server's config file (as\n"
"`chat-server --config CONF` reads it); --data-dir wins over it.\n",
            CONFIG_DEFAULT_DATA_DIR);
}

/* The command line of backup (restore 0) or restore: -1 to go on with *a,
 * else the exit status (2 with a sentence and the usage, 0 after --help). */
static int command_line(int argc, char **argv, int restore, backup_args *a) {
    char err[PATH_BUF];
    if (backup_parse_args(argc, argv, !restore, a, err, sizeof err)) {
        fprintf(stderr, "chat-server %s: %s.\n",
                restore ? "restore" : "backup", err);
        usage(stderr, restore);
        return 2;
    }
    if (a->help) {
        usage(stdout, restore);
        return 0;
    }
    if (a->config && !a->dir_set && /* the server's data-dir */
        !(a->dir = config_file_data_dir(a->config, err, sizeof err))) {
        fprintf(stderr, "chat-server %s: %s\n",
                restore ? "restore" : "backup", err);
        return 2;
    }
    return -1;
}

/* -- files --------------------------------------------------------------- */

/* a + b into out (PATH_BUF bytes); -1 when it does not fit. */
static int join(char *out, const char *a, const char *b) {
    int n = snprintf(out, PATH_BUF, "%s%s", a, b);
    return n < 0 || n >= PATH_BUF ? -1 : 0;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The size of a file, 0 when it does not exist. */
static off_t size_of(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 ? st.st_size : 0;
}

/* The directory of path into out (PATH_BUF bytes). */
static void dir_of(const char *path, char *out) {
    snprintf(out, PATH_BUF, "%s", path); /* path fits: the caller built it */
    char *slash = strrchr(out, '/');
    if (!slash) snprintf(out, PATH_BUF, ".");
    else if (slash == out) out[1] = '\0';
    else *slash = '\0';
}

/* fsync a file or a directory (a rename is durable once its directory
 * is). 0, or -1 with a sentence. */
static int sync_path(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot sync it to the disk (%s)", path,
                 strerror(errno));
        if (fd >= 0) (void)close(fd); /* only read: nothing to lose */
        return -1;
    }
    (void)close(fd); /* only read, and synced: nothing to lose */
    return 0;
}

/* Remove path and its side files if they exist. 0, or -1 with a
 * sentence. */
static int remove_with_sides(const char *path, char *err, size_t errlen) {
    char p[PATH_BUF];
    for (size_t i = 0; i <= NSIDES; i++) {
        if (join(p, path, i ? sides[i - 1] : "") != 0) {
            snprintf(err, errlen, "%s: the path is too long", path);
            return -1;
        }
        if (unlink(p) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "%s: cannot remove it (%s)", p,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* -- the copy ------------------------------------------------------------ */

/* The first column of sql's first row: as an integer into *i, or as text
 * into txt (n bytes) when txt is not NULL. An SQLite code. */
static int query1(sqlite3 *db, const char *sql, int64_t *i, char *txt,
                  size_t n) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && txt) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(txt, n, "%s", t ? (const char *)t : "");
    } else if (rc == SQLITE_ROW) {
        *i = sqlite3_column_int64(st, 0);
    }
    rc = rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_EMPTY : rc;
    (void)sqlite3_finalize(st); /* repeats the step's error, in rc */
    return rc;
}

static const char *why(sqlite3 *db, int rc) {
    return db && rc != SQLITE_EMPTY ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
}

/* Every page of src in one step. One step is one read transaction on the
 * source, and a read transaction in WAL mode sees exactly the commits made
 * before it began, however long the copy takes, while the server's writer
 * keeps committing (into the WAL, which the reader does not block; only
 * the checkpoint waits behind it). In several steps, a commit between two
 * of them would restart the copy, over and over under load. A BUSY here is
 * a read transaction that could not begin (a checkpoint resetting the
 * WAL), so the step is tried again. */
static int copy_pages(sqlite3 *in, sqlite3 *out) {
    sqlite3_backup *b = sqlite3_backup_init(out, "main", in, "main");
    if (!b) return sqlite3_errcode(out);
    int rc;
    for (int tries = 0;; tries++) {
        rc = sqlite3_backup_step(b, -1);
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries == BUSY_TRIES)
            break;
        /* (void): returns the time slept, nothing to check */
        (void)sqlite3_sleep(100);
    }
    int frc = sqlite3_backup_finish(b); /* repeats a step's error */
    return rc != SQLITE_DONE ? rc : frc;
}

/* Check the copy (connection out) and fill *info; src names the file it
 * came from in the sentences (the copy is its pages). */
static int check_copy(sqlite3 *out, const char *src, copy_info *info,
                      char *err, size_t errlen) {
    char txt[256];
    int64_t tables = 0;
    *info = (copy_info){0, 0};
    /* The copy's header says WAL, as its source's did: make it a
     * rollback-journal file, so that opening it (read-only even) creates
     * no -wal and -shm beside it, and it travels as one file. */
    int rc = query1(out, "PRAGMA journal_mode=DELETE", NULL, txt, sizeof txt);
    if (rc == SQLITE_OK && strcmp(txt, "delete") != 0) rc = SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot set the copy's journal mode (%s)",
                 src, rc == SQLITE_ERROR ? txt : why(out, rc));
        return -1;
    }
    rc = query1(out, "PRAGMA quick_check", NULL, txt, sizeof txt);
    if (rc != SQLITE_OK || strcmp(txt, "ok") != 0) {
        snprintf(err, errlen, "%s is damaged (quick_check: %s)", src,
                 rc == SQLITE_OK ? txt : why(out, rc));
        return -1;
    }
    rc = query1(out, "PRAGMA user_version", &info->version, NULL, 0);
    if (rc == SQLITE_OK)
        rc = query1(out, "SELECT count(*) FROM sqlite_schema WHERE "
                    "type = 'table' AND name = 'messages'", &tables, NULL, 0);
    if (rc == SQLITE_OK && info->version > STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s has schema version %" PRId64 ", but this "
                 "chat-server knows versions up to %d (it was written by a "
                 "newer release: use that release's chat-server)", src,
                 info->version, STORE_SCHEMA_VERSION);
        return -1;
    }
    if (rc == SQLITE_OK && (info->version < 1 || tables != 1)) {
        snprintf(err, errlen, "%s is an SQLite database but not a "
                 "chat-server one (schema version %" PRId64 ", %s)", src,
                 info->version, tables ? "a messages table"
                                       : "no messages table");
        return -1;
    }
    if (rc == SQLITE_OK)
        rc = query1(out, "SELECT count(*) FROM messages", &info->messages,
                    NULL, 0);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot read the copy (%s)", src,
                 why(out, rc));
        return -1;
    }
    return 0;
}

/* Copy the database src into the new file dst (any old dst removed
 * first), check the copy and sync it. 0, or -1 with a sentence (dst is
 * then removed). */
static int copy_db(const char *src, const char *dst, copy_info *info,
                   char *err, size_t errlen) {
    if (remove_with_sides(dst, err, errlen)) return -1;
    sqlite3 *in = NULL, *out = NULL;
    int64_t v = 0;
    int ok = -1;
    /* Read-only: the copy must not change the source, and a read-only
     * connection to a WAL database never checkpoints it. The first read
     * is where a file that is not a database shows. */
    int rc = sqlite3_open_v2(src, &in, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(in, BUSY_WAIT_MS);
    if (rc == SQLITE_OK) rc = query1(in, "PRAGMA user_version", &v, NULL, 0);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot read it as a chat-server database "
                 "(%s)", src, why(in, rc));
        goto done;
    }
    rc = sqlite3_open_v2(dst, &out, SQLITE_OPEN_READWRITE |
                         SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(out, BUSY_WAIT_MS);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot create it (%s)", dst, why(out, rc));
        goto done;
    }
    if ((rc = copy_pages(in, out)) != SQLITE_OK) {
        snprintf(err, errlen, "cannot copy %s to %s (%s)", src, dst,
                 sqlite3_errstr(rc));
        goto done;
    }
    if (check_copy(out, src, info, err, errlen)) goto done;
    ok = 0;
done:
    /* (void): in only read; every statement is finalized, so neither
     * close can be busy, and out's data is checked by the sync below */
    (void)sqlite3_close(in);
    if (out && sqlite3_close(out) != SQLITE_OK && ok == 0) {
        snprintf(err, errlen, "%s: cannot close the copy (%s)", dst,
                 sqlite3_errmsg(out));
        ok = -1;
    }
    if (ok == 0) ok = sync_path(dst, err, errlen);
    if (ok != 0) {
        char ignored[8];
        /* (void): the sentence already says what failed; a leftover is
         * removed by the next run */
        (void)remove_with_sides(dst, ignored, sizeof ignored);
    }
    return ok;
}

/* -- backup ------------------------------------------------------------- */

/* 1 when file would be one of the server's files: a name chat.* in the
 * data directory (the same directory, however it is spelled). With
 * --force, replacing DIR/chat.db-wal, or removing it as a side file of
 * DIR/chat.db, would destroy commits of a running server. */
static int in_data_dir(const char *file, const char *dir) {
    char d[PATH_BUF];
    struct stat a, b;
    dir_of(file, d);
    const char *slash = strrchr(file, '/'), *base = slash ? slash + 1 : file;
    return strncmp(base, "chat.", 5) == 0 && stat(d, &a) == 0 &&
           stat(dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Give the checked copy tmp the name file: replacing it with --force
 * (its side files first: they belong to the file replaced), else never
 * (link fails with EEXIST if file appeared meanwhile). */
static int publish(const char *tmp, const char *file, int force, char *err,
                   size_t errlen) {
    int r;
    if (force) {
        char p[PATH_BUF];
        for (size_t i = 0; i < NSIDES; i++)
            if (join(p, file, sides[i]) == 0 && unlink(p) != 0 &&
                errno != ENOENT) {
                snprintf(err, errlen, "%s: cannot remove it, and it would "
                         "be applied to the new %s (%s)", p, file,
                         strerror(errno));
                return -1;
            }
        r = rename(tmp, file);
    } else if ((r = link(tmp, file)) == 0) {
        /* (void): the copy has its name; a leftover tmp is harmless and
         * removed by the next backup */
        (void)unlink(tmp);
    }
    if (r != 0) {
        snprintf(err, errlen, errno == EEXIST
                 ? "%s: appeared while the backup ran; it was left alone "
                   "(%s is the copy)" : "%s: cannot create it from %s (%s)",
                 file, tmp, strerror(errno));
        return -1;
    }
    char dir[PATH_BUF];
    dir_of(file, dir);
    return sync_path(dir, err, errlen);
}

int backup_main(int argc, char **argv) {
    backup_args a;
    char err[3 * PATH_BUF], db[PATH_BUF], tmp[PATH_BUF], p[PATH_BUF];
    int status = command_line(argc, argv, 0, &a);
    if (status >= 0) return status;
    struct stat st;
    errno = 0;
    if (stat(a.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "chat-server backup: cannot use data directory %s: "
                "%s (give the server's --data-dir).\n", a.dir,
                strerror(errno ? errno : ENOTDIR));
        return 1;
    }
    if (join(db, a.dir, "/chat.db") || join(tmp, a.file, ".tmp")) {
        fprintf(stderr, "chat-server backup: %s: the path is too long.\n",
                a.file);
        return 1;
    }
    if (!exists(db)) {
        fprintf(stderr, "chat-server backup: %s does not exist (give the "
                "--data-dir of the server to back up).\n", db);
        return 1;
    }
    if (in_data_dir(a.file, a.dir)) {
        fprintf(stderr, "chat-server backup: %s: in the data directory the "
                "names chat.* are the server's (this one could be its "
                "database or WAL); choose another name or directory.\n",
                a.file);
        return 1;
    }
    for (size_t i = 0; !a.force && i < NSIDES; i++) {
        /* a stale -wal or -journal of FILE would be applied to the copy */
        if (join(p, a.file, i ? sides[i - 1] : "") == 0 && exists(p)) {
            fprintf(stderr, "chat-server backup: %s exists; choose another "
                    "FILE, or pass --force to replace it.\n", p);
            return 1;
        }
    }
    copy_info info = {0, 0};
    if (copy_db(db, tmp, &info, err, sizeof err) ||
        publish(tmp, a.file, a.force, err, sizeof err)) {
        fprintf(stderr, "chat-server backup: %s.\n", err);
        return 1;
    }
    printf("backup: %s: %lld bytes, schema version %" PRId64 ", %" PRId64
           " messages (a consistent copy of %s)\n", a.file,
           (long long)size_of(a.file), info.version, info.messages, db);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* -- restore ------------------------------------------------------------ */

/* Make DIR/chat.db hold every commit by itself: a checkpoint copies the
 * WAL into it and empties the WAL, and closing the last connection removes
 * the WAL. Best effort: a database too damaged for it keeps its WAL, which
 * set_aside then moves with it. */
static void checkpoint(const char *db) {
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(h, BUSY_WAIT_MS) == SQLITE_OK)
        /* (void): its success is seen in the WAL's size (set_aside) */
        (void)sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
                           NULL);
    (void)sqlite3_close(h); /* idem; no statement is left open */
}

/* Move db (DIR/chat.db) and the side files that hold data aside, under
 * the name aside gets ("" when there was nothing), and remove the -shm.
 * The side files first: a stop half way then leaves db without them,
 * never a WAL beside a database it does not belong to. */
static int set_aside(const char *db, char *aside, char *err, size_t errlen) {
    char from[PATH_BUF], to[PATH_BUF];
    aside[0] = '\0';
    if (exists(db)) checkpoint(db);
    int data = exists(db);
    for (size_t i = 0; i < 2; i++) /* -wal, -journal */
        data |= join(from, db, sides[i]) == 0 && size_of(from) > 0;
    time_t now = time(NULL);
    for (unsigned seq = 0; data && !aside[0] && seq < 100; seq++) {
        if (backup_aside_name(aside, PATH_BUF, db, now, seq)) break;
        for (size_t i = 0; aside[0] && i <= NSIDES; i++)
            if (join(to, aside, i ? sides[i - 1] : "") || exists(to))
                aside[0] = '\0';
    }
    if (data && !aside[0]) {
        snprintf(err, errlen, "%s: found no free name to keep it under",
                 db);
        return -1;
    }
    for (size_t i = 0; i <= NSIDES; i++) {
        const char *side = i < NSIDES ? sides[i] : "";
        if (join(from, db, side) || join(to, aside, side)) continue;
        if (!exists(from)) continue;
        /* empty side files, and the -shm, hold nothing: removed */
        int keep = i < NSIDES ? i < 2 && size_of(from) > 0 : 1;
        if (keep ? rename(from, to) : unlink(from)) {
            snprintf(err, errlen, "%s: cannot move it aside (%s); nothing "
                     "was restored", from, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* 1 when path is a regular file; else 0 with errno set (0: it exists but
 * is something else). */
static int regular_file(const char *path) {
    struct stat st;
    errno = 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* DIR, created (mode 0700, as the server does) when missing. */
static int use_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0 && (errno != ENOENT || mkdir(dir, 0700) != 0 ||
                                stat(dir, &st) != 0))
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int restore_main(int argc, char **argv) {
    backup_args a;
    char err[3 * PATH_BUF], db[PATH_BUF], tmp[PATH_BUF], aside[PATH_BUF];
    int status = command_line(argc, argv, 1, &a);
    if (status >= 0) return status;
    if (!regular_file(a.file)) {
        fprintf(stderr, "chat-server restore: %s: %s (name a file made by "
                "`chat-server backup`).\n", a.file,
                errno ? strerror(errno) : "not a regular file");
        return 1;
    }
    if (join(db, a.dir, "/chat.db") || join(tmp, db, ".restore-tmp")) {
        fprintf(stderr, "chat-server restore: %s: the path is too long.\n",
                a.dir);
        return 1;
    }
    if (use_dir(a.dir)) {
        fprintf(stderr, "chat-server restore: cannot use data directory %s: "
                "%s.\n", a.dir, strerror(errno));
        return 1;
    }
    /* Held until the end: a server that starts meanwhile is refused. */
    int lock = store_lock_dir(a.dir, err, sizeof err);
    if (lock == STORE_EBUSY) {
        fprintf(stderr, "chat-server restore: a chat-server runs on %s (it "
                "holds %s/chat.lock): stop it first; nothing was changed.\n",
                a.dir, a.dir);
        return 1;
    }
    if (lock < 0) {
        fprintf(stderr, "chat-server restore: %s\n", err);
        return 1;
    }
    copy_info info = {0, 0};
    int r = copy_db(a.file, tmp, &info, err, sizeof err) ||
            set_aside(db, aside, err, sizeof err) ? -1 : 0;
    if (r == 0 && rename(tmp, db) != 0) {
        snprintf(err, sizeof err, "%s: cannot rename it to %s (%s)", tmp, db,
                 strerror(errno));
        r = -1;
    }
    if (r == 0) r = sync_path(a.dir, err, sizeof err);
    if (r) {
        char ignored[8];
        /* (void): the sentence says what failed; a leftover copy is
         * removed by the next restore */
        (void)remove_with_sides(tmp, ignored, sizeof ignored);
    }
    (void)close(lock); /* the lock file was never written */
    if (r) {
        fprintf(stderr, "chat-server restore: %s.\n", err);
        return 1;
    }
    printf("restore: %s is now the copy %s (schema version %" PRId64 ", %"
           PRId64 " messages); %s%s\n", db, a.file, info.version,
           info.messages, aside[0] ? "the database it replaced is kept as "
                                   : "there was no database before",
           aside);
    return fflush(stdout) == 0 ? 0 : 1;
}
