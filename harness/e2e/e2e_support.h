// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/files.h"
#include "proc/process_runner.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace probegate::e2e {

// Under CI=true an end-to-end test that cannot run fails: a CI run whose
// tests all skipped (a mirror hiccup, a missing tool) must not pass with
// nothing booted.
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

// `PROBEGATE_E2E_SKIP() << why;` skips the test, or fails it under CI=true.
// Like GTEST_SKIP(), it returns from the (void) function it is used in.
#define PROBEGATE_E2E_SKIP()                                                                       \
  return ::testing::internal::AssertHelper(                                                        \
             ::probegate::e2e::in_ci() ? ::testing::TestPartResult::kFatalFailure                  \
                                       : ::testing::TestPartResult::kSkip,                         \
             __FILE__, __LINE__,                                                                   \
             ::probegate::e2e::in_ci() ? "CI=true: an e2e test that cannot run fails, never skips" \
                                       : "Skipped") = ::testing::Message()

// Why the real-boot tests cannot run here (no QEMU, no Debian kernel to
// fetch), or "" when they can. Asked once per test binary.
inline const std::string& skip_reason() {
  static const std::string reason = [] {
    if (!std::filesystem::exists("/usr/bin/qemu-system-x86_64"))
      return std::string("qemu-system-x86_64 is not installed");
    auto runner = proc::make_process_runner();
    core::Command fetch;
    fetch.argv = {PROBEGATE_BINARY, "kernels", "fetch", "debian:6.1"};
    auto ran = runner->run(fetch);
    if (!ran || !ran->ok())
      return "cannot fetch debian:6.1 (no network to Debian's mirror?): " +
             (ran ? ran->tail : ran.error().message);
    return std::string();
  }();
  return reason;
}

struct Captured {
  int exit_code = -1;
  std::string output; // stdout and stderr
};

// A kernel build from source takes 7 min on an idle 2-core machine and more
// than 15 beside other builds: its tests wait this long.
inline constexpr std::chrono::minutes k_kernel_build_timeout{50};

// Runs `command`, capturing what it prints (stdout and stderr); exit_code
// stays -1 when it could not run at all.
inline Captured run_captured(const core::Command& command) {
  auto runner = proc::make_process_runner();
  Captured out;
  auto ran = runner->run(command, [&](std::string_view line) {
    out.output.append(line).push_back('\n');
    return proc::LineAction::keep_going;
  });
  if (ran)
    out.exit_code = ran->exit_code;
  else
    out.output += ran.error().message;
  return out;
}

// Runs the probegate binary with `args` (and `env` added to the
// environment), capturing what it prints.
inline Captured run_probegate(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env = {},
                              std::chrono::minutes timeout = std::chrono::minutes(15)) {
  core::Command command;
  command.env = env;
  command.argv = {PROBEGATE_BINARY};
  command.argv.insert(command.argv.end(), args.begin(), args.end());
  command.timeout = timeout;
  return run_captured(command);
}

// A `probegate boot` and the result.json it wrote under `results`.
struct Booted {
  Captured ran;
  nlohmann::json result;
};

inline Booted boot_into(const std::filesystem::path& results,
                        const std::vector<std::string>& args) {
  Booted out{run_probegate(args), {}};
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator(results, ec))
    if (auto text = core::read_file(dir.path() / "result.json"))
      out.result = nlohmann::json::parse(*text);
  return out;
}

// Whether a process still exists (a zombie counts: nobody reaped it). The
// tests look only at their own QEMU (its pid from `probegate -v`): other
// QEMUs on the machine (a parallel test, another user) are none of theirs.
inline bool alive(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

// The pid of the first QEMU that `probegate -v` reports starting in `text`
// (one line or a whole output: "probegate: $ qemu-system-x86_64 … [pid N]"),
// or 0.
inline pid_t qemu_pid(std::string_view text) {
  const auto start = text.find("probegate: $ qemu-system-x86_64");
  if (start == std::string_view::npos)
    return 0;
  const auto end = std::min(text.find('\n', start), text.size());
  const auto at = text.substr(0, end).rfind("[pid ");
  return at == std::string_view::npos || at < start ? 0 : std::atoi(text.data() + at + 5);
}

// What a directory holds, one name a line in order, or "" when it is empty
// or missing: `EXPECT_EQ(e2e::leftovers(dir), "")` then says what was left.
inline std::string leftovers(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names)
    out += n + "\n";
  return out;
}

// The one session directory `probegate run` made under `results`.
inline std::filesystem::path only_session(const std::filesystem::path& results) {
  std::filesystem::path session;
  for (const auto& e : std::filesystem::directory_iterator(results))
    session = e.path();
  return session;
}

} // namespace probegate::e2e
