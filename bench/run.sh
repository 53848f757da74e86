#!/usr/bin/env bash
# make bench: run build/chat-bench against chat-server, the floor
# (build/floor) and the relays users would pick instead (Redis pub/sub, NATS,
# Mosquitto), every server pinned to core 0 and the load generator to core 1,
# on loopback, each figure the median of RUNS runs, a fresh server per run.
# Prints every run as it goes, then writes docs/BENCHMARKS.md and
# docs/bench/*.png from exactly those lines (nothing is typed in by hand).
#
# Environment: BENCH_RUNS (3), BENCH_SECONDS (2), BENCH_WARMUP (0.5),
# BENCH_SERVERS ("chat floor redis nats mqtt"), BENCH_IDLE ("10000 50000
# 100000"), BENCH_IDLE_ALL (10000: the N up to which the competitors also
# get the idle scenario), BENCH_ONLY (scenario ids to run, default all),
# BENCH_BUDGET (570: an idle run that would end past this many seconds is
# skipped, so that the whole command stays within 10 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
T_START=$(date +%s)
B=build
OUT=docs/BENCHMARKS.md
PNG=docs/bench
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-2}
WARM=${BENCH_WARMUP:-0.5}
SERVERS=${BENCH_SERVERS:-"chat floor redis nats mqtt"}
IDLE_NS=${BENCH_IDLE:-"10000 50000 100000"}
IDLE_ALL=${BENCH_IDLE_ALL:-10000}
ONLY=${BENCH_ONLY:-}
BUDGET=${BENCH_BUDGET:-570}
TMP=$(mktemp -d)
RES=$TMP/results     # server <TAB> scenario id <TAB> run <TAB> chat-bench line
: > "$RES"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/deps.sh bench || { echo "bench: could not install the servers to compare (scripts/deps.sh bench)" >&2; exit 1; }
for p in "$B/chat-server" "$B/chat-bench" "$B/floor"; do
  [ -x "$p" ] || { echo "bench: $p is missing: run make first" >&2; exit 1; }
done

elapsed() { echo $(( $(date +%s) - T_START )); }
log() { printf '[%4ss] %s\n' "$(elapsed)" "$*"; }

# --- limits: servers inherit this shell's descriptor limit ---------------
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
PORTS=$(tr -s '\t ' '-' < /proc/sys/net/ipv4/ip_local_port_range)
FILEMAX=$(cat /proc/sys/fs/file-max)
NROPEN=$(cat /proc/sys/fs/nr_open)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "bench: descriptors per process $NOFILE (hard $(ulimit -Hn)), ephemeral ports $PORTS," \
    "fs.file-max $FILEMAX, fs.nr_open $NROPEN, load average $LOAD_START"

# --- servers --------------------------------------------------------------
name_of() {
  case $1 in chat) echo chat-server ;; floor) echo floor ;; redis) echo Redis ;;
             nats) echo NATS ;; mqtt) echo Mosquitto ;; esac
}
proto_of() { case $1 in chat|floor) echo chat ;; *) echo "$1" ;; esac; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # below the ephemeral range, so no client socket takes it
  local p
  for _ in $(seq 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    port_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}
wait_port() { # pid port
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.025
  done
  return 1
}
wait_log_port() { # pid log -> PORT from "listening on ADDR:PORT"
  for _ in $(seq 200); do
    PORT=$(grep -oE 'listening on [0-9.]+:[0-9]+' "$2" | grep -oE '[0-9]+$' || true)
    [ -n "$PORT" ] && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.025
  done
  return 1
}

printf 'max_payload: 2097152\nmax_connections: 1000000\n' > "$TMP/nats.conf"

