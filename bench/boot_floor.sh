#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Boot floor, side by side in one run (prints figures, asserts nothing):
#   restored: `probegate boot` with a 0 ms probe, from its saved state
#   fresh:    the same with --fresh-boot (warm caches)
#   bare:     the fresh boot's QEMU argv run directly (PVH vmlinux + qboot)
#   naive:    -machine q35, SeaBIOS, compressed bzImage; same initramfs,
#             command line, devices and virtual clock
# Writes the figures as JSON to OUT (default: none) for bench/compare.sh.
# Usage: bench/boot_floor.sh [path/to/probegate] [runs] [OUT.json]
set -euo pipefail

pg=${1:-build/release/harness/probegate}
runs=${2:-3}
out=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# shellcheck source=bench/timing.sh
. "$(dirname "$0")/timing.sh"

case_args=(--kernel debian:6.1 --devices 2 --probe-delay-ms 0 --expect-bound 2)
# The state, and a fresh boot's argv (a restore's waits for its stream).
save_group "$pg" "$work/state" "${case_args[@]}"
"$pg" boot "${case_args[@]}" --fresh-boot --keep-initramfs --results "$work/prime" \
  >/dev/null 2>&1
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

restored=() fresh=() bare_s=() naive_s=()
for i in $(seq "$runs"); do
  restored+=("$(secs "$pg" boot "${case_args[@]}" --results "$work/r$i")")
  fresh+=("$(secs "$pg" boot "${case_args[@]}" --fresh-boot --results "$work/f$i")")
  bare_s+=("$(logged_secs "$work/bare$i.log" "${bare[@]}")")
  naive_s+=("$(logged_secs "$work/naive$i.log" "${naive[@]}")")
  # Both run the whole case: the fw_cfg file their argv names is the
  # prime run's, kept in its results by --keep-initramfs.
  for kind in bare naive; do
    grep -q 'probegate: event=ready' "$work/$kind$i.log" || echo "$kind boot $i did not reach ready" >&2
  done
done
r=$(mean "${restored[@]}") f=$(mean "${fresh[@]}") b=$(mean "${bare_s[@]}") n=$(mean "${naive_s[@]}")
printf 'probegate boot, 0 ms probe, restored (avg): %6.2f s\n' "$r"
printf 'probegate boot, 0 ms probe, fresh (avg):    %6.2f s\n' "$f"
printf 'bare QEMU, PVH + qboot (avg):               %6.2f s\n' "$b"
printf 'naive q35 + SeaBIOS + bzImage (avg):        %6.2f s\n' "$n"
printf 'fresh-boot path / bare QEMU:                %6.3f\n' "$(ratio "$f" "$b")"
printf 'naive / restored:                           %6.2f x\n' "$(ratio "$n" "$r")"
printf 'naive / fresh:                              %6.2f x\n' "$(ratio "$n" "$f")"
[ -n "$out" ] || exit 0
figures_json "$out" runs="$runs" zero_probe_restored_s="$r" zero_probe_fresh_s="$f" \
  bare_qemu_s="$b" naive_q35_seabios_s="$n" fresh_over_bare="$(ratio "$f" "$b")" \
  naive_over_restored="$(ratio "$n" "$r")" naive_over_fresh="$(ratio "$n" "$f")"
