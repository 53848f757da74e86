#!/bin/sh
# Does fuzz_frame find bugs? Plants one off-by-one at a time in a COPY of
# src/proto/frame.c (build/fuzz-mutant/), links it into fuzz_frame, and runs
# it from an empty corpus (no seeds: the fuzzer has to find the input) for
# at most SECONDS (default 30). Passes when every mutant is caught, and says
# how many executions and seconds each one took. src/ is never modified.
# Usage: tests/fuzz/mutant.sh [SECONDS]
set -u
cd "$(dirname "$0")/../.."
secs=${1:-30}
M=build/fuzz-mutant
CC=${FUZZ_CC:-clang}
FLAGS="-std=c11 -g -O1 -D_GNU_SOURCE -Isrc -fsanitize=address,undefined \
-fno-sanitize-recover=all -fno-omit-frame-pointer"
rm -rf "$M"
mkdir -p "$M"

# name|original text|planted text (a sed -e s expression's two halves, with
# '#' as the separator)
mutants='
error-short-body|if (len < FRAME_ERROR_FIXED) return|if (len < FRAME_ERROR_FIXED - 1) return
c2s-body-one-short|if (n - FRAME_C2S_HDR < f->len) return|if (n - FRAME_C2S_HDR + 1 < f->len) return
error-reason-cut|n = FRAME_REASON_MAX;|n = FRAME_REASON_MAX + 1;
'
rc=0
echo "$mutants" | while IFS='|' read -r name from to; do
  [ -n "$name" ] || continue
  d=$M/$name
  mkdir -p "$d/corpus"
  sed -e "s#$from#$to#" src/proto/frame.c > "$d/frame.c"
  if cmp -s src/proto/frame.c "$d/frame.c"; then
    echo "mutant $name: pattern not found in src/proto/frame.c (update mutant.sh)" >&2
    exit 1
  fi
  # the copy keeps including "frame.h" from src/proto
  $CC $FLAGS -Isrc/proto -fsanitize=fuzzer tests/fuzz/fuzz_frame.c "$d/frame.c" \
    -o "$d/fuzz_frame" || exit 1
  t0=$(date +%s)
  "$d/fuzz_frame" -max_len=8192 -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$d/" "$d/corpus" > "$d/log" 2>&1
  st=$?
  t1=$(date +%s)
  found=$(grep -E '^(==[0-9]+==ERROR|fuzz_frame: check failed|SUMMARY|.*runtime error)' "$d/log" | head -n 1)
  execs=$(grep '^stat::number_of_executed_units' "$d/log" | awk '{print $2}')
  if [ "$st" -ne 0 ] && [ -n "$found" ]; then
    echo "mutant $name: CAUGHT after ${execs:-?} execs, $((t1 - t0)) s: $found"
  else
    echo "mutant $name: NOT caught in ${secs}s (${execs:-?} execs; log $d/log)" >&2
    exit 1
  fi
done || rc=1
exit $rc
