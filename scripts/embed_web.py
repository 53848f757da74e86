#!/usr/bin/env python3
"""Write a C file holding the web client's files (web/, flat) for the
server's HTTP listener: web_asset_find() over a table of (name, type,
bytes). Usage: embed_web.py WEB_DIR OUT.c"""
import os
import sys

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: embed_web.py WEB_DIR OUT.c")
    web, out = sys.argv[1], sys.argv[2]
    names = sorted(n for n in os.listdir(web)
                   if os.path.isfile(os.path.join(web, n)))
    lines = ["/* Written by scripts/embed_web.py from %s/: do not edit. */" % web,
             '#include "server/web_assets.h"', "", "#include <string.h>", ""]
    table = []
    for i, n in enumerate(names):
        ext = os.path.splitext(n)[1].lower()
        if ext not in TYPES:
            sys.exit("embed_web.py: %s/%s: no Content-Type for '%s' "
                     "(add it to TYPES)" % (web, n, ext))
        if not all(c.isalnum() or c in "._-" for c in n):
            sys.exit("embed_web.py: %s/%s: name must be [A-Za-z0-9._-]" % (web, n))
        with open(os.path.join(web, n), "rb") as f:
            data = f.read()
        body = ",".join(str(b) for b in data)
        lines.append("static const uint8_t f%d[%d] = {%s};" % (i, max(len(data), 1), body or "0"))
        table.append('    {"%s", "%s", f%d, %d},' % (n, TYPES[ext], i, len(data)))
    lines += ["", "static const web_asset assets[] = {"] + table + ["};", ""]
    lines += [
        "const web_asset *web_asset_find(const char *name, size_t len) {",
        "    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)",
        "        if (strlen(assets[i].name) == len &&",
        "            memcmp(assets[i].name, name, len) == 0)",
        "            return &assets[i];",
        "    return NULL;",
        "}",
    ]
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
