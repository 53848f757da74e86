/*
 * groups.h -- group conversations in memory: each group's name and
 * members, and each user's groups (docs/PROTOCOL.md, "Groups").
 *
 * A pure data structure, used twice: by the store thread (its copy is the
 * authority: it checks every change against it and writes it to the
 * database) and by the loop (a copy the store's completions keep up to
 * date, for routing group messages and answering LIST and MEMBERS). No
 * I/O, no logging, no locking: each copy belongs to one thread.
 *
 * Costs: lookups O(1) by group (u32map), a member O(members) (at most
 * --max-group-members, 1,024 by default), a user's groups O(its groups).
 * Memory: 16 bytes per member, 4 bytes per membership in the user index,
 * about 100 bytes per group.
 */
#ifndef CHAT_SERVER_GROUPS_H
#define CHAT_SERVER_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/u32map.h"

#define GROUPS_NAME_MAX 64u  /* bytes of a group's name (UTF-8) */

typedef struct gmember {
    uint64_t joined;        /* messages after this id are its */
    uint32_t user;
    uint8_t admin;
} gmember;

typedef struct chatgroup {
    uint32_t id;
    uint8_t namelen;
    char name[GROUPS_NAME_MAX];
    uint32_t n, cap;        /* members, in the order they joined */
    gmember *m;
} chatgroup;

typedef struct groups {
    u32map byid;            /* id -> group (owned) */
    u32map byuser;          /* user -> ugroups (owned) */
} groups;

/* A user's groups. */
typedef struct ugroups {
    uint32_t n, cap;
    uint32_t *ids;
} ugroups;

void groups_init(groups *gs);
void groups_free(groups *gs);

chatgroup *groups_get(const groups *gs, uint32_t id);
/* The index of user among g's members, or -1. */
long groups_member(const chatgroup *g, uint32_t user);
/* user's groups (NULL: none). */
const ugroups *groups_of(const groups *gs, uint32_t user);

/* Create group id (unused) named name[0..namelen). 0 or -1 (out of
 * memory: nothing changed). */
int groups_create(groups *gs, uint32_t id, const char *name, size_t namelen);
/* Add user as a member (admin or not) who gets messages after `joined`;
 * a member already: its admin flag is raised if asked, nothing else. 0 or
 * -1 (out of memory: nothing changed). */
int groups_add(groups *gs, chatgroup *g, uint32_t user, int admin,
               uint64_t joined);
/* Remove user from g (absent: nothing). When the last admin leaves, the
 * longest-standing member becomes one. Returns 1 when g is now empty (the
 * caller then drops it with groups_drop), else 0. */
int groups_remove(groups *gs, chatgroup *g, uint32_t user);
/* Forget g (its members first). */
void groups_drop(groups *gs, chatgroup *g);
void groups_rename(chatgroup *g, const char *name, size_t namelen);

/* Assert the structure's invariants (both indexes agree, members unique,
 * at least one admin in a non-empty group); 1 for assert(). */
int groups_check(const groups *gs);

#endif
