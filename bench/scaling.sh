#!/usr/bin/env bash
# bench/scaling.sh [N]: the memory figures docs/SCALING.md starts from, on
# this machine (not part of `make bench`; about a minute). Starts its own
# redis-server (appendonly yes, appendfsync always, zset-max-listpack-value
# 2048, as docs/CLUSTER.md 2.1 says) and chat-server nodes on free loopback
# ports, then, for N users (default 10,000), in layers on the same users:
#
#   1. N idle connections to one node --cluster (chat-bench --scenario idle:
#      HELLO, as libchat; each login runs device.lua for the default device,
#      registers presence, fetches): the node's RSS per connection, Redis's
#      memory per online user, Redis's work per login (INFO commandstats);
#      the same N against one chat-server with SQLite, for comparison;
#   2. they disconnect: what stays in Redis per user (its default device);
#   3. an account per user (u:{U} pw = an Argon2id hash as `chat-server user
#      add` makes, chat:accounts) written with redis-cli: per account
#      (CLUSTER.md 2.3's layout; today's nodes keep accounts in --data-dir);
#   4. a named CONV device per user (device.lua, as a libchat login does):
#      per device;
#   5. 3 messages of 64 bytes from each user to the next, each with a
#      client id (put.lua, as a POST from libchat): per stored message with
#      its client id;
# and MEMORY USAGE of a sample user's keys. Prints one line per figure.
# SCALING_REDIS: more redis-server flags (e.g. "--hash-max-listpack-value
# 128", which keeps u:{U} with its 97-byte password hash a listpack).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
N=${1:-10000}
B=build
TMP=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() { local p; for _ in $(seq 200); do p=$(( 20000 + RANDOM % 12000 ));
  ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { echo "$p"; return 0; }; done; return 1; }
RP=$(free_port)
mkdir -p "$TMP/redis"
# shellcheck disable=SC2086 # (SCALING_REDIS: words)
taskset -c 0 redis-server --port "$RP" --bind 127.0.0.1 --dir "$TMP/redis" --save "" \
  --appendonly yes --appendfsync always --zset-max-listpack-value 2048 --maxclients 100000 \
  --loglevel warning ${SCALING_REDIS:-} > "$TMP/redis/log" 2>&1 &
RPID=$!; PIDS="$RPID"
R() { redis-cli -p "$RP" "$@"; }
for _ in $(seq 100); do [ "$(R ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
mem() { R info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }
cs() { R info commandstats | tr -d '\r'; }
sha() { grep -oE "\\{\"$1\", [a-z0-9_]+, [0-9]+, \"[0-9a-f]{40}\"" "$B/gen/redis_scripts.c" | grep -oE '[0-9a-f]{40}'; }
# node FLAGS... -> NPID NPORT: a chat-server on core 0
node() {
  local log="$TMP/node.$RANDOM.log"
  taskset -c 0 "$B/chat-server" --port 0 --data-dir "$TMP/data.$RANDOM" --rate-msgs 0 --rate-bytes 0 "$@" 2>"$log" &
  NPID=$!; PIDS="$NPID $PIDS"
  for _ in $(seq 200); do
    NPORT=$(grep -oE 'listening on [0-9.]+:[0-9]+' "$log" | head -1 | grep -oE '[0-9]+$')
    [ -n "$NPORT" ] && return 0; sleep 0.05
  done
  echo "scaling: a node did not start:" >&2; cat "$log" >&2; exit 1
}
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null; }
# RESP for redis-cli --pipe: one command per input line, fields separated by |
resp() { awk -F'|' '{ printf "*%d\r\n", NF; for (i = 1; i <= NF; i++) printf "$%d\r\n%s\r\n", length($i), $i }'; }
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.0f", (b - a) / n }'; }
echo "scaling: N=$N users; redis-server $(redis-server --version | grep -oE 'v=[^ ]+' | cut -d= -f2) on 127.0.0.1:$RP; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. N idle connections -------------------------------------------------
node --cluster "redis://127.0.0.1:$RP"
m0=$(mem); cs > "$TMP/cs0"
c0=$(awk '{ print $14 + $15 }' "/proc/$RPID/stat")
line=$(taskset -c 1 "$B/chat-bench" --port "$NPORT" --scenario idle --users "$N" --server-pid "$NPID" 2>/dev/null)
echo "1. $N idle connections to a node --cluster (chat-bench --scenario idle): $line"
sleep 1 # the logouts' presence writes
c1=$(awk '{ print $14 + $15 }' "/proc/$RPID/stat")
cs > "$TMP/cs1"
m2=$(mem)
echo "   Redis used_memory before $m0, after the $N disconnected $m2: $(per "$m0" "$m2" "$N") bytes per user who logged in once (its default device, no account)"
awk -F'[:,=]' -v n="$N" 'FNR == NR { c[$1] = $3; u[$1] = $5; next }
  { dc = $3 - c[$1]; du = $5 - u[$1]; if (dc > 0) printf "   per login: %s %.2f calls, %.1f us of Redis\n", $1, dc / n, du / n; tc += dc; tu += du }
  END { printf "   per login, all commands: %.2f calls, %.1f us of Redis (commandstats)\n", tc / n, tu / n }' "$TMP/cs0" "$TMP/cs1"
echo "   redis-server CPU over the logins and logouts: $(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" -v n="$N" 'BEGIN { printf "%.1f us per user", (b - a) / hz * 1e6 / n }')"
stop "$NPID"; PIDS=${PIDS/$NPID /}

