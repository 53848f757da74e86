/*
 * common.c -- flag parsing and error sentences shared by the subcommands.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chat.h"

void cli_conn_init(cli_conn *cc) {
    cc->n_host_args = 0;
    cc->n_servers = 0;
    cc->port = CLI_DEFAULT_PORT;
    cc->id = 0;
    cc->no_acks = 0;
    cc->timeout = CLI_DEFAULT_TIMEOUT;
    cc->tls = 0;
    cc->device = NULL;
    memset(&cc->tls_opts, 0, sizeof cc->tls_opts);
    cc->client = NULL;
}

int cli_conn_flag(const char *cmd, cli_conn *cc, int opt, const char *arg) {
    unsigned long v;
    switch (opt) {
    case 'i': return cli_parse_id(cmd, "--id", arg, &cc->id) ? -1 : 1;
    case 'H':
        /* Parsed once every flag is in (cli_conn_check): --port may come
         * after the --host values it completes. */
        if (cc->n_host_args == CHAT_SERVERS_MAX) {
            cli_usage_err(cmd, "at most %u --host values", (unsigned)CHAT_SERVERS_MAX);
            return -1;
        }
        cc->host_args[cc->n_host_args++] = arg;
        return 1;
    case 'p': return cli_parse_port(cmd, arg, &cc->port) ? -1 : 1;
    case 'n': cc->no_acks = 1; return 1;
    case 'T':
        if (cli_parse_uint(cmd, "--timeout", arg, 86400, &v)) return -1;
        if (v == 0) {
            cli_usage_err(cmd, "--timeout must be at least 1 second");
            return -1;
        }
        cc->timeout = (unsigned)v;
        return 1;
    case CLI_OPT_TLS: cc->tls = 1; return 1;
    case CLI_OPT_CA: cc->tls_opts.ca_file = arg; return 1;
    case CLI_OPT_CERT: cc->tls_opts.cert_file = arg; return 1;
    case CLI_OPT_KEY: cc->tls_opts.key_file = arg; return 1;
    case CLI_OPT_SERVER_NAME: cc->tls_opts.server_name = arg; return 1;
    case CLI_OPT_PASSWORD_FILE: cc->password_file = arg; return 1;
    case CLI_OPT_DEVICE:
        /* libchat checks it too (chat_new), but a usage error is clearer */
        if (!arg[0] || strlen(arg) > 32 ||
            arg[strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                            "0123456789._-")]) {
            cli_usage_err(cmd, "--device wants 1 to 32 characters from A-Z a-z 0-9 "
                          ". _ -, not '%s'", arg);
            return -1;
        }
        cc->device = arg;
        return 1;
    default: return 0;
    }
}

/* The password: the first line of --password-file, else $CHAT_PASSWORD. */
static int read_password(const char *cmd, cli_conn *cc) {
    cc->password[0] = '\0';
    if (!cc->password_file) {
        const char *env = getenv("CHAT_PASSWORD");
        if (!env || !*env) return 0;
        if (strlen(env) >= sizeof cc->password)
            return cli_usage_err(cmd, "$CHAT_PASSWORD is over 1024 bytes");
        snprintf(cc->password, sizeof cc->password, "%s", env);
        return 0;
    }
    FILE *f = fopen(cc->password_file, "r");
    if (!f)
        return cli_usage_err(cmd, "cannot read --password-file %s: %s",
                             cc->password_file, strerror(errno));
    char line[1100];
    int ok = fgets(line, sizeof line, f) != NULL;
    int rerr = !ok && ferror(f) ? errno : 0;
    (void)fclose(f); /* opened read-only: nothing to lose at close */
    if (rerr)
        return cli_usage_err(cmd, "cannot read --password-file %s: %s",
                             cc->password_file, strerror(rerr));
    size_t n = ok ? strcspn(line, "\r\n") : 0;
    if (n == 0)
        return cli_usage_err(cmd, "--password-file %s: its first line is empty",
                             cc->password_file);
    if (n >= sizeof cc->password)
        return cli_usage_err(cmd, "--password-file %s: the password is over "
                             "1024 bytes", cc->password_file);
    memcpy(cc->password, line, n);
    cc->password[n] = '\0';
    if (cc->no_acks)
        return cli_usage_err(cmd, "--password-file needs control frames "
                             "(not --no-acks): the password goes in HELLO");
    return 0;
}

