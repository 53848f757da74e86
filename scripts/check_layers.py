#!/usr/bin/env python3
"""Dependencies run one way (docs/ARCHITECTURE.md, "Layers and
dependencies"): no module of src/server/ may include, directly or through
other modules, the header of a module that includes its own. A module is a
pair x.c / x.h (or either alone); store_* files form one module (the store),
as do framing.h and framing_raw.* (the framing layer) and rconn* (one
Redis connection: rconn.h, its internal rconn_int.h and their files).

Below them all, src/common/ (beside src/server/) is shared by the server,
libchat and the tools: none of its files may include a header of
src/server/, src/client/ or src/cli/.

Prints the modules bottom up and exits 0, or names every cycle and every
such include and exits 1.
Usage: scripts/check_layers.py [src/server]
"""
import re
import sys
from pathlib import Path

INCLUDE = re.compile(r'^\s*#\s*include\s+"(?:server/)?([a-z0-9_]+)\.h"', re.M)
UPWARD = re.compile(r'^\s*#\s*include\s+"((?:server|client|cli)/[^"]+)"', re.M)


def module_of(stem):
    if stem.startswith("store"):
        return "store"
    if stem.startswith("framing"):
        return "framing"
    if stem.startswith("rconn"):
        return "rconn"
    return stem


def common_upward(common):
    """Every include of a server, client or cli header from src/common/."""
    bad = []
    for f in sorted(common.glob("*.[ch]")):
        for inc in UPWARD.findall(f.read_text()):
            bad.append("%s includes %s" % (f, inc))
    return bad


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src/server")
    upward = common_upward(root.parent / "common")
    for b in upward:
        print("check_layers: src/common must not depend upward: " + b,
              file=sys.stderr)
    deps = {}
    for f in sorted(root.glob("*.[ch]")):
        m = module_of(f.stem)
        deps.setdefault(m, set())
        for inc in INCLUDE.findall(f.read_text()):
            if (root / (inc + ".h")).exists():
                d = module_of(inc)
                if d != m:
                    deps[m].add(d)
    # Depth-first search for cycles; the finishing order is bottom up.
    order, state, cycles = [], {}, []

    def visit(m, path):
        state[m] = 1
        for d in sorted(deps.get(m, ())):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2
        order.append(m)

    for m in sorted(deps):
        if m not in state:
            visit(m, [m])
    for c in cycles:
        print("check_layers: include cycle: " + " -> ".join(c), file=sys.stderr)
    if cycles or upward:
        return 1
    print("check_layers: %d modules, no cycle; bottom up: %s"
          % (len(order), " ".join(order)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
