#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Boot overhead, measured side by side in one run (not a test: it prints
# figures, it asserts nothing):
#   - one case with a cold cache (fresh PROBEGATE_CACHE: download, build, image)
#   - the same case with a warm cache, and its host-side time before QEMU
#   - bare qemu-system-x86_64 on the same kernel + initramfs + command line
# Usage: bench/boot_overhead.sh [path/to/probegate] [runs]
set -euo pipefail

pg=${1:-build/release/harness/probegate}
runs=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case_args=(--kernel debian:6.1 --devices 2 --probe-delay-ms 4000 --probe-kthread
  --udev-timeout 3 --expect-bound 0 --expect-udev-kill yes --keep-initramfs --fresh-boot)

now() { date +%s.%N; }
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$@"; }

run_case() { # cache results -> prints wall seconds
  local t0 t1
  t0=$(now)
  PROBEGATE_CACHE=$1 "$pg" boot "${case_args[@]}" --results "$2" >/dev/null 2>&1
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

cold_cache=$work/cold-cache
echo "cold cache (download + module build + base image + boot) ..." >&2
cold=$(run_case "$cold_cache" "$work/cold")

warm_total=0 bare_total=0 before_total=0 image_total=0
for i in $(seq "$runs"); do
  warm=$(run_case "$cold_cache" "$work/warm$i")
  dir=$(ls -d "$work/warm$i"/*/)
  before=$(field "$dir/result.json" "['host_before_qemu_s']")
  image=$(field "$dir/result.json" "['stage_s']['image']")
  # Bare QEMU: the exact argv the harness used, with the kept initramfs.
  mapfile -t argv < <(python3 -c "
import json,sys
d=json.load(open(sys.argv[1])); a=d['qemu_argv']
i=a.index('-initrd'); a[i+1]=sys.argv[2]
print('\n'.join(a))" "$dir/result.json" "$dir/initramfs.img")
  t0=$(now)
  "${argv[@]}" </dev/null >/dev/null 2>&1
  t1=$(now)
  bare=$(echo "$t1 - $t0" | bc -l)
  warm_total=$(echo "$warm_total + $warm" | bc -l)
  bare_total=$(echo "$bare_total + $bare" | bc -l)
  before_total=$(echo "$before_total + $before" | bc -l)
  image_total=$(echo "$image_total + $image" | bc -l)
done

printf 'cold-cache boot wall:        %6.2f s\n' "$cold"
printf 'warm-cache boot wall (avg):  %6.2f s over %d runs\n' "$(echo "$warm_total / $runs" | bc -l)" "$runs"
printf 'host time before QEMU (avg): %6.1f ms\n' "$(echo "1000 * $before_total / $runs" | bc -l)"
printf 'warm per-run image build:    %6.1f ms (avg)\n' "$(echo "1000 * $image_total / $runs" | bc -l)"
printf 'bare QEMU, same image (avg): %6.2f s\n' "$(echo "$bare_total / $runs" | bc -l)"
printf 'harness / bare QEMU:         %6.3f\n' "$(echo "$warm_total / $bare_total" | bc -l)"
