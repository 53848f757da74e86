/*
 * web_assets.h -- the web client's files (web/), built into the binary:
 * build/gen/web_assets.c is written from web/ by scripts/embed_web.py at
 * build time, so a server serves the client of its own version and needs
 * no files beside it. Read-only data; no allocation.
 */
#ifndef CHAT_SERVER_WEB_ASSETS_H
#define CHAT_SERVER_WEB_ASSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct web_asset {
    const char *name;    /* file name under web/ ("index.html") */
    const char *type;    /* its Content-Type */
    const uint8_t *data;
    size_t len;
} web_asset;

/* The file called name[0..len), or NULL. O(files). */
const web_asset *web_asset_find(const char *name, size_t len);

#endif
