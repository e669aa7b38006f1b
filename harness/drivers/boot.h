// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "console/boot_log.h"
#include "core/error.h"
#include "pool/hosts.h"
#include "proc/process_runner.h"
#include "report/run_result.h"
#include "spec/run_spec.h"

#include <filesystem>
#include <functional>
#include <string_view>

namespace probegate::drivers {

// What every driver needs from the outside world; tests pass a
// FakeProcessRunner and temporary directories.
struct Environment {
  proc::ProcessRunner& runner;
  std::filesystem::path cache;
  std::filesystem::path data;    // guest-modules/ and images/
  std::filesystem::path results; // results root
  std::function<void(std::string_view)> progress;
  // Each guest console line as it arrives (`boot --console`); may be empty.
  std::function<void(std::string_view)> console = {};
  // One boot asked for on the command line (`probegate boot`): a knob the
  // chosen user space lacks is then a usage error (exit 2, nothing boots),
  // where a suite's matrix makes it a SKIP cell.
  bool explicit_request = false;
  // The pool host this boot runs on (`run --hosts`), or none: its URI, its
  // storage pool for uploads, its labels. Losing it returns
  // ErrorKind::host_lost, for the suite to run the case elsewhere.
  const pool::Host* host = nullptr;
  // A group with no saved state is booted and saved at once (a suite: its
  // other cases and its next runs restore it), or only at its second sight
  // (one boot, a bisection: most of their groups boot once, and a save
  // costs more than a fresh boot); see
  // docs/CONTRACTS.md "Boot once, restore per case".
  bool save_at_first_sight = false;
};

// One boot: kernel -> module -> image -> VM -> console -> verdict -> report.
// Usage errors return before anything is written. Once the run directory
// exists, infrastructure trouble becomes an `error` verdict in result.json
// (never a kernel failure) and the RunResult is returned; an interrupt
// records what it can and returns ErrorKind::interrupted.
// `run_dir`: where to write; default: a new directory under env.results.
core::Result<report::RunResult> boot(const spec::RunSpec& spec, Environment& env,
                                     const std::filesystem::path& run_dir = {});

// The offline half of a boot: console text + spec -> RunResult (no files).
report::RunResult judge_console(const spec::RunSpec& spec, const console::BootLog& log,
                                bool timed_out);

} // namespace probegate::drivers
