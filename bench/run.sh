#!/usr/bin/env bash
# make bench: run chat-bench against chat-server, each scenario 3 times
# (server pinned to core 0, load generator to core 1, a fresh data directory
# per run), and write docs/BENCHMARKS.md with the medians. Prints every run.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build
OUT=docs/BENCHMARKS.md
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-3}
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

# name | server flags | chat-bench flags
SCENARIOS=(
  "echo, 50 users, depth 1|--echo|--scenario echo --users 50 --depth 1"
  "echo, 50 users, depth 64|--echo|--scenario echo --users 50 --depth 64"
  "pair, 50 users, depth 1||--scenario pair --users 50 --depth 1"
  "pair, 50 users, depth 64||--scenario pair --users 50 --depth 64"
  "pair, 1000 users, depth 8||--scenario pair --users 1000 --depth 8"
  "offline store, 50 senders, depth 64, --fsync=full|--fsync full|--scenario offline --users 50 --depth 64"
  "offline store, 50 senders, depth 64, --fsync=normal|--fsync normal|--scenario offline --users 50 --depth 64"
)

start_server() { # flags... -> sets PID PORT
  local dir="$TMP/data.$RANDOM" log="$TMP/server.log"
  : > "$log"
  taskset -c 0 "$B/chat-server" --port 0 --data-dir "$dir" \
    --offline-max-messages 0 --offline-max-bytes 0 "$@" 2>"$log" &
  PID=$!
  for _ in $(seq 100); do
    PORT=$(grep -oE 'listening on [0-9.]+:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    [ -n "$PORT" ] && return 0
    kill -0 $PID 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  echo "bench: server did not start" >&2; cat "$log" >&2; exit 1
}

field() { grep -oE "(^| )$1=[^ ]+" <<<"$2" | cut -d= -f2; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

rows=""
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r name sflags bflags <<<"$sc"
  tput=(); mb=(); p50=(); p99=(); p999=(); rss=()
  for r in $(seq "$RUNS"); do
    # shellcheck disable=SC2086
    start_server $sflags
    # shellcheck disable=SC2086
    line=$(taskset -c 1 "$B/chat-bench" --port "$PORT" --seconds "$SECS" \
             --server-pid "$PID" $bflags)
    kill -TERM $PID; wait $PID || true
    echo "$name | run $r | $line"
    tput+=("$(field msgs_per_s "$line")"); mb+=("$(field mb_per_s "$line")")
    p50+=("$(field p50_us "$line")"); p99+=("$(field p99_us "$line")")
    p999+=("$(field p999_us "$line")"); rss+=("$(field server_rss_kib "$line")")
  done
  m() { printf '%s\n' "$@" | median; }
  rows+="| $name | $(m "${tput[@]}") | $(m "${mb[@]}") | $(m "${p50[@]}") | $(m "${p99[@]}") | $(m "${p999[@]}") | $(( $(m "${rss[@]}") / 1024 )) |"$'\n'
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d); every figure is"
  echo "the median of $RUNS runs of ${SECS} s (after a 1 s warm-up), exactly as the"
  echo "command printed them. Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB,"
  echo "Linux $(uname -r); libuv $(dpkg-query -W -f='${Version}' libuv1 2>/dev/null),"
  echo "SQLite $(dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null). chat-server is"
  echo "pinned to core 0 (with its store thread), chat-bench to core 1, on loopback."
  echo
  echo "Scenarios: U users each keep D messages of 64 bytes in flight. *echo*: to"
  echo "itself on an \`--echo\` server; *pair*: user i to user i^1, done when the"
  echo "peer received it; *offline store*: senders that opted in to"
  echo "acknowledgements send to absent receivers, done when the server"
  echo "acknowledged the message, i.e. committed it to SQLite (\`--fsync=full\`:"
  echo "synced to disk). Latency is from send to done."
  echo
  echo "| scenario | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | server RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  printf '%s' "$rows"
  echo
  echo "The comparison with Redis pub/sub, NATS and Mosquitto, a minimal relay as"
  echo "the floor, 1 MiB messages and idle connections come with the benchmark issue."
} > "$OUT"
echo "bench: wrote $OUT"
