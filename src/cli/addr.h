/*
 * addr.h -- chat-client's server addresses: a --host value ("HOST",
 * "HOST:PORT", "[IPV6]:PORT" or a bare IPv6 address) parsed into a host
 * and a port, and the "HOST:PORT" label messages name it by.
 *
 * Pure: no I/O, no allocation, no name resolution (libchat resolves each
 * host when an attempt goes to it), so the unit tests drive it directly
 * (tests/unit/test_cli_addr.c).
 */
#ifndef CLI_ADDR_H
#define CLI_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include "chat.h"

/* A label: the host, brackets around an IPv6 address, ':' and the port. */
#define CLI_ADDR_LABEL_MAX (CHAT_HOST_MAX + 8u) /* "[" host "]:" 5 digits */

typedef struct cli_addr {
    char host[CHAT_HOST_MAX + 1];           /* NUL-terminated, 1-255 bytes */
    uint16_t port;                          /* 1-65535 */
    char label[CLI_ADDR_LABEL_MAX + 1];     /* "host:port", "[::1]:port" */
} cli_addr;

/* Parse `arg`, one --host value: "HOST" (the port is dflt_port), "HOST:PORT",
 * "[ADDR]" or "[ADDR]:PORT" (an IPv6 address in brackets), or a bare IPv6
 * address (two colons or more: no port can be told apart, so dflt_port).
 * PORT is 1-65535 in decimal. Returns 0 with *out filled, or -1 with a
 * sentence fragment in `why` (cap bytes, NUL-terminated, without the
 * value; e.g. "the port must be 1-65535, not '0'") and *out unspecified. O(strlen(arg)). */
int cli_addr_parse(const char *arg, uint16_t dflt_port, cli_addr *out,
                   char *why, size_t cap);

#endif
