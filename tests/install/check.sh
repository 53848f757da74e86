#!/usr/bin/env bash
# make install-check: install libchat with PREFIX and DESTDIR into a
# temporary directory, build tests/install/usechat.c with the flags
# pkg-config gives for the installed chat.pc, and run it against the shared
# library, then linked with the static one.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make --no-print-directory -s install PREFIX=/opt/chat DESTDIR="$tmp" >/dev/null
lib="$tmp/opt/chat/lib"
for f in include/chat.h lib/libchat.a lib/libchat.so lib/libchat.so.0 lib/pkgconfig/chat.pc; do
  [ -e "$tmp/opt/chat/$f" ] || { echo "install-check: $f was not installed" >&2; exit 1; }
done
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp"
# shellcheck disable=SC2046
cc -Wall -Werror $(pkg-config --cflags chat) tests/install/usechat.c \
   $(pkg-config --libs chat) -o "$tmp/usechat-shared"
LD_LIBRARY_PATH="$lib" "$tmp/usechat-shared" | grep -qx "libchat ok"
# shellcheck disable=SC2046
cc -Wall -Werror $(pkg-config --cflags chat) tests/install/usechat.c \
   "$lib/libchat.a" $(pkg-config --static --libs-only-l chat | sed 's/-lchat//') \
   -o "$tmp/usechat-static"
"$tmp/usechat-static" | grep -qx "libchat ok"
if ldd "$tmp/usechat-static" | grep -q libchat; then
  echo "install-check: the static build depends on libchat.so" >&2; exit 1
fi
echo "install-check: 1 passed, 0 failed"