# start_server SERVER CHAT_FLAGS -> PID PORT; 1 when it did not come up
start_server() {
  local srv=$1 cflags=$2 log="$TMP/server.log"
  : > "$log"
  PORT=""
  case $srv in
    chat)
      # shellcheck disable=SC2086
      taskset -c 0 "$B/chat-server" --port 0 --data-dir "$TMP/data.$RANDOM$RANDOM" \
        --offline-max-messages 0 --offline-max-bytes 0 --rate-msgs 0 --rate-bytes 0 \
        $cflags 2>"$log" &
      PID=$!
      wait_log_port "$PID" "$log" ;;
    floor)
      taskset -c 0 "$B/floor" --port 0 2>"$log" &
      PID=$!
      wait_log_port "$PID" "$log" ;;
    redis)
      PORT=$(free_port)
      taskset -c 0 redis-server --save "" --appendonly no --port "$PORT" --bind 127.0.0.1 \
        --protected-mode yes --maxclients 1000000 --loglevel warning >"$log" 2>&1 &
      PID=$!
      wait_port "$PID" "$PORT" ;;
    nats)
      PORT=$(free_port)
      taskset -c 0 nats-server -a 127.0.0.1 -p "$PORT" -c "$TMP/nats.conf" >"$log" 2>&1 &
      PID=$!
      wait_port "$PID" "$PORT" ;;
    mqtt)
      PORT=$(free_port)
      printf 'listener %s 127.0.0.1\nallow_anonymous true\nlog_type error\n' "$PORT" > "$TMP/mosquitto.conf"
      taskset -c 0 mosquitto -c "$TMP/mosquitto.conf" >"$log" 2>&1 &
      PID=$!
      wait_port "$PID" "$PORT" ;;
  esac
  if [ -z "$PORT" ] || ! kill -0 "$PID" 2>/dev/null; then
    echo "bench: $(name_of "$srv") did not start:" >&2; cat "$log" >&2
    stop_server; return 1
  fi
  return 0
}
stop_server() {
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null
  PID=""
}

# --- scenarios --------------------------------------------------------------
# id | label | plot label | chat-bench flags | servers | chat-server flags
SCENARIOS=(
  "echo1|echo, 50 users, depth 1|echo 50x1|--scenario echo --users 50 --depth 1|all|--echo"
  "echo64|echo, 50 users, depth 64|echo 50x64|--scenario echo --users 50 --depth 64|all|--echo"
  "pair1|pair, 50 users, depth 1|pair 50x1|--scenario pair --users 50 --depth 1|all|"
  "pair64|pair, 50 users, depth 64|pair 50x64|--scenario pair --users 50 --depth 64|all|"
  "pair1000|pair, 1,000 users, depth 8|pair 1000x8|--scenario pair --users 1000 --depth 8|all|"
  "mib|pair, 2 users, depth 4, 1 MiB|pair 2x4 1MiB|--scenario pair --users 2 --depth 4 --size 1048576|all|"
  "fanin|fan-in, 49 users to 1, depth 8|fan-in 49>1 x8|--scenario fanin --users 50 --depth 8|all|"
  "offline|offline store, 50 senders, depth 64, --fsync=full|offline fsync|--scenario offline --users 50 --depth 64|chat|--fsync full"
)
depth_of() { grep -oE -- '--depth [0-9]+' <<<"$1" | cut -d' ' -f2; }
wanted() { [ -z "$ONLY" ] || grep -qw -- "$1" <<<"$ONLY"; }

log "bench: $RUNS runs of ${SECS} s (after ${WARM} s warm-up) per figure; servers: $SERVERS"
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r id label _ bflags servers cflags <<<"$sc"
  wanted "$id" || continue
  [ "$servers" = all ] && servers=$SERVERS
  for srv in $SERVERS; do
    grep -qw "$srv" <<<"$servers" || continue
    for r in $(seq "$RUNS"); do
      start_server "$srv" "$cflags" || { printf '%s\t%s\t%s\t%s\n' "$srv" "$id" "$r" "error=start" >> "$RES"; continue; }
      # shellcheck disable=SC2086
      line=$(taskset -c 1 "$B/chat-bench" --proto "$(proto_of "$srv")" --port "$PORT" \
               --seconds "$SECS" --warmup "$WARM" --server-pid "$PID" $bflags 2>"$TMP/bench.err")
      rc=$?
      stop_server
      if [ $rc -ne 0 ] || [ -z "$line" ]; then
        line="error=rc$rc $(tr '\n ' ' _' < "$TMP/bench.err" | cut -c1-160)"
      fi
      printf '%s\t%s\t%s\t%s\n' "$srv" "$id" "$r" "$line" >> "$RES"
      log "$(name_of "$srv") | $label | run $r | $line"
    done
  done
done

