# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by bench/run.sh: the cluster scenarios (issue 15, item 7;
# docs/CLUSTER.md). Uses run.sh's variables (B, TMP, RES, RUNS, SECS, WARM,
# BUSY) and helpers (log, free_port, wait_port, wait_log_port, start_server,
# stop_server, transport_flags, med, mx, ratio, dash, ge, gt).
#
# Setups, every server-side process pinned to core 0 (as every server of
# run.sh), chat-bench to core 1:
#   redis, redis_es, redis_aof  Redis pub/sub (chat-bench --proto redis) with
#                               no AOF, appendfsync everysec, always
#   chat   one chat-server with its SQLite store (--fsync full)
#   c1     redis-server (appendonly yes, appendfsync always, the persistence
#          the cluster requires for ACKs) + one chat-server --cluster
#   c2t    the same Redis + two nodes; each pair on one node (pairs
#          alternating: chat-bench --port2 --place together)
#   c2s    the same Redis + two nodes; every pair split across the nodes
#          (chat-bench --port2 --place split)
#   c14, c2s4  c1 and c2s with the nodes' --cluster-connections 4 (the
#          puts spread over four command connections per node)
#   c1r    c1 with a replica (redis-server --replicaof, also on core 0)
#   c1w    c1r with the node's --cluster-wait 1: ACKs wait for the replica
#          (docs/CLUSTER.md 4.4); c1r beside it is the cost of WAIT alone
#   put    the same Redis alone running the put script (put.lua, the
#          cluster's durable write) from redis-benchmark on core 1: the
#          engine's own ceiling for stored messages
# A fresh Redis (empty, own directory) and fresh nodes for every run.

CL_SETUPS=(
  "redis|Redis pub/sub, no AOF"
  "redis_es|Redis pub/sub, appendfsync everysec"
  "redis_aof|Redis pub/sub, appendfsync always"
  "chat|chat-server alone, SQLite (--fsync full)"
  "c1|1 node --cluster + Redis (always)"
  "c1r|1 node + Redis + a replica"
  "c1w|1 node + Redis + a replica, --cluster-wait 1"
  "c2t|2 nodes + Redis, each pair on one node"
  "c2s|2 nodes + Redis, pairs split across nodes"
  "c14|1 node + Redis (always), --cluster-connections 4"
  "c2s4|2 nodes + Redis, pairs split, --cluster-connections 4"
  "put|Redis alone, put.lua from redis-benchmark"
)
# id | label | chat-bench flags
CL_SCENS=(
  "cp64|pair, 50 users, depth 64|--scenario pair --users 50 --depth 64"
  "cp64a|pair, 50 users, depth 64, ACKs|--scenario pair --users 50 --depth 64 --acks"
  "cp1|pair, 50 users, depth 1|--scenario pair --users 50 --depth 1"
  "cp1a|pair, 50 users, depth 1, ACKs|--scenario pair --users 50 --depth 1 --acks"
  "coff|offline store, 50 senders, depth 64|--scenario offline --users 50 --depth 64"
  "cput|put.lua, redis-benchmark -c 4 -P 16|"
)
# (BENCH_CLUSTER_CELLS: a subset, e.g. "c1:cp64a c1r:cp64a c1w:cp64a")
CL_CELLS="${BENCH_CLUSTER_CELLS:-redis:cp64 redis_es:cp64 redis_aof:cp64 redis:cp1
  chat:cp64 chat:cp64a chat:cp1 chat:cp1a chat:coff
  c1:cp64 c1:cp64a c1:cp1 c1:cp1a c1:coff
  c1r:cp64a c1w:cp64a c1r:cp1a c1w:cp1a
  c2t:cp64 c2t:cp64a c2t:cp1 c2t:cp1a
  c2s:cp64 c2s:cp64a c2s:cp1 c2s:cp1a c2s:coff
  put:cput}"
CL_PIDS=""   # every process a cluster run started, for cleanup
CL_N=0

