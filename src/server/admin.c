/*
 * admin.c -- the `user` subcommand of chat-server (admin.h): parses its
 * arguments, reads the password, calls accounts.c (the SQLite store's
 * accounts, DIR/chat.db) or accounts_redis.c (the cluster's, in Redis,
 * when --cluster is given here or in the config file) and prints the
 * result: the same messages and exit codes for both. The password buffer
 * is wiped with sodium_memzero before returning.
 */
#include "server/admin.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "server/accounts.h"
#include "server/accounts_redis.h"
#include "server/config.h"

#define PW_BUF (ACCOUNTS_MAX_PASSWORD + 2) /* a line, its newline, one more */

static void usage(FILE *out) {
    fprintf(out,
"Usage: chat-server user [OPTIONS] add|passwd|del ID\n"
"       chat-server user [OPTIONS] list\n"
"Manage the accounts in DIR/chat.db, or, with --cluster, in the cluster's\n"
"Redis (docs/CLUSTER.md), where every node reads them.\n"
"  add ID      create account ID (a number from 1 to 4294967295)\n"
"  passwd ID   set a new password for account ID\n"
"  del ID      delete account ID\n"
"  list        print every account id, one per line, ascending\n"
"Options (as the server takes them; given here, they win over --config):\n"
"  --data-dir DIR        the SQLite store's directory (default %s)\n"
"  --config CONF         the settings of the server's config file: its\n"
"                        data-dir, cluster and cluster-* settings\n"
"  --cluster URL         redis://[USER@]HOST:PORT[,...] or rediss:// (TLS)\n"
"  --cluster-password-file FILE, --cluster-tls-ca FILE,\n"
"  --cluster-tls-cert FILE, --cluster-tls-key FILE, --cluster-tls-name NAME\n"
"The password is read from the terminal without echo, or as one line from\n"
"standard input when it is not a terminal (at most %d bytes).\n",
            CONFIG_DEFAULT_DATA_DIR, ACCOUNTS_MAX_PASSWORD);
}

/* "1".."4294967295" -> id; 0 when not such a number. */
static uint32_t parse_id(const char *s) {
    if (!*s || strlen(s) > 10) return 0;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v > UINT32_MAX ? 0 : (uint32_t)v;
}

/* One line from fd 0 into buf, newline (and a CR before it) stripped.
 * Returns its length, -1 on a read error, -2 when longer than the maximum. */
static long read_line(char *buf) {
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0 || c == '\n') break;
        if (n == ACCOUNTS_MAX_PASSWORD) return -2;
        buf[n++] = c;
    }
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    return (long)n;
}

/* Prompt on the terminal with echo off, or read one line of stdin. */
static long read_password(char *buf, const char *prompt) {
    struct termios old, quiet;
    if (!isatty(0) || tcgetattr(0, &old) != 0) return read_line(buf);
    fprintf(stderr, "%s", prompt);
    (void)fflush(stderr); /* unbuffered; a prompt that fails is harmless */
    quiet = old;
    quiet.c_lflag &= (tcflag_t)~ECHO;
    quiet.c_lflag |= ECHONL;
    /* Never read a password that would be echoed. */
    if (tcsetattr(0, TCSAFLUSH, &quiet) != 0) return -1;
    long n = read_line(buf);
    int e = errno;
    if (tcsetattr(0, TCSAFLUSH, &old) != 0)
        fprintf(stderr, "chat-server: cannot turn the terminal's echo back on: "
                "%s (run `stty echo`).\n", strerror(errno));
    errno = e;
    return n;
}

/* The password for id into buf (PW_BUF bytes); asked twice on a terminal.
 * Returns its length, or -1 after printing why. */
static long get_password(char *buf, uint32_t id) {
    char prompt[64];
    snprintf(prompt, sizeof prompt, "Password for user %" PRIu32 ": ", id);
    long n = read_password(buf, prompt);
    if (n == -1) {
        fprintf(stderr, "chat-server: cannot read the password: %s.\n",
                strerror(errno));
        return -1;
    }
    if (n == -2) {
        fprintf(stderr, "chat-server: the password is longer than %d bytes.\n",
                ACCOUNTS_MAX_PASSWORD);
        return -1;
    }
    if (n == 0) {
        fprintf(stderr, "chat-server: the password is empty; no change was "
                "made.\n");
        return -1;
    }
    if (isatty(0)) {
        char again[PW_BUF];
        long m = read_password(again, "Again: ");
        int same = m == n && sodium_memcmp(buf, again, (size_t)n) == 0;
        sodium_memzero(again, sizeof again);
        if (!same) {
            fprintf(stderr, "chat-server: the passwords do not match; no "
                    "change was made.\n");
            return -1;
        }
    }
    return n;
}

