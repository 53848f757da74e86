#!/bin/sh
# packaging/mkdeb.sh ROOT VERSION OUT.deb -- called by `make deb` once
# `make install-server DESTDIR=ROOT PREFIX=/usr` has filled ROOT (a
# directory named debian/chat-server, under which dpkg-shlibdeps runs).
# Makes ROOT what Debian policy
# wants (stripped binaries, gzipped manual pages and changelog, copyright,
# modes), writes ROOT/DEBIAN (control with the Depends of the libraries the
# binaries link, conffiles, maintainer scripts, md5sums) and builds OUT.deb
# with dpkg-deb, every file owned by root. Reproducible: file times are
# clamped to the changelog's date (SOURCE_DATE_EPOCH).
set -eu
root=$1 version=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
doc="$root/usr/share/doc/chat-server"

SOURCE_DATE_EPOCH=$(date -d "$(sed -n 's/^ -- .*>  //p' "$here/debian/changelog" | head -n 1)" +%s)
export SOURCE_DATE_EPOCH

# What dh_strip does: the debug information stays in the build tree.
for b in "$root"/usr/bin/*; do
  strip --remove-section=.comment --remove-section=.note --strip-unneeded "$b"
done
gzip -9nf "$root"/usr/share/man/man*/*
install -d "$doc"
install -m 644 "$here/debian/copyright" "$doc/copyright"
gzip -9n < "$here/debian/changelog" > "$doc/changelog.Debian.gz"
chmod 644 "$doc/changelog.Debian.gz"

install -d -m 755 "$root/DEBIAN" # dpkg-shlibdeps finds the package's root by it
# Depends: the packages of the shared libraries the binaries link (libuv1,
# libsqlite3-0, libsodium23, libssl3, libedit2, libhiredis0.14, libc6) with the versions
# their symbols need, and adduser for postinst.
pkgdir=$(dirname "$(dirname "$root")")
printf 'Source: chat-server\n\nPackage: chat-server\nArchitecture: any\n' > "$pkgdir/debian/control"
shlibs=$(cd "$pkgdir" && dpkg-shlibdeps -O -e"${root#"$pkgdir"/}"/usr/bin/chat-server \
           -e"${root#"$pkgdir"/}"/usr/bin/chat-client | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "mkdeb: dpkg-shlibdeps found no libraries" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$(dpkg --print-architecture)|" \
    -e "s|@INSTALLED_SIZE@|$size|" -e "s|@DEPENDS@|adduser, $shlibs|" \
    "$here/debian/control.in" > "$root/DEBIAN/control"
install -m 644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 755 "$here/debian/$s" "$root/DEBIAN/$s"; done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
   xargs md5sum) > "$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/md5sums"

find "$root" -type d -exec chmod 755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "wrote $out"