cl_field() { # LIST ID FIELD(2..) -> that field of the entry ID
  local e id
  local -n list=$1
  for e in "${list[@]}"; do
    IFS='|' read -r id _ <<<"$e"
    [ "$id" = "$2" ] && { cut -d'|' -f"$3" <<<"$e"; return 0; }
  done
  return 1
}

# cl_redis MODE(no|everysec|always) -> RPID RPORT (a fresh redis-server on
# core 0 with its own directory). The cluster's settings (docs/CLUSTER.md
# 2.1): zset-max-listpack-value 2048, noeviction (the default).
cl_redis() {
  local mode=$1 dir log
  CL_N=$((CL_N + 1)); dir="$TMP/redis.$CL_N"; log="$dir/log"
  mkdir -p "$dir"
  RPORT=$(free_port) || return 1
  local aof="--appendonly no"
  [ "$mode" != no ] && aof="--appendonly yes --appendfsync $mode"
  # shellcheck disable=SC2086
  taskset -c 0 redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$dir" --save "" $aof \
    --protected-mode yes --maxclients 100000 --loglevel warning \
    --zset-max-listpack-value 2048 --client-output-buffer-limit "pubsub 0 0 0" >"$log" 2>&1 &
  RPID=$!
  CL_PIDS="$CL_PIDS $RPID"
  wait_port "$RPID" "$RPORT" || { echo "bench: redis-server did not start:" >&2; cat "$log" >&2; return 1; }
}

# cl_replica -> REPID: a replica of the Redis at RPORT (core 0, its own
# directory, the same persistence), once its link to the primary is up.
cl_replica() {
  local dir="$TMP/redis.$CL_N.replica" port i
  mkdir -p "$dir"
  port=$(free_port) || return 1
  taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" \
    --appendonly yes --appendfsync always --loglevel warning \
    --zset-max-listpack-value 2048 --replicaof 127.0.0.1 "$RPORT" >"$dir/log" 2>&1 &
  REPID=$!
  CL_PIDS="$CL_PIDS $REPID"
  for i in $(seq 200); do
    redis-cli -p "$port" info replication 2>/dev/null | grep -q 'master_link_status:up' && return 0
    sleep 0.05
  done
  echo "bench: the replica did not link to its primary:" >&2; cat "$dir/log" >&2; return 1
}

# cl_node [ARGS...] -> NPID NPORT: one chat-server --cluster on core 0 on
# the Redis at RPORT, with ARGS.
cl_node() {
  local log="$TMP/node.$CL_N.$RANDOM.log"
  taskset -c 0 "$B/chat-server" --port 0 --data-dir "$TMP/ndata.$RANDOM$RANDOM" \
    --offline-max-messages 0 --offline-max-bytes 0 --rate-msgs 0 --rate-bytes 0 \
    --cluster "redis://127.0.0.1:$RPORT" "$@" 2>"$log" &
  NPID=$!
  CL_PIDS="$CL_PIDS $NPID"
  wait_log_port "$NPID" "$log" "listening on" || { echo "bench: a cluster node did not start:" >&2; cat "$log" >&2; return 1; }
  NPORT=$PORT
}

cl_down() { # every process of this run: the nodes first, Redis last
  local p
  for p in $CL_PIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  CL_PIDS=""
  rm -rf "$TMP"/redis.* "$TMP"/ndata.* 2>/dev/null
}

