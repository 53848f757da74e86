#!/usr/bin/env python3
"""Write a C file holding the cluster store's Lua scripts
(src/server/redis/*.lua, docs/CLUSTER.md 2.7) for src/server/redis_scripts.h:
the table redis_scripts[] of (name, text, length, SHA1, read-only), in the
order of the header's enum.

A line "--@include NAME" of a script is replaced by the text of
lib/NAME.lua (its shared helpers; a fragment may include another, each at
most once per script). The SHA1 is that of the text after inclusion, which
is what SCRIPT LOAD answers and EVALSHA takes. A script whose first line is
"#!lua flags=no-writes" is read-only (EVALSHA_RO).

The header's enum (REDIS_SCRIPT_<NAME>, the names in sorted order, then
REDIS_SCRIPT_COUNT) must list exactly the scripts of the directory: a
script added without its constant, or the reverse, stops the build here.

Usage: embed_lua.py SCRIPT_DIR HEADER OUT.c
Importable: scripts(SCRIPT_DIR) -> [(name, text bytes, sha1 hex, readonly)].
"""
import hashlib
import os
import re
import sys

INCLUDE = re.compile(rb"^--@include ([a-z0-9_]+)[ \t]*$", re.M)
ENUM = re.compile(r"enum redis_script_id \{([^}]*)\}")
CONST = re.compile(r"\bREDIS_SCRIPT_([A-Z0-9_]+)\b")
READONLY = b"#!lua flags=no-writes\n"


def expand(script_dir, path):
    """The text of path with its includes (bytes)."""
    seen = set()

    def inc(m):
        name = m.group(1).decode()
        if name in seen:
            return b"-- (lib/%s.lua: included above)" % m.group(1)
        seen.add(name)
        with open(os.path.join(script_dir, "lib", name + ".lua"), "rb") as f:
            text = f.read()
        return INCLUDE.sub(inc, text).rstrip(b"\n")

    with open(path, "rb") as f:
        return INCLUDE.sub(inc, f.read())


def scripts(script_dir):
    out = []
    for n in sorted(os.listdir(script_dir)):
        path = os.path.join(script_dir, n)
        if not n.endswith(".lua") or not os.path.isfile(path):
            continue
        name = n[:-4]
        if not re.fullmatch(r"[a-z0-9_]+", name):
            sys.exit("embed_lua.py: %s: name must be [a-z0-9_]+.lua" % path)
        text = expand(script_dir, path)
        if not text.startswith(b"#!lua"):
            sys.exit("embed_lua.py: %s: the first line must be #!lua (flags)"
                     % path)
        out.append((name, text, hashlib.sha1(text).hexdigest(),
                    text.startswith(READONLY)))
    return out


def c_string(data):
    """data as C string literals, one source line each."""
    lines, cur = [], []
    for b in data:
        if b == 0x0A:
            cur.append("\\n")
            lines.append('"' + "".join(cur) + '"')
            cur = []
        elif b in (0x22, 0x5C, 0x3F):  # " \ ? (no trigraphs)
            cur.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            cur.append(chr(b))
        else:
            cur.append("\\%03o" % b)
    if cur or not lines:
        lines.append('"' + "".join(cur) + '"')
    return "\n    ".join(lines)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: embed_lua.py SCRIPT_DIR HEADER OUT.c")
    script_dir, header, out = sys.argv[1:]
    table = scripts(script_dir)
    with open(header) as f:
        m = ENUM.search(f.read())
    consts = CONST.findall(m.group(1)) if m else []
    want = [n.upper() for n, _, _, _ in table] + ["COUNT"]
    if consts != want:
        sys.exit("embed_lua.py: %s: the enum must be REDIS_SCRIPT_ + %s "
                 "(the scripts of %s in sorted order, then COUNT); it has %s"
                 % (header, ", ".join(want), script_dir, ", ".join(consts)))
    lines = ["/* Written by scripts/embed_lua.py from %s/: do not edit. */"
             % script_dir, '#include "server/redis_scripts.h"', ""]
    for i, (name, text, _, _) in enumerate(table):
        lines.append("static const char s%d[] =\n    %s;" % (i, c_string(text)))
    lines += ["", "const redis_script redis_scripts[REDIS_SCRIPT_COUNT] = {"]
    for i, (name, text, sha, ro) in enumerate(table):
        lines.append('    {"%s", s%d, %d, "%s", %d},'
                     % (name, i, len(text), sha, int(ro)))
    lines += ["};"]
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
