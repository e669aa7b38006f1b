# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
# Sourced by the bench scripts: wall time of a command, a mean, and the
# cases the restore benches time.

# One knob case (2 devices, 4000 ms probes, udev timeout 3), and udev's
# real default (180 s) against two 200 s probes (431 guest s).
# shellcheck disable=SC2034 # used by the scripts that source this
knob_case=(--kernel debian:6.1 --devices 2 --probe-delay-ms 4000 --probe-kthread
  --udev-timeout 3 --expect-bound 0 --expect-udev-kill yes)
# shellcheck disable=SC2034
default_timeout=(--kernel debian:6.1 --devices 2 --probe-delay-ms 200000
  --udev-timeout 180)

# PROBEGATE RESULTS ARGS...: `probegate boot` saves a group at its second
# sight, so boot it twice for the timed runs to restore
# (docs/CONTRACTS.md "Boot once, restore per case").
save_group() {
  local pg=$1 results=$2
  shift 2
  "$pg" boot "$@" --results "$results" >/dev/null 2>&1
  "$pg" boot "$@" --results "$results" >/dev/null 2>&1
}

now() { date +%s.%N; }
logged_secs() { # LOG command... -> wall seconds, the command's output in LOG
  local log=$1 t0
  shift
  t0=$(now)
  "$@" </dev/null >"$log" 2>&1 || true
  echo "$(now) - $t0" | bc -l
}
secs() { logged_secs /dev/null "$@"; } # command... -> wall seconds

mean() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print(sum(v)/len(v))' "$@"; }
ratio() { echo "$1 / $2" | bc -l; } # A B -> A/B
# figures_json OUT NAME=VALUE...: the figures as one JSON object, numbers
# rounded to 3 places, for bench/compare.sh.
figures_json() {
  python3 - "$@" <<'PY'
import json, sys
figures = {}
for pair in sys.argv[2:]:
    name, value = pair.split("=", 1)
    number = round(float(value), 3)
    figures[name] = int(number) if number.is_integer() else number
with open(sys.argv[1], "w") as f:
    json.dump(figures, f, indent=2)
    f.write("\n")
PY
}