# the online cost: N connected at once, Redis measured while they are
node --cluster "redis://127.0.0.1:$RP"
m3=$(mem); slab0=$(awk '/^Slab:/ { print $2 }' /proc/meminfo)
taskset -c 1 "$B/chat-bench" --port "$NPORT" --scenario idle --users "$N" --server-pid "$NPID" \
  > "$TMP/idle2.out" 2>&1 &
bpid=$!
for _ in $(seq 1200); do [ "$(R scard "u:{$N}:on" 2>/dev/null)" = 1 ] && break; sleep 0.05; done
sleep 1
m4=$(mem); on=$(R memory usage "u:{1}:on" samples 0); slab1=$(awk '/^Slab:/ { print $2 }' /proc/meminfo)
wait $bpid
echo "   with the $N connected again (second node): Redis used_memory $m4, $(per "$m3" "$m4" "$N") bytes per online user (u:{U}:on: MEMORY USAGE $on)"
echo "   chat-bench: $(cat "$TMP/idle2.out")"
echo "   kernel slab memory while the $N were connected: +$(( (slab1 - slab0) * 1024 / N )) bytes per connection (/proc/meminfo Slab; both ends of each loopback connection, so the server's end is about half; other processes' allocations add noise)"
stop "$NPID"; PIDS=${PIDS/$NPID /}

node --offline-max-messages 0 --offline-max-bytes 0
sq=$(taskset -c 1 "$B/chat-bench" --port "$NPORT" --scenario idle --users "$N" --server-pid "$NPID" 2>/dev/null)
echo "1b. $N idle connections to chat-server with SQLite: $sq"
stop "$NPID"; PIDS=${PIDS/$NPID /}

# --- 3. accounts -------------------------------------------------------------
# shellcheck disable=SC2016 # (a literal hash)
HASH='$argon2id$v=19$m=65536,t=2,p=1$6HAdQbiMfsqByF7GRk/AnA$8nVxmYr+p53SvrxL0MrZ7KzRe2daW3IsfKL6ZFWsWBs'
aof() { R info persistence | awk -F: '/^aof_current_size:/ { print $2 + 0 }'; }
a0=$(mem)
seq "$N" | awk -v h="$HASH" '{ printf "HSET|u:{%d}|pw|%s\nSADD|chat:accounts|%d\n", $1, h, $1 }' | resp |
  R --pipe > "$TMP/pipe.out" 2>&1
a1=$(mem)
echo "3. accounts (HSET u:{U} pw <97-byte Argon2id hash>, SADD chat:accounts U): $(per "$a0" "$a1" "$N") bytes per account ($(tail -1 "$TMP/pipe.out"))"

# --- 4. a named CONV device --------------------------------------------------
DEV=$(sha device)
seq "$N" | awk -v s="$DEV" '{ printf "EVALSHA|%s|5|u:{%d}|u:{%d}:log|u:{%d}:on|chat:devno|chat:alive|%d|phone|1|2592000000|86400000\n", s, $1, $1, $1, $1 }' |
  resp | R --pipe > "$TMP/pipe.out" 2>&1
d1=$(mem); f1=$(aof)
echo "4. a CONV device \"phone\" per user (device.lua): $(per "$a1" "$d1" "$N") bytes per device ($(tail -1 "$TMP/pipe.out"))"
devno=$(R get chat:devno)

# --- 5. 3 messages per user, with client ids ---------------------------------
PUT=$(sha put)
BODY=$(printf 'x%.0s' $(seq 64))
# user U's device number: the devices were created in order, so N - devno + U
for k in 1 2 3; do
  seq "$N" | awk -v s="$PUT" -v n="$N" -v d="$devno" -v k="$k" -v b="$BODY" '{
    a = $1; r = a % n + 1; dev = d - n + a; lo = a < r ? a : r; hi = a < r ? r : a
    printf "EVALSHA|%s|11|u:{%d}:log|u:{%d}|u:{%d}:log|u:{%d}:cid:%d|u:{%d}:on|u:{%d}:on|chat:ids|chat:alive|u:{%d}:ct|u:{%d}:ct|cv:{%d}:{%d}", s, r, r, a, a, dev, r, a, a, r, lo, hi
    printf "|%d|%d|%d|1|%d|%s|0|0|0|0|86400000|0|0|0|0|0\n", a, r, dev, a * 10 + k, b }'
done | resp | R --pipe > "$TMP/pipe.out" 2>&1
p1=$(mem); f2=$(aof)
echo "   the AOF grew by $(per "$f1" "$f2" $((3 * N))) bytes per put.lua (aof_current_size; appendfsync always writes this per stored message)"
echo "5. 3 messages of 64 bytes per user, each with a client id (put.lua): $(per "$d1" "$p1" $((3 * N))) bytes per stored message and its client id ($(tail -1 "$TMP/pipe.out"))"
echo "   total: Redis used_memory $p1 for $N users: $(per 0 "$p1" "$N") bytes per user (the empty instance: $m0)"
for k in "u:{2}" "u:{2}:log" "u:{2}:cid:$((devno - N + 2))" "chat:accounts"; do
  echo "   MEMORY USAGE $k SAMPLES 0: $(R memory usage "$k" samples 0) ($(R type "$k"), $(R object encoding "$k"))"
done
R info keyspace | grep ^db
