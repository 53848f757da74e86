/*
 * addr.c -- parsing a --host value (see addr.h).
 */
#include "cli/addr.h"

#include <stdio.h>
#include <string.h>

/* "1".."65535", decimal digits only (no sign, no spaces, no hex). */
static int parse_port(const char *s, size_t n, uint16_t *out) {
    if (n == 0 || n > 5) return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10u + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535u) return -1;
    *out = (uint16_t)v;
    return 0;
}

int cli_addr_parse(const char *arg, uint16_t dflt_port, cli_addr *out,
                   char *why, size_t cap) {
    const char *host = arg, *port = NULL;
    size_t host_len;
    if (arg[0] == '[') { /* [ADDR] or [ADDR]:PORT */
        const char *close = strchr(arg, ']');
        if (!close) {
            snprintf(why, cap, "'[' without ']'");
            return -1;
        }
        host = arg + 1;
        host_len = (size_t)(close - host);
        if (close[1] == ':') port = close + 2;
        else if (close[1] != '\0') {
            snprintf(why, cap, "only ':PORT' may follow ']'");
            return -1;
        }
    } else {
        const char *colon = strchr(arg, ':');
        /* One colon: HOST:PORT. Two or more: a bare IPv6 address, whose
         * last group could be mistaken for a port; brackets say which. */
        if (colon && !strchr(colon + 1, ':')) {
            host_len = (size_t)(colon - arg);
            port = colon + 1;
        } else {
            host_len = strlen(arg);
        }
    }
    if (host_len == 0) {
        snprintf(why, cap, "the host is empty");
        return -1;
    }
    if (host_len > CHAT_HOST_MAX) {
        snprintf(why, cap, "the host is over %u bytes", (unsigned)CHAT_HOST_MAX);
        return -1;
    }
    out->port = dflt_port;
    if (port && parse_port(port, strlen(port), &out->port) < 0) {
        snprintf(why, cap, "the port must be 1-65535, not '%.40s'", port);
        return -1;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    int v6 = memchr(host, ':', host_len) != NULL;
    snprintf(out->label, sizeof out->label, v6 ? "[%s]:%u" : "%s:%u", out->host,
             (unsigned)out->port);
    return 0;
}
