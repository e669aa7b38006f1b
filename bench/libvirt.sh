#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The libvirt backend's cost over the qemu backend (issue 14), measured
# side by side in one run on warm caches (prints figures, asserts nothing):
# one knob case (2 devices, 4000 ms probes, udev timeout 3) booted fresh on
# the qemu backend and on libvirt's embedded driver, interleaved; and where
# libvirt's extra time goes, from result.json's stage_s (connecting, the
# domain's creation, its destruction). Both backends boot afresh: libvirt
# has no saved states.
# Writes the figures as JSON to OUT (default: stdout) for bench/compare.sh.
# Usage: bench/libvirt.sh [path/to/probegate] [runs] [OUT.json]
set -euo pipefail

pg=${1:-build/release/harness/probegate}
runs=${2:-3}
out=${3:-/dev/stdout}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

knob_case=(--kernel debian:6.1 --devices 2 --probe-delay-ms 4000 --probe-kthread
  --udev-timeout 3 --expect-bound 0 --expect-udev-kill yes --fresh-boot)

# shellcheck source=bench/timing.sh
. "$(dirname "$0")/timing.sh"

# Warm every cache the runs use, libvirt's capabilities probe included.
"$pg" boot "${knob_case[@]}" --results "$work/warm" >/dev/null 2>&1
"$pg" boot "${knob_case[@]}" --backend libvirt --results "$work/warm" >/dev/null 2>&1

qemu=() libvirt=()
for i in $(seq "$runs"); do
  qemu+=("$(secs "$pg" boot "${knob_case[@]}" --results "$work/q$i")")
  libvirt+=("$(secs "$pg" boot "${knob_case[@]}" --backend libvirt --results "$work/l$i")")
done

python3 - "$out" "$work" "$runs" "${qemu[@]}" "${libvirt[@]}" <<'PY'
import glob, json, os, sys
out, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
walls = list(map(float, sys.argv[4:]))
qemu, libvirt = walls[:runs], walls[runs:]
def mean(v): return sum(v) / len(v)
def stages(prefix):
    found = {}
    for path in glob.glob(os.path.join(work, prefix + "*", "*", "result.json")):
        for k, v in json.load(open(path))["stage_s"].items():
            found.setdefault(k, []).append(v)
    return {k: round(mean(v), 3) for k, v in sorted(found.items())}
figures = {
    "runs": runs,
    "knob_case_qemu_s": round(mean(qemu), 3),
    "knob_case_libvirt_s": round(mean(libvirt), 3),
    "libvirt_over_qemu": round(mean(libvirt) / mean(qemu), 3),
    "qemu_stage_s": stages("q"),
    "libvirt_stage_s": stages("l"),
}
with open(out, "w") as f:
    json.dump(figures, f, indent=2)
    f.write("\n")
PY
