#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# libFuzzer on the console parser, the suite parser and `probegate parse`'s
# offline path (fuzz/), each for a fixed number of executions; prints figures,
# asserts nothing:
#   fuzzer, execs, exec/s, coverage at start and end (+ new), corpus units
#   added, findings (crashes, leaks, timeouts, broken invariants) with their
#   artifacts, then a replay of every finding kept in
#   harness/testdata/fuzz-findings/ (still reproduces, or fixed).
# Usage: bench/fuzz.sh [console_runs] [parse_runs] [suite_runs]
#
# The console fuzzer runs on one core while the parse and suite fuzzers run
# one after the other on the second. Builds into build/fuzz/ with clang 16:
# clang 14 cannot compile libstdc++ 12's <expected> (fuzz/CMakeLists.txt).
# Installs clang-16 and libclang-rt-16-dev (Debian bookworm) when missing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

console_runs=${1:-1000000}
parse_runs=${2:-250000}
suite_runs=${3:-500000}
out=build/fuzz
findings=harness/testdata/fuzz-findings

say() { printf 'fuzz: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in clang-16 libclang-rt-16-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

say "building the fuzzers into $out"
cmake -S fuzz -B "$out" -G Ninja -DCMAKE_CXX_COMPILER=clang++-16 >/dev/null
cmake --build "$out" >/dev/null

# Inputs past -max_len are cut: console lines that matter are short (long
# lines are the kept regex findings); suites are a few KiB.
declare -A runs=([console]=$console_runs [parse]=$parse_runs [suite]=$suite_runs)
declare -A max_len=([console]=1024 [parse]=1026 [suite]=4096)
declare -A dict=([console]=console.dict [parse]=console.dict [suite]=suite.dict)
python3 fuzz/make_seeds.py "$out/seeds" 1024 >&2

# Invariants already reported are tolerated so that the run goes on measuring.
known=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$findings/KNOWN" | tr -d ' ' | paste -sd, -)
export PROBEGATE_FUZZ_KNOWN=$known
export ASAN_OPTIONS=malloc_context_size=10:max_malloc_fill_size=0
export UBSAN_OPTIONS=print_stacktrace=1

fuzz_one() { # name -> runs the fuzzer, its log in $out/logs/NAME.log
  local name=$1
  rm -rf "$out/corpus/$name" "$out/artifacts/$name"
  mkdir -p "$out/corpus/$name" "$out/artifacts/$name" "$out/logs"
  local started status=0
  started=$(date +%s)
  "$out/${name}_fuzzer" -runs="${runs[$name]}" -seed=1 -max_len="${max_len[$name]}" \
    -timeout=10 -rss_limit_mb=2048 -dict="fuzz/${dict[$name]}" -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$name/" "$out/corpus/$name" "$out/seeds/$name" \
    >"$out/logs/$name.log" 2>&1 || status=$?
  echo "$status $(($(date +%s) - started))" >"$out/logs/$name.status"
}

say "console: ${runs[console]} runs; parse: ${runs[parse]}, then suite: ${runs[suite]} (known: ${known:-none})"
started=$(date +%s)
fuzz_one console &
console_pid=$!
fuzz_one parse
fuzz_one suite
wait "$console_pid"
total=$(($(date +%s) - started))

final_stat() { sed -n "s/^stat::$2: *//p" "$out/logs/$1.log" | tail -1; }
cov() { # name INITED|DONE|last -> "cov"
  local line
  if [ "$2" = last ]; then
    line=$(grep -E '^#[0-9]+.*cov: ' "$out/logs/$1.log" | tail -1)
  else
    line=$(grep -E "^#[0-9]+[[:space:]]+$2 " "$out/logs/$1.log" | tail -1)
  fi
  sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$line"
}

printf '\n%-8s %9s %7s %17s %8s %6s  %s\n' fuzzer execs exec/s "coverage (+new)" "+units" wall \
  findings
for name in console parse suite; do
  read -r status wall <"$out/logs/$name.status"
  start=$(cov "$name" INITED)
  end=$(cov "$name" DONE)
  [ -n "$end" ] || end=$(cov "$name" last)
  artifacts=$(find "$out/artifacts/$name" -type f | sort)
  if [ -z "$artifacts" ] && [ "$status" -eq 0 ]; then
    found=none
  else
    why=$(grep -m1 -oE '==probegate-fuzz== invariant .[a-z-]+.|ERROR: [A-Za-z]+: [a-z -]+|runtime error: .{0,60}' \
      "$out/logs/$name.log" || echo "exit $status")
    found="$why: $(tr '\n' ' ' <<<"$artifacts")"
  fi
  printf '%-8s %9s %7s %17s %8s %5ss  %s\n' "$name" "$(final_stat "$name" number_of_executed_units)" \
    "$(final_stat "$name" average_exec_per_sec)" "$start -> $end (+$((end - start)))" \
    "$(final_stat "$name" new_units_added)" "$wall" "$found"
done
printf 'wall time of the three: %s s on %s cores (logs: %s/logs/)\n' "$total" "$(nproc)" "$out"

# Every kept finding, replayed without tolerating anything.
printf '\nkept findings (%s), replayed:\n' "$findings"
for input in "$findings"/*--*; do
  name=$(basename "$input")
  fuzzer=${name%%--*}
  if PROBEGATE_FUZZ_KNOWN='' "$out/${fuzzer}_fuzzer" "$input" >"$out/logs/replay-$name.log" 2>&1; then
    verdict="no longer reproduces (fixed?)"
  else
    verdict="reproduces: $(grep -m1 -oE 'invariant .[a-z-]+.|ERROR: [A-Za-z]+: [a-z -]+|runtime error: .{0,60}' \
      "$out/logs/replay-$name.log" || echo crash)"
  fi
  printf '  %-55s %s\n' "$name" "$verdict"
done
