#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Seeds an out-of-tree (O=) kernel build for a copy of the source it was built
# from, so the copy's first build is incremental instead of a full one.
#
#   tools/seed-build.sh BUILD_DIR NEW_SOURCE OUT_DIR
#
# BUILD_DIR is a finished `make O=BUILD_DIR` build of the tree its `source`
# link names; NEW_SOURCE holds the same files (tools/kernel-history.sh makes
# it with cp -al, so the mtimes match too). kbuild decides what to rebuild
# from the commands and dependencies recorded in *.cmd and *.d files, which
# name the source by its absolute path (and tools/, objtool's own build, the
# build dir too): both are rewritten, as are the generated Makefile and the
# `source` link. A stale tools/objtool/objtool alone would rebuild everything:
# every object depends on it. Objects are copied, never
# hard-linked: the compiler rewrites its outputs in place. A path the rewrite
# misses only makes kbuild rebuild that target, never trust a stale one, since
# the old and the new source hold the same bytes.
#
# OUT_DIR is made whole or not at all (OUT_DIR.partial, renamed at the end).
set -euo pipefail

if [ $# -ne 3 ] || [ ! -L "$1/source" ] || [ ! -f "$2/Makefile" ]; then
	echo "usage: $0 BUILD_DIR NEW_SOURCE OUT_DIR (BUILD_DIR a finished O= build)" >&2
	exit 2
fi
build=$1
old=$(readlink -f "$build/source")
new=$(readlink -f "$2")
out=$3
old_build=$(readlink -f "$build")
mkdir -p "$(dirname "$out")"
new_build="$(readlink -f "$(dirname "$out")")/$(basename "$out")"
case "$old$new$old_build$new_build" in
*'|'*)
	echo "$0: a source path contains '|'" >&2
	exit 2
	;;
esac
partial="$out.partial"
rm -rf "$partial"
cp -a --reflink=auto "$build" "$partial"
ln -sfn "$new" "$partial/source"
grep -rlF --null --include='*.cmd' --include='*.d' --include=Makefile \
	-e "$old" -e "$old_build" "$partial" |
	xargs -0 --no-run-if-empty sed -i -e "s|$old|$new|g" -e "s|$old_build|$new_build|g"
if grep -rqF --include='*.cmd' --include='*.d' --include=Makefile \
	-e "$old" -e "$old_build" "$partial"; then
	echo "$0: $old or $old_build is still named in $partial" >&2
	exit 3
fi
rm -rf "$out"
mv "$partial" "$out"
