// SPDX-License-Identifier: GPL-2.0-only
// End to end: the real `probegate` binary boots the real Debian 6.1 kernel in
// real QEMU with real systemd-udevd. Skips (never passes) where QEMU or the
// kernel cannot be had.
#include "core/files.h"
#include "proc/process_runner.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

struct Ran {
  int exit_code = -1;
  std::string output;
  nlohmann::json result; // result.json of the run, if one was written
  fs::path dir;
};

int qemu_processes() {
  auto runner = proc::make_process_runner();
  core::Command pgrep;
  pgrep.argv = {"pgrep", "-c", "-f", "qemu-system-x86_64"};
  int count = 0;
  auto ran = runner->run(pgrep, [&](std::string_view line) {
    count = std::atoi(std::string(line).c_str());
    return proc::LineAction::keep_going;
  });
  return ran ? count : -1;
}

class BootE2e : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto runner = proc::make_process_runner();
    if (!fs::exists("/usr/bin/qemu-system-x86_64")) {
      s_skip = "qemu-system-x86_64 is not installed";
      return;
    }
    core::Command fetch;
    fetch.argv = {PROBEGATE_BINARY, "kernels", "fetch", "debian:6.1"};
    auto ran = runner->run(fetch);
    if (!ran || !ran->ok())
      s_skip = "cannot fetch debian:6.1 (no network to Debian's mirror?): " +
               (ran ? ran->tail : ran.error().message);
  }

  void SetUp() override {
    if (!s_skip.empty())
      GTEST_SKIP() << s_skip;
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-e2e-");
    ASSERT_TRUE(tmp);
    m_results.emplace(std::move(*tmp));
  }

  Ran boot(std::vector<std::string> args) {
    auto runner = proc::make_process_runner();
    core::Command command;
    command.argv = {PROBEGATE_BINARY, "boot",      "--kernel",
                    "debian:6.1",     "--results", m_results->path().string()};
    command.argv.insert(command.argv.end(), args.begin(), args.end());
    command.timeout = std::chrono::minutes(10);
    Ran out;
    auto ran = runner->run(command, [&](std::string_view line) {
      out.output.append(line).push_back('\n');
      return proc::LineAction::keep_going;
    });
    EXPECT_TRUE(ran) << ran.error().message;
    if (!ran)
      return out;
    out.exit_code = ran->exit_code;
    for (const auto& entry : fs::directory_iterator(m_results->path())) {
      if (fs::exists(entry.path() / "result.json")) {
        out.dir = entry.path();
        out.result = nlohmann::json::parse(*core::read_file(entry.path() / "result.json"));
      }
    }
    return out;
  }

  static inline std::string s_skip;
  std::optional<core::TempDir> m_results;
};

TEST_F(BootE2e, SyncProbeKilledByUdevTimeoutBindsNothing) {
  const auto ran =
      boot({"--devices", "2", "--probe-delay-ms", "4000", "--probe-kthread", "--udev-timeout", "3",
            "--expect-bound", "0", "--expect-udev-kill", "yes"});
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const auto& o = ran.result.at("outcome");
  EXPECT_EQ(ran.result.at("verdict"), "pass");
  EXPECT_TRUE(o.at("booted").get<bool>());
  EXPECT_EQ(o.at("devices_bound"), 0);
  EXPECT_EQ(o.at("probe_failures"), 2);
  EXPECT_TRUE(o.at("udev_worker_killed").get<bool>());
  EXPECT_GE(o.at("udev_slow_warnings").get<int>(), 1);
  EXPECT_EQ(ran.result.at("kernel").at("release"), o.at("guest_kernel"));
  EXPECT_TRUE(fs::exists(ran.dir / "console.log"));
  // The same log, judged offline, gives the same outcome.
  auto runner = proc::make_process_runner();
  core::Command parse;
  parse.argv = {
      PROBEGATE_BINARY,     "parse", (ran.dir / "console.log").string(), "--expect-bound", "0",
      "--expect-udev-kill", "yes"};
  auto parsed = runner->run(parse);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->exit_code, 0) << parsed->tail;
  parse.argv[4] = "2"; // a wrong expectation must fail
  auto wrong = runner->run(parse);
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->exit_code, 1) << wrong->tail;
}

TEST_F(BootE2e, AsyncModuleParamBindsEveryDeviceWithoutKill) {
  const auto ran =
      boot({"--devices", "2", "--probe-delay-ms", "4000", "--udev-timeout", "3", "--async",
            "module-param", "--expect-bound", "2", "--expect-udev-kill", "no"});
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const auto& o = ran.result.at("outcome");
  EXPECT_EQ(o.at("devices_bound"), 2);
  EXPECT_EQ(o.at("probe_failures"), 0);
  EXPECT_FALSE(o.at("udev_worker_killed").get<bool>());
  EXPECT_FALSE(o.at("time_to_available_s").is_null());
  EXPECT_NE(ran.result.at("kernel_cmdline").get<std::string>().find("slowprobe.async_probe=1"),
            std::string::npos);
}

TEST_F(BootE2e, DefaultUdevTimeoutLetsSyncProbesFinish) {
  const auto ran = boot({"--devices", "2", "--probe-delay-ms", "4000", "--expect-bound", "2",
                         "--expect-udev-kill", "no"});
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const auto& o = ran.result.at("outcome");
  EXPECT_EQ(o.at("devices_bound"), 2);
  EXPECT_TRUE(o.at("udev_kills").empty());
}

TEST_F(BootE2e, DeadlineTooShortNeverPassesAndLeavesNoQemu) {
  const int before = qemu_processes();
  const auto ran = boot(
      {"--devices", "2", "--probe-delay-ms", "30000", "--deadline", "20", "--expect-bound", "2"});
  EXPECT_TRUE(ran.exit_code == 1 || ran.exit_code == 3) << ran.output;
  EXPECT_NE(ran.result.value("verdict", ""), "pass");
  EXPECT_FALSE(ran.result.at("outcome").at("booted").get<bool>());
  EXPECT_EQ(qemu_processes(), before) << "a QEMU was left running";
}

} // namespace
} // namespace probegate
