#!/usr/bin/env bash
# make bench: run build/chat-bench against chat-server, the floor
# (build/floor) and the relays users would pick instead (Redis pub/sub, NATS,
# Mosquitto), every server pinned to core 0 and the load generator to core 1,
# on loopback, each figure the median of RUNS runs, a fresh server per run;
# the TLS scenarios against the same servers' TLS listeners, with one
# throwaway CA and certificate made here; the WebSocket scenarios against
# the WebSocket listeners of chat-server (/ws), NATS and Mosquitto. Prints every run as it goes, then
# writes docs/BENCHMARKS.md and docs/bench/*.png from exactly those lines
# (nothing is typed in by hand). A run in which the hypervisor took more
# than STEAL % of the machine's CPU time (chat-bench's steal_pct, from
# /proc/stat) is marked ‡ as noise, and the page gives the steal of the
# whole run beside the load average.
#
# Environment: BENCH_RUNS (3), BENCH_SECONDS (2), BENCH_WARMUP (0.5),
# BENCH_SERVERS ("chat floor redis nats mqtt"), BENCH_IDLE ("10000 50000
# 100000"), BENCH_IDLE_ALL (10000: the N up to which the competitors also
# get the idle scenario), BENCH_ONLY (scenario ids or groups to run, default
# all; groups: small, media, tls, ws, store, group, idle, cluster; e.g. BENCH_ONLY=media
# or BENCH_ONLY="mib tlsmib"; the group conversations with the 1:1 row they
# are compared with: BENCH_ONLY="group pair1000" BENCH_SERVERS=chat), BENCH_BUDGET (1500: an idle run that would end
# past this many seconds is skipped), BENCH_CONGESTION (reno: the TCP
# congestion control of chat-bench's own sockets, "" for the system's),
# BENCH_PROFILE (1: one more run of chat-server per scenario under perf),
# BENCH_OUT (the page; default docs/BENCHMARKS.md for a full run and
# build/bench/BENCHMARKS.md when BENCH_ONLY or BENCH_SERVERS select a part,
# so that a partial run never replaces the published page), BENCH_FROM (a
# results file a run left in build/bench/results.tsv: write the page from
# it without measuring; no profiles then), BENCH_DEPS (1: check the servers
# are installed with scripts/deps.sh bench first; 0: skip it), BENCH_SPLICE
# (a page, e.g. docs/BENCHMARKS.md: its cluster section is replaced by this
# run's, so that BENCH_ONLY=cluster BENCH_SPLICE=docs/BENCHMARKS.md updates
# the published page's cluster part only). The cluster cells (group
# cluster: two chat-server nodes on one Redis, against Redis pub/sub and one
# node alone) are in bench/run_cluster.sh.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
T_START=$(date +%s)
B=build
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-2}
WARM=${BENCH_WARMUP:-0.5}
ALL_SERVERS="chat floor redis nats mqtt"
SERVERS=${BENCH_SERVERS:-$ALL_SERVERS}
IDLE_NS=${BENCH_IDLE:-"10000 50000 100000"}
IDLE_ALL=${BENCH_IDLE_ALL:-10000}
ONLY=${BENCH_ONLY:-}
FROM=${BENCH_FROM:-}
BUDGET=${BENCH_BUDGET:-1500}
CONGESTION=${BENCH_CONGESTION-reno}
PROFILE=${BENCH_PROFILE:-1}
BUSY=90 # chat-bench above this share of its core: the figure may be its limit
STEAL=5 # the hypervisor took more than this share of the machine's CPU time
        # during a run (chat-bench's steal_pct): that run is noise
# The machine's stolen and total CPU ticks (/proc/stat "cpu": steal, sum)
steal_ticks() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat; }
if [ -z "$ONLY" ] && [ "$SERVERS" = "$ALL_SERVERS" ] && [ -z "$FROM" ]; then
  OUT=${BENCH_OUT:-docs/BENCHMARKS.md}; PARTIAL=0
else
  OUT=${BENCH_OUT:-$B/bench/BENCHMARKS.md}; PARTIAL=1
fi
PNG=$(dirname "$OUT")/bench
TMP=$(mktemp -d)
RES=$TMP/results     # server <TAB> scenario id <TAB> run <TAB> chat-bench line
: > "$RES"
if [ -n "$FROM" ]; then
  cp "$FROM" "$RES" || exit 1
  RUNS=$(awk -F'\t' '{ if ($3 + 0 > m) m = $3 + 0 } END { print m + 0 }' "$RES")
fi
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "${CL_PIDS:-}" ] && cl_down
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "${BENCH_DEPS:-1}" = 0 ] || scripts/deps.sh bench || { echo "bench: could not install the servers to compare (scripts/deps.sh bench)" >&2; exit 1; }
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
SYS_CC=$(cat /proc/sys/net/ipv4/tcp_congestion_control)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STEAL_START=$(steal_ticks)
log "bench: descriptors per process $NOFILE (hard $(ulimit -Hn)), ephemeral ports $PORTS," \
    "fs.file-max $FILEMAX, fs.nr_open $NROPEN, load average $LOAD_START"

# --- TLS: one throwaway CA and a server certificate for 127.0.0.1 ----------
# P-256 keys; every server gets the same certificate and key, chat-bench
# trusts only this CA and checks the address 127.0.0.1 against the
# certificate. Readable by others: Mosquitto drops root for its own user.
TLS=$TMP/tls
mkdir -p "$TLS"
chmod 711 "$TMP"; chmod 755 "$TLS"
make_certs() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -subj "/CN=make bench throwaway CA" &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TLS/server.key" -out "$TLS/server.csr" -subj "/CN=127.0.0.1" &&
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
    "keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" > "$TLS/ext.cnf" &&
  openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
    -CAcreateserial -days 2 -extfile "$TLS/ext.cnf" -out "$TLS/server.pem" &&
  chmod 644 "$TLS/server.key" "$TLS/server.pem" "$TLS/ca.pem"
}
make_certs > "$TMP/openssl.log" 2>&1 ||
  { echo "bench: could not make the TLS certificates:" >&2; cat "$TMP/openssl.log" >&2; exit 1; }
TLS_SUITE=TLS_AES_128_GCM_SHA256
TLS_GROUP=X25519

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
wait_log_port() { # pid log pattern [line] -> PORT from "<pattern> ADDR:PORT" (on a line with <line>)
  for _ in $(seq 200); do
    PORT=$(grep -F -- "${4:-$3}" "$2" | grep -oE "$3 [0-9.]+:[0-9]+" | head -1 | grep -oE '[0-9]+$' || true)
    [ -n "$PORT" ] && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.025
  done
  return 1
}
wait_line() { # pid file pattern: until the file has the line (or pid ended)
  for _ in $(seq 400); do
    grep -q "$3" "$2" 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.025
  done
  return 1
}

# NATS: max_payload 64 MB (its hard maximum; the default, 1 MB, is below the
# media scenarios), a slow consumer only past 256 MB pending (depth 4 of
# 16 MiB is 64 MiB, the default).
# WebSocket (WS_PORT): a websocket block without TLS on 127.0.0.1.
nats_conf() { # tls?
  printf 'max_payload: 67108864\nmax_pending: 268435456\nmax_connections: 1000000\n'
  [ "$1" = 1 ] && printf 'tls {\n  cert_file: "%s"\n  key_file: "%s"\n  timeout: 5\n}\n' \
    "$TLS/server.pem" "$TLS/server.key"
  [ -n "$WS_PORT" ] && printf 'websocket {\n  host: 127.0.0.1\n  port: %s\n  no_tls: true\n}\n' "$WS_PORT"
  return 0
}

