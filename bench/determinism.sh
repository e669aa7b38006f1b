#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Determinism of the knob suite (issue 7): runs `probegate run
# suites/knobs.yaml` N times on debian:6.1 and N times on debian:6.12 (a copy
# of the suite with `kernel: debian:6.12`) and prints, per kernel and case:
# the distinct cells seen (verdict, devices_bound, udev_worker_killed), the
# flips (runs whose cell differs from the case's first run) and the spread of
# the udev kill time (outcome.udev_kills[].guest_time_s in result.json).
# The target is zero flips. Prints figures, asserts nothing.
# Usage: bench/determinism.sh [N (default 20)] [path/to/probegate]
# The full run (N=20, 2 x 20 suite runs of 8 boots) takes about 30 minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

runs=${1:-20}
pg=${2:-}
if [ -z "$pg" ]; then
  pg=build/release/harness/probegate
  if [ ! -x "$pg" ]; then
    # The release preset's directory may be busy with another build: a
    # directory of our own, configured like the release preset.
    echo "determinism: building probegate (release flags) into build/fuzz-rel" >&2
    cmake -S . -B build/fuzz-rel -G Ninja -DCMAKE_CXX_COMPILER=g++-12 \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROBEGATE_WERROR=ON >/dev/null
    cmake --build build/fuzz-rel --target probegate >/dev/null
    pg=build/fuzz-rel/harness/probegate
  fi
fi

work=results/determinism-$(date -u +%Y%m%d-%H%M%S)-$$
mkdir -p "$work"
sed 's/^  kernel: debian:6\.1$/  kernel: debian:6.12/' suites/knobs.yaml >"$work/knobs-6.12.yaml"
grep -q '^  kernel: debian:6\.12$' "$work/knobs-6.12.yaml" || {
  echo "determinism: suites/knobs.yaml has no '  kernel: debian:6.1' default to replace" >&2
  exit 2
}

declare -A suite_of=([6.1]=suites/knobs.yaml [6.12]=$work/knobs-6.12.yaml)
started=$(date +%s)
for kernel in 6.1 6.12; do
  for i in $(seq "$runs"); do
    t0=$(date +%s)
    status=0
    "$pg" run "${suite_of[$kernel]}" --results "$work/$kernel" >"$work/$kernel-$i.out" 2>&1 ||
      status=$?
    session=$(sed -n 's/^results: //p' "$work/$kernel-$i.out" | tail -1)
    echo "$session" >>"$work/$kernel.sessions"
    printf 'determinism: debian:%s run %d/%d: exit %d, %d s, %s\n' "$kernel" "$i" "$runs" \
      "$status" "$(($(date +%s) - t0))" "${session:-no results dir}" >&2
  done
done
wall=$(($(date +%s) - started))

python3 - "$work" "$runs" "$wall" <<'EOF'
import json, pathlib, sys

work, runs, wall = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
total_flips = 0
for kernel in ("6.1", "6.12"):
    sessions = [l for l in (work / f"{kernel}.sessions").read_text().splitlines() if l]
    cells, kills, missing = {}, {}, 0
    for session in sessions:
        summary = pathlib.Path(session) / "summary.json"
        if not summary.exists():
            missing += 1
            continue
        for case in json.loads(summary.read_text())["cases"]:
            for run in case.get("runs") or [{"verdict": case["verdict"]}]:
                cell = (run["verdict"], run.get("devices_bound"), run.get("udev_worker_killed"))
                cells.setdefault(case["id"], []).append(cell)
                result = pathlib.Path(run.get("dir", "")) / "result.json"
                if run.get("dir") and result.exists():
                    outcome = json.loads(result.read_text())["outcome"]
                    times = [k["guest_time_s"] for k in outcome["udev_kills"]
                             if k.get("loading_module")] or \
                            [k["guest_time_s"] for k in outcome["udev_kills"]]
                    times = [t for t in times if t is not None]
                    if times:
                        kills.setdefault(case["id"], []).append(min(times))
    print(f"\ndebian:{kernel}: {len(sessions)} suite runs ({missing} without summary.json)")
    print(f"  {'case':<32} {'runs':>4} {'cells':>5} {'flips':>5}  {'first cell':<24} "
          f"{'udev kill (guest s) min..max, spread':<36}")
    flips_here = 0
    for case_id, seen in sorted(cells.items()):
        flips = sum(1 for c in seen if c != seen[0])
        flips_here += flips
        first = f"{seen[0][0]} bound={seen[0][1]} killed={'yes' if seen[0][2] else 'no'}"
        t = kills.get(case_id)
        spread = (f"{min(t):.6f}..{max(t):.6f}, {max(t) - min(t):.6f} ({len(t)} runs)"
                  if t else "no kill")
        print(f"  {case_id:<32} {len(seen):>4} {len(set(seen)):>5} {flips:>5}  {first:<24} {spread}")
        if len(set(seen)) > 1:
            for cell in sorted(set(seen), key=str):
                print(f"      {seen.count(cell):>3} x {cell}")
    print(f"  flips on debian:{kernel}: {flips_here}")
    total_flips += flips_here
print(f"\nverdict flips in all: {total_flips} ({runs} runs per kernel, {wall} s; results in {work})")
EOF
