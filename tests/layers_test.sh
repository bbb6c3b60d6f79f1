#!/bin/sh
# The daemon's layers (docs/architecture.md, "Layers"), checked on the
# built objects: which functions each object calls (nm's undefined symbols)
# against which layer defines them.
#
#   capture  calls nothing of analysis or output
#   analysis calls nothing of output
#   output   calls nothing of capture
#   registry calls nothing of watch.c, control.c or follow.c (it hands its
#            events to the loop: struct registry_events)
#
# A rule broken prints the object, the function and the layer it belongs
# to, and fails.
set -eu
top=${abs_top_builddir:?}
command -v nm >/dev/null || { echo "SKIP: no nm"; exit 77; }
objdir=$top/daemon
ls "$objdir"/core/dogslowd-main.o >/dev/null 2>&1 || {
    echo "FAIL: no daemon objects under $objdir (build first)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

defined() { # objects... -> the global functions they define
    nm --defined-only -g "$@" 2>/dev/null | awk 'NF == 3 && $2 == "T" { print $3 }' | sort -u
}
for layer in core capture analysis output; do
    defined "$objdir/$layer"/dogslowd-*.o >"$tmp/$layer"
    [ -s "$tmp/$layer" ] || { echo "FAIL: layer $layer defines nothing"; exit 1; }
done
for part in watch control follow; do
    defined "$objdir/core/dogslowd-$part.o" >"$tmp/core-$part"
done

fail=0
# check OBJECT-GLOB FORBIDDEN...: no object of the glob calls a function
# the forbidden lists define.
check() {
    glob=$1; shift
    for o in $glob; do
        nm -u "$o" | awk '{ print $2 }' | sort -u >"$tmp/uses"
        for f in "$@"; do
            bad=$(comm -12 "$tmp/uses" "$tmp/$f")
            for s in $bad; do
                echo "FAIL: $(basename "$o" .o | sed 's/^dogslowd-//') calls $s ($f)"
                fail=1
            done
        done
    done
}
check "$objdir/capture/dogslowd-*.o" analysis output
check "$objdir/analysis/dogslowd-*.o" output
check "$objdir/output/dogslowd-*.o" capture
check "$objdir/core/dogslowd-registry.o" core-watch core-control core-follow

# The rules must see calls at all: core's main calls every layer.
nm -u "$objdir/core/dogslowd-main.o" | awk '{ print $2 }' | sort -u >"$tmp/uses"
for layer in capture analysis output; do
    if [ -z "$(comm -12 "$tmp/uses" "$tmp/$layer")" ]; then
        echo "FAIL: main calls nothing of $layer: the check sees no calls"; fail=1
    fi
done
for layer in core capture analysis output; do
    echo "$layer: $(wc -l <"$tmp/$layer") functions"
done
[ $fail -eq 0 ] && echo "PASS: layers keep to their rules"
exit $fail
