#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A small kernel history made for bisect tests (issue 6): a git repository of
# a kernel source tree with five commits, the third of which plants a real
# regression in the async-probe path: the module loader ignores the
# per-module `async_probe` parameter, so a slow probe loaded with
# `slowprobe.async_probe=1` runs synchronously again and udev's kill takes its
# devices. The others touch documentation only.
#
#   tools/kernel-history.sh KERNEL_SOURCE_DIR OUT_DIR
#
# Prints "good <hash>", "planted <hash>" and "bad <hash>". OUT_DIR is made
# whole or not at all (built under OUT_DIR.partial, renamed at the end). The
# source is hard-linked, never written to: git and sed replace files.
set -euo pipefail

if [ $# -ne 2 ] || [ ! -f "$1/Makefile" ] || [ ! -f "$1/kernel/module/main.c" ]; then
	echo "usage: $0 KERNEL_SOURCE_DIR OUT_DIR (a 6.x tree with kernel/module/main.c)" >&2
	exit 2
fi
src=$1
out=$2
partial="$out.partial"
rm -rf "$partial"
mkdir -p "$(dirname "$out")"
cp -al "$src" "$partial"
cd "$partial"
git init -q
git config user.name "probegate test"
git config user.email "probegate@localhost"
git config gc.auto 0
# Debian's linux-source ships a .gitignore that ignores everything (/*): add
# with --force (the tree is clean: nothing built in it).
commit() {
	git add -A --force
	GIT_AUTHOR_DATE="2025-01-01T00:00:0$1Z" GIT_COMMITTER_DATE="2025-01-01T00:00:0$1Z" \
		git commit -q -m "$2"
	git rev-parse HEAD
}
good=$(commit 0 "base: $(basename "$src")")
# sed -i writes a new file, so the hard-linked source keeps its copy.
echo "probegate history: a harmless change" >> README
commit 1 "README: a harmless change" > /dev/null
# 6.1 parses it with strtobool(), later kernels with kstrtobool().
needle='if (k\?strtobool(val, &mod->async_probe_requested))'
grep -q "$needle" kernel/module/main.c || {
	echo "$0: kernel/module/main.c does not parse async_probe as 6.x does" >&2
	exit 3
}
sed -i "s/$needle/if (false)/" kernel/module/main.c
grep -q 'if (false)' kernel/module/main.c
planted=$(commit 2 "module: ignore async_probe (planted regression)")
echo "probegate history: another harmless change" >> README
commit 3 "README: another harmless change" > /dev/null
echo "probegate history: a third harmless change" >> CREDITS
bad=$(commit 4 "CREDITS: a third harmless change")
cd - > /dev/null
rm -rf "$out"
mv "$partial" "$out"
echo "good $good"
echo "planted $planted"
echo "bad $bad"