# cl_up SETUP -> SPID SPORT (the server chat-bench talks to, and measures),
# CL_EXTRA (chat-bench flags: the second node, the other processes), CL_PROTO
cl_up() {
  CL_EXTRA=""; CL_PROTO=chat
  case $1 in
    redis|redis_es|redis_aof)
      local m=no; [ "$1" = redis_es ] && m=everysec; [ "$1" = redis_aof ] && m=always
      cl_redis "$m" || return 1
      SPID=$RPID; SPORT=$RPORT; CL_PROTO=redis ;;
    chat)
      start_server chat "--fsync full" 0 || return 1
      SPID=$PID; SPORT=$PORT ;;
    c1r|c1w)
      cl_redis always || return 1
      cl_replica || return 1
      if [ "$1" = c1w ]; then cl_node --cluster-wait 1 || return 1
      else cl_node || return 1; fi
      SPID=$NPID; SPORT=$NPORT
      CL_EXTRA="--also-pid redis=$RPID --also-pid replica=$REPID" ;;
    c1|c2t|c2s|put|c14|c2s4)
      local nc=1; case $1 in c14|c2s4) nc=4 ;; esac
      cl_redis always || return 1
      cl_node --cluster-connections $nc || return 1 # (put: loads the scripts, then idles: a heartbeat a second)
      SPID=$NPID; SPORT=$NPORT
      if [ "$1" = c2t ] || [ "$1" = c2s ] || [ "$1" = c2s4 ]; then
        cl_node --cluster-connections $nc || return 1
        local place=split; [ "$1" = c2t ] && place=together
        CL_EXTRA="--port2 $NPORT --place $place --also-pid node2=$NPID"
      fi
      CL_EXTRA="$CL_EXTRA --also-pid redis=$RPID"
      if [ "$1" = put ]; then SPID=$RPID; SPORT=$RPORT; fi ;;
  esac
}

# The put script's SHA1, as built into chat-server (build/gen/redis_scripts.c).
cl_put_sha() { grep -oE '\{"put", [a-z0-9_]+, [0-9]+, "[0-9a-f]{40}"' "$B/gen/redis_scripts.c" | grep -oE '[0-9a-f]{40}'; }

