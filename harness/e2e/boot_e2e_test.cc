// SPDX-License-Identifier: GPL-2.0-only
// End to end: the real `probegate` binary boots the real Debian 6.1 kernel in
// real QEMU with real systemd-udevd. Skips (never passes) where QEMU or the
// kernel cannot be had.
#include "core/files.h"
#include "e2e/e2e_support.h"
#include "proc/process_runner.h"

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace probegate {
namespace {

namespace fs = std::filesystem;

struct Ran {
  int exit_code = -1;
  std::string output;
  nlohmann::json result; // result.json of the run, if one was written
  fs::path dir;
};

class BootE2e : public ::testing::Test {
protected:
  void SetUp() override {
    if (!e2e::skip_reason().empty())
      PROBEGATE_E2E_SKIP() << e2e::skip_reason();
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-e2e-");
    ASSERT_TRUE(tmp);
    m_results.emplace(std::move(*tmp));
  }

  Ran boot(std::vector<std::string> args) {
    std::vector<std::string> argv{"boot", "--results", m_results->path().string()};
    if (!args.empty() && args.front() == "-v") { // a global option: before the subcommand
      argv.insert(argv.begin(), "-v");
      args.erase(args.begin());
    }
    if (std::ranges::find(args, "--kernel") == args.end())
      argv.insert(argv.end(), {"--kernel", "debian:6.1"});
    argv.insert(argv.end(), args.begin(), args.end());
    const auto ran = e2e::run_probegate(argv);
    Ran out{ran.exit_code, ran.output, {}, {}};
    for (const auto& entry : fs::directory_iterator(m_results->path())) {
      if (fs::exists(entry.path() / "result.json")) {
        out.dir = entry.path();
        out.result = nlohmann::json::parse(*core::read_file(entry.path() / "result.json"));
      }
    }
    return out;
  }

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
  const auto ran = boot({"-v", "--devices", "2", "--probe-delay-ms", "30000", "--deadline", "20",
                         "--expect-bound", "2"});
  EXPECT_TRUE(ran.exit_code == 1 || ran.exit_code == 3) << ran.output;
  EXPECT_NE(ran.result.value("verdict", ""), "pass");
  EXPECT_FALSE(ran.result.at("outcome").at("booted").get<bool>());
  const pid_t qemu = e2e::qemu_pid(ran.output);
  ASSERT_GT(qemu, 0) << "probegate -v never reported starting QEMU:\n" << ran.output;
  EXPECT_FALSE(e2e::alive(qemu)) << "QEMU " << qemu << " was left running";
}

// Starts `probegate -v boot` with a case that runs for minutes of guest
// time, waits until it reports QEMU's pid, signals it, returns its status.
struct Signalled {
  int status = 0;
  pid_t qemu = 0;
  bool qemu_gone = false; // QEMU exited within a bound after the signal
};

// Runs probegate with `args` (stdout and stderr into one pipe), signals it
// once `when_seen` has appeared and, after it, QEMU's pid has been reported
// by -v, then waits for it and for that QEMU.
Signalled run_and_signal(const std::vector<std::string>& args, std::string_view when_seen,
                         int signal) {
  Signalled out;
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0)
    return out;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    ::close(pipe_fds[0]);
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  FILE* err = ::fdopen(pipe_fds[0], "r");
  std::array<char, 4096> line{};
  bool seen = when_seen.empty();
  while (std::fgets(line.data(), line.size(), err) != nullptr) {
    const std::string_view text(line.data());
    seen = seen || text.find(when_seen) != std::string_view::npos;
    if (seen && (out.qemu = e2e::qemu_pid(text)) > 0)
      break;
  }
  int qemu_fd = out.qemu > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, out.qemu, 0)) : -1;
  ::kill(pid, signal);
  while (std::fgets(line.data(), line.size(), err) != nullptr) {
  }
  std::fclose(err);
  ::waitpid(pid, &out.status, 0);
  if (qemu_fd >= 0) { // a pidfd turns readable when its process exits
    pollfd p{qemu_fd, POLLIN, 0};
    out.qemu_gone = ::poll(&p, 1, 10000) == 1;
    ::close(qemu_fd);
  }
  return out;
}

