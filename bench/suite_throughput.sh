#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A 16-case suite at --jobs 1 and at --jobs 2, side by side in one run
# (prints figures, asserts nothing). Caches are warmed first.
# Usage: bench/suite_throughput.sh [path/to/probegate]
set -euo pipefail

pg=${1:-build/release/harness/probegate}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/sixteen.yaml" <<'YAML'
suite: sixteen
defaults: {kernel: "debian:6.1"}
matrix:
  devices: [1, 2]
  probe_delay_ms: [0, 1000, 2000, 4000]
  udev_timeout: [3, 180]
YAML
"$pg" boot --kernel debian:6.1 --devices 1 --results "$work/warm" >/dev/null 2>&1
now() { date +%s.%N; }
t0=$(now)
"$pg" run "$work/sixteen.yaml" --jobs 1 --results "$work/j1" >/dev/null 2>&1
t1=$(now)
"$pg" run "$work/sixteen.yaml" --jobs 2 --results "$work/j2" >/dev/null 2>&1
t2=$(now)
j1=$(echo "$t1 - $t0" | bc -l)
j2=$(echo "$t2 - $t1" | bc -l)
printf '16 cases, --jobs 1: %6.1f s\n' "$j1"
printf '16 cases, --jobs 2: %6.1f s\n' "$j2"
printf 'speed-up:           %6.2f x\n' "$(echo "$j1 / $j2" | bc -l)"
