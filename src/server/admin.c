/*
 * admin.c -- the `user` subcommand of chat-server (admin.h): parses its
 * arguments, reads the password, calls accounts.c and prints the result.
 * The password buffer is wiped with sodium_memzero before returning.
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
#include "server/config.h"

#define PW_BUF (ACCOUNTS_MAX_PASSWORD + 2) /* a line, its newline, one more */

static void usage(FILE *out) {
    fprintf(out,
"Usage: chat-server user [--data-dir DIR | --config CONF] add|passwd|del ID\n"
"       chat-server user [--data-dir DIR | --config CONF] list\n"
"Manage the accounts in DIR/chat.db (default DIR %s; with --config, the\n"
"data-dir of the server's config file; --data-dir wins over it).\n"
"  add ID      create account ID (a number from 1 to 4294967295)\n"
"  passwd ID   set a new password for account ID\n"
"  del ID      delete account ID\n"
"  list        print every account id, one per line, ascending\n"
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

static int fail_db(accounts *a, int r) {
    fprintf(stderr, "chat-server: %s (%s).\n", accounts_strerror(r),
            accounts_errmsg(a));
    return 1;
}

static int run(accounts *a, const char *cmd, uint32_t id) {
    if (!strcmp(cmd, "list")) {
        uint32_t *ids;
        size_t n;
        int r = accounts_list(a, &ids, &n);
        if (r) return fail_db(a, r);
        for (size_t i = 0; i < n; i++) printf("%" PRIu32 "\n", ids[i]);
        free(ids);
        return 0;
    }
    int e = accounts_exists(a, id);
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
        int r = accounts_del(a, id);
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
        int q = add ? accounts_add(a, id, pw, (size_t)n)
                    : accounts_passwd(a, id, pw, (size_t)n);
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

int admin_main(int argc, char **argv) {
    const char *dir = CONFIG_DEFAULT_DATA_DIR, *cmd = NULL, *idarg = NULL,
               *conf = NULL;
    int extra = 0, dir_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--data-dir")) {
            if (++i == argc) {
                fprintf(stderr, "chat-server user: --data-dir needs a "
                        "directory.\n");
                return 2;
            }
            dir = argv[i];
            dir_set = 1;
        } else if (!strncmp(a, "--data-dir=", 11)) {
            dir = a + 11;
            dir_set = 1;
        } else if (!strcmp(a, "--config")) {
            if (++i == argc) {
                fprintf(stderr, "chat-server user: --config needs a file.\n");
                return 2;
            }
            conf = argv[i];
        } else if (!strncmp(a, "--config=", 9)) {
            conf = a + 9;
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
    if (conf && !dir_set) {
        char err[768];
        if (!(dir = config_file_data_dir(conf, err, sizeof err))) {
            fprintf(stderr, "chat-server user: %s\n", err);
            return 2;
        }
    }
    int needs_id = cmd && (!strcmp(cmd, "add") || !strcmp(cmd, "passwd") ||
                           !strcmp(cmd, "del"));
    int ok = cmd && !extra && *dir != '\0' &&
             (needs_id ? idarg != NULL : !strcmp(cmd, "list") && !idarg);
    uint32_t id = needs_id && idarg ? parse_id(idarg) : 0;
    if (!ok || (needs_id && id == 0)) {
        if (needs_id && idarg && id == 0)
            fprintf(stderr, "chat-server user: ID must be a number from 1 to "
                    "4294967295, not \"%s\".\n", idarg);
        usage(stderr);
        return 2;
    }
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
    accounts *a;
    char err[512];
    int r = accounts_open(&a, dir, err, sizeof err);
    if (r) {
        fprintf(stderr, "chat-server: %s.\n", err);
        return 1;
    }
    int status = run(a, cmd, id);
    accounts_close(a);
    /* What was printed (the list) must have reached its file or pipe. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "chat-server: cannot write to standard output: %s.\n",
                strerror(errno));
        return 1;
    }
    return status;
}