# start_server SERVER CHAT_FLAGS TLS(0|1) [WS(0|1)] -> PID PORT (with WS: the
# WebSocket listener's port); 1 when it did not come up
start_server() {
  local srv=$1 cflags=$2 tls=$3 ws=${4:-0} log="$TMP/server.log"
  : > "$log"
  PORT=""; WS_PORT=""
  case $srv in
    chat)
      local tf=""
      [ "$tls" = 1 ] && tf="--tls-port 0 --tls-cert $TLS/server.pem --tls-key $TLS/server.key"
      [ "$ws" = 1 ] && tf="$tf --http-port auto"
      # shellcheck disable=SC2086
      taskset -c 0 "$B/chat-server" --port 0 --data-dir "$TMP/data.$RANDOM$RANDOM" \
        --offline-max-messages 0 --offline-max-bytes 0 --rate-msgs 0 --rate-bytes 0 \
        $tf $cflags 2>"$log" &
      PID=$!
      if [ "$ws" = 1 ]; then wait_log_port "$PID" "$log" "listening on" "(http"
      elif [ "$tls" = 1 ]; then wait_log_port "$PID" "$log" "TLS listening on"
      else wait_log_port "$PID" "$log" "listening on"; fi ;;
    floor)
      local tf=""
      [ "$tls" = 1 ] && tf="--tls-cert $TLS/server.pem --tls-key $TLS/server.key"
      # shellcheck disable=SC2086
      taskset -c 0 "$B/floor" --port 0 $tf 2>"$log" &
      PID=$!
      wait_log_port "$PID" "$log" "listening on" ;;
    redis)
      PORT=$(free_port)
      local pf="--port $PORT"
      [ "$tls" = 1 ] && pf="--port 0 --tls-port $PORT --tls-cert-file $TLS/server.pem
        --tls-key-file $TLS/server.key --tls-ca-cert-file $TLS/ca.pem --tls-auth-clients no"
      # shellcheck disable=SC2086
      taskset -c 0 redis-server --save "" --appendonly no $pf --bind 127.0.0.1 \
        --protected-mode yes --maxclients 1000000 --loglevel warning \
        --client-output-buffer-limit "pubsub 0 0 0" >"$log" 2>&1 &
      PID=$!
      wait_port "$PID" "$PORT" ;;
    nats)
      PORT=$(free_port)
      [ "$ws" = 1 ] && WS_PORT=$(free_port)
      nats_conf "$tls" > "$TMP/nats.conf"
      taskset -c 0 nats-server -a 127.0.0.1 -p "$PORT" -c "$TMP/nats.conf" >"$log" 2>&1 &
      PID=$!
      wait_port "$PID" "$PORT" && { [ -z "$WS_PORT" ] || wait_port "$PID" "$WS_PORT"; } ;;
    mqtt)
      PORT=$(free_port)
      [ "$ws" = 1 ] && WS_PORT=$(free_port)
      # WebSocket: a second listener with `protocol websockets` (Mosquitto
      # 2.0.11 will not start with a WebSocket listener alone: "Unable to
      # start any listening sockets")
      {
        printf 'listener %s 127.0.0.1\n' "$PORT"
        [ "$tls" = 1 ] && printf 'certfile %s\nkeyfile %s\n' "$TLS/server.pem" "$TLS/server.key"
        [ -n "$WS_PORT" ] && printf 'listener %s 127.0.0.1\nprotocol websockets\n' "$WS_PORT"
        printf 'allow_anonymous true\nlog_type error\n'
      } > "$TMP/mosquitto.conf"
      taskset -c 0 mosquitto -c "$TMP/mosquitto.conf" >"$log" 2>&1 &
      PID=$!
      wait_port "$PID" "$PORT" && { [ -z "$WS_PORT" ] || wait_port "$PID" "$WS_PORT"; } ;;
  esac
  [ -n "$WS_PORT" ] && PORT=$WS_PORT
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
# id | label | plot label | chat-bench flags | servers | chat-server flags | group
# Groups: small (64-byte messages), media (64 KiB to 16 MiB), tls (over TLS:
# every server's TLS listener, chat-bench --tls), ws (over WebSocket: the
# servers with a WebSocket listener, chat-bench --ws), store (chat-server only),
# group (chat-server only: group conversations, msgs/s counts member
# deliveries).
SCENARIOS=(
  "echo1|echo, 50 users, depth 1|echo 50x1|--scenario echo --users 50 --depth 1|all|--echo|small"
  "echo64|echo, 50 users, depth 64|echo 50x64|--scenario echo --users 50 --depth 64|all|--echo|small"
  "pair1|pair, 50 users, depth 1|pair 50x1|--scenario pair --users 50 --depth 1|all||small"
  "pair64|pair, 50 users, depth 64|pair 50x64|--scenario pair --users 50 --depth 64|all||small"
  "pair1000|pair, 1,000 users, depth 8|pair 1000x8|--scenario pair --users 1000 --depth 8|all||small"
  "fanin|fan-in, 49 users to 1, depth 8|fan-in 49>1 x8|--scenario fanin --users 50 --depth 8|all||small"
  "kib64|pair, 2 users, depth 4, 64 KiB|pair 2x4 64KiB|--scenario pair --users 2 --depth 4 --size 65536|all||media"
  "mib|pair, 2 users, depth 4, 1 MiB|pair 2x4 1MiB|--scenario pair --users 2 --depth 4 --size 1048576|all||media"
  "mib16|pair, 2 users, depth 4, 16 MiB|pair 2x4 16MiB|--scenario pair --users 2 --depth 4 --size 16777216|all||media"
  "tls64|TLS: pair, 50 users, depth 64|TLS pair 50x64|--scenario pair --users 50 --depth 64|all||tls"
  "tlsmib|TLS: pair, 2 users, depth 4, 1 MiB|TLS pair 2x4 1MiB|--scenario pair --users 2 --depth 4 --size 1048576|all||tls"
  "wsecho64|WebSocket: echo, 50 users, depth 64|WS echo 50x64|--scenario echo --users 50 --depth 64|chat nats mqtt|--echo|ws"
  "wspair64|WebSocket: pair, 50 users, depth 64|WS pair 50x64|--scenario pair --users 50 --depth 64|chat nats mqtt||ws"
  "wskib64|WebSocket: pair, 2 users, depth 4, 64 KiB|WS pair 2x4 64KiB|--scenario pair --users 2 --depth 4 --size 65536|chat nats mqtt||ws"
  "offline|offline store, 50 senders, depth 64, --fsync=full|offline fsync|--scenario offline --users 50 --depth 64|chat|--fsync full|store"
  "group1000|group, 1,000 members online, depth 8|group 1000x8|--scenario group --users 1000 --members 1000 --depth 8|chat||group"
  "group100off|group, 100 members, 50 offline, depth 8|group 100 (50 off) x8|--scenario group --users 100 --members 100 --offline 50 --depth 8|chat||group"
  "group100cid|group, 100 members, 50 offline, depth 8, POSTs with client ids|group 100 (50 off) cids x8|--scenario group --users 100 --members 100 --offline 50 --depth 8 --cids|chat||group"
)
# The group scenario judged against a 1:1 one (bench/run.sh's page says why
# this one) and the share of its member deliveries/s it should reach.
GROUP_VS=pair1000
GROUP_TARGET=0.8
depth_of() { grep -oE -- '--depth [0-9]+' <<<"$1" | cut -d' ' -f2; }
size_of() { local s; s=$(grep -oE -- '--size [0-9]+' <<<"$1" | cut -d' ' -f2); echo "${s:-64}"; }
# wanted ID GROUP: selected by BENCH_ONLY (an id or its group), or all
wanted() { [ -z "$ONLY" ] || grep -qw -- "$1" <<<"$ONLY" || { [ -n "${2:-}" ] && grep -qw -- "$2" <<<"$ONLY"; }; }
# The msgs/s target against the floor: 0.9 for media frames, 0.85 otherwise.
floor_target() { if [ "$(size_of "$1")" -ge 65536 ]; then echo 0.90; else echo 0.85; fi; }