// `probegate -v boot` of a case that runs for minutes of guest time.
Signalled boot_and_signal(const fs::path& results, int signal) {
  return run_and_signal({PROBEGATE_BINARY, "-v", "boot", "--kernel", "debian:6.1", "--devices", "2",
                         "--probe-delay-ms", "200000", "--results", results.string()},
                        "", signal);
}

TEST_F(BootE2e, CtrlCExits130AndLeavesNoQemu) {
  const auto ran = boot_and_signal(m_results->path(), SIGINT);
  ASSERT_GT(ran.qemu, 0) << "probegate -v never reported starting QEMU";
  ASSERT_TRUE(WIFEXITED(ran.status)) << "probegate died of the signal instead of handling it";
  EXPECT_EQ(WEXITSTATUS(ran.status), 130);
  EXPECT_TRUE(ran.qemu_gone);
  EXPECT_FALSE(e2e::alive(ran.qemu));
  // What was written is complete: a result.json that says so, no partial files.
  int results = 0;
  for (const auto& entry : fs::recursive_directory_iterator(m_results->path())) {
    EXPECT_FALSE(entry.path().string().ends_with(".partial")) << entry.path();
    EXPECT_FALSE(entry.path().string().find(".tmp.") != std::string::npos) << entry.path();
    if (entry.path().filename() == "result.json") {
      auto result = nlohmann::json::parse(*core::read_file(entry.path()));
      EXPECT_EQ(result.at("verdict"), "error");
      EXPECT_EQ(result.at("reason"), "interrupted");
      ++results;
    }
  }
  EXPECT_EQ(results, 1) << "the interrupted run left no result.json";
}

TEST_F(BootE2e, SigkilledHarnessTakesQemuWithIt) {
  const auto ran = boot_and_signal(m_results->path(), SIGKILL);
  ASSERT_GT(ran.qemu, 0) << "probegate -v never reported starting QEMU";
  ASSERT_TRUE(WIFSIGNALED(ran.status));
  EXPECT_TRUE(ran.qemu_gone) << "QEMU outlived a SIGKILLed probegate";
}

TEST_F(BootE2e, CtrlCMidSuiteKeepsFinishedCasesAndMarksTheSession) {
  const auto ran =
      run_and_signal({PROBEGATE_BINARY, "-v", "run", PROBEGATE_TESTDATA "/suites/interrupt.yaml",
                      "--jobs", "1", "--results", m_results->path().string()},
                     "[1/3] pass interrupt/quick", SIGINT);
  ASSERT_GT(ran.qemu, 0) << "the second case's QEMU was never reported";
  ASSERT_TRUE(WIFEXITED(ran.status));
  EXPECT_EQ(WEXITSTATUS(ran.status), 130);
  EXPECT_TRUE(ran.qemu_gone);
  fs::path session;
  for (const auto& e : fs::directory_iterator(m_results->path()))
    session = e.path();
  ASSERT_FALSE(session.empty());
  EXPECT_TRUE(fs::exists(session / "INCOMPLETE"));
  const auto summary = nlohmann::json::parse(*core::read_file(session / "summary.json"));
  EXPECT_FALSE(summary.at("complete").get<bool>());
  EXPECT_TRUE(summary.at("interrupted").get<bool>());
  const auto quick =
      nlohmann::json::parse(*core::read_file(session / "interrupt/quick/result.json"));
  EXPECT_EQ(quick.at("verdict"), "pass") << "the finished case is intact";
  EXPECT_TRUE(fs::exists(session / "interrupt/quick/console.log"));
  EXPECT_FALSE(fs::exists(session / "interrupt/never-started")) << "a case that never started";
  for (const auto& entry : fs::recursive_directory_iterator(session))
    EXPECT_FALSE(entry.path().string().ends_with(".partial")) << entry.path();
}

TEST_F(BootE2e, UnknownKernelIsAUsageErrorNamingTheLines) {
  const auto ran = boot({"--kernel", "debian:6.3"});
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("6.1"), std::string::npos) << ran.output;
  EXPECT_TRUE(ran.result.is_null()) << "nothing may be written for bad input";
}

} // namespace
} // namespace probegate