# Where chat-server's time goes: one more run per scenario with perf
# sampling the server during the measured phase (self time per symbol,
# kernel included). The page shows it under each target chat-server misses.
if grep -qw chat <<<"$SERVERS" && command -v perf >/dev/null 2>&1; then
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ bflags servers cflags <<<"$sc"
    wanted "$id" || continue
    [ "$id" = offline ] && continue
    start_server chat "$cflags" || continue
    # shellcheck disable=SC2086
    taskset -c 1 "$B/chat-bench" --port "$PORT" --seconds "$SECS" --warmup "$WARM" \
      $bflags > /dev/null 2>&1 &
    bpid=$!
    sleep "$WARM"
    perf record -q -F 999 -g -p "$PID" -o "$TMP/perf.$id" -- sleep "$SECS" > /dev/null 2>&1
    wait "$bpid"
    stop_server
    perf report -i "$TMP/perf.$id" --no-children --sort symbol --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -12 | sed 's/[ -]*$//' > "$TMP/prof.$id"
    log "chat-server | $label | profiled ($(wc -l < "$TMP/prof.$id") symbols kept)"
  done
fi

# Idle connections: the server's RSS per connection.
for n in $IDLE_NS; do
  id="idle$n"
  wanted "$id" || wanted idle || continue
  for srv in $SERVERS; do
    case $srv in chat|floor) ;; *) [ "$n" -le "$IDLE_ALL" ] || continue ;; esac
    if [ $(( n + 64 )) -gt "$NOFILE" ]; then
      printf '%s\t%s\t0\t%s\n' "$srv" "$id" "skipped=nofile$NOFILE" >> "$RES"
      log "$(name_of "$srv") | idle $n | skipped: needs $n descriptors, the limit is $NOFILE (ulimit -Hn)"
      continue
    fi
    for r in $(seq "$RUNS"); do
      # a run: start, about 5,000 connections a second, 0.5 s settle, stop
      if [ $(( $(elapsed) + n / 5000 + 3 )) -gt "$BUDGET" ]; then
        printf '%s\t%s\t%s\t%s\n' "$srv" "$id" "$r" "skipped=time" >> "$RES"
        log "$(name_of "$srv") | idle $n | run $r | skipped: it would end past the ${BUDGET} s budget"
        continue
      fi
      start_server "$srv" "" || continue
      line=$(taskset -c 1 "$B/chat-bench" --proto "$(proto_of "$srv")" --port "$PORT" \
               --scenario idle --users "$n" --server-pid "$PID" 2>"$TMP/bench.err")
      rc=$?
      stop_server
      if [ $rc -ne 0 ] || [ -z "$line" ]; then
        line="error=rc$rc $(tr '\n ' ' _' < "$TMP/bench.err" | cut -c1-160)"
      fi
      printf '%s\t%s\t%s\t%s\n' "$srv" "$id" "$r" "$line" >> "$RES"
      log "$(name_of "$srv") | idle $n | run $r | $line"
    done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- medians ----------------------------------------------------------------
