/* netaddr.c -- see netaddr.h. */
#include "server/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4mapped[12] = {[10] = 0xff, [11] = 0xff};

void netaddr_from_sockaddr(netaddr *a, const struct sockaddr *sa) {
    memset(a, 0, sizeof *a);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        memcpy(a->ip, &s6->sin6_addr, 16);
        a->port = ntohs(s6->sin6_port);
        a->v6 = 1;
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memcpy(a->ip, &s4->sin_addr, 4);
        a->port = ntohs(s4->sin_port);
    }
}

char *netaddr_format(const netaddr *a, char out[NETADDR_STRLEN]) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->v6) {
        if (!inet_ntop(AF_INET6, a->ip, ip, sizeof ip)) strcpy(ip, "?");
    } else if (a->port) {
        if (!inet_ntop(AF_INET, a->ip, ip, sizeof ip)) strcpy(ip, "?");
    }
    snprintf(out, NETADDR_STRLEN, "%s:%u", ip, (unsigned)a->port);
    return out;
}

int netaddr_is_loopback(const netaddr *a) {
    if (!a->v6) return a->port != 0 && a->ip[0] == 127;
    static const uint8_t one[16] = {[15] = 1};
    return memcmp(a->ip, one, 16) == 0 ||
           (memcmp(a->ip, v4mapped, 12) == 0 && a->ip[12] == 127);
}

uint32_t netaddr_key(const netaddr *a) {
    uint32_t k;
    const uint8_t *p = a->ip;
    if (!a->v6 || memcmp(p, v4mapped, 12) == 0) {
        if (a->v6) p += 12;
        k = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
            p[3];
    } else {
        k = 2166136261u; /* FNV-1a over the /64 */
        for (int i = 0; i < 8; i++) k = (k ^ p[i]) * 16777619u;
    }
    return k ? k : 1;
}
