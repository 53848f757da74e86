/*
 * config_doc.c -- the texts made from the settings table (config.h):
 * --help, --check-config's listing, and, for build/settings-doc, the
 * OPTIONS of chat-server(8), the SETTINGS of chat-server.conf(5), the
 * table of docs/OPERATIONS.md and the commented example chat-server.conf.
 * Each walks config_settings in order, so a setting added there appears in
 * all of them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#define WIDTH 79    /* --help and the example file wrap before this */
#define HELP_COL 31 /* --help: where the help of an option starts */

/* The defaults as config_defaults and config_finish make them. */
static const config *defaults(void) {
    static config d;
    static int made;
    if (!made) {
        char err[256];
        config_defaults(&d);
        /* (void): the defaults pass every check (test_config.c) */
        (void)config_finish(&d, err, sizeof err);
        made = 1;
    }
    return &d;
}

/* The default of s as shown: its def_text, else its default value; "" for
 * none. */
static void default_text(const setting *s, char *out, size_t cap) {
    if (s->def_text) snprintf(out, cap, "%s", s->def_text);
    else config_value(defaults(), s, out, cap);
}

/* s's help with its default and whether a reload changes it. */
static void full_help(const setting *s, char *out, size_t cap) {
    char def[128];
    default_text(s, def, sizeof def);
    int n = snprintf(out, cap, "%s", s->help);
    if (*def && n >= 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, " (default %s)", def);
    if ((s->flags & SET_LIVE) && n >= 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " [reload]");
}

/* Print text wrapped at WIDTH, every line but the first starting with
 * `lead` (the first continues what the caller printed up to column col). */
static void wrap(FILE *out, const char *text, size_t col, const char *lead) {
    size_t lead_len = strlen(lead);
    while (*text) {
        size_t room = WIDTH > col ? WIDTH - col : 1, n = strlen(text);
        if (n > room) { /* break at the last blank that fits */
            size_t b = room;
            while (b > 0 && text[b] != ' ') b--;
            n = b ? b : strcspn(text, " ");
        }
        fprintf(out, "%.*s\n", (int)n, text);
        text += n;
        text += strspn(text, " ");
        if (*text) fputs(lead, out);
        col = lead_len;
    }
}

void config_usage(FILE *out) {
    fprintf(out,
"Usage: chat-server [OPTIONS]\n"
"       chat-server user add|passwd|del ID | user list   (accounts; see\n"
"                               `chat-server user --help`)\n"
"A chat server for the article's binary frame protocol (docs/PROTOCOL.md).\n"
"Every option but the last four may also be a line of the --config file,\n"
"without the dashes (\"port 8888\"); options given here win over the file.\n");
    char help[1024];
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        if (s->section) fprintf(out, "\n%s:\n", s->section);
        int n = fprintf(out, "  --%s%s%s", s->name, s->arg ? " " : "",
                        s->arg ? s->arg : "");
        if (n < 0) return;
        if (n + 1 >= HELP_COL) {
            fprintf(out, "\n%*s", HELP_COL, "");
        } else {
            fprintf(out, "%*s", HELP_COL - n, "");
        }
        full_help(s, help, sizeof help);
        wrap(out, help, HELP_COL, "                               ");
    }
    fprintf(out, "\n"
"BYTES takes a K, M or G suffix (powers of 1024); DURATION is a number with\n"
"ms, s, m, h or d (a bare number is seconds). [reload]: a SIGHUP (systemctl\n"
"reload) applies a new value from the file and the flags; the others keep\n"
"theirs until a restart.\n");
}

void config_print(const config *c, FILE *out) {
    char v[1100];
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        if (s->flags & SET_CLI) continue;
        if (s->section) fprintf(out, "# %s\n", s->section);
        config_value(c, s, v, sizeof v);
        if (!*v) fprintf(out, "#%-21s (none)\n", s->name);
        else if (s->flags & SET_SECRET) fprintf(out, "%-22s ********\n", s->name);
        else fprintf(out, "%-22s %s\n", s->name, v);
    }
}

/* ---- roff and markdown ------------------------------------------------- */

/* text for roff: '-' as \- (a minus, which man keeps), '\' as \e, and a
 * line never starting with '.' or '\'' (a request). */
static void roff(FILE *out, const char *text) {
    if (*text == '.' || *text == '\'') fputs("\\&", out);
    for (; *text; text++) {
        if (*text == '-') fputs("\\-", out);
        else if (*text == '\\') fputs("\\e", out);
        else fputc(*text, out);
    }
}

