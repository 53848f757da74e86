#!/usr/bin/env bash
# make package-check: the Debian package checked without installing it into
# / (tests/install/package.sh DEB, with B the build directory):
#   lintian reports no error; the files it holds are those expected, with
#   the conffile, the maintainer scripts and the Depends on the libraries
#   the binaries link; every manual page renders with no warning (man -l);
#   the binaries run (--version; --check-config on the packaged config);
#   systemd-analyze verify passes on the unit, which has the settings
#   docs/OPERATIONS.md promises; the example of libchat(3)
#   compiles and links against build/libchat.a; `make install` from source
#   puts everything under PREFIX and a reinstall keeps an edited config.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=${1:?usage: tests/install/package.sh DEB}
B=${B:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# lintian: no E: line (warnings are listed in docs/OPERATIONS.md).
lintian --fail-on error "$deb" > "$tmp/lintian.txt" 2>&1 || true
if grep -q '^E: ' "$tmp/lintian.txt"; then
  fail "lintian reports errors:"; grep '^E: ' "$tmp/lintian.txt" >&2
else
  ok "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.txt" || true) warnings)"
fi

# The files, exactly.
root="$tmp/root"
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$tmp/DEBIAN"
(cd "$root" && find . -type f -o -type l | sed 's|^\.||' | LC_ALL=C sort) > "$tmp/files"
{
  printf '%s\n' /etc/chat-server/chat-server.conf /lib/systemd/system/chat-server.service \
    /usr/bin/chat-client /usr/bin/chat-server
  for f in web/*; do echo "/usr/share/chat-server/$f"; done
  printf '%s\n' /usr/share/doc/chat-server/changelog.Debian.gz /usr/share/doc/chat-server/copyright \
    /usr/share/man/man1/chat-client.1.gz /usr/share/man/man5/chat-server.conf.5.gz \
    /usr/share/man/man8/chat-server.8.gz
} | LC_ALL=C sort > "$tmp/want"
if diff -u "$tmp/want" "$tmp/files" > "$tmp/files.diff"; then
  ok "the package holds the $(wc -l < "$tmp/want") expected files"
else
  fail "the package's files differ from those expected:"; cat "$tmp/files.diff" >&2
fi
if [ "$(cat "$tmp/DEBIAN/conffiles")" = /etc/chat-server/chat-server.conf ] &&
   [ -x "$tmp/DEBIAN/postinst" ] && [ -x "$tmp/DEBIAN/prerm" ] && [ -x "$tmp/DEBIAN/postrm" ] &&
   (cd "$root" && md5sum --quiet -c "$tmp/DEBIAN/md5sums"); then
  ok "conffiles, maintainer scripts and md5sums"
else
  fail "conffiles, maintainer scripts or md5sums wrong"
fi
depends=$(sed -n 's/^Depends: //p' "$tmp/DEBIAN/control")
missing=""
for p in adduser libc6 libuv1 libsqlite3-0 libsodium23 libssl3 libedit2 libhiredis0.14; do
  case ", $depends," in *", $p "*|*", $p,"*) ;; *) missing="$missing $p" ;; esac
done
if [ -z "$missing" ]; then ok "Depends: $depends"; else fail "Depends lacks$missing: $depends"; fi
if grep -qx 'data-dir /var/lib/chat-server' "$root/etc/chat-server/chat-server.conf" &&
   grep -qx 'bind 127.0.0.1' "$root/etc/chat-server/chat-server.conf"; then
  ok "the config sets data-dir /var/lib/chat-server and bind 127.0.0.1"
else
  fail "the packaged config does not set data-dir /var/lib/chat-server and bind 127.0.0.1"
fi

# Manual pages: each renders, and groff has nothing to say about it.
for page in "$root"/usr/share/man/man*/*.gz "$B/man/libchat.3"; do
  name=$(basename "$page" .gz)
  out=$(MANWIDTH=80 man -l --warnings -E UTF-8 "$page" 2>&1 >/dev/null) || true
  if [ -n "$out" ]; then fail "man -l $name warns: $out"
  elif ! MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q '^NAME'; then fail "man -l $name renders no NAME"
  else ok "man -l $name renders without warnings"; fi
done

# The binaries run from the package.
version=$(sed -n 's/^Version: \(.*\)-[^-]*$/\1/p' "$tmp/DEBIAN/control")
if [ "$("$root/usr/bin/chat-server" --version)" = "chat-server $version" ] &&
   "$root/usr/bin/chat-client" --version | grep -q "$version"; then
  ok "chat-server and chat-client --version: $version"
else
  fail "--version of the packaged binaries does not say $version"
fi
if out=$("$root/usr/bin/chat-server" --check-config --config "$root/etc/chat-server/chat-server.conf") &&
   printf '%s\n' "$out" | grep -qx 'data-dir *\/var\/lib\/chat-server' &&
   printf '%s\n' "$out" | grep -qx 'bind *127\.0\.0\.1'; then
  ok "chat-server --check-config accepts the packaged config (data-dir /var/lib/chat-server)"
else
  fail "chat-server --check-config refuses the packaged config, or it lacks data-dir /var/lib/chat-server"
fi

# The unit: systemd-analyze verify checks its syntax, that its commands
# exist and that its Documentation= pages resolve. Here ExecStart is
# pointed at the extracted binary and man at the extracted pages: this
# machine need not run systemd (nor have the package installed).
mkdir "$tmp/unit"
sed "s|=/usr/bin/chat-server |=$root/usr/bin/chat-server |" \
  "$root/lib/systemd/system/chat-server.service" > "$tmp/unit/chat-server.service"
if out=$(MANPATH="$root/usr/share/man" systemd-analyze verify "$tmp/unit/chat-server.service" 2>&1) &&
   [ -z "$out" ]; then
  ok "systemd-analyze verify chat-server.service"
else
  fail "systemd-analyze verify: $out"
fi

unit="$root/lib/systemd/system/chat-server.service" missing=""
# shellcheck disable=SC2016 # $MAINPID is systemd's, not the shell's
for line in 'ExecStart=/usr/bin/chat-server --config /etc/chat-server/chat-server.conf' \
            'ExecReload=/bin/kill -HUP $MAINPID' User=chat-server StateDirectory=chat-server \
            ProtectSystem=strict NoNewPrivileges=yes ProtectHome=yes PrivateTmp=yes \
            Restart=on-failure; do
  grep -qxF "$line" "$unit" || missing="$missing '$line'"
done
if [ -z "$missing" ]; then ok "the unit runs the packaged config as chat-server, hardened"
else fail "the unit lacks$missing"; fi

# libchat(3)'s example is a program that compiles and links.
sed -n '/^\.\\" example-begin/,/^\.\\" example-end/p' man/libchat.3.in |
  sed -e '/^\./d' -e 's/\\e/\\/g' -e 's/\\-/-/g' > "$tmp/example.c"
if cc -Wall -Wextra -Werror -Iinclude "$tmp/example.c" "$B/libchat.a" -lssl -lcrypto \
     -o "$tmp/example" 2> "$tmp/example.err"; then
  ok "libchat(3)'s example compiles and links"
else
  fail "libchat(3)'s example does not build:"; cat "$tmp/example.err" >&2
fi

# make install from source: PREFIX and DESTDIR, then a reinstall over an
# edited config.
inst="$tmp/inst"
make --no-print-directory -s install PREFIX=/opt/chat DESTDIR="$inst" > /dev/null
missing=""
for f in bin/chat-server bin/chat-client share/chat-server/web/index.html etc/chat-server/chat-server.conf \
         share/man/man1/chat-client.1 share/man/man3/libchat.3 share/man/man5/chat-server.conf.5 \
         share/man/man8/chat-server.8 lib/systemd/system/chat-server.service lib/libchat.so include/chat.h; do
  [ -e "$inst/opt/chat/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ] && grep -qx 'ExecStart=/opt/chat/bin/chat-server --config /opt/chat/etc/chat-server/chat-server.conf' \
     "$inst/opt/chat/lib/systemd/system/chat-server.service"; then
  ok "make install PREFIX=/opt/chat: every file, the unit with its paths"
else
  fail "make install PREFIX=/opt/chat: missing$missing, or the unit's ExecStart is wrong"
fi
conf="$inst/opt/chat/etc/chat-server/chat-server.conf"
echo "port 9999" >> "$conf"
make --no-print-directory -s install PREFIX=/opt/chat DESTDIR="$inst" > /dev/null
if tail -n 1 "$conf" | grep -qx 'port 9999' && [ -e "$conf.example" ]; then
  ok "a reinstall keeps the edited config and writes chat-server.conf.example"
else
  fail "a reinstall overwrote the edited config or wrote no chat-server.conf.example"
fi

echo "package-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
