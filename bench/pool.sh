#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A pool of libvirt hosts (issue 14, `run --hosts`), measured on this one
# machine with real daemons (tools/libvirt-hosts.sh, needs root); prints
# figures, asserts nothing:
# - suites/knobs.yaml on 1 host with 2 slots against 2 hosts with 1 slot
#   each, interleaved, warm;
# - the upload cost of a cold host: the first run's bytes and seconds
#   sent to an empty storage pool, against a second run that sends none.
# Writes the figures as JSON to OUT (default: stdout) for bench/compare.sh.
# Usage: bench/pool.sh [path/to/probegate] [runs] [OUT.json]
set -euo pipefail

pg=$(realpath "${1:-build/release/harness/probegate}")
runs=${2:-1}
out=${3:-/dev/stdout}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pg-bench-pool-XXXXXX)
cleanup() {
  "$here/tools/libvirt-hosts.sh" stop "$work/hosts" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/timing.sh
. "$(dirname "$0")/timing.sh"

mapfile -t daemons < <("$here/tools/libvirt-hosts.sh" start "$work/hosts" 2)
uri1=$(awk '{ print $2 }' <<<"${daemons[0]}")
uri2=$(awk '{ print $2 }' <<<"${daemons[1]}")
cat >"$work/one-host.yaml" <<YAML
hosts:
  - {name: one, uri: "$uri1", slots: 2, pool_dir: "$work/pool-one"}
YAML
cat >"$work/two-hosts.yaml" <<YAML
hosts:
  - {name: one, uri: "$uri1", slots: 1, pool_dir: "$work/pool-one"}
  - {name: two, uri: "$uri2", slots: 1, pool_dir: "$work/pool-two"}
YAML
suite=$here/suites/knobs.yaml
one_case=(--filter knobs/sync --hosts "$work/one-host.yaml")

# Cold: host one's pool is empty, then warm (the same files are there).
cold=$(secs "$pg" run "$suite" "${one_case[@]}" --results "$work/cold")
warm=$(secs "$pg" run "$suite" "${one_case[@]}" --results "$work/warm")
# Host two's pool gets its files once too, before the timed runs.
"$pg" run "$suite" --filter knobs/sync --hosts "$work/two-hosts.yaml" \
  --results "$work/prime" >/dev/null 2>&1 || true

one=() two=()
for i in $(seq "$runs"); do
  one+=("$(secs "$pg" run "$suite" --hosts "$work/one-host.yaml" --results "$work/one$i")")
  two+=("$(secs "$pg" run "$suite" --hosts "$work/two-hosts.yaml" --results "$work/two$i")")
done

python3 - "$out" "$work" "$runs" "$cold" "$warm" "${one[@]}" "${two[@]}" <<'PY'
import glob, json, os, sys
out, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
cold, warm = float(sys.argv[4]), float(sys.argv[5])
walls = list(map(float, sys.argv[6:]))
one, two = walls[:runs], walls[runs:]
def mean(v): return sum(v) / len(v)
def uploads(prefix):
    sent, secs = 0, 0.0
    for path in glob.glob(os.path.join(work, prefix, "*", "**", "result.json"), recursive=True):
        r = json.load(open(path))
        sent += r.get("uploaded_bytes", 0)
        secs += r["stage_s"].get("libvirt_upload", 0)
    return sent, round(secs, 3)
cold_bytes, cold_upload_s = uploads("cold")
warm_bytes, warm_upload_s = uploads("warm")
figures = {
    "runs": runs,
    "knobs_1_host_2_slots_s": round(mean(one), 3),
    "knobs_2_hosts_1_slot_s": round(mean(two), 3),
    "two_hosts_over_one": round(mean(two) / mean(one), 3),
    "cold_host_one_case_s": round(cold, 3),
    "warm_host_one_case_s": round(warm, 3),
    "cold_uploaded_bytes": cold_bytes,
    "cold_upload_s": cold_upload_s,
    "warm_uploaded_bytes": warm_bytes,
    "warm_upload_s": warm_upload_s,
}
with open(out, "w") as f:
    json.dump(figures, f, indent=2)
    f.write("\n")
PY
