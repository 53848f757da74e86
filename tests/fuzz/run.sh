#!/bin/sh
# Run libFuzzer targets (built by `make fuzz-build`) for a bounded time.
# Usage: tests/fuzz/run.sh TARGET SECONDS [TARGET SECONDS ...]
#   TARGET is frame, conn, http or ws (build/fuzz/fuzz_TARGET). Several pairs
#   run at once, one process each (four on 2 cores share them: the wall
#   time is SECONDS, each gets about half a core). A target's own
#   dictionary tests/fuzz/TARGET.dict is used when there is one, else
#   chat.dict. New inputs go to build/fuzz/corpus/TARGET/; the committed
#   seeds in tests/fuzz/corpus/TARGET/ are read, never written.
#   Prints, per target: executions, exec/s, coverage (cov: edges, ft:
#   features), corpus size. Exits non-zero when any run found a crash, a
#   leak, a timeout or a sanitizer report (its log tail is printed, the
#   input is in build/fuzz/artifacts/).
set -u
cd "$(dirname "$0")/../.."
D=build/fuzz
mkdir -p "$D/artifacts" "$D/logs"
# fuzz_conn's data directory (mkdtemp under $TMPDIR) is removed at a clean
# exit; one left by a crash stays here, under build/.
export TMPDIR="$PWD/build/fuzz/tmp"
mkdir -p "$TMPDIR"
# Every sanitizer report stops the run; tests/fuzz/ubsan.supp lists the
# known ones (see there).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/fuzz/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

opts_for() {
  case "$1" in
    frame) echo "-max_len=8192 -timeout=10" ;;
    # conn: one input is one client's byte stream, up to a few frames of
    # the 64 KiB read buffer; each input runs the server's loop.
    conn) echo "-max_len=70000 -timeout=20 -rss_limit_mb=4096" ;;
    # http: one input is a client's bytes, up to the 8 KiB request buffer
    # the HTTP listener is meant to use, parsed as pipelined requests.
    http) echo "-max_len=8192 -timeout=10" ;;
    # ws: the bytes a WebSocket client sends after its upgrade (fuzz_ws.c).
    ws) echo "-max_len=16384 -timeout=10" ;;
    *) echo "run.sh: unknown target $1" >&2; exit 2 ;;
  esac
}

pids=""
targets=""
while [ $# -ge 2 ]; do
  t=$1 secs=$2; shift 2
  bin=$D/fuzz_$t
  [ -x "$bin" ] || { echo "run.sh: $bin missing (make fuzz-build)" >&2; exit 2; }
  mkdir -p "$D/corpus/$t"
  # A target's own dictionary (tests/fuzz/TARGET.dict), else chat.dict.
  dict=""
  if [ -f "tests/fuzz/$t.dict" ]; then dict="-dict=tests/fuzz/$t.dict"
  elif [ -f tests/fuzz/chat.dict ]; then dict="-dict=tests/fuzz/chat.dict"; fi
  echo "fuzz: $t for ${secs}s (log $D/logs/$t.log)"
  # shellcheck disable=SC2046
  "$bin" $(opts_for "$t") $dict -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$D/artifacts/$t-" "$D/corpus/$t" "tests/fuzz/corpus/$t" \
    >"$D/logs/$t.log" 2>&1 &
  pids="$pids $!"
  targets="$targets $t"
done

rc=0
set -- $targets
for pid in $pids; do
  t=$1; shift
  if wait "$pid"; then st=0; else st=$?; fi
  log=$D/logs/$t.log
  # The last status line: "#N ... cov: C ft: F corp: K/S exec/s: E ..."
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 execs in \2 s/p' "$log" | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.*\(cov: [0-9]*\).*\(ft: [0-9]*\).*/\1 \2/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
  eps=$(grep '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
  echo "fuzz: $t: ${runs:-?}, ${eps:-?} exec/s, ${cov:-?}, corpus ${corp:-?} (files/bytes)"
  if [ "$st" -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $st); end of $log:" >&2
    tail -n 60 "$log" >&2
    ls -1 "$D"/artifacts/"$t"-* 2>/dev/null | sed 's/^/fuzz: artifact /' >&2
    rc=1
  fi
done
exit $rc
