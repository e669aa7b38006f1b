#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The harness killed at random moments of a suite (issue 7): N times each
# for SIGINT, SIGTERM and SIGKILL, `probegate run suites/smoke.yaml --jobs 2`
# is started, signalled after a random 0.2-18 s (the suite takes about 20 s
# on 2 cores), and then checked:
#   - QEMU left running: any qemu-system-x86_64 still there 5 s after
#     probegate ended (PR_SET_PDEATHSIG must take it down even after SIGKILL);
#   - result files: every result.json, summary.json and junit.xml present
#     must be whole (parse); a *.partial or *.tmp.* file is counted apart
#     (only SIGKILL can leave one: nothing can clean up after it);
#   - the session: INCOMPLETE must stay unless the suite had finished;
#   - the exit status: 130 for SIGINT and SIGTERM, 137 for SIGKILL.
# Prints the counts per signal. Run it on an otherwise idle machine: every
# qemu-system-x86_64 on the machine counts as left running.
# Usage: bench/signals.sh [N (default 50)] [path/to/probegate]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
runs=${1:-50}
pg=${2:-build/release/harness/probegate}
[ -x "$pg" ] || { echo "signals: no probegate at $pg (build it, or pass its path)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "signals: needs python3 to check JSON" >&2; exit 2; }
# QEMU's comm is cut to 15 characters: match its command line.
qemu_running() { pgrep -f '(^|/)qemu-system-x86_64 ' >/dev/null; }
if qemu_running; then
  echo "signals: a qemu-system-x86_64 is already running; stop it first" >&2
  exit 2
fi

work=results/signals-$(date -u +%Y%m%d-%H%M%S)-$$
mkdir -p "$work"
"$pg" kernels fetch debian:6.1 >/dev/null

# Whole JSON files, broken ones, and leftovers of an unfinished write.
check_files() {
  python3 - "$1" <<'EOF'
import json, pathlib, sys, xml.dom.minidom
root = pathlib.Path(sys.argv[1])
whole = broken = leftovers = 0
for p in root.rglob("*"):
    if ".partial" in p.name or ".tmp." in p.name:
        leftovers += 1
    elif p.name in ("result.json", "summary.json"):
        try:
            json.loads(p.read_text())
            whole += 1
        except Exception:
            broken += 1
    elif p.name == "junit.xml":
        try:
            xml.dom.minidom.parse(str(p))
            whole += 1
        except Exception:
            broken += 1
print(whole, broken, leftovers)
EOF
}

printf '%-7s %5s %8s %7s %10s %12s %10s %9s %8s\n' signal runs wrong_rc qemu_left \
  files_whole files_broken leftovers unmarked finished
for sig in INT TERM KILL; do
  wrong_rc=0 qemu_left=0 whole=0 broken=0 leftovers=0 unmarked=0 finished=0
  want=130
  [ "$sig" = KILL ] && want=137
  for i in $(seq 1 "$runs"); do
    dir="$work/$sig-$i"
    mkdir -p "$dir"
    "$pg" run suites/smoke.yaml --jobs 2 --results "$dir" >"$dir.out" 2>&1 &
    pid=$!
    # A random moment of the suite: this is the experiment, not a wait.
    sleep "$(awk -v seed="$RANDOM" 'BEGIN { srand(seed); printf "%.2f", 0.2 + rand() * 17.8 }')"
    kill -s "$sig" "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" || rc=$?
    session=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | head -1)
    done_before=0
    if [ -n "$session" ] && [ -f "$session/summary.json" ] && [ ! -e "$session/INCOMPLETE" ]; then
      done_before=1
      finished=$((finished + 1))
    fi
    if [ "$done_before" = 0 ] && [ "$rc" != "$want" ]; then
      wrong_rc=$((wrong_rc + 1))
      echo "signals: $sig run $i exited $rc, not $want (see $dir.out)" >&2
    fi
    # QEMU dies with its parent; give the kernel 5 s to deliver that.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      qemu_running || break
      sleep 0.5
    done
    if qemu_running; then
      qemu_left=$((qemu_left + 1))
      echo "signals: $sig run $i left QEMU running" >&2
      pkill -KILL -f '(^|/)qemu-system-x86_64 ' || true
    fi
    if [ -n "$session" ]; then
      read -r w b l < <(check_files "$session")
      whole=$((whole + w)) broken=$((broken + b)) leftovers=$((leftovers + l))
      if [ "$done_before" = 0 ] && [ ! -e "$session/INCOMPLETE" ]; then
        unmarked=$((unmarked + 1))
        echo "signals: $sig run $i: an unfinished session lost its INCOMPLETE marker" >&2
      fi
    fi
  done
  printf '%-7s %5d %8d %7d %10d %12d %10d %9d %8d\n' "SIG$sig" "$runs" "$wrong_rc" "$qemu_left" \
    "$whole" "$broken" "$leftovers" "$unmarked" "$finished"
done
echo "results: $work"
