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
#include <optional>
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

inline Booted boot_into(const std::filesystem::path& results, const std::vector<std::string>& args,
                        const std::map<std::string, std::string>& env = {}) {
  Booted out{run_probegate(args, env), {}};
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

// result.json of every case of the one session under `results`, by case id.
inline std::map<std::string, nlohmann::json> results_of(const std::filesystem::path& results) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(only_session(results)))
    if (entry.path().filename() == "result.json") {
      auto r = nlohmann::json::parse(*core::read_file(entry.path()));
      const auto id = r.at("name").get<std::string>();
      out[id] = std::move(r); // json's operator= takes its argument by value
    }
  return out;
}

// suites/knobs.yaml on 2 jobs, with `extra` options; every case's result.json.
inline std::map<std::string, nlohmann::json>
run_knobs(const std::filesystem::path& results, std::vector<std::string> extra,
          const std::map<std::string, std::string>& env) {
  std::vector<std::string> args{
      "run", PROBEGATE_SOURCE_DIR "/suites/knobs.yaml", "-j", "2", "--results", results.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto ran = run_probegate(args, env, std::chrono::minutes(20));
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  return results_of(results);
}

// What a case found, without when: the fields a verdict reads.
inline nlohmann::json found(const nlohmann::json& r) {
  const auto& o = r.at("outcome");
  nlohmann::json probes = nlohmann::json::array();
  for (const auto& p : o.at("probes"))
    probes.push_back({p.at("device"), p.at("result")});
  int loader_kills = 0;
  for (const auto& k : o.at("udev_kills"))
    loader_kills += k.at("loading_module") == true;
  return {{"verdict", r.at("verdict")},
          {"booted", o.at("booted")},
          {"timed_out", o.at("timed_out")},
          {"devices_bound", o.at("devices_bound")},
          {"probe_failures", o.at("probe_failures")},
          {"udev_worker_killed", o.at("udev_worker_killed")},
          {"udev_kills", o.at("udev_kills").size()},
          {"loader_kills", loader_kills},
          {"udev_slow_warnings", o.at("udev_slow_warnings")},
          {"udev_failed_events", o.at("udev_failed_events").size()},
          {"probes", probes},
          {"panic", o.at("panic")},
          {"guest_kernel", o.at("guest_kernel")}};
}

// A test with a scratch directory and a cache of its own (saved states,
// libvirt roots), sharing the kernels, layers and modules of the usual one
// through links (PROBEGATE_CACHE in m_env).
class PrivateCacheTest : public ::testing::Test {
protected:
  explicit PrivateCacheTest(std::string prefix) : m_prefix(std::move(prefix)) {}
  void SetUp() override {
    if (const auto& why = skip_reason(); !why.empty())
      PROBEGATE_E2E_SKIP() << why;
    auto dir = core::TempDir::create(std::filesystem::temp_directory_path(), m_prefix);
    ASSERT_TRUE(dir) << dir.error().message;
    m_dir.emplace(std::move(*dir));
    m_cache = m_dir->path() / "cache";
    std::filesystem::create_directories(m_cache);
    for (const char* shared : {"kernels", "layers", "modules", "apt", "index", "sources"})
      if (std::filesystem::exists(core::cache_root() / shared))
        std::filesystem::create_directory_symlink(core::cache_root() / shared, m_cache / shared);
    m_env = {{"PROBEGATE_CACHE", m_cache.string()}};
  }
  std::filesystem::path dir() const { return m_dir->path(); }
  std::string m_prefix;
  std::optional<core::TempDir> m_dir;
  std::filesystem::path m_cache;
  std::map<std::string, std::string> m_env;
};

} // namespace probegate::e2e
