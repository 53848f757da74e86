/* cluster_url.c -- see cluster_url.h. */
#include "server/cluster_url.h"

#include <stdio.h>
#include <string.h>

#define FAIL(...)                                                          \
    do {                                                                   \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__);             \
        return -1;                                                         \
    } while (0)

/* One HOST:PORT of len bytes at p into slot i. */
static int parse_addr(const char *p, size_t len, cluster_url *u, unsigned i,
                      char *err, size_t errlen) {
    const char *colon, *host = p;
    size_t hlen;
    if (len && p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (!close) FAIL("'%.*s': an IPv6 address needs its closing ]",
                         (int)len, p);
        host = p + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        if (colon >= p + len || *colon != ':')
            FAIL("'%.*s': the port is missing (HOST:PORT)", (int)len, p);
    } else {
        colon = NULL;
        for (size_t k = len; k > 0; k--)
            if (p[k - 1] == ':') { colon = p + k - 1; break; }
        if (!colon)
            FAIL("'%.*s': the port is missing (HOST:PORT)", (int)len, p);
        hlen = (size_t)(colon - p);
        if (memchr(p, ':', hlen))
            FAIL("'%.*s': write an IPv6 address in brackets ([::1]:6379)",
                 (int)len, p);
    }
    if (hlen == 0) FAIL("'%.*s': the host is missing", (int)len, p);
    if (hlen > CLUSTER_URL_HOST_MAX)
        FAIL("a host is longer than %d bytes", CLUSTER_URL_HOST_MAX);
    for (size_t k = 0; k < hlen; k++)
        if (host[k] <= ' ' || host[k] == '/' || host[k] == '@' ||
            host[k] == ',' || (unsigned char)host[k] >= 0x7f)
            FAIL("'%.*s': not a host name or address", (int)hlen, host);
    const char *ps = colon + 1, *pe = p + len;
    unsigned long port = 0;
    if (ps == pe) FAIL("'%.*s': the port is missing (HOST:PORT)", (int)len, p);
    for (const char *q = ps; q < pe; q++) {
        if (*q < '0' || *q > '9' || port > 65535)
            FAIL("'%.*s': the port must be 1-65535", (int)len, p);
        port = port * 10 + (unsigned long)(*q - '0');
    }
    if (port == 0 || port > 65535)
        FAIL("'%.*s': the port must be 1-65535", (int)len, p);
    memcpy(u->host[i], host, hlen);
    u->host[i][hlen] = '\0';
    u->port[i] = (uint16_t)port;
    return 0;
}

int cluster_url_parse(const char *text, cluster_url *u, char *err,
                      size_t errlen) {
    memset(u, 0, sizeof *u);
    const char *p;
    if (strncmp(text, "redis://", 8) == 0) {
        p = text + 8;
    } else if (strncmp(text, "rediss://", 9) == 0) {
        p = text + 9;
        u->tls = 1;
    } else {
        FAIL("'%s': must start with redis:// (or rediss:// for TLS)", text);
    }
    const char *at = strchr(p, '@');
    if (at) {
        size_t ulen = (size_t)(at - p);
        if (ulen == 0) FAIL("the user before @ is empty");
        if (ulen > CLUSTER_URL_USER_MAX)
            FAIL("the user is longer than %d bytes", CLUSTER_URL_USER_MAX);
        if (memchr(p, ':', ulen))
            FAIL("no password in the URL (ps shows it): give it with "
                 "--cluster-password-file");
        for (size_t k = 0; k < ulen; k++)
            if (p[k] <= ' ' || p[k] == ',' || p[k] == '/' ||
                (unsigned char)p[k] >= 0x7f)
                FAIL("'%.*s': not a user name", (int)ulen, p);
        memcpy(u->user, p, ulen);
        p = at + 1;
    }
    if (!*p) FAIL("no HOST:PORT after %s", u->tls ? "rediss://" : "redis://");
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) FAIL("an empty address between commas");
        if (memchr(p, '/', len))
            FAIL("'%.*s': no path or database number (the cluster uses "
                 "database 0)", (int)len, p);
        if (u->n == CLUSTER_URL_MAX_ADDRS)
            FAIL("more than %d addresses", CLUSTER_URL_MAX_ADDRS);
        if (parse_addr(p, len, u, u->n, err, errlen)) return -1;
        u->n++;
        if (!e) break;
        p = e + 1;
        if (!*p) FAIL("an empty address after the last comma");
    }
    return 0;
}
