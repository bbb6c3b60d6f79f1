#!/bin/sh
# 'make install' into a temporary DESTDIR puts every part in its place, and
# a program outside the tree (examples/slow_worker.c, copied away) builds
# against the installed library with nothing but
# 'pkg-config --cflags --libs libdogslow', and runs with it.
# Run by 'make check' with the install directories in the environment.
set -eu
: "${abs_top_builddir:?run by make check}"
tmp=$(mktemp -d /tmp/dogslow-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

fail() { echo "FAIL: $*" >&2; exit 1; }

cd "$abs_top_builddir"
${MAKE:-make} install DESTDIR="$root" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install"; }

for f in "$sbindir/dogslowd" "$bindir/dogslowctl" "$libdir/libdogslow.so" \
         "$includedir/dogslow.h" "$libdir/pkgconfig/libdogslow.pc" \
         "$sysconfdir/dogslow/dogslow.conf" \
         "$systemdsystemunitdir/dogslowd.service" "$systemdsystemunitdir/dogslowd.socket" \
         "$sysusersdir/dogslow.conf" "$tmpfilesdir/dogslow.conf" \
         "$mandir/man1/dogslowctl.1" "$mandir/man3/libdogslow.3" \
         "$mandir/man5/dogslow.conf.5" "$mandir/man8/dogslowd.8"; do
    [ -e "$root$f" ] || fail "not installed: $f"
    echo "installed: $f"
done
[ -x "$root$sbindir/dogslowd" ] || fail "dogslowd is not executable"
# The unit runs the installed daemon.
grep -q "^ExecStart=$sbindir/dogslowd " "$root$systemdsystemunitdir/dogslowd.service" ||
    fail "ExecStart does not name $sbindir/dogslowd"
# No library internals leak into the public header's includes.
grep -q '#include "' "$root$includedir/dogslow.h" && fail "dogslow.h includes private headers"

mkdir "$tmp/elsewhere"
cp "$TOP_SRCDIR/examples/slow_worker.c" "$tmp/elsewhere/"
export PKG_CONFIG_SYSROOT_DIR="$root"
export PKG_CONFIG_LIBDIR="$root$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs libdogslow) || fail "pkg-config libdogslow"
echo "pkg-config --cflags --libs libdogslow: $flags"
# shellcheck disable=SC2086
${INSTALL_TEST_CC:-cc} -o "$tmp/elsewhere/slow_worker" "$tmp/elsewhere/slow_worker.c" $flags ||
    fail "cannot build against the installed library"
# It runs against the installed library (no daemon: registration fails,
# the request runs unwatched).
out=$(LD_LIBRARY_PATH="$root$libdir" ldd "$tmp/elsewhere/slow_worker") || fail ldd
echo "$out" | grep -q "libdogslow.so.0 => $root$libdir/libdogslow.so.0" ||
    fail "not linked against the installed library: $out"
echo "install test: OK"
