/*
 * backup.h -- `chat-server backup` and `chat-server restore`: a consistent
 * copy of the store's database while a server runs on it, and the way back
 * to such a copy (docs/OPERATIONS.md, "Backup and restore").
 *
 *     chat-server backup [--data-dir DIR | --config CONF] [--force] FILE
 *     chat-server restore [--data-dir DIR | --config CONF] FILE
 *
 * Everything the server keeps is in DIR/chat.db (messages, devices,
 * groups, accounts, read marks), so a copy of that one database is the
 * whole state. backup runs beside a server (SQLite's online backup API,
 * read-only, never taking the data directory's lock); restore refuses
 * while one runs (store_lock_dir) and keeps the database it replaces.
 */
#ifndef CHAT_SERVER_BACKUP_H
#define CHAT_SERVER_BACKUP_H

#include <stddef.h>
#include <time.h>

/* argv[0] is "backup" / "restore". Return the exit status: 0 done, 1
 * failed (one sentence on stderr naming the file and what is wrong;
 * nothing was changed), 2 bad command line (a sentence and the usage on
 * stderr). */
int backup_main(int argc, char **argv);
int restore_main(int argc, char **argv);

/* The command line of either, parsed (pure; the strings are argv's). */
typedef struct backup_args {
    const char *dir;   /* --data-dir, default CONFIG_DEFAULT_DATA_DIR */
    int dir_set;       /* --data-dir was given (it wins over --config's) */
    const char *config;/* --config: the data-dir of that file (read by
                          backup_main / restore_main, not by the parser) */
    const char *file;  /* the copy */
    int force;         /* --force (backup only): replace an existing file */
    int help;          /* --help / -h: print the usage, nothing else */
} backup_args;

/* Parse argv[1..argc) into *a; force_ok: --force is an option of this
 * command. Returns 0, or -1 with a sentence in err. */
int backup_parse_args(int argc, char **argv, int force_ok, backup_args *a,
                      char *err, size_t errlen);

/* The name the database a restore replaces is kept under:
 * "<db>.before-restore-YYYYMMDDTHHMMSSZ" (t in UTC), with "-<seq>" after
 * it when seq > 0 (a second restore in the same second). Returns 0, or -1
 * when it does not fit in n bytes (out is then ""). Pure. */
int backup_aside_name(char *out, size_t n, const char *db, time_t t,
                      unsigned seq);

#endif
