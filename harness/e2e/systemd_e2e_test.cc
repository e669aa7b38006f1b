// SPDX-License-Identifier: GPL-2.0-only
// End to end: systemd as PID 1 in the initramfs (issue 12), the distro's
// boot path. Bookworm's systemd 252 waits for the slowprobe devices as an
// initrd waits for its root disk: with the synchronous probe udev kills the
// loader, the devices never appear, and after systemd's own 90 s device
// timeout the boot falls into emergency mode; with the module's async_probe
// it reaches initrd.target. Then the bad input, and `parse --init systemd`.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

e2e::Booted boot_systemd(const fs::path& results, std::vector<std::string> extra) {
  std::vector<std::string> args{"boot",          "--kernel",       "debian:6.1", "--init",
                                "systemd",       "--devices",      "2",          "--probe-delay-ms",
                                "5000",          "--udev-timeout", "3",          "--results",
                                results.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return e2e::boot_into(results, args);
}

TEST(SystemdE2e, ASlowProbeTimesTheDeviceOutIntoEmergencyMode) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-systemd-");
  ASSERT_TRUE(tmp);
  const auto booted = boot_systemd(
      tmp->path(), {"--expect-boot", "no", "--expect-bound", "0", "--expect-udev-kill", "yes"});
  ASSERT_EQ(booted.ran.exit_code, 0) << booted.ran.output;
  const auto& r = booted.result;
  const auto& o = r.at("outcome");
  EXPECT_EQ(r.at("userspace").at("init"), "systemd") << r.dump(2);
  EXPECT_EQ(r.at("userspace").at("systemd"), 252);
  EXPECT_EQ(o.at("init"), "systemd");
  EXPECT_EQ(o.at("booted"), false);
  EXPECT_EQ(o.at("emergency"), true);
  EXPECT_TRUE(o.at("reached_target").is_null());
  ASSERT_EQ(o.at("systemd_device_timeouts").size(), 1u) << o.dump(2);
  EXPECT_EQ(o.at("systemd_device_timeouts")[0].at("unit"), "dev-slowprobe0.device");
  // DefaultDeviceTimeoutSec=90 on the virtual clock: 90 guest s, a few of wall.
  EXPECT_GT(o.at("systemd_device_timeouts")[0].at("guest_time_s").get<double>(), 90.0);
  EXPECT_EQ(o.at("udev_worker_killed"), true);
  EXPECT_EQ(o.at("probe_failures"), 2);
}

TEST(SystemdE2e, TheModulesAsyncProbeReachesInitrdTarget) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-systemd-");
  ASSERT_TRUE(tmp);
  const auto booted = boot_systemd(
      tmp->path(), {"--async", "module-param", "--expect-bound", "2", "--device-timeout", "30"});
  ASSERT_EQ(booted.ran.exit_code, 0) << booted.ran.output;
  const auto& o = booted.result.at("outcome");
  EXPECT_EQ(o.at("booted"), true) << o.dump(2);
  EXPECT_EQ(o.at("emergency"), false);
  EXPECT_EQ(o.at("reached_target"), "initrd.target");
  EXPECT_TRUE(o.at("systemd_device_timeouts").empty());
  EXPECT_EQ(o.at("devices_bound"), 2);
  EXPECT_EQ(booted.result.at("options").at("device_timeout"), 30);
}

// Guest seconds from the first probe's start to udevd's kill of the loader.
double kill_after_probe_start(const nlohmann::json& outcome) {
  for (const auto& k : outcome.at("udev_kills"))
    if (k.at("loading_module").get<bool>())
      return k.at("guest_time_s").get<double>() -
             outcome.at("probes").at(0).at("start_s").get<double>();
  return -1;
}

// udevd's own arguments reach it under systemd through a drop-in that
// replaces the package's ExecStart=, and kill as the command line does. The
// boot ID is pinned before systemd starts, as the agent pins it: udevd's
// 1 s timer then fires at the same point of its window in both boots (a
// random boot ID would place the two kills anywhere in it).
TEST(SystemdE2e, UdevdArgumentsKillAsTheCommandLineDoesWithThePinnedBootId) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-systemd-");
  ASSERT_TRUE(tmp);
  std::map<std::string, double> kill_s;
  for (const char* via : {"cmdline", "udevd-arg"}) {
    const auto results = tmp->path() / via;
    const auto booted = boot_systemd(results, {"--udev-timeout-via", via, "--device-timeout", "10",
                                               "--expect-boot", "no", "--expect-udev-kill", "yes"});
    ASSERT_EQ(booted.ran.exit_code, 0) << via << "\n" << booted.ran.output;
    const auto& o = booted.result.at("outcome");
    EXPECT_EQ(o.at("emergency"), true) << via;
    kill_s[via] = kill_after_probe_start(o);
    // udev.event_timeout=3, not udevd's 180 s (252 adds nothing).
    EXPECT_GT(kill_s[via], 3.0) << via << "\n" << o.dump(2);
    EXPECT_LT(kill_s[via], 4.0) << via << "\n" << o.dump(2);
    const auto cmdline = booted.result.at("kernel_cmdline").get<std::string>();
    EXPECT_EQ(cmdline.find("udev.event_timeout") == std::string::npos,
              std::string_view(via) == "udevd-arg")
        << cmdline;
  }
  EXPECT_NEAR(kill_s["udevd-arg"], kill_s["cmdline"], 0.005);
}

TEST(SystemdE2e, SystemdWithTheAgentsModprobeIsAUsageError) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-systemd-");
  ASSERT_TRUE(tmp);
  const auto ran = e2e::run_probegate({"boot", "--kernel", "debian:6.1", "--init", "systemd",
                                       "--load", "modprobe", "--results", tmp->path().string()});
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("--init systemd with --load modprobe"), std::string::npos)
      << ran.output;
  EXPECT_EQ(e2e::leftovers(tmp->path()), "");
}

// A log probegate never produced: a machine's console in Debian's default
// wording, with no agent. The facts come from systemd's own lines.
TEST(SystemdE2e, ParseJudgesARealMachinesSystemdLog) {
  const auto ran = e2e::run_probegate({"parse", "--init", "systemd", "--json",
                                       PROBEGATE_TESTDATA
                                       "/console/excerpts/systemd-252-description-style.log"});
  EXPECT_EQ(ran.exit_code, 1) << ran.output; // it did not boot
  const auto json = nlohmann::json::parse(ran.output.substr(ran.output.find('{')), nullptr, false);
  ASSERT_TRUE(json.is_object()) << ran.output;
  EXPECT_EQ(json.at("outcome").at("emergency"), true);
  EXPECT_EQ(json.at("outcome").at("booted"), false);
  EXPECT_EQ(json.at("outcome").at("systemd_device_timeouts")[0].at("unit"),
            "dev-disk-by\\x2duuid-0b1c.device");
}

} // namespace
} // namespace probegate