# chat-bench's flags for the transport: TLS (0|1), WS (0|1)
transport_flags() {
  local extra=""
  [ "$1" = 1 ] && extra="--tls --ca $TLS/ca.pem --tls-suite $TLS_SUITE --tls-group $TLS_GROUP"
  [ "$2" = 1 ] && extra="$extra --ws"
  [ -n "$CONGESTION" ] && extra="$extra --congestion $CONGESTION"
  echo "$extra"
}

# bench_run SERVER BFLAGS TLS WS -> LINE (chat-bench's figures or error=...)
bench_run() {
  local srv=$1 bflags=$2 extra
  extra=$(transport_flags "$3" "$4")
  # shellcheck disable=SC2086
  LINE=$(taskset -c 1 "$B/chat-bench" --proto "$(proto_of "$srv")" --port "$PORT" \
           --seconds "$SECS" --warmup "$WARM" --server-pid "$PID" $bflags $extra 2>"$TMP/bench.err")
  local rc=$?
  if [ $rc -ne 0 ] || [ -z "$LINE" ]; then
    LINE="error=rc$rc $(grep -v '^chat-bench: measuring' "$TMP/bench.err" | tr '\n ' ' _' | cut -c1-160)"
  fi
}

# The cluster scenarios (group cluster): their cells, runs and page section.
# shellcheck source=bench/run_cluster.sh
. bench/run_cluster.sh

# chat-server's WebSocket endpoint (--http-port): without it, the ws
# scenarios are skipped for chat-server.
CHAT_WS=1
"$B/chat-server" --help 2>&1 | grep -q -- '--http-port' || CHAT_WS=0

log "bench: $RUNS runs of ${SECS} s (after ${WARM} s warm-up) per figure; servers: $SERVERS;" \
    "chat-bench's sockets: ${CONGESTION:-$SYS_CC}"
for sc in "${SCENARIOS[@]}"; do
  [ -z "$FROM" ] || break
  IFS='|' read -r id label _ bflags servers cflags group <<<"$sc"
  wanted "$id" "$group" || continue
  tls=0; [ "$group" = tls ] && tls=1
  ws=0; [ "$group" = ws ] && ws=1
  [ "$servers" = all ] && servers=$SERVERS
  for srv in $SERVERS; do
    grep -qw "$srv" <<<"$servers" || continue
    if [ "$ws" = 1 ] && [ "$srv" = chat ] && [ "$CHAT_WS" = 0 ]; then
      printf '%s\t%s\t0\t%s\n' "$srv" "$id" "skipped=nows" >> "$RES"
      log "$(name_of "$srv") | $label | skipped: this chat-server has no --http-port (WebSocket)"
      continue
    fi
    for r in $(seq "$RUNS"); do
      start_server "$srv" "$cflags" "$tls" "$ws" || { printf '%s\t%s\t%s\t%s\n' "$srv" "$id" "$r" "error=start" >> "$RES"; continue; }
      bench_run "$srv" "$bflags" "$tls" "$ws"
      stop_server
      printf '%s\t%s\t%s\t%s\n' "$srv" "$id" "$r" "$LINE" >> "$RES"
      flag=$(grep -oE 'bench_cpu_pct=[0-9]+' <<<"$LINE" | awk -F= -v b="$BUSY" '$2 + 0 > b { printf " † chat-bench at %s %% of its core: it may be the limit", $2 }')
      log "$(name_of "$srv") | $label | run $r | $LINE$flag"
    done
  done
done

# Where chat-server's time goes: one more run per scenario with perf
# sampling the server during the measured phase (self time per symbol,
# kernel included). The page shows it under each target chat-server misses.
if [ -z "$FROM" ] && [ "$PROFILE" = 1 ] && grep -qw chat <<<"$SERVERS" && command -v perf >/dev/null 2>&1; then
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ bflags servers cflags group <<<"$sc"
    wanted "$id" "$group" || continue
    [ "$id" = offline ] && continue
    tls=0; [ "$group" = tls ] && tls=1
    ws=0; [ "$group" = ws ] && ws=1
    [ "$ws" = 1 ] && [ "$CHAT_WS" = 0 ] && continue
    start_server chat "$cflags" "$tls" "$ws" || continue
    extra=$(transport_flags "$tls" "$ws")
    # shellcheck disable=SC2086
    taskset -c 1 "$B/chat-bench" --port "$PORT" --seconds "$SECS" --warmup "$WARM" \
      $bflags $extra > /dev/null 2>"$TMP/prof.err" &
    bpid=$!
    if wait_line "$bpid" "$TMP/prof.err" "chat-bench: measuring"; then
      perf record -q -F 999 -g -p "$PID" -o "$TMP/perf.$id" -- sleep "$SECS" > /dev/null 2>&1
    fi
    wait "$bpid"
    stop_server
    perf report -i "$TMP/perf.$id" --no-children --sort symbol --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -12 | sed 's/[ -]*$//' > "$TMP/prof.$id"
    log "chat-server | $label | profiled ($(wc -l < "$TMP/prof.$id") symbols kept)"
  done
fi

# Idle connections: the server's RSS per connection.
for n in $IDLE_NS; do
  [ -z "$FROM" ] || break
  id="idle$n"
  wanted "$id" idle || continue
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
      start_server "$srv" "" 0 || continue
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
if [ -z "$FROM" ] && wanted cluster cluster; then
  cluster_measure
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
# the share of the machine's CPU time the hypervisor took during the run
STEAL_RUN=$(echo "$STEAL_START $(steal_ticks)" |
  awk '{ if ($4 > $2) printf "%.1f", 100 * ($3 - $1) / ($4 - $2); else print "-" }')
[ -n "$FROM" ] && STEAL_RUN=- # (nothing was measured now)
mkdir -p "$B/bench"
cp "$RES" "$B/bench/results.tsv" # BENCH_FROM=build/bench/results.tsv rewrites the page

# --- medians ----------------------------------------------------------------
# med SERVER SCENARIO KEY: the median of KEY over that cell's good runs; empty
# when none. mx: the largest.
med() {
  awk -F'\t' -v s="$1" -v c="$2" -v k="$3" '
    $1 == s && $2 == c { n = split($4, f, " ")
      for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == k) v[++m] = kv[2] } }
    END { if (!m) exit
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      print v[int((m + 1) / 2)] }' "$RES"
}
mx() {
  awk -F'\t' -v s="$1" -v c="$2" -v k="$3" '
    $1 == s && $2 == c { n = split($4, f, " ")
      for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == k && (!m++ || kv[2] + 0 > x + 0)) x = kv[2] } }
    END { if (m) print x }' "$RES"
}
fail_of() { awk -F'\t' -v s="$1" -v c="$2" '$1 == s && $2 == c && $4 ~ /^(error|skipped)=/ {print $4; exit}' "$RES"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'; }
# per-message CPU in µs from a CPU % and msgs/s
us_per_msg() { awk -v p="$1" -v r="$2" 'BEGIN { if (p == "" || r == "" || r + 0 == 0 || p < 0) print ""; else printf "%.2f", p * 1e4 / r }'; }
# Runs in which nothing was lost: at the end, sent - received is exactly what
# the senders keep in flight (U x D; fan-in (U-1) x D) and nothing reached the
# wrong user. Groups (sent and received count deliveries): every member got
# its author's messages in order (misordered=0: none lost, repeated or
# overtaken) and what is missing is at most the D messages in flight per
# group at each online member. Prints "sound total".
soundness() {
  awk -F'\t' '$4 ~ /sent=/ { n = split($4, f, " "); delete v
      for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
      total++
      if (v["scenario"] == "group") {
        d = v["sent"] - v["received"]
        if (d >= 0 && d <= v["groups"] * v["depth"] * (v["members"] - 1 - v["offline"]) &&
            v["misrouted"] == 0 && v["misordered"] == 0) ok++
        next
      }
      senders = v["scenario"] == "fanin" ? v["users"] - 1 : v["users"]
      d = v["sent"] - v["received"]
      # --acks: a sender waits for the ACKs too, so at most U x D are missing
      if ((d == senders * v["depth"] || (v["acks"] == 1 && d >= 0 && d <= senders * v["depth"])) &&
          v["misrouted"] == 0 && v["unheard"] == 0) ok++ }
    END { print ok + 0, total + 0 }' "$RES"
}
label_of() { # scenario id -> its label
  local sc id label
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ <<<"$sc"
    [ "$id" = "$1" ] && { echo "$label"; return 0; }
  done
  return 1
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }
kib_mib() { awk -v k="$1" 'BEGIN { if (k == "" || k < 0) print "-"; else printf "%.1f", k / 1024 }'; }
dash() { [ -n "$1" ] && echo "$1" || echo "-"; }