# med SERVER SCENARIO KEY: the median of KEY over that cell's good runs; empty
# when none.
med() {
  awk -F'\t' -v s="$1" -v c="$2" -v k="$3" '
    $1 == s && $2 == c { n = split($4, f, " ")
      for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == k) v[++m] = kv[2] } }
    END { if (!m) exit
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      print v[int((m + 1) / 2)] }' "$RES"
}
nruns() { awk -F'\t' -v s="$1" -v c="$2" '$1 == s && $2 == c && $4 ~ /msgs_per_s=|rss_per_conn_b=/ {n++} END {print n+0}' "$RES"; }
fail_of() { awk -F'\t' -v s="$1" -v c="$2" '$1 == s && $2 == c && $4 ~ /^(error|skipped)=/ {print $4; exit}' "$RES"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'; }
# Runs in which nothing was lost: at the end, sent - received is exactly what
# the senders keep in flight (U x D; fan-in (U-1) x D) and nothing reached the
# wrong user. Prints "sound total".
soundness() {
  awk -F'\t' '$4 ~ /sent=/ { n = split($4, f, " "); delete v
      for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
      total++
      senders = v["scenario"] == "fanin" ? v["users"] - 1 : v["users"]
      if (v["sent"] - v["received"] == senders * v["depth"] && v["misrouted"] == 0 && v["unheard"] == 0) ok++ }
    END { print ok + 0, total + 0 }' "$RES"
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
kib_mib() { awk -v k="$1" 'BEGIN { if (k == "" || k < 0) print "-"; else printf "%.1f", k / 1024 }'; }
dash() { [ -n "$1" ] && echo "$1" || echo "-"; }

# One cell's figures, into M_<key>[srv,id].
declare -A TP MB P50 P99 P999 RSS SCPU BCPU EFF
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r id _ <<<"$sc"
  for srv in $SERVERS; do
    TP[$srv,$id]=$(med "$srv" "$id" msgs_per_s); MB[$srv,$id]=$(med "$srv" "$id" mb_per_s)
    P50[$srv,$id]=$(med "$srv" "$id" p50_us); P99[$srv,$id]=$(med "$srv" "$id" p99_us)
    P999[$srv,$id]=$(med "$srv" "$id" p999_us); RSS[$srv,$id]=$(med "$srv" "$id" server_rss_kib)
    SCPU[$srv,$id]=$(med "$srv" "$id" server_cpu_pct); BCPU[$srv,$id]=$(med "$srv" "$id" bench_cpu_pct)
    EFF[$srv,$id]=$(med "$srv" "$id" msgs_per_server_cpu_s)
  done
done
best_comp() { # scenario -> "server msgs/s" of the fastest competitor
  local best="" bv=""
  for s in redis nats mqtt; do
    v=${TP[$s,$1]:-}
    [ -n "$v" ] || continue
    if [ -z "$bv" ] || ge "$v" "$bv"; then best=$s; bv=$v; fi
  done
  [ -n "$best" ] && echo "$best $bv"
}

# --- plots --------------------------------------------------------------------
mkdir -p "$PNG"
{
  printf 'scenario'; for s in $SERVERS; do printf '\t%s' "$(name_of "$s")"; done; echo
} > "$TMP/head.dat"
for what in tput p99 rel; do cp "$TMP/head.dat" "$TMP/$what.dat"; done
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r id _ plabel _ <<<"$sc"
  wanted "$id" || continue
  for what in tput p99 rel; do
    printf '%s' "$plabel" >> "$TMP/$what.dat"
    for s in $SERVERS; do
      case $what in
        tput) v=${TP[$s,$id]:-} ;;
        p99) v=${P99[$s,$id]:-} ;;
        rel) v=$(ratio "${TP[$s,$id]:-}" "${TP[floor,$id]:-}") ;;
      esac
      printf '\t%s' "$(dash "$v")" >> "$TMP/$what.dat"
    done
    echo >> "$TMP/$what.dat"
  done
done
plot() { # dat png title ylabel logy ref
  [ "$(wc -l < "$1")" -gt 1 ] || return 0 # no throughput scenario ran
  gnuplot -e "dat='$1'; out='$2'; ttl='$3'; yl='$4'; logy=$5; ref=$6" bench/plot.gp 2>"$TMP/gnuplot.err" \
    || { echo "bench: gnuplot failed for $2:" >&2; cat "$TMP/gnuplot.err" >&2; }
}
plot "$TMP/tput.dat" "$PNG/throughput.png" "Delivered messages per second (median of $RUNS runs, higher is better)" "msgs/s (log scale)" 1 0
plot "$TMP/p99.dat" "$PNG/p99.png" "p99 latency, send to delivery (median of $RUNS runs, lower is better)" "p99 µs (log scale)" 1 0
plot "$TMP/rel.dat" "$PNG/headline.png" "Throughput relative to the floor (a minimal relay = 1.0), $(date -u +%Y-%m-%d)" "msgs/s / floor msgs/s" 0 1

