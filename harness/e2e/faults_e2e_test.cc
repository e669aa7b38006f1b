// SPDX-License-Identifier: GPL-2.0-only
// End to end: faults of the real components (issue 7). QEMU killed from
// outside mid-boot is an infrastructure error (exit 3), never a kernel
// failure, and `--retries` runs the case again.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <csignal>
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>

namespace probegate {
namespace {

namespace fs = std::filesystem;

// Runs probegate -v (which prints each child's pid) with the guest console
// shown, and SIGKILLs the first QEMU once the guest's udevd has started.
struct KillFirstQemu {
  int exit_code = -1;
  std::string output;
  pid_t killed = 0;
};

// `when`: the output that triggers the kill ("" = as soon as QEMU started).
KillFirstQemu run_and_kill_qemu(const std::vector<std::string>& args, std::string_view when) {
  auto runner = proc::make_process_runner();
  core::Command command;
  command.argv = {PROBEGATE_BINARY, "-v"};
  command.argv.insert(command.argv.end(), args.begin(), args.end());
  command.timeout = std::chrono::minutes(10);
  KillFirstQemu out;
  pid_t qemu = 0;
  static const std::regex started(R"(qemu-system-x86_64 .*\[pid (\d+)\])");
  auto ran = runner->run(command, [&](std::string_view line) {
    out.output.append(line).push_back('\n');
    std::match_results<std::string_view::const_iterator> m;
    if (!qemu && std::regex_search(line.begin(), line.end(), m, started))
      qemu = std::stoi(m[1].str());
    // Mid-boot: the guest's udevd runs (its agent fact on the console).
    // The kill comes from outside probegate.
    if (qemu && !out.killed && line.find(when) != std::string_view::npos) {
      if (::kill(qemu, SIGKILL) == 0)
        out.killed = qemu;
    }
    return proc::LineAction::keep_going;
  });
  if (ran)
    out.exit_code = ran->exit_code;
  return out;
}

bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0;
}

TEST(FaultsE2e, QemuKilledFromOutsideIsAnInfrastructureError) {
  if (!e2e::skip_reason().empty())
    GTEST_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-faults-");
  ASSERT_TRUE(tmp);
  const auto ran = run_and_kill_qemu({"boot", "--console", "--kernel", "debian:6.1", "--devices",
                                      "1", "--probe-delay-ms", "6000", "--expect-bound", "1",
                                      "--results", tmp->path().string()},
                                     "event=udevd-started");
  ASSERT_NE(ran.killed, 0) << "QEMU never started:\n" << ran.output;
  EXPECT_EQ(ran.exit_code, 3) << ran.output;
  EXPECT_FALSE(alive(ran.killed));
  fs::path run_dir;
  for (const auto& e : fs::directory_iterator(tmp->path()))
    run_dir = e.path();
  const auto result = nlohmann::json::parse(*core::read_file(run_dir / "result.json"));
  EXPECT_EQ(result.at("verdict"), "error");
  EXPECT_NE(result.at("error").get<std::string>().find("signal 9"), std::string::npos)
      << result.dump(2);
  EXPECT_TRUE(result.at("checks").empty() || result.at("verdict") != "fail")
      << "never a kernel failure";
}

TEST(FaultsE2e, RetriesRunTheCaseAgainAfterQemuWasKilled) {
  if (!e2e::skip_reason().empty())
    GTEST_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-faults-");
  ASSERT_TRUE(tmp);
  const auto ran = run_and_kill_qemu({"run", PROBEGATE_TESTDATA "/suites/one-slow.yaml",
                                      "--retries", "1", "--results", tmp->path().string()},
                                     "");
  ASSERT_NE(ran.killed, 0) << ran.output;
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  const fs::path session = e2e::only_session(tmp->path());
  const auto summary = nlohmann::json::parse(*core::read_file(session / "summary.json"));
  EXPECT_EQ(summary.at("verdict"), "pass");
  EXPECT_EQ(summary.at("cases")[0].at("retried"), 1);
  // The failed attempt stays as it was, beside the retry.
  const auto first = nlohmann::json::parse(*core::read_file(session / "one-slow/slow/result.json"));
  EXPECT_EQ(first.at("verdict"), "error");
  EXPECT_TRUE(fs::exists(session / "one-slow/slow/retry-1/result.json"));
}

} // namespace
} // namespace probegate