# cl_put_run -> LINE: redis-benchmark on core 1 runs put.lua on the Redis at
# SPORT (64-byte body, random receivers' keys (receiver id 2 in the entry), no cid, no contacts, no history:
# what a node's put for a bare data frame carries), the Redis's CPU from
# /proc and redis-benchmark's from time(1), as chat-bench prints them.
cl_put_run() {
  local sha n=20000 c0 c1 body
  sha=$(cl_put_sha) || { LINE="error=no_put_sha"; return; }
  body=$(printf 'x%.0s' $(seq 64))
  c0=$(awk '{print $14 + $15}' "/proc/$SPID/stat")
  taskset -c 1 /usr/bin/time -f '%e %U %S' -o "$TMP/rb.time" redis-benchmark -p "$SPORT" \
    -c 4 -P 16 -n "$n" -r 100000 --csv EVALSHA "$sha" 11 \
    'u:{__rand_int__}:log' 'u:{__rand_int__}' 'u:{1}:log' 'u:{1}:cid:7' 'u:{__rand_int__}:on' \
    'u:{1}:on' chat:ids chat:alive 'u:{1}:ct' 'u:{__rand_int__}:ct' 'cv:{1}:{2}' \
    1 2 7 1 0 "$body" 0 0 0 0 86400000 0 0 0 0 0 > "$TMP/rb.csv" 2>"$TMP/rb.err"
  c1=$(awk '{print $14 + $15}' "/proc/$SPID/stat")
  LINE=$(awk -F'"' -v c0="$c0" -v c1="$c1" -v hz="$(getconf CLK_TCK)" -v n="$n" -v tf="$TMP/rb.time" '
    NR == 2 { rps = $4; p50 = $10; p99 = $14 }
    END { if (!rps) { print "error=redis-benchmark"; exit }
      getline t < tf; split(t, a, " "); secs = n / rps
      printf "proto=redis scenario=put users=4 depth=16 size=64 seconds=%.2f msgs=%d msgs_per_s=%.0f p50_us=%.0f p99_us=%.0f server_cpu_pct=%.0f bench_cpu_pct=%.0f redis_cpu_pct=%.0f\n",
        secs, n, rps, p50 * 1000, p99 * 1000, 100 * (c1 - c0) / hz / secs,
        100 * (a[2] + a[3]) / a[1], 100 * (c1 - c0) / hz / secs }' "$TMP/rb.csv")
  grep -q ERR "$TMP/rb.csv" "$TMP/rb.err" && LINE="error=$(grep -m1 ERR "$TMP/rb.csv" "$TMP/rb.err" | tr ' ' _ | cut -c1-120)"
}

# The disk's synced-write latency now (what appendfsync always and
# --fsync full wait for): ms per 512-byte append of 200 with dd oflag=dsync,
# in the directory Redis and SQLite write to.
cl_fsync_probe() {
  dd if=/dev/zero of="$TMP/fsync.probe" bs=512 count=200 oflag=dsync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.2f", $(i - 1) * 1000 / 200 }'
  rm -f "$TMP/fsync.probe"
}

cluster_measure() {
  local cell setup sc bflags r extra flag
  command -v redis-server >/dev/null || { log "cluster: no redis-server: skipped"; return 0; }
  CL_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg); CL_T0=$(date +%s)
  CL_FSYNC_START=$(cl_fsync_probe)
  log "cluster: ${RUNS} runs of ${SECS} s per cell; load average $CL_LOAD_START;" \
      "a synced 512-byte append (dd oflag=dsync) takes $CL_FSYNC_START ms"
  # Round by round (every cell once, then again): on a machine shared with
  # other work, each cell's runs meet the disk and the cores at several
  # moments, so the cells' medians stay comparable.
  for r in $(seq "$RUNS"); do
    for cell in $CL_CELLS; do
      setup=${cell%%:*}; sc=${cell#*:}
      bflags=$(cl_field CL_SCENS "$sc" 3)
      if ! cl_up "$setup"; then
        cl_down; stop_server
        printf 'cl_%s\t%s\t%s\t%s\n' "$setup" "$sc" "$r" "error=start" >> "$RES"; continue
      fi
      if [ "$setup" = put ]; then
        cl_put_run
      else
        extra=$(transport_flags 0 0)
        # shellcheck disable=SC2086
        LINE=$(taskset -c 1 "$B/chat-bench" --proto "$CL_PROTO" --port "$SPORT" \
                 --seconds "$SECS" --warmup "$WARM" --server-pid "$SPID" $bflags $CL_EXTRA $extra \
                 2>"$TMP/bench.err")
        local rc=$?
        if [ $rc -ne 0 ] || [ -z "$LINE" ]; then
          LINE="error=rc$rc $(grep -v '^chat-bench: measuring' "$TMP/bench.err" | tr '\n ' ' _' | cut -c1-160)"
        fi
      fi
      case $setup in c1|c1r|c1w|c2t|c2s|put|c14|c2s4) # Redis's own account of the scripts (all of the run)
        LINE="$LINE $(redis-cli -p "$RPORT" info commandstats 2>/dev/null |
          awk -F'[:,=]' '/^cmdstat_evalsha:/ { printf "redis_evalsha_calls=%s redis_evalsha_us=%s", $3, $7 }')" ;;
      esac
      cl_down; stop_server
      printf 'cl_%s\t%s\t%s\t%s\n' "$setup" "$sc" "$r" "$LINE" >> "$RES"
      flag=$(grep -oE 'bench_cpu_pct=[0-9]+' <<<"$LINE" | awk -F= -v b="$BUSY" '$2 + 0 > b { printf " † chat-bench at %s %% of its core", $2 }')
      log "cluster | $(cl_field CL_SETUPS "$setup" 2) | $(cl_field CL_SCENS "$sc" 2) | run $r | $LINE$flag"
    done
  done
  CL_LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg); CL_SECS=$(( $(date +%s) - CL_T0 ))
  CL_FSYNC_END=$(cl_fsync_probe)
  log "cluster: done in $CL_SECS s; load average $CL_LOAD_END; a synced append $CL_FSYNC_END ms"
}