static void man_entry(FILE *out, const setting *s, int flags) {
    char help[1024];
    fputs(".TP\n", out);
    fputs(s->arg ? ".BI " : ".B ", out);
    fputs(flags ? "\\-\\-" : "", out);
    roff(out, s->name);
    if (s->arg) {
        fputs(" \" ", out);
        roff(out, s->arg);
        fputc('"', out);
    }
    fputc('\n', out);
    full_help(s, help, sizeof help);
    roff(out, help);
    fputc('\n', out);
}

/* A markdown table cell: '|' escaped. */
static void cell(FILE *out, const char *text) {
    for (; *text; text++) {
        if (*text == '|') fputc('\\', out);
        fputc(*text, out);
    }
}

static void markdown(FILE *out) {
    char def[128];
    fputs("| Setting | Value | Default | Reload | What it does |\n"
          "|---|---|---|---|---|\n", out);
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        if (s->flags & SET_CLI) continue;
        default_text(s, def, sizeof def);
        fprintf(out, "| `%s` | ", s->name);
        cell(out, s->arg ? s->arg : "on|off");
        fputs(" | ", out);
        cell(out, *def ? def : "-");
        fprintf(out, " | %s | ", s->flags & SET_LIVE ? "yes" : "no");
        cell(out, s->help);
        fputs(" |\n", out);
    }
}

/* ---- the example file ----------------------------------------------------- */

static int example(FILE *out, int nset, char **set) {
    static config given; /* checks the NAME=VALUE pairs */
    char why[256], def[128];
    config_defaults(&given);
    for (int i = 0; i < nset; i++) {
        char name[64];
        const char *eq = strchr(set[i], '=');
        const setting *s = NULL;
        if (eq && (size_t)(eq - set[i]) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - set[i]), set[i]);
            s = config_find(name);
        }
        if (!s || (s->flags & SET_CLI)) {
            fprintf(stderr, "settings-doc: '%s' is not NAME=VALUE of a "
                    "setting\n", set[i]);
            return -1;
        }
        if (config_set(&given, s, eq + 1, ORIGIN_FILE, why, sizeof why)) {
            fprintf(stderr, "settings-doc: %s: %s\n", name, why);
            return -1;
        }
    }
    fputs("# chat-server.conf -- the settings of chat-server (see\n"
          "# chat-server.conf(5) and chat-server(8)).\n"
          "#\n"
          "# One setting per line: its name and its value. '#' starts a\n"
          "# comment line; \"include FILE\" reads another file there. Options\n"
          "# on chat-server's command line win over this file. Every setting\n"
          "# is shown with its default, commented out; [reload]: a SIGHUP\n"
          "# (systemctl reload chat-server) applies a change without a\n"
          "# restart. Check a change with: chat-server --check-config\n"
          "# --config FILE\n", out);
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        if (s->flags & SET_CLI) continue;
        if (s->section) fprintf(out, "\n## %s\n", s->section);
        fputs("\n# ", out);
        char help[1024];
        full_help(s, help, sizeof help);
        wrap(out, help, 2, "# ");
        if (given.origin[i] != ORIGIN_DEFAULT) {
            config_value(&given, s, def, sizeof def);
            fprintf(out, "%s %s\n", s->name, def);
        } else if (s->def_text) {
            fprintf(out, "#%s %s\n", s->name, s->arg ? s->arg : "on");
        } else {
            config_value(defaults(), s, def, sizeof def);
            fprintf(out, "#%s %s\n", s->name, def);
        }
    }
    return 0;
}

int config_doc(const char *what, int nset, char **set, FILE *out) {
    int conf = strcmp(what, "man-conf") == 0;
    if (strcmp(what, "conf") == 0) return example(out, nset, set);
    if (nset) {
        fprintf(stderr, "settings-doc: NAME=VALUE is for conf only\n");
        return -1;
    }
    if (strcmp(what, "markdown") == 0) {
        markdown(out);
        return 0;
    }
    if (!conf && strcmp(what, "man-flags") != 0) {
        fprintf(stderr, "settings-doc: '%s' is not man-flags, man-conf, "
                "markdown or conf\n", what);
        return -1;
    }
    for (size_t i = 0; i < config_nsettings; i++) {
        const setting *s = &config_settings[i];
        if (conf && (s->flags & SET_CLI)) continue;
        if (s->section) {
            fputs(".SS ", out);
            roff(out, s->section);
            fputc('\n', out);
        }
        man_entry(out, s, !conf);
    }
    return 0;
}
