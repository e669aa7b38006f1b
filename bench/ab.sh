#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Two probegate binaries, interleaved run by run on warm caches, so that a
# machine whose speed drifts from hour to hour (a shared VM) weighs on both
# alike (prints figures, asserts nothing):
#   - one knob case (2 devices, 4000 ms probes, udev timeout 3), restored;
#   - udev's real default (180 s) against two 200 s probes, restored;
#   - suites/knobs.yaml --jobs 2, restored.
# Each binary keeps its own saved states (their keys differ when the guest
# does), made before the timed runs. Writes JSON to OUT (default: stdout)
# with each figure for A and B and B/A.
# Usage: bench/ab.sh A B [runs] [OUT.json]
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 A B [runs] [OUT.json]" >&2; exit 2; }
a=$1 b=$2 runs=${3:-3} out=${4:-/dev/stdout}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

suite=(run "$here/suites/knobs.yaml" --jobs 2)

# shellcheck source=bench/timing.sh
. "$(dirname "$0")/timing.sh"

# Twice: the first pass makes the states, the second (their files now more
# than 2 s old) hashes them once more and remembers it in their hash memos,
# as any later run would (docs/CONTRACTS.md "What the cache trusts").
for pass in 1 2; do
  for pg in "$a" "$b"; do
    "$pg" "${suite[@]}" --results "$work/warm$pass" >/dev/null 2>&1
    save_group "$pg" "$work/warm$pass" "${default_timeout[@]}"
  done
done

declare -A t
for i in $(seq "$runs"); do
  for side in a b; do
    pg=${!side}
    t[knob_$side]+=" $(secs "$pg" boot "${knob_case[@]}" --results "$work/$side$i")"
    t[long_$side]+=" $(secs "$pg" boot "${default_timeout[@]}" --results "$work/$side$i")"
    t[suite_$side]+=" $(secs "$pg" "${suite[@]}" --results "$work/$side$i")"
  done
done

figures=(runs="$runs")
for figure in knob long suite; do
  # shellcheck disable=SC2086 # word lists of seconds
  ma=$(mean ${t[${figure}_a]}) mb=$(mean ${t[${figure}_b]})
  figures+=("${figure}_a_s=$ma" "${figure}_b_s=$mb" "${figure}_b_over_a=$(ratio "$mb" "$ma")")
done
figures_json "$out" "${figures[@]}"
