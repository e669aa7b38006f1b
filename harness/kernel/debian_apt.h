// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/command.h"
#include "core/error.h"
#include "core/progress.h"
#include "kernel/debian_index.h"
#include "proc/process_runner.h"

#include <filesystem>
#include <string>
#include <vector>

namespace probegate::kernel {

// A kernel release one Debian suite offers.
struct Offer {
  std::string release; // 5.10.0-46-amd64
  std::string suite;   // bullseye
};

// apt, for every suite in debian_suites(): the host's own suite through the
// host's configuration, the others through a private one under
// <cache>/apt/<suite>/ (own sources.list and state, Debian's archive keyring
// for signatures, no preferences or hooks of the host's, nothing installed).
// The package-name index of each suite is kept for a while (apt is slow).
class DebianApt {
public:
  DebianApt(proc::ProcessRunner& runner, std::filesystem::path cache);

  // Releases every suite offers. `offline`: the saved indexes only, however
  // old. A suite that cannot be reached is reported in `unreachable`.
  core::Result<std::vector<Offer>> offers(bool refresh, bool offline,
                                          std::vector<std::string>* unreachable = nullptr);
  // An apt-get/apt-cache command for `suite` (argv[0] is the program).
  core::Command command(const std::string& suite, std::vector<std::string> argv) const;
  // Captures stdout of an apt command.
  core::Result<std::string> capture(const std::string& suite, std::vector<std::string> argv);
  const std::string& host_suite() const { return m_host_suite; }
  // The suites it serves (debian_suites()), oldest first.
  std::vector<std::string> suite_names() const;
  // Makes `suite`'s package index usable (apt-get update of the private
  // configuration when it is older than a few hours; nothing for the
  // host's suite). A suite debian_suites() does not list is a usage error.
  core::Status ready(const std::string& suite);

private:
  core::Status prepare(const DebianSuite& suite, bool refresh);
  std::filesystem::path suite_dir(const std::string& suite) const;

  proc::ProcessRunner& m_runner;
  std::filesystem::path m_cache;
  std::string m_host_suite;
  std::vector<DebianSuite> m_suites;
};

// Runs `download`, an `apt-get download` command (argv, cwd, environment:
// DebianApt::command's, or the host's apt), which writes each .deb under its
// final name in its cwd as the bytes arrive. When `output` is live it first
// asks `--print-uris` for the files and their sizes, and while apt runs
// (`APT::Status-Fd` lines, a few a second, are its clock) redraws "<what>:
// done/total bytes, rate, ETA" from the sizes of those files. Otherwise it
// runs the command as given, and prints nothing.
core::Status apt_download(proc::ProcessRunner& runner, const core::Command& download,
                          std::string what, const core::LiveOutput& output = core::stderr_output());

} // namespace probegate::kernel
