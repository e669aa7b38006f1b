#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Boot once, restore per case (issue 13), measured side by side in one run
# on warm caches (prints figures, asserts nothing):
#   - one knob case (2 devices, 4000 ms probes, udev timeout 3), restored
#     and fresh, interleaved;
#   - udev's real default (180 s) against two 200 s probes, restored;
#   - suites/knobs.yaml --jobs 2, restored and fresh.
# Writes the figures as JSON to OUT (default: stdout) for bench/compare.sh.
# Usage: bench/restore.sh [path/to/probegate] [runs] [OUT.json]
set -euo pipefail

pg=${1:-build/release/harness/probegate}
runs=${2:-3}
out=${3:-/dev/stdout}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# shellcheck source=bench/timing.sh
. "$(dirname "$0")/timing.sh"

# Warm every cache the runs use, saved states included.
"$pg" run "$here/suites/knobs.yaml" --jobs 2 --results "$work/warm" >/dev/null 2>&1
save_group "$pg" "$work/warm" "${default_timeout[@]}"

restored=() fresh=() long=()
for i in $(seq "$runs"); do
  restored+=("$(secs "$pg" boot "${knob_case[@]}" --results "$work/r$i")")
  fresh+=("$(secs "$pg" boot "${knob_case[@]}" --fresh-boot --results "$work/f$i")")
  long+=("$(secs "$pg" boot "${default_timeout[@]}" --results "$work/l$i")")
done
suite_restored=$(secs "$pg" run "$here/suites/knobs.yaml" --jobs 2 --results "$work/sr")
suite_fresh=$(secs "$pg" run "$here/suites/knobs.yaml" --jobs 2 --fresh-boot --results "$work/sf")

r=$(mean "${restored[@]}") f=$(mean "${fresh[@]}")
figures_json "$out" runs="$runs" knob_case_restored_s="$r" knob_case_fresh_s="$f" \
  default_timeout_restored_s="$(mean "${long[@]}")" \
  knobs_suite_restored_s="$suite_restored" knobs_suite_fresh_s="$suite_fresh" \
  fresh_over_restored="$(ratio "$f" "$r")" \
  suite_fresh_over_restored="$(ratio "$suite_fresh" "$suite_restored")"
