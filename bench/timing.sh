# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
# Sourced by the bench scripts: wall time of a command, and a mean.

now() { date +%s.%N; }
secs() { # command... -> wall seconds
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>&1 || true
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
mean() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print(sum(v)/len(v))' "$@"; }