# --- the page -------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
ver_redis=$(redis-server --version | grep -oE 'v=[^ ]+' | cut -d= -f2)
ver_nats=$(nats-server --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+')
ver_mosq=$(mosquitto -h 2>/dev/null | grep -oE 'mosquitto version [0-9.]+' | grep -oE '[0-9.]+$')
ver_chat=$("$B/chat-server" --version | awk '{print $2}')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
T_TOTAL=$(elapsed)
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC') in $T_TOTAL s;"
  echo "every figure is the median of $RUNS runs of $SECS s after a $WARM s warm-up, each"
  echo "against a freshly started server, exactly as the command printed them (the"
  echo "runs are listed at the end of this page). Do not edit by hand: run \`make bench\`."
  echo
  echo "## Machine"
  echo
  echo "- CPU: $cpu, $(nproc) cores; $(free -g | awk '/Mem:/ {print $2}') GiB RAM; Linux $(uname -r)"
  echo "- chat-server $ver_chat (commit $commit), floor (bench/floor.c), Redis $ver_redis,"
  echo "  NATS $ver_nats, Mosquitto $ver_mosq; libuv $(dpkg-query -W -f='${Version}' libuv1 2>/dev/null),"
  echo "  SQLite $(dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null)"
  echo "- Limits: $NOFILE descriptors per process (hard limit $(ulimit -Hn)), ephemeral ports $PORTS,"
  echo "  fs.file-max $FILEMAX, fs.nr_open $NROPEN"
  echo "- Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $LOAD_END"
  if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l >= 0.5) }'; then
    echo "- **The machine was not idle** (1-minute load average ${LOAD_START%% *} at the start on"
    echo "  $(nproc) cores): other processes shared the cores, so these figures are noisy;"
    echo "  rerun \`make bench\` on a quiet machine before drawing conclusions."
  fi
  echo "- Every server is pinned to core 0 (\`taskset -c 0\`; chat-server with its"
  echo "  store thread), chat-bench to core 1; all on loopback (127.0.0.1)."
  echo "- chat-server runs with \`--rate-msgs 0 --rate-bytes 0\` (one benchmark"
  echo "  connection carries far more than its per-connection default allows a"
  echo "  user; the others have no such limit) and no offline quotas."
  echo
  echo "## What is measured"
  echo
  echo "\`build/chat-bench\` (one libuv loop) runs U users, each keeping D messages of"
  echo "64 bytes (unless said) in flight; the first 8 bytes of a payload carry its"
  echo "send time, latency is send to delivery. A message is delivered when: *echo*,"
  echo "it came back to its sender (chat-server \`--echo\`; elsewhere a publish to"
  echo "one's own inbox); *pair*, user i's message reached user i^1 (both ways);"
  echo "*fan-in*, users 2..50 send to user 1 and it reached user 1; *offline store*"
  echo "(chat-server only), senders that opted in to acknowledgements send to"
  echo "absent receivers and the server acknowledged it, i.e. committed it to"
  echo "SQLite and synced it (\`--fsync full\`). No message is sent before every"
  echo "subscription is confirmed. Writes are batched: one write per connection"
  echo "per loop iteration."
  echo
  read -r s_ok s_all <<<"$(soundness)"
  echo "Soundness, checked on every run: in $s_ok of $s_all runs every message sent was"
  echo "delivered or still in flight at the end (sent - received = U x D) and none"
  echo "reached the wrong user. Each column of a row is the median of its own $RUNS"
  echo "values. MB/s counts payload bytes (10^6 bytes)."
  echo
  echo "The same scenario loop, clock and histogram serve every server; only the"
  echo "framing differs (bench/wire.c). User i's inbox is channel / subject /"
  echo "topic \`u<i>\`:"
  echo
  echo "- **chat-server** and the **floor**: the chat protocol (docs/PROTOCOL.md);"
  echo "  a connection binds with a 0-length text to itself, confirmed by its echo."
  echo "- **Redis** pub/sub (RESP2): two connections per user, since a RESP2"
  echo "  connection that has subscribed can no longer PUBLISH: one SUBSCRIBEs to"
  echo "  \`u<i>\`, the other PUBLISHes. Started with \`--save \"\" --appendonly no\`."
  echo "- **NATS**: \`CONNECT {\"verbose\":false,\"pedantic\":false}\`, \`SUB\`, \`PUB\`;"
  echo "  PING confirms the subscription. Config: \`max_payload: 2097152\` (the"
  echo "  default, 1 MB, is the limit itself), \`max_connections: 1000000\`."
  echo "- **Mosquitto**: MQTT 3.1.1, QoS 0, clean session, keepalive 0; SUBACK"
  echo "  confirms the subscription. Default limits (messages up to 256 MB)."
  echo "- **floor**: bench/floor.c, a relay written only for this benchmark: one"
  echo "  thread, epoll, parses frames, forwards data frames to the receiver's"
  echo "  connection (echo when receiver = sender), one write per connection per"
  echo "  iteration; no store, no acknowledgements, no limits. It is what this"
  echo "  machine allows for the protocol, the ceiling chat-server is compared with."
  echo
  echo "![throughput relative to the floor](bench/headline.png)"
  echo
  echo "## Results"
  echo
  echo "CPU: the share of a core the server (all its threads) and chat-bench used"
  echo "during the measurement; a load generator near 100 % means the figure is"
  echo "chat-bench's limit rather than the server's. msgs/CPU-s: messages delivered"
  echo "per second of CPU the server used, its efficiency, which other processes on"
  echo "the machine disturb less than they disturb msgs/s."
  echo
  echo "| scenario | server | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | server RSS MiB | server CPU % | bench CPU % | msgs/CPU-s |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ <<<"$sc"
    wanted "$id" || continue
    for s in $SERVERS; do
      if [ -n "${TP[$s,$id]:-}" ]; then
        echo "| $label | $(name_of "$s") | ${TP[$s,$id]} | ${MB[$s,$id]} | ${P50[$s,$id]} | ${P99[$s,$id]} | ${P999[$s,$id]} | $(kib_mib "${RSS[$s,$id]}") | $(dash "${SCPU[$s,$id]}") | $(dash "${BCPU[$s,$id]}") | $(dash "${EFF[$s,$id]}") |"
      elif f=$(fail_of "$s" "$id") && [ -n "$f" ]; then
        echo "| $label | $(name_of "$s") | failed: \`$f\` | | | | | | | | |"
      fi
    done
  done
  echo
  echo "![messages per second](bench/throughput.png)"
  echo
  echo "![p99 latency](bench/p99.png)"
  echo
  echo "### chat-server against the floor and the best competitor"
  echo
  echo "| scenario | chat/floor msgs/s | chat/floor p99 | chat/floor MB/s | chat/floor msgs/CPU-s | best competitor | chat/best msgs/s |"
  echo "|---|---:|---:|---:|---:|---|---:|"
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ <<<"$sc"
    wanted "$id" || continue
    [ -n "${TP[chat,$id]:-}" ] || continue
    read -r bs bv <<<"$(best_comp "$id")"
    echo "| $label | $(dash "$(ratio "${TP[chat,$id]}" "${TP[floor,$id]:-}")") | $(dash "$(ratio "${P99[chat,$id]}" "${P99[floor,$id]:-}")") | $(dash "$(ratio "${MB[chat,$id]}" "${MB[floor,$id]:-}")") | $(dash "$(ratio "${EFF[chat,$id]:-}" "${EFF[floor,$id]:-}")") | $( [ -n "${bs:-}" ] && echo "$(name_of "$bs") ($bv)" || echo -) | $(dash "$(ratio "${TP[chat,$id]}" "${bv:-}")") |"
    bs=""; bv=""
  done
  echo
  echo "## Idle connections"
  echo
  echo "N connections each subscribe (chat protocol: bind with HELLO, as libchat"
  echo "does) and stay idle; the server's RSS is read before the first and 2.5 s"
  echo "after the last is confirmed (chat-server frees per-connection scratch"
  echo "buffers once a second). Connections come from source addresses"
  echo "127.0.0.2, .3, ... (20,000 each) past the ephemeral port range."
  echo
  echo "| connections | server | RSS per connection, bytes | RSS after, MiB | connect time s |"
  echo "|---:|---|---:|---:|---:|"
  for n in $IDLE_NS; do
    for s in $SERVERS; do
      v=$(med "$s" "idle$n" rss_per_conn_b)
      if [ -n "$v" ]; then
        echo "| $n | $(name_of "$s") | $v | $(kib_mib "$(med "$s" "idle$n" rss_after_kib)") | $(med "$s" "idle$n" connect_s) |"
      elif f=$(fail_of "$s" "idle$n") && [ -n "$f" ]; then
        case $f in
          skipped=time) echo "| $n | $(name_of "$s") | not measured: past the ${BUDGET} s time budget of \`make bench\` | | |" ;;
          skipped=nofile*) echo "| $n | $(name_of "$s") | not measured: needs $n descriptors, the limit here is ${f#skipped=nofile} (hard limit; raising it needs CAP_SYS_RESOURCE) | | |" ;;
          *) echo "| $n | $(name_of "$s") | failed: \`$f\` | | |" ;;
        esac
      fi
    done
  done
  echo
  echo "## Targets"
  echo
  echo "Computed from the figures above (chat-server against the floor and the"
  echo "best of Redis, NATS and Mosquitto)."
  echo
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ bflags _ <<<"$sc"
    wanted "$id" || continue
    c=${TP[chat,$id]:-}; f=${TP[floor,$id]:-}
    [ -n "$c" ] || continue
    if [ -n "$f" ]; then
      r=$(ratio "$c" "$f")
      if ge "$r" 0.85; then m=met; else m=missed; fi
      echo "- $label: msgs/s >= 0.85 x floor: **$m** ($r x)"
      [ "$m" = missed ] && miss_floor=1
      r=$(ratio "${P99[chat,$id]}" "${P99[floor,$id]}")
      if ge 1.2 "$r"; then m=met; else m=missed; fi
      echo "- $label: p99 <= 1.2 x floor: **$m** ($r x: ${P99[chat,$id]} µs against ${P99[floor,$id]} µs)"
      [ "$m" = missed ] && miss_floor=1
    fi
    if [ "$id" = mib ] && [ -n "${MB[floor,$id]:-}" ]; then
      r=$(ratio "${MB[chat,$id]}" "${MB[floor,$id]}")
      if ge "$r" 0.9; then m=met; else m=missed; fi
      echo "- $label: MB/s >= 0.9 x floor: **$m** ($r x: ${MB[chat,$id]} against ${MB[floor,$id]} MB/s)"
      [ "$m" = missed ] && miss_floor=1
    fi
    d=$(depth_of "$bflags")
    read -r bs bv <<<"$(best_comp "$id")"
    if [ "${d:-1}" -gt 1 ] && [ -n "${bv:-}" ]; then
      r=$(ratio "$c" "$bv")
      if ge "$r" 2.5; then m=met; else m=missed; fi
      why=""
      fl="${TP[floor,$id]:-}"
      if [ "$m" = missed ] && [ -n "$fl" ]; then
        fr=$(ratio "$fl" "$bv")
        if ! ge "$fr" 2.5; then
          why="; out of reach here: the floor itself, what the machine allows"
          why="$why for this protocol, is only $fr x $(name_of "$bs")"
          bc=$(med chat "$id" bench_cpu_pct)
          [ -n "$bc" ] && ge "$bc" 90 && why="$why, with chat-bench at $bc % of its core"
        fi
      fi
      echo "- $label: msgs/s >= 2.5 x best competitor (depth $d): **$m** ($r x $(name_of "$bs")$why)"
    fi
    if [ "${miss_floor:-0}" = 1 ] && [ -s "$TMP/prof.$id" ]; then
      echo "  <details><summary>where chat-server's time goes here (perf record -g"
      echo "  during a run of this scenario: self time per symbol, kernel included)</summary>"
      echo
      echo '  ```'
      sed 's/^/  /' "$TMP/prof.$id"
      echo '  ```'
      echo "  </details>"
    fi
    miss_floor=0
    bs=""; bv=""
  done
  big=""
  for n in $IDLE_NS; do [ -n "$(med chat "idle$n" rss_per_conn_b)" ] && big=$n; done
  v=$(med chat idle100000 rss_per_conn_b)
  if [ -n "$v" ]; then
    if ge 1024 "$v"; then m=met; else m=missed; fi
    echo "- idle, 100,000 connections: <= 1 KiB RSS per connection: **$m** ($v bytes)"
  elif [ -n "$big" ]; then
    echo "- idle, 100,000 connections: <= 1 KiB RSS per connection: **not measured** here"
    echo "  (descriptor limit $NOFILE); at $big connections: $(med chat "idle$big" rss_per_conn_b) bytes per connection"
  else
    echo "- idle, 100,000 connections: <= 1 KiB RSS per connection: **not measured**"
  fi
  echo
  echo "## Every run"
  echo
  echo "<details><summary>chat-bench output, one line per run</summary>"
  echo
  echo '```'
  awk -F'\t' '{ printf "%s %s run %s: %s\n", $1, $2, $3, $4 }' "$RES"
  echo '```'
  echo
  echo "</details>"
} > "$OUT"
log "bench: wrote $OUT and $PNG/{headline,throughput,p99}.png"
log "bench: total elapsed $T_TOTAL s ($(( T_TOTAL / 60 )) min $(( T_TOTAL % 60 )) s)"