# --- the page's section ------------------------------------------------------
cl_med() { med "cl_$1" "$2" "$3"; }
cl_busy() { local m; m=$(mx "cl_$1" "$2" bench_cpu_pct); [ -n "$m" ] && gt "$m" "$BUSY"; }
# msgs per CPU-second of Redis in a cell (Redis's CPU from redis_cpu_pct, or
# the server's for the pub/sub setups)
cl_per_redis() {
  local tp rc
  tp=$(cl_med "$1" "$2" msgs_per_s)
  rc=$(cl_med "$1" "$2" redis_cpu_pct)
  case $1 in redis*) rc=$(cl_med "$1" "$2" server_cpu_pct) ;; esac
  # (below 5 % Redis did not carry the messages: the fast path)
  awk -v t="$tp" -v c="$rc" 'BEGIN { if (t == "" || c == "" || c + 0 < 5) print ""; else printf "%.0f", t * 100 / c }'
}
# Redis's µs per EVALSHA in a cell, when the scripts carried the messages
# (at least 1,000 calls a run; else only the logins' few)
cl_evalsha_us() {
  local calls
  calls=$(cl_med "$1" "$2" redis_evalsha_calls)
  [ -n "$calls" ] && ge "$calls" 1000 && cl_med "$1" "$2" redis_evalsha_us
}