# One cell's figures, into M_<key>[srv,id].
declare -A TP MB P50 P99 P999 RSS SCPU BCPU BCPUMAX BSYS EFF TLSD STEALMAX
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r id _ <<<"$sc"
  for srv in $SERVERS; do
    TP[$srv,$id]=$(med "$srv" "$id" msgs_per_s); MB[$srv,$id]=$(med "$srv" "$id" mb_per_s)
    P50[$srv,$id]=$(med "$srv" "$id" p50_us); P99[$srv,$id]=$(med "$srv" "$id" p99_us)
    P999[$srv,$id]=$(med "$srv" "$id" p999_us); RSS[$srv,$id]=$(med "$srv" "$id" server_rss_kib)
    SCPU[$srv,$id]=$(med "$srv" "$id" server_cpu_pct); BCPU[$srv,$id]=$(med "$srv" "$id" bench_cpu_pct)
    BCPUMAX[$srv,$id]=$(mx "$srv" "$id" bench_cpu_pct); BSYS[$srv,$id]=$(med "$srv" "$id" bench_sys_pct)
    EFF[$srv,$id]=$(med "$srv" "$id" msgs_per_server_cpu_s); TLSD[$srv,$id]=$(med "$srv" "$id" tls)
    STEALMAX[$srv,$id]=$(mx "$srv" "$id" steal_pct)
  done
done
# busy SERVER ID: chat-bench was above BUSY % in a run of that cell
busy() { [ -n "${BCPUMAX[$1,$2]:-}" ] && gt "${BCPUMAX[$1,$2]}" "$BUSY"; }
mark() { busy "$1" "$2" && echo "†"; }
# stolen SERVER ID: the hypervisor took more than STEAL % in a run of it
stolen() { [ -n "${STEALMAX[$1,$2]:-}" ] && gt "${STEALMAX[$1,$2]}" "$STEAL"; }
smark() { stolen "$1" "$2" && echo "‡"; }
# noise_of ID: ", ‡ ..." when a run of chat-server's or the floor's was noise
noise_of() {
  local w=""
  stolen chat "$1" && w="${STEALMAX[chat,$1]} % of the machine's CPU time in a run of chat-server"
  stolen floor "$1" && w="${w:+$w, }${STEALMAX[floor,$1]} % in one of the floor"
  [ -n "$w" ] && echo "; ‡ noise: the hypervisor took up to $w"
}
best_comp() { # scenario -> "server msgs/s" of the fastest competitor
  local best="" bv=""
  for s in redis nats mqtt; do
    v=${TP[$s,$1]:-}
    [ -n "$v" ] || continue
    if [ -z "$bv" ] || ge "$v" "$bv"; then best=$s; bv=$v; fi
  done
  [ -n "$best" ] && echo "$best $bv"
}
# CPU µs per message in a cell: chat-bench's (BUS), of it in the kernel
# (BKS), the server's (SUS). From CPU time, so other load on the machine
# (which lowers msgs/s) disturbs them little.
bench_us() { us_per_msg "${BCPU[$1,$2]:-}" "${TP[$1,$2]:-}"; }
bench_kus() { us_per_msg "${BSYS[$1,$2]:-}" "${TP[$1,$2]:-}"; }
server_us() { local e=${EFF[$1,$2]:-}; [ -n "$e" ] && awk -v e="$e" 'BEGIN { if (e + 0 > 0) printf "%.2f", 1e6 / e }'; }
# headroom SERVER ID: the server's CPU per message over chat-bench's in that
# cell: how many times the messages that server can relay with its whole
# core chat-bench can drive with its own
headroom() { ratio "$(server_us "$1" "$2")" "$(bench_us "$1" "$2")"; }
# judge SRV_A ID_A SRV_B ID_B TARGET: cell A against cell B by msgs/s, or by
# server efficiency (msgs/CPU-s) where chat-bench had under 1.5x headroom in
# either (it may have been the limit there). Sets J_R and J_RE (the msgs/s
# and msgs/CPU-s ratios), J_HA and J_HB (the headrooms), J_BY (tp or eff:
# which ratio judged) and J_M (met or missed).
judge() {
  J_R=$(ratio "${TP[$1,$2]:-}" "${TP[$3,$4]:-}"); J_RE=$(ratio "${EFF[$1,$2]:-}" "${EFF[$3,$4]:-}")
  J_HA=$(headroom "$1" "$2"); J_HB=$(headroom "$3" "$4"); J_BY=tp
  if [ -n "$J_RE" ] && { { [ -n "$J_HA" ] && ! ge "$J_HA" 1.5; } || { [ -n "$J_HB" ] && ! ge "$J_HB" 1.5; }; }; then
    J_BY=eff
  fi
  local v=$J_R
  [ "$J_BY" = eff ] && v=$J_RE
  if ge "$v" "$5"; then J_M=met; else J_M=missed; fi
}
most_efficient() { # scenario -> the server with the most msgs/CPU-s, the fastest on a core of its own
  local best="" bv=""
  for s in $SERVERS; do
    v=${EFF[$s,$1]:-}
    [ -n "$v" ] || continue
    if [ -z "$bv" ] || ge "$v" "$bv"; then best=$s; bv=$v; fi
  done
  [ -n "$best" ] && echo "$best"
}

# --- plots --------------------------------------------------------------------
mkdir -p "$PNG" "$(dirname "$OUT")"
{
  printf 'scenario'; for s in $SERVERS; do printf '\t%s' "$(name_of "$s")"; done; echo
} > "$TMP/head.dat"
for what in tput p99 rel; do cp "$TMP/head.dat" "$TMP/$what.dat"; done
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r id _ plabel _ _ _ group <<<"$sc"
  wanted "$id" "$group" || continue
  for what in tput p99 rel; do
    [ "$what" = rel ] && [ "$group" = ws ] && continue # no floor speaks WebSocket
    [ "$what" = rel ] && [ "$group" = group ] && continue # nor groups
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
  # nothing to draw: no throughput scenario ran, or no figure for it (the
  # ratio to the floor in a run without the floor)
  awk -F'\t' 'NR > 1 { for (i = 2; i <= NF; i++) if ($i != "-") f = 1 } END { exit !f }' "$1" || return 0
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
ver_ssl=$(openssl version | awk '{print $2}')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
T_TOTAL=$(elapsed)
# The scenarios that ran, and the busy ones
ran_ids=""; busy_list=""; tight_list=""; stolen_list=""
for sc in "${SCENARIOS[@]}"; do
  IFS='|' read -r id label _ _ _ _ group <<<"$sc"
  wanted "$id" "$group" || continue
  ran_ids="$ran_ids $id"
  b=""; st=""
  for s in $SERVERS; do
    busy "$s" "$id" && b="$b, $(name_of "$s")"
    stolen "$s" "$id" && st="$st, $(name_of "$s") ${STEALMAX[$s,$id]} %"
  done
  [ -n "$b" ] && busy_list="$busy_list; $label (${b#, })"
  [ -n "$st" ] && stolen_list="$stolen_list; $label (${st#, })"
