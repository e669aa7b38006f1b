#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Boot floor, side by side in one run (prints figures, asserts nothing):
#   harness: `probegate boot` with a 0 ms probe (warm caches)
#   bare:    the same QEMU argv run directly (PVH vmlinux + qboot)
#   naive:   -machine q35, SeaBIOS, compressed bzImage; same initramfs,
#            command line, devices and virtual clock
# Usage: bench/boot_floor.sh [path/to/probegate] [runs]
set -euo pipefail

pg=${1:-build/release/harness/probegate}
runs=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }

"$pg" boot --kernel debian:6.1 --devices 2 --probe-delay-ms 0 --expect-bound 2 \
  --keep-initramfs --results "$work/prime" >/dev/null 2>&1
dir=$(ls -d "$work"/prime/*/)
mapfile -t bare < <(python3 -c "
import json,sys
a=json.load(open(sys.argv[1]))['qemu_argv']
a[a.index('-initrd')+1]=sys.argv[2]
print('\n'.join(a))" "$dir/result.json" "$dir/initramfs.img")
vmlinuz=$(python3 -c "
import json,sys,os
d=json.load(open(sys.argv[1]))
print(os.path.join(os.path.dirname(d['qemu_argv'][d['qemu_argv'].index('-kernel')+1]),'vmlinuz'))" "$dir/result.json")
# The naive path: q35 + SeaBIOS (QEMU's default firmware) + the bzImage.
mapfile -t naive < <(printf '%s\n' "${bare[@]}" | python3 -c "
import sys
a=[l.rstrip('\n') for l in sys.stdin]
i=a.index('-bios'); del a[i:i+2]
a[a.index('-machine')+1]=a[a.index('-machine')+1].replace('pc,','q35,')
a[a.index('-kernel')+1]=sys.argv[1]
print('\n'.join(a))" "$vmlinuz")

h=0 b=0 n=0
for i in $(seq "$runs"); do
  t0=$(now)
  "$pg" boot --kernel debian:6.1 --devices 2 --probe-delay-ms 0 --expect-bound 2 \
    --results "$work/h$i" >/dev/null 2>&1
  t1=$(now)
  "${bare[@]}" </dev/null >/dev/null 2>&1
  t2=$(now)
  "${naive[@]}" </dev/null >"$work/naive$i.log" 2>&1
  t3=$(now)
  grep -q 'probegate: event=ready' "$work/naive$i.log" || echo "naive boot $i did not reach ready" >&2
  h=$(echo "$h + $(elapsed "$t0" "$t1")" | bc -l)
  b=$(echo "$b + $(elapsed "$t1" "$t2")" | bc -l)
  n=$(echo "$n + $(elapsed "$t2" "$t3")" | bc -l)
done
printf 'probegate boot, 0 ms probe (avg):    %6.2f s\n' "$(echo "$h / $runs" | bc -l)"
printf 'bare QEMU, PVH + qboot (avg):        %6.2f s\n' "$(echo "$b / $runs" | bc -l)"
printf 'naive q35 + SeaBIOS + bzImage (avg): %6.2f s\n' "$(echo "$n / $runs" | bc -l)"
printf 'harness overhead over bare QEMU:     %6.1f %%\n' "$(echo "100 * ($h - $b) / $b" | bc -l)"
printf 'naive / harness:                     %6.2f x\n' "$(echo "$n / $h" | bc -l)"