cluster_page() {
  grep -q "^cl_" "$RES" || return 0
  local cell setup sc tp f nodes redis_c all lbl base_r base_c
  echo "<!-- cluster section: begin (bench/run_cluster.sh; BENCH_ONLY=cluster BENCH_SPLICE=docs/BENCHMARKS.md bench/run.sh rewrites only this part) -->"
  echo "## Cluster: nodes on one Redis (issue 15)"
  echo
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown),"
  echo "Redis $(redis-server --version | grep -oE 'v=[^ ]+' | cut -d= -f2), in ${CL_SECS:-?} s; load average (1, 5, 15 min)"
  echo "${CL_LOAD_START:-?} before these cells and ${CL_LOAD_END:-?} after, on $(nproc) cores;"
  echo "a synced 512-byte append to this disk (\`dd oflag=dsync\`, 200 of them, what"
  echo "\`appendfsync always\` and \`--fsync full\` wait for) took ${CL_FSYNC_START:-?} ms before"
  echo "and ${CL_FSYNC_END:-?} ms after."
  if awk -v l="${CL_LOAD_START%% *}" 'BEGIN { exit !(l >= 0.5) }'; then
    echo "**Under contention**: other processes used the machine meanwhile (the load"
    echo "average above); msgs/s is disturbed more than the CPU-based columns."
  fi
  echo "Each figure is the median of $RUNS runs of $SECS s after a $WARM s warm-up, taken in"
  echo "$RUNS rounds (every cell once per round, so that each cell meets the machine's"
  echo "other load at several moments); every run"
  echo "starts a fresh redis-server (empty, its own directory) and fresh nodes."
  echo
  echo "Every server-side process (redis-server, each chat-server node) is pinned to"
  echo "core 0, chat-bench (or redis-benchmark) to core 1: the cluster's three"
  echo "processes share the one core a single chat-server or a single Redis has"
  echo "in the other rows, so the rows compare the same CPU budget. The cluster's"
  echo "Redis runs with \`appendonly yes\`, \`appendfsync always\` (what a node"
  echo "requires to grant ACKs, docs/CLUSTER.md 4.2) and \`zset-max-listpack-value"
  echo "2048\` (CLUSTER.md 2.1). chat-bench measures the CPU of the node it names"
  echo "with --server-pid and of the others with \`--also-pid\` (node2, redis)."
  echo
  echo "- *pair*: as above (user i and i^1 send to each other); with two nodes,"
  echo "  chat-bench \`--port2\` connects every odd user to the second node"
  echo "  (\`--place split\`: every pair spans the nodes) or every odd pair"
  echo "  (\`--place together\`: each pair on one node, half of them on each)."
  echo "- *ACKs* (\`--acks\`): every connection binds with HELLO asking for ACKS"
  echo "  and acknowledges what it received once per loop iteration, as libchat"
  echo "  does; a message is counted when it reached its receiver. Without ACKs the"
  echo "  connections are the article's clients (bound by a 0-length text)."
  echo "- *offline store*: 50 senders with ACKS send to users who never connect;"
  echo "  a message counts when acknowledged (stored: in the cluster, put.lua"
  echo "  answered after Redis's fsync)."
  echo "- *a replica*: a second redis-server (\`--replicaof\`, same persistence,"
  echo "  also on core 0); Redis CPU % is the primary's, msgs/server-side CPU-s"
  echo "  counts the replica too. *--cluster-wait 1*: the node acknowledges only"
  echo "  after \`WAIT 1\` counted the replica (one WAIT in flight, covering every"
  echo "  put sent before it; docs/CLUSTER.md 4.4); the row above it, same"
  echo "  processes without WAIT, is what WAIT itself costs."
  echo "- *put.lua from redis-benchmark*: \`redis-benchmark -c 4 -P 16 -n 20000 -r"
  echo "  100000 EVALSHA <put> 11 ...\` (64-byte body, random receivers, no client"
  echo "  id; receivers have no live node, so no PUBLISH): what the Redis engine"
  echo "  itself does with the cluster's durable write, fed by a client that"
  echo "  costs it nothing. Its p50/p99 are redis-benchmark's (per request)."
  echo
  echo "Which path a message takes (CLUSTER.md 3.3): between two article clients"
  echo "on one node it goes straight across the node (no Redis); any message that"
  echo "must be stored (a sender or receiver with ACKS, a receiver on another node)"
  echo "is one put.lua on Redis and reaches every receiver from the nodes' feeds"
  echo "after Redis's fsync. So *split* pairs are stored even without ACKs."
  echo "Why the stored path stops near the put.lua row with Redis below 100 % of"
  echo "its core (it waits for fsync, with at most one read of about 20 KB of"
  echo "commands per connection between two fsyncs): docs/SCALING.md, section 1.3."
  echo
  echo "| setup | scenario | msgs/s | p50 µs | p99 µs | ACKs/s | ACK p99 µs | node CPU % | Redis CPU % | bench CPU % | msgs/server-side CPU-s | msgs/Redis CPU-s | Redis µs/EVALSHA | / Redis pub/sub | / chat-server alone |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for cell in $CL_CELLS; do
    setup=${cell%%:*}; sc=${cell#*:}
    tp=$(cl_med "$setup" "$sc" msgs_per_s)
    lbl="$(cl_field CL_SETUPS "$setup" 2) | $(cl_field CL_SCENS "$sc" 2)"
    if [ -z "$tp" ]; then
      f=$(fail_of "cl_$setup" "$sc")
      [ -n "$f" ] && echo "| $lbl | failed: \`$f\` | | | | | | | | | | | | |"
      continue
    fi
    case $setup in
      redis*) nodes="-"; redis_c=$(cl_med "$setup" "$sc" server_cpu_pct); all=$(cl_med "$setup" "$sc" msgs_per_server_cpu_s) ;;
      chat) nodes=$(cl_med "$setup" "$sc" server_cpu_pct); redis_c="-"; all=$(cl_med "$setup" "$sc" msgs_per_server_cpu_s) ;;
      put) nodes="-"; redis_c=$(cl_med "$setup" "$sc" redis_cpu_pct); all=$(cl_per_redis "$setup" "$sc") ;;
      c1|c1r|c1w|c14) nodes=$(cl_med "$setup" "$sc" server_cpu_pct); redis_c=$(cl_med "$setup" "$sc" redis_cpu_pct); all=$(cl_med "$setup" "$sc" msgs_per_all_cpu_s) ;;
      *) nodes="$(cl_med "$setup" "$sc" server_cpu_pct) + $(cl_med "$setup" "$sc" node2_cpu_pct)"
         redis_c=$(cl_med "$setup" "$sc" redis_cpu_pct); all=$(cl_med "$setup" "$sc" msgs_per_all_cpu_s) ;;
    esac
    # the ceiling: Redis pub/sub (no AOF) at the same depth; the stored-only
    # scenarios (offline) against put.lua alone
    case $sc in
      cp64*) base_r=$(cl_med redis cp64 msgs_per_s) ;;
      cp1*) base_r=$(cl_med redis cp1 msgs_per_s) ;;
      coff) base_r=$(cl_med put cput msgs_per_s) ;;
      *) base_r="" ;;
    esac
    base_c=$(cl_med chat "$sc" msgs_per_s)
    local m=""; cl_busy "$setup" "$sc" && m="†"
    local rr rc
    rr=$(ratio "$tp" "$base_r"); rc=$(ratio "$tp" "$base_c")
    [ "$sc" = coff ] && [ -n "$rr" ] && rr="$rr (of put.lua)"
    case $setup in redis|put) rr="-" ;; esac
    case $setup in chat|redis*|put) rc="-" ;; esac
    echo "| $lbl | $tp$m | $(dash "$(cl_med "$setup" "$sc" p50_us)") | $(dash "$(cl_med "$setup" "$sc" p99_us)") | $(dash "$(cl_med "$setup" "$sc" acked_per_s)") | $(dash "$(cl_med "$setup" "$sc" ack_p99_us)") | $(dash "$nodes") | $(dash "$redis_c") | $(dash "$(cl_med "$setup" "$sc" bench_cpu_pct)")$m | $(dash "$all") | $(dash "$(cl_per_redis "$setup" "$sc")") | $(dash "$(cl_evalsha_us "$setup" "$sc")") | $(dash "$rr") | $(dash "$rc") |"
  done
  echo
  echo "† chat-bench above $BUSY % of its core in a run: the figure may be its limit."
  echo "msgs/server-side CPU-s: messages per CPU-second of all the server-side"
  echo "processes of the row (nodes and Redis). msgs/Redis CPU-s: per CPU-second of"
  echo "redis-server alone. Redis µs/EVALSHA: Redis's own \`usec_per_call\` of"
  echo "EVALSHA (\`INFO commandstats\`, the whole run: mostly put.lua, also the"
  echo "logins' device and fetch scripts; shown where there were 1,000 calls or"
  echo "more, and msgs/Redis CPU-s where Redis used 5 % of its core or more:"
  echo "otherwise Redis did not carry the messages). ACKs/s, ACK p99: with ACKs, the"
  echo "server's acknowledgements (send to ACK) during the measurement; a sender"
  echo "then keeps at most D messages not yet delivered or not yet acknowledged."
  echo "*/ Redis pub/sub*: msgs/s against Redis pub/sub (no"
  echo "AOF) in the same scenario (depth 64 or 1), the engine underneath as the"
  echo "ceiling; for the offline store, against put.lua from redis-benchmark."
  echo "*/ chat-server alone*: against one chat-server with SQLite, same scenario."
  echo
  echo "<details><summary>the cluster's runs (chat-bench's lines)</summary>"
  echo
  echo '```'
  awk -F'\t' '$1 ~ /^cl_/ { printf "%s %s run %s: %s\n", substr($1, 4), $2, $3, $4 }' "$RES"
  echo '```'
  echo
  echo "</details>"
  echo "<!-- cluster section: end -->"
  echo
}

# cluster_splice PAGE FILE: the cluster section of PAGE replaces the one in
# FILE (between the markers), or is appended before "## Every run" when FILE
# has none.
cluster_splice() {
  local page=$1 file=$2 sec="$TMP/cluster.section"
  sed -n '/^<!-- cluster section: begin/,/^<!-- cluster section: end -->/p' "$page" > "$sec"
  [ -s "$sec" ] || { echo "bench: no cluster section in $page" >&2; return 1; }
  if grep -q '^<!-- cluster section: begin' "$file"; then
    awk -v s="$sec" '/^<!-- cluster section: begin/ { while ((getline l < s) > 0) print l; skip = 1; next }
                     /^<!-- cluster section: end -->/ { skip = 0; next } !skip' "$file" > "$file.tmp"
  else
    awk -v s="$sec" '/^## Every run/ && !done { while ((getline l < s) > 0) print l; print ""; done = 1 } { print }' \
      "$file" > "$file.tmp"
  fi
  mv "$file.tmp" "$file"
}
