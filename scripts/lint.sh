#!/bin/sh
# `make lint`: clang-tidy (Debian package clang-tidy, version 14) over every C
# file of src/ with the checks chosen in .clang-tidy. Prints one line per
# finding, `file:line:col: check: message`, and exits 1 if there is any (2 if
# the tools are missing or a file does not compile). bench/ and tests/ are
# not linted yet. Before that, one concern per file: a C file of src/ over
# MAX_LINES (800) lines fails it at once (exit 1), one line naming the file
# and its count (split it by concern, as src/cli/interactive.c and ia_*.c
# are).
#
# The compile database is made here, from the Makefile's own compile
# commands (`make -n`, so the flags cannot drift): those of the debug build
# (DEBUG=1: assert() kept, which the analyzer uses), minus -Werror and the
# dependency-file flags. Files are analysed LINT_JOBS at a time (default:
# the number of cores); the whole output, with the analyzer's paths, is kept
# in build/lint/clang-tidy.log.
#
# Environment: CLANG_TIDY (default clang-tidy), LINT_JOBS.
set -eu
cd "$(dirname "$0")/.."

TIDY=${CLANG_TIDY:-clang-tidy}
JOBS=${LINT_JOBS:-$(nproc 2>/dev/null || echo 2)}
OUT=build/lint

for tool in "$TIDY" python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "lint: $tool not found: run scripts/deps.sh test (Debian packages clang-tidy, python3)" >&2
    exit 2
  fi
done

rm -rf "$OUT"
mkdir -p "$OUT/log"

# 0. No C file of src/ over MAX_LINES lines (it costs nothing: first).
MAX_LINES=800
too_long=$(find src -name '*.c' | sort | xargs wc -l |
  awk -v max="$MAX_LINES" '$2 != "total" && $1 > max {
    printf "lint: %s has %d lines, over %d: split it by concern (one concern per file)\n", $2, $1, max }')
if [ -n "$too_long" ]; then
  echo "$too_long" >&2
  exit 1
fi

# 1. The compile database. A clean environment for the inner make, so that
# the flags of an outer `make SANITIZE=1 ...` do not leak in.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
  make -nB --no-print-directory DEBUG=1 SANITIZE=0 B="$OUT/obj" all >"$OUT/make-n.txt"
python3 - "$OUT/make-n.txt" >"$OUT/compile_commands.json" <<'EOF'
import json, os, shlex, sys
drop = {"-Werror", "-MMD", "-MP"}
db = {}
for line in open(sys.argv[1]):
    args = shlex.split(line)
    if "-c" not in args or "-fPIC" in args:   # the PIC copies of libchat: same flags
        continue
    src = args[args.index("-c") + 1]
    if src.startswith("src/") and src.endswith(".c"):
        db.setdefault(src, {"directory": os.getcwd(), "file": src,
                            "arguments": [a for a in args if a not in drop]})
json.dump(sorted(db.values(), key=lambda e: e["file"]), sys.stdout, indent=1)
EOF

# Every C file of src/ must be in it (a file the Makefile does not build
# would otherwise go unchecked).
missing=$(find src -name '*.c' | sort | while read -r f; do
  grep -q "\"file\": \"$f\"" "$OUT/compile_commands.json" || echo "$f"; done)
if [ -n "$missing" ]; then
  echo "lint: not built by the Makefile, so no flags to lint them with:" $missing >&2
  exit 2
fi

# 2. clang-tidy, one process per file, JOBS at a time, each into its own log.
find src -name '*.c' | sort | xargs -P "$JOBS" -n 1 sh -c '
  log="$2/log/$(echo "$3" | tr / _).log"
  "$1" -p "$2" --quiet "$3" >"$log" 2>"$log.err" || echo "$3" >>"$2/failed"
' sh "$TIDY" "$OUT"
cat "$OUT"/log/*.log >"$OUT/clang-tidy.log"

# 3. The findings, once each (a header's are reported by every file that
# includes it), relative to the top directory, with the function named for
# an unused result.
status=0
python3 - "$OUT/clang-tidy.log" "$(pwd)/" <<'EOF' || status=$?
import re, sys
log, top = sys.argv[1], sys.argv[2]
diag = re.compile(r"^(.+?):(\d+):(\d+): (warning|error): (.*?)(?: \[([^\]]+)\])?$")
found = set()
for line in open(log, errors="replace"):
    m = diag.match(line.rstrip("\n"))
    if not m:
        continue
    path, ln, col, _, msg, check = m.groups()
    check = (check or "clang-diagnostic-error").replace(",-warnings-as-errors", "")
    if path.startswith(top):
        path = path[len(top):]
    if check in ("bugprone-unused-return-value", "cert-err33-c"):
        try:
            text = open(path, errors="replace").read().split("\n")[int(ln) - 1]
            name = re.match(r"[A-Za-z_]\w*", text[int(col) - 1:])
            if name:
                msg = "the result of %s() is not used" % name.group(0)
        except (OSError, IndexError):
            pass
    found.add((path, int(ln), int(col), check, msg))
for f in sorted(found):
    print("%s:%d:%d: %s: %s" % f)
sys.exit(1 if found else 0)
EOF
if [ -s "$OUT/failed" ]; then
  echo "lint: clang-tidy failed on:" $(cat "$OUT/failed") "(see $OUT/log/)" >&2
  exit 2
fi
if [ "$status" -ne 0 ]; then
  echo "lint: findings above (paths of the analyzer's in $OUT/clang-tidy.log); checks chosen in .clang-tidy" >&2
  exit 1
fi
echo "lint: clean ($(find src -name '*.c' | wc -l) files, checks in .clang-tidy)"