/* The accounts: one of the two is open. */
typedef struct adm {
    accounts *db;          /* SQLite: DIR/chat.db */
    accounts_redis *rd;    /* the cluster's Redis */
} adm;

static int a_exists(adm *d, uint32_t id) {
    return d->rd ? accounts_redis_exists(d->rd, id)
                 : accounts_exists(d->db, id);
}

static int a_set(adm *d, int add, uint32_t id, const char *pw, size_t n) {
    if (d->rd)
        return add ? accounts_redis_add(d->rd, id, pw, n)
                   : accounts_redis_passwd(d->rd, id, pw, n);
    return add ? accounts_add(d->db, id, pw, n)
               : accounts_passwd(d->db, id, pw, n);
}

static int a_del(adm *d, uint32_t id) {
    return d->rd ? accounts_redis_del(d->rd, id) : accounts_del(d->db, id);
}

static int a_list(adm *d, uint32_t **ids, size_t *n) {
    return d->rd ? accounts_redis_list(d->rd, ids, n)
                 : accounts_list(d->db, ids, n);
}

static int fail_db(adm *d, int r) {
    if (d->rd && r == ACCOUNTS_EDB)
        fprintf(stderr, "chat-server: the cluster's Redis failed (%s).\n",
                accounts_redis_errmsg(d->rd));
    else
        fprintf(stderr, "chat-server: %s (%s).\n", accounts_strerror(r),
                d->rd ? accounts_redis_errmsg(d->rd)
                      : accounts_errmsg(d->db));
    return 1;
}

static int run(adm *a, const char *cmd, uint32_t id) {
    if (!strcmp(cmd, "list")) {
        uint32_t *ids;
        size_t n;
        int r = a_list(a, &ids, &n);
        if (r) return fail_db(a, r);
        for (size_t i = 0; i < n; i++) printf("%" PRIu32 "\n", ids[i]);
        free(ids);
        return 0;
    }
    int e = a_exists(a, id);
    if (e < 0) return fail_db(a, e);
    if (!strcmp(cmd, "add") && e) {
        fprintf(stderr, "chat-server: user %" PRIu32 " already exists.\n", id);
        return 1;
    }
    if (strcmp(cmd, "add") != 0 && !e) {
        fprintf(stderr, "chat-server: user %" PRIu32 " does not exist.\n", id);
        return 1;
    }
    if (!strcmp(cmd, "del")) {
        int r = a_del(a, id);
        if (r == ACCOUNTS_ENOENT) {
            fprintf(stderr, "chat-server: user %" PRIu32 " does not exist.\n",
                    id);
            return 1;
        }
        if (r) return fail_db(a, r);
        printf("deleted user %" PRIu32 "\n", id);
        return 0;
    }
    char pw[PW_BUF];
    long n = get_password(pw, id);
    int r = n < 0 ? 1 : 0;
    if (!r) {
        int add = !strcmp(cmd, "add");
        int q = a_set(a, add, id, pw, (size_t)n);
        if (q == ACCOUNTS_EEXIST || q == ACCOUNTS_ENOENT) {
            fprintf(stderr, "chat-server: user %" PRIu32 " %s.\n", id,
                    q == ACCOUNTS_EEXIST ? "already exists" : "does not exist");
            r = 1;
        } else if (q) {
            r = fail_db(a, q);
        } else {
            printf("%s user %" PRIu32 "\n", add ? "added" : "changed the "
                   "password of", id);
        }
    }
    sodium_memzero(pw, sizeof pw);
    return r;
}

/* The settings `user` takes from its command line (as the server's flags
 * of the same names). */
static const char *const opt_names[] = {
    "data-dir", "cluster", "cluster-password-file", "cluster-tls-ca",
    "cluster-tls-cert", "cluster-tls-key", "cluster-tls-name", NULL};
#define MAX_OPTS 16

typedef struct opt_val {
    const char *name, *value;
} opt_val;

/* argv[*i] is --NAME or --NAME=VALUE of opt_names (or --config): its name
 * and value (the next argument for --NAME); 1 taken, 0 not one of them,
 * -1 its value is missing (a sentence printed). */
