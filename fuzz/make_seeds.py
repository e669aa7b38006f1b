#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Seed corpora for the fuzzers from harness/testdata/ and suites/.

Console logs are long and their interesting lines come late, past any
sensible -max_len: each log gives its first bytes and its parser-relevant
lines (agent facts, slowprobe, udevd workers, probe failures, banner,
panics), cut into chunks of at most MAX bytes. The parse fuzzer's inputs
start with two option bytes (parse_fuzzer.cc).

    fuzz/make_seeds.py OUT_DIR MAX_CONSOLE_BYTES
"""
import pathlib
import re
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INTERESTING = re.compile(
    rb"probegate: |slowprobe|Worker \[|failed with error|Linux version |Kernel panic|"
    rb"Initramfs unpacking|Oops:|BUG: |general protection|cut here"
)
OPTION_BYTES = [b"\x00\x00", b"\x05\x14", b"\x00\x1c", b"\x03\x35"]


def chunks(lines, limit):
    chunk = b""
    for line in lines:
        line = line[: limit - 1] + b"\n"
        if len(chunk) + len(line) > limit:
            yield chunk
            chunk = b""
        chunk += line
    if chunk:
        yield chunk


def main():
    out = pathlib.Path(sys.argv[1])
    limit = int(sys.argv[2])
    for name in ("console", "parse", "suite"):
        shutil.rmtree(out / name, ignore_errors=True)
        (out / name).mkdir(parents=True)
    logs = sorted((ROOT / "harness/testdata/console").rglob("*.log"))
    n = 0
    for log in logs:
        data = log.read_bytes()
        pieces = [data[:limit]]
        pieces += chunks([l for l in data.split(b"\n") if INTERESTING.search(l)], limit)
        for piece in pieces:
            n += 1
            (out / "console" / f"{log.stem}-{n}").write_bytes(piece)
            prefix = OPTION_BYTES[n % len(OPTION_BYTES)]
            (out / "parse" / f"{log.stem}-{n}").write_bytes(prefix + piece)
    suites = [*(ROOT / "harness/testdata/suites").glob("*.yaml"), *(ROOT / "suites").glob("*.yaml"),
              *(ROOT / "harness/testdata/malformed").glob("*.yaml")]
    for suite in sorted(suites):
        shutil.copyfile(suite, out / "suite" / f"{suite.parent.name}-{suite.name}")
    for name in ("console", "parse", "suite"):
        print(f"{name}: {len(list((out / name).iterdir()))} seeds")


if __name__ == "__main__":
    main()
