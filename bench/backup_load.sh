#!/bin/bash
# bench/backup_load.sh [ROUNDS] -- what `chat-server backup` costs a server
# that stores messages: the offline-store load of `make bench` (50 senders
# with acknowledgements, depth 64, --fsync full; server on CPU 0, chat-bench
# and the backup on CPU 1) for 4 s alone, then 4 s with a backup started
# 1.5 s in, ROUNDS times (default 3) on a store that grows by each round's
# messages. Prints each window's msgs/s with the server's and chat-bench's
# CPU, and each backup's size, messages and time. Run `make` first.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build
ROUNDS=${1:-3}
TMP=$(mktemp -d)
trap 'kill "$P" 2>/dev/null; wait "$P" 2>/dev/null; rm -rf "$TMP"' EXIT
taskset -c 0 "$B/chat-server" --port 0 --data-dir "$TMP/data" --fsync full \
  --offline-max-messages 0 --offline-max-bytes 0 --rate-msgs 0 --rate-bytes 0 \
  2>"$TMP/server.log" &
P=$!
for _ in $(seq 100); do grep -q "listening on" "$TMP/server.log" && break; sleep 0.1; done
PORT=$(grep -o "listening on [0-9.]*:[0-9]*" "$TMP/server.log" | head -1 | sed 's/.*://')
bench() {
  taskset -c 1 "$B/chat-bench" --port "$PORT" --scenario offline --users 50 \
    --depth 64 --seconds "$1" --warmup 1 --server-pid "$P" 2>&1 | tail -1 |
    grep -o "msgs_per_s=[0-9]*\|server_cpu_pct=[0-9]*\|bench_cpu_pct=[0-9]*" | tr '\n' ' '
}
echo "fill:        $(bench 3)"
for r in $(seq "$ROUNDS"); do
  echo "round $r alone:       $(bench 4)"
  rm -f "$TMP/copy.db"
  ( sleep 1.5  # (a point inside the measured window, not a wait for a condition)
    /usr/bin/time -f "  %e s wall, %U s user, %S s sys, %M KiB max RSS" taskset -c 1 \
      "$B/chat-server" backup --data-dir "$TMP/data" "$TMP/copy.db" 2>&1 ) > "$TMP/backup.out" &
  BK=$!
  echo "round $r with backup: $(bench 4)"
  wait "$BK"
  sed 's/^/  /' "$TMP/backup.out"
done
