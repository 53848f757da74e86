/*
 * rblock.h -- a blocking Redis session for command-line tools (`chat-server
 * user --cluster`): one rconn (rconn.h) on a private libuv loop, each call
 * running that loop until its answer came. So the tools speak to Redis
 * exactly as the nodes do -- the same address list and primary check, AUTH
 * with an ACL user, TLS (rediss://, which Debian's hiredis 0.14 cannot do
 * on its own), the same deadlines -- without a second client.
 *
 *     rblock *b;
 *     rblock_open(&b, &options, err, sizeof err);   connected, or why not
 *     rblock_command(b, argc, argv, lens, take, ud, err, sizeof err);
 *     rblock_close(b);
 *
 * A connection that fails is not retried: the first round over the
 * addresses that fails ends rblock_open with rconn's reason (a tool
 * reports it and exits; a person runs it again). Never for the event loop
 * of a server: every call blocks, up to the connect deadline of each
 * address or the command deadline (rconn's, 2 s and 5 s by default).
 * Nothing is logged; errors are sentences in err naming the address.
 * Threads: the caller's; one session per thread.
 */
#ifndef CHAT_SERVER_RBLOCK_H
#define CHAT_SERVER_RBLOCK_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "server/rconn.h"

typedef struct rblock rblock;

/* Connect to the first address of o that answers (o->require_master is
 * set here: a tool writes to the primary). o's hooks are ignored (rblock
 * sets its own). 0 with *out set, or -1 with a sentence in err and *out
 * NULL (nothing left open). The caller frees *out with rblock_close. */
int rblock_open(rblock **out, const rconn_options *o, char *err,
                size_t errlen);

/* Send one command (argv[0..argc), lens NULL: strlen of each) and wait for
 * its reply; take(ud, reply) runs with it (before this returns; the reply
 * is valid during that call only, and may be an error reply: take
 * decides). 0, or -1 with a sentence in err when no reply came (the
 * connection failed, a deadline passed: the command may or may not have
 * run). */
int rblock_command(rblock *b, int argc, const char **argv,
                   const size_t *lens,
                   void (*take)(void *ud, const redisReply *reply), void *ud,
                   char *err, size_t errlen);

/* "host:port" of the connection ("" before one). */
const char *rblock_peer(const rblock *b);

/* Close the connection and the loop, free b (NULL: nothing). */
void rblock_close(rblock *b);

#endif
