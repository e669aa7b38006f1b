// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "kernel/kernel_artifact.h"
#include "spec/run_spec.h"
#include "verdict/outcome.h"
#include "verdict/verdict.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace probegate::report {

// How the guest got to its agent's sync point
// (docs/CONTRACTS.md "Boot once, restore per case"): booted from scratch, or
// restored from a saved state that one boot of its group made.
struct BootPath {
  bool restored = false;
  std::string state_key; // cache entry states/<key>; empty on a fresh boot
  std::uintmax_t state_bytes = 0;
  bool state_made = false; // this run booted the group and saved it
  double paused_at_s = 0;  // guest uptime at the saved pause point
  double restore_s = 0;    // wall from QEMU's start to the guest running again
  // How far QEMU 7.2 moved the virtual clock while the guest stopped at its
  // pause point (pgagent's line): restores of one saved state all report
  // the same; a fresh boot never stops.
  std::optional<long long> pause_step_ns;
  // Why a case that could restore booted fresh: its group's saves moved
  // the clock. Empty otherwise.
  std::string fresh_reason;
};

// Everything about one finished (or failed) run: the one model every writer
// (result.json, terminal summary; later JUnit, HTML) renders.
struct RunResult {
  spec::RunSpec spec;
  std::string kernel_release;
  std::optional<kernel::GitCheckout> kernel_git; // tree: and build: kernels from a git checkout
  std::string userspace_suite;                   // the Debian suite of the guest's user space
  int systemd_package = 0;         // --init systemd: major version of its systemd package
  std::optional<int> udev_extra_s; // seconds udevd waits past the timeout (spec::udev_extra_s)
  verdict::Outcome outcome;
  verdict::Verdict verdict;
  std::string kernel_cmdline;
  std::vector<std::string> qemu_argv;
  std::string accel;
  std::string accel_reason;
  std::optional<double> accel_probe_bound_s; // the KVM probe's bound, when one decided
  std::map<std::string, double> stage_s;     // fetch, module_build, image, accel, boot
  double host_before_qemu_s = 0;
  BootPath boot_path;
  std::string libvirt_uri;           // --backend libvirt: the URI used, without credentials
  std::string host;                  // run --hosts: the pool host's name
  std::uintmax_t uploaded_bytes = 0; // run --hosts: what this run sent to its host's pool
  double wall_s = 0;
  std::string error; // the infrastructure error, when verdict is error
  std::filesystem::path dir;
};

nlohmann::json to_json(const RunResult& result);
// The guest's user space: the ref asked for, the Debian suite it resolved
// to, the udev version the guest reported, and the extra seconds its udevd
// waits before a kill (result.json and summary.json).
nlohmann::json userspace_json(const RunResult& result);
// Every check: name, expected (for capacity: predicted), actual, pass.
nlohmann::json checks_json(const verdict::Verdict& verdict);
// result.json read back (`probegate merge`, `probegate report`): to_json()
// of what it returns gives the same document. An error names the file.
core::Result<RunResult> read_result(const std::filesystem::path& file);
// result.json, atomically.
core::Status write_result(const RunResult& result);
// The short verdict for a terminal: one line per check, expected and actual.
std::string render_text(const RunResult& result);

} // namespace probegate::report
