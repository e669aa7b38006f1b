// SPDX-License-Identifier: GPL-2.0-only
// End to end: the user-space half of the failure (issue 12) on real udev.
// suites/udev-knobs.yaml on the udev of bookworm (252) and trixie (257):
// the four places the timeout can be given kill at the same time after the
// probe starts; udev 257 kills 10 s later, and --udev-extra-timeout 0 takes
// that back where 252 lacks it (SKIP); SIGABRT lets the probes bind though
// udev reports the worker killed, and the re-sent failed event says ABRT;
// `expect_bound: capacity` follows the udev in the image.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <cmath>
#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

// result.json of every case of one user space, by case name ("via-cmdline").
std::map<std::string, nlohmann::json> run_for(const fs::path& results, const std::string& suite) {
  const auto ran = e2e::run_probegate({"run", PROBEGATE_SOURCE_DIR "/suites/udev-knobs.yaml",
                                       "--filter", "udev-knobs/*/userspace-debian-" + suite, "-j",
                                       "2", "--results", results.string()},
                                      {}, std::chrono::minutes(30));
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  std::map<std::string, nlohmann::json> out;
  for (const auto& entry : fs::recursive_directory_iterator(results))
    if (entry.path().filename() == "result.json" &&
        entry.path().parent_path().filename() == "userspace-debian-" + suite)
      out[entry.path().parent_path().parent_path().filename()] =
          nlohmann::json::parse(*core::read_file(entry.path()));
  return out;
}

// Guest seconds from the first probe's start (the module-loading event) to
// the kill of the worker inside init_module.
double kill_after_probe_start(const nlohmann::json& r) {
  double start = 1e9;
  for (const auto& p : r.at("outcome").at("probes"))
    if (p.at("start_s").is_number())
      start = std::min(start, p.at("start_s").get<double>());
  for (const auto& k : r.at("outcome").at("udev_kills"))
    if (k.at("loading_module") == true)
      return k.at("guest_time_s").get<double>() - start;
  ADD_FAILURE() << "no kill of the loading worker: " << r.dump(2);
  return 0;
}

// The two witnesses of udev 251 and later agree: the agent's pgwitness saw
// one re-sent failed event per kill in udevd's log, with the same sequence
// number and signal, and no other.
void expect_failed_events_match_kills(const nlohmann::json& r, const std::string& name) {
  std::map<int, std::string> killed;
  for (const auto& k : r.at("outcome").at("udev_kills"))
    killed[k.at("seqnum").get<int>()] = k.at("signal") == 9 ? "KILL" : "ABRT";
  std::map<int, std::string> failed;
  for (const auto& e : r.at("outcome").at("udev_failed_events"))
    failed[e.at("seqnum").get<int>()] = e.at("signal_name").get<std::string>();
  EXPECT_FALSE(killed.empty()) << name;
  EXPECT_EQ(failed, killed) << name << r.at("outcome").dump(2);
}

void expect_same_kill_time_by_every_channel(const std::map<std::string, nlohmann::json>& cases,
                                            double expected_s) {
  for (const auto* via : {"via-cmdline", "via-cmdline-rd", "via-udev-conf", "via-udevd-arg"}) {
    ASSERT_TRUE(cases.contains(via)) << via;
    const auto& r = cases.at(via);
    EXPECT_EQ(r.at("verdict"), "pass") << via << r.dump(2);
    // The kill lands in [T, T+1] s of udevd's 1 s timers; the channels must
    // not move it (measured: within 0.2 ms of each other).
    EXPECT_NEAR(kill_after_probe_start(r), expected_s, 0.05) << via;
    expect_failed_events_match_kills(r, via);
  }
}

TEST(UdevKnobsE2e, Bookworm252KillsAtTheTimeoutWhereverItIsGiven) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-udev-knobs-");
  ASSERT_TRUE(tmp);
  const auto cases = run_for(tmp->path(), "bookworm");
  expect_same_kill_time_by_every_channel(cases, 4.0);

  const auto& abrt = cases.at("signal-abrt");
  EXPECT_EQ(abrt.at("outcome").at("devices_bound"), 2) << abrt.dump(2);
  EXPECT_EQ(abrt.at("outcome").at("udev_worker_killed"), true);
  for (const auto& k : abrt.at("outcome").at("udev_kills"))
    EXPECT_EQ(k.at("signal"), 6) << "terminated by SIGABRT";
  ASSERT_FALSE(abrt.at("outcome").at("udev_failed_events").empty())
      << "udev 252 sends the failed event out again";
  for (const auto& e : abrt.at("outcome").at("udev_failed_events"))
    EXPECT_EQ(e.at("signal_name"), "ABRT");
  expect_failed_events_match_kills(abrt, "signal-abrt");

  const auto& extra = cases.at("extra-timeout-0");
  EXPECT_EQ(extra.at("verdict"), "skip");
  EXPECT_NE(extra.at("reason").get<std::string>().find(
                "udev 252 (debian:bookworm) lacks SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC"),
            std::string::npos)
      << extra.at("reason");

  const auto& capacity = cases.at("capacity");
  EXPECT_EQ(capacity.at("verdict"), "pass");
  EXPECT_EQ(capacity.at("outcome").at("devices_bound"), 1) << "a kill at 3..4 s";
  EXPECT_EQ(capacity.at("userspace").at("udev_extra_timeout_s"), 0);
}

TEST(UdevKnobsE2e, Trixie257KillsTenSecondsLaterUnlessTheExtraTimeIsZero) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-udev-knobs-");
  ASSERT_TRUE(tmp);
  const auto cases = run_for(tmp->path(), "trixie");
  expect_same_kill_time_by_every_channel(cases, 14.0);

  const auto& extra = cases.at("extra-timeout-0");
  EXPECT_EQ(extra.at("verdict"), "pass") << extra.dump(2);
  EXPECT_NEAR(kill_after_probe_start(extra), 4.0, 0.05) << "SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC=0";
  EXPECT_EQ(extra.at("userspace").at("udev_extra_timeout_s"), 0);

  const auto& abrt = cases.at("signal-abrt");
  EXPECT_EQ(abrt.at("outcome").at("devices_bound"), 2) << abrt.dump(2);

  const auto& capacity = cases.at("capacity");
  EXPECT_EQ(capacity.at("verdict"), "pass");
  EXPECT_EQ(capacity.at("outcome").at("devices_bound"), 5) << "a kill at 13..14 s";
  EXPECT_EQ(capacity.at("userspace").at("udev_extra_timeout_s"), 10);
}

// Asked for explicitly, a knob the udev lacks is bad input: exit 2 and a
// message naming the udev, the suite and the knob, before anything boots
// (in a suite's matrix the same pair is a SKIP cell, above).
TEST(UdevKnobsE2e, AnExplicitKnobTheUdevLacksIsAUsageError) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-udev-knobs-");
  ASSERT_TRUE(tmp);
  const auto ran =
      e2e::run_probegate({"boot", "--kernel", "debian:6.1", "--userspace", "debian:bookworm",
                          "--udev-extra-timeout", "0", "--results", tmp->path().string()});
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("udev 252 of debian:bookworm lacks SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC"),
            std::string::npos)
      << ran.output;
  EXPECT_EQ(ran.output.find("booting"), std::string::npos) << ran.output;
  EXPECT_EQ(e2e::leftovers(tmp->path()), "");
}

} // namespace
} // namespace probegate
