/*
 * redis_scripts.h -- the cluster store's Lua scripts (src/server/redis/,
 * their contracts in docs/CLUSTER.md 2.7), built into the binary:
 * build/gen/redis_scripts.c is written by scripts/embed_lua.py at build
 * time with each script's text (its lib/ fragments included) and the SHA1
 * of that text, so a node calls EVALSHA at once and sends SCRIPT LOAD only
 * after a NOSCRIPT answer (a restarted or flushed Redis). Read-only data;
 * no allocation.
 */
#ifndef CHAT_SERVER_REDIS_SCRIPTS_H
#define CHAT_SERVER_REDIS_SCRIPTS_H

#include <stddef.h>

typedef struct redis_script {
    const char *name;  /* the file's name without .lua ("put") */
    const char *text;  /* the script, NUL-terminated (len bytes before it) */
    size_t len;
    const char *sha1;  /* 40 lowercase hex digits: what SCRIPT LOAD answers */
    int readonly;      /* 1: "#!lua flags=no-writes", call with EVALSHA_RO */
} redis_script;

/* One per script, in the sorted order of their names (embed_lua.py checks
 * this list against the directory and stops the build when they differ). */
enum redis_script_id {
    REDIS_SCRIPT_ACCOUNT,
    REDIS_SCRIPT_CURSOR,
    REDIS_SCRIPT_DEL,
    REDIS_SCRIPT_DEVICE,
    REDIS_SCRIPT_FETCH,
    REDIS_SCRIPT_GPUT,
    REDIS_SCRIPT_GROUP,
    REDIS_SCRIPT_HEARTBEAT,
    REDIS_SCRIPT_HISTORY,
    REDIS_SCRIPT_JANITOR,
    REDIS_SCRIPT_MARKS,
    REDIS_SCRIPT_ONLINE,
    REDIS_SCRIPT_PRESENCE,
    REDIS_SCRIPT_PUT,
    REDIS_SCRIPT_READ_MARK,
    REDIS_SCRIPT_RELAY,
    REDIS_SCRIPT_COUNT
};

/* Indexed by enum redis_script_id. */
extern const redis_script redis_scripts[REDIS_SCRIPT_COUNT];

#endif
