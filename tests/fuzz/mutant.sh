#!/bin/sh
# Do the fuzz targets find bugs? Plants one bug at a time in a COPY of a
# source file (under build/fuzz-mutant/), links it into the target in place
# of the original, and fuzzes it (with the dictionary) for at most SECONDS
# (default 30). Passes when every mutant is caught; prints how many
# executions and seconds each took. src/ is never modified.
# fuzz_conn mutants link the objects of `make fuzz-build` (run it first;
# `make fuzz-mutant` does).
# Usage: tests/fuzz/mutant.sh [SECONDS]
set -u
cd "$(dirname "$0")/../.."
secs=${1:-30}
M=build/fuzz-mutant
O=build/fuzz/obj
CC=${FUZZ_CC:-clang}
LIBS=${SERVER_LIBS:--luv -lsqlite3 -lpthread -lsodium -lssl -lcrypto}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all \
-fsanitize-recover=pointer-overflow -fno-omit-frame-pointer"
FLAGS="-std=c11 -g -O1 -D_GNU_SOURCE -Isrc -Iinclude $SAN"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/fuzz/ubsan.supp"
rm -rf "$M"
mkdir -p "$M"
# fuzz_conn's data directory (mkdtemp under $TMPDIR) is removed at a clean
# exit; one left by a crash stays here, under build/.
export TMPDIR="$PWD/build/fuzz/tmp"
mkdir -p "$TMPDIR"

# target|name|file|original text|planted text (sed s with '#' separators)
mutants='
frame|error-short-body|src/proto/frame.c|if (len < FRAME_ERROR_FIXED) return|if (len < FRAME_ERROR_FIXED - 1) return
frame|s2c-body-one-short|src/proto/frame.c|if (n - FRAME_S2C_HDR < f->len) return|if (n - FRAME_S2C_HDR + 1 < f->len) return
frame|error-reason-cut|src/proto/frame.c|n = FRAME_REASON_MAX;|n = FRAME_REASON_MAX + 1;
conn|ping-limit-off-by-one|src/server/session.c|: h->len <= FRAME_PING_MAX)|: h->len <= FRAME_PING_MAX + 1)
conn|outq-total-forgets-header|src/server/outq.c|o->total += FRAME_S2C_HDR + (size_t)len;|o->total += (size_t)len;
'
echo "$mutants" | while IFS='|' read -r target name file from to; do
  [ -n "$name" ] || continue
  d=$M/$name
  base=$(basename "$file")
  mkdir -p "$d/corpus"
  sed -e "s#$from#$to#" "$file" > "$d/$base"
  if cmp -s "$file" "$d/$base"; then
    echo "mutant $name: pattern not found in $file (update mutant.sh)" >&2
    exit 1
  fi
  # The copy keeps including its neighbours' headers from its own folder.
  inc="-I$(dirname "$file")"
  case $target in
    frame)
      $CC $FLAGS $inc -fsanitize=fuzzer tests/fuzz/fuzz_frame.c "$d/$base" \
        -o "$d/fuzz" || exit 1
      opts="-max_len=8192" seeds="" ;;
    conn)
      [ -d "$O" ] || { echo "mutant $name: run make fuzz-build first" >&2; exit 1; }
      orig=$O/$(echo "$file" | sed 's#^src/##; s#\.c$#.o#')
      objs=$(find "$O" -name '*.o' ! -path "$orig" | sort)
      $CC $FLAGS $inc -fsanitize=fuzzer-no-link -c "$d/$base" -o "$d/mutant.o" &&
      $CC $FLAGS -fsanitize=fuzzer tests/fuzz/fuzz_conn.c "$d/mutant.o" $objs \
        -o "$d/fuzz" $LIBS || exit 1
      opts="-max_len=70000 -timeout=20" seeds=tests/fuzz/corpus/conn ;;
  esac
  t0=$(date +%s)
  "$d/fuzz" $opts -dict=tests/fuzz/chat.dict -max_total_time="$secs" \
    -print_final_stats=1 -artifact_prefix="$d/" "$d/corpus" $seeds > "$d/log" 2>&1
  st=$?
  t1=$(date +%s)
  found=$(grep -E '^(==[0-9]+==ERROR|fuzz_[a-z]*: .*check failed|SUMMARY|.*runtime error|.*Assertion .* failed)' "$d/log" | head -n 1)
  execs=$(grep '^stat::number_of_executed_units' "$d/log" | awk '{print $2}')
  if [ "$st" -ne 0 ] && [ -n "$found" ]; then
    echo "mutant $name ($file): CAUGHT after ${execs:-?} execs, $((t1 - t0)) s: $found"
  else
    echo "mutant $name ($file): NOT caught in ${secs}s (${execs:-?} execs; log $d/log)" >&2
    exit 1
  fi
done