done
busy_list=${busy_list#; }; stolen_list=${stolen_list#; }
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC') in $T_TOTAL s;"
  echo "every figure is the median of $RUNS runs of $SECS s after a $WARM s warm-up, each"
  echo "against a freshly started server, exactly as the command printed them (the"
  echo "runs are listed at the end of this page). Do not edit by hand: run \`make bench\`."
  if [ -n "$FROM" ]; then
    echo
    echo "**Rewritten from saved results** ($FROM), without measuring: the times,"
    echo "load averages and profiles on this page are not those of the runs."
  elif [ "$PARTIAL" = 1 ]; then
    echo
    echo "**A partial run** (BENCH_ONLY=\"${ONLY}\", servers: $SERVERS): only these"
    echo "scenarios; the published page is docs/BENCHMARKS.md from a full run."
  fi
  echo
  echo "## Machine"
  echo
  echo "- CPU: $cpu, $(nproc) cores; $(free -g | awk '/Mem:/ {print $2}') GiB RAM; Linux $(uname -r)"
  echo "- chat-server $ver_chat (commit $commit), floor (bench/floor.c), Redis $ver_redis,"
  echo "  NATS $ver_nats, Mosquitto $ver_mosq; libuv $(dpkg-query -W -f='${Version}' libuv1 2>/dev/null),"
  echo "  SQLite $(dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null), OpenSSL $ver_ssl"
  echo "- Limits: $NOFILE descriptors per process (hard limit $(ulimit -Hn)), ephemeral ports $PORTS,"
  echo "  fs.file-max $FILEMAX, fs.nr_open $NROPEN; TCP congestion control $SYS_CC"
  echo "- Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $LOAD_END"
  if [ "$STEAL_RUN" = - ]; then
    echo "- CPU time the hypervisor took (steal, /proc/stat) during the whole run:"
    echo "  not known (this page was written from a results file, BENCH_FROM)."
  else
    echo "- CPU time the hypervisor took (steal, /proc/stat) during the whole run:"
    echo "  $STEAL_RUN % of the machine's."
  fi
  echo "  Per run it is chat-bench's \`steal_pct\`; a figure with a run above $STEAL %"
  echo "  is marked ‡ (noise: the server or chat-bench lost its core for part of"
  echo "  the measurement, however the figure looks)"
  if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l >= 0.5) }'; then
    echo "- **The machine was not idle** (1-minute load average ${LOAD_START%% *} at the start on"
    echo "  $(nproc) cores): other processes shared the cores, so these figures are noisy;"
    echo "  rerun \`make bench\` on a quiet machine before drawing conclusions."
  fi
  if [ "$STEAL_RUN" != - ] && gt "$STEAL_RUN" 2; then
    echo "- **The hypervisor took $STEAL_RUN % of the CPU time** during the run (steal):"
    echo "  the cores were not ours all the time, so these figures are noisy (‡ below"
    echo "  marks the runs that lost the most)."
  fi
  echo "- Every server is pinned to core 0 (\`taskset -c 0\`; chat-server with its"
  echo "  store thread), chat-bench to core 1; all on loopback (127.0.0.1)."
  echo "- chat-server runs with \`--rate-msgs 0 --rate-bytes 0\` (one benchmark"
  echo "  connection carries far more than its per-connection default allows a"
  echo "  user; the others have no such limit) and no offline quotas; its output"
  echo "  queue bound keeps its default (\`--max-outbuf\`, 64 MiB: past it a"
  echo "  receiver's frames wait in the store), while Redis's and NATS's limits on"
  echo "  a subscriber's queue are raised so that they do not disconnect it (below)."
  echo
  echo "## What is measured"
  echo
  echo "\`build/chat-bench\` (one libuv loop) runs U users, each keeping D messages of"
  echo "64 bytes (unless said) in flight; the first 8 bytes of a payload carry its"
  echo "send time, the next 4 the sender and 4 more its sequence number, latency"
  echo "is send to delivery of the last byte. A message is delivered when: *echo*,"
  echo "it came back to its sender (chat-server \`--echo\`; elsewhere a publish to"
  echo "one's own inbox); *pair*, user i's message reached user i^1 (both ways);"
  echo "*fan-in*, users 2..50 send to user 1 and it reached user 1; *offline store*"
  echo "(chat-server only), senders that opted in to acknowledgements send to"
  echo "absent receivers and the server acknowledged it, i.e. committed it to"
  echo "SQLite and synced it (\`--fsync full\`); *group* (chat-server only, below),"
  echo "a group message reached one member (a *member delivery*). No message is"
  echo "sent before every subscription is confirmed. *TLS:* the same scenario over"
  echo "each server's TLS listener (below). *WebSocket:* the same scenario over"
  echo "each server's WebSocket listener, where it has one (below)."
  echo
  read -r s_ok s_all <<<"$(soundness)"
  echo "Soundness, checked on every run: in $s_ok of $s_all runs every message sent was"
  echo "delivered or still in flight at the end (sent - received = U x D; in a"
  echo "group, every member got its author's messages in order and lacks at most"
  echo "the D in flight) and none reached the wrong user. Each column of a row is"
  echo "the median of its own $RUNS values. MB/s counts payload bytes (10^6 bytes)."
  echo
  echo "The same scenario loop, clock and histogram serve every server; only the"
  echo "framing differs (bench/wire.c). User i's inbox is channel / subject /"
  echo "topic \`u<i>\`:"
  echo
  echo "- **chat-server** and the **floor**: the chat protocol (docs/PROTOCOL.md);"
  echo "  a connection binds with a 0-length text to itself, confirmed by its echo."
  echo "- **Redis** pub/sub (RESP2): two connections per user, since a RESP2"
  echo "  connection that has subscribed can no longer PUBLISH: one SUBSCRIBEs to"
  echo "  \`u<i>\`, the other PUBLISHes. Started with \`--save \"\" --appendonly no\`"
  echo "  and \`--client-output-buffer-limit \"pubsub 0 0 0\"\` (the default closes a"
  echo "  subscriber with 32 MB queued: depth 4 of 16 MiB is 64 MiB)."
  echo "- **NATS**: \`CONNECT {\"verbose\":false,\"pedantic\":false}\`, \`SUB\`, \`PUB\`;"
  echo "  PING confirms the subscription. Config: \`max_payload: 67108864\` (its"
  echo "  hard maximum; the default, 1 MB, is below the media scenarios),"
  echo "  \`max_pending: 268435456\`, \`max_connections: 1000000\`."
  echo "- **Mosquitto**: MQTT 3.1.1, QoS 0, clean session, keepalive 0; SUBACK"
  echo "  confirms the subscription. Default limits (messages up to 256 MB)."
  echo "- **floor**: bench/floor.c, a relay written only for this benchmark: one"
  echo "  thread, epoll, parses frames, forwards data frames to the receiver's"
  echo "  connection (echo when receiver = sender), one write per connection per"
  echo "  iteration; a large body (64 KiB or more) is written from the buffer it"
  echo "  was read into when the receiver has nothing queued, and passed on in"
  echo "  pieces of up to 4 MiB as it arrives; no store, no acknowledgements, no"
  echo "  limits. It is what this machine allows for the protocol, the ceiling"
  echo "  chat-server is compared with. Over TLS the same, with OpenSSL on its"
  echo "  descriptors."
  echo
  echo "## Method: the load generator, TLS, headroom"
  echo
  echo "**chat-bench does not copy payloads.** Each connection collects what it"
  echo "sends in a loop iteration in a gather list: the per-message part (the"
  echo "protocol head and the 12-byte stamp) is copied into a small buffer, the"
  echo "constant rest of the payload is referenced from one preallocated buffer,"
  echo "and the connection is written once per iteration with one \`writev\`; a"
  echo "payload over 64 KiB is not even copied into the kernel: its pages are"
  echo "lent to a pipe (\`vmsplice\`) and moved into the socket (\`splice\`), so the"
  echo "server's read makes the only copy (payloads up to 512 bytes are copied"
  echo "with their head: an iovec entry costs more than that). Receiving, a"
  echo "streaming decoder reads each message's head and the first 12 bytes of its"
  echo "payload and skips the body: without TLS the rest of a large body is"
  echo "discarded in the kernel with \`recv(MSG_TRUNC)\`, never copied (after a"
  echo "large message only the next head is read); no buffer grows to a"
  echo "message's size. The clock is read once per read system call, and the"
  echo "latency histogram takes nanoseconds as the clock gives them."
  if [ -n "$CONGESTION" ]; then
    echo "chat-bench's own sockets use the \`$CONGESTION\` congestion control; this"
    echo "machine's default, \`$SYS_CC\`, paces what a socket sends with a timer, and"
    echo "on this virtual machine that made sending cost chat-bench about twice the"
    echo "CPU per byte of a large message. It is the client's choice and the same"
    echo "for every server (the servers' sockets keep the machine's default); it"
    echo "also lets the servers receive in larger bursts, which lowers their cost"
    echo "per large message too, all of them alike."
  fi
  echo
  echo "**TLS.** \`make bench\` makes one throwaway CA and a server certificate"
  echo "(P-256, for 127.0.0.1 and localhost) in its temporary directory; every"
  echo "server uses that certificate and key: chat-server \`--tls-port 0 --tls-cert"
  echo "--tls-key\`, the floor \`--tls-cert --tls-key\` (OpenSSL on its own"
  echo "descriptors, read-ahead on), Redis \`--port 0 --tls-port\` with"
  echo "\`--tls-auth-clients no\`, NATS a \`tls { cert_file key_file }\` block (NATS"
  echo "sends its INFO line in plaintext, then the handshake starts), Mosquitto a"
  echo "\`listener\` with \`certfile\`/\`keyfile\`. chat-bench (\`--tls --ca\`) offers"
  echo "TLS 1.3 only, the one suite \`$TLS_SUITE\` and the one group \`$TLS_GROUP\`, and"
  echo "verifies the certificate and the address, so every server runs the same"
  echo "cipher whatever it prefers; each run prints what was negotiated"
  negotiated=$(for s in $SERVERS; do for id in $ran_ids; do [ -n "${TLSD[$s,$id]:-}" ] && echo "${TLSD[$s,$id]}"; done; done | sort -u | tr '\n' ' ')
  if [ -n "$negotiated" ]; then echo "(here: \`${negotiated% }\`)."; else echo "(no TLS scenario ran here)."; fi
  echo "chat-bench encrypts everything a connection sends in an iteration (records"
  echo "of up to 16 KiB) and writes it with one system call, over memory BIOs."
  echo
  echo "**WebSocket.** The same protocols over each server's WebSocket listener"
  echo "(RFC 6455, plaintext, 127.0.0.1): chat-server \`--http-port auto\` (GET \`/ws\`,"
  echo "subprotocol \`chat.v1\`, one chat frame per binary message, byte for byte as"
  echo "over TCP), NATS a \`websocket { host port no_tls: true }\` block (its text"
  echo "protocol in binary messages), Mosquitto a second \`listener\` with \`protocol"
  echo "websockets\` (subprotocol \`mqtt\`; Mosquitto $ver_mosq will not start with a"
  echo "WebSocket listener alone). Redis and the floor have none, so these"
  echo "scenarios compare chat-server with NATS and Mosquitto only, and no floor"
  echo "target applies. chat-bench (\`--ws\`, bench/bws.c) sends each unit of the"
  echo "protocol (a chat frame, a NATS PUB, an MQTT PUBLISH) as one binary message"
  echo "masked with a fresh key from OpenSSL's random generator (drawn 256 keys at"
  echo "a time), eight bytes at a time as it copies the message into the"
  echo "connection's buffer (a masked payload cannot be lent to the kernel as it"
  echo "is, so here it is copied), and writes a connection once per iteration as"
  echo "over TCP. It strips the servers' frames in place before the protocol's"
  echo "decoder (fragmented messages are joined, pings answered) and still"
  echo "discards a large body in the kernel as far as its frame goes. Mosquitto's"
  echo "WebSocket listener (libwebsockets) is slow with messages over about 4 KiB"
  echo "(eclipse-mosquitto/mosquitto issue 1390: it waits for its service loop for"
  echo "each piece of a large message), which its 64 KiB figure shows."
  echo
  echo "**Headroom.** chat-bench prints its own CPU (user + kernel, as a share of"
  echo "its core) beside every figure; a figure where it was above $BUSY % in any of"
  echo "its runs is marked †: there the load generator may have been the limit."
  echo "Its headroom is judged from CPU time per message, which other load on"
  echo "the machine disturbs far less than msgs/s: the server's CPU per message"
  echo "over chat-bench's, in the same runs, for the server that relays a"
  echo "message with the least CPU (the fastest one on a core of its own). That"
  echo "is how many times what that server can reach chat-bench can drive with"
  echo "its own core; the goal is 1.5x. Where that is out of reach (the table"
  echo "below says why, with both costs), the comparison with the floor is by"
  echo "server efficiency, messages per CPU-second of the server, which does not"
  echo "depend on how fast chat-bench can push."
  echo
  echo "![throughput relative to the floor](bench/headline.png)"
  echo
  echo "## Results"
  echo
  echo "CPU: the share of a core the server (all its threads) and chat-bench used"
  echo "during the measurement; † marks a figure where chat-bench was above $BUSY % of"
  echo "its core in a run, so the figure may be chat-bench's limit rather than the"
  echo "server's. msgs/CPU-s: messages delivered per second of CPU the server used,"
  echo "its efficiency, which other processes on the machine (and a saturated"
  echo "load generator) disturb less than they disturb msgs/s."
  echo
  echo "| scenario | server | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | server RSS MiB | server CPU % | bench CPU % | msgs/CPU-s |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ _ _ _ group <<<"$sc"
    wanted "$id" "$group" || continue
    for s in $SERVERS; do
      if [ -n "${TP[$s,$id]:-}" ]; then
        echo "| $label | $(name_of "$s") | ${TP[$s,$id]}$(mark "$s" "$id")$(smark "$s" "$id") | ${MB[$s,$id]} | ${P50[$s,$id]} | ${P99[$s,$id]}$(mark "$s" "$id")$(smark "$s" "$id") | ${P999[$s,$id]} | $(kib_mib "${RSS[$s,$id]}") | $(dash "${SCPU[$s,$id]}") | $(dash "${BCPU[$s,$id]}")$(mark "$s" "$id") | $(dash "${EFF[$s,$id]}") |"
      elif f=$(fail_of "$s" "$id") && [ -n "$f" ]; then
        if [ "$f" = skipped=nows ]; then
          echo "| $label | $(name_of "$s") | not measured: this build has no WebSocket endpoint (\`--http-port\`) | | | | | | | | |"
        else
          echo "| $label | $(name_of "$s") | failed: \`$f\` | | | | | | | | |"
        fi
      fi
    done
  done
  echo
  if [ -n "$busy_list" ]; then
    echo "† chat-bench was above $BUSY % of its core in at least one run of: $busy_list."
    echo "There the load generator may have been the limit; compare those by"
    echo "msgs/CPU-s."
  else
    echo "† chat-bench stayed at or below $BUSY % of its core in every run."
  fi
  echo
  if [ -n "$stolen_list" ]; then
    echo "‡ the hypervisor took more than $STEAL % of the machine's CPU time in at"
    echo "least one run of: $stolen_list (the most in one run). Those figures"
    echo "are noise; compare them only with a quieter run."
  else
    echo "‡ the hypervisor took at most $STEAL % of the machine's CPU time in every run."
  fi
  echo
  echo "![messages per second](bench/throughput.png)"
  echo
  echo "![p99 latency](bench/p99.png)"
  echo
  echo "### The load generator's headroom"
  echo
  echo "Per scenario, against the server that needs the least CPU per message:"
  echo "chat-bench's CPU share and CPU time per message in its runs (of which in"
  echo "the kernel), the server's CPU time per message, and the headroom, the"
  echo "second over the first (goal 1.5x)."
  echo
  echo "| scenario | most efficient server | its msgs/CPU-s | bench CPU % | bench µs/msg (kernel) | server µs/msg | headroom |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ _ _ _ group <<<"$sc"
    wanted "$id" "$group" || continue
    fs=$(most_efficient "$id")
    [ -n "${fs:-}" ] || continue
    h=$(headroom "$fs" "$id"); bu=$(bench_us "$fs" "$id"); bk=$(bench_kus "$fs" "$id")
    su=$(server_us "$fs" "$id")
    echo "| $label | $(name_of "$fs") | ${EFF[$fs,$id]} | $(dash "${BCPU[$fs,$id]:-}")$(mark "$fs" "$id") | $(dash "$bu") ($(dash "$bk")) | $(dash "$su") | $(dash "$h")x |"
    if [ -n "$h" ] && ! ge "$h" 1.5; then
      tight_list="$tight_list; $label ($(dash "$h")x: chat-bench $(dash "$bu") µs per message, $(dash "$bk") of them in the kernel; $(name_of "$fs") $(dash "$su") µs)"
    fi
  done
  tight_list=${tight_list#; }
  echo
  if [ -n "$tight_list" ]; then
    echo "Below 1.5x: $tight_list."
    echo
    echo "In these scenarios chat-bench may have been the limit, and 1.5x is out"
    echo "of reach on this machine: the server has one core and chat-bench the"
    echo "other, and per message both make one send and one receive through the"
    echo "same loopback TCP path, batched alike (one write per connection per"
    echo "iteration); on loopback the sender also pays for the receiving side's"
    echo "TCP processing. Where bodies are large chat-bench saves what the server"
    echo "cannot (the payload copies: \`splice\` out, \`MSG_TRUNC\` in); where they"
    echo "are small there is nothing comparable to save, and chat-bench's time in"
    echo "the kernel alone is close to the server's whole time per message (the"
    echo "figures above), so no user-space saving (a cheaper clock or histogram)"
    echo "could give it 1.5x, and io_uring would only save the system calls' entry"
    echo "and exit, a few per cent of that kernel time; only more cores for the"
    echo "generator, or the server on another machine, would. With TLS both sides"
    echo "also encrypt and decrypt every byte once (a body must be decrypted to be"
    echo "authenticated, so it cannot be skipped). There the comparison with the"
    echo "floor uses msgs/CPU-s (the targets below say so)."
  else
    echo "chat-bench had at least 1.5x headroom in every scenario."
  fi
  echo
  echo "### chat-server against the floor and the best competitor"
  echo
  echo "| scenario | chat/floor msgs/s | chat/floor p99 | chat/floor MB/s | chat/floor msgs/CPU-s | best competitor | chat/best msgs/s |"
  echo "|---|---:|---:|---:|---:|---|---:|"
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ _ _ _ group <<<"$sc"
    wanted "$id" "$group" || continue
    [ -n "${TP[chat,$id]:-}" ] || continue
    [ "$group" = group ] && continue # chat-server only: below
    read -r bs bv <<<"$(best_comp "$id")"
    echo "| $label | $(dash "$(ratio "${TP[chat,$id]}" "${TP[floor,$id]:-}")") | $(dash "$(ratio "${P99[chat,$id]}" "${P99[floor,$id]:-}")") | $(dash "$(ratio "${MB[chat,$id]}" "${MB[floor,$id]:-}")") | $(dash "$(ratio "${EFF[chat,$id]:-}" "${EFF[floor,$id]:-}")") | $( [ -n "${bs:-}" ] && echo "$(name_of "$bs") ($bv)" || echo -) | $(dash "$(ratio "${TP[chat,$id]}" "${bv:-}")") |"
    bs=""; bv=""
  done
  echo
  if grep -q "$(printf '\tgroup')" "$RES"; then
    vs=$GROUP_VS; vs_label=$(label_of "$vs")
    echo "## Groups"
    echo
    echo "chat-server only (the other servers have no groups). Per group of M members,"
    echo "the first member connects as a device with \`CONV\` (HELLO flags 0x02,"
    echo "device \`bench\`), creates the group with one GROUP CREATE listing the other"
    echo "M - 1 and, once the GROUPS answer is in and every other member's connection"
    echo "is bound, keeps D group messages in flight: POST with the \`GROUP\` flag and"
    echo "no client id (cid 0; the 1:1 rows send bare data frames, without one). The"
    echo "other members connect as the article's client does, without HELLO (bound"
    echo "by a 0-length text to themselves), so the server hands them each group"
    echo "message as a bare data frame from its author: the cheapest receiving path,"
    echo "the one the 1:1 rows' receivers take. A *member delivery* is one message"
    echo "arriving at one member: msgs/s counts them, latency is from the post to"
    echo "each member's arrival, and *group msgs/s* counts the messages every online"
    echo "member had. A message is in flight until the last online member has it"
    echo "(chat-bench keeps one counter per message in flight, not per member, and"
    echo "checks with the stamp's sequence number that each member gets its author's"
    echo "messages in order, none lost or repeated). Without offline members the"
    echo "author does not ask for acknowledgements (\`ACKS\`), so every message takes"
    echo "the live path; with K offline the last K members never connect, the server"
    echo "keeps every message for them, and the author asks for \`ACKS\`: a message"
    echo "is then in flight until the server has acknowledged it too, as a client"
    echo "with a window of unacknowledged messages keeps them."
    echo
    echo "| scenario | member deliveries/s | group msgs/s | p50 µs | p99 µs | server CPU % | bench CPU % | deliveries/CPU-s | ${vs_label}, msgs/s | ratio | ratio by msgs/CPU-s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for sc in "${SCENARIOS[@]}"; do
      IFS='|' read -r id label _ _ _ _ group <<<"$sc"
      [ "$group" = group ] || continue
      wanted "$id" "$group" || continue
      if [ -z "${TP[chat,$id]:-}" ]; then
        f=$(fail_of chat "$id")
        [ -n "$f" ] && echo "| $label | failed: \`$f\` | | | | | | | | | |"
        continue
      fi
      echo "| $label | ${TP[chat,$id]}$(mark chat "$id") | $(dash "$(med chat "$id" group_msgs_per_s)") | ${P50[chat,$id]} | ${P99[chat,$id]} | $(dash "${SCPU[chat,$id]}") | $(dash "${BCPU[chat,$id]}")$(mark chat "$id") | $(dash "${EFF[chat,$id]:-}") | $(dash "${TP[chat,$vs]:-}")$(mark chat "$vs") | $(dash "$(ratio "${TP[chat,$id]}" "${TP[chat,$vs]:-}")") | $(dash "$(ratio "${EFF[chat,$id]:-}" "${EFF[chat,$vs]:-}")") |"
    done
    echo
    echo "**Which 1:1 row.** \`$vs_label\` is the fair comparison for the"
    echo "1,000-member group: the same 1,000 connections at the server and in"
    echo "chat-bench's one loop, the same number of deliveries in flight (1,000 x 8"
    echo "there, 8 x 999 here), the same 64-byte messages and the same receiving"
    echo "path (bare data frames to connections without HELLO). What differs is only"
    echo "what a group is: the server reads one message per 999 deliveries (less"
    echo "input per delivery than 1:1) but routes each through the group's member"
    echo "list. The 50-user pair rows have 20 times fewer connections, hence many"
    echo "more messages per write on both sides, and would flatter the 1:1 side."
    echo "The offline row has another shape (50 online members, every message"
    echo "stored, a window bounded by acknowledgements: with chat-server's default"
    echo "\`--fsync full\` its rate is about 8 messages per synced commit, so it"
    echo "measures the store's commit latency more than the server's CPU); its"
    echo "ratio is shown for reference only. The client-ids row is the offline row"
    echo "with a client id on every POST: the server then gives each message to the"
    echo "online members only once it is committed (docs/PROTOCOL.md, \"Effectively"
    echo "once\"), so its latency holds the commit; compare it with the row above"
    echo "it. chat-bench's cost per member delivery"
    echo "is mostly the kernel's receiving (the headroom table above gives both):"
    echo "in user space it decodes a 9-byte head and the 16-byte stamp, checks the"
    echo "member's sequence and counts down the message's counter (one per message"
    echo "in flight, none per member and message)."
    echo
    g=${TP[chat,group1000]:-}; p=${TP[chat,$vs]:-}
    if [ -n "$g" ] && [ -n "$p" ]; then
      judge chat group1000 chat "$vs" "$GROUP_TARGET"
      echo "- Target: group, 1,000 members online, depth 8: member deliveries/s >= $GROUP_TARGET x"
      if [ "$J_BY" = eff ]; then # as against the floor
        echo "  \`$vs_label\` msgs/s, by server efficiency (msgs/CPU-s), as chat-bench has"
        echo "  less than 1.5x headroom here ($(dash "$J_HA")x in the group, $(dash "$J_HB")x in the pair):"
        echo "  **$J_M** ($J_RE x; msgs/s $J_R x: $g against $p)"
      else
        echo "  \`$vs_label\` msgs/s: **$J_M** ($J_R x: $g against $p; by server"
        echo "  efficiency $(dash "$J_RE") x)"
      fi
      if busy chat group1000 || busy chat "$vs"; then
        echo "  († chat-bench was above $BUSY % of its core in a run of one of them.)"
      fi
    elif [ -n "$g" ]; then
      echo "- Target: group, 1,000 members online, depth 8: member deliveries/s >= $GROUP_TARGET x"
      echo "  \`$vs_label\` msgs/s: **not measured** here, as that row did not run"
      echo "  (\`BENCH_ONLY=\"group $vs\" BENCH_SERVERS=chat\` runs both)."
    fi
    echo
  fi
  cluster_page
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
  echo "Computed from the figures above: chat-server against the floor (the"
  echo "floor over TLS in the TLS scenarios) and the best of Redis, NATS and"
  echo "Mosquitto (over WebSocket, which the floor and Redis do not speak, only"
  echo "against the better of NATS and Mosquitto). For every message scenario:"
  echo "msgs/s >= 0.85 x the floor's"
  echo "(>= 0.9 x for 64 KiB to 16 MiB bodies), p99 <= 1.5 x the floor's, and"
  echo "chat-bench below $BUSY % of its core in chat-server's and the floor's runs;"
  echo "where chat-bench has less than 1.5x headroom, the throughput comparison"
  echo "is made by server efficiency (msgs/CPU-s) instead, which a saturated"
  echo "generator does not cap."
  echo
  n_met=0; n_all=0
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ bflags _ _ group <<<"$sc"
    wanted "$id" "$group" || continue
    c=${TP[chat,$id]:-}; f=${TP[floor,$id]:-}
    [ -n "$c" ] || continue
    miss_floor=0
    if [ -n "$f" ]; then
      t=$(floor_target "$bflags")
      judge chat "$id" floor "$id" "$t"
      m=$J_M
      if [ "$J_BY" = eff ]; then # the generator may be the limit
        echo "- $label: msgs/CPU-s >= $t x floor (by server efficiency, as chat-bench has less than"
        echo "  1.5x headroom here: $(dash "$J_HA")x against chat-server, $(dash "$J_HB")x against the floor): **$m**"
        echo "  ($J_RE x; msgs/s $J_R x: $c against $f$([ "$m" = missed ] && noise_of "$id"))"
      else
        echo "- $label: msgs/s >= $t x floor: **$m** ($J_R x: $c against $f$([ "$m" = missed ] && noise_of "$id"))"
      fi
      n_all=$((n_all + 1)); [ "$m" = met ] && n_met=$((n_met + 1)); [ "$m" = missed ] && miss_floor=1
      r=$(ratio "${P99[chat,$id]}" "${P99[floor,$id]}")
      if ge 1.5 "$r"; then m=met; else m=missed; fi
      echo "- $label: p99 <= 1.5 x floor: **$m** ($r x: ${P99[chat,$id]} µs against ${P99[floor,$id]} µs$([ "$m" = missed ] && noise_of "$id"))"
      n_all=$((n_all + 1)); [ "$m" = met ] && n_met=$((n_met + 1)); [ "$m" = missed ] && miss_floor=1
      bc=${BCPUMAX[chat,$id]:-}; bf=${BCPUMAX[floor,$id]:-}
      if busy chat "$id" || busy floor "$id"; then m=missed; else m=met; fi
      echo "- $label: chat-bench below $BUSY % of its core: **$m** (at most $(dash "$bc") % with chat-server, $(dash "$bf") % with the floor)"
      n_all=$((n_all + 1)); [ "$m" = met ] && n_met=$((n_met + 1))
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
          [ -n "$bc" ] && ge "$bc" "$BUSY" && why="$why, with chat-bench at $bc % of its core"
        fi
      elif [ "$m" = missed ]; then
        # no floor (WebSocket): the servers' CPU per message says whether
        # chat-server or the machine held it back
        re=$(ratio "${EFF[chat,$id]:-}" "${EFF[$bs,$id]:-}")
        [ -n "$re" ] && why="; by server efficiency (msgs/CPU-s) $re x, chat-server at $(dash "${SCPU[chat,$id]}") % of its core"
        miss_floor=1 # show the profile
      fi
      echo "- $label: msgs/s >= 2.5 x best competitor (depth $d): **$m** ($r x $(name_of "$bs")$why)"
    fi
    if [ "$miss_floor" = 1 ] && [ -s "$TMP/prof.$id" ]; then
      echo "  <details><summary>where chat-server's time goes here (perf record -g"
      echo "  during a run of this scenario: self time per symbol, kernel included)</summary>"
      echo
      echo '  ```'
      sed 's/^/  /' "$TMP/prof.$id"
      echo '  ```'
      echo "  </details>"
    fi
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
  elif grep -q "$(printf '\tidle')" "$RES"; then
    echo "- idle, 100,000 connections: <= 1 KiB RSS per connection: **not measured**"
  fi
  echo
  echo "Against the floor: $n_met of $n_all targets met."
  echo
  echo "## Every run"
  echo
  echo "<details><summary>chat-bench output, one line per run († chat-bench above $BUSY % of its core; ‡ the hypervisor took more than $STEAL % of the machine's CPU)</summary>"
  echo
  echo '```'
  awk -F'\t' -v busy="$BUSY" -v steal="$STEAL" '{ m = ""; n = split($4, f, " ")
      for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == "bench_cpu_pct" && kv[2] + 0 > busy) m = m " †"
        if (kv[1] == "steal_pct" && kv[2] + 0 > steal) m = m " ‡" }
      printf "%s %s run %s%s: %s\n", $1, $2, $3, m, $4 }' "$RES"
  echo '```'
  echo
  echo "</details>"
} > "$OUT"
log "bench: wrote $OUT and $PNG/{headline,throughput,p99}.png"
log "bench: total elapsed $T_TOTAL s ($(( T_TOTAL / 60 )) min $(( T_TOTAL % 60 )) s)"
if [ -n "${BENCH_SPLICE:-}" ]; then
  cluster_splice "$OUT" "$BENCH_SPLICE" && log "bench: the cluster section of $BENCH_SPLICE replaced by this run's"
fi
