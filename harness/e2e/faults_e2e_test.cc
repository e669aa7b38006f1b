// SPDX-License-Identifier: GPL-2.0-only
// End to end: faults of the real components (issue 7). Faults injected into
// the guest (a corrupt initramfs, a panic, an Oops outside the test module,
// a hang) each get their own outcome. QEMU killed from outside mid-boot is
// an infrastructure error (exit 3), never a kernel failure, and `--retries`
// runs the case again.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/mount.h>

namespace probegate {
namespace {

namespace fs = std::filesystem;

// Runs probegate -v (which prints each child's pid) and notes the last
// QEMU's pid; with `kill_when`, SIGKILLs that QEMU from outside once the
// output shows that text ("" = as soon as QEMU started).
struct WatchedRun {
  int exit_code = -1;
  std::string output;
  pid_t qemu = 0;
  pid_t killed = 0;
};

WatchedRun run_watching_qemu(const std::vector<std::string>& args,
                             std::optional<std::string_view> kill_when) {
  auto runner = proc::make_process_runner();
  core::Command command;
  command.argv = {PROBEGATE_BINARY, "-v"};
  command.argv.insert(command.argv.end(), args.begin(), args.end());
  command.timeout = std::chrono::minutes(10);
  WatchedRun out;
  pid_t& qemu = out.qemu;
  auto ran = runner->run(command, [&](std::string_view line) {
    out.output.append(line).push_back('\n');
    // The last QEMU started: a boot that first saves its group's state
    // starts two (docs/CONTRACTS.md "Boot once, restore per case").
    if (const pid_t started = e2e::qemu_pid(line))
      qemu = started;
    // Mid-boot: the guest's udevd runs (its agent fact on the console).
    // The kill comes from outside probegate.
    if (qemu && kill_when && !out.killed && line.find(*kill_when) != std::string_view::npos) {
      if (::kill(qemu, SIGKILL) == 0)
        out.killed = qemu;
    }
    return proc::LineAction::keep_going;
  });
  if (ran)
    out.exit_code = ran->exit_code;
  return out;
}

TEST(FaultsE2e, QemuKilledFromOutsideIsAnInfrastructureError) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-faults-");
  ASSERT_TRUE(tmp);
  const auto ran = run_watching_qemu({"boot", "--console", "--kernel", "debian:6.1", "--devices",
                                      "1", "--probe-delay-ms", "6000", "--expect-bound", "1",
                                      "--results", tmp->path().string()},
                                     "event=udevd-started");
  ASSERT_NE(ran.killed, 0) << "QEMU never started:\n" << ran.output;
  EXPECT_EQ(ran.exit_code, 3) << ran.output;
  EXPECT_FALSE(e2e::alive(ran.killed));
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

// Faults injected into the real guest (--inject-fault): each has its own
// outcome, with the exit code that goes with it, and QEMU is gone after.
struct Injected {
  const char* fault;
  int exit_code;
  const char* verdict;
  const char* reason; // a part of it
  bool timed_out;
  bool restored; // from the group's saved state (not a corrupt initramfs: that boots fresh)
};

// Two clean boots of the faults' group, so that its saved state exists (one
// boot saves its group at the second sight, as
// docs/CONTRACTS.md "Boot once, restore per case" says): the faults below
// then hit restored guests. Two quick restores when it exists already.
void save_the_faults_group() {
  static const bool saved = [] {
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-faults-");
    if (!tmp)
      return false;
    for (int sight = 0; sight < 2; ++sight) {
      const auto ran = e2e::run_probegate({"boot", "--kernel", "debian:6.1", "--devices", "1",
                                           "--probe-delay-ms", "0", "--expect-bound", "1",
                                           "--results", tmp->path().string()},
                                          {}, std::chrono::minutes(5));
      if (ran.exit_code != 0)
        return false;
    }
    return true;
  }();
  ASSERT_TRUE(saved) << "the clean boots of the faults' group failed";
}

class InjectedFault : public ::testing::TestWithParam<Injected> {};

TEST_P(InjectedFault, HasItsOwnOutcomeAndLeavesNoQemu) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  const Injected row = GetParam();
  ASSERT_NO_FATAL_FAILURE(save_the_faults_group());
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-faults-");
  ASSERT_TRUE(tmp);
  const auto ran =
      run_watching_qemu({"boot", "--kernel", "debian:6.1", "--devices", "1", "--probe-delay-ms",
                         "1000", "--expect-bound", "1", "--deadline", "20", "--inject-fault",
                         row.fault, "--results", tmp->path().string()},
                        std::nullopt);
  ASSERT_NE(ran.qemu, 0) << "QEMU never started:\n" << ran.output;
  EXPECT_EQ(ran.exit_code, row.exit_code) << ran.output;
  EXPECT_FALSE(e2e::alive(ran.qemu)) << "QEMU " << ran.qemu << " outlived probegate";
  const fs::path run_dir = e2e::only_session(tmp->path());
  const auto result = nlohmann::json::parse(*core::read_file(run_dir / "result.json"));
  EXPECT_EQ(result.at("verdict"), row.verdict) << result.dump(2);
  EXPECT_NE(result.at("reason").get<std::string>().find(row.reason), std::string::npos)
      << result.dump(2);
  EXPECT_EQ(result.at("outcome").at("timed_out"), row.timed_out);
  EXPECT_EQ(result.at("options").at("inject_fault"), row.fault);
  EXPECT_EQ(result.at("boot_path").at("restored"), row.restored) << result.dump(2);
}

INSTANTIATE_TEST_SUITE_P(
    Debian61, InjectedFault,
    ::testing::Values(Injected{"corrupt-initramfs", 3, "error", "Initramfs unpacking failed", false,
                               false},
                      Injected{"panic", 1, "crash",
                               "Kernel panic - not syncing: pgfault: injected panic", false, true},
                      Injected{"oops", 1, "crash", "[pgfault]", false, true},
                      Injected{"hang", 1, "fail", "the boot passed its deadline", true, true}),
    [](const ::testing::TestParamInfo<Injected>& param) {
      std::string name = param.param.fault;
      std::ranges::replace(name, '-', '_');
      return name;
    });

TEST(FaultsE2e, RetriesRunTheCaseAgainAfterQemuWasKilled) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-faults-");
  ASSERT_TRUE(tmp);
  const auto ran = run_watching_qemu({"run", PROBEGATE_TESTDATA "/suites/one-slow.yaml",
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

// A results directory on a full file system (a 96 KiB tmpfs: room for about
// three cases of smoke): exit 3, the results already written stay whole,
// nothing is half-written, no further case boots, the session stays marked.
TEST(FaultsE2e, AFullResultsFileSystemStopsTheSessionAndKeepsWhatWasWritten) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-fullfs-");
  ASSERT_TRUE(tmp);
  const fs::path results = tmp->path() / "results";
  fs::create_directories(results);
  if (::mount("tmpfs", results.c_str(), "tmpfs", 0, "size=96k") != 0)
    PROBEGATE_E2E_SKIP() << "cannot mount a small tmpfs here (needs root): "
                         << std::strerror(errno);
  struct Unmount {
    fs::path dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{results};
  const auto ran = e2e::run_probegate({"run", PROBEGATE_SOURCE_DIR "/suites/smoke.yaml", "--jobs",
                                       "1", "--results", results.string()});
  EXPECT_EQ(ran.exit_code, 3) << ran.output;
  EXPECT_NE(ran.output.find("No space left on device"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("not run: the results directory cannot be written"), std::string::npos)
      << ran.output;
  const fs::path session = e2e::only_session(results);
  EXPECT_TRUE(fs::exists(session / "INCOMPLETE"));
  int whole = 0;
  for (const auto& e : fs::recursive_directory_iterator(session)) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(name.find(".partial"), std::string::npos) << e.path();
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << e.path();
    if (name == "result.json") {
      const auto text = core::read_file(e.path());
      ASSERT_TRUE(text);
      EXPECT_TRUE(nlohmann::json::accept(*text)) << e.path();
      ++whole;
    }
  }
  EXPECT_GE(whole, 1) << "no case's result survived:\n" << ran.output;
}

} // namespace
} // namespace probegate
