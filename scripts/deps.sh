#!/bin/sh
# Install the Debian packages the build, the tests and `make run` need, when
# they are missing. Idempotent and quiet when everything is present; runs
# `apt-get update` at most once.
# Usage: scripts/deps.sh [all|build|test|bench|fuzz]   (`make deps`: all)
#   build: compile everything (python3 builds the web
#   client's files into the server; libhiredis-dev: the Redis reply parser
#   and command encoder of src/server/rconn*.c); test: also run `make test` (cmocka,
#   pytest, the article's tornado client, python3-websockets, promtool from
#   prometheus, chromium for the browser tests, openssl(1) for throwaway
#   certificates, redis-server for the Redis connection's tests
#   (tests/support/redisfix.c),
#   iproute2 for the network-namespace test, clang for the fuzz targets,
#   clang-tidy for `make lint`, Node.js and tests/browser's npm packages;
#   for `make package-check`: lintian, man-db (man -l), systemd
#   (systemd-analyze verify; not run as init) and procps (the unit's
#   /bin/kill));
#   bench: also the servers `make bench` compares against, gnuplot, and
#   openssl(1) for the TLS scenarios' throwaway certificates.
set -eu

want="build-essential pkg-config libuv1-dev libsqlite3-dev libedit-dev libsodium-dev libssl-dev libhiredis-dev python3"
fuzz="clang libclang-rt-14-dev"
pkg="lintian man-db systemd procps"
case "${1:-all}" in
  all) want="$want libcmocka-dev python3 python3-pytest python3-tornado python3-websockets prometheus chromium openssl iproute2 clang-tidy $pkg $fuzz redis-server nats-server mosquitto gnuplot-nox util-linux procps" ;;
  build) ;;
  test) want="$want libcmocka-dev python3 python3-pytest python3-tornado python3-websockets prometheus chromium openssl iproute2 clang-tidy $pkg $fuzz redis-server" ;;
  fuzz) want="$want $fuzz" ;;
  bench) want="$want redis-server nats-server mosquitto gnuplot-nox util-linux procps openssl" ;;
  *) echo "usage: scripts/deps.sh [all|build|test|bench|fuzz]" >&2; exit 2 ;;
esac

# The browser tests (tests/browser) need Node.js and npm: the machine's, or
# Debian's when it has none.
case "${1:-all}" in all|test)
  command -v npm >/dev/null 2>&1 || want="$want nodejs npm" ;;
esac

# tests/browser's npm packages (playwright-core, pinned by its
# package-lock.json; it never downloads a browser: the tests use Debian's
# chromium), installed when missing or when the lock file changed.
npm_deps() {
  case "${1:-all}" in all|test) ;; *) return 0 ;; esac
  d="$(dirname "$0")/../tests/browser"
  stamp="$d/node_modules/.package-lock.json"
  if [ -f "$stamp" ] && [ ! "$d/package-lock.json" -nt "$stamp" ]; then
    return 0
  fi
  echo "deps: installing tests/browser's npm packages (npm ci)" >&2
  (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  npm_deps "${1:-all}"
  exit 0
fi

echo "deps: installing missing Debian packages:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps: need root to install:$missing (run: apt-get install$missing)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
npm_deps "${1:-all}"
