/*
 * groupops.h -- a CONV connection's group requests (GROUP frames) and
 * their answers (GROUPS frames, ERROR GROUP), and the events that tell a
 * group's members what changed (docs/PROTOCOL.md, "Groups").
 *
 * LIST and MEMBERS are answered at once from the loop's copy of the groups
 * (store_groups). The others go to the store, which checks them against
 * its groups (the authority) and commits them; the answer and the events
 * follow its completion (groupops_done), never inside the request.
 */
#ifndef CHAT_SERVER_GROUPOPS_H
#define CHAT_SERVER_GROUPOPS_H

#include <stdint.h>

#include "server/conn.h"
#include "server/groups.h"

/* The largest GROUP body: prefix, a name (its length is a byte) and as
 * many user ids as its u16 count can say (a list may repeat ids, or pass
 * --max-group-members: that is refused with ERROR GROUP, not malformed). */
#define GROUPOPS_BODY_MAX (FRAME_GROUP_PRE + 1u + 255u + 2u + 4u * 65535u)

/* A GROUP frame from c (CONV, bound; its length was checked against
 * GROUPOPS_BODY_MAX). A malformed one closes c with ERROR PROTO. */
void groupops_request(conn *c, const frame_c2s *f);

/* The store answered a group operation (store_callbacks.group_done). */
void groupops_done(void *token, uint32_t group, int status);

/* The reason of an ERROR GROUP for a store status (STORE_G* or STORE_E*)
 * into out (at most FRAME_REASON_MAX bytes). */
void groupops_reason(int status, uint32_t group, const config *cfg,
                     char *out, size_t n);

#endif