/* The --host values into cc->servers, or the default server. */
static int parse_servers(const char *cmd, cli_conn *cc) {
    if (cc->n_host_args == 0) {
        char why[64];
        /* (void): the default is a valid address */
        (void)cli_addr_parse(CLI_DEFAULT_HOST, cc->port, &cc->servers[0], why, sizeof why);
        cc->n_servers = 1;
        return 0;
    }
    for (unsigned i = 0; i < cc->n_host_args; i++) {
        char why[128];
        if (cli_addr_parse(cc->host_args[i], cc->port, &cc->servers[i], why, sizeof why) < 0)
            return cli_usage_err(cmd, "--host '%.300s': %s", cc->host_args[i], why);
    }
    cc->n_servers = cc->n_host_args;
    return 0;
}

int cli_conn_check(const char *cmd, cli_conn *cc) {
    if (parse_servers(cmd, cc)) return CLI_EXIT_USAGE;
    const chat_tls_options *t = &cc->tls_opts;
    const char *flag = t->ca_file ? "--ca" : t->cert_file ? "--cert"
                     : t->key_file ? "--key" : t->server_name ? "--server-name" : NULL;
    if (flag && !cc->tls) return cli_usage_err(cmd, "%s needs --tls", flag);
    if (t->cert_file && !t->key_file)
        return cli_usage_err(cmd, "--cert needs --key (the certificate's private key)");
    if (t->key_file && !t->cert_file)
        return cli_usage_err(cmd, "--key needs --cert (the client certificate)");
    if (t->server_name && !t->server_name[0])
        return cli_usage_err(cmd, "--server-name must not be empty");
    if (cc->device && cc->no_acks)
        return cli_usage_err(cmd, "--device needs control frames (not --no-acks): "
                             "the device name goes in HELLO");
    return read_password(cmd, cc);
}

