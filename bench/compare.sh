#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Two runs of a bench/ script that writes JSON, side by side: each number
# in both, and NEW/OLD, so that a change that costs speed shows in review.
# Figures ending in _s are times (a ratio above 1 is slower).
# Usage: bench/compare.sh OLD.json NEW.json
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD.json NEW.json" >&2; exit 2; }
python3 - "$1" "$2" <<'PY'
import json, sys
old, new = (json.load(open(p)) for p in sys.argv[1:3])
print(f"{'figure':32} {'old':>10} {'new':>10} {'new/old':>8}")
for key in sorted(set(old) | set(new)):
    a, b = old.get(key), new.get(key)
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        print(f"{key:32} {str(a):>10} {str(b):>10}")
        continue
    ratio = f"{b / a:8.2f}" if a else "       -"
    print(f"{key:32} {a:10.3f} {b:10.3f} {ratio}")
PY
