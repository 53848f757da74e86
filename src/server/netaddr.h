/*
 * netaddr.h -- a peer's address as the server keeps it: raw bytes (19 bytes,
 * no sockaddr_storage per connection), formatted only for log lines.
 *
 * Pure functions: no I/O, no allocation, no logging.
 */
#ifndef CHAT_SERVER_NETADDR_H
#define CHAT_SERVER_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct netaddr {
    uint8_t ip[16]; /* IPv4: the first 4 bytes */
    uint16_t port;  /* host order; 0 when unknown */
    uint8_t v6;
} netaddr;

/* "ip:port" needs at most this many bytes with its NUL. */
#define NETADDR_STRLEN 56

/* Fill a from an AF_INET or AF_INET6 socket address (anything else: all
 * zero, formatted as "?:0"). */
void netaddr_from_sockaddr(netaddr *a, const struct sockaddr *sa);

/* "ip:port" into out (NETADDR_STRLEN bytes); returns out. */
char *netaddr_format(const netaddr *a, char out[NETADDR_STRLEN]);

/* 1 for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104, else 0. */
int netaddr_is_loopback(const netaddr *a);

/* The key under which connections from one place are counted
 * (--max-conns-per-ip): an IPv4 address as is (IPv4-mapped IPv6 too); for
 * IPv6 a hash of its /64, since one host usually holds a whole /64. Never 0
 * (0 is the empty key of u32map). */
uint32_t netaddr_key(const netaddr *a);

#endif
