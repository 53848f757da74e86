#!/bin/sh
# SPIKE (not built by make): start a throw-away redis-server on a free
# loopback port with the persistence the cluster requires, pinned to core 1.
# Prints "PORT PID DIR". Stop it with: kill $PID  (or kill -9 to test a crash)
# Usage: redis-up.sh [DIR] [extra redis-server args...]
set -e
dir=${1:-$(mktemp -d /tmp/cluster-spike.XXXXXX)}; [ $# -gt 0 ] && shift
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c ${CORE:-1} redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
    --save "" --appendonly yes --appendfsync always --daemonize no \
    --logfile "$dir/redis.log" "$@" </dev/null >/dev/null 2>&1 &
pid=$!
i=0; until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do i=$((i+1)); [ $i -gt 600 ] && { echo "redis did not start" >&2; exit 1; }; sleep 0.05; done
echo "$port $pid $dir"