void cli_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("chat-client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_err(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chat-client: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see chat-client %s --help)\n", cmd);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_parse_uint(const char *cmd, const char *flag, const char *s,
                   unsigned long max, unsigned long *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v > max) {
        cli_usage_err(cmd, "%s wants a number from 0 to %lu, not '%s'", flag, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_id(const char *cmd, const char *flag, const char *s, uint32_t *out) {
    unsigned long v;
    if (cli_parse_uint(cmd, flag, s, 0xFFFFFFFFul, &v) < 0) return -1;
    if (v == 0) {
        cli_usage_err(cmd, "%s must not be 0 (user id 0 is reserved for the server)", flag);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int cli_parse_msg_id(const char *cmd, const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!s[0] || *end || errno || s[0] == '-' || v == 0) {
        cli_usage_err(cmd, "%s wants a message id (1 or more), not '%s'", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_port(const char *cmd, const char *s, uint16_t *out) {
    unsigned long v;
    if (cli_parse_uint(cmd, "--port", s, 65535, &v) < 0) return -1;
    if (v == 0) {
        cli_usage_err(cmd, "--port must not be 0");
        return -1;
    }
    *out = (uint16_t)v;
    return 0;
}

void cli_conn_err(const cli_conn *cc, int err) {
    /* With several servers a connection failure is the last of a round:
     * say that the others failed too. */
    char others[64] = "";
    if (cc->n_servers == 2)
        snprintf(others, sizeof others, "; the other server failed too");
    else if (cc->n_servers > 2)
        snprintf(others, sizeof others, "; the %u other servers failed too",
                 cc->n_servers - 1);
    switch (err) {
    case CHAT_ECONNECT: {
        int e = cc->client ? chat_last_errno(cc->client) : 0;
        if (e == 0 || e == ECONNREFUSED)
            cli_err("cannot connect to %s: connection refused (is chat-server "
                    "running?)%s", cli_where(cc), others);
        else if (e == ETIMEDOUT) /* the TCP connect, or the wait for WELCOME */
            cli_err("timed out after %u s waiting for the server at %s to accept the "
                    "connection%s", cc->timeout, cli_where(cc), others);
        else
            cli_err("cannot connect to %s: %s%s", cli_where(cc), strerror(e), others);
        break;
    }
    case CHAT_ERESOLVE:
        cli_err("cannot connect to %s: the host name could not be resolved%s",
                cli_where(cc), others);
        break;
    case CHAT_ECLOSED:
        if (cc->tls)
            cli_err("the server at %s closed the connection", cli_where(cc));
        else /* a TLS port drops a plaintext HELLO this way */
            cli_err("the server at %s closed the connection (if it is a TLS port, "
                    "add --tls)", cli_where(cc));
        break;
    case CHAT_EAUTH:
        cli_err("the server at %s refused the login of user %u", cli_where(cc), cc->id);
        break;
    case CHAT_EPROTO:
        cli_err("the server at %s broke the protocol or refused ours "
                "(try --no-acks for a server without control frames)", cli_where(cc));
        break;
    case CHAT_ETLSVERIFY:
    case CHAT_ETLS: {
        const char *why = cc->client ? chat_tls_error(cc->client) : "";
        cli_err("TLS: %s (server %s)", why[0] ? why : chat_strerror(err), cli_where(cc));
        break;
    }
    default:
        cli_err("connection to %s failed: %s", cli_where(cc), chat_strerror(err));
    }
}

static const char *const type_names[] = {NULL, "text", "picture", "voice", "video"};

const char *cli_type_name(int type) {
    return type >= 1 && type <= 4 ? type_names[type] : NULL;
}

int cli_type_from_name(const char *name) {
    for (int t = 1; t <= 4; t++)
        if (strcmp(name, type_names[t]) == 0) return t;
    return -1;
}

void cli_options(const cli_conn *cc, chat_options *co) {
    chat_options_init(co);
    co->host = cc->servers[0].host;
    co->port = cc->servers[0].port;
    co->user = cc->id;
    co->control = !cc->no_acks;
    co->acks = 1;
    co->conv = 1;
    co->device = cc->device;
    co->tls = cc->tls ? &cc->tls_opts : NULL;
    co->password = cc->password[0] ? cc->password : NULL;
    /* One attempt may take --timeout; with several servers each gets its
     * share (at least 1 s), so that a server that accepts but never
     * answers (stopped, overloaded) leaves time for the others before a
     * command's own --timeout runs out. */
    unsigned ms = cc->timeout * 1000u;
    if (cc->n_servers > 1) {
        ms /= (unsigned)cc->n_servers;
        if (ms < 1000u) ms = 1000u;
    }
    co->connect_timeout_ms = ms;
}

chat_client *cli_open(cli_conn *cc, const chat_options *co) {
    int err = 0;
    char why[512];
    chat_client *c = chat_new_ex(co, &err, why, sizeof why);
    if (!c) {
        if (err == CHAT_ETLSCONF) cli_err("TLS: %s", why);
        else cli_err("cannot start the client: %s", why[0] ? why : chat_strerror(err));
        return NULL;
    }
    if (cc->n_servers > 1) {
        const char *hosts[CHAT_SERVERS_MAX];
        uint16_t ports[CHAT_SERVERS_MAX];
        for (unsigned i = 0; i < cc->n_servers; i++) {
            hosts[i] = cc->servers[i].host;
            ports[i] = cc->servers[i].port;
        }
        err = chat_set_servers(c, hosts, ports, cc->n_servers);
        if (err < 0) { /* only CHAT_ENOMEM: the list was checked */
            cli_err("cannot start the client: %s", chat_strerror(err));
            chat_free(c);
            return NULL;
        }
    }
    cc->client = c;
    err = chat_connect(c);
    if (err < 0) {
        cli_conn_err(cc, err);
        cc->client = NULL;
        chat_free(c);
        return NULL;
    }
    return c;
}

const char *cli_where(const cli_conn *cc) {
    int i = cc->client ? chat_server_index(cc->client) : 0;
    return cc->servers[i >= 0 && (unsigned)i < cc->n_servers ? i : 0].label;
}

int cli_retrying(const cli_conn *cc, const chat_client *c, int ever_connected) {
    return chat_state(c) == CHAT_ST_BACKOFF &&
           (ever_connected || chat_failures(c) < cc->n_servers);
}

int cli_check_dir(const char *cmd, const char *flag, const char *dir) {
    struct stat st;
    if (stat(dir, &st) < 0)
        return cli_usage_err(cmd, "%s %s: %s", flag, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cli_usage_err(cmd, "%s %s is not a directory", flag, dir);
    return 0;
}

uint64_t cli_mono_ms(void) {
    struct timespec ts = {0, 0};
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* always exists on Linux */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
