#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# One entry point for a fresh Debian 12 machine:
#   tools/setup.sh smoke   install what is missing, build, run the smoke cases
#   tools/setup.sh test    install what is missing, build, run unit + e2e tests
#   tools/setup.sh deps    only install the host packages
#   tools/setup.sh build   only build (release and asan presets)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

say() { printf 'setup: [%4d s] %s\n' "$SECONDS" "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# deps FILE...: the packages the files list (one per line, # comments).
deps() {
  mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$@")
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  # Kernel lookups need a current package index even when nothing is missing.
  local stamp=/var/lib/apt/periodic/probegate-update-stamp
  if [ ${#missing[@]} -gt 0 ] || [ -z "$(find "$stamp" -mmin -360 2>/dev/null)" ]; then
    say "apt-get update"
    as_root apt-get update -q >/dev/null
    as_root mkdir -p "$(dirname "$stamp")"
    as_root touch "$stamp"
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  # libvirt's QEMU driver, embedded too, looks its user up before it reads
  # qemu.conf; libvirt-daemon-system (not installed) would create it.
  if ! getent passwd libvirt-qemu >/dev/null; then
    say "adding the libvirt-qemu system user"
    getent group libvirt-qemu >/dev/null || as_root groupadd --system libvirt-qemu
    as_root useradd --system --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin -g libvirt-qemu libvirt-qemu
  fi
}

build() {
  for preset in "$@"; do
    say "building preset $preset"
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset"
  done
}

# Smoke runs the probegate binary only: its test binaries are not built.
build_cli() {
  say "building probegate (release)"
  cmake --preset release >/dev/null
  cmake --build --preset release --target probegate
}

smoke() {
  say "smoke: the udev-kill failure and its fixes on debian:6.1 (suites/smoke.yaml)"
  build/release/harness/probegate run suites/smoke.yaml
}

format_check() {
  say "clang-format check"
  find harness \( -name '*.cc' -o -name '*.h' \) -exec clang-format --dry-run -Werror {} +
  say "shellcheck"
  shellcheck images/init images/systemd/usr/lib/probegate/report images/systemd/usr/lib/probegate/init \
    tools/*.sh bench/*.sh .ci/run
  say "docs: links and citations"
  tools/check-docs.sh
}

tests() {
  format_check
  say "unit tests (ASan + UBSan)"
  ctest --preset unit -j2
  say "end-to-end tests (real QEMU, real Debian kernel, real udevd)"
  local log rc=0
  log=$(mktemp)
  ctest --preset e2e 2>&1 | tee "$log" || rc=$?
  # A run that booted nothing must not pass: count the e2e tests that ran.
  local passed skipped
  passed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$log" || true)
  skipped=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*Skipped' "$log" || true)
  rm -f "$log"
  say "e2e: $passed passed, $skipped skipped"
  [ "$rc" -eq 0 ] || return "$rc"
  if [ "$passed" -eq 0 ]; then
    say "no end-to-end test ran: failing"
    return 1
  fi
}

# The main job needs only what builds and runs probegate; the tests need more
# (a browser, a schema validator, the format checker).
all_deps() { deps tools/host-packages.txt tools/test-packages.txt; }
case "${1:-}" in
  deps) all_deps ;;
  build) all_deps; build release asan ;;
  smoke) deps tools/host-packages.txt; build_cli; smoke ;;
  test) all_deps; build release asan; tests ;;
  *) echo "usage: tools/setup.sh smoke|test|deps|build" >&2; exit 2 ;;
esac
say "done"
