// SPDX-License-Identifier: GPL-2.0-only
// End to end: the guest's user space from other Debian suites (issue 12).
// One 6.1 kernel, udev of bullseye (247) and sid: the synchronous probe that
// outlives the udev timeout is killed in each, and result.json says which
// user space and which udev did it.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

e2e::Booted boot_with(const fs::path& results, const std::string& userspace,
                      const std::string& delay_ms, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"boot",
                                "--kernel",
                                "debian:6.1",
                                "--userspace",
                                userspace,
                                "--devices",
                                "2",
                                "--probe-delay-ms",
                                delay_ms,
                                "--probe-kthread",
                                "--udev-timeout",
                                "3",
                                "--expect-bound",
                                "0",
                                "--expect-udev-kill",
                                "yes",
                                "--results",
                                results.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return e2e::boot_into(results, args);
}

TEST(UserspaceE2e, Udev247OfBullseyeKillsTheLoadingWorker) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-userspace-");
  ASSERT_TRUE(tmp);
  const auto booted = boot_with(tmp->path(), "debian:bullseye", "4000");
  ASSERT_EQ(booted.ran.exit_code, 0) << booted.ran.output;
  const auto& r = booted.result;
  EXPECT_EQ(r.at("userspace").at("suite"), "bullseye") << r.dump(2);
  EXPECT_EQ(r.at("userspace").at("udev"), 247);
  EXPECT_EQ(r.at("outcome").at("udev_version"), 247);
  EXPECT_EQ(r.at("outcome").at("udev_worker_killed"), true);
  EXPECT_EQ(r.at("outcome").at("devices_bound"), 0);
  EXPECT_EQ(r.at("options").at("userspace"), "debian:bullseye");
}

// udev 256 and later kill 10 s after the timeout, see
// docs/FACTS.md "udev 256 and later wait 10 s more": a 16 s probe outlives
// T + 11 s (udev_knobs_e2e_test.cc checks the extra time itself).
TEST(UserspaceE2e, SidUdevKillsTheLoadingWorkerToo) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-userspace-");
  ASSERT_TRUE(tmp);
  const auto booted = boot_with(tmp->path(), "debian:sid", "16000", {"--deadline", "120"});
  ASSERT_EQ(booted.ran.exit_code, 0) << booted.ran.output;
  const auto& r = booted.result;
  EXPECT_EQ(r.at("userspace").at("suite"), "sid") << r.dump(2);
  EXPECT_GE(r.at("userspace").at("udev").get<int>(), 257);
  EXPECT_EQ(r.at("outcome").at("udev_worker_killed"), true);
  for (const auto& kill : r.at("outcome").at("udev_kills")) {
    if (kill.at("loading_module") == true) {
      EXPECT_GT(kill.at("guest_time_s").get<double>(), 13.0) << "T + 10 s and more";
    }
  }
}

TEST(UserspaceE2e, AnUnknownUserspaceIsAUsageErrorBeforeAnyDownload) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-userspace-");
  ASSERT_TRUE(tmp);
  const auto ran = e2e::run_probegate({"boot", "--kernel", "debian:6.1", "--userspace",
                                       "debian:buster", "--results", tmp->path().string()});
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("debian:bullseye"), std::string::npos) << ran.output;
  EXPECT_EQ(e2e::leftovers(tmp->path()), "");
}

} // namespace
} // namespace probegate
