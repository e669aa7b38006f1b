#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Guest output is untrusted (issue 7): `probegate parse` reads a console log
# of 10 MiB and one of 1 GiB, side by side, and prints the peak memory (RSS)
# and wall time of each and their ratio. Both logs are a real 6.1 boot
# followed by a flood of what a hostile guest could print: agent facts,
# probe lines of ever new devices, udevd worker lines, terminal escapes and
# C1 controls, invalid UTF-8, and one 100 MiB line without a newline. Memory
# must not grow with the log (ratio near 1); the verdict must not be a pass
# (the parser drops records past its cap and says so). Prints figures,
# asserts nothing.
# Usage: bench/flood.sh [path/to/probegate]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
pg=${1:-build/release/harness/probegate}
[ -x "$pg" ] || { echo "flood: no probegate at $pg (build it, or pass its path)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "flood: needs /usr/bin/time (apt install time)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/probegate-flood-XXXXXX")
trap 'rm -rf "$work"' EXIT

# One block of hostile lines (about 1 MiB), repeated to size.
block="$work/block"
awk 'BEGIN {
  for (i = 0; i < 4000; i++) {
    printf "[    9.%06d] probegate: event=misc name=slowprobe%d\n", i, i
    printf "[    9.%06d] slowprobe 0000:%05d: probe start pid=1 comm=x delay_ms=0\n", i, i
    printf "[    9.%06d] systemd-udevd[1]: d%d: Worker [2] processing SEQNUM=%d killed\n", i, i, i
    printf "[    9.%06d] \033[2J\302\233 31m \377\376 junk %d\n", i, i
  }
}' >"$block"

make_log() { # FILE MIB
  local file=$1 mib=$2 blocks
  cat harness/testdata/console/6.1-sync-kill.log >"$file"
  blocks=$(((mib * 1024 * 1024) / $(stat -c %s "$block")))
  for _ in $(seq 1 "$blocks"); do cat "$block"; done >>"$file"
  # An endless line: 100 MiB with no newline (the 1 GiB log only).
  if [ "$mib" -ge 1024 ]; then head -c $((100 * 1024 * 1024)) /dev/zero | tr '\0' 'x' >>"$file"; fi
}

measure() { # FILE -> "rss_kb wall_s exit verdict"
  local rc=0 rss wall verdict
  /usr/bin/time -f '%M %e' -o "$work/time" "$pg" parse --json "$1" >"$work/json" 2>/dev/null ||
    rc=$?
  read -r rss wall < <(tail -n 1 "$work/time")
  verdict=$(grep -m1 '^  "verdict"' "$work/json" | tr -dc 'a-z:' | cut -d: -f2)
  echo "$rss $wall $rc ${verdict:-?}"
}

make_log "$work/small.log" 10
make_log "$work/big.log" 1024
printf '%-8s %12s %12s %8s %6s %8s\n' log bytes peak_rss_kb wall_s exit verdict
read -r small_rss small_wall small_rc small_verdict < <(measure "$work/small.log")
printf '%-8s %12d %12d %8s %6d %8s\n' 10MiB "$(stat -c %s "$work/small.log")" "$small_rss" \
  "$small_wall" "$small_rc" "$small_verdict"
read -r big_rss big_wall big_rc big_verdict < <(measure "$work/big.log")
printf '%-8s %12d %12d %8s %6d %8s\n' 1GiB "$(stat -c %s "$work/big.log")" "$big_rss" \
  "$big_wall" "$big_rc" "$big_verdict"
awk -v a="$small_rss" -v b="$big_rss" 'BEGIN { printf "peak RSS ratio 1GiB/10MiB: %.2f\n", b / a }'