static int take_opt(int argc, char **argv, int *i, const char **name,
                    const char **value) {
    static const char *const cfgname[] = {"config", NULL};
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0) return 0;
    for (int pass = 0; pass < 2; pass++) {
        const char *const *names = pass ? cfgname : opt_names;
        for (int k = 0; names[k]; k++) {
            size_t n = strlen(names[k]);
            if (strncmp(a + 2, names[k], n) != 0) continue;
            if (a[2 + n] == '=') {
                *name = names[k];
                *value = a + 3 + n;
                return 1;
            }
            if (a[2 + n] != '\0') continue;
            if (++*i == argc) {
                fprintf(stderr, "chat-server user: --%s needs a value.\n",
                        names[k]);
                return -1;
            }
            *name = names[k];
            *value = argv[*i];
            return 1;
        }
    }
    return 0;
}

/* The settings: defaults, then conf's file, then the options given. 0, or
 * 2 after printing why (the exit status of a bad command line). */
static int settings(config *c, const char *conf, const opt_val *v, int nv) {
    char err[768];
    config_defaults(c);
    if (conf && config_file_apply(c, conf, err, sizeof err) != CONFIG_OK) {
        fprintf(stderr, "chat-server user: %s\n", err);
        return 2;
    }
    for (int k = 0; k < nv; k++) {
        char why[256];
        if (config_set(c, config_find(v[k].name), v[k].value, ORIGIN_ARGV,
                       why, sizeof why)) {
            fprintf(stderr, "chat-server user: --%s: %s\n", v[k].name, why);
            return 2;
        }
    }
    /* (the server's own checks: a bad URL, --cluster-tls-* without
     * rediss://, a TLS file without the other) */
    if (config_finish(c, err, sizeof err) != CONFIG_OK) {
        fprintf(stderr, "chat-server user: %s\n", err);
        return 2;
    }
    return 0;
}

/* DIR/chat.db, DIR created for `add`. */
static int open_sqlite(adm *d, const char *dir, const char *cmd) {
    struct stat st;
    errno = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (strcmp(cmd, "add") != 0 || mkdir(dir, 0700) != 0) {
            fprintf(stderr, "chat-server: cannot use data directory %s: %s "
                    "(choose another with --data-dir).\n", dir,
                    strerror(errno ? errno : ENOTDIR));
            return 1;
        }
    }
    log_threshold = LOG_WARN; /* the store's "schema upgraded" is noise here */
    char err[512];
    if (accounts_open(&d->db, dir, err, sizeof err)) {
        fprintf(stderr, "chat-server: %s.\n", err);
        return 1;
    }
    return 0;
}

int admin_main(int argc, char **argv) {
    const char *cmd = NULL, *idarg = NULL, *conf = NULL;
    opt_val v[MAX_OPTS];
    int nv = 0, extra = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *value;
        int t;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if ((t = take_opt(argc, argv, &i, &name, &value)) < 0) {
            return 2;
        } else if (t && !strcmp(name, "config")) {
            conf = value;
        } else if (t) {
            if (nv == MAX_OPTS) {
                fprintf(stderr, "chat-server user: too many options.\n");
                return 2;
            }
            v[nv++] = (opt_val){name, value};
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "chat-server user: unknown option %s.\n", a);
            usage(stderr);
            return 2;
        } else if (!cmd) {
            cmd = a;
        } else if (!idarg) {
            idarg = a;
        } else {
            extra = 1;
        }
    }
    static config c; /* ~6 KiB, off the stack */
    int bad = settings(&c, conf, v, nv);
    if (bad) return bad;
    int needs_id = cmd && (!strcmp(cmd, "add") || !strcmp(cmd, "passwd") ||
                           !strcmp(cmd, "del"));
    int ok = cmd && !extra && *c.data_dir != '\0' &&
             (needs_id ? idarg != NULL : !strcmp(cmd, "list") && !idarg);
    uint32_t id = needs_id && idarg ? parse_id(idarg) : 0;
    if (!ok || (needs_id && id == 0)) {
        if (needs_id && idarg && id == 0)
            fprintf(stderr, "chat-server user: ID must be a number from 1 to "
                    "4294967295, not \"%s\".\n", idarg);
        usage(stderr);
        return 2;
    }
    adm d = {0};
    if (*c.cluster) {
        char err[768];
        if (accounts_redis_open(&d.rd, &c, err, sizeof err)) {
            fprintf(stderr, "chat-server: %s.\n", err);
            return 1;
        }
    } else if (open_sqlite(&d, c.data_dir, cmd)) {
        return 1;
    }
    int status = run(&d, cmd, id);
    accounts_close(d.db);
    accounts_redis_close(d.rd);
    /* What was printed (the list) must have reached its file or pipe. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "chat-server: cannot write to standard output: %s.\n",
                strerror(errno));
        return 1;
    }
    return status;
}
